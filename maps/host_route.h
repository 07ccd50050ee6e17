/* Host routing (docs/datapath.md "Host routing").
 *
 * skiff_endpoint_ifaces_v1: the pod-facing interfaces the agent has attached, by ifindex.
 * from_container delivers a packet for another pod of this node straight into that pod
 * (bpf_redirect_peer) only when the route's interface is in this map, i.e. a veth whose peer is a
 * pod's: anything else goes through the node's stack. Kept by the agent's attacher
 * (agent/loader/attacher.h); pinned, and pruned to the attached set at start. */
#ifndef SKIFF_MAPS_HOST_ROUTE_H_
#define SKIFF_MAPS_HOST_ROUTE_H_

#include <linux/types.h>

#include "maps/names.h"

#define SKIFF_ENDPOINT_IFACES_SIZE_DEFAULT 16384

struct skiff_endpoint_iface {
  __u32 flags; /* reserved: 0 */
};

/* skiff_host_route4_v1 (LRU hash, written by BPF only): what bpf_fib_lookup answered for a
 * packet it let host routing deliver, so that the next packets with the same lookup inputs
 * skip the FIB. Keyed by every input of that lookup (flags 0: the fib rules see the source,
 * the ingress interface, the TOS and the protocol too). An entry is used only while fresh
 * (expires, on the clock of skiff_now_ns: a routing or neighbour change shows within
 * SKIFF_HOST_ROUTE_TTL_NS), while its ifindex is still in skiff_endpoint_ifaces_v1, and for a
 * packet the cached link's MTU lets through; otherwise the FIB is asked again. */
#define SKIFF_HOST_ROUTE4_SIZE_DEFAULT 16384
#define SKIFF_HOST_ROUTE_TTL_NS 1000000000ULL /* 1 s */

struct skiff_host_route4_key {
  __be32 daddr;
  __be32 saddr;
  __u32 ifindex; /* the packet's ingress interface (the source pod's veth) */
  __u8 tos;
  __u8 proto;
  __u16 pad; /* 0 */
};

struct skiff_host_route4 {
  __u64 expires; /* ns, skiff_now_ns's clock (CLOCK_MONOTONIC) */
  __u32 ifindex; /* out interface (fib result) */
  __u32 mtu;     /* its MTU (the fib's mtu_result) */
  __u8 dmac[6];
  __u8 smac[6];
  __u32 pad; /* 0 */
};

#endif /* SKIFF_MAPS_HOST_ROUTE_H_ */
