#include "tests/harness/bpf_run.h"

#include <bpf/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/bpf.h>
#include <sched.h>

#include <cerrno>

#include "agent/loader/skeleton.h"

namespace skiff::testing {

int PinToCpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
  return cpu;
}

namespace {

// One BPF_PROG_TEST_RUN; ctx_in/ctx_out are the program type's context (__sk_buff, xdp_md)
// or null.
absl::StatusOr<RunResult> TestRun(int prog_fd, const Bytes& in, uint32_t repeat, void* ctx_in,
                                  size_t ctx_in_size, void* ctx_out, size_t ctx_out_size,
                                  const char* what) {
  RunResult r;
  // Room for programs that grow the packet (encapsulation, ICMP replies quoting the input).
  r.out.resize(in.size() + 512);
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = in.data();
  opts.data_size_in = static_cast<__u32>(in.size());
  opts.data_out = r.out.data();
  opts.data_size_out = static_cast<__u32>(r.out.size());
  opts.ctx_in = ctx_in;
  opts.ctx_size_in = static_cast<__u32>(ctx_in_size);
  opts.ctx_out = ctx_out;
  opts.ctx_size_out = static_cast<__u32>(ctx_out_size);
  opts.repeat = repeat;
  if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) return ErrnoStatus(errno, what);
  r.retval = static_cast<int32_t>(opts.retval);
  r.out.resize(opts.data_size_out);
  r.duration_ns = opts.duration;
  return r;
}

}  // namespace

absl::StatusOr<RunResult> RunProgram(int prog_fd, const Bytes& in, uint32_t repeat) {
  return TestRun(prog_fd, in, repeat, nullptr, 0, nullptr, 0, "BPF_PROG_TEST_RUN");
}

absl::StatusOr<RunResult> RunTcWithMark(int prog_fd, const Bytes& in, uint32_t mark) {
  __sk_buff ctx{};
  ctx.mark = mark;
  __sk_buff ctx_out{};
  auto r = TestRun(prog_fd, in, 1, &ctx, sizeof(ctx), &ctx_out, sizeof(ctx_out),
                   "BPF_PROG_TEST_RUN (tc, skb context)");
  if (r.ok()) r->mark = ctx_out.mark;
  return r;
}

absl::StatusOr<RunResult> RunTcOn(int prog_fd, const Bytes& in, int ingress_ifindex) {
  __sk_buff ctx{};
  ctx.ifindex = static_cast<__u32>(ingress_ifindex);
  ctx.ingress_ifindex = static_cast<__u32>(ingress_ifindex);
  return TestRun(prog_fd, in, 1, &ctx, sizeof(ctx), nullptr, 0,
                 "BPF_PROG_TEST_RUN (tc, on an interface)");
}

absl::StatusOr<RunResult> RunXdpOn(int prog_fd, const Bytes& in, int ingress_ifindex,
                                   uint32_t repeat) {
  xdp_md ctx{};
  ctx.data_end = static_cast<__u32>(in.size());
  ctx.ingress_ifindex = static_cast<__u32>(ingress_ifindex);
  return TestRun(prog_fd, in, repeat, &ctx, sizeof(ctx), nullptr, 0, "BPF_PROG_TEST_RUN (XDP)");
}

std::string VerdictName(ProgKind kind, int32_t v) {
  if (kind == ProgKind::kXdp) {
    switch (v) {
      case XDP_ABORTED:
        return "XDP_ABORTED";
      case XDP_DROP:
        return "XDP_DROP";
      case XDP_PASS:
        return "XDP_PASS";
      case XDP_TX:
        return "XDP_TX";
      case XDP_REDIRECT:
        return "XDP_REDIRECT";
    }
  } else {
    switch (v) {
      case TC_ACT_UNSPEC:
        return "TC_ACT_UNSPEC";
      case TC_ACT_OK:
        return "TC_ACT_OK";
      case TC_ACT_RECLASSIFY:
        return "TC_ACT_RECLASSIFY";
      case TC_ACT_SHOT:
        return "TC_ACT_SHOT";
      case TC_ACT_PIPE:
        return "TC_ACT_PIPE";
      case TC_ACT_STOLEN:
        return "TC_ACT_STOLEN";
      case TC_ACT_REDIRECT:
        return "TC_ACT_REDIRECT";
    }
  }
  return "verdict(" + std::to_string(v) + ")";
}

}  // namespace skiff::testing
