// PolicyService against a fake core whose policy maps the real compiler and reconciler filled
// (policy_api_scene.h): list, get and trace, including named ports, endPort, ipBlock except,
// non-isolated pods, default deny, NotFound, bad arguments, Service addresses, and a
// datapath that disagrees with the compiled state.
#include <gtest/gtest.h>

#include "agent/api/policy_service.h"
#include "tests/unit/policy_api_scene.h"

namespace skiff::api {
namespace {

using testing::PolicyFakeCore;
using testing::PolicyScene;

class PolicyApiTest : public ::testing::Test {
 protected:
  void SetUp() override { scene_.Build(core_); }

  v1::PolicyTraceResponse Trace(const std::string& from, const std::string& to, uint32_t port,
                                const std::string& proto = "") {
    v1::PolicyTraceRequest req;
    req.set_from(from);
    req.set_to(to);
    req.set_port(port);
    req.set_protocol(proto);
    auto r = TracePolicy(core_, req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::PolicyTraceResponse();
  }
  absl::Status TraceError(const std::string& from, const std::string& to, uint32_t port,
                          const std::string& proto = "") {
    v1::PolicyTraceRequest req;
    req.set_from(from);
    req.set_to(to);
    req.set_port(port);
    req.set_protocol(proto);
    return TracePolicy(core_, req).status();
  }
  v1::PolicyEndpoint Get(const std::string& pod) {
    v1::GetPolicyEndpointRequest req;
    req.set_pod(pod);
    auto r = GetPolicyEndpoint(core_, req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::PolicyEndpoint();
  }

  PolicyFakeCore core_;
  PolicyScene scene_;
};

TEST_F(PolicyApiTest, ListShowsEveryLocalEndpointWithIsolationAndEntryCounts) {
  auto r = ListPolicyEndpoints(core_, {});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->endpoints_size(), 4);  // b/remote runs on node-2
  EXPECT_EQ(r->problems_size(), 0) << r->problems(0);
  const auto& db = r->endpoints(0);  // sorted: a/db, a/other, a/web, b/client
  EXPECT_EQ(db.namespace_() + "/" + db.name(), "a/db");
  EXPECT_EQ(db.addresses(0), "10.0.1.2");
  EXPECT_TRUE(db.ingress_isolated());
  EXPECT_FALSE(db.egress_isolated());
  EXPECT_EQ(db.ingress_policies(), 1u);
  EXPECT_NE(db.endpoint_id(), 0u);
  EXPECT_GE(db.identity(), static_cast<uint32_t>(SKIFF_IDENTITY_FIRST_DYNAMIC));
  // pg (1 entry) + 9000-9100 as masked prefixes for the one ipBlock class.
  EXPECT_GT(db.ingress_entries(), 2u);
  EXPECT_EQ(db.egress_entries(), 0u);
  const auto& web = r->endpoints(2);
  EXPECT_EQ(web.name(), "web");
  EXPECT_FALSE(web.ingress_isolated());
  EXPECT_EQ(web.ingress_entries() + web.egress_entries(), 0u);
  const auto& client = r->endpoints(3);
  EXPECT_EQ(client.name(), "client");
  EXPECT_TRUE(client.egress_isolated());
  EXPECT_EQ(client.egress_policies(), 1u);
  EXPECT_GT(client.egress_entries(), 0u);

  v1::ListPolicyEndpointsRequest only_b;
  only_b.set_namespace_("b");
  auto b = ListPolicyEndpoints(core_, only_b);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->endpoints_size(), 1);
  EXPECT_EQ(b->endpoints(0).name(), "client");
}

TEST_F(PolicyApiTest, GetDecodesEveryEntryAndTracesItToItsRuleAndPeer) {
  for (const std::string in : {"a/db", "10.0.1.2"}) {
    v1::PolicyEndpoint ep = Get(in);
    EXPECT_EQ(ep.name(), "db") << in;
    ASSERT_EQ(ep.ingress_policies_size(), 1);
    EXPECT_EQ(ep.ingress_policies(0), "a/db-in");
    EXPECT_EQ(ep.problems_size(), 0);
    bool named = false, first = false, last = false;
    uint32_t covered = 0;
    for (const auto& e : ep.entries()) {
      EXPECT_EQ(e.direction(), "ingress");
      EXPECT_EQ(e.protocol(), "TCP");
      if (e.port_low() == 5432) {
        named = true;
        EXPECT_EQ(e.port_high(), 5432u);
        EXPECT_EQ(e.peer(), "pods of a {app=web}");
        EXPECT_EQ(e.rule(), "a/db-in ingress[0] peer[0]");
      } else {
        // endPort 9000-9100 as masked prefixes, all from the ipBlock rule.
        EXPECT_GE(e.port_low(), 9000u);
        EXPECT_LE(e.port_high(), 9100u);
        EXPECT_EQ(e.rule(), "a/db-in ingress[1] peer[0]");
        EXPECT_NE(e.peer().find("192.0.2.0/24"), std::string::npos) << e.peer();
        EXPECT_EQ(e.peer().find("192.0.2.128/25"), std::string::npos) << e.peer();
        first |= e.port_low() == 9000;
        last |= e.port_high() == 9100;
        covered += e.port_high() - e.port_low() + 1;
      }
    }
    EXPECT_TRUE(named && first && last);
    EXPECT_EQ(covered, 101u);
  }
  v1::PolicyEndpoint client = Get("b/client");
  ASSERT_EQ(client.egress_policies_size(), 1);
  ASSERT_GT(client.entries_size(), 0);
  for (const auto& e : client.entries()) {
    EXPECT_EQ(e.direction(), "egress");
    EXPECT_EQ(e.port_low(), 8080u);
    EXPECT_EQ(e.rule(), "b/client-out egress[0] peer[0]");
    EXPECT_NE(e.peer().find("pods of a"), std::string::npos) << e.peer();
  }
  v1::PolicyEndpoint web = Get("a/web");
  EXPECT_FALSE(web.ingress_isolated());
  EXPECT_EQ(web.entries_size(), 0);
}

TEST_F(PolicyApiTest, GetErrorsNameWhatWasWrong) {
  v1::GetPolicyEndpointRequest req;
  req.set_pod("a/nope");
  auto r = GetPolicyEndpoint(core_, req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("a/nope"), std::string::npos);
  req.set_pod("b/remote");
  r = GetPolicyEndpoint(core_, req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("node-2"), std::string::npos) << r.status();
  req.set_pod("10.9.9.9");
  EXPECT_EQ(GetPolicyEndpoint(core_, req).status().code(), absl::StatusCode::kNotFound);
  req.set_pod("db");
  r = GetPolicyEndpoint(core_, req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("NAMESPACE/NAME"), std::string::npos);
}

TEST_F(PolicyApiTest, TraceNamedPortAllowedOtherPortDeniedByIngress) {
  auto ok = Trace("a/web", "a/db", 5432);
  EXPECT_EQ(ok.verdict(), "ALLOWED");
  EXPECT_EQ(ok.map_verdict(), "ALLOWED");
  EXPECT_FALSE(ok.mismatch()) << ok.problems(0);
  EXPECT_FALSE(ok.egress().isolated());
  EXPECT_TRUE(ok.ingress().isolated());
  EXPECT_EQ(ok.ingress().rule(), "a/db-in ingress[0] peer[0]");
  EXPECT_EQ(ok.ingress().map_rule(), "a/db-in ingress[0] peer[0]");
  EXPECT_EQ(ok.to().pod(), "a/db");
  EXPECT_TRUE(ok.to().local());
  EXPECT_EQ(ok.drop_reason(), "");

  auto no = Trace("a/web", "a/db", 5433);
  EXPECT_EQ(no.verdict(), "DENIED");
  EXPECT_EQ(no.map_verdict(), "DENIED");
  EXPECT_FALSE(no.mismatch());
  EXPECT_EQ(no.drop_reason(), "SKIFF_DROP_POLICY_DENIED_INGRESS");
  EXPECT_EQ(no.map_drop_reason(), "SKIFF_DROP_POLICY_DENIED_INGRESS");
  ASSERT_EQ(no.ingress().selecting_size(), 1);
  EXPECT_EQ(no.ingress().selecting(0), "a/db-in");
  EXPECT_NE(no.ingress().summary().find("a/db-in"), std::string::npos);
  // a/other is not app=web: the named port does not help it.
  EXPECT_EQ(Trace("a/other", "a/db", 5432).verdict(), "DENIED");
}

TEST_F(PolicyApiTest, TraceIpBlockExceptAndEndPort) {
  auto in = Trace("192.0.2.5", "a/db", 9050);
  EXPECT_EQ(in.verdict(), "ALLOWED");
  EXPECT_EQ(in.map_verdict(), "ALLOWED");
  EXPECT_EQ(in.ingress().rule(), "a/db-in ingress[1] peer[0]");
  EXPECT_FALSE(in.egress().enforced());
  for (uint32_t port : {9000u, 9100u})
    EXPECT_EQ(Trace("192.0.2.5", "a/db", port).verdict(), "ALLOWED");
  for (uint32_t port : {8999u, 9101u}) {
    auto t = Trace("192.0.2.5", "a/db", port);
    EXPECT_EQ(t.verdict(), "DENIED") << port;
    EXPECT_EQ(t.map_verdict(), "DENIED") << port;
  }
  auto except = Trace("192.0.2.200", "a/db", 9050);
  EXPECT_EQ(except.verdict(), "DENIED");
  EXPECT_EQ(except.map_verdict(), "DENIED");
  EXPECT_FALSE(except.mismatch());
  EXPECT_EQ(Trace("198.51.100.1", "a/db", 9050).from().identity_is(), "world");
  EXPECT_EQ(Trace("192.0.2.5", "a/db", 9050, "udp").verdict(), "DENIED");
}

TEST_F(PolicyApiTest, TraceEgressOfSourceAndNonIsolatedDestination) {
  auto ok = Trace("b/client", "a/web", 8080);
  EXPECT_EQ(ok.verdict(), "ALLOWED");
  EXPECT_EQ(ok.egress().rule(), "b/client-out egress[0] peer[0]");
  EXPECT_FALSE(ok.ingress().isolated());
  EXPECT_NE(ok.ingress().summary().find("not isolated"), std::string::npos);
  auto no = Trace("b/client", "a/web", 9090);
  EXPECT_EQ(no.verdict(), "DENIED");
  EXPECT_EQ(no.drop_reason(), "SKIFF_DROP_POLICY_DENIED_EGRESS");
  EXPECT_EQ(no.map_drop_reason(), "SKIFF_DROP_POLICY_DENIED_EGRESS");
  // Nothing isolates a/other's egress nor b/client's ingress.
  auto open = Trace("a/other", "b/client", 80, "UDP");
  EXPECT_EQ(open.verdict(), "ALLOWED");
  EXPECT_EQ(open.map_verdict(), "ALLOWED");
  EXPECT_EQ(open.protocol(), "UDP");
  // b/remote's policy is enforced on node-2: this node does not check its egress.
  auto remote = Trace("b/remote", "a/web", 9090);
  EXPECT_FALSE(remote.egress().enforced());
  EXPECT_EQ(remote.verdict(), "ALLOWED");
}

TEST_F(PolicyApiTest, TraceBadArgumentsNotFoundAndServiceAddress) {
  EXPECT_EQ(TraceError("a/web", "a/nope", 80).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(TraceError("a/web", "a/db", 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TraceError("a/web", "a/db", 70000).code(), absl::StatusCode::kInvalidArgument);
  auto proto = TraceError("a/web", "a/db", 80, "icmp");
  EXPECT_EQ(proto.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(proto.message().find("TCP, UDP or SCTP"), std::string::npos);
  auto bad = TraceError("not-an-ip", "a/db", 80);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("--from not-an-ip"), std::string::npos);
  EXPECT_EQ(TraceError("", "a/db", 80).code(), absl::StatusCode::kInvalidArgument);
  auto vip = TraceError("b/client", "10.96.0.10", 80);
  EXPECT_EQ(vip.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(vip.message().find("a/web-svc"), std::string::npos) << vip;
  EXPECT_NE(vip.message().find("10.0.1.1:8080 (a/web)"), std::string::npos) << vip;
}

TEST_F(PolicyApiTest, PolicyChangeIsSeenAfterTheNextApply) {
  using namespace policy::testing;
  EXPECT_EQ(Trace("a/other", "a/web", 80).verdict(), "ALLOWED");
  scene_.cluster.Policy("a", "deny-all", Sel(), {});  // default deny ingress in namespace a
  scene_.Apply(core_);
  auto t = Trace("a/other", "a/web", 80);
  EXPECT_EQ(t.verdict(), "DENIED");
  EXPECT_EQ(t.map_verdict(), "DENIED");
  ASSERT_EQ(t.ingress().selecting_size(), 1);
  EXPECT_EQ(t.ingress().selecting(0), "a/deny-all");
}

TEST_F(PolicyApiTest, DatapathThatDisagreesIsFlagged) {
  // Drop every ingress entry of a/db from the "kernel" map behind the agent's back.
  auto& entries = core_.policy.mutable_entries();
  for (auto it = entries.begin(); it != entries.end();)
    it = it->first.direction == SKIFF_POLICY_INGRESS ? entries.erase(it) : std::next(it);
  auto t = Trace("a/web", "a/db", 5432);
  EXPECT_EQ(t.verdict(), "ALLOWED");
  EXPECT_EQ(t.map_verdict(), "DENIED");
  EXPECT_EQ(t.map_drop_reason(), "SKIFF_DROP_POLICY_DENIED_INGRESS");
  EXPECT_TRUE(t.mismatch());
  ASSERT_GT(t.problems_size(), 0);

  // An endpoint missing from the ipcache while policies exist: not ready.
  core_.ipcache.mutable_entries().clear();
  skiff_pol_state st{};
  st.flags = SKIFF_POL_STATE_F_DENY_UNKNOWN;
  core_.state.mutable_entries()[0] = st;
  auto nr = Trace("a/other", "a/web", 80);
  EXPECT_EQ(nr.verdict(), "ALLOWED");
  EXPECT_EQ(nr.map_verdict(), "DENIED");
  EXPECT_EQ(nr.map_drop_reason(), "SKIFF_DROP_POLICY_NOT_READY");
  EXPECT_TRUE(nr.mismatch());
  auto list = ListPolicyEndpoints(core_, {});
  ASSERT_TRUE(list.ok());
  EXPECT_GE(list->problems_size(), 4);  // every endpoint lacks its ipcache entry
}

TEST_F(PolicyApiTest, NoPolicyStateYetIsFailedPrecondition) {
  core_.board.Publish(std::make_shared<ApiState>());
  EXPECT_EQ(ListPolicyEndpoints(core_, {}).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace skiff::api
