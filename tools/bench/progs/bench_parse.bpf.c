/* Benchmark peer: parsing only (the parser from_container runs first), so the datapath's
 * own work can be told apart from the cost of reading the headers. */
#include "lib/common.h"
#include "lib/parse.h"

SEC("tc")
int bench_parse(struct __sk_buff *skb) {
  struct skiff_pkt pkt;
  int rc = skiff_parse_frame((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, &pkt);
  /* Use the result so the parser is not optimised away. */
  return rc < 0 || pkt.l4_proto == 0xff ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
