/* Node-device datapath on each --devices interface (docs/north-south.md):
 *  from_netdev (tc ingress): NodePort / externalIP / LoadBalancer traffic from outside the
 *    node -> backend (DNAT, SNAT for backends on other nodes), replies of SNATed flows and of
 *    pods' service flows to backends on other nodes -> reverse translation (lib/nodeport.h);
 *  to_netdev (tc egress): counts only (the hook for host-traffic SNAT later);
 *  from_netdev_xdp (XDP, --xdp): the NodePort/LoadBalancer/externalIP flows to backends on
 *    other nodes and their replies, translated and sent back out before an skb exists
 *    (lib/xdp_nodeport.h); everything else passes to from_netdev untouched.
 * Shares every service and conntrack map with bpf/lxc.bpf.c (pinned by name); owns the NAT
 * and node address maps (maps/nat.h). */
/* External clients: externalTrafficPolicy Local restricts new flows to node-local backends
 * (lib/lb.h), as internalTrafficPolicy Local does for pods. */
#define SKIFF_LB_LOCAL_FLAGS (SKIFF_SVC_F_INT_LOCAL | SKIFF_SVC_F_EXT_LOCAL)
/* External clients: new flows to a frontend with SKIFF_SVC_F_SRC_RANGES must come from one
 * of its loadBalancerSourceRanges (lib/lb.h, lib/svc4.h). */
#define SKIFF_LB_SRC_RANGES 1

#include "lib/common.h"
#include "lib/config.h"
#include "lib/events.h"
#include "lib/maps.h"
#include "lib/metrics.h"
#include "lib/nodeport.h"
#include "lib/parse.h"
#include "lib/xdp_nodeport.h"

SEC("tc")
int from_netdev(struct __sk_buff *skb) {
  __u32 len = skb->len;
  struct skiff_pkt pkt;
  int rc = skiff_parse_skb(skb, &pkt);
  if (rc == 0 && pkt.family == SKIFF_AF_INET) rc = skiff_nodeport_from_netdev(skb, &pkt);
  if (rc < 0) {
    skiff_metrics_count(SKIFF_DIR_FROM_NETDEV, rc, len);
    skiff_event_drop(skb, &pkt, SKIFF_DIR_FROM_NETDEV, rc);
    return TC_ACT_SHOT;
  }
  skiff_metrics_count(SKIFF_DIR_FROM_NETDEV, 0, len);
  return rc;
}

SEC("tc")
int to_netdev(struct __sk_buff *skb) {
  skiff_metrics_count(SKIFF_DIR_TO_NETDEV, 0, skb->len);
  return TC_ACT_OK;
}

SEC("xdp")
int from_netdev_xdp(struct xdp_md *ctx) {
  __u32 ifindex = ctx->ingress_ifindex;
  void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
  __u32 len = (__u32)(data_end - data);
  struct skiff_pkt pkt;
  /* A malformed frame passes: from_netdev drops it with its reason. */
  if (skiff_parse(data, data_end, &pkt) != 0) return XDP_PASS;
  int rc = skiff_xdp_nodeport(ctx, ifindex, &pkt);
  if (rc < 0) {
    skiff_metrics_count(SKIFF_DIR_XDP, rc, len);
    skiff_event_drop_on(ifindex, &pkt, SKIFF_DIR_XDP, rc);
    return XDP_DROP;
  }
  /* Only the packets XDP finished are counted here; the ones it passes, by from_netdev. */
  if (rc != XDP_PASS) skiff_metrics_count(SKIFF_DIR_XDP, 0, len);
  return rc;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
