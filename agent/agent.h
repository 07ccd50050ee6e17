// The node agent: loads and pins the datapath, attaches it to pod interfaces, and keeps the
// service maps equal to what the sources say.
//
// Threads: Run() is the main loop (signals, link events, reconcile), and the only writer of
// the control-plane maps. Sources fill the ObjectStore from their own threads.
#pragma once

#include "absl/status/status.h"
#include "agent/config.h"

namespace skiff {

// Runs until SIGTERM or SIGINT. On exit the programs stay attached and the maps pinned, so
// traffic keeps flowing while the agent is away.
absl::Status RunAgent(const AgentConfig& cfg);

// `skiff-agent --cleanup`: detaches Skiff's programs from every interface in this network
// namespace and removes every pin under --bpffs-root.
absl::Status Cleanup(const AgentConfig& cfg);

}  // namespace skiff
