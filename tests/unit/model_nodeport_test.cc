// Model -> NodePort, externalIP and LoadBalancer frontends (compute_nodeport.h, compute.cc).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/model/compute.h"
#include "agent/model/compute_nodeport.h"

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

Service NodePortService(const std::string& name, ServiceType type, uint16_t port,
                        uint16_t node_port, Protocol proto = Protocol::kTcp) {
  Service svc;
  svc.metadata.namespace_ = "demo";
  svc.metadata.name = name;
  svc.spec.type = type;
  svc.spec.cluster_ips.push_back(Ip("10.96.0.10"));
  svc.spec.ports.push_back(ServicePort{"http", proto, port, IntOrString{8080}, node_port});
  return svc;
}

EndpointSlice Slice(const std::string& service, const std::vector<std::string>& ips) {
  EndpointSlice slice;
  slice.metadata.namespace_ = "demo";
  slice.metadata.name = service + "-1";
  slice.metadata.labels[kServiceNameLabel] = service;
  slice.ports.push_back(EndpointPort{"http", Protocol::kTcp, 8080});
  for (const auto& ip : ips) {
    Endpoint ep;
    ep.addresses = {ip};
    ep.node_name = ip == "10.244.1.5" ? "node-a" : "node-b";
    slice.endpoints.push_back(ep);
  }
  return slice;
}

class NodePortTest : public ::testing::Test {
 protected:
  DesiredState Compute(std::vector<std::string> addrs = {"192.168.1.10", "172.16.0.10"}) {
    std::vector<IpAddr> node;
    for (const auto& a : addrs) node.push_back(Ip(a));
    warnings_.clear();
    return ComputeDesiredState(store_.Snapshot(), "node-a", node, &warnings_);
  }
  ObjectStore store_;
  std::vector<std::string> warnings_;
};

TEST_F(NodePortTest, NodePortFrontendOnEveryDeviceAddress) {
  store_.Upsert(NodePortService("web", ServiceType::kNodePort, 80, 30080));
  store_.Upsert(Slice("web", {"10.244.1.5", "10.244.2.5"}));
  DesiredState s = Compute();
  ASSERT_EQ(s.frontends.size(), 3u);  // ClusterIP + 2 node addresses
  for (const char* addr : {"192.168.1.10", "172.16.0.10"}) {
    auto it = s.frontends.find(Key(addr, 30080));
    ASSERT_NE(it, s.frontends.end()) << addr;
    EXPECT_EQ(it->second.kind, FrontendKind::kNodePort);
    EXPECT_EQ(it->second.service, "demo/web");
    ASSERT_EQ(it->second.backends.size(), 2u);
    EXPECT_TRUE(it->second.backends[0].node_local);
    EXPECT_FALSE(it->second.backends[1].node_local);
  }
  EXPECT_EQ(s.frontends.count(Key("10.96.0.10", 80)), 1u);
  EXPECT_EQ(s.frontends.count(Key("10.96.0.10", 30080)), 0u);
}

// service.skiff.io/lb-algorithm reaches every frontend of the Service (ClusterIP and the
// NodePorts); a value other than random/maglev is a warning naming both, and the agent's
// default applies.
TEST_F(NodePortTest, LbAlgorithmAnnotationOnEveryFrontend) {
  Service svc = NodePortService("web", ServiceType::kNodePort, 80, 30080);
  store_.Upsert(svc);
  store_.Upsert(Slice("web", {"10.244.1.5", "10.244.2.5"}));
  for (const auto& [fk, fe] : Compute().frontends)
    EXPECT_EQ(fe.lb_algorithm, LbAlgorithm::kDefault);

  for (const auto& [value, want] :
       {std::pair<std::string, LbAlgorithm>{"maglev", LbAlgorithm::kMaglev},
        {"random", LbAlgorithm::kRandom}}) {
    svc.lb_algorithm = value;
    store_.Upsert(svc);
    DesiredState s = Compute();
    ASSERT_EQ(s.frontends.size(), 3u);
    for (const auto& [fk, fe] : s.frontends) EXPECT_EQ(fe.lb_algorithm, want) << value;
    EXPECT_TRUE(warnings_.empty());
  }

  svc.lb_algorithm = "round-robin";
  store_.Upsert(svc);
  DesiredState s = Compute();
  for (const auto& [fk, fe] : s.frontends) EXPECT_EQ(fe.lb_algorithm, LbAlgorithm::kDefault);
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_THAT(warnings_[0], ::testing::HasSubstr("demo/web"));
  EXPECT_THAT(warnings_[0], ::testing::HasSubstr("service.skiff.io/lb-algorithm"));
  EXPECT_THAT(warnings_[0], ::testing::HasSubstr("round-robin"));
}

TEST_F(NodePortTest, NoNodePortFrontendForClusterIpServiceOrWithoutAddresses) {
  store_.Upsert(NodePortService("web", ServiceType::kClusterIp, 80, 30080));
  EXPECT_EQ(Compute().frontends.size(), 1u);
  store_.Upsert(NodePortService("web", ServiceType::kNodePort, 80, 30080));
  EXPECT_EQ(Compute({}).frontends.size(), 1u);
  // Old signature: no node addresses, no NodePort frontends.
  EXPECT_EQ(ComputeDesiredState(store_.Snapshot(), "node-a").frontends.size(), 1u);
}

TEST_F(NodePortTest, LoopbackAndIpv6NodeAddressesAreNotServed) {
  store_.Upsert(NodePortService("web", ServiceType::kNodePort, 80, 30080));
  DesiredState s = Compute({"127.0.0.1", "fd00::1", "192.168.1.10"});
  EXPECT_EQ(s.frontends.size(), 2u);
  EXPECT_EQ(s.frontends.count(Key("127.0.0.1", 30080)), 0u);
  EXPECT_EQ(s.frontends.count(Key("192.168.1.10", 30080)), 1u);
}

TEST_F(NodePortTest, LoadBalancerGetsIngressIpExternalIpAndNodePortFrontends) {
  Service svc = NodePortService("lb", ServiceType::kLoadBalancer, 443, 31443);
  svc.spec.external_ips.push_back(Ip("203.0.113.7"));
  svc.load_balancer_ingress_ips.push_back(Ip("198.51.100.9"));
  svc.spec.external_traffic_policy = TrafficPolicy::kLocal;
  svc.spec.session_affinity_client_ip = true;
  svc.spec.session_affinity_timeout_s = 60;
  store_.Upsert(svc);
  DesiredState s = Compute({"192.168.1.10"});
  ASSERT_EQ(s.frontends.size(), 4u);
  EXPECT_EQ(s.frontends.at(Key("203.0.113.7", 443)).kind, FrontendKind::kExternalIp);
  EXPECT_EQ(s.frontends.at(Key("198.51.100.9", 443)).kind, FrontendKind::kLoadBalancer);
  const Frontend& np = s.frontends.at(Key("192.168.1.10", 31443));
  EXPECT_EQ(np.kind, FrontendKind::kNodePort);
  EXPECT_TRUE(np.external_traffic_local);
  EXPECT_TRUE(np.affinity_client_ip);
  EXPECT_EQ(np.affinity_timeout_s, 60u);
  EXPECT_FALSE(s.frontends.at(Key("10.96.0.10", 443)).external_traffic_local);
}

TEST_F(NodePortTest, SourceRangesOnlyOnLoadBalancerFrontends) {
  Service svc = NodePortService("lb", ServiceType::kLoadBalancer, 443, 31443);
  svc.spec.external_ips.push_back(Ip("203.0.113.7"));
  svc.load_balancer_ingress_ips.push_back(Ip("198.51.100.9"));
  for (const char* c : {"192.0.2.0/24", "10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"})
    svc.spec.load_balancer_source_ranges.push_back(*Cidr::Parse(c));
  store_.Upsert(svc);
  DesiredState s = Compute({"192.168.1.10"});
  const Frontend& lb = s.frontends.at(Key("198.51.100.9", 443));
  EXPECT_TRUE(lb.restrict_sources);
  // IPv4 only, sorted and unique.
  ASSERT_EQ(lb.source_ranges.size(), 2u);
  EXPECT_EQ(lb.source_ranges[0].addr, Ip("10.0.0.0"));
  EXPECT_EQ(lb.source_ranges[0].prefix_len, 8);
  EXPECT_EQ(lb.source_ranges[1].addr, Ip("192.0.2.0"));
  EXPECT_EQ(lb.source_ranges[1].prefix_len, 24);
  // NodePort, externalIP and ClusterIP of the same Service stay open (as with Cilium).
  for (const auto& k :
       {Key("192.168.1.10", 31443), Key("203.0.113.7", 443), Key("10.96.0.10", 443)}) {
    EXPECT_FALSE(s.frontends.at(k).restrict_sources) << k.vip.ToString();
    EXPECT_TRUE(s.frontends.at(k).source_ranges.empty());
  }
}

TEST_F(NodePortTest, SourceRangesOfAnotherFamilyOnlyRestrictToNoOne) {
  Service svc = NodePortService("lb", ServiceType::kLoadBalancer, 443, 31443);
  svc.load_balancer_ingress_ips.push_back(Ip("198.51.100.9"));
  svc.spec.load_balancer_source_ranges.push_back(*Cidr::Parse("2001:db8::/32"));
  store_.Upsert(svc);
  const Frontend& lb = Compute({"192.168.1.10"}).frontends.at(Key("198.51.100.9", 443));
  EXPECT_TRUE(lb.restrict_sources);
  EXPECT_TRUE(lb.source_ranges.empty());
}

TEST_F(NodePortTest, NoSourceRangesNoRestriction) {
  Service svc = NodePortService("lb", ServiceType::kLoadBalancer, 443, 31443);
  svc.load_balancer_ingress_ips.push_back(Ip("198.51.100.9"));
  store_.Upsert(svc);
  EXPECT_FALSE(Compute({"192.168.1.10"}).frontends.at(Key("198.51.100.9", 443)).restrict_sources);
}

TEST_F(NodePortTest, DuplicateNodePortKeepsFirstServiceAndWarns) {
  store_.Upsert(NodePortService("a", ServiceType::kNodePort, 80, 30080));
  Service b = NodePortService("b", ServiceType::kNodePort, 81, 30080);
  b.spec.cluster_ips = {Ip("10.96.0.11")};
  store_.Upsert(b);
  DesiredState s = Compute({"192.168.1.10"});
  EXPECT_EQ(s.frontends.at(Key("192.168.1.10", 30080)).service, "demo/a");
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_EQ(warnings_[0],
            "Service demo/b: nodePort 192.168.1.10:30080/TCP is already used by Service demo/a; "
            "ignored");
}

TEST_F(NodePortTest, UdpNodePort) {
  store_.Upsert(NodePortService("dns", ServiceType::kNodePort, 53, 30053, Protocol::kUdp));
  DesiredState s = Compute({"192.168.1.10"});
  EXPECT_EQ(s.frontends.count(Key("192.168.1.10", 30053, Protocol::kUdp)), 1u);
  EXPECT_EQ(s.frontends.count(Key("192.168.1.10", 30053, Protocol::kTcp)), 0u);
}

TEST_F(NodePortTest, HealthCheckCountsReadyNodeLocalEndpoints) {
  Service svc = NodePortService("lb", ServiceType::kLoadBalancer, 80, 30080);
  svc.spec.external_traffic_policy = TrafficPolicy::kLocal;
  svc.spec.health_check_node_port = 32000;
  store_.Upsert(svc);
  store_.Upsert(Slice("lb", {"10.244.1.5", "10.244.2.5"}));  // one on node-a
  auto checks = ComputeHealthChecks(store_.Snapshot(), "node-a");
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0], (HealthCheck{32000, "demo", "lb", 1}));
  EXPECT_EQ(ComputeHealthChecks(store_.Snapshot(), "node-c")[0].local_endpoints, 0);
  // Cluster policy: no health check (kube-proxy serves it only for Local).
  svc.spec.external_traffic_policy = TrafficPolicy::kCluster;
  store_.Upsert(svc);
  EXPECT_TRUE(ComputeHealthChecks(store_.Snapshot(), "node-a").empty());
}

}  // namespace
}  // namespace skiff::model
