// The bpffs directory that holds Skiff's pinned maps (default /sys/fs/bpf/skiff).
#pragma once

#include <string>

#include "absl/status/status.h"

namespace skiff::loader {

// Makes sure `root` exists on a bpffs: if neither it nor its nearest existing ancestor is on
// a bpffs, mounts one (at /sys/fs/bpf when root is under it, else at root itself), then
// creates root. Idempotent.
absl::Status EnsureBpffs(const std::string& root);

// Removes every pin under root and root itself (the `--cleanup` path). OK when absent.
absl::Status RemovePins(const std::string& root);

bool IsOnBpffs(const std::string& path);

}  // namespace skiff::loader
