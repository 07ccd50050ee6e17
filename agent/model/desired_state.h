// Desired datapath state: what the maps should hold, computed by pure functions from the
// cluster's objects (agent/model) and written by the reconciler (agent/reconcile). Nothing in
// here knows about BPF maps or where the objects came from.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/model/persistent_map.h"

namespace skiff::model {

enum class Protocol : uint8_t { kTcp = 6, kUdp = 17, kSctp = 132 };

// An IPv4 or IPv6 address; bytes in network order (IPv4 in bytes[0..3]).
struct IpAddr {
  uint8_t family = 4;  // 4 or 6
  std::array<uint8_t, 16> bytes{};
  // The defaulted order (family, then the bytes lexicographically), computed on two
  // big-endian words instead of a memcmp call: IpAddr keys every B-tree of the reconciler.
  std::strong_ordering operator<=>(const IpAddr& o) const {
    if (family != o.family) return family <=> o.family;
    if (auto c = Word(0) <=> o.Word(0); c != 0) return c;
    return Word(8) <=> o.Word(8);
  }
  bool operator==(const IpAddr& o) const = default;
  static std::optional<IpAddr> Parse(const std::string& text);
  std::string ToString() const;
  uint32_t V4() const;  // network byte order, for IPv4

 private:
  uint64_t Word(size_t at) const {
    uint64_t w = 0;
    for (size_t i = 0; i < 8; ++i) w = w << 8 | bytes[at + i];
    return w;  // the compiler makes this one load and a byte swap
  }
};

enum class BackendState : uint8_t { kActive = 0, kTerminating = 1 };

// 22 bytes: a million of them at 100,000 Services × 10. The pod behind a backend (its
// endpoint's targetRef) is not kept here: the API looks it up (model::BackendPods, compute.h).
struct Backend {
  IpAddr ip;
  uint16_t port = 0;
  BackendState state = BackendState::kActive;
  bool node_local = false;  // a pod on this node (EndpointSlice nodeName == --node-name)
  auto operator<=>(const Backend&) const = default;
};

enum class FrontendKind : uint8_t { kClusterIp, kExternalIp, kNodePort, kLoadBalancer };

// How new flows pick a backend. kDefault is the agent's --lb-algorithm; the Service
// annotation service.skiff.io/lb-algorithm (kLbAlgorithmAnnotation) chooses per Service.
enum class LbAlgorithm : uint8_t { kDefault, kRandom, kMaglev };
inline constexpr char kLbAlgorithmAnnotation[] = "service.skiff.io/lb-algorithm";

struct FrontendKey {
  IpAddr vip;
  uint16_t port = 0;
  Protocol proto = Protocol::kTcp;
  auto operator<=>(const FrontendKey&) const = default;
};

// A client prefix of loadBalancerSourceRanges (IPv4, host bits zero).
struct SourceRange {
  IpAddr addr;
  uint8_t prefix_len = 0;
  auto operator<=>(const SourceRange&) const = default;
};

struct Frontend {
  FrontendKey key;
  FrontendKind kind = FrontendKind::kClusterIp;
  std::string service;    // "namespace/name"
  std::string port_name;  // the Service port's name ("" when unnamed)
  // Sorted by (ip, port), one entry per address:port. Terminating ones are included with
  // their state; ready=false && serving=false endpoints are left out entirely.
  std::vector<Backend> backends;
  bool affinity_client_ip = false;
  uint32_t affinity_timeout_s = 0;  // 10800 by default in Kubernetes
  // Each flag is set only on the frontend kinds it governs (as in Kubernetes):
  // internal_traffic_local on kClusterIp, external_traffic_local on kExternalIp, kNodePort and
  // kLoadBalancer (kube-proxy: in-cluster clients of an external address ignore ITP).
  bool internal_traffic_local = false;
  bool external_traffic_local = false;
  // Among the flags, not after the last vector: 152 bytes instead of 160 (a map node of 200
  // bytes, 208 in malloc's terms instead of 224, at 100,000 frontends).
  LbAlgorithm lb_algorithm = LbAlgorithm::kDefault;
  // loadBalancerSourceRanges, on kLoadBalancer frontends only (NodePort and externalIPs of the
  // same Service stay open, as with Cilium): new flows from outside must come from one of
  // source_ranges (sorted, unique, this frontend's family). restrict_sources with an empty
  // list (every range of the other family) admits no one.
  bool restrict_sources = false;
  std::vector<SourceRange> source_ranges;
  bool operator==(const Frontend&) const = default;
};

struct DesiredState {
  // Persistent: the API's copy of the desired state shares it (persistent_map.h).
  PersistentMap<FrontendKey, Frontend> frontends;
  bool operator==(const DesiredState&) const = default;
};

}  // namespace skiff::model
