/* Benchmark part: one bpf_fib_lookup on an XDP frame (parse + the lookup the XDP translate
 * path does before it sends a packet, lib/xdp_nodeport.h), to split the XDP figure. The
 * destination is the frame's own; returns XDP_REDIRECT when the lookup resolves, else
 * XDP_PASS. Nothing is rewritten. */
#include "lib/common.h"
#include "lib/parse.h"

#ifndef AF_INET
#define AF_INET 2
#endif

SEC("xdp")
int bench_fib(struct xdp_md *ctx) {
  __u32 ifindex = ctx->ingress_ifindex;
  void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
  struct skiff_pkt pkt;
  if (skiff_parse(data, data_end, &pkt) != 0 || pkt.family != SKIFF_AF_INET) return XDP_PASS;
  struct bpf_fib_lookup p = {};
  p.family = AF_INET;
  p.l4_protocol = pkt.l4_proto;
  p.tot_len = pkt.l3_len;
  p.ipv4_src = pkt.saddr[0];
  p.ipv4_dst = pkt.daddr[0];
  p.ifindex = ifindex;
  return bpf_fib_lookup(ctx, &p, sizeof(p), 0) == BPF_FIB_LKUP_RET_SUCCESS ? XDP_REDIRECT
                                                                           : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
