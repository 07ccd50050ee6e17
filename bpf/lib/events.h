/* Flow events into the ring buffer (maps/events.h, docs/flows.md). Every emitter runs on a
 * slow path only: a new translated flow, the first FIN/RST of a flow, a drop. Reserving never
 * blocks; when the ring buffer is full the event is counted as lost (per CPU). */
#ifndef SKIFF_BPF_LIB_EVENTS_H_
#define SKIFF_BPF_LIB_EVENTS_H_

#include "lib/common.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "maps/ct.h"
#include "maps/events.h"
#include "maps/metrics.h"

#define SKIFF_EVENTS_WINDOW_NS 1000000000ULL

/* Commits a reserved event without waking the reader, unless this event takes the ring past
 * 1/SKIFF_EVENTS_WAKEUP_FRACTION full (maps/events.h): the agent's reader drains the ring on a
 * short timer (agent/observe/flow_reader.cc). A wakeup is an irq_work interrupt on the CPU that
 * carries the packet, which costs microseconds in a VM (≈ 3 µs measured here); with the kernel's
 * default flags there was one for every event that found the reader caught up, two or three
 * per short connection. Waking only on the crossing, not on every event above it, keeps a
 * sustained burst from paying it per event; an event whose crossing a concurrent reservation
 * hid is still read at the next timer tick. */
static __always_inline void skiff_event_submit(struct skiff_flow_event *ev) {
  __u64 used = bpf_ringbuf_query(&SKIFF_MAP_EVENTS, BPF_RB_AVAIL_DATA); /* this one included */
  __u64 mark =
      bpf_ringbuf_query(&SKIFF_MAP_EVENTS, BPF_RB_RING_SIZE) / SKIFF_EVENTS_WAKEUP_FRACTION;
  int crossing = used >= mark && used < mark + SKIFF_EVENTS_RECORD_BYTES;
  bpf_ringbuf_submit(ev, crossing ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline struct skiff_events_state *skiff_events_state_get(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&SKIFF_MAP_EVENTS_STATE, &zero);
}

/* A zeroed record stamped with the time, or NULL (counted as lost). */
static __always_inline struct skiff_flow_event *skiff_event_reserve(__u8 type, __u8 verdict) {
  struct skiff_flow_event *ev = bpf_ringbuf_reserve(&SKIFF_MAP_EVENTS, sizeof(*ev), 0);
  if (!ev) {
    struct skiff_events_state *st = skiff_events_state_get();
    if (st) st->lost++; /* per-CPU slot: no other writer */
    return 0;
  }
  __builtin_memset(ev, 0, sizeof(*ev));
  ev->ktime_ns = bpf_ktime_get_ns();
  ev->type = type;
  ev->verdict = verdict;
  return ev;
}

/* A translated flow's conntrack entries were just created. e is the service entry (nat_* =
 * the backend); pkt still holds the untranslated tuple; ifindex is the device it came in on
 * (skb->ifindex in tc, ingress_ifindex in XDP). */
static __always_inline void skiff_event_flow_new_on(__u32 ifindex, const struct skiff_pkt *pkt,
                                                    const struct skiff_ct_entry *e) {
  struct skiff_flow_event *ev =
      skiff_event_reserve(SKIFF_EVENT_TRACE_NEW, SKIFF_VERDICT_TRANSLATED);
  if (!ev) return;
  int hairpin = e->flags & SKIFF_CT_F_HAIRPIN;
  ev->direction = SKIFF_DIR_FROM_CONTAINER;
  ev->family = SKIFF_AF_INET;
  ev->proto = pkt->l4_proto;
  ev->tcp_flags = pkt->tcp_flags;
  ev->flags = SKIFF_EVENT_F_XLATED | (hairpin ? SKIFF_EVENT_F_HAIRPIN : 0);
  ev->ifindex = ifindex;
  ev->orig_saddr = pkt->saddr[0];
  ev->orig_daddr = pkt->daddr[0];
  ev->orig_sport = pkt->sport;
  ev->orig_dport = pkt->dport;
  ev->xlated_saddr = hairpin ? skiff_config.hairpin_ipv4 : pkt->saddr[0];
  ev->xlated_daddr = e->nat_addr;
  ev->xlated_sport = pkt->sport;
  ev->xlated_dport = e->nat_port;
  ev->backend_id = e->backend_id;
  ev->rev_nat_id = e->rev_nat_id;
  skiff_event_submit(ev);
}

static __always_inline void skiff_event_flow_new(const struct __sk_buff *skb,
                                                 const struct skiff_pkt *pkt,
                                                 const struct skiff_ct_entry *e) {
  skiff_event_flow_new_on(skb->ifindex, pkt, e);
}

/* A flow's entry k/e turns closing (FIN or RST seen for the first time). Reported in the
 * flow's original direction whichever entry the packet used. */
static __always_inline void skiff_event_flow_close(const struct skiff_ct4_key *k,
                                                   const struct skiff_ct_entry *e, __u8 tcp_flags) {
  struct skiff_flow_event *ev =
      skiff_event_reserve(SKIFF_EVENT_TRACE_CLOSE, SKIFF_VERDICT_FORWARDED);
  if (!ev) return;
  int hairpin = e->flags & SKIFF_CT_F_HAIRPIN;
  ev->direction = SKIFF_DIR_FROM_CONTAINER;
  ev->family = SKIFF_AF_INET;
  ev->proto = k->proto;
  ev->tcp_flags = tcp_flags;
  ev->flags = SKIFF_EVENT_F_XLATED | (hairpin ? SKIFF_EVENT_F_HAIRPIN : 0);
  if (k->kind == SKIFF_CT_SERVICE) {
    ev->orig_saddr = k->saddr;
    ev->orig_daddr = k->daddr;
    ev->orig_sport = k->sport;
    ev->orig_dport = k->dport;
    ev->xlated_saddr = hairpin ? skiff_config.hairpin_ipv4 : k->saddr;
    ev->xlated_daddr = e->nat_addr;
    ev->xlated_sport = k->sport;
    ev->xlated_dport = e->nat_port;
  } else {
    ev->flags |= SKIFF_EVENT_F_REPLY;
    ev->orig_saddr = e->orig_addr;
    ev->orig_daddr = e->nat_addr;
    ev->orig_sport = e->orig_port;
    ev->orig_dport = e->nat_port;
    ev->xlated_saddr = k->daddr;
    ev->xlated_daddr = k->saddr;
    ev->xlated_sport = k->dport;
    ev->xlated_dport = k->sport;
  }
  ev->backend_id = e->backend_id;
  ev->rev_nat_id = e->rev_nat_id;
  skiff_event_submit(ev);
}

/* A packet dropped (or rejected) with a SKIFF_DROP_* code. At most
 * skiff_config.drop_events_per_sec per CPU in each one-second window; the rest are counted
 * as rate-limited. */
static __always_inline void skiff_event_drop_on(__u32 ifindex, const struct skiff_pkt *pkt,
                                                __u8 dir, int code) {
  __u32 budget = skiff_config.drop_events_per_sec;
  if (!budget) return;
  struct skiff_events_state *st = skiff_events_state_get();
  if (!st) return;
  __u64 now = bpf_ktime_get_ns();
  if (now - st->window_start_ns >= SKIFF_EVENTS_WINDOW_NS) {
    st->window_start_ns = now;
    st->window_drops = 0;
  }
  if (st->window_drops >= budget) {
    st->rate_limited++;
    return;
  }
  st->window_drops++;
  struct skiff_flow_event *ev = skiff_event_reserve(SKIFF_EVENT_DROP, SKIFF_VERDICT_DROPPED);
  if (!ev) return;
  ev->direction = dir;
  ev->drop_reason = code;
  ev->ifindex = ifindex;
  ev->family = pkt->family;
  ev->proto = pkt->l4_proto;
  ev->tcp_flags = pkt->tcp_flags;
  if (pkt->family == SKIFF_AF_INET) {
    ev->orig_saddr = pkt->saddr[0];
    ev->orig_daddr = pkt->daddr[0];
    ev->orig_sport = pkt->sport;
    ev->orig_dport = pkt->dport;
  }
  skiff_event_submit(ev);
}

static __always_inline void skiff_event_drop(const struct __sk_buff *skb,
                                             const struct skiff_pkt *pkt, __u8 dir, int code) {
  skiff_event_drop_on(skb->ifindex, pkt, dir, code);
}

#endif /* SKIFF_BPF_LIB_EVENTS_H_ */
