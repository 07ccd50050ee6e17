// The node-device test environment shared by the tc (nodeport_test.cc) and XDP (xdp_test.cc)
// BPF tests: the lxc object's maps (lb_env.h) shared with the nodeport object as the agent
// shares them, the NAT and node address maps, and a fixture with the services they use.
#pragma once

#include <linux/pkt_cls.h>

#include <memory>
#include <optional>
#include <vector>

#include <gtest/gtest.h>

// Before the skeleton: its rodata holds struct skiff_config and struct skiff_nat_config.
#include "maps/nat.h"
#include "tests/bpf/lb_env.h"
// clang-format off
#include "nodeport.skel.h"
// clang-format on
#include "tests/harness/bpf_run.h"
#include "tests/harness/privileged.h"

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
constexpr uint8_t kSyn = 0x02, kAck = 0x10;
constexpr uint16_t kNodePort = 30080;

inline void Must(const absl::Status& st) { ASSERT_TRUE(st.ok()) << st; }

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

// Maps set up as the agent would: a local backend (1), remote TCP (2) and UDP (3) backends,
// the node address on ifindex 1 (BPF_PROG_TEST_RUN runs on the namespace's loopback).
class NodePortFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_PRIVILEGED();
    PinToCpu();
    Reload(SKIFF_NAT_PORT_MIN_DEFAULT, SKIFF_NAT_PORT_MAX_DEFAULT);
  }

  void Reload(uint16_t min, uint16_t max) {
    env_.reset();
    auto env = NodePortEnv::Load(min, max);
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(*env);
    Must(env_->lb->Reset());
    Must(env_->lb->AddBackend({1, kLocal, 8080, 6, SKIFF_BACKEND_ACTIVE, SKIFF_BACKEND_F_LOCAL}));
    Must(env_->lb->AddBackend({2, kRemote, 8080}));
    Must(env_->lb->AddBackend({3, kRemote, 5353, 17}));
    // BPF_PROG_TEST_RUN runs on the namespace's loopback device.
    skiff_node_addr4 a{};
    a.address = Ip4(kNode);
    Must(env_->addrs.Update(1, a));
  }

  void NodePortTo(std::vector<uint32_t> backends, uint8_t proto = 6, uint16_t port = kNodePort) {
    Must(env_->lb->AddService(ServiceSpec{.vip = kNode,
                                          .port = port,
                                          .proto = proto,
                                          .rev_nat_id = 3,
                                          .active = std::move(backends),
                                          .flags = SKIFF_SVC_F_NODE_PORT}));
  }

  // A NodePort with externalTrafficPolicy Local: every backend in the external scope, the
  // local ones in the internal scope, and only SKIFF_SVC_F_EXT_LOCAL on slot 0 (the pod path's
  // internalTrafficPolicy flag stays clear, so only the node-device path may restrict).
  void NodePortLocal(std::vector<uint32_t> all, std::vector<uint32_t> local) {
    Must(env_->lb->AddService(ServiceSpec{.vip = kNode,
                                          .port = kNodePort,
                                          .rev_nat_id = 3,
                                          .active = std::move(all),
                                          .flags = SKIFF_SVC_F_NODE_PORT,
                                          .local = {{std::move(local), {}}}}));
    auto key = LbEnv::Key(kNode, kNodePort, 6, SKIFF_SCOPE_EXTERNAL, 0);
    auto v = env_->lb->services.Lookup(key);
    ASSERT_TRUE(v.ok() && v->has_value());
    skiff_lb4_service slot0 = **v;
    slot0.flags = SKIFF_SVC_F_NODE_PORT | SKIFF_SVC_F_EXT_LOCAL;
    Must(env_->lb->services.Update(key, slot0));
  }

  void LoadBalancer(const char* vip, uint16_t rev_nat_id, bool ranges) {
    Must(env_->lb->AddService(
        ServiceSpec{.vip = vip,
                    .port = 80,
                    .rev_nat_id = rev_nat_id,
                    .active = {1},
                    .flags = static_cast<uint8_t>(SKIFF_SVC_F_LOAD_BALANCER |
                                                  (ranges ? SKIFF_SVC_F_SRC_RANGES : 0))}));
  }
  void AllowRange(uint16_t rev_nat_id, const char* addr, uint8_t len) {
    auto m = Map<skiff_lb4_src_range_key, skiff_lb4_src_range_val>::From(
        env_->lb->skel->maps.SKIFF_MAP_LB4_SRC_RANGE);
    ASSERT_TRUE(m.ok()) << m.status();
    skiff_lb4_src_range_key k{};
    k.prefixlen = 32u + len;
    k.rev_nat_id = rev_nat_id;
    k.address = Ip4(addr);
    skiff_lb4_src_range_val v{};
    v.allow = 1;
    Must(m->Update(k, v));
  }
  void ClearRanges(uint16_t rev_nat_id, const char* addr, uint8_t len) {
    auto m = Map<skiff_lb4_src_range_key, skiff_lb4_src_range_val>::From(
        env_->lb->skel->maps.SKIFF_MAP_LB4_SRC_RANGE);
    ASSERT_TRUE(m.ok()) << m.status();
    skiff_lb4_src_range_key k{};
    k.prefixlen = 32u + len;
    k.rev_nat_id = rev_nat_id;
    k.address = Ip4(addr);
    Must(m->Delete(k));
  }

  RunResult Run(const Bytes& in) { return RunOn(env_->prog_fd(), in); }
  RunResult RunOn(int fd, const Bytes& in) {
    auto r = RunProgram(fd, in);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RunResult{};
  }

  std::unique_ptr<NodePortEnv> env_;
};

}  // namespace skiff::testing
