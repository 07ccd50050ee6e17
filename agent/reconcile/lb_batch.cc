// LbReconciler's batched writes: backends, and the revnat and service entries of fresh
// frontends, go to the maps through KvTable::UpdateBatch (BPF_MAP_UPDATE_BATCH) instead of one
// syscall per entry. A batch applies its entries in order, as single updates would, so the
// orders of lb_reconciler.h hold: every backend before any frontend, and within a fresh
// frontend its slots before its slot 0 (its maglev tables and source ranges are written
// directly, before the batch that holds its slot 0).
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/reconcile/lb_reconciler.h"

namespace skiff::reconcile {
namespace {

// Entries per flush: bounds the staging memory (~36 bytes per service entry; a vector may
// double once past it, so up to twice that) and keeps each syscall short. 16,384 stages
// ≈ 1 MB, not the 4.7 MB that 65,536 took at 100,000 Services, for 4x as many (still
// few: ~70 at 100,000 × 10) batch syscalls.
constexpr size_t kChunk = 16384;

// Writes keys/values[0, n) in batches, skipping the contiguous entries of owners marked in
// `failed` and marking the owner of an entry that fails (with its status).
template <typename K, typename V>
void WriteOwned(KvTable<K, V>* table, const std::vector<K>& keys, const std::vector<V>& values,
                const std::vector<uint32_t>& owner, std::vector<absl::Status>& failed) {
  const size_t n = keys.size();
  size_t pos = 0;
  while (pos < n) {
    if (!failed[owner[pos]].ok()) {
      pos++;
      continue;
    }
    size_t end = pos;
    while (end < n && failed[owner[end]].ok()) end++;
    size_t done = 0;
    absl::Status st = table->UpdateBatch(&keys[pos], &values[pos], end - pos, &done);
    if (st.ok()) {
      pos = end;
      continue;
    }
    failed[owner[pos + done]] = st;  // its later entries are skipped from here on
    pos += done;
  }
}

}  // namespace

void LbReconciler::QueueBackend(const BackendAddr& addr, BackendEntry& e,
                                std::set<BackendAddr>& failed, ApplyResult& res) {
  const skiff_lb4_backend want = BackendValue(addr, e.use.active > 0, e.use.local > 0);
  if (!skiff_lb4_backend_present(&want)) {
    // It would read as an empty slot of the backends array (maps/lb.h).
    failed.insert(addr);
    res.errors.push_back(
        absl::StrCat("backend 0.0.0.0:", addr.port,
                     " cannot be load-balanced to; its frontends are not written"));
    return;
  }
  uint32_t id;
  bool new_id = false;
  if (e.id != 0) {
    id = e.id;
    if (e.written && e.state == want.state && e.flags == want.flags) return;
  } else {
    auto fresh = backend_pool_.Allocate();
    if (!fresh) {
      failed.insert(addr);
      if (!backend_ids_full_reported_) {  // once per Apply, not once per backend
        backend_ids_full_reported_ = true;
        res.map_full_errors++;
        res.errors.push_back(absl::StrCat(
            "map ", t_.backends->name(), " is full (", t_.backends->max_entries(),
            " entries: backend ids 1..", t_.backends->max_entries() - 1, ", ", backend_pool_.size(),
            " in use); raise its size flag (--lb-backends-max)"));
      }
      return;
    }
    id = *fresh;
    new_id = true;
  }
  PendingBackends& p = pending_backends_;
  p.ids.push_back(id);
  p.values.push_back(want);
  p.addrs.push_back(addr);
  p.new_id.push_back(new_id);
  if (p.ids.size() >= kChunk) FlushBackends(failed, res);
}

void LbReconciler::FlushBackends(std::set<BackendAddr>& failed, ApplyResult& res) {
  PendingBackends& p = pending_backends_;
  const size_t n = p.ids.size();
  size_t pos = 0;
  while (pos < n) {
    size_t done = 0;
    absl::Status st = t_.backends->UpdateBatch(&p.ids[pos], &p.values[pos], n - pos, &done);
    for (size_t i = pos; i < pos + done; i++) {
      BackendEntry& e = backends_[p.addrs[i]];
      if (e.id == 0) backend_ids_++;
      e.id = p.ids[i];
      e.state = p.values[i].state;
      e.flags = p.values[i].flags;
      e.written = true;
      res.backends_written++;
    }
    if (st.ok()) break;
    const size_t bad = pos + done;
    if (p.new_id[bad]) backend_pool_.Release(p.ids[bad]);
    failed.insert(p.addrs[bad]);
    if (absl::IsResourceExhausted(st)) res.map_full_errors++;
    res.errors.push_back(std::string(st.message()));
    pos = bad + 1;
  }
  p.ids.clear();
  p.values.clear();
  p.addrs.clear();
  p.new_id.clear();
}

absl::Status LbReconciler::PutService(const skiff_lb4_key& key, const skiff_lb4_service& value) {
  if (!staging_) return t_.services->Update(key, value);
  stage_.service_keys.push_back(key);
  stage_.service_values.push_back(value);
  stage_.service_owner.push_back(static_cast<uint32_t>(stage_.owners.size() - 1));
  return absl::OkStatus();
}

absl::Status LbReconciler::PutRevNat(uint32_t id, const skiff_lb4_revnat& value) {
  if (!staging_) return t_.revnat->Update(id, value);
  stage_.revnat_keys.push_back(id);
  stage_.revnat_values.push_back(value);
  stage_.revnat_owner.push_back(static_cast<uint32_t>(stage_.owners.size() - 1));
  return absl::OkStatus();
}

void LbReconciler::ApplyFresh(const model::FrontendKey& key, const model::Frontend& fe,
                              const std::set<BackendAddr>& failed_backends, ApplyResult& res) {
  Stage& s = stage_;
  const size_t revnat_mark = s.revnat_keys.size(), service_mark = s.service_keys.size();
  const size_t errors = res.errors.size();
  s.owners.push_back({&key, &fe});
  std::vector<std::pair<uint32_t, uint32_t>> no_pairs;  // a fresh frontend drops no backend
  staging_ = true;
  ApplyFrontend(key, fe, failed_backends, res, no_pairs);
  staging_ = false;
  if (res.errors.size() != errors) {
    // Failed before its batch: nothing staged of it may be written, and what it wrote
    // directly (source ranges, maglev tables) goes.
    s.revnat_keys.resize(revnat_mark);
    s.revnat_values.resize(revnat_mark);
    s.revnat_owner.resize(revnat_mark);
    s.service_keys.resize(service_mark);
    s.service_values.resize(service_mark);
    s.service_owner.resize(service_mark);
    s.owners.pop_back();
    AbandonFresh(key);
    return;
  }
  if (s.service_keys.size() >= kChunk) FlushStage(res);
}

void LbReconciler::FlushStage(ApplyResult& res) {
  Stage& s = stage_;
  if (s.owners.empty()) return;
  std::vector<absl::Status> failed(s.owners.size());
  WriteOwned(t_.revnat, s.revnat_keys, s.revnat_values, s.revnat_owner, failed);
  WriteOwned(t_.services, s.service_keys, s.service_values, s.service_owner, failed);
  for (size_t o = 0; o < s.owners.size(); o++) {
    if (failed[o].ok()) continue;
    const auto [key, fe] = s.owners[o];
    AbandonFresh(*key);
    res.frontends_written--;
    Fail(res, fe, *key, failed[o]);
  }
  // Cleared, not reassigned: the next chunk reuses the vectors' capacity.
  s.owners.clear();
  s.revnat_keys.clear();
  s.revnat_values.clear();
  s.revnat_owner.clear();
  s.service_keys.clear();
  s.service_values.clear();
  s.service_owner.clear();
}

void LbReconciler::AbandonFresh(const model::FrontendKey& key) {
  auto it = frontends_.find(key);
  if (it == frontends_.end()) return;
  FrontendRecord& rec = it->second;
  // Slot 0 first (DeleteScope), so no packet follows a count to missing slots. Deleting what
  // never reached the map is harmless.
  (void)DeleteFrontend(key, rec);
  if (rec.rev_nat_id != 0) {
    (void)t_.revnat->Delete(rec.rev_nat_id);
    revnat_.erase(rec.rev_nat_id);
    revnat_pool_.Release(rec.rev_nat_id);
  }
  frontends_.erase(it);
}

}  // namespace skiff::reconcile
