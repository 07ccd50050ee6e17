// examples/ is what the demo and the README show: it must load without a single error and
// yield the services the demo talks to.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/model/compute.h"
#include "agent/sources/manifest_directory.h"

namespace skiff::sources {
namespace {

using ::testing::IsEmpty;

model::FrontendKey Key(const char* vip, uint16_t port, model::Protocol proto) {
  return model::FrontendKey{*model::IpAddr::Parse(vip), port, proto};
}

TEST(Examples, LoadCleanlyAndGiveTheDemoServices) {
  model::ObjectStore store;
  ManifestDirectory dir(SKIFF_EXAMPLES_DIR, &store);
  ASSERT_TRUE(dir.Rescan().ok());
  for (const ManifestError& e : dir.errors()) ADD_FAILURE() << e.ToString();
  EXPECT_EQ(dir.stats().files_failed, 0u);

  std::vector<std::string> warnings;
  model::DesiredState s = model::ComputeDesiredState(store, "demo-node", &warnings);
  EXPECT_THAT(warnings, IsEmpty());
  auto backends = [&](const model::FrontendKey& k) {
    std::vector<std::string> out;
    auto it = s.frontends.find(k);
    if (it == s.frontends.end()) return std::vector<std::string>{"<no frontend>"};
    for (const model::Backend& b : it->second.backends) {
      EXPECT_TRUE(b.node_local);
      EXPECT_EQ(b.state, model::BackendState::kActive);
      out.push_back(b.ip.ToString() + ":" + std::to_string(b.port));
    }
    return out;
  };
  using ::testing::ElementsAre;
  EXPECT_THAT(backends(Key("10.96.0.10", 80, model::Protocol::kTcp)),
              ElementsAre("10.244.1.11:8080", "10.244.1.12:8080", "10.244.1.13:8080"));
  EXPECT_THAT(backends(Key("10.96.0.10", 53, model::Protocol::kUdp)),
              ElementsAre("10.244.1.11:5353", "10.244.1.12:5353", "10.244.1.13:5353"));
  EXPECT_THAT(backends(Key("10.96.0.11", 80, model::Protocol::kTcp)),
              ElementsAre("10.244.1.11:8080", "10.244.1.12:8080", "10.244.1.13:8080"));
  EXPECT_TRUE(s.frontends.at(Key("10.96.0.11", 80, model::Protocol::kTcp)).affinity_client_ip);
  EXPECT_EQ(s.frontends.at(Key("10.96.0.11", 80, model::Protocol::kTcp)).affinity_timeout_s, 600u);
  EXPECT_THAT(backends(Key("10.96.0.99", 80, model::Protocol::kTcp)), IsEmpty());
  EXPECT_EQ(s.frontends.size(), 4u);
  EXPECT_EQ(store.Snapshot().pods.size(), 4u);
}

}  // namespace
}  // namespace skiff::sources
