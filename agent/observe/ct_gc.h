// Conntrack garbage collection (docs/datapath.md, "Conntrack GC"): every --ct-gc-interval
// seconds, delete the entries of BPF-written maps whose expiry has passed. The datapath
// already treats such an entry as absent; deleting it frees its slot, so live entries are not
// pushed towards LRU eviction by dead ones and `agentctl ct list` stops showing them.
//
// A sweep walks a map in batches (maps/map_walk.h), collects the keys of expired entries, then
// re-reads each and deletes it only if it is still expired: a packet that refreshed the entry
// meanwhile keeps it. Between that re-read and the delete a packet may still refresh the entry
// and lose it; the datapath then treats the flow as new (docs/datapath.md).
//
// Threads: CtGc::Start and the destructor run on the owner's (main) thread; sweeps run on
// CtGc's own thread, which only touches BPF maps (the kernel serializes access per element)
// and the ObserveBoard (under its mutex). The destructor wakes and joins the thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/observe/board.h"
#include "agent/reconcile/kv_table.h"
#include "maps/ct.h"
#include "maps/host_route.h"
#include "maps/nat.h"
#include "maps/policy.h"

struct bpf_map;

namespace skiff::observe {

// The clock BPF stamps expiries with. CLOCK_MONOTONIC_COARSE reads the same timekeeper value as
// bpf_ktime_get_coarse_ns, and is never ahead of bpf_ktime_get_ns (the fallback before 5.11),
// so the agent never sees an entry expire before the datapath does.
struct GcClock {
  uint64_t ns = 0;
  uint32_t sec() const { return static_cast<uint32_t>(ns / 1000000000ULL); }
};
GcClock GcNow();

// Expiry decisions, exactly as the datapath makes them.
// bpf/lib/conntrack.h skiff_ct4_lookup: dead when expires < now (seconds).
inline bool CtEntryExpired(const skiff_ct_entry& e, const GcClock& now) {
  return e.expires < now.sec();
}
// bpf/lib/policy.h: the same rule for the policy conntrack.
inline bool PolicyCtEntryExpired(const skiff_pol_ct_entry& e, const GcClock& now) {
  return e.expires < now.sec();
}
// bpf/lib/host_route.h: a cached route is used only while expires > now (nanoseconds).
inline bool HostRouteExpired(const skiff_host_route4& r, const GcClock& now) {
  return r.expires <= now.ns;
}

struct SweepCount {
  uint64_t seen = 0;     // entries walked
  uint64_t expired = 0;  // expired when walked
  uint64_t deleted = 0;  // still expired when re-read, and deleted
};

// Deletes the entries of `table` for which expired(key, value) holds, re-reading each before
// its delete. Entries written during the sweep may or may not be seen.
template <typename K, typename V>
absl::StatusOr<SweepCount> SweepExpired(reconcile::KvTable<K, V>& table,
                                        const std::function<bool(const K&, const V&)>& expired) {
  SweepCount c;
  // Keys first, deletes after the walk: deleting under a key-by-key walk's cursor would
  // restart it. 16 bytes per expired entry.
  std::vector<K> keys;
  auto st = table.ForEach([&](const K& k, const V& v) {
    c.seen++;
    if (expired(k, v)) keys.push_back(k);
    return true;
  });
  if (!st.ok()) return st;
  c.expired = keys.size();
  for (const K& k : keys) {
    auto now = table.Lookup(k);
    if (!now.ok()) return now.status();
    if (!*now || !expired(k, **now)) continue;  // gone, or refreshed by a packet
    auto removed = table.Remove(k);
    if (!removed.ok()) return removed.status();
    c.deleted += *removed;
  }
  return c;
}

// One map the GC sweeps.
class GcTarget {
 public:
  virtual ~GcTarget() = default;
  virtual const std::string& map() const = 0;
  virtual absl::StatusOr<SweepCount> Sweep(const GcClock& now) = 0;
};

// A table whose values carry their own expiry.
template <typename K, typename V>
class ExpiringTable : public GcTarget {
 public:
  using Expired = bool (*)(const V&, const GcClock&);
  ExpiringTable(std::unique_ptr<reconcile::KvTable<K, V>> table, Expired expired)
      : table_(std::move(table)), expired_(expired) {}
  const std::string& map() const override { return table_->name(); }
  absl::StatusOr<SweepCount> Sweep(const GcClock& now) override {
    return SweepExpired<K, V>(*table_, [&](const K&, const V& v) { return expired_(v, now); });
  }

 private:
  std::unique_ptr<reconcile::KvTable<K, V>> table_;
  Expired expired_;
};

// NodePort SNAT (maps/nat.h): its entries carry no expiry; a flow's entries are dead once its
// conntrack reply entry {backend:bport -> client:cport} is absent or expired (the datapath
// then lets a new flow take the port over, bpf/lib/snat.h). This is that entry's key, for an
// IN entry {backend:bport -> node:port} -> client:cport and for an OUT entry
// {client:cport -> backend:bport}.
skiff_ct4_key NatFlowReplyKey(const skiff_nat4_key& k, const skiff_nat4_entry& e);

// The SNAT map, swept by its flows' conntrack: an entry goes when its flow's reply entry is
// absent or expired. Not when it is only reset (the datapath may take such a port over at
// once, but the entries stay for stray segments until the conntrack entry expires). Run after
// the conntrack's own sweep, so the entries of flows just collected go in the same pass.
class NatTable : public GcTarget {
 public:
  NatTable(std::unique_ptr<reconcile::KvTable<skiff_nat4_key, skiff_nat4_entry>> nat,
           std::unique_ptr<reconcile::KvTable<skiff_ct4_key, skiff_ct_entry>> ct)
      : nat_(std::move(nat)), ct_(std::move(ct)) {}
  const std::string& map() const override { return nat_->name(); }
  absl::StatusOr<SweepCount> Sweep(const GcClock& now) override;

 private:
  std::unique_ptr<reconcile::KvTable<skiff_nat4_key, skiff_nat4_entry>> nat_;
  std::unique_ptr<reconcile::KvTable<skiff_ct4_key, skiff_ct_entry>> ct_;  // lookups only
};

// The datapath's maps with expiring entries, in sweep order: the service conntrack, the policy
// conntrack, the host-routing route cache and the NodePort SNAT map (nat: nullptr when
// north-south services are off). Other nullptr maps are skipped too.
absl::StatusOr<std::vector<std::unique_ptr<GcTarget>>> DatapathGcTargets(const bpf_map* ct,
                                                                         const bpf_map* policy_ct,
                                                                         const bpf_map* host_route,
                                                                         const bpf_map* nat);

// What one sweep over every target did.
struct SweepReport {
  std::vector<std::pair<std::string, SweepCount>> maps;  // in target order; failed ones omitted
  std::vector<std::string> errors;                       // "map: message"
  std::chrono::duration<double> duration{};
};

// Sweeps every target once (also the unit tests' entry point).
SweepReport SweepAll(const std::vector<std::unique_ptr<GcTarget>>& targets, const GcClock& now);

// The periodic sweeper. RAII: the destructor stops the thread (a sweep in progress finishes
// first; it takes no locks the owner holds).
class CtGc {
 public:
  // interval > 0. board may be null (no metrics). Registers the targets' maps with the board
  // (so their counters read 0 before the first deletion) and sweeps first after one interval.
  static std::unique_ptr<CtGc> Start(std::vector<std::unique_ptr<GcTarget>> targets,
                                     std::chrono::seconds interval, ObserveBoard* board);
  ~CtGc();
  CtGc(const CtGc&) = delete;
  CtGc& operator=(const CtGc&) = delete;

 private:
  CtGc(std::vector<std::unique_ptr<GcTarget>> targets, std::chrono::seconds interval,
       ObserveBoard* board)
      : targets_(std::move(targets)), interval_(interval), board_(board) {}
  void Run();

  std::vector<std::unique_ptr<GcTarget>> targets_;
  std::chrono::seconds interval_;
  ObserveBoard* board_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace skiff::observe
