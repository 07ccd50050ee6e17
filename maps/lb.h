/* Service load-balancing maps (Cilium's slot model), IPv4. IPv6 gets its own lb6 maps with
 * the same shapes and 16-byte addresses; ids (backend, rev-NAT) are shared between families.
 *
 * services: {vip, dport, proto, scope, slot} ->
 *   slot 0: the frontend: count of active backends, count of terminating ones after them,
 *           rev-NAT id, flags, affinity timeout;
 *   slot 1..count: backend ids of active backends;
 *   slot count+1..count+terminating_count: backend ids of terminating backends, used only
 *           when count == 0 (Kubernetes' serving+terminating fallback).
 * backends: backend id -> {ip, port, proto, state}: an ARRAY indexed by the id (since the _v2
 *           map; a hash before), max_entries = --lb-backends-max. Ids are 1..max_entries-1
 *           (0 is "no backend" everywhere); an absent backend is an all-zero entry.
 * revnat:   rev-NAT id -> {vip, port}: the frontend a reply must appear to come from.
 * affinity: {client ip, rev-NAT id} -> {backend id, last used}: sessionAffinity ClientIP.
 * maglev:   {rev-NAT id, scope} -> the frontend's Maglev lookup table: table_size backend ids
 *           (__u32[table_size], table_size = skiff_config.maglev_table_size, a prime), for
 *           frontends whose slot 0 says SKIFF_LB_ALG_MAGLEV.
 *
 * What the datapath (bpf/lib/lb.h, docs/datapath.md) relies on:
 *  - Key and value bytes are hashed whole: zero every padding byte.
 *  - backends is indexed by a __u32 backend id, revnat keyed by a __u32 rev-NAT id (32 bits
 *    since the _v2 maps: 16 bits capped a node at 65,535 frontends; docs/maps.md, "Layout
 *    changes").
 *  - backends is an array: a lookup never fails below max_entries, so every reader treats an
 *    entry that is not skiff_lb4_backend_present() (all zero: never written, or deleted) as
 *    missing, exactly as a failed lookup. Deleting a backend writes zeros; the agent never
 *    writes a backend with address 0.0.0.0. C++ readers (walks, dumps, counts, restore) skip
 *    such entries (maps/slot_array.h). No bucket locks and no allocation per update: 1M
 *    backend writes at 100,000 Services spent ~16 % of the agent's CPU in the hash's locks.
 *  - Which backends are terminating *for this frontend* is told by slot position alone
 *    (slots after `count`); skiff_lb4_backend.state is only a hint used for affinity.
 *  - A new flow picks uniformly among slots 1..count, or among 1..terminating_count when
 *    count == 0 (SKIFF_LB_ALG_RANDOM); with SKIFF_LB_ALG_MAGLEV it takes
 *    table[skiff_flow_hash4(5-tuple) % table_size] of the maglev entry of its rev-NAT id and
 *    scope instead. The table is built from the same backends the random pick would use
 *    (the active ones, else the terminating ones). A maglev frontend without its table
 *    entry (written before slot 0, deleted after it) falls back to the random pick. count == 0 &&
 * terminating_count == 0 in the SKIFF_SCOPE_EXTERNAL slot 0 means "no endpoints": new flows are
 * rejected (TCP: RST, UDP: ICMP port unreachable).
 *  - The SKIFF_SCOPE_EXTERNAL slot 0 is authoritative for flags, rev_nat_id and
 *    affinity_timeout. With SKIFF_SVC_F_INT_LOCAL set there, pod traffic takes its counts
 *    and slots from the SKIFF_SCOPE_INTERNAL entries; a missing internal slot 0 or one with
 *    no backends drops new flows (SKIFF_DROP_NO_LOCAL_BACKEND), as kube-proxy does.
 *  - revnat is not read per packet (conntrack carries the frontend); it names frontends
 *    for tools and later hooks.
 *  - affinity entries are written by BPF on every new connection of an affinity frontend.
 *    The datapath re-checks that the remembered backend still exists (and is not
 *    quarantined, nor terminating while active ones exist, nor remote under
 *    internalTrafficPolicy Local), but it cannot see slot membership: the agent must delete
 *    {*, rev_nat_id} entries whose backend left that frontend, and all entries of a deleted
 *    frontend. Expired entries (last_used_ns older than affinity_timeout) are ignored and
 *    overwritten; LRU eviction bounds the rest.
 */
#ifndef SKIFF_MAPS_LB_H_
#define SKIFF_MAPS_LB_H_

#include <linux/types.h>

/* The lxc skeleton's rodata embeds struct skiff_config: any C++ file that sees the LB maps may
 * include lxc.skel.h without caring about include order. */
#include "maps/config.h"
#include "maps/names.h"

/* skiff_lb4_key.scope. A frontend with SKIFF_SVC_F_INT_LOCAL has a second set of entries
 * under SKIFF_SCOPE_INTERNAL that holds only node-local backends (internalTrafficPolicy:
 * Local); traffic from pods uses that set. */
#define SKIFF_SCOPE_EXTERNAL 0
#define SKIFF_SCOPE_INTERNAL 1

/* skiff_lb4_service.flags (slot 0 only) */
#define SKIFF_SVC_F_AFFINITY 0x01  /* sessionAffinity: ClientIP */
#define SKIFF_SVC_F_INT_LOCAL 0x02 /* internalTrafficPolicy: Local (see scope) */
#define SKIFF_SVC_F_EXT_LOCAL 0x04 /* externalTrafficPolicy: Local (north-south) */
#define SKIFF_SVC_F_CLUSTER_IP 0x08
#define SKIFF_SVC_F_NODE_PORT 0x10
#define SKIFF_SVC_F_EXTERNAL_IP 0x20
#define SKIFF_SVC_F_LOAD_BALANCER 0x40
#define SKIFF_SVC_F_SRC_RANGES                                   \
  0x80 /* loadBalancerSourceRanges: new flows from a node device \
        * must match an SKIFF_MAP_LB4_SRC_RANGE entry */

/* skiff_lb4_service.algorithm */
#define SKIFF_LB_ALG_RANDOM 0
#define SKIFF_LB_ALG_MAGLEV 1

/* Maglev lookup table size (entries per table): a prime, as in Cilium. Memory per table and
 * scope is table_size * 4 bytes (64 KiB at the default). Selection is only even when the size
 * is much larger than the backend count (the Maglev paper: M >= 100 * N keeps the imbalance
 * under ~1%). */
#define SKIFF_MAGLEV_TABLE_SIZE_DEFAULT 16381
#define SKIFF_MAGLEV_TABLE_SIZE_MIN 251
#define SKIFF_MAGLEV_TABLE_SIZE_MAX 131071
/* Default bound on the number of maglev tables (frontends x scopes); entries are allocated on
 * use (BPF_F_NO_PREALLOC). */
#define SKIFF_LB_MAGLEV_MAP_SIZE_DEFAULT 65536

/* skiff_lb_backend.state */
#define SKIFF_BACKEND_ACTIVE 0
#define SKIFF_BACKEND_TERMINATING 1
#define SKIFF_BACKEND_QUARANTINED 2

/* skiff_lb_backend.flags */
#define SKIFF_BACKEND_F_LOCAL 0x01 /* the backend is a pod on this node */

/* Default map sizes; the agent overrides them with bpf_map__set_max_entries before load. */
#define SKIFF_LB_MAP_SIZE_DEFAULT 65536
#define SKIFF_LB_AFFINITY_SIZE_DEFAULT 65536
#define SKIFF_LB_SRC_RANGE_SIZE_DEFAULT 16384

/* The most backends one frontend may have (active + terminating). */
#define SKIFF_LB_MAX_BACKENDS_PER_SERVICE 4096

struct skiff_lb4_key {
  __be32 address; /* frontend IP (ClusterIP, ...) */
  __be16 dport;   /* frontend port */
  __u8 proto;     /* IPPROTO_TCP / IPPROTO_UDP / IPPROTO_SCTP */
  __u8 scope;     /* SKIFF_SCOPE_* */
  __u16 slot;     /* 0 = frontend, 1.. = backend slots */
  __u16 pad;
};

struct skiff_lb4_service {
  __u32 backend_id;        /* slots > 0 */
  __u16 count;             /* slot 0: number of active backends (slots 1..count) */
  __u16 terminating_count; /* slot 0: terminating backends after the active ones */
  __u32 rev_nat_id;        /* slot 0 (and copied into every slot) */
  __u8 flags;              /* slot 0: SKIFF_SVC_F_* */
  __u8 algorithm;          /* slot 0: SKIFF_LB_ALG_* */
  __u16 pad;               /* zero */
  __u32 affinity_timeout;  /* slot 0: seconds, with SKIFF_SVC_F_AFFINITY */
};

struct skiff_lb4_backend {
  __be32 address;
  __be16 port;
  __u8 proto;
  __u8 state; /* SKIFF_BACKEND_* */
  __u8 flags; /* SKIFF_BACKEND_F_* */
  __u8 pad[3];
};

/* Whether a backends entry holds a backend (see the header comment): an empty array slot is
 * all zero, and no backend has address 0.0.0.0. */
static inline int skiff_lb4_backend_present(const struct skiff_lb4_backend *b) {
  return b->address != 0;
}

struct skiff_lb4_revnat {
  __be32 address;
  __be16 port;
  __u16 pad;
};

struct skiff_lb4_affinity_key {
  __be32 client;
  __u32 rev_nat_id;
};

struct skiff_lb_affinity_val {
  __u64 last_used_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) of the last new connection */
  __u32 backend_id;
  __u32 pad;
};

/* maglev: key of a frontend's lookup table. The value is __u32 backend_id[table_size], no
 * struct (its size is a load-time setting): slot i holds the backend id a flow whose hash is
 * i modulo table_size goes to. */
struct skiff_lb4_maglev_key {
  __u32 rev_nat_id; /* the frontend's */
  __u8 scope;       /* SKIFF_SCOPE_*: the node-local set has a table of its own */
  __u8 pad[3];      /* zero */
};

/* src_range (LPM trie): {rev-NAT id, client prefix} -> allow, for frontends with
 * SKIFF_SVC_F_SRC_RANGES (LoadBalancer ingress IPs of a Service with
 * spec.loadBalancerSourceRanges). prefixlen counts the 32 bits of rev_nat_id (always matched
 * whole) plus the CIDR's prefix length. The agent writes a frontend's entries before
 * it sets the flag and deletes them after it has cleared the flag or deleted the frontend. */
struct skiff_lb4_src_range_key {
  __u32 prefixlen;  /* 32 + CIDR prefix length */
  __u32 rev_nat_id; /* the frontend's */
  __be32 address;   /* CIDR base address, host bits zero */
};

struct skiff_lb4_src_range_val {
  __u8 allow; /* 1 */
  __u8 pad[3];
};

#endif /* SKIFF_MAPS_LB_H_ */
