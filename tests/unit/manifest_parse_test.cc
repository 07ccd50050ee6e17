// ParseManifestFile: document shapes (multi-document YAML, JSON, List), API defaults, and
// that every validation error names the file, the object and the field.
#include "agent/sources/manifest_parse.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace skiff::sources {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::string> Errors(const ManifestParseResult& r) {
  std::vector<std::string> out;
  for (const ManifestError& e : r.errors) out.push_back(e.ToString());
  return out;
}

template <typename T>
const T& Only(const ManifestParseResult& r) {
  EXPECT_THAT(Errors(r), IsEmpty());
  static const T kEmpty{};
  if (r.objects.size() != 1 || !std::holds_alternative<T>(r.objects[0])) {
    ADD_FAILURE() << "expected exactly one object of the kind, got " << r.objects.size();
    return kEmpty;
  }
  return std::get<T>(r.objects[0]);
}

constexpr char kEchoService[] = R"(
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: demo
  labels: {app: echo}
  annotations: {note: hi}
spec:
  clusterIP: 10.96.0.10
  ports:
  - name: http
    port: 80
    targetPort: http
  - name: dns
    protocol: UDP
    port: 53
    targetPort: 5353
)";

TEST(ParseManifest, ServiceWithDefaults) {
  ManifestParseResult r = ParseManifestFile("x/svc.yaml", kEchoService);
  const auto& svc = Only<model::Service>(r);
  EXPECT_EQ(svc.metadata.namespace_, "demo");
  EXPECT_EQ(svc.metadata.labels.at("app"), "echo");
  EXPECT_EQ(svc.spec.type, model::ServiceType::kClusterIp);
  ASSERT_EQ(svc.spec.cluster_ips.size(), 1u);
  EXPECT_EQ(svc.spec.cluster_ips[0].ToString(), "10.96.0.10");
  ASSERT_EQ(svc.spec.ip_families.size(), 1u);
  EXPECT_EQ(svc.spec.ip_families[0], model::IpFamily::kIpv4);
  ASSERT_EQ(svc.spec.ports.size(), 2u);
  EXPECT_EQ(svc.spec.ports[0].protocol, model::Protocol::kTcp);
  EXPECT_TRUE(svc.spec.ports[0].target_port.is_name());
  EXPECT_EQ(svc.spec.ports[0].target_port.name(), "http");
  EXPECT_EQ(svc.spec.ports[1].protocol, model::Protocol::kUdp);
  EXPECT_EQ(svc.spec.ports[1].target_port.number(), 5353);
  EXPECT_FALSE(svc.spec.session_affinity_client_ip);
  EXPECT_EQ(svc.spec.session_affinity_timeout_s, 10800u);
  EXPECT_EQ(svc.spec.internal_traffic_policy, model::TrafficPolicy::kCluster);
}

TEST(ParseManifest, ServiceOptionalFields) {
  ManifestParseResult r = ParseManifestFile("svc.yaml", R"(
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  clusterIPs: [10.96.0.11]
  ports: [{port: 443}]
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  internalTrafficPolicy: Local
  externalTrafficPolicy: Local
  externalIPs: [192.0.2.1]
  loadBalancerSourceRanges: [203.0.113.0/24]
  healthCheckNodePort: 32000
status:
  loadBalancer:
    ingress: [{ip: 198.51.100.1}, {hostname: lb.example.com}]
)");
  const auto& svc = Only<model::Service>(r);
  EXPECT_EQ(svc.metadata.namespace_, "default");
  EXPECT_EQ(svc.spec.type, model::ServiceType::kLoadBalancer);
  EXPECT_EQ(svc.spec.ports[0].target_port.number(), 443);  // defaults to port
  EXPECT_TRUE(svc.spec.session_affinity_client_ip);
  EXPECT_EQ(svc.spec.session_affinity_timeout_s, 60u);
  EXPECT_EQ(svc.spec.internal_traffic_policy, model::TrafficPolicy::kLocal);
  EXPECT_EQ(svc.spec.external_traffic_policy, model::TrafficPolicy::kLocal);
  ASSERT_EQ(svc.spec.external_ips.size(), 1u);
  EXPECT_EQ(svc.spec.load_balancer_source_ranges[0].ToString(), "203.0.113.0/24");
  EXPECT_EQ(svc.spec.health_check_node_port, 32000);
  ASSERT_EQ(svc.load_balancer_ingress_ips.size(), 1u);
  EXPECT_EQ(svc.load_balancer_ingress_ips[0].ToString(), "198.51.100.1");
}

TEST(ParseManifest, HeadlessAndExternalName) {
  ManifestParseResult r = ParseManifestFile("svc.yaml", R"(
apiVersion: v1
kind: Service
metadata: {name: h}
spec: {clusterIP: None}
---
apiVersion: v1
kind: Service
metadata: {name: e}
spec: {type: ExternalName, externalName: example.com}
)");
  EXPECT_THAT(Errors(r), IsEmpty());
  ASSERT_EQ(r.objects.size(), 2u);
  EXPECT_TRUE(std::get<model::Service>(r.objects[0]).spec.headless);
  EXPECT_EQ(std::get<model::Service>(r.objects[1]).spec.external_name, "example.com");
}

TEST(ParseManifest, EndpointSliceConditionsUseApiNilRules) {
  ManifestParseResult r = ParseManifestFile("eps.yaml", R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo-1
  namespace: demo
  labels: {kubernetes.io/service-name: echo}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: dns, protocol: UDP, port: 5353}]
endpoints:
- addresses: [10.244.1.11]
  nodeName: node-a
  targetRef: {kind: Pod, name: echo-a}
- addresses: [10.244.1.12]
  conditions: {ready: false}
- addresses: [10.244.1.13]
  conditions: {ready: false, serving: true, terminating: true}
- addresses: [10.244.1.14]
  conditions: {ready: null}
)");
  const auto& slice = Only<model::EndpointSlice>(r);
  EXPECT_EQ(slice.service_name(), "echo");
  EXPECT_EQ(slice.address_type, model::AddressType::kIpv4);
  ASSERT_EQ(slice.ports.size(), 2u);
  EXPECT_EQ(slice.ports[1].protocol, model::Protocol::kUdp);
  EXPECT_EQ(slice.ports[1].port, 5353);
  ASSERT_EQ(slice.endpoints.size(), 4u);
  const auto& c = [&](int i) { return slice.endpoints[i].conditions; };
  EXPECT_EQ(c(0), (model::EndpointConditions{true, true, false}));
  EXPECT_EQ(c(1), (model::EndpointConditions{false, false, false}));
  EXPECT_EQ(c(2), (model::EndpointConditions{false, true, true}));
  EXPECT_EQ(c(3), (model::EndpointConditions{true, true, false}));
  EXPECT_EQ(slice.endpoints[0].node_name, "node-a");
  ASSERT_TRUE(slice.endpoints[0].target_ref);
  EXPECT_EQ(slice.endpoints[0].target_ref->name, "echo-a");
}

TEST(ParseManifest, ListJsonAndIgnoredKinds) {
  ManifestParseResult r = ParseManifestFile("all.json", R"({
  "apiVersion": "v1", "kind": "List",
  "items": [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "labels": {"team": "a"}}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "j", "namespace": "demo"},
     "spec": {"clusterIP": "10.96.0.12", "ports": [{"port": 80, "targetPort": "web"}]}},
    {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"},
     "spec": {"podCIDRs": ["10.244.1.0/24"]},
     "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.10"}]}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "demo",
     "labels": {"app": "echo"}},
     "spec": {"nodeName": "node-a", "containers": [{"name": "c",
       "ports": [{"name": "http", "containerPort": 8080}]}]},
     "status": {"phase": "Running", "podIPs": [{"ip": "10.244.1.11"}]}}
  ]})");
  EXPECT_THAT(Errors(r), IsEmpty());
  EXPECT_EQ(r.ignored_documents, 1u);
  ASSERT_EQ(r.objects.size(), 4u);
  EXPECT_EQ(std::get<model::Namespace>(r.objects[0]).metadata.labels.at("team"), "a");
  const auto& svc = std::get<model::Service>(r.objects[1]);
  EXPECT_EQ(svc.spec.ports[0].target_port.name(), "web");
  const auto& node = std::get<model::Node>(r.objects[2]);
  EXPECT_EQ(node.pod_cidrs[0].ToString(), "10.244.1.0/24");
  EXPECT_EQ(node.addresses[0].address, "192.168.1.10");
  const auto& pod = std::get<model::Pod>(r.objects[3]);
  EXPECT_EQ(pod.phase, "Running");
  EXPECT_EQ(pod.node_name, "node-a");
  EXPECT_EQ(pod.pod_ips[0].ToString(), "10.244.1.11");
  EXPECT_EQ(pod.container_ports[0].name, "http");
  EXPECT_EQ(pod.container_ports[0].container_port, 8080);
}

TEST(ParseManifest, QuotedNumericTargetPortIsAName) {
  // As in the API, "8080" (a string) is a port name, and not a valid one.
  ManifestParseResult r = ParseManifestFile("q.yaml", R"(
apiVersion: v1
kind: Service
metadata: {name: q}
spec: {clusterIP: 10.96.0.13, ports: [{port: 80, targetPort: "8080"}]}
)");
  EXPECT_THAT(Errors(r), ElementsAre(HasSubstr(
                             "q.yaml: Service default/q: spec.ports[0].targetPort: \"8080\" is "
                             "neither a port number nor a valid port name")));
}

TEST(ParseManifest, NetworkPolicyFullSpec) {
  ManifestParseResult r = ParseManifestFile("np.yaml", R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-web, namespace: demo}
spec:
  podSelector:
    matchLabels: {app: web}
    matchExpressions: [{key: tier, operator: In, values: [front]}]
  ingress:
  - from:
    - podSelector: {}
      namespaceSelector: {matchLabels: {team: a}}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports:
    - {port: 80}
    - {protocol: UDP, port: 5000, endPort: 5010}
    - {port: http}
  egress:
  - to: [{namespaceSelector: {}}]
)");
  const auto& np = Only<model::NetworkPolicy>(r);
  EXPECT_EQ(np.pod_selector.match_labels.at("app"), "web");
  ASSERT_EQ(np.pod_selector.match_expressions.size(), 1u);
  EXPECT_EQ(np.pod_selector.match_expressions[0].op, model::SelectorOperator::kIn);
  // Egress rules present and no policyTypes: the API defaults to both.
  EXPECT_THAT(np.policy_types,
              ElementsAre(model::PolicyType::kIngress, model::PolicyType::kEgress));
  ASSERT_EQ(np.ingress.size(), 1u);
  const auto& peers = np.ingress[0].peers;
  ASSERT_EQ(peers.size(), 2u);
  ASSERT_TRUE(peers[0].pod_selector);  // present but empty: all pods
  EXPECT_TRUE(peers[0].pod_selector->match_labels.empty());
  EXPECT_EQ(peers[0].namespace_selector->match_labels.at("team"), "a");
  EXPECT_FALSE(peers[1].pod_selector);
  EXPECT_EQ(peers[1].ip_block->cidr.ToString(), "10.0.0.0/8");
  EXPECT_EQ(peers[1].ip_block->except[0].ToString(), "10.1.0.0/16");
  const auto& ports = np.ingress[0].ports;
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(ports[0].port->number(), 80);
  EXPECT_EQ(ports[1].protocol, model::Protocol::kUdp);
  EXPECT_EQ(ports[1].end_port, 5010);
  EXPECT_EQ(ports[2].port->name(), "http");
  ASSERT_EQ(np.egress.size(), 1u);
  EXPECT_FALSE(np.egress[0].peers[0].pod_selector);
  EXPECT_TRUE(np.egress[0].peers[0].namespace_selector);
}

TEST(ParseManifest, NetworkPolicyDefaultsToIngressOnly) {
  ManifestParseResult r = ParseManifestFile("np.yaml", R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all}
spec: {podSelector: {}}
)");
  const auto& np = Only<model::NetworkPolicy>(r);
  EXPECT_THAT(np.policy_types, ElementsAre(model::PolicyType::kIngress));
  EXPECT_TRUE(np.ingress.empty());
}

TEST(ParseManifest, EmptyDocumentsAndCommentsAreFine) {
  ManifestParseResult r = ParseManifestFile("e.yaml", "# nothing\n---\n---\n");
  EXPECT_THAT(Errors(r), IsEmpty());
  EXPECT_TRUE(r.objects.empty());
  EXPECT_FALSE(r.file_failed);
}

// Annotations are not kept in the model, but a malformed one is still an error.
TEST(ParseManifest, AnnotationsAreValidated) {
  ManifestParseResult r = ParseManifestFile("a/ns.yaml", R"(
apiVersion: v1
kind: Namespace
metadata: {name: team, annotations: {note: hi, owner: {name: x}}}
)");
  EXPECT_THAT(Errors(r), ElementsAre("a/ns.yaml: Namespace team: metadata.annotations[owner]: "
                                     "expected a string, got a mapping"));
  EXPECT_TRUE(r.objects.empty());
}

// The one annotation kept: service.skiff.io/lb-algorithm, raw (compute.cc judges the value).
TEST(ParseManifest, ServiceLbAlgorithmAnnotationIsKept) {
  EXPECT_EQ(Only<model::Service>(ParseManifestFile("x/svc.yaml", kEchoService)).lb_algorithm, "");
  ManifestParseResult r = ParseManifestFile("a/svc.yaml", R"(
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  annotations: {note: hi, service.skiff.io/lb-algorithm: maglev}
spec:
  clusterIP: 10.96.0.14
  ports: [{port: 80}]
)");
  EXPECT_EQ(Only<model::Service>(r).lb_algorithm, "maglev");
}

TEST(ParseManifest, BadObjectIsSkippedOthersKept) {
  ManifestParseResult r = ParseManifestFile("examples/bad.yaml", R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.14
  ports: [{port: 70000}]
---
apiVersion: v1
kind: Namespace
metadata: {name: good}
)");
  EXPECT_THAT(Errors(r), ElementsAre("examples/bad.yaml: Service default/web: spec.ports[0].port: "
                                     "70000 is out of range 1-65535"));
  ASSERT_EQ(r.objects.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<model::Namespace>(r.objects[0]));
  ASSERT_TRUE(r.errors[0].key);
  EXPECT_EQ(r.errors[0].key->ToString(), "Service default/web");
  EXPECT_FALSE(r.file_failed);
}

TEST(ParseManifest, SyntaxErrorFailsTheWholeFile) {
  ManifestParseResult r =
      ParseManifestFile("d/broken.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: [x\n");
  EXPECT_TRUE(r.file_failed);
  EXPECT_TRUE(r.objects.empty());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0].ToString(), HasSubstr("d/broken.yaml: line "));
}

struct BadCase {
  const char* name;
  const char* yaml;
  const char* error;  // the exact message, file and object included
};

class ValidationTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ValidationTest, NamesFileObjectAndField) {
  ManifestParseResult r = ParseManifestFile("m/f.yaml", GetParam().yaml);
  EXPECT_TRUE(r.objects.empty());
  EXPECT_THAT(Errors(r), ElementsAre(GetParam().error));
}

#define SVC(spec) "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: ns}\nspec: " spec
#define EPS(body)                                                                             \
  "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, namespace: " \
  "ns}\n" body
#define NP(spec)                                                                            \
  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: " \
  "ns}\nspec: " spec

INSTANTIATE_TEST_SUITE_P(
    Errors, ValidationTest,
    ::testing::Values(
        BadCase{"PortOutOfRange", SVC("{clusterIP: 10.96.0.1, ports: [{port: 70000}]}"),
                "m/f.yaml: Service ns/web: spec.ports[0].port: 70000 is out of range 1-65535"},
        BadCase{"PortMissing", SVC("{clusterIP: 10.96.0.1, ports: [{name: a}]}"),
                "m/f.yaml: Service ns/web: spec.ports[0].port: is required"},
        BadCase{"PortNotANumber", SVC("{clusterIP: 10.96.0.1, ports: [{port: eighty}]}"),
                "m/f.yaml: Service ns/web: spec.ports[0].port: expected an integer, got eighty"},
        BadCase{"UnknownProtocol",
                SVC("{clusterIP: 10.96.0.1, ports: [{port: 80, protocol: ICMP}]}"),
                "m/f.yaml: Service ns/web: spec.ports[0].protocol: unknown protocol \"ICMP\" "
                "(want TCP, UDP or SCTP)"},
        BadCase{"BadClusterIp", SVC("{clusterIP: 10.96.0.300, ports: [{port: 80}]}"),
                "m/f.yaml: Service ns/web: spec.clusterIP: \"10.96.0.300\" is not a valid IP "
                "address"},
        BadCase{"BadExternalIp",
                SVC("{clusterIP: 10.96.0.1, ports: [{port: 80}], externalIPs: [1.2.3]}"),
                "m/f.yaml: Service ns/web: spec.externalIPs[0]: \"1.2.3\" is not a valid IP "
                "address"},
        BadCase{"TargetPortRange",
                SVC("{clusterIP: 10.96.0.1, ports: [{port: 80, targetPort: 0}]}"),
                "m/f.yaml: Service ns/web: spec.ports[0].targetPort: 0 is out of range 1-65535"},
        BadCase{"UnnamedMultiPort",
                SVC("{clusterIP: 10.96.0.1, ports: [{name: a, port: 80}, {port: 81}]}"),
                "m/f.yaml: Service ns/web: spec.ports[1].name: is required when a Service has "
                "more than one port"},
        BadCase{"DuplicatePortName",
                SVC("{clusterIP: 10.96.0.1, ports: [{name: a, port: 80}, {name: a, port: 81}]}"),
                "m/f.yaml: Service ns/web: spec.ports[1].name: duplicate port name \"a\""},
        BadCase{"NoPorts", SVC("{clusterIP: 10.96.0.1}"),
                "m/f.yaml: Service ns/web: spec.ports: at least one port is required"},
        BadCase{"UnknownType", SVC("{type: Magic, clusterIP: 10.96.0.1, ports: [{port: 80}]}"),
                "m/f.yaml: Service ns/web: spec.type: unknown value \"Magic\" (want ClusterIP, "
                "NodePort, LoadBalancer, ExternalName)"},
        BadCase{"AffinityTimeout",
                SVC("{clusterIP: 10.96.0.1, ports: [{port: 80}], sessionAffinity: ClientIP, "
                    "sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}}"),
                "m/f.yaml: Service ns/web: spec.sessionAffinityConfig.clientIP.timeoutSeconds: "
                "0 is out of range 1-86400"},
        BadCase{"TrafficPolicy",
                SVC("{clusterIP: 10.96.0.1, ports: [{port: 80}], internalTrafficPolicy: Near}"),
                "m/f.yaml: Service ns/web: spec.internalTrafficPolicy: unknown value \"Near\" "
                "(want Cluster, Local)"},
        BadCase{"ClusterIpsMismatch",
                SVC("{clusterIP: 10.96.0.1, clusterIPs: [10.96.0.2], ports: [{port: 80}]}"),
                "m/f.yaml: Service ns/web: spec.clusterIPs[0]: 10.96.0.2 does not match "
                "spec.clusterIP 10.96.0.1"},
        BadCase{"MissingName",
                "apiVersion: v1\nkind: Service\nmetadata: {namespace: ns}\nspec: {ports: "
                "[{port: 80}]}",
                "m/f.yaml: document 1 (Service): metadata.name: is required"},
        BadCase{"BadName",
                "apiVersion: v1\nkind: Service\nmetadata: {name: Web_1}\nspec: {ports: [{port: "
                "80}]}",
                "m/f.yaml: Service default/Web_1: metadata.name: \"Web_1\" is not a valid name "
                "(lowercase letters, digits and '-', at most 63)"},
        BadCase{"MissingKind", "apiVersion: v1\nmetadata: {name: x}\n",
                "m/f.yaml: document 1: kind: is required"},
        BadCase{"NotAMapping", "- a\n- b\n",
                "m/f.yaml: document 1: expected a Kubernetes object (a mapping with apiVersion "
                "and kind)"},
        BadCase{"WrongApiVersion",
                "apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: "
                "e}\naddressType: IPv4\n",
                "m/f.yaml: EndpointSlice default/e: apiVersion: \"discovery.k8s.io/v1beta1\" is "
                "not supported for EndpointSlice (want discovery.k8s.io/v1)"},
        BadCase{"SliceAddressFamily", EPS("addressType: IPv4\nendpoints: [{addresses: [fd00::1]}]"),
                "m/f.yaml: EndpointSlice ns/web-1: endpoints[0].addresses[0]: \"fd00::1\" is "
                "not a valid IPv4 address"},
        BadCase{"SliceAddressTypeMissing", EPS("endpoints: []"),
                "m/f.yaml: EndpointSlice ns/web-1: addressType: is required"},
        BadCase{"SlicePortRange", EPS("addressType: IPv4\nports: [{name: http, port: 65536}]"),
                "m/f.yaml: EndpointSlice ns/web-1: ports[0].port: 65536 is out of range "
                "1-65535"},
        BadCase{"SliceCondition",
                EPS("addressType: IPv4\nendpoints: [{addresses: [10.244.1.1], conditions: "
                    "{ready: maybe}}]"),
                "m/f.yaml: EndpointSlice ns/web-1: endpoints[0].conditions.ready: expected "
                "true or false, got maybe"},
        BadCase{"SliceNoAddresses", EPS("addressType: IPv4\nendpoints: [{nodeName: n}]"),
                "m/f.yaml: EndpointSlice ns/web-1: endpoints[0].addresses: at least one "
                "address is required"},
        BadCase{"PolicyOperator",
                NP("{podSelector: {matchExpressions: [{key: a, operator: Near, values: [x]}]}}"),
                "m/f.yaml: NetworkPolicy ns/np: spec.podSelector.matchExpressions[0].operator: "
                "unknown value \"Near\" (want In, NotIn, Exists, DoesNotExist)"},
        BadCase{"PolicyIpBlock",
                NP("{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}]}"),
                "m/f.yaml: NetworkPolicy ns/np: spec.ingress[0].from[0].ipBlock.cidr: "
                "\"10.0.0.0/33\" is not a valid CIDR (e.g. 10.0.0.0/8)"},
        BadCase{"PolicyExceptOutside",
                NP("{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: "
                   "[192.168.0.0/16]}}]}]}"),
                "m/f.yaml: NetworkPolicy ns/np: spec.egress[0].to[0].ipBlock.except[0]: "
                "192.168.0.0/16 is not inside 10.0.0.0/8"},
        BadCase{"PolicyEndPort",
                NP("{podSelector: {}, ingress: [{ports: [{port: 90, endPort: 80}]}]}"),
                "m/f.yaml: NetworkPolicy ns/np: spec.ingress[0].ports[0].endPort: 80 is below "
                "port 90"},
        BadCase{"PolicyPodSelectorMissing", NP("{ingress: []}"),
                "m/f.yaml: NetworkPolicy ns/np: spec.podSelector: is required ({} selects all "
                "pods)"},
        BadCase{"PodPortRange",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, "
                "ports: [{containerPort: 0}]}]}",
                "m/f.yaml: Pod default/p: spec.containers[0].ports[0].containerPort: 0 is out "
                "of range 1-65535"},
        BadCase{"NodePodCidr",
                "apiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec: {podCIDRs: [10.244.1.0]}",
                "m/f.yaml: Node n: spec.podCIDRs[0]: \"10.244.1.0\" is not a valid CIDR (e.g. "
                "10.0.0.0/8)"},
        BadCase{"ListItem",
                "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: apps/v1, kind: Deployment, "
                "metadata: {name: ignored}}\n- {apiVersion: v1, kind: Service, metadata: {}}\n",
                "m/f.yaml: document 1 items[1] (Service): metadata.name: is required"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return std::string(info.param.name); });

TEST(ParseManifest, ListItemErrorKeepsOtherItems) {
  ManifestParseResult r = ParseManifestFile(
      "l.yaml",
      "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: "
      "ok}}\n- {apiVersion: v1, kind: Service, metadata: {}}\n");
  ASSERT_EQ(r.objects.size(), 1u);
  EXPECT_EQ(model::KeyOf(r.objects[0]).ToString(), "Namespace ok");
}

// Each List item's field paths are given back when the item is decoded (FieldPath::Scope);
// errors in later items still name their exact fields.
TEST(ParseManifest, JsonListErrorsInSeveralItemsNameTheirFields) {
  std::string items;
  for (int i = 0; i < 50; ++i) {
    absl::StrAppend(&items, R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s)", i,
                    R"(","namespace":"n"},"spec":{"clusterIP":"10.96.0.)", i + 1,
                    R"(","ports":[{"name":"a","port":80},{"name":"b","port":)",
                    i == 7 || i == 42 ? 70000 + i : 81, "}]}},");
  }
  items += R"({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"e",)"
           R"("namespace":"n"},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1"]},)"
           R"({"addresses":["10.0.0.2"],"conditions":{"ready":"yes"}}]})";
  ManifestParseResult r = ParseManifestFile(
      "l.json", absl::StrCat(R"({"apiVersion":"v1","kind":"List","items":[)", items, "]}"));
  EXPECT_EQ(r.objects.size(), 48u);
  EXPECT_THAT(
      Errors(r),
      ElementsAre("l.json: Service n/s7: spec.ports[1].port: 70007 is out of range 1-65535",
                  "l.json: Service n/s42: spec.ports[1].port: 70042 is out of range 1-65535",
                  "l.json: EndpointSlice n/e: endpoints[1].conditions.ready: expected true "
                  "or false, got \"yes\""));
}

TEST(ParseManifest, SeveralBadFieldsAreAllReported) {
  ManifestParseResult r =
      ParseManifestFile("f.yaml", SVC("{clusterIP: bogus, ports: [{port: 0, protocol: XTP}]}"));
  EXPECT_THAT(Errors(r), ElementsAre(HasSubstr("spec.clusterIP: \"bogus\""),
                                     HasSubstr("spec.ports[0].protocol: unknown protocol \"XTP\""),
                                     HasSubstr("spec.ports[0].port: 0 is out of range")));
}

// The libyaml tree: aliases resolve to their anchor, plain null spellings are absent fields,
// quoting survives (a quoted number is a port name).
TEST(ParseManifest, YamlAliasesNullsAndQuoting) {
  ManifestParseResult r = ParseManifestFile("a.yaml", R"(
apiVersion: v1
kind: Service
metadata: {name: a, namespace: ~, labels: &l {app: web, tier: null}}
spec:
  clusterIP: 10.96.0.40
  sessionAffinity: null
  selector: *l
  ports:
  - {name: x, port: 80, targetPort: "http"}
  - {name: y, port: 81, targetPort: 8081}
)");
  const auto& svc = Only<model::Service>(r);
  EXPECT_EQ(svc.metadata.namespace_, "default");
  EXPECT_EQ(svc.metadata.labels.at("app"), "web");
  EXPECT_EQ(svc.metadata.labels.at("tier"), "");
  EXPECT_FALSE(svc.spec.session_affinity_client_ip);
  ASSERT_EQ(svc.spec.ports.size(), 2u);
  EXPECT_EQ(svc.spec.ports[0].target_port.name(), "http");
  EXPECT_EQ(svc.spec.ports[1].target_port, model::IntOrString{int32_t{8081}});
}

TEST(ParseManifest, UnknownAliasFailsTheFile) {
  ManifestParseResult r = ParseManifestFile("a.yaml", "apiVersion: v1\nkind: *nope\n");
  EXPECT_TRUE(r.file_failed);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0].ToString(), HasSubstr("a.yaml: line "));
}

// A .json manifest goes through simdjson; its errors name fields exactly as YAML's do.
TEST(ParseManifest, JsonManifestErrorsNameTheField) {
  ManifestParseResult r =
      ParseManifestFile("m/f.json",
                        R"({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "j"},
          "spec": {"clusterIP": "10.96.0.41", "ports": [{"name": "a", "port": 80},
                   {"name": "b", "port": 70000, "targetPort": 80.5}]}})");
  EXPECT_THAT(Errors(r),
              ElementsAre("m/f.json: Service default/j: spec.ports[1].port: 70000 is out of "
                          "range 1-65535",
                          HasSubstr("spec.ports[1].targetPort: ")));
  EXPECT_TRUE(r.objects.empty());
}

// Several concatenated JSON objects are not one JSON document: read as YAML (its superset).
TEST(ParseManifest, JsonFileSimdjsonRefusesIsReadAsYaml) {
  ManifestParseResult r = ParseManifestFile(
      "two.json",
      "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"a\"}}\n---\n"
      "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"b\"}}\n");
  EXPECT_THAT(Errors(r), IsEmpty());
  EXPECT_EQ(r.objects.size(), 2u);
}

// A nine-segment path (the deepest the decoders read) is reported whole.
TEST(ParseManifest, DeepPathIsReportedWhole) {
  ManifestParseResult r = ParseManifestFile("p.yaml", R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector:
        matchExpressions:
        - {key: a, operator: In, values: [[x]]}
)");
  EXPECT_THAT(Errors(r),
              Contains(HasSubstr("spec.ingress[0].from[0].podSelector.matchExpressions[0]."
                                 "values[0]: expected a string, got a list")));
}

TEST(ManifestFileName, Extensions) {
  EXPECT_TRUE(IsManifestFileName("a.yaml"));
  EXPECT_TRUE(IsManifestFileName("a.yml"));
  EXPECT_TRUE(IsManifestFileName("a.json"));
  EXPECT_FALSE(IsManifestFileName("a.yaml.swp"));
  EXPECT_FALSE(IsManifestFileName(".a.yaml"));
  EXPECT_FALSE(IsManifestFileName("..data"));
  EXPECT_FALSE(IsManifestFileName("README.md"));
}

}  // namespace
}  // namespace skiff::sources
