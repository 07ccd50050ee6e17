// Host routing (bpf/lib/host_route.h) through BPF_PROG_TEST_RUN: from_container hands a packet
// for another attached pod interface to bpf_redirect_peer, rewritten as a router forwards it
// (TTL − 1 with a valid checksum, the outgoing link's Ethernet addresses), and leaves
// everything else to the node's stack untouched: a route through an interface Skiff did not
// attach, no neighbour entry, TTL 1, traffic for the node itself, and with
// --host-routing=legacy. While a NetworkPolicy exists, the destination's ingress policy is
// checked here on the translated packet, as its to_container (skipped) would. The redirect itself
// (into the pod's namespace) is covered end to end by tests/e2e/services_e2e_test.cc
// (HostRouting*).
//
// Each test process runs in a network namespace of its own, with two "pod" veths (hra, hrb:
// attached), one veth Skiff does not manage (hrx), static routes and neighbours.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <sched.h>
#include <time.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "gtest/gtest.h"
#include "maps/host_route.h"
#include "maps/policy.h"
#include "tests/bpf/lb_env.h"
#include "tests/harness/bpf_run.h"
#include "tests/harness/packet.h"
#include "tests/harness/privileged.h"

namespace skiff::testing {
namespace {

using tcp::kSyn;

constexpr const char* kPodA = "10.244.0.10";
constexpr const char* kPodB = "10.244.0.20";
constexpr const char* kNoNeigh = "10.244.0.30";  // routed to hrb, no neighbour entry
constexpr const char* kOther = "10.244.9.5";     // behind hrx, not a pod interface
constexpr const char* kNode = "10.244.0.1";      // the node's own address
constexpr const char* kVip = "10.96.0.10";
const Mac kPodAMac{0x02, 0, 0, 0, 0x0a, 0x0a};
const Mac kPodBMac{0x02, 0, 0, 0, 0x0b, 0x0b};
const Mac kHraMac{0x02, 0, 0, 0, 0xaa, 0x01};
const Mac kHrbMac{0x02, 0, 0, 0, 0xbb, 0x01};
const Mac kGatewayMac{0x02, 0, 0, 0, 0xee, 0xee};  // what pod A sends to (its gateway)

void Must(const absl::Status& st) { ASSERT_TRUE(st.ok()) << st; }

class HostRouteTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
    const char* script =
        "set -e; ip link set lo up; ip addr add 10.244.0.1/32 dev lo;"
        "ip link add hra address 02:00:00:00:aa:01 type veth peer name hrap;"
        "ip link add hrb address 02:00:00:00:bb:01 type veth peer name hrbp;"
        "ip link add hrx address 02:00:00:00:cc:01 type veth peer name hrxp;"
        "for d in hra hrap hrb hrbp hrx hrxp; do ip link set $d up; done;"
        "ip route add 10.244.0.10/32 dev hra; ip route add 10.244.0.20/32 dev hrb;"
        "ip route add 10.244.0.30/32 dev hrb; ip route add 10.244.9.0/24 dev hrx;"
        "ip neigh replace 10.244.0.10 lladdr 02:00:00:00:0a:0a dev hra nud permanent;"
        "ip neigh replace 10.244.0.20 lladdr 02:00:00:00:0b:0b dev hrb nud permanent;"
        "ip neigh replace 10.244.9.5 lladdr 02:00:00:00:0c:0c dev hrx nud permanent;"
        "echo 1 > /proc/sys/net/ipv4/conf/all/forwarding";
    ASSERT_EQ(std::system(script), 0) << "setting up the test namespace failed";
  }

  void SetUp() override {
    SKIFF_REQUIRE_PRIVILEGED();
    PinToCpu();
    Load(true);
  }

  void Load(bool host_routing) {
    auto env = LbEnv::Load(4096, 0, SKIFF_MAGLEV_TABLE_SIZE_DEFAULT, host_routing);
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(*env);
    Must(env_->Reset());
    auto ifaces =
        Map<__u32, skiff_endpoint_iface>::From(env_->skel->maps.SKIFF_MAP_ENDPOINT_IFACES);
    ASSERT_TRUE(ifaces.ok()) << ifaces.status();
    for (const char* name : {"hra", "hrb"}) Must(ifaces->Update(if_nametoindex(name), {}));
  }

  // Policy in force: pod A is identity 300 (endpoint 1), pod B identity 301 (endpoint 2),
  // ingress-isolated or not.
  void SetPolicy(bool b_isolated) {
    auto st = Map<__u32, skiff_pol_state>::From(env_->skel->maps.SKIFF_MAP_POL_STATE);
    ASSERT_TRUE(st.ok()) << st.status();
    skiff_pol_state v{};
    v.flags = SKIFF_POL_STATE_F_DENY_UNKNOWN;
    Must(st->Update(0, v));
    auto ipc = Map<skiff_ipcache_key, skiff_ipcache_val>::From(env_->skel->maps.SKIFF_MAP_IPCACHE4);
    ASSERT_TRUE(ipc.ok()) << ipc.status();
    Must(ipc->Update({32, Ip4(kPodA)}, {300, 1, 0, {}}));
    Must(
        ipc->Update({32, Ip4(kPodB)},
                    {301, 2, static_cast<__u8>(b_isolated ? SKIFF_EP_F_INGRESS_ISOLATED : 0), {}}));
  }

  // Pod B's ingress allows identity 300 on TCP `port`.
  void AllowAToB(uint16_t port) {
    auto pol = Map<skiff_policy_key, skiff_policy_val>::From(env_->skel->maps.SKIFF_MAP_POLICY4);
    ASSERT_TRUE(pol.ok()) << pol.status();
    skiff_policy_key k{};
    k.prefixlen = SKIFF_POLICY_PREFIX_FULL;
    k.endpoint_id = 2;
    k.identity = 300;
    k.direction = SKIFF_POLICY_INGRESS;
    k.proto = IPPROTO_TCP;
    k.dport = htons(port);
    Must(pol->Update(k, {7, 0}));
  }

  // A frame pod A sends (to its gateway's MAC), run on hra's tc ingress.
  RunResult FromPodA(const Bytes& frame) {
    auto r = RunTcOn(env_->prog_fd(), frame, static_cast<int>(if_nametoindex("hra")));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RunResult{};
  }

  static Bytes Syn(const char* dst, uint16_t dport, uint8_t ttl = 64, Mac src = kPodAMac,
                   Mac dst_mac = kGatewayMac) {
    return PacketBuilder()
        .Eth(src, dst_mac)
        .Ipv4(kPodA, dst)
        .Ttl(ttl)
        .Tcp(40000, dport, kSyn)
        .Payload("hello")
        .Build();
  }

  void ExpectStackUntouched(const Bytes& in) {
    RunResult r = FromPodA(in);
    EXPECT_VERDICT(ProgKind::kTc, TC_ACT_OK, r.retval);
    EXPECT_PACKET_EQ(in, r.out);
    EXPECT_EQ(env_->Metric(SKIFF_DIR_HOST_ROUTED, 0), 0u);
  }

  Map<skiff_host_route4_key, skiff_host_route4> Routes() {
    auto m =
        Map<skiff_host_route4_key, skiff_host_route4>::From(env_->skel->maps.SKIFF_MAP_HOST_ROUTE4);
    EXPECT_TRUE(m.ok()) << m.status();
    return *m;
  }

  // The cache key of pod A's packets to `dst` (Syn: TOS 0, TCP).
  static skiff_host_route4_key RouteKey(const char* dst) {
    skiff_host_route4_key k{};
    k.daddr = Ip4(dst);
    k.saddr = Ip4(kPodA);
    k.ifindex = if_nametoindex("hra");
    k.proto = IPPROTO_TCP;
    return k;
  }

  static __u64 NowNs() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<__u64>(ts.tv_sec) * 1000000000ULL + ts.tv_nsec;
  }

  // A cache entry for pod B that differs from the FIB's answer in its MAC addresses, so
  // that the output shows which one was used.
  static skiff_host_route4 FakeRoute(const char* out_if, __u64 expires, __u32 mtu = 1500) {
    skiff_host_route4 r{};
    r.expires = expires;
    r.ifindex = if_nametoindex(out_if);
    r.mtu = mtu;
    std::memcpy(r.dmac, kFakeDmac.data(), 6);
    std::memcpy(r.smac, kFakeSmac.data(), 6);
    return r;
  }

  static constexpr Mac kFakeDmac{0x02, 0, 0, 0, 0xfd, 0xfd};
  static constexpr Mac kFakeSmac{0x02, 0, 0, 0, 0xf5, 0xf5};

  std::unique_ptr<LbEnv> env_;
};

TEST_F(HostRouteTest, PodToPodIsRedirectedAsARouterForwardsIt) {
  RunResult r = FromPodA(Syn(kPodB, 8080));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_REDIRECT, r.retval);
  // TTL − 1, and the frame pod B expects from its gateway (hrb) to its own MAC.
  EXPECT_PACKET_EQ(Syn(kPodB, 8080, 63, kHrbMac, kPodBMac), r.out);
  std::string why;
  EXPECT_TRUE(ChecksumsValid(r.out, &why)) << why;
  EXPECT_EQ(env_->Metric(SKIFF_DIR_HOST_ROUTED, 0), 1u);
  EXPECT_EQ(env_->Metric(SKIFF_DIR_FROM_CONTAINER, 0), 1u);
}

TEST_F(HostRouteTest, UdpAndTheReverseDirectionToo) {
  Bytes in = PacketBuilder()
                 .Eth(kPodBMac, kGatewayMac)
                 .Ipv4(kPodB, kPodA)
                 .Udp(53, 40000)
                 .Payload("answer")
                 .Build();
  auto r = RunTcOn(env_->prog_fd(), in, static_cast<int>(if_nametoindex("hrb")));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_REDIRECT, r->retval);
  EXPECT_PACKET_EQ(PacketBuilder()
                       .Eth(kHraMac, kPodAMac)
                       .Ipv4(kPodB, kPodA)
                       .Ttl(63)
                       .Udp(53, 40000)
                       .Payload("answer")
                       .Build(),
                   r->out);
}

TEST_F(HostRouteTest, ClusterIpIsTranslatedThenRedirectedToTheBackendPod) {
  Must(env_->AddBackend({.id = 1, .ip = kPodB, .port = 8080}));
  Must(env_->AddService({.vip = kVip, .port = 80, .rev_nat_id = 1, .active = {1}}));
  RunResult r = FromPodA(Syn(kVip, 80));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_REDIRECT, r.retval);
  EXPECT_PACKET_EQ(Syn(kPodB, 8080, 63, kHrbMac, kPodBMac), r.out);
  std::string why;
  EXPECT_TRUE(ChecksumsValid(r.out, &why)) << why;
}

TEST_F(HostRouteTest, RouteThroughAnInterfaceSkiffDoesNotManageTakesTheStack) {
  ExpectStackUntouched(Syn(kOther, 8080));
}

TEST_F(HostRouteTest, NoNeighbourEntryTakesTheStack) { ExpectStackUntouched(Syn(kNoNeigh, 8080)); }

TEST_F(HostRouteTest, TtlOneTakesTheStackForItsTimeExceeded) {
  ExpectStackUntouched(Syn(kPodB, 8080, 1));
}

TEST_F(HostRouteTest, TrafficToTheNodeTakesTheStack) { ExpectStackUntouched(Syn(kNode, 10250)); }

TEST_F(HostRouteTest, WithPolicyANonIsolatedDestinationIsStillRedirected) {
  SetPolicy(false);
  RunResult r = FromPodA(Syn(kPodB, 8080));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_REDIRECT, r.retval);
  EXPECT_PACKET_EQ(Syn(kPodB, 8080, 63, kHrbMac, kPodBMac), r.out);
}

TEST_F(HostRouteTest, IsolatedDestinationWithoutARuleDropsAsItsToContainerWould) {
  SetPolicy(true);
  RunResult r = FromPodA(Syn(kPodB, 8080));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, r.retval);
  EXPECT_EQ(env_->Metric(SKIFF_DIR_TO_CONTAINER, SKIFF_DROP_POLICY_DENIED_INGRESS), 1u);
  EXPECT_EQ(env_->Metric(SKIFF_DIR_HOST_ROUTED, 0), 0u);
  // The rule for another port does not help either.
  AllowAToB(9090);
  r = FromPodA(Syn(kPodB, 8080));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_SHOT, r.retval);
}

TEST_F(HostRouteTest, IsolatedDestinationAllowingTheSourceIsRedirected) {
  SetPolicy(true);
  AllowAToB(8080);
  RunResult r = FromPodA(Syn(kPodB, 8080));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_REDIRECT, r.retval);
  EXPECT_EQ(env_->Metric(SKIFF_DIR_HOST_ROUTED, 0), 1u);
}

TEST_F(HostRouteTest, IngressPolicySeesTheBackendPortAfterTranslation) {
  SetPolicy(true);
  AllowAToB(8080);  // the backend's port, not the service's 80
  Must(env_->AddBackend({.id = 1, .ip = kPodB, .port = 8080}));
  Must(env_->AddService({.vip = kVip, .port = 80, .rev_nat_id = 1, .active = {1}}));
  RunResult r = FromPodA(Syn(kVip, 80));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_REDIRECT, r.retval);
  EXPECT_PACKET_EQ(Syn(kPodB, 8080, 63, kHrbMac, kPodBMac), r.out);
}

TEST_F(HostRouteTest, TheFibAnswerIsCachedAndTheCachedPathGivesTheSameOutput) {
  Bytes want = Syn(kPodB, 8080, 63, kHrbMac, kPodBMac);
  __u64 before = NowNs();
  RunResult first = FromPodA(Syn(kPodB, 8080));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_REDIRECT, first.retval);
  EXPECT_PACKET_EQ(want, first.out);
  auto e = Routes().Lookup(RouteKey(kPodB));
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_TRUE(e->has_value()) << "no cache entry after a host-routed packet";
  const skiff_host_route4& r = **e;
  EXPECT_EQ(r.ifindex, if_nametoindex("hrb"));
  EXPECT_EQ(r.mtu, 1500u);
  EXPECT_EQ(0, std::memcmp(r.dmac, kPodBMac.data(), 6));
  EXPECT_EQ(0, std::memcmp(r.smac, kHrbMac.data(), 6));
  // A lifetime of SKIFF_HOST_ROUTE_TTL_NS from now (the coarse clock may lag by a tick).
  EXPECT_GE(r.expires + 20000000ULL, before + SKIFF_HOST_ROUTE_TTL_NS);
  EXPECT_LE(r.expires, NowNs() + SKIFF_HOST_ROUTE_TTL_NS);

  RunResult second = FromPodA(Syn(kPodB, 8080));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_REDIRECT, second.retval);
  EXPECT_PACKET_EQ(want, second.out);
  std::string why;
  EXPECT_TRUE(ChecksumsValid(second.out, &why)) << why;
  EXPECT_EQ(env_->Metric(SKIFF_DIR_HOST_ROUTED, 0), 2u);
}

TEST_F(HostRouteTest, AFreshCacheEntryReplacesTheFibLookup) {
  Must(Routes().Update(RouteKey(kPodB), FakeRoute("hrb", NowNs() + 60000000000ULL)));
  RunResult r = FromPodA(Syn(kPodB, 8080));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_REDIRECT, r.retval);
  EXPECT_PACKET_EQ(Syn(kPodB, 8080, 63, kFakeSmac, kFakeDmac), r.out);
  // Another source's lookup is its own (fib rules may route it differently).
  Bytes from_b =
      PacketBuilder().Eth(kPodBMac, kGatewayMac).Ipv4(kPodB, kPodA).Tcp(8080, 40000, kSyn).Build();
  auto rb = RunTcOn(env_->prog_fd(), from_b, static_cast<int>(if_nametoindex("hrb")));
  ASSERT_TRUE(rb.ok()) << rb.status();
  EXPECT_PACKET_EQ(PacketBuilder()
                       .Eth(kHraMac, kPodAMac)
                       .Ipv4(kPodB, kPodA)
                       .Ttl(63)
                       .Tcp(8080, 40000, kSyn)
                       .Build(),
                   rb->out);
}

TEST_F(HostRouteTest, ACacheEntryWhoseInterfaceLeftTheEndpointMapIsNotUsed) {
  // hrx: never attached; then hrb once removed from the endpoint map (its pod deleted).
  Must(Routes().Update(RouteKey(kPodB), FakeRoute("hrx", NowNs() + 60000000000ULL)));
  RunResult r = FromPodA(Syn(kPodB, 8080));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_REDIRECT, r.retval);
  EXPECT_PACKET_EQ(Syn(kPodB, 8080, 63, kHrbMac, kPodBMac), r.out);

  Must(Routes().Update(RouteKey(kPodB), FakeRoute("hrb", NowNs() + 60000000000ULL)));
  auto ifaces = Map<__u32, skiff_endpoint_iface>::From(env_->skel->maps.SKIFF_MAP_ENDPOINT_IFACES);
  ASSERT_TRUE(ifaces.ok()) << ifaces.status();
  Must(ifaces->Delete(if_nametoindex("hrb")));
  Must(env_->Reset());  // the counters
  ExpectStackUntouched(Syn(kPodB, 8080));
}

TEST_F(HostRouteTest, AnExpiredCacheEntryIsNotUsedAndIsRefreshed) {
  // A second ago (the BPF side reads the coarse clock, a tick behind).
  Must(Routes().Update(RouteKey(kPodB), FakeRoute("hrb", NowNs() - 1000000000ULL)));
  RunResult r = FromPodA(Syn(kPodB, 8080));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_REDIRECT, r.retval);
  EXPECT_PACKET_EQ(Syn(kPodB, 8080, 63, kHrbMac, kPodBMac), r.out);
  auto e = Routes().Lookup(RouteKey(kPodB));
  ASSERT_TRUE(e.ok() && e->has_value());
  EXPECT_EQ(0, std::memcmp((*e)->dmac, kPodBMac.data(), 6));
  EXPECT_GT((*e)->expires + 20000000ULL, NowNs() + SKIFF_HOST_ROUTE_TTL_NS / 2);
}

TEST_F(HostRouteTest, APacketTooBigForTheCachedMtuAsksTheFib) {
  // The cached MTU lets 40 + 18 bytes through; the packet (59) asks the FIB (MTU 1500).
  Must(Routes().Update(RouteKey(kPodB), FakeRoute("hrb", NowNs() + 60000000000ULL, 40)));
  RunResult r = FromPodA(Syn(kPodB, 8080));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_REDIRECT, r.retval);
  EXPECT_PACKET_EQ(Syn(kPodB, 8080, 63, kHrbMac, kPodBMac), r.out);
  // Exactly at the limit (59 = 41 + 18) the cached entry serves.
  Must(Routes().Update(RouteKey(kPodB), FakeRoute("hrb", NowNs() + 60000000000ULL, 41)));
  r = FromPodA(Syn(kPodB, 8080));
  EXPECT_PACKET_EQ(Syn(kPodB, 8080, 63, kFakeSmac, kFakeDmac), r.out);
}

TEST_F(HostRouteTest, AfterACachedRouteAFrameBeyondTheLinkMtuTakesTheStack) {
  RunResult r = FromPodA(Syn(kPodB, 8080));
  EXPECT_VERDICT(ProgKind::kTc, TC_ACT_REDIRECT, r.retval);
  Must(env_->Reset());
  Bytes big = PacketBuilder()
                  .Eth(kPodAMac, kGatewayMac)
                  .Ipv4(kPodA, kPodB)
                  .Tcp(40000, 8080, kSyn)
                  .Payload(std::string(1600, 'x'))
                  .Build();
  ExpectStackUntouched(big);
}

TEST_F(HostRouteTest, LegacyRoutingLeavesEveryPacketToTheStack) {
  Load(false);
  ExpectStackUntouched(Syn(kPodB, 8080));
}

}  // namespace
}  // namespace skiff::testing
