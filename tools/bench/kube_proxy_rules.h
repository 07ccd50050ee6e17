// kube-proxy's iptables-mode rule text, shared by the benchmark generators (bench_gen's
// ClusterIP sets, nodeport_bench's NodePort services). The layouts follow kubernetes
// pkg/proxy/iptables/proxier.go (see docs/BENCHMARKS.md). Chain-name hashes use FNV instead of
// SHA-256 but keep kube-proxy's lengths, so the rule text has the same size.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace skiff::bench {

// One TCP Service port as kube-proxy sees it (externalTrafficPolicy Cluster).
struct KubeProxyService {
  std::string port_name;  // kube-proxy's servicePortName: "namespace/name:port"
  std::string cluster_ip;
  int port = 80;
  int target_port = 8080;
  int node_port = 0;                   // 0: none
  std::vector<std::string> endpoints;  // IPs
};

std::string IptablesSvcChain(const KubeProxyService& s);
std::string IptablesSepChain(const KubeProxyService& s, const std::string& endpoint);
// ":CHAIN - [0:0]" lines of the service's nat chains (SVC, SEPs, EXT with a nodePort).
void IptablesChainDecls(const KubeProxyService& s, std::string* out);
// Its rule in KUBE-SERVICES (the ClusterIP).
std::string IptablesKubeServicesRule(const KubeProxyService& s);
// Its own chains: KUBE-SVC (masquerade of off-cluster sources, the random pick), each KUBE-SEP
// (hairpin masquerade, DNAT) and with a nodePort its KUBE-NODEPORTS rule and KUBE-EXT chain
// (masquerade all external traffic, then KUBE-SVC).
void IptablesServiceRules(const KubeProxyService& s, const std::string& cluster_cidr,
                          std::string* out);

// kube-proxy: base32(sha256(x))[:len] (16 for iptables chains, 8 for nftables chains).
std::string KubeProxyHash(const std::string& s, size_t len);

// *filter with kube-proxy's own chains and KUBE-FORWARD (a full table, COMMIT included).
std::string IptablesFilterTable();
// "*nat" and the declarations of kube-proxy's fixed nat chains.
std::string IptablesNatHeader();
// KUBE-POSTROUTING (MASQUERADE of marked traffic) and KUBE-MARK-MASQ.
std::string IptablesNatFixedRules();
// The last rule of KUBE-SERVICES: traffic to a local address goes on to KUBE-NODEPORTS.
extern const char kIptablesNodePortsLast[];
// The jumps from the built-in chains kube-proxy adds with `iptables -I` (filter and nat).
std::string IptablesJumps();

}  // namespace skiff::bench
