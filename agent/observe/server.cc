#include "agent/observe/server.h"

#include <httplib.h>

#include <charconv>

#include "absl/strings/str_cat.h"
#include "agent/observe/process_stats.h"

namespace skiff::observe {

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& addr) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return absl::InvalidArgumentError(absl::StrCat("\"", addr, "\" is not ADDR:PORT"));
  std::string host = addr.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  int port = -1;
  std::string p = addr.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (ec != std::errc() || ptr != p.data() + p.size() || port < 0 || port > 65535)
    return absl::InvalidArgumentError(absl::StrCat("\"", addr, "\": bad port"));
  return std::make_pair(host, port);
}

ObserveServer::ObserveServer(const ServerOptions& opts, const ObserveBoard* board)
    : opts_(opts), board_(board), stats_(opts.bpffs_root) {}

absl::StatusOr<int> ObserveServer::Listen(httplib::Server& srv, const std::string& addr,
                                          const char* what) {
  auto hp = SplitHostPort(addr);
  if (!hp.ok()) return hp.status();
  // Two workers: scrapes and probes are rare and cheap; the agent is not a web server.
  srv.new_task_queue = [] { return new httplib::ThreadPool(2); };
  int port = hp->second;
  if (port == 0) {
    port = srv.bind_to_any_port(hp->first);
  } else if (!srv.bind_to_port(hp->first, port)) {
    port = -1;
  }
  if (port <= 0)
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", addr, " (", what, "): address in use or not local"));
  threads_.emplace_back([&srv] { srv.listen_after_bind(); });
  return port;
}

absl::StatusOr<std::unique_ptr<ObserveServer>> ObserveServer::Start(const ServerOptions& opts,
                                                                    const ObserveBoard* board) {
  std::unique_ptr<ObserveServer> s(new ObserveServer(opts, board));
  if (!opts.metrics_listen.empty()) {
    s->metrics_ = std::make_unique<httplib::Server>();
    ObserveServer* self = s.get();
    s->metrics_->Get("/metrics", [self](const httplib::Request&, httplib::Response& res) {
      MetricsInput in;
      in.build = self->opts_.build;
      in.agent = self->board_->Read();
      in.datapath = self->stats_.Read();
      in.process = ReadProcessStats();
      res.set_content(RenderMetrics(in), "text/plain; version=0.0.4; charset=utf-8");
    });
    s->metrics_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain; charset=utf-8");
    });
    s->metrics_->Get("/readyz", [self](const httplib::Request&, httplib::Response& res) {
      std::string why = NotReadyReason(self->board_->Read());
      res.status = why.empty() ? 200 : 503;
      res.set_content(why.empty() ? "ok\n" : "not ready: " + why + "\n",
                      "text/plain; charset=utf-8");
    });
    auto port = s->Listen(*s->metrics_, opts.metrics_listen, "--metrics-listen");
    if (!port.ok()) return port.status();
    s->metrics_port_ = *port;
  }
  if (!opts.healthz_listen.empty()) {
    s->healthz_ = std::make_unique<httplib::Server>();
    ObserveServer* self = s.get();
    for (bool livez : {false, true}) {
      s->healthz_->Get(livez ? "/livez" : "/healthz",
                       [self, livez](const httplib::Request&, httplib::Response& res) {
                         HttpAnswer a = NodeHealth(
                             self->board_->Read(), std::chrono::system_clock::now(),
                             std::chrono::steady_clock::now(), self->opts_.healthz_timeout, livez);
                         res.status = a.status;
                         res.set_header("X-Content-Type-Options", "nosniff");
                         res.set_content(a.body, a.content_type);
                       });
    }
    auto port = s->Listen(*s->healthz_, opts.healthz_listen, "--healthz-listen");
    if (!port.ok()) return port.status();
    s->healthz_port_ = *port;
  }
  return s;
}

ObserveServer::~ObserveServer() {
  if (metrics_) metrics_->stop();
  if (healthz_) healthz_->stop();
  for (auto& t : threads_) t.join();
}

}  // namespace skiff::observe
