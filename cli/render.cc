#include "cli/render.h"

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace skiff::cli {
namespace {

std::string Endpoint(const std::string& addr, uint32_t port) {
  return addr.empty() ? "" : absl::StrCat(addr, ":", port);
}

std::string YesNo(bool b) { return b ? "yes" : "no"; }

std::string FieldText(const v1::MapField& f) {
  switch (f.value_case()) {
    case v1::MapField::kUint:
      return absl::StrCat(f.uint());
    case v1::MapField::kInt:
      return absl::StrCat(f.int_());
    case v1::MapField::kText:
      return f.text();
    default:
      return "";
  }
}

std::string Percent(double p) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", p * 100);
  return buf;
}

}  // namespace

std::string Duration(int64_t s) {
  if (s < 0) return absl::StrCat("-", Duration(-s));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrCat(s / 60, "m", s % 60 ? absl::StrCat(s % 60, "s") : "");
  if (s < 86400)
    return absl::StrCat(s / 3600, "h", (s % 3600) / 60 ? absl::StrCat((s % 3600) / 60, "m") : "");
  return absl::StrCat(s / 86400, "d",
                      (s % 86400) / 3600 ? absl::StrCat((s % 86400) / 3600, "h") : "");
}

std::string StatusTable(const v1::GetStatusResponse& s) {
  std::string out;
  std::vector<std::string> sources;
  for (const auto& src : s.sources())
    sources.push_back(absl::StrCat(src.name(), src.synced() ? "" : " (syncing)"));
  Table kv({"", ""});
  out += absl::StrCat("Version:      ", s.version(), "\n");
  out += absl::StrCat("Kernel:       ", s.kernel(), "\n");
  out += absl::StrCat("Node:         ", s.node_name(), "\n");
  out += absl::StrCat("Uptime:       ", Duration(s.uptime_seconds()), "\n");
  out += absl::StrCat("Synced:       ", YesNo(s.synced()),
                      sources.empty() ? "" : absl::StrCat(" (", absl::StrJoin(sources, ", "), ")"),
                      "\n");
  out += absl::StrCat("Model:        generation ", s.generation(), ", ", s.objects(), " objects, ",
                      s.frontends(), " frontends\n");
  out += absl::StrCat("Reconcile:    ",
                      s.reconcile_errors().empty()
                          ? std::string("ok")
                          : absl::StrCat(s.reconcile_errors_size(), " error(s)"),
                      "\n");
  for (const auto& e : s.reconcile_errors()) out += absl::StrCat("  - ", e, "\n");
  out += "\n";
  Table progs({"INTERFACE", "IFINDEX", "HOOK", "PROGRAM"});
  for (const auto& p : s.programs())
    progs.Add({p.interface(), absl::StrCat(p.ifindex()), p.hook(), p.program()});
  out += progs.size() ? progs.Render() : "No programs attached (no interface matches).\n";
  out += "\n";
  out += MapListTable({s.maps().begin(), s.maps().end()});
  return out;
}

std::string MapListTable(const std::vector<v1::MapInfo>& maps) {
  Table t({"NAME", "TYPE", "KEY", "VALUE", "ENTRIES", "MAX", "PRESSURE"});
  for (const auto& m : maps)
    t.Add({m.name(), m.type(), absl::StrCat(m.key_size()), absl::StrCat(m.value_size()),
           absl::StrCat(m.entries()), absl::StrCat(m.max_entries()), Percent(m.pressure())});
  return t.Render();
}

std::string ServiceListTable(const v1::ListServicesResponse& r) {
  Table t({"NAMESPACE", "NAME", "KIND", "FRONTEND", "PORT", "ACTIVE", "TERMINATING", "REV-NAT",
           "ALGORITHM", "STATE"});
  for (const auto& s : r.services()) {
    if (s.frontends().empty()) {
      t.Add({s.namespace_(), s.name(), "", "", "", "", "", "", "", ""});
      continue;
    }
    for (const auto& f : s.frontends()) {
      int active = 0, term = 0;
      for (const auto& b : f.backends()) {
        active += b.state() == "active";
        term += b.state() == "terminating";
      }
      t.Add({s.namespace_(), s.name(), f.kind(),
             absl::StrCat(f.address(), ":", f.port(), "/", f.protocol()), f.port_name(),
             absl::StrCat(active), absl::StrCat(term),
             f.rev_nat_id() ? absl::StrCat(f.rev_nat_id()) : "", f.lb_algorithm(), f.state()});
    }
  }
  return t.Render();
}

std::string ServiceDetail(const v1::Service& s) {
  std::string out = absl::StrCat("Name:        ", s.namespace_(), "/", s.name(), "\n");
  if (s.frontends().empty()) out += "Frontends:   <none>\n";
  for (const auto& f : s.frontends()) {
    out += absl::StrCat("\nFrontend:    ", f.address(), ":", f.port(), "/", f.protocol(), "\n");
    out += absl::StrCat("  Kind:      ", f.kind().empty() ? "<unknown>" : f.kind(),
                        f.port_name().empty() ? "" : absl::StrCat(", port ", f.port_name()), "\n");
    out += absl::StrCat("  State:     ", f.state(), "\n");
    out += absl::StrCat("  Rev-NAT:   ", f.rev_nat_id() ? absl::StrCat(f.rev_nat_id()) : "<none>",
                        "\n");
    out += absl::StrCat(
        "  Algorithm: ", f.lb_algorithm().empty() ? "<agent default>" : f.lb_algorithm(), "\n");
    if (f.session_affinity())
      out += absl::StrCat("  Affinity:  ClientIP, ", f.affinity_timeout_seconds(), "s\n");
    if (f.internal_traffic_local()) out += "  Traffic:   internalTrafficPolicy Local\n";
    if (f.external_traffic_local()) out += "  Traffic:   externalTrafficPolicy Local\n";
    Table t({"SLOT", "ID", "BACKEND", "STATE", "LOCAL", "POD"});
    for (const auto& b : f.backends())
      t.Add({absl::StrCat(b.slot()), b.id() ? absl::StrCat(b.id()) : "",
             Endpoint(b.address(), b.port()), b.state(), YesNo(b.node_local()), b.pod()});
    if (t.size() == 0) {
      out += "  Backends:  <none>\n";
      continue;
    }
    for (auto line : absl::StrSplit(t.Render(), '\n', absl::SkipEmpty()))
      out += absl::StrCat("  ", line, "\n");
  }
  return out;
}

std::string EndpointTable(const v1::ListEndpointsResponse& r) {
  Table t({"NAMESPACE", "NAME", "ADDRESSES", "INTERFACE", "ATTACHED", "SERVICES"});
  for (const auto& e : r.endpoints())
    t.Add({e.namespace_(), e.name(), absl::StrJoin(e.addresses(), ","), e.interface(),
           e.interface().empty() ? "" : YesNo(e.attached()), absl::StrJoin(e.backend_of(), ",")});
  return t.Render();
}

Table ConntrackTable() {
  return Table({"KIND", "PROTO", "SOURCE", "DESTINATION", "NAT", "SERVICE", "FLAGS", "PACKETS",
                "BYTES", "AGE", "EXPIRES"});
}

void AddConntrackRow(Table& t, const v1::ConntrackEntry& e) {
  t.Add({e.kind(), e.protocol(), Endpoint(e.src_address(), e.src_port()),
         Endpoint(e.dst_address(), e.dst_port()), Endpoint(e.nat_address(), e.nat_port()),
         e.service(), absl::StrJoin(e.flags(), ","), absl::StrCat(e.packets()),
         absl::StrCat(e.bytes()), Duration(e.age_seconds()),
         e.expires_in_seconds() <= 0 ? "expired" : Duration(e.expires_in_seconds())});
}

Table MapDumpTable(const v1::MapEntry& first) {
  std::vector<std::string> h;
  for (const auto& f : first.key()) h.push_back(absl::AsciiStrToUpper(f.name()));
  for (const auto& f : first.value()) h.push_back(absl::AsciiStrToUpper(f.name()));
  return Table(std::move(h));
}

void AddMapDumpRow(Table& t, const v1::MapEntry& e) {
  std::vector<std::string> row;
  for (const auto& f : e.key()) row.push_back(FieldText(f));
  for (const auto& f : e.value()) row.push_back(FieldText(f));
  t.Add(std::move(row));
}

}  // namespace skiff::cli
