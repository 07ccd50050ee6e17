// LbReconciler::ApplyChanges: the incremental half of the LB reconciler. Only the changed
// frontends are written or deleted, and only the backends they use are rewritten: each
// backend's value (active if any user sees it active, local if any says so) comes from
// reference counts kept per frontend, so it never needs the other frontends.
#include <algorithm>
#include <iterator>
#include <vector>

#include "agent/reconcile/lb_reconciler.h"

namespace skiff::reconcile {

void LbReconciler::RebuildUses(const model::DesiredState& desired) {
  for (auto it = backends_.begin(); it != backends_.end();) {
    if (it->second.id == 0) {
      it = backends_.erase(it);
      continue;
    }
    it->second.use = {};
    ++it;
  }
  counted_ = desired;
  for (const auto& [key, fe] : desired.frontends) CountUses(key, fe, +1, nullptr);
}

void LbReconciler::CountUses(const model::FrontendKey& key, const model::Frontend& fe, int sign,
                             std::vector<BackendAddr>* touched) {
  if (key.vip.family != 4) return;
  for (const model::Backend& b : fe.backends) {
    const BackendAddr addr{b.ip, b.port, static_cast<uint8_t>(key.proto)};
    const bool active = b.state == model::BackendState::kActive;
    if (touched != nullptr) touched->push_back(addr);
    if (sign > 0) {
      BackendUse& use = backends_[addr].use;
      use.users++;
      use.active += active;
      use.local += b.node_local;
      continue;
    }
    auto it = backends_.find(addr);
    if (it == backends_.end() || it->second.use.users == 0) continue;
    BackendUse& use = it->second.use;
    use.users--;
    use.active -= active;
    use.local -= b.node_local;
    // Without users or id it goes; with an id it stays until its map entry is deleted.
    if (use.users == 0 && it->second.id == 0) backends_.erase(it);
  }
}

void LbReconciler::SetUses(const model::FrontendKey& key, const model::Frontend* fe,
                           std::vector<BackendAddr>& touched) {
  if (auto old = counted_.frontends.find(key); old != counted_.frontends.end())
    CountUses(key, old->second, -1, &touched);
  if (fe != nullptr) CountUses(key, *fe, +1, &touched);
}

ApplyResult LbReconciler::ApplyChanges(const model::DesiredState& desired, bool synced,
                                       const std::set<model::FrontendKey>& changed) {
  if (!clean_ || !synced) return Apply(desired, synced);
  ApplyResult res;
  maglev_memo_.clear();
  backend_ids_full_reported_ = false;
  // 1. The backends the changed frontends use or used. Sorted vectors rather than sets: a
  // first load arriving as changes touches a million backends at 100,000 Services.
  // Reserved exactly: a first load arriving as changes touches a million at 100,000 Services,
  // and a doubling vector would hold up to twice that (and both copies while it grows).
  size_t uses = 0;
  for (const model::FrontendKey& key : changed) {
    if (auto it = desired.frontends.find(key); it != desired.frontends.end())
      uses += it->second.backends.size();
    if (auto it = counted_.frontends.find(key); it != counted_.frontends.end())
      uses += it->second.backends.size();
  }
  std::vector<BackendAddr> touched;
  touched.reserve(uses);
  for (const model::FrontendKey& key : changed) {
    auto it = desired.frontends.find(key);
    const bool wanted = it != desired.frontends.end() && key.vip.family == 4;
    SetUses(key, wanted ? &it->second : nullptr, touched);
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  counted_ = desired;  // every changed frontend is counted as it is in `desired`
  std::set<BackendAddr> failed_backends;
  for (const BackendAddr& addr : touched) {
    auto it = backends_.find(addr);
    if (it == backends_.end() || it->second.use.users == 0) continue;
    QueueBackend(addr, it->second, failed_backends, res);
  }
  FlushBackends(failed_backends, res);

  // 2. The changed frontends that are still wanted.
  std::vector<std::pair<uint32_t, uint32_t>> dropped_pairs;
  // New ones are staged and written in batches, as in Apply: a first load often arrives as
  // changes (the sources commit file by file / page by page after an empty first sync).
  for (const model::FrontendKey& key : changed) {
    auto it = desired.frontends.find(key);
    if (it == desired.frontends.end() || key.vip.family != 4) continue;
    if (!frontends_.count(key)) {
      ApplyFresh(key, it->second, failed_backends, res);
      continue;
    }
    ApplyFrontend(key, it->second, failed_backends, res, dropped_pairs);
  }
  FlushStage(res);

  // 3. Deletions: the changed frontends no longer wanted, then the backends no frontend uses.
  // Every unchanged frontend holds exactly its desired backends (clean_), so only the changed
  // ones can still reference a backend that lost its last user.
  std::vector<uint32_t> dropped_services;
  for (const model::FrontendKey& key : changed) {
    if (desired.frontends.count(key) && key.vip.family == 4) continue;
    auto rec = frontends_.find(key);
    if (rec != frontends_.end() && RemoveFrontend(key, rec->second, res, dropped_services)) {
      frontends_.erase(rec);
    }
  }
  std::vector<uint32_t> referenced;
  bool unused = false;
  for (const BackendAddr& addr : touched) {
    auto it = backends_.find(addr);
    unused |= it != backends_.end() && it->second.use.users == 0;
  }
  if (unused) {
    for (const model::FrontendKey& key : changed) {
      auto rec = frontends_.find(key);
      if (rec == frontends_.end()) continue;
      AddReferenced(rec->second, referenced);
    }
    std::sort(referenced.begin(), referenced.end());
  }
  for (const BackendAddr& addr : touched) {
    auto it = backends_.find(addr);
    if (it == backends_.end() || it->second.use.users != 0 || it->second.id == 0) continue;
    if (!std::binary_search(referenced.begin(), referenced.end(), it->second.id))
      RemoveBackend(it, res);
  }
  if (auto st = ForgetAffinity(dropped_pairs, dropped_services); !st.ok())
    res.errors.push_back(std::string(st.message()));
  clean_ = res.ok();
  return res;
}

}  // namespace skiff::reconcile
