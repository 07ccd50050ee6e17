/* Reject for a frontend without backends: turns the packet in place into an ICMP port
 * unreachable from the frontend address to the client and sends it back out of the device it
 * came from, as kube-proxy's REJECT rule does, so the client fails at once instead of
 * retrying into a black hole. The reply quotes the offending IP header (with its options) and
 * the first 8 bytes of its L4 header (RFC 792). */
#ifndef SKIFF_BPF_LIB_REJECT_H_
#define SKIFF_BPF_LIB_REJECT_H_

#include "lib/common.h"
#include "lib/csum.h"

#define SKIFF_REJECT_QUOTE_MAX (60 + 8)
#define SKIFF_REJECT_TTL 64
#define SKIFF_REJECT_TOS 0xc0 /* IPTOS_PREC_INTERNETCONTROL, as the kernel's own ICMP */

struct skiff_icmp4_reply_hdr {
  struct iphdr ip;
  struct icmphdr icmp;
};

/* Returns TC_ACT_REDIRECT with the packet rewritten, or a negative SKIFF_DROP_* code. */
static __always_inline int skiff_reject4(struct __sk_buff *skb, const struct skiff_pkt *pkt) {
  __u32 l3 = pkt->l3_off;
  __u32 qlen = (__u32)(pkt->l4_off - pkt->l3_off) + 8;
  if (qlen < sizeof(struct iphdr) + 8 || qlen > SKIFF_REJECT_QUOTE_MAX)
    return SKIFF_DROP_REJECT_FAILED;

  __u8 quote[SKIFF_REJECT_QUOTE_MAX] = {};
  struct ethhdr eth;
  if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0) return SKIFF_DROP_REJECT_FAILED;
  if (bpf_skb_load_bytes(skb, l3, quote, qlen) < 0) return SKIFF_DROP_REJECT_FAILED;

  /* Back to where it came from: the sender's MAC becomes the destination. */
  __u8 mac[ETH_ALEN];
  __builtin_memcpy(mac, eth.h_source, ETH_ALEN);
  __builtin_memcpy(eth.h_source, eth.h_dest, ETH_ALEN);
  __builtin_memcpy(eth.h_dest, mac, ETH_ALEN);

  struct skiff_icmp4_reply_hdr h = {};
  h.ip.version = 4;
  h.ip.ihl = 5;
  h.ip.tos = SKIFF_REJECT_TOS;
  h.ip.tot_len = bpf_htons(sizeof(h) + qlen);
  h.ip.ttl = SKIFF_REJECT_TTL;
  h.ip.protocol = IPPROTO_ICMP;
  h.ip.saddr = pkt->daddr[0]; /* the frontend answers */
  h.ip.daddr = pkt->saddr[0];
  h.ip.check = skiff_csum_fold((__u32)bpf_csum_diff(0, 0, (__be32 *)&h.ip, sizeof(h.ip), 0));
  h.icmp.type = ICMP_DEST_UNREACH;
  h.icmp.code = ICMP_PORT_UNREACH;
  __u32 sum = (__u32)bpf_csum_diff(0, 0, (__be32 *)quote, qlen, 0);
  sum = (__u32)bpf_csum_diff(0, 0, (__be32 *)&h.icmp, sizeof(h.icmp), sum);
  h.icmp.checksum = skiff_csum_fold(sum);

  if (bpf_skb_change_tail(skb, l3 + sizeof(h) + qlen, 0) < 0) return SKIFF_DROP_REJECT_FAILED;
  if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) < 0 ||
      bpf_skb_store_bytes(skb, l3, &h, sizeof(h), 0) < 0 ||
      bpf_skb_store_bytes(skb, l3 + sizeof(h), quote, qlen, 0) < 0)
    return SKIFF_DROP_REJECT_FAILED;
  return bpf_redirect(skb->ifindex, 0);
}

#endif /* SKIFF_BPF_LIB_REJECT_H_ */
