// What the HTTP endpoints need from the agent's main loop, published under one mutex:
// source sync state, interface attachments, reconcile outcomes and the two latency
// histograms. BPF maps are not here: the endpoints read them directly (DatapathStats).
//
// Threads: the main loop calls the setters (SetSources, SetAttachments, QueuedUpdate,
// Reconciled), the conntrack GC thread CtGcMaps/CtGcSwept (ct_gc.h); the HTTP server threads
// call Read(). Every member is guarded by mu_, and Read()
// returns a copy, so no handler holds the lock while it formats a response.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/observe/exposition.h"

namespace skiff::observe {

// Bucket bounds in seconds. Sync latency spans a sub-millisecond manifest edit to a slow
// reconcile of a large cluster; reconcile duration starts lower (an unchanged diff).
std::vector<double> SyncLatencyBuckets();
std::vector<double> ReconcileDurationBuckets();

// The conntrack GC's counters (ct_gc.h); zero while it is disabled (--ct-gc-interval 0).
struct CtGcSample {
  uint64_t runs_total = 0;                        // sweeps over every map
  uint64_t errors_total = 0;                      // map sweeps that failed
  std::map<std::string, uint64_t> deleted_total;  // map -> entries deleted
  double last_duration_seconds = 0;               // of the last sweep
};

struct AgentSample {
  std::map<std::string, bool> sources;  // source -> completed its first full read
  int attached_ifaces = 0;
  std::vector<std::string> unattached_ifaces;  // match --endpoint-ifaces, attach failed
  bool applied_synced = false;  // a successful reconcile of a fully synced store happened
  std::chrono::system_clock::time_point last_updated{};                // last successful reconcile
  std::optional<std::chrono::steady_clock::time_point> pending_since;  // oldest unapplied change
  uint64_t reconcile_errors_total = 0;
  Histogram sync_latency{SyncLatencyBuckets()};
  Histogram reconcile_duration{ReconcileDurationBuckets()};
  CtGcSample ct_gc;
};

class ObserveBoard {
 public:
  void SetSources(std::map<std::string, bool> sources);
  void SetAttachments(int attached, std::vector<std::string> unattached);
  // A store change the maps do not reflect yet, first seen at `changed_at` (kube-proxy's
  // QueuedUpdate: only the oldest pending change counts).
  void QueuedUpdate(std::chrono::steady_clock::time_point changed_at);
  // One reconcile run. `latency`: from the applied generation's change to the end of the
  // map writes, when the run applied a new generation successfully.
  void Reconciled(bool ok, bool synced, std::chrono::duration<double> duration,
                  std::optional<std::chrono::duration<double>> latency);
  // The maps the conntrack GC sweeps (their deletion counters start at 0), then each sweep:
  // entries deleted per map, maps whose sweep failed, and how long it took.
  void CtGcMaps(const std::vector<std::string>& maps);
  void CtGcSwept(const std::vector<std::pair<std::string, uint64_t>>& deleted, size_t errors,
                 std::chrono::duration<double> duration);
  AgentSample Read() const;

 private:
  mutable std::mutex mu_;
  AgentSample s_;
};

// "" when ready; otherwise why not, for /readyz's 503 body.
std::string NotReadyReason(const AgentSample& s);

struct HttpAnswer {
  int status = 200;
  std::string content_type;
  std::string body;
};

// kube-proxy's node health check (pkg/proxy/healthcheck/proxier_health.go): healthy while
// no change is pending, or the oldest pending change is younger than `timeout`; 200 or 503
// with {"lastUpdated": ...,"currentTime": ..., "nodeEligible": true} (lastUpdated is the
// current time when healthy, as kube-proxy does). `livez` drops nodeEligible (/livez).
HttpAnswer NodeHealth(const AgentSample& s, std::chrono::system_clock::time_point now_wall,
                      std::chrono::steady_clock::time_point now, std::chrono::seconds timeout,
                      bool livez);

// Go's time.Time.String() in UTC ("2006-01-02 15:04:05.999999999 +0000 UTC"), which
// kube-proxy prints into its health-check body.
std::string GoTimeString(std::chrono::system_clock::time_point t);

}  // namespace skiff::observe
