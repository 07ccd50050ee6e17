// skiff-agent's configuration: every command-line flag, its default and its meaning. The
// flag names are a contract (docs/configuration.md, the Helm chart and outside tooling use
// them); add flags freely, never rename one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/api/server.h"

namespace skiff {

struct AgentConfig {
  // Sources
  std::string manifests;  // standalone mode: directory of Kubernetes manifests
  std::string node_name;  // defaults to the host name
  // Kubernetes API source, used when --manifests is not given (see ParseFlags).
  std::string kubeconfig;           // --kubeconfig, else $KUBECONFIG
  std::string k8s_api_server;       // replaces the kubeconfig's / in-cluster server address
  bool k8s_node_pods_only = false;  // watch only this node's pods
  bool use_kubernetes = false;      // resolved: the source is the Kubernetes API

  // Datapath
  std::string endpoint_ifaces = "lxc*";  // comma-separated globs of pod-facing host ifaces
  std::string devices;  // node devices for NodePort & co.; "" = the default route's device
  std::string xdp = "best-effort";   // XDP on the devices: native, best-effort, disabled
  std::string host_routing = "bpf";  // bpf (pod to local pod skips the stack), legacy
  // Socket-level load balancing for the node's own sockets (docs/socket-lb.md)
  std::string socket_lb = "enabled";           // enabled, disabled
  std::string socket_lb_scope = "host";        // host, all (pods too)
  std::string cgroup_root;                     // cgroup v2 directory; "" = the cgroup2 mount
  uint32_t nat_max = 131072;                   // NodePort SNAT map entries (two per flow)
  std::string nat_port_range = "61000-65535";  // NodePort SNAT source ports
  std::string bpffs_root = "/sys/fs/bpf/skiff";
  uint32_t ct_max = 262144;
  uint32_t lb_map_max = 65536;  // services map entries (frontends + backend slots)
  uint32_t lb_backends_max = 65536;
  uint32_t lb_revnat_max = 65536;
  uint32_t lb_affinity_max = 65536;
  // loadBalancerSourceRanges LPM entries (one per range per LoadBalancer frontend)
  uint32_t lb_source_ranges_max = 16384;
  // Backend selection for new flows (docs/north-south.md): "random" or "maglev"; Services
  // override it with the service.skiff.io/lb-algorithm annotation.
  std::string lb_algorithm = "random";
  uint32_t maglev_table_size = 16381;      // entries per Maglev table: a prime
  uint32_t maglev_hash_seed = 0x736b6966;  // the same on every node
  uint32_t lb_maglev_max = 65536;          // Maglev tables (frontends x scopes)
  uint32_t ipcache_max = 65536;      // ipcache LPM entries: pods + policy CIDRs + node addresses
  uint32_t policy_map_max = 262144;  // NetworkPolicy allow entries over all local endpoints
  uint32_t policy_ct_max = 262144;   // policy conntrack (LRU)
  // Seconds between conntrack GC sweeps (agent/observe/ct_gc.h); 0 disables the GC.
  uint32_t ct_gc_interval = 30;
  // Flow events (docs/flows.md)
  uint32_t events_ring_size = 1u << 20;  // BPF ring buffer bytes (power of two)
  uint32_t drop_events_per_sec = 100;    // per CPU; 0 disables drop events
  uint32_t flow_buffer_size = 4096;      // flows the observer keeps for `agentctl flows`

  // API
  std::string api_socket = "/run/skiff/agent.sock";
  std::string api_listen;         // HOST:PORT of an extra TCP listener (TLS unless insecure)
  std::string api_tls_cert;       // PEM certificate chain for --api-listen
  std::string api_tls_key;        // PEM private key for --api-listen
  std::string api_tls_client_ca;  // PEM CA: clients must present a certificate it signed
  bool api_insecure = false;      // allow --api-listen without TLS

  // Metrics and health (docs/metrics.md); empty disables a listener.
  std::string metrics_listen = "0.0.0.0:9890";   // /metrics, /healthz, /readyz
  std::string healthz_listen = "0.0.0.0:10256";  // kube-proxy's node health check

  // Logging
  std::string log_level = "info";   // trace, debug, info, warn, error
  std::string log_format = "text";  // text, json

  bool cleanup = false;  // detach every program, remove every pin, exit
};

// Parses argv. On --help/--version, prints and returns an error with code kCancelled and an
// empty message (the caller exits 0); on bad flags returns InvalidArgument naming the flag.
absl::StatusOr<AgentConfig> ParseFlags(int argc, char** argv);

// The API server's options from the --api-* flags.
api::ServerOptions ApiServerOptions(const AgentConfig& cfg);

}  // namespace skiff
