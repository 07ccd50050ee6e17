#include "agent/loader/xdp.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "agent/loader/skeleton.h"

namespace skiff::loader {

absl::StatusOr<XdpMode> ParseXdpMode(const std::string& text) {
  if (text == "native") return XdpMode::kNative;
  if (text == "best-effort") return XdpMode::kBestEffort;
  if (text == "disabled") return XdpMode::kDisabled;
  return absl::InvalidArgumentError(
      absl::StrCat("--xdp: want native, best-effort or disabled, got \"", text, "\""));
}

const char* XdpModeName(XdpMode mode) {
  switch (mode) {
    case XdpMode::kNative:
      return "native";
    case XdpMode::kBestEffort:
      return "best-effort";
    case XdpMode::kDisabled:
      return "disabled";
  }
  return "?";
}

std::string DeviceDriver(const std::string& iface) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  ethtool_drvinfo info{};
  info.cmd = ETHTOOL_GDRVINFO;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, iface.c_str(), IFNAMSIZ - 1);
  ifr.ifr_data = reinterpret_cast<char*>(&info);
  std::string driver;
  if (ioctl(fd, SIOCETHTOOL, &ifr) == 0)
    driver.assign(info.driver, strnlen(info.driver, sizeof(info.driver)));
  close(fd);
  return driver;
}

absl::StatusOr<XdpProgram> XdpQuery(int ifindex) {
  __u32 id = 0;
  if (int err = bpf_xdp_query_id(ifindex, XDP_FLAGS_DRV_MODE, &id))
    return ErrnoStatus(err, absl::StrCat("querying XDP on ifindex ", ifindex));
  if (id == 0) return absl::NotFoundError(absl::StrCat("no XDP program on ifindex ", ifindex));
  XdpProgram p;
  p.id = id;
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd >= 0) {
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) p.name = info.name;
    close(fd);
  }
  return p;
}

absl::Status XdpAttach(int ifindex, int prog_fd) {
  if (auto cur = XdpQuery(ifindex); cur.ok() && cur->name != kSkiffXdpProgram)
    return absl::FailedPreconditionError(absl::StrCat("the device already has XDP program ",
                                                      cur->name, " (id ", cur->id,
                                                      "), not Skiff's; not replacing it"));
  // No XDP_FLAGS_UPDATE_IF_NOEXIST: our own program from a previous run is replaced in place.
  if (int err = bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_DRV_MODE, nullptr))
    return ErrnoStatus(err, absl::StrCat("attaching XDP (native) on ifindex ", ifindex));
  return absl::OkStatus();
}

absl::Status XdpDetach(int ifindex) {
  auto cur = XdpQuery(ifindex);
  if (!cur.ok() || cur->name != kSkiffXdpProgram) return absl::OkStatus();
  if (int err = bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, nullptr);
      err && err != -ENODEV && err != -ENOENT)
    return ErrnoStatus(err, absl::StrCat("detaching XDP on ifindex ", ifindex));
  return absl::OkStatus();
}

}  // namespace skiff::loader
