// Maglev consistent hashing end to end on the two-node namespace cluster (tests/e2e/cluster.h):
// a NodePort Service annotated service.skiff.io/lb-algorithm: maglev with four backends (two
// per node). The outside client connects from fixed source ports through each node's
// NodePort; every connection must reach exactly the backend the Maglev table predicts for its
// 5-tuple (the agent's table code + the datapath's flow hash, computed here independently of
// the agents), again on a second round. One backend is then removed from the EndpointSlice:
// the ports that were on it move, and of the others only those the new table reassigns (a
// few percent) may; every port again lands where the new table says.
//
// Node 1's agent gets Maglev from the annotation alone (its --lb-algorithm stays random);
// node 2's runs with --lb-algorithm maglev.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <chrono>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/reconcile/maglev.h"
#include "maps/flow_hash.h"
#include "maps/lb.h"
#include "tests/e2e/cluster.h"
#include "tests/e2e/manifests.h"
#include "tests/e2e/topology.h"
#include "tests/harness/privileged.h"

namespace skiff::e2e {
namespace {

constexpr uint16_t kNodePort = 30180;
constexpr uint16_t kFirstPort = 42000;
constexpr int kPorts = 48;

struct PodDef {
  const char* name;
  const char* ip;
  int node;
};
constexpr PodDef kPods[] = {{"mg-a", "10.244.1.21", 1},
                            {"mg-b", "10.244.1.22", 1},
                            {"mg-c", "10.244.2.21", 2},
                            {"mg-d", "10.244.2.22", 2}};

__be32 Ip4(const std::string& s) {
  in_addr a{};
  inet_pton(AF_INET, s.c_str(), &a);
  return a.s_addr;
}

std::string ServiceManifest() {
  return absl::StrCat(
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: mg\n  namespace: default\n"
      "  annotations:\n    service.skiff.io/lb-algorithm: maglev\n"
      "spec:\n  type: NodePort\n  clusterIP: 10.96.0.80\n  ports:\n"
      "  - name: http\n    port: 80\n    targetPort: 8080\n    protocol: TCP\n    nodePort: ",
      kNodePort, "\n");
}

std::string SliceManifest(const std::string& without) {
  std::vector<EndpointSpec> eps;
  for (const PodDef& p : kPods)
    if (without != p.name) eps.push_back({.ip = p.ip, .node = absl::StrCat("node-", p.node)});
  return EndpointSliceYaml("mg-1", "mg", eps, {{"http", 8080, "TCP"}});
}

// What the agents' tables and the datapath's hash say: pod name per client source port for
// the NodePort on `node_ip`, with the backend `without` left out. Ids here are indexes into
// kPods; the agents' ids differ, the names (ip:port) decide.
std::map<uint16_t, std::string> Predict(const std::string& node_ip, const std::string& without) {
  std::vector<reconcile::MaglevBackend> backends;
  for (uint32_t i = 0; i < 4; i++)
    if (without != kPods[i].name) backends.push_back({absl::StrCat(kPods[i].ip, ":8080"), i});
  auto table = reconcile::MaglevTable(backends, SKIFF_MAGLEV_TABLE_SIZE_DEFAULT,
                                      SKIFF_MAGLEV_HASH_SEED_DEFAULT);
  std::map<uint16_t, std::string> out;
  for (uint16_t p = kFirstPort; p < kFirstPort + kPorts; p++) {
    uint32_t h = skiff_flow_hash4(Ip4(Cluster::kClientIp), Ip4(node_ip), htons(p), htons(kNodePort),
                                  IPPROTO_TCP, SKIFF_MAGLEV_HASH_SEED_DEFAULT);
    out[p] = kPods[table[h % SKIFF_MAGLEV_TABLE_SIZE_DEFAULT]].name;
  }
  return out;
}

class MaglevE2eTest : public ClusterTest {
 protected:
  std::vector<ClusterPod> Pods() const override {
    std::vector<ClusterPod> pods;
    for (const PodDef& p : kPods) pods.push_back({.name = p.name, .ip = p.ip, .node = p.node});
    return pods;
  }
  void WriteManifests() override {
    cluster_->WriteManifest("mg.yaml", ServiceManifest());
    cluster_->WriteManifest("mg-slice.yaml", SliceManifest(""));
  }
  std::vector<std::string> AgentFlags(int node) const override {
    if (node == 1) return {"--devices", "eth0"};
    return {"--lb-algorithm", "maglev"};
  }

  // The pod each source port reaches through node n's NodePort ("" when it failed).
  std::map<uint16_t, std::string> Round(int n) {
    std::map<uint16_t, std::string> out;
    for (uint16_t p = kFirstPort; p < kFirstPort + kPorts; p++)
      out[p] = TcpHello(cluster_->client_netns(), cluster_->node(n).address, kNodePort, 2000,
                        nullptr, p);
    return out;
  }

  // Rounds until node n's answers equal `want` (the agents apply manifests asynchronously).
  bool WaitFor(int n, const std::map<uint16_t, std::string>& want,
               std::map<uint16_t, std::string>* last) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      *last = Round(n);
      if (*last == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    return false;
  }
};

std::string Diff(const std::map<uint16_t, std::string>& want,
                 const std::map<uint16_t, std::string>& got) {
  std::string out;
  for (const auto& [p, w] : want) {
    auto it = got.find(p);
    std::string g = it == got.end() ? "-" : it->second;
    if (g != w) absl::StrAppend(&out, " port ", p, ": want ", w, " got '", g, "';");
  }
  return out;
}

TEST_F(MaglevE2eTest, RemovingABackendMovesOnlyItsFlows) {
  const std::string removed = "mg-b";
  for (int n : {1, 2}) {
    const std::string node_ip = cluster_->node(n).address;
    auto before = Predict(node_ip, "");
    std::map<std::string, int> per_pod;
    for (const auto& [p, pod] : before) per_pod[pod]++;
    ASSERT_EQ(per_pod.size(), 4u) << "the chosen ports should cover every backend";
    std::map<uint16_t, std::string> got;
    ASSERT_TRUE(WaitFor(n, before, &got)) << "node " << n << ":" << Diff(before, got);
    // Stable: the same tuples, new connections, the same backends.
    EXPECT_EQ(Round(n), before) << "node " << n;
  }

  cluster_->WriteManifest("mg-slice.yaml", SliceManifest(removed));
  for (int n : {1, 2}) {
    const std::string node_ip = cluster_->node(n).address;
    auto before = Predict(node_ip, "");
    auto after = Predict(node_ip, removed);
    std::map<uint16_t, std::string> got;
    ASSERT_TRUE(WaitFor(n, after, &got)) << "node " << n << ":" << Diff(after, got);
    int on_removed = 0, moved_others = 0;
    for (const auto& [p, pod] : before) {
      if (pod == removed) {
        on_removed++;
        EXPECT_NE(got[p], removed);
      } else if (got[p] != pod) {
        moved_others++;
      }
    }
    EXPECT_GT(on_removed, 0) << "node " << n;
    // Random selection would move about 3/4 of the other flows; Maglev only a few percent.
    EXPECT_LE(moved_others, (kPorts - on_removed) / 8)
        << "node " << n << ": " << moved_others << " flows of remaining backends moved";
    std::cerr << "node " << n << ": " << on_removed << " of " << kPorts
              << " flows were on the removed backend; " << moved_others << " others moved\n";
  }
}

}  // namespace
}  // namespace skiff::e2e
