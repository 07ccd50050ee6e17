/* Reject for a frontend without backends, as kube-proxy's REJECT rule does, so the client
 * fails at once instead of retrying into a black hole. The packet is rewritten in place and
 * sent back out of the device it came from:
 *  - TCP gets a RST built from the offending segment (RFC 793 reset generation). An ICMP
 *    port unreachable would not do: it reaches the client within the same softirq run as
 *    its own SYN, while connect() still owns the socket, so tcp_v4_err records only a soft
 *    error and the connect fails at the SYN retransmit, ~1 s later. A RST is queued to the
 *    socket backlog and refuses the connect at release_sock.
 *  - UDP gets an ICMP port unreachable quoting the offending IP header (with its options)
 *    and the first 8 bytes of its L4 header (RFC 792). */
#ifndef SKIFF_BPF_LIB_REJECT_H_
#define SKIFF_BPF_LIB_REJECT_H_

#include "lib/common.h"
#include "lib/csum.h"
#include "lib/nat.h"

#define SKIFF_REJECT_QUOTE_MAX (60 + 8)
#define SKIFF_REJECT_TTL 64
#define SKIFF_REJECT_TOS 0xc0 /* IPTOS_PREC_INTERNETCONTROL, as the kernel's own ICMP */

struct skiff_icmp4_reply_hdr {
  struct iphdr ip;
  struct icmphdr icmp;
};

/* Returns TC_ACT_REDIRECT with the packet rewritten, or a negative SKIFF_DROP_* code. */
static __always_inline int skiff_reject4_icmp(struct __sk_buff *skb, const struct skiff_pkt *pkt) {
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

struct skiff_tcp4_reset {
  /* The TCP pseudo-header, then the TCP header: one checksum pass over both. */
  __be32 saddr;
  __be32 daddr;
  __u8 zero;
  __u8 proto;
  __be16 len;
  struct tcphdr tcp;
};

#define SKIFF_RESET_LEN (ETH_HLEN + sizeof(struct iphdr) + sizeof(struct tcphdr))
#define SKIFF_IP_DF 0x4000

/* The RST that answers a TCP segment to a frontend without backends, built in place: MACs,
 * addresses and ports swapped, no IP or TCP options, no payload, window 0. RFC 793: a segment
 * with ACK gets <SEQ=SEG.ACK><CTL=RST>; one without gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
 * <CTL=RST,ACK>, SEG.LEN counting SYN and FIN. A RST is never answered (dropped, counted).
 * Returns TC_ACT_REDIRECT with the packet rewritten, or a negative SKIFF_DROP_* code. */
static __always_inline int skiff_reject4_tcp(struct __sk_buff *skb, const struct skiff_pkt *pkt) {
  __u8 fl = pkt->tcp_flags;
  if (fl & SKIFF_TCP_RST) return SKIFF_DROP_NO_SERVICE_BACKEND;

  void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
  struct tcphdr *th = data + skiff_hdr_off(pkt->l4_off);
  if ((void *)(th + 1) > data_end) return SKIFF_DROP_REJECT_FAILED;
  __be32 seq = th->seq, ack_seq = th->ack_seq;
  __u32 hdrs = (__u32)(pkt->l4_off - pkt->l3_off) + th->doff * 4;
  if (pkt->l3_len < hdrs) return SKIFF_DROP_REJECT_FAILED;
  __u32 seg_len = pkt->l3_len - hdrs + !!(fl & SKIFF_TCP_SYN) + !!(fl & SKIFF_TCP_FIN);

  struct skiff_tcp4_reset r = {};
  r.saddr = pkt->daddr[0]; /* the frontend answers */
  r.daddr = pkt->saddr[0];
  r.proto = IPPROTO_TCP;
  r.len = bpf_htons(sizeof(struct tcphdr));
  r.tcp.source = pkt->dport;
  r.tcp.dest = pkt->sport;
  r.tcp.doff = 5;
  r.tcp.rst = 1;
  if (fl & SKIFF_TCP_ACK) {
    r.tcp.seq = ack_seq;
  } else {
    r.tcp.ack_seq = bpf_htonl(bpf_ntohl(seq) + seg_len);
    r.tcp.ack = 1;
  }
  r.tcp.check = skiff_csum_fold((__u32)bpf_csum_diff(0, 0, (__be32 *)&r, sizeof(r), 0));

  struct iphdr ip = {};
  ip.version = 4;
  ip.ihl = 5;
  ip.tot_len = bpf_htons(sizeof(struct iphdr) + sizeof(struct tcphdr));
  ip.frag_off = bpf_htons(SKIFF_IP_DF);
  ip.ttl = SKIFF_REJECT_TTL;
  ip.protocol = IPPROTO_TCP;
  ip.saddr = r.saddr;
  ip.daddr = r.daddr;
  ip.check = skiff_csum_fold((__u32)bpf_csum_diff(0, 0, (__be32 *)&ip, sizeof(ip), 0));

  /* Trim first (options and payload go), then write the headers over the frame's start. */
  if (bpf_skb_change_tail(skb, SKIFF_RESET_LEN, 0) < 0) return SKIFF_DROP_REJECT_FAILED;
  data = (void *)(long)skb->data;
  data_end = (void *)(long)skb->data_end;
  if (data + SKIFF_RESET_LEN > data_end) return SKIFF_DROP_REJECT_FAILED;
  struct ethhdr *eth = data;
  __u8 mac[ETH_ALEN];
  __builtin_memcpy(mac, eth->h_source, ETH_ALEN);
  __builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
  __builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
  __builtin_memcpy(data + ETH_HLEN, &ip, sizeof(ip));
  __builtin_memcpy(data + ETH_HLEN + sizeof(ip), &r.tcp, sizeof(r.tcp));
  return bpf_redirect(skb->ifindex, 0);
}

static __always_inline int skiff_reject4(struct __sk_buff *skb, const struct skiff_pkt *pkt) {
  if (pkt->l4_proto == IPPROTO_TCP) return skiff_reject4_tcp(skb, pkt);
  return skiff_reject4_icmp(skb, pkt);
}

#endif /* SKIFF_BPF_LIB_REJECT_H_ */
