// skiff-agent: the node agent. See agent/agent.h and docs/configuration.md.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <string>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/heap_hugepages.h"
#include "agent/logging.h"

int main(int argc, char** argv) {
  std::string heap_note;
  const bool huge_heap = skiff::ReexecWithHugePageHeap(argv, &heap_note);
  auto cfg = skiff::ParseFlags(argc, argv);
  if (!cfg.ok()) {
    if (absl::IsCancelled(cfg.status())) return 0;  // --help / --version
    std::fprintf(stderr, "skiff-agent: %s\n", std::string(cfg.status().message()).c_str());
    return 2;
  }
  if (auto st = skiff::SetupLogging(cfg->log_level, cfg->log_format); !st.ok()) {
    std::fprintf(stderr, "skiff-agent: %s\n", std::string(st.message()).c_str());
    return 2;
  }
  spdlog::debug("heap: {} pages ({})", huge_heap ? "transparent huge" : "4 KiB", heap_note);
  absl::Status st = cfg->cleanup ? skiff::Cleanup(*cfg) : skiff::RunAgent(*cfg);
  if (!st.ok()) {
    spdlog::error("{}", std::string(st.message()));
    return 1;
  }
  return 0;
}
