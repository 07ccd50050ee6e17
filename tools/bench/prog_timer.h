// Timing BPF programs through BPF_PROG_TEST_RUN for the per-packet benchmarks
// (docs/BENCHMARKS.md, "Datapath per-packet cost"). Errors end the benchmark with a message:
// a bench that cannot run the program has nothing to report.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "tests/harness/packet.h"

namespace skiff::bench {

// Sums the kernel's reported duration over `n` runs with repeat = 1 (the packet is fresh every
// run, so rewriting programs are timed on their real input); next(i) returns the i-th input.
// Every run must return `expect_verdict`. `ctx` is the __sk_buff given to each run, if any.
double NsPerPacket(int prog_fd, uint32_t n,
                   const std::function<const testing::Bytes&(uint32_t)>& next, int expect_verdict,
                   const __sk_buff* ctx = nullptr);

// The kernel's own per-iteration average over `n` iterations of one call (repeat = n): the
// packet is not restored between iterations, so only for programs that do not rewrite it, or
// whose rewritten output takes the same path.
double RepeatNs(int prog_fd, const testing::Bytes& in, uint32_t n);

double Median(std::vector<double> v);

}  // namespace skiff::bench
