/* Socket-level load balancing (bpf/sock.bpf.c, docs/socket-lb.md), IPv4: cgroup connect4 and
 * sendmsg4 rewrite a socket's destination from a frontend to a backend chosen from the same
 * service maps the tc datapath uses (maps/lb.h); recvmsg4 and getpeername4 rewrite the backend
 * back to the frontend through the reverse map below.
 *
 * reverse map (LRU): {socket cookie, backend address, backend port} -> {frontend address,
 * frontend port, rev-NAT id}. Written by BPF when it translates a connect() or sendmsg();
 * read by recvmsg4 (the source of a UDP reply) and getpeername4. An entry whose frontend is
 * gone (its rev-NAT id no longer names that address:port) is deleted on sight and not used.
 * Socket cookies are never reused while the machine runs, so entries of closed sockets are
 * harmless and LRU eviction bounds them.
 *
 * Scope (skiff_sock_config, set before load): the sockets of the agent's own network namespace
 * (netns_cookie, the node's host namespace) always; with SKIFF_SOCK_F_PODS (--socket-lb-scope
 * all) the sockets of every other namespace too, i.e. pods, except towards sessionAffinity
 * frontends, whose pod traffic keeps the tc path (affinity is keyed by the pod's address, which
 * a connect() does not know yet). Without the flag pods keep the tc path. */
#ifndef SKIFF_MAPS_SOCK_LB_H_
#define SKIFF_MAPS_SOCK_LB_H_

#include <linux/types.h>

#include "maps/names.h"

#define SKIFF_SOCK4_REVNAT_SIZE_DEFAULT 65536

struct skiff_sock4_revnat_key {
  __u64 cookie;   /* bpf_get_socket_cookie() */
  __be32 address; /* backend */
  __be16 port;    /* backend */
  __u16 pad;      /* zero */
};

struct skiff_sock4_revnat_val {
  __be32 address;   /* frontend */
  __be16 port;      /* frontend */
  __u16 pad;        /* zero */
  __u32 rev_nat_id; /* the frontend's, re-checked against the revnat map on use */
};

/* Load-time configuration of the socket programs (`skiff_sock_config` in their .rodata). */
#define SKIFF_SOCK_F_PODS 0x1 /* translate sockets of other network namespaces (pods) too */

struct skiff_sock_config {
  __u64 netns_cookie; /* the node's network namespace; 0 with no flags: nothing is translated */
  __u32 flags;        /* SKIFF_SOCK_F_* */
  __u32 pad;
};

#endif /* SKIFF_MAPS_SOCK_LB_H_ */
