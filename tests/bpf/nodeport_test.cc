// The node-device datapath (bpf/nodeport.bpf.c, from_netdev) through BPF_PROG_TEST_RUN:
// NodePort to a local backend (DNAT only), to a remote backend (DNAT + SNAT to the node
// address with an allocated port), the reply's reverse translation, port exhaustion, dead NAT
// entries taken over, and traffic that is none of this passing untouched.
//
// The process runs in a network namespace of its own (empty FIB): the program's FIB lookup
// finds no route, so translated packets come back with TC_ACT_OK instead of a redirect
// (the redirect path is covered by tests/e2e/northsouth_e2e_test.cc).
#include <linux/pkt_cls.h>
#include <sched.h>

#include <set>

#include <gtest/gtest.h>

// Before the skeleton: its rodata holds struct skiff_config and struct skiff_nat_config.
#include "absl/strings/str_cat.h"
#include "maps/nat.h"
#include "tests/bpf/lb_env.h"
// clang-format off
#include "nodeport.skel.h"
// clang-format on
#include "tests/harness/bpf_run.h"
#include "tests/harness/privileged.h"

namespace skiff::testing {
namespace {

constexpr char kClient[] = "192.168.100.2";
constexpr char kClient2[] = "192.168.100.3";
constexpr char kNode[] = "192.168.1.10";
constexpr char kLocal[] = "10.244.1.5";
constexpr char kRemote[] = "10.244.2.5";
constexpr uint8_t kSyn = 0x02, kAck = 0x10;
constexpr uint16_t kNodePort = 30080;

void Must(const absl::Status& st) { ASSERT_TRUE(st.ok()) << st; }

class NodePortEnv {
 public:
  static absl::StatusOr<std::unique_ptr<NodePortEnv>> Load(uint16_t port_min, uint16_t port_max) {
    auto lb = LbEnv::Load();
    if (!lb.ok()) return lb.status();
    auto skel = OpenSkeleton<nodeport_bpf>(nodeport_bpf__open, nodeport_bpf__destroy);
    if (!skel.ok()) return skel.status();
    bpf_map* m;
    bpf_object__for_each_map(m, (*skel)->obj) {
      if (int err = bpf_map__set_pin_path(m, nullptr)) return ErrnoStatus(err, "unpinning");
      // The service and conntrack maps are the lxc object's, as the agent shares them.
      bpf_map* shared = bpf_object__find_map_by_name((*lb)->skel->obj, bpf_map__name(m));
      if (shared && bpf_map__fd(shared) >= 0)
        if (int err = bpf_map__reuse_fd(m, bpf_map__fd(shared)))
          return ErrnoStatus(err, "sharing a map");
    }
    (*skel)->rodata->skiff_nat_config.port_min = port_min;
    (*skel)->rodata->skiff_nat_config.port_max = port_max;
    if (auto st = skel->Load(nodeport_bpf__load); !st.ok()) return st;
    std::unique_ptr<NodePortEnv> env(new NodePortEnv());
    env->lb = std::move(*lb);
    env->skel = std::move(*skel);
    auto nat = Map<skiff_nat4_key, skiff_nat4_entry>::From(env->skel->maps.SKIFF_MAP_NAT4);
    auto addrs = Map<__u32, skiff_node_addr4>::From(env->skel->maps.SKIFF_MAP_NODE_ADDR4);
    if (!nat.ok()) return nat.status();
    if (!addrs.ok()) return addrs.status();
    env->nat = *nat;
    env->addrs = *addrs;
    return env;
  }

  int prog_fd() const { return bpf_program__fd(skel->progs.from_netdev); }

  static skiff_nat4_key NatKey(const char* s, const char* d, uint16_t sp, uint16_t dp,
                               uint8_t proto, uint8_t dir) {
    skiff_nat4_key k{};
    k.saddr = Ip4(s);
    k.daddr = Ip4(d);
    k.sport = htons(sp);
    k.dport = htons(dp);
    k.proto = proto;
    k.dir = dir;
    return k;
  }
  std::optional<skiff_nat4_entry> Nat(const skiff_nat4_key& k) const {
    auto v = nat.Lookup(k);
    return v.ok() ? *v : std::nullopt;
  }
  size_t NatSize() const {
    auto e = nat.Entries();
    return e.ok() ? e->size() : 0;
  }

  std::unique_ptr<LbEnv> lb;
  Skeleton<nodeport_bpf> skel;
  Map<skiff_nat4_key, skiff_nat4_entry> nat;
  Map<__u32, skiff_node_addr4> addrs;
};

Bytes Tcp(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t flags) {
  return PacketBuilder().Ipv4(src, dst).Tcp(sport, dport, flags).Payload("hello").Build();
}
Bytes Udp(const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  return PacketBuilder().Ipv4(src, dst).Udp(sport, dport).Payload("query").Build();
}
uint16_t SrcPort(const Bytes& f) { return f.size() > 35 ? (f[34] << 8 | f[35]) : 0; }

class NodePortTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // An empty network namespace for this process: no routes, so no FIB redirect (see top).
    if (geteuid() == 0) {
      ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
    }
  }

  void SetUp() override {
    SKIFF_REQUIRE_PRIVILEGED();
    PinToCpu();
    Reload(SKIFF_NAT_PORT_MIN_DEFAULT, SKIFF_NAT_PORT_MAX_DEFAULT);
  }

  void Reload(uint16_t min, uint16_t max) {
    env_.reset();
    auto env = NodePortEnv::Load(min, max);
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(*env);
    Must(env_->lb->Reset());
    Must(env_->lb->AddBackend({1, kLocal, 8080, 6, SKIFF_BACKEND_ACTIVE, SKIFF_BACKEND_F_LOCAL}));
    Must(env_->lb->AddBackend({2, kRemote, 8080}));
    Must(env_->lb->AddBackend({3, kRemote, 5353, 17}));
    // BPF_PROG_TEST_RUN runs on the namespace's loopback device.
    skiff_node_addr4 a{};
    a.address = Ip4(kNode);
    Must(env_->addrs.Update(1, a));
  }

  void NodePortTo(std::vector<uint32_t> backends, uint8_t proto = 6, uint16_t port = kNodePort) {
    Must(env_->lb->AddService(ServiceSpec{.vip = kNode,
                                          .port = port,
                                          .proto = proto,
                                          .rev_nat_id = 3,
                                          .active = std::move(backends),
                                          .flags = SKIFF_SVC_F_NODE_PORT}));
  }

  // A NodePort with externalTrafficPolicy Local: every backend in the external scope, the
  // local ones in the internal scope, and only SKIFF_SVC_F_EXT_LOCAL on slot 0 (the pod path's
  // internalTrafficPolicy flag stays clear, so only the node-device path may restrict).
  void NodePortLocal(std::vector<uint32_t> all, std::vector<uint32_t> local) {
    Must(env_->lb->AddService(ServiceSpec{.vip = kNode,
                                          .port = kNodePort,
                                          .rev_nat_id = 3,
                                          .active = std::move(all),
                                          .flags = SKIFF_SVC_F_NODE_PORT,
                                          .local = {{std::move(local), {}}}}));
    auto key = LbEnv::Key(kNode, kNodePort, 6, SKIFF_SCOPE_EXTERNAL, 0);
    auto v = env_->lb->services.Lookup(key);
    ASSERT_TRUE(v.ok() && v->has_value());
    skiff_lb4_service slot0 = **v;
    slot0.flags = SKIFF_SVC_F_NODE_PORT | SKIFF_SVC_F_EXT_LOCAL;
    Must(env_->lb->services.Update(key, slot0));
  }

  RunResult Run(const Bytes& in) {
    auto r = RunProgram(env_->prog_fd(), in);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RunResult{};
  }

  std::unique_ptr<NodePortEnv> env_;
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
}

// loadBalancerSourceRanges: a LoadBalancer frontend with SKIFF_SVC_F_SRC_RANGES and its
// ranges in the LPM map, keyed by its rev-NAT id.
constexpr char kLbIp[] = "198.51.100.9";
constexpr char kOutside[] = "203.0.113.5";

class SourceRangeTest : public NodePortTest {
 protected:
  void LoadBalancer(const char* vip, uint16_t rev_nat_id, bool ranges) {
    Must(env_->lb->AddService(
        ServiceSpec{.vip = vip,
                    .port = 80,
                    .rev_nat_id = rev_nat_id,
                    .active = {1},
                    .flags = static_cast<uint8_t>(SKIFF_SVC_F_LOAD_BALANCER |
                                                  (ranges ? SKIFF_SVC_F_SRC_RANGES : 0))}));
  }
  void AllowRange(uint16_t rev_nat_id, const char* addr, uint8_t len) {
    auto m = Map<skiff_lb4_src_range_key, skiff_lb4_src_range_val>::From(
        env_->lb->skel->maps.SKIFF_MAP_LB4_SRC_RANGE);
    ASSERT_TRUE(m.ok()) << m.status();
    skiff_lb4_src_range_key k{};
    k.prefixlen = 32u + len;
    k.rev_nat_id = rev_nat_id;
    k.address = Ip4(addr);
    skiff_lb4_src_range_val v{};
    v.allow = 1;
    Must(m->Update(k, v));
  }
  void ClearRanges(uint16_t rev_nat_id, const char* addr, uint8_t len) {
    auto m = Map<skiff_lb4_src_range_key, skiff_lb4_src_range_val>::From(
        env_->lb->skel->maps.SKIFF_MAP_LB4_SRC_RANGE);
    ASSERT_TRUE(m.ok()) << m.status();
    skiff_lb4_src_range_key k{};
    k.prefixlen = 32u + len;
    k.rev_nat_id = rev_nat_id;
    k.address = Ip4(addr);
    Must(m->Delete(k));
  }
};

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

}  // namespace
}  // namespace skiff::testing
