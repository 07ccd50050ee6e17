/* Host routing (docs/datapath.md "Host routing"): an IPv4 packet leaving a pod for another pod
 * of this node is delivered straight into the destination pod's namespace (bpf_redirect_peer)
 * instead of going through the node's IP stack (routing, netfilter FORWARD, the neighbour
 * layer, the destination veth's queue and its to_container hook), as Cilium's eBPF host
 * routing does. The kernel's FIB decides where it goes (bpf_fib_lookup: the node's routes and
 * neighbour entries, MTU), and the packet is forwarded as a router would: TTL decremented,
 * Ethernet addresses of the outgoing link. Its answers are cached for a second per lookup
 * input (maps/host_route.h): most packets cost one hash lookup instead of a FIB lookup.
 *
 * Only where the route's interface is an attached pod interface (maps/host_route.h). The
 * destination's to_container does not run, so its work is done here: while any NetworkPolicy
 * exists, the destination pod's ingress policy (lib/policy.h) on the packet as translation
 * left it, exactly as to_container would check it. Anything else — traffic to the node, off
 * the node, to an interface Skiff does not manage, without a resolved neighbour, TTL 1, too
 * big for the link — takes the stack unchanged. */
#ifndef SKIFF_BPF_LIB_HOST_ROUTE_H_
#define SKIFF_BPF_LIB_HOST_ROUTE_H_

#include "lib/config.h"
#include "lib/maps.h"
#include "lib/metrics.h"
#include "lib/policy.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/* The packet as to_container would parse it after translation: addresses from the IP header,
 * ports from the L4 header (same offsets; NAT rewrites them in place). */
static __always_inline void skiff_host_route_cur(struct iphdr *iph, void *data, void *data_end,
                                                 const struct skiff_pkt *pkt,
                                                 struct skiff_pkt *cur) {
  *cur = *pkt;
  cur->saddr[0] = iph->saddr;
  cur->daddr[0] = iph->daddr;
  if ((pkt->l4_proto == IPPROTO_TCP || pkt->l4_proto == IPPROTO_UDP) &&
      !(pkt->flags & SKIFF_PKT_F_LATER_FRAGMENT)) {
    __be16 *ports = data + (pkt->l4_off & 0xff);
    if ((void *)(ports + 2) <= data_end) {
      cur->sport = ports[0];
      cur->dport = ports[1];
    }
  }
}

/* As the kernel's is_skb_forwardable, which bpf_fib_lookup applies with tot_len 0: the frame
 * fits the out link's MTU plus its Ethernet header and a VLAN tag, or GSO splits it. */
static __always_inline int skiff_host_route_fits(struct __sk_buff *skb, __u32 mtu) {
  return skb->len <= mtu + ETH_HLEN + 4 || skb->gso_size;
}

/* The route for this packet when host routing may deliver it (1; `rt` filled), else 0. From
 * the route cache (maps/host_route.h) when it holds a fresh answer for these lookup inputs
 * whose interface is still an attached pod interface and whose MTU lets the packet through;
 * else from bpf_fib_lookup (one FIB, fib-rule and neighbour lookup), whose answer is cached when
 * it goes through an attached pod interface. */
static __always_inline int skiff_host_route_resolve(struct __sk_buff *skb, const struct iphdr *iph,
                                                    struct skiff_host_route4 *rt) {
  struct skiff_host_route4_key key = {
      .daddr = iph->daddr,
      .saddr = iph->saddr,
      .ifindex = skb->ingress_ifindex,
      .tos = iph->tos,
      .proto = iph->protocol,
  };
  __u64 now = skiff_now_ns();
  const struct skiff_host_route4 *c = bpf_map_lookup_elem(&SKIFF_MAP_HOST_ROUTE4, &key);
  if (c && c->expires > now && skiff_host_route_fits(skb, c->mtu)) {
    __u32 out = c->ifindex;
    if (bpf_map_lookup_elem(&SKIFF_MAP_ENDPOINT_IFACES, &out)) {
      *rt = *c;
      return 1;
    }
  }

  struct bpf_fib_lookup fib = {
      .family = AF_INET,
      .tos = iph->tos,
      .l4_protocol = iph->protocol,
      .tot_len = 0, /* 0: the kernel checks the skb against the MTU, GSO included */
      .ifindex = skb->ingress_ifindex,
      .ipv4_src = iph->saddr,
      .ipv4_dst = iph->daddr,
  };
  if (bpf_fib_lookup(skb, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS) return 0;
  __u32 out = fib.ifindex;
  if (!bpf_map_lookup_elem(&SKIFF_MAP_ENDPOINT_IFACES, &out)) return 0;
  rt->expires = now + SKIFF_HOST_ROUTE_TTL_NS;
  rt->ifindex = out;
  rt->mtu = fib.mtu_result;
  __builtin_memcpy(rt->dmac, fib.dmac, ETH_ALEN);
  __builtin_memcpy(rt->smac, fib.smac, ETH_ALEN);
  rt->pad = 0;
  bpf_map_update_elem(&SKIFF_MAP_HOST_ROUTE4, &key, rt, BPF_ANY);
  return 1;
}

/* TC_ACT_REDIRECT when the packet was handed to the destination pod (counted under
 * SKIFF_DIR_HOST_ROUTED), TC_ACT_OK when it takes the stack (untouched), or the destination's
 * ingress policy drop code (the caller accounts it as to_container would). Call last, on a
 * packet from_container lets through; `cur` receives the packet's tuple as it leaves (filled
 * only on the way to a redirect or an ingress drop: the caller reads it only on a drop). */
static __always_inline int skiff_host_route4(struct __sk_buff *skb, const struct skiff_pkt *pkt,
                                             struct skiff_pkt *cur) {
  if (!skiff_config.host_routing) return TC_ACT_OK;
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  struct iphdr *iph = (void *)(eth + 1);
  if ((void *)(iph + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
  if (iph->ttl <= 1) return TC_ACT_OK; /* the stack sends the ICMP time exceeded */

  struct skiff_host_route4 rt;
  if (!skiff_host_route_resolve(skb, iph, &rt)) return TC_ACT_OK;
  __u32 out = rt.ifindex;

  skiff_host_route_cur(iph, data, data_end, pkt, cur);
  /* The destination's ingress (to_container's check; a no-op without any NetworkPolicy). */
  int rc = skiff_policy_ingress(skb, cur);
  if (rc < 0) return rc;

  /* The policy helpers may have moved the packet: read the headers again. */
  data = (void *)(long)skb->data;
  data_end = (void *)(long)skb->data_end;
  eth = data;
  iph = (void *)(eth + 1);
  if ((void *)(iph + 1) > data_end) return TC_ACT_OK;
  /* As ip_decrease_ttl: the TTL is the high byte of its 16-bit word. */
  __u32 check = iph->check;
  check += bpf_htons(0x0100);
  iph->check = (__sum16)(check + (check >= 0xffff));
  iph->ttl--;
  __builtin_memcpy(eth->h_dest, rt.dmac, ETH_ALEN);
  __builtin_memcpy(eth->h_source, rt.smac, ETH_ALEN);
  skiff_metrics_count(SKIFF_DIR_HOST_ROUTED, 0, skb->len);
  return bpf_redirect_peer(out, 0);
}

#endif /* SKIFF_BPF_LIB_HOST_ROUTE_H_ */
