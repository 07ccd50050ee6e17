// A multi-node cluster of network namespaces for north-south tests:
//
//   client (192.168.100.2) ── router ──┬── node 1: eth0 192.168.1.10, pods 10.244.1.0/24
//                                      └── node 2: eth0 192.168.2.10, pods 10.244.2.0/24
//
// Each node is a tests/e2e Node (pods wired like a CNI, blackhole service CIDR) plus a device
// `eth0` towards the router and a default route via the router. The router routes each pod
// CIDR to its node, and any extra prefixes given to RouteVia (externalIPs, LoadBalancer IPs)
// to the node chosen. Names are unique per run; the destructor removes everything, agents
// first (their --cleanup detaches and unpins in the node namespace).
#pragma once

#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/e2e/topology.h"

namespace skiff::e2e {

class ClusterNode {
 public:
  int index = 0;         // 1-based
  std::string name;      // Kubernetes node name: "node-1", ...
  std::string address;   // eth0's address
  std::string pod_cidr;  // 10.244.<index>.0/24
  std::unique_ptr<Node> node;

  // The agent of this node: its own manifest directory, bpffs root, API socket; metrics and
  // health listeners off. `extra` is appended (e.g. {"--devices", "eth0"}).
  absl::Status StartAgent(const std::string& agent_path, const std::vector<std::string>& extra);
  // Stops the agent with `sig` (SIGTERM: a clean stop; SIGKILL: a crash) and waits for it.
  void StopAgent(int sig = SIGTERM);
  void WriteManifest(const std::string& file, const std::string& contents) const;
  void RemoveManifest(const std::string& file) const;
  std::string Log() const;
  const std::string& bpffs_root() const { return bpffs_root_; }
  // Packets this node's datapath counted under `direction` (SKIFF_DIR_*) with outcome `code`
  // (0: passed/forwarded, else a SKIFF_DROP_* code), over all CPUs, from its pinned metrics
  // map; 0 when there is none.
  uint64_t DatapathPackets(uint32_t direction, int code = 0) const;
  std::string api_socket() const { return (dir_ / "agent.sock").string(); }

  // This node's own cgroup v2 directory (<cgroup2 mount>/skiff-test-<unique>/node-<i>, made on
  // first use, removed with the cluster): the --cgroup-root of an agent with socket LB, so it
  // never attaches to the machine's real root cgroup. The flags that select it:
  // {"--socket-lb=enabled", "--cgroup-root", <dir>}.
  absl::StatusOr<std::string> Cgroup();
  absl::StatusOr<std::vector<std::string>> SocketLbFlags();
  // A shell command that runs `cmd` (no single quotes) as a new process of this node's host
  // network namespace inside Cgroup(): membership is per process, so it moves itself in
  // before it execs `cmd`.
  absl::StatusOr<std::string> HostCommand(const std::string& cmd);
  // The same in another network namespace (e.g. a pod's), still inside Cgroup().
  absl::StatusOr<std::string> NetnsCommand(const std::string& netns, const std::string& cmd);

  ~ClusterNode();

 private:
  friend class Cluster;
  std::filesystem::path dir_;
  std::string bpffs_root_;
  std::string agent_path_;
  std::unique_ptr<AgentProcess> agent_;
  std::string cgroup_parent_;  // the cluster's skiff-test-<unique> directory
  std::string cgroup_;         // made by Cgroup()
};

class Cluster {
 public:
  static absl::StatusOr<std::unique_ptr<Cluster>> Create(int nodes);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  ClusterNode& node(int index) { return *nodes_.at(index - 1); }
  const std::string& client_netns() const { return client_; }
  // The router; its device towards node i is "rn<i>".
  const std::string& router_netns() const { return router_; }
  static constexpr char kClientIp[] = "192.168.100.2";
  // A pod on node `index`. (accept_local=1 on its host-side veth, which a local backend's
  // NodePort replies need, is set by the agent: docs/north-south.md.)
  absl::StatusOr<Pod> AddPod(int index, const std::string& name, const std::string& ip);
  // The router sends `prefix` (e.g. an externalIP/32) to node `index`.
  absl::Status RouteVia(const std::string& prefix, int index);
  // Writes the same manifest into every node's directory.
  void WriteManifest(const std::string& file, const std::string& contents);
  void RemoveManifest(const std::string& file);

 private:
  Cluster() = default;
  std::string prefix_;
  std::string router_;
  std::string client_;
  std::vector<std::unique_ptr<ClusterNode>> nodes_;
  std::string cgroup_parent_;  // removed after the nodes' cgroups
};

// A pod of a ClusterTest and the ports its PodServer answers on.
struct ClusterPod {
  std::string name;
  std::string ip;
  int node = 1;
  std::vector<uint16_t> tcp_ports = {8080};
  std::vector<uint16_t> udp_ports = {};
};

// The fixture of the tests on the namespace cluster. SetUp: (root required) the cluster of
// Nodes() nodes, the Pods() with their servers (pods_/servers_ in that order), WriteManifests()
// (into every node), BeforeAgents(), one agent per node with AgentFlags(node), then
// WaitUntilReady(). TearDown prints every agent's log when the test failed. Hooks may use
// ASSERT_*: a fatal failure in one stops SetUp.
class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  virtual int Nodes() const { return 2; }
  virtual std::vector<ClusterPod> Pods() const = 0;
  virtual void WriteManifests() {}
  virtual void BeforeAgents() {}
  virtual std::vector<std::string> AgentFlags(int node) const { return {}; }
  virtual void WaitUntilReady() {}

  // (Re)starts node n's agent (the agent under test) with `flags`.
  absl::Status StartAgent(int n, const std::vector<std::string>& flags);
  // True once a TCP hello from the outside client to ip:port succeeds, within `seconds`.
  bool WaitForHello(const std::string& ip, uint16_t port, int seconds = 30);

  std::unique_ptr<Cluster> cluster_;
  std::vector<std::unique_ptr<PodServer>> servers_;
  std::vector<Pod> pods_;
};

// The north-south cluster (tests/e2e/northsouth_e2e_test.cc, socket_lb_e2e_test.cc): Service
// "web" (ClusterIP kClusterIp:80, NodePort TCP kNodePort and UDP kUdpNodePort, externalIP
// kExternalIp routed to node 1) with backends web-a (node 1, 10.244.1.5) and web-b (node 2,
// 10.244.2.5), both serving TCP and UDP on 8080; ready when the NodePort answers the outside
// client through both nodes.
class NorthSouthTest : public ClusterTest {
 protected:
  static constexpr char kExternalIp[] = "203.0.113.10";
  static constexpr char kClusterIp[] = "10.96.0.50";
  static constexpr uint16_t kNodePort = 30080;
  static constexpr uint16_t kUdpNodePort = 30053;
  static std::string ServiceManifest(bool local = false);
  static std::string SliceManifest(bool with_b);

  std::vector<ClusterPod> Pods() const override;
  void WriteManifests() override;
  std::vector<std::string> AgentFlags(int node) const override {
    return node == 1 ? Node1Flags() : std::vector<std::string>{};
  }
  virtual std::vector<std::string> Node1Flags() const { return {"--devices", "eth0"}; }
  void WaitUntilReady() override;

  // Answers of `n` fresh connections from the outside client; failures counted under "".
  std::map<std::string, int> Hellos(const std::string& ip, uint16_t port, int n, bool udp = false);
};

}  // namespace skiff::e2e
