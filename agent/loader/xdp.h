// XDP attachments on the node devices (--xdp, docs/north-south.md): native (driver) mode only,
// through netlink (bpf_xdp_attach), so the attachment is the kernel's and outlives the agent
// like the tc filters (a restarted agent replaces its own program atomically; --cleanup
// detaches it). Generic (skb) mode is never used: it runs after the skb is built and would
// only add a second pass before tc (docs/north-south.md, "XDP").
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace skiff::loader {

enum class XdpMode { kDisabled, kBestEffort, kNative };

// "native", "best-effort" or "disabled" (--xdp).
absl::StatusOr<XdpMode> ParseXdpMode(const std::string& text);
const char* XdpModeName(XdpMode mode);

// The name of Skiff's XDP program (bpf/nodeport.bpf.c): a program of another name on a device
// is someone else's and is never replaced.
inline constexpr char kSkiffXdpProgram[] = "from_netdev_xdp";

// Attaches prog_fd in native mode, atomically replacing Skiff's own program; fails (naming the
// program) when the device carries another XDP program, or when the driver cannot run XDP.
absl::Status XdpAttach(int ifindex, int prog_fd);

// The device's driver name as ethtool reports it ("veth", "mlx5_core", ...), or "" when the
// device does not say.
std::string DeviceDriver(const std::string& iface);

// Removes Skiff's native-mode program; OK when the device has none. Leaves another program.
absl::Status XdpDetach(int ifindex);

// The id and name of the native-mode program on the device, or NotFound.
struct XdpProgram {
  unsigned id = 0;
  std::string name;
};
absl::StatusOr<XdpProgram> XdpQuery(int ifindex);

}  // namespace skiff::loader
