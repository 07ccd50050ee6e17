/* Benchmark peer: from_container (lib/lxc.h: service translation, then NetworkPolicy), run in
 * the kernel's own repeat loop.
 *
 * With repeat > 1 the kernel does not restore the packet, so after the first DNAT the real
 * program would see a non-service packet. This program parses whatever the packet has become
 * and then overwrites the parsed tuple (not the bytes) with the tuple of the case being timed,
 * so every iteration takes the same path as the first: the same lookups, inserts and helper
 * calls on the skb (whose checksums go wrong from the second iteration on; nothing checks
 * them). It shares the datapath's maps (the bench reuses their fds) and adds a counter and a
 * few stores per iteration. */
#include "lib/common.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/metrics.h"
#include "lib/parse.h"
#include "lib/lxc.h"

#define BENCH_CT_HIT 0   /* client -> vip of the established flow */
#define BENCH_REPLY 1    /* backend -> client of the established flow */
#define BENCH_NEW_FLOW 2 /* a new client address:port per iteration */
#define BENCH_VARIED 3   /* a non-service packet to a new destination address per iteration */

/* Set by the bench between runs (.bss). Addresses and ports in network byte order. */
__u32 bench_mode;
__be32 bench_client, bench_vip, bench_backend;
__be16 bench_cport, bench_vport, bench_bport;
__u32 bench_iter;

SEC("tc")
int bench_retarget(struct __sk_buff *skb) {
  struct skiff_pkt pkt;
  int rc = skiff_parse_frame((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, &pkt);
  if (rc < 0 || pkt.family != SKIFF_AF_INET || pkt.l4_proto != IPPROTO_TCP) return TC_ACT_SHOT;
  __u32 mode = bench_mode;
  if (mode == BENCH_REPLY) {
    pkt.saddr[0] = bench_backend;
    pkt.sport = bench_bport;
    pkt.daddr[0] = bench_client;
    pkt.dport = bench_cport;
  } else {
    pkt.saddr[0] = bench_client;
    pkt.sport = bench_cport;
    pkt.daddr[0] = bench_vip;
    pkt.dport = bench_vport;
    if (mode == BENCH_NEW_FLOW) {
      __u32 i = bench_iter++;
      pkt.saddr[0] = bpf_htonl(0x0a010000 + (i >> 6)); /* 10.1.x.y */
      pkt.sport = bpf_htons(1024 + (i & 63));
      pkt.tcp_flags = SKIFF_TCP_SYN;
    } else if (mode == BENCH_VARIED) {
      __u32 i = bench_iter++;
      pkt.daddr[0] = bpf_htonl(0x0a040000 + (i & 0xffff)); /* 10.4.x.y */
      pkt.dport = bpf_htons(8080);
    }
  }
  return skiff_from_container_verdict(skb, &pkt, skiff_from_container4(skb, &pkt), skb->len);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
