// The agent's HTTP endpoints (cpp-httplib):
//  --metrics-listen: /metrics (Prometheus text format), /healthz (alive: 200 "ok"),
//                    /readyz (200 "ok" once every source is synced and written and the
//                    programs are attached to every matching interface; else 503 + reason);
//  --healthz-listen: kube-proxy's node health check, /healthz and /livez, for load
//                    balancers that probe nodes (externalTrafficPolicy, node health).
//
// Threads: Start() binds on the caller's thread (so a busy port is a start-up error), then
// each listener runs its accept loop on its own std::thread and serves requests on a small
// httplib worker pool. Handlers read the main loop's state only through ObserveBoard::Read()
// and BPF maps through DatapathStats. The destructor stops both servers and joins.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/observe/board.h"
#include "agent/observe/datapath_stats.h"
#include "agent/observe/render.h"

namespace httplib {
class Server;
}

namespace skiff::observe {

struct ServerOptions {
  std::string metrics_listen;  // ADDR:PORT; empty: off
  std::string healthz_listen;  // ADDR:PORT; empty: off
  std::string bpffs_root;
  // kube-proxy's healthz timeout: 2 x its default syncPeriod (30 s).
  std::chrono::seconds healthz_timeout{60};
  BuildInfo build;
};

// "0.0.0.0:9890" / "[::]:9890" -> host and port; InvalidArgument otherwise.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& addr);

class ObserveServer {
 public:
  static absl::StatusOr<std::unique_ptr<ObserveServer>> Start(const ServerOptions& opts,
                                                              const ObserveBoard* board);
  ~ObserveServer();
  ObserveServer(const ObserveServer&) = delete;
  ObserveServer& operator=(const ObserveServer&) = delete;

  int metrics_port() const { return metrics_port_; }
  int healthz_port() const { return healthz_port_; }

 private:
  ObserveServer(const ServerOptions& opts, const ObserveBoard* board);
  absl::StatusOr<int> Listen(httplib::Server& srv, const std::string& addr, const char* what);

  ServerOptions opts_;
  const ObserveBoard* board_;
  DatapathStats stats_;
  std::unique_ptr<httplib::Server> metrics_;
  std::unique_ptr<httplib::Server> healthz_;
  std::vector<std::thread> threads_;
  int metrics_port_ = 0;
  int healthz_port_ = 0;
};

}  // namespace skiff::observe
