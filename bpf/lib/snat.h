/* NodePort SNAT (maps/nat.h): port allocation with bounded random retries, the NAT entries of
 * a flow, and the rewrites both ways. Used by the node-device programs (lib/nodeport.h). */
#ifndef SKIFF_BPF_LIB_SNAT_H_
#define SKIFF_BPF_LIB_SNAT_H_

#include <asm-generic/errno-base.h>

#include "lib/conntrack.h"
#include "lib/nat.h"
#include "maps/nat.h"

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, SKIFF_NAT_MAP_SIZE_DEFAULT);
  __type(key, struct skiff_nat4_key);
  __type(value, struct skiff_nat4_entry);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_NAT4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SKIFF_NODE_ADDR_MAP_SIZE);
  __type(key, __u32); /* ifindex */
  __type(value, struct skiff_node_addr4);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_NODE_ADDR4 SEC(".maps");

const volatile struct skiff_nat_config skiff_nat_config = {
    .port_min = SKIFF_NAT_PORT_MIN_DEFAULT,
    .port_max = SKIFF_NAT_PORT_MAX_DEFAULT,
};

static __always_inline void skiff_nat4_key_init(struct skiff_nat4_key *k, __be32 saddr,
                                                __be32 daddr, __be16 sport, __be16 dport,
                                                __u8 proto, __u8 dir) {
  k->saddr = saddr;
  k->daddr = daddr;
  k->sport = sport;
  k->dport = dport;
  k->proto = proto;
  k->dir = dir;
  k->pad = 0;
}

/* The IPv4 address of device ifindex, or 0. */
static __always_inline __be32 skiff_node_addr4(__u32 ifindex) {
  struct skiff_node_addr4 *a = bpf_map_lookup_elem(&SKIFF_MAP_NODE_ADDR4, &ifindex);
  return a ? a->address : 0;
}

static __always_inline int skiff_snat4_port_in_range(__be16 port) {
  __u16 p = bpf_ntohs(port);
  return p >= skiff_nat_config.port_min && p <= skiff_nat_config.port_max;
}

/* Whether the flow that owns IN entry {backend:bport -> node:port} -> client:cport is alive:
 * its conntrack reply entry {backend:bport -> client:cport} exists, has not expired, and no
 * RST has ended it. A reset flow's entries linger for the closing lifetime (for tools and
 * stray segments), but neither end holds a socket on the tuple any more, so its port is free
 * at once, as Linux NAT reuses the tuple of a closed conntrack. (A FIN leaves the port held:
 * the other side may still be sending, or in LAST-ACK.) */
static __always_inline int skiff_snat4_in_use(const struct skiff_nat4_key *ik,
                                              const struct skiff_nat4_entry *ie, __u32 *now) {
  struct skiff_ct4_key rk;
  skiff_ct4_key_init(&rk, ik->saddr, ie->to_addr, ik->sport, ie->to_port, ik->proto,
                     SKIFF_CT_REPLY);
  struct skiff_ct_entry *e = skiff_ct4_lookup(&rk, now);
  return e && !(e->flags & SKIFF_CT_F_RESET);
}

/* Allocates node:port for the flow client:cport -> backend:bport and writes both entries.
 * Returns 0 with *port set, or SKIFF_DROP_NAT_NO_PORT / SKIFF_DROP_NAT_MAP_FULL. */
static __always_inline int skiff_snat4_alloc(__be32 client, __be16 cport, __be32 backend,
                                             __be16 bport, __u8 proto, __be32 node, __u32 *now,
                                             __be16 *port) {
  __u32 min = skiff_nat_config.port_min, max = skiff_nat_config.port_max;
  __u32 range = max >= min ? max - min + 1 : 1;
  if (!*now) *now = skiff_now_sec();
  struct skiff_nat4_key ik;
  struct skiff_nat4_entry ie = {
      .to_addr = client, .to_port = cport, .pad = 0, .created = *now, .pad2 = 0};
  skiff_nat4_key_init(&ik, backend, node, bport, 0, proto, SKIFF_NAT_IN);
  int found = 0;
  for (int i = 0; i < SKIFF_NAT_RETRIES; i++) {
    ik.dport = bpf_htons((__u16)(min + bpf_get_prandom_u32() % range));
    long err = bpf_map_update_elem(&SKIFF_MAP_NAT4, &ik, &ie, BPF_NOEXIST);
    if (!err) {
      found = 1;
      break;
    }
    if (err != -EEXIST) return SKIFF_DROP_NAT_MAP_FULL;
    struct skiff_nat4_entry *old = bpf_map_lookup_elem(&SKIFF_MAP_NAT4, &ik);
    /* Taken by this very flow (a retransmitted first packet), or by a dead one: take it. */
    if (old &&
        ((old->to_addr == client && old->to_port == cport) || !skiff_snat4_in_use(&ik, old, now))) {
      if (bpf_map_update_elem(&SKIFF_MAP_NAT4, &ik, &ie, BPF_ANY) < 0)
        return SKIFF_DROP_NAT_MAP_FULL;
      found = 1;
      break;
    }
  }
  if (!found) return SKIFF_DROP_NAT_NO_PORT;
  struct skiff_nat4_key ok;
  skiff_nat4_key_init(&ok, client, backend, cport, bport, proto, SKIFF_NAT_OUT);
  struct skiff_nat4_entry oe = {
      .to_addr = node, .to_port = ik.dport, .pad = 0, .created = *now, .pad2 = 0};
  if (bpf_map_update_elem(&SKIFF_MAP_NAT4, &ok, &oe, BPF_ANY) < 0) {
    bpf_map_delete_elem(&SKIFF_MAP_NAT4, &ik);
    return SKIFF_DROP_NAT_MAP_FULL;
  }
  *port = ik.dport;
  return 0;
}

/* client:cport -> backend becomes node:port -> backend. */
static __always_inline int skiff_snat4_rewrite_src(struct __sk_buff *skb,
                                                   const struct skiff_pkt *pkt, __be32 client,
                                                   __be16 cport, __be32 node, __be16 port) {
  int rc = skiff_nat4_addr(skb, pkt, SKIFF_IPV4_SADDR_OFF, client, node);
  if (rc) return rc;
  if (port != cport) return skiff_nat4_port(skb, pkt, SKIFF_L4_SPORT_OFF, cport, port);
  return 0;
}

#endif /* SKIFF_BPF_LIB_SNAT_H_ */
