#include "agent/config.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "agent/api/server.h"
#include "agent/observe/server.h"
#include "agent/reconcile/maglev.h"

namespace skiff {

api::ServerOptions ApiServerOptions(const AgentConfig& c) {
  api::ServerOptions o;
  o.socket_path = c.api_socket;
  o.tcp_listen = c.api_listen;
  o.tls_cert = c.api_tls_cert;
  o.tls_key = c.api_tls_key;
  o.tls_client_ca = c.api_tls_client_ca;
  o.insecure = c.api_insecure;
  return o;
}

namespace {

// A day, four times the longest conntrack lifetime (6 h): a larger value is more likely a slip
// (milliseconds?) than a choice.
constexpr uint32_t kMaxCtGcInterval = 86400;

// One source: the manifest directory, or else the Kubernetes API through --kubeconfig,
// $KUBECONFIG, or the in-cluster config (KUBERNETES_SERVICE_HOST set by the kubelet).
absl::Status ResolveSource(AgentConfig& c) {
  if (!c.manifests.empty()) {
    if (!c.kubeconfig.empty() || !c.k8s_api_server.empty())
      return absl::InvalidArgumentError(
          "--manifests and --kubeconfig/--k8s-api-server exclude each other: pass one source");
    return absl::OkStatus();
  }
  if (const char* env = std::getenv("KUBECONFIG"); c.kubeconfig.empty() && env != nullptr)
    c.kubeconfig = env;
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (!c.kubeconfig.empty() || !c.k8s_api_server.empty() || (host != nullptr && *host)) {
    c.use_kubernetes = true;
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      "no source given: pass --manifests DIR (standalone mode) or --kubeconfig PATH (or set "
      "KUBECONFIG), or run in a cluster (KUBERNETES_SERVICE_HOST set)");
}

}  // namespace

absl::StatusOr<AgentConfig> ParseFlags(int argc, char** argv) {
  AgentConfig c;
  CLI::App app{"skiff-agent: kube-proxy-free eBPF service datapath (node agent)", "skiff-agent"};
  app.set_version_flag("--version", std::string(SKIFF_VERSION));
  app.add_option("--manifests", c.manifests,
                 "Standalone mode: read Kubernetes manifests (*.yaml, *.yml, *.json) from DIR "
                 "and watch it")
      ->type_name("DIR");
  app.add_option("--node-name", c.node_name, "This node's name (default: the host name)")
      ->type_name("NAME");
  app.add_option("--kubeconfig", c.kubeconfig,
                 "Kubernetes API source: kubeconfig file(s), ':'-separated (default: "
                 "$KUBECONFIG, else the in-cluster config)")
      ->type_name("PATH");
  app.add_option("--k8s-api-server", c.k8s_api_server,
                 "Kubernetes API server URL, replacing the kubeconfig's or in-cluster address")
      ->type_name("URL");
  app.add_flag("--k8s-node-pods-only", c.k8s_node_pods_only,
               "Watch only the pods of --node-name (fieldSelector spec.nodeName)");
  app.add_option("--endpoint-ifaces", c.endpoint_ifaces,
                 "Comma-separated globs of pod-facing host interfaces")
      ->type_name("GLOB[,GLOB...]")
      ->capture_default_str();
  app.add_option("--devices", c.devices,
                 "Comma-separated node devices serving NodePort, externalIPs and LoadBalancer IPs "
                 "(default: the device of the default route)")
      ->type_name("IFACE[,IFACE...]");
  app.add_option("--xdp", c.xdp,
                 "XDP on the --devices for NodePort/LoadBalancer flows to other nodes: native "
                 "(fail when a device cannot), best-effort (fall back to tc with a warning), "
                 "disabled")
      ->check(CLI::IsMember({"native", "best-effort", "disabled"}))
      ->capture_default_str();
  app.add_option("--host-routing", c.host_routing,
                 "Pod-to-pod traffic within the node: bpf (from_container delivers it straight "
                 "into the destination pod, skipping the node's IP stack, netfilter and the "
                 "destination's to_container; not while a NetworkPolicy exists) or legacy "
                 "(through the node's stack)")
      ->check(CLI::IsMember({"bpf", "legacy"}))
      ->capture_default_str();
  app.add_option("--socket-lb", c.socket_lb,
                 "Socket-level load balancing for processes in the node's network namespace "
                 "(ClusterIPs, the node's own NodePorts, externalIPs, LoadBalancer IPs): "
                 "enabled or disabled")
      ->check(CLI::IsMember({"enabled", "disabled"}))
      ->capture_default_str();
  app.add_option("--socket-lb-scope", c.socket_lb_scope,
                 "Whose sockets socket-level load balancing translates: host (the node's network "
                 "namespace; pods keep the per-packet tc path) or all (pods too, as Cilium's "
                 "default: no per-packet NAT or service conntrack for their connections)")
      ->check(CLI::IsMember({"host", "all"}))
      ->capture_default_str();
  app.add_option("--cgroup-root", c.cgroup_root,
                 "cgroup v2 directory the socket-LB programs attach to (default: the cgroup2 "
                 "mount, normally /sys/fs/cgroup)")
      ->type_name("PATH");
  app.add_option("--nat-max", c.nat_max, "NodePort SNAT map entries (two per translated flow)")
      ->capture_default_str();
  app.add_option("--nat-port-range", c.nat_port_range,
                 "Source ports NodePort SNAT allocates from (keep clear of ip_local_port_range)")
      ->type_name("MIN-MAX")
      ->capture_default_str();
  app.add_option("--bpffs-root", c.bpffs_root, "Where maps are pinned (bpffs mounted if absent)")
      ->type_name("PATH")
      ->capture_default_str();
  app.add_option("--api-socket", c.api_socket, "Unix socket of the gRPC API")
      ->type_name("PATH")
      ->capture_default_str();
  app.add_option("--api-listen", c.api_listen,
                 "Also serve the API on TCP HOST:PORT (needs --api-tls-cert/--api-tls-key, "
                 "or --api-insecure)")
      ->type_name("HOST:PORT");
  app.add_option("--api-tls-cert", c.api_tls_cert, "PEM certificate chain for --api-listen")
      ->type_name("FILE");
  app.add_option("--api-tls-key", c.api_tls_key, "PEM private key for --api-listen")
      ->type_name("FILE");
  app.add_option("--api-tls-client-ca", c.api_tls_client_ca,
                 "PEM CA for --api-listen clients (mTLS: a client certificate is required)")
      ->type_name("FILE");
  app.add_flag("--api-insecure", c.api_insecure,
               "Allow --api-listen without TLS (anyone who can reach the port can flush "
               "conntrack)");
  app.add_option("--ct-max", c.ct_max, "Conntrack map entries (LRU)")->capture_default_str();
  app.add_option("--lb-map-max", c.lb_map_max,
                 "Service map entries: one per frontend plus one per backend slot")
      ->capture_default_str();
  app.add_option("--lb-backends-max", c.lb_backends_max, "Backend map entries")
      ->capture_default_str();
  app.add_option("--lb-revnat-max", c.lb_revnat_max, "Reverse-NAT map entries (frontends)")
      ->capture_default_str();
  app.add_option("--lb-affinity-max", c.lb_affinity_max, "Session-affinity map entries (LRU)")
      ->capture_default_str();
  app.add_option("--lb-source-ranges-max", c.lb_source_ranges_max,
                 "loadBalancerSourceRanges map entries: one per range per LoadBalancer frontend")
      ->capture_default_str();
  app.add_option("--lb-algorithm", c.lb_algorithm,
                 "Backend selection for new service flows: random, or maglev (consistent "
                 "hashing of the 5-tuple); the service.skiff.io/lb-algorithm annotation "
                 "overrides it per Service")
      ->check(CLI::IsMember({"random", "maglev"}))
      ->capture_default_str();
  app.add_option("--maglev-table-size", c.maglev_table_size,
                 "Entries of each Maglev lookup table: a prime between 251 and 131071, much "
                 "larger than the backends of any Service (memory: 4 bytes per entry per table)")
      ->capture_default_str();
  app.add_option("--maglev-hash-seed", c.maglev_hash_seed,
                 "Seed of the Maglev hashes; must be the same on every node")
      ->capture_default_str();
  app.add_option("--lb-maglev-max", c.lb_maglev_max,
                 "Maglev table map entries: one per Maglev frontend, two with a traffic "
                 "policy Local (allocated on use)")
      ->capture_default_str();
  app.add_option("--ipcache-max", c.ipcache_max,
                 "ipcache entries (IP/CIDR -> identity): every pod, policy CIDR and node address")
      ->capture_default_str();
  app.add_option("--policy-map-max", c.policy_map_max,
                 "NetworkPolicy allow entries over all endpoints of the node (full: fails closed)")
      ->capture_default_str();
  app.add_option("--policy-ct-max", c.policy_ct_max, "Policy conntrack entries (LRU)")
      ->capture_default_str();
  app.add_option("--ct-gc-interval", c.ct_gc_interval,
                 "Seconds between sweeps that delete expired entries from the service and "
                 "policy conntrack maps and the host-routing route cache, and dead flows' "
                 "NodePort SNAT entries (0: no GC; the LRU maps then only evict under pressure)")
      ->type_name("SECONDS")
      ->check(CLI::Range(0u, kMaxCtGcInterval))
      ->capture_default_str();
  app.add_option("--events-ring-size", c.events_ring_size,
                 "Flow event ring buffer in bytes (power of two, >= 4096)")
      ->capture_default_str();
  app.add_option("--drop-events-per-sec", c.drop_events_per_sec,
                 "Drop events per CPU and second; more drops are counted, not reported (0: off)")
      ->capture_default_str();
  app.add_option("--flow-buffer-size", c.flow_buffer_size,
                 "Flows the agent keeps in memory for `agentctl flows` (>= 1)")
      ->check(CLI::Range(1u, 1u << 24))
      ->capture_default_str();
  app.add_option("--metrics-listen", c.metrics_listen,
                 "Serve /metrics (Prometheus), /healthz and /readyz on ADDR:PORT (\"\": off)")
      ->type_name("ADDR:PORT")
      ->capture_default_str();
  app.add_option("--healthz-listen", c.healthz_listen,
                 "Serve kube-proxy's node health check (/healthz, /livez) on ADDR:PORT (\"\": off)")
      ->type_name("ADDR:PORT")
      ->capture_default_str();
  app.add_option("--log-level", c.log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--log-format", c.log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_flag("--cleanup", c.cleanup,
               "Detach every Skiff program and remove every pinned map, then exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help, --version
      app.exit(e);
      return absl::CancelledError("");
    }
    return absl::InvalidArgumentError(e.what());
  }
  if (auto st = api::ValidateServerOptions(ApiServerOptions(c)); !st.ok()) return st;
  if (auto st = reconcile::ValidateMaglevTableSize(c.maglev_table_size); !st.ok()) return st;
  for (auto [flag, addr] :
       {std::pair<const char*, const std::string*>{"--metrics-listen", &c.metrics_listen},
        {"--healthz-listen", &c.healthz_listen}}) {
    if (addr->empty()) continue;
    if (auto hp = observe::SplitHostPort(*addr); !hp.ok())
      return absl::InvalidArgumentError(absl::StrCat(flag, ": ", hp.status().message()));
  }
  if (c.node_name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    c.node_name = host;
  }
  if (!c.cleanup) {
    if (auto st = ResolveSource(c); !st.ok()) return st;
  }
  return c;
}

}  // namespace skiff
