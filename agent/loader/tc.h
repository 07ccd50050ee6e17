// tc (cls_bpf, direct-action) attachments on an interface's clsact qdisc. The filter uses a
// fixed handle and priority so a restarted agent replaces its own program atomically
// (BPF_TC_F_REPLACE: no window without a program) and --cleanup finds it. The attachment is
// owned by the kernel, not by this process: it stays when the agent exits, so traffic keeps
// flowing (DESIGN.md §3, "Pinning").
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace skiff::loader {

enum class TcDirection { kIngress, kEgress };

inline constexpr unsigned kSkiffTcHandle = 0x5f1f;  // "skiff"
inline constexpr unsigned kSkiffTcPriority = 1;

const char* TcDirectionName(TcDirection dir);  // "tc-ingress" / "tc-egress"

// Creates clsact if needed, then attaches or atomically replaces Skiff's filter.
absl::Status TcAttach(int ifindex, TcDirection dir, int prog_fd);

// Removes Skiff's filter; OK when it is not there. Leaves clsact in place (other tools may
// use it).
absl::Status TcDetach(int ifindex, TcDirection dir);

// The program id attached as Skiff's filter, or NotFound.
absl::StatusOr<unsigned> TcQuery(int ifindex, TcDirection dir);

}  // namespace skiff::loader
