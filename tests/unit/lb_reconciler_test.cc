// The reconciler against in-memory tables: what it writes, in which order, what it keeps
// across a restart and what it refuses to delete before the sources are synced.
#include "agent/reconcile/lb_reconciler.h"
#include "tests/unit/fake_lb_tables.h"

#include <arpa/inet.h>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <set>
#include <string>

namespace skiff::reconcile {
namespace {

using model::Backend;
using model::BackendState;
using model::DesiredState;
using model::Frontend;
using model::FrontendKey;
using model::IpAddr;
using model::Protocol;

IpAddr Ip(const char* s) {
  IpAddr a;
  a.family = 4;
  inet_pton(AF_INET, s, a.bytes.data());
  return a;
}

Backend B(const char* ip, uint16_t port, BackendState st = BackendState::kActive,
          bool local = false) {
  Backend b;
  b.ip = Ip(ip);
  b.port = port;
  b.state = st;
  b.node_local = local;
  return b;
}

FrontendKey Key(const char* vip, uint16_t port, Protocol p = Protocol::kTcp) {
  return FrontendKey{Ip(vip), port, p};
}

Frontend Fe(FrontendKey k, std::vector<Backend> backends, std::string svc = "default/web") {
  Frontend f;
  f.key = k;
  f.service = svc;
  f.backends = std::move(backends);
  return f;
}

using Tables = FakeLbTables;

DesiredState State(std::vector<Frontend> fes) {
  DesiredState s;
  for (auto& f : fes) s.frontends[f.key] = f;
  return s;
}

TEST(LbReconciler, WritesFrontendSlotsBackendsAndRevNat) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto k = Key("10.96.0.10", 80);
  auto res = r.Apply(State({Fe(k, {B("10.244.1.11", 8080), B("10.244.1.12", 8080)})}), true);
  ASSERT_TRUE(res.ok()) << res.errors[0];
  auto s0 = t.Slot(k, 0);
  ASSERT_TRUE(s0);
  EXPECT_EQ(s0->count, 2);
  EXPECT_EQ(s0->terminating_count, 0);
  EXPECT_NE(s0->rev_nat_id, 0);
  EXPECT_TRUE(s0->flags & SKIFF_SVC_F_CLUSTER_IP);
  ASSERT_TRUE(t.Slot(k, 1));
  ASSERT_TRUE(t.Slot(k, 2));
  EXPECT_FALSE(t.Slot(k, 3));
  EXPECT_EQ(t.backends.entries().size(), 2u);
  auto rn = t.revnat.entries().at(s0->rev_nat_id);
  EXPECT_EQ(rn.address, Ip("10.96.0.10").bytes[0] | Ip("10.96.0.10").bytes[1] << 8 |
                            Ip("10.96.0.10").bytes[2] << 16 | Ip("10.96.0.10").bytes[3] << 24);
  EXPECT_EQ(ntohs(rn.port), 80);
  auto b1 = t.backends.entries().at(t.Slot(k, 1)->backend_id);
  EXPECT_EQ(ntohs(b1.port), 8080);
  EXPECT_EQ(b1.state, SKIFF_BACKEND_ACTIVE);
}

TEST(LbReconciler, BackendsAndSlotsBeforeSlotZero) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto k = Key("10.96.0.10", 80);
  r.Apply(State({Fe(k, {B("10.244.1.11", 8080)})}), true);
  t.ClearLogs();
  r.Apply(State({Fe(k, {B("10.244.1.11", 8080), B("10.244.1.12", 8080)})}), true);
  // The new backend entry exists before any slot is written; slot 2 before slot 0.
  ASSERT_EQ(t.backends.log().size(), 1u);
  ASSERT_EQ(t.services.log().size(), 2u);
  EXPECT_EQ(t.services.log()[0].key.slot, 2);
  EXPECT_EQ(t.services.log()[1].key.slot, 0);
  EXPECT_EQ(t.Slot(k, 0)->count, 2);
}

TEST(LbReconciler, ShrinkWritesCountBeforeDeletingSlots) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto k = Key("10.96.0.10", 80);
  r.Apply(State({Fe(k, {B("10.244.1.11", 8080), B("10.244.1.12", 8080), B("10.244.1.13", 8080)})}),
          true);
  t.ClearLogs();
  r.Apply(State({Fe(k, {B("10.244.1.11", 8080)})}), true);
  const auto& log = t.services.log();
  ASSERT_GE(log.size(), 3u);
  EXPECT_TRUE(log[0].update);
  EXPECT_EQ(log[0].key.slot, 0);  // count 1 first
  EXPECT_FALSE(log[1].update);
  EXPECT_FALSE(log[2].update);
  EXPECT_EQ(t.Slot(k, 0)->count, 1);
  EXPECT_FALSE(t.Slot(k, 2));
  EXPECT_FALSE(t.Slot(k, 3));
  // Unreferenced backends are removed after the slots.
  EXPECT_EQ(t.backends.entries().size(), 1u);
}

TEST(LbReconciler, UnchangedStateWritesNothing) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto st = State({Fe(Key("10.96.0.10", 80), {B("10.244.1.11", 8080)}),
                   Fe(Key("10.96.0.11", 53, Protocol::kUdp), {B("10.244.1.11", 5353)})});
  r.Apply(st, true);
  t.ClearLogs();
  auto res = r.Apply(st, true);
  EXPECT_TRUE(res.ok());
  EXPECT_EQ(t.services.writes() + t.backends.writes() + t.revnat.writes(), 0);
}

TEST(LbReconciler, TerminatingBackendsAfterActiveOnes) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto k = Key("10.96.0.10", 80);
  r.Apply(State({Fe(k, {B("10.244.1.11", 8080, BackendState::kTerminating), B("10.244.1.12", 8080),
                        B("10.244.1.13", 8080)})}),
          true);
  auto s0 = t.Slot(k, 0);
  EXPECT_EQ(s0->count, 2);
  EXPECT_EQ(s0->terminating_count, 1);
  auto last = t.backends.entries().at(t.Slot(k, 3)->backend_id);
  EXPECT_EQ(last.state, SKIFF_BACKEND_TERMINATING);
  EXPECT_EQ(last.address, *reinterpret_cast<const __be32*>(Ip("10.244.1.11").bytes.data()));
}

TEST(LbReconciler, InternalTrafficPolicyLocalWritesLocalScope) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto k = Key("10.96.0.10", 80);
  auto fe = Fe(k, {B("10.244.1.11", 8080, BackendState::kActive, true), B("10.244.2.12", 8080)});
  fe.internal_traffic_local = true;
  r.Apply(State({fe}), true);
  EXPECT_EQ(t.Slot(k, 0)->count, 2);
  EXPECT_TRUE(t.Slot(k, 0)->flags & SKIFF_SVC_F_INT_LOCAL);
  auto in0 = t.Slot(k, 0, SKIFF_SCOPE_INTERNAL);
  ASSERT_TRUE(in0);
  EXPECT_EQ(in0->count, 1);
  EXPECT_FALSE(t.Slot(k, 2, SKIFF_SCOPE_INTERNAL));
  // Turning the policy off removes the local scope.
  fe.internal_traffic_local = false;
  r.Apply(State({fe}), true);
  EXPECT_FALSE(t.Slot(k, 0, SKIFF_SCOPE_INTERNAL));
  EXPECT_FALSE(t.Slot(k, 1, SKIFF_SCOPE_INTERNAL));
  EXPECT_FALSE(t.Slot(k, 0)->flags & SKIFF_SVC_F_INT_LOCAL);
}

TEST(LbReconciler, NothingDeletedBeforeSync) {
  Tables t;
  auto a = Key("10.96.0.10", 80), b = Key("10.96.0.11", 80);
  {
    LbReconciler r(t.View());
    ASSERT_TRUE(r.Restore().ok());
    r.Apply(State({Fe(a, {B("10.244.1.11", 8080)}), Fe(b, {B("10.244.1.12", 8080)})}), true);
  }
  LbReconciler r(t.View());  // a restarted agent
  ASSERT_TRUE(r.Restore().ok());
  t.ClearLogs();
  r.Apply(State({Fe(a, {B("10.244.1.11", 8080)})}), /*synced=*/false);
  EXPECT_TRUE(t.Slot(b, 0)) << "a frontend not yet heard of was deleted before sync";
  EXPECT_EQ(t.services.writes() + t.backends.writes() + t.revnat.writes(), 0);
  r.Apply(State({Fe(a, {B("10.244.1.11", 8080)})}), /*synced=*/true);
  EXPECT_FALSE(t.Slot(b, 0));
  EXPECT_FALSE(t.Slot(b, 1));
  EXPECT_EQ(t.revnat.entries().size(), 1u);
  EXPECT_EQ(t.backends.entries().size(), 1u);
}

TEST(LbReconciler, IdsSurviveRestart) {
  Tables t;
  auto a = Key("10.96.0.10", 80), b = Key("10.96.0.11", 53, Protocol::kUdp);
  auto st = State(
      {Fe(a, {B("10.244.1.11", 8080), B("10.244.1.12", 8080)}), Fe(b, {B("10.244.1.13", 5353)})});
  uint32_t rn_a, rn_b;
  uint32_t be;
  {
    LbReconciler r(t.View());
    ASSERT_TRUE(r.Restore().ok());
    r.Apply(st, true);
    rn_a = *r.RevNatId(a);
    rn_b = *r.RevNatId(b);
    be = *r.BackendId(BackendAddr{Ip("10.244.1.12"), 8080, 6});
  }
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  EXPECT_EQ(*r.RevNatId(a), rn_a);
  EXPECT_EQ(*r.RevNatId(b), rn_b);
  EXPECT_EQ(*r.BackendId(BackendAddr{Ip("10.244.1.12"), 8080, 6}), be);
  t.ClearLogs();
  r.Apply(st, true);
  EXPECT_EQ(t.services.writes() + t.backends.writes() + t.revnat.writes(), 0)
      << "a restart rewrote entries that were already right";
  // A new frontend after the restart does not reuse a live id.
  auto c = Key("10.96.0.12", 80);
  st.frontends[c] = Fe(c, {B("10.244.1.14", 8080)});
  r.Apply(st, true);
  EXPECT_NE(*r.RevNatId(c), rn_a);
  EXPECT_NE(*r.RevNatId(c), rn_b);
}

// Rev-NAT ids are 32 bits: with every 16-bit id taken (here by entries found in the revnat
// map at start), a new frontend gets 65,536 in slot 0, every slot and the revnat key, and keeps
// it across a restart.
TEST(LbReconciler, RevNatIdsPastSixteenBits) {
  Tables t;
  t.revnat = FakeKvTable<__u32, skiff_lb4_revnat>("skiff_lb4_revnat_v2", 70000);
  for (uint32_t id = 1; id <= 0xffff; id++) t.revnat.mutable_entries()[id] = skiff_lb4_revnat{};
  auto k = Key("10.96.0.10", 80);
  auto st = State({Fe(k, {B("10.244.1.11", 8080), B("10.244.1.12", 8080)})});
  {
    LbReconciler r(t.View());
    ASSERT_TRUE(r.Restore().ok());
    auto res = r.Apply(st, false);
    ASSERT_TRUE(res.ok()) << res.errors[0];
    EXPECT_EQ(*r.RevNatId(k), 0x10000u);
  }
  EXPECT_EQ(t.Slot(k, 0)->rev_nat_id, 0x10000u);
  EXPECT_EQ(t.Slot(k, 1)->rev_nat_id, 0x10000u);
  EXPECT_EQ(t.Slot(k, 2)->rev_nat_id, 0x10000u);
  EXPECT_EQ(ntohs(t.revnat.entries().at(0x10000u).port), 80);
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  EXPECT_EQ(*r.RevNatId(k), 0x10000u);
  t.ClearLogs();
  r.Apply(st, false);
  EXPECT_EQ(t.services.writes() + t.revnat.writes(), 0);
}

TEST(LbReconciler, SharedBackendHasOneIdAcrossServices) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto a = Key("10.96.0.10", 80), b = Key("10.96.0.20", 80);
  r.Apply(State({Fe(a, {B("10.244.1.11", 8080)}), Fe(b, {B("10.244.1.11", 8080)})}), true);
  EXPECT_EQ(t.backends.entries().size(), 1u);
  EXPECT_EQ(t.Slot(a, 1)->backend_id, t.Slot(b, 1)->backend_id);
  EXPECT_NE(t.Slot(a, 0)->rev_nat_id, t.Slot(b, 0)->rev_nat_id);
}

TEST(LbReconciler, MapFullIsNamedAndLeavesLastGoodState) {
  Tables t;
  t.services = FakeKvTable<skiff_lb4_key, skiff_lb4_service>("skiff_lb4_services_v2", 4);
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto a = Key("10.96.0.10", 80), b = Key("10.96.0.11", 80);
  auto res = r.Apply(State({Fe(a, {B("10.244.1.11", 8080)})}), true);
  ASSERT_TRUE(res.ok());
  // b needs 4 entries, only 2 are left: it must fail without a slot 0 that points nowhere.
  res = r.Apply(
      State({Fe(a, {B("10.244.1.11", 8080)}),
             Fe(b, {B("10.244.1.12", 8080), B("10.244.1.13", 8080), B("10.244.1.14", 8080)})}),
      true);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.map_full_errors, 1);
  EXPECT_NE(res.errors[0].find("skiff_lb4_services_v2 is full (4 entries)"), std::string::npos)
      << res.errors[0];
  EXPECT_NE(res.errors[0].find("default/web"), std::string::npos) << res.errors[0];
  EXPECT_NE(res.errors[0].find("10.96.0.11:80/TCP"), std::string::npos) << res.errors[0];
  EXPECT_FALSE(t.Slot(b, 0)) << "half-written frontend visible to the datapath";
  EXPECT_TRUE(t.Slot(a, 0));
  // Once b goes away, its leftover slots are cleaned up.
  res = r.Apply(State({Fe(a, {B("10.244.1.11", 8080)})}), true);
  EXPECT_TRUE(res.ok());
  EXPECT_EQ(t.services.entries().size(), 2u);
}

// The backends map is an array indexed by backend id (maps/lb.h): ids stay below its size, and
// running out of them is the map-full error, naming the map and its flag, with the frontend
// left unwritten.
TEST(LbReconciler, BackendIdsStayBelowTheBackendsArraySize) {
  Tables t;
  t.backends = FakeKvTable<__u32, skiff_lb4_backend>(SKIFF_STR(SKIFF_MAP_LB4_BACKENDS), 4);
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto a = Key("10.96.0.10", 80), b = Key("10.96.0.11", 80);
  auto res = r.Apply(
      State({Fe(a, {B("10.244.1.11", 8080), B("10.244.1.12", 8080), B("10.244.1.13", 8080)})}),
      true);
  ASSERT_TRUE(res.ok()) << res.errors[0];
  std::set<uint32_t> ids;
  for (const auto& [id, v] : t.backends.entries()) ids.insert(id);
  EXPECT_EQ(ids, (std::set<uint32_t>{1, 2, 3}));  // never 0, never 4
  res = r.Apply(
      State({Fe(a, {B("10.244.1.11", 8080), B("10.244.1.12", 8080), B("10.244.1.13", 8080)}),
             Fe(b, {B("10.244.1.14", 8080)})}),
      true);
  ASSERT_FALSE(res.ok());
  EXPECT_GE(res.map_full_errors, 1);
  EXPECT_NE(res.errors[0].find(absl::StrCat("map ", SKIFF_STR(SKIFF_MAP_LB4_BACKENDS),
                                            " is full (4 entries: backend ids 1..3")),
            std::string::npos)
      << res.errors[0];
  EXPECT_NE(res.errors[0].find("--lb-backends-max"), std::string::npos) << res.errors[0];
  EXPECT_FALSE(t.Slot(b, 0)) << "a frontend without its backend was written";
  EXPECT_EQ(t.backends.entries().size(), 3u);
  // Freed ids are handed out again; a restart rebuilds the pool with the same bound.
  res = r.Apply(State({Fe(a, {B("10.244.1.11", 8080)})}), true);
  ASSERT_TRUE(res.ok()) << res.errors[0];
  res = r.Apply(State({Fe(a, {B("10.244.1.11", 8080)}), Fe(b, {B("10.244.1.14", 8080)})}), true);
  ASSERT_TRUE(res.ok()) << res.errors[0];
  LbReconciler again(t.View());
  ASSERT_TRUE(again.Restore().ok());
  res = again.Apply(State({Fe(a, {B("10.244.1.11", 8080), B("10.244.1.15", 8080)}),
                           Fe(b, {B("10.244.1.14", 8080)})}),
                    true);
  ASSERT_TRUE(res.ok()) << res.errors[0];
  ids.clear();
  for (const auto& [id, v] : t.backends.entries()) ids.insert(id);
  EXPECT_EQ(ids, (std::set<uint32_t>{1, 2, 3}));
  res = again.Apply(State({Fe(a, {B("10.244.1.11", 8080), B("10.244.1.15", 8080)}),
                           Fe(b, {B("10.244.1.14", 8080), B("10.244.1.16", 8080)})}),
                    true);
  EXPECT_FALSE(res.ok()) << "a fourth backend fitted an array of 4";
}

// An endpoint at 0.0.0.0 would read as an empty slot of the backends array: refused, named.
TEST(LbReconciler, BackendAtAddressZeroIsRefused) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto a = Key("10.96.0.10", 80);
  auto res = r.Apply(State({Fe(a, {B("0.0.0.0", 8080)})}), true);
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.errors[0].find("0.0.0.0:8080"), std::string::npos) << res.errors[0];
  EXPECT_TRUE(t.backends.entries().empty());
  EXPECT_FALSE(t.Slot(a, 0));
}

// Fresh frontends go to the maps in batches (lb_batch.cc): one UpdateBatch per map here, with
// every frontend's slots before its slot 0 in the batch, as single writes would have them.
TEST(LbReconciler, FreshFrontendsAreWrittenInOrderedBatches) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  std::vector<Frontend> fes;
  for (int i = 0; i < 300; i++) {
    std::string vip = absl::StrCat("10.96.", i / 250, ".", i % 250 + 1);
    std::string b1 = absl::StrCat("10.244.", i / 250, ".", i % 250 + 1);
    std::string b2 = absl::StrCat("10.245.", i / 250, ".", i % 250 + 1);
    fes.push_back(Fe(Key(vip.c_str(), 80), {B(b1.c_str(), 8080), B(b2.c_str(), 8080)}));
  }
  auto res = r.Apply(State(fes), true);
  ASSERT_TRUE(res.ok()) << res.errors[0];
  EXPECT_EQ(res.frontends_written, 300);
  EXPECT_EQ(t.services.batch_calls(), 1);
  EXPECT_EQ(t.backends.batch_calls(), 1);
  EXPECT_EQ(t.revnat.batch_calls(), 1);
  EXPECT_EQ(t.services.entries().size(), 900u);
  EXPECT_EQ(t.backends.entries().size(), 600u);
  EXPECT_EQ(t.revnat.entries().size(), 300u);
  // Per frontend: slots 1 and 2, then slot 0.
  std::map<std::pair<__be32, __be16>, std::vector<uint16_t>> order;
  for (const auto& op : t.services.log()) {
    ASSERT_TRUE(op.update);
    order[{op.key.address, op.key.dport}].push_back(op.key.slot);
  }
  ASSERT_EQ(order.size(), 300u);
  for (const auto& [fe, slots] : order) EXPECT_EQ(slots, (std::vector<uint16_t>{1, 2, 0}));
  for (const auto& f : fes) {
    auto s0 = t.Slot(f.key, 0);
    ASSERT_TRUE(s0);
    EXPECT_EQ(s0->count, 2);
    EXPECT_TRUE(t.revnat.entries().count(s0->rev_nat_id));
  }
  // Unchanged: nothing is written again.
  t.ClearLogs();
  res = r.Apply(State(fes), true);
  EXPECT_TRUE(res.ok());
  EXPECT_EQ(t.services.writes() + t.backends.writes() + t.revnat.writes(), 0);
}

// A first load often arrives as changes after an empty first sync (the manifest source commits
// file by file): ApplyChanges batches its new frontends too, slots before slot 0.
TEST(LbReconciler, NewFrontendsInAChangeAreBatched) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  ASSERT_TRUE(r.Apply(DesiredState{}, true).ok());
  DesiredState next;
  std::set<FrontendKey> changed;
  for (int i = 1; i <= 50; i++) {
    std::string vip = absl::StrCat("10.96.1.", i), be = absl::StrCat("10.244.2.", i);
    auto k = Key(vip.c_str(), 80);
    next.frontends[k] = Fe(k, {B(be.c_str(), 8080)});
    changed.insert(k);
  }
  t.ClearLogs();
  auto res = r.ApplyChanges(next, true, changed);
  ASSERT_TRUE(res.ok()) << res.errors[0];
  EXPECT_EQ(res.frontends_written, 50);
  EXPECT_EQ(t.services.batch_calls(), 1);
  EXPECT_EQ(t.revnat.batch_calls(), 1);
  EXPECT_EQ(t.backends.batch_calls(), 1);
  ASSERT_EQ(t.services.log().size(), 100u);
  for (size_t i = 0; i < 100; i += 2) {
    EXPECT_EQ(t.services.log()[i].key.slot, 1);
    EXPECT_EQ(t.services.log()[i + 1].key.slot, 0);
  }
}

// A batch that fails part-way (the service map fills up): the frontends written before the
// failing entry are complete, the one that failed and those after it have no entry at all
// (no slot, no slot 0, no rev-NAT entry), and each is named in an error.
TEST(LbReconciler, BatchFailurePartWayLeavesNoHalfWrittenFrontend) {
  Tables t;
  t.services = FakeKvTable<skiff_lb4_key, skiff_lb4_service>("skiff_lb4_services_v2", 7);
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  std::vector<FrontendKey> keys;
  std::vector<Frontend> fes;
  for (int i = 1; i <= 5; i++) {
    std::string vip = absl::StrCat("10.96.0.", i);
    keys.push_back(Key(vip.c_str(), 80));
    fes.push_back(Fe(keys.back(), {B("10.244.1.11", 8080)}, absl::StrCat("default/svc", i)));
  }
  auto res = r.Apply(State(fes), true);
  ASSERT_EQ(res.errors.size(), 2u);
  EXPECT_EQ(res.frontends_written, 3);
  EXPECT_NE(res.errors[0].find("default/svc4"), std::string::npos) << res.errors[0];
  EXPECT_NE(res.errors[0].find("skiff_lb4_services_v2 is full"), std::string::npos)
      << res.errors[0];
  EXPECT_NE(res.errors[1].find("default/svc5"), std::string::npos) << res.errors[1];
  for (int i = 0; i < 3; i++) {
    ASSERT_TRUE(t.Slot(keys[i], 0));
    EXPECT_TRUE(t.Slot(keys[i], 1));
  }
  for (int i = 3; i < 5; i++) {
    EXPECT_FALSE(t.Slot(keys[i], 0));
    EXPECT_FALSE(t.Slot(keys[i], 1)) << "a failed fresh frontend left a slot behind";
    EXPECT_FALSE(r.RevNatId(keys[i]));
  }
  EXPECT_EQ(t.services.entries().size(), 6u);
  EXPECT_EQ(t.revnat.entries().size(), 3u);
  // With room, the next pass writes them (the fresh path again) and reuses no live id.
  auto kept = t.services.entries();
  t.services = FakeKvTable<skiff_lb4_key, skiff_lb4_service>("skiff_lb4_services_v2", 100);
  t.services.mutable_entries() = kept;
  res = r.Apply(State(fes), true);
  ASSERT_TRUE(res.ok()) << res.errors[0];
  std::set<uint32_t> ids;
  for (const auto& k : keys) ids.insert(*r.RevNatId(k));
  EXPECT_EQ(ids.size(), 5u);
}

// A rev-NAT write that fails in its batch keeps every service entry of that frontend out.
TEST(LbReconciler, RevNatBatchFailureWritesNoServiceEntry) {
  Tables t;
  t.revnat = FakeKvTable<__u32, skiff_lb4_revnat>("skiff_lb4_revnat_v2", 2);
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto a = Key("10.96.0.1", 80), b = Key("10.96.0.2", 80), c = Key("10.96.0.3", 80);
  auto res = r.Apply(State({Fe(a, {B("10.244.1.11", 8080)}), Fe(b, {B("10.244.1.11", 8080)}),
                            Fe(c, {B("10.244.1.11", 8080)})}),
                     true);
  ASSERT_EQ(res.errors.size(), 1u);
  EXPECT_NE(res.errors[0].find("10.96.0.3:80/TCP"), std::string::npos) << res.errors[0];
  EXPECT_TRUE(t.Slot(a, 0));
  EXPECT_TRUE(t.Slot(b, 0));
  for (const auto& op : t.services.log()) EXPECT_NE(op.key.address, MakeLb4Key(c, 0, 0).address);
}

TEST(LbReconciler, RemovedBackendLosesAffinityEntries) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto k = Key("10.96.0.10", 80);
  auto fe = Fe(k, {B("10.244.1.11", 8080), B("10.244.1.12", 8080)});
  fe.affinity_client_ip = true;
  fe.affinity_timeout_s = 10800;
  r.Apply(State({fe}), true);
  EXPECT_EQ(t.Slot(k, 0)->affinity_timeout, 10800u);
  uint32_t rn = t.Slot(k, 0)->rev_nat_id;
  uint32_t gone = *r.BackendId(BackendAddr{Ip("10.244.1.12"), 8080, 6});
  uint32_t kept = *r.BackendId(BackendAddr{Ip("10.244.1.11"), 8080, 6});
  skiff_lb4_affinity_key ak{};
  ak.client = 1;
  ak.rev_nat_id = rn;
  skiff_lb_affinity_val av{};
  av.backend_id = gone;
  ASSERT_TRUE(t.affinity.Update(ak, av).ok());
  ak.client = 2;
  av.backend_id = kept;
  ASSERT_TRUE(t.affinity.Update(ak, av).ok());
  fe.backends = {B("10.244.1.11", 8080)};
  r.Apply(State({fe}), true);
  ASSERT_EQ(t.affinity.entries().size(), 1u);
  EXPECT_EQ(t.affinity.entries().begin()->second.backend_id, kept);
}

// What the tables mean, without the ids (which depend on allocation order): every service
// slot with its backend's value in place of the backend id and the rev-NAT entry in place of
// the rev-NAT id, plus every backend and rev-NAT value.
std::multiset<std::string> Canonical(Tables& t) {
  auto bytes = [](const auto& v) {
    return std::string(reinterpret_cast<const char*>(&v), sizeof(v));
  };
  std::multiset<std::string> out;
  for (const auto& [k, v] : t.services.entries()) {
    skiff_lb4_service plain = v;
    plain.backend_id = 0;
    plain.rev_nat_id = 0;
    std::string row = "svc " + bytes(k) + bytes(plain);
    if (v.backend_id != 0) row += bytes(t.backends.entries().at(v.backend_id));
    if (v.rev_nat_id != 0) row += bytes(t.revnat.entries().at(v.rev_nat_id));
    out.insert(row);
  }
  for (const auto& [id, v] : t.backends.entries()) out.insert("backend " + bytes(v));
  for (const auto& [id, v] : t.revnat.entries()) out.insert("revnat " + bytes(v));
  return out;
}

// ApplyChanges with only the changed frontends leaves the same tables as a full Apply from
// scratch, over random sequences of frontends gaining, losing and sharing backends (states
// and locality changing, a backend shared by several frontends).
TEST(LbReconciler, IncrementalEqualsFullOnRandomChanges) {
  std::mt19937 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const char* vips[] = {"10.96.0.1", "10.96.0.2", "10.96.0.3", "10.96.0.4",
                        "10.96.0.5", "10.96.0.6", "10.96.0.7", "10.96.0.8"};
  const char* ips[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"};
  Tables inc;
  LbReconciler r(inc.View());
  ASSERT_TRUE(r.Restore().ok());
  DesiredState desired;
  r.Apply(desired, true);
  int incremental_writes = 0;
  for (int step = 0; step < 300; ++step) {
    DesiredState next = desired;
    std::set<FrontendKey> changed;
    for (int c = 1 + pick(3); c > 0; --c) {
      FrontendKey k = Key(vips[pick(8)], static_cast<uint16_t>(80 + pick(2)));
      changed.insert(k);
      if (pick(4) == 0) {
        next.frontends.erase(k);
        continue;
      }
      std::vector<Backend> bs;
      std::set<std::string> used;
      for (int b = pick(4); b > 0; --b) {
        const char* ip = ips[pick(6)];
        if (!used.insert(ip).second) continue;
        bs.push_back(B(ip, 8080, pick(3) ? BackendState::kActive : BackendState::kTerminating,
                       pick(2) == 0));
      }
      std::sort(bs.begin(), bs.end());
      next.frontends[k] = Fe(k, bs, "default/s");
    }
    ApplyResult res = r.ApplyChanges(next, true, changed);
    ASSERT_TRUE(res.ok()) << res.errors[0];
    EXPECT_LE(res.frontends_written + res.frontends_deleted, static_cast<int>(changed.size()));
    incremental_writes += res.frontends_written;
    desired = std::move(next);

    Tables full;
    LbReconciler f(full.View());
    ASSERT_TRUE(f.Restore().ok());
    ASSERT_TRUE(f.Apply(desired, true).ok());
    ASSERT_EQ(Canonical(inc), Canonical(full)) << "step " << step;
  }
  EXPECT_GT(incremental_writes, 100);
}

// Not synced, or after an error: ApplyChanges does a full Apply (nothing is deleted early).
TEST(LbReconciler, ApplyChangesBeforeSyncDeletesNothing) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto a = Key("10.96.0.10", 80), b = Key("10.96.0.11", 80);
  r.Apply(State({Fe(a, {B("10.244.1.11", 8080)})}), true);
  r.ApplyChanges(State({Fe(b, {B("10.244.1.12", 8080)})}), false, {a, b});
  EXPECT_TRUE(t.Slot(a, 0));
  EXPECT_TRUE(t.Slot(b, 0));
  // Synced again: the first full pass removes a, even though only b is named as changed.
  auto res = r.ApplyChanges(State({Fe(b, {B("10.244.1.12", 8080)})}), true, {b});
  EXPECT_EQ(res.frontends_deleted, 1);
  EXPECT_FALSE(t.Slot(a, 0));
  EXPECT_EQ(t.backends.entries().size(), 1u);
}

}  // namespace

namespace {

model::SourceRange Range(const char* ip, uint8_t len) { return model::SourceRange{Ip(ip), len}; }

__be32 V4Of(const char* ip) {
  __be32 a;
  inet_pton(AF_INET, ip, &a);
  return a;
}

bool HasRange(Tables& t, uint32_t rev_nat_id, const char* ip, uint8_t len) {
  return t.src_ranges.entries().count(MakeSrcRangeKey(rev_nat_id, V4Of(ip), len)) > 0;
}

Frontend LbFe(FrontendKey k, std::vector<model::SourceRange> ranges) {
  Frontend f = Fe(k, {B("10.244.1.11", 8080)}, "default/lb");
  f.kind = model::FrontendKind::kLoadBalancer;
  f.restrict_sources = !ranges.empty();
  f.source_ranges = std::move(ranges);
  return f;
}

}  // namespace

TEST(LbReconciler, SourceRangesWrittenWithFlagAndRemovedWithIt) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto k = Key("198.51.100.9", 80);
  auto res = r.Apply(State({LbFe(k, {Range("203.0.113.0", 24), Range("192.0.2.7", 32)})}), true);
  ASSERT_TRUE(res.ok()) << res.errors[0];
  auto s0 = t.Slot(k, 0);
  ASSERT_TRUE(s0);
  EXPECT_TRUE(s0->flags & SKIFF_SVC_F_SRC_RANGES);
  EXPECT_TRUE(s0->flags & SKIFF_SVC_F_LOAD_BALANCER);
  ASSERT_EQ(t.src_ranges.entries().size(), 2u);
  EXPECT_TRUE(HasRange(t, s0->rev_nat_id, "203.0.113.0", 24));
  EXPECT_TRUE(HasRange(t, s0->rev_nat_id, "192.0.2.7", 32));
  auto key = MakeSrcRangeKey(s0->rev_nat_id, V4Of("203.0.113.0"), 24);
  EXPECT_EQ(key.prefixlen, 56u);
  EXPECT_EQ(t.src_ranges.entries().at(key).allow, 1);

  // A frontend without ranges has neither flag nor entries.
  auto plain = Key("198.51.100.10", 80);
  r.Apply(State({LbFe(k, {Range("203.0.113.0", 24), Range("192.0.2.7", 32)}), LbFe(plain, {})}),
          true);
  EXPECT_FALSE(t.Slot(plain, 0)->flags & SKIFF_SVC_F_SRC_RANGES);
  EXPECT_EQ(t.src_ranges.entries().size(), 2u);

  // Deleting the frontend deletes its ranges; its rev-NAT id may be reused.
  r.Apply(State({LbFe(plain, {})}), true);
  EXPECT_FALSE(t.Slot(k, 0));
  EXPECT_TRUE(t.src_ranges.entries().empty());
}

TEST(LbReconciler, SourceRangesMakeBeforeBreak) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto k = Key("198.51.100.9", 80);
  r.Apply(State({LbFe(k, {})}), true);
  const uint32_t rn = t.Slot(k, 0)->rev_nat_id;

  // Restricting: every range exists before slot 0 carries the flag.
  t.ClearLogs();
  r.Apply(State({LbFe(k, {Range("203.0.113.0", 24)})}), true);
  ASSERT_EQ(t.src_ranges.log().size(), 1u);
  ASSERT_EQ(t.services.log().size(), 1u);
  EXPECT_TRUE(t.src_ranges.log()[0].update);
  EXPECT_TRUE(t.Slot(k, 0)->flags & SKIFF_SVC_F_SRC_RANGES);

  // Replacing a range: the new one is written before the old one goes, slot 0 untouched.
  t.ClearLogs();
  r.Apply(State({LbFe(k, {Range("192.0.2.0", 24)})}), true);
  ASSERT_EQ(t.src_ranges.log().size(), 2u);
  EXPECT_TRUE(t.src_ranges.log()[0].update);
  EXPECT_EQ(t.src_ranges.log()[0].key.address, V4Of("192.0.2.0"));
  EXPECT_FALSE(t.src_ranges.log()[1].update);
  EXPECT_EQ(t.src_ranges.log()[1].key.address, V4Of("203.0.113.0"));
  EXPECT_EQ(t.services.log().size(), 0u);
  EXPECT_TRUE(HasRange(t, rn, "192.0.2.0", 24));
  EXPECT_FALSE(HasRange(t, rn, "203.0.113.0", 24));

  // Lifting the restriction: the flag is cleared (a services write) before the range goes.
  // The fake tables have separate logs, so check the flag state at delete time.
  struct Watch : FakeKvTable<skiff_lb4_src_range_key, skiff_lb4_src_range_val> {
    using FakeKvTable::FakeKvTable;
    std::function<void()> on_delete;
    absl::Status Delete(const skiff_lb4_src_range_key& key) override {
      if (on_delete) on_delete();
      return FakeKvTable::Delete(key);
    }
  };
  Tables t2;
  Watch w("skiff_lb4_src_range_v2", 1000);
  LbTables view = t2.View();
  view.src_ranges = &w;
  LbReconciler r2(view);
  ASSERT_TRUE(r2.Restore().ok());
  r2.Apply(State({LbFe(k, {Range("203.0.113.0", 24)})}), true);
  ASSERT_EQ(w.entries().size(), 1u);
  int deletes = 0;
  w.on_delete = [&] {
    deletes++;
    auto s0 = t2.Slot(k, 0);
    ASSERT_TRUE(s0);
    EXPECT_FALSE(s0->flags & SKIFF_SVC_F_SRC_RANGES) << "range deleted while the flag was set";
  };
  r2.Apply(State({LbFe(k, {})}), true);
  EXPECT_EQ(deletes, 1);
  EXPECT_TRUE(w.entries().empty());
}

TEST(LbReconciler, SourceRangesOfTheOtherFamilyOnlyAdmitNoOne) {
  Tables t;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  auto k = Key("198.51.100.9", 80);
  Frontend f = LbFe(k, {});
  f.restrict_sources = true;  // every range was IPv6
  ASSERT_TRUE(r.Apply(State({f}), true).ok());
  EXPECT_TRUE(t.Slot(k, 0)->flags & SKIFF_SVC_F_SRC_RANGES);
  EXPECT_TRUE(t.src_ranges.entries().empty());
}

TEST(LbReconciler, SourceRangesIncrementalAndAcrossRestart) {
  Tables t;
  auto a = Key("198.51.100.9", 80), b = Key("198.51.100.10", 80);
  uint16_t rn_a;
  {
    LbReconciler r(t.View());
    ASSERT_TRUE(r.Restore().ok());
    DesiredState st = State({LbFe(a, {Range("203.0.113.0", 24)}), LbFe(b, {})});
    ASSERT_TRUE(r.Apply(st, true).ok());
    rn_a = *r.RevNatId(a);
    // Incremental: b gains a range, a changes its range.
    st = State({LbFe(a, {Range("192.0.2.0", 25)}), LbFe(b, {Range("10.0.0.0", 8)})});
    ASSERT_TRUE(r.ApplyChanges(st, true, {a, b}).ok());
    EXPECT_TRUE(HasRange(t, rn_a, "192.0.2.0", 25));
    EXPECT_FALSE(HasRange(t, rn_a, "203.0.113.0", 24));
    EXPECT_TRUE(HasRange(t, *r.RevNatId(b), "10.0.0.0", 8));
    EXPECT_TRUE(t.Slot(b, 0)->flags & SKIFF_SVC_F_SRC_RANGES);
    // Incremental deletion of b takes its range.
    st.frontends.erase(b);
    ASSERT_TRUE(r.ApplyChanges(st, true, {b}).ok());
    EXPECT_EQ(t.src_ranges.entries().size(), 1u);
  }
  // An entry of a rev-NAT id no frontend has (a crash between deletes) goes at Restore.
  skiff_lb4_src_range_val v{};
  v.allow = 1;
  t.src_ranges.mutable_entries()[MakeSrcRangeKey(4242, V4Of("10.1.0.0"), 16)] = v;
  LbReconciler r(t.View());
  ASSERT_TRUE(r.Restore().ok());
  EXPECT_EQ(t.src_ranges.entries().size(), 1u);
  EXPECT_TRUE(HasRange(t, rn_a, "192.0.2.0", 25));
  t.ClearLogs();
  ASSERT_TRUE(r.Apply(State({LbFe(a, {Range("192.0.2.0", 25)})}), true).ok());
  EXPECT_TRUE(t.src_ranges.log().empty()) << "a restart rewrote ranges that were right";
  EXPECT_EQ(t.services.log().size(), 0u);
}

}  // namespace skiff::reconcile
