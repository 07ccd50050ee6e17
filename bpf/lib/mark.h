/* skb->mark hand-offs between Skiff's tc hooks (constants in maps/policy.h). */
#ifndef SKIFF_BPF_LIB_MARK_H_
#define SKIFF_BPF_LIB_MARK_H_

#include "lib/common.h"
#include "maps/policy.h"

/* skb->mark must be written as a whole word: the verifier refuses the 16-bit store clang
 * would otherwise emit for a change confined to the upper half. */
static __always_inline void skiff_set_mark(struct __sk_buff *skb, __u32 mark) {
  asm volatile("" : "+r"(mark));
  skb->mark = mark;
}

/* Marks a packet as the reply of a connection its destination pod opened: to_container lets
 * it in without a policy lookup (and clears the mark). */
static __always_inline void skiff_mark_policy_reply(struct __sk_buff *skb) {
  skiff_set_mark(skb, (skb->mark & ~SKIFF_MARK_MASK) | SKIFF_MARK_POLICY_REPLY);
}

#endif /* SKIFF_BPF_LIB_MARK_H_ */
