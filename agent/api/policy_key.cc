#include "agent/api/policy_key.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "absl/strings/str_cat.h"

namespace skiff::api {

KeyPorts DecodePolicyKeyPorts(const skiff_policy_key& k) {
  KeyPorts p;
  if (k.prefixlen < SKIFF_POLICY_PREFIX_ANY_PORT) return p;
  p.proto = k.proto;
  uint32_t bits = k.prefixlen - SKIFF_POLICY_PREFIX_ANY_PORT;
  if (bits > 16) bits = 16;
  uint16_t mask = bits ? static_cast<uint16_t>(0xffff << (16 - bits)) : 0;
  p.lo = ntohs(k.dport) & mask;
  p.hi = p.lo | static_cast<uint16_t>(~mask);
  return p;
}

std::string ProtocolName(uint8_t proto) {
  switch (proto) {
    case 0:
      return "any";
    case IPPROTO_TCP:
      return "TCP";
    case IPPROTO_UDP:
      return "UDP";
    case IPPROTO_SCTP:
      return "SCTP";
    case IPPROTO_ICMP:
      return "ICMP";
  }
  return absl::StrCat(proto);
}

std::string IdentityName(uint32_t identity) {
  switch (identity) {
    case SKIFF_IDENTITY_ANY:
      return "any peer";
    case SKIFF_IDENTITY_WORLD:
      return "world";
    case SKIFF_IDENTITY_HOST:
      return "host";
  }
  return absl::StrCat(identity);
}

std::string FormatPolicyKey(const skiff_policy_key& k) {
  KeyPorts p = DecodePolicyKeyPorts(k);
  return absl::StrCat("endpoint ", k.endpoint_id, " ",
                      k.direction == SKIFF_POLICY_INGRESS ? "ingress"
                      : k.direction == SKIFF_POLICY_EGRESS
                          ? "egress"
                          : absl::StrCat("direction ", k.direction),
                      " identity ", k.identity, " ", ProtocolName(p.proto), " ",
                      p.lo == p.hi ? absl::StrCat(p.lo) : absl::StrCat(p.lo, "-", p.hi),
                      " (prefix ", k.prefixlen, ")");
}

}  // namespace skiff::api
