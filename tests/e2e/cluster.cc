#include "tests/e2e/cluster.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <bpf/bpf.h>

#include "absl/strings/str_cat.h"
#include "agent/loader/socket_lb.h"
#include "maps/map.h"
#include "maps/metrics.h"
#include "maps/names.h"
#include "tests/e2e/agent_env.h"
#include "tests/e2e/manifests.h"
#include "tests/harness/privileged.h"

namespace skiff::e2e {
namespace {

// Kills whatever still runs in a test cgroup (cgroup.kill, 5.14+), then removes it.
void RemoveCgroup(const std::string& dir) {
  if (dir.empty() || !std::filesystem::exists(dir)) return;
  if (std::filesystem::exists(dir + "/cgroup.kill")) std::ofstream(dir + "/cgroup.kill") << "1";
  for (int i = 0; i < 50; i++) {
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::cerr << "could not remove test cgroup " << dir << ": " << std::strerror(errno) << "\n";
}

}  // namespace

absl::StatusOr<std::string> ClusterNode::Cgroup() {
  if (!cgroup_.empty()) return cgroup_;
  if (cgroup_parent_.empty())
    return absl::FailedPreconditionError("no cgroup2 filesystem mounted: socket LB tests need one");
  std::error_code ec;
  std::filesystem::create_directories(cgroup_parent_ + "/" + name, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("creating test cgroup ", cgroup_parent_, "/", name, ": ", ec.message()));
  cgroup_ = cgroup_parent_ + "/" + name;
  return cgroup_;
}

absl::StatusOr<std::vector<std::string>> ClusterNode::SocketLbFlags() {
  auto cg = Cgroup();
  if (!cg.ok()) return cg.status();
  return std::vector<std::string>{"--socket-lb=enabled", "--cgroup-root", *cg};
}

absl::StatusOr<std::string> ClusterNode::HostCommand(const std::string& cmd) {
  return NetnsCommand(node->netns(), cmd);
}

absl::StatusOr<std::string> ClusterNode::NetnsCommand(const std::string& netns,
                                                      const std::string& cmd) {
  auto cg = Cgroup();
  if (!cg.ok()) return cg.status();
  return absl::StrCat("sh -c 'echo $$ > ", *cg, "/cgroup.procs && exec nsenter --net=/run/netns/",
                      netns, " -- ", cmd, "'");
}

absl::Status ClusterNode::StartAgent(const std::string& agent_path,
                                     const std::vector<std::string>& extra) {
  agent_path_ = agent_path;
  std::vector<std::string> args = {agent_path,
                                   "--manifests",
                                   (dir_ / "manifests").string(),
                                   "--node-name",
                                   name,
                                   "--endpoint-ifaces",
                                   node->IfaceGlob(),
                                   "--bpffs-root",
                                   bpffs_root_,
                                   "--api-socket",
                                   (dir_ / "agent.sock").string(),
                                   "--metrics-listen",
                                   "",
                                   "--healthz-listen",
                                   "",
                                   "--log-level",
                                   "debug"};
  args.insert(args.end(), extra.begin(), extra.end());
  agent_ = std::make_unique<AgentProcess>(args);
  return agent_->Start(node->netns(), (dir_ / "agent.log").string());
}

void ClusterNode::StopAgent(int sig) {
  if (!agent_) return;
  if (agent_->running()) {
    agent_->Kill(sig);
    agent_->Wait();
  }
  agent_.reset();
}

void ClusterNode::WriteManifest(const std::string& file, const std::string& contents) const {
  WriteFileAtomically((dir_ / "manifests" / file).string(), contents);
}

void ClusterNode::RemoveManifest(const std::string& file) const {
  std::filesystem::remove(dir_ / "manifests" / file);
}

std::string ClusterNode::Log() const {
  std::ifstream in(dir_ / "agent.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint64_t ClusterNode::DatapathPackets(uint32_t direction, int code) const {
  return e2e::DatapathPackets(bpffs_root_, direction, code);
}

ClusterNode::~ClusterNode() {
  StopAgent();
  if (node && !agent_path_.empty()) {
    // Detach every Skiff program of this node and remove its pins, inside its namespace.
    Sh("nsenter --net=/run/netns/" + node->netns() + " -- " + agent_path_ +
       " --cleanup --bpffs-root " + bpffs_root_ + " >/dev/null 2>&1")
        .IgnoreError();
  }
  if (!bpffs_root_.empty()) std::filesystem::remove_all(bpffs_root_);
  RemoveCgroup(cgroup_);
  node.reset();
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Create(int nodes) {
  std::unique_ptr<Cluster> c(new Cluster());
  c->prefix_ = UniqueName("ns");
  c->router_ = "skrt" + c->prefix_;
  c->client_ = "skcl" + c->prefix_;
  // Each node's agent gets a cgroup of its own under this directory when a test asks
  // (ClusterNode::Cgroup); never the machine's root cgroup.
  if (auto mount = loader::DefaultCgroupRoot(); mount.ok())
    c->cgroup_parent_ = absl::StrCat(*mount, "/skiff-test-", c->prefix_);
  for (const std::string& ns : {c->router_, c->client_})
    if (auto st = Sh("ip netns add " + ns); !st.ok()) return st;
  const std::string r = "ip -n " + c->router_ + " ";
  const std::string cl = "ip -n " + c->client_ + " ";
  const std::string rx = "ip netns exec " + c->router_ + " ";
  for (const std::string& cmd : {
           r + "link set lo up",
           cl + "link set lo up",
           rx + "sysctl -qw net.ipv4.ip_forward=1",
           rx + "sysctl -qw net.ipv4.conf.all.rp_filter=0",
           rx + "sysctl -qw net.ipv4.conf.default.rp_filter=0",
           r + "link add rcl type veth peer name eth0 netns " + c->client_,
           r + "addr add 192.168.100.1/24 dev rcl",
           r + "link set rcl up",
           cl + "addr add " + std::string(kClientIp) + "/24 dev eth0",
           cl + "link set eth0 up",
           cl + "route add default via 192.168.100.1",
       }) {
    if (auto st = Sh(cmd); !st.ok()) return st;
  }
  for (int i = 1; i <= nodes; i++) {
    auto cn = std::make_unique<ClusterNode>();
    cn->index = i;
    cn->name = absl::StrCat("node-", i);
    cn->address = absl::StrCat("192.168.", i, ".10");
    cn->pod_cidr = absl::StrCat("10.244.", i, ".0/24");
    cn->cgroup_parent_ = c->cgroup_parent_;
    cn->dir_ =
        std::filesystem::temp_directory_path() / absl::StrCat("skiff-ns-", c->prefix_, "-", i);
    std::filesystem::create_directories(cn->dir_ / "manifests");
    cn->bpffs_root_ = absl::StrCat("/sys/fs/bpf/skiff-ns-", c->prefix_, "-", i);
    auto node = Node::Create();
    if (!node.ok()) return node.status();
    cn->node = std::move(*node);
    const std::string n = "ip -n " + cn->node->netns() + " ";
    const std::string rdev = absl::StrCat("rn", i);
    for (const std::string& cmd : {
             r + "link add " + rdev + " type veth peer name eth0 netns " + cn->node->netns(),
             r + absl::StrCat("addr add 192.168.", i, ".1/24 dev ", rdev),
             r + "link set " + rdev + " up",
             n + "addr add " + cn->address + "/24 dev eth0",
             n + "link set eth0 up",
             n + absl::StrCat("route add default via 192.168.", i, ".1"),
             r + "route add " + cn->pod_cidr + " via " + cn->address,
             // Forwarded NodePort traffic leaves through the device it came in on.
             "ip netns exec " + cn->node->netns() + " sysctl -qw net.ipv4.conf.eth0.rp_filter=0",
             "ip netns exec " + cn->node->netns() +
                 " sysctl -qw net.ipv4.conf.all.send_redirects=0",
         }) {
      if (auto st = Sh(cmd); !st.ok()) return st;
    }
    c->nodes_.push_back(std::move(cn));
  }
  return c;
}

absl::StatusOr<Pod> Cluster::AddPod(int index, const std::string& name, const std::string& ip) {
  return node(index).node->AddPod(name, ip);
}

absl::Status Cluster::RouteVia(const std::string& prefix, int index) {
  return Sh("ip -n " + router_ + " route replace " + prefix + " via " + node(index).address);
}

void Cluster::WriteManifest(const std::string& file, const std::string& contents) {
  for (auto& n : nodes_) n->WriteManifest(file, contents);
}

void Cluster::RemoveManifest(const std::string& file) {
  for (auto& n : nodes_) n->RemoveManifest(file);
}

Cluster::~Cluster() {
  nodes_.clear();  // agents, their cgroups and node namespaces first
  RemoveCgroup(cgroup_parent_);
  for (const std::string& ns : {client_, router_})
    if (!ns.empty()) Sh("ip netns del " + ns).IgnoreError();
}

void ClusterTest::SetUp() {
  SKIFF_REQUIRE_PRIVILEGED();
  auto c = Cluster::Create(Nodes());
  ASSERT_TRUE(c.ok()) << c.status();
  cluster_ = std::move(*c);
  for (const ClusterPod& p : Pods()) {
    auto pod = cluster_->AddPod(p.node, p.name, p.ip);
    ASSERT_TRUE(pod.ok()) << pod.status();
    servers_.push_back(std::make_unique<PodServer>(*pod, p.tcp_ports, p.udp_ports));
    ASSERT_TRUE(servers_.back()->status().ok()) << p.name << ": " << servers_.back()->status();
    pods_.push_back(*pod);
  }
  ASSERT_NO_FATAL_FAILURE(WriteManifests());
  ASSERT_NO_FATAL_FAILURE(BeforeAgents());
  for (int n = 1; n <= Nodes(); n++) {
    auto st = StartAgent(n, AgentFlags(n));
    ASSERT_TRUE(st.ok()) << "agent of node " << n << ": " << st;
  }
  ASSERT_NO_FATAL_FAILURE(WaitUntilReady());
}

void ClusterTest::TearDown() {
  if (HasFailure() && cluster_) {
    for (int n = 1; n <= Nodes(); n++)
      std::cerr << "---- agent log node-" << n << " ----\n" << cluster_->node(n).Log();
  }
  servers_.clear();
  cluster_.reset();
}

absl::Status ClusterTest::StartAgent(int n, const std::vector<std::string>& flags) {
  return cluster_->node(n).StartAgent(SKIFF_AGENT_PATH, flags);
}

bool ClusterTest::WaitForHello(const std::string& ip, uint16_t port, int seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!TcpHello(cluster_->client_netns(), ip, port, 500).empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string NorthSouthTest::ServiceManifest(bool local) {
  return absl::StrCat(
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\n"
      "spec:\n  type: NodePort\n  clusterIP: ",
      kClusterIp, "\n", local ? "  externalTrafficPolicy: Local\n" : "", "  externalIPs: [\"",
      kExternalIp,
      "\"]\n  ports:\n"
      "  - name: http\n    port: 80\n    targetPort: 8080\n    protocol: TCP\n    nodePort: ",
      kNodePort,
      "\n  - name: dns\n    port: 53\n    targetPort: 8080\n    protocol: UDP\n    nodePort: ",
      kUdpNodePort, "\n");
}

std::string NorthSouthTest::SliceManifest(bool with_b) {
  std::vector<EndpointSpec> eps = {{.ip = "10.244.1.5", .node = "node-1"}};
  if (with_b) eps.push_back({.ip = "10.244.2.5", .node = "node-2"});
  return EndpointSliceYaml("web-1", "web", eps, {{"http", 8080, "TCP"}, {"dns", 8080, "UDP"}});
}

std::vector<ClusterPod> NorthSouthTest::Pods() const {
  return {{.name = "web-a", .ip = "10.244.1.5", .node = 1, .udp_ports = {8080}},
          {.name = "web-b", .ip = "10.244.2.5", .node = 2, .udp_ports = {8080}}};
}

void NorthSouthTest::WriteManifests() {
  ASSERT_TRUE(cluster_->RouteVia(absl::StrCat(kExternalIp, "/32"), 1).ok());
  cluster_->WriteManifest("web.yaml", ServiceManifest());
  cluster_->WriteManifest("web-slice.yaml", SliceManifest(true));
}

void NorthSouthTest::WaitUntilReady() {
  for (int n : {1, 2})
    ASSERT_TRUE(WaitForHello(cluster_->node(n).address, kNodePort))
        << "NodePort on node " << n << " never answered";
}

std::map<std::string, int> NorthSouthTest::Hellos(const std::string& ip, uint16_t port, int n,
                                                  bool udp) {
  std::map<std::string, int> seen;
  for (int i = 0; i < n; i++) {
    std::string err;
    std::string who = udp ? UdpHello(cluster_->client_netns(), ip, port, 2000, &err)
                          : TcpHello(cluster_->client_netns(), ip, port, 2000, &err);
    if (who.empty()) ADD_FAILURE() << ip << ":" << port << " attempt " << i << ": " << err;
    seen[who]++;
  }
  return seen;
}

}  // namespace skiff::e2e
