// Standalone mode's "cluster": a directory of Kubernetes manifests, read once and then
// watched with inotify; every change reaches the ObjectStore within a second.
//
// Threads: Create() and Start() run on the caller's thread. Start() performs the first full
// read synchronously, marks the source synced in the store, then starts one watcher thread
// that owns the inotify fd and the per-file bookkeeping until Stop() (or the destructor) joins
// it. stats() and errors() may be called from any thread. The store is the only state shared
// with the rest of the agent, and it is thread-safe.
//
// Usage:
//   model::ObjectStore store;
//   auto source = ManifestSource::Create({.dir = "examples"}, &store);  // registers, unsynced
//   if (!source.ok()) ...;
//   if (auto st = (*source)->Start(); !st.ok()) ...;  // store.IsSynced("manifests") now true
//   ... store.WaitForChange(...) / store.Snapshot() on the reconcile thread ...
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/model/object_store.h"
#include "agent/sources/manifest_directory.h"
#include "agent/sources/unique_fd.h"

namespace skiff::sources {

class ManifestSource {
 public:
  struct Options {
    std::string dir;
    std::string source_name = "manifests";  // the store's sync-state name for this source
    // After an event, wait until the directory has been quiet this long (an editor's save is
    // several events), but never delay a change longer than max_delay.
    std::chrono::milliseconds debounce{50};
    std::chrono::milliseconds max_delay{300};
  };

  // Sets up the watch (before any read, so no change can slip between read and watch) and
  // registers the source in the store as not yet synced.
  static absl::StatusOr<std::unique_ptr<ManifestSource>> Create(Options options,
                                                                model::ObjectStore* store);
  ~ManifestSource();
  ManifestSource(const ManifestSource&) = delete;
  ManifestSource& operator=(const ManifestSource&) = delete;

  // First full read, then MarkSynced, then the watcher thread. Fails without marking the
  // source synced when the directory cannot be listed.
  absl::Status Start();
  void Stop();

  ManifestStats stats() const;
  std::vector<ManifestError> errors() const;  // from the last read of each file

 private:
  ManifestSource(Options options, model::ObjectStore* store, UniqueFd inotify, UniqueFd wake);

  struct Pending {
    std::set<std::string> names;
    bool rescan = false;
  };
  void Run();
  // Reads all queued inotify events into `pending`; false when the watch is gone.
  bool Drain(Pending& pending);
  // Waits up to `timeout` for inotify (true) or a stop request / timeout (false).
  enum class Wake { kEvents, kTimeout, kStop };
  Wake WaitFor(std::chrono::milliseconds timeout);
  void ApplyPending(Pending& pending);
  void PublishStatus();

  const Options options_;
  model::ObjectStore* const store_;
  UniqueFd inotify_;
  UniqueFd wake_;                // eventfd: Stop() makes the watcher thread return from poll()
  ManifestDirectory directory_;  // watcher thread only (after Start)
  std::thread thread_;

  mutable std::mutex status_mu_;
  ManifestStats stats_;
  std::vector<ManifestError> errors_;
};

}  // namespace skiff::sources
