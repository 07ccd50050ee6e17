// Model -> desired state: every selection rule kube-proxy applies, on hand-built objects.
#include "agent/model/compute.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace skiff::model {
namespace {

IpAddr Ip(const std::string& s) {
  std::optional<IpAddr> ip = IpAddr::Parse(s);
  EXPECT_TRUE(ip.has_value()) << s;
  return ip.value_or(IpAddr{});
}

FrontendKey Key(const std::string& vip, uint16_t port, Protocol proto = Protocol::kTcp) {
  return FrontendKey{Ip(vip), port, proto};
}

Service MakeService(const std::string& name, const std::string& cluster_ip,
                    std::vector<ServicePort> ports) {
  Service svc;
  svc.metadata.namespace_ = "demo";
  svc.metadata.name = name;
  if (cluster_ip == "None") {
    svc.spec.headless = true;
  } else if (!cluster_ip.empty()) {
    svc.spec.cluster_ips.push_back(Ip(cluster_ip));
  }
  svc.spec.ports = std::move(ports);
  return svc;
}

ServicePort Port(const std::string& name, uint16_t port, IntOrString target,
                 Protocol proto = Protocol::kTcp) {
  return ServicePort{name, proto, port, std::move(target), 0};
}

struct Ep {
  std::string ip;
  std::optional<bool> ready, serving, terminating;  // nil as in the API
  std::string node = "";
  std::string pod = "";
};

EndpointSlice MakeSlice(const std::string& name, const std::string& service,
                        std::vector<EndpointPort> ports, const std::vector<Ep>& eps) {
  EndpointSlice slice;
  slice.metadata.namespace_ = "demo";
  slice.metadata.name = name;
  slice.metadata.labels[kServiceNameLabel] = service;
  slice.ports = std::move(ports);
  for (const Ep& e : eps) {
    Endpoint ep;
    ep.addresses = {e.ip};
    // Mirrors the decoder's nil rules, which manifest tests check separately.
    ep.conditions.ready = e.ready.value_or(true);
    ep.conditions.serving = e.serving.value_or(ep.conditions.ready);
    ep.conditions.terminating = e.terminating.value_or(false);
    ep.node_name = e.node;
    if (!e.pod.empty()) ep.target_ref = ObjectReference{"Pod", "", e.pod};
    slice.endpoints.push_back(std::move(ep));
  }
  return slice;
}

class ComputeTest : public ::testing::Test {
 protected:
  void Add(Object o) { store_.Upsert(std::move(o)); }
  DesiredState Compute(const std::string& node = "node-a") {
    warnings_.clear();
    return ComputeDesiredState(store_, node, &warnings_);
  }
  const Frontend& Get(const DesiredState& s, const FrontendKey& k) {
    auto it = s.frontends.find(k);
    EXPECT_NE(it, s.frontends.end()) << k.vip.ToString() << ":" << k.port;
    static const Frontend kNone;
    return it == s.frontends.end() ? kNone : it->second;
  }
  static std::vector<std::string> Addrs(const Frontend& fe) {
    std::vector<std::string> out;
    for (const Backend& b : fe.backends) {
      out.push_back(b.ip.ToString() + ":" + std::to_string(b.port) +
                    (b.state == BackendState::kTerminating ? " term" : ""));
    }
    return out;
  }

  ObjectStore store_;
  std::vector<std::string> warnings_;
};

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST_F(ComputeTest, ClusterIpFrontendPerPortWithSortedBackends) {
  Add(MakeService(
      "echo", "10.96.0.10",
      {Port("http", 80, IntOrString{"http"}), Port("dns", 53, IntOrString{5353}, Protocol::kUdp)}));
  Add(MakeSlice(
      "echo-1", "echo", {{"http", Protocol::kTcp, 8080}, {"dns", Protocol::kUdp, 5353}},
      {{"10.244.1.13"}, {"10.244.1.11", {}, {}, {}, "node-a", "echo-a"}, {"10.244.1.12"}}));
  DesiredState s = Compute();
  ASSERT_EQ(s.frontends.size(), 2u);
  const Frontend& http = Get(s, Key("10.96.0.10", 80));
  EXPECT_EQ(http.kind, FrontendKind::kClusterIp);
  EXPECT_EQ(http.service, "demo/echo");
  EXPECT_EQ(http.port_name, "http");
  EXPECT_THAT(Addrs(http), ElementsAre("10.244.1.11:8080", "10.244.1.12:8080", "10.244.1.13:8080"));
  EXPECT_TRUE(http.backends[0].node_local);
  EXPECT_FALSE(http.backends[1].node_local);
  const ObjectSnapshot snap = store_.Snapshot();
  // The targetRef's namespace defaults to the slice's.
  EXPECT_THAT(BackendPods(snap).Of(http), ElementsAre("demo/echo-a", "", ""));
  EXPECT_THAT(Addrs(Get(s, Key("10.96.0.10", 53, Protocol::kUdp))),
              ElementsAre("10.244.1.11:5353", "10.244.1.12:5353", "10.244.1.13:5353"));
  EXPECT_THAT(warnings_, IsEmpty());
}

TEST_F(ComputeTest, NamedTargetPortResolvesThroughSlicePortNameAndProtocol) {
  // Two service ports; the slice carries the resolved numbers under the service port names.
  Add(MakeService("web", "10.96.0.20",
                  {Port("http", 80, IntOrString{"web"}), Port("metrics", 9090, IntOrString{"m"})}));
  Add(MakeSlice("web-1", "web",
                {{"metrics", Protocol::kTcp, 9102},
                 {"http", Protocol::kUdp, 7777},  // same name, wrong protocol: not used
                 {"http", Protocol::kTcp, 8080}},
                {{"10.244.1.21"}}));
  DesiredState s = Compute();
  EXPECT_THAT(Addrs(Get(s, Key("10.96.0.20", 80))), ElementsAre("10.244.1.21:8080"));
  EXPECT_THAT(Addrs(Get(s, Key("10.96.0.20", 9090))), ElementsAre("10.244.1.21:9102"));
}

TEST_F(ComputeTest, SlicePortWithOtherNameOrProtocolGivesNoBackends) {
  Add(MakeService("web", "10.96.0.21", {Port("", 80, IntOrString{8080})}));
  Add(MakeSlice("web-1", "web", {{"http", Protocol::kTcp, 8080}}, {{"10.244.1.21"}}));
  Add(MakeSlice("web-2", "web", {{"", Protocol::kUdp, 8080}}, {{"10.244.1.22"}}));
  Add(MakeSlice("web-3", "web", {{"", Protocol::kTcp, std::nullopt}}, {{"10.244.1.23"}}));
  Add(MakeSlice("web-4", "web", {{"", Protocol::kTcp, 8081}}, {{"10.244.1.24"}}));
  EXPECT_THAT(Addrs(Get(Compute(), Key("10.96.0.21", 80))), ElementsAre("10.244.1.24:8081"));
}

TEST_F(ComputeTest, SlicesOfSeveralServicesAndNamespacesStaySeparate) {
  Add(MakeService("a", "10.96.0.30", {Port("", 80, IntOrString{80})}));
  Add(MakeService("b", "10.96.0.31", {Port("", 80, IntOrString{80})}));
  Add(MakeSlice("a-1", "a", {{"", Protocol::kTcp, 80}}, {{"10.244.1.30"}}));
  Add(MakeSlice("b-1", "b", {{"", Protocol::kTcp, 80}}, {{"10.244.1.31"}}));
  EndpointSlice other_ns = MakeSlice("a-x", "a", {{"", Protocol::kTcp, 80}}, {{"10.244.1.39"}});
  other_ns.metadata.namespace_ = "other";
  Add(other_ns);
  EndpointSlice unlabelled = MakeSlice("a-y", "a", {{"", Protocol::kTcp, 80}}, {{"10.244.1.38"}});
  unlabelled.metadata.labels.clear();
  Add(unlabelled);
  DesiredState s = Compute();
  EXPECT_THAT(Addrs(Get(s, Key("10.96.0.30", 80))), ElementsAre("10.244.1.30:80"));
  EXPECT_THAT(Addrs(Get(s, Key("10.96.0.31", 80))), ElementsAre("10.244.1.31:80"));
}

TEST_F(ComputeTest, DuplicatesAcrossSlicesCollapseAndActiveWins) {
  Add(MakeService("echo", "10.96.0.10", {Port("http", 80, IntOrString{"http"})}));
  Add(MakeSlice("echo-1", "echo", {{"http", Protocol::kTcp, 8080}},
                {{"10.244.1.11"}, {"10.244.1.12", false, true, true}}));
  Add(MakeSlice("echo-2", "echo", {{"http", Protocol::kTcp, 8080}},
                {{"10.244.1.11"}, {"10.244.1.12"}, {"10.244.1.13"}}));
  // The terminating copy comes last in slice order this time: it must not demote either.
  Add(MakeSlice("echo-3", "echo", {{"http", Protocol::kTcp, 8080}},
                {{"10.244.1.13", false, true, true}}));
  EXPECT_THAT(Addrs(Get(Compute(), Key("10.96.0.10", 80))),
              ElementsAre("10.244.1.11:8080", "10.244.1.12:8080", "10.244.1.13:8080"));
}

TEST_F(ComputeTest, BackendPodsAreThoseOfTheEndpointsChosen) {
  Add(MakeService("echo", "10.96.0.10",
                  {Port("http", 80, IntOrString{"http"}), Port("dns", 53, IntOrString{"dns"})}));
  Add(MakeSlice("echo-1", "echo", {{"http", Protocol::kTcp, 8080}, {"dns", Protocol::kTcp, 53}},
                {{"10.244.1.11", {}, {}, {}, "", "first"},
                 {"10.244.1.12", false, true, true, "", "terminating"},
                 {"10.244.1.14", false, false, false, "", "not-serving"}}));
  Add(MakeSlice("echo-2", "echo", {{"http", Protocol::kTcp, 8081}},
                {{"10.244.1.13", {}, {}, {}, "", "other-port"}}));
  Add(MakeSlice("echo-3", "echo", {{"http", Protocol::kTcp, 8080}},
                {{"10.244.1.11", {}, {}, {}, "", "second"},
                 {"10.244.1.12", {}, {}, {}, "", "active"},
                 {"10.244.1.14", {}, {}, {}, "", "ready"}}));
  const DesiredState s = Compute();
  const ObjectSnapshot snap = store_.Snapshot();
  const BackendPods pods(snap);
  const Frontend& http = Get(s, Key("10.96.0.10", 80));
  ASSERT_THAT(Addrs(http), ElementsAre("10.244.1.11:8080", "10.244.1.12:8080", "10.244.1.13:8081",
                                       "10.244.1.14:8080"));
  // The first copy stays; an active one replaces a terminating one; an endpoint left out
  // (neither ready nor serving) names no pod.
  EXPECT_THAT(pods.Of(http),
              ElementsAre("demo/first", "demo/active", "demo/other-port", "demo/ready"));
  // Same addresses on another port: the dns frontend's own slice port.
  EXPECT_THAT(pods.Of(Get(s, Key("10.96.0.10", 53))),
              ElementsAre("demo/first", "demo/terminating"));
  Frontend gone = http;
  gone.service = "demo/nope";
  EXPECT_THAT(pods.Of(gone), ElementsAre("", "", "", ""));
}

TEST_F(ComputeTest, ReadyServingTerminatingConditions) {
  Add(MakeService("echo", "10.96.0.10", {Port("http", 80, IntOrString{"http"})}));
  Add(MakeSlice("echo-1", "echo", {{"http", Protocol::kTcp, 8080}},
                {
                    {"10.244.1.1"},                      // nil everything: ready
                    {"10.244.1.2", true},                // ready
                    {"10.244.1.3", false},               // not ready, serving nil=false
                    {"10.244.1.4", false, true, true},   // serving + terminating
                    {"10.244.1.5", false, false, true},  // terminating, not serving
                    {"10.244.1.6", false, true, false},  // serving but not terminating: not ready
                    {"10.244.1.7", std::nullopt, std::nullopt, true},  // ready nil = true
                }));
  EXPECT_THAT(
      Addrs(Get(Compute(), Key("10.96.0.10", 80))),
      ElementsAre("10.244.1.1:8080", "10.244.1.2:8080", "10.244.1.4:8080 term", "10.244.1.7:8080"));
}

TEST_F(ComputeTest, ServiceWithoutEndpointsStillHasAFrontend) {
  Add(MakeService("empty", "10.96.0.40", {Port("http", 80, IntOrString{8080})}));
  const Frontend& fe = Get(Compute(), Key("10.96.0.40", 80));
  EXPECT_THAT(fe.backends, IsEmpty());
  EXPECT_EQ(fe.service, "demo/empty");
}

TEST_F(ComputeTest, HeadlessExternalNameAndOtherProxysServicesAreSkipped) {
  Add(MakeService("headless", "None", {Port("http", 80, IntOrString{80})}));
  Service ext = MakeService("ext", "", {Port("http", 80, IntOrString{80})});
  ext.spec.type = ServiceType::kExternalName;
  ext.spec.external_name = "example.com";
  Add(ext);
  Service other = MakeService("other", "10.96.0.50", {Port("http", 80, IntOrString{80})});
  other.metadata.labels[kServiceProxyNameLabel] = "someone-else";
  Add(other);
  Add(MakeService("kept", "10.96.0.51", {Port("http", 80, IntOrString{80})}));
  for (const char* svc : {"headless", "ext", "other", "kept"}) {
    Add(MakeSlice(std::string(svc) + "-1", svc, {{"http", Protocol::kTcp, 80}}, {{"10.244.1.50"}}));
  }
  DesiredState s = Compute();
  ASSERT_EQ(s.frontends.size(), 1u);
  EXPECT_EQ(s.frontends.begin()->second.service, "demo/kept");
}

TEST_F(ComputeTest, SessionAffinityClientIp) {
  Service svc = MakeService("sticky", "10.96.0.60", {Port("http", 80, IntOrString{80})});
  svc.spec.session_affinity_client_ip = true;
  Add(svc);
  Service custom = MakeService("sticky2", "10.96.0.61", {Port("http", 80, IntOrString{80})});
  custom.spec.session_affinity_client_ip = true;
  custom.spec.session_affinity_timeout_s = 60;
  Add(custom);
  Add(MakeService("plain", "10.96.0.62", {Port("http", 80, IntOrString{80})}));
  DesiredState s = Compute();
  EXPECT_TRUE(Get(s, Key("10.96.0.60", 80)).affinity_client_ip);
  EXPECT_EQ(Get(s, Key("10.96.0.60", 80)).affinity_timeout_s, 10800u);
  EXPECT_EQ(Get(s, Key("10.96.0.61", 80)).affinity_timeout_s, 60u);
  EXPECT_FALSE(Get(s, Key("10.96.0.62", 80)).affinity_client_ip);
  EXPECT_EQ(Get(s, Key("10.96.0.62", 80)).affinity_timeout_s, 0u);
}

TEST_F(ComputeTest, TrafficPoliciesAndNodeLocality) {
  Service svc = MakeService("local", "10.96.0.70", {Port("http", 80, IntOrString{80})});
  svc.spec.internal_traffic_policy = TrafficPolicy::kLocal;
  svc.spec.external_traffic_policy = TrafficPolicy::kLocal;
  svc.spec.external_ips = {Ip("192.0.2.7")};
  Add(svc);
  Add(MakeSlice("local-1", "local", {{"http", Protocol::kTcp, 80}},
                {{"10.244.1.71", {}, {}, {}, "node-a"}, {"10.244.2.72", {}, {}, {}, "node-b"}}));
  DesiredState s = Compute("node-a");
  const Frontend& cip = Get(s, Key("10.96.0.70", 80));
  EXPECT_TRUE(cip.internal_traffic_local);
  EXPECT_FALSE(cip.external_traffic_local);
  ASSERT_EQ(cip.backends.size(), 2u);  // all kept; node_local tells the reconciler which
  EXPECT_TRUE(cip.backends[0].node_local);
  EXPECT_FALSE(cip.backends[1].node_local);
  const Frontend& ext = Get(s, Key("192.0.2.7", 80));
  EXPECT_EQ(ext.kind, FrontendKind::kExternalIp);
  EXPECT_TRUE(ext.external_traffic_local);
  EXPECT_FALSE(ext.internal_traffic_local);

  // Without a node name nothing is local.
  s = Compute("");
  EXPECT_FALSE(Get(s, Key("10.96.0.70", 80)).backends[0].node_local);
}

TEST_F(ComputeTest, ExternalAndLoadBalancerIpsAndIpv6Skipped) {
  Service svc = MakeService("lb", "10.96.0.80", {Port("http", 80, IntOrString{80})});
  svc.spec.cluster_ips.push_back(Ip("fd00::80"));  // dual-stack: the IPv6 one is skipped
  svc.spec.external_ips = {Ip("192.0.2.8"), Ip("2001:db8::8")};
  svc.spec.type = ServiceType::kLoadBalancer;
  svc.load_balancer_ingress_ips = {Ip("198.51.100.8")};
  Add(svc);
  Service not_lb = MakeService("notlb", "10.96.0.81", {Port("http", 80, IntOrString{80})});
  not_lb.load_balancer_ingress_ips = {Ip("198.51.100.9")};  // stale status: not a LoadBalancer
  Add(not_lb);
  Service v6 = MakeService("v6only", "fd00::1", {Port("http", 80, IntOrString{80})});
  Add(v6);
  DesiredState s = Compute();
  EXPECT_EQ(s.frontends.size(), 4u);
  EXPECT_EQ(Get(s, Key("10.96.0.80", 80)).kind, FrontendKind::kClusterIp);
  EXPECT_EQ(Get(s, Key("192.0.2.8", 80)).kind, FrontendKind::kExternalIp);
  EXPECT_EQ(Get(s, Key("198.51.100.8", 80)).kind, FrontendKind::kLoadBalancer);
  EXPECT_EQ(Get(s, Key("10.96.0.81", 80)).kind, FrontendKind::kClusterIp);
}

TEST_F(ComputeTest, Ipv6AndFqdnSlicesGiveNoBackends) {
  Add(MakeService("echo", "10.96.0.10", {Port("http", 80, IntOrString{80})}));
  EndpointSlice v6 = MakeSlice("echo-v6", "echo", {{"http", Protocol::kTcp, 80}}, {{"fd00::5"}});
  v6.address_type = AddressType::kIpv6;
  Add(v6);
  EndpointSlice fqdn =
      MakeSlice("echo-fqdn", "echo", {{"http", Protocol::kTcp, 80}}, {{"example.com"}});
  fqdn.address_type = AddressType::kFqdn;
  Add(fqdn);
  EXPECT_THAT(Get(Compute(), Key("10.96.0.10", 80)).backends, IsEmpty());
}

TEST_F(ComputeTest, ConflictingVipKeepsFirstServiceAndWarns) {
  Add(MakeService("a", "10.96.0.90", {Port("http", 80, IntOrString{80})}));
  Add(MakeService("b", "10.96.0.90", {Port("http", 80, IntOrString{80})}));
  DesiredState s = Compute();
  EXPECT_EQ(Get(s, Key("10.96.0.90", 80)).service, "demo/a");
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_THAT(warnings_[0], ::testing::HasSubstr("Service demo/b: 10.96.0.90:80/TCP"));
}

TEST_F(ComputeTest, DeterministicAndIndependentOfInsertionOrder) {
  ObjectStore other;
  std::vector<Object> objects = {
      MakeService("echo", "10.96.0.10", {Port("http", 80, IntOrString{"http"})}),
      MakeSlice("echo-2", "echo", {{"http", Protocol::kTcp, 8080}},
                {{"10.244.1.13"}, {"10.244.1.11", false, true, true}}),
      MakeSlice("echo-1", "echo", {{"http", Protocol::kTcp, 8080}},
                {{"10.244.1.12"}, {"10.244.1.11", false, true, true}}),
  };
  for (const Object& o : objects) Add(o);
  for (auto it = objects.rbegin(); it != objects.rend(); ++it) other.Upsert(*it);
  EXPECT_EQ(Compute(), ComputeDesiredState(other, "node-a"));
  EXPECT_EQ(Compute(), Compute());
}

}  // namespace
}  // namespace skiff::model
