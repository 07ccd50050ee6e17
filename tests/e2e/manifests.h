// Builds the Kubernetes manifests the e2e tests hand to the agent, and writes them the way
// an editor or `kubectl`-style tool would (write a temp file, rename into place).
#pragma once

#include <string>
#include <vector>

namespace skiff::e2e {

struct PortSpec {
  std::string name;
  uint16_t port = 0;
  std::string target_port;  // number or name
  std::string protocol = "TCP";
};

struct EndpointSpec {
  std::string ip;
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  std::string node = "node-1";
};

struct SlicePort {
  std::string name;
  uint16_t port = 0;
  std::string protocol = "TCP";
};

std::string ServiceYaml(const std::string& name, const std::string& cluster_ip,
                        const std::vector<PortSpec>& ports, bool affinity = false,
                        const std::string& ns = "default");
std::string EndpointSliceYaml(const std::string& name, const std::string& service,
                              const std::vector<EndpointSpec>& endpoints,
                              const std::vector<SlicePort>& ports,
                              const std::string& ns = "default");

// A running Pod on node-<node> with one IP and, when app is not empty, the label app=<app>.
std::string PodYaml(const std::string& name, const std::string& ip, const std::string& app = "",
                    int node = 1);

// Writes path atomically (temp file + rename).
void WriteFileAtomically(const std::string& path, const std::string& contents);

}  // namespace skiff::e2e
