#include "agent/observe/datapath_stats.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <netinet/in.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>

#include "agent/observe/flow_counters.h"
#include "maps/ct.h"
#include "maps/events.h"
#include "maps/map.h"
#include "maps/map_walk.h"
#include "maps/metrics.h"
#include "maps/names.h"
#include "maps/slot_array.h"

namespace skiff::observe {
namespace {

bool IsHashLike(__u32 type) {
  switch (type) {
    case BPF_MAP_TYPE_HASH:
    case BPF_MAP_TYPE_LRU_HASH:
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_LPM_TRIE:
    case BPF_MAP_TYPE_HASH_OF_MAPS:
      return true;
    default:
      return false;  // arrays are always full by construction; ring buffers have no entries
  }
}

// Counts a map's entries, reading them in batches (maps/map_walk.h: a few hundred syscalls for
// the 2.1M service entries of 100,000 Services, where a get_next_key walk made one per entry
// at every refresh), stopping at `limit`.
uint64_t CountKeys(int fd, const bpf_map_info& info, uint64_t limit,
                   const std::function<void(const void*)>& each, bool* ok) {
  uint64_t n = 0;
  const absl::Status st =
      WalkMap(fd, info.key_size, MapValueBytes(info.value_size, IsPerCpuMap(info.type)), info.name,
              [&](const void* k, const void*) {
                if (n >= limit) return false;
                n++;
                if (each) each(k);
                return true;
              });
  *ok = st.ok();
  return n;
}

const char* ProtoName(__u8 proto) {
  switch (proto) {
    case IPPROTO_TCP:
      return "tcp";
    case IPPROTO_UDP:
      return "udp";
    case IPPROTO_ICMP:
      return "icmp";
    default:
      return "other";
  }
}

}  // namespace

std::string DirectionName(int dir) {
  switch (dir) {
    case SKIFF_DIR_FROM_CONTAINER:
      return "from_container";
    case SKIFF_DIR_TO_CONTAINER:
      return "to_container";
    case SKIFF_DIR_FROM_NETDEV:
      return "from_netdev";
    case SKIFF_DIR_TO_NETDEV:
      return "to_netdev";
    case SKIFF_DIR_XDP:
      return "xdp";
    case SKIFF_DIR_SOCK:
      return "sock";
    case SKIFF_DIR_HOST_ROUTED:
      return "host_routed";
    default:
      return "";
  }
}

DatapathStats::DatapathStats(std::string bpffs_root, std::chrono::seconds refresh)
    : root_(std::move(bpffs_root)), refresh_(refresh) {}

void DatapathStats::ReadTraffic(DatapathSample& out) {
  if (!metrics_fd_.valid()) {
    std::string path = root_ + "/" + SKIFF_STR(SKIFF_MAP_METRICS);
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
      read_errors_++;
      return;
    }
    metrics_fd_ = sources::UniqueFd(fd);
  }
  PerCpuMap<__u32, skiff_metrics_val> m(metrics_fd_.get(), SKIFF_STR(SKIFF_MAP_METRICS));
  for (int dir = 0; dir < SKIFF_DIR_COUNT; dir++) {
    std::string name = DirectionName(dir);
    if (name.empty()) continue;
    auto add = [&](int code) {
      __u32 idx = SKIFF_METRICS_INDEX(dir, code);
      auto vals = m.Lookup(idx);
      if (!vals.ok()) {
        read_errors_++;
        return;
      }
      TrafficRow row{name, code, 0, 0};
      for (const auto& v : *vals) {
        row.packets += v.packets;
        row.bytes += v.bytes;
      }
      out.traffic.push_back(row);
    };
    add(0);
#define SKIFF_OBS_DROP_(n, code, desc) add(code);
    SKIFF_DROP_REASONS(SKIFF_OBS_DROP_)
#undef SKIFF_OBS_DROP_
  }
}

void DatapathStats::ReadFlowEvents(DatapathSample& out) {
  out.flow_events_received = FlowEventsReceived().load(std::memory_order_relaxed);
  if (!events_state_fd_.valid()) {
    std::string path = root_ + "/" + SKIFF_STR(SKIFF_MAP_EVENTS_STATE);
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
      read_errors_++;
      return;
    }
    events_state_fd_ = sources::UniqueFd(fd);
  }
  PerCpuMap<__u32, skiff_events_state> m(events_state_fd_.get(), SKIFF_STR(SKIFF_MAP_EVENTS_STATE));
  auto vals = m.Lookup(0);
  if (!vals.ok()) {
    read_errors_++;
    return;
  }
  for (const auto& v : *vals) {
    out.flow_events_lost += v.lost;
    out.flow_drop_events_rate_limited += v.rate_limited;
  }
}

void DatapathStats::RefreshCounts() {
  conntrack_.clear();
  maps_.clear();
  std::error_code ec;
  std::vector<std::filesystem::path> pins;
  for (auto it = std::filesystem::directory_iterator(root_, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    if (!it->is_directory()) pins.push_back(it->path());
  std::sort(pins.begin(), pins.end());
  const std::string ct_name = SKIFF_STR(SKIFF_MAP_CT4);
  for (const auto& path : pins) {
    int raw = bpf_obj_get(path.c_str());
    if (raw < 0) continue;  // a pinned program or link, not a map
    sources::UniqueFd fd(raw);
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;  // not a map
    const std::string name = path.filename().string();
    // A slot array (the backends map) counts its present entries, as a hash would.
    const bool slots = info.type == BPF_MAP_TYPE_ARRAY && IsSlotArrayMap(name);
    if (!IsHashLike(info.type) && !slots) continue;
    bool ok = false;
    uint64_t n;
    if (name == ct_name && info.key_size == sizeof(skiff_ct4_key)) {
      std::map<std::string, uint64_t> by_proto = {{"tcp", 0}, {"udp", 0}, {"icmp", 0}};
      n = CountKeys(
          fd.get(), info, info.max_entries,
          [&](const void* k) {
            by_proto[ProtoName(static_cast<const skiff_ct4_key*>(k)->proto)]++;
          },
          &ok);
      for (const auto& [proto, count] : by_proto) conntrack_.push_back({"ipv4", proto, count});
    } else if (slots) {
      n = 0;
      ok = WalkPresent(fd.get(), info.key_size, info.value_size, name,
                       [&](const void*, const void*) {
                         n++;
                         return true;
                       })
               .ok();
    } else {
      n = CountKeys(fd.get(), info, info.max_entries, nullptr, &ok);
    }
    if (!ok) read_errors_++;
    maps_.push_back({name, n, info.max_entries});
  }
  if (ec) read_errors_++;
}

DatapathSample DatapathStats::Read() {
  std::lock_guard<std::mutex> lock(mu_);
  DatapathSample out;
  ReadTraffic(out);
  ReadFlowEvents(out);
  auto now = std::chrono::steady_clock::now();
  if (!counted_ || now - counted_at_ >= refresh_) {
    RefreshCounts();
    counted_ = true;
    counted_at_ = now;
  }
  out.conntrack = conntrack_;
  out.maps = maps_;
  out.read_errors = read_errors_;
  return out;
}

}  // namespace skiff::observe
