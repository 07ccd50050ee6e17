/* Benchmark peer: one piece of from_container's new-flow path per run, in the kernel's repeat
 * loop, on the datapath's own maps (the bench reuses their fds), so the cost of a new flow can
 * be split into its parts (docs/BENCHMARKS.md, "Datapath per-packet cost"). Every iteration
 * parses the packet, derives a fresh client address:port from a counter, and does only the
 * selected piece; BENCH_PART_NONE (parse + counter) is the baseline the parts are net of. */
#include "lib/common.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/metrics.h"
#include "lib/parse.h"
#include "lib/lxc.h"

#define BENCH_PART_NONE 0
#define BENCH_PART_CT_MISS 1      /* conntrack lookup of an absent key */
#define BENCH_PART_CT_INSERT 2    /* one conntrack insert (a fresh key, BPF_NOEXIST) */
#define BENCH_PART_FRONTEND 3     /* the frontend lookup (hit) */
#define BENCH_PART_SELECT 4       /* backend selection: random slot + slot and backend lookups */
#define BENCH_PART_DNAT 5         /* address and port rewrite with checksum helpers */
#define BENCH_PART_EVENT 6        /* the TRANSLATED flow event (ring buffer) */
#define BENCH_PART_CLOCK 7        /* skiff_now_sec (coarse clock) */
#define BENCH_PART_POL_INSERT 8   /* one policy-conntrack insert (a fresh key) */
#define BENCH_PART_IPCACHE 9      /* ipcache LPM lookup of an address with no entry */
#define BENCH_PART_KTIME 10       /* bpf_ktime_get_ns (the event's timestamp) */
#define BENCH_PART_NO_FRONTEND 11 /* the frontend lookup of a non-service packet (miss) */

/* Set by the bench between runs (.bss). Addresses and ports in network byte order. */
__u32 bench_part;
__be32 bench_vip, bench_backend;
__be16 bench_vport, bench_bport;
__u32 bench_iter;
__u64 bench_sink;

SEC("tc")
int bench_parts(struct __sk_buff *skb) {
  struct skiff_pkt pkt;
  int rc = skiff_parse_frame((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, &pkt);
  if (rc < 0 || pkt.family != SKIFF_AF_INET || pkt.l4_proto != IPPROTO_TCP) return TC_ACT_SHOT;
  __u32 i = bench_iter++;
  __be32 client = bpf_htonl(0x0a030000 + (i >> 6)); /* 10.3.x.y */
  __be16 cport = bpf_htons(1024 + (i & 63));
  struct skiff_ct4_key k;
  skiff_ct4_key_init(&k, client, bench_vip, cport, bench_vport, IPPROTO_TCP, SKIFF_CT_SERVICE);
  struct skiff_ct_entry e = {
      .expires = 1000,
      .created = 1,
      .backend_id = 1,
      .rev_nat_id = 1,
      .nat_addr = bench_backend,
      .nat_port = bench_bport,
      .orig_addr = client,
      .orig_port = cport,
  };
  switch (bench_part) {
    case BENCH_PART_CT_MISS:
      bench_sink += bpf_map_lookup_elem(&SKIFF_MAP_CT4, &k) != 0;
      break;
    case BENCH_PART_CT_INSERT:
      bench_sink += bpf_map_update_elem(&SKIFF_MAP_CT4, &k, &e, BPF_NOEXIST);
      break;
    case BENCH_PART_FRONTEND:
      bench_sink += skiff_lb4_frontend(bench_vip, bench_vport, IPPROTO_TCP) != 0;
      break;
    case BENCH_PART_SELECT: {
      const struct skiff_lb4_service *fe = skiff_lb4_frontend(bench_vip, bench_vport, IPPROTO_TCP);
      struct skiff_lb4_choice c;
      if (fe && skiff_lb4_select(fe, bench_vip, bench_vport, IPPROTO_TCP, client, cport, &c) == 0)
        bench_sink += c.backend_id;
      break;
    }
    case BENCH_PART_DNAT:
      /* Alternate targets: the packet keeps the previous iteration's rewrite. */
      if (pkt.daddr[0] == bench_backend) {
        e.nat_addr = bench_vip;
        e.nat_port = bench_vport;
      }
      bench_sink += skiff_svc4_dnat(skb, &pkt, &e, 0);
      break;
    case BENCH_PART_EVENT:
      skiff_event_flow_new(skb, &pkt, &e);
      break;
    case BENCH_PART_CLOCK:
      bench_sink += skiff_now_sec();
      break;
    case BENCH_PART_POL_INSERT: {
      struct skiff_pol_ct_entry pe = {.expires = 1000, .created = 1, .flags = 1};
      k.kind = SKIFF_CT_POLICY;
      bench_sink += bpf_map_update_elem(&SKIFF_MAP_POL_CT4, &k, &pe, BPF_NOEXIST);
      break;
    }
    case BENCH_PART_IPCACHE:
      bench_sink += skiff_ipcache_lookup(client) != 0;
      break;
    case BENCH_PART_KTIME:
      bench_sink += bpf_ktime_get_ns();
      break;
    case BENCH_PART_NO_FRONTEND:
      bench_sink += skiff_lb4_frontend(client, cport, IPPROTO_TCP) != 0;
      break;
    default:
      break;
  }
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
