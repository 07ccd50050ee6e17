// LbReconciler::ApplyChanges: the incremental half of the LB reconciler. Only the changed
// frontends are written or deleted, and only the backends they use are rewritten: each
// backend's value (active if any user sees it active, local if any says so) comes from
// reference counts kept per frontend, so it never needs the other frontends.
#include <iterator>

#include "agent/reconcile/lb_reconciler.h"

namespace skiff::reconcile {

void LbReconciler::RebuildUses(const model::DesiredState& desired) {
  uses_.clear();
  frontend_uses_.clear();
  std::set<BackendAddr> ignored;
  for (const auto& [key, fe] : desired.frontends) {
    if (key.vip.family == 4) SetUses(key, &fe, ignored);
  }
}

void LbReconciler::SetUses(const model::FrontendKey& key, const model::Frontend* fe,
                           std::set<BackendAddr>& touched) {
  if (auto old = frontend_uses_.find(key); old != frontend_uses_.end()) {
    for (const FrontendUse& u : old->second) {
      touched.insert(u.addr);
      auto it = uses_.find(u.addr);
      if (it == uses_.end()) continue;
      it->second.users--;
      it->second.active -= u.active;
      it->second.local -= u.local;
      if (it->second.users == 0) uses_.erase(it);
    }
    frontend_uses_.erase(old);
  }
  if (fe == nullptr || fe->backends.empty()) return;
  std::vector<FrontendUse>& mine = frontend_uses_[key];
  mine.reserve(fe->backends.size());
  for (const model::Backend& b : fe->backends) {
    FrontendUse u{BackendAddr{b.ip, b.port, static_cast<uint8_t>(key.proto)},
                  b.state == model::BackendState::kActive, b.node_local};
    BackendUse& use = uses_[u.addr];
    use.users++;
    use.active += u.active;
    use.local += u.local;
    touched.insert(u.addr);
    mine.push_back(u);
  }
}

ApplyResult LbReconciler::ApplyChanges(const model::DesiredState& desired, bool synced,
                                       const std::set<model::FrontendKey>& changed) {
  if (!clean_ || !synced) return Apply(desired, synced);
  ApplyResult res;
  maglev_memo_.clear();
  // 1. The backends the changed frontends use or used.
  std::set<BackendAddr> touched;
  for (const model::FrontendKey& key : changed) {
    auto it = desired.frontends.find(key);
    const bool wanted = it != desired.frontends.end() && key.vip.family == 4;
    SetUses(key, wanted ? &it->second : nullptr, touched);
  }
  std::set<BackendAddr> failed_backends;
  for (const BackendAddr& addr : touched) {
    auto use = uses_.find(addr);
    if (use == uses_.end()) continue;
    QueueBackend(addr, BackendValue(addr, use->second.active > 0, use->second.local > 0),
                 failed_backends, res);
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
  std::set<uint32_t> referenced;
  for (const model::FrontendKey& key : changed) {
    auto rec = frontends_.find(key);
    if (rec == frontends_.end()) continue;
    for (const auto& s : rec->second.scopes) referenced.insert(s.slots.begin(), s.slots.end());
  }
  for (const BackendAddr& addr : touched) {
    if (uses_.count(addr)) continue;
    auto id = backend_ids_.find(addr);
    if (id != backend_ids_.end() && !referenced.count(id->second)) RemoveBackend(id, res);
  }
  if (auto st = ForgetAffinity(dropped_pairs, dropped_services); !st.ok())
    res.errors.push_back(std::string(st.message()));
  clean_ = res.ok();
  return res;
}

}  // namespace skiff::reconcile
