/* Every map of the service datapath, declared once. Names come from maps/names.h (the C
 * identifier is the pin name); sizes are defaults the agent overrides with
 * bpf_map__set_max_entries before load. LIBBPF_PIN_BY_NAME makes libbpf pin (or re-use) each
 * map under the pin root path given at open time, so maps survive program reloads. */
#ifndef SKIFF_BPF_LIB_MAPS_H_
#define SKIFF_BPF_LIB_MAPS_H_

#include "lib/common.h"
#include "maps/ct.h"
#include "maps/events.h"
#include "maps/host_route.h"
#include "maps/lb.h"
#include "maps/lb_filter.h"
#include "maps/metrics.h"
#include "maps/names.h"
#include "maps/policy.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SKIFF_LB_MAP_SIZE_DEFAULT);
  __type(key, struct skiff_lb4_key);
  __type(value, struct skiff_lb4_service);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_LB4_SERVICES SEC(".maps");

/* Indexed by backend id; an all-zero entry is an absent backend (maps/lb.h): read it through
 * skiff_lb4_backend_lookup below, never with a bare lookup. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, SKIFF_LB_MAP_SIZE_DEFAULT);
  __type(key, __u32); /* backend id */
  __type(value, struct skiff_lb4_backend);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_LB4_BACKENDS SEC(".maps");

/* The backend with this id, or NULL when there is none: beyond the array, or an empty
 * (all-zero, deleted or never written) entry, which is what a failed hash lookup was. */
static __always_inline const struct skiff_lb4_backend *skiff_lb4_backend_lookup(__u32 id) {
  const struct skiff_lb4_backend *be = bpf_map_lookup_elem(&SKIFF_MAP_LB4_BACKENDS, &id);
  return be && skiff_lb4_backend_present(be) ? be : 0;
}

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SKIFF_LB_MAP_SIZE_DEFAULT);
  __type(key, __u32); /* rev-NAT id */
  __type(value, struct skiff_lb4_revnat);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_LB4_REVNAT SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, SKIFF_LB_AFFINITY_SIZE_DEFAULT);
  __type(key, struct skiff_lb4_affinity_key);
  __type(value, struct skiff_lb_affinity_val);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_LB4_AFFINITY SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, SKIFF_LB_SRC_RANGE_SIZE_DEFAULT);
  __type(key, struct skiff_lb4_src_range_key);
  __type(value, struct skiff_lb4_src_range_val);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_LB4_SRC_RANGE SEC(".maps");

/* Maglev lookup tables: the value is __u32[skiff_config.maglev_table_size] (maps/lb.h); the
 * agent sets value_size to match before load. Allocated per entry: a table is 64 KiB at the
 * default size and only maglev frontends have one. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SKIFF_LB_MAGLEV_MAP_SIZE_DEFAULT);
  /* Sizes, not BTF types: the value has no C type, and BTF for the key alone is refused. */
  __uint(key_size, sizeof(struct skiff_lb4_maglev_key));
  __uint(value_size, SKIFF_MAGLEV_TABLE_SIZE_DEFAULT * sizeof(__u32));
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_LB4_MAGLEV SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, SKIFF_CT_MAP_SIZE_DEFAULT);
  __type(key, struct skiff_ct4_key);
  __type(value, struct skiff_ct_entry);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_CT4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct skiff_ct_hint);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_CT4_HINT SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, SKIFF_METRICS_ENTRIES);
  __type(key, __u32);
  __type(value, struct skiff_metrics_val);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_METRICS SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct skiff_lb4_fe_filter);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_LB4_FE_FILTER SEC(".maps");

/* NetworkPolicy (maps/policy.h, docs/policy.md). */
struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, SKIFF_IPCACHE_SIZE_DEFAULT);
  __type(key, struct skiff_ipcache_key);
  __type(value, struct skiff_ipcache_val);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_IPCACHE4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, SKIFF_POLICY_MAP_SIZE_DEFAULT);
  __type(key, struct skiff_policy_key);
  __type(value, struct skiff_policy_val);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_POLICY4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, SKIFF_POL_CT_SIZE_DEFAULT);
  __type(key, struct skiff_ct4_key);
  __type(value, struct skiff_pol_ct_entry);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_POL_CT4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct skiff_pol_state);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_POL_STATE SEC(".maps");

/* Host routing's targets: attached pod-facing interfaces by ifindex (maps/host_route.h). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SKIFF_ENDPOINT_IFACES_SIZE_DEFAULT);
  __type(key, __u32); /* ifindex */
  __type(value, struct skiff_endpoint_iface);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_ENDPOINT_IFACES SEC(".maps");

/* Host routing's route cache: bpf_fib_lookup answers by lookup inputs (maps/host_route.h). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, SKIFF_HOST_ROUTE4_SIZE_DEFAULT);
  __type(key, struct skiff_host_route4_key);
  __type(value, struct skiff_host_route4);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_HOST_ROUTE4 SEC(".maps");

/* Flow events (maps/events.h, docs/flows.md). */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, SKIFF_EVENTS_RING_SIZE_DEFAULT);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_EVENTS SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct skiff_events_state);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} SKIFF_MAP_EVENTS_STATE SEC(".maps");

#endif /* SKIFF_BPF_LIB_MAPS_H_ */
