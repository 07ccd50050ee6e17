#include "agent/loader/socket_lb.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/loader/pinned_maps.h"
#include "spdlog/spdlog.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace skiff::loader {
namespace {

struct UniqueFd {
  int fd = -1;
  explicit UniqueFd(int f) : fd(f) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd >= 0) close(fd);
  }
};

struct LinkCloser {
  void operator()(bpf_link* l) const { bpf_link__destroy(l); }  // closes the fd; pins keep it
};
using LinkPtr = std::unique_ptr<bpf_link, LinkCloser>;

// The cgroup id of a cgroup v2 directory: the 8-byte file handle cgroupfs hands out.
absl::StatusOr<uint64_t> CgroupId(const std::string& path) {
  struct {
    file_handle fh;
    uint64_t id;
  } h{};
  h.fh.handle_bytes = sizeof(uint64_t);
  int mount_id = 0;
  if (name_to_handle_at(AT_FDCWD, path.c_str(), &h.fh, &mount_id, 0) != 0)
    return ErrnoStatus(errno, absl::StrCat("--cgroup-root ", path, ": reading its cgroup id"));
  return h.id;
}

// The cgroup id and attach type of a pinned cgroup link, or NotFound.
struct PinnedLink {
  LinkPtr link;
  uint64_t cgroup_id = 0;
  uint32_t attach_type = 0;
};
absl::StatusOr<PinnedLink> OpenPinnedLink(const std::string& path) {
  if (access(path.c_str(), F_OK) != 0)  // before libbpf, which warns about a missing pin
    return ErrnoStatus(errno, absl::StrCat("opening pinned link ", path));
  errno = 0;
  bpf_link* l = bpf_link__open(path.c_str());
  if (!l) {
    int err = errno ? errno : ENOENT;
    return ErrnoStatus(err, absl::StrCat("opening pinned link ", path));
  }
  PinnedLink p{LinkPtr(l)};
  bpf_link_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_link__fd(l), &info, &len) != 0)
    return ErrnoStatus(errno, absl::StrCat("reading pinned link ", path));
  if (info.type != BPF_LINK_TYPE_CGROUP)
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a cgroup link (type ", info.type, ")"));
  p.cgroup_id = info.cgroup.cgroup_id;
  p.attach_type = info.cgroup.attach_type;
  return p;
}

absl::Status DetachPinned(PinnedLink& p, const std::string& path) {
  // LINK_DETACH first: the link may have other holders (an fd of a stopping agent).
  if (bpf_link_detach(bpf_link__fd(p.link.get())) != 0 && errno != EINVAL)
    return ErrnoStatus(errno, absl::StrCat("detaching ", path));
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return ErrnoStatus(errno, absl::StrCat("unpinning ", path));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<bool> ParseSocketLb(const std::string& text) {
  if (text == "enabled") return true;
  if (text == "disabled") return false;
  return absl::InvalidArgumentError(
      absl::StrCat("--socket-lb: '", text, "' is neither 'enabled' nor 'disabled'"));
}

absl::StatusOr<bool> ParseSocketLbScope(const std::string& text) {
  if (text == "host") return false;
  if (text == "all") return true;
  return absl::InvalidArgumentError(
      absl::StrCat("--socket-lb-scope: '", text, "' is neither 'host' nor 'all'"));
}

absl::StatusOr<std::string> DefaultCgroupRoot() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS"
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") dash++;
    if (f.size() < 5 || dash + 1 >= f.size() || f[dash + 1] != "cgroup2") continue;
    return f[4];
  }
  return absl::NotFoundError(
      "--socket-lb=enabled: no cgroup2 filesystem is mounted (/proc/self/mountinfo); mount one "
      "(mount -t cgroup2 none /sys/fs/cgroup) and pass --cgroup-root, or pass "
      "--socket-lb=disabled");
}

absl::Status CheckCgroupV2Dir(const std::string& path) {
  struct stat st {};
  if (path.empty() || path[0] != '/')
    return absl::InvalidArgumentError(
        absl::StrCat("--cgroup-root must be an absolute path, got '", path, "'"));
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("--cgroup-root ", path));
  if (!S_ISDIR(st.st_mode))
    return absl::InvalidArgumentError(
        absl::StrCat("--cgroup-root ", path, " is not a directory (a cgroup v2 directory needed)"));
  struct statfs fs {};
  if (statfs(path.c_str(), &fs) != 0)
    return ErrnoStatus(errno, absl::StrCat("--cgroup-root ", path));
  if (fs.f_type != CGROUP2_SUPER_MAGIC)
    return absl::InvalidArgumentError(absl::StrCat(
        "--cgroup-root ", path,
        " is not a cgroup v2 directory (its filesystem is not cgroup2; on a hybrid host the v2 "
        "hierarchy is usually /sys/fs/cgroup/unified)"));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> OwnNetnsCookie() {
  UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (s.fd < 0) return ErrnoStatus(errno, "socket for SO_NETNS_COOKIE");
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (getsockopt(s.fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0)
    return ErrnoStatus(errno, "reading this network namespace's cookie (SO_NETNS_COOKIE, 5.14+)");
  return cookie;
}

std::string SocketLbLinkDir(const std::string& bpffs_root) { return bpffs_root + "/links"; }

absl::StatusOr<std::unique_ptr<SocketLb>> SocketLb::Load(const std::string& bpffs_root,
                                                         lxc_bpf* lxc, uint64_t netns_cookie,
                                                         bool pods) {
  std::unique_ptr<SocketLb> lb(new SocketLb());
  lb->bpffs_root_ = bpffs_root;
  lb->pods_ = pods;
  auto skel = OpenSkeleton<sock_bpf>(sock_bpf__open, sock_bpf__destroy);
  if (!skel.ok()) return skel.status();
  lb->skel_ = std::move(*skel);
  sock_bpf* s = lb->skel_.get();
  if (auto st = ShareMapShapes(s->obj, lxc->obj); !st.ok()) return st;
  s->rodata->skiff_config = lxc->rodata->skiff_config;
  s->rodata->skiff_sock_config.netns_cookie = netns_cookie;
  s->rodata->skiff_sock_config.flags = pods ? SKIFF_SOCK_F_PODS : 0;
  auto migrations = PreparePinnedMaps(s->obj, bpffs_root);
  if (!migrations.ok()) return migrations.status();
  if (auto st = lb->skel_.Load(sock_bpf__load); !st.ok()) {
    AbortMigrations(*migrations, bpffs_root);
    return absl::Status(st.code(), absl::StrCat("loading the socket-LB programs: ", st.message()));
  }
  if (auto st = FinishMigrations(s->obj, *migrations); !st.ok()) return st;
  return lb;
}

absl::Status SocketLb::Attach(const std::string& cgroup_root) {
  if (auto st = CheckCgroupV2Dir(cgroup_root); !st.ok()) return st;
  auto cg_id = CgroupId(cgroup_root);
  if (!cg_id.ok()) return cg_id.status();
  UniqueFd cg(open(cgroup_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (cg.fd < 0) return ErrnoStatus(errno, absl::StrCat("--cgroup-root ", cgroup_root));
  const std::string dir = SocketLbLinkDir(bpffs_root_);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("creating ", dir, ": ", ec.message()));

  hooks_.clear();
  cgroup_root_ = cgroup_root;
  struct Hook {
    bpf_program* prog;
    const char* hook;
  } hooks[] = {
      {skel_->progs.sock_connect4, "cgroup-connect4"},
      {skel_->progs.sock_sendmsg4, "cgroup-sendmsg4"},
      {skel_->progs.sock_recvmsg4, "cgroup-recvmsg4"},
      {skel_->progs.sock_getpeername4, "cgroup-getpeername4"},
  };
  for (const Hook& h : hooks) {
    const std::string name = bpf_program__name(h.prog);
    const std::string pin = absl::StrCat(dir, "/", name);
    const uint32_t type = bpf_program__expected_attach_type(h.prog);
    auto old = OpenPinnedLink(pin);
    if (old.ok() && old->cgroup_id == *cg_id && old->attach_type == type) {
      // Same cgroup and hook: swap the program in place.
      if (int err = bpf_link__update_program(old->link.get(), h.prog))
        return ErrnoStatus(err, absl::StrCat("replacing ", name, " on ", cgroup_root));
      spdlog::info("socket LB: replaced {} on {} (pinned link {})", name, cgroup_root, pin);
    } else {
      errno = 0;
      LinkPtr link(bpf_program__attach_cgroup(h.prog, cg.fd));
      if (!link)
        return ErrnoStatus(errno ? errno : EINVAL,
                           absl::StrCat("attaching ", name, " to --cgroup-root ", cgroup_root));
      if (old.ok()) {  // another cgroup (or a stale pin): the new link is in, drop the old
        if (auto st = DetachPinned(*old, pin); !st.ok()) {
          spdlog::warn("socket LB: {}", st.ToString());
          unlink(pin.c_str());
        } else {
          spdlog::info("socket LB: detached {} from its previous cgroup (id {})", name,
                       old->cgroup_id);
        }
      } else if (!absl::IsNotFound(old.status())) {
        // Not a link we can read: make room for ours.
        if (unlink(pin.c_str()) != 0 && errno != ENOENT)
          return ErrnoStatus(errno, absl::StrCat("removing ", pin));
      }
      if (int err = bpf_link__pin(link.get(), pin.c_str()))
        return ErrnoStatus(err, absl::StrCat("pinning ", name, " at ", pin));
      spdlog::info("socket LB: attached {} to {} (pinned link {})", name, cgroup_root, pin);
    }
    hooks_.push_back({h.hook, name});
  }
  return absl::OkStatus();
}

absl::StatusOr<int> DetachSocketLb(const std::string& bpffs_root) {
  const std::string dir = SocketLbLinkDir(bpffs_root);
  std::error_code ec;
  int n = 0;
  if (!std::filesystem::exists(dir, ec)) return 0;
  std::vector<std::string> pins;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    pins.push_back(it->path().string());
  for (const std::string& pin : pins) {
    auto old = OpenPinnedLink(pin);
    if (!old.ok()) {
      spdlog::warn("socket LB: {}; removing the pin", old.status().ToString());
      std::filesystem::remove(pin, ec);
      continue;
    }
    if (auto st = DetachPinned(*old, pin); !st.ok()) return st;
    spdlog::info("socket LB: detached {}", pin);
    n++;
  }
  std::filesystem::remove(dir, ec);
  return n;
}

}  // namespace skiff::loader
