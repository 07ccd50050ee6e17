// Reading a NetworkPolicy map key (maps/policy.h) as people do: the ports its masked prefix
// covers, the protocol and the reserved identities by name. Shared by agentctl's map dump
// (map_decode.cc) and the PolicyService (policy_maps.cc).
#pragma once

#include <cstdint>
#include <string>

#include "maps/policy.h"

namespace skiff::api {

// The ports a policy key covers (its masked port prefix), host order, and its protocol:
// 0 when the prefix stops before the protocol.
struct KeyPorts {
  uint8_t proto = 0;
  uint16_t lo = 0, hi = 65535;
};
KeyPorts DecodePolicyKeyPorts(const skiff_policy_key& k);
std::string ProtocolName(uint8_t proto);      // "TCP", "UDP", "SCTP", "any" (0), else the number
std::string IdentityName(uint32_t identity);  // reserved names, else the number
std::string FormatPolicyKey(const skiff_policy_key& k);  // "ep 3 ingress id 256 TCP 80-80/96"

}  // namespace skiff::api
