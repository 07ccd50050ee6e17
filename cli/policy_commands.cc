#include "cli/policy_commands.h"

#include <CLI/CLI.hpp>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "maps/drop_reasons.h"
#include "skiff/v1/policy.grpc.pb.h"

namespace skiff::cli {
namespace {

std::string Ports(uint32_t lo, uint32_t hi) {
  if (lo == 0 && hi == 65535) return "any";
  return lo == hi ? absl::StrCat(lo) : absl::StrCat(lo, "-", hi);
}

std::string Isolation(bool isolated, const google::protobuf::RepeatedPtrField<std::string>& by,
                      const char* open) {
  if (!isolated) return absl::StrCat("not isolated (", open, ")");
  return absl::StrCat("isolated by ", absl::StrJoin(by, ", "));
}

std::string DropText(const std::string& name) {
  for (int code : {SKIFF_DROP_POLICY_DENIED_EGRESS, SKIFF_DROP_POLICY_DENIED_INGRESS,
                   SKIFF_DROP_POLICY_NOT_READY, SKIFF_DROP_POLICY_DENIED})
    if (name == SkiffDropReasonName(code))
      return absl::StrCat(name, " (", SkiffDropReasonDescription(code), ")");
  return name;
}

std::string Problems(const google::protobuf::RepeatedPtrField<std::string>& p) {
  if (p.empty()) return "";
  std::string out = "MISMATCH: the pinned BPF maps disagree with the agent's compiled policy:\n";
  for (const auto& s : p) absl::StrAppend(&out, "  - ", s, "\n");
  return out;
}

std::string EndText(const v1::PolicyTraceEnd& e) {
  std::string who = e.pod().empty() ? e.address() : absl::StrCat(e.pod(), " ", e.address());
  return absl::StrCat(who, ", identity ", e.identity(), " (", e.identity_is(), ")",
                      e.local() ? ", endpoint of this node" : "");
}

std::string DirectionText(const v1::PolicyDirectionTrace& d) {
  std::string out = absl::StrCat(d.summary(), "\n");
  std::string map;
  if (!d.map_endpoint_id()) {
    map = d.map_allowed() ? "no endpoint entry: not checked here"
                          : "no endpoint entry while policies exist: not ready";
  } else if (!d.map_isolated()) {
    map = absl::StrCat("endpoint ", d.map_endpoint_id(), " not isolated");
  } else if (d.map_allowed()) {
    map = absl::StrCat("endpoint ", d.map_endpoint_id(), ", peer identity ", d.map_peer_identity(),
                       d.map_entry().empty()
                           ? ": host, always allowed"
                           : absl::StrCat(": entry ", d.map_entry(), " -> ", d.map_rule()));
  } else {
    map = absl::StrCat("endpoint ", d.map_endpoint_id(), ", peer identity ", d.map_peer_identity(),
                       ": no entry matches");
  }
  absl::StrAppend(&out, "                datapath: ", map, "\n");
  return out;
}

}  // namespace

std::string PolicyListTable(const v1::ListPolicyEndpointsResponse& r) {
  Table t({"NAMESPACE", "NAME", "ADDRESSES", "ENDPOINT", "IDENTITY", "INGRESS", "EGRESS",
           "POLICIES IN/OUT", "ENTRIES IN/OUT"});
  for (const auto& e : r.endpoints())
    t.Add({e.namespace_(), e.name(), absl::StrJoin(e.addresses(), ","),
           absl::StrCat(e.endpoint_id()), absl::StrCat(e.identity()),
           e.ingress_isolated() ? "isolated" : "open", e.egress_isolated() ? "isolated" : "open",
           absl::StrCat(e.ingress_policies(), "/", e.egress_policies()),
           absl::StrCat(e.ingress_entries(), "/", e.egress_entries())});
  return t.Render() + Problems(r.problems());
}

std::string PolicyEndpointDetail(const v1::PolicyEndpoint& e) {
  std::string out;
  absl::StrAppend(&out, "Pod:        ", e.namespace_(), "/", e.name(), "\n");
  absl::StrAppend(&out, "Addresses:  ", absl::StrJoin(e.addresses(), ", "), "\n");
  absl::StrAppend(&out, "Endpoint:   ", e.endpoint_id(), " (identity ", e.identity(), ")\n");
  absl::StrAppend(&out, "Ingress:    ",
                  Isolation(e.ingress_isolated(), e.ingress_policies(), "every source allowed"),
                  "\n");
  absl::StrAppend(&out, "Egress:     ",
                  Isolation(e.egress_isolated(), e.egress_policies(), "every destination allowed"),
                  "\n");
  absl::StrAppend(&out, "Allow entries in the BPF policy map: ", e.entries_size(), "\n");
  if (e.entries_size()) {
    Table t({"DIRECTION", "PEER-ID", "PEER", "PROTOCOL", "PORTS", "RULE"});
    for (const auto& x : e.entries())
      t.Add({x.direction(), absl::StrCat(x.identity()), x.peer(), x.protocol(),
             Ports(x.port_low(), x.port_high()),
             x.rule().empty() ? absl::StrCat("rule id ", x.rule_id()) : x.rule()});
    out += t.Render();
  }
  return out + Problems(e.problems());
}

std::string PolicyTraceText(const v1::PolicyTraceResponse& t) {
  std::string out;
  absl::StrAppend(&out, "Connection:     ", t.from().input(), " -> ", t.to().input(), " ",
                  t.protocol(), "/", t.port(), "\n");
  absl::StrAppend(&out, "Source:         ", EndText(t.from()), "\n");
  absl::StrAppend(&out, "Destination:    ", EndText(t.to()), "\n");
  absl::StrAppend(&out, "Source egress:  ", DirectionText(t.egress()));
  absl::StrAppend(&out, "Dest. ingress:  ", DirectionText(t.ingress()));
  absl::StrAppend(&out, "Verdict:        ", t.verdict(),
                  t.drop_reason().empty() ? "" : absl::StrCat(": ", DropText(t.drop_reason())),
                  "\n");
  absl::StrAppend(
      &out, "Datapath:       ", t.map_verdict(),
      t.map_drop_reason().empty() ? "" : absl::StrCat(": ", DropText(t.map_drop_reason())),
      t.mismatch() ? "" : " (the pinned maps agree)", "\n");
  return out + Problems(t.problems());
}

void PolicyCommands::Register(CLI::App* app, const std::function<void(CLI::App*)>& leaf) {
  auto* pol = app->add_subcommand("policy", "NetworkPolicy as this node enforces it");
  pol->require_subcommand(1);
  list_ = pol->add_subcommand("list", "Every local endpoint: isolation, policies, map entries");
  list_->add_option("-n,--namespace", ns_, "Only this namespace");
  get_ = pol->add_subcommand("get", "One endpoint's policies and BPF allow entries");
  get_->add_option("pod", pod_, "NAMESPACE/POD or one of its addresses")->required();
  trace_ = pol->add_subcommand("trace", "The verdict the datapath would reach for a connection");
  trace_->add_option("--from", from_, "Source: NAMESPACE/POD or an IPv4 address")->required();
  trace_->add_option("--to", to_, "Destination: NAMESPACE/POD or an IPv4 address (not a VIP)")
      ->required();
  trace_->add_option("--port", port_, "Destination port")->required()->check(CLI::Range(1, 65535));
  trace_->add_option("--protocol", protocol_, "TCP, UDP or SCTP")
      ->check(CLI::IsMember({"tcp", "udp", "sctp"}, CLI::ignore_case))
      ->capture_default_str();
  for (auto* c : {list_, get_, trace_}) leaf(c);
}

int PolicyCommands::Run(const Target& target, Format format, std::ostream& out,
                        std::ostream& err) const {
  auto fail = [&](const Failure& f) {
    err << "agentctl: " << f.message << "\n";
    return f.exit_code;
  };
  auto ch = Connect(target);
  if (!ch.ok()) return fail(FromStatus(ch.status(), target));
  auto stub = v1::PolicyService::NewStub(*ch);
  auto print = [&](const google::protobuf::Message& m, const std::string& table) {
    out << (format == Format::kTable ? table : Render(ToJson(m), format));
  };
  auto ctx = UnaryContext();
  if (list_->parsed()) {
    v1::ListPolicyEndpointsRequest req;
    req.set_namespace_(ns_);
    v1::ListPolicyEndpointsResponse r;
    if (auto st = stub->ListEndpoints(ctx.get(), req, &r); !st.ok())
      return fail(FromGrpc(st, target));
    print(r, PolicyListTable(r));
    return r.problems().empty() ? kExitOk : kExitError;
  }
  if (get_->parsed()) {
    v1::GetPolicyEndpointRequest req;
    req.set_pod(pod_);
    v1::PolicyEndpoint r;
    if (auto st = stub->GetEndpoint(ctx.get(), req, &r); !st.ok())
      return fail(FromGrpc(st, target));
    print(r, PolicyEndpointDetail(r));
    return r.problems().empty() ? kExitOk : kExitError;
  }
  v1::PolicyTraceRequest req;
  req.set_from(from_);
  req.set_to(to_);
  req.set_port(port_);
  req.set_protocol(protocol_);
  v1::PolicyTraceResponse r;
  if (auto st = stub->Trace(ctx.get(), req, &r); !st.ok()) return fail(FromGrpc(st, target));
  print(r, PolicyTraceText(r));
  if (r.mismatch())
    return fail(
        Failure{"policy trace: the pinned BPF maps disagree with the agent's compiled "
                "policy (see the problems above)",
                kExitError});
  return kExitOk;
}

}  // namespace skiff::cli
