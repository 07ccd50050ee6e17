/* Pod-side datapath: tc ingress on each pod's host-side veth (packets leaving the pod).
 * Service translation for pods' ClusterIP traffic and reverse NAT of local backends'
 * replies; everything else passes untouched. Logic lives in lib/svc4.h. */
#include "lib/common.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/metrics.h"
#include "lib/parse.h"
#include "lib/svc4.h"

/* Headers the parser must see in the linear area; the rest may stay in page fragments. */
#define SKIFF_PULL_LEN (ETH_HLEN + 60 + 60)

SEC("tc")
int from_container(struct __sk_buff *skb) {
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  __u32 len = skb->len;
  if (unlikely(data + SKIFF_PULL_LEN > data_end && data_end - data < len)) {
    bpf_skb_pull_data(skb, len < SKIFF_PULL_LEN ? len : SKIFF_PULL_LEN);
    data = (void *)(long)skb->data;
    data_end = (void *)(long)skb->data_end;
  }

  struct skiff_pkt pkt;
  int rc = skiff_parse_frame(data, data_end, len, &pkt);
  if (rc == 0 && pkt.family == SKIFF_AF_INET) rc = skiff_svc4_from_container(skb, &pkt);
  if (rc < 0) {
    skiff_metrics_count(SKIFF_DIR_FROM_CONTAINER, rc, len);
    return TC_ACT_SHOT;
  }
  if (rc == TC_ACT_OK) skiff_metrics_count(SKIFF_DIR_FROM_CONTAINER, 0, len);
  return rc;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
