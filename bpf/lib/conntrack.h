/* Service conntrack (maps/ct.h): lookups that ignore expired entries, per-packet accounting,
 * and the TCP state that decides an entry's lifetime. Only the service datapath creates
 * entries (svc4.h); the agent garbage-collects expired ones. */
#ifndef SKIFF_BPF_LIB_CONNTRACK_H_
#define SKIFF_BPF_LIB_CONNTRACK_H_

#include <bpf/bpf_core_read.h>

#include "lib/config.h"
#include "lib/events.h"
#include "lib/maps.h"

#define SKIFF_CT_F_TCP_STATE \
  (SKIFF_CT_F_SEEN_NON_SYN | SKIFF_CT_F_TX_CLOSING | SKIFF_CT_F_RX_CLOSING | SKIFF_CT_F_RESET)
#define SKIFF_CT_F_CLOSING (SKIFF_CT_F_TX_CLOSING | SKIFF_CT_F_RX_CLOSING)
#define SKIFF_NSEC_PER_SEC 1000000000ULL

/* CLOCK_MONOTONIC in nanoseconds, at tick resolution where the kernel allows (5.11+): the
 * coarse clock reads the timekeeper instead of the clock source, which in a VM (kvm-clock)
 * saves ~50 ns per packet; lifetimes are in seconds, a tick of lag does not matter. The CO-RE
 * check resolves at load time, so 5.10 kernels load the precise variant. */
static __always_inline __u64 skiff_now_ns(void) {
  if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ktime_get_coarse_ns))
    return bpf_ktime_get_coarse_ns();
  return bpf_ktime_get_ns();
}

/* CLOCK_MONOTONIC seconds: the clock of skiff_ct_entry.expires/created. */
static __always_inline __u32 skiff_now_sec(void) {
  return (__u32)(skiff_now_ns() / SKIFF_NSEC_PER_SEC);
}

static __always_inline void skiff_ct4_key_init(struct skiff_ct4_key *k, __be32 saddr, __be32 daddr,
                                               __be16 sport, __be16 dport, __u8 proto, __u8 kind) {
  k->saddr = saddr;
  k->daddr = daddr;
  k->sport = sport;
  k->dport = dport;
  k->proto = proto;
  k->kind = kind;
  k->pad = 0; /* the kernel hashes every key byte */
}

static __always_inline __u32 skiff_ct_lifetime(__u8 proto, __u8 flags) {
  if (proto != IPPROTO_TCP) return skiff_config.ct_lifetime_non_tcp;
  if (flags & (SKIFF_CT_F_TX_CLOSING | SKIFF_CT_F_RX_CLOSING))
    return skiff_config.ct_lifetime_tcp_closing;
  if (flags & SKIFF_CT_F_SEEN_NON_SYN) return skiff_config.ct_lifetime_tcp_established;
  return skiff_config.ct_lifetime_tcp_syn;
}

/* Entry flags after a TCP packet: the first packet without SYN (the handshake's final ACK)
 * makes the flow established; FIN or RST from a side marks that side closing; an RST also
 * marks the whole flow reset (no socket is left on either end: its SNAT port is free). */
static __always_inline __u8 skiff_ct_tcp_next(__u8 flags, __u8 tcp_flags, int reply) {
  if (!(tcp_flags & SKIFF_TCP_SYN)) flags |= SKIFF_CT_F_SEEN_NON_SYN;
  if (tcp_flags & (SKIFF_TCP_FIN | SKIFF_TCP_RST))
    flags |= reply ? SKIFF_CT_F_RX_CLOSING : SKIFF_CT_F_TX_CLOSING;
  if (tcp_flags & SKIFF_TCP_RST) flags |= SKIFF_CT_F_RESET;
  return flags;
}

/* A pure SYN on a closing flow opens a new connection on a reused tuple: it must be
 * load-balanced afresh rather than follow the old, finishing one. */
static __always_inline int skiff_ct_is_reopen(const struct skiff_ct_entry *e, __u8 tcp_flags) {
  return (tcp_flags & (SKIFF_TCP_SYN | SKIFF_TCP_ACK)) == SKIFF_TCP_SYN &&
         (e->flags & (SKIFF_CT_F_TX_CLOSING | SKIFF_CT_F_RX_CLOSING));
}

/* A reply entry outlives its flow by the closing lifetime, and its key {backend -> client} is
 * also the reply tuple of a direct connection from the same client port to the backend's pod
 * address. A segment carrying SYN (SYN-ACK, or a SYN) on a closing flow starts a new handshake
 * on that tuple: it belongs to the new connection, never to the finishing one, and must not be
 * reverse-NATed. (A live, non-closing entry is genuinely ambiguous and keeps translating;
 * docs/datapath.md.) */
static __always_inline int skiff_ct_reply_is_stale(const struct skiff_ct_entry *e, __u8 tcp_flags) {
  return (tcp_flags & SKIFF_TCP_SYN) &&
         (e->flags & (SKIFF_CT_F_TX_CLOSING | SKIFF_CT_F_RX_CLOSING));
}

/* The entry for k, or NULL when absent or expired (an expired entry is dead even before the
 * agent's GC removes it). */
static __always_inline struct skiff_ct_entry *skiff_ct4_lookup(const struct skiff_ct4_key *k,
                                                               __u32 *now) {
  struct skiff_ct_entry *e = bpf_map_lookup_elem(&SKIFF_MAP_CT4, k);
  if (!e) return 0;
  if (!*now) *now = skiff_now_sec();
  if (e->expires < *now) return 0;
  return e;
}

/* ---- conntrack hint (maps/ct.h): which lookups may hit ---- */

static __always_inline struct skiff_ct_hint *skiff_ct_hint_get(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&SKIFF_MAP_CT4_HINT, &zero);
}

static __always_inline __u32 skiff_ct_lifetime_max(void) {
  __u32 m = skiff_config.ct_lifetime_tcp_syn;
  if (skiff_config.ct_lifetime_tcp_established > m) m = skiff_config.ct_lifetime_tcp_established;
  if (skiff_config.ct_lifetime_tcp_closing > m) m = skiff_config.ct_lifetime_tcp_closing;
  if (skiff_config.ct_lifetime_non_tcp > m) m = skiff_config.ct_lifetime_non_tcp;
  return m;
}

/* Whether the bitmap proves absence. Reads the clock only while warming up. */
static __always_inline int skiff_ct_hint_armed(struct skiff_ct_hint *h, __u32 *now) {
  __u32 state = h->state;
  if (likely(state == SKIFF_CT_HINT_ARMED)) return 1;
  if (!*now) *now = skiff_now_sec();
  if (state == SKIFF_CT_HINT_FRESH) {
    /* Entries older than the map may exist: wait until they must have expired. Racing CPUs
     * write near-identical values. */
    h->armed_at = *now + skiff_ct_lifetime_max() + 1;
    h->state = SKIFF_CT_HINT_WARMING;
    return 0;
  }
  if ((__s32)(*now - h->armed_at) >= 0) {
    h->state = SKIFF_CT_HINT_ARMED;
    return 1;
  }
  return 0;
}

static __always_inline int skiff_ct_hint_test(const struct skiff_ct_hint *h, __u32 bit) {
  return (h->bits[(bit / 64) & (SKIFF_CT_HINT_BITS / 64 - 1)] >> (bit % 64)) & 1;
}

static __always_inline void skiff_ct_hint_set(struct skiff_ct_hint *h, __u32 bit) {
  __u64 *w = &h->bits[(bit / 64) & (SKIFF_CT_HINT_BITS / 64 - 1)];
  __u64 m = 1ULL << (bit % 64);
  if (!(*w & m)) __sync_fetch_and_or(w, m);
}

/* The other entry of the same flow. */
static __always_inline void skiff_ct4_peer_key(const struct skiff_ct4_key *k,
                                               const struct skiff_ct_entry *e,
                                               struct skiff_ct4_key *peer) {
  int hairpin = e->flags & SKIFF_CT_F_HAIRPIN;
  if (k->kind == SKIFF_CT_SERVICE)
    skiff_ct4_key_init(peer, e->nat_addr, hairpin ? skiff_config.hairpin_ipv4 : k->saddr,
                       e->nat_port, k->sport, k->proto, SKIFF_CT_REPLY);
  else
    skiff_ct4_key_init(peer, hairpin ? e->orig_addr : k->daddr, e->nat_addr, k->dport, e->nat_port,
                       k->proto, SKIFF_CT_SERVICE);
}

/* Accounts one packet on a live entry and refreshes its lifetime. TCP state changes are rare
 * (handshake end, FIN, RST) and are copied to the peer entry, so both directions expire on
 * the same schedule without a second lookup per packet. */
static __always_inline void skiff_ct4_account(const struct skiff_ct4_key *k,
                                              struct skiff_ct_entry *e, __u8 tcp_flags, __u32 bytes,
                                              __u32 now) {
  /* Plain adds, not locked ones: the counters are for observation, and two CPUs updating one
   * flow in the same instant may lose an increment; a locked add costs ~6 ns each here. */
  e->packets += 1;
  e->bytes += bytes;
  if (k->proto == IPPROTO_TCP) {
    if ((e->tcp_flags | tcp_flags) != e->tcp_flags) e->tcp_flags |= tcp_flags;
    __u8 next = skiff_ct_tcp_next(e->flags, tcp_flags, k->kind == SKIFF_CT_REPLY);
    if (next != e->flags) {
      if (!(e->flags & SKIFF_CT_F_CLOSING) && (next & SKIFF_CT_F_CLOSING))
        skiff_event_flow_close(k, e, tcp_flags);
      e->flags = next;
      struct skiff_ct4_key pk;
      skiff_ct4_peer_key(k, e, &pk);
      struct skiff_ct_entry *peer = bpf_map_lookup_elem(&SKIFF_MAP_CT4, &pk);
      if (peer) {
        peer->flags |= next & SKIFF_CT_F_TCP_STATE;
        peer->expires = now + skiff_ct_lifetime(IPPROTO_TCP, peer->flags);
      }
    }
  }
  __u32 expires = now + skiff_ct_lifetime(k->proto, e->flags);
  /* Skip the store within the same second: keeps the cache line clean on busy flows. */
  if (e->expires != expires) e->expires = expires;
}

#endif /* SKIFF_BPF_LIB_CONNTRACK_H_ */
