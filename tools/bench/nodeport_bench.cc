// skiff_bench_nodeport: one measurement of the NodePort connection-rate benchmark
// (tools/bench/run --parts nodeport, docs/BENCHMARKS.md "NodePort connection rate"). It builds
// a fresh two-node namespace cluster (tests/e2e/cluster.h), loads one mode, and measures short
// TCP connections from the outside client with skiff_bench_conn:
//
//   client ── router ──┬── node 1: NodePort 30080 → np-local  10.244.1.5 (a pod of node 1)
//                      │           NodePort 30081 → np-remote 10.244.2.5 (node 2: DNAT + SNAT)
//                      └── node 2
//
// Modes:
//   floor      no translation: the client connects to the pod IPs, and the router sends that
//              traffic (both directions) through node 1, so it crosses the same hops
//   skiff-xdp  skiff-agent on both nodes, node 1 with --devices eth0 --xdp native
//   skiff-tc   the same with --xdp disabled (tc from-netdev translates)
//   iptables   kube-proxy's iptables layout of both Services (KUBE-NODEPORTS → KUBE-EXT →
//              KUBE-SVC → KUBE-SEP DNAT, KUBE-MARK-MASQ → KUBE-POSTROUTING MASQUERADE), restored
//              into each node's namespace
// Every mode gets the same wiring: an XDP_PASS program on the router's device towards node 1
// (frames XDP_TX'ed to a veth peer are only received when the peer runs XDP) and tx checksum
// offload off in the client and the pods (XDP cannot tell a checksum left to offload from a
// complete one; docs/north-south.md).
//
// --node1-flags adds skiff-agent flags on node 1 (e.g. '--nat-port-range 1024-65535').
// --node1-xdp-pass 1 attaches an XDP_PASS program to node 1's eth0 in the modes without XDP
// there, so that every mode receives through veth's XDP path (NAPI, packets queued to the
// device's ring instead of handled in the sender's context): the modes then differ only in
// where and how they translate.
//
// Prints one JSON object per path of --paths, in that order:
//   {"path": "remote", "targets": "...", "xdp_packets": N, "result": {client output}}
// xdp_packets: packets node 1's XDP program translated and sent during the measurement (the
// warm-up runs before, as a client run of its own).
// Exits non-zero when the mode does not load or a path never carries error-free connections.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <linux/ethtool.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "maps/metrics.h"
#include "tests/e2e/cluster.h"
#include "tests/e2e/manifests.h"
#include "tests/e2e/topology.h"
#include "tools/bench/kube_proxy_rules.h"

namespace skiff::bench {
namespace {

using e2e::Cluster;
using e2e::Sh;
using e2e::ShOut;

constexpr char kClusterCidr[] = "10.244.0.0/16";

// SIGINT/SIGTERM: stop between steps, so the cluster's destructor removes what was made.
std::atomic<bool> g_stop{false};

struct Path {
  std::string name;  // "local", "remote"
  std::string service;
  std::string cluster_ip;
  std::string pod_ip;
  int node;  // of the pod
  int node_port;
};
const Path kPaths[] = {{"local", "np-local", "10.96.0.50", "10.244.1.5", 1, 30080},
                       {"remote", "np-remote", "10.96.0.51", "10.244.2.5", 2, 30081}};

struct Options {
  std::string mode;
  std::string agent;
  std::string conn;
  std::vector<std::string> paths = {"local", "remote"};
  std::string duration = "2";
  std::string warmup = "0.3";
  std::string iptables_restore = "iptables-legacy-restore";
  std::vector<std::string> node1_flags;  // extra skiff-agent flags on node 1
  bool node1_xdp_pass = false;
};

std::string ServiceManifest(const Path& p) {
  return absl::StrCat(
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: ", p.service,
      "\n  namespace: default\nspec:\n  type: NodePort\n  clusterIP: ", p.cluster_ip,
      "\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n    protocol: TCP\n"
      "    nodePort: ",
      p.node_port, "\n---\n",
      e2e::EndpointSliceYaml(p.service + "-1", p.service,
                             {{.ip = p.pod_ip, .node = absl::StrCat("node-", p.node)}},
                             {{"http", 8080, "TCP"}}));
}

std::string KubeProxyRules() {
  std::vector<KubeProxyService> svcs;
  for (const Path& p : kPaths)
    svcs.push_back({.port_name = absl::StrCat("default/", p.service, ":http"),
                    .cluster_ip = p.cluster_ip,
                    .port = 80,
                    .target_port = 8080,
                    .node_port = p.node_port,
                    .endpoints = {p.pod_ip}});
  std::string out = IptablesFilterTable() + IptablesNatHeader();
  for (const auto& s : svcs) IptablesChainDecls(s, &out);
  out += IptablesNatFixedRules();
  for (const auto& s : svcs) out += IptablesKubeServicesRule(s);
  out += kIptablesNodePortsLast;
  for (const auto& s : svcs) IptablesServiceRules(s, kClusterCidr, &out);
  return out + "COMMIT\n";
}

// The router sends the client's traffic to node 2's pods, and their replies to the client,
// through node 1: the hops of a NodePort flow to the remote backend, without translation.
absl::Status FloorRoutes(Cluster& c) {
  const std::string r = "ip -n " + c.router_netns() + " ";
  const std::string n1 = c.node(1).address;
  for (const std::string& cmd : {
           r + "rule add pref 100 iif rcl to 10.244.2.0/24 lookup 100",
           r + "route add 10.244.2.0/24 via " + n1 + " table 100",
           r + "rule add pref 101 iif rn2 from 10.244.2.0/24 to 192.168.100.0/24 lookup 101",
           r + "route add 192.168.100.0/24 via " + n1 + " table 101",
       }) {
    if (auto st = Sh(cmd); !st.ok()) return st;
  }
  return absl::OkStatus();
}

// Background skiff_bench_conn servers; killed by the destructor.
class Servers {
 public:
  absl::Status Start(const std::string& conn, const std::string& netns) {
    auto pid = ShOut("ip netns exec " + netns + " " + conn +
                     " serve --port 8080 --threads 1 >/dev/null 2>&1 </dev/null & echo $!");
    if (!pid.ok()) return pid.status();
    int p = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*pid), &p) || p <= 0)
      return absl::InternalError("no server pid: " + *pid);
    pids_.push_back(p);
    return absl::OkStatus();
  }
  ~Servers() {
    for (int p : pids_) kill(p, SIGTERM);
  }

 private:
  std::vector<int> pids_;
};

// The client's JSON line ("" when it printed none).
std::string Client(const Options& o, const Cluster& c, const std::string& targets,
                   const std::string& duration, const std::string& warmup,
                   const std::string& extra) {
  auto out = ShOut("ip netns exec " + c.client_netns() + " " + o.conn + " client --targets " +
                   targets + " --duration " + duration + " --warmup " + warmup + extra);
  const std::string text = out.ok() ? *out : std::string(out.status().message());
  for (absl::string_view line : absl::StrSplit(text, '\n'))
    if (absl::StartsWith(line, "{")) return std::string(line);
  return "";
}

int Run(const Options& o) {
  auto made = Cluster::Create(2);
  if (!made.ok()) {
    std::cerr << "cluster: " << made.status() << "\n";
    return 1;
  }
  Cluster& c = **made;
  Servers servers;
  std::vector<std::string> senders = {c.client_netns()};
  for (const Path& p : kPaths) {
    auto pod = c.AddPod(p.node, p.service, p.pod_ip);
    if (!pod.ok()) {
      std::cerr << "pod " << p.service << ": " << pod.status() << "\n";
      return 1;
    }
    senders.push_back(pod->netns);
    if (auto st = servers.Start(o.conn, pod->netns); !st.ok()) {
      std::cerr << "server in " << p.service << ": " << st << "\n";
      return 1;
    }
  }
  if (auto st = e2e::AttachXdpPass(c.router_netns(), "rn1"); !st.ok()) {
    std::cerr << "XDP_PASS on the router's rn1: " << st << "\n";
    return 1;
  }
  for (const std::string& ns : senders)
    if (auto st = e2e::SetEthtool(ns, "eth0", ETHTOOL_STXCSUM, false); !st.ok()) {
      std::cerr << "tx checksum offload off in " << ns << ": " << st << "\n";
      return 1;
    }

  const bool skiff = o.mode == "skiff-xdp" || o.mode == "skiff-tc";
  if (o.mode == "floor") {
    if (auto st = FloorRoutes(c); !st.ok()) {
      std::cerr << "floor routes: " << st << "\n";
      return 1;
    }
  } else if (skiff) {
    for (const Path& p : kPaths) c.WriteManifest(p.service + ".yaml", ServiceManifest(p));
    const std::string xdp = o.mode == "skiff-xdp" ? "native" : "disabled";
    for (int n : {1, 2}) {
      std::vector<std::string> flags;
      if (n == 1) {
        flags = {"--devices", "eth0", "--xdp", xdp};
        flags.insert(flags.end(), o.node1_flags.begin(), o.node1_flags.end());
      }
      if (auto st = c.node(n).StartAgent(o.agent, flags); !st.ok()) {
        std::cerr << "agent on node " << n << ": " << st << "\n";
        return 1;
      }
    }
  } else if (o.mode == "iptables") {
    const std::string dir = "/tmp/" + e2e::UniqueName("sknp");
    std::filesystem::create_directories(dir);
    e2e::WriteFileAtomically(dir + "/rules", KubeProxyRules());
    e2e::WriteFileAtomically(dir + "/jumps", IptablesJumps());
    absl::Status st;
    for (int n : {1, 2}) {
      const std::string x = "ip netns exec " + c.node(n).node->netns() + " ";
      if (st.ok()) st = Sh(x + o.iptables_restore + " <" + dir + "/rules");
      if (st.ok()) st = Sh(x + o.iptables_restore + " --noflush <" + dir + "/jumps");
    }
    std::filesystem::remove_all(dir);
    if (!st.ok()) {
      std::cerr << "iptables rules: " << st << "\n";
      return 1;
    }
  } else {
    std::cerr << "unknown mode " << o.mode << "\n";
    return 2;
  }

  // --node1-xdp-pass: node 1's eth0 receives through veth's XDP (NAPI) path in this mode too.
  const bool mode_has_xdp = o.mode == "skiff-xdp";
  bool xdp_pass_attached = mode_has_xdp;
  int rc = 0;
  for (const std::string& name : o.paths) {
    if (g_stop) return 130;
    const Path* p = nullptr;
    for (const Path& q : kPaths)
      if (q.name == name) p = &q;
    if (!p) {
      std::cerr << "unknown path " << name << "\n";
      return 2;
    }
    const std::string targets = o.mode == "floor"
                                    ? absl::StrCat(p->pod_ip, ":8080")
                                    : absl::StrCat(c.node(1).address, ":", p->node_port);
    // Until the agents have programmed the maps (or a first connection failed for any other
    // reason), short probes; then the measurement.
    auto probe = [&] {
      for (int i = 0; i < 60 && !g_stop; i++) {
        std::string r = Client(o, c, targets, "0.2", "0", " --timeout-ms 300");
        if (r.find("\"errors\": 0,") != std::string::npos) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
      return false;
    };
    bool ready = probe();
    if (ready && o.node1_xdp_pass && !xdp_pass_attached) {
      // After the agent started (--xdp=disabled detaches whatever XDP program it finds).
      if (auto st = e2e::AttachXdpPass(c.node(1).node->netns(), "eth0"); !st.ok()) {
        std::cerr << "XDP_PASS on node 1's eth0: " << st << "\n";
        return 1;
      }
      xdp_pass_attached = true;
      ready = probe();
    }
    if (!ready) {
      std::cerr << o.mode << " " << name << ": no error-free connections to " << targets << "\n";
      if (skiff)
        for (int n : {1, 2}) std::cerr << "---- agent log node-" << n << "\n" << c.node(n).Log();
      rc = 1;
      continue;
    }
    // The warm-up is a run of its own, so that the XDP counter covers exactly the connections
    // the measurement counts.
    Client(o, c, targets, o.warmup, "0", "");
    const uint64_t xdp0 = c.node(1).DatapathPackets(SKIFF_DIR_XDP);
    std::string res = Client(o, c, targets, o.duration, "0", "");
    const uint64_t xdp = c.node(1).DatapathPackets(SKIFF_DIR_XDP) - xdp0;
    if (res.empty()) {
      std::cerr << o.mode << " " << name << ": the client printed no result\n";
      rc = 1;
      continue;
    }
    std::cout << "{\"path\": \"" << name << "\", \"targets\": \"" << targets
              << "\", \"xdp_packets\": " << xdp << ", \"result\": " << res << "}" << std::endl;
  }
  return rc;
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "skiff_bench_nodeport: " << a << " needs a value\n";
      return 2;
    }
    std::string v = argv[++i];
    if (a == "--mode")
      o.mode = v;
    else if (a == "--agent")
      o.agent = v;
    else if (a == "--conn")
      o.conn = v;
    else if (a == "--paths")
      o.paths = absl::StrSplit(v, ',', absl::SkipEmpty());
    else if (a == "--duration")
      o.duration = v;
    else if (a == "--warmup")
      o.warmup = v;
    else if (a == "--iptables-restore")
      o.iptables_restore = v;
    else if (a == "--node1-xdp-pass")
      o.node1_xdp_pass = v == "1";
    else if (a == "--node1-flags")
      o.node1_flags = absl::StrSplit(v, ' ', absl::SkipEmpty());
    else {
      std::cerr << "usage: skiff_bench_nodeport --mode floor|skiff-xdp|skiff-tc|iptables "
                   "--agent PATH --conn PATH [--paths local,remote] [--duration S] "
                   "[--warmup S] [--iptables-restore CMD] [--node1-flags 'FLAG VALUE ...'] "
                   "[--node1-xdp-pass 0|1]\n";
      return 2;
    }
  }
  if (o.mode.empty() || o.agent.empty() || o.conn.empty()) {
    std::cerr << "skiff_bench_nodeport: --mode, --agent and --conn are required\n";
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = true; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  return Run(o);
}

}  // namespace
}  // namespace skiff::bench

int main(int argc, char** argv) { return skiff::bench::Main(argc, argv); }
