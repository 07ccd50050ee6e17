// `agentctl policy` end to end: the real agent in a node namespace with NetworkPolicies, the
// real agentctl binary against its --api-socket. For allowed and denied pairs (ingress and
// egress), `agentctl policy trace` must give the verdict a real TCP connection between the
// pods gets, with the pinned maps agreeing; `policy get` must list the selected pod's allow
// entries with the rule that made them; a ClusterIP as --to is refused naming its backend.
//
// Scenario (node-1): x/a (pod=a) and x/b (pod=b) in namespace x, y/c (pod=c) in namespace y,
// every pod serving TCP 80 and 81. x/a-in: x/a accepts only pod=b of namespace x, on port 80.
// y/c-out: y/c may only connect to port 81.
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/e2e/agent_env.h"
#include "tests/e2e/manifests.h"
#include "tests/e2e/topology.h"
#include "tests/harness/privileged.h"

namespace skiff::e2e {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr char kVip[] = "10.96.0.10";
struct PodDef {
  std::string ns, name, ip;
};
const std::vector<PodDef> kPods = {
    {"x", "a", "10.244.1.10"}, {"x", "b", "10.244.1.11"}, {"y", "c", "10.244.1.20"}};

std::string PodYaml(const PodDef& p) {
  return absl::StrCat("apiVersion: v1\nkind: Pod\nmetadata:\n  name: ", p.name,
                      "\n  namespace: ", p.ns, "\n  labels:\n    pod: ", p.name,
                      "\nspec:\n  nodeName: node-1\n  containers:\n  - name: srv\n    ports:\n"
                      "    - name: http\n      containerPort: 80\n      protocol: TCP\n"
                      "status:\n  phase: Running\n  podIPs:\n  - ip: ",
                      p.ip, "\n");
}

constexpr char kPolicies[] = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: a-in
  namespace: x
spec:
  podSelector:
    matchLabels:
      pod: a
  ingress:
  - from:
    - podSelector:
        matchLabels:
          pod: b
    ports:
    - port: 80
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: c-out
  namespace: y
spec:
  podSelector:
    matchLabels:
      pod: c
  policyTypes: [Egress]
  egress:
  - ports:
    - port: 81
)";

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct CtlResult {
  int code = -1;
  std::string out;
};

class PolicyCliE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_PRIVILEGED();
    auto node = Node::Create();
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    std::string yaml;
    for (const char* ns : {"x", "y"})
      absl::StrAppend(&yaml, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ", ns,
                      "\n  labels:\n    ns: ", ns, "\n---\n");
    for (const auto& d : kPods) {
      auto pod = node_->AddPod(d.ns + "/" + d.name, d.ip);
      ASSERT_TRUE(pod.ok()) << pod.status();
      pods_[d.ns + "/" + d.name] = *pod;
      servers_.push_back(std::make_unique<PodServer>(*pod, std::vector<uint16_t>{80, 81},
                                                     std::vector<uint16_t>{}));
      ASSERT_TRUE(servers_.back()->status().ok()) << servers_.back()->status();
      absl::StrAppend(&yaml, PodYaml(d), "---\n");
    }
    yaml += ServiceYaml("web", kVip, {{"http", 80, "80", "TCP"}}, false, "x") + "---\n" +
            EndpointSliceYaml("web-1", "web", {{"10.244.1.10"}}, {{"http", 80, "TCP"}}, "x");
    env_ = std::make_unique<AgentEnv>(*node_, "polcli", SKIFF_AGENT_PATH);
    env_->Write("cluster.yaml", yaml);
    env_->Write("policies.yaml", kPolicies);
    ASSERT_TRUE(env_->Start().ok());
  }
  void TearDown() override {
    env_.reset();
    servers_.clear();
    node_.reset();
  }

  CtlResult Ctl(const std::string& args) {
    std::string out = (env_->dir() / "ctl.out").string();
    int rc = std::system(absl::StrCat(SKIFF_AGENTCTL_PATH, " --socket ", env_->api_socket(), " ",
                                      args, " >", out, " 2>&1")
                             .c_str());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, ReadAll(out)};
  }

  // The agent has applied both policies once `policy list` shows both isolations.
  bool WaitPoliciesApplied() {
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      CtlResult r = Ctl("policy list -o json");
      Json j = Json::parse(r.out, nullptr, false);
      int isolated = 0;
      if (r.code == 0 && !j.is_discarded())
        for (const auto& e : j["endpoints"])
          isolated += (e["name"] == "a" && e["ingress_isolated"] == true) +
                      (e["name"] == "c" && e["egress_isolated"] == true);
      if (isolated == 2) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // A real connection: true when the server's hello arrived.
  bool Connects(const std::string& from, const std::string& to, uint16_t port) {
    return !TcpHello(pods_[from].netns, pods_[to].ip, port, 500).empty();
  }

  std::unique_ptr<Node> node_;
  std::map<std::string, Pod> pods_;
  std::vector<std::unique_ptr<PodServer>> servers_;
  std::unique_ptr<AgentEnv> env_;
};

TEST_F(PolicyCliE2E, TraceMatchesRealConnectionsAndGetListsEntries) {
  ASSERT_TRUE(WaitPoliciesApplied()) << Ctl("policy list").out;

  struct Case {
    std::string from, to;
    uint16_t port;
    bool allowed;
    std::string drop;  // expected drop reason when denied
  };
  const std::vector<Case> cases = {
      {"x/b", "x/a", 80, true, ""},
      {"x/b", "x/a", 81, false, "SKIFF_DROP_POLICY_DENIED_INGRESS"},
      {"y/c", "x/a", 80, false, "SKIFF_DROP_POLICY_DENIED_EGRESS"},
      {"y/c", "x/b", 81, true, ""},
      {"y/c", "x/b", 80, false, "SKIFF_DROP_POLICY_DENIED_EGRESS"},
      {"x/a", "y/c", 80, true, ""},
  };
  for (const auto& c : cases) {
    std::string what = absl::StrCat(c.from, " -> ", c.to, ":", c.port);
    // The pod name and the address must give the same answer.
    for (const std::string& to : {c.to, pods_[c.to].ip}) {
      CtlResult r = Ctl(absl::StrCat("policy trace --from ", c.from, " --to ", to, " --port ",
                                     c.port, " -o json"));
      ASSERT_EQ(r.code, 0) << what << "\n" << r.out;
      Json j = Json::parse(r.out);
      EXPECT_EQ(j["verdict"], c.allowed ? "ALLOWED" : "DENIED") << what << "\n" << r.out;
      EXPECT_EQ(j["map_verdict"], j["verdict"]) << what << "\n" << r.out;
      EXPECT_EQ(j["mismatch"], false) << what << "\n" << r.out;
      EXPECT_EQ(j["drop_reason"], c.drop) << what;
      EXPECT_EQ(j["map_drop_reason"], c.drop) << what;
    }
    // What a real connection gets: the same verdict.
    EXPECT_EQ(Connects(c.from, c.to, c.port), c.allowed) << what;
  }

  // The table names the deciding rule.
  CtlResult t = Ctl("policy trace --from x/b --to x/a --port 80");
  EXPECT_EQ(t.code, 0) << t.out;
  EXPECT_NE(t.out.find("allowed by x/a-in ingress[0] peer[0]"), std::string::npos) << t.out;

  CtlResult get = Ctl("policy get x/a -o json");
  ASSERT_EQ(get.code, 0) << get.out;
  Json g = Json::parse(get.out);
  EXPECT_EQ(g["ingress_policies"], Json::array({"x/a-in"}));
  ASSERT_EQ(g["entries"].size(), 1u) << get.out;
  const Json& e = g["entries"][0];
  EXPECT_EQ(e["direction"], "ingress");
  EXPECT_EQ(e["protocol"], "TCP");
  EXPECT_EQ(e["port_low"], 80);
  EXPECT_EQ(e["port_high"], 80);
  EXPECT_EQ(e["peer"], "pods of x {pod=b}");
  EXPECT_EQ(e["rule"], "x/a-in ingress[0] peer[0]");
  EXPECT_EQ(g["problems"].size(), 0u) << get.out;

  CtlResult c = Ctl("policy get y/c");
  EXPECT_EQ(c.code, 0) << c.out;
  EXPECT_NE(c.out.find("y/c-out egress[0] (every peer)"), std::string::npos) << c.out;

  EXPECT_EQ(Ctl("policy get x/nope").code, 4);
  CtlResult vip = Ctl(absl::StrCat("policy trace --from y/c --to ", kVip, " --port 80"));
  EXPECT_EQ(vip.code, 2) << vip.out;
  EXPECT_NE(vip.out.find("10.244.1.10:80"), std::string::npos) << vip.out;
}

}  // namespace
}  // namespace skiff::e2e
