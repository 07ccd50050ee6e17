/* North-south SNAT (NodePort, externalIP and LoadBalancer traffic to a backend on another
 * node), IPv4: one LRU hash written only by BPF (bpf/lib/snat.h), two entries per flow,
 * Cilium's layout:
 *
 *  - SKIFF_NAT_OUT, keyed by the flow after DNAT {client:cport -> backend:bport}: the node
 *    address and allocated port the client's packets leave with;
 *  - SKIFF_NAT_IN, keyed by the reply as it comes back {backend:bport -> node:port}: the
 *    client address and port to restore as the reply's destination.
 *
 * A port is allocated from [port_min, port_max] (skiff_nat_config, load time) at random, with
 * up to SKIFF_NAT_RETRIES attempts; an SKIFF_NAT_IN key only has to be unique per
 * {backend:bport, node address}, so the range is per remote endpoint. An existing IN entry is
 * taken over when its flow is dead (its conntrack reply entry {backend:bport -> client:cport}
 * is absent or expired), so the NAT map needs no timers of its own. All retries on live
 * entries -> SKIFF_DROP_NAT_NO_PORT; an update error -> SKIFF_DROP_NAT_MAP_FULL.
 *
 * The default range 61000-65535 lies above Linux' ip_local_port_range (32768-60999) and the
 * NodePort range (30000-32767), so translated flows never take a port the node's own sockets
 * use.
 *
 * node addresses: ifindex of a --devices device -> its IPv4 address (the SNAT source of flows
 * that arrived on it). Written by the agent at start.
 */
#ifndef SKIFF_MAPS_NAT_H_
#define SKIFF_MAPS_NAT_H_

#include <linux/types.h>

#include "maps/names.h"

/* skiff_nat4_key.dir */
#define SKIFF_NAT_OUT 1
#define SKIFF_NAT_IN 2

#define SKIFF_NAT_MAP_SIZE_DEFAULT 131072 /* entries: two per translated flow */
#define SKIFF_NODE_ADDR_MAP_SIZE 256      /* devices */
#define SKIFF_NAT_PORT_MIN_DEFAULT 61000
#define SKIFF_NAT_PORT_MAX_DEFAULT 65535
#define SKIFF_NAT_RETRIES 16

struct skiff_nat4_key {
  __be32 saddr;
  __be32 daddr;
  __be16 sport;
  __be16 dport;
  __u8 proto;
  __u8 dir; /* SKIFF_NAT_* */
  __u16 pad;
};

struct skiff_nat4_entry {
  __be32 to_addr; /* OUT: node address; IN: client address */
  __be16 to_port; /* OUT: allocated port; IN: client port */
  __u16 pad;
  __u32 created; /* CLOCK_MONOTONIC seconds */
  __u32 pad2;
};

struct skiff_node_addr4 {
  __be32 address;
  __u32 pad;
};

/* Load-time configuration of the NodePort program (`skiff_nat_config` in its .rodata). Ports in
 * host byte order. */
struct skiff_nat_config {
  __u16 port_min;
  __u16 port_max;
  __u32 pad;
};

#endif /* SKIFF_MAPS_NAT_H_ */
