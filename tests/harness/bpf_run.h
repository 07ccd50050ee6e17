// Runs a loaded BPF program on a packet with BPF_PROG_TEST_RUN and reports the verdict by
// name and the output bytes. The calling thread is pinned to one CPU first so per-CPU maps
// are read back from the CPU the program ran on.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "tests/harness/packet.h"

namespace skiff::testing {

enum class ProgKind { kTc, kXdp };

struct RunResult {
  int32_t retval = 0;  // raw verdict
  Bytes out;           // packet after the program
  uint32_t duration_ns = 0;
  uint32_t mark = 0;  // skb->mark after a tc program run by RunTcWithMark
};

// Pins the calling thread to `cpu` (once per thread is enough). Returns the CPU.
int PinToCpu(int cpu = 0);

// `repeat` > 1 runs the program on its own output from the second iteration on (the kernel
// does not restore the packet); use it only for programs that do not rewrite.
absl::StatusOr<RunResult> RunProgram(int prog_fd, const Bytes& in, uint32_t repeat = 1);

// A tc program run on an skb whose mark starts as `mark`; RunResult::mark is the program's
// skb->mark afterwards (policy hands verdicts between hooks in the mark).
absl::StatusOr<RunResult> RunTcWithMark(int prog_fd, const Bytes& in, uint32_t mark = 0);

// A tc program run on an skb that arrived on ingress_ifindex (a device of this process's
// network namespace): skb->dev, skb->ingress_ifindex and the FIB lookup's namespace follow it.
absl::StatusOr<RunResult> RunTcOn(int prog_fd, const Bytes& in, int ingress_ifindex);

// An XDP program run as if the frame arrived on ingress_ifindex (a device of this process's
// network namespace): ctx->ingress_ifindex and the FIB lookup's namespace follow it.
absl::StatusOr<RunResult> RunXdpOn(int prog_fd, const Bytes& in, int ingress_ifindex,
                                   uint32_t repeat = 1);

// "TC_ACT_OK", "TC_ACT_SHOT", "XDP_PASS", ... or the number when unknown.
std::string VerdictName(ProgKind kind, int32_t verdict);

}  // namespace skiff::testing

// Compares verdicts by name so a failure reads "expected TC_ACT_OK, got TC_ACT_SHOT".
#define EXPECT_VERDICT(kind, expected, actual)                 \
  EXPECT_EQ(::skiff::testing::VerdictName((kind), (expected)), \
            ::skiff::testing::VerdictName((kind), (actual)))
