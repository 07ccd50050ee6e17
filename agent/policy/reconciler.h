// Writes a compiled policy (compiler.h) into the policy maps (maps/policy.h), changing only
// what differs, and keeps numeric identities and endpoint ids stable across changes and
// agent restarts.
//
// Order of writes (make-before-break):
//  0. the DENY_UNKNOWN switch, when some policy exists (a pod the agent has not programmed
//     yet is unreachable from then on);
//  1. new and changed allow entries (policy map);
//  2. new and changed ipcache entries: identities of peers, endpoint ids and isolation flags
//     — so a pod is isolated only once its allow entries are in, a new pod gets its endpoint
//     entry (and becomes reachable) only after its ingress entries, and a peer moves to a new
//     identity only once the entries naming that identity exist;
//  3. allow entries no longer wanted; 4. ipcache entries no longer wanted; 5. DENY_UNKNOWN
//     cleared when no policy is left.
// A full policy map fails closed: the entries that fit are written, the isolation flags are
// written regardless (an isolated endpoint stays isolated and denies what is missing), and the
// error names the map and the endpoint. Before every source has synced nothing is deleted.
//
// Thread: owned by the agent's reconcile loop; not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/policy/compiler.h"
#include "agent/reconcile/kv_table.h"
#include "maps/policy.h"

namespace skiff::policy {

struct PolicyTables {
  reconcile::KvTable<skiff_ipcache_key, skiff_ipcache_val>* ipcache = nullptr;
  reconcile::KvTable<skiff_policy_key, skiff_policy_val>* policy = nullptr;
  reconcile::KvTable<__u32, skiff_pol_state>* state = nullptr;
};

struct PolicyApplyResult {
  int policy_written = 0;
  int policy_deleted = 0;
  int ipcache_written = 0;
  int ipcache_deleted = 0;
  int map_full_errors = 0;  // policy or ipcache map full (metric skiff_policy_map_full_total)
  std::vector<std::string> errors;
  bool ok() const { return errors.empty(); }
};

// The policy map key for one allow entry and port prefix (shared with tests and tools).
skiff_policy_key MakePolicyKey(uint32_t endpoint_id, uint32_t identity, uint8_t direction,
                               uint8_t proto, PortPrefix prefix);

class PolicyReconciler {
 public:
  explicit PolicyReconciler(PolicyTables tables) : t_(tables) {}

  // Reads the maps: what is written, and the identities / endpoint ids in use, which later
  // Apply calls keep for the same classes and pods.
  absl::Status Restore();
  PolicyApplyResult Apply(const Compiled& compiled, bool synced);

  // After Apply: numeric ids, for tools and tests.
  uint32_t IdentityOf(int klass) const;  // SKIFF_IDENTITY_* for -1 (ANY)
  uint32_t EndpointId(const model::NamespacedName& pod) const;
  const std::string& RuleName(uint32_t rule_id) const;
  // Every rule name, rule id N at [N - 1] (for the API's snapshot).
  const std::vector<std::string>& rule_names() const { return rule_names_; }
  uint64_t map_full_total() const { return map_full_total_; }

 private:
  using PolicyMap =
      std::map<skiff_policy_key, skiff_policy_val, reconcile::BytewiseLess<skiff_policy_key>>;
  using IpcacheMap =
      std::map<skiff_ipcache_key, skiff_ipcache_val, reconcile::BytewiseLess<skiff_ipcache_key>>;
  void AssignIds(const Compiled& c);
  uint32_t RuleId(const RuleRef& r);

  PolicyTables t_;
  PolicyMap policy_;    // what the policy map holds
  IpcacheMap ipcache_;  // what the ipcache holds
  uint32_t state_flags_ = 0;
  bool state_known_ = false;
  std::map<PeerClass, uint32_t> class_ids_;
  std::vector<uint32_t> identity_by_index_;      // per class index of the last Apply
  std::map<uint32_t, uint32_t> identity_hints_;  // /32 address (network order) -> identity
  std::map<model::NamespacedName, uint32_t> endpoint_ids_;
  std::map<uint32_t, uint32_t> endpoint_hints_;  // address -> endpoint id
  std::map<std::string, uint32_t> rule_ids_;
  std::vector<std::string> rule_names_;
  uint64_t map_full_total_ = 0;
};

}  // namespace skiff::policy
