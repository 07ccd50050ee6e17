// skiff-agent end to end: a node namespace with pod namespaces, real servers, the real agent
// on a manifest directory, and real TCP/UDP connections through ClusterIPs.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/e2e/agent_env.h"
#include "tests/e2e/manifests.h"
#include "tests/e2e/topology.h"
#include "tests/harness/privileged.h"

namespace skiff::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr char kVip[] = "10.96.0.10";
constexpr char kEmptyVip[] = "10.96.0.20";
constexpr char kAffinityVip[] = "10.96.0.30";
constexpr char kMultiVip[] = "10.96.0.40";

const std::vector<SlicePort> kSlicePorts = {{"http", 8080, "TCP"}, {"dns", 5353, "UDP"}};

std::vector<EndpointSpec> Ready(std::initializer_list<const char*> ips) {
  std::vector<EndpointSpec> out;
  for (const char* ip : ips) out.push_back({ip});
  return out;
}

class ServicesE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_PRIVILEGED();
    auto node = Node::Create();
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    for (auto [name, ip] :
         std::vector<std::pair<std::string, std::string>>{{"client", "10.244.1.10"},
                                                          {"web-1", "10.244.1.11"},
                                                          {"web-2", "10.244.1.12"},
                                                          {"web-3", "10.244.1.13"}}) {
      auto pod = node_->AddPod(name, ip);
      ASSERT_TRUE(pod.ok()) << pod.status();
      pods_[name] = *pod;
      if (name != "client") {
        servers_.push_back(std::make_unique<PodServer>(*pod, std::vector<uint16_t>{8080, 9090},
                                                       std::vector<uint16_t>{5353}));
        ASSERT_TRUE(servers_.back()->status().ok()) << servers_.back()->status();
      }
    }
    env_ = std::make_unique<AgentEnv>(*node_, "svc", SKIFF_AGENT_PATH);

    WriteWeb(Ready({"10.244.1.11", "10.244.1.12", "10.244.1.13"}));
    Write(
        "empty.yaml",
        ServiceYaml("empty", kEmptyVip, {{"http", 80, "8080", "TCP"}, {"dns", 80, "5353", "UDP"}}) +
            "---\n" + EndpointSliceYaml("empty-abc", "empty", {}, {{"http", 8080, "TCP"}}));
  }

  void TearDown() override {
    env_.reset();  // before the node: the agent's cleanup runs in the node's namespace
    servers_.clear();
    node_.reset();
  }

  void Write(const std::string& file, const std::string& yaml) { env_->Write(file, yaml); }

  // The "web" service (TCP 80 -> http, UDP 53 -> dns) with the given endpoints.
  void WriteWeb(const std::vector<EndpointSpec>& endpoints) {
    Write("web.yaml",
          ServiceYaml("web", kVip, {{"http", 80, "http", "TCP"}, {"dns", 53, "dns", "UDP"}}) +
              "---\n" + EndpointSliceYaml("web-abc", "web", endpoints, kSlicePorts));
  }

  void StartAgent() { ASSERT_TRUE(env_->Start({"--log-level", "debug"}).ok()); }

  // Waits until a TCP connection through vip:port is answered by a backend.
  bool WaitServing(const std::string& vip, uint16_t port, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!TcpHello(pods_["client"].netns, vip, port, 300).empty()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  std::map<std::string, int> Spread(const std::string& vip, uint16_t port, int n, bool udp,
                                    int* failures) {
    std::map<std::string, int> seen;
    *failures = 0;
    for (int i = 0; i < n; i++) {
      std::string err;
      std::string who = udp ? UdpHello(pods_["client"].netns, vip, port, 1000, &err)
                            : TcpHello(pods_["client"].netns, vip, port, 1000, &err);
      if (who.empty()) {
        (*failures)++;
        ADD_FAILURE() << (udp ? "UDP" : "TCP") << " via " << vip << ":" << port << ": " << err;
      } else {
        seen[who]++;
      }
    }
    return seen;
  }

  std::string AgentLog() { return env_->Log(); }

  std::unique_ptr<Node> node_;
  std::map<std::string, Pod> pods_;
  std::vector<std::unique_ptr<PodServer>> servers_;
  std::unique_ptr<AgentEnv> env_;
};

TEST_F(ServicesE2E, TcpAndUdpReachEveryReadyBackend) {
  StartAgent();
  ASSERT_TRUE(WaitServing(kVip, 80, 10s)) << "service never served";
  int failures = 0;
  auto tcp = Spread(kVip, 80, 120, false, &failures);
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(tcp.size(), 3u) << "not every backend answered TCP";
  auto udp = Spread(kVip, 53, 120, true, &failures);
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(udp.size(), 3u) << "not every backend answered UDP";
  for (auto& [who, n] : tcp) EXPECT_TRUE(who.rfind("web-", 0) == 0) << who;
}

TEST_F(ServicesE2E, NoEndpointsRefusesAtOnce) {
  StartAgent();
  ASSERT_TRUE(WaitServing(kVip, 80, 10s));
  std::chrono::steady_clock::duration slowest_tcp{};
  for (int i = 0; i < 5; i++) {
    auto t0 = std::chrono::steady_clock::now();
    std::string err;
    std::string who = TcpHello(pods_["client"].netns, kEmptyVip, 80, 3000, &err);
    auto took = std::chrono::steady_clock::now() - t0;
    slowest_tcp = std::max(slowest_tcp, took);
    EXPECT_TRUE(who.empty());
    EXPECT_LT(took, 500ms) << "TCP connect to a service without endpoints hung: " << err;
    EXPECT_NE(err.find("refused"), std::string::npos) << err;
    t0 = std::chrono::steady_clock::now();
    who = UdpHello(pods_["client"].netns, kEmptyVip, 80, 3000, &err);
    took = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(who.empty());
    EXPECT_LT(took, 500ms) << "UDP to a service without endpoints hung: " << err;
    EXPECT_NE(err.find("refused"), std::string::npos) << err;
  }
  // Reported, not asserted beyond the bound above (no timing assertions in tests).
  std::printf("slowest TCP refusal of 5: %.1f ms\n",
              std::chrono::duration<double, std::milli>(slowest_tcp).count());
}

TEST_F(ServicesE2E, RemovedEndpointStopsNewConnectionsButKeepsEstablished) {
  StartAgent();
  ASSERT_TRUE(WaitServing(kVip, 80, 10s));
  // Find an established connection to web-3.
  std::vector<std::unique_ptr<TcpStream>> streams;
  TcpStream* to_web3 = nullptr;
  for (int i = 0; i < 60 && !to_web3; i++) {
    auto s = std::make_unique<TcpStream>();
    ASSERT_TRUE(s->Open(pods_["client"].netns, kVip, 80).ok());
    if (s->server() == "web-3") to_web3 = s.get();
    streams.push_back(std::move(s));
  }
  ASSERT_NE(to_web3, nullptr) << "never reached web-3";
  WriteWeb(Ready({"10.244.1.11", "10.244.1.12"}));
  std::this_thread::sleep_for(2s);
  int failures = 0;
  auto seen = Spread(kVip, 80, 60, false, &failures);
  EXPECT_EQ(seen.count("web-3"), 0u) << "new connections still reach a removed endpoint";
  EXPECT_TRUE(to_web3->Echo("still there").ok()) << "established connection broke";

  // Terminating (serving) endpoints: no new connections while others are ready...
  std::vector<EndpointSpec> eps = Ready({"10.244.1.11", "10.244.1.12"});
  eps[1].ready = false;
  eps[1].terminating = true;
  WriteWeb(eps);
  std::this_thread::sleep_for(2s);
  seen = Spread(kVip, 80, 40, false, &failures);
  EXPECT_EQ(seen.count("web-2"), 0u) << "new connections reach a terminating endpoint";
  EXPECT_EQ(seen["web-1"], 40);
  // ...but when every endpoint is terminating, they still serve (serving+terminating fallback).
  eps[0].ready = false;
  eps[0].terminating = true;
  WriteWeb(eps);
  std::this_thread::sleep_for(2s);
  seen = Spread(kVip, 80, 40, false, &failures);
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(seen["web-1"] + seen["web-2"], 40);
}

TEST_F(ServicesE2E, AffinityNamedPortsAndHairpin) {
  Write("sticky.yaml", ServiceYaml("sticky", kAffinityVip, {{"http", 80, "http", "TCP"}}, true) +
                           "---\n" +
                           EndpointSliceYaml("sticky-abc", "sticky",
                                             Ready({"10.244.1.11", "10.244.1.12", "10.244.1.13"}),
                                             {{"http", 8080, "TCP"}}));
  Write("multi.yaml",
        ServiceYaml("multi", kMultiVip,
                    {{"http", 80, "http", "TCP"}, {"admin", 81, "admin", "TCP"}}) +
            "---\n" +
            EndpointSliceYaml("multi-abc", "multi", Ready({"10.244.1.11", "10.244.1.12"}),
                              {{"http", 8080, "TCP"}, {"admin", 9090, "TCP"}}));
  StartAgent();
  ASSERT_TRUE(WaitServing(kAffinityVip, 80, 10s));
  int failures = 0;
  auto seen = Spread(kAffinityVip, 80, 30, false, &failures);
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(seen.size(), 1u) << "sessionAffinity ClientIP spread one client over backends";
  seen = Spread(kMultiVip, 81, 20, false, &failures);
  EXPECT_EQ(failures, 0) << "named targetPort 'admin' (9090) not reached";
  seen = Spread(kMultiVip, 80, 20, false, &failures);
  EXPECT_EQ(failures, 0);
  // web-1 reaching its own service: some connections land on itself (hairpin).
  std::map<std::string, int> from_web1;
  for (int i = 0; i < 40; i++) {
    std::string err;
    std::string who = TcpHello(pods_["web-1"].netns, kMultiVip, 80, 1000, &err);
    EXPECT_FALSE(who.empty()) << "from web-1: " << err;
    from_web1[who]++;
  }
  EXPECT_GT(from_web1["web-1"], 0) << "hairpin connection never made";
}

TEST_F(ServicesE2E, AgentKill9KeepsStreamsAndServices) {
  StartAgent();
  ASSERT_TRUE(WaitServing(kVip, 80, 10s));
  TcpStream stream;
  ASSERT_TRUE(stream.Open(pods_["client"].netns, kVip, 80).ok());
  ASSERT_TRUE(stream.Echo("before").ok());
  auto dump = [&] {
    auto out = ShOut("bpftool map dump pinned " + env_->bpffs_root() + "/skiff_lb4_services_v2 -j");
    return out.ok() ? *out : std::string("<dump failed>");
  };
  std::string services_before = dump();
  auto revnat_before =
      ShOut("bpftool map dump pinned " + env_->bpffs_root() + "/skiff_lb4_revnat_v2 -j");

  env_->Kill();
  EXPECT_TRUE(stream.Echo("agent down").ok()) << "stream broke when the agent died";
  EXPECT_FALSE(TcpHello(pods_["client"].netns, kVip, 80, 1000).empty())
      << "new connection failed while the agent is down";

  StartAgent();
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(stream.Echo("agent back").ok()) << "stream broke across the restart";
  EXPECT_FALSE(TcpHello(pods_["client"].netns, kVip, 80, 1000).empty());
  EXPECT_EQ(dump(), services_before) << "service entries or ids changed across a restart";
  auto revnat_after =
      ShOut("bpftool map dump pinned " + env_->bpffs_root() + "/skiff_lb4_revnat_v2 -j");
  ASSERT_TRUE(revnat_before.ok() && revnat_after.ok());
  EXPECT_EQ(*revnat_after, *revnat_before);
}

TEST_F(ServicesE2E, MalformedManifestIsReportedAndOthersApply) {
  Write("broken.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: broken\n  bad: [\n");
  Write("bad-port.yaml", ServiceYaml("badport", "10.96.0.50", {{"http", 0, "8080", "TCP"}}));
  StartAgent();
  ASSERT_TRUE(WaitServing(kVip, 80, 10s)) << "good manifests did not apply next to a bad one";
  std::string log = AgentLog();
  EXPECT_NE(log.find("broken.yaml"), std::string::npos) << "error does not name the file";
  EXPECT_NE(log.find("bad-port.yaml"), std::string::npos);
  EXPECT_NE(log.find("spec.ports[0].port"), std::string::npos) << "error does not name the field";
}

}  // namespace
}  // namespace skiff::e2e
