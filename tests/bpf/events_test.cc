// Flow events (bpf/lib/events.h, docs/flows.md) through BPF_PROG_TEST_RUN: the ring buffer is
// read back with libbpf's ring_buffer API after each packet. New translated flows, closes and
// drops emit one event each; established-flow packets emit none; drop events are capped per
// CPU and second.
#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "agent/policy/compiler.h"
#include "agent/policy/reconciler.h"
#include "maps/drop_reasons.h"
#include "maps/events.h"
#include "tests/bpf/lb_env.h"
#include "tests/harness/bpf_run.h"
#include "tests/harness/privileged.h"
#include "tests/unit/policy_fixture.h"

namespace skiff::testing {
namespace {

using namespace tcp;  // kSyn, kAck, ...

constexpr const char* kClient = "10.0.1.5";
constexpr const char* kB1 = "10.0.2.7";
constexpr const char* kVip = "10.96.0.10";
constexpr const char* kEmptyVip = "10.96.0.20";
constexpr const char* kHairpin = "169.254.42.1";

Bytes Tcp(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t flags) {
  return PacketBuilder().Ipv4(src, dst).Tcp(sport, dport, flags).Build();
}

class EventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_PRIVILEGED();
    PinToCpu(0);
    auto env = LbEnv::Load();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(*env);
    ASSERT_TRUE(env_->Reset().ok());
    rb_ = ring_buffer__new(bpf_map__fd(env_->skel->maps.SKIFF_MAP_EVENTS), &EventsTest::OnEvent,
                           &events_, nullptr);
    ASSERT_NE(rb_, nullptr) << "ring_buffer__new failed";
    ASSERT_TRUE(env_->AddBackend({1, kB1, 8080}).ok());
    ASSERT_TRUE(env_->AddService({.vip = kVip, .port = 80, .rev_nat_id = 3, .active = {1}}).ok());
    ASSERT_TRUE(env_->AddService({.vip = kEmptyVip, .port = 80, .rev_nat_id = 4}).ok());
  }
  void TearDown() override {
    if (rb_) ring_buffer__free(rb_);
  }

  static int OnEvent(void* ctx, void* data, size_t size) {
    auto* out = static_cast<std::vector<skiff_flow_event>*>(ctx);
    EXPECT_EQ(size, sizeof(skiff_flow_event));
    skiff_flow_event e{};
    std::memcpy(&e, data, std::min(size, sizeof(e)));
    out->push_back(e);
    return 0;
  }

  // Runs one packet and returns the events it emitted.
  std::vector<skiff_flow_event> Run(const Bytes& pkt, int32_t* verdict = nullptr) {
    events_.clear();
    auto r = RunProgram(env_->prog_fd(), pkt);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok() && verdict) *verdict = r->retval;
    ring_buffer__consume(rb_);
    return events_;
  }

  skiff_events_state State() {
    auto m = PerCpuMap<__u32, skiff_events_state>::From(env_->skel->maps.SKIFF_MAP_EVENTS_STATE);
    EXPECT_TRUE(m.ok());
    skiff_events_state sum{};
    if (!m.ok()) return sum;
    auto v = m->Lookup(0);
    EXPECT_TRUE(v.ok());
    if (!v.ok()) return sum;
    for (const auto& s : *v) {
      sum.lost += s.lost;
      sum.rate_limited += s.rate_limited;
      sum.window_drops += s.window_drops;
    }
    return sum;
  }

  std::unique_ptr<LbEnv> env_;
  ring_buffer* rb_ = nullptr;
  std::vector<skiff_flow_event> events_;
};

TEST_F(EventsTest, NewTranslatedFlowEmitsPreAndPostTranslationTuple) {
  int32_t verdict = -1;
  auto ev = Run(Tcp(kClient, 40000, kVip, 80, kSyn), &verdict);
  EXPECT_EQ(verdict, TC_ACT_OK);
  ASSERT_EQ(ev.size(), 1u);
  const auto& e = ev[0];
  EXPECT_EQ(e.type, SKIFF_EVENT_TRACE_NEW);
  EXPECT_EQ(e.verdict, SKIFF_VERDICT_TRANSLATED);
  EXPECT_EQ(e.direction, SKIFF_DIR_FROM_CONTAINER);
  EXPECT_EQ(e.proto, IPPROTO_TCP);
  EXPECT_EQ(e.tcp_flags, kSyn);
  EXPECT_EQ(e.family, SKIFF_AF_INET);
  EXPECT_TRUE(e.flags & SKIFF_EVENT_F_XLATED);
  EXPECT_FALSE(e.flags & SKIFF_EVENT_F_REPLY);
  EXPECT_EQ(e.orig_saddr, Ip4(kClient));
  EXPECT_EQ(e.orig_daddr, Ip4(kVip));
  EXPECT_EQ(ntohs(e.orig_sport), 40000);
  EXPECT_EQ(ntohs(e.orig_dport), 80);
  EXPECT_EQ(e.xlated_saddr, Ip4(kClient));
  EXPECT_EQ(e.xlated_daddr, Ip4(kB1));
  EXPECT_EQ(ntohs(e.xlated_sport), 40000);
  EXPECT_EQ(ntohs(e.xlated_dport), 8080);
  EXPECT_EQ(e.backend_id, 1u);
  EXPECT_EQ(e.rev_nat_id, 3);
  EXPECT_EQ(e.drop_reason, 0);
  EXPECT_NE(e.ktime_ns, 0u);
}

TEST_F(EventsTest, HairpinFlowReportsTheHairpinSource) {
  ASSERT_TRUE(env_->AddBackend({2, kClient, 8080}).ok());
  ASSERT_TRUE(
      env_->AddService({.vip = "10.96.0.30", .port = 80, .rev_nat_id = 5, .active = {2}}).ok());
  auto ev = Run(Tcp(kClient, 40001, "10.96.0.30", 80, kSyn));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(ev[0].flags & SKIFF_EVENT_F_HAIRPIN);
  EXPECT_EQ(ev[0].xlated_saddr, Ip4(kHairpin));
  EXPECT_EQ(ev[0].xlated_daddr, Ip4(kClient));
}

TEST_F(EventsTest, EstablishedFlowPacketsEmitNothing) {
  ASSERT_EQ(Run(Tcp(kClient, 40000, kVip, 80, kSyn)).size(), 1u);
  EXPECT_TRUE(Run(Tcp(kB1, 8080, kClient, 40000, kSyn | kAck)).empty()) << "reply SYN-ACK";
  EXPECT_TRUE(Run(Tcp(kClient, 40000, kVip, 80, kAck)).empty()) << "handshake ACK";
  for (int i = 0; i < 5; i++) {
    EXPECT_TRUE(Run(Tcp(kClient, 40000, kVip, 80, kAck | kPsh)).empty()) << "data " << i;
    EXPECT_TRUE(Run(Tcp(kB1, 8080, kClient, 40000, kAck)).empty()) << "reply " << i;
  }
  EXPECT_EQ(State().lost, 0u);
}

TEST_F(EventsTest, FirstFinEmitsOneCloseEventInTheOriginalDirection) {
  Run(Tcp(kClient, 40000, kVip, 80, kSyn));
  Run(Tcp(kB1, 8080, kClient, 40000, kSyn | kAck));
  Run(Tcp(kClient, 40000, kVip, 80, kAck));
  auto ev = Run(Tcp(kClient, 40000, kVip, 80, kFin | kAck));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, SKIFF_EVENT_TRACE_CLOSE);
  EXPECT_EQ(ev[0].verdict, SKIFF_VERDICT_FORWARDED);
  EXPECT_EQ(ev[0].tcp_flags, kFin | kAck);
  EXPECT_FALSE(ev[0].flags & SKIFF_EVENT_F_REPLY);
  EXPECT_EQ(ev[0].orig_daddr, Ip4(kVip));
  EXPECT_EQ(ev[0].xlated_daddr, Ip4(kB1));
  EXPECT_EQ(ntohs(ev[0].xlated_dport), 8080);
  EXPECT_EQ(ev[0].rev_nat_id, 3);
  // The backend's FIN and the last ACKs close nothing new.
  EXPECT_TRUE(Run(Tcp(kB1, 8080, kClient, 40000, kFin | kAck)).empty());
  EXPECT_TRUE(Run(Tcp(kClient, 40000, kVip, 80, kAck)).empty());
}

TEST_F(EventsTest, ResetFromTheBackendEmitsACloseMarkedReply) {
  Run(Tcp(kClient, 40000, kVip, 80, kSyn));
  auto ev = Run(Tcp(kB1, 8080, kClient, 40000, kRst | kAck));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, SKIFF_EVENT_TRACE_CLOSE);
  EXPECT_TRUE(ev[0].flags & SKIFF_EVENT_F_REPLY);
  EXPECT_EQ(ev[0].tcp_flags, kRst | kAck);
  // Reported client -> frontend, translated to client -> backend.
  EXPECT_EQ(ev[0].orig_saddr, Ip4(kClient));
  EXPECT_EQ(ntohs(ev[0].orig_sport), 40000);
  EXPECT_EQ(ev[0].orig_daddr, Ip4(kVip));
  EXPECT_EQ(ntohs(ev[0].orig_dport), 80);
  EXPECT_EQ(ev[0].xlated_saddr, Ip4(kClient));
  EXPECT_EQ(ev[0].xlated_daddr, Ip4(kB1));
  EXPECT_EQ(ntohs(ev[0].xlated_dport), 8080);
}

TEST_F(EventsTest, ServiceWithoutBackendsEmitsADropWithItsReason) {
  auto ev = Run(Tcp(kClient, 40000, kEmptyVip, 80, kSyn));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, SKIFF_EVENT_DROP);
  EXPECT_EQ(ev[0].verdict, SKIFF_VERDICT_DROPPED);
  EXPECT_EQ(ev[0].drop_reason, SKIFF_DROP_NO_SERVICE_BACKEND);
  EXPECT_EQ(ev[0].orig_saddr, Ip4(kClient));
  EXPECT_EQ(ev[0].orig_daddr, Ip4(kEmptyVip));
  EXPECT_EQ(ntohs(ev[0].orig_dport), 80);
  EXPECT_EQ(ev[0].tcp_flags, kSyn);
}

Bytes Malformed() {
  return PacketBuilder().Ipv4(kClient, kVip).Tcp(40000, 80, kSyn).ForceTcpDataOffset(2).Build();
}

TEST_F(EventsTest, DatapathDropEmitsADropEvent) {
  int32_t verdict = 0;
  auto ev = Run(Malformed(), &verdict);
  EXPECT_EQ(verdict, TC_ACT_SHOT);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, SKIFF_EVENT_DROP);
  EXPECT_EQ(ev[0].drop_reason, SKIFF_DROP_BAD_L4_HEADER);
  EXPECT_EQ(ev[0].direction, SKIFF_DIR_FROM_CONTAINER);
}

TEST_F(EventsTest, DropEventsAreCappedPerCpuAndSecond) {
  // A fresh window on every CPU, starting now (bpf_ktime_get_ns is CLOCK_MONOTONIC); the run
  // below takes milliseconds, far inside the one-second window.
  auto m = PerCpuMap<__u32, skiff_events_state>::From(env_->skel->maps.SKIFF_MAP_EVENTS_STATE);
  ASSERT_TRUE(m.ok());
  std::vector<skiff_events_state> fresh(libbpf_num_possible_cpus());
  for (auto& s : fresh) s.window_start_ns = MonotonicNs();
  __u32 zero = 0;
  ASSERT_EQ(bpf_map_update_elem(m->fd(), &zero, fresh.data(), BPF_ANY), 0);
  constexpr int kDrops = SKIFF_DROP_EVENTS_PER_SEC_DEFAULT + 30;
  size_t emitted = 0;
  for (int i = 0; i < kDrops; i++) emitted += Run(Malformed()).size();
  EXPECT_EQ(emitted, static_cast<size_t>(SKIFF_DROP_EVENTS_PER_SEC_DEFAULT));
  EXPECT_EQ(State().rate_limited, 30u);
  EXPECT_EQ(State().lost, 0u);
  // Every drop is still counted in the metrics.
  EXPECT_EQ(env_->Metric(SKIFF_DIR_FROM_CONTAINER, SKIFF_DROP_BAD_L4_HEADER),
            static_cast<uint64_t>(kDrops));
  // Translated flows are never rate-limited.
  EXPECT_EQ(Run(Tcp(kClient, 40002, kVip, 80, kSyn)).size(), 1u);
}

// Runs a tc program with ingress_ifindex set (a packet from another interface, as policy
// expects; 0 would mean "sent by the node itself").
absl::StatusOr<int32_t> RunTcFromIface(int prog_fd, const Bytes& pkt) {
  Bytes out(pkt.size() + 256);
  __sk_buff ctx{};
  ctx.ingress_ifindex = 7;
  ctx.ifindex = 1;
  LIBBPF_OPTS(bpf_test_run_opts, o);
  o.data_in = pkt.data();
  o.data_size_in = pkt.size();
  o.data_out = out.data();
  o.data_size_out = out.size();
  o.ctx_in = &ctx;
  o.ctx_size_in = sizeof(ctx);
  o.repeat = 1;
  if (bpf_prog_test_run_opts(prog_fd, &o) != 0) return absl::InternalError(strerror(errno));
  return static_cast<int32_t>(o.retval);
}

// A NetworkPolicy denial in to_container (ingress of the destination pod) is a drop event
// with its reason and direction.
TEST_F(EventsTest, PolicyDenialEmitsADropEvent) {
  using namespace skiff::policy::testing;  // NOLINT
  lxc_bpf* s = env_->skel.get();
  auto ipc = Map<skiff_ipcache_key, skiff_ipcache_val>::From(s->maps.SKIFF_MAP_IPCACHE4);
  auto pol = Map<skiff_policy_key, skiff_policy_val>::From(s->maps.SKIFF_MAP_POLICY4);
  auto st = Map<__u32, skiff_pol_state>::From(s->maps.SKIFF_MAP_POL_STATE);
  ASSERT_TRUE(ipc.ok() && pol.ok() && st.ok());
  reconcile::BpfKvTable<skiff_ipcache_key, skiff_ipcache_val> ipcache(*ipc, 1024);
  reconcile::BpfKvTable<skiff_policy_key, skiff_policy_val> policy(*pol, 1024);
  reconcile::BpfKvTable<__u32, skiff_pol_state> state(*st, 1);
  policy::PolicyReconciler rec(policy::PolicyTables{&ipcache, &policy, &state});
  ASSERT_TRUE(rec.Restore().ok());
  Cluster c;
  c.Namespace("a", {{"team", "a"}});
  c.Namespace("b", {{"team", "b"}});
  c.Pod("a", "db", "10.0.1.2", {{"app", "db"}});
  c.Pod("b", "client", "10.0.2.1", {{"app", "client"}});
  c.Policy("a", "db", Sel({{"app", "db"}}), {Rule({NsPeer(Sel({{"team", "b"}}))}, {Port(5432)})});
  auto res = rec.Apply(policy::Compile(c.Snapshot(), {"node-1", {}}), true);
  ASSERT_TRUE(res.ok()) << res.errors[0];

  events_.clear();
  auto r = RunTcFromIface(bpf_program__fd(s->progs.to_container),
                          Tcp("10.0.2.1", 4001, "10.0.1.2", 5433, kSyn));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, TC_ACT_SHOT);
  ring_buffer__consume(rb_);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].type, SKIFF_EVENT_DROP);
  EXPECT_EQ(events_[0].drop_reason, SKIFF_DROP_POLICY_DENIED_INGRESS);
  EXPECT_EQ(events_[0].direction, SKIFF_DIR_TO_CONTAINER);
  EXPECT_EQ(events_[0].orig_saddr, Ip4("10.0.2.1"));
  EXPECT_EQ(events_[0].orig_daddr, Ip4("10.0.1.2"));
  EXPECT_EQ(ntohs(events_[0].orig_dport), 5433);
  // The allowed port passes without an event.
  events_.clear();
  r = RunTcFromIface(bpf_program__fd(s->progs.to_container),
                     Tcp("10.0.2.1", 4002, "10.0.1.2", 5432, kSyn));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, TC_ACT_OK);
  ring_buffer__consume(rb_);
  EXPECT_TRUE(events_.empty());
}

// Events are committed without waking the reader (bpf/lib/events.h), which drains the ring on
// a timer, until the ring is more than 1/8 full: then the reader is woken at once.
TEST(EventsWakeupTest, ReaderIsWokenOnlyOnceTheRingFillsUp) {
  SKIFF_REQUIRE_PRIVILEGED();
  PinToCpu(0);
  constexpr uint32_t kRing = 8192;  // the mark at 1/8: 1 KiB, a dozen events
  auto env = LbEnv::Load(4096, kRing);
  ASSERT_TRUE(env.ok()) << env.status();
  ASSERT_TRUE((*env)->Reset().ok());
  ASSERT_TRUE((*env)->AddBackend({1, kB1, 8080}).ok());
  ASSERT_TRUE((*env)->AddService({.vip = kVip, .port = 80, .rev_nat_id = 3, .active = {1}}).ok());
  size_t seen = 0;
  ring_buffer* rb = ring_buffer__new(
      bpf_map__fd((*env)->skel->maps.SKIFF_MAP_EVENTS),
      [](void* ctx, void*, size_t) {
        ++*static_cast<size_t*>(ctx);
        return 0;
      },
      &seen, nullptr);
  ASSERT_NE(rb, nullptr);
  auto new_flow = [&](uint16_t port) {
    auto r = RunProgram((*env)->prog_fd(), Tcp(kClient, port, kVip, 80, kSyn));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->retval, TC_ACT_OK);
  };
  // One event: in the ring, but the reader's epoll is not signalled.
  new_flow(41000);
  EXPECT_EQ(ring_buffer__poll(rb, 0), 0);
  EXPECT_EQ(seen, 0u);
  EXPECT_EQ(ring_buffer__consume(rb), 1);
  EXPECT_EQ(seen, 1u);
  // Fill past 1/8 of the ring: the event that crosses it wakes the reader.
  const size_t burst = kRing / SKIFF_EVENTS_WAKEUP_FRACTION / SKIFF_EVENTS_RECORD_BYTES + 1;
  for (size_t i = 0; i < burst; i++) new_flow(static_cast<uint16_t>(42000 + i));
  seen = 0;
  EXPECT_EQ(ring_buffer__poll(rb, 0), static_cast<int>(burst));
  EXPECT_EQ(seen, burst);
  ring_buffer__free(rb);
}

}  // namespace
}  // namespace skiff::testing
