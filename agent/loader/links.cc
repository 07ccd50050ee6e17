#include "agent/loader/links.h"

#include <fnmatch.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/loader/skeleton.h"

namespace skiff::loader {
namespace {

// Parses RTM_NEWLINK/RTM_DELLINK messages in buf into events.
void ParseLinkMessages(const char* buf, size_t len, std::vector<LinkEvent>& out, bool* done) {
  for (auto* nh = reinterpret_cast<const nlmsghdr*>(buf); NLMSG_OK(nh, len);
       nh = NLMSG_NEXT(nh, len)) {
    if (nh->nlmsg_type == NLMSG_DONE) {
      if (done) *done = true;
      return;
    }
    if (nh->nlmsg_type != RTM_NEWLINK && nh->nlmsg_type != RTM_DELLINK) continue;
    auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(nh));
    LinkEvent ev;
    ev.link.ifindex = ifi->ifi_index;
    ev.removed = nh->nlmsg_type == RTM_DELLINK;
    int attrlen = nh->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi));
    for (auto* rta = IFLA_RTA(ifi); RTA_OK(rta, attrlen); rta = RTA_NEXT(rta, attrlen)) {
      if (rta->rta_type == IFLA_IFNAME)
        ev.link.name.assign(static_cast<const char*>(RTA_DATA(rta)),
                            strnlen(static_cast<const char*>(RTA_DATA(rta)), RTA_PAYLOAD(rta)));
    }
    out.push_back(std::move(ev));
  }
}

}  // namespace

absl::StatusOr<std::vector<Link>> ListLinks() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return ErrnoStatus(errno, "opening rtnetlink socket");
  struct {
    nlmsghdr nh;
    ifinfomsg ifi;
  } req{};
  req.nh.nlmsg_len = sizeof(req);
  req.nh.nlmsg_type = RTM_GETLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nh.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  if (send(fd, &req, sizeof(req), 0) < 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, "RTM_GETLINK dump");
  }
  std::vector<LinkEvent> events;
  bool done = false;
  std::vector<char> buf(1 << 16);
  while (!done) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return ErrnoStatus(err, "reading RTM_GETLINK dump");
    }
    if (n == 0) break;
    ParseLinkMessages(buf.data(), n, events, &done);
  }
  close(fd);
  std::vector<Link> links;
  for (auto& e : events) links.push_back(std::move(e.link));
  return links;
}

IfaceMatcher::IfaceMatcher(const std::string& globs) {
  for (absl::string_view g : absl::StrSplit(globs, ',')) {
    g = absl::StripAsciiWhitespace(g);
    if (!g.empty()) globs_.emplace_back(g);
  }
}

bool IfaceMatcher::Matches(const std::string& name) const {
  for (const auto& g : globs_)
    if (fnmatch(g.c_str(), name.c_str(), 0) == 0) return true;
  return false;
}

absl::StatusOr<LinkWatcher> LinkWatcher::Open() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) return ErrnoStatus(errno, "opening rtnetlink socket");
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_LINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, "subscribing to link changes (RTMGRP_LINK)");
  }
  return LinkWatcher(fd);
}

LinkWatcher::LinkWatcher(LinkWatcher&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
LinkWatcher& LinkWatcher::operator=(LinkWatcher&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}
LinkWatcher::~LinkWatcher() {
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<std::vector<LinkEvent>> LinkWatcher::ReadEvents(bool* overflow) {
  std::vector<LinkEvent> events;
  std::vector<char> buf(1 << 16);
  *overflow = false;
  while (true) {
    ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == ENOBUFS) {
        *overflow = true;
        continue;
      }
      return ErrnoStatus(errno, "reading link changes");
    }
    if (n == 0) break;
    ParseLinkMessages(buf.data(), n, events, nullptr);
  }
  return events;
}

}  // namespace skiff::loader
