#include "agent/sources/manifest_source.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace skiff::sources {
namespace {

constexpr uint32_t kWatchMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

}  // namespace

ManifestSource::ManifestSource(Options options, model::ObjectStore* store)
    : options_(std::move(options)), store_(store), directory_(options_.dir, store) {
  store_->AddSource(options_.source_name);
}

ManifestSource::ManifestSource(std::string dir, model::ObjectStore* store)
    : ManifestSource(Options{.dir = std::move(dir)}, store) {}

ManifestSource::~ManifestSource() { Stop(); }

absl::Status ManifestSource::Start() {
  if (thread_.joinable()) return absl::FailedPreconditionError("manifest source already started");
  struct stat st {};
  if (stat(options_.dir.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("--manifests ", options_.dir, ": ", std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--manifests ", options_.dir, ": not a directory"));
  }
  UniqueFd inotify(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify.valid()) {
    return absl::InternalError(absl::StrCat("inotify_init1: ", std::strerror(errno)));
  }
  if (inotify_add_watch(inotify.get(), options_.dir.c_str(), kWatchMask) < 0) {
    return absl::InternalError(
        absl::StrCat("inotify_add_watch ", options_.dir, ": ", std::strerror(errno)));
  }
  UniqueFd wake(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake.valid()) return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));

  if (absl::Status status = directory_.Rescan(); !status.ok()) return status;
  inotify_ = std::move(inotify);
  wake_ = std::move(wake);
  PublishStatus();
  store_->MarkSynced(options_.source_name);
  const ManifestStats s = stats();
  spdlog::info("manifests {}: synced: {} objects from {} files, {} invalid objects, {} bad files",
               options_.dir, s.objects, s.files, s.objects_invalid, s.files_failed);
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void ManifestSource::Stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  // eventfd writes of 8 bytes cannot be short; a failure would only mean it is already set.
  [[maybe_unused]] ssize_t n = write(wake_.get(), &one, sizeof(one));
  thread_.join();
}

ManifestStats ManifestSource::stats() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  return stats_;
}

std::vector<ManifestError> ManifestSource::errors() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  return errors_;
}

void ManifestSource::PublishStatus() {
  std::lock_guard<std::mutex> lock(status_mu_);
  stats_ = directory_.stats();
  errors_ = directory_.errors();
}

ManifestSource::Wake ManifestSource::WaitFor(std::chrono::milliseconds timeout) {
  pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
  const int n = poll(fds, 2, static_cast<int>(timeout.count()));
  if (n < 0 && errno != EINTR) {
    spdlog::error("manifests {}: poll: {}", options_.dir, std::strerror(errno));
    return Wake::kStop;
  }
  if (n > 0 && (fds[1].revents & POLLIN)) return Wake::kStop;
  if (n > 0 && (fds[0].revents & POLLIN)) return Wake::kEvents;
  return Wake::kTimeout;
}

bool ManifestSource::Drain(Pending& pending) {
  alignas(inotify_event) char buf[16384];
  bool watching = true;
  while (true) {
    const ssize_t len = read(inotify_.get(), buf, sizeof(buf));
    if (len <= 0) break;  // EAGAIN: drained
    for (ssize_t off = 0; off < len;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      if (ev->mask & IN_Q_OVERFLOW) {
        pending.rescan = true;
        continue;
      }
      if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
        watching = false;
        continue;
      }
      const std::string name = ev->len > 0 ? ev->name : "";
      if (name.empty()) continue;
      if (IsManifestFileName(name)) {
        // A regular file announced by IN_CREATE is still being written; its IN_CLOSE_WRITE
        // follows. A symlink (or hard link) is complete as soon as it exists.
        if (ev->mask == IN_CREATE) {
          struct stat st {};
          const std::string path = absl::StrCat(options_.dir, "/", name);
          if (lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1) continue;
        }
        pending.names.insert(name);
      } else if (absl::StartsWith(name, "..")) {
        // ConfigMap volumes swap a "..data" symlink to update every file at once.
        pending.rescan = true;
      }
    }
  }
  return watching;
}

void ManifestSource::ApplyPending(Pending& pending) {
  if (pending.rescan) {
    if (absl::Status st = directory_.Rescan(); !st.ok()) {
      spdlog::error("manifests {}: {}; keeping every object", options_.dir, st.ToString());
    }
  } else {
    directory_.Refresh(pending.names);
  }
  pending = Pending{};
  PublishStatus();
}

void ManifestSource::Run() {
  using Clock = std::chrono::steady_clock;
  bool watching = true;
  while (true) {
    const Wake first = WaitFor(std::chrono::milliseconds(-1));
    if (first == Wake::kStop) return;
    if (first != Wake::kEvents) continue;

    Pending pending;
    watching = Drain(pending) && watching;
    const auto deadline = Clock::now() + options_.max_delay;
    while (true) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      const Wake w = WaitFor(std::min(options_.debounce, left));
      if (w == Wake::kStop) return;
      if (w == Wake::kTimeout) break;
      watching = Drain(pending) && watching;
    }
    ApplyPending(pending);

    if (!watching) {
      // The directory itself was removed or renamed. Deleting everything it defined would
      // take every standalone service down on a mistaken `mv`; keep the last state instead.
      spdlog::error(
          "manifests {}: the directory was removed or moved; no longer watching, "
          "keeping the objects it defined",
          options_.dir);
      while (WaitFor(std::chrono::milliseconds(-1)) != Wake::kStop) {
        Pending ignored;
        Drain(ignored);
      }
      return;
    }
  }
}

}  // namespace skiff::sources
