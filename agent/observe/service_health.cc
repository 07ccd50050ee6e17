#include "agent/observe/service_health.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"

namespace skiff::observe {

struct ServiceHealthServers::Listener {
  std::mutex mu;
  model::HealthCheck check;  // guarded by mu
  httplib::Server server;
  std::thread thread;
  ~Listener() {
    server.stop();
    if (thread.joinable()) thread.join();
  }
};

ServiceHealthServers::ServiceHealthServers() = default;
ServiceHealthServers::~ServiceHealthServers() = default;

namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

void ServiceHealthServers::Update(const std::vector<model::HealthCheck>& checks) {
  std::map<uint16_t, const model::HealthCheck*> want;
  for (const auto& c : checks) want[c.port] = &c;
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (want.count(it->first)) {
      ++it;
      continue;
    }
    spdlog::info("service health check on port {} stopped", it->first);
    it = listeners_.erase(it);
  }
  for (const auto& [port, check] : want) {
    auto it = listeners_.find(port);
    if (it != listeners_.end()) {
      std::lock_guard<std::mutex> l(it->second->mu);
      it->second->check = *check;
      continue;
    }
    auto lst = std::make_unique<Listener>();
    lst->check = *check;
    Listener* self = lst.get();
    lst->server.new_task_queue = [] { return new httplib::ThreadPool(1); };
    lst->server.Get(".*", [self](const httplib::Request&, httplib::Response& res) {
      model::HealthCheck c;
      {
        std::lock_guard<std::mutex> l(self->mu);
        c = self->check;
      }
      res.status = c.local_endpoints > 0 ? 200 : 503;
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_content(absl::StrCat("{\"service\":{\"namespace\":", JsonString(c.namespace_),
                                   ",\"name\":", JsonString(c.name), "},\"localEndpoints\":",
                                   c.local_endpoints, ",\"serviceProxyHealthy\":true}"),
                      "application/json");
    });
    if (!lst->server.bind_to_port("0.0.0.0", port)) {
      spdlog::warn("service health check for {}/{}: cannot listen on port {}", check->namespace_,
                   check->name, port);
      continue;
    }
    lst->thread = std::thread([self] { self->server.listen_after_bind(); });
    spdlog::info("service health check for {}/{} on port {}", check->namespace_, check->name, port);
    listeners_[port] = std::move(lst);
  }
}

}  // namespace skiff::observe
