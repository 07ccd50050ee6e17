// `agentctl policy list|get|trace` in-process: the real CLI against the real API server over
// a fake core whose policy maps the real compiler and reconciler filled (policy_api_scene.h).
// Golden tables pin the format (docs/cli.md); exit codes are checked per failure class.
#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/api/server.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "tests/unit/agentctl_fixture.h"
#include "tests/unit/api_scene.h"
#include "tests/unit/policy_api_scene.h"

namespace skiff::cli {
namespace {

using Json = nlohmann::json;

using testing::Result;

class AgentctlPolicyTest
    : public testing::AgentctlFixture<api::testing::PolicyFakeCore, api::testing::PolicyScene> {};

TEST_F(AgentctlPolicyTest, ListTableGolden) {
  auto r = Run({"policy", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "NAMESPACE   NAME     ADDRESSES   ENDPOINT   IDENTITY   INGRESS    EGRESS     POLICIES "
            "IN/OUT   ENTRIES IN/OUT\n"
            "a           db       10.0.1.2    1          256        isolated   open       1/0      "
            "         7/0\n"
            "a           other    10.0.1.3    2          257        open       open       0/0      "
            "         0/0\n"
            "a           web      10.0.1.1    3          258        open       open       0/0      "
            "         0/0\n"
            "b           client   10.0.2.1    4          259        open       isolated   0/1      "
            "         0/3\n");
}

TEST_F(AgentctlPolicyTest, GetTableGolden) {
  auto r = Run({"policy", "get", "a/db"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(
      r.out,
      "Pod:        a/db\n"
      "Addresses:  10.0.1.2\n"
      "Endpoint:   1 (identity 256)\n"
      "Ingress:    isolated by a/db-in\n"
      "Egress:     not isolated (every destination allowed)\n"
      "Allow entries in the BPF policy map: 7\n"
      "DIRECTION   PEER-ID   PEER                                PROTOCOL   PORTS       RULE\n"
      "ingress     258       pods of a {app=web}                 TCP        5432        a/db-in "
      "ingress[0] peer[0]\n"
      "ingress     260       outside addresses in 192.0.2.0/24   TCP        9000-9007   a/db-in "
      "ingress[1] peer[0]\n"
      "ingress     260       outside addresses in 192.0.2.0/24   TCP        9008-9023   a/db-in "
      "ingress[1] peer[0]\n"
      "ingress     260       outside addresses in 192.0.2.0/24   TCP        9024-9087   a/db-in "
      "ingress[1] peer[0]\n"
      "ingress     260       outside addresses in 192.0.2.0/24   TCP        9088-9095   a/db-in "
      "ingress[1] peer[0]\n"
      "ingress     260       outside addresses in 192.0.2.0/24   TCP        9096-9099   a/db-in "
      "ingress[1] peer[0]\n"
      "ingress     260       outside addresses in 192.0.2.0/24   TCP        9100        a/db-in "
      "ingress[1] peer[0]\n");
}

TEST_F(AgentctlPolicyTest, TraceTableGoldenAllowedAndDenied) {
  auto ok = Run({"policy", "trace", "--from", "a/web", "--to", "a/db", "--port", "5432"});
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(
      ok.out,
      "Connection:     a/web -> a/db TCP/5432\n"
      "Source:         a/web 10.0.1.1, identity 258 (pods of a {app=web}), endpoint of this node\n"
      "Destination:    a/db 10.0.1.2, identity 256 (pods of a {app=db}), endpoint of this node\n"
      "Source egress:  not isolated: no policy selects it for egress\n"
      "                datapath: endpoint 3 not isolated\n"
      "Dest. ingress:  allowed by a/db-in ingress[0] peer[0]\n"
      "                datapath: endpoint 1, peer identity 258: entry endpoint 1 ingress identity "
      "258 TCP 5432 (prefix 96) -> a/db-in ingress[0] peer[0]\n"
      "Verdict:        ALLOWED\n"
      "Datapath:       ALLOWED (the pinned maps agree)\n");
  auto no = Run({"policy", "trace", "--from", "b/client", "--to", "10.0.1.1", "--port", "9090"});
  ASSERT_EQ(no.code, 0) << no.err;  // a denial is an answer, not a failure
  EXPECT_EQ(
      no.out,
      "Connection:     b/client -> 10.0.1.1 TCP/9090\n"
      "Source:         b/client 10.0.2.1, identity 259 (pods of b {app=client}), endpoint of this "
      "node\n"
      "Destination:    a/web 10.0.1.1, identity 258 (pods of a {app=web}), endpoint of this node\n"
      "Source egress:  denied: isolated by b/client-out; no rule allows TCP/9090 to this "
      "destination\n"
      "                datapath: endpoint 4, peer identity 258: no entry matches\n"
      "Dest. ingress:  not isolated: no policy selects it for ingress\n"
      "                datapath: endpoint 3 not isolated\n"
      "Verdict:        DENIED: SKIFF_DROP_POLICY_DENIED_EGRESS (network policy: egress of the "
      "source pod denies)\n"
      "Datapath:       DENIED: SKIFF_DROP_POLICY_DENIED_EGRESS (network policy: egress of the "
      "source pod denies) (the pinned maps agree)\n");
}

TEST_F(AgentctlPolicyTest, TraceJsonAndYaml) {
  auto r = Run({"-o", "json", "policy", "trace", "--from", "192.0.2.200", "--to", "a/db", "--port",
                "9050", "--protocol", "tcp"});
  ASSERT_EQ(r.code, 0) << r.err;
  Json j = Json::parse(r.out);
  EXPECT_EQ(j["verdict"], "DENIED");
  EXPECT_EQ(j["map_verdict"], "DENIED");
  EXPECT_EQ(j["drop_reason"], "SKIFF_DROP_POLICY_DENIED_INGRESS");
  EXPECT_EQ(j["mismatch"], false);
  EXPECT_EQ(j["to"]["pod"], "a/db");
  EXPECT_EQ(j["ingress"]["selecting"][0], "a/db-in");
  auto y = Run({"-o", "yaml", "policy", "get", "10.0.1.2"});
  ASSERT_EQ(y.code, 0) << y.err;
  EXPECT_NE(y.out.find("rule: \"a/db-in ingress[0] peer[0]\""), std::string::npos) << y.out;
}

TEST_F(AgentctlPolicyTest, ExitCodes) {
  auto nf = Run({"policy", "get", "a/nope"});
  EXPECT_EQ(nf.code, kExitNotFound);
  EXPECT_NE(nf.err.find("a/nope"), std::string::npos) << nf.err;
  EXPECT_EQ(Run({"policy", "trace", "--from", "a/nope", "--to", "a/db", "--port", "80"}).code,
            kExitNotFound);
  auto vip = Run({"policy", "trace", "--from", "a/web", "--to", "10.96.0.10", "--port", "80"});
  EXPECT_EQ(vip.code, kExitUsage);
  EXPECT_NE(vip.err.find("backend"), std::string::npos) << vip.err;
  EXPECT_EQ(Run({"policy", "trace", "--from", "a/web", "--to", "a/db", "--port", "0"}).code,
            kExitUsage);
  EXPECT_EQ(Run({"policy", "trace", "--from", "a/web", "--to", "a/db", "--port", "80", "--protocol",
                 "icmp"})
                .code,
            kExitUsage);
  EXPECT_EQ(Run({"policy", "trace", "--from", "a/web", "--port", "80"}).code, kExitUsage);
  EXPECT_EQ(Run({"policy", "get", "db"}).code, kExitUsage);
}

TEST_F(AgentctlPolicyTest, MismatchIsLoudAndFails) {
  core_.policy.mutable_entries().clear();
  auto r = Run({"policy", "trace", "--from", "a/web", "--to", "a/db", "--port", "5432"});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_NE(r.out.find("MISMATCH"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("disagree"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace skiff::cli
