// One skiff-agent under test, run inside a node namespace: its manifest directory, bpffs root
// and log, named after the node's unique prefix. The destructor kills the agent, detaches and
// unpins what it made (`skiff-agent --cleanup`), prints the log when the test failed, and
// removes every file and pin, so a failing test leaves nothing behind.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tests/e2e/topology.h"

namespace skiff::e2e {

// Packets the datapath counted for (direction, outcome) over all CPUs in the metrics map pinned
// under bpffs_root (outcome 0: went on; else a SKIFF_DROP_* code). 0 when there is no map.
uint64_t DatapathPackets(const std::string& bpffs_root, uint32_t direction, int code = 0);

class AgentEnv {
 public:
  // `tag` names the test family in paths ("svc" → /tmp/skiff-svc-<prefix>/...);
  // `agent_path` is the skiff-agent binary (SKIFF_AGENT_PATH).
  AgentEnv(const Node& node, const std::string& tag, std::string agent_path);
  ~AgentEnv();
  AgentEnv(const AgentEnv&) = delete;
  AgentEnv& operator=(const AgentEnv&) = delete;

  // Writes `file` into the manifest directory atomically (as an editor's rename would).
  void Write(const std::string& file, const std::string& contents) const;
  void Remove(const std::string& file) const;

  // Starts the agent in the node's namespace with --endpoint-ifaces, --bpffs-root,
  // --node-name node-1 and --api-socket, plus --manifests unless `manifests` is false, plus
  // `extra`. Start again after Stop() to test a restart on the same pins.
  absl::Status Start(const std::vector<std::string>& extra = {}, bool manifests = true);
  // SIGKILL and wait, leaving the datapath attached and pinned (as a crash would).
  void Kill();
  // SIGTERM and wait; the exit status.
  int Terminate();

  std::string Log() const;
  const std::filesystem::path& dir() const { return dir_; }
  const std::filesystem::path& manifests() const { return manifests_; }
  const std::string& bpffs_root() const { return bpffs_root_; }
  const std::string& api_socket() const { return api_socket_; }
  const std::string& log_path() const { return log_; }
  bool running() const { return agent_ && agent_->running(); }

 private:
  std::string netns_;
  std::string iface_glob_;
  std::string agent_path_;
  std::filesystem::path dir_;
  std::filesystem::path manifests_;
  std::string bpffs_root_;
  std::string api_socket_;
  std::string log_;
  std::unique_ptr<AgentProcess> agent_;
};

}  // namespace skiff::e2e
