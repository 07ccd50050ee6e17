// NetworkPolicy compiler: model objects -> what the policy maps (maps/policy.h) must hold on
// one node. Pure: the same snapshot and node name always give the same result; numeric ids
// are given later by the reconciler, which keeps them stable across changes.
//
// Peer classes (identities). Every address the policies can tell apart gets a class:
//  - a pod: {namespace, pod labels, namespace labels, the policy CIDRs containing its
//    address, its container ports whose names egress rules use}. Pods that no rule can tell
//    apart share a class, so the number of classes follows the distinct label sets, not the
//    number of pods. Named ports are part of the class because an egress rule's named port
//    resolves per destination pod.
//  - an outside address: {the policy CIDRs (ipBlock cidr and except) containing it}. Each
//    policy CIDR P is an ipcache prefix whose class is "the CIDRs that contain P": with
//    longest-prefix match, the addresses that land on P are in exactly those CIDRs, so an
//    ipBlock {cidr, except} is decided per class (cidr in the set, no except in it). Addresses
//    in no policy CIDR miss the ipcache and are WORLD.
// Per endpoint (a pod of this node) and direction: isolated or not, and allow entries
// {peer class or ANY, protocol or any, port range}; the reconciler turns ranges into masked
// port prefixes of the LPM policy map.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/model/object_store.h"
#include "agent/model/objects.h"
#include "agent/policy/semantics.h"

namespace skiff::policy {

struct NamedPort {
  std::string name;
  uint8_t proto = 6;
  uint16_t port = 0;
  auto operator<=>(const NamedPort&) const = default;
};

struct PeerClass {
  bool is_pod = false;
  std::string namespace_;
  model::Labels pod_labels;
  model::Labels namespace_labels;
  std::vector<model::Cidr> cidrs;      // sorted
  std::vector<NamedPort> named_ports;  // sorted; only names that egress rules use
  auto operator<=>(const PeerClass&) const = default;
  std::string ToString() const;
};

// Reserved identities that an ipcache entry may carry instead of a class.
enum class Reserved : uint8_t { kNone, kHost };

struct IpcacheEntry {
  model::Cidr prefix;
  int klass = -1;  // index into Compiled::classes, or -1 with `reserved`
  Reserved reserved = Reserved::kNone;
  std::optional<model::NamespacedName> endpoint;  // a pod on this node
  bool operator==(const IpcacheEntry&) const = default;
};

// One allow entry of an endpoint. peer -1 = ANY (a rule without from/to); proto 0 = every
// protocol (a rule without ports).
struct AllowEntry {
  int peer = -1;
  uint8_t proto = 0;
  PortRange ports;
  RuleRef rule;
  bool operator==(const AllowEntry& o) const {
    return peer == o.peer && proto == o.proto && ports == o.ports;
  }
};

struct EndpointPolicy {
  model::NamespacedName pod;
  std::vector<model::IpAddr> ips;  // IPv4
  bool ingress_isolated = false;
  bool egress_isolated = false;
  std::vector<AllowEntry> ingress;                      // peer = source
  std::vector<AllowEntry> egress;                       // peer = destination
  std::vector<model::NamespacedName> ingress_policies;  // the policies isolating it
  std::vector<model::NamespacedName> egress_policies;
};

struct Compiled {
  std::vector<PeerClass> classes;
  std::vector<IpcacheEntry> ipcache;  // sorted by prefix
  std::map<model::NamespacedName, EndpointPolicy> endpoints;
  bool any_policy = false;  // some NetworkPolicy exists (datapath: deny unknown endpoints)
  std::vector<std::string> warnings;
};

struct CompileOptions {
  std::string node_name;
  // This node's addresses: traffic to or from them is always allowed (HOST identity).
  std::vector<model::IpAddr> node_addresses;
};

Compiled Compile(const model::ObjectSnapshot& objects, const CompileOptions& opts);

// A masked port prefix: `bits` leading bits of `port` (0 = every port).
struct PortPrefix {
  uint16_t port = 0;
  uint8_t bits = 0;
  auto operator<=>(const PortPrefix&) const = default;
};
// The fewest prefixes covering exactly [lo, hi] (at most 30).
std::vector<PortPrefix> RangeToPrefixes(uint16_t lo, uint16_t hi);

// What the datapath decides with the compiled state, evaluated the way the BPF lookups do it
// (longest-prefix ipcache, then {peer, ANY} allow lookups): for tests against Semantics and
// for `agentctl policy trace`. Only endpoints of this node are enforced.
struct CompiledVerdict {
  bool allowed = true;
  bool host = false;
  bool egress_isolated = false, egress_allowed = true;
  bool ingress_isolated = false, ingress_allowed = true;
  std::optional<RuleRef> egress_rule, ingress_rule;
};
const IpcacheEntry* LookupIpcache(const Compiled& c, const model::IpAddr& ip);
CompiledVerdict EvaluateCompiled(const Compiled& c, const model::IpAddr& src,
                                 const model::IpAddr& dst, uint8_t proto, uint16_t port);

}  // namespace skiff::policy
