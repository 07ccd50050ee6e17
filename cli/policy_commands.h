// `agentctl policy list|get|trace` (docs/cli.md, docs/policy.md): NetworkPolicy as this node
// enforces it, through PolicyService. Kept apart from commands.cc, which only registers them.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>

#include "cli/client.h"
#include "cli/output.h"
#include "skiff/v1/policy.pb.h"

namespace CLI {
class App;
}

namespace skiff::cli {

class PolicyCommands {
 public:
  // Adds `policy` and its subcommands to `app`; calls `leaf` on each subcommand so the caller
  // attaches its callback (which then calls Run).
  void Register(CLI::App* app, const std::function<void(CLI::App*)>& leaf);
  // Runs the subcommand that was parsed.
  int Run(const Target& target, Format format, std::ostream& out, std::ostream& err) const;

 private:
  CLI::App* list_ = nullptr;
  CLI::App* get_ = nullptr;
  CLI::App* trace_ = nullptr;
  std::string ns_, pod_, from_, to_, protocol_ = "TCP";
  uint32_t port_ = 0;
};

// Table renderings (pure: golden-tested).
std::string PolicyListTable(const v1::ListPolicyEndpointsResponse& r);
std::string PolicyEndpointDetail(const v1::PolicyEndpoint& e);
std::string PolicyTraceText(const v1::PolicyTraceResponse& t);

}  // namespace skiff::cli
