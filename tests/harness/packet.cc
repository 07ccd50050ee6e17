#include "tests/harness/packet.h"

#include <arpa/inet.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace skiff::testing {
namespace {

constexpr uint8_t kProtoIcmp = 1, kProtoTcp = 6, kProtoUdp = 17, kProtoFrag6 = 44, kProtoIcmp6 = 58,
                  kProtoNone6 = 59;

void Put16(Bytes& b, uint16_t v) {
  b.push_back(v >> 8);
  b.push_back(v & 0xff);
}
void Put32(Bytes& b, uint32_t v) {
  Put16(b, v >> 16);
  Put16(b, v & 0xffff);
}
void Set16(Bytes& b, size_t off, uint16_t v) {
  b[off] = v >> 8;
  b[off + 1] = v & 0xff;
}
uint16_t Get16(const Bytes& b, size_t off) { return (b[off] << 8) | b[off + 1]; }
uint32_t Get32(const Bytes& b, size_t off) { return (Get16(b, off) << 16) | Get16(b, off + 2); }

uint32_t SumBytes(const uint8_t* data, size_t len, uint32_t sum) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (len & 1) sum += data[len - 1] << 8;
  return sum;
}

// Pseudo-header partial sum for TCP/UDP/ICMPv6 checksums.
uint32_t PseudoSum(int family, const uint8_t* src, const uint8_t* dst, uint8_t proto,
                   uint32_t len) {
  size_t alen = family == 4 ? 4 : 16;
  uint32_t sum = SumBytes(src, alen, 0);
  sum = SumBytes(dst, alen, sum);
  sum += proto;
  sum += len >> 16;
  sum += len & 0xffff;
  return sum;
}

std::string Hex16(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%04x", v);
  return buf;
}

std::string MacString(const Bytes& b, size_t off) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", b[off], b[off + 1], b[off + 2],
                b[off + 3], b[off + 4], b[off + 5]);
  return buf;
}

std::string Ip6String(const uint8_t* a) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, a, buf, sizeof(buf));
  return buf;
}

std::string CsumField(uint16_t have, uint16_t computed_ok_is_zero, uint16_t expected) {
  if (computed_ok_is_zero == 0) return Hex16(have) + " (valid)";
  return Hex16(have) + " (BAD, expected " + Hex16(expected) + ")";
}

// Decodes an IP packet at `off` (inclusive) up to `end`; appends fields with `prefix`.
void DecodeL3(const Bytes& b, size_t off, size_t end, const std::string& prefix, bool quoted,
              std::vector<Field>& out);

void DecodeL4(const Bytes& b, size_t off, size_t end, int family, const uint8_t* src,
              const uint8_t* dst, uint8_t proto, bool is_fragment, const std::string& p,
              bool quoted, std::vector<Field>& out) {
  size_t avail = end > off ? end - off : 0;
  auto add = [&](std::string n, std::string v) { out.push_back({p + n, std::move(v)}); };
  auto l4_csum = [&](size_t csum_off, bool pseudo) -> std::string {
    uint16_t have = Get16(b, off + csum_off);
    if (quoted || is_fragment) return Hex16(have) + " (not checked)";
    Bytes tmp(b.begin() + off, b.begin() + end);
    tmp[csum_off] = tmp[csum_off + 1] = 0;
    uint32_t sum = pseudo ? PseudoSum(family, src, dst, proto, avail) : 0;
    uint16_t expected = InetChecksum(tmp.data(), tmp.size(), sum);
    if (proto == kProtoUdp && expected == 0) expected = 0xffff;
    if (proto == kProtoUdp && have == 0 && family == 4) return Hex16(have) + " (none)";
    return CsumField(have, have == expected ? 0 : 1, expected);
  };
  if (proto == kProtoTcp) {
    if (avail < 4) return add("tcp", "truncated (" + std::to_string(avail) + " bytes)");
    add("tcp.sport", std::to_string(Get16(b, off)));
    add("tcp.dport", std::to_string(Get16(b, off + 2)));
    if (avail < 20) return add("tcp", "truncated (" + std::to_string(avail) + " bytes)");
    add("tcp.seq", std::to_string(Get32(b, off + 4)));
    add("tcp.ack", std::to_string(Get32(b, off + 8)));
    add("tcp.doff", std::to_string(b[off + 12] >> 4));
    add("tcp.flags", Hex16(b[off + 13]));
    add("tcp.window", std::to_string(Get16(b, off + 14)));
    add("tcp.csum", l4_csum(16, true));
    add("payload.len", std::to_string(avail - std::min<size_t>(avail, (b[off + 12] >> 4) * 4)));
  } else if (proto == kProtoUdp) {
    if (avail < 4) return add("udp", "truncated (" + std::to_string(avail) + " bytes)");
    add("udp.sport", std::to_string(Get16(b, off)));
    add("udp.dport", std::to_string(Get16(b, off + 2)));
    if (avail < 8) return add("udp", "truncated (" + std::to_string(avail) + " bytes)");
    add("udp.len", std::to_string(Get16(b, off + 4)));
    add("udp.csum", l4_csum(6, true));
    add("payload.len", std::to_string(avail - 8));
  } else if (proto == kProtoIcmp || proto == kProtoIcmp6) {
    std::string n = proto == kProtoIcmp ? "icmp" : "icmp6";
    if (avail < 8) return add(n, "truncated (" + std::to_string(avail) + " bytes)");
    uint8_t type = b[off];
    add(n + ".type", std::to_string(type));
    add(n + ".code", std::to_string(b[off + 1]));
    add(n + ".csum", l4_csum(2, proto == kProtoIcmp6));
    add(n + ".rest", Hex16(Get16(b, off + 4)) + " " + Hex16(Get16(b, off + 6)));
    bool is_error =
        proto == kProtoIcmp ? (type == 3 || type == 11 || type == 12) : (type >= 1 && type <= 4);
    if (is_error && !quoted)
      DecodeL3(b, off + 8, end, p + "inner.", /*quoted=*/true, out);
    else
      add("payload.len", std::to_string(avail - 8));
  } else {
    add("l4.bytes", std::to_string(avail));
  }
}

void DecodeL3(const Bytes& b, size_t off, size_t end, const std::string& p, bool quoted,
              std::vector<Field>& out) {
  auto add = [&](std::string n, std::string v) { out.push_back({p + n, std::move(v)}); };
  if (off >= end) return add("ip", "absent");
  int version = b[off] >> 4;
  if (version == 4) {
    if (end - off < 20) return add("ip", "truncated (" + std::to_string(end - off) + " bytes)");
    size_t ihl = (b[off] & 0xf) * 4;
    uint16_t tot = Get16(b, off + 2);
    uint16_t frag = Get16(b, off + 6);
    add("ip.version", "4");
    add("ip.ihl", std::to_string(ihl / 4));
    add("ip.tos", Hex16(b[off + 1]));
    add("ip.tot_len", std::to_string(tot));
    add("ip.id", Hex16(Get16(b, off + 4)));
    add("ip.frag", Hex16(frag));
    add("ip.ttl", std::to_string(b[off + 8]));
    add("ip.proto", std::to_string(b[off + 9]));
    if (ihl < 20 || off + ihl > end) return add("ip.csum", Hex16(Get16(b, off + 10)));
    Bytes hdr(b.begin() + off, b.begin() + off + ihl);
    hdr[10] = hdr[11] = 0;
    uint16_t expected = InetChecksum(hdr.data(), hdr.size());
    uint16_t have = Get16(b, off + 10);
    add("ip.csum", CsumField(have, have == expected ? 0 : 1, expected));
    add("ip.src", Ip4String(htonl(Get32(b, off + 12))));
    add("ip.dst", Ip4String(htonl(Get32(b, off + 16))));
    if (ihl > 20) add("ip.options.len", std::to_string(ihl - 20));
    size_t l3_end = quoted ? end : std::min(end, off + tot);
    if (frag & 0x1fff)
      return add("l4", "later fragment (" + std::to_string(l3_end - off - ihl) + " bytes)");
    DecodeL4(b, off + ihl, l3_end, 4, &b[off + 12], &b[off + 16], b[off + 9], (frag & 0x2000) != 0,
             p, quoted, out);
  } else if (version == 6) {
    if (end - off < 40) return add("ip6", "truncated (" + std::to_string(end - off) + " bytes)");
    uint16_t plen = Get16(b, off + 4);
    add("ip6.payload_len", std::to_string(plen));
    add("ip6.hop_limit", std::to_string(b[off + 7]));
    add("ip6.src", Ip6String(&b[off + 8]));
    add("ip6.dst", Ip6String(&b[off + 24]));
    uint8_t nh = b[off + 6];
    size_t cur = off + 40;
    size_t l3_end = quoted ? end : std::min(end, off + 40 + plen);
    bool frag = false;
    for (int i = 0; i < 8; i++) {
      if (nh == 0 || nh == 43 || nh == 60) {
        if (cur + 2 > l3_end) return add("ip6.ext", "truncated");
        add("ip6.ext", std::to_string(nh) + " len " + std::to_string((b[cur + 1] + 1) * 8));
        uint8_t next = b[cur];
        cur += (b[cur + 1] + 1) * 8;
        nh = next;
      } else if (nh == kProtoFrag6) {
        if (cur + 8 > l3_end) return add("ip6.frag", "truncated");
        uint16_t fo = Get16(b, cur + 2);
        add("ip6.frag", Hex16(fo));
        frag = true;
        nh = b[cur];
        cur += 8;
        if (fo & ~7) return add("l4", "later fragment");
      } else {
        break;
      }
    }
    add("ip6.next", std::to_string(nh));
    if (nh == kProtoNone6) return;
    DecodeL4(b, cur, l3_end, 6, &b[off + 8], &b[off + 24], nh, frag, p, quoted, out);
  } else {
    add("ip.version", std::to_string(version) + " (invalid)");
  }
}

}  // namespace

uint32_t Ip4(std::string_view dotted) {
  in_addr a{};
  if (inet_pton(AF_INET, std::string(dotted).c_str(), &a) != 1) {
    std::fprintf(stderr, "bad IPv4 address in test: %s\n", std::string(dotted).c_str());
    std::abort();
  }
  return a.s_addr;
}

std::array<uint8_t, 16> Ip6(std::string_view text) {
  std::array<uint8_t, 16> a{};
  if (inet_pton(AF_INET6, std::string(text).c_str(), a.data()) != 1) {
    std::fprintf(stderr, "bad IPv6 address in test: %s\n", std::string(text).c_str());
    std::abort();
  }
  return a;
}

std::string Ip4String(uint32_t be_addr) {
  char buf[INET_ADDRSTRLEN];
  in_addr a{be_addr};
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

uint16_t InetChecksum(const uint8_t* data, size_t len, uint32_t sum) {
  sum = SumBytes(data, len, sum);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

PacketBuilder& PacketBuilder::Eth(Mac src, Mac dst) {
  eth_src_ = src;
  eth_dst_ = dst;
  return *this;
}
PacketBuilder& PacketBuilder::EtherType(uint16_t type) {
  ether_type_ = type;
  return *this;
}
PacketBuilder& PacketBuilder::Ipv4(std::string_view src, std::string_view dst) {
  family_ = 4;
  uint32_t s = Ip4(src), d = Ip4(dst);
  std::memcpy(src_.data(), &s, 4);
  std::memcpy(dst_.data(), &d, 4);
  return *this;
}
PacketBuilder& PacketBuilder::Ipv6(std::string_view src, std::string_view dst) {
  family_ = 6;
  src_ = Ip6(src);
  dst_ = Ip6(dst);
  return *this;
}
PacketBuilder& PacketBuilder::Ttl(uint8_t ttl) {
  ttl_ = ttl;
  return *this;
}
PacketBuilder& PacketBuilder::IpId(uint16_t id) {
  ip_id_ = id;
  return *this;
}
PacketBuilder& PacketBuilder::Ipv4Options(Bytes options) {
  ip_options_ = std::move(options);
  while (ip_options_.size() % 4) ip_options_.push_back(0);
  return *this;
}
PacketBuilder& PacketBuilder::ForceIhl(uint8_t ihl) {
  force_ihl_ = ihl;
  return *this;
}
PacketBuilder& PacketBuilder::ForceTotalLength(uint16_t len) {
  force_tot_len_ = len;
  return *this;
}
PacketBuilder& PacketBuilder::ForceIpVersion(uint8_t version) {
  force_version_ = version;
  return *this;
}
PacketBuilder& PacketBuilder::Fragment(uint16_t offset_bytes, bool more_fragments) {
  frag_ = {offset_bytes, more_fragments};
  return *this;
}
PacketBuilder& PacketBuilder::Ipv6ExtHeader(uint8_t type, size_t len) {
  ext_headers_.push_back({type, len});
  return *this;
}
PacketBuilder& PacketBuilder::Tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq,
                                  uint32_t ack) {
  l4_ = L4::kTcp;
  sport_ = sport;
  dport_ = dport;
  tcp_flags_ = flags;
  seq_ = seq;
  ack_ = ack;
  return *this;
}
PacketBuilder& PacketBuilder::ForceTcpDataOffset(uint8_t doff) {
  force_doff_ = doff;
  return *this;
}
PacketBuilder& PacketBuilder::TcpWindow(uint16_t window) {
  tcp_window_ = window;
  return *this;
}
PacketBuilder& PacketBuilder::DontFragment() {
  dont_fragment_ = true;
  return *this;
}
PacketBuilder& PacketBuilder::Udp(uint16_t sport, uint16_t dport) {
  l4_ = L4::kUdp;
  sport_ = sport;
  dport_ = dport;
  return *this;
}
PacketBuilder& PacketBuilder::Icmp(uint8_t type, uint8_t code, uint16_t id, uint16_t seq) {
  l4_ = L4::kIcmp;
  icmp_type_ = type;
  icmp_code_ = code;
  icmp_id_ = id;
  icmp_seq_ = seq;
  return *this;
}
PacketBuilder& PacketBuilder::IcmpError(uint8_t type, uint8_t code, Bytes inner_l3, uint32_t rest) {
  l4_ = L4::kIcmpError;
  icmp_type_ = type;
  icmp_code_ = code;
  icmp_rest_ = rest;
  inner_ = std::move(inner_l3);
  return *this;
}
PacketBuilder& PacketBuilder::L4Proto(uint8_t proto) {
  l4_ = L4::kRaw;
  raw_proto_ = proto;
  return *this;
}
PacketBuilder& PacketBuilder::Payload(Bytes payload) {
  payload_ = std::move(payload);
  return *this;
}
PacketBuilder& PacketBuilder::Payload(std::string_view payload) {
  payload_.assign(payload.begin(), payload.end());
  return *this;
}
PacketBuilder& PacketBuilder::Truncate(size_t frame_len) {
  truncate_ = frame_len;
  return *this;
}
PacketBuilder& PacketBuilder::CorruptL4Checksum() {
  corrupt_l4_csum_ = true;
  return *this;
}

Bytes PacketBuilder::BuildL4(uint8_t* proto_out) const {
  Bytes l4;
  size_t csum_off = 0;
  bool pseudo = true;
  switch (l4_) {
    case L4::kNone:
      *proto_out = family_ == 6 ? kProtoNone6 : 0xff;
      return payload_;
    case L4::kRaw:
      *proto_out = raw_proto_;
      return payload_;
    case L4::kTcp: {
      *proto_out = kProtoTcp;
      Put16(l4, sport_);
      Put16(l4, dport_);
      Put32(l4, seq_);
      Put32(l4, ack_);
      uint8_t doff = force_doff_.value_or(5);
      l4.push_back(doff << 4);
      l4.push_back(tcp_flags_);
      Put16(l4, tcp_window_);
      Put16(l4, 0);  // checksum
      Put16(l4, 0);  // urgent pointer
      csum_off = 16;
      break;
    }
    case L4::kUdp:
      *proto_out = kProtoUdp;
      Put16(l4, sport_);
      Put16(l4, dport_);
      Put16(l4, 8 + payload_.size());
      Put16(l4, 0);
      csum_off = 6;
      break;
    case L4::kIcmp:
    case L4::kIcmpError:
      *proto_out = family_ == 6 ? kProtoIcmp6 : kProtoIcmp;
      pseudo = family_ == 6;
      l4.push_back(icmp_type_);
      l4.push_back(icmp_code_);
      Put16(l4, 0);
      if (l4_ == L4::kIcmp) {
        Put16(l4, icmp_id_);
        Put16(l4, icmp_seq_);
      } else {
        Put32(l4, icmp_rest_);
        l4.insert(l4.end(), inner_.begin(), inner_.end());
      }
      csum_off = 2;
      break;
  }
  l4.insert(l4.end(), payload_.begin(), payload_.end());
  uint32_t sum = pseudo ? PseudoSum(family_, src_.data(), dst_.data(), *proto_out, l4.size()) : 0;
  uint16_t csum = InetChecksum(l4.data(), l4.size(), sum);
  if (*proto_out == kProtoUdp && csum == 0) csum = 0xffff;
  if (corrupt_l4_csum_) csum ^= 0x5a5a;
  Set16(l4, csum_off, csum);
  return l4;
}

Bytes PacketBuilder::BuildL3() const {
  uint8_t proto = 0;
  Bytes l4 = BuildL4(&proto);
  Bytes ip;
  if (family_ == 4) {
    if (frag_ && frag_->first != 0) {
      // A later fragment carries no L4 header: only payload bytes.
      l4 = payload_;
    }
    size_t hlen = 20 + ip_options_.size();
    ip.push_back((force_version_.value_or(4) << 4) | force_ihl_.value_or(hlen / 4));
    ip.push_back(0);
    Put16(ip, force_tot_len_.value_or(hlen + l4.size()));
    Put16(ip, ip_id_);
    uint16_t frag = 0;
    if (frag_) frag = (frag_->first / 8) | (frag_->second ? 0x2000 : 0);
    if (dont_fragment_) frag |= 0x4000;
    Put16(ip, frag);
    ip.push_back(ttl_);
    ip.push_back(proto);
    Put16(ip, 0);
    ip.insert(ip.end(), src_.begin(), src_.begin() + 4);
    ip.insert(ip.end(), dst_.begin(), dst_.begin() + 4);
    ip.insert(ip.end(), ip_options_.begin(), ip_options_.end());
    Set16(ip, 10, InetChecksum(ip.data(), ip.size()));
    ip.insert(ip.end(), l4.begin(), l4.end());
  } else if (family_ == 6) {
    Bytes ext;
    // Chain: extension headers in order, then the fragment header, then L4.
    std::vector<uint8_t> types;
    for (auto& [t, len] : ext_headers_) types.push_back(t);
    if (frag_) types.push_back(kProtoFrag6);
    for (size_t i = 0; i < types.size(); i++) {
      uint8_t next = i + 1 < types.size() ? types[i + 1] : proto;
      if (types[i] == kProtoFrag6) {
        ext.push_back(next);
        ext.push_back(0);
        Put16(ext, (frag_->first & ~7) | (frag_->second ? 1 : 0));
        Put32(ext, 0xabcdef01);
      } else {
        size_t len = ext_headers_[i].second;
        ext.push_back(next);
        ext.push_back(len / 8 - 1);
        for (size_t k = 2; k < len; k++) ext.push_back(k == 2 ? 1 : 0);  // PadN option
        ext[ext.size() - len + 3] = len - 4;
      }
    }
    if (frag_ && frag_->first != 0) l4 = payload_;
    uint8_t first = types.empty() ? proto : types[0];
    uint32_t vtc = (uint32_t)force_version_.value_or(6) << 28;
    Put32(ip, vtc);
    Put16(ip, force_tot_len_.value_or(ext.size() + l4.size()));
    ip.push_back(first);
    ip.push_back(ttl_);
    ip.insert(ip.end(), src_.begin(), src_.end());
    ip.insert(ip.end(), dst_.begin(), dst_.end());
    ip.insert(ip.end(), ext.begin(), ext.end());
    ip.insert(ip.end(), l4.begin(), l4.end());
  } else {
    ip = payload_;
  }
  return ip;
}

Bytes PacketBuilder::Build() const {
  Bytes f(eth_dst_.begin(), eth_dst_.end());
  f.insert(f.end(), eth_src_.begin(), eth_src_.end());
  uint16_t type = ether_type_.value_or(family_ == 6 ? 0x86dd : family_ == 4 ? 0x0800 : 0x0806);
  Put16(f, type);
  Bytes l3 = BuildL3();
  f.insert(f.end(), l3.begin(), l3.end());
  if (truncate_ && *truncate_ < f.size()) f.resize(*truncate_);
  return f;
}

std::vector<Field> Decode(const Bytes& b) {
  std::vector<Field> out;
  if (b.size() < 14) {
    out.push_back({"eth", "truncated (" + std::to_string(b.size()) + " bytes)"});
    return out;
  }
  out.push_back({"eth.dst", MacString(b, 0)});
  out.push_back({"eth.src", MacString(b, 6)});
  uint16_t type = Get16(b, 12);
  out.push_back({"eth.type", Hex16(type)});
  if (type == 0x0800 || type == 0x86dd) DecodeL3(b, 14, b.size(), "", false, out);
  out.push_back({"frame.len", std::to_string(b.size())});
  return out;
}

std::string PacketDiff(const Bytes& expected, const Bytes& actual) {
  if (expected == actual) return "";
  auto e = Decode(expected), a = Decode(actual);
  std::string out;
  size_t n = std::max(e.size(), a.size());
  for (size_t i = 0; i < n; i++) {
    const Field* fe = i < e.size() ? &e[i] : nullptr;
    const Field* fa = i < a.size() ? &a[i] : nullptr;
    if (fe && fa && *fe == *fa) continue;
    if (fe && fa && fe->name == fa->name) {
      out += "  " + fe->name + ": expected " + fe->value + ", got " + fa->value + "\n";
    } else {
      out += "  field " + std::to_string(i) + ": expected " +
             (fe ? fe->name + "=" + fe->value : "<none>") + ", got " +
             (fa ? fa->name + "=" + fa->value : "<none>") + "\n";
    }
  }
  if (out.empty()) {
    size_t i = 0;
    while (i < expected.size() && i < actual.size() && expected[i] == actual[i]) i++;
    char buf[96];
    std::snprintf(buf, sizeof(buf), "  byte %zu: expected 0x%02x, got 0x%02x (payload)\n", i,
                  i < expected.size() ? expected[i] : 0, i < actual.size() ? actual[i] : 0);
    out = buf;
  }
  return out;
}

bool ChecksumsValid(const Bytes& frame, std::string* why) {
  for (const Field& f : Decode(frame)) {
    if (f.value.find("BAD") != std::string::npos) {
      if (why) *why = f.name + " " + f.value;
      return false;
    }
  }
  return true;
}

}  // namespace skiff::testing
