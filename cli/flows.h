// `agentctl flows`: the agent's flow events (FlowService.Observe, docs/flows.md), one line per
// flow in the spirit of `hubble observe`, or one JSON object per line with Hubble's field
// names (-o json).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/output.h"
#include "skiff/v1/flows.pb.h"

namespace skiff::cli {

struct FlowsOptions {
  bool follow = false;
  uint64_t last = 0;
  std::string since;  // RFC 3339 time or a duration ago ("30s", "5m", "2h")
  std::vector<std::string> verdict, ip, source_ip, destination_ip, protocol, pod, service,
      drop_reason, type;
  std::vector<uint32_t> port;
};

// Registers the subcommand and its flags on `app`.
CLI::App* AddFlowsCommand(CLI::App* app, FlowsOptions& o);

// Runs it; `output` is the global -o value (table, json or yaml).
int RunFlows(const FlowsOptions& o, const Target& t, const std::string& output, std::ostream& out,
             std::ostream& err);

// One flow as a text line (no newline) and as a Hubble-style JSON object.
std::string FlowLine(const v1::Flow& f);
Json FlowJson(const v1::Flow& f);

}  // namespace skiff::cli
