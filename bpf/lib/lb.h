/* Service frontends and backend selection (maps/lb.h slot model): random among active
 * backends, terminating ones only when no active one is left, or Maglev consistent hashing
 * over the same set (the frontend's lookup table); sessionAffinity ClientIP through the
 * affinity map, and the node-local set for internalTrafficPolicy Local. */
#ifndef SKIFF_BPF_LIB_LB_H_
#define SKIFF_BPF_LIB_LB_H_

#include "lib/conntrack.h"
#include "lib/maps.h"
#include "maps/flow_hash.h"

/* Frontend flags that restrict new flows to the node-local set (SKIFF_SCOPE_INTERNAL entries).
 * The pod path honours internalTrafficPolicy only; the node-device path (bpf/nodeport.bpf.c,
 * external clients) also externalTrafficPolicy, by defining this before including lb.h. */
#ifndef SKIFF_LB_LOCAL_FLAGS
#define SKIFF_LB_LOCAL_FLAGS SKIFF_SVC_F_INT_LOCAL
#endif

static __always_inline void skiff_lb4_key_init(struct skiff_lb4_key *k, __be32 vip, __be16 port,
                                               __u8 proto, __u8 scope, __u16 slot) {
  k->address = vip;
  k->dport = port;
  k->proto = proto;
  k->scope = scope;
  k->slot = slot;
  k->pad = 0;
}

/* The frontend (external-scope slot 0) for vip:port/proto, or NULL. */
static __always_inline const struct skiff_lb4_service *skiff_lb4_frontend(__be32 vip, __be16 port,
                                                                          __u8 proto) {
  struct skiff_lb4_key k;
  skiff_lb4_key_init(&k, vip, port, proto, SKIFF_SCOPE_EXTERNAL, 0);
  return bpf_map_lookup_elem(&SKIFF_MAP_LB4_SERVICES, &k);
}

/* Whether vip:port/proto may be a frontend: false only when the agent's frontend filter
 * (maps/lb_filter.h) is armed and has the bit clear, which proves there is none. */
static __always_inline int skiff_lb4_maybe_frontend(__be32 vip, __be16 port, __u8 proto) {
  __u32 zero = 0;
  const struct skiff_lb4_fe_filter *f = bpf_map_lookup_elem(&SKIFF_MAP_LB4_FE_FILTER, &zero);
  if (!f || f->state != SKIFF_LB4_FE_FILTER_ARMED) return 1;
  __u32 bit = skiff_lb4_fe_filter_bit(vip, port, proto);
  return (f->bits[(bit / 64) & (SKIFF_LB4_FE_FILTER_BITS / 64 - 1)] >> (bit % 64)) & 1;
}

/* loadBalancerSourceRanges: whether client may open a new flow to fe (a frontend with
 * SKIFF_SVC_F_SRC_RANGES). One LPM lookup keyed by the frontend's rev-NAT id. Only the
 * node-device path enforces the ranges (bpf/nodeport.bpf.c defines SKIFF_LB_SRC_RANGES);
 * pods reaching a LoadBalancer IP are in-cluster clients, as with Cilium. */
static __always_inline int skiff_lb4_src_range_allowed(const struct skiff_lb4_service *fe,
                                                       __be32 client) {
  struct skiff_lb4_src_range_key k;
  k.prefixlen = 64;
  k.rev_nat_id = fe->rev_nat_id;
  k.address = client;
  return bpf_map_lookup_elem(&SKIFF_MAP_LB4_SRC_RANGE, &k) != 0;
}

struct skiff_lb4_choice {
  __u32 backend_id;
  __be32 address;
  __be16 port;
  __u8 ct_flags; /* SKIFF_CT_F_AFFINITY when affinity decided */
};

/* Whether a remembered affinity backend may still take a new connection. Slot membership is
 * the agent's to maintain (it deletes affinity entries of backends that left the frontend);
 * this only refuses what the datapath can see. */
static __always_inline int skiff_lb4_affinity_usable(const struct skiff_lb4_backend *be,
                                                     const struct skiff_lb4_service *scope,
                                                     __u8 svc_flags) {
  if (be->state == SKIFF_BACKEND_QUARANTINED) return 0;
  if (be->state == SKIFF_BACKEND_TERMINATING && scope->count) return 0;
  if ((svc_flags & SKIFF_LB_LOCAL_FLAGS) && !(be->flags & SKIFF_BACKEND_F_LOCAL)) return 0;
  return 1;
}

/* Maglev: the backend id at table[hash(5-tuple) % table_size] of the frontend's table for
 * this scope, or 0 when the table is missing (the caller then picks at random). */
static __always_inline __u32 skiff_lb4_maglev_pick(__u32 rev_nat_id, __u8 scope, __be32 client,
                                                   __be32 vip, __be16 cport, __be16 vport,
                                                   __u8 proto) {
  const __u32 size = skiff_config.maglev_table_size;
  struct skiff_lb4_maglev_key mk = {.rev_nat_id = rev_nat_id, .scope = scope, .pad = {0}};
  const __u32 *table = bpf_map_lookup_elem(&SKIFF_MAP_LB4_MAGLEV, &mk);
  if (!table || !size) return 0;
  __u32 idx =
      skiff_flow_hash4(client, vip, cport, vport, proto, skiff_config.maglev_hash_seed) % size;
  /* The verifier does not bound a remainder, and clang drops a check it knows is true: hide
   * idx from clang so the check stays and bounds idx by the constant size (= value_size / 4). */
  asm volatile("" : "+r"(idx));
  if (idx >= size) return 0;
  return table[idx];
}

/* Picks the backend of a new flow client:cport -> fe (external slot 0, with at least one
 * backend). Returns 0 or a negative SKIFF_DROP_* code. */
static __always_inline int skiff_lb4_select(const struct skiff_lb4_service *fe, __be32 vip,
                                            __be16 port, __u8 proto, __be32 client, __be16 cport,
                                            struct skiff_lb4_choice *out) {
  struct skiff_lb4_key k;
  const struct skiff_lb4_service *scope = fe;
  __u8 svc_flags = fe->flags;
  __u32 rev_nat_id = fe->rev_nat_id;
  __u32 affinity_timeout = fe->affinity_timeout;

  if (svc_flags & SKIFF_LB_LOCAL_FLAGS) {
    skiff_lb4_key_init(&k, vip, port, proto, SKIFF_SCOPE_INTERNAL, 0);
    scope = bpf_map_lookup_elem(&SKIFF_MAP_LB4_SERVICES, &k);
    if (!scope || !(scope->count | scope->terminating_count)) return SKIFF_DROP_NO_LOCAL_BACKEND;
  }
  __u8 key_scope = (svc_flags & SKIFF_LB_LOCAL_FLAGS) ? SKIFF_SCOPE_INTERNAL : SKIFF_SCOPE_EXTERNAL;

  const struct skiff_lb4_backend *be = 0;
  __u32 backend_id = 0;
  __u64 now_ns = 0;
  struct skiff_lb4_affinity_key ak = {.client = client, .rev_nat_id = rev_nat_id};
  out->ct_flags = 0;

  if (svc_flags & SKIFF_SVC_F_AFFINITY) {
    now_ns = skiff_now_ns();
    struct skiff_lb_affinity_val *av = bpf_map_lookup_elem(&SKIFF_MAP_LB4_AFFINITY, &ak);
    if (av && now_ns - av->last_used_ns <= (__u64)affinity_timeout * SKIFF_NSEC_PER_SEC) {
      be = skiff_lb4_backend_lookup(av->backend_id);
      if (be && skiff_lb4_affinity_usable(be, scope, svc_flags)) {
        backend_id = av->backend_id;
        out->ct_flags = SKIFF_CT_F_AFFINITY;
      } else {
        be = 0;
      }
    }
  }

  if (!be) {
    /* Active backends fill slots 1..count; terminating ones follow and are used only when
     * no active one is left (Kubernetes' serving+terminating fallback). A Maglev table is
     * built from that same set by the agent. */
    __u16 n = scope->count ? scope->count : scope->terminating_count;
    if (!n) return SKIFF_DROP_NO_SERVICE_BACKEND;
    if (fe->algorithm == SKIFF_LB_ALG_MAGLEV)
      backend_id = skiff_lb4_maglev_pick(rev_nat_id, key_scope, client, vip, cport, port, proto);
    if (!backend_id) {
      __u16 slot = 1 + bpf_get_prandom_u32() % n;
      skiff_lb4_key_init(&k, vip, port, proto, key_scope, slot);
      const struct skiff_lb4_service *sv = bpf_map_lookup_elem(&SKIFF_MAP_LB4_SERVICES, &k);
      if (!sv) return SKIFF_DROP_BACKEND_MISSING;
      backend_id = sv->backend_id;
    }
    be = skiff_lb4_backend_lookup(backend_id);
    if (!be) return SKIFF_DROP_BACKEND_MISSING;
  }

  if (svc_flags & SKIFF_SVC_F_AFFINITY) {
    struct skiff_lb_affinity_val nv = {.last_used_ns = now_ns, .backend_id = backend_id, .pad = 0};
    /* Best effort: an LRU map makes room itself; failing to remember only costs stickiness. */
    bpf_map_update_elem(&SKIFF_MAP_LB4_AFFINITY, &ak, &nv, BPF_ANY);
  }
  out->backend_id = backend_id;
  out->address = be->address;
  out->port = be->port;
  return 0;
}

#endif /* SKIFF_BPF_LIB_LB_H_ */
