// Conntrack GC (agent/observe/ct_gc.h) without root: the expiry decisions against the
// datapath's rules, a sweep over fake tables (what is deleted, the re-read before a delete),
// error reporting, the periodic thread and its metrics.
#include "agent/observe/ct_gc.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "agent/observe/render.h"

namespace skiff::observe {
namespace {

using namespace std::chrono_literals;
using reconcile::FakeKvTable;

constexpr uint64_t kSec = 1000000000ULL;

skiff_ct4_key CtKey(uint32_t n, uint8_t kind = SKIFF_CT_SERVICE) {
  skiff_ct4_key k{};
  k.saddr = n;
  k.daddr = 0x0a60000a;
  k.sport = static_cast<__be16>(n);
  k.dport = 80;
  k.proto = 6;
  k.kind = kind;
  return k;
}

skiff_ct_entry CtEntry(uint32_t expires) {
  skiff_ct_entry e{};
  e.expires = expires;
  e.created = 1;
  return e;
}

TEST(CtGcExpiry, FollowsTheDatapathsRules) {
  const GcClock now{1000 * kSec + 500};  // 1000.0000005 s
  ASSERT_EQ(now.sec(), 1000u);
  // bpf/lib/conntrack.h: dead when expires < now, in whole seconds.
  EXPECT_TRUE(CtEntryExpired(CtEntry(999), now));
  EXPECT_FALSE(CtEntryExpired(CtEntry(1000), now));
  EXPECT_FALSE(CtEntryExpired(CtEntry(1001), now));
  EXPECT_TRUE(CtEntryExpired(CtEntry(0), now));
  skiff_pol_ct_entry p{};
  p.expires = 999;
  EXPECT_TRUE(PolicyCtEntryExpired(p, now));
  p.expires = 1000;
  EXPECT_FALSE(PolicyCtEntryExpired(p, now));
  // bpf/lib/host_route.h: fresh while expires > now, in nanoseconds.
  skiff_host_route4 r{};
  r.expires = now.ns;
  EXPECT_TRUE(HostRouteExpired(r, now));
  r.expires = now.ns + 1;
  EXPECT_FALSE(HostRouteExpired(r, now));
}

TEST(CtGcClock, IsMonotonicSecondsNeverAheadOfClockMonotonic) {
  GcClock a = GcNow();
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  GcClock b = GcNow();
  EXPECT_LE(a.ns, b.ns);
  EXPECT_LE(a.sec(), static_cast<uint64_t>(ts.tv_sec));
  EXPECT_GE(a.sec() + 1, static_cast<uint64_t>(ts.tv_sec));  // coarse: a tick behind at most
}

TEST(CtGcSweep, DeletesExpiredEntriesAndKeepsLiveOnes) {
  FakeKvTable<skiff_ct4_key, skiff_ct_entry> t("skiff_ct4_global_v2", 100);
  const GcClock now{1000 * kSec};
  for (uint32_t i = 1; i <= 3; i++) ASSERT_TRUE(t.Update(CtKey(i), CtEntry(1000 - i)).ok());
  ASSERT_TRUE(t.Update(CtKey(10), CtEntry(1000)).ok());  // expires this second: still live
  ASSERT_TRUE(t.Update(CtKey(11, SKIFF_CT_REPLY), CtEntry(5000)).ok());
  auto c = SweepExpired<skiff_ct4_key, skiff_ct_entry>(
      t, [&](const skiff_ct4_key&, const skiff_ct_entry& e) { return CtEntryExpired(e, now); });
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->seen, 5u);
  EXPECT_EQ(c->expired, 3u);
  EXPECT_EQ(c->deleted, 3u);
  ASSERT_EQ(t.entries().size(), 2u);
  EXPECT_TRUE(t.entries().count(CtKey(10)));
  EXPECT_TRUE(t.entries().count(CtKey(11, SKIFF_CT_REPLY)));
}

// A packet refreshes (or deletes) an entry between the walk and the delete: the re-read sees it.
class RacingTable : public FakeKvTable<skiff_ct4_key, skiff_ct_entry> {
 public:
  using FakeKvTable::FakeKvTable;
  absl::StatusOr<std::optional<skiff_ct_entry>> Lookup(const skiff_ct4_key& k) const override {
    auto& e = const_cast<RacingTable*>(this)->mutable_entries();
    if (std::memcmp(&k, &refresh, sizeof(k)) == 0) e[k].expires = 9999;
    if (std::memcmp(&k, &vanish, sizeof(k)) == 0) e.erase(k);
    return FakeKvTable::Lookup(k);
  }
  skiff_ct4_key refresh{}, vanish{};
};

TEST(CtGcSweep, ReReadsBeforeDeletingSoARefreshedEntryStays) {
  RacingTable t("skiff_ct4_global_v2", 100);
  const GcClock now{1000 * kSec};
  for (uint32_t i = 1; i <= 4; i++) ASSERT_TRUE(t.Update(CtKey(i), CtEntry(10)).ok());
  t.refresh = CtKey(2);
  t.vanish = CtKey(3);
  auto c = SweepExpired<skiff_ct4_key, skiff_ct_entry>(
      t, [&](const skiff_ct4_key&, const skiff_ct_entry& e) { return CtEntryExpired(e, now); });
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->expired, 4u);
  EXPECT_EQ(c->deleted, 2u);  // 1 and 4; 2 was refreshed, 3 went by itself
  ASSERT_EQ(t.entries().size(), 1u);
  EXPECT_EQ(t.entries().begin()->second.expires, 9999u);
}

// A NodePort flow client 192.168.1.5:40000 -> backend 10.244.2.7:8080 SNATed to node
// 10.0.0.1:61000: its IN and OUT entries, and the conntrack reply entry both hang on.
constexpr uint32_t kClient = 0xc0a80105, kBackend = 0x0af40207, kNode = 0x0a000001;
skiff_nat4_key NatIn(uint16_t node_port = 61000) {
  skiff_nat4_key k{};
  k.saddr = kBackend;
  k.daddr = kNode;
  k.sport = 8080;
  k.dport = node_port;
  k.proto = 6;
  k.dir = SKIFF_NAT_IN;
  return k;
}
skiff_nat4_key NatOut(uint16_t cport = 40000) {
  skiff_nat4_key k{};
  k.saddr = kClient;
  k.daddr = kBackend;
  k.sport = cport;
  k.dport = 8080;
  k.proto = 6;
  k.dir = SKIFF_NAT_OUT;
  return k;
}
skiff_nat4_entry NatTo(uint32_t addr, uint16_t port) {
  skiff_nat4_entry e{};
  e.to_addr = addr;
  e.to_port = port;
  return e;
}
skiff_ct4_key FlowReply(uint16_t cport = 40000) {
  skiff_ct4_key k{};
  k.saddr = kBackend;
  k.daddr = kClient;
  k.sport = 8080;
  k.dport = cport;
  k.proto = 6;
  k.kind = SKIFF_CT_REPLY;
  return k;
}

TEST(CtGcNat, BothEntriesOfAFlowNameItsConntrackReplyEntry) {
  skiff_ct4_key in = NatFlowReplyKey(NatIn(), NatTo(kClient, 40000));
  skiff_ct4_key out = NatFlowReplyKey(NatOut(), NatTo(kNode, 61000));
  skiff_ct4_key want = FlowReply();
  EXPECT_EQ(0, std::memcmp(&in, &want, sizeof(want)));
  EXPECT_EQ(0, std::memcmp(&out, &want, sizeof(want)));
}

TEST(CtGcNat, DeletesTheEntriesOfFlowsWhoseReplyEntryIsGoneOrExpired) {
  auto nat = std::make_unique<FakeKvTable<skiff_nat4_key, skiff_nat4_entry>>("skiff_nat4_v1", 100);
  auto ct =
      std::make_unique<FakeKvTable<skiff_ct4_key, skiff_ct_entry>>("skiff_ct4_global_v2", 100);
  auto* n = nat.get();
  auto* c = ct.get();
  const GcClock now{1000 * kSec};
  // Live flow (cport 40000, port 61000); expired flow (40001, 61001); a flow whose conntrack
  // entries are gone (40002, 61002); a reset flow not yet expired (40003, 61003) stays.
  for (uint16_t i = 0; i < 4; i++) {
    ASSERT_TRUE(n->Update(NatIn(61000 + i), NatTo(kClient, 40000 + i)).ok());
    ASSERT_TRUE(n->Update(NatOut(40000 + i), NatTo(kNode, 61000 + i)).ok());
  }
  ASSERT_TRUE(c->Update(FlowReply(40000), CtEntry(2000)).ok());
  ASSERT_TRUE(c->Update(FlowReply(40001), CtEntry(999)).ok());
  skiff_ct_entry reset = CtEntry(1005);
  reset.flags = SKIFF_CT_F_RESET | SKIFF_CT_F_TX_CLOSING;
  ASSERT_TRUE(c->Update(FlowReply(40003), reset).ok());
  NatTable target(std::move(nat), std::move(ct));
  EXPECT_EQ(target.map(), "skiff_nat4_v1");
  auto r = target.Sweep(now);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->seen, 8u);
  EXPECT_EQ(r->deleted, 4u);
  for (uint16_t i : {0, 3}) {
    EXPECT_TRUE(n->entries().count(NatIn(61000 + i))) << i;
    EXPECT_TRUE(n->entries().count(NatOut(40000 + i))) << i;
  }
  for (uint16_t i : {1, 2}) {
    EXPECT_FALSE(n->entries().count(NatIn(61000 + i))) << i;
    EXPECT_FALSE(n->entries().count(NatOut(40000 + i))) << i;
  }
  EXPECT_EQ(c->entries().size(), 3u);  // the conntrack is only read
}

class FailingTarget : public GcTarget {
 public:
  const std::string& map() const override { return name_; }
  absl::StatusOr<SweepCount> Sweep(const GcClock&) override {
    return absl::PermissionDeniedError("reading map: permission denied");
  }

 private:
  std::string name_ = "skiff_broken_v1";
};

std::vector<std::unique_ptr<GcTarget>> Targets(FakeKvTable<skiff_ct4_key, skiff_ct_entry>** ct,
                                               bool failing) {
  std::vector<std::unique_ptr<GcTarget>> out;
  if (failing) out.push_back(std::make_unique<FailingTarget>());
  auto t = std::make_unique<FakeKvTable<skiff_ct4_key, skiff_ct_entry>>("skiff_ct4_global_v2", 10);
  *ct = t.get();
  out.push_back(
      std::make_unique<ExpiringTable<skiff_ct4_key, skiff_ct_entry>>(std::move(t), CtEntryExpired));
  auto p = std::make_unique<FakeKvTable<skiff_ct4_key, skiff_pol_ct_entry>>("skiff_pol_ct4_v1", 10);
  skiff_pol_ct_entry pe{};
  pe.expires = 1;
  EXPECT_TRUE(p->Update(CtKey(1), pe).ok());
  out.push_back(std::make_unique<ExpiringTable<skiff_ct4_key, skiff_pol_ct_entry>>(
      std::move(p), PolicyCtEntryExpired));
  return out;
}

TEST(CtGcSweepAll, ReportsEachMapAndGoesOnAfterAFailure) {
  FakeKvTable<skiff_ct4_key, skiff_ct_entry>* ct = nullptr;
  auto targets = Targets(&ct, /*failing=*/true);
  ASSERT_TRUE(ct->Update(CtKey(1), CtEntry(5)).ok());
  ASSERT_TRUE(ct->Update(CtKey(2), CtEntry(500)).ok());
  SweepReport r = SweepAll(targets, GcClock{100 * kSec});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("skiff_broken_v1: "), std::string::npos) << r.errors[0];
  ASSERT_EQ(r.maps.size(), 2u);
  EXPECT_EQ(r.maps[0].first, "skiff_ct4_global_v2");
  EXPECT_EQ(r.maps[0].second.deleted, 1u);
  EXPECT_EQ(r.maps[1].first, "skiff_pol_ct4_v1");
  EXPECT_EQ(r.maps[1].second.deleted, 1u);
  EXPECT_EQ(ct->entries().size(), 1u);
}

TEST(CtGcThread, SweepsPeriodicallyAndCountsInMetrics) {
  FakeKvTable<skiff_ct4_key, skiff_ct_entry>* ct = nullptr;
  auto targets = Targets(&ct, /*failing=*/false);
  // Expired on any running machine's monotonic clock (> 1 s of uptime).
  ASSERT_TRUE(ct->Update(CtKey(1), CtEntry(0)).ok());
  ASSERT_TRUE(ct->Update(CtKey(2), CtEntry(~0u)).ok());
  ObserveBoard board;
  auto gc = CtGc::Start(std::move(targets), 1s, &board);
  // Registered at once, before any sweep.
  AgentSample s = board.Read();
  EXPECT_EQ(s.ct_gc.deleted_total.size(), 2u);
  EXPECT_EQ(s.ct_gc.runs_total, 0u);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (board.Read().ct_gc.runs_total == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  gc.reset();  // joins: the fake table is no longer touched
  s = board.Read();
  ASSERT_GE(s.ct_gc.runs_total, 1u);
  EXPECT_EQ(s.ct_gc.errors_total, 0u);
  EXPECT_EQ(s.ct_gc.deleted_total["skiff_ct4_global_v2"], 1u);
  EXPECT_EQ(s.ct_gc.deleted_total["skiff_pol_ct4_v1"], 1u);
  EXPECT_GE(s.ct_gc.last_duration_seconds, 0.0);

  MetricsInput in;
  in.agent = s;
  std::string text = RenderMetrics(in);
  EXPECT_NE(text.find("skiff_conntrack_gc_deleted_entries_total{map=\"skiff_ct4_global_v2\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE skiff_conntrack_gc_runs_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("skiff_conntrack_gc_runs_total " + std::to_string(s.ct_gc.runs_total) + "\n"),
            std::string::npos)
      << text;
}

TEST(CtGcThread, StopsAtOnceWhenDestroyed) {
  FakeKvTable<skiff_ct4_key, skiff_ct_entry>* ct = nullptr;
  ObserveBoard board;
  auto gc = CtGc::Start(Targets(&ct, false), std::chrono::seconds(3600), &board);
  auto start = std::chrono::steady_clock::now();
  gc.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);  // not after the hour's wait
  EXPECT_EQ(board.Read().ct_gc.runs_total, 0u);
}

}  // namespace
}  // namespace skiff::observe
