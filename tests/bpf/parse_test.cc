// bpf/lib/parse.h through real BPF_PROG_TEST_RUN calls: the test program stores what the
// parser extracted in the `parse_out` map; each case checks the verdict and those fields.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <gtest/gtest.h>

#include "agent/loader/skeleton.h"
#include "maps/map.h"
#include "maps/drop_reasons.h"
#include "maps/packet.h"
#include "parse_test.skel.h"
#include "tests/harness/bpf_case.h"
#include "tests/harness/privileged.h"

namespace skiff::testing {
namespace {

struct ParseEnv {
  Skeleton<parse_test_bpf> skel;
  Map<__u32, skiff_parse_result> out;

  skiff_parse_result Result() {
    auto v = out.Lookup(0);
    EXPECT_TRUE(v.ok() && v->has_value());
    return v.ok() && v->has_value() ? **v : skiff_parse_result{};
  }
};

// Expected parser output; only the fields a case names are compared.
struct Want {
  int rc = 0;
  int family = SKIFF_AF_INET;
  int l4_proto = -1;
  int flags = 0;
  int l4_off = -1;
  int sport = -1, dport = -1;
  int tcp_flags = -1;
  int icmp_type = -1;
  const char* saddr = nullptr;
  const char* daddr = nullptr;
};

std::function<void(ParseEnv&, const RunResult&)> Expect(Want w) {
  return [w](ParseEnv& env, const RunResult&) {
    skiff_parse_result r = env.Result();
    EXPECT_EQ(r.rc, w.rc) << "parser returned " << r.rc << ", expected " << w.rc;
    if (w.rc != 0) {
      EXPECT_STREQ(SkiffDropReasonName(r.rc), SkiffDropReasonName(w.rc));
      return;
    }
    EXPECT_EQ(r.pkt.family, w.family);
    EXPECT_EQ(r.pkt.flags, w.flags);
    if (w.l4_proto >= 0) {
      EXPECT_EQ(r.pkt.l4_proto, w.l4_proto);
    }
    if (w.l4_off >= 0) {
      EXPECT_EQ(r.pkt.l4_off, w.l4_off);
    }
    if (w.sport >= 0) {
      EXPECT_EQ(ntohs(r.pkt.sport), w.sport);
    }
    if (w.dport >= 0) {
      EXPECT_EQ(ntohs(r.pkt.dport), w.dport);
    }
    if (w.tcp_flags >= 0) {
      EXPECT_EQ(r.pkt.tcp_flags, w.tcp_flags);
    }
    if (w.icmp_type >= 0) {
      EXPECT_EQ(r.pkt.icmp_type, w.icmp_type);
    }
    if (w.saddr && r.pkt.family == SKIFF_AF_INET) {
      EXPECT_EQ(Ip4String(r.pkt.saddr[0]), w.saddr);
    }
    if (w.daddr && r.pkt.family == SKIFF_AF_INET) {
      EXPECT_EQ(Ip4String(r.pkt.daddr[0]), w.daddr);
    }
    if (w.saddr && r.pkt.family == SKIFF_AF_INET6) {
      auto a = Ip6(w.saddr);
      EXPECT_EQ(0, std::memcmp(r.pkt.saddr, a.data(), 16)) << "saddr != " << w.saddr;
    }
  };
}

using Case = BpfCase<ParseEnv>;

Case Ok(std::string name, std::string desc, Bytes in, Want w) {
  return Case{std::move(name), std::move(desc), std::move(in), nullptr,
              TC_ACT_OK,       std::nullopt,    Expect(w)};
}
Case Bad(std::string name, std::string desc, Bytes in, int reason) {
  Want w;
  w.rc = reason;
  return Case{std::move(name), std::move(desc), std::move(in), nullptr,
              TC_ACT_SHOT,     std::nullopt,    Expect(w)};
}

PacketBuilder V4() { return PacketBuilder().Ipv4("10.0.1.5", "10.96.0.10"); }
PacketBuilder V6() { return PacketBuilder().Ipv6("fd00::5", "fd00:96::10"); }

std::vector<Case> Cases() {
  std::vector<Case> c;
  c.push_back(Ok("ipv4_tcp_syn", "IPv4 TCP SYN: addresses, ports, flags",
                 V4().Tcp(40000, 80, tcp::kSyn).Build(),
                 {.l4_proto = IPPROTO_TCP,
                  .l4_off = 34,
                  .sport = 40000,
                  .dport = 80,
                  .tcp_flags = tcp::kSyn,
                  .saddr = "10.0.1.5",
                  .daddr = "10.96.0.10"}));
  c.push_back(Ok("ipv4_udp", "IPv4 UDP with payload", V4().Udp(5353, 53).Payload("query").Build(),
                 {.l4_proto = IPPROTO_UDP, .l4_off = 34, .sport = 5353, .dport = 53}));
  c.push_back(Ok("ipv4_icmp_echo", "ICMP echo: identifier in sport",
                 V4().Icmp(8, 0, 0x4242, 1).Build(),
                 {.l4_proto = IPPROTO_ICMP, .sport = 0x4242, .dport = 0, .icmp_type = 8}));
  c.push_back(Ok("ipv4_icmp_port_unreachable", "ICMP error quoting a UDP packet",
                 PacketBuilder()
                     .Ipv4("10.0.2.7", "10.0.1.5")
                     .IcmpError(3, 3, V4().Udp(5353, 53).BuildL3())
                     .Build(),
                 {.l4_proto = IPPROTO_ICMP, .sport = 0, .icmp_type = 3}));
  c.push_back(Ok("ipv6_tcp", "IPv6 TCP", V6().Tcp(40001, 443, tcp::kSyn | tcp::kAck).Build(),
                 {.family = SKIFF_AF_INET6,
                  .l4_proto = IPPROTO_TCP,
                  .l4_off = 54,
                  .sport = 40001,
                  .dport = 443,
                  .tcp_flags = 0x12,
                  .saddr = "fd00::5"}));
  c.push_back(Ok("ipv6_udp", "IPv6 UDP", V6().Udp(1000, 53).Build(),
                 {.family = SKIFF_AF_INET6, .l4_proto = IPPROTO_UDP, .sport = 1000, .dport = 53}));
  c.push_back(
      Ok("ipv6_icmp6_echo", "ICMPv6 echo request: identifier in sport",
         V6().Icmp(128, 0, 7, 1).Build(),
         {.family = SKIFF_AF_INET6, .l4_proto = IPPROTO_ICMPV6, .sport = 7, .icmp_type = 128}));
  c.push_back(Ok("arp_passes", "a non-IP frame is not parsed and passes",
                 PacketBuilder().Payload(Bytes(28, 0)).Build(), {.family = SKIFF_AF_NONE}));
  c.push_back(Ok("ipv4_sctp_no_ports", "other L4 protocols carry no ports",
                 V4().L4Proto(132).Payload(Bytes(12, 1)).Build(),
                 {.l4_proto = 132, .sport = 0, .dport = 0}));
  c.push_back(Ok("ipv4_options", "IHL 6: L4 found after the options",
                 V4().Ipv4Options({0x94, 0x04, 0, 0}).Tcp(1, 2, tcp::kAck).Build(),
                 {.l4_proto = IPPROTO_TCP,
                  .flags = SKIFF_PKT_F_IP_OPTIONS,
                  .l4_off = 38,
                  .sport = 1,
                  .dport = 2}));
  {
    Bytes padded = V4().Udp(7, 9).Build();
    padded.resize(padded.size() + 18, 0);  // Ethernet minimum-size padding
    c.push_back(Ok("ipv4_ethernet_padding", "frame longer than the IP packet (padding) is fine",
                   padded, {.l4_proto = IPPROTO_UDP, .sport = 7, .dport = 9}));
  }
  c.push_back(
      Ok("ipv4_first_fragment", "first fragment: ports parsed, marked fragment",
         V4().Fragment(0, true).Udp(1234, 53).Payload(Bytes(16, 0)).Build(),
         {.l4_proto = IPPROTO_UDP, .flags = SKIFF_PKT_F_FRAGMENT, .sport = 1234, .dport = 53}));
  c.push_back(Ok("ipv4_later_fragment", "later fragment: no L4 header, no ports",
                 V4().Fragment(1480, false).Udp(1234, 53).Payload(Bytes(16, 0)).Build(),
                 {.l4_proto = IPPROTO_UDP,
                  .flags = SKIFF_PKT_F_FRAGMENT | SKIFF_PKT_F_LATER_FRAGMENT,
                  .l4_off = 0,
                  .sport = 0,
                  .dport = 0}));
  c.push_back(Ok("ipv6_hop_by_hop", "IPv6 hop-by-hop header then TCP",
                 V6().Ipv6ExtHeader(0, 8).Tcp(5, 6, tcp::kSyn).Build(),
                 {.family = SKIFF_AF_INET6,
                  .l4_proto = IPPROTO_TCP,
                  .flags = SKIFF_PKT_F_IP_OPTIONS,
                  .l4_off = 62,
                  .sport = 5,
                  .dport = 6}));
  c.push_back(Ok("ipv6_first_fragment", "IPv6 fragment header, offset 0",
                 V6().Fragment(0, true).Udp(11, 12).Build(),
                 {.family = SKIFF_AF_INET6,
                  .l4_proto = IPPROTO_UDP,
                  .flags = SKIFF_PKT_F_FRAGMENT,
                  .sport = 11,
                  .dport = 12}));
  c.push_back(Ok("ipv6_later_fragment", "IPv6 later fragment: no ports",
                 V6().Fragment(1232, false).Udp(11, 12).Payload(Bytes(8, 0)).Build(),
                 {.family = SKIFF_AF_INET6,
                  .l4_proto = IPPROTO_UDP,
                  .flags = SKIFF_PKT_F_FRAGMENT | SKIFF_PKT_F_LATER_FRAGMENT,
                  .sport = 0}));
  c.push_back(Ok("ipv6_no_next_header", "IPv6 with next header 59 (none)", V6().Build(),
                 {.family = SKIFF_AF_INET6, .l4_proto = 0}));

  c.push_back(Bad("ipv4_header_truncated", "EtherType IPv4 but only 10 bytes of header",
                  V4().Tcp(1, 2, 0).Truncate(24).Build(), SKIFF_DROP_TRUNCATED_L3));
  c.push_back(Bad("ipv4_no_header", "EtherType IPv4 and nothing after Ethernet",
                  V4().Tcp(1, 2, 0).Truncate(14).Build(), SKIFF_DROP_TRUNCATED_L3));
  c.push_back(Bad("ipv4_bad_ihl", "IHL 4 is below the minimum",
                  V4().ForceIhl(4).Tcp(1, 2, 0).Build(), SKIFF_DROP_BAD_IHL));
  c.push_back(Bad("ipv4_ihl_beyond_frame", "IHL 15 points past the end of a short frame",
                  V4().ForceIhl(15).Build(), SKIFF_DROP_TRUNCATED_L3));
  c.push_back(Bad("ipv4_version_mismatch", "EtherType IPv4 with version 6 in the header",
                  V4().ForceIpVersion(6).Tcp(1, 2, 0).Build(), SKIFF_DROP_BAD_IP_VERSION));
  c.push_back(Bad("ipv4_total_length_too_long", "total length claims more than the frame",
                  V4().ForceTotalLength(1500).Tcp(1, 2, 0).Build(), SKIFF_DROP_BAD_IP_LENGTH));
  c.push_back(Bad("ipv4_total_length_too_short", "total length shorter than the header",
                  V4().ForceTotalLength(12).Tcp(1, 2, 0).Build(), SKIFF_DROP_BAD_IP_LENGTH));
  {
    Bytes cut = V4().Tcp(1, 2, tcp::kSyn).Build();
    cut.resize(14 + 20 + 10);
    cut[16] = 0;
    cut[17] = 30;  // total length consistent with the cut frame
    c.push_back(
        Bad("ipv4_tcp_truncated", "only 10 bytes of TCP header", cut, SKIFF_DROP_TRUNCATED_L4));
  }
  c.push_back(Bad("ipv4_tcp_bad_doff", "TCP data offset 3 is below the minimum",
                  V4().Tcp(1, 2, tcp::kSyn).ForceTcpDataOffset(3).Build(),
                  SKIFF_DROP_BAD_L4_HEADER));
  c.push_back(Bad("ipv4_tcp_doff_beyond_frame", "TCP data offset 15 past the end of the frame",
                  V4().Tcp(1, 2, tcp::kSyn).ForceTcpDataOffset(15).Build(),
                  SKIFF_DROP_TRUNCATED_L4));
  {
    Bytes cut = V4().Udp(1, 2).Build();
    cut.resize(14 + 20 + 4);
    cut[17] = 24;
    c.push_back(Bad("ipv4_udp_truncated", "4 bytes of UDP header", cut, SKIFF_DROP_TRUNCATED_L4));
  }
  {
    Bytes cut = V4().Icmp(8, 0, 1, 1).Build();
    cut.resize(14 + 20 + 4);
    cut[17] = 24;
    c.push_back(Bad("ipv4_icmp_truncated", "4 bytes of ICMP header", cut, SKIFF_DROP_TRUNCATED_L4));
  }
  c.push_back(Bad("ipv6_header_truncated", "EtherType IPv6 with 30 bytes of header",
                  V6().Udp(1, 2).Truncate(14 + 30).Build(), SKIFF_DROP_TRUNCATED_L3));
  c.push_back(Bad("ipv6_payload_length_too_long", "payload length past the frame",
                  V6().ForceTotalLength(400).Udp(1, 2).Build(), SKIFF_DROP_BAD_IP_LENGTH));
  c.push_back(Bad("ipv6_too_many_ext_headers", "five extension headers exceed the bound",
                  V6().Ipv6ExtHeader(0)
                      .Ipv6ExtHeader(60)
                      .Ipv6ExtHeader(60)
                      .Ipv6ExtHeader(60)
                      .Ipv6ExtHeader(60)
                      .Udp(1, 2)
                      .Build(),
                  SKIFF_DROP_IPV6_EXT_HEADERS));
  c.push_back(Bad("ipv6_version_mismatch", "EtherType IPv6 with version 4 in the header",
                  V6().ForceIpVersion(4).Udp(1, 2).Build(), SKIFF_DROP_BAD_IP_VERSION));
  return c;
}

class ParserTest : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    if (!HavePrivileges()) return;
    PinToCpu(0);
    auto skel = OpenSkeleton<parse_test_bpf>(parse_test_bpf__open, parse_test_bpf__destroy);
    ASSERT_TRUE(skel.ok()) << skel.status();
    ASSERT_TRUE(skel->Load(parse_test_bpf__load).ok());
    env_ = new ParseEnv{std::move(*skel), {}};
    auto m = Map<__u32, skiff_parse_result>::From(env_->skel->maps.parse_out);
    ASSERT_TRUE(m.ok()) << m.status();
    env_->out = *m;
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  static ParseEnv* env_;
};
ParseEnv* ParserTest::env_ = nullptr;

// The kernel's skb test-run refuses frames whose IP header is shorter than the EtherType
// promises (EINVAL before any program runs), so those run through the XDP entry only; a
// real veth can still deliver them to tc, which is why the parser checks them too.
bool TcTestRunRefuses(const Case& c) {
  return c.name == "ipv4_header_truncated" || c.name == "ipv4_no_header" ||
         c.name == "ipv6_header_truncated";
}

std::vector<Case> TcCases() {
  std::vector<Case> out;
  for (auto& c : Cases())
    if (!TcTestRunRefuses(c)) out.push_back(c);
  return out;
}

std::vector<Case> XdpCases() {
  std::vector<Case> out = Cases();
  for (auto& c : out) c.verdict = c.verdict == TC_ACT_OK ? XDP_PASS : XDP_DROP;
  return out;
}

void RunParse(ParseEnv* env, ProgKind kind, const Case& c) {
  ASSERT_NE(env, nullptr) << "parser skeleton failed to load";
  ASSERT_TRUE(env->out.Update(0, skiff_parse_result{}).ok());
  int fd = bpf_program__fd(kind == ProgKind::kTc ? env->skel->progs.parse_test
                                                 : env->skel->progs.parse_test_xdp);
  RunBpfCase(kind, fd, *env, c);
  EXPECT_EQ(env->Result().runs, 1u) << "the program did not run exactly once";
}

class ParserTcTest : public ParserTest {};
class ParserXdpTest : public ParserTest {};

TEST_P(ParserTcTest, Parses) {
  SKIFF_REQUIRE_PRIVILEGED();
  RunParse(env_, ProgKind::kTc, GetParam());
}

TEST_P(ParserXdpTest, Parses) {
  SKIFF_REQUIRE_PRIVILEGED();
  RunParse(env_, ProgKind::kXdp, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Tc, ParserTcTest, ::testing::ValuesIn(TcCases()), BpfCaseName());
INSTANTIATE_TEST_SUITE_P(Xdp, ParserXdpTest, ::testing::ValuesIn(XdpCases()), BpfCaseName());

}  // namespace
}  // namespace skiff::testing
