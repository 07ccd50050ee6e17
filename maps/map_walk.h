// Reading every entry of a BPF map by fd: the one walk behind Map::ForEach, `agentctl map`
// dumps (agent/api/map_reader.cc) and the copies of a resized or re-laid-out map
// (agent/loader/pinned_maps.cc, map_upgrade.cc).
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "agent/loader/skeleton.h"

namespace skiff {

// Whether a map type keeps one value per CPU.
inline bool IsPerCpuMap(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

// Bytes one entry's value takes in a syscall buffer: per-CPU maps hand out value_size
// rounded up to 8 once per possible CPU. 0 when the CPUs cannot be counted.
inline size_t MapValueBytes(size_t value_size, bool per_cpu) {
  if (!per_cpu) return value_size;
  const int ncpu = libbpf_num_possible_cpus();
  return ncpu <= 0 ? 0 : (value_size + 7) / 8 * 8 * static_cast<size_t>(ncpu);
}

// Calls fn(key, value) for every entry until it returns false; the pointers are valid during
// the call only. Entries written or deleted meanwhile may or may not be seen, and none is
// seen twice. Reads up to 4,096 entries (and ~1 MiB of values; fewer at first) per syscall with
// BPF_MAP_LOOKUP_BATCH (5.6+: hash, LRU, per-CPU and array maps): the get_next_key + lookup
// pair per entry took seconds for the 600,000 service entries of 30,000 Services. A map type
// or kernel that refuses batches (before anything was read) is walked key by key.
inline absl::Status WalkMap(int fd, size_t key_size, size_t value_bytes, absl::string_view name,
                            absl::FunctionRef<bool(const void* key, const void* value)> fn) {
  if (key_size == 0) return absl::OkStatus();  // a ring buffer: no keyed entries
  {
    // Buffers start small and grow with the map: walking an empty or small map (the
    // affinity map, on every reconcile pass) must not allocate and zero a megabyte.
    const size_t most = std::clamp<size_t>((1u << 20) / std::max<size_t>(value_bytes, 1), 1, 4096);
    size_t n = std::min<size_t>(most, 32);
    std::unique_ptr<unsigned char[]> keys(new unsigned char[n * key_size]);
    std::unique_ptr<unsigned char[]> values(new unsigned char[n * value_bytes]);
    auto grow = [&](size_t to) {
      n = to;
      keys.reset(new unsigned char[n * key_size]);
      values.reset(new unsigned char[n * value_bytes]);
    };
    // The cursor: a bucket number for hash maps, a key for arrays; room for either.
    std::vector<unsigned char> cursor(std::max<size_t>(key_size, 8));
    bool first = true;
    while (true) {
      __u32 count = static_cast<__u32>(n);
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      const int rc = bpf_map_lookup_batch(fd, first ? nullptr : cursor.data(), cursor.data(),
                                          keys.get(), values.get(), &count, &opts);
      const int err = rc == 0 ? 0 : errno;
      if (rc != 0 && err != ENOENT) {
        if (err == ENOSPC && count == 0 && n < (1u << 20)) {
          grow(n * 2);  // one hash bucket holds more entries than the buffers; same cursor
          continue;
        }
        // Refused before anything was read: key by key below.
        if (first &&
            (err == 524 /* ENOTSUPP */ || err == EOPNOTSUPP || err == EINVAL || err == ENOSYS))
          break;
        return ErrnoStatus(err, absl::StrCat("reading map ", name));
      }
      first = false;
      for (__u32 i = 0; i < count; i++)
        if (!fn(keys.get() + i * key_size, values.get() + i * value_bytes)) return absl::OkStatus();
      if (err == ENOENT) return absl::OkStatus();  // that was the last batch
      if (count == n && n < most) grow(std::min(n * 8, most));
    }
  }
  std::vector<unsigned char> cur(key_size), next(key_size), value(value_bytes);
  bool have_cur = false;
  while (bpf_map_get_next_key(fd, have_cur ? cur.data() : nullptr, next.data()) == 0) {
    if (bpf_map_lookup_elem(fd, next.data(), value.data()) == 0 && !fn(next.data(), value.data()))
      return absl::OkStatus();
    cur.swap(next);
    have_cur = true;
  }
  if (errno != ENOENT) return ErrnoStatus(errno, absl::StrCat("iterating map ", name));
  return absl::OkStatus();
}

}  // namespace skiff
