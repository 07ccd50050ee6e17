/* The program's load-time configuration (maps/config.h). One definition per BPF object: an
 * entry file includes this header once. The agent overrides fields through the skeleton's
 * rodata before load; the verifier then treats them as constants. */
#ifndef SKIFF_BPF_LIB_CONFIG_H_
#define SKIFF_BPF_LIB_CONFIG_H_

#include "lib/common.h"
#include "maps/config.h"
#include "maps/ct.h"
#include "maps/events.h"
#include "maps/flow_hash.h"
#include "maps/lb.h"

const volatile struct skiff_config skiff_config = {
    .ct_lifetime_tcp_syn = SKIFF_CT_LIFETIME_TCP_SYN,
    .ct_lifetime_tcp_established = SKIFF_CT_LIFETIME_TCP_ESTABLISHED,
    .ct_lifetime_tcp_closing = SKIFF_CT_LIFETIME_TCP_CLOSING,
    .ct_lifetime_non_tcp = SKIFF_CT_LIFETIME_NON_TCP,
    .hairpin_ipv4 = __bpf_constant_htonl(SKIFF_HAIRPIN_IPV4),
    .drop_events_per_sec = SKIFF_DROP_EVENTS_PER_SEC_DEFAULT,
    .maglev_table_size = SKIFF_MAGLEV_TABLE_SIZE_DEFAULT,
    .maglev_hash_seed = SKIFF_MAGLEV_HASH_SEED_DEFAULT,
};

#endif /* SKIFF_BPF_LIB_CONFIG_H_ */
