/* from_container's work after parsing (bpf/lxc.bpf.c), shared with the benchmark's repeat-loop
 * peer (tools/bench/progs/bench_retarget.bpf.c) so both run exactly the same code. */
#ifndef SKIFF_BPF_LIB_LXC_H_
#define SKIFF_BPF_LIB_LXC_H_

#include "lib/events.h"
#include "lib/metrics.h"
#include "lib/policy.h"
#include "lib/svc4.h"

/* An IPv4 packet leaving a pod: service translation, then NetworkPolicy on the tuple between
 * real endpoints (the backend after a DNAT, the backend's own source on a reply before its
 * reverse NAT). TC_ACT_OK, TC_ACT_REDIRECT or a drop code. */
static __always_inline int skiff_from_container4(struct __sk_buff *skb,
                                                 const struct skiff_pkt *pkt) {
  struct skiff_tuple4 real = {pkt->saddr[0], pkt->daddr[0], pkt->sport, pkt->dport};
  int rc = skiff_svc4_xlate(skb, pkt, &real);
  if (rc == TC_ACT_OK) rc = skiff_policy_from_container(skb, pkt, &real);
  return rc;
}

/* Counts the outcome (a reject was counted where it was sent) and turns a drop code into
 * TC_ACT_SHOT. */
static __always_inline int skiff_from_container_verdict(struct __sk_buff *skb,
                                                        const struct skiff_pkt *pkt, int rc,
                                                        __u32 len) {
  if (rc < 0) {
    skiff_metrics_count(SKIFF_DIR_FROM_CONTAINER, rc, len);
    skiff_event_drop(skb, pkt, SKIFF_DIR_FROM_CONTAINER, rc);
    return TC_ACT_SHOT;
  }
  if (rc == TC_ACT_OK) skiff_metrics_count(SKIFF_DIR_FROM_CONTAINER, 0, len);
  return rc;
}

/* A packet the destination pod's ingress refused, at to_container or, host-routed, on its
 * behalf in from_container: counted and reported under to_container either way. */
static __always_inline int skiff_to_container_drop(struct __sk_buff *skb,
                                                   const struct skiff_pkt *pkt, int rc, __u32 len) {
  skiff_metrics_count(SKIFF_DIR_TO_CONTAINER, rc, len);
  skiff_event_drop(skb, pkt, SKIFF_DIR_TO_CONTAINER, rc);
  return TC_ACT_SHOT;
}

#endif /* SKIFF_BPF_LIB_LXC_H_ */
