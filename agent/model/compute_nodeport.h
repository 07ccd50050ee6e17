// North-south frontends of a Service port: NodePort on each node address of the --devices.
// (externalIPs and LoadBalancer ingress IPs are ordinary frontends, see compute.cc.)
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/model/desired_state.h"
#include "agent/model/object_store.h"
#include "agent/model/objects.h"

namespace skiff::model {

// Rules (kube-proxy's):
//  - Services of type NodePort or LoadBalancer get, for every port with a nodePort, one
//    frontend {node address, nodePort, protocol} per IPv4 address in `node_addresses` (the
//    addresses of the --devices). Never 127.0.0.1: loopback is not a device address, and
//    NodePorts are not served on localhost (kube-proxy's nftables mode).
//  - Its backends, affinity and externalTrafficPolicy are the Service port's, as for the
//    externalIP and LoadBalancer frontends.
//  - A clash with an existing frontend (two Services with the same nodePort, or a nodePort
//    equal to another Service's port on a node address) keeps the first and warns.
void AddNodePortFrontends(const Service& svc, const std::string& service_id,
                          const ServicePort& port, const std::vector<Backend>& backends,
                          const std::vector<IpAddr>& node_addresses, LbAlgorithm algorithm,
                          DesiredState& state, std::vector<std::string>* warnings);

// Adds `fe` to the state unless its key is already a frontend (of an earlier Service): then the
// first stays and `warnings` (optional) names both Services; `label` goes before the address
// ("nodePort " for NodePorts). Shared by every kind of frontend (compute.cc, here).
void InsertFrontend(Frontend&& fe, absl::string_view label, DesiredState& state,
                    std::vector<std::string>* warnings);

// One healthCheckNodePort the agent answers (kube-proxy's service health check server).
struct HealthCheck {
  uint16_t port = 0;
  std::string namespace_;
  std::string name;
  int local_endpoints = 0;  // ready endpoints whose nodeName is this node
  bool operator==(const HealthCheck&) const = default;
};

// Services of type NodePort or LoadBalancer with externalTrafficPolicy Local and a
// healthCheckNodePort, with their count of ready node-local endpoints (distinct addresses, as
// kube-proxy counts them). Skipped services (ExternalName, headless, other proxy) get none.
// Sorted by port; a port claimed twice keeps the first Service in namespace/name order.
std::vector<HealthCheck> ComputeHealthChecks(const ObjectSnapshot& objects,
                                             absl::string_view node_name);

}  // namespace skiff::model
