// NetworkPolicy in the pod datapath (bpf/lib/policy.h) through PROG_TEST_RUN: policies are
// compiled and written by the agent's own compiler and reconciler into the loaded maps, then
// packets run through from_container (egress) and to_container (ingress).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>

#include "agent/policy/compiler.h"
#include "agent/policy/reconciler.h"
#include "tests/bpf/lb_env.h"
#include "tests/harness/bpf_run.h"
#include "tests/harness/privileged.h"
#include "tests/unit/policy_fixture.h"

namespace skiff::testing {
namespace {

using namespace skiff::policy::testing;  // NOLINT
using model::Protocol;

struct Out {
  int32_t verdict = 0;
  uint32_t mark = 0;
};

// Runs a tc program with an __sk_buff context, so the test chooses ingress_ifindex (0 means
// "sent by the node itself") and mark, and reads the mark back.
Out RunTc(int prog_fd, const Bytes& pkt, uint32_t ingress_ifindex = 7, uint32_t mark = 0) {
  PinToCpu(0);
  Bytes out(pkt.size() + 256);
  __sk_buff ctx{};
  ctx.ingress_ifindex = ingress_ifindex;
  ctx.ifindex = 1;  // loopback: the kernel needs a device for the skb
  ctx.mark = mark;
  __sk_buff ctx_out{};
  LIBBPF_OPTS(bpf_test_run_opts, o);
  o.data_in = pkt.data();
  o.data_size_in = pkt.size();
  o.data_out = out.data();
  o.data_size_out = out.size();
  o.ctx_in = &ctx;
  o.ctx_size_in = sizeof(ctx);
  o.ctx_out = &ctx_out;
  o.ctx_size_out = sizeof(ctx_out);
  o.repeat = 1;
  int err = bpf_prog_test_run_opts(prog_fd, &o);
  EXPECT_EQ(err, 0) << "bpf_prog_test_run_opts: " << strerror(errno);
  return Out{static_cast<int32_t>(o.retval), ctx_out.mark};
}

Bytes Tcp(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t flags) {
  return PacketBuilder().Ipv4(src, dst).Tcp(sport, dport, flags).Build();
}

class PolicyBpfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_PRIVILEGED();
    auto env = LbEnv::Load();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(*env);
    ASSERT_TRUE(env_->Reset().ok());
    lxc_bpf* s = env_->skel.get();
    auto ipc = Map<skiff_ipcache_key, skiff_ipcache_val>::From(s->maps.SKIFF_MAP_IPCACHE4);
    auto pol = Map<skiff_policy_key, skiff_policy_val>::From(s->maps.SKIFF_MAP_POLICY4);
    auto st = Map<__u32, skiff_pol_state>::From(s->maps.SKIFF_MAP_POL_STATE);
    auto ct = Map<skiff_ct4_key, skiff_pol_ct_entry>::From(s->maps.SKIFF_MAP_POL_CT4);
    ASSERT_TRUE(ipc.ok() && pol.ok() && st.ok() && ct.ok());
    ipcache_ =
        std::make_unique<reconcile::BpfKvTable<skiff_ipcache_key, skiff_ipcache_val>>(*ipc, 1024);
    policy_ =
        std::make_unique<reconcile::BpfKvTable<skiff_policy_key, skiff_policy_val>>(*pol, 1024);
    state_ = std::make_unique<reconcile::BpfKvTable<__u32, skiff_pol_state>>(*st, 1);
    pol_ct_ = *ct;
    rec_ = std::make_unique<policy::PolicyReconciler>(
        policy::PolicyTables{ipcache_.get(), policy_.get(), state_.get()});
    ASSERT_TRUE(rec_->Restore().ok());

    c_.Namespace("a", {{"team", "a"}});
    c_.Namespace("b", {{"team", "b"}});
    c_.Pod("a", "web", "10.0.1.1", {{"app", "web"}}, {{"http", 8080, Protocol::kTcp}});
    c_.Pod("a", "db", "10.0.1.2", {{"app", "db"}});
    c_.Pod("b", "client", "10.0.2.1", {{"app", "client"}});
  }

  void Program() {
    auto res = rec_->Apply(policy::Compile(c_.Snapshot(), {"node-1", {}}), true);
    ASSERT_TRUE(res.ok()) << res.errors[0];
  }
  int from() const { return bpf_program__fd(env_->skel->progs.from_container); }
  int to() const { return bpf_program__fd(env_->skel->progs.to_container); }
  uint64_t Drops(int dir, int code) const { return env_->Metric(dir, code); }

  std::unique_ptr<LbEnv> env_;
  std::unique_ptr<reconcile::BpfKvTable<skiff_ipcache_key, skiff_ipcache_val>> ipcache_;
  std::unique_ptr<reconcile::BpfKvTable<skiff_policy_key, skiff_policy_val>> policy_;
  std::unique_ptr<reconcile::BpfKvTable<__u32, skiff_pol_state>> state_;
  Map<skiff_ct4_key, skiff_pol_ct_entry> pol_ct_;
  std::unique_ptr<policy::PolicyReconciler> rec_;
  Cluster c_;
};

TEST_F(PolicyBpfTest, NoPolicyEverythingPasses) {
  Program();
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK,
                 RunTc(from(), Tcp("10.0.2.1", 4000, "10.0.1.2", 5432, tcp::kSyn)).verdict);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK,
                 RunTc(to(), Tcp("10.0.2.1", 4000, "10.0.1.2", 5432, tcp::kSyn)).verdict);
  // A pod the agent does not know passes while no policy exists.
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK,
                 RunTc(to(), Tcp("10.0.2.1", 4000, "10.0.7.7", 80, tcp::kSyn)).verdict);
}

TEST_F(PolicyBpfTest, IngressAllowsOnlyTheSelectedPeerAndPort) {
  c_.Policy("a", "db", Sel({{"app", "db"}}), {Rule({NsPeer(Sel({{"team", "b"}}))}, {Port(5432)})});
  Program();
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK,
                 RunTc(to(), Tcp("10.0.2.1", 4000, "10.0.1.2", 5432, tcp::kSyn)).verdict);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT,
                 RunTc(to(), Tcp("10.0.2.1", 4001, "10.0.1.2", 5433, tcp::kSyn)).verdict);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT,
                 RunTc(to(), Tcp("10.0.1.1", 4002, "10.0.1.2", 5432, tcp::kSyn)).verdict)
      << "a/web is not in namespace b";
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT,
                 RunTc(to(), Tcp("203.0.113.1", 4003, "10.0.1.2", 5432, tcp::kSyn)).verdict)
      << "WORLD";
  EXPECT_EQ(Drops(SKIFF_DIR_TO_CONTAINER, SKIFF_DROP_POLICY_DENIED_INGRESS), 3u);
  // Not isolated: a/web takes anything.
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK,
                 RunTc(to(), Tcp("203.0.113.1", 4004, "10.0.1.1", 1, tcp::kSyn)).verdict);
  // Sent by the node itself (kubelet probes): always allowed.
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK,
                 RunTc(to(), Tcp("192.168.0.1", 4005, "10.0.1.2", 9, tcp::kSyn), 0).verdict);
}

TEST_F(PolicyBpfTest, EstablishedAndRepliesPassWithoutRules) {
  // a/db allows b/client on 5432; a/web and b/client are isolated both ways with no rule
  // except web -> db.
  c_.Policy("a", "db", Sel({{"app", "db"}}), {Rule({NsPeer(Sel({{"team", "b"}}))}, {Port(5432)})});
  c_.Policy("a", "web", Sel({{"app", "web"}}), {}, {Rule({PodPeer(Sel({{"app", "db"}}))})},
            {kIngress, kEgress});
  c_.Policy("b", "client", Sel(), {}, {Rule({NsPeer(Sel({{"team", "a"}}))})}, {kIngress, kEgress});
  Program();
  // client -> db: egress of client (to namespace a), ingress of db.
  Bytes syn = Tcp("10.0.2.1", 4000, "10.0.1.2", 5432, tcp::kSyn);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, RunTc(from(), syn).verdict);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, RunTc(to(), syn).verdict);
  // The reply leaves db: recognised and marked, so client's isolated ingress lets it in.
  Bytes synack = Tcp("10.0.1.2", 5432, "10.0.2.1", 4000, tcp::kSyn | tcp::kAck);
  Out r = RunTc(from(), synack);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.verdict);
  EXPECT_EQ(r.mark & SKIFF_MARK_MASK, SKIFF_MARK_POLICY_REPLY);
  Out in = RunTc(to(), synack, 7, r.mark);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, in.verdict);
  EXPECT_EQ(in.mark & SKIFF_MARK_MASK, 0u) << "to_container consumes the mark";
  // Without the mark (request and reply on different paths) conntrack still knows the reply.
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, RunTc(to(), synack).verdict);
  // Established packets pass both hooks.
  Bytes ack = Tcp("10.0.2.1", 4000, "10.0.1.2", 5432, tcp::kAck);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, RunTc(from(), ack).verdict);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, RunTc(to(), ack).verdict);
  // db opening a connection to client is not a reply: client's ingress denies.
  Bytes back = Tcp("10.0.1.2", 5555, "10.0.2.1", 4000, tcp::kSyn);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, RunTc(from(), back).verdict)
      << "db is not egress-isolated";
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, RunTc(to(), back).verdict);
  // A forged reply to a connection that never passed is dropped by the isolated client.
  EXPECT_VERDICT(
      ProgKind::kTc, TC_ACT_SHOT,
      RunTc(to(), Tcp("10.0.1.2", 5432, "10.0.2.1", 4999, tcp::kSyn | tcp::kAck)).verdict);
  // Egress: web may reach db only; client is denied at web's from_container.
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK,
                 RunTc(from(), Tcp("10.0.1.1", 6000, "10.0.1.2", 1, tcp::kSyn)).verdict);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT,
                 RunTc(from(), Tcp("10.0.1.1", 6001, "10.0.2.1", 1, tcp::kSyn)).verdict);
  EXPECT_EQ(Drops(SKIFF_DIR_FROM_CONTAINER, SKIFF_DROP_POLICY_DENIED_EGRESS), 1u);
}

TEST_F(PolicyBpfTest, ClosedConnectionIsCheckedAgainOnReuse) {
  c_.Policy("a", "db", Sel({{"app", "db"}}), {Rule({NsPeer(Sel({{"team", "b"}}))})});
  Program();
  Bytes syn = Tcp("10.0.2.1", 4000, "10.0.1.2", 5432, tcp::kSyn);
  ASSERT_EQ(RunTc(to(), syn).verdict, TC_ACT_OK);
  ASSERT_EQ(RunTc(to(), Tcp("10.0.2.1", 4000, "10.0.1.2", 5432, tcp::kFin | tcp::kAck)).verdict,
            TC_ACT_OK);
  c_.RemovePolicy("a", "db");
  c_.Policy("a", "deny", Sel(), {});
  Program();
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, RunTc(to(), syn).verdict)
      << "a new SYN on a closing tuple is a new connection";
}

TEST_F(PolicyBpfTest, PortRangesNamedPortsAndIpBlocks) {
  c_.Policy("a", "web", Sel({{"app", "web"}}),
            {Rule({CidrPeer("198.51.100.0/24", {"198.51.100.128/25"})},
                  {Port(8000, Protocol::kTcp, 8100)}),
             Rule({PodPeer(Sel({{"app", "db"}}))}, {PortName("http")})});
  Program();
  auto v = [&](const char* src, uint16_t port) {
    return RunTc(to(), Tcp(src, 4000 + port % 1000, "10.0.1.1", port, tcp::kSyn)).verdict;
  };
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, v("198.51.100.1", 8000));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, v("198.51.100.2", 8077));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, v("198.51.100.3", 8100));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, v("198.51.100.4", 8101));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, v("198.51.100.5", 7999));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, v("198.51.100.200", 8050)) << "in except";
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, v("198.51.101.1", 8050)) << "outside the block";
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, v("10.0.1.2", 8080)) << "named port http";
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, v("10.0.1.2", 8081));
  EXPECT_VERDICT(
      ProgKind::kTc, TC_ACT_SHOT,
      RunTc(to(), PacketBuilder().Ipv4("10.0.1.2", "10.0.1.1").Udp(4000, 8080).Build()).verdict)
      << "the name is TCP";
}

TEST_F(PolicyBpfTest, UnknownPodIsUnreachableOnceAnyPolicyExists) {
  c_.Policy("b", "unrelated", Sel({{"app", "client"}}), {Rule({})});
  Program();
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT,
                 RunTc(to(), Tcp("10.0.2.1", 4000, "10.0.7.7", 80, tcp::kSyn)).verdict);
  EXPECT_EQ(Drops(SKIFF_DIR_TO_CONTAINER, SKIFF_DROP_POLICY_NOT_READY), 1u);
  c_.Pod("a", "new", "10.0.7.7", {{"app", "new"}});
  Program();
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK,
                 RunTc(to(), Tcp("10.0.2.1", 4001, "10.0.7.7", 80, tcp::kSyn)).verdict);
}

TEST_F(PolicyBpfTest, EgressSeesTheServiceBackend) {
  ASSERT_TRUE(env_->AddBackend({1, "10.0.1.2", 5432}).ok());
  ServiceSpec svc{"10.96.0.10", 5432};
  svc.active = {1};
  ASSERT_TRUE(env_->AddService(svc).ok());
  // b/client may only talk to app=db pods, on 5432: the ClusterIP itself is no pod.
  c_.Policy("b", "client", Sel(), {},
            {Rule(
                {
                    NsPeer(Sel({{"team", "a"}})),
                },
                {Port(5432)})},
            {kEgress});
  Program();
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK,
                 RunTc(from(), Tcp("10.0.2.1", 4000, "10.96.0.10", 5432, tcp::kSyn)).verdict);
  // A backend the client may not reach: the same ClusterIP now points at b's own namespace.
  ASSERT_TRUE(env_->AddBackend({2, "10.0.2.9", 5432}).ok());
  ServiceSpec other{"10.96.0.11", 5432};
  other.rev_nat_id = 2;
  other.active = {2};
  ASSERT_TRUE(env_->AddService(other).ok());
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT,
                 RunTc(from(), Tcp("10.0.2.1", 4001, "10.96.0.11", 5432, tcp::kSyn)).verdict);
}

TEST_F(PolicyBpfTest, NoPolicyNothingIsTracked) {
  Program();
  Bytes syn = Tcp("10.0.2.1", 4000, "10.0.1.2", 5432, tcp::kSyn);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, RunTc(from(), syn).verdict);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, RunTc(to(), syn).verdict);
  Out r = RunTc(from(), Tcp("10.0.1.2", 5432, "10.0.2.1", 4000, tcp::kSyn | tcp::kAck));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.verdict);
  EXPECT_EQ(r.mark & SKIFF_MARK_MASK, 0u);
  auto entries = pol_ct_.Entries();
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE(entries->empty()) << "no policy in the cluster: the datapath skips policy";
}

TEST_F(PolicyBpfTest, OneEntryPerConnectionFoundFromBothDirections) {
  // Any policy switches tracking on, for unisolated pods too.
  c_.Policy("b", "unrelated", Sel({{"app", "nothing"}}), {Rule({})});
  Program();
  // 10.0.2.1 is the higher address: the key holds the responder first, reversed.
  Bytes syn = Tcp("10.0.2.1", 4000, "10.0.1.2", 5432, tcp::kSyn);
  Bytes synack = Tcp("10.0.1.2", 5432, "10.0.2.1", 4000, tcp::kSyn | tcp::kAck);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, RunTc(from(), syn).verdict);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, RunTc(to(), syn).verdict);
  Out r = RunTc(from(), synack);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.verdict);
  EXPECT_EQ(r.mark & SKIFF_MARK_MASK, SKIFF_MARK_POLICY_REPLY);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, RunTc(to(), synack).verdict);
  auto entries = pol_ct_.Entries();
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  const auto& [k, e] = entries->front();
  EXPECT_EQ(k.saddr, Ip4("10.0.1.2"));
  EXPECT_EQ(k.sport, htons(5432));
  EXPECT_EQ(k.daddr, Ip4("10.0.2.1"));
  EXPECT_EQ(k.dport, htons(4000));
  EXPECT_EQ(k.kind, SKIFF_CT_POLICY);
  EXPECT_EQ(e.flags & (SKIFF_POL_CT_EGRESS_OK | SKIFF_POL_CT_INGRESS_OK | SKIFF_POL_CT_REVERSED),
            SKIFF_POL_CT_EGRESS_OK | SKIFF_POL_CT_INGRESS_OK | SKIFF_POL_CT_REVERSED);
  // The lower endpoint opening a connection: not reversed.
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK,
                 RunTc(from(), Tcp("10.0.1.1", 7000, "10.0.1.2", 80, tcp::kSyn)).verdict);
  auto low = pol_ct_.Lookup(LbEnv::CtKey("10.0.1.1", "10.0.1.2", 7000, 80, 6, SKIFF_CT_POLICY));
  ASSERT_TRUE(low.ok() && low->has_value());
  EXPECT_EQ((*low)->flags & (SKIFF_POL_CT_EGRESS_OK | SKIFF_POL_CT_REVERSED),
            SKIFF_POL_CT_EGRESS_OK);
}

TEST_F(PolicyBpfTest, ClosedConnectionReopenedTheOtherWayIsANewConnection) {
  // a/db is isolated for ingress with no rule; it opened 5432 -> 10.0.2.1:4000 itself.
  c_.Policy("a", "db", Sel({{"app", "db"}}), {});
  Program();
  ASSERT_EQ(RunTc(from(), Tcp("10.0.1.2", 5432, "10.0.2.1", 4000, tcp::kSyn)).verdict, TC_ACT_OK);
  Bytes synack = Tcp("10.0.2.1", 4000, "10.0.1.2", 5432, tcp::kSyn | tcp::kAck);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, RunTc(to(), synack).verdict) << "a reply";
  ASSERT_EQ(RunTc(from(), Tcp("10.0.1.2", 5432, "10.0.2.1", 4000, tcp::kRst)).verdict, TC_ACT_OK);
  // The peer now opens a connection on the same tuple: db's ingress decides, not the old entry.
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT,
                 RunTc(to(), Tcp("10.0.2.1", 4000, "10.0.1.2", 5432, tcp::kSyn)).verdict);
}

TEST_F(PolicyBpfTest, ServiceReplyIntoAnIsolatedClientIsMarked) {
  ASSERT_TRUE(env_->AddBackend({1, "10.0.1.2", 5432}).ok());
  ServiceSpec svc{"10.96.0.10", 5432};
  svc.active = {1};
  ASSERT_TRUE(env_->AddService(svc).ok());
  // b/client is isolated for ingress and admits nobody.
  c_.Policy("b", "client", Sel(), {});
  Program();
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK,
                 RunTc(from(), Tcp("10.0.2.1", 4000, "10.96.0.10", 5432, tcp::kSyn)).verdict);
  // The backend's reply is reverse-NATed by its from_container, which recognises it on the
  // backend's tuple and marks it; client's to_container sees the ClusterIP as source.
  Out r = RunTc(from(), Tcp("10.0.1.2", 5432, "10.0.2.1", 4000, tcp::kSyn | tcp::kAck));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.verdict);
  EXPECT_EQ(r.mark & SKIFF_MARK_MASK, SKIFF_MARK_POLICY_REPLY);
  Bytes natted = Tcp("10.96.0.10", 5432, "10.0.2.1", 4000, tcp::kSyn | tcp::kAck);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, RunTc(to(), natted, 7, r.mark).verdict);
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, RunTc(to(), natted).verdict)
      << "unmarked, the ClusterIP is no peer client admits";
}

}  // namespace
}  // namespace skiff::testing
