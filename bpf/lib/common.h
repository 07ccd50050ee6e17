/* Includes and small helpers every BPF program shares. */
#ifndef SKIFF_BPF_LIB_COMMON_H_
#define SKIFF_BPF_LIB_COMMON_H_

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmpv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "maps/drop_reasons.h"
#include "maps/packet.h"

/* <linux/icmp.h> drags in libc's <sys/socket.h>, which does not build for the BPF target;
 * the ICMPv4 header and the constants used here are small enough to state. */
struct icmphdr {
  __u8 type;
  __u8 code;
  __sum16 checksum;
  union {
    struct {
      __be16 id;
      __be16 sequence;
    } echo;
    __be32 gateway;
    struct {
      __be16 __unused;
      __be16 mtu;
    } frag;
  } un;
};
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMP_PORT_UNREACH 3
#define ICMP_FRAG_NEEDED 4

/* TCP flag bits as they sit in byte 13 of the TCP header (skiff_pkt.tcp_flags). */
#define SKIFF_TCP_FIN 0x01
#define SKIFF_TCP_SYN 0x02
#define SKIFF_TCP_RST 0x04
#define SKIFF_TCP_ACK 0x10

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

/* The tuple of a packet between its real endpoints, as it leaves service translation: after a
 * DNAT the backend (and, hairpin, the hairpin source address), otherwise the packet's own
 * tuple (a reverse-NATed reply keeps its backend source here). Policy checks this tuple
 * (lib/policy.h) without reading the rewritten bytes back. */
struct skiff_tuple4 {
  __be32 saddr;
  __be32 daddr;
  __be16 sport;
  __be16 dport;
};

#endif /* SKIFF_BPF_LIB_COMMON_H_ */
