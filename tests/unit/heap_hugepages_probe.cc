// Test helper for heap_hugepages_test.cc: calls ReexecWithHugePageHeap like the agent's
// main(), then prints what it got, one `key=value` a line.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "agent/heap_hugepages.h"

int main(int argc, char** argv) {
  // Counts process images: a re-exec carries the count over in the environment.
  const char* starts = std::getenv("SKIFF_PROBE_STARTS");
  setenv("SKIFF_PROBE_STARTS", std::to_string((starts ? std::atoi(starts) : 0) + 1).c_str(), 1);
  std::string note;
  const bool huge = skiff::ReexecWithHugePageHeap(argv, &note);
  // Many small blocks, as the store allocates them; touched so they are faulted in.
  std::vector<char*> blocks;
  for (int i = 0; i < 32768; ++i) {
    blocks.push_back(static_cast<char*>(std::malloc(4000)));
    std::memset(blocks.back(), 1, 4000);
  }
  long anon_huge_kib = 0;
  std::ifstream smaps("/proc/self/smaps_rollup");
  for (std::string line; std::getline(smaps, line);) {
    if (line.rfind("AnonHugePages:", 0) == 0) anon_huge_kib = std::atol(line.c_str() + 14);
  }
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  std::printf("huge=%d\nstarts=%s\npid=%d\ntunables=%s\nanon_huge_kib=%ld\nnote=%s\n", huge,
              std::getenv("SKIFF_PROBE_STARTS"), static_cast<int>(getpid()),
              tunables ? tunables : "", anon_huge_kib, note.c_str());
  for (int i = 1; i < argc; ++i) std::printf("arg=%s\n", argv[i]);
  for (char* b : blocks) std::free(b);
  return 0;
}
