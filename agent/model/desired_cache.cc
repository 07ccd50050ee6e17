#include "agent/model/desired_cache.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/model/compute.h"

namespace skiff::model {

void DesiredStateCache::IndexSlice(const NamespacedName& slice_id, const EndpointSlice* slice,
                                   const ObjectSnapshot* before,
                                   std::vector<NamespacedName>* affected) {
  if (const EndpointSlice* was = before ? before->FindEndpointSlice(slice_id) : nullptr) {
    if (std::string service = was->service_name(); !service.empty()) {
      NamespacedName owner{slice_id.namespace_, std::move(service)};
      slices_of_.erase({owner, slice_id.name});
      affected->push_back(std::move(owner));
    }
  }
  if (slice == nullptr) return;
  std::string service = slice->service_name();
  if (service.empty()) return;
  NamespacedName owner{slice_id.namespace_, std::move(service)};
  slices_of_.insert({owner, slice_id.name});
  affected->push_back(std::move(owner));
}

DesiredState DesiredStateCache::Recompute(const ObjectSnapshot& snap, const ObjectSnapshot* before,
                                          const NamespacedName& service,
                                          std::vector<FrontendKey>* touched,
                                          std::vector<std::string>* warnings) {
  DesiredState fresh;
  if (const Service* svc = snap.FindService(service); svc != nullptr) {
    // This Service and its slices only, in slice name order as ComputeDesiredState sees them
    // (slices_of_ is ordered by (Service, slice)): compute.h's rules, unchanged.
    std::vector<const EndpointSlice*> slices;
    NamespacedName slice_id{service.namespace_, ""};
    for (auto owned = slices_of_.lower_bound({service, std::string()});
         owned != slices_of_.end() && owned->first == service; ++owned) {
      slice_id.name = owned->second;
      if (const EndpointSlice* s = snap.FindEndpointSlice(slice_id); s != nullptr) {
        slices.push_back(s);
      }
    }
    AddServiceFrontends(service, *svc, slices, node_name_, node_addresses_, fresh, warnings);
  }
  // Its claims as last computed: the keys of its previous Service object (a frontend is
  // emitted with or without backends, so the slices do not matter).
  if (const Service* was = before ? before->FindService(service) : nullptr) {
    DesiredState had;
    AddServiceFrontends(service, *was, {}, node_name_, node_addresses_, had, nullptr);
    for (const auto& [key, fe] : had.frontends) {
      touched->push_back(key);
      claims_.erase({key, service});
    }
  }
  for (const auto& [key, fe] : fresh.frontends) {
    touched->push_back(key);
    claims_.insert({key, service});
  }
  return fresh;
}

void DesiredStateCache::Take(const FrontendKey& key, Frontend&& fe, Update* update) {
  auto have = state_.frontends.find(key);
  if (have == state_.frontends.end()) {
    state_.frontends.emplace(key, std::move(fe));
  } else if (!(have->second == fe)) {
    state_.frontends.insert_or_assign(key, std::move(fe));
  } else {
    return;  // unchanged: the node stays shared with the reconciler's and the API's copies
  }
  if (!update->full) update->changed.insert(key);
}

void DesiredStateCache::Resolve(const ObjectSnapshot& snap, const FrontendKey& key,
                                const std::vector<NamespacedName>& affected, Update* update,
                                std::vector<std::string>* warnings) {
  auto claim = claims_.lower_bound({key, NamespacedName{}});
  auto have = state_.frontends.find(key);
  if (claim == claims_.end() || claim->first != key) {
    if (have != state_.frontends.end()) {
      state_.frontends.erase(have);
      if (!update->full) update->changed.insert(key);
    }
    return;
  }
  const NamespacedName winner = claim->second;  // a copy: Recompute changes claims_
  const std::string winner_name = winner.ToString();
  if (warnings != nullptr) {
    for (auto it = std::next(claim); it != claims_.end() && it->first == key; ++it) {
      warnings->push_back(absl::StrCat("Service ", it->second.ToString(), ": ", key.vip.ToString(),
                                       ":", key.port, "/", ProtocolName(key.proto),
                                       " is already used by Service ", winner_name, "; ignored"));
    }
  }
  // Recomputed by this Apply: its frontends were taken then.
  if (update->full || std::binary_search(affected.begin(), affected.end(), winner)) return;
  // Unchanged winner, not recomputed: state_ already holds its frontend.
  if (have != state_.frontends.end() && have->second.service == winner_name) return;
  auto computed = takeovers_.find(winner);
  if (computed == takeovers_.end()) {
    // The key changed hands to a Service this change did not touch: compute it now (its
    // claims come out the same, so nothing else needs resolving).
    std::vector<FrontendKey> ignored;
    DesiredState fresh = Recompute(snap, &computed_, winner, &ignored, nullptr);
    computed = takeovers_.emplace(winner, std::move(fresh)).first;
  }
  // Every key is resolved once: moved, not copied.
  Take(key, std::move(computed->second.frontends.at(key)), update);
}

DesiredStateCache::Update DesiredStateCache::Apply(
    const ObjectSnapshot& snap, const std::optional<std::vector<ObjectKey>>& changed_keys,
    absl::string_view node_name, const std::vector<IpAddr>& node_addresses,
    std::vector<std::string>* warnings) {
  Update update;
  // Vectors, sorted and deduplicated once: a first load touches every Service and frontend.
  std::vector<NamespacedName> affected;
  const bool full = !initialized_ || !changed_keys || node_name != node_name_ ||
                    node_addresses != node_addresses_;
  if (full) {
    update.full = true;
    initialized_ = true;
    node_name_ = std::string(node_name);
    node_addresses_ = node_addresses;
    // state_ is kept: the frontends that come out the same keep their nodes, shared with the
    // copies the reconciler and the API hold, instead of a second copy of everything.
    slices_of_.clear();
    claims_.clear();
    for (const auto& [id, slice] : snap.endpoint_slices)
      IndexSlice(id, slice.get(), nullptr, &affected);
    affected.clear();
    affected.reserve(snap.services.size());
    for (const auto& [id, svc] : snap.services) affected.push_back(id);
  } else {
    for (const ObjectKey& key : *changed_keys) {
      if (key.kind == ObjectKind::kService) {
        affected.push_back(key.id);
      } else if (key.kind == ObjectKind::kEndpointSlice) {
        IndexSlice(key.id, snap.FindEndpointSlice(key.id), &computed_, &affected);
      }
    }
  }
  std::sort(affected.begin(), affected.end());
  affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
  // One Service at a time, in namespace/name order: a key whose first claim is the Service
  // just computed is won by it for good (every Service before it is computed already or
  // unchanged), so its frontend goes to state_ at once and only one Service's frontends are
  // held aside, not every recomputed one (100,000 at a first load).
  std::vector<FrontendKey> touched;
  for (const NamespacedName& service : affected) {
    DesiredState fresh = Recompute(snap, full ? nullptr : &computed_, service, &touched, warnings);
    for (const auto& [key, fe] : fresh.frontends) {
      auto claim = claims_.lower_bound({key, NamespacedName{}});
      if (claim->second == service) Take(key, std::move(fresh.frontends.at(key)), &update);
    }
  }
  if (full) {
    // Frontends of the previous state nobody claims any more.
    std::vector<FrontendKey> stale;
    for (const auto& [key, fe] : state_.frontends) {
      auto claim = claims_.lower_bound({key, NamespacedName{}});
      if (claim == claims_.end() || claim->first != key) stale.push_back(key);
    }
    for (const FrontendKey& key : stale) state_.frontends.erase(key);
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  update.services_recomputed = affected.size();
  // Removals, takeovers by Services outside the change, and the clash warnings.
  for (const FrontendKey& key : touched) Resolve(snap, key, affected, &update, warnings);
  takeovers_.clear();
  computed_ = snap;
  return update;
}

}  // namespace skiff::model
