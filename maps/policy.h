/* NetworkPolicy maps, IPv4 (docs/policy.md). Written by the agent's policy reconciler
 * (agent/policy/), read per new connection by from_container (egress of the source pod) and
 * to_container (ingress of the destination pod); the policy conntrack is written by BPF.
 *
 *  ipcache:   LPM trie {prefixlen, IPv4} -> {identity, endpoint id, isolation flags}.
 *             Every pod of the cluster has a /32 (its identity); pods on this node also carry
 *             their endpoint id and whether they are isolated for ingress / egress. Every CIDR
 *             named in an ipBlock (cidr and except) has an entry whose identity stands for
 *             "outside addresses inside exactly these policy CIDRs". A miss is WORLD.
 *  policy:    LPM trie {prefixlen, endpoint id, peer identity, direction, protocol, port} ->
 *             allow. The prefix always covers endpoint, identity and direction; protocol and
 *             port are wildcarded by a shorter prefix, and a port range (endPort) is a set of
 *             masked port prefixes. Peer identity ANY (0) is "every peer" (a rule without
 *             from/to). A packet does at most two lookups: its peer's identity, then ANY.
 *  pol_ct:    LRU hash, one entry per connection, keyed by its tuple with the lower endpoint
 *             {address, port} as source (skiff_ct4_key, kind SKIFF_CT_POLICY; ICMP: lower
 *             address, identifier in sport), so both directions find it with one lookup ->
 *             which directions have been allowed and which way the connection was opened
 *             (SKIFF_POL_CT_REVERSED). Replies and later packets of an allowed connection pass
 *             without a policy lookup.
 *  pol_state: one-entry array: node-wide policy switches (SKIFF_POL_STATE_F_*). All clear =
 *             no NetworkPolicy exists: the datapath skips policy entirely (neither checks nor
 *             tracks).
 *
 * Identities are numbers local to this node's agent: they never travel in packets (each hook
 * looks the peer's address up in the ipcache), so two nodes need not agree on them.
 */
#ifndef SKIFF_MAPS_POLICY_H_
#define SKIFF_MAPS_POLICY_H_

#include <linux/types.h>

#include "maps/ct.h"
#include "maps/names.h"

/* Reserved identities. Label-set identities start at SKIFF_IDENTITY_FIRST_DYNAMIC. */
#define SKIFF_IDENTITY_ANY 0   /* policy keys only: a rule that matches every peer */
#define SKIFF_IDENTITY_WORLD 1 /* an address in no ipcache entry */
#define SKIFF_IDENTITY_HOST 2  /* this node's own addresses: always allowed (Kubernetes rule) */
#define SKIFF_IDENTITY_FIRST_DYNAMIC 256

/* skiff_ipcache_val.flags (pods on this node only) */
#define SKIFF_EP_F_INGRESS_ISOLATED 0x01 /* selected by a policy with policyTypes Ingress */
#define SKIFF_EP_F_EGRESS_ISOLATED 0x02  /* selected by a policy with policyTypes Egress */

/* skiff_policy_key.direction */
#define SKIFF_POLICY_INGRESS 1
#define SKIFF_POLICY_EGRESS 2

/* skiff_policy_key prefix lengths (bits after `prefixlen`): endpoint, identity and direction
 * always match; then the protocol; then 0..16 leading bits of the port. */
#define SKIFF_POLICY_PREFIX_ANY_PROTO 72
#define SKIFF_POLICY_PREFIX_ANY_PORT 80
#define SKIFF_POLICY_PREFIX_FULL 96

/* skiff_ct4_key.kind of policy conntrack entries */
#define SKIFF_CT_POLICY 3

/* skiff_pol_ct_entry.flags */
#define SKIFF_POL_CT_EGRESS_OK 0x01  /* the source pod's egress allowed the connection */
#define SKIFF_POL_CT_INGRESS_OK 0x02 /* the destination pod's ingress allowed it */
#define SKIFF_POL_CT_SEEN_NON_SYN 0x04
#define SKIFF_POL_CT_CLOSING 0x08 /* TCP FIN or RST seen */
/* The connection was opened from the key's daddr:dport towards its saddr:sport (the key
 * holds the lower endpoint first). */
#define SKIFF_POL_CT_REVERSED 0x10

/* skiff_pol_state.flags */
/* A destination on this node without an ipcache endpoint entry is denied ingress: set while
 * any NetworkPolicy exists, so a pod that appears is unreachable until the agent has
 * programmed its policy (with no policy at all, nothing is isolated and unknown pods pass).
 * Any flag set also switches policy on in the datapath (checks and connection tracking). */
#define SKIFF_POL_STATE_F_DENY_UNKNOWN 0x01

/* skb->mark set by from_container on a packet it recognised as the reply of a tracked
 * connection, so to_container (same node, same network namespace: the mark survives the
 * routing between the veths) lets it in without a second lookup; to_container clears it. */
#define SKIFF_MARK_MASK 0xffff0000U
#define SKIFF_MARK_POLICY_REPLY 0x5f1f0000U

#define SKIFF_IPCACHE_SIZE_DEFAULT 65536
#define SKIFF_POLICY_MAP_SIZE_DEFAULT 262144
#define SKIFF_POL_CT_SIZE_DEFAULT 262144

struct skiff_ipcache_key {
  __u32 prefixlen; /* 0..32 */
  __be32 addr;
};

struct skiff_ipcache_val {
  __u32 identity;
  __u32 endpoint_id; /* 0 = not a pod on this node */
  __u8 flags;        /* SKIFF_EP_F_* */
  __u8 pad[3];
};

struct skiff_policy_key {
  __u32 prefixlen;   /* SKIFF_POLICY_PREFIX_ANY_PROTO .. SKIFF_POLICY_PREFIX_FULL */
  __u32 endpoint_id; /* the pod the policy protects (ipcache endpoint id) */
  __u32 identity;    /* the peer: source for ingress, destination for egress; 0 = ANY */
  __u8 direction;    /* SKIFF_POLICY_INGRESS / SKIFF_POLICY_EGRESS */
  __u8 proto;        /* IPPROTO_*; 0 under a prefix that stops before it */
  __be16 dport;      /* destination port, masked to the prefix */
};

struct skiff_policy_val {
  __u32 rule_id; /* the agent's name for the rule that allows (agentctl policy trace) */
  __u32 pad;
};

struct skiff_pol_ct_entry {
  __u32 expires; /* CLOCK_MONOTONIC seconds */
  __u32 created;
  __u8 flags; /* SKIFF_POL_CT_* */
  __u8 pad[7];
};

struct skiff_pol_state {
  __u32 flags; /* SKIFF_POL_STATE_F_* */
  __u32 pad;
};

#endif /* SKIFF_MAPS_POLICY_H_ */
