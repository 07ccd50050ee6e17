// The policy compiler against the Kubernetes truth table: every case states the expected
// verdict by hand, and checks that the reference semantics and the compiled form (evaluated
// the way the datapath looks things up) both reach it. A randomized sweep then compares the
// two on many generated policies.
#include <gtest/gtest.h>

#include <random>

#include "agent/policy/compiler.h"
#include "agent/policy/semantics.h"
#include "tests/unit/policy_fixture.h"

namespace skiff::policy {
namespace {

using namespace skiff::policy::testing;  // NOLINT
using model::Protocol;
using model::SelectorOperator;

constexpr uint8_t kTcp = 6, kUdp = 17, kSctp = 132;

// Three namespaces of pods; "ext" addresses are outside the cluster.
class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    c_.Namespace("a", {{"team", "a"}, {"env", "prod"}});
    c_.Namespace("b", {{"team", "b"}, {"env", "prod"}});
    c_.Namespace("c", {{"team", "c"}, {"env", "dev"}});
    c_.Pod("a", "web", "10.0.1.1", {{"app", "web"}, {"tier", "front"}},
           {{"http", 8080, Protocol::kTcp}, {"dns", 53, Protocol::kUdp}});
    c_.Pod("a", "db", "10.0.1.2", {{"app", "db"}}, {{"http", 9090, Protocol::kTcp}});
    c_.Pod("a", "job", "10.0.1.3", {{"app", "job"}, {"tier", "back"}});
    c_.Pod("b", "web", "10.0.2.1", {{"app", "web"}}, {{"http", 8081, Protocol::kTcp}});
    c_.Pod("b", "db", "10.0.2.2", {{"app", "db"}});
    c_.Pod("c", "web", "10.0.3.1", {{"app", "web"}}, {{"http", 8080, Protocol::kTcp}});
    c_.Pod("c", "db", "10.0.3.2", {{"app", "db"}});
  }

  PeerRef Ref(const std::string& who) {
    auto slash = who.find('/');
    if (slash == std::string::npos) return PeerRef{std::nullopt, Ip(who)};
    model::NamespacedName id{who.substr(0, slash), who.substr(slash + 1)};
    return PeerRef{id, c_.Snapshot().pods.at(id)->pod_ips[0]};
  }

  // The verdict, after checking that the reference and the compiled form agree.
  bool Allowed(const std::string& from, const std::string& to, uint16_t port,
               uint8_t proto = kTcp) {
    PeerRef s = Ref(from), d = Ref(to);
    Semantics sem(&c_.Snapshot());
    ConnectionVerdict ref = sem.Connection(s, d, proto, port);
    Compiled compiled = Compile(c_.Snapshot(), {"node-1", {}});
    CompiledVerdict got = EvaluateCompiled(compiled, s.ip, d.ip, proto, port);
    EXPECT_EQ(ref.allowed, got.allowed) << from << " -> " << to << ":" << port << " proto "
                                        << int(proto) << ": reference " << ref.Explain();
    EXPECT_EQ(ref.ingress.isolated, got.ingress_isolated) << from << " -> " << to;
    EXPECT_EQ(ref.egress.isolated, got.egress_isolated) << from << " -> " << to;
    return ref.allowed;
  }

  Cluster c_;
};

TEST_F(PolicyTest, NoPolicyAllowsEverythingAndIsolatesNothing) {
  EXPECT_TRUE(Allowed("a/web", "b/db", 80));
  EXPECT_TRUE(Allowed("203.0.113.9", "c/web", 22));
  Compiled compiled = Compile(c_.Snapshot(), {"node-1", {}});
  EXPECT_FALSE(compiled.any_policy);
  for (const auto& [id, ep] : compiled.endpoints) {
    EXPECT_FALSE(ep.ingress_isolated) << id.ToString();
    EXPECT_FALSE(ep.egress_isolated) << id.ToString();
  }
}

TEST_F(PolicyTest, EmptyPodSelectorDefaultDenyIngressIsolatesWholeNamespaceOnly) {
  c_.Policy("a", "deny", Sel(), {});
  EXPECT_FALSE(Allowed("b/web", "a/web", 80));
  EXPECT_FALSE(Allowed("a/db", "a/web", 80));
  EXPECT_FALSE(Allowed("203.0.113.9", "a/job", 80));
  EXPECT_TRUE(Allowed("a/web", "b/web", 80)) << "egress of a is not isolated";
  EXPECT_TRUE(Allowed("a/web", "c/db", 5432));
  EXPECT_TRUE(Allowed("b/db", "c/web", 80)) << "other namespaces untouched";
}

TEST_F(PolicyTest, PolicyTypesDefaulting) {
  // Only egress rules and no policyTypes: the API defaults to [Ingress, Egress].
  c_.Policy("a", "egress-only-rules", Sel({{"app", "web"}}), {},
            {Rule({PodPeer(Sel({{"app", "db"}}))})});
  EXPECT_FALSE(Allowed("b/web", "a/web", 80)) << "Ingress is always in the defaulted types";
  EXPECT_TRUE(Allowed("a/web", "a/db", 80));
  EXPECT_FALSE(Allowed("a/web", "a/job", 80));
  // policyTypes [Egress] explicitly: ingress stays open.
  c_.RemovePolicy("a", "egress-only-rules");
  c_.Policy("a", "egress-only", Sel({{"app", "web"}}), {}, {Rule({PodPeer(Sel({{"app", "db"}}))})},
            {kEgress});
  EXPECT_TRUE(Allowed("b/web", "a/web", 80));
  EXPECT_FALSE(Allowed("a/web", "a/job", 80));
  EXPECT_FALSE(Allowed("a/web", "203.0.113.9", 443));
}

TEST_F(PolicyTest, DefaultDenyEgressWithNoRules) {
  c_.Policy("b", "deny-egress", Sel(), {}, {}, {kEgress});
  EXPECT_FALSE(Allowed("b/web", "a/web", 80));
  EXPECT_FALSE(Allowed("b/db", "203.0.113.1", 53, kUdp));
  EXPECT_TRUE(Allowed("a/web", "b/web", 80)) << "ingress of b stays open";
}

TEST_F(PolicyTest, PodSelectorPeerIsSameNamespaceOnly) {
  c_.Policy("a", "db-from-web", Sel({{"app", "db"}}), {Rule({PodPeer(Sel({{"app", "web"}}))})});
  EXPECT_TRUE(Allowed("a/web", "a/db", 5432));
  EXPECT_FALSE(Allowed("b/web", "a/db", 5432)) << "app=web in another namespace";
  EXPECT_FALSE(Allowed("a/job", "a/db", 5432));
  EXPECT_TRUE(Allowed("a/job", "a/web", 80)) << "web is not selected";
}

TEST_F(PolicyTest, NamespaceSelectorAloneSelectsEveryPodThere) {
  c_.Policy("a", "from-prod", Sel({{"app", "db"}}), {Rule({NsPeer(Sel({{"env", "prod"}}))})});
  EXPECT_TRUE(Allowed("b/db", "a/db", 1));
  EXPECT_TRUE(Allowed("a/job", "a/db", 1));
  EXPECT_FALSE(Allowed("c/web", "a/db", 1));
  EXPECT_FALSE(Allowed("203.0.113.1", "a/db", 1));
  // An empty namespaceSelector selects every namespace (but still only pods).
  c_.Policy("a", "from-all-pods", Sel({{"app", "job"}}), {Rule({NsPeer(Sel())})});
  EXPECT_TRUE(Allowed("c/db", "a/job", 1));
  EXPECT_FALSE(Allowed("198.51.100.1", "a/job", 1));
}

TEST_F(PolicyTest, BothSelectorsInOnePeerAreAnded) {
  c_.Policy("a", "and", Sel({{"app", "db"}}),
            {Rule({BothPeer(Sel({{"team", "b"}}), Sel({{"app", "web"}}))})});
  EXPECT_TRUE(Allowed("b/web", "a/db", 1));
  EXPECT_FALSE(Allowed("b/db", "a/db", 1));
  EXPECT_FALSE(Allowed("c/web", "a/db", 1));
  EXPECT_FALSE(Allowed("a/web", "a/db", 1)) << "namespaceSelector replaces the own namespace";
}

TEST_F(PolicyTest, SeparatePeersAreOred) {
  c_.Policy("a", "or", Sel({{"app", "db"}}),
            {Rule({NsPeer(Sel({{"team", "b"}})), PodPeer(Sel({{"app", "web"}}))})});
  EXPECT_TRUE(Allowed("b/web", "a/db", 1));
  EXPECT_TRUE(Allowed("b/db", "a/db", 1));
  EXPECT_TRUE(Allowed("a/web", "a/db", 1));
  EXPECT_FALSE(Allowed("c/web", "a/db", 1));
  EXPECT_FALSE(Allowed("a/job", "a/db", 1));
}

TEST_F(PolicyTest, IpBlockWithExceptOutsideAndOnPodAddresses) {
  c_.Policy("a", "cidr", Sel({{"app", "web"}}),
            {Rule({CidrPeer("198.51.100.0/24", {"198.51.100.128/25", "198.51.100.7/32"}),
                   CidrPeer("10.0.2.0/24", {"10.0.2.2/32"})})});
  EXPECT_TRUE(Allowed("198.51.100.1", "a/web", 80));
  EXPECT_FALSE(Allowed("198.51.100.7", "a/web", 80));
  EXPECT_FALSE(Allowed("198.51.100.200", "a/web", 80));
  EXPECT_FALSE(Allowed("198.51.101.1", "a/web", 80));
  EXPECT_TRUE(Allowed("b/web", "a/web", 80)) << "pod address inside the block";
  EXPECT_FALSE(Allowed("b/db", "a/web", 80)) << "pod address in except";
  EXPECT_FALSE(Allowed("c/web", "a/web", 80));
}

TEST_F(PolicyTest, EgressIpBlockZeroSlashZeroExceptClusterRange) {
  c_.Policy("c", "internet-only", Sel(), {}, {Rule({CidrPeer("0.0.0.0/0", {"10.0.0.0/8"})})},
            {kEgress});
  EXPECT_TRUE(Allowed("c/web", "8.8.8.8", 53, kUdp));
  EXPECT_FALSE(Allowed("c/web", "a/web", 80));
  EXPECT_FALSE(Allowed("c/web", "10.200.0.1", 80));
}

TEST_F(PolicyTest, PortsProtocolsAndEndPort) {
  c_.Policy("a", "ports", Sel({{"app", "web"}}),
            {Rule({}, {Port(80), Port(53, Protocol::kUdp), Port(8000, Protocol::kTcp, 8100),
                       Port(3868, Protocol::kSctp), AllPorts(Protocol::kUdp)})});
  EXPECT_TRUE(Allowed("b/db", "a/web", 80));
  EXPECT_FALSE(Allowed("b/db", "a/web", 80, kSctp));
  EXPECT_TRUE(Allowed("b/db", "a/web", 8000));
  EXPECT_TRUE(Allowed("b/db", "a/web", 8055));
  EXPECT_TRUE(Allowed("b/db", "a/web", 8100));
  EXPECT_FALSE(Allowed("b/db", "a/web", 8101));
  EXPECT_FALSE(Allowed("b/db", "a/web", 7999));
  EXPECT_TRUE(Allowed("b/db", "a/web", 3868, kSctp));
  EXPECT_FALSE(Allowed("b/db", "a/web", 3868));
  EXPECT_TRUE(Allowed("b/db", "a/web", 12345, kUdp)) << "UDP without a port: every UDP port";
  EXPECT_FALSE(Allowed("b/db", "a/web", 12345));
}

TEST_F(PolicyTest, NamedPortsResolvePerDestinationPod) {
  // Ingress: "http" is 8080 on a/web and 9090 on a/db.
  c_.Policy("a", "named-in", Sel(), {Rule({NsPeer(Sel())}, {PortName("http")})});
  EXPECT_TRUE(Allowed("b/web", "a/web", 8080));
  EXPECT_FALSE(Allowed("b/web", "a/web", 9090));
  EXPECT_TRUE(Allowed("b/web", "a/db", 9090));
  EXPECT_FALSE(Allowed("b/web", "a/job", 8080)) << "a/job has no port named http";
  EXPECT_FALSE(Allowed("b/web", "a/web", 8080, kUdp)) << "the name is TCP";
  // Egress: "http" resolves on each destination; pods with equal labels but different ports
  // (a/web and c/web share app=web... in different namespaces) must not be confused.
  c_.Policy("b", "named-out", Sel({{"app", "db"}}), {}, {Rule({NsPeer(Sel())}, {PortName("http")})},
            {kEgress});
  EXPECT_TRUE(Allowed("b/db", "a/web", 8080));
  EXPECT_TRUE(Allowed("b/db", "b/web", 8081));
  EXPECT_FALSE(Allowed("b/db", "b/web", 8080));
  EXPECT_TRUE(Allowed("b/db", "c/web", 8080));
  EXPECT_FALSE(Allowed("b/db", "203.0.113.1", 8080)) << "outside addresses have no named ports";
}

TEST_F(PolicyTest, EqualLabelsDifferentNamedPortsGetDifferentIdentities) {
  c_.Pod("b", "web2", "10.0.2.3", {{"app", "web"}}, {{"http", 9999, Protocol::kTcp}});
  c_.Policy("b", "named-out", Sel({{"app", "db"}}), {},
            {Rule({PodPeer(Sel({{"app", "web"}}))}, {PortName("http")})}, {kEgress});
  EXPECT_TRUE(Allowed("b/db", "b/web", 8081));
  EXPECT_FALSE(Allowed("b/db", "b/web", 9999));
  EXPECT_TRUE(Allowed("b/db", "b/web2", 9999));
  EXPECT_FALSE(Allowed("b/db", "b/web2", 8081));
}

TEST_F(PolicyTest, MatchExpressionsOperators) {
  c_.Policy("a", "exprs", Sel({}, {Expr("app", SelectorOperator::kIn, {"web", "db"})}),
            {Rule({PodPeer(Sel({}, {Expr("tier", SelectorOperator::kExists)}))}),
             Rule({NsPeer(Sel({}, {Expr("env", SelectorOperator::kNotIn, {"prod"})}))}),
             Rule({NsPeer(Sel({}, {Expr("team", SelectorOperator::kDoesNotExist)}))})});
  EXPECT_TRUE(Allowed("a/job", "a/web", 1)) << "tier exists";
  EXPECT_FALSE(Allowed("a/db", "a/web", 1)) << "no tier label";
  EXPECT_TRUE(Allowed("c/db", "a/db", 1)) << "env=dev is NotIn prod";
  EXPECT_FALSE(Allowed("b/db", "a/db", 1)) << "env=prod";
  EXPECT_TRUE(Allowed("b/db", "a/job", 1)) << "a/job is not In web,db: not selected";
  c_.Namespace("d", {{"env", "prod"}});
  c_.Pod("d", "x", "10.0.4.1", {});
  EXPECT_TRUE(Allowed("d/x", "a/db", 1)) << "namespace d has no team label";
}

TEST_F(PolicyTest, SeveralPoliciesAddUp) {
  c_.Policy("a", "p1", Sel({{"app", "db"}}),
            {Rule({PodPeer(Sel({{"app", "web"}}))}, {Port(5432)})});
  c_.Policy("a", "p2", Sel({{"app", "db"}}), {Rule({NsPeer(Sel({{"team", "c"}}))}, {Port(22)})});
  EXPECT_TRUE(Allowed("a/web", "a/db", 5432));
  EXPECT_FALSE(Allowed("a/web", "a/db", 22));
  EXPECT_TRUE(Allowed("c/web", "a/db", 22));
  EXPECT_FALSE(Allowed("c/web", "a/db", 5432));
  // A policy that allows nothing adds nothing.
  c_.Policy("a", "p3", Sel(), {});
  EXPECT_TRUE(Allowed("a/web", "a/db", 5432));
  EXPECT_FALSE(Allowed("a/db", "a/web", 80));
}

TEST_F(PolicyTest, ConnectionNeedsEgressOfSourceAndIngressOfDestination) {
  c_.Policy("a", "web-out", Sel({{"app", "web"}}), {}, {Rule({NsPeer(Sel({{"team", "b"}}))})},
            {kEgress});
  c_.Policy("b", "db-in", Sel({{"app", "db"}}), {Rule({NsPeer(Sel({{"team", "c"}}))})});
  EXPECT_TRUE(Allowed("a/web", "b/web", 80));
  EXPECT_FALSE(Allowed("a/web", "b/db", 80)) << "egress allows, ingress denies";
  EXPECT_FALSE(Allowed("a/web", "c/db", 80)) << "ingress open, egress denies";
  EXPECT_TRUE(Allowed("c/web", "b/db", 80));
}

TEST_F(PolicyTest, NodeAddressesAreAlwaysAllowed) {
  c_.Policy("a", "deny-all", Sel(), {}, {}, {kIngress, kEgress});
  Compiled compiled = Compile(c_.Snapshot(), {"node-1", {Ip("192.168.0.10")}});
  EXPECT_TRUE(EvaluateCompiled(compiled, Ip("192.168.0.10"), Ip("10.0.1.1"), kTcp, 80).allowed);
  EXPECT_TRUE(EvaluateCompiled(compiled, Ip("10.0.1.1"), Ip("192.168.0.10"), kTcp, 10250).allowed);
  EXPECT_FALSE(EvaluateCompiled(compiled, Ip("10.0.1.2"), Ip("10.0.1.1"), kTcp, 80).allowed);
}

TEST_F(PolicyTest, OnlyThisNodesPodsAreEndpoints) {
  c_.Pod("c", "remote", "10.9.0.1", {{"app", "web"}}, {}, "node-2");
  c_.Policy("c", "deny", Sel(), {});
  Compiled compiled = Compile(c_.Snapshot(), {"node-1", {}});
  EXPECT_EQ(compiled.endpoints.count({"c", "remote"}), 0u);
  const IpcacheEntry* e = LookupIpcache(compiled, Ip("10.9.0.1"));
  ASSERT_NE(e, nullptr) << "remote pods still have an identity";
  EXPECT_FALSE(e->endpoint.has_value());
  EXPECT_TRUE(compiled.any_policy);
}

TEST_F(PolicyTest, IdentitiesFollowLabelSetsNotPods) {
  for (int i = 0; i < 50; i++)
    c_.Pod("c", "replica" + std::to_string(i), "10.0.5." + std::to_string(i + 1),
           {{"app", "replica"}});
  c_.Policy("a", "p", Sel(), {Rule({NsPeer(Sel())})});
  Compiled compiled = Compile(c_.Snapshot(), {"node-1", {}});
  // 7 pods with distinct label sets + one class for all 50 replicas.
  EXPECT_EQ(compiled.classes.size(), 8u);
}

TEST(RangeToPrefixes, CoversExactlyTheRange) {
  std::mt19937 rng(7);
  std::vector<std::pair<uint16_t, uint16_t>> ranges = {{0, 65535}, {80, 80},     {8000, 8100},
                                                       {1, 65534}, {1024, 2047}, {65535, 65535}};
  for (int i = 0; i < 200; i++) {
    uint16_t a = rng(), b = rng();
    ranges.push_back({std::min(a, b), std::max(a, b)});
  }
  for (auto [lo, hi] : ranges) {
    auto prefixes = RangeToPrefixes(lo, hi);
    EXPECT_LE(prefixes.size(), 30u);
    std::vector<int> covered(65536, 0);
    for (const auto& p : prefixes) {
      uint32_t size = 1u << (16 - p.bits);
      ASSERT_EQ(p.port % size, 0u) << "prefix not aligned";
      for (uint32_t x = p.port; x < p.port + size; x++) covered[x]++;
    }
    for (uint32_t x = 0; x < 65536; x++)
      ASSERT_EQ(covered[x], (x >= lo && x <= hi) ? 1 : 0) << lo << "-" << hi << " at " << x;
  }
  EXPECT_EQ(RangeToPrefixes(0, 65535), (std::vector<PortPrefix>{{0, 0}}));
}

// Random policies over the fixture's pods: the compiled form must agree with the reference on
// every pair, port and protocol, including outside addresses inside and outside blocks.
TEST_F(PolicyTest, RandomizedCompiledMatchesReference) {
  std::mt19937 rng(20240611);
  auto pick = [&](std::vector<std::string> v) { return v[rng() % v.size()]; };
  auto rand_sel = [&](bool ns) -> model::LabelSelector {
    switch (rng() % 5) {
      case 0:
        return Sel();
      case 1:
        return ns ? Sel({{"team", pick({"a", "b", "c"})}})
                  : Sel({{"app", pick({"web", "db", "job"})}});
      case 2:
        return Sel(
            {}, {Expr(ns ? "env" : "app", SelectorOperator::kIn, {pick({"prod", "web", "db"})})});
      case 3:
        return Sel({},
                   {Expr(ns ? "env" : "tier", SelectorOperator::kNotIn, {pick({"dev", "front"})})});
      default:
        return Sel({}, {Expr(ns ? "team" : "tier", rng() % 2 ? SelectorOperator::kExists
                                                             : SelectorOperator::kDoesNotExist)});
    }
  };
  auto rand_peer = [&]() -> model::NetworkPolicyPeer {
    switch (rng() % 4) {
      case 0:
        return PodPeer(rand_sel(false));
      case 1:
        return NsPeer(rand_sel(true));
      case 2:
        return BothPeer(rand_sel(true), rand_sel(false));
      default:
        return rng() % 2 ? CidrPeer("10.0.0.0/16", {"10.0.2.0/24"})
                         : CidrPeer("198.51.100.0/24", {"198.51.100.64/26"});
    }
  };
  auto rand_port = [&]() -> model::NetworkPolicyPort {
    switch (rng() % 4) {
      case 0:
        return Port(80);
      case 1:
        return Port(8000, Protocol::kTcp, 8090);
      case 2:
        return PortName("http");
      default:
        return AllPorts(Protocol::kUdp);
    }
  };
  auto rand_rules = [&]() {
    std::vector<model::NetworkPolicyRule> rules(rng() % 3);
    for (auto& r : rules) {
      for (int i = rng() % 3; i > 0; i--) r.peers.push_back(rand_peer());
      for (int i = rng() % 3; i > 0; i--) r.ports.push_back(rand_port());
    }
    return rules;
  };
  const std::vector<std::string> ends = {"a/web",        "a/db",         "a/job", "b/web",
                                         "b/db",         "c/web",        "c/db",  "10.0.9.9",
                                         "198.51.100.3", "198.51.100.99"};
  const std::vector<std::pair<uint16_t, uint8_t>> probes = {
      {80, kTcp}, {8080, kTcp}, {8081, kTcp}, {9090, kTcp}, {8085, kTcp}, {53, kUdp}, {80, kSctp}};
  int allowed = 0, denied = 0;
  for (int round = 0; round < 40; round++) {
    for (const char* ns : {"a", "b", "c"}) {
      c_.RemovePolicy(ns, "r0");
      c_.RemovePolicy(ns, "r1");
      for (int i = rng() % 3; i > 0; i--) {
        std::vector<model::PolicyType> types;
        if (rng() % 3) types.push_back(kIngress);
        if (rng() % 2 || types.empty()) types.push_back(kEgress);
        c_.Policy(ns, "r" + std::to_string(i - 1), rand_sel(false), rand_rules(), rand_rules(),
                  types);
      }
    }
    Semantics sem(&c_.Snapshot());
    Compiled compiled = Compile(c_.Snapshot(), {"node-1", {}});
    for (const auto& from : ends)
      for (const auto& to : ends)
        for (auto [port, proto] : probes) {
          PeerRef s = Ref(from), d = Ref(to);
          bool want = sem.Connection(s, d, proto, port).allowed;
          bool got = EvaluateCompiled(compiled, s.ip, d.ip, proto, port).allowed;
          (want ? allowed : denied)++;
          ASSERT_EQ(want, got) << "round " << round << ": " << from << " -> " << to << ":" << port
                               << "/" << int(proto) << ": "
                               << sem.Connection(s, d, proto, port).Explain();
        }
  }
  // The sweep means something only if it saw plenty of both verdicts.
  EXPECT_GT(allowed, 2000);
  EXPECT_GT(denied, 2000);
}

}  // namespace
}  // namespace skiff::policy
