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
 * Only sockets of one network namespace are translated: skiff_sock_config.netns_cookie, the
 * agent's own (the node's host namespace), set before load. Pods keep the tc path. */
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
struct skiff_sock_config {
  __u64 netns_cookie; /* the only network namespace whose sockets are translated; 0: none */
};

#endif /* SKIFF_MAPS_SOCK_LB_H_ */
