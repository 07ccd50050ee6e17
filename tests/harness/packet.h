// Packet builder and decoder for datapath tests: well-formed Ethernet/IPv4/IPv6 frames with
// TCP, UDP, ICMP and ICMPv6 and correct checksums by default, plus knobs to make them
// malformed (truncation, bad IHL, IP options, fragments, IPv6 extension headers). The decoder
// turns a frame into named fields so a test failure reads as "ip.dst: expected 10.0.0.2, got
// 10.96.0.10", and checksums are recomputed here independently of the BPF code.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace skiff::testing {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

namespace tcp {
inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
}

// Network-byte-order IPv4 address from dotted quad (aborts the test binary on bad input).
uint32_t Ip4(std::string_view dotted);
std::array<uint8_t, 16> Ip6(std::string_view text);
std::string Ip4String(uint32_t be_addr);

// Internet checksum (RFC 1071) over bytes, starting from a partial sum.
uint16_t InetChecksum(const uint8_t* data, size_t len, uint32_t sum = 0);

class PacketBuilder {
 public:
  PacketBuilder& Eth(Mac src, Mac dst);
  PacketBuilder& EtherType(uint16_t type);  // override the EtherType derived from L3
  PacketBuilder& Ipv4(std::string_view src, std::string_view dst);
  PacketBuilder& Ipv6(std::string_view src, std::string_view dst);
  PacketBuilder& Ttl(uint8_t ttl);
  PacketBuilder& IpId(uint16_t id);
  PacketBuilder& Ipv4Options(Bytes options);  // padded with zeros to a multiple of 4
  PacketBuilder& ForceIhl(uint8_t ihl);       // write this IHL whatever the header holds
  PacketBuilder& ForceTotalLength(uint16_t len);
  PacketBuilder& ForceIpVersion(uint8_t version);
  // IPv4: flags/offset in the header. IPv6: adds a fragment extension header.
  PacketBuilder& Fragment(uint16_t offset_bytes, bool more_fragments);
  // IPv6 extension header (hop-by-hop 0, routing 43, destination options 60) of len bytes
  // (multiple of 8, at least 8), in the order added.
  PacketBuilder& Ipv6ExtHeader(uint8_t type, size_t len = 8);
  PacketBuilder& Tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq = 1,
                     uint32_t ack = 0);
  PacketBuilder& ForceTcpDataOffset(uint8_t doff);
  PacketBuilder& TcpWindow(uint16_t window);  // default 65535
  PacketBuilder& DontFragment();              // IPv4 DF bit
  PacketBuilder& Udp(uint16_t sport, uint16_t dport);
  // ICMP (IPv4) or ICMPv6 (IPv6) echo or other message without a quoted packet.
  PacketBuilder& Icmp(uint8_t type, uint8_t code, uint16_t id = 0, uint16_t seq = 0);
  // ICMP error quoting `inner_l3` (an IP packet, e.g. PacketBuilder().....BuildL3()).
  PacketBuilder& IcmpError(uint8_t type, uint8_t code, Bytes inner_l3, uint32_t rest = 0);
  PacketBuilder& L4Proto(uint8_t proto);  // bare L4 protocol number, no header
  PacketBuilder& Payload(Bytes payload);
  PacketBuilder& Payload(std::string_view payload);
  PacketBuilder& Truncate(size_t frame_len);  // cut the final frame to this many bytes
  PacketBuilder& CorruptL4Checksum();

  Bytes Build() const;    // Ethernet frame
  Bytes BuildL3() const;  // IP packet without Ethernet (for quoting in ICMP errors)

 private:
  enum class L4 { kNone, kTcp, kUdp, kIcmp, kIcmpError, kRaw };
  Mac eth_src_{0x02, 0, 0, 0, 0, 0x01};
  Mac eth_dst_{0x02, 0, 0, 0, 0, 0x02};
  std::optional<uint16_t> ether_type_;
  int family_ = 0;  // 4 or 6
  std::array<uint8_t, 16> src_{}, dst_{};
  uint8_t ttl_ = 64;
  uint16_t ip_id_ = 0x1234;
  Bytes ip_options_;
  std::optional<uint8_t> force_ihl_, force_version_, force_doff_;
  std::optional<uint16_t> force_tot_len_;
  std::optional<std::pair<uint16_t, bool>> frag_;
  std::vector<std::pair<uint8_t, size_t>> ext_headers_;
  L4 l4_ = L4::kNone;
  uint8_t raw_proto_ = 0;
  uint16_t sport_ = 0, dport_ = 0;
  uint8_t tcp_flags_ = 0;
  uint32_t seq_ = 0, ack_ = 0;
  uint16_t tcp_window_ = 65535;
  bool dont_fragment_ = false;
  uint8_t icmp_type_ = 0, icmp_code_ = 0;
  uint16_t icmp_id_ = 0, icmp_seq_ = 0;
  uint32_t icmp_rest_ = 0;
  Bytes inner_;
  Bytes payload_;
  std::optional<size_t> truncate_;
  bool corrupt_l4_csum_ = false;

  Bytes BuildL4(uint8_t* proto_out) const;
};

// One named field of a decoded frame, e.g. {"ip.dst", "10.0.0.2"}.
struct Field {
  std::string name;
  std::string value;
  bool operator==(const Field&) const = default;
};

// Decodes a frame into fields in header order; checksums are verified and shown as
// "0xabcd (valid)" or "0xabcd (BAD, expected 0x1234)". Quoted packets in ICMP errors are
// decoded with the prefix "inner.".
std::vector<Field> Decode(const Bytes& frame);

// Empty when equal; otherwise one line per differing field (and the first differing byte
// offset when the fields agree but the bytes do not).
std::string PacketDiff(const Bytes& expected, const Bytes& actual);

// True when every IP header and L4 checksum in the frame (inner ones included) is valid.
bool ChecksumsValid(const Bytes& frame, std::string* why = nullptr);

}  // namespace skiff::testing

#define EXPECT_PACKET_EQ(expected, actual)                                                        \
  do {                                                                                            \
    std::string skiff_diff_ = ::skiff::testing::PacketDiff((expected), (actual));                 \
    EXPECT_TRUE(skiff_diff_.empty()) << "packet differs from the expected one:\n" << skiff_diff_; \
  } while (0)
