#include "tests/e2e/agent_env.h"

#include <bpf/bpf.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "maps/map.h"
#include "maps/metrics.h"
#include "maps/names.h"
#include "tests/e2e/manifests.h"

namespace skiff::e2e {

uint64_t DatapathPackets(const std::string& bpffs_root, uint32_t direction, int code) {
  std::string pin = bpffs_root + "/" + SKIFF_STR(SKIFF_MAP_METRICS);
  int fd = bpf_obj_get(pin.c_str());
  if (fd < 0) return 0;
  PerCpuMap<__u32, skiff_metrics_val> m(fd, SKIFF_STR(SKIFF_MAP_METRICS));
  uint64_t n = 0;
  if (auto v = m.Lookup(SKIFF_METRICS_INDEX(direction, code)); v.ok())
    for (const auto& c : *v) n += c.packets;
  close(fd);
  return n;
}

namespace fs = std::filesystem;

AgentEnv::AgentEnv(const Node& node, const std::string& tag, std::string agent_path)
    : netns_(node.netns()), iface_glob_(node.IfaceGlob()), agent_path_(std::move(agent_path)) {
  dir_ = fs::temp_directory_path() / absl::StrCat("skiff-", tag, "-", node.prefix());
  manifests_ = dir_ / "manifests";
  fs::create_directories(manifests_);
  bpffs_root_ = absl::StrCat("/sys/fs/bpf/skiff-", tag, "-", node.prefix());
  api_socket_ = (dir_ / "run" / "agent.sock").string();
  log_ = (dir_ / "agent.log").string();
}

AgentEnv::~AgentEnv() {
  Kill();
  // Detach and unpin exactly what this agent made.
  Sh(absl::StrCat("nsenter --net=/run/netns/", netns_, " ", agent_path_, " --cleanup --bpffs-root ",
                  bpffs_root_, " >>", log_, " 2>&1"))
      .IgnoreError();
  if (::testing::Test::HasFailure()) {
    std::string s = Log();
    // The tail is where the failing step's lines are.
    if (s.size() > 30000) s = "...\n" + s.substr(s.size() - 30000);
    std::cerr << "---- agent log (" << log_ << ") ----\n" << s << "-------------------\n";
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
  fs::remove_all(bpffs_root_, ec);
}

void AgentEnv::Write(const std::string& file, const std::string& contents) const {
  WriteFileAtomically((manifests_ / file).string(), contents);
}

void AgentEnv::Remove(const std::string& file) const {
  std::error_code ec;
  fs::remove(manifests_ / file, ec);
}

absl::Status AgentEnv::Start(const std::vector<std::string>& extra, bool manifests) {
  if (running()) return absl::FailedPreconditionError("agent already running");
  std::vector<std::string> args = {agent_path_,    "--endpoint-ifaces", iface_glob_,
                                   "--bpffs-root", bpffs_root_,         "--node-name",
                                   "node-1",       "--api-socket",      api_socket_};
  if (manifests) args.insert(args.end(), {"--manifests", manifests_.string()});
  args.insert(args.end(), extra.begin(), extra.end());
  agent_ = std::make_unique<AgentProcess>(std::move(args));
  return agent_->Start(netns_, log_);
}

void AgentEnv::Kill() {
  if (!agent_) return;
  agent_->Kill(SIGKILL);
  agent_->Wait();
  agent_.reset();
}

int AgentEnv::Terminate() {
  if (!agent_) return -1;
  agent_->Kill(SIGTERM);
  int status = agent_->Wait();
  agent_.reset();
  return status;
}

std::string AgentEnv::Log() const {
  std::ifstream f(log_);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace skiff::e2e
