// The desired state kept between reconciles and brought up to date incrementally: a change to
// one Service or EndpointSlice recomputes only the Services it touches, and reports exactly
// the frontends whose value changed, so the LB reconciler diffs those alone.
//
// Each Service's frontends are computed by AddServiceFrontends, the function ComputeDesiredState
// applies to every Service, from that Service and its EndpointSlices (compute.h stays the one
// definition of the rules, NodePorts included), and kept per Service. Clashes between Services (the
// same vip:port:proto) are resolved as ComputeDesiredState resolves them — the first Service in
// namespace/name order keeps the frontend — so the result always equals a full ComputeDesiredState.
//
// Thread: owned by the reconcile loop; not thread-safe.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/strings/string_view.h"
#include "agent/model/desired_state.h"
#include "agent/model/object_store.h"

namespace skiff::model {

class DesiredStateCache {
 public:
  struct Update {
    bool full = false;              // everything was recomputed: `changed` is not meaningful
    std::set<FrontendKey> changed;  // frontends added, modified or removed
    size_t services_recomputed = 0;
  };

  // Brings state() to `snap`. `changed_keys` are the store's keys changed since the previous
  // call (ObjectStore::Snapshot(since, ...)); nullopt, a first call, or a different node name
  // or node address list recompute everything.
  Update Apply(const ObjectSnapshot& snap,
               const std::optional<std::vector<ObjectKey>>& changed_keys,
               absl::string_view node_name, const std::vector<IpAddr>& node_addresses,
               std::vector<std::string>* warnings);

  const DesiredState& state() const { return state_; }

 private:
  // Computes `service`, updates its claims and returns its frontends; collects the keys it
  // had (its claims in `before`, the snapshot it was last computed from; nullptr: none) or has.
  DesiredState Recompute(const ObjectSnapshot& snap, const ObjectSnapshot* before,
                         const NamespacedName& service, std::vector<FrontendKey>* touched,
                         std::vector<std::string>* warnings);
  // Puts `fe`, the winning frontend of `key`, into state_ (its node stays shared with earlier
  // copies of the state when the value is unchanged).
  void Take(const FrontendKey& key, Frontend&& fe, Update* update);
  // Moves the slice from its Service in `before` (nullptr: none) to the one it names now.
  void IndexSlice(const NamespacedName& slice_id, const EndpointSlice* slice,
                  const ObjectSnapshot* before, std::vector<NamespacedName>* affected);
  // Settles a key whose winner may have changed; `affected` are the Services recomputed (and
  // so already taken) by this Apply, sorted.
  void Resolve(const ObjectSnapshot& snap, const FrontendKey& key,
               const std::vector<NamespacedName>& affected, Update* update,
               std::vector<std::string>* warnings);

  bool initialized_ = false;
  std::string node_name_;
  std::vector<IpAddr> node_addresses_;
  // The snapshot state_ was computed from (a copy shares the store's nodes, and the reconcile
  // loop keeps it anyway). It tells a changed slice's previous Service and a recomputed
  // Service's previous frontend keys (they follow from the Service object alone), so neither
  // is indexed here: 100,000 Services × a slice each made those indexes ≈ 16 MB.
  ObjectSnapshot computed_;
  // Services outside a change computed during its Apply because they took a key over: only
  // these (rarely more than a few), not every recomputed Service, are held at once.
  std::map<NamespacedName, DesiredState> takeovers_;
  // A B-tree, not std::map nodes (and a std::set per Service): 100,000 slices at 100,000
  // Services cost ≈ 55 MB in node form. A slice and its Service share their namespace, so
  // each entry names it once. Only the winning frontend of each key is kept (in state_), so
  // the desired state is held once; a Service that takes a key over is recomputed.
  absl::btree_set<std::pair<NamespacedName, std::string>> slices_of_;  // (Service, slice name)
  // (frontend, a Service producing it); the first per frontend wins (namespace/name order).
  absl::btree_set<std::pair<FrontendKey, NamespacedName>> claims_;
  DesiredState state_;
};

}  // namespace skiff::model
