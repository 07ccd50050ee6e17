/* Host routing (docs/datapath.md "Host routing"): the pod-facing interfaces the agent has
 * attached, by ifindex. from_container delivers a packet for another pod of this node straight
 * into that pod (bpf_redirect_peer) only when the route's interface is in this map, i.e. a veth
 * whose peer is a pod's: anything else goes through the node's stack. Kept by the agent's
 * attacher (agent/loader/attacher.h); pinned, and pruned to the attached set at start. */
#ifndef SKIFF_MAPS_HOST_ROUTE_H_
#define SKIFF_MAPS_HOST_ROUTE_H_

#include <linux/types.h>

#include "maps/names.h"

#define SKIFF_ENDPOINT_IFACES_SIZE_DEFAULT 16384

struct skiff_endpoint_iface {
  __u32 flags; /* reserved: 0 */
};

#endif /* SKIFF_MAPS_HOST_ROUTE_H_ */
