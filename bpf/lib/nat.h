/* Address and port rewrites of the outer IPv4 header and its TCP/UDP header, with incremental
 * checksum updates through the skb helpers: they also keep skb->csum right for
 * CHECKSUM_COMPLETE and the pseudo-header sum right for CHECKSUM_PARTIAL (veth offload).
 * Offsets come from the parser, so IP options are honoured. */
#ifndef SKIFF_BPF_LIB_NAT_H_
#define SKIFF_BPF_LIB_NAT_H_

#include "lib/common.h"
#include "lib/csum.h"

#define SKIFF_IPV4_CSUM_OFF 10
#define SKIFF_IPV4_SADDR_OFF 12
#define SKIFF_IPV4_DADDR_OFF 16
#define SKIFF_L4_SPORT_OFF 0
#define SKIFF_L4_DPORT_OFF 2
/* A header offset the verifier can bound. Headers the datapath rewrites start within the
 * first 74 bytes (Ethernet + IPv4 with options), but an offset read from the parsed packet is
 * only known to be a __u16, and pointer + 0xffff + size exceeds what the verifier accepts
 * (MAX_PACKET_OFF). The mask is done in asm, on the very register used for the pointer, so
 * clang cannot move it away from the access. */
static __always_inline __u32 skiff_hdr_off(__u32 off) {
  asm volatile("%0 &= 0xff" : "+r"(off));
  return off;
}

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

/* Rewrites the source (field_off 12) or destination (16) address. Only the L4 checksum goes
 * through a helper (its meaning depends on skb->ip_summed, which BPF cannot read); the IPv4
 * header checksum is always complete and the address write needs no help, so both are direct
 * stores — cheaper than bpf_l3_csum_replace + bpf_skb_store_bytes, with the same result. */
static __always_inline int skiff_nat4_addr(struct __sk_buff *skb, const struct skiff_pkt *pkt,
                                           __u32 field_off, __be32 from, __be32 to) {
  __u32 l3 = pkt->l3_off;
  __u32 csum_off = skiff_l4_csum_off(pkt->l4_proto);
  if (csum_off &&
      bpf_l4_csum_replace(skb, pkt->l4_off + csum_off, from, to,
                          BPF_F_PSEUDO_HDR | sizeof(to) | skiff_l4_csum_flags(pkt->l4_proto)) < 0)
    return SKIFF_DROP_CSUM_UPDATE;
  /* The helper may have moved the packet: fresh pointers, fresh bounds. */
  void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
  struct iphdr *ip = data + skiff_hdr_off(l3);
  if ((void *)(ip + 1) > data_end) return SKIFF_DROP_CSUM_UPDATE;
  ip->check = skiff_csum_replace4(ip->check, from, to);
  if (field_off == SKIFF_IPV4_SADDR_OFF)
    ip->saddr = to;
  else
    ip->daddr = to;
  return 0;
}

/* Rewrites the TCP/UDP source (field_off 0) or destination (2) port. */
static __always_inline int skiff_nat4_port(struct __sk_buff *skb, const struct skiff_pkt *pkt,
                                           __u32 field_off, __be16 from, __be16 to) {
  /* One read of the offset: the verifier ties the bounds check to this very value. */
  __u32 l4 = pkt->l4_off;
  __u32 csum_off = skiff_l4_csum_off(pkt->l4_proto);
  if (csum_off && bpf_l4_csum_replace(skb, l4 + csum_off, from, to,
                                      sizeof(to) | skiff_l4_csum_flags(pkt->l4_proto)) < 0)
    return SKIFF_DROP_CSUM_UPDATE;
  void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
  struct udphdr *ports = data + skiff_hdr_off(l4); /* TCP and UDP share the port layout */
  if ((void *)(ports + 1) > data_end) return SKIFF_DROP_CSUM_UPDATE;
  if (field_off == SKIFF_L4_SPORT_OFF)
    ports->source = to;
  else
    ports->dest = to;
  return 0;
}

#endif /* SKIFF_BPF_LIB_NAT_H_ */
