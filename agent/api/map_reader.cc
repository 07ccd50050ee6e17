#include "agent/api/map_reader.h"

#include <bpf/libbpf.h>
#include <dirent.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "agent/loader/skeleton.h"
#include "maps/map_walk.h"
#include "maps/slot_array.h"

namespace skiff::api {

std::string MapTypeName(uint32_t type) {
  switch (type) {
    case BPF_MAP_TYPE_HASH:
      return "hash";
    case BPF_MAP_TYPE_ARRAY:
      return "array";
    case BPF_MAP_TYPE_PERCPU_HASH:
      return "percpu_hash";
    case BPF_MAP_TYPE_PERCPU_ARRAY:
      return "percpu_array";
    case BPF_MAP_TYPE_LRU_HASH:
      return "lru_hash";
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
      return "lru_percpu_hash";
    case BPF_MAP_TYPE_LPM_TRIE:
      return "lpm_trie";
    case BPF_MAP_TYPE_HASH_OF_MAPS:
      return "hash_of_maps";
    case BPF_MAP_TYPE_ARRAY_OF_MAPS:
      return "array_of_maps";
    case BPF_MAP_TYPE_RINGBUF:
      return "ringbuf";
    case BPF_MAP_TYPE_PROG_ARRAY:
      return "prog_array";
    default:
      return absl::StrCat("type_", type);
  }
}

absl::StatusOr<std::unique_ptr<FdMapReader>> FdMapReader::Borrow(int fd, std::string name) {
  std::unique_ptr<FdMapReader> r(new FdMapReader(fd, false));
  if (auto st = r->Init(std::move(name)); !st.ok()) return st;
  return r;
}

absl::StatusOr<std::unique_ptr<FdMapReader>> FdMapReader::OpenPinned(const std::string& path,
                                                                     std::string name) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat("no pinned map at ", path));
    if (err == EPERM || err == EACCES)
      return absl::PermissionDeniedError(
          absl::StrCat("opening ", path, ": permission denied (reading BPF maps needs root)"));
    return ErrnoStatus(err, absl::StrCat("opening pinned map ", path));
  }
  std::unique_ptr<FdMapReader> r(new FdMapReader(fd, true));
  if (auto st = r->Init(std::move(name)); !st.ok()) return st;
  return r;
}

FdMapReader::~FdMapReader() {
  if (owned_ && fd_ >= 0) close(fd_);
}

absl::Status FdMapReader::Init(std::string name) {
  bpf_map_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd_, &info, &len) != 0)
    return absl::InvalidArgumentError(absl::StrCat(name, " is not a BPF map"));
  meta_.name = name.empty() ? info.name : std::move(name);
  meta_.type = MapTypeName(info.type);
  meta_.key_size = info.key_size;
  meta_.value_size = info.value_size;
  meta_.max_entries = info.max_entries;
  meta_.per_cpu = IsPerCpuMap(info.type);
  meta_.slot_array = info.type == BPF_MAP_TYPE_ARRAY && IsSlotArrayMap(meta_.name);
  meta_.is_array = (info.type == BPF_MAP_TYPE_ARRAY || info.type == BPF_MAP_TYPE_PERCPU_ARRAY) &&
                   !meta_.slot_array;
  return absl::OkStatus();
}

absl::Status FdMapReader::ForEach(const RawEntryFn& fn) const {
  const size_t vlen = MapValueBytes(meta_.value_size, meta_.per_cpu);
  if (meta_.per_cpu && vlen == 0) return absl::InternalError("cannot count the possible CPUs");
  auto each = [&](const void* k, const void* v) {
    return fn(Bytes(static_cast<const uint8_t*>(k), meta_.key_size),
              Bytes(static_cast<const uint8_t*>(v), vlen));
  };
  if (meta_.slot_array) return WalkPresent(fd_, meta_.key_size, vlen, meta_.name, each);
  return WalkMap(fd_, meta_.key_size, vlen, meta_.name, each);
}

absl::StatusOr<uint64_t> FdMapReader::Count() const {
  if (meta_.is_array) return meta_.max_entries;
  uint64_t n = 0;
  if (auto st = ForEach([&](Bytes, Bytes) { return ++n, true; }); !st.ok()) return st;
  return n;
}

absl::StatusOr<std::vector<std::string>> ListPinnedMaps(const std::string& root) {
  DIR* d = opendir(root.c_str());
  if (!d) {
    int err = errno;
    if (err == ENOENT)
      return absl::NotFoundError(absl::StrCat(
          "no pinned maps: ", root, " does not exist (is the datapath loaded? see --bpffs-root)"));
    if (err == EACCES || err == EPERM)
      return absl::PermissionDeniedError(
          absl::StrCat("reading ", root, ": permission denied (reading BPF maps needs root)"));
    return ErrnoStatus(err, absl::StrCat("listing ", root));
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st {};
    if (stat((root + "/" + n).c_str(), &st) == 0 && S_ISREG(st.st_mode)) names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace skiff::api
