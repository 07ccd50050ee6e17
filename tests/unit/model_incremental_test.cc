// The incremental desired state (DesiredStateCache over ObjectStore's change journal): it
// recomputes only the Services a change touches, reports exactly the frontends that changed,
// and always equals a full ComputeDesiredState — checked on random change sequences.
#include <random>

#include "absl/strings/str_cat.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/model/compute.h"
#include "agent/model/desired_cache.h"

namespace skiff::model {
namespace {

IpAddr Ip(const std::string& s) { return IpAddr::Parse(s).value_or(IpAddr{}); }

Service Svc(const std::string& ns, const std::string& name, const std::string& vip,
            std::vector<uint16_t> ports, ServiceType type = ServiceType::kClusterIp) {
  Service svc;
  svc.metadata.namespace_ = ns;
  svc.metadata.name = name;
  svc.spec.type = type;
  svc.spec.cluster_ips.push_back(Ip(vip));
  for (size_t i = 0; i < ports.size(); ++i) {
    svc.spec.ports.push_back(ServicePort{absl::StrCat("p", i), Protocol::kTcp, ports[i],
                                         IntOrString{int32_t{ports[i]}}, 0});
  }
  return svc;
}

EndpointSlice Slice(const std::string& ns, const std::string& name, const std::string& service,
                    size_t nports, std::vector<std::pair<std::string, bool>> eps) {
  EndpointSlice slice;
  slice.metadata.namespace_ = ns;
  slice.metadata.name = name;
  slice.metadata.labels[kServiceNameLabel] = service;
  for (size_t i = 0; i < nports; ++i) {
    slice.ports.push_back(
        EndpointPort{absl::StrCat("p", i), Protocol::kTcp, static_cast<uint16_t>(8080 + i)});
  }
  for (const auto& [ip, ready] : eps) {
    Endpoint ep;
    ep.addresses = {ip};
    ep.conditions.ready = ready;
    ep.conditions.serving = true;
    ep.conditions.terminating = !ready;
    ep.node_name = "node-a";
    slice.endpoints.push_back(std::move(ep));
  }
  return slice;
}

// Drives a store and a cache the way the reconcile loop does.
class IncrementalTest : public ::testing::Test {
 protected:
  DesiredStateCache::Update Step() {
    std::optional<std::vector<ObjectKey>> changed;
    ObjectSnapshot snap = store_.Snapshot(seen_, &changed);
    seen_ = snap.generation;
    DesiredStateCache::Update u = cache_.Apply(snap, changed, "node-a", {}, nullptr);
    full_before_ = std::move(full_now_);
    full_now_ = ComputeDesiredState(snap, "node-a", {}, nullptr);
    EXPECT_EQ(cache_.state(), full_now_);
    return u;
  }
  // The frontends whose value differs between the last two full computations.
  std::set<FrontendKey> FullDiff() const {
    std::set<FrontendKey> diff;
    for (const auto& [k, fe] : full_now_.frontends) {
      auto it = full_before_.frontends.find(k);
      if (it == full_before_.frontends.end() || !(it->second == fe)) diff.insert(k);
    }
    for (const auto& [k, fe] : full_before_.frontends) {
      if (!full_now_.frontends.count(k)) diff.insert(k);
    }
    return diff;
  }

  ObjectStore store_;
  DesiredStateCache cache_;
  uint64_t seen_ = ~0ull;
  DesiredState full_before_, full_now_;
};

TEST_F(IncrementalTest, FirstRunIsFullThenOneServiceChangeRecomputesOnlyIt) {
  store_.AddSource("t");
  for (int i = 0; i < 20; ++i) {
    const std::string name = absl::StrCat("s", i);
    store_.Upsert(Svc("a", name, absl::StrCat("10.96.0.", i + 1), {80}));
    store_.Upsert(Slice("a", name + "-x", name, 1, {{absl::StrCat("10.0.0.", i + 1), true}}));
  }
  store_.MarkSynced("t");
  EXPECT_TRUE(Step().full);
  EXPECT_EQ(cache_.state().frontends.size(), 20u);

  store_.Upsert(Slice("a", "s7-x", "s7", 1, {{"10.0.0.8", true}, {"10.0.1.8", true}}));
  DesiredStateCache::Update u = Step();
  EXPECT_FALSE(u.full);
  EXPECT_EQ(u.services_recomputed, 1u);
  EXPECT_THAT(u.changed, ::testing::ElementsAre(FrontendKey{Ip("10.96.0.8"), 80, Protocol::kTcp}));
  EXPECT_EQ(cache_.state().frontends.at(FrontendKey{Ip("10.96.0.8"), 80}).backends.size(), 2u);

  // Nothing changed: nothing recomputed.
  u = Step();
  EXPECT_FALSE(u.full);
  EXPECT_EQ(u.services_recomputed, 0u);
  EXPECT_TRUE(u.changed.empty());
}

TEST_F(IncrementalTest, DeletionsAndSliceMovingBetweenServices) {
  store_.AddSource("t");
  store_.Upsert(Svc("a", "web", "10.96.0.1", {80, 443}));
  store_.Upsert(Svc("a", "api", "10.96.0.2", {80}));
  store_.Upsert(Slice("a", "sl", "web", 2, {{"10.0.0.1", true}}));
  store_.MarkSynced("t");
  Step();

  // The slice now belongs to api: both services recomputed, both frontends of web change.
  store_.Upsert(Slice("a", "sl", "api", 1, {{"10.0.0.1", true}}));
  DesiredStateCache::Update u = Step();
  EXPECT_EQ(u.services_recomputed, 2u);
  EXPECT_EQ(u.changed, FullDiff());
  EXPECT_EQ(u.changed.size(), 3u);

  store_.Delete(ObjectKey{ObjectKind::kService, {"a", "web"}});
  u = Step();
  EXPECT_EQ(u.changed.size(), 2u);
  EXPECT_EQ(u.changed, FullDiff());
  EXPECT_EQ(cache_.state().frontends.size(), 1u);

  store_.Delete(ObjectKey{ObjectKind::kEndpointSlice, {"a", "sl"}});
  u = Step();
  EXPECT_EQ(u.changed, FullDiff());
  EXPECT_TRUE(cache_.state().frontends.at(FrontendKey{Ip("10.96.0.2"), 80}).backends.empty());
}

TEST_F(IncrementalTest, ClashKeepsTheFirstServiceAndHandsOverOnDeletion) {
  store_.AddSource("t");
  store_.Upsert(Svc("b", "late", "10.96.0.9", {80}));
  store_.MarkSynced("t");
  Step();
  store_.Upsert(Svc("a", "early", "10.96.0.9", {80}));
  DesiredStateCache::Update u = Step();
  EXPECT_EQ(cache_.state().frontends.begin()->second.service, "a/early");
  EXPECT_EQ(u.changed.size(), 1u);
  store_.Delete(ObjectKey{ObjectKind::kService, {"a", "early"}});
  Step();
  EXPECT_EQ(cache_.state().frontends.begin()->second.service, "b/late");
}

TEST_F(IncrementalTest, ClashNamesEveryIgnoredServiceAndTheWinner) {
  store_.AddSource("t");
  store_.Upsert(Svc("c", "later", "10.96.0.9", {80}));
  store_.Upsert(Svc("a", "early", "10.96.0.9", {80}));
  store_.Upsert(Svc("b", "late", "10.96.0.9", {80}));
  store_.MarkSynced("t");
  std::vector<std::string> warnings;
  DesiredStateCache cache;
  cache.Apply(store_.Snapshot(), std::nullopt, "node-a", {}, &warnings);
  EXPECT_EQ(cache.state().frontends.begin()->second.service, "a/early");
  EXPECT_EQ(warnings, (std::vector<std::string>{
                          "Service b/late: 10.96.0.9:80/TCP is already used by Service a/early; "
                          "ignored",
                          "Service c/later: 10.96.0.9:80/TCP is already used by Service a/early; "
                          "ignored"}));
}

TEST_F(IncrementalTest, SyncStateChangeOrTooOldGenerationRecomputesEverything) {
  store_.AddSource("t");
  store_.Upsert(Svc("a", "web", "10.96.0.1", {80}));
  EXPECT_TRUE(Step().full);
  store_.MarkSynced("t");  // the journal cannot say what changed across a sync-state change
  EXPECT_TRUE(Step().full);
  std::optional<std::vector<ObjectKey>> changed;
  store_.Snapshot(0, &changed);
  EXPECT_FALSE(changed.has_value());
}

// A full recomputation over an existing state (a journal overflow, a node address change) keeps
// the frontends that come out the same, drops the ones no Service claims any more and
// reports itself as full.
TEST_F(IncrementalTest, FullRecomputeOverAnExistingStateEqualsAFullComputation) {
  store_.AddSource("t");
  for (int i = 0; i < 6; ++i) {
    const std::string name = absl::StrCat("s", i);
    store_.Upsert(Svc("a", name, absl::StrCat("10.96.0.", i + 1), {80, 443}));
    store_.Upsert(Slice("a", name + "-x", name, 2, {{absl::StrCat("10.0.0.", i + 1), true}}));
  }
  store_.Upsert(Svc("b", "clash", "10.96.0.3", {80}));
  store_.MarkSynced("t");
  Step();
  store_.Delete(ObjectKey{ObjectKind::kService, {"a", "s1"}});
  store_.Delete(ObjectKey{ObjectKind::kService, {"a", "s2"}});  // b/clash takes 10.96.0.3:80
  store_.Upsert(Slice("a", "s4-x", "s4", 2, {{"10.0.0.5", false}, {"10.0.1.5", true}}));
  store_.Upsert(Svc("a", "s5", "10.96.0.16", {80}));
  std::vector<std::string> warnings;
  DesiredStateCache::Update u =
      cache_.Apply(store_.Snapshot(), std::nullopt, "node-a", {}, &warnings);
  EXPECT_TRUE(u.full);
  EXPECT_EQ(u.services_recomputed, 5u);
  const DesiredState full = ComputeDesiredState(store_.Snapshot(), "node-a", {}, nullptr);
  EXPECT_EQ(cache_.state(), full);
  EXPECT_EQ(cache_.state().frontends.at(FrontendKey{Ip("10.96.0.3"), 80}).service, "b/clash");
  EXPECT_FALSE(cache_.state().frontends.contains(FrontendKey{Ip("10.96.0.2"), 80}));
  EXPECT_TRUE(warnings.empty());
}

// Random upserts and deletes of Services (with clashing VIPs) and slices (moving between
// Services, changing readiness): after every step the cache equals a full computation and
// reports exactly the frontends that differ from the previous full computation.
TEST_F(IncrementalTest, RandomChangeSequencesEqualFullRecompute) {
  std::mt19937 rng(12345);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  store_.AddSource("t");
  store_.MarkSynced("t");
  Step();
  for (int step = 0; step < 400; ++step) {
    const int changes = 1 + pick(4);
    for (int c = 0; c < changes; ++c) {
      const std::string ns = pick(2) ? "a" : "b";
      const std::string svc = absl::StrCat("s", pick(12));
      switch (pick(5)) {
        case 0:
        case 1: {
          std::vector<uint16_t> ports = {80};
          if (pick(2)) ports.push_back(443);
          store_.Upsert(Svc(ns, svc, absl::StrCat("10.96.0.", 1 + pick(8)), ports,
                            pick(6) == 0 ? ServiceType::kExternalName : ServiceType::kClusterIp));
          break;
        }
        case 2:
          store_.Delete(ObjectKey{ObjectKind::kService, {ns, svc}});
          break;
        case 3: {
          std::vector<std::pair<std::string, bool>> eps;
          for (int e = pick(4); e > 0; --e) {
            eps.emplace_back(absl::StrCat("10.1.0.", 1 + pick(10)), pick(3) != 0);
          }
          store_.Upsert(Slice(ns, absl::StrCat("sl", pick(16)), svc, 1 + pick(2), eps));
          break;
        }
        case 4:
          store_.Delete(ObjectKey{ObjectKind::kEndpointSlice, {ns, absl::StrCat("sl", pick(16))}});
          break;
      }
    }
    DesiredStateCache::Update u = Step();
    ASSERT_FALSE(u.full) << "step " << step;
    ASSERT_EQ(u.changed, FullDiff()) << "step " << step;
  }
  EXPECT_FALSE(cache_.state().frontends.empty());
}

}  // namespace
}  // namespace skiff::model
