// Socket-level load balancing (docs/socket-lb.md) on the two-node north-south cluster: each
// agent attaches its cgroup programs to a test cgroup of its own (ClusterNode::Cgroup, never the
// machine's root cgroup), and node-originated clients are separate processes moved into that
// cgroup and run in the node's host network namespace (ClusterNode::HostCommand).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "maps/drop_reasons.h"
#include "maps/metrics.h"
#include "tests/e2e/cluster.h"  // NorthSouthTest
#include "tests/e2e/topology.h"

namespace skiff::e2e {
namespace {

// What a batch of client attempts saw: answers per server, the peers the application was
// shown, and errors by name.
struct Seen {
  std::map<std::string, int> servers;
  std::set<std::string> peers;
  std::map<std::string, int> errors;
  int ok = 0;
};

class SocketLbTest : public NorthSouthTest {
 protected:
  // Every agent attaches to a test cgroup of its own (never the machine's root cgroup).
  std::vector<std::string> AgentFlags(int node) const override {
    std::vector<std::string> f = NorthSouthTest::AgentFlags(node);
    auto lb = cluster_->node(node).SocketLbFlags();
    if (!lb.ok())
      ADD_FAILURE() << lb.status();  // e.g. no cgroup2 mount: fail, never skip
    else
      f.insert(f.end(), lb->begin(), lb->end());
    return f;
  }

  // n attempts of `mode` (tcp, udp, udpc) from node `node`'s own network namespace (or from
  // `netns`, e.g. a pod's), by one client process in that node's agent cgroup.
  Seen Run(int node, const std::string& mode, const std::string& ip, uint16_t port, int n,
           const std::string& netns = "") {
    Seen s;
    const std::string client =
        absl::StrCat(SKIFF_SOCK_CLIENT_PATH, " ", mode, " ", ip, " ", port, " ", n);
    auto cmd = netns.empty() ? cluster_->node(node).HostCommand(client)
                             : cluster_->node(node).NetnsCommand(netns, client);
    if (!cmd.ok()) {
      ADD_FAILURE() << cmd.status();
      return s;
    }
    auto out = ShOut(*cmd);
    if (!out.ok()) {
      ADD_FAILURE() << out.status();
      return s;
    }
    for (absl::string_view line : absl::StrSplit(*out, '\n', absl::SkipEmpty())) {
      std::vector<std::string> f = absl::StrSplit(line, ' ');
      if (f.size() == 3 && f[0] == "ok") {
        s.ok++;
        s.servers[f[1]]++;
        s.peers.insert(f[2]);
      } else if (f.size() == 2 && f[0] == "err") {
        s.errors[f[1]]++;
      } else {
        ADD_FAILURE() << "unexpected client output: " << line;
      }
    }
    return s;
  }

  // Waits until `pred` holds for a fresh Run (or 30 s).
  template <typename Pred>
  Seen RunUntil(int node, const std::string& mode, const std::string& ip, uint16_t port, int n,
                Pred pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    Seen s;
    do {
      s = Run(node, mode, ip, port, n);
      if (pred(s)) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    } while (std::chrono::steady_clock::now() < deadline);
    return s;
  }

  uint64_t SockMetric(int node, int code) {
    return cluster_->node(node).DatapathPackets(SKIFF_DIR_SOCK, code);
  }

  std::string Status(int node) {
    auto out = ShOut(absl::StrCat(SKIFF_AGENTCTL_PATH, " --socket ",
                                  cluster_->node(node).api_socket(), " status"));
    return out.ok() ? *out : out.status().ToString();
  }

  // Waits until the node's log (appended to across restarts) holds `needle` `times` times.
  bool WaitForLog(int node, const std::string& needle, int times = 1) {
    for (int i = 0; i < 300; i++) {
      const std::string log = cluster_->node(node).Log();
      int n = 0;
      for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1))
        n++;
      if (n >= times) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::string Frontend(int node, uint16_t port) {
    return absl::StrCat(cluster_->node(node).address, ":", port);
  }
};

TEST_F(SocketLbTest, NodePortFromTheNodeItselfReachesBothNodesAndShowsTheFrontend) {
  Seen s = Run(1, "tcp", cluster_->node(1).address, kNodePort, 40);
  EXPECT_EQ(s.ok, 40) << "errors: " << s.errors.size();
  EXPECT_GT(s.servers["web-a"], 0);
  EXPECT_GT(s.servers["web-b"], 0);
  EXPECT_EQ(s.peers, std::set<std::string>{Frontend(1, kNodePort)});
  EXPECT_GT(SockMetric(1, 0), 0u);
  const std::string status = Status(1);
  EXPECT_NE(status.find("cgroup-connect4"), std::string::npos) << status;
  EXPECT_NE(status.find(*cluster_->node(1).Cgroup()), std::string::npos) << status;
}

TEST_F(SocketLbTest, UdpNodePortFromTheNodeGetsRepliesFromTheFrontend) {
  for (const char* mode : {"udp", "udpc"}) {
    Seen s = Run(1, mode, cluster_->node(1).address, kUdpNodePort, 30);
    EXPECT_EQ(s.ok, 30) << mode;
    EXPECT_GT(s.servers["web-a"], 0) << mode;
    EXPECT_GT(s.servers["web-b"], 0) << mode;
    EXPECT_EQ(s.peers, std::set<std::string>{Frontend(1, kUdpNodePort)}) << mode;
  }
}

TEST_F(SocketLbTest, NodePortOnLoopbackIsRefused) {
  // Served on the node's address (same client, same moment)...
  EXPECT_EQ(Run(1, "tcp", cluster_->node(1).address, kNodePort, 3).ok, 3);
  // ...but never on 127.0.0.1, as kube-proxy's nftables mode.
  Seen s = Run(1, "tcp", "127.0.0.1", kNodePort, 3);
  EXPECT_EQ(s.ok, 0);
  EXPECT_EQ(s.errors["ECONNREFUSED"], 3);
}

TEST_F(SocketLbTest, ClusterIpFromTheNodesHostNamespace) {
  for (int n : {1, 2}) {
    Seen s = Run(n, "tcp", kClusterIp, 80, 30);
    EXPECT_EQ(s.ok, 30) << "node " << n;
    EXPECT_GT(s.servers["web-a"], 0) << "node " << n;
    EXPECT_GT(s.servers["web-b"], 0) << "node " << n;
    EXPECT_EQ(s.peers, std::set<std::string>{absl::StrCat(kClusterIp, ":80")}) << "node " << n;
    Seen u = Run(n, "udp", kClusterIp, 53, 10);
    EXPECT_EQ(u.ok, 10) << "node " << n;
    EXPECT_EQ(u.peers, std::set<std::string>{absl::StrCat(kClusterIp, ":53")}) << "node " << n;
  }
}

TEST_F(SocketLbTest, ExternalTrafficPolicyLocalNodePortFromTheNodeUsesEveryBackend) {
  // Only web-a (node 1) is left, and the Service is externalTrafficPolicy Local: node 2 has no
  // local backend, so outside clients get nothing through node 2 ...
  cluster_->WriteManifest("web.yaml", ServiceManifest(/*local=*/true));
  cluster_->WriteManifest("web-slice.yaml", SliceManifest(/*with_b=*/false));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool dropped = false;
  while (!dropped && std::chrono::steady_clock::now() < deadline)
    dropped = TcpHello(cluster_->client_netns(), cluster_->node(2).address, kNodePort, 300).empty();
  ASSERT_TRUE(dropped) << "node 2 kept serving outside clients under externalTrafficPolicy Local";
  // ... but node 2 itself reaches the NodePort on its own address, like kube-proxy's LOCAL
  // source traffic, and lands on web-a on node 1.
  Seen s = RunUntil(2, "tcp", cluster_->node(2).address, kNodePort, 10,
                    [](const Seen& s) { return s.ok == 10 && s.servers.size() == 1; });
  EXPECT_EQ(s.servers["web-a"], 10);
  EXPECT_EQ(s.peers, std::set<std::string>{Frontend(2, kNodePort)});
}

TEST_F(SocketLbTest, FrontendWithoutBackendsRefusesTheConnectionAndCountsIt) {
  cluster_->WriteManifest(
      "empty.yaml",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: empty\n  namespace: default\n"
      "spec:\n  clusterIP: 10.96.0.60\n  ports:\n  - port: 80\n    protocol: TCP\n");
  const uint64_t before = SockMetric(1, SKIFF_DROP_NO_SERVICE_BACKEND);
  // Before the agent applies it, the ClusterIP hits the node's blackhole route (another error).
  Seen s = RunUntil(1, "tcp", "10.96.0.60", 80, 1,
                    [](const Seen& s) { return s.errors.count("ECONNREFUSED") > 0; });
  EXPECT_EQ(s.errors["ECONNREFUSED"], 1);
  EXPECT_GT(SockMetric(1, SKIFF_DROP_NO_SERVICE_BACKEND), before);
}

TEST_F(SocketLbTest, AgentRestartKeepsTranslatingAndReplacesThePrograms) {
  cluster_->node(1).StopAgent(SIGKILL);
  // The links are pinned: node-originated connections are still translated without the agent.
  Seen down = Run(1, "tcp", cluster_->node(1).address, kNodePort, 10);
  EXPECT_EQ(down.ok, 10);
  EXPECT_EQ(down.peers, std::set<std::string>{Frontend(1, kNodePort)});
  ASSERT_TRUE(StartAgent(1, AgentFlags(1)).ok());
  ASSERT_TRUE(WaitForLog(1, "socket LB enabled", 2)) << cluster_->node(1).Log();
  EXPECT_NE(cluster_->node(1).Log().find("socket LB: replaced sock_connect4"), std::string::npos);
  Seen up = Run(1, "tcp", cluster_->node(1).address, kNodePort, 10);
  EXPECT_EQ(up.ok, 10);
}

// A client pod on node 1, in the agent's cgroup (as every pod is under the host's root cgroup).
class SocketLbPodTest : public SocketLbTest {
 protected:
  void BeforeAgents() override {
    SocketLbTest::BeforeAgents();
    auto pod = cluster_->AddPod(1, "cli", "10.244.1.77");
    ASSERT_TRUE(pod.ok()) << pod.status();
    pod_ = *pod;
  }
  Pod pod_;
};

TEST_F(SocketLbPodTest, PodsKeepTheTcPathByDefault) {
  const uint64_t before = SockMetric(1, 0);
  Seen s = Run(1, "tcp", kClusterIp, 80, 20, pod_.netns);
  EXPECT_EQ(s.ok, 20);
  EXPECT_EQ(s.peers, std::set<std::string>{absl::StrCat(kClusterIp, ":80")});
  // Translated by from_container per packet, not at connect(): no socket translation counted.
  EXPECT_EQ(SockMetric(1, 0), before);
}

// --socket-lb-scope=all: pods' connect()/sendmsg() are translated too (Cilium's default).
class SocketLbAllTest : public SocketLbPodTest {
 protected:
  std::vector<std::string> AgentFlags(int node) const override {
    std::vector<std::string> f = SocketLbPodTest::AgentFlags(node);
    f.push_back("--socket-lb-scope=all");
    return f;
  }
};

TEST_F(SocketLbAllTest, PodConnectionsToAClusterIpAreTranslatedAtTheSocket) {
  const uint64_t before = SockMetric(1, 0);
  Seen s = Run(1, "tcp", kClusterIp, 80, 30, pod_.netns);
  EXPECT_EQ(s.ok, 30);
  EXPECT_GT(s.servers["web-a"], 0);
  EXPECT_GT(s.servers["web-b"], 0);
  // The application still sees the ClusterIP, though its socket talks to the backend.
  EXPECT_EQ(s.peers, std::set<std::string>{absl::StrCat(kClusterIp, ":80")});
  EXPECT_GE(SockMetric(1, 0), before + 30);
  // UDP: sendto() translated, replies shown from the frontend by recvmsg.
  Seen u = Run(1, "udp", kClusterIp, 53, 10, pod_.netns);
  EXPECT_EQ(u.ok, 10);
  EXPECT_EQ(u.peers, std::set<std::string>{absl::StrCat(kClusterIp, ":53")});
  EXPECT_GE(SockMetric(1, 0), before + 40);
  const std::string status = Status(1);
  EXPECT_NE(status.find("sock_connect4 (host+pods)"), std::string::npos) << status;
  // Each translated connect() is one flow event (direction sock), as Hubble's SOCK events; the
  // reader drains the ring every 20 ms, so poll.
  bool seen = false;
  for (int i = 0; i < 50 && !seen; i++) {
    auto flows = ShOut(absl::StrCat(SKIFF_AGENTCTL_PATH, " --socket ",
                                    cluster_->node(1).api_socket(), " flows --last 200 -o json"));
    ASSERT_TRUE(flows.ok()) << flows.status();
    for (absl::string_view line : absl::StrSplit(*flows, '\n', absl::SkipEmpty()))
      if (absl::StrContains(line, "\"direction\":\"sock\"") &&
          absl::StrContains(line, "\"Type\":\"SOCK\"") &&
          absl::StrContains(line, "\"service\":\"default/web\"") &&
          absl::StrContains(line, absl::StrCat("\"frontend\":\"", kClusterIp, ":80\"")))
        seen = true;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(seen) << "no sock flow event for the pod's translated connections";
}

TEST_F(SocketLbAllTest, PodsToSessionAffinityFrontendsKeepTheTcPath) {
  std::string svc = ServiceManifest();
  const std::string spec = "spec:\n";
  ASSERT_NE(svc.find(spec), std::string::npos) << svc;
  svc.insert(svc.find(spec) + spec.size(), "  sessionAffinity: ClientIP\n");
  cluster_->WriteManifest("web.yaml", svc);
  // Once the agent has the affinity frontend, the pod's connections stop being counted at the
  // socket, and they all stick to one backend (the tc path's affinity by the pod's address).
  Seen s;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool tc_path = false;
  while (!tc_path && std::chrono::steady_clock::now() < deadline) {
    const uint64_t before = SockMetric(1, 0);
    s = Run(1, "tcp", kClusterIp, 80, 10, pod_.netns);
    tc_path = s.ok == 10 && SockMetric(1, 0) == before;
    if (!tc_path) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(tc_path) << "pod connections to an affinity frontend were still socket-translated";
  EXPECT_EQ(s.servers.size(), 1u);
  EXPECT_EQ(s.peers, std::set<std::string>{absl::StrCat(kClusterIp, ":80")});
  // The node's own sockets are still translated (its affinity client is the node).
  const uint64_t before = SockMetric(1, 0);
  EXPECT_EQ(Run(1, "tcp", kClusterIp, 80, 5).ok, 5);
  EXPECT_GE(SockMetric(1, 0), before + 5);
}

TEST_F(SocketLbTest, DisabledAttachesNothing) {
  const std::string cg = *cluster_->node(1).Cgroup();
  const std::string links = cluster_->node(1).bpffs_root() + "/links";
  ASSERT_TRUE(std::filesystem::exists(links));
  cluster_->node(1).StopAgent();
  ASSERT_TRUE(
      StartAgent(1, {"--devices", "eth0", "--socket-lb=disabled", "--cgroup-root", cg}).ok());
  ASSERT_TRUE(WaitForLog(1, "socket LB disabled")) << cluster_->node(1).Log();
  ASSERT_TRUE(WaitForHello(cluster_->node(1).address, kNodePort));
  // The links of the earlier run are gone, nothing is attached to the cgroup...
  EXPECT_FALSE(std::filesystem::exists(links));
  auto progs = ShOut("bpftool cgroup show " + cg);
  ASSERT_TRUE(progs.ok()) << progs.status();
  EXPECT_EQ(progs->find("sock_"), std::string::npos) << *progs;
  // ... so the node's own connection to its NodePort goes to the local stack untranslated
  // (nothing listens there), and status says why there is no socket LB.
  Seen s = Run(1, "tcp", cluster_->node(1).address, kNodePort, 3);
  EXPECT_EQ(s.errors["ECONNREFUSED"], 3);
  const std::string status = Status(1);
  EXPECT_NE(status.find("none (--socket-lb=disabled)"), std::string::npos) << status;
}

}  // namespace
}  // namespace skiff::e2e
