#include "agent/observe/flow_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "absl/strings/str_cat.h"
#include "agent/observe/flow_filter.h"
#include "maps/drop_reasons.h"
#include "maps/metrics.h"

namespace skiff::observe {
namespace {

std::string Ip(uint32_t be) {
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{be};
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

void SplitName(const std::string& ns_name, std::string* ns, std::string* name) {
  auto slash = ns_name.find('/');
  if (slash == std::string::npos) return;
  *ns = ns_name.substr(0, slash);
  *name = ns_name.substr(slash + 1);
}

void FillEndpoint(uint32_t addr, uint16_t port_be, const std::string& pod, v1::FlowEndpoint* out) {
  out->set_ip(Ip(addr));
  out->set_port(ntohs(port_be));
  SplitName(pod, out->mutable_namespace_(), out->mutable_pod_name());
}

}  // namespace

void FillFlow(const FlowRecord& r, const std::string& node_name, v1::Flow* out) {
  const skiff_flow_event& e = r.ev;
  out->set_time_unix_nano(r.time_unix_ns);
  out->set_verdict(VerdictName(e.verdict));
  out->set_event_type(EventTypeName(e.type));
  if (e.drop_reason) {
    out->set_drop_reason(e.drop_reason);
    out->set_drop_reason_name(SkiffDropReasonName(e.drop_reason));
    out->set_drop_reason_desc(SkiffDropReasonDescription(e.drop_reason));
  }
  switch (e.proto) {
    case IPPROTO_TCP:
      out->set_protocol("tcp");
      break;
    case IPPROTO_UDP:
      out->set_protocol("udp");
      break;
    case IPPROTO_ICMP:
      out->set_protocol("icmp");
      break;
    default:
      out->set_protocol(absl::StrCat(e.proto));
  }
  out->set_ip_version(e.family == SKIFF_AF_INET ? 4 : e.family == SKIFF_AF_INET6 ? 6 : 0);
  const bool x = e.flags & SKIFF_EVENT_F_XLATED;
  if (e.family == SKIFF_AF_INET) {
    FillEndpoint(e.orig_saddr, e.orig_sport, r.source_pod, out->mutable_source());
    if (x)
      FillEndpoint(e.xlated_daddr, e.xlated_dport, r.destination_pod, out->mutable_destination());
    else
      FillEndpoint(e.orig_daddr, e.orig_dport, r.destination_pod, out->mutable_destination());
    if (x || !r.service.empty()) {
      auto* s = out->mutable_service();
      SplitName(r.service, s->mutable_namespace_(), s->mutable_name());
      s->set_address(Ip(e.orig_daddr));
      s->set_port(ntohs(e.orig_dport));
    }
    if (x && (e.xlated_saddr != e.orig_saddr)) out->set_translated_source(Ip(e.xlated_saddr));
  }
  if (e.proto == IPPROTO_TCP) {
    static constexpr std::pair<uint8_t, const char*> kFlags[] = {
        {0x02, "SYN"}, {0x10, "ACK"}, {0x01, "FIN"}, {0x04, "RST"}, {0x08, "PSH"}, {0x20, "URG"}};
    for (auto [bit, name] : kFlags)
      if (e.tcp_flags & bit) out->add_tcp_flags(name);
  }
  out->set_is_reply(e.flags & SKIFF_EVENT_F_REPLY);
  out->set_direction(e.direction == SKIFF_DIR_FROM_CONTAINER ? "from_container"
                     : e.direction == SKIFF_DIR_TO_CONTAINER ? "to_container"
                     : e.direction == SKIFF_DIR_FROM_NETDEV  ? "from_netdev"
                     : e.direction == SKIFF_DIR_TO_NETDEV    ? "to_netdev"
                     : e.direction == SKIFF_DIR_XDP          ? "xdp"
                     : e.direction == SKIFF_DIR_SOCK         ? "sock"
                                                             : absl::StrCat(e.direction));
  out->set_ifindex(e.ifindex);
  out->set_node_name(node_name);
  out->set_backend_id(e.backend_id);
  out->set_rev_nat_id(e.rev_nat_id);
}

}  // namespace skiff::observe
