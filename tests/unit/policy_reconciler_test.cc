// The policy reconciler against fake map tables: key encoding, make-before-break order,
// stable ids, fail-closed on a full map, no deletion before sync.
#include "agent/policy/reconciler.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "tests/unit/policy_fixture.h"

namespace skiff::policy {
namespace {

using namespace skiff::policy::testing;  // NOLINT
using reconcile::FakeKvTable;

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    c_.Namespace("a", {{"team", "a"}});
    c_.Namespace("b", {{"team", "b"}});
    c_.Pod("a", "web", "10.0.1.1", {{"app", "web"}});
    c_.Pod("a", "db", "10.0.1.2", {{"app", "db"}});
    c_.Pod("b", "client", "10.0.2.1", {{"app", "client"}});
  }
  PolicyTables Tables() { return {&ipcache_, &policy_, &state_}; }
  Compiled Compiled_() { return Compile(c_.Snapshot(), {"node-1", {}}); }
  const skiff_ipcache_val* Ipc(const std::string& ip) {
    skiff_ipcache_key k{32, Ip(ip).V4()};
    auto it = ipcache_.entries().find(k);
    return it == ipcache_.entries().end() ? nullptr : &it->second;
  }

  Cluster c_;
  FakeKvTable<skiff_ipcache_key, skiff_ipcache_val> ipcache_{"skiff_ipcache4_v1", 1000};
  FakeKvTable<skiff_policy_key, skiff_policy_val> policy_{"skiff_policy4_v1", 1000};
  FakeKvTable<__u32, skiff_pol_state> state_{"skiff_pol_state_v1", 1};
};

TEST(PolicyKey, Encoding) {
  skiff_policy_key any = MakePolicyKey(3, 0, SKIFF_POLICY_INGRESS, 0, {});
  EXPECT_EQ(any.prefixlen, uint32_t{SKIFF_POLICY_PREFIX_ANY_PROTO});
  EXPECT_EQ(any.proto, 0);
  EXPECT_EQ(any.dport, 0);
  skiff_policy_key one = MakePolicyKey(3, 300, SKIFF_POLICY_EGRESS, 6, {8080, 16});
  EXPECT_EQ(one.prefixlen, uint32_t{SKIFF_POLICY_PREFIX_FULL});
  EXPECT_EQ(ntohs(one.dport), 8080);
  EXPECT_EQ(one.identity, 300u);
  skiff_policy_key range = MakePolicyKey(3, 300, SKIFF_POLICY_EGRESS, 17, {8000, 12});
  EXPECT_EQ(range.prefixlen, uint32_t{SKIFF_POLICY_PREFIX_ANY_PORT + 12});
  EXPECT_EQ(ntohs(range.dport), 8000 & 0xfff0);
  skiff_policy_key all_udp = MakePolicyKey(3, 300, SKIFF_POLICY_EGRESS, 17, {0, 0});
  EXPECT_EQ(all_udp.prefixlen, uint32_t{SKIFF_POLICY_PREFIX_ANY_PORT});
}

TEST_F(ReconcilerTest, NoPolicyWritesIpcacheOnlyAndNoDenyUnknown) {
  PolicyReconciler rec(Tables());
  ASSERT_TRUE(rec.Restore().ok());
  auto res = rec.Apply(Compiled_(), true);
  ASSERT_TRUE(res.ok()) << res.errors[0];
  EXPECT_EQ(policy_.entries().size(), 0u);
  ASSERT_NE(Ipc("10.0.1.1"), nullptr);
  EXPECT_NE(Ipc("10.0.1.1")->endpoint_id, 0u);
  EXPECT_EQ(Ipc("10.0.1.1")->flags, 0);
  EXPECT_TRUE(state_.entries().empty() || state_.entries().begin()->second.flags == 0);
}

TEST_F(ReconcilerTest, AllowEntriesBeforeIsolationAndDenyUnknownFirst) {
  PolicyReconciler rec(Tables());
  ASSERT_TRUE(rec.Restore().ok());
  ASSERT_TRUE(rec.Apply(Compiled_(), true).ok());
  ipcache_.ClearLog();
  policy_.ClearLog();
  c_.Policy("a", "db", Sel({{"app", "db"}}), {Rule({NsPeer(Sel({{"team", "b"}}))}, {Port(5432)})});
  auto res = rec.Apply(Compiled_(), true);
  ASSERT_TRUE(res.ok()) << res.errors[0];
  ASSERT_EQ(state_.entries().size(), 1u);
  EXPECT_EQ(state_.entries().begin()->second.flags, uint32_t{SKIFF_POL_STATE_F_DENY_UNKNOWN});
  // One entry: {db, identity of b/client, ingress, TCP, 5432/16}.
  ASSERT_EQ(policy_.entries().size(), 1u);
  const auto& key = policy_.entries().begin()->first;
  EXPECT_EQ(key.endpoint_id, Ipc("10.0.1.2")->endpoint_id);
  EXPECT_EQ(key.identity, Ipc("10.0.2.1")->identity);
  EXPECT_EQ(key.direction, SKIFF_POLICY_INGRESS);
  EXPECT_EQ(ntohs(key.dport), 5432);
  EXPECT_EQ(rec.RuleName(policy_.entries().begin()->second.rule_id), "a/db ingress[0]");
  EXPECT_EQ(Ipc("10.0.1.2")->flags, SKIFF_EP_F_INGRESS_ISOLATED);
  EXPECT_EQ(Ipc("10.0.1.1")->flags, 0);
  // The isolation flag was written only after the allow entry (the policy table was written
  // in this Apply before any ipcache write; both logs are in Apply order per table, and the
  // reconciler finishes every policy write before the first ipcache write).
  EXPECT_EQ(policy_.log().size(), 1u);
  EXPECT_EQ(ipcache_.log().size(), 1u);

  // Unchanged state: no writes at all.
  ipcache_.ClearLog();
  policy_.ClearLog();
  res = rec.Apply(Compiled_(), true);
  EXPECT_EQ(policy_.writes() + ipcache_.writes(), 0);

  // Removing the policy clears the flag, deletes the entry and the switch.
  c_.RemovePolicy("a", "db");
  res = rec.Apply(Compiled_(), true);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(policy_.entries().size(), 0u);
  EXPECT_EQ(Ipc("10.0.1.2")->flags, 0);
  EXPECT_EQ(state_.entries().begin()->second.flags, 0u);
}

// Writes from different tables interleave in one Apply; record a global order to check it.
template <typename K, typename V>
class OrderedTable : public FakeKvTable<K, V> {
 public:
  OrderedTable(std::string name, uint32_t max, std::vector<std::string>* log)
      : FakeKvTable<K, V>(name, max), log_(log) {}
  absl::Status Update(const K& k, const V& v) override {
    log_->push_back("update " + this->name());
    return FakeKvTable<K, V>::Update(k, v);
  }
  absl::Status Delete(const K& k) override {
    log_->push_back("delete " + this->name());
    return FakeKvTable<K, V>::Delete(k);
  }

 private:
  std::vector<std::string>* log_;
};

TEST_F(ReconcilerTest, NewPodGetsItsEndpointEntryAfterItsAllowEntries) {
  std::vector<std::string> log;
  OrderedTable<skiff_ipcache_key, skiff_ipcache_val> ipc("ipcache", 100, &log);
  OrderedTable<skiff_policy_key, skiff_policy_val> pol("policy", 100, &log);
  PolicyReconciler rec({&ipc, &pol, &state_});
  ASSERT_TRUE(rec.Restore().ok());
  c_.Policy("a", "web", Sel({{"app", "web"}}), {Rule({PodPeer(Sel({{"app", "db"}}))})});
  ASSERT_TRUE(rec.Apply(Compiled_(), true).ok());
  log.clear();
  c_.Pod("a", "web2", "10.0.1.9", {{"app", "web"}});
  c_.RemovePod("a", "db");
  ASSERT_TRUE(rec.Apply(Compiled_(), true).ok());
  // web2's allow entry and ipcache entry are written; db's identity vanished, so the entries
  // naming it and its ipcache entry go, after every write.
  ASSERT_FALSE(log.empty());
  size_t first_ipcache = std::find(log.begin(), log.end(), "update ipcache") - log.begin();
  size_t first_delete = log.size();
  for (size_t i = 0; i < log.size(); i++)
    if (log[i].rfind("delete", 0) == 0) {
      first_delete = i;
      break;
    }
  for (size_t i = 0; i < log.size(); i++) {
    if (log[i] == "update policy") {
      EXPECT_LT(i, first_ipcache) << "allow entries come first";
    }
  }
  EXPECT_LT(first_ipcache, first_delete) << "deletions come last";
  EXPECT_NE(first_delete, log.size()) << "db's entries are deleted";
}

TEST_F(ReconcilerTest, IdentitiesAndEndpointIdsAreStableAndSurviveRestart) {
  c_.Policy("a", "p", Sel(), {Rule({NsPeer(Sel())})});
  PolicyReconciler rec(Tables());
  ASSERT_TRUE(rec.Restore().ok());
  ASSERT_TRUE(rec.Apply(Compiled_(), true).ok());
  auto before_ipcache = ipcache_.entries();
  auto before_policy = policy_.entries();
  // A new label set appears: existing ids do not move.
  c_.Pod("b", "zzz", "10.0.2.9", {{"app", "aaa"}});
  ASSERT_TRUE(rec.Apply(Compiled_(), true).ok());
  for (const auto& [k, v] : before_ipcache) {
    auto it = ipcache_.entries().find(k);
    ASSERT_NE(it, ipcache_.entries().end());
    EXPECT_EQ(it->second.identity, v.identity);
    EXPECT_EQ(it->second.endpoint_id, v.endpoint_id);
  }
  // A restarted agent (new reconciler, same maps) writes nothing for an unchanged cluster.
  PolicyReconciler again(Tables());
  ASSERT_TRUE(again.Restore().ok());
  ipcache_.ClearLog();
  policy_.ClearLog();
  auto res = again.Apply(Compiled_(), true);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(ipcache_.writes(), 0);
  EXPECT_EQ(policy_.writes(), 0);
}

TEST_F(ReconcilerTest, FullPolicyMapFailsClosedWithANamedError) {
  FakeKvTable<skiff_policy_key, skiff_policy_val> tiny("skiff_policy4_v1", 1);
  PolicyReconciler rec({&ipcache_, &tiny, &state_});
  ASSERT_TRUE(rec.Restore().ok());
  // Two entries for db (two ports), one map slot.
  c_.Policy("a", "db", Sel({{"app", "db"}}), {Rule({}, {Port(1), Port(3)})});
  auto res = rec.Apply(Compiled_(), true);
  EXPECT_FALSE(res.ok());
  EXPECT_EQ(res.map_full_errors, 1);
  EXPECT_EQ(rec.map_full_total(), 1u);
  EXPECT_NE(res.errors[0].find("skiff_policy4_v1"), std::string::npos) << res.errors[0];
  EXPECT_NE(res.errors[0].find("a/db"), std::string::npos) << res.errors[0];
  ASSERT_NE(Ipc("10.0.1.2"), nullptr);
  EXPECT_EQ(Ipc("10.0.1.2")->flags, SKIFF_EP_F_INGRESS_ISOLATED) << "the endpoint stays isolated";
}

TEST_F(ReconcilerTest, NothingDeletedBeforeSync) {
  c_.Policy("a", "p", Sel(), {Rule({NsPeer(Sel())})});
  PolicyReconciler rec(Tables());
  ASSERT_TRUE(rec.Restore().ok());
  ASSERT_TRUE(rec.Apply(Compiled_(), true).ok());
  size_t n = policy_.entries().size(), m = ipcache_.entries().size();
  c_.RemovePolicy("a", "p");
  c_.RemovePod("b", "client");
  PolicyReconciler restarted(Tables());
  ASSERT_TRUE(restarted.Restore().ok());
  ASSERT_TRUE(restarted.Apply(Compiled_(), false).ok());
  EXPECT_EQ(policy_.entries().size(), n);
  EXPECT_EQ(ipcache_.entries().size(), m);
  ASSERT_TRUE(restarted.Apply(Compiled_(), true).ok());
  EXPECT_EQ(policy_.entries().size(), 0u);
  EXPECT_EQ(ipcache_.entries().size(), m - 1);
}

}  // namespace
}  // namespace skiff::policy
