// The gRPC API and agentctl end to end: the real agent in a node namespace with
// --api-socket in a temp dir, real TCP/UDP traffic through a ClusterIP, then agentctl
// (the real binary, -o json) must report the status, the service and the conntrack entries
// of exactly that traffic; flush must remove them; with the agent gone, agentctl must say so
// (exit 3) and `bpf map` must still read the pinned maps.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
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

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr char kVip[] = "10.96.0.10";
const std::map<std::string, std::string> kPods = {
    {"client", "10.244.1.10"}, {"web-1", "10.244.1.11"}, {"web-2", "10.244.1.12"}};

struct Ctl {
  int code = -1;
  std::string out, err;
  Json json() const { return Json::parse(out, nullptr, false); }
};

class ApiE2E : public ::testing::Test {
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
                                                       std::vector<uint16_t>{5353}));
        ASSERT_TRUE(servers_.back()->status().ok()) << servers_.back()->status();
      }
    }
    env_ = std::make_unique<AgentEnv>(*node_, "api", SKIFF_AGENT_PATH);
    socket_ = env_->api_socket();
    bpffs_root_ = env_->bpffs_root();
    std::string yaml =
        ServiceYaml("web", kVip, {{"http", 80, "http", "TCP"}, {"dns", 53, "dns", "UDP"}}) +
        "---\n" +
        EndpointSliceYaml("web-abc", "web", {{"10.244.1.11"}, {"10.244.1.12"}},
                          {{"http", 8080, "TCP"}, {"dns", 5353, "UDP"}});
    for (const auto& [name, ip] : kPods) yaml += "---\n" + PodYaml(name, ip);
    env_->Write("web.yaml", yaml);

    ASSERT_TRUE(env_->Start({"--log-level", "debug"}).ok());
  }

  void TearDown() override {
    env_.reset();  // before the node: the agent's cleanup runs in the node's namespace
    servers_.clear();
    node_.reset();
  }

  Ctl Agentctl(const std::vector<std::string>& args) {
    std::string out_path = (env_->dir() / "ctl.out").string(),
                err_path = (env_->dir() / "ctl.err").string();
    std::string cmd = absl::StrCat(SKIFF_AGENTCTL_PATH, " --socket ", socket_, " ",
                                   absl::StrJoin(args, " "), " >", out_path, " 2>", err_path);
    int rc = std::system(cmd.c_str());
    Ctl c;
    c.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    std::ifstream o(out_path), e(err_path);
    std::stringstream so, se;
    so << o.rdbuf();
    se << e.rdbuf();
    c.out = so.str();
    c.err = se.str();
    return c;
  }

  bool WaitServing(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!TcpHello(pods_["client"].netns, kVip, 80, 300).empty()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  std::unique_ptr<Node> node_;
  std::map<std::string, Pod> pods_;
  std::vector<std::unique_ptr<PodServer>> servers_;
  std::unique_ptr<AgentEnv> env_;
  std::string socket_, bpffs_root_;
};

TEST_F(ApiE2E, AgentctlReportsTheTrafficJustSent) {
  ASSERT_TRUE(WaitServing(10s)) << "service never served";
  // Long-lived connections: their conntrack entries stay established while we look.
  std::vector<std::unique_ptr<TcpStream>> streams;
  std::map<std::string, int> per_backend;
  for (int i = 0; i < 6; i++) {
    auto s = std::make_unique<TcpStream>();
    ASSERT_TRUE(s->Open(pods_["client"].netns, kVip, 80).ok());
    ASSERT_TRUE(s->Echo("ping").ok());
    per_backend[kPods.at(s->server())]++;
    streams.push_back(std::move(s));
  }
  ASSERT_FALSE(UdpHello(pods_["client"].netns, kVip, 53, 1000).empty());

  // status
  Ctl st = Agentctl({"status", "-o", "json"});
  ASSERT_EQ(st.code, 0) << st.err;
  Json s = st.json();
  ASSERT_FALSE(s.is_discarded()) << st.out;
  EXPECT_EQ(s["node_name"], "node-1");
  EXPECT_EQ(s["synced"], true);
  EXPECT_EQ(s["frontends"], 2);
  std::set<std::string> ifaces;
  int host_routed_rows = 0;
  for (const auto& p : s["programs"]) {
    ifaces.insert(p["interface"].get<std::string>());
    if (p["program"] == "from_container (host routing)") host_routed_rows++;
  }
  for (const auto& [name, pod] : pods_) EXPECT_TRUE(ifaces.count(pod.host_if)) << pod.host_if;
  // --host-routing=bpf (the default) shows on every pod interface's from_container row.
  EXPECT_EQ(host_routed_rows, static_cast<int>(pods_.size())) << st.out;
  uint64_t ct_entries = 0;
  for (const auto& m : s["maps"])
    if (m["name"] == "skiff_ct4_global_v2") ct_entries = m["entries"].get<uint64_t>();
  EXPECT_GE(ct_entries, 2u * 6 + 2);  // six TCP flows and one UDP flow, two entries each

  // service get
  Ctl sv = Agentctl({"service", "get", "default/web", "-o", "json"});
  ASSERT_EQ(sv.code, 0) << sv.err;
  Json svc = sv.json();
  ASSERT_EQ(svc["frontends"].size(), 2u) << sv.out;
  for (const auto& f : svc["frontends"]) {
    EXPECT_EQ(f["address"], kVip);
    EXPECT_EQ(f["state"], "programmed") << f.dump();
    std::set<std::string> backends;
    for (const auto& b : f["backends"]) backends.insert(b["address"].get<std::string>());
    EXPECT_EQ(backends, (std::set<std::string>{"10.244.1.11", "10.244.1.12"}));
  }
  Ctl table = Agentctl({"service", "list"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("10.96.0.10:80/TCP"), std::string::npos) << table.out;

  // conntrack: the TCP service entries are exactly our six connections to the VIP.
  Ctl ct = Agentctl({"ct", "list", "--service", "default/web", "--protocol", "tcp", "-o", "json"});
  ASSERT_EQ(ct.code, 0) << ct.err;
  std::map<std::string, int> seen;
  int replies = 0;
  Json ct_json = ct.json();
  for (const auto& e : ct_json["entries"]) {
    if (e["kind"] == "reply") {
      replies++;
      EXPECT_EQ(e["nat_address"], kVip);
      continue;
    }
    EXPECT_EQ(e["src_address"], "10.244.1.10");
    EXPECT_EQ(e["dst_address"], kVip);
    EXPECT_EQ(e["dst_port"], 80);
    EXPECT_EQ(e["service"], "default/web");
    EXPECT_GT(e["packets"].get<uint64_t>(), 0u);
    seen[e["nat_address"].get<std::string>()]++;
  }
  // WaitServing's probes add closed connections; the open ones must all be there.
  for (const auto& [ip, n] : per_backend) EXPECT_GE(seen[ip], n) << ip;
  EXPECT_GE(replies, 6);
  Ctl udp = Agentctl({"ct", "list", "--protocol", "udp", "--port", "53", "-o", "json"});
  ASSERT_EQ(udp.code, 0) << udp.err;
  EXPECT_EQ(udp.json()["entries"].size(), 2u) << udp.out;

  // endpoints
  Ctl ep = Agentctl({"endpoint", "list", "-o", "json"});
  ASSERT_EQ(ep.code, 0) << ep.err;
  Json ep_json = ep.json();
  for (const auto& e : ep_json["endpoints"]) {
    EXPECT_EQ(e["interface"], pods_[e["name"].get<std::string>()].host_if) << e.dump();
    EXPECT_EQ(e["attached"], true) << e.dump();
  }
  EXPECT_EQ(ep_json["endpoints"].size(), 3u);

  // flush the client's flows: both directions go.
  Ctl fl = Agentctl({"ct", "flush", "--ip", "10.244.1.10", "-o", "json"});
  ASSERT_EQ(fl.code, 0) << fl.err;
  EXPECT_GE(fl.json()["deleted"].get<uint64_t>(), 12u);
  Ctl after = Agentctl({"ct", "list", "--ip", "10.244.1.10", "-o", "json"});
  ASSERT_EQ(after.code, 0) << after.err;
  EXPECT_EQ(after.json()["entries"].size(), 0u) << after.out;

  // Errors: unknown service and map have exit code 4, bad filters 2.
  EXPECT_EQ(Agentctl({"service", "get", "default/nope"}).code, 4);
  EXPECT_EQ(Agentctl({"map", "dump", "skiff_nope_v1"}).code, 4);
  EXPECT_EQ(Agentctl({"ct", "list", "--ip", "not-an-ip"}).code, 2);
  EXPECT_EQ(Agentctl({"ct", "flush"}).code, 2);
}

TEST_F(ApiE2E, WithTheAgentDownAgentctlSaysSoAndBpfMapStillReads) {
  ASSERT_TRUE(WaitServing(10s)) << "service never served";
  ASSERT_EQ(Agentctl({"status"}).code, 0);
  env_->Terminate();
  EXPECT_FALSE(fs::exists(socket_)) << "the agent left its socket behind";
  Ctl down = Agentctl({"status"});
  EXPECT_EQ(down.code, 3);
  EXPECT_NE(down.err.find(socket_), std::string::npos) << down.err;
  EXPECT_NE(down.err.find("skiff-agent running"), std::string::npos) << down.err;

  Ctl maps = Agentctl({"bpf", "--bpffs-root", bpffs_root_, "map", "list", "-o", "json"});
  ASSERT_EQ(maps.code, 0) << maps.err;
  std::map<std::string, uint64_t> entries;
  Json maps_json = maps.json();
  for (const auto& m : maps_json["maps"]) entries[m["name"]] = m["entries"].get<uint64_t>();
  EXPECT_EQ(entries["skiff_lb4_backends_v2"], 4u);  // two pods x (8080/TCP, 5353/UDP)
  EXPECT_GE(entries["skiff_ct4_global_v2"], 2u);
  Ctl dump = Agentctl(
      {"bpf", "--bpffs-root", bpffs_root_, "map", "dump", "skiff_lb4_revnat_v2", "-o", "json"});
  ASSERT_EQ(dump.code, 0) << dump.err;
  std::set<uint64_t> ports;
  Json dump_json = dump.json();
  for (const auto& e : dump_json["entries"]) {
    EXPECT_EQ(e["value"]["address"], kVip);
    ports.insert(e["value"]["port"].get<uint64_t>());
  }
  EXPECT_EQ(ports, (std::set<uint64_t>{53, 80}));
}

}  // namespace
}  // namespace skiff::e2e
