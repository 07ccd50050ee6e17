// The node-device environment shared by the tc (nodeport_test.cc) and XDP (xdp_test.cc) BPF
// tests and the XDP benchmark (tools/bench/xdp_bench.cc): the lxc object's maps (lb_env.h)
// shared with the nodeport object as the agent shares them, the NAT and node address maps,
// and a forwarding network namespace for the XDP program's FIB lookup. The gtest fixture on
// top is tests/bpf/nodeport_fixture.h.
#pragma once

#include <linux/pkt_cls.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <vector>

// Before the skeleton: its rodata holds struct skiff_config and struct skiff_nat_config.
#include "maps/nat.h"
#include "tests/bpf/lb_env.h"
// clang-format off
#include "nodeport.skel.h"
// clang-format on
#include "tests/harness/packet.h"

namespace skiff::testing {

// loadBalancerSourceRanges: a LoadBalancer frontend with SKIFF_SVC_F_SRC_RANGES and its
// ranges in the LPM map, keyed by its rev-NAT id.
constexpr char kLbIp[] = "198.51.100.9";
constexpr char kOutside[] = "203.0.113.5";

constexpr char kClient[] = "192.168.100.2";
constexpr char kClient2[] = "192.168.100.3";
constexpr char kNode[] = "192.168.1.10";
constexpr char kLocal[] = "10.244.1.5";
constexpr char kRemote[] = "10.244.2.5";
constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
constexpr uint16_t kNodePort = 30080;

class NodePortEnv {
 public:
  static absl::StatusOr<std::unique_ptr<NodePortEnv>> Load(uint16_t port_min, uint16_t port_max) {
    auto lb = LbEnv::Load();
    if (!lb.ok()) return lb.status();
    auto skel = OpenSkeleton<nodeport_bpf>(nodeport_bpf__open, nodeport_bpf__destroy);
    if (!skel.ok()) return skel.status();
    bpf_map* m;
    bpf_object__for_each_map(m, (*skel)->obj) {
      if (int err = bpf_map__set_pin_path(m, nullptr)) return ErrnoStatus(err, "unpinning");
      // The service and conntrack maps are the lxc object's, as the agent shares them.
      bpf_map* shared = bpf_object__find_map_by_name((*lb)->skel->obj, bpf_map__name(m));
      if (shared && bpf_map__fd(shared) >= 0)
        if (int err = bpf_map__reuse_fd(m, bpf_map__fd(shared)))
          return ErrnoStatus(err, "sharing a map");
    }
    (*skel)->rodata->skiff_nat_config.port_min = port_min;
    (*skel)->rodata->skiff_nat_config.port_max = port_max;
    if (auto st = skel->Load(nodeport_bpf__load); !st.ok()) return st;
    std::unique_ptr<NodePortEnv> env(new NodePortEnv());
    env->lb = std::move(*lb);
    env->skel = std::move(*skel);
    auto nat = Map<skiff_nat4_key, skiff_nat4_entry>::From(env->skel->maps.SKIFF_MAP_NAT4);
    auto addrs = Map<__u32, skiff_node_addr4>::From(env->skel->maps.SKIFF_MAP_NODE_ADDR4);
    if (!nat.ok()) return nat.status();
    if (!addrs.ok()) return addrs.status();
    env->nat = *nat;
    env->addrs = *addrs;
    return env;
  }

  int prog_fd() const { return bpf_program__fd(skel->progs.from_netdev); }

  static skiff_nat4_key NatKey(const char* s, const char* d, uint16_t sp, uint16_t dp,
                               uint8_t proto, uint8_t dir) {
    skiff_nat4_key k{};
    k.saddr = Ip4(s);
    k.daddr = Ip4(d);
    k.sport = htons(sp);
    k.dport = htons(dp);
    k.proto = proto;
    k.dir = dir;
    return k;
  }
  std::optional<skiff_nat4_entry> Nat(const skiff_nat4_key& k) const {
    auto v = nat.Lookup(k);
    return v.ok() ? *v : std::nullopt;
  }
  size_t NatSize() const {
    auto e = nat.Entries();
    return e.ok() ? e->size() : 0;
  }

  std::unique_ptr<LbEnv> lb;
  Skeleton<nodeport_bpf> skel;
  Map<skiff_nat4_key, skiff_nat4_entry> nat;
  Map<__u32, skiff_node_addr4> addrs;
};

inline Bytes Tcp(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t flags) {
  return PacketBuilder().Ipv4(src, dst).Tcp(sport, dport, flags).Payload("hello").Build();
}
inline Bytes Udp(const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  return PacketBuilder().Ipv4(src, dst).Udp(sport, dport).Payload("query").Build();
}
inline uint16_t SrcPort(const Bytes& f) { return f.size() > 35 ? (f[34] << 8 | f[35]) : 0; }

// Forwarding setup for the XDP paths, in the calling process's (fresh, unshared) network
// namespace: veth xnp0 (02:..:a0) faces the clients (192.168.100.1/24, and the node address
// kNode) with neighbours kClient (02:..:c2) and 192.168.100.50 (02:..:c5); veth xnp1
// (02:..:b0) faces the remote pod CIDR 10.244.2.0/24 with neighbour kRemote (02:..:d5);
// forwarding on. Names exist only in that namespace.
inline absl::Status SetUpForwardingNetns() {
  const char* script =
      "set -e; ip link set lo up;"
      "ip link add xnp0 address 02:00:00:00:00:a0 type veth peer name xnp0p;"
      "ip link add xnp1 address 02:00:00:00:00:b0 type veth peer name xnp1p;"
      "for d in xnp0 xnp0p xnp1 xnp1p; do ip link set $d up; done;"
      "ip addr add 192.168.100.1/24 dev xnp0; ip addr add 192.168.1.10/32 dev xnp0;"
      "ip addr add 10.244.2.1/24 dev xnp1;"
      "ip neigh replace 192.168.100.2 lladdr 02:00:00:00:00:c2 dev xnp0 nud permanent;"
      "ip neigh replace 192.168.100.50 lladdr 02:00:00:00:00:c5 dev xnp0 nud permanent;"
      "ip neigh replace 10.244.2.5 lladdr 02:00:00:00:00:d5 dev xnp1 nud permanent;"
      "echo 1 > /proc/sys/net/ipv4/conf/all/forwarding";
  if (std::system(script) != 0)
    return absl::InternalError("setting up the forwarding namespace (ip link/addr/neigh) failed");
  return absl::OkStatus();
}

}  // namespace skiff::testing
