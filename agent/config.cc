#include "agent/config.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "absl/strings/str_cat.h"

namespace skiff {

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
  app.add_option("--endpoint-ifaces", c.endpoint_ifaces,
                 "Comma-separated globs of pod-facing host interfaces")
      ->type_name("GLOB[,GLOB...]")
      ->capture_default_str();
  app.add_option("--bpffs-root", c.bpffs_root, "Where maps are pinned (bpffs mounted if absent)")
      ->type_name("PATH")
      ->capture_default_str();
  app.add_option("--api-socket", c.api_socket, "Unix socket of the gRPC API")
      ->type_name("PATH")
      ->capture_default_str();
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
  if (c.node_name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    c.node_name = host;
  }
  if (!c.cleanup && c.manifests.empty())
    return absl::InvalidArgumentError(
        "no source given: pass --manifests DIR (standalone mode); the Kubernetes API source "
        "is not available yet");
  return c;
}

}  // namespace skiff
