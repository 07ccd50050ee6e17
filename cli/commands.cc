#include "cli/commands.h"

#include <CLI/CLI.hpp>
#include <functional>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/api/map_decode.h"
#include "agent/api/map_reader.h"
#include "cli/client.h"
#include "cli/flows.h"
#include "cli/output.h"
#include "cli/policy_commands.h"
#include "cli/render.h"
#include "skiff/v1/conntrack.grpc.pb.h"
#include "skiff/v1/endpoints.grpc.pb.h"
#include "skiff/v1/maps.grpc.pb.h"
#include "skiff/v1/services.grpc.pb.h"
#include "skiff/v1/status.grpc.pb.h"

namespace skiff::cli {
namespace {

struct Options {
  Target target;
  std::string output = "table";
  Format format = Format::kTable;
  std::string ns;
  std::string name;  // service get NS/NAME, map dump NAME
  uint64_t limit = 0;
  std::string bpffs_root = "/sys/fs/bpf/skiff";
  v1::ConntrackFilter filter;
  uint32_t port = 0;
  bool all = false;
};

class Runner {
 public:
  Runner(const Options& o, std::ostream& out, std::ostream& err) : o_(o), out_(out), err_(err) {}

  int Fail(const Failure& f) {
    err_ << "agentctl: " << f.message << "\n";
    return f.exit_code;
  }
  int Fail(const absl::Status& st) { return Fail(FromStatus(st, o_.target)); }
  int Fail(const grpc::Status& st) { return Fail(FromGrpc(st, o_.target)); }

  // Prints a unary answer: table via `table`, else the message as JSON/YAML.
  int Print(const google::protobuf::Message& m, const std::function<std::string()>& table) {
    out_ << (o_.format == Format::kTable ? table() : Render(ToJson(m), o_.format));
    return kExitOk;
  }

  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel() { return Connect(o_.target); }

  int Policy(const PolicyCommands& p) { return p.Run(o_.target, o_.format, out_, err_); }

  int Status() {
    auto ch = Channel();
    if (!ch.ok()) return Fail(ch.status());
    v1::GetStatusResponse r;
    auto ctx = UnaryContext();
    if (auto st = v1::StatusService::NewStub(*ch)->GetStatus(ctx.get(), {}, &r); !st.ok())
      return Fail(st);
    return Print(r, [&] { return StatusTable(r); });
  }

  int Version() {
    Json j = Json::object();
    j["client"] = {{"version", SKIFF_VERSION}};
    v1::GetStatusResponse r;
    grpc::Status st(grpc::StatusCode::UNAVAILABLE, "");
    auto ch = Channel();
    if (ch.ok()) {
      auto ctx = UnaryContext();
      st = v1::StatusService::NewStub(*ch)->GetStatus(ctx.get(), {}, &r);
    }
    bool ok = ch.ok() && st.ok();
    j["server"] = ok ? Json{{"version", r.version()}, {"kernel", r.kernel()}} : Json(nullptr);
    if (o_.format == Format::kTable) {
      out_ << "agentctl " << SKIFF_VERSION << "\n";
      if (ok) out_ << "skiff-agent " << r.version() << " (kernel " << r.kernel() << ")\n";
    } else {
      out_ << Render(j, o_.format);
    }
    if (!ch.ok()) return Fail(ch.status());
    if (!st.ok()) return Fail(st);
    return kExitOk;
  }

  int ServiceList() {
    auto ch = Channel();
    if (!ch.ok()) return Fail(ch.status());
    v1::ListServicesRequest req;
    req.set_namespace_(o_.ns);
    v1::ListServicesResponse r;
    auto ctx = UnaryContext();
    if (auto st = v1::ServiceService::NewStub(*ch)->ListServices(ctx.get(), req, &r); !st.ok())
      return Fail(st);
    return Print(r, [&] { return ServiceListTable(r); });
  }

  int ServiceGet() {
    std::vector<std::string> parts = absl::StrSplit(o_.name, absl::MaxSplits('/', 1));
    v1::GetServiceRequest req;
    if (parts.size() == 2) {
      req.set_namespace_(parts[0]);
      req.set_name(parts[1]);
    } else {
      req.set_namespace_(o_.ns.empty() ? "default" : o_.ns);
      req.set_name(parts[0]);
    }
    if (req.name().empty() || req.namespace_().empty())
      return Fail(
          Failure{absl::StrCat("service get ", o_.name, ": expected NAMESPACE/NAME"), kExitUsage});
    auto ch = Channel();
    if (!ch.ok()) return Fail(ch.status());
    v1::Service r;
    auto ctx = UnaryContext();
    if (auto st = v1::ServiceService::NewStub(*ch)->GetService(ctx.get(), req, &r); !st.ok())
      return Fail(st);
    return Print(r, [&] { return ServiceDetail(r); });
  }

  int EndpointList() {
    auto ch = Channel();
    if (!ch.ok()) return Fail(ch.status());
    v1::ListEndpointsRequest req;
    req.set_namespace_(o_.ns);
    v1::ListEndpointsResponse r;
    auto ctx = UnaryContext();
    if (auto st = v1::EndpointService::NewStub(*ch)->ListEndpoints(ctx.get(), req, &r); !st.ok())
      return Fail(st);
    return Print(r, [&] { return EndpointTable(r); });
  }

  int CtList() {
    auto ch = Channel();
    if (!ch.ok()) return Fail(ch.status());
    v1::ListConntrackRequest req;
    *req.mutable_filter() = o_.filter;
    req.set_limit(o_.limit);
    grpc::ClientContext ctx;
    auto reader = v1::ConntrackService::NewStub(*ch)->ListConntrack(&ctx, req);
    v1::ListConntrackResponse batch;
    // Tables need every row for their widths; json/yaml print as entries arrive.
    Table table = ConntrackTable();
    std::unique_ptr<StreamingList> list;
    if (o_.format != Format::kTable)
      list = std::make_unique<StreamingList>(out_, o_.format, Json::object(), "entries");
    while (reader->Read(&batch))
      for (const auto& e : batch.entries())
        o_.format == Format::kTable ? AddConntrackRow(table, e) : list->Add(ToJson(e));
    if (auto st = reader->Finish(); !st.ok()) return Fail(st);
    if (list)
      list->End();
    else if (table.size())
      out_ << table.Render();
    else
      out_ << "No conntrack entries" << (FilterSet() ? " match the filter" : "") << ".\n";
    return kExitOk;
  }

  bool FilterSet() const {
    const auto& f = o_.filter;
    return !f.ip().empty() || f.port() || !f.protocol().empty() || !f.service().empty();
  }

  int CtFlush() {
    if (!FilterSet() && !o_.all)
      return Fail(
          Failure{"ct flush: give a filter (--ip, --port, --protocol, --service) or --all to flush "
                  "every entry",
                  kExitUsage});
    if (FilterSet() && o_.all)
      return Fail(Failure{"ct flush: --all cannot be combined with a filter", kExitUsage});
    auto ch = Channel();
    if (!ch.ok()) return Fail(ch.status());
    v1::FlushConntrackRequest req;
    *req.mutable_filter() = o_.filter;
    v1::FlushConntrackResponse r;
    auto ctx = UnaryContext();
    if (auto st = v1::ConntrackService::NewStub(*ch)->FlushConntrack(ctx.get(), req, &r); !st.ok())
      return Fail(st);
    return Print(r, [&] {
      return absl::StrCat("Deleted ", r.deleted(),
                          " conntrack entries (both directions of each matching flow).\n");
    });
  }

  int MapList() {
    auto ch = Channel();
    if (!ch.ok()) return Fail(ch.status());
    v1::ListMapsResponse r;
    auto ctx = UnaryContext();
    if (auto st = v1::MapService::NewStub(*ch)->ListMaps(ctx.get(), {}, &r); !st.ok())
      return Fail(st);
    return Print(r, [&] { return MapListTable({r.maps().begin(), r.maps().end()}); });
  }

  // Shared by `map dump` (over gRPC) and `bpf map dump` (from bpffs).
  class DumpPrinter {
   public:
    DumpPrinter(Runner& r) : r_(r) {}
    void Head(const v1::MapInfo& info) {
      if (r_.o_.format != Format::kTable) {
        Json head = Json::object();
        head["map"] = ToJson(info);
        list_ = std::make_unique<StreamingList>(r_.out_, r_.o_.format, head, "entries");
      }
    }
    void Add(const v1::MapEntry& e) {
      if (list_) return list_->Add(ToJson(e));
      if (!table_) table_ = std::make_unique<Table>(MapDumpTable(e));
      AddMapDumpRow(*table_, e);
    }
    void End(const std::string& name) {
      if (list_) return list_->End();
      if (table_)
        r_.out_ << table_->Render();
      else
        r_.out_ << "Map " << name << " is empty.\n";
    }

   private:
    Runner& r_;
    std::unique_ptr<StreamingList> list_;
    std::unique_ptr<Table> table_;
  };

  int MapDump() {
    auto ch = Channel();
    if (!ch.ok()) return Fail(ch.status());
    v1::DumpMapRequest req;
    req.set_name(o_.name);
    req.set_limit(o_.limit);
    grpc::ClientContext ctx;
    auto reader = v1::MapService::NewStub(*ch)->DumpMap(&ctx, req);
    v1::DumpMapResponse batch;
    DumpPrinter p(*this);
    bool first = true;
    while (reader->Read(&batch)) {
      if (first) p.Head(batch.map());
      first = false;
      for (const auto& e : batch.entries()) p.Add(e);
    }
    if (auto st = reader->Finish(); !st.ok()) return Fail(st);
    p.End(o_.name);
    return kExitOk;
  }

  int BpfMapList() {
    auto names = api::ListPinnedMaps(o_.bpffs_root);
    if (!names.ok()) return Fail(names.status());
    v1::ListMapsResponse r;
    for (const auto& n : *names) {
      auto m = api::FdMapReader::OpenPinned(o_.bpffs_root + "/" + n, n);
      if (!m.ok()) return Fail(m.status());
      auto count = (*m)->Count();
      if (!count.ok()) return Fail(count.status());
      api::FillMapInfo((*m)->meta(), *count, r.add_maps());
    }
    return Print(r, [&] { return MapListTable({r.maps().begin(), r.maps().end()}); });
  }

  int BpfMapDump() {
    if (o_.name.find('/') != std::string::npos)
      return Fail(Failure{"bpf map dump: give a map name from `agentctl bpf map list`, not a path",
                          kExitUsage});
    auto m = api::FdMapReader::OpenPinned(o_.bpffs_root + "/" + o_.name, o_.name);
    if (!m.ok()) return Fail(m.status());
    v1::MapInfo info;
    api::FillMapInfo((*m)->meta(), 0, &info);
    DumpPrinter p(*this);
    p.Head(info);
    uint64_t n = 0;
    auto st = (*m)->ForEach([&](api::Bytes k, api::Bytes v) {
      if (o_.limit && n >= o_.limit) return false;
      v1::MapEntry e;
      api::DecodeMapEntry((*m)->meta(), k, v, &e);
      p.Add(e);
      n++;
      return true;
    });
    if (!st.ok()) return Fail(st);
    p.End(o_.name);
    return kExitOk;
  }

 private:
  const Options& o_;
  std::ostream& out_;
  std::ostream& err_;
};

void AddFilterFlags(CLI::App* c, Options& o) {
  c->add_option("--ip", *o.filter.mutable_ip(), "Entries with this address anywhere")
      ->type_name("IP");
  c->add_option("--port", o.port, "Entries with this port anywhere")
      ->type_name("PORT")
      ->check(CLI::Range(1, 65535));
  c->add_option("--protocol", *o.filter.mutable_protocol(), "tcp, udp or icmp")
      ->type_name("PROTO")
      ->check(CLI::IsMember({"tcp", "udp", "icmp"}, CLI::ignore_case));
  c->add_option("--service", *o.filter.mutable_service(), "Entries of this Service's frontends")
      ->type_name("NAMESPACE/NAME");
}

}  // namespace

int RunAgentctl(int argc, char** argv, std::ostream& out, std::ostream& err) {
  Options o;
  CLI::App app{"agentctl: inspect a node's Skiff datapath (docs/cli.md)", "agentctl"};
  app.set_version_flag("--version", std::string("agentctl ") + SKIFF_VERSION);
  app.fallthrough();
  app.require_subcommand(1);
  app.add_option("--socket", o.target.socket, "The agent's API socket (its --api-socket)")
      ->type_name("PATH")
      ->capture_default_str();
  app.add_option("--server", o.target.server, "Reach the agent over TCP (its --api-listen)")
      ->type_name("HOST:PORT");
  app.add_option("--tls-ca", o.target.tls_ca, "PEM CA that signed the agent's certificate")
      ->type_name("FILE");
  app.add_option("--tls-cert", o.target.tls_cert, "PEM client certificate (mTLS)")
      ->type_name("FILE");
  app.add_option("--tls-key", o.target.tls_key, "PEM client key (mTLS)")->type_name("FILE");
  app.add_flag("--insecure", o.target.insecure, "Plaintext TCP (an agent with --api-insecure)");
  app.add_option("-o,--output", o.output, "table, json or yaml")
      ->check(CLI::IsMember({"table", "json", "yaml"}))
      ->capture_default_str();

  std::function<int(Runner&)> run;
  auto on = [&](CLI::App* c, std::function<int(Runner&)> f) {
    c->callback([&run, f] { run = f; });
  };

  on(app.add_subcommand("status", "Agent, sources, attached programs and maps"),
     [](Runner& r) { return r.Status(); });
  on(app.add_subcommand("version", "agentctl's and the agent's versions"),
     [](Runner& r) { return r.Version(); });

  auto* svc = app.add_subcommand("service", "Services as the datapath holds them");
  svc->require_subcommand(1);
  auto* svc_list = svc->add_subcommand("list", "Every Service and frontend");
  svc_list->add_option("-n,--namespace", o.ns, "Only this namespace");
  on(svc_list, [](Runner& r) { return r.ServiceList(); });
  auto* svc_get = svc->add_subcommand("get", "One Service: frontends and backends");
  svc_get->add_option("name", o.name, "NAMESPACE/NAME")->required();
  on(svc_get, [](Runner& r) { return r.ServiceGet(); });

  auto* ep = app.add_subcommand("endpoint", "Pods on this node and their interfaces");
  ep->require_subcommand(1);
  auto* ep_list = ep->add_subcommand("list", "Every local pod endpoint");
  ep_list->add_option("-n,--namespace", o.ns, "Only this namespace");
  on(ep_list, [](Runner& r) { return r.EndpointList(); });

  auto* ct = app.add_subcommand("ct", "Conntrack entries");
  ct->require_subcommand(1);
  auto* ct_list = ct->add_subcommand("list", "Entries, optionally filtered");
  AddFilterFlags(ct_list, o);
  ct_list->add_option("--limit", o.limit, "At most N entries");
  on(ct_list, [](Runner& r) { return r.CtList(); });
  auto* ct_flush = ct->add_subcommand("flush", "Delete matching entries (both directions)");
  AddFilterFlags(ct_flush, o);
  ct_flush->add_flag("--all", o.all, "Delete every entry");
  on(ct_flush, [](Runner& r) { return r.CtFlush(); });

  PolicyCommands policy;
  policy.Register(&app,
                  [&](CLI::App* c) { on(c, [&policy](Runner& r) { return r.Policy(policy); }); });

  auto add_map_cmds = [&](CLI::App* parent, bool direct) {
    parent->require_subcommand(1);
    auto* list = parent->add_subcommand("list", "Every pinned map with its fill level");
    on(list, [direct](Runner& r) { return direct ? r.BpfMapList() : r.MapList(); });
    auto* dump = parent->add_subcommand("dump", "Every entry of one map, decoded");
    dump->add_option("name", o.name, "Map name (see `map list`)")->required();
    dump->add_option("--limit", o.limit, "At most N entries");
    on(dump, [direct](Runner& r) { return direct ? r.BpfMapDump() : r.MapDump(); });
  };
  add_map_cmds(app.add_subcommand("map", "The datapath's maps, through the agent"), false);
  auto* bpf = app.add_subcommand("bpf", "Read bpffs directly (works while the agent is down)");
  bpf->require_subcommand(1);
  bpf->add_option("--bpffs-root", o.bpffs_root, "Where the agent pins maps (its --bpffs-root)")
      ->capture_default_str();
  add_map_cmds(bpf->add_subcommand("map", "Pinned maps"), true);

  FlowsOptions flows;
  on(AddFlowsCommand(&app, flows),
     [&](Runner&) { return RunFlows(flows, o.target, o.output, out, err); });

  auto* completion = app.add_subcommand("completion", "Print a shell completion script");
  std::string shell;
  completion->add_option("shell", shell, "bash")->required()->check(CLI::IsMember({"bash"}));
  bool print_completion = false;
  completion->callback([&] { print_completion = true; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e, out, err);  // --help, --version
    err << "agentctl: " << e.what() << "\n";
    return kExitUsage;
  }
  if (print_completion) {
    out << BashCompletion();
    return kExitOk;
  }
  auto format = ParseFormat(o.output);
  if (!format.ok()) {
    err << "agentctl: " << format.status().message() << "\n";
    return kExitUsage;
  }
  o.format = *format;
  o.filter.set_port(o.port);
  if (!run) {
    err << "agentctl: no command given (see agentctl --help)\n";
    return kExitUsage;
  }
  Runner r(o, out, err);
  return run(r);
}

const char* BashCompletion() {
  return R"(# agentctl bash completion: source <(agentctl completion bash)
_agentctl() {
  local cur prev words cword
  _init_completion 2>/dev/null || {
    cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"
    words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
  }
  case "$prev" in
    -o|--output) COMPREPLY=($(compgen -W "table json yaml" -- "$cur")); return ;;
    --protocol) COMPREPLY=($(compgen -W "tcp udp icmp" -- "$cur")); return ;;
    --socket|--tls-ca|--tls-cert|--tls-key|--bpffs-root) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  local cmd="" sub="" w
  for w in "${words[@]:1:cword-1}"; do
    case "$w" in
      -*) ;;
      *) if [ -z "$cmd" ]; then cmd=$w; elif [ -z "$sub" ]; then sub=$w; fi ;;
    esac
  done
  local global="--socket --server --tls-ca --tls-cert --tls-key --insecure -o --output --help"
  case "$cmd" in
    "") COMPREPLY=($(compgen -W "status service endpoint ct map bpf version flows policy completion $global" -- "$cur")) ;;
    service) [ -z "$sub" ] && COMPREPLY=($(compgen -W "list get" -- "$cur")) || COMPREPLY=($(compgen -W "-n --namespace $global" -- "$cur")) ;;
    endpoint) [ -z "$sub" ] && COMPREPLY=($(compgen -W "list" -- "$cur")) || COMPREPLY=($(compgen -W "-n --namespace $global" -- "$cur")) ;;
    ct) [ -z "$sub" ] && COMPREPLY=($(compgen -W "list flush" -- "$cur")) || COMPREPLY=($(compgen -W "--ip --port --protocol --service --limit --all $global" -- "$cur")) ;;
    policy) [ -z "$sub" ] && COMPREPLY=($(compgen -W "list get trace" -- "$cur")) || COMPREPLY=($(compgen -W "-n --namespace --from --to --port --protocol $global" -- "$cur")) ;;
    map) [ -z "$sub" ] && COMPREPLY=($(compgen -W "list dump" -- "$cur")) || COMPREPLY=($(compgen -W "--limit $global" -- "$cur")) ;;
    bpf) [ -z "$sub" ] && COMPREPLY=($(compgen -W "map --bpffs-root" -- "$cur")) || COMPREPLY=($(compgen -W "list dump --limit --bpffs-root $global" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash" -- "$cur")) ;;
    *) COMPREPLY=($(compgen -W "$global" -- "$cur")) ;;
  esac
}
complete -F _agentctl agentctl
)";
}

}  // namespace skiff::cli
