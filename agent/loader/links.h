// Network interfaces through rtnetlink: a dump of current links and a subscription to link
// changes (RTMGRP_LINK), so programs follow pod veths as they appear and vanish.
//
// Thread: used by the agent's main loop only (poll on fd(), then ReadEvents()).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff::loader {

struct Link {
  int ifindex = 0;
  std::string name;
  bool operator==(const Link&) const = default;
};

struct LinkEvent {
  Link link;
  bool removed = false;
};

// All links in the current network namespace.
absl::StatusOr<std::vector<Link>> ListLinks();

// Comma-separated shell globs ("lxc*,veth*"); empty patterns are ignored.
class IfaceMatcher {
 public:
  explicit IfaceMatcher(const std::string& globs);
  bool Matches(const std::string& name) const;
  bool empty() const { return globs_.empty(); }
  const std::vector<std::string>& globs() const { return globs_; }

 private:
  std::vector<std::string> globs_;
};

class LinkWatcher {
 public:
  static absl::StatusOr<LinkWatcher> Open();
  LinkWatcher(LinkWatcher&& o) noexcept;
  LinkWatcher& operator=(LinkWatcher&& o) noexcept;
  LinkWatcher(const LinkWatcher&) = delete;
  LinkWatcher& operator=(const LinkWatcher&) = delete;
  ~LinkWatcher();

  int fd() const { return fd_; }
  // Reads what is pending without blocking. On ENOBUFS (events lost) the caller should
  // re-list links; `overflow` tells it to.
  absl::StatusOr<std::vector<LinkEvent>> ReadEvents(bool* overflow);

 private:
  explicit LinkWatcher(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace skiff::loader
