// skiff-agent's metrics and health endpoints end to end: the real agent in a node namespace,
// real TCP connections through a ClusterIP, /metrics scraped over HTTP and parsed with the
// reference Prometheus parser; /readyz, /healthz and kube-proxy's node health check.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "tests/e2e/agent_env.h"
#include "tests/e2e/manifests.h"
#include "tests/e2e/topology.h"
#include "tests/harness/prom_parse.h"
#include "tests/harness/privileged.h"

namespace skiff::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using skiff::testing::ParsePrometheusText;
using skiff::testing::SumSamples;

constexpr char kVip[] = "10.96.0.10";

struct HttpResult {
  int status = 0;  // 0: no answer
  std::string body;
  std::string content_type;
};

// The listeners live in the node namespace on 127.0.0.1, so the client runs there too.
HttpResult Get(const std::string& netns, int port, const std::string& path) {
  return InNetns(netns, [&] {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(2);
    c.set_read_timeout(5);
    HttpResult r;
    if (auto res = c.Get(path.c_str())) {
      r.status = res->status;
      r.body = res->body;
      r.content_type = res->get_header_value("Content-Type");
    }
    return r;
  });
}

class MetricsE2E : public ::testing::Test {
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
      if (name != "client") {
        servers_.push_back(std::make_unique<PodServer>(*pod, std::vector<uint16_t>{8080},
                                                       std::vector<uint16_t>{}));
        ASSERT_TRUE(servers_.back()->status().ok()) << servers_.back()->status();
      }
    }
    env_ = std::make_unique<AgentEnv>(*node_, "metrics", SKIFF_AGENT_PATH);
    env_->Write("web.yaml",
                ServiceYaml("web", kVip, {{"http", 80, "http", "TCP"}}) + "---\n" +
                    EndpointSliceYaml("web-abc", "web", {{"10.244.1.11"}, {"10.244.1.12"}},
                                      {{"http", 8080, "TCP"}}));
    metrics_port_ = FreePort(node_->netns());
    healthz_port_ = FreePort(node_->netns());
    ASSERT_GT(metrics_port_, 0);
    ASSERT_GT(healthz_port_, 0);
    ASSERT_TRUE(env_->Start({"--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port_),
                             "--healthz-listen", absl::StrCat("127.0.0.1:", healthz_port_)})
                    .ok());
  }

  void TearDown() override {
    env_.reset();  // before the node: the agent's cleanup runs in the node's namespace
    servers_.clear();
    node_.reset();
  }

  // Polls until `path` answers `status` (the agent starts asynchronously).
  HttpResult WaitFor(int port, const std::string& path, int status,
                     std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    HttpResult r;
    while (std::chrono::steady_clock::now() < deadline) {
      r = Get(node_->netns(), port, path);
      if (r.status == status) return r;
      std::this_thread::sleep_for(100ms);
    }
    return r;
  }

  nlohmann::json Scrape() {
    HttpResult r = Get(node_->netns(), metrics_port_, "/metrics");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type.rfind("text/plain; version=0.0.4", 0), 0u) << r.content_type;
    auto parsed = ParsePrometheusText(r.body);
    EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << r.body;
    return parsed.ok() ? *parsed : nlohmann::json{{"families", nlohmann::json::object()}};
  }

  static double Forwarded(const nlohmann::json& m, const std::string& dir) {
    return SumSamples(m, "skiff_forwarded_packets", "skiff_forwarded_packets_total",
                      {{"direction", dir}});
  }

  std::unique_ptr<Node> node_;
  std::map<std::string, Pod> pods_;
  std::vector<std::unique_ptr<PodServer>> servers_;
  std::unique_ptr<AgentEnv> env_;
  int metrics_port_ = 0;
  int healthz_port_ = 0;
};

TEST_F(MetricsE2E, CountersFollowTrafficAndHealthEndpointsAnswer) {
  HttpResult ready = WaitFor(metrics_port_, "/readyz", 200, 15s);
  ASSERT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(ready.body, "ok\n");
  HttpResult alive = Get(node_->netns(), metrics_port_, "/healthz");
  EXPECT_EQ(alive.status, 200);
  EXPECT_EQ(alive.body, "ok\n");

  nlohmann::json before = Scrape();
  EXPECT_EQ(SumSamples(before, "skiff_ready", "skiff_ready"), 1);
  EXPECT_EQ(SumSamples(before, "skiff_attached_interfaces", "skiff_attached_interfaces"), 3);
  EXPECT_GE(SumSamples(before, "skiff_sync_latency_seconds", "skiff_sync_latency_seconds_count"),
            1);
  EXPECT_GT(SumSamples(before, "skiff_bpf_map_entries", "skiff_bpf_map_entries",
                       {{"map", "skiff_lb4_services_v2"}}),
            0);
  // The backends array counts its backends (web-1, web-2), not its size (maps/slot_array.h).
  EXPECT_EQ(SumSamples(before, "skiff_bpf_map_entries", "skiff_bpf_map_entries",
                       {{"map", "skiff_lb4_backends_v2"}}),
            2);
  EXPECT_EQ(before["families"]["skiff_build_info"]["samples"].size(), 1u);
  EXPECT_GT(SumSamples(before, "process_resident_memory_bytes", "process_resident_memory_bytes"),
            0);

  // Each connection's client sends at least SYN, ACK and FIN through from_container, and
  // host routing hands each of those straight to the backend pod on this node (no
  // to_container on the way; docs/datapath.md "Host routing").
  constexpr int kConnections = 20;
  int answered = 0;
  for (int i = 0; i < kConnections; i++) {
    std::string err;
    if (!TcpHello(pods_["client"].netns, kVip, 80, 2000, &err).empty())
      answered++;
    else
      ADD_FAILURE() << "connection " << i << ": " << err;
  }
  ASSERT_EQ(answered, kConnections);
  nlohmann::json after = Scrape();
  EXPECT_GE(Forwarded(after, "from_container") - Forwarded(before, "from_container"),
            3 * kConnections);
  EXPECT_GE(Forwarded(after, "host_routed") - Forwarded(before, "host_routed"), 3 * kConnections);
  EXPECT_GT(SumSamples(after, "skiff_forwarded_bytes", "skiff_forwarded_bytes_total"),
            SumSamples(before, "skiff_forwarded_bytes", "skiff_forwarded_bytes_total"));
  // The connections' conntrack entries (a service and a reply entry each), counted by the
  // batched walk of the pinned map once the 5 s cache of the counts expires.
  double tcp_entries = 0;
  for (auto deadline = std::chrono::steady_clock::now() + 8s;
       std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(500ms)) {
    tcp_entries = SumSamples(Scrape(), "skiff_conntrack_entries", "skiff_conntrack_entries",
                             {{"family", "ipv4"}, {"protocol", "tcp"}});
    if (tcp_entries >= 2) break;
  }
  EXPECT_GE(tcp_entries, 2);

  // kube-proxy's node health check.
  HttpResult node = Get(node_->netns(), healthz_port_, "/healthz");
  EXPECT_EQ(node.status, 200) << node.body;
  EXPECT_EQ(node.content_type, "application/json");
  auto j = nlohmann::json::parse(node.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << node.body;
  EXPECT_EQ(j["nodeEligible"], true);
  ASSERT_TRUE(j["lastUpdated"].is_string());
  ASSERT_TRUE(j["currentTime"].is_string());
  EXPECT_NE(j["currentTime"].get<std::string>().find(" +0000 UTC"), std::string::npos);
  HttpResult livez = Get(node_->netns(), healthz_port_, "/livez");
  EXPECT_EQ(livez.status, 200);
  EXPECT_EQ(livez.body.find("nodeEligible"), std::string::npos);
}

}  // namespace
}  // namespace skiff::e2e
