// The node-device datapath (bpf/nodeport.bpf.c, from_netdev) through BPF_PROG_TEST_RUN:
// NodePort to a local backend (DNAT only), to a remote backend (DNAT + SNAT to the node
// address with an allocated port), the reply's reverse translation, port exhaustion, dead NAT
// entries taken over, and traffic that is none of this passing untouched.
//
// The process runs in a network namespace of its own (empty FIB): the program's FIB lookup
// finds no route, so translated packets come back with TC_ACT_OK instead of a redirect
// (the redirect path is covered by tests/e2e/northsouth_e2e_test.cc).
#include <sched.h>

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "maps/flow_hash.h"
#include "maps/policy.h"
#include "tests/bpf/nodeport_fixture.h"

namespace skiff::testing {
namespace {

class NodePortTest : public NodePortFixture {
 protected:
  static void SetUpTestSuite() {
    // An empty network namespace for this process: no routes, so no FIB redirect (see top).
    if (geteuid() == 0) {
      ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
    }
  }
};

TEST_F(NodePortTest, LocalBackendIsDnatOnlyClientAddressKept) {
  NodePortTo({1});
  RunResult r = Run(Tcp(kClient, 40000, kNode, kNodePort, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.retval);
  EXPECT_PACKET_EQ(Tcp(kClient, 40000, kLocal, 8080, kSyn), r.out);
  auto reply = env_->lb->Ct(LbEnv::CtKey(kLocal, kClient, 8080, 40000, 6, SKIFF_CT_REPLY));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->nat_addr, Ip4(kNode));
  EXPECT_EQ(reply->nat_port, htons(kNodePort));
  EXPECT_EQ(env_->NatSize(), 0u);
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_FROM_NETDEV, 0), 1u);
}

TEST_F(NodePortTest, RemoteBackendGetsSnatToNodeAddressAndPortInRange) {
  NodePortTo({2});
  RunResult r = Run(Tcp(kClient, 40000, kNode, kNodePort, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.retval);
  const uint16_t port = SrcPort(r.out);
  EXPECT_GE(port, SKIFF_NAT_PORT_MIN_DEFAULT);
  EXPECT_LE(port, SKIFF_NAT_PORT_MAX_DEFAULT);
  EXPECT_PACKET_EQ(Tcp(kNode, port, kRemote, 8080, kSyn), r.out);

  auto out = env_->Nat(NodePortEnv::NatKey(kClient, kRemote, 40000, 8080, 6, SKIFF_NAT_OUT));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->to_addr, Ip4(kNode));
  EXPECT_EQ(ntohs(out->to_port), port);
  auto in = env_->Nat(NodePortEnv::NatKey(kRemote, kNode, 8080, port, 6, SKIFF_NAT_IN));
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->to_addr, Ip4(kClient));
  EXPECT_EQ(ntohs(in->to_port), 40000);
  EXPECT_EQ(env_->NatSize(), 2u);

  // The client's next segment uses the same port; no new entries.
  RunResult r2 = Run(Tcp(kClient, 40000, kNode, kNodePort, kAck));
  EXPECT_PACKET_EQ(Tcp(kNode, port, kRemote, 8080, kAck), r2.out);
  EXPECT_EQ(env_->NatSize(), 2u);
}

TEST_F(NodePortTest, ReplyFromRemoteBackendIsTranslatedBackToTheClient) {
  NodePortTo({2});
  RunResult r = Run(Tcp(kClient, 40000, kNode, kNodePort, kSyn));
  const uint16_t port = SrcPort(r.out);
  RunResult reply = Run(Tcp(kRemote, 8080, kNode, port, kSyn | kAck));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, reply.retval);
  EXPECT_PACKET_EQ(Tcp(kNode, kNodePort, kClient, 40000, kSyn | kAck), reply.out);
}

// A local pod's ClusterIP flow to a backend on another node: from_container DNATs the
// request, the reply comes back through this device and is reverse-NATed here. It must carry
// the policy-reply mark, or an ingress-isolated client pod's to_container would judge it as a
// new connection from the ClusterIP. Other bits of the mark are kept; an unrelated packet to
// the pod is left unmarked.
TEST_F(NodePortTest, PodsReplyFromRemoteBackendIsMarkedAsPolicyReply) {
  constexpr char kPod[] = "10.244.1.7";
  constexpr char kVip[] = "10.96.0.77";
  Must(env_->lb->AddService(ServiceSpec{.vip = kVip, .port = 80, .rev_nat_id = 7, .active = {2}}));
  RunResult req = RunOn(env_->lb->prog_fd(), Tcp(kPod, 40000, kVip, 80, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, req.retval);
  EXPECT_PACKET_EQ(Tcp(kPod, 40000, kRemote, 8080, kSyn), req.out);

  auto reply = RunTcWithMark(env_->prog_fd(), Tcp(kRemote, 8080, kPod, 40000, kSyn | kAck), 0x42);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, reply->retval);
  EXPECT_PACKET_EQ(Tcp(kVip, 80, kPod, 40000, kSyn | kAck), reply->out);
  EXPECT_EQ(reply->mark, SKIFF_MARK_POLICY_REPLY | 0x42u);

  auto other = RunTcWithMark(env_->prog_fd(), Tcp(kRemote, 8080, kPod, 40001, kSyn | kAck), 0x42);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_PACKET_EQ(Tcp(kRemote, 8080, kPod, 40001, kSyn | kAck), other->out);
  EXPECT_EQ(other->mark, 0x42u);
}

TEST_F(NodePortTest, UdpNodePortToRemoteBackendAndBack) {
  NodePortTo({3}, 17, 30053);
  RunResult r = Run(Udp(kClient, 5000, kNode, 30053));
  const uint16_t port = SrcPort(r.out);
  EXPECT_PACKET_EQ(Udp(kNode, port, kRemote, 5353), r.out);
  RunResult reply = Run(Udp(kRemote, 5353, kNode, port));
  EXPECT_PACKET_EQ(Udp(kNode, 30053, kClient, 5000), reply.out);
}

TEST_F(NodePortTest, NoFreePortDropsWithNamedReason) {
  Reload(61000, 61000);
  NodePortTo({2});
  RunResult r1 = Run(Tcp(kClient, 40000, kNode, kNodePort, kSyn));
  EXPECT_PACKET_EQ(Tcp(kNode, 61000, kRemote, 8080, kSyn), r1.out);
  // A second client to the same backend: the only port is held by a live flow.
  RunResult r2 = Run(Tcp(kClient2, 40000, kNode, kNodePort, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, r2.retval);
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_FROM_NETDEV, SKIFF_DROP_NAT_NO_PORT), 1u);
  EXPECT_EQ(env_->NatSize(), 2u);
}

TEST_F(NodePortTest, PortOfADeadFlowIsTakenOver) {
  Reload(61000, 61000);
  NodePortTo({2});
  Run(Tcp(kClient, 40000, kNode, kNodePort, kSyn));
  // The first flow is gone (its conntrack reply entry expired and was collected).
  Must(env_->lb->ct.Delete(LbEnv::CtKey(kRemote, kClient, 8080, 40000, 6, SKIFF_CT_REPLY)));
  RunResult r = Run(Tcp(kClient2, 40000, kNode, kNodePort, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.retval);
  EXPECT_PACKET_EQ(Tcp(kNode, 61000, kRemote, 8080, kSyn), r.out);
  auto in = env_->Nat(NodePortEnv::NatKey(kRemote, kNode, 8080, 61000, 6, SKIFF_NAT_IN));
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->to_addr, Ip4(kClient2));
}

TEST_F(NodePortTest, PortOfAResetFlowIsFreeAtOnce) {
  // The only SNAT port, held by an established flow that the client then resets: the flow's
  // entries stay for the closing lifetime, but its port serves the next client right away.
  EstablishOnTheOnlyPort();
  RunResult rst = Run(Tcp(kClient, 40000, kNode, kNodePort, kRst));
  EXPECT_PACKET_EQ(Tcp(kNode, 61000, kRemote, 8080, kRst), rst.out);
  auto reply = env_->lb->Ct(LbEnv::CtKey(kRemote, kClient, 8080, 40000, 6, SKIFF_CT_REPLY));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->flags & (SKIFF_CT_F_RESET | SKIFF_CT_F_TX_CLOSING),
            SKIFF_CT_F_RESET | SKIFF_CT_F_TX_CLOSING);

  RunResult r = Run(Tcp(kClient2, 40000, kNode, kNodePort, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.retval);
  EXPECT_PACKET_EQ(Tcp(kNode, 61000, kRemote, 8080, kSyn), r.out);
  auto in = env_->Nat(NodePortEnv::NatKey(kRemote, kNode, 8080, 61000, 6, SKIFF_NAT_IN));
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->to_addr, Ip4(kClient2));
  // The backend's answer goes to the new client, not the reset one.
  RunResult back = Run(Tcp(kRemote, 8080, kNode, 61000, kSyn | kAck));
  EXPECT_PACKET_EQ(Tcp(kNode, kNodePort, kClient2, 40000, kSyn | kAck), back.out);
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_FROM_NETDEV, SKIFF_DROP_NAT_NO_PORT), 0u);
}

TEST_F(NodePortTest, HalfClosedFlowKeepsItsPort) {
  // A FIN from the client closes only its side: the backend may still be sending.
  EstablishOnTheOnlyPort();
  Run(Tcp(kClient, 40000, kNode, kNodePort, kFin | kAck));
  RunResult r = Run(Tcp(kClient2, 40000, kNode, kNodePort, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, r.retval);
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_FROM_NETDEV, SKIFF_DROP_NAT_NO_PORT), 1u);
  // The half-closed flow still gets its data back.
  RunResult data = Run(Tcp(kRemote, 8080, kNode, 61000, kAck));
  EXPECT_PACKET_EQ(Tcp(kNode, kNodePort, kClient, 40000, kAck), data.out);
}

TEST_F(NodePortTest, SameBackendOtherPortsDoNotCollide) {
  Reload(61000, 61001);
  NodePortTo({2});
  uint16_t a = SrcPort(Run(Tcp(kClient, 40000, kNode, kNodePort, kSyn)).out);
  RunResult r = Run(Tcp(kClient2, 40000, kNode, kNodePort, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.retval);
  uint16_t b = SrcPort(r.out);
  // Two ports, 16 random tries: the second flow finds the free one (or, with probability
  // 2^-16, is dropped; the test accepts only the success).
  EXPECT_NE(a, b);
  EXPECT_EQ(env_->NatSize(), 4u);
}

TEST_F(NodePortTest, NotANodePortPassesUntouched) {
  NodePortTo({2});
  for (const Bytes& in : {Tcp(kClient, 40000, kNode, 22, kSyn),
                          Tcp(kClient, 40000, kNode, 61000, kAck),   // NAT range, no entry
                          Udp(kClient, 40000, kNode, kNodePort)}) {  // wrong protocol
    RunResult r = Run(in);
    EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.retval);
    EXPECT_PACKET_EQ(in, r.out);
  }
  EXPECT_EQ(env_->NatSize(), 0u);
  EXPECT_EQ(env_->lb->CtSize(), 0u);
}

TEST_F(NodePortTest, NodePortWithoutBackendsRejects) {
  NodePortTo({});
  RunResult r = Run(Tcp(kClient, 40000, kNode, kNodePort, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_REDIRECT, r.retval);
  EXPECT_EQ(env_->NatSize(), 0u);
}

TEST_F(NodePortTest, ExternalTrafficPolicyLocalUsesOnlyLocalBackendsWithoutSnat) {
  NodePortLocal({1, 2}, {1});
  for (uint16_t cport = 40000; cport < 40020; cport++) {
    RunResult r = Run(Tcp(kClient, cport, kNode, kNodePort, kSyn));
    EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.retval);
    // The local backend, and the client's own address: no SNAT.
    EXPECT_PACKET_EQ(Tcp(kClient, cport, kLocal, 8080, kSyn), r.out);
  }
  EXPECT_EQ(env_->NatSize(), 0u);
  // The pod path (from_container) ignores externalTrafficPolicy: both backends serve pods.
  std::set<std::string> seen;
  for (uint16_t cport = 41000; cport < 41040; cport++) {
    auto r = RunProgram(env_->lb->prog_fd(), Tcp("10.244.1.9", cport, kNode, kNodePort, kSyn));
    ASSERT_TRUE(r.ok());
    seen.insert(absl::StrCat(r->out[30], ".", r->out[31], ".", r->out[32], ".", r->out[33]));
  }
  EXPECT_EQ(seen, (std::set<std::string>{kLocal, kRemote}));
}

TEST_F(NodePortTest, ExternalTrafficPolicyLocalWithoutLocalBackendDrops) {
  NodePortLocal({2}, {});
  RunResult r = Run(Tcp(kClient, 40000, kNode, kNodePort, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, r.retval);
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_FROM_NETDEV, SKIFF_DROP_NO_LOCAL_BACKEND), 1u);
  EXPECT_EQ(env_->NatSize(), 0u);
  EXPECT_EQ(env_->lb->CtSize(), 0u);
  // A pod of this node is an in-cluster client (kube-proxy; Cilium #11746): the pod path
  // (from_container) serves it through the backend on the other node.
  auto p = RunProgram(env_->lb->prog_fd(), Tcp("10.244.1.9", 41000, kNode, kNodePort, kSyn));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_PACKET_EQ(Tcp("10.244.1.9", 41000, kRemote, 8080, kSyn), p->out);
}

class SourceRangeTest : public NodePortTest {};

TEST_F(SourceRangeTest, ClientInsideARangePasses) {
  LoadBalancer(kLbIp, 7, true);
  AllowRange(7, "192.168.100.0", 24);  // kClient
  AllowRange(7, "10.9.9.9", 32);
  RunResult r = Run(Tcp(kClient, 40000, kLbIp, 80, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.retval);
  EXPECT_PACKET_EQ(Tcp(kClient, 40000, kLocal, 8080, kSyn), r.out);
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_FROM_NETDEV, SKIFF_DROP_SOURCE_RANGE), 0u);
}

TEST_F(SourceRangeTest, ClientOutsideEveryRangeIsDroppedWithReason) {
  LoadBalancer(kLbIp, 7, true);
  AllowRange(7, "192.168.100.0", 24);
  // The same prefix under another frontend's rev-NAT id does not admit it either.
  AllowRange(8, "203.0.113.0", 24);
  RunResult r = Run(Tcp(kOutside, 40000, kLbIp, 80, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, r.retval);
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_FROM_NETDEV, SKIFF_DROP_SOURCE_RANGE), 1u);
  EXPECT_EQ(env_->lb->CtSize(), 0u);
}

TEST_F(SourceRangeTest, FlagWithoutRangesAdmitsNoOne) {
  LoadBalancer(kLbIp, 7, true);
  RunResult r = Run(Tcp(kClient, 40000, kLbIp, 80, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, r.retval);
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_FROM_NETDEV, SKIFF_DROP_SOURCE_RANGE), 1u);
}

TEST_F(SourceRangeTest, FrontendWithoutRangesIsUnaffected) {
  LoadBalancer(kLbIp, 7, true);
  LoadBalancer("198.51.100.10", 9, false);
  RunResult r = Run(Tcp(kOutside, 40000, "198.51.100.10", 80, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.retval);
  EXPECT_PACKET_EQ(Tcp(kOutside, 40000, kLocal, 8080, kSyn), r.out);
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_FROM_NETDEV, SKIFF_DROP_SOURCE_RANGE), 0u);
}

TEST_F(SourceRangeTest, PodPathIgnoresRanges) {
  LoadBalancer(kLbIp, 7, true);
  auto r = RunProgram(env_->lb->prog_fd(), Tcp("10.244.1.9", 41000, kLbIp, 80, kSyn));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r->retval);
  EXPECT_PACKET_EQ(Tcp("10.244.1.9", 41000, kLocal, 8080, kSyn), r->out);
}

TEST_F(SourceRangeTest, EstablishedFlowKeepsGoingAfterTheRangeIsRemoved) {
  LoadBalancer(kLbIp, 7, true);
  AllowRange(7, "192.168.100.0", 24);
  RunResult r = Run(Tcp(kClient, 40000, kLbIp, 80, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.retval);
  ClearRanges(7, "192.168.100.0", 24);
  // The open flow goes on (conntrack), a new one from the same client is dropped.
  RunResult r2 = Run(Tcp(kClient, 40000, kLbIp, 80, kAck));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r2.retval);
  EXPECT_PACKET_EQ(Tcp(kClient, 40000, kLocal, 8080, kAck), r2.out);
  RunResult r3 = Run(Tcp(kClient, 40001, kLbIp, 80, kSyn));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, r3.retval);
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_FROM_NETDEV, SKIFF_DROP_SOURCE_RANGE), 1u);
}

// Maglev on the node device: an external client's new flow to a maglev NodePort goes to
// table[flow hash % table size] (the default size, as the agent loads it), local backend
// DNAT-only, remote backend SNATed as usual; and the same tuple picks the same backend again
// once its flow is gone. The pod path's selection tests are in maglev_test.cc.
TEST_F(NodePortTest, MaglevPicksTheTableSlotForExternalClients) {
  Must(env_->lb->AddService(ServiceSpec{.vip = kNode,
                                        .port = kNodePort,
                                        .rev_nat_id = 3,
                                        .active = {1, 2},
                                        .flags = SKIFF_SVC_F_NODE_PORT,
                                        .algorithm = SKIFF_LB_ALG_MAGLEV}));
  std::vector<uint32_t> table(SKIFF_MAGLEV_TABLE_SIZE_DEFAULT);
  for (size_t i = 0; i < table.size(); i++) table[i] = i % 3 == 0 ? 1 : 2;
  Must(env_->lb->AddMaglevTable(3, SKIFF_SCOPE_EXTERNAL, table));
  std::map<uint16_t, std::string> first;
  std::set<std::string> seen;
  for (uint16_t cport = 40000; cport < 40030; cport++) {
    uint32_t slot = skiff_flow_hash4(Ip4(kClient), Ip4(kNode), htons(cport), htons(kNodePort),
                                     IPPROTO_TCP, SKIFF_MAGLEV_HASH_SEED_DEFAULT) %
                    SKIFF_MAGLEV_TABLE_SIZE_DEFAULT;
    const char* want = table[slot] == 1 ? kLocal : kRemote;
    SCOPED_TRACE(absl::StrCat("client port ", cport));
    RunResult r = Run(Tcp(kClient, cport, kNode, kNodePort, kSyn));
    EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.retval);
    if (table[slot] == 1) {
      EXPECT_PACKET_EQ(Tcp(kClient, cport, kLocal, 8080, kSyn), r.out);
    } else {
      EXPECT_PACKET_EQ(Tcp(kNode, SrcPort(r.out), kRemote, 8080, kSyn), r.out);
    }
    first[cport] = want;
    seen.insert(want);
  }
  EXPECT_EQ(seen.size(), 2u);
  // The flows are gone (conntrack and NAT flushed): the same tuples, the same backends.
  Must(env_->lb->ct.Clear());
  Must(env_->nat.Clear());
  for (const auto& [cport, want] : first) {
    RunResult r = Run(Tcp(kClient, cport, kNode, kNodePort, kSyn));
    ASSERT_GE(r.out.size(), 34u);
    EXPECT_EQ(Ip4String(Ip4(want)),
              absl::StrCat(r.out[30], ".", r.out[31], ".", r.out[32], ".", r.out[33]))
        << cport;
  }
}

}  // namespace
}  // namespace skiff::testing
