/* NetworkPolicy enforcement (maps/policy.h, docs/policy.md).
 *
 * Nothing at all while no NetworkPolicy exists (pol_state flags clear). Otherwise:
 * from_container (packets leaving a pod), after service translation (policy sees the backend):
 * a packet answering a tracked connection is marked and passes; a packet of a connection not
 * yet allowed is checked against the source pod's egress policy, and an allowed one is
 * tracked.
 * to_container (packets entering a pod): marked replies, replies and allowed connections
 * pass; a new connection is checked against the destination pod's ingress policy.
 *
 * Per new connection: two ipcache LPM lookups and at most two policy LPM lookups (the peer's
 * identity, then ANY), whatever the number of policies and pods. Per packet of a tracked
 * connection: one hash lookup in the policy conntrack, whose key is the same from both
 * directions. */
#ifndef SKIFF_BPF_LIB_POLICY_H_
#define SKIFF_BPF_LIB_POLICY_H_

#include "lib/conntrack.h"
#include "lib/maps.h"
#include "lib/mark.h"

/* The L3/L4 identity of a packet as policy sees it: between the real endpoints (after a DNAT
 * the backend; a reverse-NATed reply still from its backend). */
struct skiff_pol_tuple {
  __be32 saddr;
  __be32 daddr;
  __be16 sport;
  __be16 dport;
  __u8 proto;
  __u8 icmp; /* ICMP query: the identifier is in sport on both directions */
};

static __always_inline int skiff_pol_is_icmp_error(const struct skiff_pkt *pkt) {
  return pkt->l4_proto == IPPROTO_ICMP &&
         (pkt->icmp_type == ICMP_DEST_UNREACH || pkt->icmp_type == ICMP_TIME_EXCEEDED ||
          pkt->icmp_type == ICMP_PARAMETERPROB);
}

/* Builds the tuple from the parsed packet and the addresses and ports service translation
 * left (`real`, lib/svc4.h; NULL: the packet's own). Only SCTP ports are read from the
 * packet (the parser does not extract them; the service path never rewrites SCTP). */
static __always_inline void skiff_pol_tuple_init(struct __sk_buff *skb, const struct skiff_pkt *pkt,
                                                 const struct skiff_tuple4 *real,
                                                 struct skiff_pol_tuple *t) {
  __u8 proto = pkt->l4_proto;
  t->proto = proto;
  t->icmp = 0;
  if (real) {
    t->saddr = real->saddr;
    t->daddr = real->daddr;
    t->sport = real->sport;
    t->dport = real->dport;
  } else {
    t->saddr = pkt->saddr[0];
    t->daddr = pkt->daddr[0];
    t->sport = pkt->sport;
    t->dport = pkt->dport;
  }
  if (proto == IPPROTO_ICMP) {
    t->icmp = 1;
    t->dport = 0; /* echo identifier in sport; 0 for other queries */
  } else if (proto == IPPROTO_SCTP) {
    __be16 ports[2] = {0, 0};
    if (pkt->l4_off) bpf_skb_load_bytes(skb, pkt->l4_off, ports, sizeof(ports));
    t->sport = ports[0];
    t->dport = ports[1];
  } else if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
    t->sport = 0;
    t->dport = 0;
  }
}

/* The connection's key, the same from both directions: the lower endpoint {address, port}
 * first (ICMP: addresses only, the identifier stays in sport). Returns 1 when the packet goes
 * from the higher endpoint to the lower one ("reversed"). */
static __always_inline int skiff_pol_ct_key(struct skiff_ct4_key *k,
                                            const struct skiff_pol_tuple *t) {
  __u32 sa = bpf_ntohl(t->saddr), da = bpf_ntohl(t->daddr);
  int rev = sa > da || (sa == da && !t->icmp && bpf_ntohs(t->sport) > bpf_ntohs(t->dport));
  if (!rev)
    skiff_ct4_key_init(k, t->saddr, t->daddr, t->sport, t->dport, t->proto, SKIFF_CT_POLICY);
  else if (t->icmp)
    skiff_ct4_key_init(k, t->daddr, t->saddr, t->sport, t->dport, t->proto, SKIFF_CT_POLICY);
  else
    skiff_ct4_key_init(k, t->daddr, t->saddr, t->dport, t->sport, t->proto, SKIFF_CT_POLICY);
  return rev;
}

/* Whether a packet whose key orientation is `rev` answers the connection of e. */
static __always_inline int skiff_pol_ct_is_reply(const struct skiff_pol_ct_entry *e, int rev) {
  return !(e->flags & SKIFF_POL_CT_REVERSED) != !rev;
}

/* Whether any NetworkPolicy exists (the reconciler keeps the state's flags clear otherwise):
 * without one nothing is isolated, and the datapath neither checks nor tracks. */
static __always_inline int skiff_policy_active(void) {
  __u32 zero = 0;
  const struct skiff_pol_state *st = bpf_map_lookup_elem(&SKIFF_MAP_POL_STATE, &zero);
  return st && st->flags;
}

static __always_inline __u32 skiff_pol_ct_lifetime(__u8 proto, __u8 flags) {
  if (proto != IPPROTO_TCP) return skiff_config.ct_lifetime_non_tcp;
  if (flags & SKIFF_POL_CT_CLOSING) return skiff_config.ct_lifetime_tcp_closing;
  if (flags & SKIFF_POL_CT_SEEN_NON_SYN) return skiff_config.ct_lifetime_tcp_established;
  return skiff_config.ct_lifetime_tcp_syn;
}

static __always_inline __u8 skiff_pol_ct_tcp_next(__u8 flags, __u8 tcp_flags) {
  if (!(tcp_flags & SKIFF_TCP_SYN)) flags |= SKIFF_POL_CT_SEEN_NON_SYN;
  if (tcp_flags & (SKIFF_TCP_FIN | SKIFF_TCP_RST)) flags |= SKIFF_POL_CT_CLOSING;
  return flags;
}

/* A live entry, or NULL (absent or expired). */
static __always_inline struct skiff_pol_ct_entry *skiff_pol_ct_lookup(const struct skiff_ct4_key *k,
                                                                      __u32 *now) {
  struct skiff_pol_ct_entry *e = bpf_map_lookup_elem(&SKIFF_MAP_POL_CT4, k);
  if (!e) return 0;
  if (!*now) *now = skiff_now_sec();
  if (e->expires < *now) return 0;
  return e;
}

static __always_inline void skiff_pol_ct_touch(struct skiff_pol_ct_entry *e, __u8 proto,
                                               __u8 tcp_flags, __u32 now) {
  __u8 flags = e->flags;
  if (proto == IPPROTO_TCP) flags = skiff_pol_ct_tcp_next(flags, tcp_flags);
  if (flags != e->flags) e->flags = flags;
  __u32 expires = now + skiff_pol_ct_lifetime(proto, flags);
  if (e->expires != expires) e->expires = expires;
}

/* A pure SYN on a closing connection opens a new one on a reused tuple: check it afresh. */
static __always_inline int skiff_pol_ct_reopen(const struct skiff_pol_ct_entry *e, __u8 proto,
                                               __u8 tcp_flags) {
  return proto == IPPROTO_TCP && (tcp_flags & (SKIFF_TCP_SYN | SKIFF_TCP_ACK)) == SKIFF_TCP_SYN &&
         (e->flags & SKIFF_POL_CT_CLOSING);
}

/* Records that `dir_flag` allowed the connection of k; a new entry takes the packet's
 * orientation `rev` as the connection's original direction. */
static __always_inline void skiff_pol_ct_allow(const struct skiff_ct4_key *k,
                                               struct skiff_pol_ct_entry *e, __u8 dir_flag, int rev,
                                               __u8 tcp_flags, __u32 now) {
  if (e) {
    if (!(e->flags & dir_flag)) e->flags |= dir_flag; /* racing CPUs set the same bit */
    skiff_pol_ct_touch(e, k->proto, tcp_flags, now);
    return;
  }
  __u8 flags = dir_flag | (rev ? SKIFF_POL_CT_REVERSED : 0);
  if (k->proto == IPPROTO_TCP) flags = skiff_pol_ct_tcp_next(flags, tcp_flags);
  struct skiff_pol_ct_entry n = {
      .expires = now + skiff_pol_ct_lifetime(k->proto, flags),
      .created = now,
      .flags = flags,
  };
  /* LRU: an insert evicts rather than fails; a failure only costs a re-check later. */
  bpf_map_update_elem(&SKIFF_MAP_POL_CT4, k, &n, BPF_ANY);
}

static __always_inline const struct skiff_ipcache_val *skiff_ipcache_lookup(__be32 addr) {
  struct skiff_ipcache_key k = {.prefixlen = 32, .addr = addr};
  return bpf_map_lookup_elem(&SKIFF_MAP_IPCACHE4, &k);
}

static __always_inline __u32 skiff_identity_of(__be32 addr) {
  const struct skiff_ipcache_val *v = skiff_ipcache_lookup(addr);
  return v ? v->identity : SKIFF_IDENTITY_WORLD;
}

/* Whether endpoint `ep` allows the peer `identity` in `direction` for proto/port: the peer's
 * own entries first, then the rules that allow every peer. */
static __always_inline int skiff_policy_allows(__u32 ep, __u32 identity, __u8 direction, __u8 proto,
                                               __be16 dport) {
  if (identity == SKIFF_IDENTITY_HOST) return 1; /* the node itself: always (Kubernetes) */
  struct skiff_policy_key k = {
      .prefixlen = SKIFF_POLICY_PREFIX_FULL,
      .endpoint_id = ep,
      .identity = identity,
      .direction = direction,
      .proto = proto,
      .dport = dport,
  };
  if (bpf_map_lookup_elem(&SKIFF_MAP_POLICY4, &k)) return 1;
  k.identity = SKIFF_IDENTITY_ANY;
  return bpf_map_lookup_elem(&SKIFF_MAP_POLICY4, &k) != 0;
}

/* from_container, after service translation (`real`: lib/svc4.h): a packet answering a
 * tracked connection (the pod is the responder) is marked for to_container and needs nothing
 * else; any other packet needs the source pod's egress. One policy-conntrack lookup. Returns
 * 0 or a drop code. */
static __always_inline int skiff_policy_from_container(struct __sk_buff *skb,
                                                       const struct skiff_pkt *pkt,
                                                       const struct skiff_tuple4 *real) {
  if (!skiff_policy_active()) return 0;
  /* Later fragments carry no ports (their first fragment was checked); ICMP errors answer
   * traffic that was itself allowed or dropped. */
  if (pkt->flags & SKIFF_PKT_F_LATER_FRAGMENT || skiff_pol_is_icmp_error(pkt)) return 0;
  struct skiff_pol_tuple t;
  skiff_pol_tuple_init(skb, pkt, real, &t);
  struct skiff_ct4_key k;
  int rev = skiff_pol_ct_key(&k, &t);
  __u32 now = 0;
  struct skiff_pol_ct_entry *e = skiff_pol_ct_lookup(&k, &now);
  if (e && skiff_pol_ct_reopen(e, t.proto, pkt->tcp_flags)) e = 0;
  if (e) {
    if (skiff_pol_ct_is_reply(e, rev)) {
      skiff_pol_ct_touch(e, t.proto, pkt->tcp_flags, now);
      skiff_mark_policy_reply(skb);
      return 0;
    }
    if (e->flags & SKIFF_POL_CT_EGRESS_OK) {
      skiff_pol_ct_touch(e, t.proto, pkt->tcp_flags, now);
      return 0;
    }
  }
  const struct skiff_ipcache_val *self = skiff_ipcache_lookup(t.saddr);
  if (self && self->endpoint_id && (self->flags & SKIFF_EP_F_EGRESS_ISOLATED) &&
      !skiff_policy_allows(self->endpoint_id, skiff_identity_of(t.daddr), SKIFF_POLICY_EGRESS,
                           t.proto, t.dport))
    return SKIFF_DROP_POLICY_DENIED_EGRESS;
  if (!now) now = skiff_now_sec();
  skiff_pol_ct_allow(&k, e, SKIFF_POL_CT_EGRESS_OK, rev, pkt->tcp_flags, now);
  return 0;
}

/* to_container: ingress of the destination pod. 0 or a drop code. */
static __always_inline int skiff_policy_ingress(struct __sk_buff *skb,
                                                const struct skiff_pkt *pkt) {
  if ((skb->mark & SKIFF_MARK_MASK) == SKIFF_MARK_POLICY_REPLY) {
    skiff_set_mark(skb, skb->mark & ~SKIFF_MARK_MASK);
    return 0;
  }
  if (!skiff_policy_active()) return 0;
  if (pkt->flags & SKIFF_PKT_F_LATER_FRAGMENT || skiff_pol_is_icmp_error(pkt)) return 0;
  /* Sent by the node's own stack (kubelet probes, host processes): always allowed. */
  if (skb->ingress_ifindex == 0) return 0;
  struct skiff_pol_tuple t;
  skiff_pol_tuple_init(skb, pkt, 0, &t);
  __u32 now = 0;
  struct skiff_ct4_key k;
  int rev = skiff_pol_ct_key(&k, &t);
  struct skiff_pol_ct_entry *e = skiff_pol_ct_lookup(&k, &now);
  if (e && skiff_pol_ct_reopen(e, t.proto, pkt->tcp_flags)) e = 0;
  /* A reply (its request may have left through another path: another node, the host), or a
   * connection this pod's ingress already allowed. */
  if (e && (skiff_pol_ct_is_reply(e, rev) || (e->flags & SKIFF_POL_CT_INGRESS_OK))) {
    skiff_pol_ct_touch(e, t.proto, pkt->tcp_flags, now);
    return 0;
  }
  const struct skiff_ipcache_val *self = skiff_ipcache_lookup(t.daddr);
  if (!self || !self->endpoint_id) {
    __u32 zero = 0;
    const struct skiff_pol_state *st = bpf_map_lookup_elem(&SKIFF_MAP_POL_STATE, &zero);
    if (st && (st->flags & SKIFF_POL_STATE_F_DENY_UNKNOWN)) return SKIFF_DROP_POLICY_NOT_READY;
  } else if ((self->flags & SKIFF_EP_F_INGRESS_ISOLATED) &&
             !skiff_policy_allows(self->endpoint_id, skiff_identity_of(t.saddr),
                                  SKIFF_POLICY_INGRESS, t.proto, t.dport)) {
    return SKIFF_DROP_POLICY_DENIED_INGRESS;
  }
  if (!now) now = skiff_now_sec();
  skiff_pol_ct_allow(&k, e, SKIFF_POL_CT_INGRESS_OK, rev, pkt->tcp_flags, now);
  return 0;
}

#endif /* SKIFF_BPF_LIB_POLICY_H_ */
