#include "agent/loader/bpffs.h"

#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/loader/skeleton.h"

namespace skiff::loader {
namespace {
constexpr long kBpfFsMagic = 0xcafe4a11;  // BPF_FS_MAGIC
}

bool IsOnBpffs(const std::string& path) {
  struct statfs st;
  return statfs(path.c_str(), &st) == 0 && st.f_type == kBpfFsMagic;
}

absl::Status EnsureBpffs(const std::string& root) {
  namespace fs = std::filesystem;
  if (root.empty() || root[0] != '/')
    return absl::InvalidArgumentError(
        absl::StrCat("--bpffs-root must be an absolute path, got '", root, "'"));
  fs::path p(root);
  fs::path existing = p;
  std::error_code ec;
  while (!fs::exists(existing, ec) && existing.has_parent_path() &&
         existing != existing.parent_path())
    existing = existing.parent_path();
  if (!IsOnBpffs(existing.string())) {
    fs::path mount_at = absl::StartsWith(root, "/sys/fs/bpf") ? fs::path("/sys/fs/bpf") : p;
    fs::create_directories(mount_at, ec);
    if (ec)
      return absl::InternalError(absl::StrCat("creating ", mount_at.string(), ": ", ec.message()));
    if (mount("bpf", mount_at.c_str(), "bpf", 0, "mode=0700") != 0)
      return ErrnoStatus(errno, absl::StrCat("mounting bpffs at ", mount_at.string()));
  }
  fs::create_directories(p, ec);
  if (ec) return absl::InternalError(absl::StrCat("creating ", root, ": ", ec.message()));
  if (!IsOnBpffs(root))
    return absl::FailedPreconditionError(
        absl::StrCat(root, " is not on a bpffs; pinned maps cannot live there"));
  return absl::OkStatus();
}

absl::Status RemovePins(const std::string& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(root, ec)) return absl::OkStatus();
  fs::remove_all(root, ec);
  if (ec) return absl::InternalError(absl::StrCat("removing ", root, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace skiff::loader
