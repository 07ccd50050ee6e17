// North-south services on a two-node namespace cluster (tests/e2e/cluster.h): an outside
// client reaches a NodePort and an externalIP through the router; each node runs its own
// skiff-agent (node 1 with --devices eth0, node 2 auto-detecting its device from the default
// route). Backends live on both nodes, so node 1 serves one locally (DNAT) and one remotely
// (DNAT + SNAT to its address, reverse translation of the reply).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include <linux/ethtool.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "maps/metrics.h"
#include "maps/names.h"
#include "maps/nat.h"
#include "tests/e2e/cluster.h"  // NorthSouthTest
#include "tests/e2e/manifests.h"
#include "tests/e2e/topology.h"
#include "tests/harness/privileged.h"

namespace skiff::e2e {
namespace {

// A plain HTTP/1.0 GET from inside `netns`; the whole response ("" on failure).
std::string HttpGet(const std::string& netns, const std::string& ip, uint16_t port) {
  return InNetns(netns, [&]() -> std::string {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return "";
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
    std::string out;
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) {
      std::string req = "GET /healthz HTTP/1.0\r\n\r\n";
      if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
        char buf[4096];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, n);
      }
    }
    close(fd);
    return out;
  });
}

TEST_F(NorthSouthTest, NodePortReachesBackendsOnBothNodesThroughEitherNode) {
  for (int n : {1, 2}) {
    auto seen = Hellos(cluster_->node(n).address, kNodePort, 40);
    EXPECT_GT(seen["web-a"], 0) << "node " << n;
    EXPECT_GT(seen["web-b"], 0) << "node " << n;
    EXPECT_EQ(seen.count(""), 0u) << "node " << n;
  }
  // Node 2 found its device itself (no --devices): the default route's eth0.
  EXPECT_NE(cluster_->node(2).Log().find("attached from-netdev/to-netdev to eth0"),
            std::string::npos);
}

TEST_F(NorthSouthTest, UdpNodePortReachesBackendsOnBothNodes) {
  auto seen = Hellos(cluster_->node(1).address, kUdpNodePort, 40, /*udp=*/true);
  EXPECT_GT(seen["web-a"], 0);
  EXPECT_GT(seen["web-b"], 0);
  EXPECT_EQ(seen.count(""), 0u);
}

TEST_F(NorthSouthTest, ExternalIpReachesBackendsOnBothNodes) {
  auto seen = Hellos(kExternalIp, 80, 40);
  EXPECT_GT(seen["web-a"], 0);
  EXPECT_GT(seen["web-b"], 0);
  EXPECT_EQ(seen.count(""), 0u);
}

TEST_F(NorthSouthTest, LongLivedConnectionThroughRemoteBackendKeepsWorking) {
  // Open connections until one lands on the remote backend, then talk over it.
  for (int i = 0; i < 40; i++) {
    TcpStream s;
    ASSERT_TRUE(s.Open(cluster_->client_netns(), cluster_->node(1).address, kNodePort).ok());
    if (s.server() != "web-b") continue;
    for (int j = 0; j < 5; j++) EXPECT_TRUE(s.Echo(absl::StrCat("line ", j)).ok());
    return;
  }
  FAIL() << "no connection reached web-b in 40 tries";
}

// Restarting one node's agent — a crash (SIGKILL) and a clean stop — breaks no established
// external flow through that node, to its local backend (DNAT) or to the remote one (DNAT +
// SNAT): the datapath and its conntrack/NAT state stay in the kernel while the agent is away,
// and the new agent adopts them.
TEST_F(NorthSouthTest, AgentRestartKeepsEstablishedExternalFlows) {
  std::map<std::string, std::unique_ptr<TcpStream>> streams;
  for (int i = 0; i < 60 && streams.size() < 2; i++) {
    auto s = std::make_unique<TcpStream>();
    ASSERT_TRUE(s->Open(cluster_->client_netns(), cluster_->node(1).address, kNodePort).ok());
    std::string who = s->server();
    if (!streams.count(who)) streams[who] = std::move(s);
  }
  ASSERT_TRUE(streams.count("web-a") && streams.count("web-b"))
      << "no pair of connections to both backends in 60 tries";
  for (int sig : {SIGKILL, SIGTERM}) {
    cluster_->node(1).StopAgent(sig);
    for (auto& [who, s] : streams)
      EXPECT_TRUE(s->Echo(absl::StrCat("agent down after signal ", sig)).ok()) << who;
    ASSERT_TRUE(StartAgent(1, Node1Flags()).ok());
    ASSERT_TRUE(WaitForHello(cluster_->node(1).address, kNodePort))
        << "NodePort never answered after the restart (signal " << sig << ")";
    for (auto& [who, s] : streams)
      EXPECT_TRUE(s->Echo(absl::StrCat("agent back after signal ", sig)).ok()) << who;
  }
  auto seen = Hellos(cluster_->node(1).address, kNodePort, 20);
  EXPECT_EQ(seen.count(""), 0u);
}

TEST_F(NorthSouthTest, RemovedBackendStopsGettingNewConnections) {
  cluster_->WriteManifest("web-slice.yaml", SliceManifest(false));
  // Once both agents applied the change, every new connection lands on web-a.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool only_a = false;
  while (!only_a && std::chrono::steady_clock::now() < deadline) {
    auto seen = Hellos(cluster_->node(1).address, kNodePort, 10);
    only_a = seen.size() == 1 && seen.count("web-a");
    if (!only_a) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(only_a);
  auto seen = Hellos(cluster_->node(2).address, kNodePort, 30);
  EXPECT_EQ(seen["web-a"], 30);
}

TEST_F(NorthSouthTest, ExternalTrafficPolicyLocalServesOnlyTheNodesOwnBackends) {
  cluster_->WriteManifest("web.yaml", ServiceManifest(/*local=*/true));
  // Once applied, each node answers with its own pod only (no SNAT, no hop to the other node).
  for (auto [n, pod] : {std::pair<int, const char*>{1, "web-a"}, {2, "web-b"}}) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    bool only = false;
    while (!only && std::chrono::steady_clock::now() < deadline) {
      auto seen = Hellos(cluster_->node(n).address, kNodePort, 10);
      only = seen.size() == 1 && seen.count(pod);
      if (!only) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    EXPECT_TRUE(only) << "node " << n;
    EXPECT_EQ(Hellos(cluster_->node(n).address, kNodePort, 20)[pod], 20) << "node " << n;
  }
}

TEST_F(NorthSouthTest, HealthCheckNodePortAnswersLikeKubeProxy) {
  // externalTrafficPolicy Local with its only endpoint on node 1.
  cluster_->WriteManifest(
      "lb.yaml",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: lb\n  namespace: default\n"
      "spec:\n  type: LoadBalancer\n  clusterIP: 10.96.0.60\n  externalTrafficPolicy: Local\n"
      "  healthCheckNodePort: 32100\n  ports:\n  - name: http\n    port: 80\n"
      "    targetPort: 8080\n    protocol: TCP\n    nodePort: 30090\n");
  cluster_->WriteManifest("lb-slice.yaml",
                          EndpointSliceYaml("lb-1", "lb", {{.ip = "10.244.1.5", .node = "node-1"}},
                                            {{"http", 8080, "TCP"}}));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string one, two;
  while (std::chrono::steady_clock::now() < deadline) {
    one = HttpGet(cluster_->client_netns(), cluster_->node(1).address, 32100);
    two = HttpGet(cluster_->client_netns(), cluster_->node(2).address, 32100);
    if (!one.empty() && !two.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_NE(one.find("HTTP/1.1 200"), std::string::npos) << one;
  EXPECT_NE(one.find("\"localEndpoints\":1"), std::string::npos) << one;
  EXPECT_NE(one.find("\"service\":{\"namespace\":\"default\",\"name\":\"lb\"}"), std::string::npos)
      << one;
  EXPECT_NE(two.find("HTTP/1.1 503"), std::string::npos) << two;
  EXPECT_NE(two.find("\"localEndpoints\":0"), std::string::npos) << two;

  // The endpoint goes away: node 1 turns unhealthy too; the Service goes away: no listener.
  cluster_->WriteManifest("lb-slice.yaml",
                          EndpointSliceYaml("lb-1", "lb", {}, {{"http", 8080, "TCP"}}));
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline &&
         HttpGet(cluster_->client_netns(), cluster_->node(1).address, 32100).find("HTTP/1.1 503") ==
             std::string::npos)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_NE(
      HttpGet(cluster_->client_netns(), cluster_->node(1).address, 32100).find("HTTP/1.1 503"),
      std::string::npos);
  cluster_->RemoveManifest("lb.yaml");
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline &&
         !HttpGet(cluster_->client_netns(), cluster_->node(1).address, 32100).empty())
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(HttpGet(cluster_->client_netns(), cluster_->node(1).address, 32100), "");

  // A Service edited into externalTrafficPolicy Local gets its listener (the agent recomputes
  // health checks when a changed Service has a health check node port, though none was in
  // force before).
  const std::string cluster_policy =
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: lb\n  namespace: default\n"
      "spec:\n  type: LoadBalancer\n  clusterIP: 10.96.0.60\n  ports:\n  - name: http\n"
      "    port: 80\n    targetPort: 8080\n    protocol: TCP\n    nodePort: 30090\n";
  cluster_->WriteManifest("lb.yaml", cluster_policy);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(HttpGet(cluster_->client_netns(), cluster_->node(1).address, 32100), "");
  cluster_->WriteManifest("lb.yaml",
                          absl::StrReplaceAll(cluster_policy, {{"  ports:\n",
                                                                "  externalTrafficPolicy: "
                                                                "Local\n  healthCheckNodePort: "
                                                                "32100\n  ports:\n"}}));
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline &&
         HttpGet(cluster_->client_netns(), cluster_->node(1).address, 32100).empty())
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  one = HttpGet(cluster_->client_netns(), cluster_->node(1).address, 32100);
  EXPECT_NE(one.find("HTTP/1.1 503"), std::string::npos) << one;  // its slice has no endpoint
}

// externalTrafficPolicy Local and in-cluster clients (Cilium #11746): kube-proxy sends pod
// traffic to a Service's external addresses through the cluster-wide endpoints; only traffic
// from outside is kept on the node. The Service's one endpoint is on node 1. A pod on node 2
// (no local endpoint) reaches node 2's NodePort, the LoadBalancer IP and the externalIP (both
// routed to node 2) through that endpoint; the outside client, through node 2, is dropped.
TEST_F(NorthSouthTest, ExternalTrafficPolicyLocalServesPodsOnANodeWithoutLocalEndpoints) {
  constexpr char kLocalLbIp[] = "198.51.100.30";
  constexpr char kLocalExtIp[] = "203.0.113.11";
  constexpr uint16_t kLocalNodePort = 30110;
  for (const char* ip : {kLocalLbIp, kLocalExtIp})
    ASSERT_TRUE(cluster_->RouteVia(absl::StrCat(ip, "/32"), 2).ok());
  auto pod = cluster_->AddPod(2, "client", "10.244.2.9");
  ASSERT_TRUE(pod.ok()) << pod.status();
  cluster_->WriteManifest(
      "etpl.yaml",
      absl::StrCat("apiVersion: v1\nkind: Service\nmetadata:\n  name: etpl\n  namespace: default\n"
                   "spec:\n  type: LoadBalancer\n  clusterIP: 10.96.0.90\n"
                   "  externalTrafficPolicy: Local\n  externalIPs: [\"",
                   kLocalExtIp,
                   "\"]\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n"
                   "    protocol: TCP\n    nodePort: ",
                   kLocalNodePort,
                   "\nstatus:\n  loadBalancer:\n    ingress:\n    - ip: ", kLocalLbIp, "\n"));
  cluster_->WriteManifest(
      "etpl-slice.yaml",
      EndpointSliceYaml("etpl-1", "etpl", {{.ip = "10.244.1.5", .node = "node-1"}},
                        {{"http", 8080, "TCP"}}));
  // Applied on node 1 once the outside client gets through it; on node 2 once the pod does.
  ASSERT_TRUE(WaitForHello(cluster_->node(1).address, kLocalNodePort));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline &&
         TcpHello(pod->netns, cluster_->node(2).address, kLocalNodePort, 500).empty())
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (auto [ip, port] :
       {std::pair<std::string, uint16_t>{cluster_->node(2).address, kLocalNodePort},
        {kLocalLbIp, 80},
        {kLocalExtIp, 80}}) {
    for (int i = 0; i < 10; i++) {
      std::string err;
      EXPECT_EQ(TcpHello(pod->netns, ip, port, 2000, &err), "web-a")
          << "pod on node 2 -> " << ip << ":" << port << " attempt " << i << ": " << err;
    }
  }
  // From outside, node 2 has no endpoint to offer: dropped, whichever address.
  for (auto [ip, port] :
       {std::pair<std::string, uint16_t>{cluster_->node(2).address, kLocalNodePort},
        {kLocalLbIp, 80},
        {kLocalExtIp, 80}}) {
    std::string err;
    EXPECT_EQ(TcpHello(cluster_->client_netns(), ip, port, 1000, &err), "")
        << "outside client -> " << ip << ":" << port << " was served through node 2";
  }
}

// loadBalancerSourceRanges: a LoadBalancer ingress IP routed to node 1 admits the client
// while a range contains it; once the range excludes it, new connections fail, an open one
// goes on and the Service's NodePort stays open (only the LoadBalancer IP is restricted).
constexpr char kLbIp[] = "198.51.100.20";

std::string SourceRangeManifest(const std::string& range) {
  return absl::StrCat(
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: lbsr\n  namespace: default\n"
      "spec:\n  type: LoadBalancer\n  clusterIP: 10.96.0.70\n"
      "  loadBalancerSourceRanges: [\"",
      range,
      "\"]\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n    protocol: TCP\n"
      "    nodePort: 30100\nstatus:\n  loadBalancer:\n    ingress:\n    - ip: ",
      kLbIp, "\n");
}

TEST_F(NorthSouthTest, LoadBalancerSourceRangesAdmitOnlyClientsInside) {
  ASSERT_TRUE(cluster_->RouteVia(absl::StrCat(kLbIp, "/32"), 1).ok());
  cluster_->WriteManifest("lbsr.yaml", SourceRangeManifest("192.168.100.0/24"));
  cluster_->WriteManifest("lbsr-slice.yaml",
                          EndpointSliceYaml("lbsr-1", "lbsr",
                                            {{.ip = "10.244.1.5", .node = "node-1"},
                                             {.ip = "10.244.2.5", .node = "node-2"}},
                                            {{"http", 8080, "TCP"}}));
  ASSERT_TRUE(WaitForHello(kLbIp, 80)) << "the LoadBalancer IP never answered inside its range";
  auto seen = Hellos(kLbIp, 80, 20);
  EXPECT_EQ(seen.count(""), 0u);
  TcpStream open;
  ASSERT_TRUE(open.Open(cluster_->client_netns(), kLbIp, 80).ok());

  // The range no longer contains the client: new connections are dropped on node 1.
  cluster_->WriteManifest("lbsr.yaml", SourceRangeManifest("10.0.0.0/8"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool refused = false;
  while (!refused && std::chrono::steady_clock::now() < deadline) {
    refused = TcpHello(cluster_->client_netns(), kLbIp, 80, 500).empty();
    if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(refused) << "new connections still reach the LoadBalancer IP from outside";
  for (int i = 0; i < 5; i++)
    EXPECT_EQ(TcpHello(cluster_->client_netns(), kLbIp, 80, 1000), "") << "attempt " << i;
  // The established connection keeps going; the Service's NodePort is not restricted.
  EXPECT_TRUE(open.Echo("still here").ok());
  EXPECT_NE(TcpHello(cluster_->client_netns(), cluster_->node(1).address, 30100, 2000), "");

  // Back inside: admitted again.
  cluster_->WriteManifest("lbsr.yaml", SourceRangeManifest("192.168.100.2/32"));
  EXPECT_TRUE(WaitForHello(kLbIp, 80));
}

// A pod isolated for ingress (a NetworkPolicy selecting it with no ingress rule) reaches a
// ClusterIP whose only backend is on the other node: the reply comes back through node 1's
// device, is reverse-NATed there (source: the ClusterIP) and must still be let in as the
// reply of the pod's own connection. Meanwhile a new connection to the pod is denied.
TEST_F(NorthSouthTest, IngressIsolatedPodGetsRepliesFromARemoteBackendThroughClusterIp) {
  auto client = cluster_->AddPod(1, "client", "10.244.1.9");
  ASSERT_TRUE(client.ok()) << client.status();
  PodServer client_server(*client, {8080}, {});
  ASSERT_TRUE(client_server.status().ok()) << client_server.status();
  cluster_->WriteManifest("remote.yaml",
                          ServiceYaml("remote", "10.96.0.61", {{"http", 80, "8080", "TCP"}}));
  cluster_->WriteManifest(
      "remote-slice.yaml",
      EndpointSliceYaml("remote-1", "remote", {{.ip = "10.244.2.5", .node = "node-2"}},
                        {{"http", 8080, "TCP"}}));
  // Without any policy first: the pod reaches the remote backend through the ClusterIP.
  bool reached = false;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!reached && std::chrono::steady_clock::now() < until) {
    reached = TcpHello(client->netns, "10.96.0.61", 80, 1000) == "web-b";
    if (!reached) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(reached) << "the ClusterIP never answered the pod (no policy yet)";
  // Pods as the cluster knows them: once a policy exists, a pod without one is unreachable.
  auto pod_yaml = [](const std::string& name, const std::string& app, const std::string& ip,
                     int node) {
    return absl::StrCat("apiVersion: v1\nkind: Pod\nmetadata:\n  name: ", name,
                        "\n  namespace: default\n  labels:\n    app: ", app,
                        "\nspec:\n  nodeName: node-", node,
                        "\n  containers:\n  - name: c\nstatus:\n  phase: Running\n  podIP: ", ip,
                        "\n  podIPs:\n  - ip: ", ip, "\n");
  };
  cluster_->WriteManifest("pods.yaml",
                          absl::StrCat(pod_yaml("client", "client", client->ip, 1), "---\n",
                                       pod_yaml("web-a", "web", pods_[0].ip, 1), "---\n",
                                       pod_yaml("web-b", "web", pods_[1].ip, 2)));
  cluster_->WriteManifest(
      "client-deny.yaml",
      "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: client-deny\n"
      "  namespace: default\nspec:\n  podSelector:\n    matchLabels:\n      app: client\n"
      "  policyTypes: [Ingress]\n");
  // The policy is in force once web-b (node 2) can no longer open a connection to the pod.
  const Pod& web_b = pods_[1];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool denied = false;
  while (!denied && std::chrono::steady_clock::now() < deadline) {
    denied = TcpHello(web_b.netns, client->ip, 8080, 500).empty();
    if (!denied) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(denied) << "the ingress policy never took effect on the client pod";
  for (int i = 0; i < 10; i++) {
    std::string err;
    EXPECT_EQ(TcpHello(client->netns, "10.96.0.61", 80, 2000, &err), "web-b")
        << "attempt " << i << ": " << err;
  }
}

// --xdp=native on node 1's eth0 (a veth): NodePort flows to the backend on node 2 are
// translated in XDP both ways. What veth needs for that (docs/north-south.md, "XDP"): the
// peer (the router's rn1) has an XDP program so XDP_TX frames are received, and the senders
// (the client, the remote pod) put complete TCP/UDP checksums in their frames (tx checksum
// offload off), since XDP cannot tell a checksum left to offload from a complete one.
class NorthSouthXdpTest : public NorthSouthTest {
 protected:
  void BeforeAgents() override {
    auto st = AttachXdpPass(cluster_->router_netns(), "rn1");
    ASSERT_TRUE(st.ok()) << st;
    ASSERT_TRUE(SetEthtool(cluster_->client_netns(), "eth0", ETHTOOL_STXCSUM, false).ok());
    for (const Pod& p : pods_)
      ASSERT_TRUE(SetEthtool(p.netns, "eth0", ETHTOOL_STXCSUM, false).ok()) << p.name;
  }
  std::vector<std::string> Node1Flags() const override {
    return {"--devices", "eth0", "--xdp", "native"};
  }

  // Packets node 1's XDP program translated and sent (direction xdp, forwarded).
  uint64_t XdpForwarded() { return cluster_->node(1).DatapathPackets(SKIFF_DIR_XDP); }
};

TEST_F(NorthSouthXdpTest, NodePortToTheRemoteBackendGoesThroughXdp) {
  EXPECT_NE(cluster_->node(1).Log().find("XDP native on eth0"), std::string::npos);
  const uint64_t before = XdpForwarded();
  auto seen = Hellos(cluster_->node(1).address, kNodePort, 40);
  EXPECT_GT(seen["web-a"], 0);
  EXPECT_GT(seen["web-b"], 0);
  EXPECT_EQ(seen.count(""), 0u);
  // Each web-b connection: at least SYN, SYN-ACK, ACK, request and answer through XDP.
  EXPECT_GE(XdpForwarded() - before, 5u * seen["web-b"]);
  // A long-lived flow keeps working when the agent restarts with XDP off: tc takes it over.
  for (int i = 0; i < 40; i++) {
    TcpStream s;
    ASSERT_TRUE(s.Open(cluster_->client_netns(), cluster_->node(1).address, kNodePort).ok());
    if (s.server() != "web-b") continue;
    EXPECT_TRUE(s.Echo("through xdp").ok());
    cluster_->node(1).StopAgent();
    ASSERT_TRUE(StartAgent(1, {"--devices", "eth0", "--xdp", "disabled"}).ok());
    for (int w = 0;
         w < 300 && cluster_->node(1).Log().find("XDP disabled on eth0") == std::string::npos; w++)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_NE(cluster_->node(1).Log().find("XDP disabled on eth0"), std::string::npos);
    const uint64_t off = XdpForwarded();
    for (int j = 0; j < 3; j++) EXPECT_TRUE(s.Echo(absl::StrCat("through tc ", j)).ok());
    EXPECT_EQ(XdpForwarded(), off);
    return;
  }
  FAIL() << "no connection reached web-b in 40 tries";
}

// The conntrack GC on the SNAT map (docs/datapath.md "Conntrack GC"): with a sweep every
// second, a live SNATed flow keeps its NAT entries (the GC finds its conntrack reply entry),
// while both entries of a dead flow (no conntrack entry left) go.
class NorthSouthGcTest : public NorthSouthTest {
 protected:
  std::vector<std::string> Node1Flags() const override {
    return {"--devices", "eth0", "--ct-gc-interval", "1"};
  }
};

TEST_F(NorthSouthGcTest, KeepsLiveSnatFlowsAndCollectsDeadOnes) {
  std::unique_ptr<TcpStream> remote;  // through node 1 to web-b on node 2: SNATed
  for (int i = 0; i < 40 && !remote; i++) {
    auto s = std::make_unique<TcpStream>();
    ASSERT_TRUE(s->Open(cluster_->client_netns(), cluster_->node(1).address, kNodePort).ok());
    if (s->server() == "web-b") remote = std::move(s);
  }
  ASSERT_TRUE(remote) << "no connection reached web-b in 40 tries";
  ASSERT_TRUE(remote->Echo("before the sweeps").ok());

  const std::string pin = cluster_->node(1).bpffs_root() + "/" + SKIFF_STR(SKIFF_MAP_NAT4);
  int fd = bpf_obj_get(pin.c_str());
  ASSERT_GE(fd, 0) << pin << ": " << strerror(errno);
  // A dead flow 198.51.100.7:40000 -> web-b, SNATed to node 1 port 61999: its entries, and no
  // conntrack entry.
  skiff_nat4_key in{}, out{};
  in.saddr = inet_addr("10.244.2.5");
  in.daddr = inet_addr(cluster_->node(1).address.c_str());
  in.sport = htons(8080);
  in.dport = htons(61999);
  in.proto = IPPROTO_TCP;
  in.dir = SKIFF_NAT_IN;
  out.saddr = inet_addr("198.51.100.7");
  out.daddr = in.saddr;
  out.sport = htons(40000);
  out.dport = htons(8080);
  out.proto = IPPROTO_TCP;
  out.dir = SKIFF_NAT_OUT;
  skiff_nat4_entry to_client{}, to_node{};
  to_client.to_addr = out.saddr;
  to_client.to_port = out.sport;
  to_node.to_addr = in.daddr;
  to_node.to_port = in.dport;
  ASSERT_EQ(bpf_map_update_elem(fd, &in, &to_client, BPF_ANY), 0) << strerror(errno);
  ASSERT_EQ(bpf_map_update_elem(fd, &out, &to_node, BPF_ANY), 0) << strerror(errno);
  auto present = [&](const skiff_nat4_key& k) {
    skiff_nat4_entry e{};
    return bpf_map_lookup_elem(fd, &k, &e) == 0;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((present(in) || present(out)) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(present(in));
  EXPECT_FALSE(present(out));
  // More sweeps; the live flow has kept its entries: a lost OUT entry would send it out on
  // another port (the backend answers with an RST), a lost IN entry would strand its replies.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  for (int j = 0; j < 3; j++) EXPECT_TRUE(remote->Echo(absl::StrCat("after sweeps ", j)).ok());
  skiff_nat4_key k{}, next{};
  int live = 0;
  for (bool first = true; bpf_map_get_next_key(fd, first ? nullptr : &k, &next) == 0;
       first = false, k = next)
    live++;
  EXPECT_GE(live, 2) << "the live flow's IN and OUT entries";
  close(fd);
  // Swept with the other maps, and logged (a sweep that deleted something logs every map).
  const std::string log = cluster_->node(1).Log();
  EXPECT_NE(log.find("conntrack GC: deleted"), std::string::npos) << log;
  EXPECT_NE(log.find("skiff_nat4_v1 "), std::string::npos) << log;
}

}  // namespace
}  // namespace skiff::e2e
