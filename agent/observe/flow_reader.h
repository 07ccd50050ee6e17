// Reads flow events (maps/events.h) from the datapath's BPF ring buffer on its own thread,
// stamps them with wall-clock time, has them enriched and hands them to a sink. RAII: the
// destructor stops and joins the thread, then frees the ring buffer.
//
// Threads: Start() and the destructor on the owner's thread; the sink and the enricher run on
// the reader thread only.
#pragma once

#include <bpf/libbpf.h>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "agent/api/core.h"
#include "agent/observe/flow_enrich.h"
#include "agent/observe/flow_store.h"

namespace skiff::observe {

// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns: add to a bpf_ktime_get_ns() value.
int64_t MonotonicToWallOffsetNs();

class FlowReader {
 public:
  using Sink = std::function<void(FlowRecord)>;
  // How often the reader drains the ring when the datapath has not woken it (it wakes the
  // reader only when an event takes the ring past 1/8 full): the most an event waits before
  // `agentctl flows` can show it.
  static constexpr int kDrainIntervalMs = 20;
  // ring_fd: the SKIFF_MAP_EVENTS ring buffer (not owned; must outlive the reader).
  static absl::StatusOr<std::unique_ptr<FlowReader>> Start(int ring_fd, Sink sink);
  ~FlowReader();
  FlowReader(const FlowReader&) = delete;
  FlowReader& operator=(const FlowReader&) = delete;

 private:
  FlowReader() = default;
  static int OnSample(void* ctx, void* data, size_t size);
  void Run();

  Sink sink_;
  ring_buffer* rb_ = nullptr;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> offset_ns_{0};
  std::thread thread_;
};

// The agent's observer: the store, the enricher over the API's state board, and the reader.
class FlowObserver {
 public:
  static absl::StatusOr<std::unique_ptr<FlowObserver>> Start(int ring_fd,
                                                             const api::StateBoard* board,
                                                             size_t buffer_size);
  FlowStore* store() { return &store_; }

 private:
  FlowObserver(const api::StateBoard* board, size_t n) : store_(n), enricher_(board) {}
  FlowStore store_;
  FlowEnricher enricher_;
  std::unique_ptr<FlowReader> reader_;  // last: stops before the store and enricher go
};

}  // namespace skiff::observe
