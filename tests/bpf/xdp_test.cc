// The XDP program of the node devices (bpf/nodeport.bpf.c from_netdev_xdp) through
// BPF_PROG_TEST_RUN, with the tc program (from_netdev) on the same maps for the paths that
// hand over: new and established flows to remote backends translated and sent out
// (XDP_REDIRECT to the backend's device, XDP_TX back out of the same one), the reply's reverse
// translation, exact output bytes (MACs, TTL, checksums), conntrack and NAT state; and every
// packet XDP must leave alone passing untouched.
//
// The process runs in a network namespace of its own with two veth pairs (names only in that
// namespace, gone with it), static neighbours and forwarding on, so the program's FIB lookup
// resolves: xnp0 faces the clients (and holds the node address), xnp1 the remote pod CIDR
// (SetUpForwardingNetns, nodeport_env.h).
#include <net/if.h>
#include <sched.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "maps/flow_hash.h"
#include "tests/bpf/nodeport_fixture.h"

namespace skiff::testing {
namespace {

constexpr Mac kClientMac{0x02, 0, 0, 0, 0, 0xc2};
constexpr Mac kNp0Mac{0x02, 0, 0, 0, 0, 0xa0};
constexpr Mac kNp1Mac{0x02, 0, 0, 0, 0, 0xb0};
constexpr Mac kRemoteMac{0x02, 0, 0, 0, 0, 0xd5};
constexpr Mac kNearMac{0x02, 0, 0, 0, 0, 0xc5};
constexpr char kNear[] = "192.168.100.50";    // a remote backend reached through xnp0
constexpr char kUnresolved[] = "10.244.2.6";  // a remote backend without a neighbour entry

Bytes TcpOn(Mac src, Mac dst, const char* s, uint16_t sp, const char* d, uint16_t dp, uint8_t flags,
            uint8_t ttl = 64) {
  return PacketBuilder()
      .Eth(src, dst)
      .Ipv4(s, d)
      .Ttl(ttl)
      .Tcp(sp, dp, flags)
      .Payload("hello")
      .Build();
}
Bytes UdpOn(Mac src, Mac dst, const char* s, uint16_t sp, const char* d, uint16_t dp,
            uint8_t ttl = 64) {
  return PacketBuilder().Eth(src, dst).Ipv4(s, d).Ttl(ttl).Udp(sp, dp).Payload("query").Build();
}
// "saddr:sport>daddr:dport" of an IPv4 TCP/UDP frame without options.
std::string Tuple(const Bytes& f) {
  if (f.size() < 38) return "short";
  auto ip = [&](int o) { return absl::StrCat(f[o], ".", f[o + 1], ".", f[o + 2], ".", f[o + 3]); };
  return absl::StrCat(ip(26), ":", f[34] << 8 | f[35], ">", ip(30), ":", f[36] << 8 | f[37]);
}

class XdpTest : public NodePortFixture {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
    auto st = SetUpForwardingNetns();
    ASSERT_TRUE(st.ok()) << st;
  }

  void SetUp() override {
    NodePortFixture::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    np0_ = static_cast<int>(if_nametoindex("xnp0"));
    np1_ = static_cast<int>(if_nametoindex("xnp1"));
    ASSERT_GT(np0_, 0);
    ASSERT_GT(np1_, 0);
    skiff_node_addr4 a{};
    a.address = Ip4(kNode);
    Must(env_->addrs.Update(static_cast<__u32>(np0_), a));
    Must(env_->lb->AddBackend({4, kNear, 8080}));
    Must(env_->lb->AddBackend({5, kUnresolved, 8080}));
  }

  int xdp_fd() const { return bpf_program__fd(env_->skel->progs.from_netdev_xdp); }
  RunResult Xdp(const Bytes& in, int ifindex) {
    auto r = RunXdpOn(xdp_fd(), in, ifindex);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RunResult{};
  }
  // A client's packet to the NodePort as it arrives on xnp0.
  RunResult FromClient(uint16_t cport, uint8_t flags) {
    return Xdp(TcpOn(kClientMac, kNp0Mac, kClient, cport, kNode, kNodePort, flags), np0_);
  }
  std::optional<skiff_ct_entry> Service(uint16_t cport) {
    return env_->lb->Ct(LbEnv::CtKey(kClient, kNode, cport, kNodePort, 6, SKIFF_CT_SERVICE));
  }

  int np0_ = 0, np1_ = 0;
};

TEST_F(XdpTest, NewFlowToRemoteBackendIsTranslatedAndRedirected) {
  NodePortTo({2});
  RunResult r = FromClient(40000, kSyn);
  EXPECT_VERDICT(ProgKind::kXdp, XDP_REDIRECT, r.retval);
  const uint16_t port = SrcPort(r.out);
  EXPECT_GE(port, SKIFF_NAT_PORT_MIN_DEFAULT);
  EXPECT_LE(port, SKIFF_NAT_PORT_MAX_DEFAULT);
  // SNAT + DNAT, TTL - 1, the backend-facing device's MAC to the backend's: exact bytes, so
  // both checksums are the builder's independently computed ones.
  EXPECT_PACKET_EQ(TcpOn(kNp1Mac, kRemoteMac, kNode, port, kRemote, 8080, kSyn, 63), r.out);

  // The state tc would have written.
  auto svc = Service(40000);
  ASSERT_TRUE(svc.has_value());
  EXPECT_EQ(svc->nat_addr, Ip4(kRemote));
  EXPECT_EQ(svc->backend_id, 2u);
  EXPECT_EQ(svc->packets, 1u);
  auto reply = env_->lb->Ct(LbEnv::CtKey(kRemote, kClient, 8080, 40000, 6, SKIFF_CT_REPLY));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->nat_addr, Ip4(kNode));
  EXPECT_EQ(reply->nat_port, htons(kNodePort));
  auto out = env_->Nat(NodePortEnv::NatKey(kClient, kRemote, 40000, 8080, 6, SKIFF_NAT_OUT));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->to_addr, Ip4(kNode));
  EXPECT_EQ(ntohs(out->to_port), port);
  auto in = env_->Nat(NodePortEnv::NatKey(kRemote, kNode, 8080, port, 6, SKIFF_NAT_IN));
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->to_addr, Ip4(kClient));
  EXPECT_EQ(in->to_port, htons(40000));
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_XDP, 0), 1u);
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_FROM_NETDEV, 0), 0u);
}

TEST_F(XdpTest, ReplyFromRemoteBackendIsTranslatedBackToTheClient) {
  NodePortTo({2});
  const uint16_t port = SrcPort(FromClient(40000, kSyn).out);
  RunResult r = Xdp(TcpOn(kRemoteMac, kNp1Mac, kRemote, 8080, kNode, port, kSyn | kAck), np1_);
  EXPECT_VERDICT(ProgKind::kXdp, XDP_REDIRECT, r.retval);
  EXPECT_PACKET_EQ(TcpOn(kNp0Mac, kClientMac, kNode, kNodePort, kClient, 40000, kSyn | kAck, 63),
                   r.out);
  auto reply = env_->lb->Ct(LbEnv::CtKey(kRemote, kClient, 8080, 40000, 6, SKIFF_CT_REPLY));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->packets, 1u);
  // The handshake's final ACK: established, on the service entry and (copied) the reply's.
  FromClient(40000, kAck);
  EXPECT_TRUE(Service(40000)->flags & SKIFF_CT_F_SEEN_NON_SYN);
  EXPECT_EQ(Service(40000)->packets, 2u);
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_XDP, 0), 3u);
}

TEST_F(XdpTest, UdpToRemoteBackendAndBack) {
  NodePortTo({3}, 17, 30053);
  RunResult r = Xdp(UdpOn(kClientMac, kNp0Mac, kClient, 5000, kNode, 30053), np0_);
  EXPECT_VERDICT(ProgKind::kXdp, XDP_REDIRECT, r.retval);
  const uint16_t port = SrcPort(r.out);
  EXPECT_PACKET_EQ(UdpOn(kNp1Mac, kRemoteMac, kNode, port, kRemote, 5353, 63), r.out);
  RunResult back = Xdp(UdpOn(kRemoteMac, kNp1Mac, kRemote, 5353, kNode, port), np1_);
  EXPECT_VERDICT(ProgKind::kXdp, XDP_REDIRECT, back.retval);
  EXPECT_PACKET_EQ(UdpOn(kNp0Mac, kClientMac, kNode, 30053, kClient, 5000, 63), back.out);
}

TEST_F(XdpTest, BackendBehindTheSameDeviceIsSentWithXdpTx) {
  NodePortTo({4});
  RunResult r = FromClient(40000, kSyn);
  EXPECT_VERDICT(ProgKind::kXdp, XDP_TX, r.retval);
  EXPECT_PACKET_EQ(TcpOn(kNp0Mac, kNearMac, kNode, SrcPort(r.out), kNear, 8080, kSyn, 63), r.out);
}

TEST_F(XdpTest, LocalBackendPassesUntouchedAndTcUsesTheBackendXdpChose) {
  NodePortTo({1, 2});
  std::set<std::string> seen;
  for (uint16_t cport = 40000; cport < 40030; cport++) {
    const Bytes in = TcpOn(kClientMac, kNp0Mac, kClient, cport, kNode, kNodePort, kSyn);
    RunResult x = Xdp(in, np0_);
    auto svc = Service(cport);
    ASSERT_TRUE(svc.has_value());
    if (x.retval == XDP_REDIRECT) {
      EXPECT_EQ(svc->backend_id, 2u);
      seen.insert("xdp");
      continue;
    }
    // Local: untouched, entries committed (this packet not yet counted), and tc DNATs it to
    // the backend chosen in XDP rather than picking again.
    EXPECT_VERDICT(ProgKind::kXdp, XDP_PASS, x.retval);
    EXPECT_PACKET_EQ(in, x.out);
    EXPECT_EQ(svc->backend_id, 1u);
    EXPECT_EQ(svc->packets, 0u);
    RunResult t = Run(in);
    EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, t.retval);
    EXPECT_PACKET_EQ(TcpOn(kClientMac, kNp0Mac, kClient, cport, kLocal, 8080, kSyn), t.out);
    EXPECT_EQ(Service(cport)->packets, 1u);
    seen.insert("tc");
  }
  EXPECT_EQ(seen, (std::set<std::string>{"xdp", "tc"}));  // 2^-29 to fail by chance
}

TEST_F(XdpTest, EstablishedFlowsMoveBetweenTcAndXdp) {
  NodePortTo({2});
  // First packet through tc (e.g. XDP attached later): XDP takes over with the same port.
  const Bytes syn = TcpOn(kClientMac, kNp0Mac, kClient, 40000, kNode, kNodePort, kSyn);
  RunResult t = Run(syn);
  const uint16_t port = SrcPort(t.out);
  EXPECT_EQ(Tuple(t.out), absl::StrCat(kNode, ":", port, ">", kRemote, ":8080"));
  RunResult x = FromClient(40000, kAck);
  EXPECT_VERDICT(ProgKind::kXdp, XDP_REDIRECT, x.retval);
  EXPECT_PACKET_EQ(TcpOn(kNp1Mac, kRemoteMac, kNode, port, kRemote, 8080, kAck, 63), x.out);
  // First packet through XDP (e.g. --xdp=disabled later): tc goes on with XDP's port.
  const uint16_t port2 = SrcPort(FromClient(40001, kSyn).out);
  RunResult t2 = Run(TcpOn(kClientMac, kNp0Mac, kClient, 40001, kNode, kNodePort, kAck));
  EXPECT_EQ(Tuple(t2.out), absl::StrCat(kNode, ":", port2, ">", kRemote, ":8080"));
  EXPECT_EQ(env_->NatSize(), 4u);
}

TEST_F(XdpTest, UnresolvedNeighbourPassesAndTcFinishesWithTheSameBackend) {
  NodePortTo({5});
  const Bytes in = TcpOn(kClientMac, kNp0Mac, kClient, 40000, kNode, kNodePort, kSyn);
  RunResult x = Xdp(in, np0_);
  EXPECT_VERDICT(ProgKind::kXdp, XDP_PASS, x.retval);
  EXPECT_PACKET_EQ(in, x.out);
  EXPECT_EQ(env_->NatSize(), 0u);
  RunResult t = Run(in);
  EXPECT_EQ(Tuple(t.out).substr(0, std::string(kNode).size()), kNode);
  EXPECT_NE(Tuple(t.out).find(absl::StrCat(">", kUnresolved, ":8080")), std::string::npos);
  EXPECT_EQ(Service(40000)->packets, 1u);
  EXPECT_EQ(env_->NatSize(), 2u);
  EXPECT_EQ(env_->lb->MetricTotal(SKIFF_DIR_XDP), 0u);
}

TEST_F(XdpTest, EverythingElsePassesUntouched) {
  NodePortTo({2});
  NodePortTo({}, 6, 30081);
  const std::vector<Bytes> frames = {
      TcpOn(kClientMac, kNp0Mac, kClient, 40000, kNode, 22, kSyn),     // not a frontend
      TcpOn(kClientMac, kNp0Mac, kClient, 40000, kNode, 61000, kAck),  // NAT range, no entry
      UdpOn(kClientMac, kNp0Mac, kClient, 40000, kNode, kNodePort),    // wrong protocol
      TcpOn(kClientMac, kNp0Mac, kClient, 40000, kNode, 30081, kSyn),  // no backends: tc rejects
      TcpOn(kClientMac, kNp0Mac, kClient, 40000, kNode, kNodePort, kSyn, 1),  // TTL 1
      PacketBuilder().Eth(kClientMac, kNp0Mac).Ipv4(kClient, kNode).Icmp(8, 0, 1, 1).Build(),
      PacketBuilder().Eth(kClientMac, kNp0Mac).Ipv6("fd00::2", "fd00::1").Tcp(1, 2, kSyn).Build(),
      // A first fragment to the NodePort (tc drops it with its reason), a later one, a
      // truncated frame.
      PacketBuilder()
          .Eth(kClientMac, kNp0Mac)
          .Ipv4(kClient, kNode)
          .Fragment(0, true)
          .Tcp(40000, kNodePort, kSyn)
          .Payload("hello")
          .Build(),
      PacketBuilder()
          .Eth(kClientMac, kNp0Mac)
          .Ipv4(kClient, kNode)
          .Fragment(64, false)
          .L4Proto(6)
          .Payload("rest")
          .Build(),
      PacketBuilder()
          .Eth(kClientMac, kNp0Mac)
          .Ipv4(kClient, kNode)
          .Tcp(40000, kNodePort, kSyn)
          .Truncate(40)
          .Build(),
  };
  for (const Bytes& in : frames) {
    RunResult r = Xdp(in, np0_);
    EXPECT_VERDICT(ProgKind::kXdp, XDP_PASS, r.retval);
    EXPECT_PACKET_EQ(in, r.out);
  }
  EXPECT_EQ(env_->NatSize(), 0u);
  EXPECT_EQ(env_->lb->CtSize(), 0u);
  EXPECT_EQ(env_->lb->MetricTotal(SKIFF_DIR_XDP), 0u);
}

TEST_F(XdpTest, SourceRangeDropsInXdpWithReason) {
  LoadBalancer(kLbIp, 7, true);
  AllowRange(7, "192.168.100.0", 24);
  RunResult r = Xdp(TcpOn(kClientMac, kNp0Mac, kOutside, 40000, kLbIp, 80, kSyn), np0_);
  EXPECT_VERDICT(ProgKind::kXdp, XDP_DROP, r.retval);
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_XDP, SKIFF_DROP_SOURCE_RANGE), 1u);
  EXPECT_EQ(env_->lb->CtSize(), 0u);
  // A client inside the range reaches the (local) backend through tc.
  RunResult ok = Xdp(TcpOn(kClientMac, kNp0Mac, kClient, 40000, kLbIp, 80, kSyn), np0_);
  EXPECT_VERDICT(ProgKind::kXdp, XDP_PASS, ok.retval);
}

TEST_F(XdpTest, ExternalTrafficPolicyLocalWithoutLocalBackendDropsInXdp) {
  NodePortLocal({2}, {});
  RunResult r = FromClient(40000, kSyn);
  EXPECT_VERDICT(ProgKind::kXdp, XDP_DROP, r.retval);
  EXPECT_EQ(env_->lb->Metric(SKIFF_DIR_XDP, SKIFF_DROP_NO_LOCAL_BACKEND), 1u);
  EXPECT_EQ(env_->lb->CtSize(), 0u);
  EXPECT_EQ(env_->NatSize(), 0u);
}

TEST_F(XdpTest, ExternalTrafficPolicyLocalPassesToTheLocalBackendWithoutSnat) {
  NodePortLocal({1, 2}, {1});
  for (uint16_t cport = 40000; cport < 40010; cport++) {
    RunResult r = FromClient(cport, kSyn);
    EXPECT_VERDICT(ProgKind::kXdp, XDP_PASS, r.retval);
    EXPECT_EQ(Service(cport)->backend_id, 1u);
  }
  EXPECT_EQ(env_->NatSize(), 0u);
}

// Maglev in XDP: the new flow's backend is table[flow hash % table size], as in tc (the same
// skiff_svc4_flow_pick), for flows translated in XDP (remote backends) and those left to tc.
TEST_F(XdpTest, MaglevPicksTheTableSlot) {
  Must(env_->lb->AddService(ServiceSpec{.vip = kNode,
                                        .port = kNodePort,
                                        .rev_nat_id = 3,
                                        .active = {2, 4},
                                        .flags = SKIFF_SVC_F_NODE_PORT,
                                        .algorithm = SKIFF_LB_ALG_MAGLEV}));
  std::vector<uint32_t> table(SKIFF_MAGLEV_TABLE_SIZE_DEFAULT);
  for (size_t i = 0; i < table.size(); i++) table[i] = i % 2 ? 2 : 4;
  Must(env_->lb->AddMaglevTable(3, SKIFF_SCOPE_EXTERNAL, table));
  std::set<uint32_t> seen;
  for (uint16_t cport = 41000; cport < 41020; cport++) {
    uint32_t slot = skiff_flow_hash4(Ip4(kClient), Ip4(kNode), htons(cport), htons(kNodePort),
                                     IPPROTO_TCP, SKIFF_MAGLEV_HASH_SEED_DEFAULT) %
                    SKIFF_MAGLEV_TABLE_SIZE_DEFAULT;
    RunResult r = FromClient(cport, kSyn);
    EXPECT_NE(r.retval, XDP_DROP) << cport;
    auto svc = Service(cport);
    ASSERT_TRUE(svc.has_value()) << cport;
    EXPECT_EQ(svc->backend_id, table[slot]) << cport;
    seen.insert(svc->backend_id);
  }
  EXPECT_EQ(seen, (std::set<uint32_t>{2, 4}));
}

}  // namespace
}  // namespace skiff::testing
