// ConntrackService, and conntrack filters (conntrack_filter.h).
#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/api/conntrack_filter.h"
#include "agent/api/map_decode.h"
#include "agent/api/services.h"

namespace skiff::api {

bool CtFilter::Matches(const skiff_ct4_key& k, const skiff_ct_entry& e) const {
  if (proto && k.proto != *proto) return false;
  if (ip && k.saddr != *ip && k.daddr != *ip && e.nat_addr != *ip && e.orig_addr != *ip)
    return false;
  if (port && k.sport != *port && k.dport != *port && e.nat_port != *port && e.orig_port != *port)
    return false;
  if (rev_nat_ids && !rev_nat_ids->count(e.rev_nat_id)) return false;
  return true;
}

absl::StatusOr<CtFilter> ParseCtFilter(const v1::ConntrackFilter& f, const LbView& view) {
  CtFilter out;
  if (!f.ip().empty()) {
    in_addr a{};
    if (inet_pton(AF_INET, f.ip().c_str(), &a) != 1)
      return absl::InvalidArgumentError(
          absl::StrCat("ip: '", f.ip(), "' is not an IPv4 address (conntrack is IPv4 only)"));
    out.ip = a.s_addr;
  }
  if (f.port() != 0) {
    if (f.port() > 65535)
      return absl::InvalidArgumentError(absl::StrCat("port: ", f.port(), " is not in 1..65535"));
    out.port = htons(static_cast<uint16_t>(f.port()));
  }
  if (!f.protocol().empty()) {
    std::string p = absl::AsciiStrToLower(f.protocol());
    if (p == "tcp")
      out.proto = IPPROTO_TCP;
    else if (p == "udp")
      out.proto = IPPROTO_UDP;
    else if (p == "icmp")
      out.proto = IPPROTO_ICMP;
    else
      return absl::InvalidArgumentError(
          absl::StrCat("protocol: '", f.protocol(), "' is not tcp, udp or icmp"));
  }
  if (!f.service().empty()) {
    std::vector<std::string> parts = absl::StrSplit(f.service(), absl::MaxSplits('/', 1));
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty())
      return absl::InvalidArgumentError(
          absl::StrCat("service: '", f.service(), "' is not NAMESPACE/NAME"));
    std::set<uint32_t> ids;
    for (const auto& [id, svc] : view.service_of_rev_nat)
      if (svc == f.service()) ids.insert(id);
    if (ids.empty())
      return absl::NotFoundError(
          absl::StrCat("service ", f.service(), " has no frontend in the datapath"));
    out.rev_nat_ids = std::move(ids);
  }
  return out;
}

void FillCtEntry(const skiff_ct4_key& k, const skiff_ct_entry& e, int64_t now_s,
                 const std::map<uint32_t, std::string>& service_of_rev_nat,
                 v1::ConntrackEntry* out) {
  out->set_kind(k.kind == SKIFF_CT_SERVICE ? "service"
                : k.kind == SKIFF_CT_REPLY ? "reply"
                                           : absl::StrCat(k.kind));
  out->set_protocol(ProtocolString(k.proto));
  out->set_src_address(Ipv4String(k.saddr));
  out->set_src_port(ntohs(k.sport));
  out->set_dst_address(Ipv4String(k.daddr));
  out->set_dst_port(ntohs(k.dport));
  out->set_nat_address(Ipv4String(e.nat_addr));
  out->set_nat_port(ntohs(e.nat_port));
  if (e.orig_addr) {
    out->set_orig_address(Ipv4String(e.orig_addr));
    out->set_orig_port(ntohs(e.orig_port));
  }
  out->set_backend_id(e.backend_id);
  out->set_rev_nat_id(e.rev_nat_id);
  if (auto it = service_of_rev_nat.find(e.rev_nat_id); it != service_of_rev_nat.end())
    out->set_service(it->second);
  out->set_packets(e.packets);
  out->set_bytes(e.bytes);
  out->set_age_seconds(now_s - static_cast<int64_t>(e.created));
  out->set_expires_in_seconds(static_cast<int64_t>(e.expires) - now_s);
  if (e.flags & SKIFF_CT_F_SEEN_NON_SYN) out->add_flags("established");
  if (e.flags & SKIFF_CT_F_TX_CLOSING) out->add_flags("tx_closing");
  if (e.flags & SKIFF_CT_F_RX_CLOSING) out->add_flags("rx_closing");
  if (e.flags & SKIFF_CT_F_RESET) out->add_flags("reset");
  if (e.flags & SKIFF_CT_F_HAIRPIN) out->add_flags("hairpin");
  if (e.flags & SKIFF_CT_F_AFFINITY) out->add_flags("affinity");
  out->set_tcp_flags(TcpFlagsString(e.tcp_flags));
}

skiff_ct4_key CtPeerKey(const skiff_ct4_key& k, const skiff_ct_entry& e, uint32_t hairpin_addr) {
  skiff_ct4_key p;
  std::memset(&p, 0, sizeof(p));
  p.proto = k.proto;
  bool hairpin = e.flags & SKIFF_CT_F_HAIRPIN;
  if (k.kind == SKIFF_CT_SERVICE) {
    // {client -> vip} translated to backend: the reply comes {backend -> client}.
    p.kind = SKIFF_CT_REPLY;
    p.saddr = e.nat_addr;
    p.sport = e.nat_port;
    p.daddr = hairpin ? hairpin_addr : k.saddr;
    p.dport = k.sport;
  } else {
    // {backend -> client}: the client's original flow is {client -> vip}.
    p.kind = SKIFF_CT_SERVICE;
    p.saddr = hairpin ? e.orig_addr : k.daddr;
    p.sport = hairpin ? e.orig_port : k.dport;
    p.daddr = e.nat_addr;
    p.dport = e.nat_port;
  }
  return p;
}

grpc::Status ConntrackServiceImpl::ListConntrack(
    grpc::ServerContext* ctx, const v1::ListConntrackRequest* req,
    grpc::ServerWriter<v1::ListConntrackResponse>* writer) {
  auto state = core_->State();
  auto view = ReadLbView(*core_, *state);
  if (!view.ok()) return ToGrpc(view.status());
  auto filter = ParseCtFilter(req->filter(), *view);
  if (!filter.ok()) return ToGrpc(filter.status());
  int64_t now = core_->MonotonicSeconds();
  v1::ListConntrackResponse batch;
  uint64_t sent = 0;
  bool aborted = false;
  auto st = core_->Conntrack()->ForEach([&](const skiff_ct4_key& k, const skiff_ct_entry& e) {
    if (!filter->Matches(k, e)) return true;
    if (req->limit() && sent >= req->limit()) return false;
    FillCtEntry(k, e, now, view->service_of_rev_nat, batch.add_entries());
    sent++;
    if (batch.entries_size() >= kStreamBatch) {
      if (ctx->IsCancelled() || !writer->Write(batch)) {
        aborted = true;
        return false;
      }
      batch.Clear();
    }
    return true;
  });
  if (aborted) return {grpc::StatusCode::CANCELLED, "client went away"};
  if (!st.ok()) return ToGrpc(st);
  if (batch.entries_size() > 0) writer->Write(batch);
  return grpc::Status::OK;
}

grpc::Status ConntrackServiceImpl::FlushConntrack(grpc::ServerContext*,
                                                  const v1::FlushConntrackRequest* req,
                                                  v1::FlushConntrackResponse* resp) {
  auto state = core_->State();
  auto view = ReadLbView(*core_, *state);
  if (!view.ok()) return ToGrpc(view.status());
  auto filter = ParseCtFilter(req->filter(), *view);
  if (!filter.ok()) return ToGrpc(filter.status());
  auto* ct = core_->Conntrack();
  uint32_t hairpin = core_->HairpinAddress();
  absl::Status peer_error;
  uint64_t peers = 0;
  auto n = ct->DeleteIf([&](const skiff_ct4_key& k, const skiff_ct_entry& e) {
    if (!filter->Matches(k, e)) return false;
    auto removed = ct->Remove(CtPeerKey(k, e, hairpin));
    if (!removed.ok() && peer_error.ok()) peer_error = removed.status();
    peers += removed.ok() && *removed;
    return true;
  });
  if (!n.ok()) return ToGrpc(n.status());
  if (!peer_error.ok()) return ToGrpc(peer_error);
  resp->set_deleted(*n + peers);
  return grpc::Status::OK;
}

}  // namespace skiff::api
