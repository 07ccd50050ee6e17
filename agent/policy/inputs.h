// Which object changes can change the compiled policy (policy::Compile reads pods,
// namespaces, NetworkPolicies and this node's Node): the reconcile loop skips compiling when
// a change touched none of them (a Service or EndpointSlice change alone, the common case).
#pragma once

#include <vector>

#include "agent/model/objects.h"

namespace skiff::policy {

inline bool InputsChanged(const std::vector<model::ObjectKey>& changed) {
  for (const model::ObjectKey& key : changed) {
    switch (key.kind) {
      case model::ObjectKind::kPod:
      case model::ObjectKind::kNamespace:
      case model::ObjectKind::kNetworkPolicy:
      case model::ObjectKind::kNode:
        return true;
      case model::ObjectKind::kService:
      case model::ObjectKind::kEndpointSlice:
        break;
    }
  }
  return false;
}

}  // namespace skiff::policy
