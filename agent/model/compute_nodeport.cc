#include "agent/model/compute_nodeport.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"

namespace skiff::model {

void InsertFrontend(Frontend&& fe, absl::string_view label, DesiredState& state,
                    std::vector<std::string>* warnings) {
  // try_emplace leaves `fe` alone when the key is taken, so the warning can still read it.
  auto [it, inserted] = state.frontends.try_emplace(fe.key, std::move(fe));
  if (!inserted && warnings != nullptr) {
    warnings->push_back(absl::StrCat("Service ", fe.service, ": ", label, fe.key.vip.ToString(),
                                     ":", fe.key.port, "/", ProtocolName(fe.key.proto),
                                     " is already used by Service ", it->second.service,
                                     "; ignored"));
  }
}

void AddNodePortFrontends(const Service& svc, const std::string& service_id,
                          const ServicePort& port, const std::vector<Backend>& backends,
                          const std::vector<IpAddr>& node_addresses, LbAlgorithm algorithm,
                          DesiredState& state, std::vector<std::string>* warnings) {
  if (svc.spec.type != ServiceType::kNodePort && svc.spec.type != ServiceType::kLoadBalancer)
    return;
  if (port.node_port == 0) return;
  for (const IpAddr& addr : node_addresses) {
    if (addr.family != 4 || addr.bytes[0] == 127) continue;
    Frontend fe;
    fe.key = FrontendKey{addr, port.node_port, port.protocol};
    fe.kind = FrontendKind::kNodePort;
    fe.service = service_id;
    fe.port_name = port.name;
    fe.backends = backends;
    fe.affinity_client_ip = svc.spec.session_affinity_client_ip;
    fe.affinity_timeout_s =
        svc.spec.session_affinity_client_ip ? svc.spec.session_affinity_timeout_s : 0;
    fe.external_traffic_local = svc.spec.external_traffic_policy == TrafficPolicy::kLocal;
    fe.lb_algorithm = algorithm;
    InsertFrontend(std::move(fe), "nodePort ", state, warnings);
  }
}

std::vector<HealthCheck> ComputeHealthChecks(const ObjectSnapshot& objects,
                                             absl::string_view node_name) {
  // Services first (cheap filters), then one pass over the slices: O(services + slices).
  std::map<uint16_t, HealthCheck> by_port;
  std::map<NamespacedName, uint16_t> port_of;
  for (const auto& [id, svc] : objects.services) {
    const ServiceSpec& spec = svc->spec;
    if (spec.type != ServiceType::kNodePort && spec.type != ServiceType::kLoadBalancer) continue;
    if (spec.external_traffic_policy != TrafficPolicy::kLocal) continue;
    if (spec.health_check_node_port == 0 || spec.headless) continue;
    if (svc->metadata.labels.count(kServiceProxyNameLabel)) continue;
    if (by_port.count(spec.health_check_node_port)) continue;
    by_port[spec.health_check_node_port] =
        HealthCheck{spec.health_check_node_port, id.namespace_, id.name, 0};
    port_of[id] = spec.health_check_node_port;
  }
  if (by_port.empty() || node_name.empty()) {
    std::vector<HealthCheck> out;
    for (auto& [port, hc] : by_port) out.push_back(std::move(hc));
    return out;
  }
  std::map<uint16_t, std::set<std::string>> local;
  for (const auto& [sid, slice] : objects.endpoint_slices) {
    auto it = port_of.find(NamespacedName{sid.namespace_, slice->service_name()});
    if (it == port_of.end()) continue;
    for (const Endpoint& ep : slice->endpoints)
      if (ep.conditions.ready && !ep.addresses.empty() && ep.node_name == node_name)
        local[it->second].insert(ep.addresses.front());
  }
  std::vector<HealthCheck> out;
  for (auto& [port, hc] : by_port) {
    hc.local_endpoints = static_cast<int>(local[port].size());
    out.push_back(std::move(hc));
  }
  return out;
}

}  // namespace skiff::model
