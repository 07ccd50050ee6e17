// The standard process_* metrics, read from /proc/self as the Prometheus client libraries
// (client_golang's process collector) define them.
//
// Threads: any; reads /proc only.
#pragma once

#include <cstdint>
#include <optional>

namespace skiff::observe {

struct ProcessStats {
  double cpu_seconds = 0;            // user + system
  double resident_memory_bytes = 0;  // RSS
  double virtual_memory_bytes = 0;
  double start_time_seconds = 0;  // since the Unix epoch
  double open_fds = 0;
  double max_fds = 0;  // soft RLIMIT_NOFILE
};

// nullopt when /proc is unreadable (then the process_* metrics are left out).
std::optional<ProcessStats> ReadProcessStats();

}  // namespace skiff::observe
