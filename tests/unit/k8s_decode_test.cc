// The Kubernetes API's JSON decodes to exactly the objects the manifest path produces from the
// same object written as YAML (same defaults, same validation), and lists, watch events and
// Status objects are read as the API shapes them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/sources/kubernetes/api_objects.h"
#include "agent/sources/manifest_parse.h"

namespace skiff::sources::k8s {
namespace {

using ::testing::HasSubstr;

struct SameObjectCase {
  const char* name;
  model::ObjectKind kind;
  const char* yaml;  // as a user writes it in a manifest
  const char* json;  // as the API server returns it (defaults filled, server fields added)
};

const SameObjectCase kCases[] = {
    {"Service", model::ObjectKind::kService, R"(
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ports:
  - name: http
    port: 80
    targetPort: http
    nodePort: 30080
  - name: dns
    protocol: UDP
    port: 53
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  internalTrafficPolicy: Local
  externalIPs: [192.0.2.7]
status:
  loadBalancer:
    ingress: [{ip: 198.51.100.1}, {hostname: lb.example}]
)",
     R"({"kind":"Service","apiVersion":"v1","metadata":{"name":"web","namespace":"shop",
 "uid":"1f0","resourceVersion":"4711","creationTimestamp":"2024-01-01T00:00:00Z",
 "labels":{"app":"web"},"managedFields":[{"manager":"kubectl","operation":"Update",
 "fieldsType":"FieldsV1","fieldsV1":{"f:spec":{}}}]},
 "spec":{"ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":"http","nodePort":30080},
 {"name":"dns","protocol":"UDP","port":53,"targetPort":53}],"clusterIP":"10.96.0.10",
 "clusterIPs":["10.96.0.10"],"type":"LoadBalancer","externalIPs":["192.0.2.7"],
 "sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":600}},
 "ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","internalTrafficPolicy":"Local",
 "externalTrafficPolicy":"Cluster","allocateLoadBalancerNodePorts":true},
 "status":{"loadBalancer":{"ingress":[{"ip":"198.51.100.1"},{"hostname":"lb.example"}]}}})"},
    {"EndpointSlice", model::ObjectKind::kEndpointSlice, R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  namespace: shop
  labels:
    kubernetes.io/service-name: web
    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
addressType: IPv4
ports:
- {name: http, port: 8080}
- {name: dns, protocol: UDP, port: 5353}
endpoints:
- addresses: [10.244.1.5]
  nodeName: node-1
  targetRef: {kind: Pod, namespace: shop, name: web-1}
- addresses: [10.244.2.9]
  conditions: {ready: false, terminating: true}
)",
     R"({"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"web-abc12",
 "generateName":"web-","namespace":"shop","resourceVersion":"99","labels":{
 "endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io",
 "kubernetes.io/service-name":"web"}},"addressType":"IPv4",
 "endpoints":[{"addresses":["10.244.1.5"],"conditions":{},"nodeName":"node-1",
 "targetRef":{"kind":"Pod","namespace":"shop","name":"web-1","uid":"u1"}},
 {"addresses":["10.244.2.9"],"conditions":{"ready":false,"terminating":true}}],
 "ports":[{"name":"http","protocol":"TCP","port":8080},{"name":"dns","protocol":"UDP","port":5353}]})"},
    {"Pod", model::ObjectKind::kPod, R"(
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec:
  nodeName: node-1
  containers:
  - name: app
    ports: [{name: http, containerPort: 8080}, {containerPort: 5353, protocol: UDP}]
status:
  phase: Running
  podIP: 10.244.1.5
  podIPs: [{ip: 10.244.1.5}]
)",
     R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","namespace":"shop",
 "resourceVersion":"7","labels":{"app":"web"}},"spec":{"nodeName":"node-1","containers":[{
 "name":"app","image":"nginx","ports":[{"name":"http","containerPort":8080,"protocol":"TCP"},
 {"containerPort":5353,"protocol":"UDP"}],"resources":{}}],"restartPolicy":"Always"},
 "status":{"phase":"Running","hostIP":"192.168.0.10","podIP":"10.244.1.5",
 "podIPs":[{"ip":"10.244.1.5"}],"conditions":[{"type":"Ready","status":"True"}]}})"},
    {"Namespace", model::ObjectKind::kNamespace, R"(
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: a}}
)",
     R"({"kind":"Namespace","apiVersion":"v1","metadata":{"name":"shop","resourceVersion":"3",
 "labels":{"team":"a"}},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}})"},
    {"Node", model::ObjectKind::kNode, R"(
apiVersion: v1
kind: Node
metadata: {name: node-1}
spec: {podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24]}
status:
  addresses: [{type: InternalIP, address: 192.168.0.10}, {type: Hostname, address: node-1}]
)",
     R"({"kind":"Node","apiVersion":"v1","metadata":{"name":"node-1","resourceVersion":"5",
 "labels":{}},"spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24"]},"status":{
 "addresses":[{"type":"InternalIP","address":"192.168.0.10"},{"type":"Hostname",
 "address":"node-1"}],"nodeInfo":{"kubeletVersion":"v1.30.0"}}})"},
    {"NetworkPolicy", model::ObjectKind::kNetworkPolicy, R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [a]}]}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports: [{port: http}, {protocol: UDP, port: 5000, endPort: 5010}]
)",
     R"({"kind":"NetworkPolicy","apiVersion":"networking.k8s.io/v1","metadata":{
 "name":"allow-web","namespace":"shop","resourceVersion":"11"},"spec":{
 "podSelector":{"matchLabels":{"app":"web"}},"ingress":[{"from":[{"namespaceSelector":{
 "matchExpressions":[{"key":"team","operator":"In","values":["a"]}]}},{"ipBlock":{
 "cidr":"10.0.0.0/8","except":["10.1.0.0/16"]}}],"ports":[{"protocol":"TCP","port":"http"},
 {"protocol":"UDP","port":5000,"endPort":5010}]}],"policyTypes":["Ingress"]}})"},
};

class SameObjectTest : public ::testing::TestWithParam<SameObjectCase> {};

TEST_P(SameObjectTest, YamlManifestAndApiJsonDecodeToEqualObjects) {
  const SameObjectCase& c = GetParam();
  ManifestParseResult yaml = ParseManifestFile("case.yaml", c.yaml);
  ASSERT_TRUE(yaml.errors.empty()) << yaml.errors.front().ToString();
  ASSERT_EQ(yaml.objects.size(), 1u);

  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(c.json, strlen(c.json)).get(root), simdjson::SUCCESS);
  DecodedObject api = DecodeApiObject(ResourceFor(c.kind), root);
  ASSERT_TRUE(api.object.has_value()) << api.ErrorText();
  EXPECT_TRUE(*api.object == yaml.objects.front()) << c.name << " differs between YAML and JSON";
  ASSERT_TRUE(api.key.has_value());
  EXPECT_EQ(*api.key, model::KeyOf(yaml.objects.front()));
}

INSTANTIATE_TEST_SUITE_P(AllKinds, SameObjectTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ApiObjectsTest, InvalidFieldsAreReportedWithTheirPath) {
  constexpr char kBad[] =
      R"({"metadata":{"name":"web","namespace":"shop"},"spec":{"clusterIP":"10.96.0.10",
      "ports":[{"name":"a","port":70000},{"name":"b","port":80.5},{"name":"c","port":81,
      "targetPort":"8080"}]}})";
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(kBad, strlen(kBad)).get(root), simdjson::SUCCESS);
  DecodedObject d = DecodeApiObject(ResourceFor(model::ObjectKind::kService), root);
  EXPECT_FALSE(d.object.has_value());
  ASSERT_TRUE(d.key.has_value());
  EXPECT_THAT(d.ErrorText(), HasSubstr("Service shop/web: "));
  EXPECT_THAT(d.ErrorText(), HasSubstr("spec.ports[0].port: 70000 is out of range 1-65535"));
  EXPECT_THAT(d.ErrorText(), HasSubstr("spec.ports[1].port: expected an integer, got 80.5"));
  EXPECT_THAT(d.ErrorText(), HasSubstr("spec.ports[2].targetPort: \"8080\" is neither"));
}

TEST(ApiObjectsTest, ListPageCarriesResourceVersionContinueAndItems) {
  const std::string body =
      R"({"kind":"NamespaceList","apiVersion":"v1","metadata":{"resourceVersion":"812",
      "continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ","remainingItemCount":3},"items":[
      {"metadata":{"name":"a","resourceVersion":"5"}},{"metadata":{"name":"B!"}}]})";
  simdjson::dom::parser parser;
  absl::StatusOr<ListPage> page =
      DecodeListPage(ResourceFor(model::ObjectKind::kNamespace), parser, body);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->resource_version, "812");
  EXPECT_EQ(page->continue_token, "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ");
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_TRUE(page->items[0].object.has_value());
  EXPECT_EQ(page->items[0].resource_version, "5");
  EXPECT_FALSE(page->items[1].object.has_value());  // not a DNS label
  EXPECT_THAT(page->items[1].ErrorText(), HasSubstr("metadata.name"));

  EXPECT_FALSE(DecodeListPage(ResourceFor(model::ObjectKind::kNamespace), parser, "{").ok());
  absl::StatusOr<ListPage> status = DecodeListPage(
      ResourceFor(model::ObjectKind::kNamespace), parser,
      R"({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,
      "message":"namespaces is forbidden"})");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.status().message()), HasSubstr("403 Forbidden"));
}

TEST(ApiObjectsTest, WatchEventsOfEveryType) {
  simdjson::dom::parser parser;
  const ApiResource& svc = ResourceFor(model::ObjectKind::kService);
  absl::StatusOr<WatchEvent> ev = DecodeWatchEvent(
      svc, parser,
      R"({"type":"DELETED","object":{"kind":"Service","apiVersion":"v1","metadata":{"name":"web",
      "namespace":"shop","resourceVersion":"77"},"spec":{"clusterIP":"None"}}})");
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ(ev->type, WatchEventType::kDeleted);
  EXPECT_EQ(ev->object.resource_version, "77");
  EXPECT_EQ(ev->object.key->ToString(), "Service shop/web");

  ev = DecodeWatchEvent(svc, parser,
                        R"({"type":"BOOKMARK","object":{"kind":"Service","apiVersion":"v1",
                        "metadata":{"resourceVersion":"90"}}})");
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ(ev->type, WatchEventType::kBookmark);
  EXPECT_EQ(ev->object.resource_version, "90");

  ev = DecodeWatchEvent(svc, parser,
                        R"j({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1",
                        "metadata":{},"status":"Failure","message":"too old resource version: 1 (5)",
                        "reason":"Expired","code":410
}
})j");
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ(ev->type, WatchEventType::kError);
  EXPECT_EQ(ev->status.code, 410);
  EXPECT_EQ(ev->status.ToString(), "410 Expired: too old resource version: 1 (5)");

  EXPECT_FALSE(DecodeWatchEvent(svc, parser, R"({"type":"ADDED","object":{"metadata":{"na)").ok());
  EXPECT_FALSE(DecodeWatchEvent(svc, parser, R"({"type":"SURPRISE","object":{}})").ok());
  EXPECT_FALSE(DecodeWatchEvent(svc, parser, R"({"type":"ADDED"})").ok());
}

}  // namespace
}  // namespace skiff::sources::k8s
