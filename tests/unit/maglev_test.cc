// Maglev lookup tables (agent/reconcile/maglev.h) and how the LB reconciler keeps them in the
// maglev map: balance, minimal disruption, determinism, the write order around slot 0, the
// terminating fallback, the node-local scope, restarts and the incremental path.
#include "agent/reconcile/maglev.h"

#include <arpa/inet.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/reconcile/lb_reconciler.h"
#include "tests/unit/fake_lb_tables.h"

namespace skiff::reconcile {
namespace {

std::vector<MaglevBackend> Backends(int n, int first = 0) {
  std::vector<MaglevBackend> out;
  for (int i = first; i < first + n; i++)
    out.push_back({absl::StrCat("10.244.", i / 200, ".", i % 200 + 1, ":8080"),
                   static_cast<uint32_t>(100 + i)});
  return out;
}

std::map<uint32_t, int> Owned(const std::vector<uint32_t>& table) {
  std::map<uint32_t, int> n;
  for (uint32_t id : table) n[id]++;
  return n;
}

TEST(MaglevTable, EveryBackendGetsItsShare) {
  for (uint32_t m : {251u, 16381u}) {
    for (int n : {1, 3, 10, 100}) {
      auto table = MaglevTable(Backends(n), m, SKIFF_MAGLEV_HASH_SEED_DEFAULT);
      ASSERT_EQ(table.size(), m);
      auto owned = Owned(table);
      ASSERT_EQ(owned.size(), static_cast<size_t>(n)) << "m=" << m << " n=" << n;
      // The fill gives every backend one slot per round: shares differ by at most one.
      for (const auto& [id, count] : owned) {
        EXPECT_GE(count, static_cast<int>(m / n)) << id;
        EXPECT_LE(count, static_cast<int>((m + n - 1) / n)) << id;
      }
    }
  }
}

TEST(MaglevTable, RemovingOneOfNMovesAboutOneNth) {
  const uint32_t m = 16381;
  for (int n : {5, 10, 50}) {
    auto before = MaglevTable(Backends(n), m, SKIFF_MAGLEV_HASH_SEED_DEFAULT);
    auto fewer = Backends(n);
    const uint32_t removed = fewer[n / 2].id;
    fewer.erase(fewer.begin() + n / 2);
    auto after = MaglevTable(fewer, m, SKIFF_MAGLEV_HASH_SEED_DEFAULT);
    int of_removed = 0, moved_others = 0;
    for (uint32_t i = 0; i < m; i++) {
      EXPECT_NE(after[i], removed);
      if (before[i] == removed) {
        of_removed++;
      } else if (before[i] != after[i]) {
        moved_others++;
      }
    }
    // The removed backend's ~M/N slots move; of the rest only a small fraction does (the
    // paper's Figure 11: a few percent). Random assignment would move (N-1)/N of them.
    EXPECT_NEAR(of_removed, static_cast<int>(m / n), 1);
    std::cerr << "M=" << m << " N=" << n << ": removed backend's slots " << of_removed
              << ", other slots moved " << moved_others << " ("
              << 100.0 * moved_others / (m - of_removed) << "%)\n";
    EXPECT_LT(moved_others, static_cast<int>(m / n)) << "n=" << n << ": " << moved_others;
    EXPECT_LT(static_cast<double>(moved_others) / (m - of_removed), 0.03) << "n=" << n;
  }
}

TEST(MaglevTable, AddingOneMovesOnlyWhatTheNewcomerTakes) {
  const uint32_t m = 16381;
  auto before = MaglevTable(Backends(10), m, SKIFF_MAGLEV_HASH_SEED_DEFAULT);
  auto after = MaglevTable(Backends(11), m, SKIFF_MAGLEV_HASH_SEED_DEFAULT);
  const uint32_t newcomer = Backends(11).back().id;
  int to_new = 0, moved_others = 0;
  for (uint32_t i = 0; i < m; i++) {
    if (after[i] == newcomer) {
      to_new++;
    } else if (after[i] != before[i]) {
      moved_others++;
    }
  }
  EXPECT_NEAR(to_new, static_cast<int>(m / 11), 1);
  EXPECT_LT(static_cast<double>(moved_others) / m, 0.03) << moved_others;
}

TEST(MaglevTable, DeterministicWhateverTheOrderAndSeedDependent) {
  auto a = Backends(7);
  auto b = a;
  std::reverse(b.begin(), b.end());
  std::rotate(b.begin(), b.begin() + 3, b.end());
  auto ta = MaglevTable(a, 251, 1);
  EXPECT_EQ(ta, MaglevTable(b, 251, 1));
  EXPECT_EQ(ta, MaglevTable(a, 251, 1));
  EXPECT_NE(ta, MaglevTable(a, 251, 2));
  // The ids are node-local; the names decide the slots: other ids, same layout.
  auto renumbered = a;
  for (auto& be : renumbered) be.id += 1000;
  auto tr = MaglevTable(renumbered, 251, 1);
  for (size_t i = 0; i < ta.size(); i++) ASSERT_EQ(tr[i], ta[i] + 1000) << i;
  EXPECT_TRUE(MaglevTable({}, 251, 1).empty());
}

TEST(MaglevTable, TableSizeMustBeAPrimeInRange) {
  for (uint32_t ok : {251u, 509u, 1021u, 16381u, 65521u, 131071u})
    EXPECT_TRUE(ValidateMaglevTableSize(ok).ok()) << ok;
  for (uint32_t bad : {0u, 16380u, 16383u, 241u, 250u, 131101u, 1000000u}) {
    absl::Status st = ValidateMaglevTableSize(bad);
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.message().find("--maglev-table-size"), std::string::npos) << st;
  }
}

// ---- the reconciler ----

using model::Backend;
using model::BackendState;
using model::DesiredState;
using model::Frontend;
using model::FrontendKey;
using model::IpAddr;
using model::LbAlgorithm;
using model::Protocol;

constexpr uint32_t kM = 251;

IpAddr Ip(const char* s) {
  IpAddr a;
  a.family = 4;
  inet_pton(AF_INET, s, a.bytes.data());
  return a;
}

Backend B(const char* ip, BackendState st = BackendState::kActive, bool local = false) {
  Backend b;
  b.ip = Ip(ip);
  b.port = 8080;
  b.state = st;
  b.node_local = local;
  return b;
}

const FrontendKey kVip{Ip("10.96.0.10"), 80, Protocol::kTcp};

Frontend Fe(std::vector<Backend> backends, LbAlgorithm alg = LbAlgorithm::kMaglev,
            FrontendKey key = kVip) {
  Frontend f;
  f.key = key;
  f.service = "default/web";
  f.backends = std::move(backends);
  f.lb_algorithm = alg;
  return f;
}

DesiredState State(std::vector<Frontend> fes) {
  DesiredState s;
  for (auto& f : fes) s.frontends[f.key] = f;
  return s;
}

// A maglev table that calls a hook before each write, so tests can look at slot 0 then.
class HookedMaglev : public FakeKvTable<skiff_lb4_maglev_key, MaglevRow> {
 public:
  using FakeKvTable::FakeKvTable;
  std::function<void(bool update, const skiff_lb4_maglev_key&)> hook;
  absl::Status Update(const skiff_lb4_maglev_key& k, const MaglevRow& v) override {
    if (hook) hook(true, k);
    return FakeKvTable::Update(k, v);
  }
  absl::Status Delete(const skiff_lb4_maglev_key& k) override {
    if (hook && entries().count(k)) hook(false, k);
    return FakeKvTable::Delete(k);
  }
};

struct Tables : FakeLbTables {
  HookedMaglev maglev{SKIFF_STR(SKIFF_MAP_LB4_MAGLEV), 100};
  LbTables View() {
    LbTables t = FakeLbTables::View();
    t.maglev = &maglev;
    return t;
  }
  std::optional<skiff_lb4_service> Slot0(uint8_t scope = SKIFF_SCOPE_EXTERNAL) {
    return Slot(kVip, 0, scope);
  }
  // The table of kVip's scope, as backend addresses per slot.
  std::optional<std::vector<std::string>> Table(uint8_t scope = SKIFF_SCOPE_EXTERNAL) {
    auto s0 = Slot0();
    if (!s0) return std::nullopt;
    skiff_lb4_maglev_key k{};
    k.rev_nat_id = s0->rev_nat_id;
    k.scope = scope;
    auto it = maglev.entries().find(k);
    if (it == maglev.entries().end()) return std::nullopt;
    std::vector<std::string> out;
    for (uint32_t id : it->second) {
      auto be = backends.entries().find(id);
      if (be == backends.entries().end()) {
        out.push_back("?");
        continue;
      }
      char buf[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &be->second.address, buf, sizeof(buf));
      out.push_back(buf);
    }
    return out;
  }
};

std::map<std::pair<int, int>, MaglevRow> Dump(const HookedMaglev& m) {
  std::map<std::pair<int, int>, MaglevRow> out;
  for (const auto& [k, v] : m.entries()) out[{k.rev_nat_id, k.scope}] = v;
  return out;
}

LbOptions Opts(bool default_maglev = false) {
  LbOptions o;
  o.default_maglev = default_maglev;
  o.maglev_table_size = kM;
  return o;
}

TEST(LbReconcilerMaglev, TableWrittenBeforeSlotZeroSelectsIt) {
  Tables t;
  LbReconciler r(t.View(), Opts());
  ASSERT_TRUE(r.Restore().ok());
  int checked = 0;
  t.maglev.hook = [&](bool update, const skiff_lb4_maglev_key&) {
    auto s0 = t.Slot0();
    if (update) {
      // Slot 0 does not select the new table yet: absent, or the previous state.
      EXPECT_TRUE(!s0 || s0->count != 3) << "slot 0 was written before the table";
    } else {
      ASSERT_TRUE(s0);
      EXPECT_EQ(s0->algorithm, SKIFF_LB_ALG_RANDOM) << "table deleted while slot 0 selects it";
    }
    checked++;
  };
  auto res = r.Apply(State({Fe({B("10.244.1.1"), B("10.244.1.2"), B("10.244.1.3")})}), true);
  ASSERT_TRUE(res.ok()) << res.errors[0];
  EXPECT_EQ(checked, 1);
  ASSERT_TRUE(t.Slot0());
  EXPECT_EQ(t.Slot0()->algorithm, SKIFF_LB_ALG_MAGLEV);
  auto table = t.Table();
  ASSERT_TRUE(table);
  ASSERT_EQ(table->size(), kM);
  std::map<std::string, int> owned;
  for (const auto& a : *table) owned[a]++;
  EXPECT_EQ(owned.size(), 3u);
  EXPECT_EQ(owned.count("?"), 0u);

  // Back to random: slot 0 first, then the table goes.
  res = r.Apply(
      State({Fe({B("10.244.1.1"), B("10.244.1.2"), B("10.244.1.3")}, LbAlgorithm::kRandom)}), true);
  ASSERT_TRUE(res.ok()) << res.errors[0];
  EXPECT_EQ(checked, 2);
  EXPECT_TRUE(t.maglev.entries().empty());
}

TEST(LbReconcilerMaglev, DefaultAlgorithmAndAnnotationOverride) {
  for (bool default_maglev : {false, true}) {
    Tables t;
    LbReconciler r(t.View(), Opts(default_maglev));
    ASSERT_TRUE(r.Restore().ok());
    ASSERT_TRUE(r.Apply(State({Fe({B("10.244.1.1")}, LbAlgorithm::kDefault)}), true).ok());
    EXPECT_EQ(t.Slot0()->algorithm, default_maglev ? SKIFF_LB_ALG_MAGLEV : SKIFF_LB_ALG_RANDOM);
    EXPECT_EQ(t.maglev.entries().size(), default_maglev ? 1u : 0u);
    LbAlgorithm other = default_maglev ? LbAlgorithm::kRandom : LbAlgorithm::kMaglev;
    ASSERT_TRUE(r.Apply(State({Fe({B("10.244.1.1")}, other)}), true).ok());
    EXPECT_EQ(t.Slot0()->algorithm, default_maglev ? SKIFF_LB_ALG_RANDOM : SKIFF_LB_ALG_MAGLEV);
    EXPECT_EQ(t.maglev.entries().size(), default_maglev ? 0u : 1u);
  }
}

TEST(LbReconcilerMaglev, BackendRemovalRewritesTableKeepingOthersSlots) {
  Tables t;
  LbReconciler r(t.View(), Opts());
  ASSERT_TRUE(r.Restore().ok());
  std::vector<Backend> five = {B("10.244.1.1"), B("10.244.1.2"), B("10.244.1.3"), B("10.244.1.4"),
                               B("10.244.1.5")};
  ASSERT_TRUE(r.Apply(State({Fe(five)}), true).ok());
  auto before = *t.Table();
  auto four = five;
  four.erase(four.begin() + 2);
  ASSERT_TRUE(r.Apply(State({Fe(four)}), true).ok());
  auto after = *t.Table();
  int moved_others = 0;
  for (size_t i = 0; i < kM; i++) {
    EXPECT_NE(after[i], "10.244.1.3");
    EXPECT_NE(after[i], "?");
    if (before[i] != "10.244.1.3" && before[i] != after[i]) moved_others++;
  }
  EXPECT_LT(moved_others, static_cast<int>(kM / 5)) << moved_others;
  // The removed backend's entry is gone once no table or slot refers to it.
  EXPECT_EQ(t.backends.entries().size(), 4u);
}

TEST(LbReconcilerMaglev, TerminatingOnlyWhenNoActiveBackend) {
  Tables t;
  LbReconciler r(t.View(), Opts());
  ASSERT_TRUE(r.Restore().ok());
  ASSERT_TRUE(
      r.Apply(State({Fe({B("10.244.1.1"), B("10.244.1.2", BackendState::kTerminating)})}), true)
          .ok());
  for (const auto& a : *t.Table()) EXPECT_EQ(a, "10.244.1.1");
  ASSERT_TRUE(r.Apply(State({Fe({B("10.244.1.1", BackendState::kTerminating),
                                 B("10.244.1.2", BackendState::kTerminating)})}),
                      true)
                  .ok());
  std::map<std::string, int> owned;
  for (const auto& a : *t.Table()) owned[a]++;
  EXPECT_EQ(owned.size(), 2u);
  EXPECT_EQ(t.Slot0()->count, 0);
  EXPECT_EQ(t.Slot0()->terminating_count, 2);
  // No backend at all: no table (new flows are rejected), slot 0 stays.
  ASSERT_TRUE(r.Apply(State({Fe({})}), true).ok());
  EXPECT_TRUE(t.maglev.entries().empty());
  ASSERT_TRUE(t.Slot0());
}

TEST(LbReconcilerMaglev, NodeLocalScopeHasItsOwnTable) {
  Tables t;
  LbReconciler r(t.View(), Opts());
  ASSERT_TRUE(r.Restore().ok());
  Frontend fe = Fe({B("10.244.1.1", BackendState::kActive, true), B("10.244.2.1")});
  fe.internal_traffic_local = true;
  ASSERT_TRUE(r.Apply(State({fe}), true).ok());
  EXPECT_EQ(t.maglev.entries().size(), 2u);
  for (const auto& a : *t.Table(SKIFF_SCOPE_INTERNAL)) EXPECT_EQ(a, "10.244.1.1");
  std::map<std::string, int> owned;
  for (const auto& a : *t.Table(SKIFF_SCOPE_EXTERNAL)) owned[a]++;
  EXPECT_EQ(owned.size(), 2u);
  fe.internal_traffic_local = false;
  ASSERT_TRUE(r.Apply(State({fe}), true).ok());
  EXPECT_EQ(t.maglev.entries().size(), 1u);
  EXPECT_FALSE(t.Table(SKIFF_SCOPE_INTERNAL));
}

TEST(LbReconcilerMaglev, DeletedFrontendTakesItsTable) {
  Tables t;
  LbReconciler r(t.View(), Opts());
  ASSERT_TRUE(r.Restore().ok());
  ASSERT_TRUE(r.Apply(State({Fe({B("10.244.1.1")})}), true).ok());
  ASSERT_EQ(t.maglev.entries().size(), 1u);
  ASSERT_TRUE(r.Apply(State({}), true).ok());
  EXPECT_TRUE(t.maglev.entries().empty());
  EXPECT_TRUE(t.services.entries().empty());
}

TEST(LbReconcilerMaglev, RestartRewritesNothingAndDropsOrphans) {
  Tables t;
  auto desired = State({Fe({B("10.244.1.1"), B("10.244.1.2")})});
  {
    LbReconciler r(t.View(), Opts());
    ASSERT_TRUE(r.Restore().ok());
    ASSERT_TRUE(r.Apply(desired, true).ok());
  }
  // An orphan (no frontend has rev-NAT id 999) as an interrupted delete leaves it.
  skiff_lb4_maglev_key orphan{};
  orphan.rev_nat_id = 999;
  ASSERT_TRUE(t.maglev.Update(orphan, MaglevRow(kM, 1)).ok());
  t.maglev.ClearLog();
  t.services.ClearLog();
  LbReconciler r(t.View(), Opts());
  ASSERT_TRUE(r.Restore().ok());
  EXPECT_EQ(t.maglev.entries().count(orphan), 0u);
  t.maglev.ClearLog();
  auto res = r.Apply(desired, true);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(t.maglev.writes(), 0);
  EXPECT_EQ(t.services.writes(), 0);
  EXPECT_EQ(res.frontends_written, 0);
  // A table that differs from the one wanted (say, another seed wrote it) is rewritten.
  auto key = t.maglev.entries().begin()->first;
  t.maglev.mutable_entries()[key][0] ^= 1;
  LbReconciler r2(t.View(), Opts());
  ASSERT_TRUE(r2.Restore().ok());
  t.maglev.ClearLog();
  ASSERT_TRUE(r2.Apply(desired, true).ok());
  EXPECT_EQ(t.maglev.writes(), 1);
}

TEST(LbReconcilerMaglev, IncrementalPathKeepsTablesRight) {
  Tables t;
  LbReconciler full_r(t.View(), Opts());
  Tables u;
  LbReconciler inc_r(u.View(), Opts());
  ASSERT_TRUE(full_r.Restore().ok());
  ASSERT_TRUE(inc_r.Restore().ok());
  FrontendKey np{Ip("192.168.1.10"), 30080, Protocol::kTcp};
  std::vector<DesiredState> steps = {
      State({Fe({B("10.244.1.1"), B("10.244.1.2"), B("10.244.1.3")}),
             Fe({B("10.244.1.1"), B("10.244.1.2"), B("10.244.1.3")}, LbAlgorithm::kMaglev, np)}),
      State({Fe({B("10.244.1.1"), B("10.244.1.3")}),
             Fe({B("10.244.1.1"), B("10.244.1.3")}, LbAlgorithm::kMaglev, np)}),
      State({Fe({B("10.244.1.1"), B("10.244.1.3")}, LbAlgorithm::kRandom),
             Fe({B("10.244.1.1"), B("10.244.1.3"), B("10.244.1.4")}, LbAlgorithm::kMaglev, np)}),
      State({Fe({B("10.244.1.4")}, LbAlgorithm::kMaglev, np)}),
  };
  const DesiredState* prev = nullptr;
  for (const DesiredState& d : steps) {
    ASSERT_TRUE(full_r.Apply(d, true).ok());
    std::set<FrontendKey> changed;
    for (const auto& [k, fe] : d.frontends)
      if (!prev || !prev->frontends.count(k) || !(prev->frontends.at(k) == fe)) changed.insert(k);
    if (prev)
      for (const auto& [k, fe] : prev->frontends)
        if (!d.frontends.count(k)) changed.insert(k);
    auto res = prev ? inc_r.ApplyChanges(d, true, changed) : inc_r.Apply(d, true);
    ASSERT_TRUE(res.ok()) << res.errors[0];
    prev = &d;
    // Same ids are allocated in the same order, so the maps must be byte-identical.
    ASSERT_EQ(Dump(t.maglev), Dump(u.maglev));
    ASSERT_EQ(t.services.entries().size(), u.services.entries().size());
  }
  // ClusterIP and NodePort share their backends: one computation per distinct set per Apply.
  EXPECT_LE(full_r.maglev_tables_computed(), 4u);
}

TEST(LbReconcilerMaglev, FullMaglevMapFailsTheFrontendOnly) {
  Tables t;
  HookedMaglev small{"skiff_lb4_maglev_v2", 1};
  LbTables view = t.View();
  view.maglev = &small;
  LbReconciler r(view, Opts());
  ASSERT_TRUE(r.Restore().ok());
  FrontendKey other{Ip("10.96.0.11"), 80, Protocol::kTcp};
  auto res = r.Apply(
      State({Fe({B("10.244.1.1")}), Fe({B("10.244.1.2")}, LbAlgorithm::kMaglev, other)}), true);
  ASSERT_EQ(res.errors.size(), 1u);
  EXPECT_EQ(res.map_full_errors, 1);
  EXPECT_NE(res.errors[0].find("skiff_lb4_maglev_v2"), std::string::npos) << res.errors[0];
  // The one that failed has no slot 0 selecting a missing table.
  EXPECT_EQ(small.entries().size(), 1u);
  int maglev_slot0 = 0;
  for (const auto& [k, v] : t.services.entries())
    if (k.slot == 0 && v.algorithm == SKIFF_LB_ALG_MAGLEV) maglev_slot0++;
  EXPECT_EQ(maglev_slot0, 1);
}

}  // namespace
}  // namespace skiff::reconcile
