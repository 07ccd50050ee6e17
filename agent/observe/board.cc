#include "agent/observe/board.h"

#include <time.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace skiff::observe {

std::vector<double> SyncLatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::vector<double> ReconcileDurationBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

void ObserveBoard::SetSources(std::map<std::string, bool> sources) {
  std::lock_guard<std::mutex> lock(mu_);
  s_.sources = std::move(sources);
}

void ObserveBoard::SetAttachments(int attached, std::vector<std::string> unattached) {
  std::lock_guard<std::mutex> lock(mu_);
  s_.attached_ifaces = attached;
  s_.unattached_ifaces = std::move(unattached);
}

void ObserveBoard::QueuedUpdate(std::chrono::steady_clock::time_point changed_at) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!s_.pending_since) s_.pending_since = changed_at;
}

void ObserveBoard::Reconciled(bool ok, bool synced, std::chrono::duration<double> duration,
                              std::optional<std::chrono::duration<double>> latency) {
  std::lock_guard<std::mutex> lock(mu_);
  s_.reconcile_duration.Observe(duration.count());
  if (!ok) {
    s_.reconcile_errors_total++;
    return;  // still pending: kube-proxy calls Updated() only after a successful sync
  }
  if (latency) s_.sync_latency.Observe(latency->count());
  s_.pending_since.reset();
  s_.last_updated = std::chrono::system_clock::now();
  if (synced) s_.applied_synced = true;
}

void ObserveBoard::CtGcMaps(const std::vector<std::string>& maps) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& m : maps) s_.ct_gc.deleted_total.try_emplace(m, 0);
}

void ObserveBoard::CtGcSwept(const std::vector<std::pair<std::string, uint64_t>>& deleted,
                             size_t errors, std::chrono::duration<double> duration) {
  std::lock_guard<std::mutex> lock(mu_);
  s_.ct_gc.runs_total++;
  s_.ct_gc.errors_total += errors;
  for (const auto& [map, n] : deleted) s_.ct_gc.deleted_total[map] += n;
  s_.ct_gc.last_duration_seconds = duration.count();
}

AgentSample ObserveBoard::Read() const {
  std::lock_guard<std::mutex> lock(mu_);
  return s_;
}

std::string NotReadyReason(const AgentSample& s) {
  std::vector<std::string> why;
  if (s.sources.empty()) why.push_back("no source registered yet");
  for (const auto& [name, synced] : s.sources)
    if (!synced) why.push_back(absl::StrCat("source ", name, " has not completed its first sync"));
  if (why.empty() && !s.applied_synced)
    why.push_back("the synced state has not been written to the maps yet");
  if (!s.unattached_ifaces.empty())
    why.push_back(absl::StrCat("programs not attached to matching interfaces: ",
                               absl::StrJoin(s.unattached_ifaces, ", ")));
  return absl::StrJoin(why, "; ");
}

std::string GoTimeString(std::chrono::system_clock::time_point t) {
  if (t == std::chrono::system_clock::time_point{}) return "0001-01-01 00:00:00 +0000 UTC";
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ns / 1000000000);
  long frac = static_cast<long>(ns % 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  std::string out = buf;
  if (frac) {  // Go's .999999999: nanoseconds without trailing zeros
    char f[16];
    std::snprintf(f, sizeof(f), ".%09ld", frac);
    std::string fs = f;
    while (fs.back() == '0') fs.pop_back();
    out += fs;
  }
  return out + " +0000 UTC";
}

HttpAnswer NodeHealth(const AgentSample& s, std::chrono::system_clock::time_point now_wall,
                      std::chrono::steady_clock::time_point now, std::chrono::seconds timeout,
                      bool livez) {
  // The model has no Node taints or deletion timestamp yet, so the node is always eligible
  // (kube-proxy's default until it sees ToBeDeletedByClusterAutoscaler or a deletion).
  const bool node_eligible = true;
  bool healthy = !s.pending_since || now - *s.pending_since < timeout;
  if (!livez) healthy = healthy && node_eligible;
  auto last = healthy ? now_wall : s.last_updated;
  HttpAnswer a;
  a.status = healthy ? 200 : 503;
  a.content_type = "application/json";
  a.body = absl::StrCat("{\"lastUpdated\": \"", GoTimeString(last), "\",\"currentTime\": \"",
                        GoTimeString(now_wall), "\"");
  if (!livez) absl::StrAppend(&a.body, ", \"nodeEligible\": ", node_eligible ? "true" : "false");
  a.body += "}";
  return a;
}

}  // namespace skiff::observe
