#include "agent/api/policy_state.h"

namespace skiff::api {

uint32_t PolicyState::IdentityOf(int klass) const {
  if (klass < 0 || static_cast<size_t>(klass) >= class_identity.size()) return SKIFF_IDENTITY_ANY;
  return class_identity[klass];
}

int PolicyState::ClassOf(uint32_t identity) const {
  if (identity < SKIFF_IDENTITY_FIRST_DYNAMIC) return -1;
  for (size_t i = 0; i < class_identity.size(); i++)
    if (class_identity[i] == identity) return static_cast<int>(i);
  return -1;
}

std::string PolicyState::RuleName(uint32_t rule_id) const {
  if (rule_id < 1 || rule_id > rule_names.size()) return "";
  return rule_names[rule_id - 1];
}

std::shared_ptr<const PolicyState> MakePolicyState(policy::Compiled compiled,
                                                   const policy::PolicyReconciler& rec,
                                                   uint64_t generation) {
  auto s = std::make_shared<PolicyState>();
  s->generation = generation;
  for (size_t i = 0; i < compiled.classes.size(); i++)
    s->class_identity.push_back(rec.IdentityOf(static_cast<int>(i)));
  for (const auto& [pod, ep] : compiled.endpoints) s->endpoint_ids[pod] = rec.EndpointId(pod);
  s->rule_names = rec.rule_names();
  s->compiled = std::move(compiled);
  return s;
}

}  // namespace skiff::api
