/* Connection tracking, IPv4: one global LRU hash written only by BPF (the agent reads,
 * garbage-collects and flushes it).
 *
 * A translated connection owns two entries:
 *  - SKIFF_CT_SERVICE, keyed by the original tuple {client -> vip}: carries the chosen
 *    backend's address and port, so established flows keep translating even after the
 *    backend turns terminating or leaves the service, and even if the service is deleted;
 *  - SKIFF_CT_REPLY, keyed by the reply tuple {backend -> client}: carries the vip and port
 *    to restore as the reply's source (reverse NAT), again without any service lookup.
 * Keys hold the vip (service entry) and the client port (reply entry), so two vips that share
 * a backend never share an entry (Cilium #11810). Should one client reuse the same source port
 * towards two vips that share a backend, both flows would reach the backend with one and the
 * same 4-tuple; the second is dropped (SKIFF_DROP_CT_TUPLE_CLASH) rather than corrupting the
 * first.
 *
 * Both entries of a flow carry the same TCP state flags (FIN/RST and the first non-SYN
 * packet update both); each refreshes its own `expires` when a packet uses it. A hairpin
 * flow's reply entry is keyed {backend -> hairpin address} and its orig_addr/orig_port name
 * the client; the service entry's orig_addr/orig_port are the client's own address/port.
 *
 * A reply entry of a closing flow never translates a new handshake: a direct connection from
 * the same client port to the backend reuses its key, so a SYN or SYN-ACK hitting it, or a
 * direct SYN on its reverse tuple, deletes it (docs/datapath.md, "Stale reply entries").
 */
#ifndef SKIFF_MAPS_CT_H_
#define SKIFF_MAPS_CT_H_

#include <linux/types.h>

#include "maps/names.h"

/* skiff_ct4_key.kind */
#define SKIFF_CT_SERVICE 1 /* original direction of a service connection */
#define SKIFF_CT_REPLY 2   /* reply direction: reverse NAT */

/* skiff_ct_entry.flags */
#define SKIFF_CT_F_SEEN_NON_SYN 0x01 /* TCP: a packet without SYN passed (established) */
#define SKIFF_CT_F_TX_CLOSING 0x02   /* TCP: FIN or RST from the client side */
#define SKIFF_CT_F_RX_CLOSING 0x04   /* TCP: FIN or RST from the backend side */
#define SKIFF_CT_F_HAIRPIN 0x08      /* client == backend: source rewritten too */
#define SKIFF_CT_F_AFFINITY 0x10     /* backend chosen through session affinity */
#define SKIFF_CT_F_RESET 0x20        /* TCP: an RST passed (either side): the flow is over */

#define SKIFF_CT_MAP_SIZE_DEFAULT 262144

/* Default lifetimes in seconds (overridable at load time, see maps/config.h). */
#define SKIFF_CT_LIFETIME_TCP_SYN 60
#define SKIFF_CT_LIFETIME_TCP_ESTABLISHED 21600
#define SKIFF_CT_LIFETIME_TCP_CLOSING 10
#define SKIFF_CT_LIFETIME_NON_TCP 60

struct skiff_ct4_key {
  __be32 saddr;
  __be32 daddr;
  __be16 sport; /* ICMP echo: identifier */
  __be16 dport; /* ICMP echo: 0 */
  __u8 proto;
  __u8 kind; /* SKIFF_CT_* */
  __u16 pad;
};

struct skiff_ct_entry {
  __u64 packets; /* in this entry's direction */
  __u64 bytes;
  __u32 expires; /* CLOCK_MONOTONIC seconds after which the entry is dead */
  __u32 created; /* CLOCK_MONOTONIC seconds */
  __u32 backend_id;
  __u32 rev_nat_id;
  /* SKIFF_CT_SERVICE: the translation (backend) address and port.
   * SKIFF_CT_REPLY: the frontend (vip) address and port to restore as source. */
  __be32 nat_addr;
  /* Hairpin only: the client's real address and port, hidden behind the hairpin address. */
  __be32 orig_addr;
  __be16 nat_port;
  __be16 orig_port;
  __u8 flags;     /* SKIFF_CT_F_* */
  __u8 tcp_flags; /* union of TCP flags seen in this direction */
  __u16 pad;
};

/* Conntrack hint (SKIFF_MAP_CT4_HINT, an array with one entry): a bitmap that lets a packet skip
 * conntrack lookups that cannot hit. Bit skiff_ct_hint_bit(addr, port, proto, kind) is set
 * before any entry of that kind is created whose key has saddr:sport = addr:port (a reply
 * entry: backend address and port) or daddr:dport = addr:port (a service entry: frontend
 * address and port). Bits are never cleared by BPF; a set bit only costs a lookup.
 *
 * The bitmap is only complete once armed. A fresh map (state 0) may sit beside a conntrack map
 * that already holds entries (an upgrade, or a lost pin): the first packet moves it to
 * WARMING with armed_at = now + the longest configured lifetime, and until then every packet
 * does every lookup and sets the bit of every entry it hits. An entry not hit during that
 * window has expired by its end, so from armed_at on (state ARMED) a clear bit proves absence.
 * Whoever knows the conntrack map is empty (a test, a flush) may write ARMED directly. To clear
 * stale bits: write WARMING with a new armed_at first, wait for running programs, then zero
 * the bits. */
#define SKIFF_CT_HINT_FRESH 0
#define SKIFF_CT_HINT_WARMING 1
#define SKIFF_CT_HINT_ARMED 2
#define SKIFF_CT_HINT_BITS 65536 /* 8 KiB: small enough for kmalloc (direct-mapped pages) */

struct skiff_ct_hint {
  __u32 state;    /* SKIFF_CT_HINT_* */
  __u32 armed_at; /* WARMING: CLOCK_MONOTONIC seconds from which the bits are complete */
  __u64 bits[SKIFF_CT_HINT_BITS / 64];
};

/* Bit index for {addr, port, proto, kind} (addr and port in network byte order, as in keys).
 * Shared by BPF and C++ so tools can tell which bit a flow uses. */
static inline __u32 skiff_ct_hint_bit(__be32 addr, __be16 port, __u8 proto, __u8 kind) {
  __u32 h = addr * 0x9e3779b1U;
  h ^= ((__u32)port << 16 | (__u32)proto << 8 | kind) * 0x85ebca77U;
  h ^= h >> 15;
  h *= 0xc2b2ae35U;
  return h >> (32 - 16); /* log2(SKIFF_CT_HINT_BITS) */
}

#endif /* SKIFF_MAPS_CT_H_ */
