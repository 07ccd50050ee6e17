#include "agent/loader/devices.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/loader/pinned_maps.h"
#include "agent/loader/tc.h"
#include "maps/map.h"
#include "spdlog/spdlog.h"

namespace skiff::loader {
namespace {

// The interface of the default route in /proc/self/net/route (destination and mask 0).
absl::StatusOr<std::string> DefaultRouteDevice() {
  std::ifstream in("/proc/self/net/route");
  if (!in) return absl::NotFoundError("cannot read /proc/self/net/route");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string iface, dst, gw, flags, refcnt, use, metric, mask;
    if (!(f >> iface >> dst >> gw >> flags >> refcnt >> use >> metric >> mask)) continue;
    if (dst == "00000000" && mask == "00000000") return iface;
  }
  return absl::NotFoundError(
      "no --devices given and no default IPv4 route to detect the node device from");
}

}  // namespace

absl::StatusOr<std::vector<Device>> ResolveDevices(const std::string& flag) {
  std::vector<std::string> names;
  for (absl::string_view n : absl::StrSplit(flag, ',', absl::SkipWhitespace()))
    names.emplace_back(n);
  if (names.empty()) {
    auto dev = DefaultRouteDevice();
    if (!dev.ok()) return dev.status();
    names.push_back(*dev);
  }
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) return ErrnoStatus(errno, "getifaddrs");
  std::vector<Device> out;
  for (const std::string& name : names) {
    Device d;
    d.name = name;
    d.ifindex = static_cast<int>(if_nametoindex(name.c_str()));
    if (d.ifindex == 0) {
      freeifaddrs(ifa);
      return absl::NotFoundError(absl::StrCat("--devices: no interface named ", name));
    }
    for (ifaddrs* p = ifa; p; p = p->ifa_next) {
      if (!p->ifa_addr || p->ifa_addr->sa_family != AF_INET || name != p->ifa_name) continue;
      model::IpAddr ip;
      ip.family = 4;
      std::memcpy(ip.bytes.data(), &reinterpret_cast<sockaddr_in*>(p->ifa_addr)->sin_addr, 4);
      d.addresses.push_back(ip);
    }
    if (d.addresses.empty()) {
      freeifaddrs(ifa);
      return absl::FailedPreconditionError(
          absl::StrCat("--devices: ", name, " has no IPv4 address"));
    }
    out.push_back(std::move(d));
  }
  freeifaddrs(ifa);
  return out;
}

absl::StatusOr<std::pair<uint16_t, uint16_t>> ParsePortRange(const std::string& text) {
  unsigned lo = 0, hi = 0;
  char extra = 0;
  if (std::sscanf(text.c_str(), "%u-%u%c", &lo, &hi, &extra) != 2 || lo == 0 || lo > hi ||
      hi > 65535)
    return absl::InvalidArgumentError(absl::StrCat(
        "--nat-port-range: want MIN-MAX with 0 < MIN <= MAX <= 65535, got \"", text, "\""));
  return std::make_pair(static_cast<uint16_t>(lo), static_cast<uint16_t>(hi));
}

std::vector<model::IpAddr> DeviceAddresses(const std::vector<Device>& devices) {
  std::vector<model::IpAddr> out;
  for (const Device& d : devices) out.insert(out.end(), d.addresses.begin(), d.addresses.end());
  return out;
}

absl::StatusOr<std::unique_ptr<NodePortDatapath>> NodePortDatapath::Load(const NodePortOptions& o,
                                                                         lxc_bpf* lxc) {
  if (o.nat_max == 0) return absl::InvalidArgumentError("--nat-max must be greater than 0");
  if (o.nat_port_min == 0 || o.nat_port_min > o.nat_port_max)
    return absl::InvalidArgumentError("--nat-port-range: MIN-MAX with 0 < MIN <= MAX");
  std::unique_ptr<NodePortDatapath> dp(new NodePortDatapath());
  auto skel = OpenSkeleton<nodeport_bpf>(nodeport_bpf__open, nodeport_bpf__destroy);
  if (!skel.ok()) return skel.status();
  dp->skel_ = std::move(*skel);
  nodeport_bpf* s = dp->skel_.get();

  // The service, conntrack, metrics and policy maps are the lxc object's: same pins, so the
  // same sizes (libbpf reuses a pin only when its shape matches).
  if (auto st = ShareMapShapes(s->obj, lxc->obj); !st.ok()) return st;
  if (int err = bpf_map__set_max_entries(s->maps.SKIFF_MAP_NAT4, o.nat_max))
    return ErrnoStatus(err, absl::StrCat("setting --nat-max = ", o.nat_max));
  s->rodata->skiff_config = lxc->rodata->skiff_config;
  s->rodata->skiff_nat_config.port_min = o.nat_port_min;
  s->rodata->skiff_nat_config.port_max = o.nat_port_max;

  auto migrations = PreparePinnedMaps(s->obj, o.bpffs_root);
  if (!migrations.ok()) return migrations.status();
  if (auto st = dp->skel_.Load(nodeport_bpf__load); !st.ok()) {
    AbortMigrations(*migrations, o.bpffs_root);
    return absl::Status(st.code(),
                        absl::StrCat("loading the node-device datapath: ", st.message()));
  }
  if (auto st = FinishMigrations(s->obj, *migrations); !st.ok()) return st;
  return dp;
}

absl::Status NodePortDatapath::AttachXdp(const Device& d, XdpMode mode) {
  DeviceXdp x{d.name, d.ifindex, false, ""};
  if (mode == XdpMode::kDisabled) {
    x.reason = "--xdp=disabled";
    if (auto st = XdpDetach(d.ifindex); !st.ok())
      return absl::Status(st.code(),
                          absl::StrCat("--xdp=disabled on ", d.name, ": ", st.message()));
  } else if (mode == XdpMode::kBestEffort && DeviceDriver(d.name) == "veth") {
    // A veth's frames come from a sender on this host: no skb is saved, their TCP/UDP
    // checksums may still be left to offload (XDP cannot see that), and XDP_TX needs the
    // peer to run NAPI. Only --xdp=native takes that on (docs/north-south.md).
    x.reason = "veth: tc only unless --xdp=native";
    if (auto st = XdpDetach(d.ifindex); !st.ok()) return st;
    spdlog::warn("--xdp=best-effort: no XDP on {} (ifindex {}), tc only: {}", d.name, d.ifindex,
                 x.reason);
  } else if (auto st = XdpAttach(d.ifindex, bpf_program__fd(skel_->progs.from_netdev_xdp));
             !st.ok()) {
    if (mode == XdpMode::kNative)
      return absl::Status(st.code(), absl::StrCat("--xdp=native: cannot attach XDP to ", d.name,
                                                  ": ", st.message()));
    x.reason = std::string(st.message());
    spdlog::warn("--xdp=best-effort: no XDP on {} (ifindex {}), tc only: {}", d.name, d.ifindex,
                 x.reason);
  } else {
    x.attached = true;
  }
  if (x.attached)
    spdlog::info("XDP native on {} (ifindex {}): from_netdev_xdp", d.name, d.ifindex);
  else if (mode == XdpMode::kDisabled)
    spdlog::info("XDP disabled on {} (ifindex {}): tc only", d.name, d.ifindex);
  xdp_.push_back(std::move(x));
  return absl::OkStatus();
}

absl::Status NodePortDatapath::Attach(const std::vector<Device>& devices, XdpMode xdp) {
  xdp_.clear();
  auto addrs = Map<__u32, skiff_node_addr4>::From(skel_->maps.SKIFF_MAP_NODE_ADDR4);
  if (!addrs.ok()) return addrs.status();
  for (const Device& d : devices) {
    skiff_node_addr4 a{};
    std::memcpy(&a.address, d.addresses.front().bytes.data(), 4);
    if (auto st = addrs->Update(static_cast<__u32>(d.ifindex), a); !st.ok()) return st;
    if (auto st =
            TcAttach(d.ifindex, TcDirection::kIngress, bpf_program__fd(skel_->progs.from_netdev));
        !st.ok())
      return absl::Status(st.code(),
                          absl::StrCat("attaching from-netdev to ", d.name, ": ", st.message()));
    if (auto st =
            TcAttach(d.ifindex, TcDirection::kEgress, bpf_program__fd(skel_->progs.to_netdev));
        !st.ok())
      return absl::Status(st.code(),
                          absl::StrCat("attaching to-netdev to ", d.name, ": ", st.message()));
    std::string list;
    for (const auto& ip : d.addresses)
      absl::StrAppend(&list, list.empty() ? "" : ",", ip.ToString());
    spdlog::info("attached from-netdev/to-netdev to {} (ifindex {}, addresses {})", d.name,
                 d.ifindex, list);
    // After tc: a device XDP passes a packet to is already served by from_netdev.
    if (auto st = AttachXdp(d, xdp); !st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace skiff::loader
