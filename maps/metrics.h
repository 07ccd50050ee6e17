/* Per-CPU datapath counters: one array slot per (direction, outcome). Outcome 0 counts
 * packets that went on (forwarded, translated or untouched); outcome 1 + SKIFF_DROP_INDEX(code)
 * counts drops by reason. Read by the agent (metrics) and agentctl. */
#ifndef SKIFF_MAPS_METRICS_H_
#define SKIFF_MAPS_METRICS_H_

#include <linux/types.h>

#include "maps/drop_reasons.h"
#include "maps/names.h"

#define SKIFF_DIR_FROM_CONTAINER 0 /* tc ingress on a pod's host-side veth */
#define SKIFF_DIR_TO_CONTAINER 1   /* tc egress on a pod's host-side veth */
#define SKIFF_DIR_FROM_NETDEV 2
#define SKIFF_DIR_TO_NETDEV 3
#define SKIFF_DIR_XDP 4
/* cgroup socket hooks (socket-level LB): one count per connect/sendmsg */
#define SKIFF_DIR_SOCK 5
/* from_container packets host routing delivered straight into a local pod (they skip that
 * pod's to_container) */
#define SKIFF_DIR_HOST_ROUTED 6
#define SKIFF_DIR_COUNT 8 /* room to grow without a layout change */

#define SKIFF_METRICS_OUTCOMES 64 /* 1 + room for every drop reason */
#define SKIFF_METRICS_FORWARDED 0
#define SKIFF_METRICS_ENTRIES (SKIFF_DIR_COUNT * SKIFF_METRICS_OUTCOMES)

/* Array index for a direction and either 0 (forwarded) or a negative drop code. */
#define SKIFF_METRICS_INDEX(dir, code) \
  ((dir)*SKIFF_METRICS_OUTCOMES + ((code) < 0 ? 1 + SKIFF_DROP_INDEX(code) : 0))

struct skiff_metrics_val {
  __u64 packets;
  __u64 bytes;
};

#endif /* SKIFF_MAPS_METRICS_H_ */
