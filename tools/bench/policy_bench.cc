// NetworkPolicy costs (docs/BENCHMARKS.md, "NetworkPolicy"):
//  1. per packet, through BPF_PROG_TEST_RUN on the real from_container / to_container with
//     maps the agent's own compiler and reconciler filled from a generated cluster: new
//     connection allowed, denied, established (policy conntrack hit), and an unisolated pod,
//     beside the empty tc program timed the same way (net = case - empty), as
//     datapath_bench.cc does for the service datapath;
//  2. the time to program N policies over M pods: Compile (objects -> per-endpoint entries)
//     and PolicyReconciler::Apply against real, freshly created BPF maps, first in full and
//     then for one added policy and one pod label change (what a change costs once running).
// Not a test: nothing here asserts on time.
//
// Usage: skiff_bench_policy [--packets N] [--rounds R] [--policies P] [--pods M] [--local L]
//        (root)
#include <arpa/inet.h>
#include <linux/pkt_cls.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/loader/skeleton.h"
#include "agent/policy/compiler.h"
#include "agent/policy/reconciler.h"
#include "agent/reconcile/kv_table.h"
#include "bench_empty.skel.h"
#include "tests/bpf/lb_env.h"
#include "tests/harness/packet.h"
#include "tests/unit/policy_fixture.h"
#include "tools/bench/prog_timer.h"

namespace skiff::bench {
namespace {

using namespace skiff::policy::testing;  // NOLINT
using skiff::testing::Bytes;
using skiff::testing::LbEnv;
using skiff::testing::PacketBuilder;
using Clock = std::chrono::steady_clock;

struct Options {
  uint32_t packets = 50000;  // per case per round (distinct new connections: <= 60000)
  int rounds = 5;
  int policies = 10000;
  int pods = 1000;
  int local = 100;  // pods on this node (endpoints); a node's usual maximum is 110
};

std::string PodIp(int i) { return absl::StrCat("10.1.", i / 250, ".", i % 250 + 1); }

// A cluster of 10 namespaces; pod i is in namespace i % 10 with app = i % 50, tier = i % 3, on
// this node for i < local. Policy j (namespace j % 10) selects app j % 50 and admits, on port
// 8000 + j % 100 (every 10th a range of 16 ports), pods of its namespace with app (7j) % 50
// OR every pod of namespace (j + 1) % 10; every 5th also limits egress to its namespace and
// DNS-like port 53. So each local pod is selected by P / 50 policies.
void Generate(Cluster& c, const Options& o, int policies) {
  for (int n = 0; n < 10; n++) c.Namespace(absl::StrCat("ns", n), {{"team", absl::StrCat("t", n)}});
  for (int i = 0; i < o.pods; i++)
    c.Pod(absl::StrCat("ns", i % 10), absl::StrCat("pod-", i), PodIp(i),
          {{"app", absl::StrCat("app", i % 50)}, {"tier", absl::StrCat("tier", i % 3)}},
          {{"http", 8080, model::Protocol::kTcp}}, i < o.local ? "node-1" : "node-2");
  for (int j = 0; j < policies; j++) {
    auto port = j % 10 == 0 ? Port(8000 + j % 100, model::Protocol::kTcp, 8000 + j % 100 + 15)
                            : Port(8000 + j % 100);
    std::vector<model::NetworkPolicyRule> egress;
    if (j % 5 == 0)
      egress = {Rule({NsPeer(Sel({{"team", absl::StrCat("t", j % 10)}}))}, {Port(53)}),
                Rule({}, {Port(53, model::Protocol::kUdp)})};
    c.Policy(absl::StrCat("ns", j % 10), absl::StrCat("pol-", j),
             Sel({{"app", absl::StrCat("app", j % 50)}}),
             {Rule({PodPeer(Sel({{"app", absl::StrCat("app", (7 * j) % 50)}})),
                    NsPeer(Sel({{"team", absl::StrCat("t", (j + 1) % 10)}}))},
                   {port})},
             egress);
  }
}

// The policy maps of a loaded lxc object as the reconciler's tables.
struct Tables {
  std::unique_ptr<reconcile::BpfKvTable<skiff_ipcache_key, skiff_ipcache_val>> ipcache;
  std::unique_ptr<reconcile::BpfKvTable<skiff_policy_key, skiff_policy_val>> policy;
  std::unique_ptr<reconcile::BpfKvTable<__u32, skiff_pol_state>> state;
  policy::PolicyTables view() { return {ipcache.get(), policy.get(), state.get()}; }
};
Tables TablesOf(lxc_bpf* s) {
  Tables t;
  auto ipc = Map<skiff_ipcache_key, skiff_ipcache_val>::From(s->maps.SKIFF_MAP_IPCACHE4);
  auto pol = Map<skiff_policy_key, skiff_policy_val>::From(s->maps.SKIFF_MAP_POLICY4);
  auto st = Map<__u32, skiff_pol_state>::From(s->maps.SKIFF_MAP_POL_STATE);
  if (!ipc.ok() || !pol.ok() || !st.ok()) {
    std::fprintf(stderr, "policy maps missing\n");
    std::exit(1);
  }
  t.ipcache = std::make_unique<reconcile::BpfKvTable<skiff_ipcache_key, skiff_ipcache_val>>(
      *ipc, bpf_map__max_entries(s->maps.SKIFF_MAP_IPCACHE4));
  t.policy = std::make_unique<reconcile::BpfKvTable<skiff_policy_key, skiff_policy_val>>(
      *pol, bpf_map__max_entries(s->maps.SKIFF_MAP_POLICY4));
  t.state = std::make_unique<reconcile::BpfKvTable<__u32, skiff_pol_state>>(*st, 1);
  return t;
}

// NsPerPacket with an __sk_buff context: to_container needs ingress_ifindex != 0 (0 means
// "sent by the node", which always passes).
double SkbNs(int prog_fd, uint32_t n, const std::function<const Bytes&(uint32_t)>& next,
             int expect_verdict) {
  __sk_buff ctx{};
  ctx.ingress_ifindex = 7;
  ctx.ifindex = 1;
  return NsPerPacket(prog_fd, n, next, expect_verdict, &ctx);
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void Must(const absl::Status& st) {
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", std::string(st.message()).c_str());
    std::exit(1);
  }
}

void PerPacket(const Options& o) {
  auto empty = OpenSkeleton<bench_empty_bpf>(bench_empty_bpf__open, bench_empty_bpf__destroy);
  if (!empty.ok() || !empty->Load(bench_empty_bpf__load).ok()) {
    std::fprintf(stderr, "loading bench_empty failed\n");
    std::exit(1);
  }
  auto env = LbEnv::Load();
  if (!env.ok()) {
    std::fprintf(stderr, "loading lxc: %s\n", std::string(env.status().message()).c_str());
    std::exit(1);
  }
  LbEnv& lb = **env;
  Must(lb.Reset());
  Tables t = TablesOf(lb.skel.get());
  policy::PolicyReconciler rec(t.view());
  Must(rec.Restore());
  // A smaller cluster than the programming benchmark so the maps' default sizes hold it; the
  // per-packet work does not depend on the number of entries (two LPM lookups at most).
  Options small = o;
  small.pods = 200;
  small.local = 20;
  int policies = 1000;
  Cluster c;
  Generate(c, small, policies);
  // One local pod that no policy selects, for the "destination not isolated" case: every
  // generated pod carries an app label some policy selects.
  const int open_dst = small.pods;
  c.Pod("ns0", "pod-open", PodIp(open_dst), {{"app", "unselected"}},
        {{"http", 8080, model::Protocol::kTcp}}, "node-1");
  policy::Compiled compiled = policy::Compile(c.Snapshot(), {"node-1", {}});
  auto res = rec.Apply(compiled, true);
  if (!res.ok()) {
    std::fprintf(stderr, "programming: %s\n", res.errors[0].c_str());
    std::exit(1);
  }
  // Find, with the compiled verdicts, an allowed and a denied ingress pair towards a local
  // pod, an allowed and a denied egress pair from an egress-isolated local pod.
  auto ip = [](int i) { return Ip(PodIp(i)); };
  int in_dst = -1, in_ok = -1, in_bad = -1, eg_src = -1, eg_ok = -1, eg_bad = -1;
  uint16_t in_port = 0;
  for (int d = 0; d < small.local && in_dst < 0; d++)
    for (uint16_t port = 8000; port < 8100 && in_dst < 0; port++) {
      int ok = -1, bad = -1;
      for (int s = small.local; s < small.pods; s++) {
        auto v = policy::EvaluateCompiled(compiled, ip(s), ip(d), 6, port);
        if (!v.ingress_isolated || !v.egress_allowed) continue;
        (v.ingress_allowed ? ok : bad) = s;
      }
      if (ok >= 0 && bad >= 0) in_dst = d, in_ok = ok, in_bad = bad, in_port = port;
    }
  for (int s = 0; s < small.local && eg_src < 0; s++)
    for (int d = small.local; d < small.pods; d++) {
      auto v = policy::EvaluateCompiled(compiled, ip(s), ip(d), 6, 53);
      if (!v.egress_isolated) break;
      (v.egress_allowed ? eg_ok : eg_bad) = d;
      if (eg_ok >= 0 && eg_bad >= 0) {
        eg_src = s;
        break;
      }
    }
  if (in_dst < 0 || eg_src < 0) {
    std::fprintf(stderr, "generator found no allowed/denied pairs\n");
    std::exit(1);
  }
  if (compiled.endpoints.at({"ns0", "pod-open"}).ingress_isolated) {
    std::fprintf(stderr, "generator: pod-open is selected by a policy\n");
    std::exit(1);
  }

  auto tcp = [](int s, int d, uint16_t sport, uint16_t dport, uint8_t flags) {
    return PacketBuilder()
        .Ipv4(PodIp(s).c_str(), PodIp(d).c_str())
        .Tcp(sport, dport, flags)
        .Build();
  };
  uint32_t n = std::min<uint32_t>(o.packets, 60000);
  std::vector<Bytes> in_syns(n), eg_syns(n);
  for (uint32_t i = 0; i < n; i++) {
    in_syns[i] = tcp(in_ok, in_dst, 1024 + i, in_port, 0x02);
    eg_syns[i] = tcp(eg_src, eg_ok, 1024 + i, 53, 0x02);
  }
  const Bytes in_deny = tcp(in_bad, in_dst, 999, in_port, 0x02);
  const Bytes eg_deny = tcp(eg_src, eg_bad, 999, 53, 0x02);
  const Bytes in_est = tcp(in_ok, in_dst, 1000, in_port, 0x10);
  const Bytes eg_est = tcp(eg_src, eg_ok, 1000, 53, 0x10);
  const Bytes open_syn = tcp(in_ok, open_dst, 998, 9999, 0x02);
  int to = bpf_program__fd(lb.skel->progs.to_container);
  int from = bpf_program__fd(lb.skel->progs.from_container);
  int empty_fd = bpf_program__fd((*empty)->progs.bench_empty);
  auto same = [](const Bytes& b) { return [&b](uint32_t) -> const Bytes& { return b; }; };
  // The established connections: their SYNs once, untimed.
  SkbNs(to, 1, same(tcp(in_ok, in_dst, 1000, in_port, 0x02)), TC_ACT_OK);
  SkbNs(from, 1, same(tcp(eg_src, eg_ok, 1000, 53, 0x02)), TC_ACT_OK);
  auto pol_ct = Map<skiff_ct4_key, skiff_pol_ct_entry>::From(lb.skel->maps.SKIFF_MAP_POL_CT4);
  auto clear_new = [&] {  // drop the timed new connections, keep the established ones
    auto entries = pol_ct->Entries();
    if (!entries.ok()) return;
    for (const auto& [k, v] : *entries)
      if (k.sport != htons(1000) && k.dport != htons(1000)) (void)pol_ct->Delete(k);
  };
  clear_new();

  struct Row {
    std::string name;
    std::vector<double> ns;
  };
  std::vector<Row> rows = {
      {"empty tc program", {}},
      {"to_container: destination not isolated", {}},
      {"to_container: new connection, ingress allows (+ policy CT insert)", {}},
      {"to_container: new connection, ingress denies (drop)", {}},
      {"to_container: established (policy CT hit)", {}},
      {"from_container: new connection, egress allows (+ policy CT insert)", {}},
      {"from_container: new connection, egress denies (drop)", {}},
      {"from_container: established (policy CT hit)", {}}};
  for (int r = 0; r < o.rounds; r++) {
    rows[0].ns.push_back(SkbNs(empty_fd, n, same(in_est), TC_ACT_OK));
    rows[1].ns.push_back(SkbNs(to, n, same(open_syn), TC_ACT_OK));
    rows[2].ns.push_back(SkbNs(
        to, n, [&](uint32_t i) -> const Bytes& { return in_syns[i]; }, TC_ACT_OK));
    rows[3].ns.push_back(SkbNs(to, n, same(in_deny), TC_ACT_SHOT));
    rows[4].ns.push_back(SkbNs(to, n, same(in_est), TC_ACT_OK));
    rows[5].ns.push_back(SkbNs(
        from, n, [&](uint32_t i) -> const Bytes& { return eg_syns[i]; }, TC_ACT_OK));
    rows[6].ns.push_back(SkbNs(from, n, same(eg_deny), TC_ACT_SHOT));
    rows[7].ns.push_back(SkbNs(from, n, same(eg_est), TC_ACT_OK));
    clear_new();
  }
  double base = Median(rows[0].ns);
  std::printf(
      "Per packet: PROG_TEST_RUN, tc, repeat=1 x %u packets per case, median of %d rounds, CPU "
      "0; maps programmed from %d policies over %d pods (%d on this node): %zu identities, %d "
      "allow entries\n\n",
      n, o.rounds, policies, small.pods, small.local, compiled.classes.size(), res.policy_written);
  std::printf("| case | ns/packet (measured) | net = measured - empty |\n|---|---:|---:|\n");
  for (const Row& row : rows) {
    double m = Median(row.ns);
    std::printf("| %s | %.1f | %.1f |\n", row.name.c_str(), m, m - base);
  }
}

void Programming(const Options& o) {
  // Fresh maps sized for the whole cluster (the agent's --policy-map-max / --ipcache-max).
  auto skel = OpenSkeleton<lxc_bpf>(lxc_bpf__open, lxc_bpf__destroy);
  if (!skel.ok()) Must(skel.status());
  bpf_map* m;
  bpf_object__for_each_map(m, (*skel)->obj) bpf_map__set_pin_path(m, nullptr);
  bpf_map__set_max_entries((*skel)->maps.SKIFF_MAP_POLICY4, 4u << 20);
  bpf_map__set_max_entries((*skel)->maps.SKIFF_MAP_IPCACHE4, 1u << 16);
  Must(skel->Load(lxc_bpf__load));
  Tables t = TablesOf(skel->get());
  policy::PolicyReconciler rec(t.view());
  Must(rec.Restore());

  Cluster c;
  auto t0 = Clock::now();
  Generate(c, o, o.policies);
  auto t1 = Clock::now();
  policy::Compiled compiled = policy::Compile(c.Snapshot(), {"node-1", {}});
  auto t2 = Clock::now();
  auto res = rec.Apply(compiled, true);
  auto t3 = Clock::now();
  if (!res.ok()) {
    std::fprintf(stderr, "programming: %s\n", res.errors[0].c_str());
    std::exit(1);
  }
  size_t endpoint_rules = 0;
  for (const auto& [id, ep] : compiled.endpoints)
    endpoint_rules += ep.ingress.size() + ep.egress.size();

  // One more policy selecting app0 pods (ns0) from ns5.
  c.Policy("ns0", "pol-extra", Sel({{"app", "app0"}}),
           {Rule({NsPeer(Sel({{"team", "t5"}}))}, {Port(9000)})});
  auto t4 = Clock::now();
  policy::Compiled c2 = policy::Compile(c.Snapshot(), {"node-1", {}});
  auto t5 = Clock::now();
  auto res2 = rec.Apply(c2, true);
  auto t6 = Clock::now();
  // A pod label change: pod-1 (app1 -> app2) changes its identity and the policies selecting it.
  c.Pod("ns1", "pod-1", PodIp(1), {{"app", "app11"}, {"tier", "tier1"}},
        {{"http", 8080, model::Protocol::kTcp}}, "node-1");
  auto t7 = Clock::now();
  policy::Compiled c3 = policy::Compile(c.Snapshot(), {"node-1", {}});
  auto t8 = Clock::now();
  auto res3 = rec.Apply(c3, true);
  auto t9 = Clock::now();
  (void)t0;
  (void)t4;
  (void)t7;

  std::printf(
      "\nProgramming: %d policies over %d pods (%d on this node, 10 namespaces): %zu identities, "
      "%zu ipcache entries, %zu compiled allow rules -> %d policy map entries\n\n",
      o.policies, o.pods, o.local, compiled.classes.size(), compiled.ipcache.size(), endpoint_rules,
      res.policy_written);
  std::printf("| step | compile ms | apply ms (BPF map writes) | entries written / deleted |\n");
  std::printf("|---|---:|---:|---:|\n");
  std::printf("| from empty maps | %.1f | %.1f | %d / %d |\n", Ms(t2 - t1), Ms(t3 - t2),
              res.policy_written + res.ipcache_written, res.policy_deleted + res.ipcache_deleted);
  std::printf("| one policy added | %.1f | %.1f | %d / %d |\n", Ms(t5 - t4), Ms(t6 - t5),
              res2.policy_written + res2.ipcache_written,
              res2.policy_deleted + res2.ipcache_deleted);
  std::printf("| one local pod relabelled | %.1f | %.1f | %d / %d |\n", Ms(t8 - t7), Ms(t9 - t8),
              res3.policy_written + res3.ipcache_written,
              res3.policy_deleted + res3.ipcache_deleted);
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    long v = std::strtol(argv[i + 1], nullptr, 10);
    if (a == "--packets")
      o.packets = v;
    else if (a == "--rounds")
      o.rounds = v;
    else if (a == "--policies")
      o.policies = v;
    else if (a == "--pods")
      o.pods = v;
    else if (a == "--local")
      o.local = v;
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "skiff_bench_policy: needs root (BPF)\n");
    return 2;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  sched_setaffinity(0, sizeof(set), &set);
  PerPacket(o);
  Programming(o);
  return 0;
}

}  // namespace
}  // namespace skiff::bench

int main(int argc, char** argv) { return skiff::bench::Main(argc, argv); }
