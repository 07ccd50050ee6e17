/* IPv4 service translation for packets leaving a pod (from-container):
 *   1. a flow's service entry -> DNAT to its backend (established flows never consult the
 *      service maps, so they survive terminating or deleted backends and services);
 *   2. a flow's reply entry   -> reverse NAT: the reply appears to come from the frontend;
 *   3. a frontend             -> new flow: pick a backend, create both entries, DNAT;
 *      a frontend without backends rejects (TCP: RST, UDP: ICMP port unreachable);
 *   4. anything else passes untouched (the agent's frontend filter lets most such packets skip
 *      the frontend lookup, maps/lb_filter.h); a direct (non-service) SYN first deletes the reply
 *      entry of a closing flow on its reverse tuple, so that flow cannot NAT its SYN-ACK.
 * Fragments: docs/datapath.md. */
#ifndef SKIFF_BPF_LIB_SVC4_H_
#define SKIFF_BPF_LIB_SVC4_H_

#include <asm-generic/errno-base.h>

#include "lib/conntrack.h"
#include "lib/events.h"
#include "lib/icmp_nat.h"
#include "lib/lb.h"
#include "lib/metrics.h"
#include "lib/nat.h"
#include "lib/reject.h"

/* Client -> frontend becomes client (or hairpin address) -> backend; `real` (optional) is
 * updated to the translated tuple. */
static __always_inline int skiff_svc4_dnat(struct __sk_buff *skb, const struct skiff_pkt *pkt,
                                           const struct skiff_ct_entry *e,
                                           struct skiff_tuple4 *real) {
  __be32 backend = e->nat_addr;
  __be16 backend_port = e->nat_port;
  int rc;
  if (real) {
    if (e->flags & SKIFF_CT_F_HAIRPIN) real->saddr = skiff_config.hairpin_ipv4;
    real->daddr = backend;
    real->dport = backend_port;
  }
  if (e->flags & SKIFF_CT_F_HAIRPIN) {
    /* The pod talks to itself: from its own address, its reply would never leave it. */
    rc = skiff_nat4_addr(skb, pkt, SKIFF_IPV4_SADDR_OFF, pkt->saddr[0], skiff_config.hairpin_ipv4);
    if (rc) return rc;
  }
  rc = skiff_nat4_addr(skb, pkt, SKIFF_IPV4_DADDR_OFF, pkt->daddr[0], backend);
  if (rc) return rc;
  if (backend_port != pkt->dport) {
    rc = skiff_nat4_port(skb, pkt, SKIFF_L4_DPORT_OFF, pkt->dport, backend_port);
    if (rc) return rc;
  }
  return TC_ACT_OK;
}

/* Backend -> client (or hairpin address) becomes frontend -> client. */
static __always_inline int skiff_svc4_rev_nat(struct __sk_buff *skb, const struct skiff_pkt *pkt,
                                              const struct skiff_ct_entry *e) {
  __be32 vip = e->nat_addr, client = e->orig_addr;
  __be16 vport = e->nat_port;
  int hairpin = e->flags & SKIFF_CT_F_HAIRPIN;
  int rc = skiff_nat4_addr(skb, pkt, SKIFF_IPV4_SADDR_OFF, pkt->saddr[0], vip);
  if (rc) return rc;
  if (vport != pkt->sport) {
    rc = skiff_nat4_port(skb, pkt, SKIFF_L4_SPORT_OFF, pkt->sport, vport);
    if (rc) return rc;
  }
  if (hairpin) {
    rc = skiff_nat4_addr(skb, pkt, SKIFF_IPV4_DADDR_OFF, pkt->daddr[0], client);
    if (rc) return rc;
  }
  return TC_ACT_OK;
}

/* The two stages of a new flow, free of the packet context so that the XDP program
 * (lib/xdp_nodeport.h) takes the very same decisions as tc:
 *   skiff_svc4_flow_pick:   source ranges, backend selection (SKIFF_SVC4_NO_BACKEND: the
 *                           caller rejects, or leaves it to a path that can);
 *   skiff_svc4_flow_commit: both conntrack entries; *out = the service entry. counted: 1 when
 *                           this packet is accounted now, 0 when a later stage on the same
 *                           packet (tc after XDP) finds the entry and accounts it. */
#define SKIFF_SVC4_NO_BACKEND 1
static __always_inline int skiff_svc4_flow_pick(const struct skiff_pkt *pkt,
                                                const struct skiff_lb4_service *fe,
                                                struct skiff_lb4_choice *c) {
#ifdef SKIFF_LB_SRC_RANGES
  if ((fe->flags & SKIFF_SVC_F_SRC_RANGES) && !skiff_lb4_src_range_allowed(fe, pkt->saddr[0]))
    return SKIFF_DROP_SOURCE_RANGE;
#endif
  if (!(fe->count | fe->terminating_count)) return SKIFF_SVC4_NO_BACKEND;
  return skiff_lb4_select(fe, pkt->daddr[0], pkt->dport, pkt->l4_proto, pkt->saddr[0], pkt->sport,
                          c);
}

static __always_inline int skiff_svc4_flow_commit(const struct skiff_pkt *pkt, __u32 rev_nat_id,
                                                  const struct skiff_lb4_choice *c,
                                                  struct skiff_ct_hint *hint, __u32 now,
                                                  int counted, struct skiff_ct_entry *out) {
  __be32 client = pkt->saddr[0], vip = pkt->daddr[0];
  __be16 cport = pkt->sport, vport = pkt->dport;
  __u8 proto = pkt->l4_proto;

  __u8 flags = c->ct_flags;
  if (c->address == client) flags |= SKIFF_CT_F_HAIRPIN;
  if (proto == IPPROTO_TCP) flags = skiff_ct_tcp_next(flags, pkt->tcp_flags, 0);
  if (!now) now = skiff_now_sec();

  struct skiff_ct4_key rk, sk;
  skiff_ct4_key_init(&rk, c->address,
                     (flags & SKIFF_CT_F_HAIRPIN) ? skiff_config.hairpin_ipv4 : client, c->port,
                     cport, proto, SKIFF_CT_REPLY);
  struct skiff_ct_entry e = {
      .packets = 0,
      .bytes = 0,
      .expires = now + skiff_ct_lifetime(proto, flags),
      .created = now,
      .backend_id = c->backend_id,
      .rev_nat_id = rev_nat_id,
      .flags = flags,
      .tcp_flags = 0,
      .nat_addr = vip,
      .nat_port = vport,
      .orig_addr = client,
      .orig_port = cport,
  };
  /* Hint bits before entries: a reply on another CPU must not skip an entry that exists. */
  if (hint) {
    skiff_ct_hint_set(hint, skiff_ct_hint_bit(c->address, c->port, proto, SKIFF_CT_REPLY));
    skiff_ct_hint_set(hint, skiff_ct_hint_bit(vip, vport, proto, SKIFF_CT_SERVICE));
  }
  /* Reply entry first: the reply may come back before this function returns on another CPU. */
  long err = bpf_map_update_elem(&SKIFF_MAP_CT4, &rk, &e, BPF_NOEXIST);
  if (unlikely(err == -EEXIST)) {
    /* The same client port towards two frontends sharing this backend would reach it as one
     * 4-tuple: refuse the newcomer rather than steal a live flow's replies. A dead entry, one
     * of the same frontend (a reopened tuple), or a closing flow of another frontend met by a
     * new SYN (the client freed the port, e.g. after an RST) is replaced; the closing flow's
     * service entry goes with it, so its stragglers cannot touch the new flow. */
    struct skiff_ct_entry *old = skiff_ct4_lookup(&rk, &now);
    if (old && (old->nat_addr != vip || old->nat_port != vport)) {
      if (!(proto == IPPROTO_TCP && skiff_ct_is_reopen(old, pkt->tcp_flags)))
        return SKIFF_DROP_CT_TUPLE_CLASH;
      struct skiff_ct4_key osk;
      skiff_ct4_key_init(&osk, client, old->nat_addr, cport, old->nat_port, proto,
                         SKIFF_CT_SERVICE);
      bpf_map_delete_elem(&SKIFF_MAP_CT4, &osk);
    }
    err = bpf_map_update_elem(&SKIFF_MAP_CT4, &rk, &e, BPF_ANY);
  }
  if (err < 0) return SKIFF_DROP_CT_MAP_FULL;
  if (counted) {
    e.packets = 1;
    e.bytes = pkt->l3_len;
    e.tcp_flags = proto == IPPROTO_TCP ? pkt->tcp_flags : 0;
  }
  e.nat_addr = c->address;
  e.nat_port = c->port;
  skiff_ct4_key_init(&sk, client, vip, cport, vport, proto, SKIFF_CT_SERVICE);
  if (bpf_map_update_elem(&SKIFF_MAP_CT4, &sk, &e, BPF_ANY) < 0) return SKIFF_DROP_CT_MAP_FULL;
  *out = e;
  return 0;
}

static __always_inline int skiff_svc4_new_flow(struct __sk_buff *skb, const struct skiff_pkt *pkt,
                                               const struct skiff_lb4_service *fe,
                                               struct skiff_ct_hint *hint, __u32 now,
                                               struct skiff_tuple4 *real) {
  struct skiff_lb4_choice c;
  int rc = skiff_svc4_flow_pick(pkt, fe, &c);
  if (rc == SKIFF_SVC4_NO_BACKEND) {
    rc = skiff_reject4(skb, pkt);
    if (rc == TC_ACT_REDIRECT) {
      skiff_metrics_count(SKIFF_DIR_FROM_CONTAINER, SKIFF_DROP_NO_SERVICE_BACKEND, pkt->l3_len);
      skiff_event_drop(skb, pkt, SKIFF_DIR_FROM_CONTAINER, SKIFF_DROP_NO_SERVICE_BACKEND);
    }
    return rc;
  }
  if (rc) return rc;
  struct skiff_ct_entry e;
  rc = skiff_svc4_flow_commit(pkt, fe->rev_nat_id, &c, hint, now, 1, &e);
  if (rc) return rc;
  rc = skiff_svc4_dnat(skb, pkt, &e, real);
  if (rc == TC_ACT_OK) skiff_event_flow_new(skb, pkt, &e);
  return rc;
}

/* Deletes the reply entry {daddr:dport -> saddr:sport} of a closing flow: the client is
 * opening a direct connection on the tuple that flow's replies used (the caller has checked
 * that the packet is a pure TCP SYN and not to a frontend). A live entry is left alone. */
static __always_inline void skiff_svc4_drop_stale_reply(const struct skiff_pkt *pkt,
                                                        struct skiff_ct_hint *hint, int armed,
                                                        __u32 *now) {
  if (armed && !skiff_ct_hint_test(
                   hint, skiff_ct_hint_bit(pkt->daddr[0], pkt->dport, IPPROTO_TCP, SKIFF_CT_REPLY)))
    return;
  struct skiff_ct4_key rk;
  skiff_ct4_key_init(&rk, pkt->daddr[0], pkt->saddr[0], pkt->dport, pkt->sport, IPPROTO_TCP,
                     SKIFF_CT_REPLY);
  struct skiff_ct_entry *e = skiff_ct4_lookup(&rk, now);
  if (e && skiff_ct_reply_is_stale(e, pkt->tcp_flags)) bpf_map_delete_elem(&SKIFF_MAP_CT4, &rk);
}

/* The conntrack stage of the service walk, free of the packet context (tc and XDP share it):
 * finds the flow's service entry (SKIFF_SVC4_SERVICE: DNAT) or reply entry (SKIFF_SVC4_REPLY:
 * reverse NAT) in l->k / l->e, without accounting the packet; SKIFF_SVC4_MISS when neither
 * (l->e may then hold a closing flow a pure SYN reopens); a negative SKIFF_DROP_* code for a
 * fragment of a tracked flow. The caller has checked TCP/UDP and not a later fragment. */
#define SKIFF_SVC4_MISS 0
#define SKIFF_SVC4_SERVICE 1
#define SKIFF_SVC4_REPLY 2
struct skiff_svc4_lookup {
  struct skiff_ct4_key k;
  struct skiff_ct_entry *e;
  struct skiff_ct_hint *hint;
  __u32 now;
  int armed;
};

static __always_inline int skiff_svc4_ct_find(const struct skiff_pkt *pkt,
                                              struct skiff_svc4_lookup *l) {
  __u8 proto = pkt->l4_proto;
  int frag = pkt->flags & SKIFF_PKT_F_FRAGMENT;
  /* Conntrack lookups only where the hint says an entry may exist (maps/ct.h): a packet that
   * is neither to a frontend address:port with flows nor from a backend address:port with
   * flows does no conntrack lookup at all. */
  l->now = 0;
  l->e = 0;
  l->hint = skiff_ct_hint_get();
  l->armed = l->hint && skiff_ct_hint_armed(l->hint, &l->now);
  struct skiff_ct_hint *hint = l->hint;
  int armed = l->armed;
  struct skiff_ct4_key *k = &l->k;
  skiff_ct4_key_init(k, pkt->saddr[0], pkt->daddr[0], pkt->sport, pkt->dport, proto,
                     SKIFF_CT_SERVICE);
  if (!armed ||
      skiff_ct_hint_test(hint, skiff_ct_hint_bit(k->daddr, k->dport, proto, SKIFF_CT_SERVICE))) {
    l->e = skiff_ct4_lookup(k, &l->now);
    if (l->e && !(proto == IPPROTO_TCP && skiff_ct_is_reopen(l->e, pkt->tcp_flags))) {
      if (frag) return SKIFF_DROP_FRAG_NOT_SUPPORTED;
      if (!armed && hint)
        skiff_ct_hint_set(hint, skiff_ct_hint_bit(k->daddr, k->dport, proto, SKIFF_CT_SERVICE));
      return SKIFF_SVC4_SERVICE;
    }
  }
  if (!l->e && (!armed || skiff_ct_hint_test(hint, skiff_ct_hint_bit(k->saddr, k->sport, proto,
                                                                     SKIFF_CT_REPLY)))) {
    k->kind = SKIFF_CT_REPLY;
    l->e = skiff_ct4_lookup(k, &l->now);
    if (l->e) {
      if (frag) return SKIFF_DROP_FRAG_NOT_SUPPORTED;
      if (proto == IPPROTO_TCP && skiff_ct_reply_is_stale(l->e, pkt->tcp_flags)) {
        /* A new handshake on the tuple of a closing flow (e.g. the SYN-ACK of a direct
         * connection from the same client port): the entry is dead, the packet passes. */
        bpf_map_delete_elem(&SKIFF_MAP_CT4, k);
        l->e = 0;
      } else {
        if (!armed && hint)
          skiff_ct_hint_set(hint, skiff_ct_hint_bit(k->saddr, k->sport, proto, SKIFF_CT_REPLY));
        return SKIFF_SVC4_REPLY;
      }
    }
  }
  return SKIFF_SVC4_MISS;
}

/* Returns TC_ACT_OK (possibly translated), TC_ACT_REDIRECT (reject sent, already counted) or
 * a negative SKIFF_DROP_* code. `real` (optional, filled by the caller with the packet's own
 * tuple) gets the translated tuple after a DNAT. */
static __always_inline int skiff_svc4_xlate(struct __sk_buff *skb, const struct skiff_pkt *pkt,
                                            struct skiff_tuple4 *real) {
  __u8 proto = pkt->l4_proto;
  if (proto == IPPROTO_ICMP) return skiff_icmp4_error_xlate(skb, pkt);
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return TC_ACT_OK;
  /* A later fragment has no ports to match: it passes untouched (docs/datapath.md). */
  if (pkt->flags & SKIFF_PKT_F_LATER_FRAGMENT) return TC_ACT_OK;

  struct skiff_svc4_lookup l;
  int kind = skiff_svc4_ct_find(pkt, &l);
  if (kind < 0) return kind;
  if (kind != SKIFF_SVC4_MISS) {
    skiff_ct4_account(&l.k, l.e, pkt->tcp_flags, pkt->l3_len, l.now);
    return kind == SKIFF_SVC4_SERVICE ? skiff_svc4_dnat(skb, pkt, l.e, real)
                                      : skiff_svc4_rev_nat(skb, pkt, l.e);
  }
  const struct skiff_lb4_service *fe = 0;
  if (skiff_lb4_maybe_frontend(pkt->daddr[0], pkt->dport, proto))
    fe = skiff_lb4_frontend(pkt->daddr[0], pkt->dport, proto);
  if (!fe) {
    /* A non-service SYN (pure, no ACK) to a backend address:port may reuse the tuple of a
     * closing service flow: drop that flow's reply entry now, before the backend's SYN-ACK
     * comes back. Only SYNs whose reverse tuple's hint bit is set pay a lookup. */
    if (proto == IPPROTO_TCP && (pkt->tcp_flags & (SKIFF_TCP_SYN | SKIFF_TCP_ACK)) == SKIFF_TCP_SYN)
      skiff_svc4_drop_stale_reply(pkt, l.hint, l.armed, &l.now);
    return TC_ACT_OK;
  }
  if (pkt->flags & SKIFF_PKT_F_FRAGMENT) return SKIFF_DROP_FRAG_NOT_SUPPORTED;
  return skiff_svc4_new_flow(skb, pkt, fe, l.hint, l.now, real);
}

static __always_inline int skiff_svc4_from_container(struct __sk_buff *skb,
                                                     const struct skiff_pkt *pkt) {
  return skiff_svc4_xlate(skb, pkt, 0);
}

#endif /* SKIFF_BPF_LIB_SVC4_H_ */
