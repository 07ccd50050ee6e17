// Socket-level load balancing (--socket-lb, --cgroup-root; docs/socket-lb.md): the cgroup
// programs of bpf/sock.bpf.c loaded beside the lxc object (sharing its service and metrics
// maps) and attached to a cgroup v2 directory with bpf links pinned under the bpffs root, so
// they stay attached while the agent is down and a restarted agent replaces the programs in
// place (bpf_link__update_program: no moment without translation).
//
// Thread: the agent's main thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/loader/skeleton.h"
// Before the skeletons: their rodata holds struct skiff_config and struct skiff_sock_config.
#include "maps/config.h"
#include "maps/sock_lb.h"
// clang-format off
#include "lxc.skel.h"
#include "sock.skel.h"
// clang-format on

namespace skiff::loader {

// "enabled" or "disabled" (--socket-lb).
absl::StatusOr<bool> ParseSocketLb(const std::string& text);

// "host" (false) or "all" (true: pods too) (--socket-lb-scope).
absl::StatusOr<bool> ParseSocketLbScope(const std::string& text);

// The mount point of the first cgroup2 filesystem in /proc/self/mountinfo (the default of
// --cgroup-root), or NotFound naming what to do.
absl::StatusOr<std::string> DefaultCgroupRoot();

// OK when `path` is a directory on a cgroup2 filesystem; else an error naming --cgroup-root.
absl::Status CheckCgroupV2Dir(const std::string& path);

// The cookie of this process's network namespace (SO_NETNS_COOKIE, Linux 5.14+).
absl::StatusOr<uint64_t> OwnNetnsCookie();

// Where the links of the socket programs are pinned: <bpffs_root>/links/<program>.
std::string SocketLbLinkDir(const std::string& bpffs_root);

// One cgroup hook as attached (agentctl status).
struct SocketLbHook {
  std::string hook;     // "cgroup-connect4", ...
  std::string program;  // "sock_connect4", ...
};

class SocketLb {
 public:
  // Loads bpf/sock.bpf.o with the lxc object's map shapes, translating the sockets of the
  // network namespace whose cookie is netns_cookie (the node's) and, with pods, those of every
  // other namespace too.
  static absl::StatusOr<std::unique_ptr<SocketLb>> Load(const std::string& bpffs_root, lxc_bpf* lxc,
                                                        uint64_t netns_cookie, bool pods);
  // Attaches every program to cgroup_root (checked: a cgroup v2 directory). A link pinned by an
  // earlier run on the same cgroup and hook gets the new program atomically; one on another
  // cgroup (--cgroup-root changed) is detached after the new one is attached.
  absl::Status Attach(const std::string& cgroup_root);
  const std::vector<SocketLbHook>& hooks() const { return hooks_; }
  const std::string& cgroup_root() const { return cgroup_root_; }
  bool pods() const { return pods_; }

 private:
  SocketLb() = default;
  std::string bpffs_root_;
  std::string cgroup_root_;
  bool pods_ = false;
  Skeleton<sock_bpf> skel_;
  std::vector<SocketLbHook> hooks_;
};

// Detaches and unpins every socket-program link pinned under bpffs_root (--socket-lb=disabled,
// --cleanup). Returns how many were detached.
absl::StatusOr<int> DetachSocketLb(const std::string& bpffs_root);

}  // namespace skiff::loader
