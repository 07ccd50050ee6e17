/* North-south service traffic on node devices (--devices), tc ingress (from-netdev):
 *   1. a reply to an SNATed flow {backend:bport -> node:port}, port in the NAT range and an
 *      SKIFF_NAT_IN entry -> destination back to client:cport, then (2) reverse-NATs it;
 *   2. the service walk of the pod path (lib/svc4.h: conntrack, frontend lookup, backend
 *      selection with affinity and terminating fallback, reject, CT entries, DNAT, reverse
 *      NAT), unchanged: NodePort, externalIP and LoadBalancer IPs are frontends like any;
 *   3. after a DNAT to a backend on another node (not SKIFF_BACKEND_F_LOCAL): SNAT to this
 *      device's address with an allocated port (lib/snat.h), so the reply comes back here;
 *   4. packets whose source became a node address or a frontend (SNAT, reverse NAT) are sent
 *      on with a FIB lookup and a redirect: the kernel's input routing would drop a packet
 *      arriving with a local source address as a martian. DNAT to a local backend goes on
 *      through ordinary routing (TC_ACT_OK) to the pod's veth.
 * docs/north-south.md. */
#ifndef SKIFF_BPF_LIB_NODEPORT_H_
#define SKIFF_BPF_LIB_NODEPORT_H_

#include "lib/mark.h"
#include "lib/snat.h"
#include "lib/svc4.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/* The same skb pointer, opaque to the compiler: keeps clang from computing &skb->data_end
 * once and reusing that derived context pointer across inlined helpers, which the verifier
 * refuses ("dereference of modified ctx ptr"). */
static __always_inline struct __sk_buff *skiff_np_skb(struct __sk_buff *skb) {
  asm volatile("" : "+r"(skb));
  return skb;
}

/* FIB lookup parameters for forwarding the IPv4 packet ip (its header before or after the
 * rewrite) from saddr to daddr, arriving on ifindex. Shared with XDP (lib/xdp_nodeport.h). */
static __always_inline void skiff_fib4_params(struct bpf_fib_lookup *p, const struct iphdr *ip,
                                              __be32 saddr, __be32 daddr, __u32 ifindex) {
  __builtin_memset(p, 0, sizeof(*p));
  p->family = AF_INET;
  p->tos = ip->tos;
  p->l4_protocol = ip->protocol;
  p->tot_len = bpf_ntohs(ip->tot_len);
  p->ipv4_src = saddr;
  p->ipv4_dst = daddr;
  p->ifindex = ifindex;
}

/* Forwards a rewritten packet: FIB lookup on its (new) addresses, TTL decrement, MACs, and a
 * redirect to the egress device; bpf_redirect_neigh when the neighbour is not resolved yet.
 * Anything else (no route, the lookup unavailable) leaves it to the stack (TC_ACT_OK). */
static __always_inline int skiff_nodeport_fib_redirect(struct __sk_buff *skb,
                                                       const struct skiff_pkt *pkt) {
  void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  struct iphdr *ip = data + skiff_hdr_off(pkt->l3_off);
  if ((void *)(eth + 1) > data_end || (void *)(ip + 1) > data_end) return TC_ACT_OK;
  struct bpf_fib_lookup p;
  skiff_fib4_params(&p, ip, ip->saddr, ip->daddr, skb->ingress_ifindex);
  long rc = bpf_fib_lookup(skb, &p, sizeof(p), 0);
  if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) return TC_ACT_OK;
  if (ip->ttl <= 1) return TC_ACT_OK; /* the stack sends time exceeded */
  __be16 old = *(__be16 *)&ip->ttl;
  ip->ttl--;
  ip->check = skiff_csum_replace2(ip->check, old, *(__be16 *)&ip->ttl);
  if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) return bpf_redirect_neigh(p.ifindex, 0, 0, 0);
  __builtin_memcpy(eth->h_dest, p.dmac, ETH_ALEN);
  __builtin_memcpy(eth->h_source, p.smac, ETH_ALEN);
  return bpf_redirect(p.ifindex, 0);
}

/* ---- decisions shared with the XDP program (lib/xdp_nodeport.h), free of the context ---- */

/* Whether backend_id is a backend on another node (a flow to it is SNATed). */
static __always_inline int skiff_nodeport_backend_remote(__u32 backend_id) {
  const struct skiff_lb4_backend *be = skiff_lb4_backend_lookup(backend_id);
  return be && !(be->flags & SKIFF_BACKEND_F_LOCAL);
}

/* The SNAT source address of flows arriving on ifindex: the device's address, or for a device
 * without one in the map, the address the client reached (a NodePort). */
static __always_inline __be32 skiff_nodeport_snat_addr(__u32 ifindex, __be32 vip) {
  __be32 node = skiff_node_addr4(ifindex);
  return node ? node : vip;
}

/* The NAT IN entry (-> client:cport) of a reply {backend:bport -> node:port} to an SNATed
 * flow, or NULL. The caller has checked TCP/UDP and not a later fragment. */
static __always_inline struct skiff_nat4_entry *skiff_nodeport_nat_in(const struct skiff_pkt *pkt) {
  if (!skiff_snat4_port_in_range(pkt->dport)) return 0;
  struct skiff_nat4_key ik;
  skiff_nat4_key_init(&ik, pkt->saddr[0], pkt->daddr[0], pkt->sport, pkt->dport, pkt->l4_proto,
                      SKIFF_NAT_IN);
  return bpf_map_lookup_elem(&SKIFF_MAP_NAT4, &ik);
}

/* The SNAT source *node:*port of the flow client:cport -> backend:bport: its OUT entry, or a
 * new allocation from node. first: the flow's entries were written for this very packet, so
 * an OUT entry left by an earlier flow on the same tuple is not reused. Returns 0 or a
 * negative SKIFF_DROP_* code. */
static __always_inline int skiff_nodeport_snat_source(__be32 client, __be16 cport, __be32 backend,
                                                      __be16 bport, __u8 proto, int first,
                                                      __u32 *now, __be32 *node, __be16 *port) {
  struct skiff_nat4_key ok;
  skiff_nat4_key_init(&ok, client, backend, cport, bport, proto, SKIFF_NAT_OUT);
  struct skiff_nat4_entry *oe = first ? 0 : bpf_map_lookup_elem(&SKIFF_MAP_NAT4, &ok);
  if (oe) {
    *node = oe->to_addr;
    *port = oe->to_port;
    return 0;
  }
  return skiff_snat4_alloc(client, cport, backend, bport, proto, *node, now, port);
}

/* After svc4 DNATed client:cport -> vip:vport (the original tuple) to backend:bport: SNAT if
 * the backend is on another node. Returns 1 when the source was rewritten, 0 when not, or a
 * negative SKIFF_DROP_* code. */
static __always_inline int skiff_nodeport_snat(struct __sk_buff *skb, const struct skiff_pkt *pkt,
                                               __be32 vip, __be16 vport, __be32 backend,
                                               __be16 bport) {
  __be32 client = pkt->saddr[0];
  __be16 cport = pkt->sport;
  __u8 proto = pkt->l4_proto;
  __u32 now = 0;
  struct skiff_ct4_key sk;
  skiff_ct4_key_init(&sk, client, vip, cport, vport, proto, SKIFF_CT_SERVICE);
  struct skiff_ct_entry *e = skiff_ct4_lookup(&sk, &now);
  if (!e) return 0;
  int first = e->packets <= 1; /* svc4 wrote this flow for this very packet */
  if (!skiff_nodeport_backend_remote(e->backend_id)) return 0;

  __be32 node = skiff_nodeport_snat_addr(skb->ifindex, vip);
  __be16 port = 0;
  int rc =
      skiff_nodeport_snat_source(client, cport, backend, bport, proto, first, &now, &node, &port);
  if (rc) return rc;
  rc = skiff_snat4_rewrite_src(skiff_np_skb(skb), pkt, client, cport, node, port);
  return rc ? rc : 1;
}

/* Returns TC_ACT_OK, TC_ACT_REDIRECT, or a negative SKIFF_DROP_* code. */
static __always_inline int skiff_nodeport_from_netdev(struct __sk_buff *skb,
                                                      struct skiff_pkt *pkt) {
  __u8 proto = pkt->l4_proto;
  if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || (pkt->flags & SKIFF_PKT_F_LATER_FRAGMENT))
    return skiff_svc4_from_container(skb, pkt);

  int forward = 0;
  {
    struct skiff_nat4_entry *ie = skiff_nodeport_nat_in(pkt);
    if (ie) {
      if (pkt->flags & SKIFF_PKT_F_FRAGMENT) return SKIFF_DROP_FRAG_NOT_SUPPORTED;
      __be32 client = ie->to_addr;
      __be16 cport = ie->to_port;
      int rc = skiff_nat4_addr(skiff_np_skb(skb), pkt, SKIFF_IPV4_DADDR_OFF, pkt->daddr[0], client);
      if (rc) return rc;
      if (cport != pkt->dport) {
        rc = skiff_nat4_port(skiff_np_skb(skb), pkt, SKIFF_L4_DPORT_OFF, pkt->dport, cport);
        if (rc) return rc;
      }
      pkt->daddr[0] = client;
      pkt->dport = cport;
      forward = 1;
    }
  }

  __be32 saddr = pkt->saddr[0], daddr = pkt->daddr[0];
  __be16 sport = pkt->sport, dport = pkt->dport;
  int rc = skiff_svc4_from_container(skiff_np_skb(skb), pkt);
  if (rc != TC_ACT_OK) return rc;
  skb = skiff_np_skb(skb);

  /* What did the service walk do? Read the addresses and ports back. */
  struct {
    __be32 saddr, daddr;
  } a;
  struct {
    __be16 sport, dport;
  } p;
  if (bpf_skb_load_bytes(skb, pkt->l3_off + SKIFF_IPV4_SADDR_OFF, &a, sizeof(a)) < 0 ||
      bpf_skb_load_bytes(skb, pkt->l4_off, &p, sizeof(p)) < 0)
    return SKIFF_DROP_CSUM_UPDATE;
  if (a.daddr != daddr || p.dport != dport) {
    rc = skiff_nodeport_snat(skiff_np_skb(skb), pkt, daddr, dport, a.daddr, p.dport);
    if (rc < 0) return rc;
    if (rc) forward = 1;
  } else if (a.saddr != saddr || p.sport != sport) {
    forward = 1; /* reverse NAT: the source is now a frontend, possibly a node address */
    /* The reply of a service flow this node's conntrack holds: if it is going to a local pod
     * (a pod's ClusterIP flow to a backend on another node), that pod opened the connection
     * and its egress policy allowed it; to_container must let the reply in although its
     * source is now the frontend, which the pod's policy conntrack does not know. */
    skiff_mark_policy_reply(skiff_np_skb(skb));
  }
  return forward ? skiff_nodeport_fib_redirect(skiff_np_skb(skb), pkt) : TC_ACT_OK;
}

#endif /* SKIFF_BPF_LIB_NODEPORT_H_ */
