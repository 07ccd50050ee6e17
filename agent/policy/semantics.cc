#include "agent/policy/semantics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace skiff::policy {
namespace {

bool HasType(const model::NetworkPolicy& p, model::PolicyType t) {
  return std::find(p.policy_types.begin(), p.policy_types.end(), t) != p.policy_types.end();
}

const model::Labels& EmptyLabels() {
  static const model::Labels kEmpty;
  return kEmpty;
}

}  // namespace

std::string RuleRef::ToString() const {
  return absl::StrCat(policy.ToString(),
                      direction == model::PolicyType::kIngress ? " ingress[" : " egress[", index,
                      "]");
}

std::string ConnectionVerdict::Explain() const {
  if (host) return "allowed: traffic to or from the node is always allowed";
  auto side = [](const char* what, const DirectionVerdict& d) -> std::string {
    if (!d.isolated) return absl::StrCat(what, ": not isolated");
    if (d.allowed) return absl::StrCat(what, ": allowed by ", d.rule->ToString());
    std::string names;
    for (const auto& p : d.selecting)
      absl::StrAppend(&names, names.empty() ? "" : ", ", p.ToString());
    return absl::StrCat(what, ": denied (isolated by ", names, "; no rule allows)");
  };
  return absl::StrCat(allowed ? "allowed" : "denied", "; ", side("egress of source", egress), "; ",
                      side("ingress of destination", ingress));
}

bool IpBlockMatches(const model::IpBlock& block, const model::IpAddr& ip) {
  if (!block.cidr.Contains(ip)) return false;
  for (const auto& e : block.except)
    if (e.Contains(ip)) return false;
  return true;
}

bool PeerSelectsPod(const model::NetworkPolicyPeer& peer, const std::string& policy_ns,
                    const model::Pod& pod, const model::Labels& pod_ns_labels) {
  if (peer.ip_block) return false;  // the API forbids ipBlock beside selectors
  if (!peer.pod_selector && !peer.namespace_selector) return false;
  if (peer.namespace_selector) {
    if (!peer.namespace_selector->Matches(pod_ns_labels)) return false;
  } else if (pod.metadata.namespace_ != policy_ns) {
    return false;
  }
  return !peer.pod_selector || peer.pod_selector->Matches(pod.metadata.labels);
}

std::optional<PortRange> ResolvePort(const model::NetworkPolicyPort& port,
                                     const std::vector<model::ContainerPort>* dest_ports) {
  if (!port.port) return PortRange{0, 65535};
  if (port.port->is_name()) {
    if (!dest_ports) return std::nullopt;
    for (const auto& cp : *dest_ports)
      if (cp.name == port.port->name() && cp.protocol == port.protocol)
        return PortRange{cp.container_port, cp.container_port};
    return std::nullopt;
  }
  int32_t lo = port.port->number();
  int32_t hi = port.end_port ? *port.end_port : lo;
  if (lo < 0 || lo > 65535 || hi < lo) return std::nullopt;
  return PortRange{static_cast<uint16_t>(lo), static_cast<uint16_t>(std::min(hi, 65535))};
}

Semantics::Semantics(const model::ObjectSnapshot* objects,
                     std::vector<model::IpAddr> node_addresses)
    : objects_(objects), node_addresses_(std::move(node_addresses)) {}

const model::Pod* Semantics::FindPod(const model::NamespacedName& id) const {
  auto it = objects_->pods.find(id);
  return it == objects_->pods.end() ? nullptr : it->second.get();
}

const model::Labels& Semantics::NamespaceLabels(const std::string& ns) const {
  auto it = objects_->namespaces.find(model::NamespacedName{"", ns});
  return it == objects_->namespaces.end() ? EmptyLabels() : it->second->metadata.labels;
}

bool Semantics::PeerMatches(const model::NetworkPolicyPeer& peer, const std::string& policy_ns,
                            const PeerRef& ref) const {
  if (peer.ip_block) return IpBlockMatches(*peer.ip_block, ref.ip);
  const model::Pod* pod = ref.pod ? FindPod(*ref.pod) : nullptr;
  if (!pod) return false;
  return PeerSelectsPod(peer, policy_ns, *pod, NamespaceLabels(pod->metadata.namespace_));
}

DirectionVerdict Semantics::Evaluate(const model::Pod& self, model::PolicyType type,
                                     const PeerRef& peer, const model::Pod* dest_pod, uint8_t proto,
                                     uint16_t port) const {
  DirectionVerdict v;
  v.allowed = false;
  const std::string& ns = self.metadata.namespace_;
  for (const auto& [id, pol] : objects_->network_policies) {
    if (id.namespace_ != ns || !HasType(*pol, type)) continue;
    if (!pol->pod_selector.Matches(self.metadata.labels)) continue;
    v.isolated = true;
    v.selecting.push_back(id);
    if (v.allowed) continue;
    const auto& rules = type == model::PolicyType::kIngress ? pol->ingress : pol->egress;
    for (size_t i = 0; i < rules.size() && !v.allowed; i++) {
      const auto& rule = rules[i];
      bool peer_ok = rule.peers.empty();
      for (const auto& p : rule.peers) peer_ok = peer_ok || PeerMatches(p, ns, peer);
      if (!peer_ok) continue;
      bool port_ok = rule.ports.empty();
      for (const auto& p : rule.ports) {
        if (port_ok) break;
        if (static_cast<uint8_t>(p.protocol) != proto) continue;
        auto r = ResolvePort(p, dest_pod ? &dest_pod->container_ports : nullptr);
        port_ok = r && port >= r->lo && port <= r->hi;
      }
      if (!port_ok) continue;
      v.allowed = true;
      v.rule = RuleRef{id, type, static_cast<int>(i)};
    }
  }
  if (!v.isolated) v.allowed = true;
  return v;
}

DirectionVerdict Semantics::Ingress(const model::Pod& dst, const PeerRef& src, uint8_t proto,
                                    uint16_t port) const {
  return Evaluate(dst, model::PolicyType::kIngress, src, &dst, proto, port);
}

DirectionVerdict Semantics::Egress(const model::Pod& src, const PeerRef& dst, uint8_t proto,
                                   uint16_t port) const {
  const model::Pod* dest_pod = dst.pod ? FindPod(*dst.pod) : nullptr;
  return Evaluate(src, model::PolicyType::kEgress, dst, dest_pod, proto, port);
}

ConnectionVerdict Semantics::Connection(const PeerRef& src, const PeerRef& dst, uint8_t proto,
                                        uint16_t port) const {
  ConnectionVerdict c;
  for (const auto& a : node_addresses_)
    if (a == src.ip || a == dst.ip) c.host = true;
  if (c.host) return c;
  if (const model::Pod* s = src.pod ? FindPod(*src.pod) : nullptr)
    c.egress = Egress(*s, dst, proto, port);
  if (const model::Pod* d = dst.pod ? FindPod(*dst.pod) : nullptr)
    c.ingress = Ingress(*d, src, proto, port);
  c.allowed = c.egress.allowed && c.ingress.allowed;
  return c;
}

}  // namespace skiff::policy
