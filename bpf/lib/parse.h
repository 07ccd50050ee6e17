/* Packet parser shared by every datapath program (tc and XDP): it works on the
 * [data, data_end) window of the frame and fills a struct skiff_pkt.
 *
 * Returns 0 for an IP packet that is safe to act on, 0 with family SKIFF_AF_NONE for a
 * frame that is not IP (passes untouched), or a negative SKIFF_DROP_* code for a frame that
 * claims to be IP but is truncated or malformed — such a frame is never rewritten.
 */
#ifndef SKIFF_BPF_LIB_PARSE_H_
#define SKIFF_BPF_LIB_PARSE_H_

#include "lib/common.h"

#define SKIFF_IPV6_MAX_EXT_HEADERS 4
#define SKIFF_IP_MF 0x2000
#define SKIFF_IP_OFFSET 0x1fff

struct skiff_ipv6_opt_hdr {
  __u8 nexthdr;
  __u8 hdrlen;
};

struct skiff_ipv6_frag_hdr {
  __u8 nexthdr;
  __u8 reserved;
  __be16 frag_off; /* offset (13 bits, in 8-byte units) << 3 | M flag */
  __be32 identification;
};

/* Parses the L4 header at l4; fills ports, TCP flags and ICMP fields. */
static __always_inline int skiff_parse_l4(void *data, void *data_end, void *l4,
                                          struct skiff_pkt *pkt) {
  pkt->l4_off = (__u16)(l4 - data);
  switch (pkt->l4_proto) {
    case IPPROTO_TCP: {
      struct tcphdr *th = l4;
      if ((void *)(th + 1) > data_end) return SKIFF_DROP_TRUNCATED_L4;
      if (th->doff < 5) return SKIFF_DROP_BAD_L4_HEADER;
      if (l4 + th->doff * 4 > data_end) return SKIFF_DROP_TRUNCATED_L4;
      pkt->sport = th->source;
      pkt->dport = th->dest;
      pkt->tcp_flags = ((__u8 *)th)[13];
      return 0;
    }
    case IPPROTO_UDP: {
      struct udphdr *uh = l4;
      if ((void *)(uh + 1) > data_end) return SKIFF_DROP_TRUNCATED_L4;
      pkt->sport = uh->source;
      pkt->dport = uh->dest;
      return 0;
    }
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6: {
      struct icmphdr *ih = l4; /* type, code, checksum, then id/seq for echo */
      if ((void *)(ih + 1) > data_end) return SKIFF_DROP_TRUNCATED_L4;
      pkt->icmp_type = ih->type;
      pkt->icmp_code = ih->code;
      if ((pkt->l4_proto == IPPROTO_ICMP &&
           (ih->type == ICMP_ECHO || ih->type == ICMP_ECHOREPLY)) ||
          (pkt->l4_proto == IPPROTO_ICMPV6 &&
           (ih->type == ICMPV6_ECHO_REQUEST || ih->type == ICMPV6_ECHO_REPLY)))
        pkt->sport = ih->un.echo.id;
      return 0;
    }
    default:
      /* Other protocols (SCTP, GRE, ESP, ...) are carried without ports. */
      return 0;
  }
}

static __always_inline int skiff_parse_ipv4(void *data, void *data_end, __u32 frame_len, void *l3,
                                            struct skiff_pkt *pkt) {
  struct iphdr *iph = l3;
  if ((void *)(iph + 1) > data_end) return SKIFF_DROP_TRUNCATED_L3;
  if (iph->version != 4) return SKIFF_DROP_BAD_IP_VERSION;
  if (iph->ihl < 5) return SKIFF_DROP_BAD_IHL;
  __u32 hlen = iph->ihl * 4;
  if (l3 + hlen > data_end) return SKIFF_DROP_TRUNCATED_L3;
  __u16 tot_len = bpf_ntohs(iph->tot_len);
  /* A frame may carry Ethernet padding after the IP packet, never less than it claims. */
  if (tot_len < hlen || (__u32)(l3 - data) + tot_len > frame_len) return SKIFF_DROP_BAD_IP_LENGTH;

  pkt->family = SKIFF_AF_INET;
  pkt->l4_proto = iph->protocol;
  pkt->saddr[0] = iph->saddr;
  pkt->daddr[0] = iph->daddr;
  pkt->ttl = iph->ttl;
  pkt->l3_len = tot_len;
  if (hlen > sizeof(*iph)) pkt->flags |= SKIFF_PKT_F_IP_OPTIONS;

  __u16 frag = bpf_ntohs(iph->frag_off);
  if (frag & (SKIFF_IP_MF | SKIFF_IP_OFFSET)) {
    pkt->flags |= SKIFF_PKT_F_FRAGMENT;
    if (frag & SKIFF_IP_OFFSET) {
      pkt->flags |= SKIFF_PKT_F_LATER_FRAGMENT;
      return 0; /* no L4 header in a later fragment */
    }
  }
  return skiff_parse_l4(data, data_end, l3 + hlen, pkt);
}

static __always_inline int skiff_parse_ipv6(void *data, void *data_end, __u32 frame_len, void *l3,
                                            struct skiff_pkt *pkt) {
  struct ipv6hdr *ip6 = l3;
  if ((void *)(ip6 + 1) > data_end) return SKIFF_DROP_TRUNCATED_L3;
  if (ip6->version != 6) return SKIFF_DROP_BAD_IP_VERSION;
  __u16 plen = bpf_ntohs(ip6->payload_len);
  if ((__u32)(l3 - data) + sizeof(*ip6) + plen > frame_len) return SKIFF_DROP_BAD_IP_LENGTH;

  pkt->family = SKIFF_AF_INET6;
  __builtin_memcpy(pkt->saddr, &ip6->saddr, 16);
  __builtin_memcpy(pkt->daddr, &ip6->daddr, 16);
  pkt->ttl = ip6->hop_limit;
  pkt->l3_len = plen + sizeof(*ip6);

  __u8 nexthdr = ip6->nexthdr;
  void *cur = l3 + sizeof(*ip6);
#pragma unroll
  for (int i = 0; i < SKIFF_IPV6_MAX_EXT_HEADERS; i++) {
    switch (nexthdr) {
      case IPPROTO_HOPOPTS:
      case IPPROTO_ROUTING:
      case IPPROTO_DSTOPTS: {
        struct skiff_ipv6_opt_hdr *oh = cur;
        if ((void *)(oh + 1) > data_end) return SKIFF_DROP_IPV6_EXT_HEADERS;
        pkt->flags |= SKIFF_PKT_F_IP_OPTIONS;
        nexthdr = oh->nexthdr;
        cur += (oh->hdrlen + 1) * 8;
        break;
      }
      case IPPROTO_AH: {
        struct skiff_ipv6_opt_hdr *oh = cur;
        if ((void *)(oh + 1) > data_end) return SKIFF_DROP_IPV6_EXT_HEADERS;
        pkt->flags |= SKIFF_PKT_F_IP_OPTIONS;
        nexthdr = oh->nexthdr;
        cur += (oh->hdrlen + 2) * 4;
        break;
      }
      case IPPROTO_FRAGMENT: {
        struct skiff_ipv6_frag_hdr *fh = cur;
        if ((void *)(fh + 1) > data_end) return SKIFF_DROP_IPV6_EXT_HEADERS;
        pkt->flags |= SKIFF_PKT_F_FRAGMENT;
        nexthdr = fh->nexthdr;
        cur += sizeof(*fh);
        if (bpf_ntohs(fh->frag_off) & ~0x7) {
          pkt->flags |= SKIFF_PKT_F_LATER_FRAGMENT;
          pkt->l4_proto = nexthdr;
          return 0;
        }
        break;
      }
      case IPPROTO_NONE:
        pkt->l4_proto = 0;
        return 0;
      default:
        pkt->l4_proto = nexthdr;
        return skiff_parse_l4(data, data_end, cur, pkt);
    }
  }
  /* Still an extension header after the bound: refuse to guess where L4 starts. */
  return SKIFF_DROP_IPV6_EXT_HEADERS;
}

/* Entry point for frames whose headers are in [data, data_end) but whose payload may go on
 * beyond it (a non-linear skb: GSO payload in page fragments, as veth delivers large TCP
 * sends): IP lengths are checked against frame_len (skb->len), headers against data_end. */
static __always_inline int skiff_parse_frame(void *data, void *data_end, __u32 frame_len,
                                             struct skiff_pkt *pkt) {
  __builtin_memset(pkt, 0, sizeof(*pkt));
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end) return SKIFF_DROP_TRUNCATED_L2;
  pkt->l3_off = sizeof(*eth);
  switch (eth->h_proto) {
    case bpf_htons(ETH_P_IP):
      return skiff_parse_ipv4(data, data_end, frame_len, data + sizeof(*eth), pkt);
    case bpf_htons(ETH_P_IPV6):
      return skiff_parse_ipv6(data, data_end, frame_len, data + sizeof(*eth), pkt);
    default:
      return 0; /* ARP and friends: family stays SKIFF_AF_NONE */
  }
}

/* Entry point for a linear frame: the whole packet is in [data, data_end). */
static __always_inline int skiff_parse(void *data, void *data_end, struct skiff_pkt *pkt) {
  return skiff_parse_frame(data, data_end, (__u32)(data_end - data), pkt);
}

/* Headers the parser must see in the linear area; the rest may stay in page fragments. */
#define SKIFF_PULL_LEN (ETH_HLEN + 60 + 60)

/* Whether an IPv4 frame's Ethernet, IP and TCP/UDP/ICMP headers (options included) are all
 * in [data, data_end). A TCP segment the local stack sent has exactly its headers in the
 * linear area and its payload in page fragments; pulling it anyway would make the kernel copy
 * the cloned head (TCP keeps the original for retransmission) and move payload bytes into it,
 * on every data segment. 0 for anything else (IPv6, later fragments, odd protocols): those
 * keep the plain rule below. */
static __always_inline int skiff_ipv4_headers_linear(void *data, void *data_end) {
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) return 0;
  struct iphdr *iph = (void *)(eth + 1);
  if ((void *)(iph + 1) > data_end) return 0;
  void *l4 = (void *)iph + iph->ihl * 4;
  switch (iph->protocol) {
    case IPPROTO_TCP: {
      struct tcphdr *th = l4;
      if ((void *)(th + 1) > data_end) return 0;
      return l4 + th->doff * 4 <= data_end;
    }
    case IPPROTO_UDP:
    case IPPROTO_ICMP:
      return l4 + 8 <= data_end;
    default:
      return 0;
  }
}

/* Entry point for tc programs: pulls the headers into the linear area when the skb holds
 * them in page fragments, then parses (lengths checked against skb->len). */
static __always_inline int skiff_parse_skb(struct __sk_buff *skb, struct skiff_pkt *pkt) {
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  __u32 len = skb->len;
  if (unlikely(data + SKIFF_PULL_LEN > data_end && data_end - data < len &&
               !skiff_ipv4_headers_linear(data, data_end))) {
    bpf_skb_pull_data(skb, len < SKIFF_PULL_LEN ? len : SKIFF_PULL_LEN);
    data = (void *)(long)skb->data;
    data_end = (void *)(long)skb->data_end;
  }
  return skiff_parse_frame(data, data_end, len, pkt);
}

#endif /* SKIFF_BPF_LIB_PARSE_H_ */
