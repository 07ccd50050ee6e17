#include "agent/model/compute_nodeport.h"

#include "absl/strings/str_cat.h"

namespace skiff::model {

void AddNodePortFrontends(const Service& svc, const std::string& service_id,
                          const ServicePort& port, const std::vector<Backend>& backends,
                          const std::vector<IpAddr>& node_addresses, DesiredState& state,
                          std::vector<std::string>* warnings) {
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
    auto [it, inserted] = state.frontends.try_emplace(fe.key, std::move(fe));
    if (!inserted && warnings != nullptr) {
      warnings->push_back(absl::StrCat("Service ", service_id, ": nodePort ", addr.ToString(), ":",
                                       port.node_port, "/", ProtocolName(port.protocol),
                                       " is already used by Service ", it->second.service,
                                       "; ignored"));
    }
  }
}

}  // namespace skiff::model
