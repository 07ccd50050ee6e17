/* Address and port rewrites of the outer IPv4 header and its TCP/UDP header, with incremental
 * checksum updates through the skb helpers: they also keep skb->csum right for
 * CHECKSUM_COMPLETE and the pseudo-header sum right for CHECKSUM_PARTIAL (veth offload).
 * Offsets come from the parser, so IP options are honoured. */
#ifndef SKIFF_BPF_LIB_NAT_H_
#define SKIFF_BPF_LIB_NAT_H_

#include "lib/common.h"

#define SKIFF_IPV4_CSUM_OFF 10
#define SKIFF_IPV4_SADDR_OFF 12
#define SKIFF_IPV4_DADDR_OFF 16
#define SKIFF_L4_SPORT_OFF 0
#define SKIFF_L4_DPORT_OFF 2

/* Offset of the L4 checksum in its header, 0 when the protocol has none to fix up. */
static __always_inline __u32 skiff_l4_csum_off(__u8 proto) {
  if (proto == IPPROTO_TCP) return 16;
  if (proto == IPPROTO_UDP) return 6;
  return 0;
}

/* A zero UDP checksum means "none" and must stay zero (BPF_F_MARK_MANGLED_0). */
static __always_inline __u64 skiff_l4_csum_flags(__u8 proto) {
  return proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
}

/* Rewrites the source (field_off 12) or destination (16) address. */
static __always_inline int skiff_nat4_addr(struct __sk_buff *skb, const struct skiff_pkt *pkt,
                                           __u32 field_off, __be32 from, __be32 to) {
  __u32 l3 = pkt->l3_off;
  if (bpf_l3_csum_replace(skb, l3 + SKIFF_IPV4_CSUM_OFF, from, to, sizeof(to)) < 0)
    return SKIFF_DROP_CSUM_UPDATE;
  __u32 csum_off = skiff_l4_csum_off(pkt->l4_proto);
  if (csum_off &&
      bpf_l4_csum_replace(skb, pkt->l4_off + csum_off, from, to,
                          BPF_F_PSEUDO_HDR | sizeof(to) | skiff_l4_csum_flags(pkt->l4_proto)) < 0)
    return SKIFF_DROP_CSUM_UPDATE;
  if (bpf_skb_store_bytes(skb, l3 + field_off, &to, sizeof(to), 0) < 0)
    return SKIFF_DROP_CSUM_UPDATE;
  return 0;
}

/* Rewrites the TCP/UDP source (field_off 0) or destination (2) port. */
static __always_inline int skiff_nat4_port(struct __sk_buff *skb, const struct skiff_pkt *pkt,
                                           __u32 field_off, __be16 from, __be16 to) {
  __u32 csum_off = skiff_l4_csum_off(pkt->l4_proto);
  if (csum_off && bpf_l4_csum_replace(skb, pkt->l4_off + csum_off, from, to,
                                      sizeof(to) | skiff_l4_csum_flags(pkt->l4_proto)) < 0)
    return SKIFF_DROP_CSUM_UPDATE;
  if (bpf_skb_store_bytes(skb, pkt->l4_off + field_off, &to, sizeof(to), 0) < 0)
    return SKIFF_DROP_CSUM_UPDATE;
  return 0;
}

#endif /* SKIFF_BPF_LIB_NAT_H_ */
