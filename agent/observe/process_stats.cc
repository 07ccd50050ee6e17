#include "agent/observe/process_stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace skiff::observe {
namespace {

// The boot time (btime) from /proc/stat: /proc/self/stat's starttime counts from boot.
std::optional<double> BootTime() {
  std::ifstream f("/proc/stat");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
  return std::nullopt;
}

}  // namespace

std::optional<ProcessStats> ReadProcessStats() {
  std::ifstream f("/proc/self/stat");
  std::string stat;
  if (!std::getline(f, stat)) return std::nullopt;
  // The command name (field 2) may hold spaces and parentheses: fields restart after the
  // last ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(stat.substr(close + 2));
  std::vector<std::string> fields;  // fields[0] is field 3 (state)
  for (std::string x; in >> x;) fields.push_back(x);
  if (fields.size() < 22) return std::nullopt;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  ProcessStats p;
  p.cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;  // utime, stime
  p.virtual_memory_bytes = std::stod(fields[20]);                           // vsize
  p.resident_memory_bytes = std::stod(fields[21]) * page;                   // rss pages
  auto boot = BootTime();
  if (boot) p.start_time_seconds = *boot + std::stod(fields[19]) / ticks;  // starttime
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    p.open_fds++;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) p.max_fds = static_cast<double>(rl.rlim_cur);
  return p;
}

}  // namespace skiff::observe
