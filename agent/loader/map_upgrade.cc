#include "agent/loader/map_upgrade.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/loader/layout_v1.h"
#include "agent/loader/skeleton.h"
#include "maps/ct.h"
#include "maps/events.h"
#include "maps/lb.h"
#include "maps/map_walk.h"
#include "maps/names.h"

namespace skiff::loader {
namespace {

// The v2 layouts stay compact: a size change here is a new layout (a new suffix).
static_assert(sizeof(skiff_lb4_service) == 20);
static_assert(sizeof(skiff_lb4_affinity_key) == 8);
static_assert(sizeof(skiff_lb4_src_range_key) == 12);
static_assert(sizeof(skiff_lb4_maglev_key) == 8);
static_assert(sizeof(skiff_ct_entry) == 48);
static_assert(sizeof(skiff_flow_event) == 56);

struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// The index an array map's key holds.
__u32 ArrayIndex(const std::vector<char>& key) {
  __u32 index;
  std::memcpy(&index, key.data(), sizeof(index));
  return index;
}

// An upgrade whose entries convert from (OK, OV) to (NK, NV) with f(ok, ov, nk, nv).
template <typename OK, typename OV, typename NK, typename NV, typename F>
LayoutUpgrade Convert(const char* old_name, const char* new_name, uint32_t type, F f) {
  LayoutUpgrade u{old_name, new_name, type, sizeof(OK), sizeof(OV), {}};
  u.convert = [f](const void* ok, const void* ov, void* nk, void* nv) {
    OK k;
    OV v;
    std::memcpy(&k, ok, sizeof(k));
    std::memcpy(&v, ov, sizeof(v));
    NK k2;
    NV v2;
    std::memset(&k2, 0, sizeof(k2));  // keys and values are hashed whole: zero the padding
    std::memset(&v2, 0, sizeof(v2));
    if (!f(k, v, k2, v2)) return false;
    std::memcpy(nk, &k2, sizeof(k2));
    std::memcpy(nv, &v2, sizeof(v2));
    return true;
  };
  return u;
}

std::vector<LayoutUpgrade> MakeUpgrades() {
  std::vector<LayoutUpgrade> u;
  u.push_back(Convert<skiff_lb4_key, v1::Lb4Service, skiff_lb4_key, skiff_lb4_service>(
      v1::kServices, SKIFF_STR(SKIFF_MAP_LB4_SERVICES), BPF_MAP_TYPE_HASH,
      [](const skiff_lb4_key& k, const v1::Lb4Service& v, skiff_lb4_key& nk,
         skiff_lb4_service& nv) {
        nk = k;
        nv.backend_id = v.backend_id;
        nv.count = v.count;
        nv.terminating_count = v.terminating_count;
        nv.rev_nat_id = v.rev_nat_id;
        nv.flags = v.flags;
        nv.algorithm = v.algorithm;
        nv.affinity_timeout = v.affinity_timeout;
        return true;
      }));
  // The hash of v1 becomes an array indexed by the id: the same key and value.
  u.push_back(Convert<__u32, skiff_lb4_backend, __u32, skiff_lb4_backend>(
      v1::kBackends, SKIFF_STR(SKIFF_MAP_LB4_BACKENDS), BPF_MAP_TYPE_HASH,
      [](__u32 k, const skiff_lb4_backend& v, __u32& nk, skiff_lb4_backend& nv) {
        nk = k;
        nv = v;
        return skiff_lb4_backend_present(&v) != 0;  // an empty slot of the array otherwise
      }));
  u.push_back(Convert<__u16, skiff_lb4_revnat, __u32, skiff_lb4_revnat>(
      v1::kRevNat, SKIFF_STR(SKIFF_MAP_LB4_REVNAT), BPF_MAP_TYPE_HASH,
      [](__u16 k, const skiff_lb4_revnat& v, __u32& nk, skiff_lb4_revnat& nv) {
        nk = k;
        nv = v;
        return true;
      }));
  u.push_back(Convert<v1::Lb4AffinityKey, skiff_lb_affinity_val, skiff_lb4_affinity_key,
                      skiff_lb_affinity_val>(
      v1::kAffinity, SKIFF_STR(SKIFF_MAP_LB4_AFFINITY), BPF_MAP_TYPE_LRU_HASH,
      [](const v1::Lb4AffinityKey& k, const skiff_lb_affinity_val& v, skiff_lb4_affinity_key& nk,
         skiff_lb_affinity_val& nv) {
        nk.client = k.client;
        nk.rev_nat_id = k.rev_nat_id;
        nv = v;
        return true;
      }));
  u.push_back(Convert<v1::Lb4SrcRangeKey, skiff_lb4_src_range_val, skiff_lb4_src_range_key,
                      skiff_lb4_src_range_val>(
      v1::kSrcRange, SKIFF_STR(SKIFF_MAP_LB4_SRC_RANGE), BPF_MAP_TYPE_LPM_TRIE,
      [](const v1::Lb4SrcRangeKey& k, const skiff_lb4_src_range_val& v, skiff_lb4_src_range_key& nk,
         skiff_lb4_src_range_val& nv) {
        nk.prefixlen = k.prefixlen;  // still 32 id bits + the CIDR's length
        nk.rev_nat_id = k.rev_nat_id;
        nk.address = k.address;
        nv = v;
        return true;
      }));
  u.push_back(Convert<skiff_ct4_key, v1::CtEntry, skiff_ct4_key, skiff_ct_entry>(
      v1::kCt4, SKIFF_STR(SKIFF_MAP_CT4), BPF_MAP_TYPE_LRU_HASH,
      [](const skiff_ct4_key& k, const v1::CtEntry& v, skiff_ct4_key& nk, skiff_ct_entry& nv) {
        nk = k;
        nv.packets = v.packets;
        nv.bytes = v.bytes;
        nv.expires = v.expires;
        nv.created = v.created;
        nv.backend_id = v.backend_id;
        nv.rev_nat_id = v.rev_nat_id;
        nv.nat_addr = v.nat_addr;
        nv.orig_addr = v.orig_addr;
        nv.nat_port = v.nat_port;
        nv.orig_port = v.orig_port;
        nv.flags = v.flags;
        nv.tcp_flags = v.tcp_flags;
        return true;
      }));
  // Rebuilt by the reconciler (any value size: it is --maglev-table-size x 4).
  u.push_back(LayoutUpgrade{v1::kMaglev,
                            SKIFF_STR(SKIFF_MAP_LB4_MAGLEV),
                            BPF_MAP_TYPE_HASH,
                            sizeof(__u16) + 2 * sizeof(__u8),
                            0,
                            {}});
  // A ring buffer has no key or value; its records are transient.
  u.push_back(
      LayoutUpgrade{v1::kEvents, SKIFF_STR(SKIFF_MAP_EVENTS), BPF_MAP_TYPE_RINGBUF, 0, 0, {}});
  return u;
}

}  // namespace

const std::vector<LayoutUpgrade>& KnownLayoutUpgrades() {
  static const std::vector<LayoutUpgrade> upgrades = MakeUpgrades();
  return upgrades;
}

bool HasOldPin(const std::string& root, const std::string& new_name,
               const std::vector<LayoutUpgrade>& upgrades) {
  for (const auto& u : upgrades)
    if (u.new_name == new_name && access(absl::StrCat(root, "/", u.old_name).c_str(), F_OK) == 0)
      return true;
  return false;
}

absl::StatusOr<std::vector<std::string>> DropStaleNewPins(
    const std::string& root, const std::vector<LayoutUpgrade>& upgrades) {
  std::vector<std::string> dropped;
  for (const LayoutUpgrade& u : upgrades) {
    const std::string old_pin = absl::StrCat(root, "/", u.old_name);
    const std::string new_pin = absl::StrCat(root, "/", u.new_name);
    if (access(old_pin.c_str(), F_OK) != 0 || access(new_pin.c_str(), F_OK) != 0) continue;
    if (unlink(new_pin.c_str()) != 0)
      return ErrnoStatus(errno, absl::StrCat("removing stale pinned map ", new_pin));
    dropped.push_back(u.new_name);
  }
  return dropped;
}

absl::StatusOr<std::vector<std::string>> UpgradePinnedLayouts(
    bpf_object* obj, const std::string& root, const std::vector<LayoutUpgrade>& upgrades) {
  // Every old pin's shape is checked before anything is converted or removed.
  struct Found {
    const LayoutUpgrade* u;
    std::string pin;
    Fd fd;
    bpf_map_info info{};
  };
  std::vector<Found> found;
  found.reserve(upgrades.size());
  for (const LayoutUpgrade& u : upgrades) {
    Found& f = found.emplace_back();
    f.u = &u;
    f.pin = absl::StrCat(root, "/", u.old_name);
    f.fd.fd = bpf_obj_get(f.pin.c_str());
    if (f.fd.fd < 0) {
      if (errno == ENOENT) {
        found.pop_back();
        continue;
      }
      return ErrnoStatus(errno, absl::StrCat("opening old pinned map ", f.pin));
    }
    uint32_t len = sizeof(f.info);
    if (bpf_obj_get_info_by_fd(f.fd.fd, &f.info, &len) != 0)
      return ErrnoStatus(errno, absl::StrCat("reading info of old pinned map ", f.pin));
    if (f.info.type != u.old_type || f.info.key_size != u.old_key_size ||
        (u.old_value_size != 0 && f.info.value_size != u.old_value_size))
      return absl::FailedPreconditionError(absl::StrCat(
          "old pinned map ", f.pin, " has type ", f.info.type, ", key/value size ", f.info.key_size,
          "/", f.info.value_size, " but its known layout is type ", u.old_type, ", ",
          u.old_key_size, "/", u.old_value_size,
          ": not upgrading it; remove it with `skiff-agent --cleanup` (drops conntrack)"));
  }
  std::vector<std::string> done;
  for (Found& f : found) {
    const LayoutUpgrade& u = *f.u;
    const bpf_map_info& info = f.info;
    uint64_t copied = 0, skipped = 0;
    if (u.convert) {
      bpf_map* m = bpf_object__find_map_by_name(obj, u.new_name.c_str());
      if (m == nullptr)
        return absl::InternalError(absl::StrCat("map ", u.new_name, " is not in the object"));
      const int new_fd = bpf_map__fd(m);
      const bool lru = bpf_map__type(m) == BPF_MAP_TYPE_LRU_HASH;
      const bool array = bpf_map__type(m) == BPF_MAP_TYPE_ARRAY;
      std::vector<char> nk(bpf_map__key_size(m)), nv(bpf_map__value_size(m));
      absl::Status failed = absl::OkStatus();
      absl::Status read = WalkMap(
          f.fd.fd, info.key_size, info.value_size, f.pin, [&](const void* k, const void* v) {
            if (!u.convert(k, v, nk.data(), nv.data())) {
              skipped++;
            } else if (array && ArrayIndex(nk) >= bpf_map__max_entries(m)) {
              // Ids are indexes of the new map: it must be larger than the highest.
              const __u32 index = ArrayIndex(nk);
              failed = absl::FailedPreconditionError(absl::StrCat(
                  u.old_name, " holds id ", index, ", beyond ", u.new_name, " (",
                  bpf_map__max_entries(m), " entries): not upgrading it; raise the map's size ",
                  "flag above ", index, " and restart"));
              return false;
            } else if (bpf_map_update_elem(new_fd, nk.data(), nv.data(), BPF_ANY) == 0) {
              copied++;
            } else if (!(lru && errno == E2BIG)) {
              failed = ErrnoStatus(errno, absl::StrCat("copying ", u.old_name, " into ", u.new_name,
                                                       " (", copied, " entries copied)"));
              return false;
            }
            return true;
          });
      if (!failed.ok()) return failed;
      if (!read.ok()) return read;
    }
    if (unlink(f.pin.c_str()) != 0)
      return ErrnoStatus(errno, absl::StrCat("removing old pinned map ", f.pin));
    done.push_back(
        u.convert
            ? absl::StrCat(u.old_name, " -> ", u.new_name, ": ", copied, " entries converted",
                           skipped ? absl::StrCat(", ", skipped, " skipped") : "")
            : absl::StrCat(u.old_name, " -> ", u.new_name, ": dropped (",
                           u.new_name == SKIFF_STR(SKIFF_MAP_EVENTS) ? "transient records"
                                                                     : "rebuilt by the reconciler",
                           ")"));
  }
  return done;
}

}  // namespace skiff::loader
