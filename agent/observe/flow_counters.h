// Process-wide count of flow events the observer read from the BPF ring buffer, shared by the
// reader (flow_reader.h, increments) and the metrics exposition (datapath_stats.cc, reads).
#pragma once

#include <atomic>
#include <cstdint>

namespace skiff::observe {

inline std::atomic<uint64_t>& FlowEventsReceived() {
  static std::atomic<uint64_t> n{0};
  return n;
}

}  // namespace skiff::observe
