// The gtest fixture of the node-device BPF tests (nodeport_test.cc, xdp_test.cc) over
// NodePortEnv (nodeport_env.h).
#pragma once

#include <gtest/gtest.h>

#include "tests/bpf/nodeport_env.h"
#include "tests/harness/bpf_run.h"
#include "tests/harness/privileged.h"

namespace skiff::testing {

inline void Must(const absl::Status& st) { ASSERT_TRUE(st.ok()) << st; }

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

  // One SNAT port (61000), held by kClient:40000's established flow to the remote backend 2.
  void EstablishOnTheOnlyPort() {
    Reload(61000, 61000);
    NodePortTo({2});
    Run(Tcp(kClient, 40000, kNode, kNodePort, kSyn));
    Run(Tcp(kRemote, 8080, kNode, 61000, kSyn | kAck));
    Run(Tcp(kClient, 40000, kNode, kNodePort, kAck));
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

  void LoadBalancer(const char* vip, uint32_t rev_nat_id, bool ranges) {
    Must(env_->lb->AddService(
        ServiceSpec{.vip = vip,
                    .port = 80,
                    .rev_nat_id = rev_nat_id,
                    .active = {1},
                    .flags = static_cast<uint8_t>(SKIFF_SVC_F_LOAD_BALANCER |
                                                  (ranges ? SKIFF_SVC_F_SRC_RANGES : 0))}));
  }
  // loadBalancerSourceRanges of rev_nat_id: allow addr/len, or take it back.
  void AllowRange(uint32_t rev_nat_id, const char* addr, uint8_t len) {
    auto m = SourceRanges();
    ASSERT_TRUE(m.ok()) << m.status();
    skiff_lb4_src_range_val v{};
    v.allow = 1;
    Must(m->Update(RangeKey(rev_nat_id, addr, len), v));
  }
  void ClearRanges(uint32_t rev_nat_id, const char* addr, uint8_t len) {
    auto m = SourceRanges();
    ASSERT_TRUE(m.ok()) << m.status();
    Must(m->Delete(RangeKey(rev_nat_id, addr, len)));
  }
  static skiff_lb4_src_range_key RangeKey(uint32_t rev_nat_id, const char* addr, uint8_t len) {
    skiff_lb4_src_range_key k{};
    k.prefixlen = 32u + len;
    k.rev_nat_id = rev_nat_id;
    k.address = Ip4(addr);
    return k;
  }
  absl::StatusOr<Map<skiff_lb4_src_range_key, skiff_lb4_src_range_val>> SourceRanges() {
    return Map<skiff_lb4_src_range_key, skiff_lb4_src_range_val>::From(
        env_->lb->skel->maps.SKIFF_MAP_LB4_SRC_RANGE);
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
