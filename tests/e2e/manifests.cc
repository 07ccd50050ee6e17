#include "tests/e2e/manifests.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace skiff::e2e {

std::string PodYaml(const std::string& name, const std::string& ip, const std::string& app,
                    int node) {
  return absl::StrCat(
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ", name, "\n  namespace: default\n",
      app.empty() ? "" : absl::StrCat("  labels:\n    app: ", app, "\n"),
      "spec:\n  nodeName: node-", node, "\nstatus:\n  phase: Running\n  podIP: ", ip,
      "\n  podIPs:\n  - ip: ", ip, "\n");
}

std::string ServiceYaml(const std::string& name, const std::string& cluster_ip,
                        const std::vector<PortSpec>& ports, bool affinity, const std::string& ns) {
  std::string y = absl::StrCat("apiVersion: v1\nkind: Service\nmetadata:\n  name: ", name,
                               "\n  namespace: ", ns,
                               "\nspec:\n  type: ClusterIP\n  clusterIP: ", cluster_ip, "\n");
  if (affinity)
    y += "  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n"
         "      timeoutSeconds: 600\n";
  y += "  ports:\n";
  for (const auto& p : ports) {
    y += absl::StrCat("  - port: ", p.port, "\n    protocol: ", p.protocol, "\n");
    if (!p.name.empty()) y += absl::StrCat("    name: ", p.name, "\n");
    if (!p.target_port.empty()) y += absl::StrCat("    targetPort: ", p.target_port, "\n");
  }
  return y;
}

std::string EndpointSliceYaml(const std::string& name, const std::string& service,
                              const std::vector<EndpointSpec>& endpoints,
                              const std::vector<SlicePort>& ports, const std::string& ns) {
  std::string y = absl::StrCat(
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: ", name,
      "\n  namespace: ", ns, "\n  labels:\n    kubernetes.io/service-name: ", service,
      "\naddressType: IPv4\nports:\n");
  for (const auto& p : ports) {
    y += absl::StrCat("- port: ", p.port, "\n  protocol: ", p.protocol, "\n");
    if (!p.name.empty()) y += absl::StrCat("  name: ", p.name, "\n");
  }
  y += endpoints.empty() ? "endpoints: []\n" : "endpoints:\n";
  for (const auto& e : endpoints) {
    y += absl::StrCat("- addresses: [\"", e.ip, "\"]\n  nodeName: ", e.node,
                      "\n  conditions:\n    ready: ", e.ready ? "true" : "false",
                      "\n    serving: ", e.serving ? "true" : "false",
                      "\n    terminating: ", e.terminating ? "true" : "false", "\n");
  }
  return y;
}

void WriteFileAtomically(const std::string& path, const std::string& contents) {
  std::string tmp = path + ".tmp~";
  {
    std::ofstream f(tmp);
    f << contents;
  }
  std::rename(tmp.c_str(), path.c_str());
}

}  // namespace skiff::e2e
