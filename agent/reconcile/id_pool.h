// Allocates small integer ids (backend ids, rev-NAT ids) within [min, max], next-fit: the
// search continues after the last id handed out, so a freed id is reused only after the rest
// of the range, which keeps stale references (affinity, conntrack) from meeting a new owner.
// Rebuilt from the pinned maps at start (Reserve), so ids survive agent restarts and map
// resizes unchanged (Cilium #31069).
//
// The used ids are kept as runs of consecutive ids: next-fit hands ids out in order, so a
// million backend ids are a handful of runs (a B-tree of single ids was ~5 MB and one insert
// per allocation).
#pragma once

#include <cstdint>
#include <iterator>
#include <optional>

#include "absl/container/btree_map.h"

namespace skiff::reconcile {

class IdPool {
 public:
  IdPool(uint32_t min, uint32_t max) : min_(min), max_(max), next_hint_(min) {}

  // Marks an id found in a map as used; false when out of range.
  bool Reserve(uint32_t id) {
    if (id < min_ || id > max_) return false;
    if (!InUse(id)) Insert(id);
    return true;
  }

  std::optional<uint32_t> Allocate() {
    if (size_ > static_cast<uint64_t>(max_ - min_)) return std::nullopt;
    uint32_t id = next_hint_;
    // Each step skips a whole run, so this ends within (runs + 1) steps.
    for (size_t steps = 0; steps <= runs_.size() + 1; steps++) {
      auto run = RunOf(id);
      if (run == runs_.end()) {
        Insert(id);
        next_hint_ = id == max_ ? min_ : id + 1;
        return id;
      }
      id = run->second == max_ ? min_ : run->second + 1;
    }
    return std::nullopt;
  }

  void Release(uint32_t id) {
    auto run = RunOf(id);
    if (run == runs_.end()) return;
    const uint32_t start = run->first, end = run->second;
    runs_.erase(run);
    if (start < id) runs_.emplace(start, id - 1);
    if (id < end) runs_.emplace(id + 1, end);
    size_--;
  }

  bool InUse(uint32_t id) const { return RunOf(id) != runs_.end(); }
  size_t size() const { return size_; }

 private:
  using Runs = absl::btree_map<uint32_t, uint32_t>;  // first id -> last id, disjoint

  Runs::const_iterator RunOf(uint32_t id) const {
    auto it = runs_.upper_bound(id);
    if (it == runs_.begin()) return runs_.end();
    --it;
    return id <= it->second ? it : runs_.end();
  }
  Runs::iterator RunOf(uint32_t id) {
    auto it = runs_.upper_bound(id);
    if (it == runs_.begin()) return runs_.end();
    --it;
    return id <= it->second ? it : runs_.end();
  }

  // Marks a free id used, joining it to the runs next to it.
  void Insert(uint32_t id) {
    size_++;
    auto next = runs_.upper_bound(id);
    const bool joins_next = next != runs_.end() && id != UINT32_MAX && next->first == id + 1;
    if (next != runs_.begin()) {
      auto prev = std::prev(next);
      if (prev->second + 1 == id) {
        if (joins_next) {
          prev->second = next->second;
          runs_.erase(next);
        } else {
          prev->second = id;
        }
        return;
      }
    }
    if (joins_next) {
      const uint32_t end = next->second;
      runs_.erase(next);
      runs_.emplace(id, end);
      return;
    }
    runs_.emplace(id, id);
  }

  uint32_t min_, max_;
  uint32_t next_hint_;
  uint64_t size_ = 0;
  Runs runs_;
};

}  // namespace skiff::reconcile
