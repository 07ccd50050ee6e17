#include "cli/flows.h"

#include <time.h>

#include <ostream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "skiff/v1/flows.grpc.pb.h"

namespace skiff::cli {
namespace {

constexpr uint64_t kDefaultLast = 20;  // as `hubble observe` without --last/--follow/--since

std::string Rfc3339(int64_t unix_ns) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", absl::FromUnixNanos(unix_ns),
                          absl::UTCTimeZone());
}

// "ns/pod:port" when the address is a known pod, else "ip:port".
std::string Peer(const v1::FlowEndpoint& e) {
  std::string who = e.pod_name().empty() ? e.ip() : absl::StrCat(e.namespace_(), "/", e.pod_name());
  return e.port() ? absl::StrCat(who, ":", e.port()) : who;
}

// Hubble's drop_reason_desc spelling: the reason name without our prefix.
std::string DropShortName(const v1::Flow& f) {
  std::string n = f.drop_reason_name();
  constexpr absl::string_view kPrefix = "SKIFF_DROP_";
  if (n.rfind(std::string(kPrefix), 0) == 0) n = n.substr(kPrefix.size());
  return n;
}

absl::StatusOr<int64_t> ParseSince(const std::string& s) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, s, &t, &err)) return absl::ToUnixNanos(t);
  absl::Duration d;
  if (absl::ParseDuration(s, &d) && d >= absl::ZeroDuration())
    return absl::ToUnixNanos(absl::Now() - d);
  return absl::InvalidArgumentError(absl::StrCat(
      "--since '", s, "': expected an RFC 3339 time (2026-01-02T15:04:05Z) or a duration (5m)"));
}

}  // namespace

CLI::App* AddFlowsCommand(CLI::App* app, FlowsOptions& o) {
  auto* c = app->add_subcommand("flows", "Flow events: new service flows, closes, drops");
  c->add_flag("-f,--follow", o.follow, "Keep printing new flows until interrupted");
  c->add_option("--last", o.last, "Only the last N matching flows (default 20 unless following)")
      ->type_name("N");
  c->add_option("--since", o.since, "Flows since a time (RFC 3339) or a duration ago (5m)")
      ->type_name("TIME|DURATION");
  c->add_option("--verdict", o.verdict, "FORWARDED, DROPPED or TRANSLATED (repeatable)")
      ->type_name("VERDICT")
      ->check(CLI::IsMember({"FORWARDED", "DROPPED", "TRANSLATED"}, CLI::ignore_case));
  c->add_option("--ip", o.ip, "Source or destination address or CIDR (repeatable)")
      ->type_name("IP|CIDR");
  c->add_option("--from-ip", o.source_ip, "Source address or CIDR")->type_name("IP|CIDR");
  c->add_option("--to-ip", o.destination_ip, "Destination address or CIDR")->type_name("IP|CIDR");
  c->add_option("--port", o.port, "Source or destination port")
      ->type_name("PORT")
      ->check(CLI::Range(1, 65535));
  c->add_option("--protocol", o.protocol, "tcp, udp or icmp")
      ->type_name("PROTO")
      ->check(CLI::IsMember({"tcp", "udp", "icmp"}, CLI::ignore_case));
  c->add_option("--pod", o.pod, "Source or destination pod, NAMESPACE/NAME or NAMESPACE/")
      ->type_name("NS/NAME");
  c->add_option("--service", o.service, "Flows of a Service, NAMESPACE/NAME or NAMESPACE/")
      ->type_name("NS/NAME");
  c->add_option("--drop-reason", o.drop_reason, "A drop reason, e.g. NO_SERVICE_BACKEND")
      ->type_name("REASON");
  c->add_option("--type", o.type, "trace_new, trace_close or drop")
      ->type_name("TYPE")
      ->check(CLI::IsMember({"trace_new", "trace_close", "drop"}, CLI::ignore_case));
  return c;
}

std::string FlowLine(const v1::Flow& f) {
  std::string when = absl::FormatTime("%b %d %H:%M:%E3S", absl::FromUnixNanos(f.time_unix_nano()),
                                      absl::UTCTimeZone());
  // A socket-LB translation happens at connect(), before the source address is chosen.
  std::string line =
      absl::StrCat(when, ": ", f.direction() == "sock" ? "connect()" : Peer(f.source()), " -> ",
                   Peer(f.destination()));
  if (f.has_service()) {
    const auto& s = f.service();
    std::string name = s.name().empty() ? "" : absl::StrCat(s.namespace_(), "/", s.name(), " ");
    if (f.verdict() == "DROPPED")
      absl::StrAppend(&line, " service ", name, s.address(), ":", s.port());
    else
      absl::StrAppend(&line, " service ", name, s.address(), ":", s.port(), " -> ",
                      f.destination().ip(), ":", f.destination().port());
  }
  if (!f.translated_source().empty())
    absl::StrAppend(&line, " (source as ", f.translated_source(), ")");
  absl::StrAppend(&line, " ", f.event_type() == "trace_close" ? "closing " : "", f.verdict());
  if (!f.drop_reason_desc().empty()) absl::StrAppend(&line, " (", f.drop_reason_desc(), ")");
  if (f.tcp_flags_size())
    absl::StrAppend(&line, " (TCP Flags: ", absl::StrJoin(f.tcp_flags(), ", "), ")");
  else if (!f.protocol().empty())
    absl::StrAppend(&line, " ", absl::AsciiStrToUpper(f.protocol()));
  return line;
}

Json FlowJson(const v1::Flow& f) {
  Json j = Json::object();
  j["time"] = Rfc3339(f.time_unix_nano());
  j["verdict"] = f.verdict();
  if (f.drop_reason()) {
    j["drop_reason"] = -f.drop_reason();  // Hubble's is unsigned
    j["drop_reason_desc"] = DropShortName(f);
  }
  j["IP"] = {{"source", f.source().ip()},
             {"destination", f.destination().ip()},
             {"ipVersion", f.ip_version() == 4   ? "IPv4"
                           : f.ip_version() == 6 ? "IPv6"
                                                 : ""}};
  if (f.protocol() == "tcp") {
    Json flags = Json::object();
    for (const auto& fl : f.tcp_flags()) flags[fl] = true;
    j["l4"] = {{"TCP",
                {{"source_port", f.source().port()},
                 {"destination_port", f.destination().port()},
                 {"flags", flags}}}};
  } else if (f.protocol() == "udp") {
    j["l4"] = {
        {"UDP",
         {{"source_port", f.source().port()}, {"destination_port", f.destination().port()}}}};
  } else if (f.protocol() == "icmp") {
    j["l4"] = {{"ICMPv4", Json::object()}};
  }
  auto endpoint = [](const v1::FlowEndpoint& e) {
    Json o = Json::object();
    if (!e.pod_name().empty()) {
      o["namespace"] = e.namespace_();
      o["pod_name"] = e.pod_name();
    }
    return o;
  };
  j["source"] = endpoint(f.source());
  j["destination"] = endpoint(f.destination());
  // A socket-LB translation (direction sock) is what Hubble calls a SOCK event.
  j["Type"] = f.direction() == "sock" ? "SOCK" : "L3_L4";
  if (f.direction() == "sock") j["sock_xlation_point"] = "SOCK_XLATE_POINT_PRE_DIRECTION_FWD";
  j["node_name"] = f.node_name();
  // Cilium's monitor message types: 1 drop (sub_type: reason), 4 trace.
  j["event_type"] = {{"type", f.event_type() == "drop" ? 1 : 4},
                     {"sub_type", f.event_type() == "drop" ? -f.drop_reason() : 0}};
  j["is_reply"] = f.is_reply();
  j["trace_observation_point"] = f.direction() == "from_container" ? "FROM_ENDPOINT"
                                 : f.direction() == "to_container" ? "TO_ENDPOINT"
                                 : f.direction() == "from_netdev"  ? "FROM_NETWORK"
                                 : f.direction() == "xdp"          ? "FROM_NETWORK"
                                 : f.direction() == "to_netdev"    ? "TO_NETWORK"
                                                                   : "UNKNOWN_POINT";
  if (f.has_service()) {
    Json svc = Json::object();
    if (!f.service().name().empty()) {
      svc["name"] = f.service().name();
      svc["namespace"] = f.service().namespace_();
    }
    j["destination_service"] = svc;
    if (!f.service().name().empty())
      j["service"] = absl::StrCat(f.service().namespace_(), "/", f.service().name());
  }
  // Skiff's own fields: the translation and the event.
  Json skiff = {{"event", f.event_type()}, {"direction", f.direction()}, {"ifindex", f.ifindex()}};
  if (f.has_service()) {
    skiff["frontend"] = absl::StrCat(f.service().address(), ":", f.service().port());
    if (f.verdict() != "DROPPED")
      skiff["backend"] = absl::StrCat(f.destination().ip(), ":", f.destination().port());
    skiff["backend_id"] = f.backend_id();
    skiff["rev_nat_id"] = f.rev_nat_id();
  }
  if (!f.translated_source().empty()) skiff["translated_source"] = f.translated_source();
  if (!f.drop_reason_name().empty()) skiff["drop_reason_text"] = f.drop_reason_desc();
  j["skiff"] = skiff;
  std::string summary = f.tcp_flags_size()
                            ? absl::StrCat("TCP Flags: ", absl::StrJoin(f.tcp_flags(), ", "))
                            : absl::AsciiStrToUpper(f.protocol());
  j["Summary"] = summary;
  return j;
}

int RunFlows(const FlowsOptions& o, const Target& t, const std::string& output, std::ostream& out,
             std::ostream& err) {
  auto fail = [&](const Failure& f) {
    err << "agentctl: " << f.message << "\n";
    return f.exit_code;
  };
  auto format = ParseFormat(output);
  if (!format.ok()) return fail(Failure{std::string(format.status().message()), kExitUsage});
  v1::ObserveRequest req;
  auto* fl = req.mutable_filter();
  for (const auto& v : o.verdict) fl->add_verdict(v);
  for (const auto& v : o.ip) fl->add_ip(v);
  for (const auto& v : o.source_ip) fl->add_source_ip(v);
  for (const auto& v : o.destination_ip) fl->add_destination_ip(v);
  for (uint32_t p : o.port) fl->add_port(p);
  for (const auto& v : o.protocol) fl->add_protocol(v);
  for (const auto& v : o.pod) fl->add_pod(v);
  for (const auto& v : o.service) fl->add_service(v);
  for (const auto& v : o.drop_reason) fl->add_drop_reason(v);
  for (const auto& v : o.type) fl->add_event_type(v);
  req.set_follow(o.follow);
  req.set_last(o.last ? o.last : (o.follow || !o.since.empty()) ? 0 : kDefaultLast);
  if (!o.since.empty()) {
    auto since = ParseSince(o.since);
    if (!since.ok()) return fail(Failure{std::string(since.status().message()), kExitUsage});
    req.set_since_unix_nano(*since);
  }
  auto ch = Connect(t);
  if (!ch.ok()) return fail(FromStatus(ch.status(), t));
  grpc::ClientContext ctx;
  auto reader = v1::FlowService::NewStub(*ch)->Observe(&ctx, req);
  v1::Flow f;
  while (reader->Read(&f)) {
    if (*format == Format::kTable)
      out << FlowLine(f) << "\n";
    else if (*format == Format::kJson)
      out << FlowJson(f).dump() << "\n";
    else
      out << "---\n" << ToYaml(FlowJson(f));
    out.flush();
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return fail(FromGrpc(st, t));
  return kExitOk;
}

}  // namespace skiff::cli
