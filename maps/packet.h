/* What the packet parser (bpf/lib/parse.h) extracts from a frame. BPF code works on it;
 * the parser's test program copies it into a map so C++ tests can read it back. */
#ifndef SKIFF_MAPS_PACKET_H_
#define SKIFF_MAPS_PACKET_H_

#include <linux/types.h>

/* skiff_pkt.flags */
#define SKIFF_PKT_F_IP_OPTIONS 0x01     /* IPv4 IHL > 5 or IPv6 extension headers */
#define SKIFF_PKT_F_FRAGMENT 0x02       /* any fragment (first or later) */
#define SKIFF_PKT_F_LATER_FRAGMENT 0x04 /* fragment offset != 0: no L4 header */

/* skiff_pkt.family */
#define SKIFF_AF_NONE 0 /* not IP (ARP, LLDP, ...): passes untouched */
#define SKIFF_AF_INET 4
#define SKIFF_AF_INET6 6

struct skiff_pkt {
  __u8 family;    /* SKIFF_AF_* */
  __u8 l4_proto;  /* IPPROTO_* after IPv6 extension headers; 0 if none */
  __u8 flags;     /* SKIFF_PKT_F_* */
  __u8 tcp_flags; /* TCP flag byte (FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 ...) */
  __u16 l3_off;   /* offset of the IP header from the frame start */
  __u16 l4_off;   /* offset of the L4 header; 0 when absent (later fragment) */
  __be32 saddr[4]; /* IPv4 uses saddr[0] */
  __be32 daddr[4];
  __be16 sport; /* TCP/UDP source port; ICMP echo identifier */
  __be16 dport; /* TCP/UDP destination port; 0 for ICMP */
  __u8 icmp_type;
  __u8 icmp_code;
  __u8 ttl; /* IPv4 TTL / IPv6 hop limit */
  __u8 pad;
  __u16 l3_len; /* IP total length (IPv4) or payload length + 40 (IPv6) */
  __u16 pad2;
};

/* Value of the parser test program's one-entry array map `parse_out`. */
struct skiff_parse_result {
  struct skiff_pkt pkt;
  __s32 rc; /* 0 or a negative SKIFF_DROP_* code */
  __u32 runs;
};

#endif /* SKIFF_MAPS_PACKET_H_ */
