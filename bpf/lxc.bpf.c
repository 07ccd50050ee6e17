/* Pod-side datapath on each pod's host-side veth:
 *  from_container (tc ingress, packets leaving the pod): service translation for pods'
 *    ClusterIP traffic and reverse NAT of local backends' replies (lib/svc4.h), then
 *    NetworkPolicy on the tuple between real endpoints (lib/policy.h): replies of tracked
 *    connections are marked, other packets need the source pod's egress; last, host routing
 *    (lib/host_route.h) hands a packet for another pod of this node straight to that pod;
 *  to_container (tc egress, packets entering the pod): the destination pod's ingress
 *    NetworkPolicy (lib/policy.h). */
#include "lib/common.h"
#include "lib/config.h"
#include "lib/events.h"
#include "lib/host_route.h"
#include "lib/lxc.h"
#include "lib/maps.h"
#include "lib/metrics.h"
#include "lib/parse.h"
#include "lib/policy.h"
#include "lib/svc4.h"

SEC("tc")
int from_container(struct __sk_buff *skb) {
  __u32 len = skb->len;
  struct skiff_pkt pkt;
  int rc = skiff_parse_skb(skb, &pkt);
  if (rc == 0 && pkt.family == SKIFF_AF_INET) rc = skiff_from_container4(skb, &pkt);
  rc = skiff_from_container_verdict(skb, &pkt, rc, len);
  if (rc != TC_ACT_OK || pkt.family != SKIFF_AF_INET) return rc;
  struct skiff_pkt cur;
  rc = skiff_host_route4(skb, &pkt, &cur);
  if (rc < 0) return skiff_to_container_drop(skb, &cur, rc, len);
  return rc;
}

SEC("tc")
int to_container(struct __sk_buff *skb) {
  __u32 len = skb->len;
  struct skiff_pkt pkt;
  int rc = skiff_parse_skb(skb, &pkt);
  if (rc == 0 && pkt.family == SKIFF_AF_INET) rc = skiff_policy_ingress(skb, &pkt);
  if (rc < 0) return skiff_to_container_drop(skb, &pkt, rc, len);
  skiff_metrics_count(SKIFF_DIR_TO_CONTAINER, 0, len);
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
