// The manifest source's share of a first load, without the agent: a directory of manifests
// (skiff_bench_gen's manifests/) read by ManifestDirectory::Rescan into an ObjectStore, as the
// agent's watcher thread does when the files appear. Wall and CPU time (all threads of the
// process) of that one Rescan, and the store's memory: RSS before and after, and VmHWM.
// The heap is on huge pages as in the agent (ReexecWithHugePageHeap).
//
//   skiff_bench_manifest_load DIR
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "agent/heap_hugepages.h"
#include "agent/model/object_store.h"
#include "agent/sources/manifest_directory.h"

namespace {

long StatusKiB(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return std::atol(line.c_str() + prefix.size());
  }
  return 0;
}

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MANIFEST_DIR\n", argv[0]);
    return 2;
  }
  std::string heap_note;
  skiff::ReexecWithHugePageHeap(argv, &heap_note);
  skiff::model::ObjectStore store;
  store.AddSource("manifests");
  skiff::sources::ManifestDirectory dir(argv[1], &store);
  const long rss0 = StatusKiB("VmRSS");
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = CpuSeconds();
  if (absl::Status st = dir.Rescan(); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }
  const double cpu = CpuSeconds() - c0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& s = dir.stats();
  std::printf(
      "%zu objects from %zu files (%lu invalid): wall %.3f s, cpu %.3f s; RSS +%ld MiB, "
      "VmHWM %ld MiB\n",
      s.objects, s.files, static_cast<unsigned long>(s.objects_invalid), wall, cpu,
      (StatusKiB("VmRSS") - rss0) / 1024, StatusKiB("VmHWM") / 1024);
  return 0;
}
