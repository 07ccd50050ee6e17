// skiff-agent's flag parsing (agent/config.cc): defaults, and bad values rejected with an error
// that names the flag.
#include "agent/config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace skiff {
namespace {

absl::StatusOr<AgentConfig> Parse(std::vector<std::string> extra) {
  std::vector<std::string> args = {"skiff-agent", "--manifests", "/nonexistent-manifests"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseFlags(static_cast<int>(argv.size()), argv.data());
}

TEST(AgentConfigCtGcInterval, DefaultsToThirtySecondsAndZeroDisables) {
  auto c = Parse({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ct_gc_interval, 30u);
  c = Parse({"--ct-gc-interval", "0"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ct_gc_interval, 0u);
  c = Parse({"--ct-gc-interval=5"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ct_gc_interval, 5u);
  c = Parse({"--ct-gc-interval", "86400"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ct_gc_interval, 86400u);
}

TEST(AgentConfigCtGcInterval, RejectsBadValuesNamingTheFlag) {
  for (const char* bad : {"-1", "abc", "1.5", "86401", "99999999999", ""}) {
    auto c = Parse({"--ct-gc-interval", bad});
    ASSERT_FALSE(c.ok()) << "accepted --ct-gc-interval '" << bad << "'";
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(c.status().message().find("--ct-gc-interval"), std::string::npos)
        << bad << ": " << c.status().message();
  }
}

}  // namespace
}  // namespace skiff
