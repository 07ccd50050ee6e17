// Per-packet cost of from_container (bpf/lxc.bpf.c) through BPF_PROG_TEST_RUN, beside an empty
// tc program and a parse-only one measured in the same run (DESIGN.md §7, §10). Every case runs
// the production code (service translation, then NetworkPolicy) twice: with no NetworkPolicy
// in the cluster (policy state clear: the policy code returns at once), and with policy active
// for a pod no policy selects (state DENY_UNKNOWN set: every connection is tracked in the
// policy conntrack, one lookup per packet).
//
// Every case is timed with repeat = 1 in a loop, summing the kernel's reported duration: with
// repeat > 1 the kernel does not restore the packet, so a rewriting program would be timed on
// its own output. The empty program is timed the same way, and net = case - empty removes the
// test-run overhead. Rounds interleave the cases and the median round is reported, so a noisy
// neighbour hurts every case alike. Not a test: nothing here asserts on time.
//
// Usage: skiff_bench_datapath [--packets N] [--rounds R] [--backends B]   (root)
#include <linux/pkt_cls.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/loader/skeleton.h"
#include "agent/reconcile/frontend_filter.h"
#include "bench_empty.skel.h"
#include "bench_parse.skel.h"
#include "maps/config.h"  // before bench_retarget.skel.h: its rodata holds struct skiff_config
#include "bench_retarget.skel.h"
#include "bench_parts.skel.h"
#include "maps/events.h"
#include "maps/policy.h"
#include "tests/bpf/lb_env.h"
#include "tests/harness/packet.h"
#include "tools/bench/prog_timer.h"

namespace skiff::bench {
namespace {

using testing::Bytes;
using testing::LbEnv;
using testing::PacketBuilder;

struct Options {
  uint32_t packets = 100000;  // per case per round
  int rounds = 5;
  int backends = 10;
};

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--packets")
      o.packets = std::strtoul(argv[i + 1], nullptr, 10);
    else if (a == "--rounds")
      o.rounds = std::atoi(argv[i + 1]);
    else if (a == "--backends")
      o.backends = std::atoi(argv[i + 1]);
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "skiff_bench_datapath: needs root (BPF_PROG_TEST_RUN)\n");
    return 2;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  sched_setaffinity(0, sizeof(set), &set);

  auto empty = OpenSkeleton<bench_empty_bpf>(bench_empty_bpf__open, bench_empty_bpf__destroy);
  auto parse = OpenSkeleton<bench_parse_bpf>(bench_parse_bpf__open, bench_parse_bpf__destroy);
  if (!empty.ok() || !parse.ok() || !empty->Load(bench_empty_bpf__load).ok() ||
      !parse->Load(bench_parse_bpf__load).ok()) {
    std::fprintf(stderr, "loading the baseline programs failed\n");
    return 1;
  }
  // Conntrack sized for every new flow of a round (two entries per flow), so new-flow runs
  // measure insertion rather than LRU eviction. The event ring (the agent's default size, or
  // the next power of two that holds every TRANSLATED event of one call) is drained after
  // each call, untimed, as the agent drains it: new flows are timed emitting their event, not
  // failing to reserve one in a full ring.
  uint32_t ring = SKIFF_EVENTS_RING_SIZE_DEFAULT;
  while (ring < o.packets * sizeof(skiff_flow_event) * 2) ring <<= 1;
  auto env = LbEnv::Load(std::max<uint32_t>(4 * o.packets, 65536), ring);
  if (!env.ok()) {
    std::fprintf(stderr, "loading lxc: %s\n", std::string(env.status().message()).c_str());
    return 1;
  }
  LbEnv& lb = **env;
  auto must = [](const absl::Status& st) {
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", std::string(st.message()).c_str());
      std::exit(1);
    }
  };
  must(lb.Reset());
  // The repeat-loop peer of from_container, on the same maps.
  auto retarget =
      OpenSkeleton<bench_retarget_bpf>(bench_retarget_bpf__open, bench_retarget_bpf__destroy);
  if (!retarget.ok()) {
    std::fprintf(stderr, "opening bench_retarget failed\n");
    return 1;
  }
  // Bench programs run on the datapath's own maps.
  auto share_maps = [&](bpf_object* obj) {
    bpf_map* m;
    bpf_object__for_each_map(m, obj) {
      bpf_map__set_pin_path(m, nullptr);
      bpf_map* lm = bpf_object__find_map_by_name(lb.skel->obj, bpf_map__name(m));
      if (lm && !bpf_map__is_internal(m) && bpf_map__reuse_fd(m, bpf_map__fd(lm)) != 0) {
        std::fprintf(stderr, "sharing map %s failed\n", bpf_map__name(m));
        std::exit(1);
      }
    }
  };
  share_maps((*retarget)->obj);
  if (!retarget->Load(bench_retarget_bpf__load).ok()) {
    std::fprintf(stderr, "loading bench_retarget failed\n");
    return 1;
  }
  auto parts = OpenSkeleton<bench_parts_bpf>(bench_parts_bpf__open, bench_parts_bpf__destroy);
  if (!parts.ok()) {
    std::fprintf(stderr, "opening bench_parts failed\n");
    return 1;
  }
  share_maps((*parts)->obj);
  if (!parts->Load(bench_parts_bpf__load).ok()) {
    std::fprintf(stderr, "loading bench_parts failed\n");
    return 1;
  }
  ring_buffer* events = ring_buffer__new(
      bpf_map__fd(lb.skel->maps.SKIFF_MAP_EVENTS), [](void*, void*, size_t) { return 0; }, nullptr,
      nullptr);
  if (!events) {
    std::perror("ring_buffer__new");
    return 1;
  }
  auto drain = [&] { ring_buffer__consume(events); };
  testing::ServiceSpec svc{.vip = "10.96.0.10", .port = 80, .rev_nat_id = 1};
  std::vector<std::string> ips;
  for (int b = 0; b < o.backends; b++) ips.push_back(absl::StrCat("10.0.2.", 10 + b));
  for (int b = 0; b < o.backends; b++) {
    must(lb.AddBackend({static_cast<uint32_t>(b + 1), ips[b].c_str(), 8080}));
    svc.active.push_back(b + 1);
  }
  must(lb.AddService(svc));
  // The frontend filter as the agent keeps it (maps/lb_filter.h): armed, with the frontend's bit.
  auto fe_filter_map = Map<__u32, skiff_lb4_fe_filter>::From(lb.skel->maps.SKIFF_MAP_LB4_FE_FILTER);
  if (!fe_filter_map.ok()) {
    std::fprintf(stderr, "frontend filter map: %s\n",
                 std::string(fe_filter_map.status().message()).c_str());
    return 1;
  }
  reconcile::BpfKvTable<skiff_lb4_key, skiff_lb4_service> services_table(lb.services, 65536);
  reconcile::BpfKvTable<__u32, skiff_lb4_fe_filter> fe_filter_table(*fe_filter_map, 1);
  reconcile::FrontendFilterTable fe_filter(&services_table, &fe_filter_table);
  must(fe_filter.Init());
  auto fe_filter_value = fe_filter_table.Entries();
  if (!fe_filter_value.ok() || fe_filter_value->size() != 1) {
    std::fprintf(stderr, "frontend filter not written\n");
    return 1;
  }
  const skiff_lb4_fe_filter armed_filter = (*fe_filter_value)[0].second;
  auto set_filter = [&](bool armed) {
    skiff_lb4_fe_filter off{};
    must(fe_filter_table.Update(0, armed ? armed_filter : off));
  };

  const Bytes non_service =
      PacketBuilder().Ipv4("10.0.1.5", "10.0.2.99").Tcp(40000, 8080, 0x10).Payload("x").Build();
  const Bytes established =
      PacketBuilder().Ipv4("10.0.1.5", "10.96.0.10").Tcp(40000, 80, 0x10).Payload("x").Build();
  // Open the established flow once, then find its backend for the reply packet.
  {
    Bytes syn = PacketBuilder().Ipv4("10.0.1.5", "10.96.0.10").Tcp(40000, 80, 0x02).Build();
    NsPerPacket(
        lb.prog_fd(), 1, [&](uint32_t) -> const Bytes& { return syn; }, TC_ACT_OK);
  }
  auto ct = lb.Ct(LbEnv::CtKey("10.0.1.5", "10.96.0.10", 40000, 80, 6, SKIFF_CT_SERVICE));
  if (!ct) {
    std::fprintf(stderr, "the established flow has no CT entry\n");
    return 1;
  }
  const Bytes reply = PacketBuilder()
                          .Ipv4(testing::Ip4String(ct->nat_addr).c_str(), "10.0.1.5")
                          .Tcp(8080, 40000, 0x10)
                          .Payload("x")
                          .Build();
  // Non-service packets to a distinct destination address each (the service map's buckets
  // differ from packet to packet, as with real traffic).
  std::vector<Bytes> varied(o.packets);
  for (uint32_t i = 0; i < o.packets; i++) {
    std::string dst = absl::StrCat("10.4.", (i >> 8) & 0xff, ".", i & 0xff);
    varied[i] =
        PacketBuilder().Ipv4("10.0.1.5", dst.c_str()).Tcp(40000, 8080, 0x10).Payload("x").Build();
  }
  // New flows: one SYN per distinct client address:port.
  std::vector<Bytes> syns(o.packets);
  for (uint32_t i = 0; i < o.packets; i++) {
    std::string client = absl::StrCat("10.1.", (i >> 14) & 0xff, ".", (i >> 6) & 0xff);
    syns[i] =
        PacketBuilder().Ipv4(client.c_str(), "10.96.0.10").Tcp(1024 + (i & 63), 80, 0x02).Build();
  }
  bench_retarget_bpf* rt = retarget->get();
  rt->bss->bench_client = testing::Ip4("10.0.1.5");
  rt->bss->bench_cport = htons(40000);
  rt->bss->bench_vip = testing::Ip4("10.96.0.10");
  rt->bss->bench_vport = htons(80);
  rt->bss->bench_backend = ct->nat_addr;
  rt->bss->bench_bport = ct->nat_port;
  int rt_fd = bpf_program__fd(rt->progs.bench_retarget);
  auto clear_new_flows = [&] {
    // Drop the new-flow entries between rounds (untimed) but keep the established flow.
    auto entries = lb.ct.Entries();
    if (!entries.ok()) return;
    for (const auto& [k, v] : *entries)
      if (!(k.sport == htons(40000) || k.dport == htons(40000))) (void)lb.ct.Delete(k);
  };

  int pol_state_fd = bpf_map__fd(lb.skel->maps.SKIFF_MAP_POL_STATE);
  auto set_policy = [&](bool active) {
    skiff_pol_state st{};
    st.flags = active ? SKIFF_POL_STATE_F_DENY_UNKNOWN : 0;
    uint32_t zero = 0;
    if (bpf_map_update_elem(pol_state_fd, &zero, &st, BPF_ANY) != 0) {
      std::perror("policy state");
      std::exit(1);
    }
  };
  auto pol_ct = Map<skiff_ct4_key, skiff_pol_ct_entry>::From(lb.skel->maps.SKIFF_MAP_POL_CT4);
  if (!pol_ct.ok()) {
    std::fprintf(stderr, "policy conntrack map: %s\n",
                 std::string(pol_ct.status().message()).c_str());
    return 1;
  }
  auto clear_new_policy_flows = [&] {
    auto entries = pol_ct->Entries();
    if (!entries.ok()) return;
    for (const auto& [k, v] : *entries)
      if (!(k.sport == htons(40000) || k.dport == htons(40000))) (void)pol_ct->Delete(k);
  };

  struct Row {
    std::string name;
    std::vector<double> ns;
  };
  const char* kCases[] = {"(a) non-service packet", "(b) CT hit, client -> backend (DNAT)",
                          "(b') CT hit, reply (rev-NAT)",
                          "(c) new flow (LB + 2 CT inserts + DNAT)"};
  const char* kModes[] = {"no NetworkPolicy", "policy active, pod not isolated"};
  std::vector<Row> rows = {{"empty tc program", {}}, {"parse only", {}}};
  std::vector<Row> warm = {{"empty tc program", {}}, {"parse only", {}}};
  for (const char* mode : kModes)
    for (const char* c : kCases) {
      rows.push_back({absl::StrCat(c, ", ", mode), {}});
      warm.push_back({absl::StrCat(c, ", ", mode), {}});
    }
  const size_t kVaried = rows.size();
  for (const char* name : {"(a') non-service, a new destination per packet, no NetworkPolicy",
                           "(a') the same, frontend filter unarmed (every packet looks up)"}) {
    rows.push_back({name, {}});
    warm.push_back({name, {}});
  }
  int lxc = lb.prog_fd();
  int empty_fd = bpf_program__fd((*empty)->progs.bench_empty);
  int parse_fd = bpf_program__fd((*parse)->progs.bench_parse);
  auto same = [](const Bytes& b) { return [&b](uint32_t) -> const Bytes& { return b; }; };
  auto cold = [&](int fd, const std::function<const Bytes&(uint32_t)>& next) {
    double ns = NsPerPacket(fd, o.packets, next, TC_ACT_OK);
    drain();
    return ns;
  };
  auto hot = [&](int fd, const Bytes& b) {
    double ns = RepeatNs(fd, b, o.packets);
    drain();
    return ns;
  };
  // New-flow parts (bench_parts), each net of its own baseline (parse + counter).
  bench_parts_bpf* pt = parts->get();
  pt->bss->bench_vip = testing::Ip4("10.96.0.10");
  pt->bss->bench_vport = htons(80);
  pt->bss->bench_backend = ct->nat_addr;
  pt->bss->bench_bport = ct->nat_port;
  int parts_fd = bpf_program__fd(pt->progs.bench_parts);
  std::vector<Row> part_rows = {{"baseline (parse + counter)", {}},
                                {"conntrack lookup, miss", {}},
                                {"conntrack insert (LRU, fresh key)", {}},
                                {"frontend lookup, hit", {}},
                                {"backend selection (prandom, slot + backend lookups)", {}},
                                {"DNAT rewrite (address + port, checksum helpers)", {}},
                                {"TRANSLATED event (ring buffer reserve, fill, submit)", {}},
                                {"skiff_now_sec (coarse clock)", {}},
                                {"policy conntrack insert (LRU, fresh key)", {}},
                                {"ipcache LPM lookup, no entry", {}},
                                {"bpf_ktime_get_ns (event timestamp)", {}},
                                {"frontend lookup, miss (a non-service packet's)", {}}};
  std::vector<Row> part_cold(part_rows.size());
  for (int r = 0; r < o.rounds; r++) {
    set_policy(false);
    rows[0].ns.push_back(cold(empty_fd, same(non_service)));
    rows[1].ns.push_back(cold(parse_fd, same(non_service)));
    warm[0].ns.push_back(hot(empty_fd, non_service));
    warm[1].ns.push_back(hot(parse_fd, non_service));
    for (int mode = 0; mode < 2; mode++) {
      set_policy(mode == 1);
      size_t at = 2 + 4 * mode;
      rows[at].ns.push_back(cold(lxc, same(non_service)));
      rows[at + 1].ns.push_back(cold(lxc, same(established)));
      rows[at + 2].ns.push_back(cold(lxc, same(reply)));
      rows[at + 3].ns.push_back(cold(lxc, [&](uint32_t i) -> const Bytes& { return syns[i]; }));
      clear_new_flows();
      clear_new_policy_flows();
      // from_container itself does not rewrite a non-service packet: the repeat loop is valid.
      warm[at].ns.push_back(hot(lxc, non_service));
      rt->bss->bench_mode = 0;
      warm[at + 1].ns.push_back(hot(rt_fd, established));
      rt->bss->bench_mode = 1;
      warm[at + 2].ns.push_back(hot(rt_fd, reply));
      rt->bss->bench_mode = 2;
      warm[at + 3].ns.push_back(hot(rt_fd, syns[0]));
      clear_new_flows();
      clear_new_policy_flows();
    }
    set_policy(false);
    for (int armed = 1; armed >= 0; armed--) {
      set_filter(armed);
      size_t at = kVaried + (armed ? 0 : 1);
      rows[at].ns.push_back(cold(lxc, [&](uint32_t i) -> const Bytes& { return varied[i]; }));
      rt->bss->bench_mode = 3;
      warm[at].ns.push_back(hot(rt_fd, non_service));
    }
    set_filter(true);
    for (size_t p = 0; p < part_rows.size(); p++) {
      pt->bss->bench_part = p;
      part_rows[p].ns.push_back(hot(parts_fd, syns[0]));
      clear_new_flows();
      clear_new_policy_flows();
      part_cold[p].ns.push_back(cold(parts_fd, same(syns[0])));
      clear_new_flows();
      clear_new_policy_flows();
    }
  }
  set_policy(false);

  double base = Median(rows[0].ns);
  std::printf(
      "PROG_TEST_RUN, tc, repeat=1 x %u packets per case, median of %d rounds, "
      "%d backends, CPU 0\n\n",
      o.packets, o.rounds, o.backends);
  std::printf("| case | ns/packet (measured) | net = measured - empty |\n|---|---:|---:|\n");
  for (const Row& row : rows) {
    double m = Median(row.ns);
    std::printf("| %s | %.1f | %.1f |\n", row.name.c_str(), m, m - base);
  }
  double wbase = Median(warm[0].ns);
  std::printf(
      "\nKernel repeat loop (repeat=%u, one call per case per round, median of %d rounds): "
      "(a) runs from_container itself (it does not rewrite the packet); (b), (b') and (c) run "
      "bench_retarget, the same code re-targeting the parsed tuple every iteration "
      "(tools/bench/progs/bench_retarget.bpf.c)\n\n",
      o.packets, o.rounds);
  std::printf("| case | ns/packet (measured) | net = measured - empty |\n|---|---:|---:|\n");
  for (const Row& row : warm) {
    double m = Median(row.ns);
    std::printf("| %s | %.1f | %.1f |\n", row.name.c_str(), m, m - wbase);
  }
  double pbase = Median(part_rows[0].ns);
  std::printf(
      "\nNew-flow parts (bench_parts: one piece per run, fresh client address:port per "
      "iteration, %u packets, median of %d rounds; net of its parse + counter baseline, in the "
      "kernel repeat loop and with repeat=1)\n\n",
      o.packets, o.rounds);
  double pcbase = Median(part_cold[0].ns);
  std::printf(
      "| part | warm ns (measured) | warm net | repeat=1 ns (measured) | repeat=1 net "
      "|\n|---|---:|---:|---:|---:|\n");
  for (size_t p = 0; p < part_rows.size(); p++) {
    double m = Median(part_rows[p].ns), c = Median(part_cold[p].ns);
    std::printf("| %s | %.1f | %.1f | %.1f | %.1f |\n", part_rows[p].name.c_str(), m, m - pbase, c,
                c - pcbase);
  }
  ring_buffer__free(events);
  return 0;
}

}  // namespace
}  // namespace skiff::bench

int main(int argc, char** argv) { return skiff::bench::Main(argc, argv); }
