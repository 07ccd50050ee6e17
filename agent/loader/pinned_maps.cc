#include "agent/loader/pinned_maps.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/loader/skeleton.h"
#include "maps/map_walk.h"
#include "maps/names.h"
#include "maps/slot_array.h"

namespace skiff::loader {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

bool IsLru(uint32_t type) {
  return type == BPF_MAP_TYPE_LRU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}
bool IsArray(uint32_t type) {
  return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

uint64_t CountEntries(int fd, uint32_t key_size, size_t value_bytes) {
  uint64_t n = 0;
  (void)WalkMap(fd, key_size, value_bytes, "", [&](const void*, const void*) { return ++n, true; });
  return n;
}

}  // namespace

absl::Status ShareMapShapes(bpf_object* obj, const bpf_object* from) {
  bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    const bpf_map* shared = bpf_object__find_map_by_name(from, bpf_map__name(m));
    if (!shared || bpf_map__pin_path(shared) == nullptr) continue;
    if (int err = bpf_map__set_max_entries(m, bpf_map__max_entries(shared)))
      return ErrnoStatus(err, absl::StrCat("sizing ", bpf_map__name(m)));
    if (int err = bpf_map__set_value_size(m, bpf_map__value_size(shared)))  // the maglev tables
      return ErrnoStatus(err, absl::StrCat("sizing values of ", bpf_map__name(m)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<MapMigration>> PreparePinnedMaps(bpf_object* obj,
                                                            const std::string& root) {
  std::vector<MapMigration> out;
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    // Only maps declared with LIBBPF_PIN_BY_NAME are pinned; .rodata/.bss are not.
    if (!bpf_map__is_pinned(map) && bpf_map__pin_path(map) == nullptr) continue;
    std::string name = bpf_map__name(map);
    std::string path = absl::StrCat(root, "/", name);
    if (int err = bpf_map__set_pin_path(map, path.c_str()))
      return ErrnoStatus(err, absl::StrCat("setting pin path of map ", name));
    Fd pinned{bpf_obj_get(path.c_str())};
    if (pinned.fd < 0) {
      if (errno == ENOENT) continue;  // first start: created at load
      return ErrnoStatus(errno, absl::StrCat("opening pinned map ", path));
    }
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(pinned.fd, &info, &len) != 0)
      return ErrnoStatus(errno, absl::StrCat("reading info of pinned map ", path));
    auto mismatch = [&](const char* field, uint64_t have, uint64_t want) {
      return absl::FailedPreconditionError(absl::StrCat(
          "pinned map ", path, " has ", field, " ", have, " but this agent expects ", want,
          ": its layout changed without a new version suffix; remove it with "
          "`skiff-agent --cleanup` (drops conntrack) or run a matching agent"));
    };
    if (info.type != bpf_map__type(map)) return mismatch("type", info.type, bpf_map__type(map));
    if (info.key_size != bpf_map__key_size(map))
      return mismatch("key size", info.key_size, bpf_map__key_size(map));
    if (info.value_size != bpf_map__value_size(map)) {
      // The maglev tables' value size is --maglev-table-size: a new size makes new tables,
      // which the reconciler rebuilds from scratch (until then maglev frontends pick at
      // random, maps/lb.h), so the old map is simply dropped.
      if (name == SKIFF_STR(SKIFF_MAP_LB4_MAGLEV) && info.type == bpf_map__type(map)) {
        if (unlink(path.c_str()) != 0)
          return ErrnoStatus(errno, absl::StrCat("removing ", path, " (new --maglev-table-size)"));
        continue;
      }
      return mismatch("value size", info.value_size, bpf_map__value_size(map));
    }
    if (info.map_flags != bpf_map__map_flags(map))
      return mismatch("flags", info.map_flags, bpf_map__map_flags(map));
    uint32_t want_max = bpf_map__max_entries(map);
    if (info.max_entries == want_max) continue;
    if (info.type == BPF_MAP_TYPE_ARRAY && IsSlotArrayMap(name) && want_max < info.max_entries) {
      // A slot array keeps its ids as indexes: a smaller array must still hold the highest.
      uint64_t highest = 0;
      __u32 key = 0;
      absl::Status st = WalkPresent(pinned.fd, info.key_size, info.value_size, path,
                                    [&](const void* k, const void*) {
                                      std::memcpy(&key, k, sizeof(key));
                                      highest = std::max<uint64_t>(highest, key);
                                      return true;
                                    });
      if (!st.ok()) return st;
      if (highest >= want_max)
        return absl::FailedPreconditionError(
            absl::StrCat("map ", name, " holds id ", highest, ", beyond the requested size ",
                         want_max, "; keep the size at least ", highest + 1));
    }
    if (!IsLru(info.type) && !IsArray(info.type)) {
      uint64_t n = CountEntries(pinned.fd, info.key_size,
                                MapValueBytes(info.value_size, IsPerCpuMap(info.type)));
      if (n > want_max)
        return absl::FailedPreconditionError(
            absl::StrCat("map ", name, " holds ", n, " entries, more than the requested size ",
                         want_max, "; keep the size at least ", n));
    }
    // No dot in the name: bpffs refuses dotted names (reserved for its own files) with EPERM.
    std::string aside = path + "__resizing";
    unlink(aside.c_str());
    if (rename(path.c_str(), aside.c_str()) != 0)
      return ErrnoStatus(errno, absl::StrCat("moving ", path, " aside for resizing"));
    out.push_back(MapMigration{name, aside, info.max_entries, want_max});
  }
  return out;
}

absl::Status FinishMigrations(bpf_object* obj, const std::vector<MapMigration>& migrations) {
  for (const auto& m : migrations) {
    bpf_map* map = bpf_object__find_map_by_name(obj, m.name.c_str());
    if (!map) return absl::InternalError(absl::StrCat("map ", m.name, " vanished from object"));
    Fd old{bpf_obj_get(m.old_pin.c_str())};
    if (old.fd < 0) return ErrnoStatus(errno, absl::StrCat("opening ", m.old_pin));
    int new_fd = bpf_map__fd(map);
    uint32_t ks = bpf_map__key_size(map), vs = bpf_map__value_size(map);
    const size_t vbuf = MapValueBytes(vs, IsPerCpuMap(bpf_map__type(map)));
    // Read in batches, written in batches of what was read.
    std::vector<char> keys, vals;
    size_t pending = 0;
    auto flush = [&]() -> absl::Status {
      for (size_t i = 0; i < pending;) {
        __u32 count = static_cast<__u32>(pending - i);
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        if (bpf_map_update_batch(new_fd, keys.data() + i * ks, vals.data() + i * vbuf, &count,
                                 &opts) == 0)
          break;
        // count: the entries written before the failing one (left as given when the batch
        // was refused outright).
        if (count >= pending - i) count = 0;
        i += count;
        // The entry at i alone. An array that shrank drops its tail (E2BIG); LRU maps evict
        // on their own.
        if (bpf_map_update_elem(new_fd, keys.data() + i * ks, vals.data() + i * vbuf, BPF_ANY) !=
                0 &&
            !(IsArray(bpf_map__type(map)) && errno == E2BIG))
          return ErrnoStatus(errno, absl::StrCat("copying entries into resized map ", m.name));
        i++;
      }
      pending = 0;
      return absl::OkStatus();
    };
    absl::Status copied = absl::OkStatus();
    absl::Status read = WalkMap(old.fd, ks, vbuf, m.old_pin, [&](const void* k, const void* v) {
      if (pending == 4096) {
        copied = flush();
        if (!copied.ok()) return false;
      }
      keys.resize((pending + 1) * ks);
      vals.resize((pending + 1) * vbuf);
      std::memcpy(keys.data() + pending * ks, k, ks);
      std::memcpy(vals.data() + pending * vbuf, v, vbuf);
      pending++;
      return true;
    });
    if (copied.ok()) copied = flush();
    if (!copied.ok()) return copied;
    if (!read.ok()) return read;
    unlink(m.old_pin.c_str());
  }
  return absl::OkStatus();
}

void AbortMigrations(const std::vector<MapMigration>& migrations, const std::string& root) {
  for (const auto& m : migrations) {
    std::string path = absl::StrCat(root, "/", m.name);
    unlink(path.c_str());
    rename(m.old_pin.c_str(), path.c_str());
  }
}

}  // namespace skiff::loader
