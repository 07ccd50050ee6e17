/* Node-device datapath on each --devices interface (docs/north-south.md):
 *  from_netdev (tc ingress): NodePort / externalIP / LoadBalancer traffic from outside the
 *    node -> backend (DNAT, SNAT for backends on other nodes), replies of SNATed flows and of
 *    pods' service flows to backends on other nodes -> reverse translation (lib/nodeport.h);
 *  to_netdev (tc egress): counts only (the hook for host-traffic SNAT later).
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

char LICENSE[] SEC("license") = "Dual BSD/GPL";
