// The packet builder and decoder are the yardstick of every datapath test, so they are
// checked against values computed by hand here.
#include "tests/harness/packet.h"

#include <gtest/gtest.h>

#include "maps/drop_reasons.h"

namespace skiff::testing {
namespace {

TEST(InetChecksum, MatchesTextbookExample) {
  // The IPv4 header from RFC 1071-style worked examples: checksum 0xb861.
  Bytes hdr = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
               0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(InetChecksum(hdr.data(), hdr.size()), 0xb861);
}

TEST(PacketBuilder, Ipv4TcpHasValidChecksumsAndFields) {
  Bytes f = PacketBuilder().Ipv4("10.0.0.1", "10.0.0.2").Tcp(1000, 80, tcp::kSyn).Build();
  ASSERT_EQ(f.size(), 14u + 20 + 20);
  std::string why;
  EXPECT_TRUE(ChecksumsValid(f, &why)) << why;
  auto fields = Decode(f);
  auto get = [&](const std::string& n) {
    for (auto& x : fields)
      if (x.name == n) return x.value;
    return std::string("<missing>");
  };
  EXPECT_EQ(get("ip.src"), "10.0.0.1");
  EXPECT_EQ(get("ip.dst"), "10.0.0.2");
  EXPECT_EQ(get("tcp.sport"), "1000");
  EXPECT_EQ(get("tcp.flags"), "0x0002");
}

TEST(PacketBuilder, UdpIpv6AndIcmpErrorChecksumsValid) {
  std::string why;
  EXPECT_TRUE(ChecksumsValid(
      PacketBuilder().Ipv6("fd00::1", "fd00::2").Udp(1, 2).Payload("x").Build(), &why))
      << why;
  EXPECT_TRUE(
      ChecksumsValid(PacketBuilder().Ipv6("fd00::1", "fd00::2").Icmp(128, 0, 1, 2).Build(), &why))
      << why;
  Bytes inner = PacketBuilder().Ipv4("10.0.0.1", "10.0.0.2").Udp(1, 2).BuildL3();
  EXPECT_TRUE(ChecksumsValid(
      PacketBuilder().Ipv4("10.0.0.2", "10.0.0.1").IcmpError(3, 3, inner).Build(), &why))
      << why;
}

TEST(PacketBuilder, CorruptedChecksumIsReported) {
  Bytes f = PacketBuilder().Ipv4("10.0.0.1", "10.0.0.2").Udp(1, 2).CorruptL4Checksum().Build();
  std::string why;
  EXPECT_FALSE(ChecksumsValid(f, &why));
  EXPECT_NE(why.find("udp.csum"), std::string::npos) << why;
}

TEST(PacketDiff, NamesTheDifferingField) {
  Bytes a = PacketBuilder().Ipv4("10.0.0.1", "10.0.0.2").Tcp(1, 80, tcp::kSyn).Build();
  Bytes b = PacketBuilder().Ipv4("10.0.0.1", "10.0.0.3").Tcp(1, 80, tcp::kSyn).Build();
  std::string d = PacketDiff(a, b);
  EXPECT_NE(d.find("ip.dst: expected 10.0.0.2, got 10.0.0.3"), std::string::npos) << d;
  EXPECT_TRUE(PacketDiff(a, a).empty());
}

TEST(PacketBuilder, MalformedKnobs) {
  Bytes f = PacketBuilder().Ipv4("10.0.0.1", "10.0.0.2").ForceIhl(4).Udp(1, 2).Build();
  EXPECT_EQ(f[14] & 0x0f, 4);
  Bytes t = PacketBuilder().Ipv4("10.0.0.1", "10.0.0.2").Udp(1, 2).Truncate(20).Build();
  EXPECT_EQ(t.size(), 20u);
  Bytes fr = PacketBuilder().Ipv4("10.0.0.1", "10.0.0.2").Fragment(8, true).Udp(1, 2).Build();
  EXPECT_EQ((fr[14 + 6] << 8 | fr[14 + 7]), 0x2001);
}

TEST(DropReasons, NeverCollideWithVerdictsAndHaveNames) {
  int n = 0;
#define CHECK_REASON(name, code, desc)                         \
  EXPECT_LE(code, -130);                                       \
  EXPECT_STREQ(SkiffDropReasonName(code), #name);              \
  EXPECT_EQ(SKIFF_DROP_INDEX(code), static_cast<unsigned>(n)); \
  n++;
  SKIFF_DROP_REASONS(CHECK_REASON)
#undef CHECK_REASON
  EXPECT_EQ(n, SKIFF_DROP_COUNT);
}

}  // namespace
}  // namespace skiff::testing
