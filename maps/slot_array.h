// Slot arrays: BPF ARRAY maps indexed by a dense id whose all-zero entries are empty slots,
// not entries (the backends map, maps/lb.h). An array has no bucket locks and allocates
// nothing per update, but every index always "exists": SlotArray gives such a map the
// behaviour of a hash keyed by the id — a lookup of an empty slot finds nothing, a delete
// writes zeros, walks skip empty slots — and refuses ids beyond the array and values that
// would read as empty. Raw readers that know a map only by its pin name (agentctl dumps,
// metrics, resizes) ask IsSlotArrayMap and skip all-zero values with WalkPresent.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "maps/lb.h"
#include "maps/map.h"
#include "maps/map_walk.h"
#include "maps/names.h"

namespace skiff {

// Whether the pinned map of this name is a slot array (an all-zero value is an empty slot).
inline bool IsSlotArrayMap(absl::string_view name) {
  return name == SKIFF_STR(SKIFF_MAP_LB4_BACKENDS);
}

inline bool AllZero(const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  return std::all_of(b, b + n, [](unsigned char c) { return c == 0; });
}

// WalkMap (maps/map_walk.h) over the entries whose value is not all zero.
inline absl::Status WalkPresent(int fd, size_t key_size, size_t value_bytes, absl::string_view name,
                                absl::FunctionRef<bool(const void* key, const void* value)> fn) {
  return WalkMap(fd, key_size, value_bytes, name,
                 [&](const void* k, const void* v) { return AllZero(v, value_bytes) || fn(k, v); });
}

// Traits::Present(v) tells whether v holds an entry; an all-zero V must not be present, and
// the writer never writes a V that is not (Update refuses it).
template <typename V, typename Traits>
class SlotArray {
 public:
  SlotArray() = default;
  SlotArray(Map<__u32, V> map, uint32_t max_entries) : map_(std::move(map)), max_(max_entries) {}
  static absl::StatusOr<SlotArray> From(const struct bpf_map* m) {
    if (bpf_map__type(m) != BPF_MAP_TYPE_ARRAY)
      return absl::FailedPreconditionError(
          absl::StrCat("map ", bpf_map__name(m), " is not an array (type ", bpf_map__type(m), ")"));
    auto map = Map<__u32, V>::From(m);
    if (!map.ok()) return map.status();
    return SlotArray(std::move(*map), bpf_map__max_entries(m));
  }

  int fd() const { return map_.fd(); }
  const std::string& name() const { return map_.name(); }
  uint32_t max_entries() const { return max_; }
  static bool IsPresent(const V& v) { return Traits::Present(v); }

  // nullopt for an empty slot and for an id beyond the array.
  absl::StatusOr<std::optional<V>> Lookup(__u32 id) const {
    if (id >= max_) return std::optional<V>();
    auto v = map_.Lookup(id);
    if (!v.ok() || !v->has_value() || IsPresent(**v)) return v;
    return std::optional<V>();
  }

  absl::Status Update(__u32 id, const V& value) {
    if (auto st = Check(id, value); !st.ok()) return st;
    return map_.Update(id, value);
  }

  // As Map::UpdateBatch (one BPF_MAP_UPDATE_BATCH per 16,384 entries); an id beyond the array
  // or an empty value fails at its index before anything after it is written.
  absl::Status UpdateBatch(const __u32* ids, const V* values, size_t n, size_t* done) {
    size_t good = 0;
    absl::Status bad = absl::OkStatus();
    for (; good < n; good++) {
      bad = Check(ids[good], values[good]);
      if (!bad.ok()) break;
    }
    if (auto st = map_.UpdateBatch(ids, values, good, done); !st.ok()) return st;
    *done = good;
    return bad;
  }

  // Empties the slot; OK when it was empty or beyond the array.
  absl::Status Delete(__u32 id) {
    if (id >= max_) return absl::OkStatus();
    V zero;
    std::memset(&zero, 0, sizeof(zero));
    return map_.Update(id, zero);
  }

  // As Delete, and tells whether the slot held an entry.
  absl::StatusOr<bool> Remove(__u32 id) {
    auto v = Lookup(id);
    if (!v.ok()) return v.status();
    if (!v->has_value()) return false;
    if (auto st = Delete(id); !st.ok()) return st;
    return true;
  }

  // Every present entry, in id order, until fn returns false.
  absl::Status ForEachUntil(const std::function<bool(const __u32&, const V&)>& fn) const {
    return map_.ForEachUntil(
        [&](const __u32& id, const V& v) { return !IsPresent(v) || fn(id, v); });
  }

  absl::StatusOr<std::vector<std::pair<__u32, V>>> Entries() const {
    std::vector<std::pair<__u32, V>> out;
    auto st = ForEachUntil([&](const __u32& id, const V& v) {
      out.emplace_back(id, v);
      return true;
    });
    if (!st.ok()) return st;
    return out;
  }

  absl::Status Clear() {
    auto entries = Entries();
    if (!entries.ok()) return entries.status();
    for (const auto& [id, v] : *entries)
      if (auto st = Delete(id); !st.ok()) return st;
    return absl::OkStatus();
  }

 private:
  absl::Status Check(__u32 id, const V& value) const {
    if (id >= max_)
      return absl::OutOfRangeError(absl::StrCat("id ", id, " is beyond map ", name(), " (", max_,
                                                " entries: ids below ", max_, ")"));
    if (!IsPresent(value))
      return absl::InvalidArgumentError(absl::StrCat("writing id ", id, " of map ", name(),
                                                     ": the value would read as an empty slot"));
    return absl::OkStatus();
  }

  Map<__u32, V> map_;
  uint32_t max_ = 0;
};

struct BackendSlots {
  static bool Present(const skiff_lb4_backend& b) { return skiff_lb4_backend_present(&b) != 0; }
};
using BackendArray = SlotArray<skiff_lb4_backend, BackendSlots>;

}  // namespace skiff
