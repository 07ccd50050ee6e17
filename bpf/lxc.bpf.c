/* Pod-side datapath on each pod's host-side veth:
 *  from_container (tc ingress, packets leaving the pod): service translation for pods'
 *    ClusterIP traffic and reverse NAT of local backends' replies (lib/svc4.h), then the
 *    source pod's egress NetworkPolicy on the translated packet (lib/policy.h);
 *  to_container (tc egress, packets entering the pod): the destination pod's ingress
 *    NetworkPolicy (lib/policy.h). */
#include "lib/common.h"
#include "lib/config.h"
#include "lib/events.h"
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
  if (rc == 0 && pkt.family == SKIFF_AF_INET) {
    __u32 now = 0;
    /* Replies are recognised on the untranslated packet: that is the tuple the connection's
     * policy entry was made from on the way out. */
    int reply = skiff_policy_from_container_reply(skb, &pkt, &now);
    rc = skiff_svc4_from_container(skb, &pkt);
    if (rc == TC_ACT_OK && !reply) rc = skiff_policy_egress(skb, &pkt, &now);
  }
  if (rc < 0) {
    skiff_metrics_count(SKIFF_DIR_FROM_CONTAINER, rc, len);
    skiff_event_drop(skb, &pkt, SKIFF_DIR_FROM_CONTAINER, rc);
    return TC_ACT_SHOT;
  }
  if (rc == TC_ACT_OK) skiff_metrics_count(SKIFF_DIR_FROM_CONTAINER, 0, len);
  return rc;
}

SEC("tc")
int to_container(struct __sk_buff *skb) {
  __u32 len = skb->len;
  struct skiff_pkt pkt;
  int rc = skiff_parse_skb(skb, &pkt);
  if (rc == 0 && pkt.family == SKIFF_AF_INET) rc = skiff_policy_ingress(skb, &pkt);
  if (rc < 0) {
    skiff_metrics_count(SKIFF_DIR_TO_CONTAINER, rc, len);
    skiff_event_drop(skb, &pkt, SKIFF_DIR_TO_CONTAINER, rc);
    return TC_ACT_SHOT;
  }
  skiff_metrics_count(SKIFF_DIR_TO_CONTAINER, 0, len);
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
