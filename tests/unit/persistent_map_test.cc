// PersistentMap (agent/model/persistent_map.h) against std::map on random operations, and the
// property the store relies on: a copy never sees the original's later changes.
#include "agent/model/persistent_map.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

namespace skiff::model {
namespace {

using Map = PersistentMap<int, std::string>;

void ExpectSame(const Map& got, const std::map<int, std::string>& want) {
  ASSERT_EQ(got.size(), want.size());
  auto w = want.begin();
  for (const auto& [k, v] : got) {
    ASSERT_NE(w, want.end());
    EXPECT_EQ(k, w->first);
    EXPECT_EQ(v, w->second);
    ++w;
  }
  EXPECT_EQ(w, want.end());
}

TEST(PersistentMap, RandomOperationsMatchStdMapAndCopiesStayFrozen) {
  std::mt19937 rng(7);
  Map m;
  std::map<int, std::string> ref;
  std::vector<std::pair<Map, std::map<int, std::string>>> frozen;
  for (int step = 0; step < 20000; ++step) {
    const int key = static_cast<int>(rng() % 500);
    switch (rng() % 6) {
      case 0:
      case 1:
        m[key] = std::to_string(step);
        ref[key] = std::to_string(step);
        break;
      case 2:
        EXPECT_EQ(m.erase(key), ref.erase(key));
        break;
      case 3: {
        auto [it, inserted] = m.try_emplace(key, "e" + std::to_string(step));
        auto [rit, rinserted] = ref.try_emplace(key, "e" + std::to_string(step));
        EXPECT_EQ(inserted, rinserted);
        EXPECT_EQ(it->second, rit->second);
        break;
      }
      case 4: {
        auto it = m.lower_bound(key);
        auto rit = ref.lower_bound(key);
        if (rit == ref.end()) {
          EXPECT_EQ(it, m.end());
        } else {
          ASSERT_NE(it, m.end());
          EXPECT_EQ(it->first, rit->first);
        }
        EXPECT_EQ(m.count(key), ref.count(key));
        break;
      }
      case 5:
        if (auto it = m.find(key); it != m.end()) {
          auto next = m.erase(it);
          auto rnext = ref.erase(ref.find(key));
          if (rnext == ref.end()) {
            EXPECT_EQ(next, m.end());
          } else {
            ASSERT_NE(next, m.end());
            EXPECT_EQ(next->first, rnext->first);
          }
        }
        break;
    }
    if (step % 997 == 0) frozen.emplace_back(m, ref);
  }
  ExpectSame(m, ref);
  for (const auto& [copy, want] : frozen) ExpectSame(copy, want);
}

TEST(PersistentMap, CopiesShareUntilChangedAndCompareByContent) {
  Map a{{1, "one"}, {2, "two"}, {3, "three"}};
  Map b = a;
  EXPECT_TRUE(a == b);
  b.at(2) = "deux";
  EXPECT_EQ(a.at(2), "two");
  EXPECT_EQ(b.at(2), "deux");
  EXPECT_FALSE(a == b);
  b.insert_or_assign(2, "two");
  EXPECT_TRUE(a == b);
  b.erase(1);
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(b.size(), 2u);
  EXPECT_THROW(b.at(1), std::out_of_range);
  Map empty;
  EXPECT_EQ(empty.begin(), empty.end());
  EXPECT_EQ(empty.find(1), empty.end());
}

TEST(PersistentMap, StaysBalanced) {
  // Sorted inserts are an unbalanced tree's worst case; iteration would overflow the
  // iterator's fixed stack (64 levels) if the tree degenerated.
  Map m;
  for (int i = 0; i < 200000; ++i) m[i] = "";
  EXPECT_LE(m.height(), 26);  // 1.44 · log2(200002) ≈ 25.4
  int n = 0;
  for (const auto& kv : m) EXPECT_EQ(kv.first, n++);
  EXPECT_EQ(n, 200000);
  for (int i = 0; i < 200000; i += 2) m.erase(i);
  EXPECT_EQ(m.size(), 100000u);
  EXPECT_EQ(m.begin()->first, 1);
  EXPECT_LE(m.height(), 25);
}

}  // namespace
}  // namespace skiff::model
