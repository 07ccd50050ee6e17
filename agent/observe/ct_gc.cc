#include "agent/observe/ct_gc.h"

#include <bpf/libbpf.h>
#include <time.h>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "maps/map.h"

namespace skiff::observe {

GcClock GcNow() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return GcClock{static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL +
                 static_cast<uint64_t>(ts.tv_nsec)};
}

namespace {

template <typename K, typename V>
absl::StatusOr<std::unique_ptr<reconcile::KvTable<K, V>>> Table(const bpf_map* m) {
  auto map = Map<K, V>::From(m);
  if (!map.ok()) return map.status();
  return std::make_unique<reconcile::BpfKvTable<K, V>>(*std::move(map), bpf_map__max_entries(m));
}

template <typename K, typename V>
absl::Status AddTarget(const bpf_map* m, typename ExpiringTable<K, V>::Expired expired,
                       std::vector<std::unique_ptr<GcTarget>>& out) {
  if (m == nullptr) return absl::OkStatus();
  auto table = Table<K, V>(m);
  if (!table.ok()) return table.status();
  out.push_back(std::make_unique<ExpiringTable<K, V>>(*std::move(table), expired));
  return absl::OkStatus();
}

}  // namespace

skiff_ct4_key NatFlowReplyKey(const skiff_nat4_key& k, const skiff_nat4_entry& e) {
  skiff_ct4_key r{};
  r.proto = k.proto;
  r.kind = SKIFF_CT_REPLY;
  if (k.dir == SKIFF_NAT_IN) {  // {backend:bport -> node:port} -> client:cport
    r.saddr = k.saddr;
    r.sport = k.sport;
    r.daddr = e.to_addr;
    r.dport = e.to_port;
  } else {  // OUT: {client:cport -> backend:bport}
    r.saddr = k.daddr;
    r.sport = k.dport;
    r.daddr = k.saddr;
    r.dport = k.sport;
  }
  return r;
}

absl::StatusOr<SweepCount> NatTable::Sweep(const GcClock& now) {
  absl::Status ct_error;
  auto count = SweepExpired<skiff_nat4_key, skiff_nat4_entry>(
      *nat_, [&](const skiff_nat4_key& k, const skiff_nat4_entry& e) {
        auto reply = ct_->Lookup(NatFlowReplyKey(k, e));
        if (!reply.ok()) {
          if (ct_error.ok()) ct_error = reply.status();
          return false;  // keep what cannot be judged
        }
        return !*reply || CtEntryExpired(**reply, now);
      });
  if (count.ok() && !ct_error.ok()) return ct_error;
  return count;
}

absl::StatusOr<std::vector<std::unique_ptr<GcTarget>>> DatapathGcTargets(const bpf_map* ct,
                                                                         const bpf_map* policy_ct,
                                                                         const bpf_map* host_route,
                                                                         const bpf_map* nat) {
  std::vector<std::unique_ptr<GcTarget>> out;
  if (auto st = AddTarget<skiff_ct4_key, skiff_ct_entry>(ct, CtEntryExpired, out); !st.ok())
    return st;
  if (auto st = AddTarget<skiff_ct4_key, skiff_pol_ct_entry>(policy_ct, PolicyCtEntryExpired, out);
      !st.ok())
    return st;
  if (auto st =
          AddTarget<skiff_host_route4_key, skiff_host_route4>(host_route, HostRouteExpired, out);
      !st.ok())
    return st;
  if (nat != nullptr && ct != nullptr) {
    auto nat_table = Table<skiff_nat4_key, skiff_nat4_entry>(nat);
    if (!nat_table.ok()) return nat_table.status();
    auto ct_table = Table<skiff_ct4_key, skiff_ct_entry>(ct);
    if (!ct_table.ok()) return ct_table.status();
    out.push_back(std::make_unique<NatTable>(*std::move(nat_table), *std::move(ct_table)));
  }
  return out;
}

SweepReport SweepAll(const std::vector<std::unique_ptr<GcTarget>>& targets, const GcClock& now) {
  SweepReport r;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& t : targets) {
    auto c = t->Sweep(now);
    if (c.ok())
      r.maps.emplace_back(t->map(), *c);
    else
      r.errors.push_back(absl::StrCat(t->map(), ": ", c.status().message()));
  }
  r.duration = std::chrono::steady_clock::now() - start;
  return r;
}

std::unique_ptr<CtGc> CtGc::Start(std::vector<std::unique_ptr<GcTarget>> targets,
                                  std::chrono::seconds interval, ObserveBoard* board) {
  std::unique_ptr<CtGc> gc(new CtGc(std::move(targets), interval, board));
  if (board) {
    std::vector<std::string> maps;
    for (const auto& t : gc->targets_) maps.push_back(t->map());
    board->CtGcMaps(maps);
  }
  gc->thread_ = std::thread([p = gc.get()] { p->Run(); });
  return gc;
}

CtGc::~CtGc() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CtGc::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (!cv_.wait_for(l, interval_, [this] { return stop_; })) {
    l.unlock();  // the destructor must be able to ask for a stop during a sweep
    SweepReport r = SweepAll(targets_, GcNow());
    uint64_t deleted = 0;
    std::vector<std::string> parts;
    std::vector<std::pair<std::string, uint64_t>> per_map;
    for (const auto& [map, c] : r.maps) {
      deleted += c.deleted;
      per_map.emplace_back(map, c.deleted);
      parts.push_back(absl::StrCat(map, " ", c.deleted, "/", c.seen));
    }
    const double ms = r.duration.count() * 1e3;
    if (deleted > 0)
      spdlog::info("conntrack GC: deleted {} expired entries (deleted/walked: {}) in {:.1f} ms",
                   deleted, absl::StrJoin(parts, ", "), ms);
    else
      spdlog::debug("conntrack GC: nothing expired ({}) in {:.1f} ms", absl::StrJoin(parts, ", "),
                    ms);
    for (const auto& e : r.errors) spdlog::warn("conntrack GC: {}", e);
    if (board_) board_->CtGcSwept(per_map, r.errors.size(), r.duration);
    l.lock();
  }
}

}  // namespace skiff::observe
