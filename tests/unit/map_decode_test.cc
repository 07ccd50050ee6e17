// agentctl map dump: the pinned maps beyond the service and conntrack ones decode into named
// fields (agent/api/map_decode.cc), not hex.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <cstring>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "agent/api/map_decode.h"
#include "maps/host_route.h"
#include "maps/lb.h"
#include "maps/names.h"
#include "maps/nat.h"
#include "maps/policy.h"

namespace skiff::api {
namespace {

uint32_t Ip(const char* s) {
  uint32_t a = 0;
  inet_pton(AF_INET, s, &a);
  return a;
}

template <typename K, typename V>
std::map<std::string, std::string> Decode(const char* map, const K& k, const V& v) {
  MapMeta meta;
  meta.name = map;
  meta.key_size = sizeof(K);
  meta.value_size = sizeof(V);
  Bytes key(reinterpret_cast<const uint8_t*>(&k), sizeof(K));
  Bytes value(reinterpret_cast<const uint8_t*>(&v), sizeof(V));
  v1::MapEntry e;
  DecodeMapEntry(meta, key, value, &e);
  std::map<std::string, std::string> out;
  for (const auto& f : e.key())
    out["key." + f.name()] = f.has_uint() ? std::to_string(f.uint()) : f.text();
  for (const auto& f : e.value())
    out["value." + f.name()] = f.has_uint() ? std::to_string(f.uint()) : f.text();
  return out;
}

TEST(MapDecode, NatEntry) {
  skiff_nat4_key k{};
  k.saddr = Ip("10.244.2.5");
  k.daddr = Ip("192.168.1.1");
  k.sport = htons(8080);
  k.dport = htons(61234);
  k.proto = IPPROTO_TCP;
  k.dir = SKIFF_NAT_IN;
  skiff_nat4_entry e{};
  e.to_addr = Ip("203.0.113.7");
  e.to_port = htons(40000);
  auto d = Decode(SKIFF_STR(SKIFF_MAP_NAT4), k, e);
  EXPECT_EQ(d["key.src"], "10.244.2.5");
  EXPECT_EQ(d["key.dport"], "61234");
  EXPECT_EQ(d["key.proto"], "TCP");
  EXPECT_EQ(d["key.dir"], "in");
  EXPECT_EQ(d["value.to"], "203.0.113.7");
  EXPECT_EQ(d["value.to_port"], "40000");
}

TEST(MapDecode, SourceRangeEntry) {
  skiff_lb4_src_range_key k{};
  k.prefixlen = 32 + 24;
  k.rev_nat_id = 7;
  k.address = Ip("198.51.100.0");
  skiff_lb4_src_range_val v{};
  v.allow = 1;
  auto d = Decode(SKIFF_STR(SKIFF_MAP_LB4_SRC_RANGE), k, v);
  EXPECT_EQ(d["key.rev_nat_id"], "7");
  EXPECT_EQ(d["key.cidr"], "198.51.100.0/24");
  EXPECT_EQ(d["value.allow"], "1");
}

// A Maglev table is summarized (size, slots per backend, first slots), not listed whole.
TEST(MapDecode, MaglevTable) {
  skiff_lb4_maglev_key k{};
  k.rev_nat_id = 9;
  k.scope = SKIFF_SCOPE_INTERNAL;
  std::array<uint32_t, 251> table;
  for (size_t i = 0; i < table.size(); i++) table[i] = i % 3 == 0 ? 4 : 7;
  auto d = Decode(SKIFF_STR(SKIFF_MAP_LB4_MAGLEV), k, table);
  EXPECT_EQ(d["key.rev_nat_id"], "9");
  EXPECT_EQ(d["key.scope"], "internal");
  EXPECT_EQ(d["value.table_size"], "251");
  EXPECT_EQ(d["value.slots_per_backend"], "4:84 7:167");
  EXPECT_EQ(d["value.first_slots"], "4 7 7 4 7 7 4 7");
}

TEST(MapDecode, IpcacheAndPolicyEntries) {
  skiff_ipcache_key ik{};
  ik.prefixlen = 32;
  ik.addr = Ip("10.244.1.11");
  skiff_ipcache_val iv{};
  iv.identity = SKIFF_IDENTITY_HOST;
  iv.endpoint_id = 3;
  iv.flags = SKIFF_EP_F_INGRESS_ISOLATED;
  auto d = Decode(SKIFF_STR(SKIFF_MAP_IPCACHE4), ik, iv);
  EXPECT_EQ(d["key.cidr"], "10.244.1.11/32");
  EXPECT_EQ(d["value.identity"], "host");
  EXPECT_EQ(d["value.endpoint_id"], "3");
  EXPECT_EQ(d["value.flags"], "ingress-isolated");

  // TCP ports 8192-8199: the port prefix keeps the top 13 bits.
  skiff_policy_key pk{};
  pk.prefixlen = SKIFF_POLICY_PREFIX_ANY_PORT + 13;
  pk.endpoint_id = 3;
  pk.identity = 256;
  pk.direction = SKIFF_POLICY_INGRESS;
  pk.proto = IPPROTO_TCP;
  pk.dport = htons(8192);
  skiff_policy_val pv{};
  pv.rule_id = 12;
  d = Decode(SKIFF_STR(SKIFF_MAP_POLICY4), pk, pv);
  EXPECT_EQ(d["key.direction"], "ingress");
  EXPECT_EQ(d["key.identity"], "256");
  EXPECT_EQ(d["key.proto"], "TCP");
  EXPECT_EQ(d["key.ports"], "8192-8199");
  EXPECT_EQ(d["value.rule_id"], "12");
}

TEST(MapDecode, HostRouteCacheEntry) {
  skiff_host_route4_key k{};
  k.daddr = Ip("10.244.0.20");
  k.saddr = Ip("10.244.0.10");
  k.ifindex = 7;
  k.proto = IPPROTO_UDP;
  skiff_host_route4 r{};
  r.expires = 123456789;
  r.ifindex = 9;
  r.mtu = 1450;
  const uint8_t dmac[6] = {0x02, 0, 0, 0, 0x0b, 0x0b}, smac[6] = {0x02, 0, 0, 0, 0xbb, 0x01};
  std::memcpy(r.dmac, dmac, 6);
  std::memcpy(r.smac, smac, 6);
  auto d = Decode(SKIFF_STR(SKIFF_MAP_HOST_ROUTE4), k, r);
  EXPECT_EQ(d["key.dst"], "10.244.0.20");
  EXPECT_EQ(d["key.src"], "10.244.0.10");
  EXPECT_EQ(d["key.ifindex"], "7");
  EXPECT_EQ(d["key.proto"], "UDP");
  EXPECT_EQ(d["value.ifindex"], "9");
  EXPECT_EQ(d["value.mtu"], "1450");
  EXPECT_EQ(d["value.dmac"], "02:00:00:00:0b:0b");
  EXPECT_EQ(d["value.smac"], "02:00:00:00:bb:01");
  EXPECT_EQ(d["value.expires_ns"], "123456789");
}

TEST(MapDecode, EndpointIfaceNamesTheInterface) {
  skiff_endpoint_iface v{};
  auto d = Decode(SKIFF_STR(SKIFF_MAP_ENDPOINT_IFACES), __u32{1}, v);  // loopback: ifindex 1
  EXPECT_EQ(d["key.ifindex"], "1");
  EXPECT_EQ(d["key.name"], "lo");
  EXPECT_EQ(d["value.flags"], "0");
  d = Decode(SKIFF_STR(SKIFF_MAP_ENDPOINT_IFACES), __u32{0x7ffffff0}, v);
  EXPECT_EQ(d["key.name"], "(gone)");
}

TEST(MapDecode, UnknownMapIsHex) {
  uint32_t k = 0x01020304, v = 0xa0b0c0d0;
  auto d = Decode("some_other_map", k, v);
  EXPECT_EQ(d["key.hex"], "04030201");
  EXPECT_EQ(d["value.hex"], "d0c0b0a0");
}

}  // namespace
}  // namespace skiff::api
