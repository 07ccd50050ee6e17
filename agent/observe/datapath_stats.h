// Reads the datapath's numbers straight from the pinned BPF maps: per-CPU packet counters
// (skiff_metrics_v1, summed over CPUs), conntrack entries by family and protocol, and the
// fill level of every pinned hash map.
//
// Counters are read live on every scrape (one lookup per array slot). Counting conntrack and
// map entries walks whole maps, so those results are cached for `refresh` and a scrape storm
// costs at most one walk per period.
//
// Threads: Read() is called by the HTTP server's worker threads, possibly concurrently; the
// cache is guarded by mu_. BPF map reads need no lock (the kernel serializes them).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "agent/sources/unique_fd.h"

namespace skiff::observe {

struct TrafficRow {
  std::string direction;  // from_container, to_container, from_netdev, to_netdev, xdp
  int code = 0;           // 0: forwarded; else a negative drop code (maps/drop_reasons.h)
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

struct ConntrackRow {
  std::string family;    // ipv4
  std::string protocol;  // tcp, udp, icmp, other
  uint64_t entries = 0;
};

struct MapRow {
  std::string name;  // pin name under the bpffs root
  uint64_t entries = 0;
  uint32_t max_entries = 0;
};

struct DatapathSample {
  std::vector<TrafficRow> traffic;
  std::vector<ConntrackRow> conntrack;
  std::vector<MapRow> maps;
  uint64_t read_errors = 0;  // cumulative failed map reads
  // Flow events (docs/flows.md): from skiff_events_state_v1, summed over CPUs, and the
  // observer's own count.
  uint64_t flow_events_lost = 0;
  uint64_t flow_drop_events_rate_limited = 0;
  uint64_t flow_events_received = 0;
};

// "from_container", ...; "" for a slot no program uses.
std::string DirectionName(int dir);

class DatapathStats {
 public:
  explicit DatapathStats(std::string bpffs_root,
                         std::chrono::seconds refresh = std::chrono::seconds(5));
  DatapathSample Read();

 private:
  void ReadTraffic(DatapathSample& out);
  void ReadFlowEvents(DatapathSample& out);
  void RefreshCounts();  // mu_ held

  std::string root_;
  std::chrono::seconds refresh_;
  std::mutex mu_;
  sources::UniqueFd metrics_fd_;
  sources::UniqueFd events_state_fd_;
  std::chrono::steady_clock::time_point counted_at_{};
  bool counted_ = false;
  std::vector<ConntrackRow> conntrack_;
  std::vector<MapRow> maps_;
  uint64_t read_errors_ = 0;
};

}  // namespace skiff::observe
