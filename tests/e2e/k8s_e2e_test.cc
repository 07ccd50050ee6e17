// skiff-agent against a Kubernetes API server (the protocol-faithful fake of tests/k8s) instead
// of a manifest directory: the same node-and-pods topology, real traffic through a ClusterIP,
// and a watch event (an endpoint removed) reaching the datapath.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "tests/e2e/agent_env.h"
#include "tests/e2e/topology.h"
#include "tests/harness/privileged.h"
#include "tests/k8s/fake_apiserver.h"

namespace skiff::e2e {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using skiff::testing::FakeApiServer;

constexpr char kVip[] = "10.96.0.10";

json Service() {
  return {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", {{"name", "web"}, {"namespace", "default"}}},
      {"spec",
       {{"type", "ClusterIP"},
        {"clusterIP", kVip},
        {"clusterIPs", {kVip}},
        {"ports", {{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}, {"targetPort", 8080}}}}}}};
}

json Slice(const std::vector<std::string>& ips) {
  json eps = json::array();
  for (const auto& ip : ips)
    eps.push_back({{"addresses", {ip}}, {"conditions", {{"ready", true}}}, {"nodeName", "node-1"}});
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", "web-abc"},
            {"namespace", "default"},
            {"labels", {{"kubernetes.io/service-name", "web"}}}}},
          {"addressType", "IPv4"},
          {"ports", {{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}}},
          {"endpoints", eps}};
}

class KubernetesE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_PRIVILEGED();
    auto node = Node::Create();
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    for (auto [name, ip] : std::vector<std::pair<std::string, std::string>>{
             {"client", "10.244.1.10"}, {"web-1", "10.244.1.11"}, {"web-2", "10.244.1.12"}}) {
      auto pod = node_->AddPod(name, ip);
      ASSERT_TRUE(pod.ok()) << pod.status();
      pods_[name] = *pod;
      if (name != "client")
        servers_.push_back(std::make_unique<PodServer>(*pod, std::vector<uint16_t>{8080},
                                                       std::vector<uint16_t>{}));
    }
    // The fake API server listens inside the node's namespace, where the agent runs.
    server_ = InNetns(node_->netns(), [] { return FakeApiServer::Start({}); });
    ASSERT_NE(server_, nullptr) << "fake API server did not start";
    server_->Upsert("namespaces", {{"metadata", {{"name", "default"}}}});
    server_->Upsert("services", Service());
    server_->Upsert("endpointslices", Slice({"10.244.1.11", "10.244.1.12"}));
    env_ = std::make_unique<AgentEnv>(*node_, "k8s", SKIFF_AGENT_PATH);
    ASSERT_TRUE(env_->Start({"--k8s-api-server", server_->url(), "--metrics-listen", "127.0.0.1:0",
                             "--healthz-listen", "127.0.0.1:0", "--log-level", "debug"},
                            /*manifests=*/false)
                    .ok());
  }

  void TearDown() override {
    env_.reset();  // before the node: the agent's cleanup runs in the node's namespace
    if (server_) server_->Stop();
    servers_.clear();
    node_.reset();
  }

  std::map<std::string, int> Spread(int n) {
    std::map<std::string, int> seen;
    for (int i = 0; i < n; i++) seen[TcpHello(pods_["client"].netns, kVip, 80, 1000)]++;
    return seen;
  }

  std::unique_ptr<Node> node_;
  std::map<std::string, Pod> pods_;
  std::vector<std::unique_ptr<PodServer>> servers_;
  std::unique_ptr<FakeApiServer> server_;
  std::unique_ptr<AgentEnv> env_;
};

TEST_F(KubernetesE2E, ClusterIpFromTheApiAndAWatchedEndpointRemoval) {
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline &&
         TcpHello(pods_["client"].netns, kVip, 80, 300).empty())
    std::this_thread::sleep_for(100ms);
  auto seen = Spread(40);
  EXPECT_EQ(seen.count(""), 0u) << seen[""] << " of 40 connections failed";
  EXPECT_GT(seen["web-1"], 0);
  EXPECT_GT(seen["web-2"], 0);

  // A watch event: web-2 leaves the slice; new connections stop reaching it within 2 s.
  server_->Upsert("endpointslices", Slice({"10.244.1.11"}));
  std::this_thread::sleep_for(2s);
  seen = Spread(30);
  EXPECT_EQ(seen["web-1"], 30) << "web-2 still reached after its endpoint was removed";
  EXPECT_GE(server_->CountRequests("services", /*watch=*/true), 1u);
}

}  // namespace
}  // namespace skiff::e2e
