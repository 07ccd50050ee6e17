// The reconciler's view of one BPF map: a key/value table it can list, write and delete.
// Real maps implement it over maps/map.h (BpfKvTable); unit tests use FakeKvTable, so the
// reconcile logic is tested without root (Katran's BaseBpfAdapter idea).
#pragma once

#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "maps/map.h"
#include "maps/slot_array.h"

namespace skiff::reconcile {

// Orders plain C structs by their bytes, so they can key std::map without hand-written
// comparisons that would drift from maps/*.h.
template <typename T>
struct BytewiseLess {
  bool operator()(const T& a, const T& b) const { return std::memcmp(&a, &b, sizeof(T)) < 0; }
};

template <typename K, typename V>
bool SameBytes(const V& a, const V& b) {
  return std::memcmp(&a, &b, sizeof(V)) == 0;
}

template <typename K, typename V>
class KvTable {
 public:
  virtual ~KvTable() = default;
  virtual const std::string& name() const = 0;
  virtual uint32_t max_entries() const = 0;
  virtual absl::StatusOr<std::vector<std::pair<K, V>>> Entries() const = 0;
  // ResourceExhausted naming the map when it is full.
  virtual absl::Status Update(const K& key, const V& value) = 0;
  virtual absl::Status Delete(const K& key) = 0;  // OK when absent
  // Writes keys[i] -> values[i] for i in [0, n), in that order, with the effect of n Update
  // calls (so orderings the caller relies on hold inside one call). On failure *done is the
  // index of the entry that failed: [0, *done) are written, the rest are not. BPF tables use
  // BPF_MAP_UPDATE_BATCH (maps/map.h); the default calls Update.
  virtual absl::Status UpdateBatch(const K* keys, const V* values, size_t n, size_t* done) {
    for (size_t i = 0; i < n; i++) {
      if (auto st = Update(keys[i], values[i]); !st.ok()) {
        *done = i;
        return st;
      }
    }
    *done = n;
    return absl::OkStatus();
  }
  // As Delete, and tells whether the key was there (for counting what a flush removed).
  virtual absl::StatusOr<bool> Remove(const K& key) {
    if (auto st = Delete(key); !st.ok()) return st;
    return true;
  }
  // The value under key, nullopt when absent: one lookup, never a scan.
  virtual absl::StatusOr<std::optional<V>> Lookup(const K& key) const = 0;

  // Streams every entry without copying the table (a 1M-entry conntrack map must not be
  // materialized); fn returns false to stop early. Entries written meanwhile may or may not
  // be seen. The default copies; tables that can stream override it.
  virtual absl::Status ForEach(const std::function<bool(const K&, const V&)>& fn) const {
    auto entries = Entries();
    if (!entries.ok()) return entries.status();
    for (const auto& [k, v] : *entries)
      if (!fn(k, v)) break;
    return absl::OkStatus();
  }

  // Deletes every entry for which pred returns true, streaming as ForEach does; pred may
  // delete other keys itself (e.g. the peer of a conntrack entry). Returns how many entries
  // pred selected.
  virtual absl::StatusOr<uint64_t> DeleteIf(const std::function<bool(const K&, const V&)>& pred) {
    auto entries = Entries();
    if (!entries.ok()) return entries.status();
    uint64_t n = 0;
    for (const auto& [k, v] : *entries) {
      if (!pred(k, v)) continue;
      if (auto st = Delete(k); !st.ok()) return st;
      n++;
    }
    return n;
  }
};

template <typename K, typename V>
class BpfKvTable : public KvTable<K, V> {
 public:
  BpfKvTable(Map<K, V> map, uint32_t max_entries) : map_(std::move(map)), max_(max_entries) {}
  const std::string& name() const override { return map_.name(); }
  uint32_t max_entries() const override { return max_; }
  absl::StatusOr<std::vector<std::pair<K, V>>> Entries() const override { return map_.Entries(); }
  absl::Status Update(const K& key, const V& value) override {
    absl::Status st = map_.Update(key, value);
    if (absl::IsResourceExhausted(st))
      return absl::ResourceExhaustedError(
          absl::StrCat("map ", map_.name(), " is full (", max_, " entries); raise its size flag"));
    return st;
  }
  absl::Status Delete(const K& key) override { return map_.Delete(key); }
  absl::Status UpdateBatch(const K* keys, const V* values, size_t n, size_t* done) override {
    absl::Status st = map_.UpdateBatch(keys, values, n, done);
    if (absl::IsResourceExhausted(st))
      return absl::ResourceExhaustedError(
          absl::StrCat(st.message(), " (", max_, " entries); raise its size flag"));
    return st;
  }
  const Map<K, V>& map() const { return map_; }
  absl::StatusOr<std::optional<V>> Lookup(const K& key) const override { return map_.Lookup(key); }
  absl::StatusOr<bool> Remove(const K& key) override {
    if (bpf_map_delete_elem(map_.fd(), &key) == 0) return true;
    if (errno == ENOENT) return false;
    return ErrnoStatus(errno, absl::StrCat("delete from map ", map_.name()));
  }

  absl::Status ForEach(const std::function<bool(const K&, const V&)>& fn) const override {
    return map_.ForEachUntil(fn);
  }

  // Deletes behind the cursor: a key is removed only after the kernel has given the next
  // one, because get_next_key from a deleted hash key restarts at the first bucket.
  absl::StatusOr<uint64_t> DeleteIf(const std::function<bool(const K&, const V&)>& pred) override {
    K cur{}, next{};
    bool have_cur = false, delete_cur = false;
    uint64_t n = 0;
    while (bpf_map_get_next_key(map_.fd(), have_cur ? &cur : nullptr, &next) == 0) {
      if (delete_cur)
        if (auto st = map_.Delete(cur); !st.ok()) return st;
      V v{};
      delete_cur = bpf_map_lookup_elem(map_.fd(), &next, &v) == 0 && pred(next, v);
      n += delete_cur;
      cur = next;
      have_cur = true;
    }
    if (errno != ENOENT) return ErrnoStatus(errno, absl::StrCat("iterating map ", map_.name()));
    if (delete_cur)
      if (auto st = map_.Delete(cur); !st.ok()) return st;
    return n;
  }

 private:
  Map<K, V> map_;
  uint32_t max_;
};

// A slot array (maps/slot_array.h) as a table keyed by its ids: the backends map. Entries,
// ForEach and DeleteIf see present slots only; Delete writes zeros.
template <typename V, typename Traits>
class BpfSlotKvTable : public KvTable<__u32, V> {
 public:
  explicit BpfSlotKvTable(SlotArray<V, Traits> array) : array_(std::move(array)) {}
  const std::string& name() const override { return array_.name(); }
  uint32_t max_entries() const override { return array_.max_entries(); }
  absl::StatusOr<std::vector<std::pair<__u32, V>>> Entries() const override {
    return array_.Entries();
  }
  absl::Status Update(const __u32& id, const V& value) override { return array_.Update(id, value); }
  absl::Status UpdateBatch(const __u32* ids, const V* values, size_t n, size_t* done) override {
    return array_.UpdateBatch(ids, values, n, done);
  }
  absl::Status Delete(const __u32& id) override { return array_.Delete(id); }
  absl::StatusOr<std::optional<V>> Lookup(const __u32& id) const override {
    return array_.Lookup(id);
  }
  absl::StatusOr<bool> Remove(const __u32& id) override { return array_.Remove(id); }
  absl::Status ForEach(const std::function<bool(const __u32&, const V&)>& fn) const override {
    return array_.ForEachUntil(fn);
  }
  // Zeroing a slot does not disturb the walk (an array is walked by index).
  absl::StatusOr<uint64_t> DeleteIf(
      const std::function<bool(const __u32&, const V&)>& pred) override {
    uint64_t n = 0;
    absl::Status failed = absl::OkStatus();
    absl::Status st = array_.ForEachUntil([&](const __u32& id, const V& v) {
      if (!pred(id, v)) return true;
      failed = array_.Delete(id);
      n++;
      return failed.ok();
    });
    if (!failed.ok()) return failed;
    if (!st.ok()) return st;
    return n;
  }
  const SlotArray<V, Traits>& array() const { return array_; }

 private:
  SlotArray<V, Traits> array_;
};

// In-memory table with a capacity, for unit tests. Counts writes so tests can assert that
// an unchanged state writes nothing, and can fail a chosen write to test error paths.
template <typename K, typename V>
class FakeKvTable : public KvTable<K, V> {
 public:
  FakeKvTable(std::string name, uint32_t max_entries) : name_(std::move(name)), max_(max_entries) {}
  const std::string& name() const override { return name_; }
  uint32_t max_entries() const override { return max_; }
  absl::StatusOr<std::vector<std::pair<K, V>>> Entries() const override {
    return std::vector<std::pair<K, V>>(entries_.begin(), entries_.end());
  }
  absl::Status Update(const K& key, const V& value) override {
    if (!entries_.count(key) && entries_.size() >= max_)
      return absl::ResourceExhaustedError(
          absl::StrCat("map ", name_, " is full (", max_, " entries); raise its size flag"));
    entries_[key] = value;
    writes_++;
    log_.push_back({true, key});
    return absl::OkStatus();
  }
  absl::Status Delete(const K& key) override {
    if (entries_.erase(key)) {
      writes_++;
      log_.push_back({false, key});
    }
    return absl::OkStatus();
  }

  absl::Status UpdateBatch(const K* keys, const V* values, size_t n, size_t* done) override {
    batch_calls_++;
    return KvTable<K, V>::UpdateBatch(keys, values, n, done);
  }
  int batch_calls() const { return batch_calls_; }

  absl::StatusOr<std::optional<V>> Lookup(const K& key) const override {
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::optional<V>();
    return std::optional<V>(it->second);
  }
  absl::StatusOr<bool> Remove(const K& key) override {
    bool had = entries_.count(key) > 0;
    if (auto st = Delete(key); !st.ok()) return st;
    return had;
  }
  absl::Status ForEach(const std::function<bool(const K&, const V&)>& fn) const override {
    for (const auto& [k, v] : entries_)
      if (!fn(k, v)) break;
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> DeleteIf(const std::function<bool(const K&, const V&)>& pred) override {
    uint64_t n = 0;
    for (auto it = entries_.begin(); it != entries_.end();) {
      // Copied: pred may erase other keys (never the one it is given).
      K k = it->first;
      V v = it->second;
      if (!pred(k, v)) {
        it = entries_.upper_bound(k);
        continue;
      }
      n++;
      writes_++;
      log_.push_back({false, k});
      entries_.erase(k);
      it = entries_.upper_bound(k);
    }
    return n;
  }

  const std::map<K, V, BytewiseLess<K>>& entries() const { return entries_; }
  std::map<K, V, BytewiseLess<K>>& mutable_entries() { return entries_; }
  int writes() const { return writes_; }
  struct Op {
    bool update;  // false = delete
    K key;
  };
  const std::vector<Op>& log() const { return log_; }
  void ClearLog() {
    log_.clear();
    writes_ = 0;
    batch_calls_ = 0;
  }

 private:
  std::string name_;
  uint32_t max_;
  std::map<K, V, BytewiseLess<K>> entries_;
  int writes_ = 0;
  int batch_calls_ = 0;
  std::vector<Op> log_;
};

}  // namespace skiff::reconcile
