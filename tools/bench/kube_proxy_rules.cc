#include "tools/bench/kube_proxy_rules.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace skiff::bench {

std::string KubeProxyHash(const std::string& s, size_t len) {
  static constexpr char kAlpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  auto fnv = [&](uint64_t h) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
  };
  const uint64_t halves[2] = {fnv(1469598103934665603ull), fnv(0x9e3779b97f4a7c15ull)};
  std::string out;
  for (size_t i = 0; i < len; i++) out += kAlpha[(halves[i / 12] >> (5 * (i % 12))) & 31];
  return out;
}

std::string IptablesSvcChain(const KubeProxyService& s) {
  return "KUBE-SVC-" + KubeProxyHash(s.port_name + "tcp", 16);
}

std::string IptablesSepChain(const KubeProxyService& s, const std::string& ep) {
  return "KUBE-SEP-" + KubeProxyHash(absl::StrCat(s.port_name, "tcp", ep, ":", s.target_port), 16);
}

namespace {
std::string ExtChain(const KubeProxyService& s) {
  return "KUBE-EXT-" + KubeProxyHash(s.port_name + "tcp", 16);
}
}  // namespace

void IptablesChainDecls(const KubeProxyService& s, std::string* out) {
  absl::StrAppend(out, ":", IptablesSvcChain(s), " - [0:0]\n");
  if (s.node_port) absl::StrAppend(out, ":", ExtChain(s), " - [0:0]\n");
  for (const auto& e : s.endpoints) absl::StrAppend(out, ":", IptablesSepChain(s, e), " - [0:0]\n");
}

std::string IptablesKubeServicesRule(const KubeProxyService& s) {
  return absl::StrCat("-A KUBE-SERVICES -m comment --comment \"", s.port_name,
                      " cluster IP\" -m tcp -p tcp -d ", s.cluster_ip, "/32 --dport ", s.port,
                      " -j ", IptablesSvcChain(s), "\n");
}

void IptablesServiceRules(const KubeProxyService& s, const std::string& cluster_cidr,
                          std::string* out) {
  const std::string& spn = s.port_name;
  const std::string svc = IptablesSvcChain(s);
  if (s.node_port) {
    const std::string ext = ExtChain(s);
    absl::StrAppend(out, "-A KUBE-NODEPORTS -m comment --comment ", spn, " -m tcp -p tcp --dport ",
                    s.node_port, " -j ", ext, "\n");
    absl::StrAppend(out, "-A ", ext, " -m comment --comment \"masquerade traffic for ", spn,
                    " external destinations\" -j KUBE-MARK-MASQ\n");
    absl::StrAppend(out, "-A ", ext, " -j ", svc, "\n");
  }
  absl::StrAppend(out, "-A ", svc, " -m comment --comment \"", spn,
                  " cluster IP\" -m tcp -p tcp -d ", s.cluster_ip, "/32 --dport ", s.port, " ! -s ",
                  cluster_cidr, " -j KUBE-MARK-MASQ\n");
  const size_t n = s.endpoints.size();
  for (size_t i = 0; i < n; i++) {
    const std::string& e = s.endpoints[i];
    absl::StrAppend(out, "-A ", svc, " -m comment --comment \"", spn, " -> ", e, ":", s.target_port,
                    "\"");
    if (i + 1 < n)
      absl::StrAppend(out, absl::StrFormat(" -m statistic --mode random --probability %0.10f",
                                           1.0 / static_cast<double>(n - i)));
    absl::StrAppend(out, " -j ", IptablesSepChain(s, e), "\n");
  }
  for (const auto& e : s.endpoints) {
    const std::string sep = IptablesSepChain(s, e);
    absl::StrAppend(out, "-A ", sep, " -m comment --comment ", spn, " -s ", e,
                    "/32 -j KUBE-MARK-MASQ\n");
    absl::StrAppend(out, "-A ", sep, " -m comment --comment ", spn,
                    " -m tcp -p tcp -j DNAT --to-destination ", e, ":", s.target_port, "\n");
  }
}

std::string IptablesFilterTable() {
  return "*filter\n"
         ":KUBE-NODEPORTS - [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-EXTERNAL-SERVICES - [0:0]\n"
         ":KUBE-FORWARD - [0:0]\n:KUBE-PROXY-FIREWALL - [0:0]\n"
         "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"
         "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark "
         "0x4000/0x4000 -j ACCEPT\n"
         "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m "
         "conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
         "COMMIT\n";
}

std::string IptablesNatHeader() {
  return "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-POSTROUTING - [0:0]\n"
         ":KUBE-MARK-MASQ - [0:0]\n";
}

std::string IptablesNatFixedRules() {
  return "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
         "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n"
         "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" "
         "-j MASQUERADE --random-fully\n"
         "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n";
}

const char kIptablesNodePortsLast[] =
    "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be "
    "the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n";

std::string IptablesJumps() {
  return "*filter\n"
         "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer "
         "firewall\" -j KUBE-PROXY-FIREWALL\n"
         "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j "
         "KUBE-NODEPORTS\n"
         "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes "
         "externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n"
         "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer "
         "firewall\" -j KUBE-PROXY-FIREWALL\n"
         "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n"
         "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service "
         "portals\" -j KUBE-SERVICES\n"
         "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes "
         "externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n"
         "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer "
         "firewall\" -j KUBE-PROXY-FIREWALL\n"
         "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service "
         "portals\" -j KUBE-SERVICES\n"
         "COMMIT\n*nat\n"
         "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
         "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
         "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j "
         "KUBE-POSTROUTING\n"
         "COMMIT\n";
}

}  // namespace skiff::bench
