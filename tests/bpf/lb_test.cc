// The ClusterIP datapath (bpf/lxc.bpf.c, from_container) through BPF_PROG_TEST_RUN. Each case
// sets up maps the way the agent's reconciler writes them, runs one packet (or, in the
// sequences, several), and checks the verdict, the exact output bytes (checksums recomputed
// by the harness's decoder) and the conntrack, affinity and metrics state.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <gtest/gtest.h>

#include "maps/drop_reasons.h"
#include "tests/bpf/lb_env.h"
#include "tests/harness/bpf_case.h"
#include "tests/harness/privileged.h"

namespace skiff::testing {
namespace {

using Case = BpfCase<LbEnv>;
constexpr int kDir = SKIFF_DIR_FROM_CONTAINER;
constexpr uint8_t kTcp = IPPROTO_TCP, kUdp = IPPROTO_UDP;

// Addresses: client pods on this node, remote and local backend pods, frontends.
constexpr const char* kClient = "10.0.1.5";
constexpr const char* kClient2 = "10.0.1.6";
constexpr const char* kB1 = "10.0.2.7";
constexpr const char* kB2 = "10.0.2.8";
constexpr const char* kLocal = "10.0.1.9";
constexpr const char* kVip = "10.96.0.10";
constexpr const char* kVip2 = "10.96.0.11";
constexpr const char* kDnsVip = "10.96.0.53";
constexpr const char* kHairpin = "169.254.42.1";
constexpr const char* kRouter = "10.0.0.1";
constexpr Mac kPodMac{0x02, 0, 0, 0, 0, 0x01}, kHostMac{0x02, 0, 0, 0, 0, 0x02};

const BackendSpec kBackend1{1, kB1, 8080};
const BackendSpec kBackend2{2, kB2, 8080};
const BackendSpec kBackendLocal{3, kLocal, 8080, 6, SKIFF_BACKEND_ACTIVE, SKIFF_BACKEND_F_LOCAL};
const BackendSpec kBackendSelf{4, kClient, 8080, 6, SKIFF_BACKEND_ACTIVE, SKIFF_BACKEND_F_LOCAL};
const BackendSpec kDnsBackend{5, kB1, 5353, 17};

ServiceSpec Web(std::vector<uint32_t> active, std::vector<uint32_t> terminating = {}) {
  return ServiceSpec{
      .vip = kVip, .port = 80, .rev_nat_id = 1, .active = active, .terminating = terminating};
}
ServiceSpec Dns() {
  return ServiceSpec{.vip = kDnsVip, .port = 53, .proto = kUdp, .rev_nat_id = 7, .active = {5}};
}

PacketBuilder V4(const char* src, const char* dst) { return PacketBuilder().Ipv4(src, dst); }
Bytes Tcp(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t flags) {
  return V4(src, dst).Tcp(sport, dport, flags).Build();
}
Bytes Udp(const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  return V4(src, dst).Udp(sport, dport).Payload("query").Build();
}

void Must(const absl::Status& st) { ASSERT_TRUE(st.ok()) << st; }

// Runs a packet as part of a case's setup (a flow's earlier packets).
RunResult Run(LbEnv& env, const Bytes& pkt) {
  auto r = RunProgram(env.prog_fd(), pkt);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : RunResult{};
}

// Sets an IPv4 header's TOS and refreshes its checksum (the builder has no TOS knob).
void SetTos(Bytes& f, uint8_t tos) {
  f[15] = tos;
  f[24] = f[25] = 0;
  uint16_t c = InetChecksum(&f[14], 20);
  f[24] = c >> 8;
  f[25] = c & 0xff;
}

// The ICMP port unreachable a frontend without backends answers with.
Bytes RejectOf(const Bytes& original, const char* vip, const char* client) {
  size_t ihl = (original[14] & 0xf) * 4;
  Bytes quote(original.begin() + 14, original.begin() + 14 + ihl + 8);
  Bytes f = PacketBuilder()
                .Eth(kHostMac, kPodMac)
                .Ipv4(vip, client)
                .IpId(0)
                .IcmpError(3, 3, quote)
                .Build();
  SetTos(f, 0xc0);
  return f;
}

// The RST a frontend without backends answers a TCP segment with: addresses and ports
// swapped, no options, no payload, window 0, DF, TTL 64, IP id 0.
Bytes RstOf(const char* vip, uint16_t vport, const char* client, uint16_t cport, uint32_t seq,
            uint32_t ack, uint8_t flags) {
  return PacketBuilder()
      .Eth(kHostMac, kPodMac)
      .Ipv4(vip, client)
      .IpId(0)
      .DontFragment()
      .Tcp(vport, cport, flags, seq, ack)
      .TcpWindow(0)
      .Build();
}

// ---- expectations --------------------------------------------------------------------------

struct CtWant {
  skiff_ct4_key key;
  const char* nat_addr;
  uint16_t nat_port;
  uint32_t backend_id;
  uint8_t flags;
  int tcp_flags = -1;
  int lifetime = -1;  // seconds from now; -1 = not checked
  int packets = -1;
};

void ExpectCt(const LbEnv& env, const CtWant& w) {
  auto e = env.Ct(w.key);
  ASSERT_TRUE(e.has_value()) << "missing CT entry " << Ip4String(w.key.saddr) << ":"
                             << ntohs(w.key.sport) << " -> " << Ip4String(w.key.daddr) << ":"
                             << ntohs(w.key.dport) << " kind " << int(w.key.kind);
  EXPECT_EQ(Ip4String(e->nat_addr), w.nat_addr);
  EXPECT_EQ(ntohs(e->nat_port), w.nat_port);
  EXPECT_EQ(e->backend_id, w.backend_id);
  EXPECT_EQ(e->flags, w.flags) << "CT flags";
  if (w.tcp_flags >= 0) {
    EXPECT_EQ(e->tcp_flags, w.tcp_flags) << "CT tcp_flags";
  }
  if (w.packets >= 0) {
    EXPECT_EQ(e->packets, static_cast<uint64_t>(w.packets));
  }
  if (w.lifetime >= 0) {
    uint32_t now = MonotonicSec();
    EXPECT_GE(e->expires + 2, now + w.lifetime) << "CT lifetime too short";
    EXPECT_LE(e->expires, now + w.lifetime + 1) << "CT lifetime too long";
  }
}

// The two entries a new flow through kVip:80 (or another frontend) creates.
void ExpectFlow(const LbEnv& env, const char* client, uint16_t cport, const char* vip,
                uint16_t vport, const char* backend, uint16_t bport, uint32_t backend_id,
                uint8_t proto = kTcp, uint8_t flags = 0, int lifetime = -1) {
  bool hairpin = flags & SKIFF_CT_F_HAIRPIN;
  ExpectCt(env, {LbEnv::CtKey(client, vip, cport, vport, proto, SKIFF_CT_SERVICE), backend, bport,
                 backend_id, flags, -1, lifetime, 1});
  ExpectCt(env,
           {LbEnv::CtKey(backend, hairpin ? kHairpin : client, bport, cport, proto, SKIFF_CT_REPLY),
            vip, vport, backend_id, flags, -1, lifetime, 0});
}

void ExpectMetrics(const LbEnv& env, uint64_t forwarded, int drop_code = 0, uint64_t drops = 0) {
  EXPECT_EQ(env.Metric(kDir, 0), forwarded) << "forwarded packets";
  if (drop_code) {
    EXPECT_EQ(env.Metric(kDir, drop_code), drops) << SkiffDropReasonName(drop_code);
  }
  EXPECT_EQ(env.MetricTotal(kDir), forwarded + drops) << "no other outcome counted";
}

void ExpectValid(const RunResult& r) {
  std::string why;
  EXPECT_TRUE(ChecksumsValid(r.out, &why)) << why;
}

// ---- case builders -------------------------------------------------------------------------

using Setup = std::function<void(LbEnv&)>;
using Expect = std::function<void(LbEnv&, const RunResult&)>;

// Map state right before a case's packet runs (taken by the fixture after the case's setup),
// so every case can assert what its one packet changed.
struct Before {
  size_t ct = 0;
  size_t affinity = 0;
};
Before g_before;

size_t AffinitySize(const LbEnv& env) {
  auto e = env.affinity.Entries();
  return e.ok() ? e->size() : 0;
}

// What every single-packet case asserts besides its own expectations: the packet is counted
// once, as forwarded, and conntrack kept its size (a hit), gained a flow's two entries (a new
// flow) or one (a dead flow's service entry rebalanced: its new reply entry sits beside the
// old one until that expires); an untouched packet changes no map.
void ExpectForwardedState(const LbEnv& env, bool translated) {
  ExpectMetrics(env, 1);
  size_t ct = env.CtSize();
  if (translated) {
    EXPECT_TRUE(ct >= g_before.ct && ct <= g_before.ct + 2)
        << "conntrack went from " << g_before.ct << " to " << ct << " entries";
    EXPECT_GE(ct, 2u);
    EXPECT_GE(AffinitySize(env), g_before.affinity);
  } else {
    EXPECT_EQ(ct, g_before.ct) << "an untouched packet changed conntrack";
    EXPECT_EQ(AffinitySize(env), g_before.affinity);
  }
}

Case Translated(std::string name, std::string desc, Setup setup, Bytes in, Bytes out,
                Expect expect) {
  return Case{std::move(name),
              std::move(desc),
              std::move(in),
              std::move(setup),
              TC_ACT_OK,
              std::move(out),
              [expect](LbEnv& env, const RunResult& r) {
                ExpectValid(r);
                ExpectForwardedState(env, true);
                if (expect) expect(env, r);
              }};
}

Case Untouched(std::string name, std::string desc, Setup setup, Bytes in, Expect expect = {}) {
  Bytes out = in;
  return Case{std::move(name),
              std::move(desc),
              std::move(in),
              std::move(setup),
              TC_ACT_OK,
              std::move(out),
              [expect](LbEnv& env, const RunResult& r) {
                ExpectForwardedState(env, false);
                if (expect) expect(env, r);
              }};
}

Case Dropped(std::string name, std::string desc, Setup setup, Bytes in, int reason,
             Expect expect = {}) {
  Bytes out = in;
  return Case{std::move(name),
              std::move(desc),
              std::move(in),
              std::move(setup),
              TC_ACT_SHOT,
              std::move(out),
              [reason, expect](LbEnv& env, const RunResult& r) {
                EXPECT_EQ(env.Metric(kDir, reason), 1u) << SkiffDropReasonName(reason);
                EXPECT_EQ(env.MetricTotal(kDir), 1u);
                EXPECT_EQ(env.CtSize(), g_before.ct) << "a dropped packet changed conntrack";
                EXPECT_EQ(AffinitySize(env), g_before.affinity);
                if (expect) expect(env, r);
              }};
}

// A reject: verdict redirect, exact bytes, valid checksums, no conntrack, one count under
// "no service backend" and nothing else.
Case Rejected(std::string name, std::string desc, Setup setup, Bytes in, Bytes out) {
  return Case{std::move(name),
              std::move(desc),
              std::move(in),
              std::move(setup),
              TC_ACT_REDIRECT,
              std::move(out),
              [](LbEnv& env, const RunResult& r) {
                ExpectValid(r);
                EXPECT_EQ(env.CtSize(), 0u);
                EXPECT_EQ(env.affinity.Entries()->size(), 0u);
                EXPECT_EQ(env.Metric(kDir, SKIFF_DROP_NO_SERVICE_BACKEND), 1u);
                EXPECT_EQ(env.MetricTotal(kDir), 1u);
              }};
}

Setup WithWeb(std::vector<uint32_t> active, std::vector<uint32_t> terminating = {}) {
  return [=](LbEnv& env) {
    for (const auto& b : {kBackend1, kBackend2, kBackendLocal}) Must(env.AddBackend(b));
    Must(env.AddService(Web(active, terminating)));
  };
}

Setup Then(Setup a, Setup b) {
  return [=](LbEnv& env) {
    a(env);
    b(env);
  };
}

// Zeroes counters only (keeps maps), so a case counts just its own packet.
void ZeroMetrics(LbEnv& env) {
  int ncpu = libbpf_num_possible_cpus();
  std::vector<skiff_metrics_val> zeros(ncpu);
  for (__u32 i = 0; i < SKIFF_METRICS_ENTRIES; i++)
    bpf_map_update_elem(env.metrics.fd(), &i, zeros.data(), BPF_ANY);
}

Setup Packets(std::vector<Bytes> pkts) {
  return [=](LbEnv& env) {
    for (const auto& p : pkts) Run(env, p);
    ZeroMetrics(env);
  };
}

ServiceSpec Affine(std::vector<uint32_t> active, uint32_t timeout) {
  ServiceSpec s = Web(active);
  s.flags |= SKIFF_SVC_F_AFFINITY;
  s.affinity_timeout = timeout;
  return s;
}

Setup AffinityTo(uint32_t backend_id, uint64_t age_s) {
  return [=](LbEnv& env) {
    skiff_lb_affinity_val v{};
    v.backend_id = backend_id;
    v.last_used_ns = MonotonicNs() - age_s * 1000000000ull;
    Must(env.affinity.Update(LbEnv::AffinityKey(kClient, 1), v));
  };
}

void ExpectAffinity(const LbEnv& env, uint32_t backend_id, uint64_t not_before_ns) {
  auto v = env.affinity.Lookup(LbEnv::AffinityKey(kClient, 1));
  ASSERT_TRUE(v.ok() && v->has_value()) << "no affinity entry";
  EXPECT_EQ((*v)->backend_id, backend_id);
  EXPECT_GE((*v)->last_used_ns, not_before_ns) << "last_used_ns not refreshed";
}

// Writes a flow's two conntrack entries directly, as an earlier program (or one that ran before
// the hint map existed) would have left them: no hint bit is set.
Setup InjectFlow(const char* client, uint16_t cport, const char* vip, uint16_t vport,
                 const char* backend, uint16_t bport, uint32_t backend_id) {
  return [=](LbEnv& env) {
    skiff_ct_entry e{};
    e.expires = MonotonicSec() + 100;
    e.created = MonotonicSec();
    e.backend_id = backend_id;
    e.rev_nat_id = 1;
    e.flags = SKIFF_CT_F_SEEN_NON_SYN;
    e.nat_addr = Ip4(vip);
    e.nat_port = htons(vport);
    e.orig_addr = Ip4(client);
    e.orig_port = htons(cport);
    Must(env.ct.Update(LbEnv::CtKey(backend, client, bport, cport, kTcp, SKIFF_CT_REPLY), e));
    e.nat_addr = Ip4(backend);
    e.nat_port = htons(bport);
    Must(env.ct.Update(LbEnv::CtKey(client, vip, cport, vport, kTcp, SKIFF_CT_SERVICE), e));
  };
}

Setup HintState(uint32_t state, int64_t armed_in_s = 0) {
  return [=](LbEnv& env) {
    Must(env.SetHint(state, state == SKIFF_CT_HINT_WARMING ? MonotonicSec() + armed_in_s : 0));
  };
}

std::vector<Case> Cases() {
  std::vector<Case> c;
  const uint8_t kSyn = tcp::kSyn, kAck = tcp::kAck;

  // --- new flows: DNAT, conntrack ---
  c.push_back(Translated(
      "tcp_syn_dnat", "a SYN to a ClusterIP is DNATed to its only backend with both CT entries",
      WithWeb({1}), Tcp(kClient, 40000, kVip, 80, kSyn), Tcp(kClient, 40000, kB1, 8080, kSyn),
      [](LbEnv& env, const RunResult&) {
        ExpectFlow(env, kClient, 40000, kVip, 80, kB1, 8080, 1, kTcp, 0, SKIFF_CT_LIFETIME_TCP_SYN);
        EXPECT_EQ(env.CtSize(), 2u);
        ExpectMetrics(env, 1);
        // The hint now lets the flow's packets find both entries.
        EXPECT_TRUE(env.HintBit(kVip, 80, kTcp, SKIFF_CT_SERVICE));
        EXPECT_TRUE(env.HintBit(kB1, 8080, kTcp, SKIFF_CT_REPLY));
        EXPECT_FALSE(env.HintBit(kB1, 8080, kTcp, SKIFF_CT_SERVICE));
      }));
  c.push_back(Translated(
      "tcp_same_port_backend", "backend port equal to the frontend port: only the address changes",
      [](LbEnv& env) {
        Must(env.AddBackend({9, kB2, 80}));
        Must(env.AddService(Web({9})));
      },
      Tcp(kClient, 40000, kVip, 80, kSyn), Tcp(kClient, 40000, kB2, 80, kSyn),
      [](LbEnv& env, const RunResult&) { ExpectFlow(env, kClient, 40000, kVip, 80, kB2, 80, 9); }));
  c.push_back(Translated(
      "tcp_payload_dnat", "a data segment with payload keeps payload and checksum right",
      WithWeb({1}),
      V4(kClient, kVip).Tcp(40000, 80, kAck | tcp::kPsh).Payload("GET / HTTP/1.1\r\n").Build(),
      V4(kClient, kB1).Tcp(40000, 8080, kAck | tcp::kPsh).Payload("GET / HTTP/1.1\r\n").Build(),
      [](LbEnv& env, const RunResult&) {
        // A flow first seen mid-stream is established at once.
        ExpectFlow(env, kClient, 40000, kVip, 80, kB1, 8080, 1, kTcp, SKIFF_CT_F_SEEN_NON_SYN,
                   SKIFF_CT_LIFETIME_TCP_ESTABLISHED);
      }));
  c.push_back(Translated(
      "udp_dnat", "UDP to a DNS ClusterIP is DNATed with the UDP checksum updated",
      [](LbEnv& env) {
        Must(env.AddBackend(kDnsBackend));
        Must(env.AddService(Dns()));
      },
      Udp(kClient, 40000, kDnsVip, 53), Udp(kClient, 40000, kB1, 5353),
      [](LbEnv& env, const RunResult&) {
        ExpectFlow(env, kClient, 40000, kDnsVip, 53, kB1, 5353, 5, kUdp, 0,
                   SKIFF_CT_LIFETIME_NON_TCP);
        ExpectMetrics(env, 1);
      }));
  {
    // A zero UDP checksum means "no checksum" and must stay zero after the rewrite.
    Bytes in = Udp(kClient, 40000, kDnsVip, 53), out = Udp(kClient, 40000, kB1, 5353);
    in[14 + 20 + 6] = in[14 + 20 + 7] = 0;
    out[14 + 20 + 6] = out[14 + 20 + 7] = 0;
    c.push_back(Translated(
        "udp_zero_checksum_stays_zero", "UDP without checksum keeps none",
        [](LbEnv& env) {
          Must(env.AddBackend(kDnsBackend));
          Must(env.AddService(Dns()));
        },
        in, out, nullptr));
  }
  c.push_back(
      Translated("random_among_active", "with two active backends the one picked is recorded in CT",
                 WithWeb({1, 2}), Tcp(kClient, 40000, kVip, 80, kSyn), Bytes{},
                 [](LbEnv& env, const RunResult& r) {
                   auto e = env.Ct(LbEnv::CtKey(kClient, kVip, 40000, 80, kTcp, SKIFF_CT_SERVICE));
                   ASSERT_TRUE(e.has_value());
                   ASSERT_TRUE(e->backend_id == 1 || e->backend_id == 2);
                   const char* b = e->backend_id == 1 ? kB1 : kB2;
                   EXPECT_PACKET_EQ(Tcp(kClient, 40000, b, 8080, tcp::kSyn), r.out);
                   ExpectFlow(env, kClient, 40000, kVip, 80, b, 8080, e->backend_id);
                 }));
  c.back().output.reset();

  // --- established flows ---
  c.push_back(Translated("ct_hit_keeps_backend", "an established flow follows its CT entry",
                         Then(WithWeb({1}), Packets({Tcp(kClient, 40000, kVip, 80, kSyn)})),
                         Tcp(kClient, 40000, kVip, 80, kAck), Tcp(kClient, 40000, kB1, 8080, kAck),
                         [](LbEnv& env, const RunResult&) {
                           ExpectCt(env,
                                    {LbEnv::CtKey(kClient, kVip, 40000, 80, kTcp, SKIFF_CT_SERVICE),
                                     kB1, 8080, 1, SKIFF_CT_F_SEEN_NON_SYN, tcp::kSyn | tcp::kAck,
                                     SKIFF_CT_LIFETIME_TCP_ESTABLISHED, 2});
                           ExpectMetrics(env, 1);
                         }));
  c.push_back(Translated("ct_hit_backend_turned_terminating",
                         "an established flow keeps its backend after it turns terminating",
                         Then(Then(WithWeb({1}), Packets({Tcp(kClient, 40000, kVip, 80, kSyn)})),
                              [](LbEnv& env) {
                                BackendSpec b = kBackend1;
                                b.state = SKIFF_BACKEND_TERMINATING;
                                Must(env.AddBackend(b));
                                Must(env.AddService(Web({2}, {1})));
                              }),
                         Tcp(kClient, 40000, kVip, 80, kAck), Tcp(kClient, 40000, kB1, 8080, kAck),
                         nullptr));
  c.push_back(
      Translated("ct_hit_service_deleted",
                 "an established flow keeps translating after its service and backend are deleted",
                 Then(Then(WithWeb({1}), Packets({Tcp(kClient, 40000, kVip, 80, kSyn)})),
                      [](LbEnv& env) {
                        Must(env.DeleteService(Web({1})));
                        Must(env.backends.Clear());
                      }),
                 Tcp(kClient, 40000, kVip, 80, kAck), Tcp(kClient, 40000, kB1, 8080, kAck),
                 [](LbEnv& env, const RunResult&) { ExpectMetrics(env, 1); }));
  c.push_back(Translated("reply_after_service_deleted",
                         "replies keep their frontend source after the service is gone",
                         Then(Then(WithWeb({1}), Packets({Tcp(kClient, 40000, kVip, 80, kSyn)})),
                              [](LbEnv& env) { Must(env.DeleteService(Web({1}))); }),
                         Tcp(kB1, 8080, kClient, 40000, kSyn | kAck),
                         Tcp(kVip, 80, kClient, 40000, kSyn | kAck), nullptr));
  c.push_back(Translated(
      "ct_expired_rebalances", "an expired CT entry is ignored: the flow is balanced afresh",
      Then(Then(WithWeb({1}), Packets({Tcp(kClient, 40000, kVip, 80, kSyn)})),
           [](LbEnv& env) {
             auto k = LbEnv::CtKey(kClient, kVip, 40000, 80, kTcp, SKIFF_CT_SERVICE);
             auto e = *env.Ct(k);
             e.expires = MonotonicSec() - 1;
             Must(env.ct.Update(k, e));
             Must(env.AddService(Web({2})));
           }),
      Tcp(kClient, 40000, kVip, 80, kSyn), Tcp(kClient, 40000, kB2, 8080, kSyn),
      [](LbEnv& env, const RunResult&) {
        ExpectFlow(env, kClient, 40000, kVip, 80, kB2, 8080, 2);
      }));

  // --- reverse NAT ---
  c.push_back(Translated(
      "reply_rev_nat", "the backend's SYN-ACK leaves with the frontend as source",
      Then(WithWeb({1}), Packets({Tcp(kClient, 40000, kVip, 80, kSyn)})),
      Tcp(kB1, 8080, kClient, 40000, kSyn | kAck), Tcp(kVip, 80, kClient, 40000, kSyn | kAck),
      [](LbEnv& env, const RunResult&) {
        ExpectCt(env, {LbEnv::CtKey(kB1, kClient, 8080, 40000, kTcp, SKIFF_CT_REPLY), kVip, 80, 1,
                       0, tcp::kSyn | tcp::kAck, SKIFF_CT_LIFETIME_TCP_SYN, 1});
        ExpectMetrics(env, 1);
      }));
  c.push_back(Translated(
      "udp_reply_rev_nat", "a DNS answer appears to come from the DNS ClusterIP",
      [](LbEnv& env) {
        Must(env.AddBackend(kDnsBackend));
        Must(env.AddService(Dns()));
        Run(env, Udp(kClient, 40000, kDnsVip, 53));
        ZeroMetrics(env);
      },
      V4(kB1, kClient).Udp(5353, 40000).Payload("answer").Build(),
      V4(kDnsVip, kClient).Udp(53, 40000).Payload("answer").Build(), nullptr));
  c.push_back(Untouched("reply_other_client_port_untouched",
                        "a backend's packet to a client port without a flow is not rewritten",
                        Then(WithWeb({1}), Packets({Tcp(kClient, 40000, kVip, 80, kSyn)})),
                        Tcp(kB1, 8080, kClient, 40001, kSyn | kAck),
                        [](LbEnv& env, const RunResult&) { ExpectMetrics(env, 1); }));

  // --- terminating fallback ---
  c.push_back(Translated("active_before_terminating",
                         "a terminating backend is not picked while an active one exists",
                         WithWeb({1}, {2}), Tcp(kClient, 40000, kVip, 80, kSyn),
                         Tcp(kClient, 40000, kB1, 8080, kSyn), nullptr));
  c.push_back(Translated("terminating_fallback",
                         "with no active backend left, a terminating one serves", WithWeb({}, {2}),
                         Tcp(kClient, 40000, kVip, 80, kSyn), Tcp(kClient, 40000, kB2, 8080, kSyn),
                         [](LbEnv& env, const RunResult&) {
                           ExpectFlow(env, kClient, 40000, kVip, 80, kB2, 8080, 2);
                         }));

  // --- zero backends: reject (TCP: RST, UDP: ICMP port unreachable) ---
  auto empty_dns = [](LbEnv& env) {
    ServiceSpec s = Dns();
    s.active.clear();
    Must(env.AddService(s));
  };
  c.push_back(Rejected("reject_tcp_syn_rst",
                       "a SYN to a frontend without backends gets RST|ACK, seq 0, ack = seq + 1",
                       WithWeb({}), V4(kClient, kVip).Tcp(40000, 80, kSyn, 0x12345678).Build(),
                       RstOf(kVip, 80, kClient, 40000, 0, 0x12345679, tcp::kRst | kAck)));
  c.push_back(Rejected(
      "reject_tcp_syn_trims_options",
      "a SYN with IP options, an MSS option and data (TFO) gets a bare 54-byte RST; ack covers "
      "SYN and data",
      WithWeb({}),
      V4(kClient, kVip)
          .Ipv4Options({0x94, 0x04, 0, 0})
          .Tcp(40000, 80, kSyn, 1000)
          .ForceTcpDataOffset(6)
          .Payload(Bytes{0x02, 0x04, 0x05, 0xb4, 'd', 'a', 't', 'a'})
          .Build(),
      RstOf(kVip, 80, kClient, 40000, 0, 1000 + 1 + 4, tcp::kRst | kAck)));
  c.push_back(Rejected("reject_tcp_seq_wraps", "ack = seq + 1 wraps around 2^32", WithWeb({}),
                       V4(kClient, kVip).Tcp(40000, 80, kSyn, 0xffffffff).Build(),
                       RstOf(kVip, 80, kClient, 40000, 0, 0, tcp::kRst | kAck)));
  c.push_back(Rejected(
      "reject_tcp_ack_segment_rst_seq_from_ack",
      "a data segment with ACK (a flow whose CT is gone) gets a bare RST with seq = its ack",
      WithWeb({}),
      V4(kClient, kVip).Tcp(40000, 80, kAck | tcp::kPsh, 5000, 0xabcdef01).Payload("hello").Build(),
      RstOf(kVip, 80, kClient, 40000, 0xabcdef01, 0, tcp::kRst)));
  c.push_back(Rejected("reject_tcp_fin_without_ack",
                       "a FIN without ACK: RST|ACK with ack = seq + data + 1 (FIN)", WithWeb({}),
                       V4(kClient, kVip).Tcp(40000, 80, tcp::kFin, 70).Payload("abc").Build(),
                       RstOf(kVip, 80, kClient, 40000, 0, 70 + 3 + 1, tcp::kRst | kAck)));
  c.push_back(Dropped(
      "slot_names_deleted_backend",
      "a slot naming a backend whose entry was deleted (zeroed) drops the new flow as missing",
      Then(WithWeb({1}), [](LbEnv& env) { Must(env.backends.Delete(1)); }),
      Tcp(kClient, 40000, kVip, 80, kSyn), SKIFF_DROP_BACKEND_MISSING));
  c.push_back(Dropped(
      "slot_names_backend_beyond_map",
      "a slot naming an id beyond the backends array drops the new flow as missing",
      [](LbEnv& env) {
        for (const auto& b : {kBackend1, kBackend2, kBackendLocal}) Must(env.AddBackend(b));
        Must(env.AddService(Web({env.backends.max_entries()})));
      },
      Tcp(kClient, 40000, kVip, 80, kSyn), SKIFF_DROP_BACKEND_MISSING));
  c.push_back(Dropped(
      "reject_never_answers_rst", "a RST to a frontend without backends is dropped, never answered",
      WithWeb({}), Tcp(kClient, 40000, kVip, 80, tcp::kRst | kAck), SKIFF_DROP_NO_SERVICE_BACKEND,
      [](LbEnv& env, const RunResult&) { EXPECT_EQ(env.CtSize(), 0u); }));
  {
    Bytes q = V4(kClient, kDnsVip).Udp(40000, 53).Payload("a-longer-dns-query").Build();
    c.push_back(
        Rejected("reject_udp_no_backends",
                 "a UDP datagram to a frontend without backends gets ICMP port unreachable back",
                 empty_dns, q, RejectOf(q, kDnsVip, kClient)));
  }
  {
    // A short UDP datagram: the reply is longer than the request (the packet grows).
    Bytes q = V4(kClient, kDnsVip).Udp(40000, 53).Build();
    c.push_back(Rejected("reject_short_udp_grows", "the reject of an 8-byte UDP datagram",
                         empty_dns, q, RejectOf(q, kDnsVip, kClient)));
  }
  {
    Bytes q = V4(kClient, kDnsVip).Ipv4Options({0x94, 0x04, 0, 0}).Udp(40000, 53).Build();
    c.push_back(Rejected("reject_quotes_ip_options",
                         "the ICMP reject quotes the whole IP header, options included", empty_dns,
                         q, RejectOf(q, kDnsVip, kClient)));
  }
  c.push_back(Translated("terminating_only_is_not_empty",
                         "a frontend with only terminating backends does not reject",
                         WithWeb({}, {1}), Tcp(kClient, 40000, kVip, 80, kSyn),
                         Tcp(kClient, 40000, kB1, 8080, kSyn), nullptr));

  // --- sessionAffinity: ClientIP ---
  c.push_back(Translated(
      "affinity_hit", "a fresh affinity entry decides the backend and is refreshed",
      [](LbEnv& env) {
        for (const auto& b : {kBackend1, kBackend2}) Must(env.AddBackend(b));
        Must(env.AddService(Affine({1, 2}, 100)));
        AffinityTo(2, 10)(env);
      },
      Tcp(kClient, 40000, kVip, 80, kSyn), Tcp(kClient, 40000, kB2, 8080, kSyn),
      [](LbEnv& env, const RunResult&) {
        ExpectAffinity(env, 2, MonotonicNs() - 1000000000ull);
        ExpectFlow(env, kClient, 40000, kVip, 80, kB2, 8080, 2, kTcp, SKIFF_CT_F_AFFINITY);
      }));
  c.push_back(Translated(
      "affinity_expired", "an affinity entry older than the timeout is ignored and replaced",
      [](LbEnv& env) {
        for (const auto& b : {kBackend1, kBackend2}) Must(env.AddBackend(b));
        Must(env.AddService(Affine({1}, 100)));
        AffinityTo(2, 101)(env);
      },
      Tcp(kClient, 40000, kVip, 80, kSyn), Tcp(kClient, 40000, kB1, 8080, kSyn),
      [](LbEnv& env, const RunResult&) {
        ExpectAffinity(env, 1, MonotonicNs() - 1000000000ull);
        ExpectFlow(env, kClient, 40000, kVip, 80, kB1, 8080, 1);
      }));
  c.push_back(Translated(
      "affinity_created", "the first connection of a client creates its affinity entry",
      [](LbEnv& env) {
        Must(env.AddBackend(kBackend1));
        Must(env.AddService(Affine({1}, 10800)));
      },
      Tcp(kClient, 40000, kVip, 80, kSyn), Tcp(kClient, 40000, kB1, 8080, kSyn),
      [](LbEnv& env, const RunResult&) { ExpectAffinity(env, 1, MonotonicNs() - 1000000000ull); }));
  c.push_back(Translated(
      "affinity_to_terminating_ignored",
      "affinity does not send a new connection to a terminating backend while active ones exist",
      [](LbEnv& env) {
        BackendSpec b2 = kBackend2;
        b2.state = SKIFF_BACKEND_TERMINATING;
        for (const auto& b : {kBackend1, b2}) Must(env.AddBackend(b));
        ServiceSpec s = Affine({1}, 100);
        s.terminating = {2};
        Must(env.AddService(s));
        AffinityTo(2, 1)(env);
      },
      Tcp(kClient, 40000, kVip, 80, kSyn), Tcp(kClient, 40000, kB1, 8080, kSyn),
      [](LbEnv& env, const RunResult&) { ExpectAffinity(env, 1, 0); }));
  c.push_back(Translated(
      "affinity_backend_gone", "affinity to a backend that no longer exists falls back to random",
      [](LbEnv& env) {
        Must(env.AddBackend(kBackend1));
        Must(env.AddService(Affine({1}, 100)));
        AffinityTo(2, 1)(env);
      },
      Tcp(kClient, 40000, kVip, 80, kSyn), Tcp(kClient, 40000, kB1, 8080, kSyn), nullptr));
  // The backends map is an array: a deleted backend is a zeroed slot, which every reader must
  // take for missing (maps/lb.h). A zeroed slot reads as an active, non-local backend at
  // 0.0.0.0:0, so these cases fail if a reader trusts the lookup alone.
  c.push_back(Translated(
      "affinity_backend_deleted",
      "affinity to a backend deleted since (its slot zeroed) falls back to the frontend's backends",
      [](LbEnv& env) {
        for (const auto& b : {kBackend1, kBackend2}) Must(env.AddBackend(b));
        Must(env.AddService(Affine({1}, 100)));
        AffinityTo(2, 1)(env);
        Must(env.backends.Delete(2));
      },
      Tcp(kClient, 40000, kVip, 80, kSyn), Tcp(kClient, 40000, kB1, 8080, kSyn),
      [](LbEnv& env, const RunResult&) { ExpectAffinity(env, 1, 0); }));
  c.push_back(Translated(
      "affinity_per_client", "another client's affinity entry does not apply",
      [](LbEnv& env) {
        for (const auto& b : {kBackend1, kBackend2}) Must(env.AddBackend(b));
        Must(env.AddService(Affine({1}, 100)));
        skiff_lb_affinity_val v{};
        v.backend_id = 2;
        v.last_used_ns = MonotonicNs();
        Must(env.affinity.Update(LbEnv::AffinityKey(kClient2, 1), v));
      },
      Tcp(kClient, 40000, kVip, 80, kSyn), Tcp(kClient, 40000, kB1, 8080, kSyn), nullptr));

  // --- internalTrafficPolicy: Local ---
  auto itp = [](std::vector<uint32_t> local) {
    return [=](LbEnv& env) {
      for (const auto& b : {kBackend1, kBackend2, kBackendLocal}) Must(env.AddBackend(b));
      ServiceSpec s = Web({1, 2, 3});
      s.local = {{local, {}}};
      Must(env.AddService(s));
    };
  };
  c.push_back(Translated("itp_local_uses_node_local_set",
                         "ITP Local: only the node-local backend is picked", itp({3}),
                         Tcp(kClient, 40000, kVip, 80, kSyn),
                         Tcp(kClient, 40000, kLocal, 8080, kSyn), [](LbEnv& env, const RunResult&) {
                           ExpectFlow(env, kClient, 40000, kVip, 80, kLocal, 8080, 3);
                         }));
  c.push_back(Dropped("itp_local_no_local_backend",
                      "ITP Local with no node-local backend drops (kube-proxy drops, not rejects)",
                      itp({}), Tcp(kClient, 40000, kVip, 80, kSyn), SKIFF_DROP_NO_LOCAL_BACKEND,
                      [](LbEnv& env, const RunResult&) { EXPECT_EQ(env.CtSize(), 0u); }));
  c.push_back(Dropped(
      "itp_local_scope_missing", "ITP Local flag without internal-scope entries drops new flows",
      [](LbEnv& env) {
        Must(env.AddBackend(kBackend1));
        ServiceSpec s = Web({1});
        s.flags |= SKIFF_SVC_F_INT_LOCAL;
        Must(env.AddService(s));
      },
      Tcp(kClient, 40000, kVip, 80, kSyn), SKIFF_DROP_NO_LOCAL_BACKEND));
  c.push_back(Translated(
      "itp_local_affinity_remote_ignored",
      "ITP Local with affinity: a remembered remote backend is not used",
      [](LbEnv& env) {
        for (const auto& b : {kBackend1, kBackendLocal}) Must(env.AddBackend(b));
        ServiceSpec s = Affine({1, 3}, 100);
        s.local = {{{3}, {}}};
        Must(env.AddService(s));
        AffinityTo(1, 1)(env);
      },
      Tcp(kClient, 40000, kVip, 80, kSyn), Tcp(kClient, 40000, kLocal, 8080, kSyn),
      [](LbEnv& env, const RunResult&) { ExpectAffinity(env, 3, 0); }));

  // --- hairpin ---
  auto self = [](LbEnv& env) {
    Must(env.AddBackend(kBackendSelf));
    Must(env.AddService(Web({4})));
  };
  c.push_back(Translated(
      "hairpin_forward", "a pod reaching itself through its service comes from 169.254.42.1", self,
      Tcp(kClient, 40000, kVip, 80, kSyn), Tcp(kHairpin, 40000, kClient, 8080, kSyn),
      [](LbEnv& env, const RunResult&) {
        ExpectFlow(env, kClient, 40000, kVip, 80, kClient, 8080, 4, kTcp, SKIFF_CT_F_HAIRPIN);
        auto e = env.Ct(LbEnv::CtKey(kClient, kHairpin, 8080, 40000, kTcp, SKIFF_CT_REPLY));
        ASSERT_TRUE(e.has_value());
        EXPECT_EQ(Ip4String(e->orig_addr), kClient);
        EXPECT_EQ(ntohs(e->orig_port), 40000);
      }));
  c.push_back(Translated("hairpin_reply", "the hairpinned pod's reply goes back as frontend -> pod",
                         Then(self, Packets({Tcp(kClient, 40000, kVip, 80, kSyn)})),
                         Tcp(kClient, 8080, kHairpin, 40000, kSyn | kAck),
                         Tcp(kVip, 80, kClient, 40000, kSyn | kAck),
                         [](LbEnv& env, const RunResult&) { ExpectMetrics(env, 1); }));
  c.push_back(Translated(
      "hairpin_established", "later hairpin packets keep the source rewrite",
      Then(self, Packets({Tcp(kClient, 40000, kVip, 80, kSyn),
                          Tcp(kClient, 8080, kHairpin, 40000, tcp::kSyn | tcp::kAck)})),
      Tcp(kClient, 40000, kVip, 80, kAck), Tcp(kHairpin, 40000, kClient, 8080, kAck), nullptr));

  // --- two frontends sharing a backend (Cilium #11810) ---
  auto two_vips = [](LbEnv& env) {
    Must(env.AddBackend(kBackend1));
    Must(env.AddService(Web({1})));
    ServiceSpec s2 = Web({1});
    s2.vip = kVip2;
    s2.rev_nat_id = 2;
    Must(env.AddService(s2));
  };
  c.push_back(Translated(
      "two_vips_distinct_entries", "flows to two frontends sharing a backend keep apart",
      Then(two_vips, Packets({Tcp(kClient, 40000, kVip, 80, tcp::kSyn)})),
      Tcp(kClient, 40001, kVip2, 80, kSyn), Tcp(kClient, 40001, kB1, 8080, kSyn),
      [](LbEnv& env, const RunResult&) {
        EXPECT_EQ(env.CtSize(), 4u);
        ExpectFlow(env, kClient, 40001, kVip2, 80, kB1, 8080, 1);
        auto first = env.Ct(LbEnv::CtKey(kB1, kClient, 8080, 40000, kTcp, SKIFF_CT_REPLY));
        ASSERT_TRUE(first.has_value());
        EXPECT_EQ(Ip4String(first->nat_addr), kVip);
      }));
  c.push_back(Translated("two_vips_reply_to_second",
                         "the reply of the second flow carries the second frontend",
                         Then(two_vips, Packets({Tcp(kClient, 40000, kVip, 80, tcp::kSyn),
                                                 Tcp(kClient, 40001, kVip2, 80, tcp::kSyn)})),
                         Tcp(kB1, 8080, kClient, 40001, kSyn | kAck),
                         Tcp(kVip2, 80, kClient, 40001, kSyn | kAck), nullptr));
  c.push_back(Translated("two_vips_reply_to_first",
                         "and the first flow's reply still carries the first",
                         Then(two_vips, Packets({Tcp(kClient, 40000, kVip, 80, tcp::kSyn),
                                                 Tcp(kClient, 40001, kVip2, 80, tcp::kSyn)})),
                         Tcp(kB1, 8080, kClient, 40000, kSyn | kAck),
                         Tcp(kVip, 80, kClient, 40000, kSyn | kAck), nullptr));
  c.push_back(Dropped(
      "two_vips_same_client_port_clash",
      "the same client port to a second frontend with the same backend would reuse the live "
      "4-tuple: refused, the first flow untouched",
      Then(two_vips, Packets({Tcp(kClient, 40000, kVip, 80, tcp::kSyn)})),
      Tcp(kClient, 40000, kVip2, 80, kSyn), SKIFF_DROP_CT_TUPLE_CLASH,
      [](LbEnv& env, const RunResult&) {
        EXPECT_EQ(env.CtSize(), 2u);
        auto e = env.Ct(LbEnv::CtKey(kB1, kClient, 8080, 40000, kTcp, SKIFF_CT_REPLY));
        ASSERT_TRUE(e.has_value());
        EXPECT_EQ(Ip4String(e->nat_addr), kVip);
      }));

  c.push_back(Translated(
      "two_vips_same_client_port_after_rst",
      "once the first flow is closing (the client reset it and freed the port), a new SYN from "
      "that port to the second frontend replaces it, the first flow's entries gone",
      Then(two_vips, Packets({Tcp(kClient, 40000, kVip, 80, tcp::kSyn),
                              Tcp(kClient, 40000, kVip, 80, tcp::kRst | tcp::kAck)})),
      Tcp(kClient, 40000, kVip2, 80, kSyn), Tcp(kClient, 40000, kB1, 8080, kSyn),
      [](LbEnv& env, const RunResult&) {
        EXPECT_EQ(env.CtSize(), 2u);
        auto e = env.Ct(LbEnv::CtKey(kB1, kClient, 8080, 40000, kTcp, SKIFF_CT_REPLY));
        ASSERT_TRUE(e.has_value());
        EXPECT_EQ(Ip4String(e->nat_addr), kVip2);
        EXPECT_FALSE(
            env.Ct(LbEnv::CtKey(kClient, kVip, 40000, 80, kTcp, SKIFF_CT_SERVICE)).has_value());
      }));
  c.push_back(
      Translated("two_vips_same_client_port_after_rst_reply",
                 "and the new flow's SYN-ACK carries the second frontend",
                 Then(two_vips, Packets({Tcp(kClient, 40000, kVip, 80, tcp::kSyn),
                                         Tcp(kClient, 40000, kVip, 80, tcp::kRst | tcp::kAck),
                                         Tcp(kClient, 40000, kVip2, 80, tcp::kSyn)})),
                 Tcp(kB1, 8080, kClient, 40000, kSyn | kAck),
                 Tcp(kVip2, 80, kClient, 40000, kSyn | kAck), nullptr));

  // --- ICMP errors about translated flows ---
  auto dns_flow = [](LbEnv& env) {
    Must(env.AddBackend(kDnsBackend));
    Must(env.AddService(Dns()));
    Run(env, Udp(kClient, 40000, kDnsVip, 53));
    ZeroMetrics(env);
  };
  c.push_back(Translated(
      "icmp_port_unreachable_from_backend",
      "the backend's port unreachable reaches the client as if from the frontend, quote included",
      dns_flow,
      V4(kB1, kClient)
          .IcmpError(3, 3, V4(kClient, kB1).Udp(40000, 5353).Payload("query").BuildL3())
          .Build(),
      V4(kDnsVip, kClient)
          .IcmpError(3, 3, V4(kClient, kDnsVip).Udp(40000, 53).Payload("query").BuildL3())
          .Build(),
      [](LbEnv& env, const RunResult&) { ExpectMetrics(env, 1); }));
  c.push_back(Translated(
      "icmp_frag_needed_from_router",
      "fragmentation needed from a router: the quote is restored, the router stays the source",
      Then(WithWeb({1}), Packets({Tcp(kClient, 40000, kVip, 80, tcp::kSyn)})),
      V4(kRouter, kClient)
          .IcmpError(3, 4, V4(kClient, kB1).Tcp(40000, 8080, kAck).Payload("data").BuildL3(), 1400)
          .Build(),
      V4(kRouter, kClient)
          .IcmpError(3, 4, V4(kClient, kVip).Tcp(40000, 80, kAck).Payload("data").BuildL3(), 1400)
          .Build(),
      nullptr));
  c.push_back(Translated(
      "icmp_error_from_client_about_reply",
      "the client's port unreachable about a reply heads to the backend with the backend quoted",
      dns_flow,
      V4(kClient, kDnsVip)
          .IcmpError(3, 3, V4(kDnsVip, kClient).Udp(53, 40000).Payload("answer").BuildL3())
          .Build(),
      V4(kClient, kB1)
          .IcmpError(3, 3, V4(kB1, kClient).Udp(5353, 40000).Payload("answer").BuildL3())
          .Build(),
      nullptr));
  {
    // Only the first 8 bytes of the quoted UDP header are present (RFC 792 minimum).
    Bytes inner_in = V4(kClient, kB1).Udp(40000, 5353).Payload("query").BuildL3();
    Bytes inner_out = V4(kClient, kDnsVip).Udp(40000, 53).Payload("query").BuildL3();
    inner_in.resize(28);
    inner_out.resize(28);
    c.push_back(Translated("icmp_error_short_quote", "an error quoting only 8 bytes of UDP",
                           dns_flow, V4(kB1, kClient).IcmpError(3, 3, inner_in).Build(),
                           V4(kDnsVip, kClient).IcmpError(3, 3, inner_out).Build(), nullptr));
  }
  c.push_back(Untouched(
      "icmp_error_unknown_flow", "an ICMP error about a flow without CT passes untouched", dns_flow,
      V4(kB1, kClient).IcmpError(3, 3, V4(kClient, kB1).Udp(40001, 5353).BuildL3()).Build()));
  c.push_back(Untouched("icmp_echo_to_vip", "ping to a ClusterIP is not translated", WithWeb({1}),
                        V4(kClient, kVip).Icmp(8, 0, 7, 1).Build(),
                        [](LbEnv& env, const RunResult&) {
                          EXPECT_EQ(env.CtSize(), 0u);
                          ExpectMetrics(env, 1);
                        }));

  // --- non-service traffic ---
  c.push_back(Untouched("pod_to_pod_tcp", "TCP to a pod IP passes untouched, no CT", WithWeb({1}),
                        Tcp(kClient, 40000, kB1, 8080, kSyn), [](LbEnv& env, const RunResult&) {
                          EXPECT_EQ(env.CtSize(), 0u);
                          ExpectMetrics(env, 1);
                          EXPECT_EQ(env.MetricBytes(kDir, 0), 54u);
                        }));
  c.push_back(Untouched("vip_other_port", "the frontend address on another port is not a service",
                        WithWeb({1}), Tcp(kClient, 40000, kVip, 443, kSyn),
                        [](LbEnv& env, const RunResult&) { EXPECT_EQ(env.CtSize(), 0u); }));
  c.push_back(Untouched("vip_other_proto", "UDP to a TCP frontend is not a service", WithWeb({1}),
                        Udp(kClient, 40000, kVip, 80),
                        [](LbEnv& env, const RunResult&) { EXPECT_EQ(env.CtSize(), 0u); }));
  c.push_back(Untouched("arp_untouched", "ARP passes", WithWeb({1}),
                        PacketBuilder().Payload(Bytes(28, 0)).Build(),
                        [](LbEnv& env, const RunResult&) { ExpectMetrics(env, 1); }));
  c.push_back(Untouched("ipv6_untouched", "IPv6 passes (IPv4 services only for now)", WithWeb({1}),
                        PacketBuilder().Ipv6("fd00::5", "fd00::6").Tcp(1, 80, kSyn).Build()));
  c.push_back(Untouched("sctp_untouched", "other L4 protocols pass", WithWeb({1}),
                        V4(kClient, kVip).L4Proto(132).Payload(Bytes(12, 1)).Build()));

  // --- conntrack hint (maps/ct.h): lookups skipped only where no entry can exist ---
  c.push_back(Untouched("hint_non_service_sets_nothing",
                        "a pod-to-pod packet leaves the hint untouched", WithWeb({1}),
                        Tcp(kClient, 40000, kB1, 8080, kAck), [](LbEnv& env, const RunResult&) {
                          skiff_ct_hint h = env.Hint();
                          EXPECT_EQ(h.state, uint32_t{SKIFF_CT_HINT_ARMED});
                          for (auto w : h.bits) ASSERT_EQ(w, 0u);
                          ExpectMetrics(env, 1);
                        }));
  c.push_back(Untouched(
      "hint_armed_proves_absence",
      "armed, a clear bit proves there is no entry: an entry written behind the hint's back "
      "is not looked up",
      Then(HintState(SKIFF_CT_HINT_ARMED), InjectFlow(kClient, 40000, kVip, 80, kB1, 8080, 1)),
      Tcp(kClient, 40000, kVip, 80, kAck), [](LbEnv& env, const RunResult&) {
        auto e = env.Ct(LbEnv::CtKey(kClient, kVip, 40000, 80, kTcp, SKIFF_CT_SERVICE));
        ASSERT_TRUE(e.has_value());
        EXPECT_EQ(e->packets, 0u);
      }));
  // A closing flow written behind the hint's back (no bit set), as stale-entry cases below.
  auto closing_flow = [](LbEnv& env) {
    InjectFlow(kClient, 40000, kVip, 80, kB1, 8080, 1)(env);
    auto rk = LbEnv::CtKey(kB1, kClient, 8080, 40000, kTcp, SKIFF_CT_REPLY);
    auto e = env.Ct(rk);
    ASSERT_TRUE(e.has_value());
    e->flags |= SKIFF_CT_F_TX_CLOSING;
    Must(env.ct.Update(rk, *e));
  };
  c.push_back(Untouched(
      "direct_syn_hint_clear_no_lookup",
      "armed, a direct SYN whose reverse tuple's reply bit is clear does no conntrack lookup: "
      "a closing reply entry written behind the hint's back stays",
      Then(HintState(SKIFF_CT_HINT_ARMED), closing_flow), Tcp(kClient, 40000, kB1, 8080, tcp::kSyn),
      [](LbEnv& env, const RunResult&) {
        EXPECT_TRUE(env.Ct(LbEnv::CtKey(kB1, kClient, 8080, 40000, kTcp, SKIFF_CT_REPLY)));
      }));
  c.push_back(
      Case{"direct_syn_warming_drops_stale_reply",
           "while warming, a direct SYN finds the closing reply entry on its reverse tuple without "
           "a hint bit and deletes it; the SYN passes untouched",
           Tcp(kClient, 40000, kB1, 8080, tcp::kSyn),
           Then(HintState(SKIFF_CT_HINT_WARMING, 3600), closing_flow), TC_ACT_OK,
           Tcp(kClient, 40000, kB1, 8080, tcp::kSyn), [](LbEnv& env, const RunResult&) {
             ExpectMetrics(env, 1);
             EXPECT_EQ(env.CtSize(), g_before.ct - 1);
             EXPECT_FALSE(env.Ct(LbEnv::CtKey(kB1, kClient, 8080, 40000, kTcp, SKIFF_CT_REPLY)));
             EXPECT_TRUE(env.Ct(LbEnv::CtKey(kClient, kVip, 40000, 80, kTcp, SKIFF_CT_SERVICE)));
           }});
  c.push_back(Translated("hint_warming_finds_older_entry",
                         "while warming, an entry older than the hint is found and its bit set",
                         Then(HintState(SKIFF_CT_HINT_WARMING, 3600),
                              InjectFlow(kClient, 40000, kVip, 80, kB1, 8080, 1)),
                         Tcp(kClient, 40000, kVip, 80, kAck), Tcp(kClient, 40000, kB1, 8080, kAck),
                         [](LbEnv& env, const RunResult&) {
                           EXPECT_TRUE(env.HintBit(kVip, 80, kTcp, SKIFF_CT_SERVICE));
                           EXPECT_FALSE(env.HintBit(kB1, 8080, kTcp, SKIFF_CT_REPLY));
                           EXPECT_EQ(env.Hint().state, uint32_t{SKIFF_CT_HINT_WARMING});
                           ExpectMetrics(env, 1);
                         }));
  c.push_back(
      Translated("hint_warming_finds_older_reply",
                 "while warming, an older reply entry is found (reverse NAT) and its bit set",
                 Then(HintState(SKIFF_CT_HINT_WARMING, 3600),
                      InjectFlow(kClient, 40000, kVip, 80, kB1, 8080, 1)),
                 Tcp(kB1, 8080, kClient, 40000, kAck), Tcp(kVip, 80, kClient, 40000, kAck),
                 [](LbEnv& env, const RunResult&) {
                   EXPECT_TRUE(env.HintBit(kB1, 8080, kTcp, SKIFF_CT_REPLY));
                   EXPECT_FALSE(env.HintBit(kClient, 40000, kTcp, SKIFF_CT_SERVICE));
                 }));
  c.push_back(
      Untouched("hint_fresh_starts_warming",
                "a fresh hint (new map beside an old conntrack) warms up for the longest lifetime",
                Then(WithWeb({1}), HintState(SKIFF_CT_HINT_FRESH)),
                Tcp(kClient, 40000, kB1, 8080, kAck), [](LbEnv& env, const RunResult&) {
                  skiff_ct_hint h = env.Hint();
                  EXPECT_EQ(h.state, uint32_t{SKIFF_CT_HINT_WARMING});
                  uint32_t want = MonotonicSec() + SKIFF_CT_LIFETIME_TCP_ESTABLISHED + 1;
                  EXPECT_GE(h.armed_at + 2, want);
                  EXPECT_LE(h.armed_at, want);
                }));
  c.push_back(Untouched("hint_warming_arms_when_due",
                        "a warming hint whose window has passed becomes armed",
                        Then(WithWeb({1}), HintState(SKIFF_CT_HINT_WARMING, -1)),
                        Tcp(kClient, 40000, kB1, 8080, kAck), [](LbEnv& env, const RunResult&) {
                          EXPECT_EQ(env.Hint().state, uint32_t{SKIFF_CT_HINT_ARMED});
                        }));

  // --- malformed corpus: never rewritten ---
  c.push_back(Dropped("malformed_bad_ihl", "IHL 4 to a frontend: dropped, not translated",
                      WithWeb({1}), V4(kClient, kVip).ForceIhl(4).Tcp(40000, 80, kSyn).Build(),
                      SKIFF_DROP_BAD_IHL,
                      [](LbEnv& env, const RunResult&) { EXPECT_EQ(env.CtSize(), 0u); }));
  c.push_back(Dropped("malformed_total_length", "total length past the frame: dropped",
                      WithWeb({1}),
                      V4(kClient, kVip).ForceTotalLength(1500).Tcp(40000, 80, kSyn).Build(),
                      SKIFF_DROP_BAD_IP_LENGTH));
  c.push_back(Dropped("malformed_tcp_doff", "TCP data offset 3: dropped", WithWeb({1}),
                      V4(kClient, kVip).Tcp(40000, 80, kSyn).ForceTcpDataOffset(3).Build(),
                      SKIFF_DROP_BAD_L4_HEADER));
  {
    Bytes cut = Tcp(kClient, 40000, kVip, 80, tcp::kSyn);
    cut.resize(14 + 20 + 10);
    cut[16] = 0;
    cut[17] = 30;
    cut[24] = cut[25] = 0;
    uint16_t csum = InetChecksum(&cut[14], 20);
    cut[24] = csum >> 8;
    cut[25] = csum & 0xff;
    c.push_back(Dropped("malformed_truncated_tcp", "10 bytes of TCP header: dropped", WithWeb({1}),
                        cut, SKIFF_DROP_TRUNCATED_L4));
  }
  c.push_back(Translated(
      "ip_options_translated", "IP options: the L4 header is found after them and rewritten",
      WithWeb({1}), V4(kClient, kVip).Ipv4Options({0x94, 0x04, 0, 0}).Tcp(40000, 80, kSyn).Build(),
      V4(kClient, kB1).Ipv4Options({0x94, 0x04, 0, 0}).Tcp(40000, 8080, kSyn).Build(), nullptr));
  {
    Bytes in = Tcp(kClient, 40000, kVip, 80, tcp::kSyn),
          out = Tcp(kClient, 40000, kB1, 8080, tcp::kSyn);
    in.resize(in.size() + 6, 0);
    out.resize(out.size() + 6, 0);
    c.push_back(Translated("ethernet_padding_kept",
                           "a padded frame is translated and its padding left alone", WithWeb({1}),
                           in, out, nullptr));
  }
  c.push_back(
      Dropped("first_fragment_to_vip",
              "a first fragment to a frontend is dropped (fragments unsupported)", WithWeb({1}),
              V4(kClient, kDnsVip).Fragment(0, true).Udp(40000, 53).Payload(Bytes(16, 0)).Build(),
              SKIFF_DROP_FRAG_NOT_SUPPORTED,
              [](LbEnv& env, const RunResult&) { EXPECT_EQ(env.CtSize(), 0u); }));
  c.back().setup = [](LbEnv& env) {
    Must(env.AddBackend(kDnsBackend));
    Must(env.AddService(Dns()));
  };
  c.push_back(
      Dropped("first_fragment_of_flow",
              "a first fragment of an established flow is dropped, not half-NATed", dns_flow,
              V4(kClient, kDnsVip).Fragment(0, true).Udp(40000, 53).Payload(Bytes(16, 0)).Build(),
              SKIFF_DROP_FRAG_NOT_SUPPORTED));
  c.push_back(Untouched(
      "later_fragment_to_vip", "a later fragment carries no ports: it passes untouched", dns_flow,
      V4(kClient, kDnsVip).Fragment(1480, false).Udp(40000, 53).Payload(Bytes(16, 0)).Build(),
      [](LbEnv& env, const RunResult&) { ExpectMetrics(env, 1); }));
  c.push_back(
      Untouched("fragment_not_to_vip", "fragments of non-service traffic pass", WithWeb({1}),
                V4(kClient, kB1).Fragment(0, true).Udp(40000, 53).Payload(Bytes(16, 0)).Build()));
  c.push_back(Untouched(
      "icmp_error_quote_with_options", "an ICMP error whose quote has IP options passes untouched",
      dns_flow,
      V4(kB1, kClient)
          .IcmpError(3, 3, V4(kClient, kB1).Ipv4Options({1, 1, 1, 1}).Udp(40000, 5353).BuildL3())
          .Build()));
  return c;
}

// ---- multi-packet sequences ----------------------------------------------------------------

struct Sequence {
  std::string name;
  std::string description;
  Setup setup;
  std::vector<Case> steps;
};
void PrintTo(const Sequence& s, std::ostream* os) { *os << s.name; }

Case Step(std::string desc, Bytes in, int verdict, std::optional<Bytes> out, Expect expect) {
  return Case{"step",
              std::move(desc),
              std::move(in),
              nullptr,
              verdict,
              std::move(out),
              [expect](LbEnv& env, const RunResult& r) {
                ExpectValid(r);
                if (expect) expect(env, r);
              }};
}

std::vector<Sequence> Sequences() {
  std::vector<Sequence> s;
  const uint8_t kSyn = tcp::kSyn, kAck = tcp::kAck, kFin = tcp::kFin, kRst = tcp::kRst;
  auto svc_key = LbEnv::CtKey(kClient, kVip, 40000, 80, kTcp, SKIFF_CT_SERVICE);
  auto rep_key = LbEnv::CtKey(kB1, kClient, 8080, 40000, kTcp, SKIFF_CT_REPLY);
  auto both = [=](uint8_t flags, int lifetime) {
    return [=](LbEnv& env, const RunResult&) {
      ExpectCt(env, {svc_key, kB1, 8080, 1, flags, -1, lifetime});
      ExpectCt(env, {rep_key, kVip, 80, 1, flags, -1, lifetime});
    };
  };
  s.push_back(Sequence{
      "tcp_fin_lifecycle",
      "SYN -> SYN-ACK -> ACK -> FIN -> FIN-ACK: lifetimes syn, syn, established, closing",
      WithWeb({1}),
      {
          Step("SYN", Tcp(kClient, 40000, kVip, 80, kSyn), TC_ACT_OK,
               Tcp(kClient, 40000, kB1, 8080, kSyn), both(0, SKIFF_CT_LIFETIME_TCP_SYN)),
          Step("SYN-ACK", Tcp(kB1, 8080, kClient, 40000, kSyn | kAck), TC_ACT_OK,
               Tcp(kVip, 80, kClient, 40000, kSyn | kAck), both(0, SKIFF_CT_LIFETIME_TCP_SYN)),
          Step("ACK", Tcp(kClient, 40000, kVip, 80, kAck), TC_ACT_OK,
               Tcp(kClient, 40000, kB1, 8080, kAck),
               both(SKIFF_CT_F_SEEN_NON_SYN, SKIFF_CT_LIFETIME_TCP_ESTABLISHED)),
          Step("data from the backend", Tcp(kB1, 8080, kClient, 40000, kAck | tcp::kPsh), TC_ACT_OK,
               Tcp(kVip, 80, kClient, 40000, kAck | tcp::kPsh),
               [=](LbEnv& env, const RunResult& r) {
                 both(SKIFF_CT_F_SEEN_NON_SYN, SKIFF_CT_LIFETIME_TCP_ESTABLISHED)(env, r);
                 ExpectCt(env, {rep_key, kVip, 80, 1, SKIFF_CT_F_SEEN_NON_SYN,
                                tcp::kSyn | tcp::kAck | tcp::kPsh, -1, 2});
               }),
          Step(
              "FIN from the client", Tcp(kClient, 40000, kVip, 80, kFin | kAck), TC_ACT_OK,
              Tcp(kClient, 40000, kB1, 8080, kFin | kAck),
              both(SKIFF_CT_F_SEEN_NON_SYN | SKIFF_CT_F_TX_CLOSING, SKIFF_CT_LIFETIME_TCP_CLOSING)),
          Step("FIN from the backend", Tcp(kB1, 8080, kClient, 40000, kFin | kAck), TC_ACT_OK,
               Tcp(kVip, 80, kClient, 40000, kFin | kAck),
               [=](LbEnv& env, const RunResult& r) {
                 both(SKIFF_CT_F_SEEN_NON_SYN | SKIFF_CT_F_TX_CLOSING | SKIFF_CT_F_RX_CLOSING,
                      SKIFF_CT_LIFETIME_TCP_CLOSING)(env, r);
                 ExpectCt(env,
                          {svc_key, kB1, 8080, 1,
                           SKIFF_CT_F_SEEN_NON_SYN | SKIFF_CT_F_TX_CLOSING | SKIFF_CT_F_RX_CLOSING,
                           tcp::kSyn | tcp::kAck | tcp::kFin, -1, 3});
                 ExpectMetrics(env, 6);
               }),
      }});
  s.push_back(
      Sequence{"tcp_rst_from_backend",
               "SYN -> RST from the backend: the flow turns closing in both entries",
               WithWeb({1}),
               {
                   Step("SYN", Tcp(kClient, 40000, kVip, 80, kSyn), TC_ACT_OK,
                        Tcp(kClient, 40000, kB1, 8080, kSyn), both(0, SKIFF_CT_LIFETIME_TCP_SYN)),
                   Step("RST", Tcp(kB1, 8080, kClient, 40000, kRst | kAck), TC_ACT_OK,
                        Tcp(kVip, 80, kClient, 40000, kRst | kAck),
                        both(SKIFF_CT_F_SEEN_NON_SYN | SKIFF_CT_F_RX_CLOSING | SKIFF_CT_F_RESET,
                             SKIFF_CT_LIFETIME_TCP_CLOSING)),
               }});
  s.push_back(Sequence{
      "tcp_reopen_after_close",
      "a new SYN on a closed tuple is balanced afresh (here onto the backend now in the slot)",
      WithWeb({1}),
      {
          Step("SYN", Tcp(kClient, 40000, kVip, 80, kSyn), TC_ACT_OK,
               Tcp(kClient, 40000, kB1, 8080, kSyn), nullptr),
          Step("RST from the client", Tcp(kClient, 40000, kVip, 80, kRst), TC_ACT_OK,
               Tcp(kClient, 40000, kB1, 8080, kRst),
               [](LbEnv& env, const RunResult&) { Must(env.AddService(Web({2}))); }),
          Step("SYN again", Tcp(kClient, 40000, kVip, 80, kSyn), TC_ACT_OK,
               Tcp(kClient, 40000, kB2, 8080, kSyn),
               [](LbEnv& env, const RunResult&) {
                 ExpectCt(env, {LbEnv::CtKey(kClient, kVip, 40000, 80, kTcp, SKIFF_CT_SERVICE), kB2,
                                8080, 2, 0, tcp::kSyn, SKIFF_CT_LIFETIME_TCP_SYN, 1});
               }),
      }});
  // A ClusterIP flow C:40000 -> vip:80 -> B1:8080, handshake complete.
  auto handshake = [=](std::vector<Case> rest) {
    std::vector<Case> steps{
        Step("SYN", Tcp(kClient, 40000, kVip, 80, kSyn), TC_ACT_OK,
             Tcp(kClient, 40000, kB1, 8080, kSyn), nullptr),
        Step("SYN-ACK", Tcp(kB1, 8080, kClient, 40000, kSyn | kAck), TC_ACT_OK,
             Tcp(kVip, 80, kClient, 40000, kSyn | kAck), nullptr),
        Step("ACK", Tcp(kClient, 40000, kVip, 80, kAck), TC_ACT_OK,
             Tcp(kClient, 40000, kB1, 8080, kAck), both(SKIFF_CT_F_SEEN_NON_SYN, -1)),
    };
    steps.insert(steps.end(), rest.begin(), rest.end());
    return steps;
  };
  auto rst_closes = Step("RST from the client (SO_LINGER 0)", Tcp(kClient, 40000, kVip, 80, kRst),
                         TC_ACT_OK, Tcp(kClient, 40000, kB1, 8080, kRst),
                         both(SKIFF_CT_F_SEEN_NON_SYN | SKIFF_CT_F_TX_CLOSING | SKIFF_CT_F_RESET,
                              SKIFF_CT_LIFETIME_TCP_CLOSING));
  auto reply_gone = [=](LbEnv& env, const RunResult&) {
    EXPECT_FALSE(env.Ct(rep_key).has_value()) << "stale reply entry still there";
  };
  s.push_back(Sequence{
      "direct_connect_after_service_rst",
      "a ClusterIP flow closed by RST, then a direct connection from the same client port to "
      "the backend's pod address: the direct SYN deletes the stale reply entry and the "
      "backend's SYN-ACK passes untouched",
      WithWeb({1}),
      handshake({
          rst_closes,
          Step("direct SYN to the backend", Tcp(kClient, 40000, kB1, 8080, kSyn), TC_ACT_OK,
               Tcp(kClient, 40000, kB1, 8080, kSyn),
               [=](LbEnv& env, const RunResult& r) {
                 reply_gone(env, r);
                 ExpectCt(env,
                          {svc_key, kB1, 8080, 1,
                           SKIFF_CT_F_SEEN_NON_SYN | SKIFF_CT_F_TX_CLOSING | SKIFF_CT_F_RESET});
                 EXPECT_EQ(env.CtSize(), 1u);
               }),
          Step("backend's SYN-ACK", Tcp(kB1, 8080, kClient, 40000, kSyn | kAck), TC_ACT_OK,
               Tcp(kB1, 8080, kClient, 40000, kSyn | kAck), reply_gone),
          Step("direct ACK", Tcp(kClient, 40000, kB1, 8080, kAck), TC_ACT_OK,
               Tcp(kClient, 40000, kB1, 8080, kAck), nullptr),
          Step("backend's data", Tcp(kB1, 8080, kClient, 40000, kAck | tcp::kPsh), TC_ACT_OK,
               Tcp(kB1, 8080, kClient, 40000, kAck | tcp::kPsh),
               [=](LbEnv& env, const RunResult& r) {
                 reply_gone(env, r);
                 ExpectMetrics(env, 8);
               }),
      })});
  s.push_back(
      Sequence{"stale_reply_synack_after_service_rst",
               "the direct SYN did not pass this program (or passed before the RST): the backend's "
               "SYN-ACK on the closing flow's reply entry deletes it and passes untouched",
               WithWeb({1}),
               handshake({
                   rst_closes,
                   Step("backend's SYN-ACK", Tcp(kB1, 8080, kClient, 40000, kSyn | kAck), TC_ACT_OK,
                        Tcp(kB1, 8080, kClient, 40000, kSyn | kAck),
                        [=](LbEnv& env, const RunResult& r) {
                          reply_gone(env, r);
                          EXPECT_EQ(env.CtSize(), 1u);
                          ExpectMetrics(env, 5);
                        }),
               })});
  s.push_back(
      Sequence{"stale_reply_after_backend_rst",
               "the backend reset the ClusterIP flow (RX_CLOSING): a later SYN-ACK from the same "
               "backend port to the same client port passes untouched and the entry goes",
               WithWeb({1}),
               handshake({
                   Step("RST from the backend", Tcp(kB1, 8080, kClient, 40000, kRst | kAck),
                        TC_ACT_OK, Tcp(kVip, 80, kClient, 40000, kRst | kAck),
                        both(SKIFF_CT_F_SEEN_NON_SYN | SKIFF_CT_F_RX_CLOSING | SKIFF_CT_F_RESET,
                             SKIFF_CT_LIFETIME_TCP_CLOSING)),
                   Step("backend's SYN-ACK", Tcp(kB1, 8080, kClient, 40000, kSyn | kAck), TC_ACT_OK,
                        Tcp(kB1, 8080, kClient, 40000, kSyn | kAck), reply_gone),
               })});
  s.push_back(
      Sequence{"live_flow_direct_syn_ambiguous",
               "the ClusterIP flow is live (not closing): a direct SYN on the same post-NAT tuple "
               "leaves its reply entry, and the backend's SYN-ACK is still reverse-NATed (two live "
               "flows with one backend-side tuple are ambiguous; docs/datapath.md)",
               WithWeb({1}),
               handshake({
                   Step("direct SYN to the backend", Tcp(kClient, 40000, kB1, 8080, kSyn),
                        TC_ACT_OK, Tcp(kClient, 40000, kB1, 8080, kSyn),
                        both(SKIFF_CT_F_SEEN_NON_SYN, SKIFF_CT_LIFETIME_TCP_ESTABLISHED)),
                   Step("backend's SYN-ACK", Tcp(kB1, 8080, kClient, 40000, kSyn | kAck), TC_ACT_OK,
                        Tcp(kVip, 80, kClient, 40000, kSyn | kAck),
                        [=](LbEnv& env, const RunResult& r) {
                          both(SKIFF_CT_F_SEEN_NON_SYN, SKIFF_CT_LIFETIME_TCP_ESTABLISHED)(env, r);
                          EXPECT_EQ(env.CtSize(), 2u);
                        }),
               })});
  s.push_back(Sequence{
      "reopen_via_vip_after_rst_still_translates",
      "after an RST, a new SYN to the vip reopens the tuple: its fresh reply entry is not "
      "closing, so the backend's SYN-ACK is reverse-NATed as usual",
      WithWeb({1}),
      handshake({
          rst_closes,
          Step("SYN again to the vip", Tcp(kClient, 40000, kVip, 80, kSyn), TC_ACT_OK,
               Tcp(kClient, 40000, kB1, 8080, kSyn), both(0, SKIFF_CT_LIFETIME_TCP_SYN)),
          Step("backend's SYN-ACK", Tcp(kB1, 8080, kClient, 40000, kSyn | kAck), TC_ACT_OK,
               Tcp(kVip, 80, kClient, 40000, kSyn | kAck), both(0, SKIFF_CT_LIFETIME_TCP_SYN)),
      })});
  s.push_back(
      Sequence{"affinity_sticks",
               "six connections from one client all land on the backend its affinity entry names",
               [](LbEnv& env) {
                 for (const auto& b : {kBackend1, kBackend2}) Must(env.AddBackend(b));
                 Must(env.AddService(Affine({1, 2}, 100)));
                 AffinityTo(2, 5)(env);
               },
               {}});
  for (uint16_t p = 41000; p < 41006; p++)
    s.back().steps.push_back(Step("SYN", Tcp(kClient, p, kVip, 80, kSyn), TC_ACT_OK,
                                  Tcp(kClient, p, kB2, 8080, kSyn), nullptr));
  s.push_back(Sequence{
      "udp_query_answer",
      "UDP query, answer, second query: one flow, non-TCP lifetime, counters per direction",
      [](LbEnv& env) {
        Must(env.AddBackend(kDnsBackend));
        Must(env.AddService(Dns()));
      },
      {
          Step("query", Udp(kClient, 40000, kDnsVip, 53), TC_ACT_OK, Udp(kClient, 40000, kB1, 5353),
               nullptr),
          Step("answer", V4(kB1, kClient).Udp(5353, 40000).Payload("answer").Build(), TC_ACT_OK,
               V4(kDnsVip, kClient).Udp(53, 40000).Payload("answer").Build(), nullptr),
          Step("second query", Udp(kClient, 40000, kDnsVip, 53), TC_ACT_OK,
               Udp(kClient, 40000, kB1, 5353),
               [](LbEnv& env, const RunResult&) {
                 ExpectCt(env, {LbEnv::CtKey(kClient, kDnsVip, 40000, 53, kUdp, SKIFF_CT_SERVICE),
                                kB1, 5353, 5, 0, 0, SKIFF_CT_LIFETIME_NON_TCP, 2});
                 ExpectCt(env, {LbEnv::CtKey(kB1, kClient, 5353, 40000, kUdp, SKIFF_CT_REPLY),
                                kDnsVip, 53, 5, 0, 0, SKIFF_CT_LIFETIME_NON_TCP, 1});
                 ExpectMetrics(env, 3);
               }),
      }});
  s.push_back(Sequence{
      "hairpin_round_trip",
      "hairpin SYN, SYN-ACK, ACK, FIN: both directions translated throughout",
      [](LbEnv& env) {
        Must(env.AddBackend(kBackendSelf));
        Must(env.AddService(Web({4})));
      },
      {
          Step("SYN", Tcp(kClient, 40000, kVip, 80, kSyn), TC_ACT_OK,
               Tcp(kHairpin, 40000, kClient, 8080, kSyn), nullptr),
          Step("SYN-ACK", Tcp(kClient, 8080, kHairpin, 40000, kSyn | kAck), TC_ACT_OK,
               Tcp(kVip, 80, kClient, 40000, kSyn | kAck), nullptr),
          Step("ACK", Tcp(kClient, 40000, kVip, 80, kAck), TC_ACT_OK,
               Tcp(kHairpin, 40000, kClient, 8080, kAck), nullptr),
          Step("FIN", Tcp(kClient, 8080, kHairpin, 40000, kFin | kAck), TC_ACT_OK,
               Tcp(kVip, 80, kClient, 40000, kFin | kAck),
               [](LbEnv& env, const RunResult&) {
                 ExpectCt(
                     env,
                     {LbEnv::CtKey(kClient, kVip, 40000, 80, kTcp, SKIFF_CT_SERVICE), kClient, 8080,
                      4, SKIFF_CT_F_HAIRPIN | SKIFF_CT_F_SEEN_NON_SYN | SKIFF_CT_F_RX_CLOSING, -1,
                      SKIFF_CT_LIFETIME_TCP_CLOSING});
               }),
      }});
  return s;
}

// ---- fixtures ------------------------------------------------------------------------------

class LbTest {
 public:
  static LbEnv* env() {
    static LbEnv* e = [] {
      PinToCpu(0);
      auto loaded = LbEnv::Load();
      EXPECT_TRUE(loaded.ok()) << loaded.status();
      return loaded.ok() ? loaded->release() : nullptr;
    }();
    return e;
  }
};

class LbCaseTest : public ::testing::TestWithParam<Case> {};
class LbSequenceTest : public ::testing::TestWithParam<Sequence> {};

TEST_P(LbCaseTest, Runs) {
  SKIFF_REQUIRE_PRIVILEGED();
  LbEnv* env = LbTest::env();
  ASSERT_NE(env, nullptr) << "the lxc object failed to load";
  ASSERT_TRUE(env->Reset().ok());
  Case c = GetParam();
  if (c.setup) c.setup(*env);
  c.setup = nullptr;
  g_before = Before{env->CtSize(), AffinitySize(*env)};
  RunBpfCase(ProgKind::kTc, env->prog_fd(), *env, c);
}

TEST_P(LbSequenceTest, Runs) {
  SKIFF_REQUIRE_PRIVILEGED();
  LbEnv* env = LbTest::env();
  ASSERT_NE(env, nullptr) << "the lxc object failed to load";
  ASSERT_TRUE(env->Reset().ok());
  const Sequence& s = GetParam();
  SCOPED_TRACE(s.description);
  if (s.setup) s.setup(*env);
  int i = 0;
  for (const Case& step : s.steps) {
    SCOPED_TRACE("step " + std::to_string(i++) + ": " + step.description);
    RunBpfCase(ProgKind::kTc, env->prog_fd(), *env, step);
  }
}

TEST(LbTestTable, HasEnoughCases) { EXPECT_GE(Cases().size(), 40u); }

INSTANTIATE_TEST_SUITE_P(Lb, LbCaseTest, ::testing::ValuesIn(Cases()), BpfCaseName());
INSTANTIATE_TEST_SUITE_P(Lb, LbSequenceTest, ::testing::ValuesIn(Sequences()),
                         [](const ::testing::TestParamInfo<Sequence>& i) { return i.param.name; });

}  // namespace
}  // namespace skiff::testing
