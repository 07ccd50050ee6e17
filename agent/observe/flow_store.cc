#include "agent/observe/flow_store.h"

#include <algorithm>

namespace skiff::observe {

FlowStore::FlowStore(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

void FlowStore::Add(FlowRecord r) {
  {
    std::lock_guard<std::mutex> l(mu_);
    r.seq = next_seq_++;
    if (ring_.size() >= capacity_) ring_.pop_front();
    ring_.push_back(std::move(r));
  }
  cv_.notify_all();
}

std::vector<FlowRecord> FlowStore::Since(uint64_t after) const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<FlowRecord> out;
  // Sequence numbers are contiguous in the ring: skip straight to the first newer one.
  size_t skip = 0;
  if (!ring_.empty() && after >= ring_.front().seq)
    skip = std::min<size_t>(ring_.size(), after - ring_.front().seq + 1);
  out.reserve(ring_.size() - skip);
  for (auto it = ring_.begin() + skip; it != ring_.end(); ++it) out.push_back(*it);
  return out;
}

bool FlowStore::WaitNewer(uint64_t after, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> l(mu_);
  return cv_.wait_for(l, timeout, [&] { return next_seq_ - 1 > after; });
}

uint64_t FlowStore::last_seq() const {
  std::lock_guard<std::mutex> l(mu_);
  return next_seq_ - 1;
}

size_t FlowStore::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return ring_.size();
}

}  // namespace skiff::observe
