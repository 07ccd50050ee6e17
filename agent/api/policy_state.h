// The NetworkPolicy state the main loop last applied, as the API sees it: the compiled policy
// plus the numeric ids the reconciler gave it (identities, endpoint ids, rule ids). Published
// in ApiState::policy (core.h) as an immutable snapshot; PolicyService (policy_service.h)
// reads it next to the pinned maps.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/policy/compiler.h"
#include "agent/policy/reconciler.h"

namespace skiff::api {

struct PolicyState {
  uint64_t generation = 0;  // the object snapshot it was compiled from
  policy::Compiled compiled;
  std::vector<uint32_t> class_identity;  // identity of Compiled::classes[i]
  std::map<model::NamespacedName, uint32_t> endpoint_ids;
  std::vector<std::string> rule_names;  // rule id N is rule_names[N - 1]

  // Identity of a class index (-1 = ANY).
  uint32_t IdentityOf(int klass) const;
  // The class of an identity: -1 for reserved identities or unknown ones.
  int ClassOf(uint32_t identity) const;
  // "" when unknown.
  std::string RuleName(uint32_t rule_id) const;
};

// After PolicyReconciler::Apply(compiled): the snapshot to publish.
std::shared_ptr<const PolicyState> MakePolicyState(policy::Compiled compiled,
                                                   const policy::PolicyReconciler& rec,
                                                   uint64_t generation);

}  // namespace skiff::api
