// IdPool (agent/reconcile/id_pool.h): next-fit ids kept as runs of consecutive ids.
#include "agent/reconcile/id_pool.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace skiff::reconcile {
namespace {

TEST(IdPool, HandsOutIdsInOrderAndReusesFreedOnesOnlyAfterTheRest) {
  IdPool pool(1, 5);
  for (uint32_t want = 1; want <= 5; want++) EXPECT_EQ(pool.Allocate(), want);
  EXPECT_EQ(pool.Allocate(), std::nullopt);  // full
  pool.Release(2);
  pool.Release(4);
  EXPECT_EQ(pool.size(), 3u);
  EXPECT_FALSE(pool.InUse(2));
  EXPECT_TRUE(pool.InUse(3));
  EXPECT_EQ(pool.Allocate(), 2u);  // wrapped past 5 to the first free one
  EXPECT_EQ(pool.Allocate(), 4u);
  EXPECT_EQ(pool.Allocate(), std::nullopt);
}

TEST(IdPool, NextFitContinuesAfterTheLastIdEvenWhenLowerOnesAreFree) {
  IdPool pool(10, 20);
  EXPECT_EQ(pool.Allocate(), 10u);
  EXPECT_EQ(pool.Allocate(), 11u);
  pool.Release(10);
  EXPECT_EQ(pool.Allocate(), 12u);  // not 10: it was just freed
}

TEST(IdPool, ReservedIdsAreSkippedAndOutOfRangeOnesRefused) {
  IdPool pool(1, 10);
  EXPECT_TRUE(pool.Reserve(1));
  EXPECT_TRUE(pool.Reserve(3));
  EXPECT_TRUE(pool.Reserve(2));  // joins 1 and 3 into one run
  EXPECT_TRUE(pool.Reserve(2));  // twice: still one id
  EXPECT_FALSE(pool.Reserve(0));
  EXPECT_FALSE(pool.Reserve(11));
  EXPECT_EQ(pool.size(), 3u);
  EXPECT_EQ(pool.Allocate(), 4u);
  pool.Release(2);  // splits the run 1..4
  EXPECT_TRUE(pool.InUse(1));
  EXPECT_FALSE(pool.InUse(2));
  EXPECT_TRUE(pool.InUse(3));
  EXPECT_TRUE(pool.InUse(4));
  pool.Release(2);  // not in use: nothing changes
  EXPECT_EQ(pool.size(), 3u);
}

TEST(IdPool, TheLastIdOfTheRangeWorks) {
  IdPool pool(0xfffffffd, 0xfffffffe);
  EXPECT_EQ(pool.Allocate(), 0xfffffffdu);
  EXPECT_EQ(pool.Allocate(), 0xfffffffeu);
  EXPECT_EQ(pool.Allocate(), std::nullopt);
  pool.Release(0xfffffffd);
  EXPECT_EQ(pool.Allocate(), 0xfffffffdu);
}

// Against a plain set of used ids with the same next-fit rule.
TEST(IdPool, MatchesASetOfIdsOnRandomOperations) {
  constexpr uint32_t kMin = 5, kMax = 300;
  IdPool pool(kMin, kMax);
  std::set<uint32_t> used;
  uint32_t hint = kMin;
  std::mt19937 rng(7);
  for (int step = 0; step < 20000; step++) {
    const uint32_t op = rng() % 3, id = kMin + rng() % (kMax - kMin + 1);
    if (op == 0) {
      std::optional<uint32_t> want;
      for (uint32_t i = 0, c = hint; i <= kMax - kMin; i++, c = c == kMax ? kMin : c + 1) {
        if (!used.count(c)) {
          want = c;
          break;
        }
      }
      if (want) {
        used.insert(*want);
        hint = *want == kMax ? kMin : *want + 1;
      }
      ASSERT_EQ(pool.Allocate(), want) << "step " << step;
    } else if (op == 1) {
      used.erase(id);
      pool.Release(id);
    } else {
      used.insert(id);
      pool.Reserve(id);
    }
    ASSERT_EQ(pool.size(), used.size()) << "step " << step;
    ASSERT_EQ(pool.InUse(id), used.count(id) > 0) << "step " << step;
  }
}

}  // namespace
}  // namespace skiff::reconcile
