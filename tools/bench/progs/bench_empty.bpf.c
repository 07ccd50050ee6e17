/* Benchmark baseline: the cost of PROG_TEST_RUN itself (skb setup, timer, one call). */
#include "lib/common.h"

SEC("tc")
int bench_empty(struct __sk_buff *skb) { return TC_ACT_OK; }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
