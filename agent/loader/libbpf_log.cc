#include "agent/loader/libbpf_log.h"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>
#include <string>

namespace skiff::loader {
namespace {

thread_local int quiet_depth = 0;

int Print(enum libbpf_print_level level, const char* fmt, va_list args) {
  char buf[2048];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  std::string msg(buf, n > 0 ? std::min<size_t>(n, sizeof(buf) - 1) : 0);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  if (level == LIBBPF_WARN && quiet_depth == 0)
    spdlog::warn("libbpf: {}", msg);
  else
    spdlog::debug("libbpf: {}", msg);
  return n;
}

}  // namespace

void InstallLibbpfLogger() { libbpf_set_print(Print); }

QuietLibbpf::QuietLibbpf() { quiet_depth++; }
QuietLibbpf::~QuietLibbpf() { quiet_depth--; }

}  // namespace skiff::loader
