// kube-proxy's service health check server: one HTTP listener per healthCheckNodePort of a
// Service with externalTrafficPolicy Local, answering any path with
//   {"service":{"namespace":"ns","name":"svc"},"localEndpoints":N,"serviceProxyHealthy":true}
// and 200 when N > 0, 503 when this node has no ready local endpoint — so a cloud load
// balancer sends traffic only to nodes that can serve it locally.
//
// Thread: Update() from the agent's reconcile loop; each listener serves on its own thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "agent/model/compute_nodeport.h"

namespace skiff::observe {

class ServiceHealthServers {
 public:
  ServiceHealthServers();
  ~ServiceHealthServers();
  ServiceHealthServers(const ServiceHealthServers&) = delete;
  ServiceHealthServers& operator=(const ServiceHealthServers&) = delete;

  // Starts listeners for new ports, stops those no longer wanted, updates the counts. A port
  // that cannot be bound is logged and retried on the next update.
  void Update(const std::vector<model::HealthCheck>& checks);

 private:
  struct Listener;
  std::map<uint16_t, std::unique_ptr<Listener>> listeners_;
};

}  // namespace skiff::observe
