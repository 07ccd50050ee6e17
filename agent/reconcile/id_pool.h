// Allocates small integer ids (backend ids, rev-NAT ids) within [min, max], next-fit: the
// search continues after the last id handed out, so a freed id is reused only after the rest
// of the range, which keeps stale references (affinity, conntrack) from meeting a new owner.
// Rebuilt from the pinned maps at start (Reserve), so ids survive agent restarts and map
// resizes unchanged (Cilium #31069).
#pragma once

#include <cstdint>
#include <optional>

#include "absl/container/btree_set.h"

namespace skiff::reconcile {

class IdPool {
 public:
  IdPool(uint32_t min, uint32_t max) : min_(min), max_(max), next_hint_(min) {}

  // Marks an id found in a map as used; false when out of range.
  bool Reserve(uint32_t id) {
    if (id < min_ || id > max_) return false;
    used_.insert(id);
    return true;
  }

  std::optional<uint32_t> Allocate() {
    if (used_.size() > static_cast<size_t>(max_ - min_)) return std::nullopt;
    uint32_t id = next_hint_;
    for (uint64_t tries = 0; tries <= static_cast<uint64_t>(max_ - min_); tries++) {
      if (!used_.count(id)) {
        used_.insert(id);
        next_hint_ = id == max_ ? min_ : id + 1;
        return id;
      }
      id = id == max_ ? min_ : id + 1;
    }
    return std::nullopt;
  }

  void Release(uint32_t id) { used_.erase(id); }

  bool InUse(uint32_t id) const { return used_.count(id) != 0; }
  size_t size() const { return used_.size(); }

 private:
  uint32_t min_, max_;
  uint32_t next_hint_;
  absl::btree_set<uint32_t> used_;  // a B-tree: ~4 bytes per id, not a 40-byte node
};

}  // namespace skiff::reconcile
