// The frontend filter (maps/lb_filter.h) in from_container through PROG_TEST_RUN, written by
// the agent's own FrontendFilterTable over the loaded maps: an armed filter with a clear bit
// proves "no frontend" and the packet skips the service lookup; an unarmed one proves nothing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>

#include "agent/reconcile/frontend_filter.h"
#include "tests/bpf/lb_env.h"
#include "tests/harness/bpf_run.h"
#include "tests/harness/privileged.h"

namespace skiff::testing {
namespace {

// From a client port of its own per frontend: two frontends sharing a backend must not see
// one client port (that is a conntrack tuple clash, maps/ct.h).
Bytes Syn(const char* dst, uint16_t dport) {
  return PacketBuilder().Ipv4("10.0.1.5", dst).Tcp(40000 + dport, dport, 0x02).Build();
}

// The destination address of the frame from_container let through.
std::string DstOf(int prog_fd, const Bytes& pkt) {
  auto r = RunProgram(prog_fd, pkt);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  EXPECT_EQ(r->retval, TC_ACT_OK);
  uint32_t daddr;
  std::memcpy(&daddr, &r->out[14 + 16], 4);
  return Ip4String(daddr);
}

TEST(FrontendFilterBpfTest, ArmedFilterSkipsTheLookupOnlyWhereItsBitIsClear) {
  SKIFF_REQUIRE_PRIVILEGED();
  auto env = LbEnv::Load();
  ASSERT_TRUE(env.ok()) << env.status();
  LbEnv& lb = **env;
  ASSERT_TRUE(lb.Reset().ok());
  auto filter_map = Map<__u32, skiff_lb4_fe_filter>::From(lb.skel->maps.SKIFF_MAP_LB4_FE_FILTER);
  ASSERT_TRUE(filter_map.ok());
  reconcile::BpfKvTable<skiff_lb4_key, skiff_lb4_service> services(lb.services, 1024);
  reconcile::BpfKvTable<__u32, skiff_lb4_fe_filter> filter(*filter_map, 1);

  ASSERT_TRUE(lb.AddBackend({1, "10.0.2.10", 8080}).ok());
  ServiceSpec web{.vip = "10.96.0.10", .port = 80, .rev_nat_id = 1, .active = {1}};
  ASSERT_TRUE(lb.AddService(web).ok());
  // Written before the filter exists, as by an agent without it: Init picks it up.
  reconcile::FrontendFilterTable t(&services, &filter);
  ASSERT_TRUE(t.Init().ok());
  EXPECT_EQ(DstOf(lb.prog_fd(), Syn("10.96.0.10", 80)), "10.0.2.10");

  // A frontend written behind the filter's back has no bit: the armed filter hides it.
  ServiceSpec dns{.vip = "10.96.0.53", .port = 53, .rev_nat_id = 2, .active = {1}};
  ASSERT_TRUE(lb.AddService(dns).ok());
  EXPECT_EQ(DstOf(lb.prog_fd(), Syn("10.96.0.53", 53)), "10.96.0.53");
  EXPECT_FALSE(lb.Ct(LbEnv::CtKey("10.0.1.5", "10.96.0.53", 40053, 53, 6, SKIFF_CT_SERVICE)))
      << "no lookup, no flow";
  // Unarmed, every packet is looked up again.
  skiff_lb4_fe_filter off{};
  ASSERT_TRUE(filter.Update(0, off).ok());
  EXPECT_EQ(DstOf(lb.prog_fd(), Syn("10.96.0.53", 53)), "10.0.2.10");

  // Through the filter table, the frontend's bit comes first.
  ASSERT_TRUE(lb.Reset().ok());
  ASSERT_TRUE(lb.AddBackend({1, "10.0.2.10", 8080}).ok());
  reconcile::FrontendFilterTable t2(&services, &filter);
  ASSERT_TRUE(t2.Init().ok());
  EXPECT_EQ(DstOf(lb.prog_fd(), Syn("10.96.0.53", 53)), "10.96.0.53") << "no frontend yet";
  skiff_lb4_service slot0{};
  slot0.count = 1;
  slot0.rev_nat_id = 2;
  skiff_lb4_service slot1{};
  slot1.backend_id = 1;
  slot1.rev_nat_id = 2;
  ASSERT_TRUE(t2.Update(LbEnv::Key("10.96.0.53", 53, 6, SKIFF_SCOPE_EXTERNAL, 1), slot1).ok());
  ASSERT_TRUE(t2.Update(LbEnv::Key("10.96.0.53", 53, 6, SKIFF_SCOPE_EXTERNAL, 0), slot0).ok());
  EXPECT_EQ(DstOf(lb.prog_fd(), Syn("10.96.0.53", 53)), "10.0.2.10");
  // Deleted through the table: bit cleared after the entry, the packet passes untouched.
  ASSERT_TRUE(t2.Delete(LbEnv::Key("10.96.0.53", 53, 6, SKIFF_SCOPE_EXTERNAL, 0)).ok());
  auto f = filter.Entries();
  ASSERT_TRUE(f.ok() && f->size() == 1);
  uint32_t bit = skiff_lb4_fe_filter_bit(Ip4("10.96.0.53"), htons(53), 6);
  EXPECT_EQ(((*f)[0].second.bits[bit / 64] >> (bit % 64)) & 1, 0u);
  EXPECT_EQ((*f)[0].second.state, uint32_t{SKIFF_LB4_FE_FILTER_ARMED});
}

}  // namespace
}  // namespace skiff::testing
