// Routes libbpf's messages into the agent's log (debug for info/debug, warn for warnings),
// and lets probing code silence the kernel's expected complaints (e.g. "Cannot find
// specified filter chain" when asking an interface that has no Skiff filter).
#pragma once

namespace skiff::loader {

void InstallLibbpfLogger();

// While alive, libbpf warnings on this thread go to debug level.
class QuietLibbpf {
 public:
  QuietLibbpf();
  ~QuietLibbpf();
  QuietLibbpf(const QuietLibbpf&) = delete;
  QuietLibbpf& operator=(const QuietLibbpf&) = delete;
};

}  // namespace skiff::loader
