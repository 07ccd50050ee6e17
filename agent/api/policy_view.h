// Helpers shared by PolicyService's calls (policy_service.cc, policy_trace.cc): naming what an
// identity stands for, and tracing an allow entry to the exact rule and peer of a policy.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "agent/api/core.h"
#include "agent/api/policy_state.h"

namespace skiff::api {

// The published policy state, or FailedPrecondition when the agent has not compiled any yet.
absl::StatusOr<std::shared_ptr<const PolicyState>> PolicyStateOf(const ApiState& s);

// "any peer", "world", "host", "pods of NS {k=v}", "outside addresses in CIDR,...", or
// "unknown identity N" (an identity the agent did not give in its last apply).
std::string DescribeIdentity(const PolicyState& p, uint32_t identity);

// "NS/NAME ingress[I] peer[P]": `rule` is a RuleRef::ToString() name from the policy map;
// the peer index is the first peer of that rule matching the class `klass` (-1: a rule
// without peers, or a peer that is world). Returns `rule` alone when the policy or peer is
// not found in `objects` (e.g. deleted since).
std::string RuleWithPeer(const model::ObjectSnapshot& objects, const PolicyState& p,
                         const std::string& rule, int klass);

// The pod named "NS/NAME" or having address `input`, if any (every node's pods).
const model::Pod* FindPodByInput(const model::ObjectSnapshot& objects, const std::string& input);

}  // namespace skiff::api
