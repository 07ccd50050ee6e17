/* Socket-level load balancing for the node's own sockets (maps/sock_lb.h, docs/socket-lb.md):
 * a connect() or sendmsg() to a frontend gets a backend as its destination before the socket
 * ever sends a packet, so host processes reach ClusterIPs and the node's own NodePorts,
 * externalIPs and LoadBalancer IPs without any per-packet translation. The frontend lookup
 * and backend selection are the tc datapath's (lib/lb.h: affinity, Maglev, terminating
 * fallback, internalTrafficPolicy Local). externalTrafficPolicy Local does not restrict
 * node-originated traffic (kube-proxy sends LOCAL-source traffic to the cluster-wide chain):
 * SKIFF_LB_LOCAL_FLAGS stays at its default (internalTrafficPolicy only).
 *
 * Not translated: sockets of other network namespaces (pods: the tc path serves them) unless
 * SKIFF_SOCK_F_PODS (--socket-lb-scope all), and even then not towards sessionAffinity
 * frontends (the tc path keys affinity by the pod's address); 127.0.0.0/8 destinations (a NodePort
 * is not served on localhost, as kube-proxy's nftables mode), protocols other than TCP and UDP. */
#ifndef SKIFF_BPF_LIB_SOCK_LB_H_
#define SKIFF_BPF_LIB_SOCK_LB_H_

#include <asm-generic/errno.h>

#include "lib/events.h"
#include "lib/lb.h"
#include "lib/metrics.h"
#include "maps/sock_lb.h"

/* cgroup sock_addr verdicts. */
#define SKIFF_SOCK_REJECT 0
#define SKIFF_SOCK_PROCEED 1

const volatile struct skiff_sock_config skiff_sock_config = {.netns_cookie = 0, .flags = 0};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, SKIFF_SOCK4_REVNAT_SIZE_DEFAULT);
  __type(key, struct skiff_sock4_revnat_key);
  __type(value, struct skiff_sock4_revnat_val);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_SOCK4_REVNAT SEC(".maps");

/* Whose socket this is: SKIFF_SOCK_NODE (the agent's namespace), SKIFF_SOCK_POD (another
 * namespace, translated with SKIFF_SOCK_F_PODS) or SKIFF_SOCK_OUT (left alone). */
#define SKIFF_SOCK_OUT 0
#define SKIFF_SOCK_NODE 1
#define SKIFF_SOCK_POD 2
static __always_inline int skiff_sock_scope(struct bpf_sock_addr *ctx) {
  __u64 node = skiff_sock_config.netns_cookie;
  if (node && bpf_get_netns_cookie(ctx) == node) return SKIFF_SOCK_NODE;
  return (skiff_sock_config.flags & SKIFF_SOCK_F_PODS) ? SKIFF_SOCK_POD : SKIFF_SOCK_OUT;
}

static __always_inline int skiff_sock_is_loopback4(__be32 a) {
  return (a & bpf_htonl(0xff000000)) == bpf_htonl(0x7f000000);
}

/* The 16 bits of a socket cookie that stand in for a source port in the Maglev hash: the
 * source port of a connect() is not chosen yet, the cookie is unique per socket. */
static __always_inline __be16 skiff_sock_cookie_port(__u64 cookie) {
  __u32 x = (__u32)cookie ^ (__u32)(cookie >> 32);
  return (__be16)(x ^ (x >> 16));
}

/* A connect() was translated: one flow event (direction SKIFF_DIR_SOCK) as the tc path reports
 * a new service flow. The source is not chosen yet at connect() (0.0.0.0:0). Unconnected
 * sendmsg() translates every datagram, so it reports nothing (events are per flow). */
static __always_inline void skiff_event_sock_xlate(struct bpf_sock_addr *ctx, __be32 vip,
                                                   __be16 vport, const struct skiff_lb4_choice *c,
                                                   __u32 rev_nat_id) {
  struct skiff_flow_event *ev =
      skiff_event_reserve(SKIFF_EVENT_TRACE_NEW, SKIFF_VERDICT_TRANSLATED);
  if (!ev) return;
  ev->direction = SKIFF_DIR_SOCK;
  ev->family = SKIFF_AF_INET;
  ev->proto = (__u8)ctx->protocol;
  ev->flags = SKIFF_EVENT_F_XLATED;
  ev->orig_daddr = vip;
  ev->orig_dport = vport;
  ev->xlated_daddr = c->address;
  ev->xlated_dport = c->port;
  ev->backend_id = c->backend_id;
  ev->rev_nat_id = rev_nat_id;
  skiff_event_submit(ev);
}

/* connect4 / sendmsg4: destination frontend -> backend. Returns SKIFF_SOCK_PROCEED (maybe
 * translated) or SKIFF_SOCK_REJECT with the error set (a frontend without backends:
 * ECONNREFUSED, as kube-proxy's reject). is_connect: a connect() (reported as a flow event). */
static __always_inline int skiff_sock4_xlate_fwd(struct bpf_sock_addr *ctx, int is_connect) {
  int scope = skiff_sock_scope(ctx);
  if (scope == SKIFF_SOCK_OUT) return SKIFF_SOCK_PROCEED;
  __u8 proto = (__u8)ctx->protocol;
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return SKIFF_SOCK_PROCEED;
  __be32 vip = ctx->user_ip4;
  __be16 vport = (__be16)ctx->user_port;
  if (skiff_sock_is_loopback4(vip)) return SKIFF_SOCK_PROCEED;
  if (!skiff_lb4_maybe_frontend(vip, vport, proto)) return SKIFF_SOCK_PROCEED;
  const struct skiff_lb4_service *fe = skiff_lb4_frontend(vip, vport, proto);
  if (!fe) return SKIFF_SOCK_PROCEED;
  /* A pod's affinity is its own address (the tc path's key), unknown before the packet. */
  if (scope == SKIFF_SOCK_POD && (fe->flags & SKIFF_SVC_F_AFFINITY)) return SKIFF_SOCK_PROCEED;

  int rc = SKIFF_DROP_NO_SERVICE_BACKEND;
  struct skiff_lb4_choice c;
  __u64 cookie = bpf_get_socket_cookie(ctx);
  /* The client of node-originated traffic is the node: every host socket shares one
   * sessionAffinity entry per frontend (client address 0.0.0.0, which no pod or external
   * client has), as all of them would reach kube-proxy from the node's address. (Pod sockets
   * never get here for affinity frontends, so 0.0.0.0 only stands in for the Maglev hash.) */
  if (fe->count | fe->terminating_count)
    rc = skiff_lb4_select(fe, vip, vport, proto, 0, skiff_sock_cookie_port(cookie), &c);
  if (rc) {
    skiff_metrics_count(SKIFF_DIR_SOCK, rc, 0);
    bpf_set_retval(-ECONNREFUSED);
    return SKIFF_SOCK_REJECT;
  }

  /* Reverse entry before the rewrite: a reply may arrive as soon as the first datagram left. */
  struct skiff_sock4_revnat_key rk = {
      .cookie = cookie, .address = c.address, .port = c.port, .pad = 0};
  struct skiff_sock4_revnat_val rv = {
      .address = vip, .port = vport, .pad = 0, .rev_nat_id = fe->rev_nat_id};
  if (bpf_map_update_elem(&SKIFF_MAP_SOCK4_REVNAT, &rk, &rv, BPF_ANY) < 0 && proto == IPPROTO_UDP) {
    /* A UDP reply would come from the backend's address, which the application does not
     * know: refuse rather than break it silently (an LRU map rarely fails). */
    skiff_metrics_count(SKIFF_DIR_SOCK, SKIFF_DROP_CT_MAP_FULL, 0);
    bpf_set_retval(-ENOMEM);
    return SKIFF_SOCK_REJECT;
  }
  ctx->user_ip4 = c.address;
  ctx->user_port = (__u32)c.port;
  skiff_metrics_count(SKIFF_DIR_SOCK, 0, 0);
  if (is_connect) skiff_event_sock_xlate(ctx, vip, vport, &c, fe->rev_nat_id);
  return SKIFF_SOCK_PROCEED;
}

/* recvmsg4 / getpeername4: backend -> the frontend this socket asked for. Always proceeds
 * (these hooks cannot refuse). */
static __always_inline int skiff_sock4_xlate_rev(struct bpf_sock_addr *ctx) {
  if (skiff_sock_scope(ctx) == SKIFF_SOCK_OUT) return SKIFF_SOCK_PROCEED;
  struct skiff_sock4_revnat_key rk = {.cookie = bpf_get_socket_cookie(ctx),
                                      .address = ctx->user_ip4,
                                      .port = (__be16)ctx->user_port,
                                      .pad = 0};
  const struct skiff_sock4_revnat_val *rv = bpf_map_lookup_elem(&SKIFF_MAP_SOCK4_REVNAT, &rk);
  if (!rv) return SKIFF_SOCK_PROCEED;
  /* The frontend must still exist under the same rev-NAT id: a deleted (or re-numbered)
   * frontend's replies are shown as they are. */
  __u32 id = rv->rev_nat_id;
  const struct skiff_lb4_revnat *fe = bpf_map_lookup_elem(&SKIFF_MAP_LB4_REVNAT, &id);
  if (!fe || fe->address != rv->address || fe->port != rv->port) {
    bpf_map_delete_elem(&SKIFF_MAP_SOCK4_REVNAT, &rk);
    return SKIFF_SOCK_PROCEED;
  }
  ctx->user_ip4 = rv->address;
  ctx->user_port = (__u32)rv->port;
  return SKIFF_SOCK_PROCEED;
}

#endif /* SKIFF_BPF_LIB_SOCK_LB_H_ */
