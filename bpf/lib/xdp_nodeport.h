/* XDP acceleration of the node-device datapath (--xdp, docs/north-south.md): the packets it
 * can finish on its own, translated and sent back out before an skb exists:
 *   1. client -> frontend (NodePort, externalIP, LoadBalancer IP) of a flow whose backend is
 *      on another node: DNAT + SNAT to this device's address with the NAT table's port;
 *   2. that backend's reply {backend:bport -> node:port}: reverse SNAT + reverse NAT.
 * Every decision is the tc path's own code (lib/svc4.h skiff_svc4_ct_find, _flow_pick and
 * _flow_commit; lib/nodeport.h skiff_nodeport_nat_in, _backend_remote, _snat_source), so the
 * conntrack and NAT entries are what tc would have written and any packet of a flow may take
 * either path. Only the rewrite (direct packet access, incremental checksums) and the send
 * (bpf_fib_lookup, MACs, XDP_TX or bpf_redirect) are XDP's own.
 * Everything else is XDP_PASS, untouched, for tc from_netdev: non-IPv4, malformed frames,
 * fragments, ICMP, other protocols, local or hairpin backends (a new flow's entries are
 * committed first, so tc takes the same backend), frontends without backends (tc rejects),
 * TTL <= 1, and any packet whose FIB lookup does not give a resolved neighbour.
 * Drops of new flows (source range, no local backend for eTP Local, NAT exhaustion...) happen
 * here, counted under direction xdp. */
#ifndef SKIFF_BPF_LIB_XDP_NODEPORT_H_
#define SKIFF_BPF_LIB_XDP_NODEPORT_H_

#include "lib/nodeport.h"

/* The same ctx pointer, opaque to the compiler (see skiff_np_skb in lib/nodeport.h): keeps
 * clang from reusing a derived &ctx->field pointer across inlined helpers. */
static __always_inline struct xdp_md *skiff_xdp_ctx(struct xdp_md *ctx) {
  asm volatile("" : "+r"(ctx));
  return ctx;
}

/* The rewritten tuple of a packet XDP sends on. */
struct skiff_xdp_tuple {
  __be32 saddr, daddr;
  __be16 sport, dport;
};

/* FIB lookup for the translated packet; 1 with p filled when it can be sent now. */
static __always_inline int skiff_xdp_fib(struct xdp_md *ctx, __u32 ifindex,
                                         const struct skiff_xdp_tuple *t,
                                         struct bpf_fib_lookup *p) {
  ctx = skiff_xdp_ctx(ctx);
  void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
  struct iphdr *ip = data + sizeof(struct ethhdr);
  if ((void *)(ip + 1) > data_end) return 0;
  skiff_fib4_params(p, ip, t->saddr, t->daddr, ifindex);
  return bpf_fib_lookup(skiff_xdp_ctx(ctx), p, sizeof(*p), 0) == BPF_FIB_LKUP_RET_SUCCESS;
}

/* Writes tuple t, decrements the TTL and sets the MACs of p; incremental checksums (RFC 1624)
 * on the IPv4 header and the TCP/UDP checksum (a zero UDP checksum stays "none"). Returns the
 * verdict: XDP_TX back out of the same device, else a redirect to p->ifindex. */
static __always_inline int skiff_xdp_send(struct xdp_md *ctx, __u32 ifindex,
                                          const struct skiff_pkt *pkt,
                                          const struct skiff_xdp_tuple *t,
                                          const struct bpf_fib_lookup *p) {
  ctx = skiff_xdp_ctx(ctx);
  void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  struct iphdr *ip = data + sizeof(struct ethhdr);
  struct tcphdr *th = data + skiff_hdr_off(pkt->l4_off);
  struct udphdr *uh = (void *)th; /* TCP and UDP share the port layout */
  if ((void *)(ip + 1) > data_end || (void *)(uh + 1) > data_end) return SKIFF_DROP_CSUM_UPDATE;
  __sum16 *l4 = &uh->check;
  if (pkt->l4_proto == IPPROTO_TCP) {
    if ((void *)(th + 1) > data_end) return SKIFF_DROP_CSUM_UPDATE;
    l4 = &th->check;
  }
  __sum16 c = *l4;
  if (pkt->l4_proto == IPPROTO_TCP || c) {
    c = skiff_csum_replace4(c, ip->saddr, t->saddr);
    c = skiff_csum_replace4(c, ip->daddr, t->daddr);
    c = skiff_csum_replace2(c, uh->source, t->sport);
    c = skiff_csum_replace2(c, uh->dest, t->dport);
    if (pkt->l4_proto == IPPROTO_UDP && !c) c = (__sum16)0xffff;
    *l4 = c;
  }
  __sum16 ic = skiff_csum_replace4(ip->check, ip->saddr, t->saddr);
  ic = skiff_csum_replace4(ic, ip->daddr, t->daddr);
  __be16 old_ttl = *(__be16 *)&ip->ttl;
  ip->ttl--;
  ip->check = skiff_csum_replace2(ic, old_ttl, *(__be16 *)&ip->ttl);
  ip->saddr = t->saddr;
  ip->daddr = t->daddr;
  uh->source = t->sport;
  uh->dest = t->dport;
  __builtin_memcpy(eth->h_dest, p->dmac, ETH_ALEN);
  __builtin_memcpy(eth->h_source, p->smac, ETH_ALEN);
  if (p->ifindex == ifindex) return XDP_TX;
  return bpf_redirect(p->ifindex, 0);
}

/* A reply to an SNATed flow (NAT IN entry ie): backend:bport -> node:port becomes
 * frontend -> client:cport when the flow's reply entry is live. */
static __always_inline int skiff_xdp_reply(struct xdp_md *ctx, __u32 ifindex, struct skiff_pkt *pkt,
                                           const struct skiff_nat4_entry *ie) {
  struct skiff_xdp_tuple t = {.daddr = ie->to_addr, .dport = ie->to_port};
  /* From here on pkt is the tuple tc's service walk sees after the reverse SNAT. */
  pkt->daddr[0] = t.daddr;
  pkt->dport = t.dport;
  struct skiff_svc4_lookup l;
  if (skiff_svc4_ct_find(pkt, &l) != SKIFF_SVC4_REPLY) return XDP_PASS;
  struct skiff_ct_entry *e = l.e;
  if (e->flags & SKIFF_CT_F_HAIRPIN) return XDP_PASS;
  t.saddr = e->nat_addr;
  t.sport = e->nat_port;
  struct bpf_fib_lookup p;
  if (!skiff_xdp_fib(ctx, ifindex, &t, &p)) return XDP_PASS;
  skiff_ct4_account(&l.k, e, pkt->tcp_flags, pkt->l3_len, l.now);
  return skiff_xdp_send(ctx, ifindex, pkt, &t, &p);
}

/* A packet to a frontend, of an established flow (its service entry) or a new one. */
static __always_inline int skiff_xdp_request(struct xdp_md *ctx, __u32 ifindex,
                                             const struct skiff_pkt *pkt) {
  struct skiff_svc4_lookup l;
  int kind = skiff_svc4_ct_find(pkt, &l);
  if (kind != SKIFF_SVC4_SERVICE && kind != SKIFF_SVC4_MISS) return XDP_PASS;
  __be32 vip = pkt->daddr[0];
  const struct skiff_lb4_service *fe = 0;
  struct skiff_lb4_choice c;
  struct skiff_xdp_tuple t;
  if (kind == SKIFF_SVC4_SERVICE) {
    if ((l.e->flags & SKIFF_CT_F_HAIRPIN) || !skiff_nodeport_backend_remote(l.e->backend_id))
      return XDP_PASS;
    t.daddr = l.e->nat_addr;
    t.dport = l.e->nat_port;
  } else {
    fe = skiff_lb4_frontend(vip, pkt->dport, pkt->l4_proto);
    if (!fe) return XDP_PASS;
    int rc = skiff_svc4_flow_pick(pkt, fe, &c);
    if (rc == SKIFF_SVC4_NO_BACKEND) return XDP_PASS; /* tc rejects */
    if (rc) return rc;
    t.daddr = c.address;
    t.dport = c.port;
  }
  t.saddr = skiff_nodeport_snat_addr(ifindex, vip);
  struct bpf_fib_lookup p;
  int send = t.daddr != pkt->saddr[0] && (fe ? skiff_nodeport_backend_remote(c.backend_id) : 1) &&
             skiff_xdp_fib(ctx, ifindex, &t, &p);
  int first = 0;
  struct skiff_ct_entry ne;
  if (fe) {
    /* The new flow's entries, whoever translates this packet: tc then finds an established
     * flow to the backend chosen here and accounts the packet itself (counted 0). */
    int rc = skiff_svc4_flow_commit(pkt, fe->rev_nat_id, &c, l.hint, l.now, send, &ne);
    if (rc) return rc;
    skiff_event_flow_new_on(ifindex, pkt, &ne);
    first = 1;
  } else if (send) {
    skiff_ct4_account(&l.k, l.e, pkt->tcp_flags, pkt->l3_len, l.now);
    first = l.e->packets <= 1;
  }
  if (!send) return XDP_PASS;
  int rc = skiff_nodeport_snat_source(pkt->saddr[0], pkt->sport, t.daddr, t.dport, pkt->l4_proto,
                                      first, &l.now, &t.saddr, &t.sport);
  if (rc) return rc;
  return skiff_xdp_send(ctx, ifindex, pkt, &t, &p);
}

/* Returns an XDP verdict or a negative SKIFF_DROP_* code. */
static __always_inline int skiff_xdp_nodeport(struct xdp_md *ctx, __u32 ifindex,
                                              struct skiff_pkt *pkt) {
  if (pkt->family != SKIFF_AF_INET) return XDP_PASS;
  if (pkt->l4_proto != IPPROTO_TCP && pkt->l4_proto != IPPROTO_UDP) return XDP_PASS;
  if (pkt->flags & SKIFF_PKT_F_FRAGMENT) return XDP_PASS; /* tc's fragment rules */
  if (pkt->ttl <= 1) return XDP_PASS;                     /* the stack sends time exceeded */
  struct skiff_nat4_entry *ie = skiff_nodeport_nat_in(pkt);
  if (ie) return skiff_xdp_reply(ctx, ifindex, pkt, ie);
  return skiff_xdp_request(ctx, ifindex, pkt);
}

#endif /* SKIFF_BPF_LIB_XDP_NODEPORT_H_ */
