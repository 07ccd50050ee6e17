// ReexecWithHugePageHeap (agent/heap_hugepages.h), through a probe process that calls it the
// way the agent's main() does.
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace {

struct ProbeRun {
  pid_t pid = -1;
  std::multimap<std::string, std::string> out;
  std::string Get(const std::string& key) const {
    auto it = out.find(key);
    return it == out.end() ? "<missing>" : it->second;
  }
};

// Runs the probe with exactly `env` as its environment.
ProbeRun RunProbe(const std::vector<std::string>& env, const std::vector<std::string>& args) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  ProbeRun run;
  run.pid = fork();
  if (run.pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    std::vector<char*> argv{const_cast<char*>(SKIFF_PROBE_PATH)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    execve(SKIFF_PROBE_PATH, argv.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) text.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(run.pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << text;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) run.out.emplace(line.substr(0, eq), line.substr(eq + 1));
  }
  return run;
}

bool ThpNever() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return !in.is_open() || mode.find("[never]") != std::string::npos;
}

TEST(HeapHugePages, ReexecutesOnceWithTheTunableKeepingPidAndArguments) {
  if (ThpNever()) GTEST_SKIP() << "transparent huge pages are off in this kernel";
  ProbeRun run = RunProbe({"PATH=/usr/bin:/bin"}, {"--one", "two words"});
  EXPECT_EQ(run.Get("huge"), "1");
  EXPECT_EQ(run.Get("starts"), "2");  // exactly one re-exec
  EXPECT_EQ(run.Get("pid"), std::to_string(run.pid));
  EXPECT_EQ(run.Get("tunables"), "glibc.malloc.hugetlb=1");
  auto [first, last] = run.out.equal_range("arg");
  std::vector<std::string> args;
  for (auto it = first; it != last; ++it) args.push_back(it->second);
  EXPECT_EQ(args, (std::vector<std::string>{"--one", "two words"}));
  // 128 MiB of small blocks: glibc asked for huge pages, so the kernel gave some.
  EXPECT_GT(std::stol(run.Get("anon_huge_kib")), 0) << run.Get("note");
}

TEST(HeapHugePages, KeepsTheOperatorsOtherTunables) {
  if (ThpNever()) GTEST_SKIP() << "transparent huge pages are off in this kernel";
  ProbeRun run = RunProbe({"GLIBC_TUNABLES=glibc.malloc.check=0"}, {});
  EXPECT_EQ(run.Get("huge"), "1");
  EXPECT_EQ(run.Get("starts"), "2");
  EXPECT_EQ(run.Get("tunables"), "glibc.malloc.check=0:glibc.malloc.hugetlb=1");
}

TEST(HeapHugePages, AnOperatorsChoiceOfTheTunableRulesWithoutReexec) {
  ProbeRun off = RunProbe({"GLIBC_TUNABLES=glibc.malloc.hugetlb=0"}, {});
  EXPECT_EQ(off.Get("huge"), "0");
  EXPECT_EQ(off.Get("starts"), "1");
  EXPECT_EQ(off.Get("tunables"), "glibc.malloc.hugetlb=0");
  ProbeRun on = RunProbe({"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}, {});
  EXPECT_EQ(on.Get("huge"), "1");
  EXPECT_EQ(on.Get("starts"), "1");
}

TEST(HeapHugePages, SkiffHeapHugepagesZeroTurnsItOff) {
  ProbeRun run = RunProbe({"SKIFF_HEAP_HUGEPAGES=0"}, {});
  EXPECT_EQ(run.Get("huge"), "0");
  EXPECT_EQ(run.Get("starts"), "1");
  EXPECT_EQ(run.Get("tunables"), "");
  EXPECT_EQ(run.Get("note"), "SKIFF_HEAP_HUGEPAGES=0");
}

}  // namespace
