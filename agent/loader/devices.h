// Node devices (--devices): the interfaces that carry north-south traffic, their IPv4
// addresses (the NodePort frontends and the SNAT source), and the node-device datapath
// (bpf/nodeport.bpf.c) loaded beside the lxc object and attached on each of them.
//
// Thread: the agent's main thread.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/loader/skeleton.h"
#include "agent/loader/xdp.h"
#include "agent/model/desired_state.h"
// Before the skeletons: their rodata holds struct skiff_config and struct skiff_nat_config.
#include "maps/config.h"
#include "maps/nat.h"
// clang-format off
#include "lxc.skel.h"
#include "nodeport.skel.h"
// clang-format on

namespace skiff::loader {

struct Device {
  std::string name;
  int ifindex = 0;
  std::vector<model::IpAddr> addresses;  // IPv4, in the order the kernel lists them
};

// The devices named by `flag` (comma-separated interface names), or, when it is empty, the
// device of the default IPv4 route of this process's network namespace. Each must exist and
// have an IPv4 address. Reads /proc/self/net/route and getifaddrs(), so it always sees the
// namespace the agent runs in.
absl::StatusOr<std::vector<Device>> ResolveDevices(const std::string& flag);

// "MIN-MAX" (--nat-port-range) -> {MIN, MAX}, 0 < MIN <= MAX <= 65535.
absl::StatusOr<std::pair<uint16_t, uint16_t>> ParsePortRange(const std::string& text);

// Every IPv4 address of `devices`, for the NodePort frontends.
std::vector<model::IpAddr> DeviceAddresses(const std::vector<Device>& devices);

struct NodePortOptions {
  std::string bpffs_root;
  uint32_t nat_max = SKIFF_NAT_MAP_SIZE_DEFAULT;
  uint16_t nat_port_min = SKIFF_NAT_PORT_MIN_DEFAULT;
  uint16_t nat_port_max = SKIFF_NAT_PORT_MAX_DEFAULT;
};

// The XDP state of one node device after Attach (agentctl status, logs).
struct DeviceXdp {
  std::string device;
  int ifindex = 0;
  bool attached = false;  // from_netdev_xdp runs in native mode
  std::string reason;     // why not, when not attached ("--xdp=disabled", the error)
};

// The node-device programs. Load shares every map the lxc object has (same pins, same sizes)
// and pins its own (NAT, node addresses) under the bpffs root. Attach writes the node address
// map and attaches from_netdev (tc ingress) and to_netdev (tc egress) on each device, then
// from_netdev_xdp in native mode per --xdp: native fails naming the device, best-effort warns
// and leaves the device to tc, disabled detaches a program left by an earlier run. The
// attachments outlive the agent like the pod programs' (--cleanup detaches them).
class NodePortDatapath {
 public:
  static absl::StatusOr<std::unique_ptr<NodePortDatapath>> Load(const NodePortOptions& opts,
                                                                lxc_bpf* lxc);
  absl::Status Attach(const std::vector<Device>& devices, XdpMode xdp = XdpMode::kDisabled);
  nodeport_bpf* skel() const { return skel_.get(); }
  const std::vector<DeviceXdp>& xdp() const { return xdp_; }

 private:
  NodePortDatapath() = default;
  absl::Status AttachXdp(const Device& d, XdpMode mode);
  Skeleton<nodeport_bpf> skel_;
  std::vector<DeviceXdp> xdp_;
};

}  // namespace skiff::loader
