// skiff_bench_gen: writes one set of N ClusterIP services × E endpoints three ways, so every
// peer in the benchmark serves exactly the same services and endpoints:
//   manifests/          Skiff's standalone input (Service + EndpointSlice per service; YAML,
//                       or with --format json one JSON List per file)
//   iptables.rules      kube-proxy iptables mode, a full sync as it hands it to iptables-restore
//   iptables-jumps.rules  the jumps from the built-in chains kube-proxy adds with `iptables -I`
//   nftables.nft        kube-proxy nftables mode, a full sync as it hands it to `nft -f`
//   change/...          one endpoint of the "changed" service replaced, for each peer as that
//                       peer would apply it (Skiff: the service's manifest file rewritten;
//                       iptables: kube-proxy's partial restore; nftables: its partial
//                       transaction)
// The layouts follow kubernetes pkg/proxy/iptables/proxier.go (tools/bench/kube_proxy_rules.h)
// and pkg/proxy/nftables/proxier.go (see docs/BENCHMARKS.md).
//
// Service i has ClusterIP 10.96.0.16+i, port 80/TCP → targetPort 8080; its endpoints are
// 100.64.0.0 + E*i + j (pods elsewhere) except the target service (index N/2, the expected
// position in kube-proxy's randomly ordered KUBE-SERVICES chain), whose endpoints are the
// real pods given with --target-endpoints. The changed service is the target service; its
// last endpoint is replaced by 100.127.255.254.
#include <arpa/inet.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tools/bench/kube_proxy_rules.h"

namespace skiff::bench {
namespace {

namespace fs = std::filesystem;

constexpr char kNamespace[] = "bench";
constexpr char kClusterCidr[] = "10.244.0.0/16";
constexpr char kServiceCidr[] = "10.96.0.0/12";
constexpr uint32_t kFirstVip = (10u << 24) | (96u << 16) | 16;
constexpr uint32_t kFirstEndpoint = (100u << 24) | (64u << 16);
constexpr uint32_t kChangedEndpoint = (100u << 24) | (127u << 16) | (255u << 8) | 254;
constexpr int kPort = 80;
constexpr int kTargetPort = 8080;
constexpr int kServicesPerFile = 1000;

std::string Ip(uint32_t a) {
  return absl::StrCat(a >> 24, ".", (a >> 16) & 255, ".", (a >> 8) & 255, ".", a & 255);
}

struct Service {
  std::string name;    // svc-<i>
  uint32_t index = 0;  // i
  std::string vip;
  std::vector<std::string> endpoints;
};

struct Params {
  int services = 1000;
  int endpoints = 10;
  std::vector<std::string> target_endpoints;
  std::string out;
  std::string format = "yaml";  // Skiff's manifests: yaml, or json (one List per file)
  // Each endpoint names its pod (targetRef), as the EndpointSlice controller writes them for a
  // Service with a selector; off by default, so figures stay comparable with earlier runs.
  bool target_refs = false;
};

std::string SvcPortName(const Service& s) { return absl::StrCat(kNamespace, "/", s.name, ":http"); }

// ---------- Skiff manifests ----------
// The pod behind endpoint j of s (targetRef), named as a Deployment's pods are:
// <service>-<replicaset hash, 10 characters, one per service>-<5 characters, one per pod>,
// from the alphabet Kubernetes' rand.String uses. Deterministic (a hash of the service's index
// and j), so runs compare.
std::string RandomChars(uint64_t seed, size_t n) {
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string out(n, ' ');
  for (char& c : out) {  // splitmix64
    uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    c = kAlphabet[(z ^ (z >> 31)) % (sizeof(kAlphabet) - 1)];
  }
  return out;
}
std::string PodName(const Service& s, size_t j) {
  const uint64_t svc = uint64_t{s.index} << 24;
  return absl::StrCat(s.name, "-", RandomChars(svc, 10), "-", RandomChars(svc + 64 * (j + 1), 5));
}

std::string ServiceManifest(const Service& s, bool target_refs) {
  std::string y = absl::StrCat("apiVersion: v1\nkind: Service\nmetadata:\n  name: ", s.name,
                               "\n  namespace: ", kNamespace,
                               "\nspec:\n  type: ClusterIP\n  clusterIP: ", s.vip,
                               "\n  ports:\n  - name: http\n    port: ", kPort,
                               "\n    protocol: TCP\n    targetPort: ", kTargetPort, "\n---\n");
  absl::StrAppend(
      &y, "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: ", s.name,
      "-abcde\n  namespace: ", kNamespace, "\n  labels:\n    kubernetes.io/service-name: ", s.name,
      "\naddressType: IPv4\nports:\n- name: http\n  port: ", kTargetPort,
      "\n  protocol: TCP\nendpoints:\n");
  for (size_t j = 0; j < s.endpoints.size(); j++) {
    absl::StrAppend(&y, "- addresses: [\"", s.endpoints[j],
                    "\"]\n  nodeName: node-1\n  conditions:\n    ready: true\n"
                    "    serving: true\n    terminating: false\n");
    if (target_refs)
      absl::StrAppend(&y, "  targetRef:\n    kind: Pod\n    namespace: ", kNamespace,
                      "\n    name: ", PodName(s, j), "\n");
  }
  return y;
}

// The same two objects as JSON (for --format json), as the Kubernetes API serves them.
std::string ServiceJson(const Service& s, bool target_refs) {
  std::string j = absl::StrCat(
      "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"", s.name,
      "\",\"namespace\":\"", kNamespace, "\"},\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"",
      s.vip, "\",\"ports\":[{\"name\":\"http\",\"port\":", kPort,
      ",\"protocol\":\"TCP\",\"targetPort\":", kTargetPort, "}]}},\n");
  absl::StrAppend(&j,
                  "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
                  "\"metadata\":{\"name\":\"",
                  s.name, "-abcde\",\"namespace\":\"", kNamespace,
                  "\",\"labels\":{\"kubernetes.io/service-name\":\"", s.name,
                  "\"}},\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"port\":",
                  kTargetPort, ",\"protocol\":\"TCP\"}],\"endpoints\":[");
  for (size_t i = 0; i < s.endpoints.size(); i++)
    absl::StrAppend(&j, i ? "," : "", "{\"addresses\":[\"", s.endpoints[i],
                    "\"],\"nodeName\":\"node-1\",\"conditions\":{\"ready\":true,"
                    "\"serving\":true,\"terminating\":false}",
                    target_refs ? absl::StrCat(",\"targetRef\":{\"kind\":\"Pod\",\"namespace\":\"",
                                               kNamespace, "\",\"name\":\"", PodName(s, i), "\"}")
                                : std::string(),
                    "}");
  absl::StrAppend(&j, "]}");
  return j;
}

// A manifest file holding `body` (documents): YAML as is, JSON as one List.
std::string ManifestFile(const std::string& body, bool json) {
  if (!json) return body;
  return absl::StrCat("{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[\n", body, "\n]}\n");
}

// ---------- kube-proxy iptables mode ----------
KubeProxyService Kp(const Service& s) {
  return {.port_name = SvcPortName(s),
          .cluster_ip = s.vip,
          .port = kPort,
          .target_port = kTargetPort,
          .node_port = 0,
          .endpoints = s.endpoints};
}

std::string IptablesFull(const std::vector<Service>& svcs) {
  std::string out = IptablesFilterTable() + IptablesNatHeader();
  for (const auto& s : svcs) IptablesChainDecls(Kp(s), &out);
  out += IptablesNatFixedRules();
  for (const auto& s : svcs) out += IptablesKubeServicesRule(Kp(s));
  out += kIptablesNodePortsLast;
  for (const auto& s : svcs) IptablesServiceRules(Kp(s), kClusterCidr, &out);
  out += "COMMIT\n";
  return out;
}

// A partial sync (kube-proxy ≥ 1.27, MinimizeIPTablesRestore): the top-level chains are
// always rewritten in full; only the changed service's chains are written; the stale
// endpoint chain is deleted.
std::string IptablesChange(const std::vector<Service>& svcs, const Service& before,
                           const Service& after) {
  std::string out = IptablesFilterTable() + IptablesNatHeader();
  IptablesChainDecls(Kp(after), &out);
  for (const auto& e : before.endpoints) {
    bool stale = true;
    for (const auto& a : after.endpoints) stale = stale && a != e;
    if (stale) absl::StrAppend(&out, ":", IptablesSepChain(Kp(before), e), " - [0:0]\n");
  }
  out += IptablesNatFixedRules();
  for (const auto& s : svcs) out += IptablesKubeServicesRule(Kp(s.name == after.name ? after : s));
  out += kIptablesNodePortsLast;
  IptablesServiceRules(Kp(after), kClusterCidr, &out);
  for (const auto& e : before.endpoints) {
    bool stale = true;
    for (const auto& a : after.endpoints) stale = stale && a != e;
    if (stale) absl::StrAppend(&out, "-X ", IptablesSepChain(Kp(before), e), "\n");
  }
  out += "COMMIT\n";
  return out;
}

// ---------- kube-proxy nftables mode ----------
constexpr char kT[] = "ip kube-proxy";

std::string NftSvcChain(const Service& s) {
  const std::string id = absl::StrCat(kNamespace, "/", s.name, "/tcp/http");
  return absl::StrCat("service-", KubeProxyHash(id + "tcp", 8), "-", id);
}
std::string NftEpChain(const Service& s, const std::string& ep) {
  const std::string id = absl::StrCat(kNamespace, "/", s.name, "/tcp/http__", ep, "/", kTargetPort);
  return absl::StrCat("endpoint-", KubeProxyHash(id, 8), "-", id);
}

std::string NftBase() {
  std::string o = absl::StrCat("add table ", kT, " { comment \"rules for kube-proxy\" ; }\n");
  auto chain = [&](const std::string& name, const std::string& spec = "") {
    absl::StrAppend(&o, "add chain ", kT, " ", name, spec.empty() ? "" : " { " + spec + " ; }",
                    "\n");
  };
  auto rule = [&](const std::string& chain_name, const std::string& r) {
    absl::StrAppend(&o, "add rule ", kT, " ", chain_name, " ", r, "\n");
  };
  chain("mark-for-masquerade");
  rule("mark-for-masquerade", "mark set mark or 0x4000");
  chain("masquerading");
  rule("masquerading", "mark and 0x4000 == 0 return");
  rule("masquerading", "mark set mark xor 0x4000");
  rule("masquerading", "masquerade fully-random");
  absl::StrAppend(&o, "add set ", kT,
                  " cluster-ips { type ipv4_addr ; comment \"Active ClusterIPs\" ; }\n");
  absl::StrAppend(&o, "add set ", kT,
                  " nodeport-ips { type ipv4_addr ; comment \"IPs that accept NodePort "
                  "traffic\" ; }\n");
  for (const char* m : {"no-endpoint-services", "service-ips", "firewall-ips"})
    absl::StrAppend(&o, "add map ", kT, " ", m,
                    " { type ipv4_addr . inet_proto . inet_service : verdict ; }\n");
  for (const char* m : {"no-endpoint-nodeports", "service-nodeports"})
    absl::StrAppend(&o, "add map ", kT, " ", m,
                    " { type inet_proto . inet_service : verdict ; }\n");
  chain("services");
  chain("service-endpoints-check");
  chain("nodeport-endpoints-check");
  chain("firewall-check");
  chain("cluster-ips-check");
  chain("filter-prerouting", "type filter hook prerouting priority -110");
  chain("filter-input", "type filter hook input priority -110");
  chain("filter-forward", "type filter hook forward priority -110");
  chain("filter-output", "type filter hook output priority -110");
  chain("filter-output-post-dnat", "type filter hook output priority -90");
  chain("nat-prerouting", "type nat hook prerouting priority -100");
  chain("nat-output", "type nat hook output priority -100");
  chain("nat-postrouting", "type nat hook postrouting priority 100");
  rule("filter-prerouting", "ct state new jump firewall-check");
  rule("filter-input", "ct state new jump nodeport-endpoints-check");
  rule("filter-input", "ct state new jump service-endpoints-check");
  rule("filter-forward", "ct state new jump service-endpoints-check");
  rule("filter-forward", "ct state new jump cluster-ips-check");
  rule("filter-output", "ct state new jump service-endpoints-check");
  rule("filter-output", "ct state new jump firewall-check");
  rule("filter-output-post-dnat", "ct state new jump cluster-ips-check");
  rule("nat-prerouting", "jump services");
  rule("nat-output", "jump services");
  rule("nat-postrouting", "jump masquerading");
  rule("cluster-ips-check",
       "ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"");
  rule("cluster-ips-check", absl::StrCat("ip daddr ", kServiceCidr,
                                         " drop comment \"Drop traffic to unallocated "
                                         "ClusterIPs\""));
  rule("service-endpoints-check", "ip daddr . meta l4proto . th dport vmap @no-endpoint-services");
  rule("nodeport-endpoints-check",
       "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports");
  rule("firewall-check", "ip daddr . meta l4proto . th dport vmap @firewall-ips");
  rule("services", "ip daddr . meta l4proto . th dport vmap @service-ips");
  rule("services", "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports");
  return o;
}

void NftEndpointChains(const Service& s, std::string* o) {
  for (const auto& e : s.endpoints) {
    const std::string c = NftEpChain(s, e);
    absl::StrAppend(o, "add chain ", kT, " ", c, "\nflush chain ", kT, " ", c, "\n");
    absl::StrAppend(o, "add rule ", kT, " ", c, " ip saddr ", e, " jump mark-for-masquerade\n");
    absl::StrAppend(o, "add rule ", kT, " ", c, " meta l4proto tcp dnat to ", e, ":", kTargetPort,
                    "\n");
  }
}

void NftServiceChain(const Service& s, std::string* o) {
  const std::string c = NftSvcChain(s);
  absl::StrAppend(o, "add chain ", kT, " ", c, "\nflush chain ", kT, " ", c, "\n");
  absl::StrAppend(o, "add rule ", kT, " ", c, " ip daddr ", s.vip, " tcp dport ", kPort,
                  " ip saddr != ", kClusterCidr, " jump mark-for-masquerade\n");
  absl::StrAppend(o, "add rule ", kT, " ", c, " numgen random mod ", s.endpoints.size(),
                  " vmap { ");
  for (size_t i = 0; i < s.endpoints.size(); i++)
    absl::StrAppend(o, i ? ", " : "", i, " : goto ", NftEpChain(s, s.endpoints[i]));
  absl::StrAppend(o, " }\n");
}

std::string NftFull(const std::vector<Service>& svcs) {
  std::string o = NftBase();
  for (const auto& s : svcs) {
    NftEndpointChains(s, &o);
    NftServiceChain(s, &o);
    absl::StrAppend(&o, "add element ", kT, " cluster-ips { ", s.vip, " }\n");
    absl::StrAppend(&o, "add element ", kT, " service-ips { ", s.vip, " . tcp . ", kPort,
                    " : goto ", NftSvcChain(s), " }\n");
  }
  return o;
}

// A partial sync: only the changed chains; the stale endpoint chain is flushed and deleted.
std::string NftChange(const Service& before, const Service& after) {
  std::string o;
  Service added = after;
  added.endpoints.clear();
  for (const auto& a : after.endpoints) {
    bool fresh = true;
    for (const auto& b : before.endpoints) fresh = fresh && a != b;
    if (fresh) added.endpoints.push_back(a);
  }
  NftEndpointChains(added, &o);
  NftServiceChain(after, &o);
  for (const auto& b : before.endpoints) {
    bool stale = true;
    for (const auto& a : after.endpoints) stale = stale && a != b;
    if (stale) {
      const std::string c = NftEpChain(before, b);
      absl::StrAppend(&o, "flush chain ", kT, " ", c, "\ndelete chain ", kT, " ", c, "\n");
    }
  }
  return o;
}

absl::Status WriteFile(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
  f.close();
  if (!f) return absl::InternalError(absl::StrCat("writing ", p.string(), " failed"));
  return absl::OkStatus();
}

absl::Status Generate(const Params& p) {
  std::vector<Service> svcs(p.services);
  const int target = p.services / 2;
  for (int i = 0; i < p.services; i++) {
    Service& s = svcs[i];
    s.name = absl::StrCat("svc-", i);
    s.index = static_cast<uint32_t>(i);
    s.vip = Ip(kFirstVip + i);
    if (i == target && !p.target_endpoints.empty()) {
      s.endpoints = p.target_endpoints;
    } else {
      for (int j = 0; j < p.endpoints; j++)
        s.endpoints.push_back(Ip(kFirstEndpoint + static_cast<uint32_t>(p.endpoints) * i + j));
    }
  }
  Service changed = svcs[target];
  changed.endpoints.back() = Ip(kChangedEndpoint);

  const fs::path out(p.out);
  std::error_code ec;
  fs::create_directories(out / "manifests", ec);
  fs::create_directories(out / "change", ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", p.out, ": ", ec.message()));

  // Skiff: 1,000 services per file; the changed service in a file of its own, as a watch
  // event would carry one object.
  const bool json = p.format == "json";
  auto manifest = [&](const Service& s) {
    return json ? ServiceJson(s, p.target_refs) : ServiceManifest(s, p.target_refs);
  };
  const std::string sep = json ? ",\n" : "---\n";
  std::string chunk;
  int chunk_no = 0;
  for (int i = 0; i < p.services; i++) {
    if (i != target) absl::StrAppend(&chunk, chunk.empty() ? "" : sep, manifest(svcs[i]));
    if ((i + 1) % kServicesPerFile == 0 || i + 1 == p.services) {
      if (!chunk.empty()) {
        auto st =
            WriteFile(out / "manifests" / absl::StrFormat("chunk-%05d.%s", chunk_no, p.format),
                      ManifestFile(chunk, json));
        if (!st.ok()) return st;
      }
      chunk.clear();
      chunk_no++;
    }
  }
  const std::string target_file = absl::StrCat("target.", p.format);
  if (auto st =
          WriteFile(out / "manifests" / target_file, ManifestFile(manifest(svcs[target]), json));
      !st.ok())
    return st;
  if (auto st = WriteFile(out / "change" / target_file, ManifestFile(manifest(changed), json));
      !st.ok())
    return st;

  if (auto st = WriteFile(out / "iptables.rules", IptablesFull(svcs)); !st.ok()) return st;
  if (auto st = WriteFile(out / "iptables-jumps.rules", IptablesJumps()); !st.ok()) return st;
  if (auto st =
          WriteFile(out / "change" / "iptables.rules", IptablesChange(svcs, svcs[target], changed));
      !st.ok())
    return st;
  if (auto st = WriteFile(out / "nftables.nft", NftFull(svcs)); !st.ok()) return st;
  if (auto st = WriteFile(out / "change" / "nftables.nft", NftChange(svcs[target], changed));
      !st.ok())
    return st;
  std::string info =
      absl::StrCat("{\"services\": ", p.services, ", \"endpoints_per_service\": ", p.endpoints,
                   ", \"target_vip\": \"", svcs[target].vip, "\", \"target_port\": ", kPort,
                   ", \"changed_endpoint\": \"", Ip(kChangedEndpoint), "\"}\n");
  return WriteFile(out / "info.json", info);
}

int Main(int argc, char** argv) {
  Params p;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "skiff_bench_gen: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--services" && absl::SimpleAtoi(next(), &p.services) && p.services > 0) continue;
    if (a == "--endpoints" && absl::SimpleAtoi(next(), &p.endpoints) && p.endpoints > 0) continue;
    if (a == "--target-endpoints") {
      p.target_endpoints = absl::StrSplit(next(), ',', absl::SkipEmpty());
      continue;
    }
    if (a == "--format") {
      p.format = next();
      if (p.format == "yaml" || p.format == "json") continue;
    }
    if (a == "--target-refs") {
      p.target_refs = true;
      continue;
    }
    if (a == "--out") {
      p.out = next();
      continue;
    }
    std::cerr << "usage: skiff_bench_gen --services N [--endpoints E] "
                 "[--target-endpoints IP,IP,...] [--format yaml|json] [--target-refs] --out DIR\n";
    return 2;
  }
  if (p.out.empty()) {
    std::cerr << "skiff_bench_gen: --out is required\n";
    return 2;
  }
  if (auto st = Generate(p); !st.ok()) {
    std::cerr << "skiff_bench_gen: " << st << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace skiff::bench

int main(int argc, char** argv) { return skiff::bench::Main(argc, argv); }
