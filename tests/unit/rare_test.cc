// RareList and RareString (agent/model/rare.h): one pointer, null while empty, read and copied
// like the vector and string they replace.
#include "agent/model/rare.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace skiff::model {
namespace {

TEST(RareList, EmptyCostsOnePointerAndCopiesAreDeep) {
  static_assert(sizeof(RareList<int>) == sizeof(void*));
  RareList<int> none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.begin(), none.end());
  EXPECT_EQ(none, RareList<int>{});

  RareList<int> a = {1, 2};
  a.push_back(3);
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(std::vector<int>(a.begin(), a.end()), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(a.front(), 1);
  EXPECT_EQ(a.back(), 3);

  RareList<int> b = a;  // deep: changing the copy leaves the original
  b[0] = 9;
  EXPECT_EQ(a[0], 1);
  EXPECT_FALSE(a == b);
  b = a;
  EXPECT_EQ(a, b);

  b = {};  // an empty list assigned frees the vector
  EXPECT_TRUE(b.empty());
  EXPECT_FALSE(a == b);
  a.clear();
  EXPECT_EQ(a, b);
}

TEST(RareString, ReadsAsTheTextAndEmptyIsNull) {
  static_assert(sizeof(RareString) == sizeof(void*));
  RareString none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.str(), "");
  EXPECT_EQ(none, "");

  RareString name = std::string("db.example.com");
  EXPECT_FALSE(name.empty());
  EXPECT_EQ(name.size(), 14u);
  EXPECT_EQ(name, "db.example.com");
  const std::string& text = name;
  EXPECT_EQ(text, "db.example.com");

  RareString copy = name;  // deep
  copy = "other";
  EXPECT_EQ(name, "db.example.com");
  EXPECT_FALSE(copy == name);

  copy = "";  // the empty text is the null pointer again
  EXPECT_TRUE(copy.empty());
  EXPECT_EQ(copy, none);
}

}  // namespace
}  // namespace skiff::model
