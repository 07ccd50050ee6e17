/* ICMP errors about translated flows (port unreachable, fragmentation needed, time
 * exceeded, parameter problem): the quoted header is translated back, so the sender of the
 * quoted packet recognises its own flow, and the outer address follows when it was the
 * translated one.
 *  - An error about a client->backend packet, on its way to the client: the quoted
 *    destination becomes the frontend again (found through the flow's reply entry), and an
 *    outer source equal to the backend becomes the frontend.
 *  - An error about a reverse-NATed reply, sent by the client towards the frontend: the quoted
 *    source becomes the backend (found through the service entry) and so does the outer
 *    destination.
 * The quoted IP header, its L4 checksum (when quoted and not a zero UDP checksum) and the
 * ICMP checksum are updated incrementally. Quoted headers with IP options and hairpin flows
 * pass untouched (docs/datapath.md). */
#ifndef SKIFF_BPF_LIB_ICMP_NAT_H_
#define SKIFF_BPF_LIB_ICMP_NAT_H_

#include "lib/conntrack.h"
#include "lib/csum.h"
#include "lib/nat.h"

struct skiff_icmp_quote {
  struct iphdr ip;
  __be16 sport;
  __be16 dport;
  __u8 rest[16]; /* the UDP checksum at rest[2], the TCP one at rest[12], when quoted */
};

static __always_inline int skiff_icmp4_is_error(__u8 type) {
  return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB;
}

static __always_inline int skiff_icmp4_error_xlate(struct __sk_buff *skb,
                                                   const struct skiff_pkt *pkt) {
  if (!skiff_icmp4_is_error(pkt->icmp_type) || (pkt->flags & SKIFF_PKT_F_FRAGMENT))
    return TC_ACT_OK;
  __u32 icmp_off = pkt->l4_off;
  __u32 q_off = icmp_off + sizeof(struct icmphdr);
  if (skb->len < q_off + sizeof(struct iphdr) + 8) return TC_ACT_OK;

  struct skiff_icmp_quote q = {};
  __u32 qlen = sizeof(struct iphdr) + 8;
  if (skb->len >= q_off + sizeof(q)) {
    qlen = sizeof(q);
    if (bpf_skb_load_bytes(skb, q_off, &q, sizeof(q)) < 0) return TC_ACT_OK;
  } else if (bpf_skb_load_bytes(skb, q_off, &q, sizeof(struct iphdr) + 8) < 0) {
    return TC_ACT_OK;
  }
  __u8 proto = q.ip.protocol;
  if (q.ip.version != 4 || q.ip.ihl != 5 || (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
    return TC_ACT_OK;
  __be16 q_sport = q.sport, q_dport = q.dport;

  /* Both directions are keyed the same way from the quoted packet, reversed. */
  __u32 now = 0;
  struct skiff_ct4_key k;
  skiff_ct4_key_init(&k, q.ip.daddr, q.ip.saddr, q_dport, q_sport, proto, SKIFF_CT_REPLY);
  struct skiff_ct_entry *e = skiff_ct4_lookup(&k, &now);
  if (!e) {
    k.kind = SKIFF_CT_SERVICE;
    e = skiff_ct4_lookup(&k, &now);
    if (!e) return TC_ACT_OK;
  }
  if (e->flags & SKIFF_CT_F_HAIRPIN) return TC_ACT_OK;

  /* Reply entry: the quoted packet went client->backend; restore the frontend as its
   * destination. Service entry: it went frontend->client; restore the backend as its source. */
  int reply_entry = k.kind == SKIFF_CT_REPLY;
  __be32 new_addr = e->nat_addr, old_addr;
  __be16 new_port = e->nat_port, old_port;
  __sum16 old_ip_check = q.ip.check;
  if (reply_entry) {
    old_addr = q.ip.daddr;
    old_port = q_dport;
    q.ip.daddr = new_addr;
    q.dport = new_port;
  } else {
    old_addr = q.ip.saddr;
    old_port = q_sport;
    q.ip.saddr = new_addr;
    q.sport = new_port;
  }
  q.ip.check = skiff_csum_replace4(q.ip.check, old_addr, new_addr);

  __sum16 icmp_csum;
  if (bpf_skb_load_bytes(skb, icmp_off + 2, &icmp_csum, sizeof(icmp_csum)) < 0) return TC_ACT_OK;
  icmp_csum = skiff_csum_replace4(icmp_csum, old_addr, new_addr);
  icmp_csum = skiff_csum_replace2(icmp_csum, old_ip_check, q.ip.check);
  icmp_csum = skiff_csum_replace2(icmp_csum, old_port, new_port);

  /* The quoted L4 checksum covers the pseudo-header and ports: fix it when it was quoted. */
  if (proto == IPPROTO_UDP) {
    __sum16 old_l4c = *(__sum16 *)&q.rest[2];
    if (old_l4c) {
      __sum16 c = skiff_csum_replace4(old_l4c, old_addr, new_addr);
      c = skiff_csum_replace2(c, old_port, new_port);
      if (!c) c = 0xffff;
      *(__sum16 *)&q.rest[2] = c;
      icmp_csum = skiff_csum_replace2(icmp_csum, old_l4c, c);
    }
  } else if (qlen == sizeof(q)) {
    __sum16 old_l4c = *(__sum16 *)&q.rest[12];
    __sum16 c = skiff_csum_replace4(old_l4c, old_addr, new_addr);
    c = skiff_csum_replace2(c, old_port, new_port);
    *(__sum16 *)&q.rest[12] = c;
    icmp_csum = skiff_csum_replace2(icmp_csum, old_l4c, c);
  }

  if (bpf_skb_store_bytes(skb, q_off, &q, sizeof(struct iphdr) + 8, 0) < 0)
    return SKIFF_DROP_CSUM_UPDATE;
  if (qlen == sizeof(q) && bpf_skb_store_bytes(skb, q_off + sizeof(struct iphdr) + 8, &q.rest[4],
                                               sizeof(q.rest) - 4, 0) < 0)
    return SKIFF_DROP_CSUM_UPDATE;
  if (bpf_skb_store_bytes(skb, icmp_off + 2, &icmp_csum, sizeof(icmp_csum), 0) < 0)
    return SKIFF_DROP_CSUM_UPDATE;

  /* The outer header: the quoted destination answers as the frontend (reply entry); the
   * client's error heads to the backend (service entry). ICMP has no pseudo-header, so only
   * the IP checksum changes. */
  if (reply_entry) {
    if (pkt->saddr[0] == old_addr)
      return skiff_nat4_addr(skb, pkt, SKIFF_IPV4_SADDR_OFF, old_addr, new_addr);
  } else if (pkt->daddr[0] == old_addr) {
    return skiff_nat4_addr(skb, pkt, SKIFF_IPV4_DADDR_OFF, old_addr, new_addr);
  }
  return TC_ACT_OK;
}

#endif /* SKIFF_BPF_LIB_ICMP_NAT_H_ */
