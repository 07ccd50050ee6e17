// Per-packet cost of the XDP translate path of the node devices (bpf/nodeport.bpf.c
// from_netdev_xdp) beside the same packets through the tc path (from_netdev), through
// BPF_PROG_TEST_RUN (docs/BENCHMARKS.md, "XDP translate path"). NodePort flows to a backend on
// another node: an established flow's request (CT hit, NAT OUT lookup, DNAT + SNAT, FIB, MACs,
// redirect), its reply (NAT IN + CT reply, reverse SNAT + reverse NAT, FIB, redirect), and new
// flows (backend selection, two CT inserts, NAT port allocation with two NAT inserts).
//
// The process runs in a fresh network namespace set up as the XDP BPF tests do
// (SetUpForwardingNetns): every FIB lookup resolves, so both programs redirect. Each case is
// timed with repeat = 1 in a loop summing the kernel's reported duration (fresh packet every
// run), net of an empty program of the same type timed the same way; rounds interleave the
// cases and the median round is reported. Not a test: nothing here asserts on time.
//
// Usage: skiff_bench_xdp [--packets N] [--rounds R]   (root)
#include <bpf/bpf.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
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
#include "tests/bpf/nodeport_env.h"
#include "tests/harness/bpf_run.h"
#include "tools/bench/prog_timer.h"
// clang-format off
#include "bench_fib.skel.h"
// clang-format on

namespace skiff::bench {
namespace {

using testing::Bytes;
using testing::Mac;
using testing::PacketBuilder;

constexpr Mac kClientMac{0x02, 0, 0, 0, 0, 0xc2};
constexpr Mac kNp0Mac{0x02, 0, 0, 0, 0, 0xa0};
constexpr Mac kNp1Mac{0x02, 0, 0, 0, 0, 0xb0};
constexpr Mac kRemoteMac{0x02, 0, 0, 0, 0, 0xd5};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "skiff_bench_xdp: %s\n", what.c_str());
  std::exit(1);
}

void Must(const absl::Status& st) {
  if (!st.ok()) Die(std::string(st.message()));
}

// A two-instruction program returning `verdict`: the baseline of its program type.
int EmptyProg(bpf_prog_type type, int verdict) {
  const bpf_insn prog[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, verdict},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  int fd = bpf_prog_load(type, "bench_empty", "GPL", prog, 2, nullptr);
  if (fd < 0) Die(absl::StrCat("loading an empty program: ", std::strerror(errno)));
  return fd;
}

// XDP counterpart of NsPerPacket: frames arriving on ifindex, summed kernel durations.
double XdpNsPerPacket(int fd, uint32_t n, const std::function<const Bytes&(uint32_t)>& next,
                      int ifindex, int expect) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    auto r = testing::RunXdpOn(fd, next(i), ifindex);
    if (!r.ok()) Die(std::string(r.status().message()));
    if (r->retval != expect)
      Die(absl::StrCat("XDP verdict ", r->retval, ", expected ", expect, " (packet ", i, ")"));
    total += r->duration_ns;
  }
  return static_cast<double>(total) / n;
}

int Main(int argc, char** argv) {
  uint32_t packets = 20000;
  int rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--packets") packets = std::strtoul(argv[i + 1], nullptr, 10);
    if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
  }
  if (geteuid() != 0) Die("needs root (BPF_PROG_TEST_RUN, a network namespace)");
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  sched_setaffinity(0, sizeof(set), &set);
  if (unshare(CLONE_NEWNET) != 0) Die(absl::StrCat("unshare: ", std::strerror(errno)));
  Must(testing::SetUpForwardingNetns());
  const int np0 = static_cast<int>(if_nametoindex("xnp0"));
  const int np1 = static_cast<int>(if_nametoindex("xnp1"));

  auto env = testing::NodePortEnv::Load(SKIFF_NAT_PORT_MIN_DEFAULT, SKIFF_NAT_PORT_MAX_DEFAULT);
  if (!env.ok()) Die(std::string(env.status().message()));
  testing::NodePortEnv& np = **env;
  Must(np.lb->Reset());
  Must(np.lb->AddBackend({2, testing::kRemote, 8080}));
  Must(np.lb->AddService(testing::ServiceSpec{.vip = testing::kNode,
                                              .port = testing::kNodePort,
                                              .rev_nat_id = 3,
                                              .active = {2},
                                              .flags = SKIFF_SVC_F_NODE_PORT}));
  skiff_node_addr4 a{};
  a.address = testing::Ip4(testing::kNode);
  for (int idx : {np0, np1}) Must(np.addrs.Update(static_cast<__u32>(idx), a));

  const int xdp = bpf_program__fd(np.skel->progs.from_netdev_xdp);
  const int tc = np.prog_fd();
  const int xdp_empty = EmptyProg(BPF_PROG_TYPE_XDP, XDP_PASS);
  const int tc_empty = EmptyProg(BPF_PROG_TYPE_SCHED_CLS, TC_ACT_OK);
  __sk_buff on_np0{}, on_np1{};
  on_np0.ifindex = on_np0.ingress_ifindex = np0;
  on_np1.ifindex = on_np1.ingress_ifindex = np1;

  auto tcp = [](Mac s, Mac d, const char* src, uint16_t sp, const char* dst, uint16_t dp,
                uint8_t flags) {
    return PacketBuilder().Eth(s, d).Ipv4(src, dst).Tcp(sp, dp, flags).Payload("x").Build();
  };
  // The established flow, opened once through XDP.
  const Bytes request =
      tcp(kClientMac, kNp0Mac, testing::kClient, 40000, testing::kNode, testing::kNodePort, 0x10);
  auto open = testing::RunXdpOn(
      xdp,
      tcp(kClientMac, kNp0Mac, testing::kClient, 40000, testing::kNode, testing::kNodePort, 0x02),
      np0);
  if (!open.ok() || open->retval != XDP_REDIRECT) Die("opening the established flow failed");
  const uint16_t port = testing::SrcPort(open->out);
  const Bytes reply = tcp(kRemoteMac, kNp1Mac, testing::kRemote, 8080, testing::kNode, port, 0x10);
  // New flows: one SYN per client address:port (distinct NAT and CT keys); fewer than the
  // NAT port range holds for one backend, so allocation rarely retries.
  const uint32_t new_flows = std::min<uint32_t>(packets, 1000);
  std::vector<Bytes> syns(new_flows);
  for (uint32_t i = 0; i < new_flows; i++)
    syns[i] = tcp(kClientMac, kNp0Mac,
                  absl::StrCat("192.168.", 101 + ((i >> 14) & 0x3f), ".", (i >> 6) & 0xff).c_str(),
                  1024 + (i & 63), testing::kNode, testing::kNodePort, 0x02);
  auto clear_new = [&] {
    if (auto e = np.lb->ct.Entries(); e.ok())
      for (const auto& [k, v] : *e)
        if (k.sport != htons(40000) && k.dport != htons(40000) && k.sport != htons(41000) &&
            k.dport != htons(41000))
          (void)np.lb->ct.Delete(k);
    if (auto e = np.nat.Entries(); e.ok())
      for (const auto& [k, v] : *e)
        if (k.sport != htons(40000) && k.dport != htons(port) && k.sport != htons(port))
          (void)np.nat.Delete(k);
  };
  // The service datapath's figure for comparison: a pod's established flow to the same
  // frontend through from_container (CT hit + DNAT, no SNAT, no FIB), in the same run.
  const Bytes pod_ack = PacketBuilder()
                            .Ipv4("10.244.1.9", testing::kNode)
                            .Tcp(41000, testing::kNodePort, 0x10)
                            .Payload("x")
                            .Build();
  {
    auto r = testing::RunProgram(np.lb->prog_fd(), PacketBuilder()
                                                       .Ipv4("10.244.1.9", testing::kNode)
                                                       .Tcp(41000, testing::kNodePort, 0x02)
                                                       .Build());
    if (!r.ok() || r->retval != TC_ACT_OK) Die("opening the pod's flow failed");
  }
  auto fib = OpenSkeleton<bench_fib_bpf>(bench_fib_bpf__open, bench_fib_bpf__destroy);
  if (!fib.ok() || !fib->Load(bench_fib_bpf__load).ok()) Die("loading bench_fib failed");
  // The translated request's addresses, for the FIB lookup alone.
  const Bytes to_backend =
      tcp(kClientMac, kNp0Mac, testing::kNode, port, testing::kRemote, 8080, 0x10);
  auto same = [](const Bytes& b) { return [&b](uint32_t) -> const Bytes& { return b; }; };
  auto each = [&](uint32_t i) -> const Bytes& { return syns[i]; };

  struct Row {
    const char* name;
    std::function<double()> run;
    bool xdp;
    std::vector<double> ns;
  };
  std::vector<Row> rows = {
      {"empty XDP program",
       [&] { return XdpNsPerPacket(xdp_empty, packets, same(request), np0, XDP_PASS); },
       true,
       {}},
      {"empty tc program",
       [&] { return NsPerPacket(tc_empty, packets, same(request), TC_ACT_OK, &on_np0); },
       false,
       {}},
      {"request, established (XDP: CT hit + NAT OUT + DNAT/SNAT + FIB + redirect)",
       [&] { return XdpNsPerPacket(xdp, packets, same(request), np0, XDP_REDIRECT); },
       true,
       {}},
      {"request, established (tc from_netdev)",
       [&] { return NsPerPacket(tc, packets, same(request), TC_ACT_REDIRECT, &on_np0); },
       false,
       {}},
      {"part: parse + bpf_fib_lookup alone (XDP, resolved neighbour)",
       [&] {
         return XdpNsPerPacket(bpf_program__fd((*fib)->progs.bench_fib), packets, same(to_backend),
                               np0, XDP_REDIRECT);
       },
       true,
       {}},
      {"service datapath: from_container, CT hit, pod -> backend (DNAT)",
       [&] { return NsPerPacket(np.lb->prog_fd(), packets, same(pod_ack), TC_ACT_OK); },
       false,
       {}},
      {"reply (XDP: NAT IN + CT reply + reverse SNAT/NAT + FIB + redirect)",
       [&] { return XdpNsPerPacket(xdp, packets, same(reply), np1, XDP_REDIRECT); },
       true,
       {}},
      {"reply (tc from_netdev)",
       [&] { return NsPerPacket(tc, packets, same(reply), TC_ACT_REDIRECT, &on_np1); },
       false,
       {}},
      {"new flow (XDP: select + 2 CT + NAT alloc + 2 NAT + rewrite + redirect)",
       [&] {
         clear_new();
         return XdpNsPerPacket(xdp, new_flows, each, np0, XDP_REDIRECT);
       },
       true,
       {}},
      {"new flow (tc from_netdev)",
       [&] {
         clear_new();
         return NsPerPacket(tc, new_flows, each, TC_ACT_REDIRECT, &on_np0);
       },
       false,
       {}},
  };
  for (int r = 0; r < rounds; r++)
    for (auto& row : rows) row.ns.push_back(row.run());

  const double xdp_base = Median(rows[0].ns), tc_base = Median(rows[1].ns);
  std::printf("XDP translate path vs tc from_netdev, %u packets x %d rounds, median round\n\n",
              packets, rounds);
  std::printf("| case | ns/packet | net ns/packet |\n|---|---:|---:|\n");
  for (const auto& row : rows) {
    double m = Median(row.ns);
    std::printf("| %s | %.1f | %.1f |\n", row.name, m, m - (row.xdp ? xdp_base : tc_base));
  }
  std::printf("\n(net = case - empty program of the same type)\n");
  close(xdp_empty);
  close(tc_empty);
  return 0;
}

}  // namespace
}  // namespace skiff::bench

int main(int argc, char** argv) { return skiff::bench::Main(argc, argv); }
