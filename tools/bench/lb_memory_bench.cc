// Memory of the LB reconciler's own state at N frontends x E backends (docs/BENCHMARKS.md,
// "Where the agent's memory goes"): RSS after building the desired state, then after a full
// Apply into tables that keep nothing (the kernel holds the real maps), then after an
// incremental change, and how long the Apply took. Usage: skiff_bench_lb_memory N E [changes]
// ("changes": the load goes through ApplyChanges after an empty Apply, as a first load that
// arrives after the sources' empty sync does in the agent).
#include <arpa/inet.h>

#include <time.h>

#include <chrono>
#include <set>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#include "agent/reconcile/lb_reconciler.h"

namespace {

using namespace skiff;

long RssKb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

// This process's CPU time (user + system): the Apply's cost on a loaded machine.
double CpuMs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Accepts every write and keeps nothing: the reconciler's memory alone is measured.
template <typename K, typename V>
class NullTable : public reconcile::KvTable<K, V> {
 public:
  explicit NullTable(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  uint32_t max_entries() const override { return ~0u; }
  absl::StatusOr<std::vector<std::pair<K, V>>> Entries() const override {
    return std::vector<std::pair<K, V>>{};
  }
  absl::Status Update(const K&, const V&) override {
    writes++;
    return absl::OkStatus();
  }
  absl::Status Delete(const K&) override { return absl::OkStatus(); }
  absl::StatusOr<std::optional<V>> Lookup(const K&) const override { return std::optional<V>(); }
  uint64_t writes = 0;

 private:
  std::string name_;
};

model::IpAddr V4(uint32_t host_order) {
  model::IpAddr a;
  a.family = 4;
  uint32_t be = htonl(host_order);
  std::memcpy(a.bytes.data(), &be, 4);
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 4 && std::string(argv[3]) == "changes")) {
    std::fprintf(stderr, "usage: %s SERVICES ENDPOINTS [changes]\n", argv[0]);
    return 2;
  }
  const uint32_t n = std::atoi(argv[1]), e = std::atoi(argv[2]);
  const long rss0 = RssKb();
  model::DesiredState desired;
  // As tools/bench/bench_gen.cc: ClusterIPs from 10.96.0.16, endpoints from 100.64.0.0/10.
  for (uint32_t i = 0; i < n; i++) {
    model::Frontend fe;
    fe.key = model::FrontendKey{V4((10u << 24 | 96u << 16) + 16 + i), 80, model::Protocol::kTcp};
    fe.service = "bench/svc-" + std::to_string(i);
    for (uint32_t j = 0; j < e; j++) {
      model::Backend b;
      b.ip = V4((100u << 24 | 64u << 16) + i * e + j);
      b.port = 8080;
      fe.backends.push_back(b);
    }
    desired.frontends[fe.key] = std::move(fe);
  }
  const long rss_desired = RssKb();
  NullTable<skiff_lb4_key, skiff_lb4_service> services("services");
  NullTable<__u32, skiff_lb4_backend> backends("backends");
  NullTable<__u32, skiff_lb4_revnat> revnat("revnat");
  reconcile::LbReconciler rec(
      reconcile::LbTables{&services, &backends, &revnat, nullptr, nullptr, nullptr});
  if (!rec.Restore().ok()) return 1;
  const bool changes = argc == 4;
  std::set<model::FrontendKey> all;
  if (changes) {
    if (!rec.Apply(model::DesiredState{}, true).ok()) return 1;
    for (const auto& [key, fe] : desired.frontends) all.insert(key);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = CpuMs();
  auto res = changes ? rec.ApplyChanges(desired, true, all) : rec.Apply(desired, true);
  const double apply_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const double apply_cpu_ms = CpuMs() - cpu0;
  if (!res.ok()) {
    std::fprintf(stderr, "apply: %s\n", res.errors[0].c_str());
    return 1;
  }
  const long rss_applied = RssKb();
  std::printf(
      "{\"services\": %u, \"endpoints\": %u, \"rss_start_kb\": %ld, \"desired_state_kb\": %ld, "
      "\"reconciler_kb\": %ld, \"reconciler_bytes_per_backend\": %.0f, \"frontends\": %zu, "
      "\"backends\": %zu, \"service_writes\": %llu, \"path\": \"%s\", \"apply_ms\": %.1f, "
      "\"apply_cpu_ms\": %.1f}\n",
      n, e, rss0, rss_desired - rss0, rss_applied - rss_desired,
      1024.0 * (rss_applied - rss_desired) / (double(n) * e), rec.frontend_count(),
      rec.backend_count(), static_cast<unsigned long long>(services.writes),
      changes ? "ApplyChanges" : "Apply", apply_ms, apply_cpu_ms);
  return 0;
}
