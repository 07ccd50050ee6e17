#include "agent/heap_hugepages.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace skiff {
namespace {

constexpr char kTunable[] = "glibc.malloc.hugetlb";

bool TransparentHugePagesOff() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::stringstream text;
  text << in.rdbuf();
  // "always [madvise] never": the bracketed word is the mode. No file: no THP at all.
  return !in.is_open() || text.str().find("[never]") != std::string::npos;
}

}  // namespace

bool ReexecWithHugePageHeap(char** argv, std::string* note) {
  auto say = [&](bool huge, std::string text) {
    if (note != nullptr) *note = std::move(text);
    return huge;
  };
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  const std::string current = tunables != nullptr ? tunables : "";
  const size_t at = current.find(std::string(kTunable) + "=");
  if (at != std::string::npos) {
    // Set by the operator, or by the exec below: glibc reads it as a number, 0 = off.
    const char value = current[at + sizeof(kTunable)];
    return say(value != '0' && value != '\0' && value != ':', "GLIBC_TUNABLES=" + current);
  }
  const char* opt = std::getenv("SKIFF_HEAP_HUGEPAGES");
  if (opt != nullptr && std::strcmp(opt, "0") == 0) return say(false, "SKIFF_HEAP_HUGEPAGES=0");
  if (TransparentHugePagesOff()) {
    return say(false, "transparent huge pages are off in this kernel");
  }
  const std::string value =
      (current.empty() ? std::string() : current + ":") + std::string(kTunable) + "=1";
  if (setenv("GLIBC_TUNABLES", value.c_str(), 1) != 0) return say(false, "setenv failed");
  execv("/proc/self/exe", argv);
  const int err = errno;
  // Still the old process: leave the environment as it was for anything it starts.
  if (tunables != nullptr) {
    setenv("GLIBC_TUNABLES", current.c_str(), 1);
  } else {
    unsetenv("GLIBC_TUNABLES");
  }
  return say(false, std::string("re-exec with a huge-page heap failed: ") + std::strerror(err));
}

}  // namespace skiff
