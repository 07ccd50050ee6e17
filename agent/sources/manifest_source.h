// Standalone mode's "cluster": a directory of Kubernetes manifests, read once and then
// watched with inotify; every change reaches the ObjectStore within a second.
//
// Threads: the constructor and Start() run on the caller's thread. Start() performs the first full
// read synchronously, marks the source synced in the store, then starts one watcher thread
// that owns the inotify fd and the per-file bookkeeping until Stop() (or the destructor) joins
// it. stats() and errors() may be called from any thread. The store is the only state shared
// with the rest of the agent, and it is thread-safe.
//
// Usage:
//   model::ObjectStore store;
//   ManifestSource manifests("examples", &store);      // registers "manifests", unsynced
//   if (auto st = manifests.Start(); !st.ok()) ...;    // store.IsSynced("manifests") now true
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
    // several events, all within a millisecond or so: vim's backup, write and rename), but
    // never delay a change longer than max_delay. Only complete files raise events
    // (IN_CLOSE_WRITE, IN_MOVED_TO, links), so this only coalesces; it was 50 ms, which was
    // most of the time from a file's rename to the map write (issue 8: one change ≤ 5 ms).
    std::chrono::milliseconds debounce{10};
    std::chrono::milliseconds max_delay{300};
  };

  // No I/O: registers the source in the store (not yet synced), so the reconciler knows to
  // wait for it even before Start().
  ManifestSource(Options options, model::ObjectStore* store);
  ManifestSource(std::string dir, model::ObjectStore* store);
  ~ManifestSource();  // Stop()
  ManifestSource(const ManifestSource&) = delete;
  ManifestSource& operator=(const ManifestSource&) = delete;

  // Sets up the inotify watch (before reading, so no change slips between read and watch),
  // reads the whole directory, marks the source synced, then starts the watcher thread.
  // Fails, leaving the source unsynced, when the directory is missing or cannot be watched.
  absl::Status Start();
  // Joins the watcher thread; prompt (an eventfd wakes it). Objects stay in the store.
  void Stop();

  ManifestStats stats() const;
  std::vector<ManifestError> errors() const;  // from the last read of each file

 private:
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
