// Maglev backend selection in the pod datapath (bpf/lxc.bpf.c, from_container) through
// BPF_PROG_TEST_RUN: a maglev frontend sends a new flow to table[flow hash % table size], the
// same 5-tuple to the same backend flow after flow, tables built by the agent's code spread
// flows over every backend, and the rules around it (terminating fallback, affinity first,
// the node-local table, conntrack keeping established flows, a missing table). The
// node-device path (from_netdev) is covered in nodeport_test.cc.
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "agent/reconcile/maglev.h"
#include "maps/flow_hash.h"
#include "tests/bpf/lb_env.h"
#include "tests/harness/bpf_run.h"
#include "tests/harness/privileged.h"

namespace skiff::testing {
namespace {

constexpr uint32_t kM = 251;  // small, so a table can name a distinct backend per slot
constexpr const char* kClient = "10.0.1.5";
constexpr const char* kVip = "10.96.0.10";
constexpr uint16_t kRevNat = 4;
constexpr uint8_t kSyn = 0x02, kAck = 0x10;

void Must(const absl::Status& st) { ASSERT_TRUE(st.ok()) << st; }

Bytes Syn(const char* client, uint16_t sport, uint8_t flags = kSyn) {
  return PacketBuilder().Ipv4(client, kVip).Tcp(sport, 80, flags).Build();
}

// Backend i (1-based) lives at 10.2.<i / 200>.<i % 200 + 1>:8080.
std::string BackendIp(uint32_t id) { return absl::StrCat("10.2.", id / 200, ".", id % 200 + 1); }

class MaglevTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_PRIVILEGED();
    PinToCpu(0);
    auto env = LbEnv::Load(4096, 0, kM);
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(*env);
    Must(env_->Reset());
  }

  void AddBackends(uint32_t n, uint8_t flags = 0) {
    for (uint32_t id = 1; id <= n; id++) {
      ips_.push_back(BackendIp(id));
      Must(env_->AddBackend({id, ips_.back().c_str(), 8080, 6, SKIFF_BACKEND_ACTIVE, flags}));
    }
  }

  ServiceSpec Svc(std::vector<uint32_t> active, std::vector<uint32_t> terminating = {}) {
    ServiceSpec s{.vip = kVip, .port = 80, .rev_nat_id = kRevNat};
    s.active = std::move(active);
    s.terminating = std::move(terminating);
    s.algorithm = SKIFF_LB_ALG_MAGLEV;
    return s;
  }

  // The backend id a packet was sent to (its new destination address), 0 if none.
  uint32_t BackendOf(const Bytes& pkt) {
    auto r = RunProgram(env_->prog_fd(), pkt);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->retval != TC_ACT_OK || r->out.size() < 34) return 0;
    std::string dst = absl::StrCat(r->out[30], ".", r->out[31], ".", r->out[32], ".", r->out[33]);
    for (uint32_t id = 1; id <= 400; id++)
      if (BackendIp(id) == dst) return id;
    return 0;
  }

  // The slot the datapath must use for client:sport -> kVip:80/TCP.
  static uint32_t Slot(const char* client, uint16_t sport) {
    return skiff_flow_hash4(Ip4(client), Ip4(kVip), htons(sport), htons(80), IPPROTO_TCP,
                            SKIFF_MAGLEV_HASH_SEED_DEFAULT) %
           kM;
  }

  std::unique_ptr<LbEnv> env_;
  std::vector<std::string> ips_;
};

// One backend per slot: the backend reached tells which slot was read.
TEST_F(MaglevTest, NewFlowTakesTheTableSlotOfItsHash) {
  AddBackends(kM);
  std::vector<uint32_t> table(kM), ids;
  for (uint32_t i = 0; i < kM; i++) table[i] = i + 1;
  for (uint32_t i = 1; i <= kM; i++) ids.push_back(i);
  Must(env_->AddService(Svc(ids)));
  Must(env_->AddMaglevTable(kRevNat, SKIFF_SCOPE_EXTERNAL, table));
  std::set<uint32_t> seen;
  for (uint16_t sport = 40000; sport < 40040; sport++) {
    uint32_t want = table[Slot(kClient, sport)];
    EXPECT_EQ(BackendOf(Syn(kClient, sport)), want) << "sport " << sport;
    seen.insert(want);
  }
  EXPECT_GT(seen.size(), 30u);  // the hash spreads ports over slots
  // Another client on the same ports: its own slots.
  for (uint16_t sport = 40000; sport < 40010; sport++)
    EXPECT_EQ(BackendOf(Syn("10.0.1.77", sport)), table[Slot("10.0.1.77", sport)]);
}

// A table built the agent's way: the same tuple lands on the same backend in every new flow
// (conntrack flushed in between), and different tuples use every backend.
TEST_F(MaglevTest, SameTupleSameBackendAcrossFlows) {
  AddBackends(3);
  std::vector<reconcile::MaglevBackend> mb;
  for (uint32_t id = 1; id <= 3; id++) mb.push_back({BackendIp(id) + ":8080", id});
  Must(env_->AddService(Svc({1, 2, 3})));
  Must(env_->AddMaglevTable(kRevNat, SKIFF_SCOPE_EXTERNAL,
                            reconcile::MaglevTable(mb, kM, SKIFF_MAGLEV_HASH_SEED_DEFAULT)));
  std::map<uint16_t, uint32_t> first;
  std::map<uint32_t, int> per_backend;
  for (uint16_t sport = 50000; sport < 50060; sport++) {
    first[sport] = BackendOf(Syn(kClient, sport));
    ASSERT_NE(first[sport], 0u);
    per_backend[first[sport]]++;
  }
  EXPECT_EQ(per_backend.size(), 3u);
  for (int round = 0; round < 3; round++) {
    Must(env_->ct.Clear());
    for (const auto& [sport, backend] : first)
      EXPECT_EQ(BackendOf(Syn(kClient, sport)), backend) << "round " << round << " sport " << sport;
  }
}

// Established flows follow conntrack, not the table: a table rewritten mid-flow (a backend
// added elsewhere) does not move them; their next new flow uses the new table.
TEST_F(MaglevTest, EstablishedFlowKeepsItsBackendWhenTheTableChanges) {
  AddBackends(2);
  Must(env_->AddService(Svc({1, 2})));
  Must(env_->AddMaglevTable(kRevNat, SKIFF_SCOPE_EXTERNAL, std::vector<uint32_t>(kM, 1)));
  EXPECT_EQ(BackendOf(Syn(kClient, 41000)), 1u);
  Must(env_->AddMaglevTable(kRevNat, SKIFF_SCOPE_EXTERNAL, std::vector<uint32_t>(kM, 2)));
  EXPECT_EQ(BackendOf(Syn(kClient, 41000, kAck)), 1u);
  EXPECT_EQ(BackendOf(Syn(kClient, 41001)), 2u);
}

// No active backend: the agent builds the table from the terminating ones, and the datapath
// serves from it rather than rejecting.
TEST_F(MaglevTest, TerminatingOnlyServiceServesFromItsTable) {
  AddBackends(2);
  Must(env_->AddService(Svc({}, {2})));
  Must(env_->AddMaglevTable(kRevNat, SKIFF_SCOPE_EXTERNAL, std::vector<uint32_t>(kM, 2)));
  for (uint16_t sport = 42000; sport < 42005; sport++)
    EXPECT_EQ(BackendOf(Syn(kClient, sport)), 2u);
}

// sessionAffinity ClientIP wins over the table; the table decides the first connection,
// which affinity then remembers.
TEST_F(MaglevTest, AffinityTakesPrecedence) {
  AddBackends(2);
  ServiceSpec s = Svc({1, 2});
  s.flags |= SKIFF_SVC_F_AFFINITY;
  s.affinity_timeout = 600;
  Must(env_->AddService(s));
  Must(env_->AddMaglevTable(kRevNat, SKIFF_SCOPE_EXTERNAL, std::vector<uint32_t>(kM, 1)));
  skiff_lb_affinity_val av{};
  av.last_used_ns = MonotonicNs() - 1000000000ull;  // 1 s ago (BPF reads a coarse clock)
  av.backend_id = 2;
  Must(env_->affinity.Update(LbEnv::AffinityKey(kClient, kRevNat), av));
  for (uint16_t sport = 43000; sport < 43005; sport++)
    EXPECT_EQ(BackendOf(Syn(kClient, sport)), 2u);
  // A client without an entry: the table picks, the entry remembers.
  EXPECT_EQ(BackendOf(Syn("10.0.1.6", 43000)), 1u);
  auto remembered = env_->affinity.Lookup(LbEnv::AffinityKey("10.0.1.6", kRevNat));
  ASSERT_TRUE(remembered.ok() && remembered->has_value());
  EXPECT_EQ((*remembered)->backend_id, 1u);
}

// internalTrafficPolicy Local: pods use the internal scope's table (the node-local set).
TEST_F(MaglevTest, NodeLocalScopeUsesItsOwnTable) {
  AddBackends(2);
  Must(env_->backends.Update(2, [&] {
    skiff_lb4_backend b = **env_->backends.Lookup(2);
    b.flags = SKIFF_BACKEND_F_LOCAL;
    return b;
  }()));
  ServiceSpec s = Svc({1, 2});
  s.local = {{{2}, {}}};
  Must(env_->AddService(s));
  Must(env_->AddMaglevTable(kRevNat, SKIFF_SCOPE_EXTERNAL, std::vector<uint32_t>(kM, 1)));
  Must(env_->AddMaglevTable(kRevNat, SKIFF_SCOPE_INTERNAL, std::vector<uint32_t>(kM, 2)));
  for (uint16_t sport = 44000; sport < 44005; sport++)
    EXPECT_EQ(BackendOf(Syn(kClient, sport)), 2u);
}

// A maglev frontend whose table is not there (between an agent's writes, or after a table
// size change) still serves: it picks at random among its slots.
TEST_F(MaglevTest, MissingTableFallsBackToRandom) {
  AddBackends(2);
  Must(env_->AddService(Svc({1, 2})));
  std::set<uint32_t> seen;
  for (uint16_t sport = 45000; sport < 45040; sport++) {
    uint32_t b = BackendOf(Syn(kClient, sport));
    EXPECT_TRUE(b == 1 || b == 2) << b;
    seen.insert(b);
  }
  EXPECT_EQ(seen.size(), 2u);
}

// A table naming a backend whose slot of the backends array was zeroed (deleted, the table
// not rewritten yet) drops the flow as a missing backend, as a failed hash lookup did: never a
// DNAT to 0.0.0.0.
TEST_F(MaglevTest, TableNamingADeletedBackendDropsAsMissing) {
  AddBackends(2);
  Must(env_->AddService(Svc({1, 2})));
  Must(env_->AddMaglevTable(kRevNat, SKIFF_SCOPE_EXTERNAL, std::vector<uint32_t>(kM, 2)));
  Must(env_->backends.Delete(2));
  auto r = RunProgram(env_->prog_fd(), Syn(kClient, 45500));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->retval, TC_ACT_SHOT);
  EXPECT_EQ(env_->Metric(SKIFF_DIR_FROM_CONTAINER, SKIFF_DROP_BACKEND_MISSING), 1u);
}

// A random frontend ignores a table (a leftover the agent has not deleted yet).
TEST_F(MaglevTest, RandomFrontendIgnoresATable) {
  AddBackends(2);
  ServiceSpec s = Svc({1, 2});
  s.algorithm = SKIFF_LB_ALG_RANDOM;
  Must(env_->AddService(s));
  Must(env_->AddMaglevTable(kRevNat, SKIFF_SCOPE_EXTERNAL, std::vector<uint32_t>(kM, 1)));
  std::set<uint32_t> seen;
  for (uint16_t sport = 46000; sport < 46040; sport++) seen.insert(BackendOf(Syn(kClient, sport)));
  EXPECT_EQ(seen, (std::set<uint32_t>{1, 2}));
}

// The bounds of --maglev-table-size load (the verifier accepts the index check whatever the
// constant) and a table of the largest size (512 KiB) can be written and used.
TEST(MaglevTableSizes, SmallestAndLargestLoadAndSelect) {
  SKIFF_REQUIRE_PRIVILEGED();
  for (uint32_t m :
       {uint32_t{SKIFF_MAGLEV_TABLE_SIZE_MIN}, uint32_t{SKIFF_MAGLEV_TABLE_SIZE_MAX}}) {
    auto env = LbEnv::Load(4096, 0, m);
    ASSERT_TRUE(env.ok()) << m << ": " << env.status();
    Must((*env)->Reset());
    Must((*env)->AddBackend({7, "10.2.0.8", 8080}));
    ServiceSpec s{.vip = kVip, .port = 80, .rev_nat_id = kRevNat, .active = {7}};
    s.algorithm = SKIFF_LB_ALG_MAGLEV;
    Must((*env)->AddService(s));
    Must((*env)->AddMaglevTable(kRevNat, SKIFF_SCOPE_EXTERNAL, std::vector<uint32_t>(m, 7)));
    auto r = RunProgram((*env)->prog_fd(), Syn(kClient, 47000));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->retval, TC_ACT_OK);
    ASSERT_GE(r->out.size(), 34u);
    EXPECT_EQ(absl::StrCat(r->out[30], ".", r->out[31], ".", r->out[32], ".", r->out[33]),
              "10.2.0.8")
        << m;
  }
}

}  // namespace
}  // namespace skiff::testing
