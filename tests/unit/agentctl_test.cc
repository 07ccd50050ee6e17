// agentctl end to end in-process: the real CLI (RunAgentctl) against the real API server over
// a fake core. Golden tests pin the table and JSON formats (a contract, docs/cli.md), and
// exit codes are checked for each failure class.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/api/server.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "tests/unit/agentctl_fixture.h"
#include "tests/unit/api_scene.h"

namespace skiff::cli {
namespace {

using Json = nlohmann::json;

using testing::Result;

class AgentctlTest : public testing::AgentctlFixture<api::testing::FakeCore, api::testing::Scene> {
};

TEST_F(AgentctlTest, ServiceListTableGolden) {
  auto r = Run({"service", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "NAMESPACE   NAME    KIND        FRONTEND            PORT   ACTIVE   TERMINATING   "
            "REV-NAT   ALGORITHM   STATE\n"
            "default     empty   ClusterIP   10.96.0.20:80/TCP   http   0        0             "
            "3         random      programmed\n"
            "default     web     ClusterIP   10.96.0.10:53/UDP   dns    1        0             "
            "1         random      programmed\n"
            "default     web     ClusterIP   10.96.0.10:80/TCP   http   1        1             "
            "2         random      programmed\n");
}

// The algorithm is what slot 0 in the maps says; a Service annotated with another one is
// pending until the maps agree.
TEST_F(AgentctlTest, ServiceAlgorithmComesFromTheMapsAndMismatchIsPending) {
  scene_.desired.frontends.at({api::testing::ModelIp("10.96.0.20"), 80, model::Protocol::kTcp})
      .lb_algorithm = model::LbAlgorithm::kMaglev;
  scene_.Publish(core_);
  auto r = Run({"service", "list", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  Json j = Json::parse(r.out);
  ASSERT_EQ(j["services"][0]["name"], "empty") << r.out;
  EXPECT_EQ(j["services"][0]["frontends"][0]["lb_algorithm"], "random");
  EXPECT_EQ(j["services"][0]["frontends"][0]["state"], "pending");
  EXPECT_EQ(j["services"][1]["frontends"][0]["lb_algorithm"], "random");
  EXPECT_EQ(j["services"][1]["frontends"][0]["state"], "programmed");

  // The maps catch up: slot 0 says maglev.
  skiff_lb4_key k{};
  k.address = api::testing::Ip("10.96.0.20");
  k.dport = htons(80);
  k.proto = IPPROTO_TCP;
  k.scope = SKIFF_SCOPE_EXTERNAL;
  k.slot = 0;
  std::optional<skiff_lb4_service> slot0;
  ASSERT_TRUE(core_.Lb()
                  .services
                  ->ForEach([&](const skiff_lb4_key& key, const skiff_lb4_service& v) {
                    if (std::memcmp(&key, &k, sizeof(k)) == 0) slot0 = v;
                    return true;
                  })
                  .ok());
  ASSERT_TRUE(slot0.has_value());
  slot0->algorithm = SKIFF_LB_ALG_MAGLEV;
  ASSERT_TRUE(core_.Lb().services->Update(k, *slot0).ok());
  auto get = Run({"service", "get", "default/empty"});
  ASSERT_EQ(get.code, 0) << get.err;
  EXPECT_NE(get.out.find("  State:     programmed\n  Rev-NAT:   3\n  Algorithm: maglev\n"),
            std::string::npos)
      << get.out;
}

TEST_F(AgentctlTest, ConntrackListJsonAndFilters) {
  auto r = Run({"ct", "list", "--service", "default/web", "--protocol", "TCP", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  Json j = Json::parse(r.out);
  ASSERT_EQ(j["entries"].size(), 2u) << r.out;
  EXPECT_EQ(j["entries"][0]["service"], "default/web");
  EXPECT_EQ(j["entries"][0]["protocol"], "TCP");
  auto y = Run({"ct", "list", "--port", "53", "-o", "yaml"});
  ASSERT_EQ(y.code, 0) << y.err;
  EXPECT_EQ(y.out.rfind("entries:\n  - kind: ", 0), 0u) << y.out;
  auto none = Run({"ct", "list", "--ip", "192.0.2.1"});
  ASSERT_EQ(none.code, 0) << none.err;
  EXPECT_EQ(none.out, "No conntrack entries match the filter.\n");
}

TEST_F(AgentctlTest, FlushNeedsAFilterOrAll) {
  auto r = Run({"ct", "flush"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("--all"), std::string::npos) << r.err;
  EXPECT_EQ(core_.ct().entries().size(), 4u);
  r = Run({"ct", "flush", "--protocol", "udp"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(core_.ct().entries().size(), 2u);
  r = Run({"ct", "flush", "--all", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out)["deleted"], 2);
  EXPECT_TRUE(core_.ct().entries().empty());
}

TEST_F(AgentctlTest, ExitCodesPerFailureClass) {
  auto nf = Run({"service", "get", "default/nope"});
  EXPECT_EQ(nf.code, kExitNotFound);
  EXPECT_EQ(nf.err, "agentctl: service default/nope not found\n");
  EXPECT_EQ(Run({"map", "dump", "skiff_nope_v1"}).code, kExitNotFound);
  EXPECT_EQ(Run({"ct", "list", "--ip", "300.1.1.1"}).code, kExitUsage);
  EXPECT_EQ(Run({"status", "-o", "xml"}).code, kExitUsage);
  EXPECT_EQ(Run({"frobnicate"}).code, kExitUsage);

  std::string missing = (dir_ / "nope.sock").string();
  auto down = Run({"--socket", missing, "status"}, false);
  EXPECT_EQ(down.code, kExitUnreachable);
  EXPECT_EQ(down.err.rfind("agentctl: cannot reach skiff-agent at " + missing +
                               ": the socket does not exist (is skiff-agent running?",
                           0),
            0u)
      << down.err;
  // A socket file nobody listens on: the agent died.
  server_.reset();
  auto stale = Run({"status"});
  EXPECT_EQ(stale.code, kExitUnreachable);
  EXPECT_TRUE(stale.err.find("nothing is listening") != std::string::npos ||
              stale.err.find("does not exist") != std::string::npos)
      << stale.err;
}

TEST_F(AgentctlTest, StatusMapAndServiceViews) {
  auto st = Run({"status"});
  ASSERT_EQ(st.code, 0) << st.err;
  EXPECT_NE(st.out.find("Node:         node-1\n"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("Uptime:       1h2m\n"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("lxcweb1     7         tc-ingress   from_container"), std::string::npos)
      << st.out;
  auto get = Run({"service", "get", "web"});  // namespace default
  ASSERT_EQ(get.code, 0) << get.err;
  EXPECT_NE(get.out.find("10.244.1.12:8080   terminating   no      default/web-2"),
            std::string::npos)
      << get.out;
  auto dump = Run({"map", "dump", "skiff_lb4_revnat_v2"});
  ASSERT_EQ(dump.code, 0) << dump.err;
  EXPECT_EQ(dump.out.substr(0, dump.out.find('\n')), "ID   ADDRESS      PORT") << dump.out;
  auto dj = Run({"map", "dump", "skiff_lb4_revnat_v2", "-o", "json", "--limit", "1"});
  ASSERT_EQ(dj.code, 0) << dj.err;
  Json j = Json::parse(dj.out);
  EXPECT_EQ(j["map"]["name"], "skiff_lb4_revnat_v2");
  ASSERT_EQ(j["entries"].size(), 1u);
  EXPECT_EQ(j["entries"][0]["value"]["address"], "10.96.0.10");
  auto ver = Run({"version", "-o", "json"});
  ASSERT_EQ(ver.code, 0) << ver.err;
  EXPECT_EQ(Json::parse(ver.out)["server"]["version"], "9.9.9");
}

TEST(AgentctlCompletion, BashScriptCompletesCommands) {
  std::string s = BashCompletion();
  EXPECT_NE(s.find("complete -F _agentctl agentctl"), std::string::npos);
  EXPECT_NE(s.find("status service endpoint ct map bpf version"), std::string::npos);
}

}  // namespace
}  // namespace skiff::cli
