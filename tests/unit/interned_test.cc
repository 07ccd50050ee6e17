// InternedString (agent/model/interned.h): one copy per distinct text, shared by every holder.
#include "agent/model/interned.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace skiff::model {
namespace {

TEST(InternedString, EqualTextsShareOneCopy) {
  const size_t before = InternedString::PoolSize();
  InternedString a = std::string("interned-test-node-with-a-long-cloud-name-1");
  InternedString b = absl::StrCat("interned-test-node-with-a-long-cloud-name-", 1);
  EXPECT_EQ(&a.str(), &b.str());
  EXPECT_EQ(a, b);
  EXPECT_EQ(InternedString::PoolSize(), before + 1);
  InternedString c = "interned-test-node-with-a-long-cloud-name-2";
  EXPECT_NE(a, c);
  EXPECT_LT(a, c);
  EXPECT_EQ(InternedString::PoolSize(), before + 2);
}

TEST(InternedString, ComparesWithPlainStringsAndDefaultsToEmpty) {
  InternedString none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none, "");
  EXPECT_EQ(none, InternedString(""));
  InternedString pod = "Pod";
  EXPECT_EQ(pod, "Pod");
  EXPECT_EQ(pod, std::string("Pod"));
  EXPECT_FALSE(pod == "Service");
  const std::string& text = pod;
  EXPECT_EQ(text, "Pod");
  EXPECT_EQ(sizeof(InternedString), sizeof(void*));
}

TEST(InternedString, ThreadsInterningTheSameTextsGetTheSameCopies) {
  std::vector<std::vector<const std::string*>> seen(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &seen] {
      for (int i = 0; i < 1000; ++i) {
        seen[t].push_back(&InternedString(absl::StrCat("interned-threads-", i % 50)).str());
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 1; t < 4; ++t) EXPECT_EQ(seen[t], seen[0]);
}

TEST(InternedId, FourBytesThatReadAsTheText) {
  EXPECT_EQ(sizeof(InternedId), 4u);
  InternedId none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none, "");
  EXPECT_EQ(none, InternedId(""));
  const size_t before = InternedId::Count();
  InternedId a = std::string("interned-id-node-a");
  InternedId b = absl::StrCat("interned-id-node-", "a");
  EXPECT_EQ(a, b);
  EXPECT_EQ(&a.str(), &b.str());
  EXPECT_EQ(a, "interned-id-node-a");
  EXPECT_EQ(a, absl::string_view("interned-id-node-a"));
  EXPECT_EQ(InternedId::Count(), before + 1);
  InternedId c = "interned-id-node-b";
  EXPECT_NE(a, c);
  EXPECT_LT(a, c);
  EXPECT_EQ(c.str(), "interned-id-node-b");
  EXPECT_EQ(&c.str(), &InternedString("interned-id-node-b").str());  // the pool's one copy
}

TEST(InternedId, ManyTextsAndThreadsGetOneIdEach) {
  // More texts than one chunk of the id table holds (4096), from several threads at once.
  std::vector<std::vector<InternedId>> seen(3);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([t, &seen] {
      for (int i = 0; i < 5000; ++i) seen[t].push_back(absl::StrCat("interned-id-many-", i));
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 1; t < 3; ++t) EXPECT_EQ(seen[t], seen[0]);
  for (int i = 0; i < 5000; ++i) {
    ASSERT_EQ(seen[0][i].str(), absl::StrCat("interned-id-many-", i));
  }
}

}  // namespace
}  // namespace skiff::model
