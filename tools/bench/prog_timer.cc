#include "tools/bench/prog_timer.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace skiff::bench {
namespace {

uint32_t RunOnce(int prog_fd, bpf_test_run_opts* opts) {
  if (bpf_prog_test_run_opts(prog_fd, opts) != 0) {
    std::perror("BPF_PROG_TEST_RUN");
    std::exit(1);
  }
  return opts->duration;
}

}  // namespace

double NsPerPacket(int prog_fd, uint32_t n,
                   const std::function<const testing::Bytes&(uint32_t)>& next, int expect_verdict,
                   const __sk_buff* ctx) {
  std::vector<uint8_t> out(2048);
  uint64_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    const testing::Bytes& in = next(i);
    __sk_buff ctx_copy{};
    if (ctx) ctx_copy = *ctx;
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = in.data();
    opts.data_size_in = in.size();
    opts.data_out = out.data();
    opts.data_size_out = out.size();
    if (ctx) {
      opts.ctx_in = &ctx_copy;
      opts.ctx_size_in = sizeof(ctx_copy);
    }
    opts.repeat = 1;
    total += RunOnce(prog_fd, &opts);
    if (static_cast<int>(opts.retval) != expect_verdict) {
      std::fprintf(stderr, "unexpected verdict %d (want %d)\n", opts.retval, expect_verdict);
      std::exit(1);
    }
  }
  return static_cast<double>(total) / n;
}

double RepeatNs(int prog_fd, const testing::Bytes& in, uint32_t n) {
  std::vector<uint8_t> out(2048);
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = in.data();
  opts.data_size_in = in.size();
  opts.data_out = out.data();
  opts.data_size_out = out.size();
  opts.repeat = n;
  return RunOnce(prog_fd, &opts);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace skiff::bench
