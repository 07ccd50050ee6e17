/* Load-time configuration of the datapath programs: a `const volatile struct skiff_config
 * skiff_config` in each program's .rodata, set by the agent through the skeleton before load
 * (skel->rodata->skiff_config.x = ...). Constant for the verifier, so unused paths vanish. */
#ifndef SKIFF_MAPS_CONFIG_H_
#define SKIFF_MAPS_CONFIG_H_

#include <linux/types.h>

/* Link-local address a hairpinned connection (a pod reaching itself through its service)
 * appears to come from: 169.254.42.1, as Cilium does. The macro is in host byte order; the
 * config field holds it in network byte order (the BPF default is htonl of this). */
#define SKIFF_HAIRPIN_IPV4 0xa9fe2a01U /* 169.254.42.1, host byte order */

struct skiff_config {
  __u32 ct_lifetime_tcp_syn;         /* seconds */
  __u32 ct_lifetime_tcp_established; /* seconds */
  __u32 ct_lifetime_tcp_closing;     /* seconds */
  __u32 ct_lifetime_non_tcp;         /* seconds */
  __be32 hairpin_ipv4;               /* source of hairpinned connections */
  __u32 drop_events_per_sec;         /* drop events per CPU and second; 0: none */
  __u32 maglev_table_size;           /* entries per maglev table (maps/lb.h); a prime */
  __u32 maglev_hash_seed;            /* seed of skiff_flow_hash4 (maps/flow_hash.h) */
  __u32 host_routing;                /* 1: pod-to-pod on this node bypasses the stack */
};

#endif /* SKIFF_MAPS_CONFIG_H_ */
