/* Frontend filter, IPv4 (SKIFF_MAP_LB4_FE_FILTER, an array with one entry): a bitmap the agent
 * keeps so that a packet to no frontend skips the service-map lookup (a hash lookup on a random
 * bucket of a large map: ~90 ns warm when destinations vary, docs/BENCHMARKS.md) for one bit
 * test in a small, cache-resident array.
 *
 * Bit skiff_lb4_fe_filter_bit(address, port, proto) is set for every frontend (the
 * SKIFF_SCOPE_EXTERNAL slot 0 of maps/lb.h) *before* its entry is written, and cleared only
 * after the last frontend using that bit has been deleted; a set bit without a frontend (a
 * collision, a failed write) costs only the lookup the filter would have saved. The agent
 * writes the whole value; bits only ever go from clear to set while frontends exist, so a
 * reader racing with a write sees every bit it needs (agent/reconcile/frontend_filter.h).
 *
 * BPF trusts the bitmap only while `state` is ARMED: a fresh map (an upgrade, a lost pin) may
 * sit beside a service map that already holds frontends, and until the agent has written
 * their bits every packet does the lookup as before. */
#ifndef SKIFF_MAPS_LB_FILTER_H_
#define SKIFF_MAPS_LB_FILTER_H_

#include <linux/types.h>

#include "maps/names.h"

#define SKIFF_LB4_FE_FILTER_OFF 0
#define SKIFF_LB4_FE_FILTER_ARMED 1
/* 16 KiB: an array value under 32 KiB is kmalloc'ed (direct-mapped memory, huge pages). */
#define SKIFF_LB4_FE_FILTER_BITS 131072

struct skiff_lb4_fe_filter {
  __u32 state; /* SKIFF_LB4_FE_FILTER_* */
  __u32 pad;
  __u64 bits[SKIFF_LB4_FE_FILTER_BITS / 64];
};

/* Bit index for a frontend {address, port, proto} (network byte order, as in skiff_lb4_key).
 * Shared by BPF and C++. */
static inline __u32 skiff_lb4_fe_filter_bit(__be32 addr, __be16 port, __u8 proto) {
  __u32 h = addr * 0x9e3779b1U;
  h ^= ((__u32)port << 8 | proto) * 0x85ebca77U;
  h ^= h >> 15;
  h *= 0xc2b2ae35U;
  h ^= h >> 13;
  return h >> (32 - 17); /* log2(SKIFF_LB4_FE_FILTER_BITS) */
}

#endif /* SKIFF_MAPS_LB_FILTER_H_ */
