/* Flow events: what the datapath reports to the agent's observer (docs/flows.md) through one
 * BPF ring buffer (SKIFF_MAP_EVENTS). Events are per flow event, never per forwarded packet:
 *  - SKIFF_EVENT_TRACE_NEW:   a translated flow's conntrack entries were created (svc4.h);
 *  - SKIFF_EVENT_TRACE_CLOSE: a flow's conntrack entry first turned closing (FIN or RST);
 *  - SKIFF_EVENT_DROP:        a packet was dropped or rejected, with its SKIFF_DROP_* code;
 *                             rate-limited per CPU (skiff_config.drop_events_per_sec).
 * Lost events (ring buffer full) and rate-limited drops are counted per CPU in
 * SKIFF_MAP_EVENTS_STATE. */
#ifndef SKIFF_MAPS_EVENTS_H_
#define SKIFF_MAPS_EVENTS_H_

#include <linux/types.h>

#include "maps/names.h"
#include "maps/packet.h"

/* skiff_flow_event.type */
#define SKIFF_EVENT_TRACE_NEW 1
#define SKIFF_EVENT_TRACE_CLOSE 2
#define SKIFF_EVENT_DROP 3

/* skiff_flow_event.verdict */
#define SKIFF_VERDICT_FORWARDED 1
#define SKIFF_VERDICT_DROPPED 2
#define SKIFF_VERDICT_TRANSLATED 3

/* skiff_flow_event.flags */
#define SKIFF_EVENT_F_REPLY 0x01   /* the packet was a reply (backend -> client) */
#define SKIFF_EVENT_F_XLATED 0x02  /* the xlated_* tuple is set (a service flow) */
#define SKIFF_EVENT_F_HAIRPIN 0x04 /* the pod reached itself through its service */

/* Default ring buffer size in bytes (a power of two, a multiple of the page size); the agent
 * sets it with --events-ring-size. */
#define SKIFF_EVENTS_RING_SIZE_DEFAULT (1U << 20)
/* Default drop-event budget per CPU and second (--drop-events-per-sec; 0 disables). */
#define SKIFF_DROP_EVENTS_PER_SEC_DEFAULT 100

/* One ring buffer record. Addresses and ports in network byte order. orig_* is the tuple the
 * packet had when it reached the program (client -> frontend for a service flow); xlated_*
 * the tuple after translation (client or hairpin address -> backend). For a close event
 * both describe the flow in its original direction, whichever side closed it. */
struct skiff_flow_event {
  __u64 ktime_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
  __u8 type;      /* SKIFF_EVENT_* */
  __u8 verdict;   /* SKIFF_VERDICT_* */
  __u8 direction; /* SKIFF_DIR_* (maps/metrics.h) */
  __u8 proto;     /* IPPROTO_* */
  __u8 tcp_flags; /* the packet's TCP flag byte */
  __u8 flags;     /* SKIFF_EVENT_F_* */
  __u8 family;    /* SKIFF_AF_* (maps/packet.h); 0 when the packet did not parse */
  __u8 pad;
  __s32 drop_reason; /* SKIFF_DROP_* code (negative) for drops, else 0 */
  __u32 ifindex;     /* interface of the program; 0 when unknown (close events) */
  __be32 orig_saddr;
  __be32 orig_daddr;
  __be16 orig_sport;
  __be16 orig_dport;
  __be32 xlated_saddr;
  __be32 xlated_daddr;
  __be16 xlated_sport;
  __be16 xlated_dport;
  __u32 backend_id; /* 0 when not a service flow */
  __u32 rev_nat_id; /* 0 when not a service flow */
};

/* Per-CPU state of the event emitters (one-entry PERCPU_ARRAY, SKIFF_MAP_EVENTS_STATE). */
struct skiff_events_state {
  __u64 window_start_ns; /* drop-event budget window (one second) */
  __u64 window_drops;    /* drop events emitted in the window */
  __u64 lost;            /* events not emitted: the ring buffer was full */
  __u64 rate_limited;    /* drop events suppressed by the budget */
};

/* The datapath wakes the agent's reader only with the event that takes the ring past
 * 1/SKIFF_EVENTS_WAKEUP_FRACTION full (bpf/lib/events.h, docs/flows.md); one event's share of
 * the ring is the record plus the ring's 8-byte header, 8-byte aligned. */
#define SKIFF_EVENTS_WAKEUP_FRACTION 8
#define SKIFF_EVENTS_RECORD_BYTES ((sizeof(struct skiff_flow_event) + 8 + 7) & ~7ULL)

#endif /* SKIFF_MAPS_EVENTS_H_ */
