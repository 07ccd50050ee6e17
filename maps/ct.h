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
  __u32 expires;  /* CLOCK_MONOTONIC seconds after which the entry is dead */
  __u32 created;  /* CLOCK_MONOTONIC seconds */
  __u32 backend_id;
  __u16 rev_nat_id;
  __u8 flags;     /* SKIFF_CT_F_* */
  __u8 tcp_flags; /* union of TCP flags seen in this direction */
  /* SKIFF_CT_SERVICE: the translation (backend) address and port.
   * SKIFF_CT_REPLY: the frontend (vip) address and port to restore as source. */
  __be32 nat_addr;
  __be16 nat_port;
  __u16 pad;
  /* Hairpin only: the client's real address and port, hidden behind the hairpin address. */
  __be32 orig_addr;
  __be16 orig_port;
  __u16 pad2;
};

#endif /* SKIFF_MAPS_CT_H_ */
