/* Per-CPU packet/byte counters by direction and outcome (maps/metrics.h). */
#ifndef SKIFF_BPF_LIB_METRICS_H_
#define SKIFF_BPF_LIB_METRICS_H_

#include "lib/maps.h"

/* code: 0 for a packet that went on, or a negative SKIFF_DROP_* code. */
static __always_inline void skiff_metrics_count(__u32 dir, int code, __u32 bytes) {
  __u32 idx = SKIFF_METRICS_INDEX(dir, code);
  struct skiff_metrics_val *v = bpf_map_lookup_elem(&SKIFF_MAP_METRICS, &idx);
  /* Per-CPU slot: no other writer, plain adds are exact. */
  if (v) {
    v->packets++;
    v->bytes += bytes;
  }
}

#endif /* SKIFF_BPF_LIB_METRICS_H_ */
