/* Test entry for bpf/lib/parse.h: parses the frame, stores the result and returns
 * TC_ACT_OK for a frame to pass, TC_ACT_SHOT for a malformed one (the drop reason goes into
 * the result map so the test can check it by name). */
#include "lib/common.h"
#include "lib/parse.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct skiff_parse_result);
} parse_out SEC(".maps");

/* Returns 1 when the frame parses, 0 when it is malformed. */
static __always_inline int parse_and_store(void *data, void *data_end) {
  __u32 zero = 0;
  struct skiff_parse_result *out = bpf_map_lookup_elem(&parse_out, &zero);
  if (!out) return 0;
  out->rc = skiff_parse(data, data_end, &out->pkt);
  out->runs++;
  return out->rc >= 0;
}

/* The same parser runs on both hooks; the tests run every case through both. */
SEC("tc")
int parse_test(struct __sk_buff *skb) {
  return parse_and_store((void *)(long)skb->data, (void *)(long)skb->data_end) ? TC_ACT_OK
                                                                                : TC_ACT_SHOT;
}

SEC("xdp")
int parse_test_xdp(struct xdp_md *ctx) {
  return parse_and_store((void *)(long)ctx->data, (void *)(long)ctx->data_end) ? XDP_PASS
                                                                                : XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
