// The object store (keys, generations, sync state, snapshots) and the small value types
// every source relies on (IpAddr, Cidr, LabelSelector).
#include "agent/model/object_store.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <poll.h>

#include <thread>

namespace skiff::model {
namespace {

Service Svc(const std::string& ns, const std::string& name, uint16_t port = 80) {
  Service s;
  s.metadata.namespace_ = ns;
  s.metadata.name = name;
  s.spec.ports.push_back(ServicePort{"", Protocol::kTcp, port, IntOrString{int32_t{port}}, 0});
  return s;
}

TEST(ObjectStore, UpsertDeleteAndKeys) {
  ObjectStore store;
  EXPECT_TRUE(store.Upsert(Svc("a", "web")));
  EXPECT_TRUE(store.Upsert(Svc("b", "web")));
  Namespace ns;
  ns.metadata.name = "a";
  EXPECT_TRUE(store.Upsert(ns));

  const ObjectKey web_a{ObjectKind::kService, {"a", "web"}};
  EXPECT_EQ(web_a.ToString(), "Service a/web");
  EXPECT_EQ(KeyOf(Object(ns)).ToString(), "Namespace a");
  ASSERT_TRUE(store.Get(web_a).has_value());
  EXPECT_FALSE(store.Get(ObjectKey{ObjectKind::kEndpointSlice, {"a", "web"}}).has_value());

  ObjectSnapshot snap = store.Snapshot();
  EXPECT_EQ(snap.size(), 3u);
  EXPECT_NE(snap.FindService({"b", "web"}), nullptr);
  EXPECT_TRUE(snap.Contains(ObjectKey{ObjectKind::kNamespace, {"", "a"}}));

  EXPECT_TRUE(store.Delete(web_a));
  EXPECT_FALSE(store.Delete(web_a));
  EXPECT_EQ(store.Snapshot().size(), 2u);
  EXPECT_EQ(snap.size(), 3u);  // a snapshot does not see later changes
}

TEST(ObjectStore, IdenticalUpsertDoesNotBumpGeneration) {
  ObjectStore store;
  store.Upsert(Svc("a", "web"));
  const uint64_t gen = store.generation();
  EXPECT_FALSE(store.Upsert(Svc("a", "web")));
  EXPECT_EQ(store.generation(), gen);
  EXPECT_TRUE(store.Upsert(Svc("a", "web", 81)));
  EXPECT_GT(store.generation(), gen);
  EXPECT_EQ(store.Snapshot().FindService({"a", "web"})->spec.ports[0].port, 81);
}

TEST(ObjectStore, SyncedOnlyWhenEverySourceCompletedItsFirstRead) {
  ObjectStore store;
  EXPECT_FALSE(store.AllSynced());  // nothing registered: nothing known yet
  store.AddSource("manifests");
  store.AddSource("kubernetes");
  store.MarkSynced("manifests");
  EXPECT_TRUE(store.IsSynced("manifests"));
  EXPECT_FALSE(store.AllSynced());
  EXPECT_FALSE(store.Snapshot().synced);
  store.MarkSynced("kubernetes");
  EXPECT_TRUE(store.AllSynced());
  EXPECT_TRUE(store.Snapshot().synced);
  store.AddSource("kubernetes");  // a relisting source is unsynced again
  EXPECT_FALSE(store.AllSynced());
}

TEST(ObjectStore, WaitForChangeWakesOnUpsertAndTimesOut) {
  ObjectStore store;
  const uint64_t gen = store.generation();
  EXPECT_EQ(store.WaitForChange(gen, std::chrono::milliseconds(10)), gen);
  std::thread writer([&] { store.Upsert(Svc("a", "web")); });
  EXPECT_GT(store.WaitForChange(gen, std::chrono::seconds(5)), gen);
  writer.join();
}

TEST(IpAddr, ParseAndFormat) {
  auto v4 = IpAddr::Parse("10.96.0.10");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->family, 4);
  EXPECT_EQ(v4->ToString(), "10.96.0.10");
  EXPECT_EQ(v4->V4(), htonl(0x0a60000a));
  auto v6 = IpAddr::Parse("fd00::1");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family, 6);
  EXPECT_EQ(v6->ToString(), "fd00::1");
  for (const char* bad : {"", "10.96.0", "10.96.0.300", "10.96.0.10 ", "None", "1.2.3.4/32"}) {
    EXPECT_FALSE(IpAddr::Parse(bad)) << bad;
  }
}

TEST(Cidr, ParseCanonicalizesAndContains) {
  auto c = Cidr::Parse("10.244.1.7/24");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->ToString(), "10.244.1.0/24");
  EXPECT_TRUE(c->Contains(*IpAddr::Parse("10.244.1.200")));
  EXPECT_FALSE(c->Contains(*IpAddr::Parse("10.244.2.1")));
  EXPECT_FALSE(c->Contains(*IpAddr::Parse("fd00::1")));
  EXPECT_TRUE(Cidr::Parse("0.0.0.0/0")->Contains(*IpAddr::Parse("8.8.8.8")));
  EXPECT_EQ(Cidr::Parse("fd00::1/64")->ToString(), "fd00::/64");
  for (const char* bad : {"10.0.0.0", "10.0.0.0/33", "10.0.0.0/", "x/8", "10.0.0.0/8x"}) {
    EXPECT_FALSE(Cidr::Parse(bad)) << bad;
  }
}

TEST(LabelSelector, MatchLabelsAndExpressions) {
  LabelSelector sel;
  EXPECT_TRUE(sel.Matches({}));  // empty selects everything
  sel.match_labels = {{"app", "web"}};
  sel.match_expressions = {
      {"tier", SelectorOperator::kIn, {"front", "edge"}},
      {"env", SelectorOperator::kNotIn, {"dev"}},
      {"owner", SelectorOperator::kExists, {}},
      {"legacy", SelectorOperator::kDoesNotExist, {}},
  };
  EXPECT_TRUE(sel.Matches({{"app", "web"}, {"tier", "edge"}, {"owner", "x"}}));
  EXPECT_FALSE(sel.Matches({{"app", "db"}, {"tier", "edge"}, {"owner", "x"}}));
  EXPECT_FALSE(sel.Matches({{"app", "web"}, {"tier", "back"}, {"owner", "x"}}));
  EXPECT_FALSE(sel.Matches({{"app", "web"}, {"tier", "edge"}, {"owner", "x"}, {"env", "dev"}}));
  EXPECT_FALSE(sel.Matches({{"app", "web"}, {"tier", "edge"}}));
  EXPECT_FALSE(sel.Matches({{"app", "web"}, {"tier", "edge"}, {"owner", "x"}, {"legacy", "true"}}));
}

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

TEST(ObjectStore, ChangeFdSignalsABurstOnceUntilAcked) {
  ObjectStore store;
  ASSERT_GE(store.change_fd(), 0);
  EXPECT_FALSE(Readable(store.change_fd()));
  Service a;
  a.metadata.namespace_ = "d";
  a.metadata.name = "a";
  store.Upsert(a);
  Service b = a;
  b.metadata.name = "b";
  store.Upsert(b);
  EXPECT_TRUE(Readable(store.change_fd()));
  store.AckChange();
  EXPECT_FALSE(Readable(store.change_fd()));
  store.Upsert(b);  // identical: no change, no signal
  EXPECT_FALSE(Readable(store.change_fd()));
  store.Delete(ObjectKey{ObjectKind::kService, {"d", "a"}});
  EXPECT_TRUE(Readable(store.change_fd()));
}

TEST(ObjectStore, CommitIsOneGenerationAndJournalsEveryChangedKey) {
  ObjectStore store;
  store.Upsert(Svc("a", "old"));
  const uint64_t before = store.generation();
  auto [upserted, deleted] = store.Commit({Svc("a", "x"), Svc("a", "y"), Svc("a", "old")},
                                          {ObjectKey{ObjectKind::kService, {"a", "old"}},
                                           ObjectKey{ObjectKind::kService, {"a", "none"}}});
  EXPECT_EQ(upserted, 2u);  // "old" was identical
  EXPECT_EQ(deleted, 1u);
  EXPECT_EQ(store.generation(), before + 1);
  std::optional<std::vector<ObjectKey>> changed;
  store.Snapshot(before, &changed);
  ASSERT_TRUE(changed.has_value());
  EXPECT_EQ(changed->size(), 3u);
  EXPECT_EQ(store.Commit({Svc("a", "x")}, {}), (std::pair<size_t, size_t>{0, 0}));
  EXPECT_EQ(store.generation(), before + 1);
}

TEST(ObjectStore, CommitOfSharedObjectsKeepsTheCallersCopyUntilTheValueChanges) {
  ObjectStore store;
  SharedObject web = Share(Svc("a", "web"));
  EXPECT_EQ(store.Commit(std::vector<SharedObject>{web}, {}), (std::pair<size_t, size_t>{1, 0}));
  const auto* held = std::get<std::shared_ptr<const Service>>(web).get();
  EXPECT_EQ(store.Snapshot().FindService({"a", "web"}), held);  // no second copy
  // An equal value from elsewhere changes nothing: the store keeps the copy it has.
  EXPECT_EQ(store.Commit(std::vector<SharedObject>{Share(Svc("a", "web"))}, {}),
            (std::pair<size_t, size_t>{0, 0}));
  EXPECT_EQ(store.Snapshot().FindService({"a", "web"}), held);
  SharedObject moved = Share(Svc("a", "web", 8080));
  EXPECT_EQ(store.Commit(std::vector<SharedObject>{moved}, {}), (std::pair<size_t, size_t>{1, 0}));
  EXPECT_EQ(store.Snapshot().FindService({"a", "web"}),
            std::get<std::shared_ptr<const Service>>(moved).get());
  EXPECT_EQ(KeyOf(moved), (ObjectKey{ObjectKind::kService, {"a", "web"}}));
}

}  // namespace
}  // namespace skiff::model
