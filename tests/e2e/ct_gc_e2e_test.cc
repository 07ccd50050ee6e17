// The agent's conntrack GC end to end: the real agent with --ct-gc-interval 1 in a node
// namespace; expired and live entries written into its pinned service conntrack, policy
// conntrack and route cache; the expired ones must go, the live ones stay, and /metrics
// counts what was deleted. With --ct-gc-interval 0 nothing is deleted.
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "maps/ct.h"
#include "maps/host_route.h"
#include "maps/names.h"
#include "maps/policy.h"
#include "tests/e2e/agent_env.h"
#include "tests/e2e/topology.h"
#include "tests/harness/prom_parse.h"
#include "tests/harness/privileged.h"

namespace skiff::e2e {
namespace {

using namespace std::chrono_literals;
using skiff::testing::ParsePrometheusText;
using skiff::testing::SumSamples;

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + ts.tv_nsec;
}
uint32_t MonotonicSec() { return static_cast<uint32_t>(MonotonicNs() / 1000000000ULL); }

// A pinned map of the agent under test, opened for the test's own reads and writes.
class PinnedMap {
 public:
  PinnedMap() = default;
  ~PinnedMap() {
    if (fd_ >= 0) close(fd_);
  }
  PinnedMap(const PinnedMap&) = delete;
  PinnedMap& operator=(const PinnedMap&) = delete;
  // Waits for the agent to pin the map.
  bool Open(const std::string& path) {
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while ((fd_ = bpf_obj_get(path.c_str())) < 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(100ms);
    return fd_ >= 0;
  }
  template <typename K, typename V>
  bool Put(const K& k, const V& v) {
    return bpf_map_update_elem(fd_, &k, &v, BPF_ANY) == 0;
  }
  template <typename K, typename V>
  bool Has(const K& k) const {
    V v{};
    return bpf_map_lookup_elem(fd_, &k, &v) == 0;
  }

 private:
  int fd_ = -1;
};

// Keys in TEST-NET-1 (192.0.2.0/24): no real flow of the node uses them.
skiff_ct4_key CtKey(uint8_t host, uint8_t kind) {
  skiff_ct4_key k{};
  k.saddr = htonl(0xc0000200 | host);
  k.daddr = htonl(0xc0000264);
  k.sport = htons(40000 + host);
  k.dport = htons(80);
  k.proto = IPPROTO_TCP;
  k.kind = kind;
  return k;
}
skiff_ct_entry CtEntry(uint32_t expires) {
  skiff_ct_entry e{};
  e.expires = expires;
  e.created = expires > 100 ? expires - 100 : 0;
  e.flags = SKIFF_CT_F_SEEN_NON_SYN;
  return e;
}
skiff_pol_ct_entry PolEntry(uint32_t expires) {
  skiff_pol_ct_entry e{};
  e.expires = expires;
  e.flags = SKIFF_POL_CT_EGRESS_OK | SKIFF_POL_CT_INGRESS_OK;
  return e;
}
skiff_host_route4_key RouteKey(uint8_t host) {
  skiff_host_route4_key k{};
  k.daddr = htonl(0xc0000200 | host);
  k.saddr = htonl(0xc0000201);
  k.ifindex = 1;
  k.proto = IPPROTO_TCP;
  return k;
}
skiff_host_route4 Route(uint64_t expires_ns) {
  skiff_host_route4 r{};
  r.expires = expires_ns;
  r.ifindex = 1;
  r.mtu = 1500;
  return r;
}

class CtGcE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_PRIVILEGED();
    auto node = Node::Create();
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    env_ = std::make_unique<AgentEnv>(*node_, "ctgc", SKIFF_AGENT_PATH);
    metrics_port_ = FreePort(node_->netns());
    ASSERT_GT(metrics_port_, 0);
  }
  void TearDown() override {
    env_.reset();  // kills the agent, removes its pins
    node_.reset();
  }

  void StartAgent(const std::string& interval) {
    ASSERT_TRUE(env_->Start({"--ct-gc-interval", interval, "--metrics-listen",
                             absl::StrCat("127.0.0.1:", metrics_port_)})
                    .ok());
    const std::string root = env_->bpffs_root() + "/";
    ASSERT_TRUE(ct_.Open(root + SKIFF_STR(SKIFF_MAP_CT4))) << env_->Log();
    ASSERT_TRUE(pol_ct_.Open(root + SKIFF_STR(SKIFF_MAP_POL_CT4))) << env_->Log();
    ASSERT_TRUE(routes_.Open(root + SKIFF_STR(SKIFF_MAP_HOST_ROUTE4))) << env_->Log();
  }

  // Expired: 3 service conntrack entries (one a second ago), 2 policy conntrack entries, 1
  // route. Live: 2 service conntrack entries, 1 policy conntrack entry, 1 route.
  void WriteEntries() {
    const uint32_t now = MonotonicSec();
    ASSERT_TRUE(ct_.Put(CtKey(1, SKIFF_CT_SERVICE), CtEntry(now - 1)));
    ASSERT_TRUE(ct_.Put(CtKey(1, SKIFF_CT_REPLY), CtEntry(now - 30)));
    ASSERT_TRUE(ct_.Put(CtKey(2, SKIFF_CT_SERVICE), CtEntry(10)));
    ASSERT_TRUE(ct_.Put(CtKey(3, SKIFF_CT_SERVICE), CtEntry(now + 600)));
    ASSERT_TRUE(ct_.Put(CtKey(3, SKIFF_CT_REPLY), CtEntry(now + 600)));
    ASSERT_TRUE(pol_ct_.Put(CtKey(1, SKIFF_CT_POLICY), PolEntry(now - 1)));
    ASSERT_TRUE(pol_ct_.Put(CtKey(2, SKIFF_CT_POLICY), PolEntry(now - 100)));
    ASSERT_TRUE(pol_ct_.Put(CtKey(3, SKIFF_CT_POLICY), PolEntry(now + 600)));
    const uint64_t ns = MonotonicNs();
    ASSERT_TRUE(routes_.Put(RouteKey(1), Route(ns - 1000000000ULL)));
    ASSERT_TRUE(routes_.Put(RouteKey(2), Route(ns + 600 * 1000000000ULL)));
  }

  int ExpiredLeft() const {
    return ct_.Has<skiff_ct4_key, skiff_ct_entry>(CtKey(1, SKIFF_CT_SERVICE)) +
           ct_.Has<skiff_ct4_key, skiff_ct_entry>(CtKey(1, SKIFF_CT_REPLY)) +
           ct_.Has<skiff_ct4_key, skiff_ct_entry>(CtKey(2, SKIFF_CT_SERVICE)) +
           pol_ct_.Has<skiff_ct4_key, skiff_pol_ct_entry>(CtKey(1, SKIFF_CT_POLICY)) +
           pol_ct_.Has<skiff_ct4_key, skiff_pol_ct_entry>(CtKey(2, SKIFF_CT_POLICY)) +
           routes_.Has<skiff_host_route4_key, skiff_host_route4>(RouteKey(1));
  }
  void ExpectLivePresent() const {
    EXPECT_TRUE((ct_.Has<skiff_ct4_key, skiff_ct_entry>(CtKey(3, SKIFF_CT_SERVICE))));
    EXPECT_TRUE((ct_.Has<skiff_ct4_key, skiff_ct_entry>(CtKey(3, SKIFF_CT_REPLY))));
    EXPECT_TRUE((pol_ct_.Has<skiff_ct4_key, skiff_pol_ct_entry>(CtKey(3, SKIFF_CT_POLICY))));
    EXPECT_TRUE((routes_.Has<skiff_host_route4_key, skiff_host_route4>(RouteKey(2))));
  }

  nlohmann::json Scrape() {
    std::string body = InNetns(node_->netns(), [&] {
      httplib::Client c("127.0.0.1", metrics_port_);
      c.set_connection_timeout(2);
      c.set_read_timeout(5);
      auto res = c.Get("/metrics");
      return res && res->status == 200 ? res->body : std::string();
    });
    EXPECT_FALSE(body.empty()) << "no /metrics answer";
    auto parsed = ParsePrometheusText(body);
    EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << body;
    return parsed.ok() ? *parsed : nlohmann::json{{"families", nlohmann::json::object()}};
  }
  static double Deleted(const nlohmann::json& m, const char* map) {
    return SumSamples(m, "skiff_conntrack_gc_deleted_entries",
                      "skiff_conntrack_gc_deleted_entries_total", {{"map", map}});
  }

  std::unique_ptr<Node> node_;
  std::unique_ptr<AgentEnv> env_;
  int metrics_port_ = 0;
  PinnedMap ct_, pol_ct_, routes_;
};

TEST_F(CtGcE2E, DeletesExpiredEntriesKeepsLiveOnesAndCountsThem) {
  ASSERT_NO_FATAL_FAILURE(StartAgent("1"));
  ASSERT_NO_FATAL_FAILURE(WriteEntries());
  ASSERT_EQ(ExpiredLeft(), 6);
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (ExpiredLeft() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  EXPECT_EQ(ExpiredLeft(), 0) << env_->Log();
  ExpectLivePresent();

  // The counters move after the deletions are published: poll until they show.
  nlohmann::json m;
  deadline = std::chrono::steady_clock::now() + 5s;
  do {
    m = Scrape();
    if (Deleted(m, SKIFF_STR(SKIFF_MAP_HOST_ROUTE4)) >= 1) break;
    std::this_thread::sleep_for(200ms);
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(Deleted(m, SKIFF_STR(SKIFF_MAP_CT4)), 3);
  EXPECT_EQ(Deleted(m, SKIFF_STR(SKIFF_MAP_POL_CT4)), 2);
  EXPECT_EQ(Deleted(m, SKIFF_STR(SKIFF_MAP_HOST_ROUTE4)), 1);
  EXPECT_GE(SumSamples(m, "skiff_conntrack_gc_runs", "skiff_conntrack_gc_runs_total"), 1);
  EXPECT_EQ(SumSamples(m, "skiff_conntrack_gc_errors", "skiff_conntrack_gc_errors_total"), 0);
  EXPECT_NE(env_->Log().find("conntrack GC: deleted"), std::string::npos) << env_->Log();
}

TEST_F(CtGcE2E, IntervalZeroDisablesTheGc) {
  ASSERT_NO_FATAL_FAILURE(StartAgent("0"));
  ASSERT_NO_FATAL_FAILURE(WriteEntries());
  std::this_thread::sleep_for(3s);  // three sweeps' worth at the other test's interval
  EXPECT_EQ(ExpiredLeft(), 6);
  ExpectLivePresent();
  nlohmann::json m = Scrape();
  EXPECT_EQ(SumSamples(m, "skiff_conntrack_gc_runs", "skiff_conntrack_gc_runs_total"), 0);
  EXPECT_NE(env_->Log().find("conntrack GC disabled"), std::string::npos) << env_->Log();
}

}  // namespace
}  // namespace skiff::e2e
