#include "agent/observe/flow_reader.h"

#include <time.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/observe/flow_counters.h"

namespace skiff::observe {
namespace {

int64_t ClockNs(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

int64_t MonotonicToWallOffsetNs() { return ClockNs(CLOCK_REALTIME) - ClockNs(CLOCK_MONOTONIC); }

absl::StatusOr<std::unique_ptr<FlowReader>> FlowReader::Start(int ring_fd, Sink sink) {
  std::unique_ptr<FlowReader> r(new FlowReader());
  r->sink_ = std::move(sink);
  r->offset_ns_ = MonotonicToWallOffsetNs();
  r->rb_ = ring_buffer__new(ring_fd, &FlowReader::OnSample, r.get(), nullptr);
  if (!r->rb_) {
    int err = errno;
    return absl::InternalError(
        absl::StrCat("opening the flow event ring buffer: ", std::strerror(err)));
  }
  r->thread_ = std::thread([p = r.get()] { p->Run(); });
  return r;
}

FlowReader::~FlowReader() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (rb_) ring_buffer__free(rb_);
}

int FlowReader::OnSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<FlowReader*>(ctx);
  if (size < sizeof(skiff_flow_event)) return 0;  // not ours; skip
  FlowRecord r;
  std::memcpy(&r.ev, data, sizeof(r.ev));
  r.time_unix_ns = static_cast<int64_t>(r.ev.ktime_ns) + self->offset_ns_.load();
  FlowEventsReceived().fetch_add(1, std::memory_order_relaxed);
  self->sink_(std::move(r));
  return 0;
}

void FlowReader::Run() {
  while (!stop_) {
    // The offset moves when the wall clock is set; refresh it between batches.
    offset_ns_ = MonotonicToWallOffsetNs();
    // The datapath commits events without a wakeup unless the ring is filling up
    // (bpf/lib/events.h: a wakeup per event is an interrupt on the packet's CPU), so the poll
    // mostly times out and the ring is drained here, every kDrainInterval.
    int n = ring_buffer__poll(rb_, kDrainIntervalMs);
    if (n >= 0 || n == -EINTR) n = ring_buffer__consume(rb_);
    if (n < 0 && n != -EINTR) {
      // Should not happen with a valid map; avoid spinning.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

absl::StatusOr<std::unique_ptr<FlowObserver>> FlowObserver::Start(int ring_fd,
                                                                  const api::StateBoard* board,
                                                                  size_t buffer_size) {
  std::unique_ptr<FlowObserver> o(new FlowObserver(board, buffer_size));
  auto reader = FlowReader::Start(ring_fd, [p = o.get()](FlowRecord r) {
    p->enricher_.Enrich(r);
    p->store_.Add(std::move(r));
  });
  if (!reader.ok()) return reader.status();
  o->reader_ = *std::move(reader);
  return o;
}

}  // namespace skiff::observe
