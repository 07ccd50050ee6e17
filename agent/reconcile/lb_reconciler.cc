#include "agent/reconcile/lb_reconciler.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace skiff::reconcile {
namespace {

__be32 V4(const model::IpAddr& ip) {
  __be32 a;
  std::memcpy(&a, ip.bytes.data(), 4);
  return a;
}

model::IpAddr FromV4(__be32 a) {
  model::IpAddr ip;
  ip.family = 4;
  std::memcpy(ip.bytes.data(), &a, 4);
  return ip;
}

}  // namespace

BackendAddr::BackendAddr(const model::IpAddr& ip, uint16_t port, uint8_t proto)
    : ip_host(ntohl(V4(ip))), port(port), proto(proto) {}

__be32 BackendAddr::address() const { return htonl(ip_host); }

namespace {

std::string Describe(const model::FrontendKey& k) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(k.vip.family == 6 ? AF_INET6 : AF_INET, k.vip.bytes.data(), buf, sizeof(buf));
  const char* proto = k.proto == model::Protocol::kTcp   ? "TCP"
                      : k.proto == model::Protocol::kUdp ? "UDP"
                                                         : "SCTP";
  return absl::StrCat(buf, ":", k.port, "/", proto);
}

uint8_t SvcFlags(const model::Frontend& fe) {
  uint8_t f = 0;
  if (fe.affinity_client_ip) f |= SKIFF_SVC_F_AFFINITY;
  if (fe.internal_traffic_local) f |= SKIFF_SVC_F_INT_LOCAL;
  if (fe.external_traffic_local) f |= SKIFF_SVC_F_EXT_LOCAL;
  if (fe.restrict_sources) f |= SKIFF_SVC_F_SRC_RANGES;
  switch (fe.kind) {
    case model::FrontendKind::kClusterIp:
      f |= SKIFF_SVC_F_CLUSTER_IP;
      break;
    case model::FrontendKind::kExternalIp:
      f |= SKIFF_SVC_F_EXTERNAL_IP;
      break;
    case model::FrontendKind::kNodePort:
      f |= SKIFF_SVC_F_NODE_PORT;
      break;
    case model::FrontendKind::kLoadBalancer:
      f |= SKIFF_SVC_F_LOAD_BALANCER;
      break;
  }
  return f;
}

bool Same(const skiff_lb4_service& a, const skiff_lb4_service& b) {
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

// FNV-1a over a maglev table: tells whether a table read back from the map is the one wanted.
uint64_t Fingerprint(const MaglevRow& row) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint32_t v : row) {
    h ^= v;
    h *= 0x100000001b3ull;
  }
  return h ^ row.size();
}

skiff_lb4_maglev_key MaglevKey(uint32_t rev_nat_id, uint8_t scope) {
  skiff_lb4_maglev_key k;
  std::memset(&k, 0, sizeof(k));
  k.rev_nat_id = rev_nat_id;
  k.scope = scope;
  return k;
}

// A backend's Maglev name, "ip:port": the same on every node (agent/reconcile/maglev.h).
std::string BackendName(const model::IpAddr& ip, uint16_t port) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(ip.family == 6 ? AF_INET6 : AF_INET, ip.bytes.data(), buf, sizeof(buf));
  return absl::StrCat(buf, ":", port);
}

}  // namespace

skiff_lb4_key MakeLb4Key(const model::FrontendKey& key, uint8_t scope, uint16_t slot) {
  skiff_lb4_key k;
  std::memset(&k, 0, sizeof(k));
  k.address = V4(key.vip);
  k.dport = htons(key.port);
  k.proto = static_cast<uint8_t>(key.proto);
  k.scope = scope;
  k.slot = slot;
  return k;
}

skiff_lb4_src_range_key MakeSrcRangeKey(uint32_t rev_nat_id, __be32 address, uint8_t prefix_len) {
  skiff_lb4_src_range_key k;
  std::memset(&k, 0, sizeof(k));
  k.prefixlen = 32u + prefix_len;
  k.rev_nat_id = rev_nat_id;
  k.address = address;
  return k;
}

LbReconciler::LbReconciler(LbTables tables, LbOptions options)
    : t_(tables), opts_(options), backend_pool_(NewBackendPool()) {}

IdPool LbReconciler::NewBackendPool() const {
  const uint32_t max = t_.backends ? t_.backends->max_entries() : 0;
  // A map of fewer than 2 entries has no id to give (the datapath refuses such a size).
  return max >= 2 ? IdPool(1, max - 1) : IdPool(1, 1);
}

LbReconciler::ScopeEntries& LbReconciler::FrontendRecord::scope(uint8_t s) {
  if (s == SKIFF_SCOPE_EXTERNAL) return external;
  if (!extra) extra = std::make_unique<FrontendExtra>();
  return extra->internal;
}

const std::vector<LbReconciler::Range>& LbReconciler::FrontendRecord::ranges() const {
  static const std::vector<Range> kNone;
  return extra ? extra->ranges : kNone;
}

void LbReconciler::AddReferenced(const FrontendRecord& rec, std::vector<uint32_t>& ids) {
  ids.insert(ids.end(), rec.external.slots.begin(), rec.external.slots.end());
  if (rec.extra)
    ids.insert(ids.end(), rec.extra->internal.slots.begin(), rec.extra->internal.slots.end());
}

void LbReconciler::DropEmptyExtra(FrontendRecord& rec) {
  if (!rec.extra) return;
  const ScopeEntries& in = rec.extra->internal;
  if (!in.present && in.slots.empty() && !in.maglev && rec.extra->ranges.empty()) rec.extra.reset();
}

absl::Status LbReconciler::Restore() {
  clean_ = false;  // the next Apply is a full one
  counted_ = {};
  frontends_.clear();
  backends_.clear();
  backend_ids_ = 0;
  revnat_.clear();
  backend_pool_ = NewBackendPool();
  revnat_pool_ = IdPool(1, kMaxRevNatId);

  // Streamed, not copied: at 100,000 Services the backends and services maps hold 2.1M
  // entries.
  absl::Status st = t_.backends->ForEach([&](const uint32_t& id, const skiff_lb4_backend& b) {
    if (!backend_pool_.Reserve(id)) return true;  // id 0: not a backend
    BackendEntry& e = backends_[BackendAddr{FromV4(b.address), ntohs(b.port), b.proto}];
    // A second id for the same address keeps its id reserved (slots may still point at it)
    // but is not tracked: the first one found is the backend's id.
    if (e.id != 0) return true;
    e.id = id;
    e.state = b.state;
    e.flags = b.flags;
    e.written = b.pad[0] == 0 && b.pad[1] == 0 && b.pad[2] == 0;
    backend_ids_++;
    return true;
  });
  if (!st.ok()) return st;
  auto revnat = t_.revnat->Entries();
  if (!revnat.ok()) return revnat.status();
  for (const auto& [id, r] : *revnat) {
    revnat_[id] = r;
    revnat_pool_.Reserve(id);
  }
  // Slot 0 entries make the frontends; the other slots, kept aside meanwhile, are then placed
  // into their frontend's vector through a hash index (a std::map find per slot was most of a
  // restart's reconciler time).
  auto packed = [](const skiff_lb4_key& k) {
    return uint64_t{k.address} << 24 | uint64_t{k.dport} << 8 | k.proto;
  };
  absl::flat_hash_map<uint64_t, FrontendRecord*> index;
  std::vector<std::pair<skiff_lb4_key, uint32_t>> slots;
  st = t_.services->ForEach([&](const skiff_lb4_key& k, const skiff_lb4_service& v) {
    if (k.scope > SKIFF_SCOPE_INTERNAL) return true;
    if (k.slot != 0) {
      slots.emplace_back(k, v.backend_id);
      return true;
    }
    model::FrontendKey fk{FromV4(k.address), ntohs(k.dport), static_cast<model::Protocol>(k.proto)};
    FrontendRecord& rec = frontends_[fk];
    ScopeEntries& s = rec.scope(k.scope);
    s.present = true;
    s.slot0 = v;
    s.slots.assign(v.count + v.terminating_count, 0);
    if (k.scope == SKIFF_SCOPE_EXTERNAL) rec.rev_nat_id = v.rev_nat_id;
    revnat_pool_.Reserve(v.rev_nat_id);
    return true;
  });
  if (!st.ok()) return st;
  // Indexed once every frontend is in: a B-tree moves its values as it grows.
  index.reserve(frontends_.size());
  for (auto& [fk, rec] : frontends_) index[packed(MakeLb4Key(fk, SKIFF_SCOPE_EXTERNAL, 0))] = &rec;
  for (const auto& [k, backend_id] : slots) {
    auto it = index.find(packed(k));
    if (it == index.end()) continue;
    ScopeEntries& s = it->second->scope(k.scope);
    // Slots past the count are leftovers of an interrupted write; remember them so the
    // next write of this frontend deletes them.
    if (k.slot > s.slots.size()) s.slots.resize(k.slot, 0);
    s.slots[k.slot - 1] = backend_id;
  }
  if (t_.src_ranges != nullptr) {
    std::map<uint32_t, FrontendRecord*> by_rev_nat;
    for (auto& [fk, rec] : frontends_) by_rev_nat[rec.rev_nat_id] = &rec;
    auto ranges = t_.src_ranges->Entries();
    if (!ranges.ok()) return ranges.status();
    for (const auto& [k, v] : *ranges) {
      auto it = by_rev_nat.find(k.rev_nat_id);
      if (it != by_rev_nat.end() && k.prefixlen >= 32 && k.prefixlen <= 64) {
        FrontendRecord& rec = *it->second;
        if (!rec.extra) rec.extra = std::make_unique<FrontendExtra>();
        rec.extra->ranges.push_back({k.address, static_cast<uint8_t>(k.prefixlen - 32)});
        continue;
      }
      // No frontend carries this rev-NAT id, so no packet reads the entry; it must not
      // outlive the id, which a new frontend may get.
      if (auto st = t_.src_ranges->Delete(k); !st.ok()) return st;
    }
    for (auto& [fk, rec] : frontends_) {
      if (!rec.extra) continue;
      std::vector<Range>& r = rec.extra->ranges;
      std::sort(r.begin(), r.end());
      r.erase(std::unique(r.begin(), r.end()), r.end());
    }
  }
  if (t_.maglev != nullptr) {
    std::map<uint32_t, FrontendRecord*> by_rev_nat;
    for (auto& [fk, rec] : frontends_) by_rev_nat[rec.rev_nat_id] = &rec;
    auto tables = t_.maglev->Entries();
    if (!tables.ok()) return tables.status();
    for (const auto& [k, row] : *tables) {
      auto it = by_rev_nat.find(k.rev_nat_id);
      if (it != by_rev_nat.end() && k.scope <= SKIFF_SCOPE_INTERNAL) {
        ScopeEntries& s = it->second->scope(k.scope);
        s.maglev = std::make_unique<MaglevEntry>();
        s.maglev->fp = Fingerprint(row);
        continue;
      }
      // As for ranges: no frontend owns it, and the id may be handed out again.
      if (auto st = t_.maglev->Delete(k); !st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

std::optional<uint32_t> LbReconciler::RevNatId(const model::FrontendKey& key) const {
  auto it = frontends_.find(key);
  if (it == frontends_.end()) return std::nullopt;
  return it->second.rev_nat_id;
}

std::optional<uint32_t> LbReconciler::BackendId(const BackendAddr& addr) const {
  auto it = backends_.find(addr);
  if (it == backends_.end() || it->second.id == 0) return std::nullopt;
  return it->second.id;
}

absl::Status LbReconciler::WriteMaglev(uint32_t rev_nat_id, uint8_t scope,
                                       const std::vector<MaglevBackend>& backends,
                                       ScopeEntries& have, bool* changed) {
  if (t_.maglev == nullptr) return absl::FailedPreconditionError("no maglev map");
  std::vector<uint32_t> ids;
  ids.reserve(backends.size());
  for (const MaglevBackend& b : backends) ids.push_back(b.id);
  if (have.maglev && have.maglev->ids_known && have.maglev->ids == ids) return absl::OkStatus();
  auto memo = maglev_memo_.find(ids);
  if (memo == maglev_memo_.end()) {
    if (maglev_memo_.size() >= 16) maglev_memo_.clear();
    memo =
        maglev_memo_.emplace(ids, MaglevTable(backends, opts_.maglev_table_size, opts_.maglev_seed))
            .first;
    maglev_computed_++;
  }
  const uint64_t fp = Fingerprint(memo->second);
  // After Restore only the fingerprint is known: a table that is already right stays.
  if (!(have.maglev && have.maglev->fp == fp)) {
    if (auto st = t_.maglev->Update(MaglevKey(rev_nat_id, scope), memo->second); !st.ok())
      return st;
    *changed = true;
  }
  if (!have.maglev) have.maglev = std::make_unique<MaglevEntry>();
  have.maglev->ids_known = true;
  have.maglev->ids = std::move(ids);
  have.maglev->fp = fp;
  return absl::OkStatus();
}

absl::Status LbReconciler::DeleteMaglev(uint32_t rev_nat_id, uint8_t scope, ScopeEntries& have) {
  if (!have.maglev) return absl::OkStatus();
  if (t_.maglev == nullptr) return absl::FailedPreconditionError("no maglev map");
  if (auto st = t_.maglev->Delete(MaglevKey(rev_nat_id, scope)); !st.ok()) return st;
  have.maglev.reset();
  return absl::OkStatus();
}

absl::Status LbReconciler::WriteScope(const model::FrontendKey& key, uint8_t scope,
                                      const skiff_lb4_service& slot0,
                                      const std::vector<uint32_t>& slots,
                                      const std::vector<MaglevBackend>* maglev, ScopeEntries& have,
                                      bool* changed) {
  // 1. Backend slots the new count will cover. (Grown once, to the exact size: 100,000
  // frontends keep their slot vectors.)
  if (have.slots.size() < slots.size()) have.slots.reserve(slots.size());
  for (size_t i = 0; i < slots.size(); i++) {
    if (have.present && i < have.slots.size() && have.slots[i] == slots[i]) continue;
    skiff_lb4_service v;
    std::memset(&v, 0, sizeof(v));
    v.backend_id = slots[i];
    v.rev_nat_id = slot0.rev_nat_id;
    if (auto st = PutService(MakeLb4Key(key, scope, i + 1), v); !st.ok()) return st;
    if (have.slots.size() <= i) have.slots.resize(i + 1, 0);
    have.slots[i] = slots[i];
    *changed = true;
  }
  // The maglev table the new slot 0 will select from.
  if (maglev != nullptr && !maglev->empty()) {
    if (auto st = WriteMaglev(slot0.rev_nat_id, scope, *maglev, have, changed); !st.ok()) return st;
  }
  // 2. Slot 0: from here on the datapath uses the new count.
  if (!have.present || !Same(have.slot0, slot0)) {
    if (auto st = PutService(MakeLb4Key(key, scope, 0), slot0); !st.ok()) return st;
    have.present = true;
    have.slot0 = slot0;
    *changed = true;
  }
  // 3. A table slot 0 no longer selects, and slots past the new count: remove them.
  if ((maglev == nullptr || maglev->empty()) && have.maglev) {
    if (auto st = DeleteMaglev(slot0.rev_nat_id, scope, have); !st.ok()) return st;
    *changed = true;
  }
  for (size_t i = have.slots.size(); i > slots.size(); i--) {
    if (auto st = t_.services->Delete(MakeLb4Key(key, scope, i)); !st.ok()) return st;
    have.slots.pop_back();
    *changed = true;
  }
  return absl::OkStatus();
}

absl::Status LbReconciler::DeleteScope(const model::FrontendKey& key, uint32_t rev_nat_id,
                                       uint8_t scope, ScopeEntries& have) {
  if (!have.present && have.slots.empty() && !have.maglev) return absl::OkStatus();
  // Slot 0 first: once it is gone no packet looks at the slots or the table.
  if (auto st = t_.services->Delete(MakeLb4Key(key, scope, 0)); !st.ok()) return st;
  have.present = false;
  if (auto st = DeleteMaglev(rev_nat_id, scope, have); !st.ok()) return st;
  for (size_t i = have.slots.size(); i > 0; i--) {
    if (auto st = t_.services->Delete(MakeLb4Key(key, scope, i)); !st.ok()) return st;
    have.slots.pop_back();
  }
  return absl::OkStatus();
}

absl::Status LbReconciler::WriteFrontend(const model::Frontend& fe, FrontendRecord& rec,
                                         bool* changed) {
  const uint8_t proto = static_cast<uint8_t>(fe.key.proto);
  const bool maglev = fe.lb_algorithm == model::LbAlgorithm::kMaglev ||
                      (fe.lb_algorithm == model::LbAlgorithm::kDefault && opts_.default_maglev);
  // Active backends first, terminating ones after them (maps/lb.h). With Maglev, the table's
  // backends: the active ones, else the terminating ones (what the random pick would use).
  auto slots_for = [&](bool local_only, uint16_t* active, uint16_t* terminating,
                       std::vector<MaglevBackend>* table) {
    std::vector<uint32_t> act, term;
    std::vector<MaglevBackend> mact, mterm;
    for (const auto& b : fe.backends) {
      if (local_only && !b.node_local) continue;
      uint32_t id = backends_.at(BackendAddr{b.ip, b.port, proto}).id;
      const bool is_active = b.state == model::BackendState::kActive;
      (is_active ? act : term).push_back(id);
      if (maglev)
        (is_active ? mact : mterm).push_back(MaglevBackend{BackendName(b.ip, b.port), id});
    }
    *active = static_cast<uint16_t>(act.size());
    *terminating = static_cast<uint16_t>(term.size());
    *table = mact.empty() ? std::move(mterm) : std::move(mact);
    act.insert(act.end(), term.begin(), term.end());
    return act;
  };
  auto make_slot0 = [&](uint16_t active, uint16_t terminating) {
    skiff_lb4_service v;
    std::memset(&v, 0, sizeof(v));
    v.count = active;
    v.terminating_count = terminating;
    v.rev_nat_id = rec.rev_nat_id;
    v.flags = SvcFlags(fe);
    v.algorithm = maglev ? SKIFF_LB_ALG_MAGLEV : SKIFF_LB_ALG_RANDOM;
    v.affinity_timeout = fe.affinity_client_ip ? fe.affinity_timeout_s : 0;
    return v;
  };

  // loadBalancerSourceRanges: the entries a new flag will consult exist before slot 0 says so.
  std::vector<Range> want_ranges;
  if (fe.restrict_sources) {
    if (t_.src_ranges == nullptr)
      return absl::FailedPreconditionError("no loadBalancerSourceRanges map");
    for (const model::SourceRange& r : fe.source_ranges)
      if (r.addr.family == 4) want_ranges.push_back({V4(r.addr), r.prefix_len});
    std::sort(want_ranges.begin(), want_ranges.end());
    want_ranges.erase(std::unique(want_ranges.begin(), want_ranges.end()), want_ranges.end());
  }
  for (const auto& r : want_ranges) {
    const std::vector<Range>& have_ranges = rec.ranges();
    if (std::binary_search(have_ranges.begin(), have_ranges.end(), r)) continue;
    skiff_lb4_src_range_val v;
    std::memset(&v, 0, sizeof(v));
    v.allow = 1;
    if (auto st = t_.src_ranges->Update(MakeSrcRangeKey(rec.rev_nat_id, r.first, r.second), v);
        !st.ok())
      return st;
    if (!rec.extra) rec.extra = std::make_unique<FrontendExtra>();
    std::vector<Range>& ranges = rec.extra->ranges;
    ranges.insert(std::lower_bound(ranges.begin(), ranges.end(), r), r);
    *changed = true;
  }

  uint16_t act = 0, term = 0;
  std::vector<MaglevBackend> ext_table, int_table;
  std::vector<uint32_t> ext_slots = slots_for(false, &act, &term, &ext_table);
  skiff_lb4_service ext0 = make_slot0(act, term);
  // The node-local set serves internalTrafficPolicy Local (pods) and externalTrafficPolicy
  // Local (external clients on the node devices, docs/north-south.md).
  const bool local_set = fe.internal_traffic_local || fe.external_traffic_local;
  if (local_set) {
    // The node-local set must be complete before the flag sends traffic to it.
    std::vector<uint32_t> int_slots = slots_for(true, &act, &term, &int_table);
    if (auto st =
            WriteScope(fe.key, SKIFF_SCOPE_INTERNAL, make_slot0(act, term), int_slots,
                       maglev ? &int_table : nullptr, rec.scope(SKIFF_SCOPE_INTERNAL), changed);
        !st.ok())
      return st;
  }
  if (auto st = WriteScope(fe.key, SKIFF_SCOPE_EXTERNAL, ext0, ext_slots,
                           maglev ? &ext_table : nullptr, rec.external, changed);
      !st.ok())
    return st;
  // Ranges no longer wanted go once slot 0 no longer relies on them.
  if (auto st = DeleteRanges(rec, want_ranges, changed); !st.ok()) return st;
  ScopeEntries* internal = rec.internal();
  if (!local_set && internal != nullptr &&
      (internal->present || !internal->slots.empty() || internal->maglev)) {
    if (auto st = DeleteScope(fe.key, rec.rev_nat_id, SKIFF_SCOPE_INTERNAL, *internal); !st.ok())
      return st;
    *changed = true;
  }
  DropEmptyExtra(rec);
  return absl::OkStatus();
}

absl::Status LbReconciler::DeleteFrontend(const model::FrontendKey& key, FrontendRecord& rec) {
  if (auto st = DeleteScope(key, rec.rev_nat_id, SKIFF_SCOPE_EXTERNAL, rec.external); !st.ok())
    return st;
  if (ScopeEntries* internal = rec.internal(); internal != nullptr) {
    if (auto st = DeleteScope(key, rec.rev_nat_id, SKIFF_SCOPE_INTERNAL, *internal); !st.ok())
      return st;
  }
  bool changed = false;
  return DeleteRanges(rec, {}, &changed);
}

absl::Status LbReconciler::DeleteRanges(FrontendRecord& rec, const std::vector<Range>& keep,
                                        bool* changed) {
  if (!rec.extra) return absl::OkStatus();
  std::vector<Range>& ranges = rec.extra->ranges;
  for (auto it = ranges.begin(); it != ranges.end();) {
    if (std::binary_search(keep.begin(), keep.end(), *it)) {
      ++it;
      continue;
    }
    if (auto st = t_.src_ranges->Delete(MakeSrcRangeKey(rec.rev_nat_id, it->first, it->second));
        !st.ok())
      return st;
    it = ranges.erase(it);
    *changed = true;
  }
  return absl::OkStatus();
}

absl::Status LbReconciler::ForgetAffinity(const std::vector<std::pair<uint32_t, uint32_t>>& pairs,
                                          const std::vector<uint32_t>& rev_nat_ids) {
  if ((pairs.empty() && rev_nat_ids.empty()) || !t_.affinity) return absl::OkStatus();
  std::set<std::pair<uint32_t, uint32_t>> gone(pairs.begin(), pairs.end());
  std::set<uint32_t> gone_svc(rev_nat_ids.begin(), rev_nat_ids.end());
  auto entries = t_.affinity->Entries();
  if (!entries.ok()) return entries.status();
  for (const auto& [k, v] : *entries) {
    if (gone_svc.count(k.rev_nat_id) || gone.count({k.rev_nat_id, v.backend_id})) {
      if (auto st = t_.affinity->Delete(k); !st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

void LbReconciler::Fail(ApplyResult& res, const model::Frontend* fe, const model::FrontendKey& key,
                        const absl::Status& st) {
  if (absl::IsResourceExhausted(st)) res.map_full_errors++;
  res.errors.push_back(absl::StrCat(fe ? absl::StrCat("service ", fe->service, " ") : "",
                                    "frontend ", Describe(key), ": ", st.message()));
}

skiff_lb4_backend LbReconciler::BackendValue(const BackendAddr& a, bool active, bool local) {
  skiff_lb4_backend v;
  std::memset(&v, 0, sizeof(v));
  v.address = a.address();
  v.port = htons(a.port);
  v.proto = a.proto;
  v.state = active ? SKIFF_BACKEND_ACTIVE : SKIFF_BACKEND_TERMINATING;
  if (local) v.flags |= SKIFF_BACKEND_F_LOCAL;
  return v;
}

void LbReconciler::ApplyFrontend(const model::FrontendKey& key, const model::Frontend& fe,
                                 const std::set<BackendAddr>& failed_backends, ApplyResult& res,
                                 std::vector<std::pair<uint32_t, uint32_t>>& dropped_pairs) {
  bool missing_backend = false;
  if (!failed_backends.empty()) {
    for (const auto& b : fe.backends)
      if (failed_backends.count(BackendAddr{b.ip, b.port, static_cast<uint8_t>(key.proto)}))
        missing_backend = true;
  }
  if (missing_backend) {
    Fail(res, &fe, key,
         absl::ResourceExhaustedError(absl::StrCat("a backend could not be written to map ",
                                                   t_.backends->name(),
                                                   "; the frontend keeps its last good state")));
    return;
  }
  if (fe.backends.size() > SKIFF_LB_MAX_BACKENDS_PER_SERVICE) {
    Fail(res, &fe, key,
         absl::InvalidArgumentError(
             absl::StrCat(fe.backends.size(), " backends exceed the limit of ",
                          SKIFF_LB_MAX_BACKENDS_PER_SERVICE, " per frontend")));
    return;
  }
  bool fresh = !frontends_.count(key);
  FrontendRecord& rec = frontends_[key];
  if (rec.rev_nat_id == 0) {
    auto id = revnat_pool_.Allocate();
    if (!id) {
      frontends_.erase(key);
      Fail(res, &fe, key,
           absl::ResourceExhaustedError(
               absl::StrCat("no free rev-NAT id (", revnat_pool_.size(), " in use)")));
      return;
    }
    rec.rev_nat_id = *id;
  }
  skiff_lb4_revnat rn;
  std::memset(&rn, 0, sizeof(rn));
  rn.address = V4(key.vip);
  rn.port = htons(key.port);
  auto have_rn = revnat_.find(rec.rev_nat_id);
  if (have_rn == revnat_.end() || std::memcmp(&have_rn->second, &rn, sizeof(rn)) != 0) {
    if (auto st = PutRevNat(rec.rev_nat_id, rn); !st.ok()) {
      if (fresh) {
        revnat_pool_.Release(rec.rev_nat_id);
        frontends_.erase(key);
      }
      Fail(res, &fe, key, st);
      return;
    }
    revnat_[rec.rev_nat_id] = rn;
  }
  // Backends this frontend used before and no longer does: their affinity entries go
  // (sorted copies, not sets: nothing to compare for a fresh frontend, the common case).
  std::vector<uint32_t> before(rec.external.slots.begin(), rec.external.slots.end());
  bool changed = false;
  if (auto st = WriteFrontend(fe, rec, &changed); !st.ok()) {
    Fail(res, &fe, key, st);
    return;
  }
  if (changed) res.frontends_written++;
  if (!before.empty() && changed) {
    std::vector<uint32_t> after(rec.external.slots.begin(), rec.external.slots.end());
    std::sort(before.begin(), before.end());
    std::sort(after.begin(), after.end());
    for (uint32_t id : before)
      if (!std::binary_search(after.begin(), after.end(), id))
        dropped_pairs.push_back({rec.rev_nat_id, id});
  }
}

bool LbReconciler::RemoveFrontend(const model::FrontendKey& key, FrontendRecord& rec,
                                  ApplyResult& res, std::vector<uint32_t>& dropped_services) {
  if (auto st = DeleteFrontend(key, rec); !st.ok()) {
    Fail(res, nullptr, key, st);
    return false;
  }
  uint32_t rn = rec.rev_nat_id;
  if (auto st = t_.revnat->Delete(rn); st.ok()) {
    revnat_.erase(rn);
    revnat_pool_.Release(rn);
  }
  dropped_services.push_back(rn);
  res.frontends_deleted++;
  return true;
}

LbReconciler::Backends::iterator LbReconciler::RemoveBackend(Backends::iterator it,
                                                             ApplyResult& res) {
  BackendEntry& e = it->second;
  if (auto st = t_.backends->Delete(e.id); !st.ok()) {
    res.errors.push_back(std::string(st.message()));
    return std::next(it);
  }
  backend_pool_.Release(e.id);
  backend_ids_--;
  res.backends_deleted++;
  e.id = 0;
  e.written = false;
  if (e.use.users != 0) return std::next(it);
  return backends_.erase(it);
}

ApplyResult LbReconciler::Apply(const model::DesiredState& desired, bool synced) {
  ApplyResult res;
  maglev_memo_.clear();
  backend_ids_full_reported_ = false;
  // 1. Backends: one entry per address:port:protocol. A backend selected by several
  // services is active if any of them sees it active, and local if any says so.
  RebuildUses(desired);
  std::set<BackendAddr> failed_backends;
  for (auto& [addr, e] : backends_) {
    if (e.use.users == 0) continue;
    QueueBackend(addr, e, failed_backends, res);
  }
  FlushBackends(failed_backends, res);

  // 2. Frontends. Fresh ones (a first start, a restart into empty maps) in batches.
  std::vector<std::pair<uint32_t, uint32_t>> dropped_pairs;  // (rev-NAT id, backend id)
  for (const auto& [key, fe] : desired.frontends) {
    if (key.vip.family != 4) continue;
    if (!frontends_.count(key)) {
      ApplyFresh(key, fe, failed_backends, res);
      continue;
    }
    ApplyFrontend(key, fe, failed_backends, res, dropped_pairs);
  }
  FlushStage(res);

  // 3. Deletions, only once every source has been read completely.
  std::vector<uint32_t> dropped_services;
  if (synced) {
    for (auto it = frontends_.begin(); it != frontends_.end();) {
      if (desired.frontends.count(it->first) ||
          !RemoveFrontend(it->first, it->second, res, dropped_services)) {
        ++it;
        continue;
      }
      it = frontends_.erase(it);
    }
    std::vector<uint32_t> referenced;
    for (auto& [k, rec] : frontends_) AddReferenced(rec, referenced);
    std::sort(referenced.begin(), referenced.end());
    for (auto it = backends_.begin(); it != backends_.end();)
      it = it->second.id == 0 ||
                   std::binary_search(referenced.begin(), referenced.end(), it->second.id)
               ? std::next(it)
               : RemoveBackend(it, res);
  }
  if (auto st = ForgetAffinity(dropped_pairs, dropped_services); !st.ok())
    res.errors.push_back(std::string(st.message()));
  // The next change may be applied incrementally only from a state that is exactly `desired`.
  clean_ = res.ok() && synced;
  return res;
}

}  // namespace skiff::reconcile
