// networking.k8s.io/v1 NetworkPolicy semantics, evaluated directly on the objects: the truth
// table Kubernetes' own network-policy e2e suite checks. This is the reference the compiled
// form (compiler.h) is tested against, the oracle of the e2e test, and the explanation behind
// `agentctl policy trace`. It is deliberately naive (walks every policy per question) and
// never used per packet.
//
// Rules:
//  - A pod is isolated for ingress (egress) when some policy in its namespace selects it
//    (podSelector; empty = every pod of the namespace) and lists Ingress (Egress) in
//    policyTypes (already defaulted by the model: Ingress always, Egress when egress rules
//    exist). A pod isolated in no policy allows everything in that direction.
//  - An isolated pod allows what the union of the rules of every policy selecting it allows.
//    A rule allows a peer when its peer list is empty or one peer matches (OR), and a port
//    when its port list is empty or one port matches.
//  - A peer with podSelector and/or namespaceSelector matches pods only: podSelector alone =
//    pods of the policy's namespace; namespaceSelector alone = every pod of the matching
//    namespaces; both = matching pods in matching namespaces (AND). An ipBlock matches any
//    address in cidr and in none of except — pod addresses included (Kubernetes' e2e suite
//    uses pod IPs in ipBlocks).
//  - A port matches its protocol and: no port = every port; a number = that port, or
//    [port, endPort] when endPort is set; a name = the destination pod's container port of
//    that name and protocol (an address that is not a pod has no named ports).
//  - A connection is allowed when the source's egress and the destination's ingress both
//    allow it. Traffic to or from the node itself is always allowed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agent/model/object_store.h"
#include "agent/model/objects.h"

namespace skiff::policy {

// One end of a connection: a pod (found by name) or a bare address.
struct PeerRef {
  std::optional<model::NamespacedName> pod;
  model::IpAddr ip;
};

// "ns/name ingress[1]": the rule of a policy that allowed something.
struct RuleRef {
  model::NamespacedName policy;
  model::PolicyType direction = model::PolicyType::kIngress;
  int index = 0;  // position in ingress[] / egress[]
  std::string ToString() const;
};

struct DirectionVerdict {
  bool isolated = false;
  bool allowed = true;
  std::optional<RuleRef> rule;  // the first rule that allows, when isolated and allowed
  std::vector<model::NamespacedName> selecting;  // policies isolating the pod this way
};

struct ConnectionVerdict {
  bool allowed = true;
  bool host = false;         // one end is the node itself: always allowed
  DirectionVerdict egress;   // of the source (not isolated when it is not a pod)
  DirectionVerdict ingress;  // of the destination
  std::string Explain() const;
};

// Whether `selector` selects `pod`, and related helpers shared with the compiler.
bool PeerSelectsPod(const model::NetworkPolicyPeer& peer, const std::string& policy_ns,
                    const model::Pod& pod, const model::Labels& pod_ns_labels);
bool IpBlockMatches(const model::IpBlock& block, const model::IpAddr& ip);
// The port numbers `port` allows towards a destination with `dest_ports` container ports:
// [lo, hi] inclusive, or nullopt when it allows nothing there (unknown name).
struct PortRange {
  uint16_t lo = 0;
  uint16_t hi = 65535;
  auto operator<=>(const PortRange&) const = default;
};
std::optional<PortRange> ResolvePort(const model::NetworkPolicyPort& port,
                                     const std::vector<model::ContainerPort>* dest_ports);

class Semantics {
 public:
  // `node_addresses`: the node's own addresses (always allowed both ways).
  Semantics(const model::ObjectSnapshot* objects, std::vector<model::IpAddr> node_addresses = {});

  DirectionVerdict Ingress(const model::Pod& dst, const PeerRef& src, uint8_t proto,
                           uint16_t port) const;
  DirectionVerdict Egress(const model::Pod& src, const PeerRef& dst, uint8_t proto,
                          uint16_t port) const;
  ConnectionVerdict Connection(const PeerRef& src, const PeerRef& dst, uint8_t proto,
                               uint16_t port) const;

  const model::Pod* FindPod(const model::NamespacedName& id) const;
  const model::Labels& NamespaceLabels(const std::string& ns) const;

 private:
  DirectionVerdict Evaluate(const model::Pod& self, model::PolicyType type, const PeerRef& peer,
                            const model::Pod* dest_pod, uint8_t proto, uint16_t port) const;
  bool PeerMatches(const model::NetworkPolicyPeer& peer, const std::string& policy_ns,
                   const PeerRef& ref) const;
  const model::ObjectSnapshot* objects_;
  std::vector<model::IpAddr> node_addresses_;
};

}  // namespace skiff::policy
