/* Internet checksum arithmetic (RFC 1071/1624) for fields the program rewrites itself, where
 * the skb helpers do not apply (headers quoted inside ICMP errors, headers it builds). Sums are
 * taken over words as they lie in memory, which is byte-order neutral for one's complement. */
#ifndef SKIFF_BPF_LIB_CSUM_H_
#define SKIFF_BPF_LIB_CSUM_H_

#include "lib/common.h"

/* Folds a 32-bit partial sum (e.g. from bpf_csum_diff) into a checksum field value. */
static __always_inline __sum16 skiff_csum_fold(__u32 sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__sum16)~sum;
}

/* RFC 1624 eqn. 3: the checksum after a 32-bit word changes from `from` to `to`. */
static __always_inline __sum16 skiff_csum_replace4(__sum16 check, __be32 from, __be32 to) {
  __u32 nf = ~from;
  __u32 sum = (__u16)~check;
  sum += (nf & 0xffff) + (nf >> 16) + (to & 0xffff) + (to >> 16);
  return skiff_csum_fold(sum);
}

static __always_inline __sum16 skiff_csum_replace2(__sum16 check, __be16 from, __be16 to) {
  __u32 sum = (__u16)~check;
  sum += (__u16)~from + (__u16)to;
  return skiff_csum_fold(sum);
}

#endif /* SKIFF_BPF_LIB_CSUM_H_ */
