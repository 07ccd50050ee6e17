// Typed Kubernetes objects: only the fields Skiff reads, already defaulted the way the API
// server defaults them (so consumers never re-implement "nil means ..." rules). Every source
// (manifest directory, Kubernetes API) converts into these types; nothing downstream knows
// where an object came from.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "agent/model/desired_state.h"
#include "agent/model/endpoint_fields.h"
#include "agent/model/interned.h"
#include "agent/model/labels.h"
#include "agent/model/rare.h"

namespace skiff::model {

// An address range such as 10.244.1.0/24 (address bits beyond the prefix are zero).
struct Cidr {
  IpAddr addr;
  uint8_t prefix_len = 0;
  auto operator<=>(const Cidr&) const = default;
  static std::optional<Cidr> Parse(const std::string& text);
  std::string ToString() const;
  bool Contains(const IpAddr& ip) const;
};

// intstr.IntOrString: a Service targetPort or NetworkPolicy port is a number or a port name.
// Port names repeat across Services ("http"): interned, 16 bytes instead of 40.
struct IntOrString {
  std::variant<int32_t, InternedString> value = int32_t{0};
  bool is_name() const { return std::holds_alternative<InternedString>(value); }
  int32_t number() const { return is_name() ? 0 : std::get<int32_t>(value); }
  const std::string& name() const;
  std::string ToString() const;
  bool operator==(const IntOrString&) const = default;
};

// Cluster-scoped objects leave namespace_ empty. Annotations are validated by the decoders but
// not kept: nothing reads them, and in a cluster they can be large
// (kubectl.kubernetes.io/last-applied-configuration repeats the whole object).
struct ObjectMeta {
  InternedString namespace_;  // a cluster has few namespaces and many objects in each
  std::string name;
  Labels labels;
  bool operator==(const ObjectMeta&) const = default;
};

// ---- core/v1 Service ----

enum class ServiceType : uint8_t { kClusterIp, kNodePort, kLoadBalancer, kExternalName };
enum class IpFamily : uint8_t { kIpv4, kIpv6 };
enum class TrafficPolicy : uint8_t { kCluster, kLocal };

struct ServicePort {
  InternedString name;  // "http", "metrics", ...: a handful of texts across a cluster
  Protocol protocol = Protocol::kTcp;
  uint16_t port = 0;
  IntOrString target_port;  // defaulted to `port` when the manifest leaves it out
  uint16_t node_port = 0;   // 0 = none
  bool operator==(const ServicePort&) const = default;
};

inline constexpr uint32_t kDefaultAffinityTimeoutSeconds = 10800;

// 216 bytes a Service (100,000 of them at the scale target): the small fields first, packed,
// and the fields nearly every Service leaves empty one pointer each (rare.h).
struct ServiceSpec {
  ServiceType type = ServiceType::kClusterIp;
  // clusterIP "None": no virtual IP, clients resolve endpoints by DNS; Skiff ignores it.
  bool headless = false;
  bool session_affinity_client_ip = false;
  TrafficPolicy internal_traffic_policy = TrafficPolicy::kCluster;
  TrafficPolicy external_traffic_policy = TrafficPolicy::kCluster;
  uint16_t health_check_node_port = 0;
  uint32_t session_affinity_timeout_s = kDefaultAffinityTimeoutSeconds;
  // clusterIPs, falling back to clusterIP; empty when unset. At most one per family, so both
  // lists are stored inline.
  absl::InlinedVector<IpAddr, 2> cluster_ips;
  absl::InlinedVector<IpFamily, 2> ip_families;
  std::vector<ServicePort> ports;
  RareList<IpAddr> external_ips;
  RareList<Cidr> load_balancer_source_ranges;
  RareString external_name;
  bool operator==(const ServiceSpec&) const = default;
};

struct Service {
  ObjectMeta metadata;
  // metadata.annotations["service.skiff.io/lb-algorithm"] (kLbAlgorithmAnnotation), "" when
  // absent: the one annotation Skiff reads (ObjectMeta keeps none). Interned: a few values.
  InternedString lb_algorithm;
  ServiceSpec spec;
  RareList<IpAddr> load_balancer_ingress_ips;  // status.loadBalancer.ingress[].ip
  bool operator==(const Service&) const = default;
};
static_assert(sizeof(Service) <= 216, "Service grew: 100,000 of them at the scale target");

// ---- discovery.k8s.io/v1 EndpointSlice ----

enum class AddressType : uint8_t { kIpv4, kIpv6, kFqdn };

inline constexpr char kServiceNameLabel[] = "kubernetes.io/service-name";
inline constexpr char kServiceProxyNameLabel[] = "service.kubernetes.io/service-proxy-name";

struct EndpointPort {
  InternedString name;  // as ServicePort's
  Protocol protocol = Protocol::kTcp;
  std::optional<uint16_t> port;  // nil means "all ports" in the API; Skiff cannot use those
  bool operator==(const EndpointPort&) const = default;
};

// Conditions with the API's nil rules already applied: ready nil = true, serving nil = ready,
// terminating nil = false.
struct EndpointConditions {
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  bool operator==(const EndpointConditions&) const = default;
};

// 40 bytes: a million of them at 100,000 Services × 10 (endpoint_fields.h).
struct Endpoint {
  // IPs (typed by the slice's addressType) or FQDNs. Nearly always exactly one (the API says
  // they are fungible and kube-proxy uses only the first), kept as a parsed IP.
  // [[no_unique_address]]: `conditions` and `node_name` go in the addresses' tail padding
  // (7 bytes).
  [[no_unique_address]] EndpointAddresses addresses;
  EndpointConditions conditions;
  InternedId node_name;  // a million endpoints name a handful of nodes (interned.h)
  TargetRef target_ref;  // the pod, in real clusters; one pointer
  bool operator==(const Endpoint&) const = default;
};
static_assert(sizeof(Endpoint) == 40, "Endpoint grew: a million of them at 100,000 Services");

struct EndpointSlice {
  ObjectMeta metadata;  // metadata.labels[kServiceNameLabel] names the owning Service
  AddressType address_type = AddressType::kIpv4;
  std::vector<EndpointPort> ports;
  std::vector<Endpoint> endpoints;
  std::string service_name() const;
  bool operator==(const EndpointSlice&) const = default;
};

// ---- core/v1 Pod, Namespace, Node ----

struct ContainerPort {
  std::string name;
  uint16_t container_port = 0;
  Protocol protocol = Protocol::kTcp;
  bool operator==(const ContainerPort&) const = default;
};

struct Pod {
  ObjectMeta metadata;
  std::string node_name;
  std::string phase;  // Pending, Running, Succeeded, Failed, Unknown; "" when absent
  std::vector<IpAddr> pod_ips;
  std::vector<ContainerPort> container_ports;  // across all containers
  bool operator==(const Pod&) const = default;
};

struct Namespace {
  ObjectMeta metadata;
  bool operator==(const Namespace&) const = default;
};

struct NodeAddress {
  std::string type;  // InternalIP, ExternalIP, Hostname, ...
  std::string address;
  bool operator==(const NodeAddress&) const = default;
};

struct Node {
  ObjectMeta metadata;
  std::vector<NodeAddress> addresses;
  std::vector<Cidr> pod_cidrs;
  bool operator==(const Node&) const = default;
};

// ---- networking.k8s.io/v1 NetworkPolicy ----

enum class SelectorOperator : uint8_t { kIn, kNotIn, kExists, kDoesNotExist };

struct LabelSelectorRequirement {
  std::string key;
  SelectorOperator op = SelectorOperator::kIn;
  std::vector<std::string> values;
  bool operator==(const LabelSelectorRequirement&) const = default;
};

// An empty selector selects everything; an absent one (std::nullopt where optional) selects
// per the field's own rule, which is why fields that may be absent are optional.
struct LabelSelector {
  Labels match_labels;
  std::vector<LabelSelectorRequirement> match_expressions;
  bool Matches(const Labels& labels) const;
  bool operator==(const LabelSelector&) const = default;
};

struct IpBlock {
  Cidr cidr;
  std::vector<Cidr> except;
  bool operator==(const IpBlock&) const = default;
};

struct NetworkPolicyPeer {
  std::optional<LabelSelector> pod_selector;
  std::optional<LabelSelector> namespace_selector;
  std::optional<IpBlock> ip_block;
  bool operator==(const NetworkPolicyPeer&) const = default;
};

struct NetworkPolicyPort {
  Protocol protocol = Protocol::kTcp;
  std::optional<IntOrString> port;  // absent = every port
  std::optional<uint16_t> end_port;
  bool operator==(const NetworkPolicyPort&) const = default;
};

// An empty peers list matches every peer; an empty ports list matches every port.
struct NetworkPolicyRule {
  std::vector<NetworkPolicyPeer> peers;  // ingress[].from / egress[].to
  std::vector<NetworkPolicyPort> ports;
  bool operator==(const NetworkPolicyRule&) const = default;
};

enum class PolicyType : uint8_t { kIngress, kEgress };

struct NetworkPolicy {
  ObjectMeta metadata;
  LabelSelector pod_selector;
  // Defaulted as the API server does: Ingress always, Egress when egress rules are present.
  std::vector<PolicyType> policy_types;
  std::vector<NetworkPolicyRule> ingress;
  std::vector<NetworkPolicyRule> egress;
  bool operator==(const NetworkPolicy&) const = default;
};

// ---- identity of any object ----

enum class ObjectKind : uint8_t {
  kNamespace,
  kNode,
  kPod,
  kService,
  kEndpointSlice,
  kNetworkPolicy,
};

std::string KindName(ObjectKind kind);  // "Service", "EndpointSlice", ...

// The key of the store's maps and of the sources' bookkeeping: the namespace is interned
// (interned.h), 8 bytes instead of 32 in each of the ~3 copies of every key, and two keys of
// one namespace compare without a string compare.
struct NamespacedName {
  InternedString namespace_;  // empty for cluster-scoped kinds
  std::string name;
  auto operator<=>(const NamespacedName&) const = default;
  std::string ToString() const;  // "ns/name", or "name" when cluster-scoped
};

struct ObjectKey {
  ObjectKind kind = ObjectKind::kService;
  NamespacedName id;
  auto operator<=>(const ObjectKey&) const = default;
  std::string ToString() const;  // "Service default/web"
};

// An ObjectKey viewed in place (the name is not copied), ordered as ObjectKey: for indexes
// that key objects by the objects themselves (the manifest directory's sorted per-file lists)
// instead of keeping a 48-byte ObjectKey copy beside each. Valid while what it views lives.
struct ObjectKeyRef {
  ObjectKind kind = ObjectKind::kService;
  InternedString namespace_;
  std::string_view name;
  ObjectKeyRef(ObjectKind k, InternedString ns, std::string_view n)
      : kind(k), namespace_(ns), name(n) {}
  ObjectKeyRef(const ObjectKey& key)  // NOLINT: implicit, a view of the key
      : kind(key.kind), namespace_(key.id.namespace_), name(key.id.name) {}
  std::strong_ordering operator<=>(const ObjectKeyRef& o) const {
    if (kind != o.kind) return kind <=> o.kind;
    if (auto c = namespace_ <=> o.namespace_; c != 0) return c;
    return name <=> o.name;
  }
  bool operator==(const ObjectKeyRef& o) const {
    return kind == o.kind && namespace_ == o.namespace_ && name == o.name;
  }
  ObjectKey ToKey() const { return ObjectKey{kind, NamespacedName{namespace_, std::string(name)}}; }
};

using Object = std::variant<Namespace, Node, Pod, Service, EndpointSlice, NetworkPolicy>;

// An object as the store keeps it: immutable and shared, so the store, its snapshots and a
// source's own bookkeeping (the manifest directory's per-file objects) hold one copy between
// them instead of one each. Alternatives in the same order as Object's.
using SharedObject =
    std::variant<std::shared_ptr<const Namespace>, std::shared_ptr<const Node>,
                 std::shared_ptr<const Pod>, std::shared_ptr<const Service>,
                 std::shared_ptr<const EndpointSlice>, std::shared_ptr<const NetworkPolicy>>;

SharedObject Share(Object object);

ObjectKey KeyOf(const Object& object);
ObjectKey KeyOf(const SharedObject& object);
// The key of an object, viewing its name (valid while the object lives).
ObjectKeyRef KeyRefOf(const Object& object);
ObjectKeyRef KeyRefOf(const SharedObject& object);

std::string ProtocolName(Protocol protocol);  // "TCP", "UDP", "SCTP"

}  // namespace skiff::model
