/* The flow hash Maglev selection indexes its lookup table with (maps/lb.h): one definition for
 * the datapath (bpf/lib/lb.h) and for C++ (tests, tools) so both agree on which slot a
 * 5-tuple maps to. It is Bob Jenkins' lookup3 final mix over three words (the kernel's
 * jhash_3words), with the protocol folded into the seed. Every node must use the same seed
 * (--maglev-hash-seed) so that a flow picks the same backend whichever node receives it. */
#ifndef SKIFF_MAPS_FLOW_HASH_H_
#define SKIFF_MAPS_FLOW_HASH_H_

#include <linux/types.h>

#define SKIFF_JHASH_INITVAL 0xdeadbeefU
/* --maglev-hash-seed's default. */
#define SKIFF_MAGLEV_HASH_SEED_DEFAULT 0x736b6966U

static inline __u32 skiff_rol32(__u32 w, unsigned int s) { return (w << s) | (w >> (32 - s)); }

static inline __u32 skiff_jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval) {
  initval += SKIFF_JHASH_INITVAL + (3 << 2);
  a += initval;
  b += initval;
  c += initval;
  c ^= b;
  c -= skiff_rol32(b, 14);
  a ^= c;
  a -= skiff_rol32(c, 11);
  b ^= a;
  b -= skiff_rol32(a, 25);
  c ^= b;
  c -= skiff_rol32(b, 16);
  a ^= c;
  a -= skiff_rol32(c, 4);
  b ^= a;
  b -= skiff_rol32(a, 14);
  c ^= b;
  c -= skiff_rol32(b, 24);
  return c;
}

/* Addresses and ports as they are on the wire (network byte order), proto an IPPROTO_*. */
static inline __u32 skiff_flow_hash4(__be32 saddr, __be32 daddr, __be16 sport, __be16 dport,
                                     __u8 proto, __u32 seed) {
  return skiff_jhash_3words((__u32)saddr, (__u32)daddr, ((__u32)sport << 16) | (__u32)dport,
                            seed ^ ((__u32)proto << 24));
}

#endif /* SKIFF_MAPS_FLOW_HASH_H_ */
