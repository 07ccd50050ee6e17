/* Every pinned map's name, in one place. The C identifier of a BPF map is its name (and its
 * pin file under the bpffs root), so BPF declares maps with these macros and C++ reaches them
 * as skel->maps.SKIFF_MAP_X. A layout change bumps the suffix (_v1 -> _v2) and the agent
 * migrates; see docs/maps.md. */
#ifndef SKIFF_MAPS_NAMES_H_
#define SKIFF_MAPS_NAMES_H_

#define SKIFF_MAP_LB4_SERVICES skiff_lb4_services_v2
#define SKIFF_MAP_LB4_BACKENDS skiff_lb4_backends_v2
#define SKIFF_MAP_LB4_REVNAT skiff_lb4_revnat_v2
#define SKIFF_MAP_LB4_AFFINITY skiff_lb4_affinity_v2
#define SKIFF_MAP_LB4_SRC_RANGE skiff_lb4_src_range_v2
#define SKIFF_MAP_LB4_MAGLEV skiff_lb4_maglev_v2
#define SKIFF_MAP_CT4 skiff_ct4_global_v2
#define SKIFF_MAP_CT4_HINT skiff_ct4_hint_v1
#define SKIFF_MAP_LB4_FE_FILTER skiff_lb4_fe_filter_v1
#define SKIFF_MAP_METRICS skiff_metrics_v1
#define SKIFF_MAP_IPCACHE4 skiff_ipcache4_v1
#define SKIFF_MAP_POLICY4 skiff_policy4_v1
#define SKIFF_MAP_POL_CT4 skiff_pol_ct4_v1
#define SKIFF_MAP_POL_STATE skiff_pol_state_v1
#define SKIFF_MAP_NAT4 skiff_nat4_v1
#define SKIFF_MAP_NODE_ADDR4 skiff_node_addr4_v1
#define SKIFF_MAP_EVENTS skiff_events_v2
#define SKIFF_MAP_EVENTS_STATE skiff_events_state_v1
#define SKIFF_MAP_SOCK4_REVNAT skiff_sock4_revnat_v1
#define SKIFF_MAP_ENDPOINT_IFACES skiff_endpoint_ifaces_v1
#define SKIFF_MAP_HOST_ROUTE4 skiff_host_route4_v1

#define SKIFF_STR_(x) #x
#define SKIFF_STR(x) SKIFF_STR_(x)

#endif /* SKIFF_MAPS_NAMES_H_ */
