/* Drop reasons: the one list shared by BPF, the agent, metrics and agentctl.
 *
 * Codes are negative and start at -130 so that they never collide with a tc verdict
 * (TC_ACT_*: -1..8) or an XDP verdict (0..4). A BPF function returns either a verdict-like
 * non-negative value or one of these codes; the entry program turns a code into a drop, a
 * metric and (later) a drop event. Append only: a code never changes meaning once released.
 */
#ifndef SKIFF_MAPS_DROP_REASONS_H_
#define SKIFF_MAPS_DROP_REASONS_H_

/* X(name, code, description) */
#define SKIFF_DROP_REASONS(X)                                                                 \
  X(SKIFF_DROP_TRUNCATED_L2, -130, "truncated Ethernet header")                               \
  X(SKIFF_DROP_TRUNCATED_L3, -131, "truncated IP header")                                     \
  X(SKIFF_DROP_BAD_IP_VERSION, -132, "IP version does not match the EtherType")               \
  X(SKIFF_DROP_BAD_IHL, -133, "invalid IPv4 header length (IHL)")                             \
  X(SKIFF_DROP_BAD_IP_LENGTH, -134, "IP total length inconsistent with packet")               \
  X(SKIFF_DROP_TRUNCATED_L4, -135, "truncated L4 header")                                     \
  X(SKIFF_DROP_BAD_L4_HEADER, -136, "invalid L4 header (TCP data offset)")                    \
  X(SKIFF_DROP_IPV6_EXT_HEADERS, -137, "too many or truncated IPv6 extension headers")        \
  X(SKIFF_DROP_NO_SERVICE_BACKEND, -138, "service has no backends")                           \
  X(SKIFF_DROP_CT_MAP_FULL, -139, "conntrack map full")                                       \
  X(SKIFF_DROP_CSUM_UPDATE, -140, "checksum or packet rewrite failed")                        \
  X(SKIFF_DROP_FRAG_NOT_SUPPORTED, -141, "fragmented packet to a service")                    \
  X(SKIFF_DROP_BACKEND_MISSING, -142, "service slot points at a missing backend")             \
  X(SKIFF_DROP_REJECT_FAILED, -143, "could not build the reject reply")                       \
  X(SKIFF_DROP_POLICY_DENIED, -144, "denied by network policy")                               \
  X(SKIFF_DROP_NO_LOCAL_BACKEND, -145, "internalTrafficPolicy Local: no node-local backend")  \
  X(SKIFF_DROP_CT_TUPLE_CLASH, -146, "reply tuple already used by another frontend's flow")   \
  X(SKIFF_DROP_POLICY_DENIED_INGRESS, -147,                                                   \
    "network policy: ingress of the destination pod denies")                                  \
  X(SKIFF_DROP_POLICY_DENIED_EGRESS, -148, "network policy: egress of the source pod denies") \
  X(SKIFF_DROP_POLICY_NOT_READY, -149, "network policy: destination pod not programmed yet")  \
  X(SKIFF_DROP_NAT_NO_PORT, -150, "NodePort SNAT: no free port (all retries collided)")       \
  X(SKIFF_DROP_NAT_MAP_FULL, -151, "NodePort SNAT: NAT map full")                             \
  X(SKIFF_DROP_SOURCE_RANGE, -152, "source address outside loadBalancerSourceRanges")

enum skiff_drop_reason {
#define SKIFF_DROP_ENUM_(name, code, desc) name = code,
  SKIFF_DROP_REASONS(SKIFF_DROP_ENUM_)
#undef SKIFF_DROP_ENUM_
};

/* Codes run from SKIFF_DROP_MIN down to SKIFF_DROP_MAX_CODE; a metrics index is -code - 130. */
#define SKIFF_DROP_MIN (-130)
#define SKIFF_DROP_COUNT 23
#define SKIFF_DROP_INDEX(code) ((unsigned int)(-(code) + SKIFF_DROP_MIN))

#ifdef __cplusplus
/* Names and descriptions for the agent, metrics and agentctl. */
inline const char* SkiffDropReasonName(int code) {
  switch (code) {
#define SKIFF_DROP_NAME_(name, code, desc) \
  case code:                               \
    return #name;
    SKIFF_DROP_REASONS(SKIFF_DROP_NAME_)
#undef SKIFF_DROP_NAME_
  }
  return "SKIFF_DROP_UNKNOWN";
}
inline const char* SkiffDropReasonDescription(int code) {
  switch (code) {
#define SKIFF_DROP_DESC_(name, code, desc) \
  case code:                               \
    return desc;
    SKIFF_DROP_REASONS(SKIFF_DROP_DESC_)
#undef SKIFF_DROP_DESC_
  }
  return "unknown drop reason";
}
#endif

#endif /* SKIFF_MAPS_DROP_REASONS_H_ */
