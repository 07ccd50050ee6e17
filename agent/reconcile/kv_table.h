// The reconciler's view of one BPF map: a key/value table it can list, write and delete.
// Real maps implement it over maps/map.h (BpfKvTable); unit tests use FakeKvTable, so the
// reconcile logic is tested without root (Katran's BaseBpfAdapter idea).
#pragma once

#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "maps/map.h"

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

 private:
  Map<K, V> map_;
  uint32_t max_;
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
  }

 private:
  std::string name_;
  uint32_t max_;
  std::map<K, V, BytewiseLess<K>> entries_;
  int writes_ = 0;
  std::vector<Op> log_;
};

}  // namespace skiff::reconcile
