// The pinned policy maps (maps/policy.h) read into memory, with the lookups the BPF program
// does (bpf/lib/policy.h) done the same way: longest-prefix match over the key's data bytes,
// as the kernel's LPM trie compares them. agentctl policy get/trace report what these hold
// next to the compiled state, so a disagreement between agent and datapath shows.
//
// Thread: a PolicyMaps is read once per API call and then only read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/api/core.h"
#include "agent/api/policy_key.h"
#include "maps/policy.h"

namespace skiff::api {

struct PolicyMapsSnapshot {
  std::vector<std::pair<skiff_ipcache_key, skiff_ipcache_val>> ipcache;
  std::vector<std::pair<skiff_policy_key, skiff_policy_val>> policy;
  uint32_t state_flags = 0;  // SKIFF_POL_STATE_F_*

  // Reads skiff_ipcache4_v1, skiff_policy4_v1 and skiff_pol_state_v1 through the core.
  static absl::StatusOr<PolicyMapsSnapshot> Read(const AgentCore& core);

  // The ipcache entry BPF finds for `addr` (network order): longest prefix, or nullptr.
  const skiff_ipcache_val* LookupIpcache(uint32_t addr) const;
  // skiff_identity_of: WORLD on a miss.
  uint32_t IdentityOf(uint32_t addr) const;
  // The policy entry one lookup {FULL prefix, ep, identity, direction, proto, port} matches.
  const std::pair<skiff_policy_key, skiff_policy_val>* LookupPolicy(uint32_t endpoint_id,
                                                                    uint32_t identity,
                                                                    uint8_t direction,
                                                                    uint8_t proto,
                                                                    uint16_t port) const;
  // skiff_policy_allows: HOST always; else the peer's entry, then ANY's. The entry that
  // allowed is returned through `hit` (nullptr for HOST or a denial).
  bool Allows(uint32_t endpoint_id, uint32_t identity, uint8_t direction, uint8_t proto,
              uint16_t port, const std::pair<skiff_policy_key, skiff_policy_val>** hit) const;
};

}  // namespace skiff::api
