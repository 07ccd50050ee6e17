// Typed C++ access to a BPF map by fd: Map<Key, Value> for ordinary maps and
// PerCpuMap<Key, Value> for per-CPU ones. Keys and values are the structs of maps/*.h —
// the one definition BPF uses too — so a layout can never drift between the two sides.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "agent/loader/skeleton.h"
#include "maps/map_walk.h"

namespace skiff {

template <typename Key, typename Value>
class Map {
  static_assert(std::is_trivially_copyable_v<Key> && std::is_trivially_copyable_v<Value>,
                "BPF map keys and values must be plain structs");

 public:
  Map() = default;
  Map(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  // From a skeleton's `struct bpf_map *`; checks the key/value sizes against the BPF side.
  static absl::StatusOr<Map> From(const struct bpf_map* m) {
    if (bpf_map__key_size(m) != sizeof(Key) || bpf_map__value_size(m) != sizeof(Value))
      return absl::FailedPreconditionError(absl::StrCat(
          "map ", bpf_map__name(m), ": key/value size ", bpf_map__key_size(m), "/",
          bpf_map__value_size(m), " does not match C++ ", sizeof(Key), "/", sizeof(Value)));
    return Map(bpf_map__fd(m), bpf_map__name(m));
  }

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }

  // nullopt when absent; an error for anything else.
  absl::StatusOr<std::optional<Value>> Lookup(const Key& key) const {
    Value v{};
    if (bpf_map_lookup_elem(fd_, &key, &v) == 0) return std::optional<Value>(v);
    if (errno == ENOENT) return std::optional<Value>();
    return ErrnoStatus(errno, absl::StrCat("lookup in map ", name_));
  }

  absl::Status Update(const Key& key, const Value& value, __u64 flags = BPF_ANY) {
    if (bpf_map_update_elem(fd_, &key, &value, flags) == 0) return absl::OkStatus();
    int err = errno;
    if (err == E2BIG || err == ENOSPC)
      return absl::ResourceExhaustedError(absl::StrCat("map ", name_, " is full"));
    return ErrnoStatus(err, absl::StrCat("update of map ", name_));
  }

  // Writes keys[i] -> values[i] for i in [0, n) in that order, as n Update calls would (the
  // kernel's BPF_MAP_UPDATE_BATCH for hash and array maps applies its entries one after the
  // other), so an order of writes that one caller relies on holds within a batch too. Batches
  // of up to kBatchMax entries per syscall (5.6+); a map type or kernel that refuses batches
  // (ENOTSUPP, EINVAL, ...) before writing anything gets single updates, from then on for
  // this Map. On failure *done is the index of the entry that failed: [0, *done) are written,
  // the rest are not; the status names the map, the failing key (hex) and the errno, and is
  // ResourceExhausted when the map is full.
  absl::Status UpdateBatch(const Key* keys, const Value* values, size_t n, size_t* done,
                           __u64 flags = BPF_ANY) {
    size_t pos = 0;
    while (pos < n && batch_) {
      __u32 count = static_cast<__u32>(std::min<size_t>(n - pos, kBatchMax));
      const __u32 asked = count;
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      opts.elem_flags = flags;
      if (bpf_map_update_batch(fd_, keys + pos, values + pos, &count, &opts) == 0) {
        pos += asked;
        batch_calls_++;
        continue;
      }
      const int err = errno;
      // Refused before any entry was processed (the kernel then leaves count as given):
      // no batch support for this map type (ENOTSUPP = 524), or a kernel before 5.6.
      if (pos == 0 && (err == 524 || err == EOPNOTSUPP || err == EINVAL || err == ENOSYS)) {
        batch_ = false;
        break;
      }
      if (count > asked) count = 0;
      *done = pos + count;
      return BatchError(keys[*done], *done, n, err);
    }
    for (; pos < n; pos++) {
      if (bpf_map_update_elem(fd_, &keys[pos], &values[pos], flags) != 0) {
        *done = pos;
        return BatchError(keys[pos], pos, n, errno);
      }
    }
    *done = n;
    return absl::OkStatus();
  }
  // Whether UpdateBatch still uses BPF_MAP_UPDATE_BATCH (false after a refusal), and how many
  // batch syscalls succeeded: for tests and logs.
  bool batch_supported() const { return batch_; }
  uint64_t batch_calls() const { return batch_calls_; }
  static constexpr size_t kBatchMax = 16384;

  // OK when deleted or already absent.
  absl::Status Delete(const Key& key) {
    if (bpf_map_delete_elem(fd_, &key) == 0 || errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("delete from map ", name_));
  }

  // Calls fn for every entry; entries added or removed meanwhile may or may not be seen.
  absl::Status ForEach(const std::function<void(const Key&, const Value&)>& fn) const {
    return ForEachUntil([&](const Key& k, const Value& v) {
      fn(k, v);
      return true;
    });
  }

  // As ForEach, stopping when fn returns false (in batches: maps/map_walk.h).
  absl::Status ForEachUntil(const std::function<bool(const Key&, const Value&)>& fn) const {
    return WalkMap(fd_, sizeof(Key), sizeof(Value), name_, [&](const void* k, const void* v) {
      Key key;
      Value value;
      std::memcpy(&key, k, sizeof(Key));
      std::memcpy(&value, v, sizeof(Value));
      return fn(key, value);
    });
  }

  absl::StatusOr<std::vector<std::pair<Key, Value>>> Entries() const {
    std::vector<std::pair<Key, Value>> out;
    auto st = ForEach([&](const Key& k, const Value& v) { out.emplace_back(k, v); });
    if (!st.ok()) return st;
    return out;
  }

  absl::Status Clear() {
    auto entries = Entries();
    if (!entries.ok()) return entries.status();
    for (const auto& [k, v] : *entries)
      if (auto st = Delete(k); !st.ok()) return st;
    return absl::OkStatus();
  }

 private:
  absl::Status BatchError(const Key& key, size_t index, size_t n, int err) const {
    std::string hex;
    const auto* b = reinterpret_cast<const unsigned char*>(&key);
    for (size_t i = 0; i < sizeof(Key); i++)
      absl::StrAppend(&hex, absl::Hex(b[i], absl::kZeroPad2));
    std::string what = absl::StrCat("update of map ", name_, " at key ", hex, " (entry ", index,
                                    " of ", n, " in a batch)");
    if (err == E2BIG || err == ENOSPC)
      return absl::ResourceExhaustedError(absl::StrCat("map ", name_, " is full: ", what));
    return ErrnoStatus(err, what);
  }

  int fd_ = -1;
  std::string name_;
  bool batch_ = true;
  uint64_t batch_calls_ = 0;
};

// Per-CPU maps: one Value per possible CPU.
template <typename Key, typename Value>
class PerCpuMap {
 public:
  PerCpuMap() = default;
  PerCpuMap(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  static absl::StatusOr<PerCpuMap> From(const struct bpf_map* m) {
    if (bpf_map__key_size(m) != sizeof(Key) || bpf_map__value_size(m) != sizeof(Value))
      return absl::FailedPreconditionError(
          absl::StrCat("map ", bpf_map__name(m), ": key/value size does not match C++"));
    return PerCpuMap(bpf_map__fd(m), bpf_map__name(m));
  }

  absl::StatusOr<std::vector<Value>> Lookup(const Key& key) const {
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return ErrnoStatus(ncpu, "counting possible CPUs");
    // The kernel copies values rounded up to 8 bytes per CPU.
    constexpr size_t stride = (sizeof(Value) + 7) / 8 * 8;
    std::vector<unsigned char> raw(stride * ncpu);
    if (bpf_map_lookup_elem(fd_, &key, raw.data()) != 0)
      return ErrnoStatus(errno, absl::StrCat("lookup in map ", name_));
    std::vector<Value> out(ncpu);
    for (int i = 0; i < ncpu; i++) std::memcpy(&out[i], raw.data() + i * stride, sizeof(Value));
    return out;
  }

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }

 private:
  int fd_ = -1;
  std::string name_;
};

}  // namespace skiff
