// Host routing end to end (bpf/lib/host_route.h, docs/datapath.md "Host routing"): with the
// default --host-routing=bpf, pod-to-pod traffic within the node — direct and through a
// ClusterIP — is delivered straight into the destination pod: the node's netfilter FORWARD hook
// never sees it, the destination's to_container does not run, the router's TTL decrement still
// happens. With a NetworkPolicy the destination's ingress is enforced on the host-routed
// packet (its to_container is skipped); --host-routing=legacy sends it through the node's
// stack; an unresolved neighbour takes the stack until the kernel resolves it; the agent's map of
// attached interfaces follows pods as they go, also across a restart.
#include <bpf/bpf.h>
#include <net/if.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "maps/drop_reasons.h"
#include "maps/host_route.h"
#include "maps/map.h"
#include "maps/metrics.h"
#include "maps/names.h"
#include "tests/e2e/agent_env.h"
#include "tests/e2e/manifests.h"
#include "tests/e2e/topology.h"
#include "tests/harness/privileged.h"

namespace skiff::e2e {
namespace {

using namespace std::chrono_literals;

constexpr char kVip[] = "10.96.0.10";
const std::map<std::string, std::string> kPods = {
    {"client", "10.244.1.10"}, {"web-1", "10.244.1.11"}, {"web-2", "10.244.1.12"}};

class HostRoutingE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_PRIVILEGED();
    auto node = Node::Create();
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    for (const auto& [name, ip] : kPods) {
      auto pod = node_->AddPod(name, ip);
      ASSERT_TRUE(pod.ok()) << pod.status();
      pods_[name] = *pod;
      if (name != "client") {
        servers_.push_back(std::make_unique<PodServer>(*pod, std::vector<uint16_t>{8080},
                                                       std::vector<uint16_t>{}));
        ASSERT_TRUE(servers_.back()->status().ok()) << servers_.back()->status();
      }
    }
    env_ = std::make_unique<AgentEnv>(*node_, "hr", SKIFF_AGENT_PATH);
    env_->Write("web.yaml",
                ServiceYaml("web", kVip, {{"http", 80, "http", "TCP"}}) + "---\n" +
                    EndpointSliceYaml("web-abc", "web", {{kPods.at("web-1")}, {kPods.at("web-2")}},
                                      {{"http", 8080, "TCP"}}));
    // The node's FORWARD hook, counted: what the node's IP stack forwards between pods.
    const std::string nft = "ip netns exec " + node_->netns() + " nft ";
    ASSERT_TRUE(Sh(nft + "add table inet skiff_hr_test").ok());
    ASSERT_TRUE(Sh(nft + "add chain inet skiff_hr_test forwarded "
                         "'{ type filter hook forward priority 0; }'")
                    .ok());
    ASSERT_TRUE(Sh(nft + "add rule inet skiff_hr_test forwarded counter").ok());
  }

  void TearDown() override {
    env_.reset();
    servers_.clear();
    node_.reset();
  }

  void StartAgent(std::vector<std::string> extra = {}) {
    extra.insert(extra.end(), {"--log-level", "debug"});
    ASSERT_TRUE(env_->Start(extra).ok()) << env_->Log();
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!TcpHello(pods_["client"].netns, kVip, 80, 300).empty()) return;
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "the service never answered\n" << env_->Log();
  }

  uint64_t Packets(uint32_t dir, int code = 0) const {
    return DatapathPackets(env_->bpffs_root(), dir, code);
  }

  // Packets the node's FORWARD hook saw.
  uint64_t Forwarded() const {
    auto out =
        ShOut("ip netns exec " + node_->netns() + " nft list chain inet skiff_hr_test forwarded");
    if (!out.ok()) return ~0ull;
    auto at = out->find("counter packets ");
    uint64_t n = ~0ull;
    if (at != std::string::npos) {
      std::string rest = out->substr(at + 16);
      (void)absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &n);
    }
    return n;
  }

  // The ifindexes in the agent's map of attached interfaces.
  std::set<uint32_t> MapIfaces() const {
    std::set<uint32_t> out;
    std::string pin = env_->bpffs_root() + "/" + SKIFF_STR(SKIFF_MAP_ENDPOINT_IFACES);
    int fd = bpf_obj_get(pin.c_str());
    if (fd < 0) return out;
    Map<__u32, skiff_endpoint_iface> m(fd, SKIFF_STR(SKIFF_MAP_ENDPOINT_IFACES));
    if (auto entries = m.Entries(); entries.ok())
      for (const auto& [k, v] : *entries) out.insert(k);
    close(fd);
    return out;
  }

  uint32_t Ifindex(const std::string& pod) const {
    return InNetns(node_->netns(), [&] { return if_nametoindex(pods_.at(pod).host_if.c_str()); });
  }

  // Deletes the pod's veth pair (its namespace may outlive `ip netns del` while servers run).
  bool DeleteLink(const std::string& pod) const {
    return Sh("ip -n " + node_->netns() + " link del " + pods_.at(pod).host_if).ok();
  }

  // n connections from the client directly to web-1 and n through the ClusterIP.
  void Connect(int n) {
    for (int i = 0; i < n; i++) {
      std::string err;
      EXPECT_EQ(TcpHello(pods_["client"].netns, kPods.at("web-1"), 8080, 2000, &err), "web-1")
          << err;
      EXPECT_FALSE(TcpHello(pods_["client"].netns, kVip, 80, 2000, &err).empty()) << err;
    }
  }

  // Whether a ping from the client to web-1 comes back with TTL 63: one router hop each way.
  bool PingTtl63() const {
    auto out = ShOut("ip netns exec " + pods_.at("client").netns + " ping -c 1 -W 2 " +
                     kPods.at("web-1") + " 2>&1");
    return out.ok() && out->find("ttl=63") != std::string::npos;
  }

  std::unique_ptr<Node> node_;
  std::map<std::string, Pod> pods_;
  std::vector<std::unique_ptr<PodServer>> servers_;
  std::unique_ptr<AgentEnv> env_;
};

TEST_F(HostRoutingE2E, PodToPodAndClusterIpSkipTheNodeStack) {
  StartAgent();
  const uint64_t routed = Packets(SKIFF_DIR_HOST_ROUTED), to = Packets(SKIFF_DIR_TO_CONTAINER);
  const uint64_t fwd = Forwarded();
  constexpr int kConnections = 10;
  Connect(kConnections);
  // SYN, ACK, request, FIN from the client and SYN-ACK, response, FIN from the server, at least.
  EXPECT_GE(Packets(SKIFF_DIR_HOST_ROUTED) - routed, 6u * 2 * kConnections);
  // The node's own packets to the pods (IPv6 neighbour discovery, ...) still cross
  // to_container; the connections' 120+ packets must not.
  EXPECT_LT(Packets(SKIFF_DIR_TO_CONTAINER) - to, 6u * 2 * kConnections / 4)
      << "pod-to-pod packets took the stack";
  EXPECT_EQ(Forwarded() - fwd, 0u) << "the node's FORWARD hook saw pod-to-pod packets";
  EXPECT_TRUE(PingTtl63()) << "forwarding must decrement the TTL as the node's stack does";
}

TEST_F(HostRoutingE2E, LegacyRoutingTakesTheNodeStack) {
  StartAgent({"--host-routing", "legacy"});
  const uint64_t fwd = Forwarded(), to = Packets(SKIFF_DIR_TO_CONTAINER);
  Connect(5);
  EXPECT_EQ(Packets(SKIFF_DIR_HOST_ROUTED), 0u);
  EXPECT_GE(Forwarded() - fwd, 6u * 2 * 5);
  EXPECT_GE(Packets(SKIFF_DIR_TO_CONTAINER) - to, 6u * 2 * 5);
  EXPECT_TRUE(PingTtl63());
}

TEST_F(HostRoutingE2E, IngressPolicyIsEnforcedOnHostRoutedTraffic) {
  StartAgent();
  std::string pods;
  for (const auto& [name, ip] : kPods)
    absl::StrAppend(&pods, pods.empty() ? "" : "---\n",
                    PodYaml(name, ip, name == "client" ? "client" : "web"));
  env_->Write("pods.yaml", pods);
  // Ingress to web pods only from the client.
  env_->Write("allow-client.yaml",
              "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
              "  name: allow-client\n  namespace: default\nspec:\n  podSelector:\n"
              "    matchLabels:\n      app: web\n  policyTypes: [Ingress]\n  ingress:\n"
              "  - from:\n    - podSelector:\n        matchLabels:\n          app: client\n");
  // In force once web-2 can no longer reach web-1 (web-2 is not the client).
  auto deadline = std::chrono::steady_clock::now() + 20s;
  bool denied = false;
  while (!denied && std::chrono::steady_clock::now() < deadline) {
    denied = TcpHello(pods_["web-2"].netns, kPods.at("web-1"), 8080, 300).empty();
    if (!denied) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(denied) << "the policy never took effect\n" << env_->Log();
  // Refused on web-1's behalf, counted as its to_container would count it.
  EXPECT_GT(Packets(SKIFF_DIR_TO_CONTAINER, SKIFF_DROP_POLICY_DENIED_INGRESS), 0u);
  // The allowed traffic is still host-routed, never through the node's stack.
  const uint64_t routed = Packets(SKIFF_DIR_HOST_ROUTED), fwd = Forwarded();
  Connect(5);
  EXPECT_GE(Packets(SKIFF_DIR_HOST_ROUTED) - routed, 6u * 2 * 5);
  EXPECT_EQ(Forwarded() - fwd, 0u);
}

TEST_F(HostRoutingE2E, UnresolvedNeighbourTakesTheStackUntilResolved) {
  // No static entry for web-1 on the node: the first packets need ARP, through the stack.
  ASSERT_TRUE(Sh("ip -n " + node_->netns() + " neigh del " + kPods.at("web-1") + " dev " +
                 pods_["web-1"].host_if)
                  .ok());
  StartAgent();
  Connect(3);
  const uint64_t routed = Packets(SKIFF_DIR_HOST_ROUTED);
  Connect(3);
  EXPECT_GE(Packets(SKIFF_DIR_HOST_ROUTED) - routed, 6u * 2 * 3)
      << "a resolved neighbour should be host-routed";
}

TEST_F(HostRoutingE2E, MapFollowsAttachedInterfacesAcrossRestarts) {
  StartAgent();
  const std::set<uint32_t> all = {Ifindex("client"), Ifindex("web-1"), Ifindex("web-2")};
  EXPECT_EQ(MapIfaces(), all);

  const uint32_t web2 = Ifindex("web-2");
  ASSERT_TRUE(DeleteLink("web-2"));
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (MapIfaces().count(web2) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(MapIfaces().count(web2), 0u) << "a removed pod's ifindex stayed a redirect target";

  // Gone while the agent is down: the restarted agent prunes it.
  env_->Kill();
  const uint32_t web1 = Ifindex("web-1");
  ASSERT_TRUE(DeleteLink("web-1"));
  EXPECT_EQ(MapIfaces().count(web1), 1u);  // pinned: still there while no agent runs
  ASSERT_TRUE(env_->Start({"--log-level", "debug"}).ok());
  deadline = std::chrono::steady_clock::now() + 10s;
  while (MapIfaces().count(web1) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(MapIfaces(), std::set<uint32_t>{Ifindex("client")});
}

}  // namespace
}  // namespace skiff::e2e
