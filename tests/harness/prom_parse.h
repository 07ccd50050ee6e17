// Runs the reference Prometheus text-format parser (tests/harness/prom_parse.py, on
// python3-prometheus-client) over an exposition and returns its families as JSON, or the
// parser's error. Tests use it so a malformed /metrics fails them.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace skiff::testing {

inline absl::StatusOr<nlohmann::json> ParsePrometheusText(const std::string& text) {
  char path[] = "/tmp/skiff-prom-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return absl::InternalError("mkstemp failed");
  close(fd);
  std::ofstream(path) << text;
  // Debian's python3-prometheus-client installs for the system interpreter, which a pyenv or
  // virtualenv "python3" earlier on PATH would not see.
  std::string cmd = std::string("/usr/bin/python3 ") + SKIFF_PROM_PARSE_PY + " " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p && (n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = p ? pclose(p) : -1;
  unlink(path);
  if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) == 2)
    return absl::FailedPreconditionError("cannot run the prometheus parser: " + out);
  if (rc != 0) return absl::InvalidArgumentError("prometheus parser: " + out);
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded()) return absl::InternalError("parser printed no JSON: " + out);
  return j;
}

// Sum of the samples named `sample` whose labels include every pair of `match`.
inline double SumSamples(const nlohmann::json& parsed, const std::string& family,
                         const std::string& sample, const nlohmann::json& match = {}) {
  double sum = 0;
  if (!parsed["families"].contains(family)) return 0;
  for (const auto& s : parsed["families"][family]["samples"]) {
    if (s["name"] != sample || !s["value"].is_number()) continue;
    bool ok = true;
    for (auto it = match.begin(); match.is_object() && it != match.end(); ++it)
      ok = ok && s["labels"].contains(it.key()) && s["labels"][it.key()] == it.value();
    if (ok) sum += s["value"].get<double>();
  }
  return sum;
}

}  // namespace skiff::testing
