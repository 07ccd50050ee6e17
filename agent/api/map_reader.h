// Read-only, streaming access to one BPF map as raw key/value bytes, for dumps and entry
// counts. The same code serves the agent's API (maps from its skeleton) and agentctl's
// `bpf map` commands (maps opened from their bpffs pins while the agent is down); unit tests
// wrap in-memory tables (KvTableMapReader).
//
// Thread: a reader is used by one thread at a time; different readers of the same map may
// run concurrently (the kernel serializes map access per element).
#pragma once

#include <bpf/bpf.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/reconcile/kv_table.h"

namespace skiff::api {

struct MapMeta {
  std::string name;
  std::string type;  // "hash", "lru_hash", "array", "percpu_array", ...
  uint32_t key_size = 0;
  uint32_t value_size = 0;  // per CPU for per-CPU maps
  uint32_t max_entries = 0;
  bool per_cpu = false;
  bool is_array = false;    // every index always present
  bool slot_array = false;  // an array whose all-zero entries are empty (maps/slot_array.h)
};

using Bytes = std::span<const uint8_t>;
// fn returns false to stop. For per-CPU maps the value holds one value_size record per
// possible CPU, each rounded up to 8 bytes (the kernel's layout).
using RawEntryFn = std::function<bool(Bytes key, Bytes value)>;

class MapReader {
 public:
  virtual ~MapReader() = default;
  virtual const MapMeta& meta() const = 0;
  virtual absl::Status ForEach(const RawEntryFn& fn) const = 0;
  // Entries present now; arrays report max_entries, slot arrays their present entries.
  virtual absl::StatusOr<uint64_t> Count() const = 0;
};

// A map reached through a file descriptor: borrowed (the agent's skeleton owns it) or owned
// (opened from a pin).
class FdMapReader : public MapReader {
 public:
  // Reads name, type and sizes from the kernel (bpf_map_get_info_by_fd). `name` overrides the
  // kernel's name, which is truncated to 15 characters.
  static absl::StatusOr<std::unique_ptr<FdMapReader>> Borrow(int fd, std::string name);
  static absl::StatusOr<std::unique_ptr<FdMapReader>> OpenPinned(const std::string& path,
                                                                 std::string name);
  ~FdMapReader() override;

  const MapMeta& meta() const override { return meta_; }
  absl::Status ForEach(const RawEntryFn& fn) const override;
  absl::StatusOr<uint64_t> Count() const override;

 private:
  FdMapReader(int fd, bool owned) : fd_(fd), owned_(owned) {}
  absl::Status Init(std::string name);
  int fd_;
  bool owned_;
  MapMeta meta_;
};

// Pinned maps under a bpffs directory (not recursive), sorted by name.
absl::StatusOr<std::vector<std::string>> ListPinnedMaps(const std::string& root);

std::string MapTypeName(uint32_t bpf_map_type);

// Any KvTable (fake or real) as a raw reader.
template <typename K, typename V>
class KvTableMapReader : public MapReader {
 public:
  KvTableMapReader(const reconcile::KvTable<K, V>* table, std::string type) : table_(table) {
    meta_.name = table->name();
    meta_.type = std::move(type);
    meta_.key_size = sizeof(K);
    meta_.value_size = sizeof(V);
    meta_.max_entries = table->max_entries();
  }
  const MapMeta& meta() const override { return meta_; }
  absl::Status ForEach(const RawEntryFn& fn) const override {
    return table_->ForEach([&](const K& k, const V& v) {
      return fn(Bytes(reinterpret_cast<const uint8_t*>(&k), sizeof(K)),
                Bytes(reinterpret_cast<const uint8_t*>(&v), sizeof(V)));
    });
  }
  absl::StatusOr<uint64_t> Count() const override {
    uint64_t n = 0;
    auto st = table_->ForEach([&](const K&, const V&) {
      n++;
      return true;
    });
    if (!st.ok()) return st;
    return n;
  }

 private:
  const reconcile::KvTable<K, V>* table_;
  MapMeta meta_;
};

}  // namespace skiff::api
