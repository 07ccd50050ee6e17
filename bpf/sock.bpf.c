/* Socket-level load balancing (lib/sock_lb.h, docs/socket-lb.md), attached to the cgroup v2
 * directory of --cgroup-root:
 *  sock_connect4 (cgroup/connect4):         TCP connect() and UDP connect() to a frontend;
 *  sock_sendmsg4 (cgroup/sendmsg4):         unconnected UDP sendto()/sendmsg() to a frontend;
 *  sock_recvmsg4 (cgroup/recvmsg4):         UDP replies appear to come from the frontend;
 *  sock_getpeername4 (cgroup/getpeername4): the peer of a translated socket is the frontend.
 * Shares the service and metrics maps with bpf/lxc.bpf.c (pinned by name); owns the reverse
 * map (maps/sock_lb.h). */
#include "lib/common.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/sock_lb.h"

SEC("cgroup/connect4")
int sock_connect4(struct bpf_sock_addr *ctx) { return skiff_sock4_xlate_fwd(ctx, 1); }

SEC("cgroup/sendmsg4")
int sock_sendmsg4(struct bpf_sock_addr *ctx) { return skiff_sock4_xlate_fwd(ctx, 0); }

SEC("cgroup/recvmsg4")
int sock_recvmsg4(struct bpf_sock_addr *ctx) { return skiff_sock4_xlate_rev(ctx); }

SEC("cgroup/getpeername4")
int sock_getpeername4(struct bpf_sock_addr *ctx) { return skiff_sock4_xlate_rev(ctx); }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
