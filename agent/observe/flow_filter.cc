#include "agent/observe/flow_filter.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "maps/drop_reasons.h"

namespace skiff::observe {
namespace {

absl::Status Bad(const std::string& field, const std::string& value, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": '", value, "' ", why));
}

absl::StatusOr<Cidr4> ParseCidr(const std::string& field, const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('/', 1));
  in_addr a{};
  if (inet_pton(AF_INET, parts[0].c_str(), &a) != 1)
    return Bad(field, text, "is not an IPv4 address or CIDR (flows are IPv4 only)");
  int bits = 32;
  if (parts.size() == 2 && (!absl::SimpleAtoi(parts[1], &bits) || bits < 0 || bits > 32))
    return Bad(field, text, "has a prefix length outside 0..32");
  Cidr4 c;
  c.mask = bits == 0 ? 0 : ~0u << (32 - bits);
  c.net = ntohl(a.s_addr) & c.mask;
  return c;
}

absl::Status ParseNamespacedName(const std::string& field, const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('/', 1));
  if (parts.size() != 2 || parts[0].empty())
    return Bad(field, text, "is not NAMESPACE/NAME or NAMESPACE/");
  return absl::OkStatus();
}

bool AnyCidr(const std::vector<Cidr4>& cidrs, std::initializer_list<uint32_t> addrs) {
  for (const auto& c : cidrs)
    for (uint32_t a : addrs)
      if (a && c.Contains(a)) return true;
  return false;
}

// "ns/name" matches itself; "ns/" matches every name in ns.
bool NameMatches(const std::vector<std::string>& wanted, const std::string& have) {
  if (have.empty()) return false;
  for (const auto& w : wanted)
    if (w == have || (w.back() == '/' && absl::StartsWith(have, w))) return true;
  return false;
}

template <typename T>
bool In(const std::vector<T>& v, T x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

bool Cidr4::Contains(uint32_t addr_be) const { return (ntohl(addr_be) & mask) == net; }

const char* EventTypeName(uint8_t type) {
  switch (type) {
    case SKIFF_EVENT_TRACE_NEW:
      return "trace_new";
    case SKIFF_EVENT_TRACE_CLOSE:
      return "trace_close";
    case SKIFF_EVENT_DROP:
      return "drop";
  }
  return "unknown";
}

const char* VerdictName(uint8_t verdict) {
  switch (verdict) {
    case SKIFF_VERDICT_FORWARDED:
      return "FORWARDED";
    case SKIFF_VERDICT_DROPPED:
      return "DROPPED";
    case SKIFF_VERDICT_TRANSLATED:
      return "TRANSLATED";
  }
  return "VERDICT_UNKNOWN";
}

bool FlowFilter::Matches(const FlowRecord& r) const {
  const skiff_flow_event& e = r.ev;
  const bool x = e.flags & SKIFF_EVENT_F_XLATED;
  if (!ip.empty() &&
      !AnyCidr(ip, {e.orig_saddr, e.orig_daddr, x ? e.xlated_saddr : 0u, x ? e.xlated_daddr : 0u}))
    return false;
  if (!source_ip.empty() && !AnyCidr(source_ip, {e.orig_saddr, x ? e.xlated_saddr : 0u}))
    return false;
  if (!destination_ip.empty() && !AnyCidr(destination_ip, {e.orig_daddr, x ? e.xlated_daddr : 0u}))
    return false;
  if (!ports.empty()) {
    bool hit = false;
    for (uint16_t p : {e.orig_sport, e.orig_dport, x ? e.xlated_sport : uint16_t{0},
                       x ? e.xlated_dport : uint16_t{0}})
      if (p && In(ports, static_cast<uint16_t>(ntohs(p)))) hit = true;
    if (!hit) return false;
  }
  if (!protocols.empty() && !In(protocols, e.proto)) return false;
  if (!verdicts.empty() && !In(verdicts, e.verdict)) return false;
  if (!pods.empty() && !NameMatches(pods, r.source_pod) && !NameMatches(pods, r.destination_pod))
    return false;
  if (!services.empty() && !NameMatches(services, r.service)) return false;
  if (!drop_reasons.empty() && !In(drop_reasons, static_cast<int>(e.drop_reason))) return false;
  if (!event_types.empty() && !In(event_types, e.type)) return false;
  return true;
}

absl::StatusOr<FlowFilter> ParseFlowFilter(const v1::FlowFilter& f) {
  FlowFilter out;
  for (auto [name, from, to] :
       {std::tuple{"filter.ip", &f.ip(), &out.ip},
        std::tuple{"filter.source_ip", &f.source_ip(), &out.source_ip},
        std::tuple{"filter.destination_ip", &f.destination_ip(), &out.destination_ip}})
    for (const auto& s : *from) {
      auto c = ParseCidr(name, s);
      if (!c.ok()) return c.status();
      to->push_back(*c);
    }
  for (uint32_t p : f.port()) {
    if (p == 0 || p > 65535) return Bad("filter.port", absl::StrCat(p), "is not in 1..65535");
    out.ports.push_back(static_cast<uint16_t>(p));
  }
  for (const auto& s : f.protocol()) {
    std::string p = absl::AsciiStrToLower(s);
    if (p == "tcp")
      out.protocols.push_back(IPPROTO_TCP);
    else if (p == "udp")
      out.protocols.push_back(IPPROTO_UDP);
    else if (p == "icmp")
      out.protocols.push_back(IPPROTO_ICMP);
    else
      return Bad("filter.protocol", s, "is not tcp, udp or icmp");
  }
  for (const auto& s : f.verdict()) {
    std::string v = absl::AsciiStrToUpper(s);
    if (v == "FORWARDED")
      out.verdicts.push_back(SKIFF_VERDICT_FORWARDED);
    else if (v == "DROPPED")
      out.verdicts.push_back(SKIFF_VERDICT_DROPPED);
    else if (v == "TRANSLATED")
      out.verdicts.push_back(SKIFF_VERDICT_TRANSLATED);
    else
      return Bad("filter.verdict", s, "is not FORWARDED, DROPPED or TRANSLATED");
  }
  for (const auto& s : f.pod()) {
    if (auto st = ParseNamespacedName("filter.pod", s); !st.ok()) return st;
    out.pods.push_back(s);
  }
  for (const auto& s : f.service()) {
    if (auto st = ParseNamespacedName("filter.service", s); !st.ok()) return st;
    out.services.push_back(s);
  }
  for (const auto& s : f.drop_reason()) {
    int code = 0;
    std::string want = absl::AsciiStrToUpper(s);
    if (!absl::StartsWith(want, "SKIFF_DROP_")) want = "SKIFF_DROP_" + want;
#define SKIFF_FLOW_DROP_(name, c, desc) \
  if (want == #name) code = c;
    SKIFF_DROP_REASONS(SKIFF_FLOW_DROP_)
#undef SKIFF_FLOW_DROP_
    int n = 0;
    if (!code && absl::SimpleAtoi(s, &n) &&
        std::string(SkiffDropReasonName(n)) != "SKIFF_DROP_UNKNOWN")
      code = n;
    if (!code)
      return Bad("filter.drop_reason", s,
                 "is not a drop reason (a SKIFF_DROP_* name such as NO_SERVICE_BACKEND, or its "
                 "code; see docs/flows.md)");
    out.drop_reasons.push_back(code);
  }
  for (const auto& s : f.event_type()) {
    std::string t = absl::AsciiStrToLower(s);
    if (t == "trace_new")
      out.event_types.push_back(SKIFF_EVENT_TRACE_NEW);
    else if (t == "trace_close")
      out.event_types.push_back(SKIFF_EVENT_TRACE_CLOSE);
    else if (t == "drop")
      out.event_types.push_back(SKIFF_EVENT_DROP);
    else
      return Bad("filter.event_type", s, "is not trace_new, trace_close or drop");
  }
  return out;
}

absl::StatusOr<FlowQuery> ParseObserveRequest(const v1::ObserveRequest& req) {
  auto f = ParseFlowFilter(req.filter());
  if (!f.ok()) return f.status();
  if (req.since_unix_nano() < 0)
    return Bad("since_unix_nano", absl::StrCat(req.since_unix_nano()), "is negative");
  FlowQuery q;
  q.filter = *std::move(f);
  q.last = req.last();
  q.follow = req.follow();
  q.since_unix_ns = req.since_unix_nano();
  return q;
}

std::vector<FlowRecord> SelectBuffered(std::vector<FlowRecord> records, const FlowQuery& q) {
  std::vector<FlowRecord> out;
  for (auto& r : records)
    if (r.time_unix_ns >= q.since_unix_ns && q.filter.Matches(r)) out.push_back(std::move(r));
  if (q.last && out.size() > q.last) out.erase(out.begin(), out.end() - q.last);
  return out;
}

}  // namespace skiff::observe
