// Renders one /metrics scrape from plain inputs, so the format is unit-tested without BPF
// maps, sockets or a running agent. docs/metrics.md lists every family written here.
//
// Threads: pure; called by the HTTP worker thread serving the scrape.
#pragma once

#include <optional>
#include <string>

#include "agent/observe/board.h"
#include "agent/observe/datapath_stats.h"
#include "agent/observe/process_stats.h"

namespace skiff::observe {

struct BuildInfo {
  std::string version;
  std::string compiler;
};

struct MetricsInput {
  BuildInfo build;
  AgentSample agent;
  DatapathSample datapath;
  std::optional<ProcessStats> process;
};

std::string RenderMetrics(const MetricsInput& in);

// The drop reason as a label value: SKIFF_DROP_NO_SERVICE_BACKEND -> "no_service_backend".
std::string DropReasonLabel(int code);

}  // namespace skiff::observe
