// The agent's view of the cluster: every typed object the sources delivered, keyed by
// (kind, namespace, name), plus whether each source has completed its first full read.
//
// Threads: sources call AddSource/Upsert/Delete/MarkSynced from their own threads (the
// manifest watcher thread, later the Kubernetes watch threads); the reconcile loop calls
// Snapshot()/WaitForChange() from its thread. All members are guarded by one mutex; readers
// work on an immutable ObjectSnapshot so ComputeDesiredState never holds the lock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/model/objects.h"
#include "agent/model/persistent_map.h"

namespace skiff::model {

// Persistent (persistent_map.h): a snapshot shares the store's maps, so taking one is O(1) and
// the store's next change copies only the path to the changed key.
template <typename T>
using ObjectMap = PersistentMap<NamespacedName, std::shared_ptr<const T>>;

// A consistent copy of the store at one generation. Objects are shared, never copied; so are
// the maps holding them.
struct ObjectSnapshot {
  uint64_t generation = 0;
  // When this generation was made (a source delivered a change): where the sync-latency
  // metric starts counting.
  std::chrono::steady_clock::time_point changed_at{};
  // True once at least one source is registered and every registered source has completed
  // its first full read. Until then, a missing object may just not have arrived yet, so the
  // reconciler must not delete anything.
  bool synced = false;
  ObjectMap<Namespace> namespaces;
  ObjectMap<Node> nodes;
  ObjectMap<Pod> pods;
  ObjectMap<Service> services;
  ObjectMap<EndpointSlice> endpoint_slices;
  ObjectMap<NetworkPolicy> network_policies;

  size_t size() const;
  // Lookups return nullptr when absent.
  const Service* FindService(const NamespacedName& id) const;
  const EndpointSlice* FindEndpointSlice(const NamespacedName& id) const;
  bool Contains(const ObjectKey& key) const;
};

class ObjectStore {
 public:
  ObjectStore();
  ~ObjectStore();
  ObjectStore(const ObjectStore&) = delete;
  ObjectStore& operator=(const ObjectStore&) = delete;

  // A source registers before it delivers anything, so the store is not "synced" while a
  // registered source is still reading. Registering again resets that source to unsynced.
  void AddSource(absl::string_view source);
  void MarkSynced(absl::string_view source);
  bool IsSynced(absl::string_view source) const;
  bool AllSynced() const;
  // Every registered source and whether it has completed its first full read.
  std::map<std::string, bool> Sources() const;

  // Both return whether the store changed; an identical upsert does not bump the generation,
  // so a source may re-deliver freely (e.g. after a relist) without waking the reconciler.
  bool Upsert(Object object);
  bool Delete(const ObjectKey& key);
  // Upserts then deletes as one change: one generation and one wake-up for a whole file or
  // list page, so the reconciler is not woken (and the store not locked) once per object.
  // Returns how many upserts and deletes changed something.
  std::pair<size_t, size_t> Commit(std::vector<Object> upserts,
                                   const std::vector<ObjectKey>& deletes);
  // The same with objects already shared (Share()): the store keeps the caller's copy, so a
  // source that keeps its objects too (the manifest directory) does not hold a second one.
  std::pair<size_t, size_t> Commit(std::vector<SharedObject> upserts,
                                   const std::vector<ObjectKey>& deletes);

  std::optional<Object> Get(const ObjectKey& key) const;
  ObjectSnapshot Snapshot() const;
  // The same, plus the keys upserted or deleted after generation `since` (each once, in key
  // order), consistent with the snapshot. `changed` is nullopt when the store cannot tell:
  // `since` predates its change journal, or a source's sync state changed since (the
  // reconciler then recomputes everything). For the one incremental consumer (the reconcile
  // loop): journal entries up to `since` are dropped, as that consumer has seen them.
  ObjectSnapshot Snapshot(uint64_t since, std::optional<std::vector<ObjectKey>>* changed);
  uint64_t generation() const;

  // Blocks until generation() > seen or the timeout passes; returns the current generation.
  // Sync-state changes count as changes, so a reconciler waiting here wakes on MarkSynced.
  uint64_t WaitForChange(uint64_t seen, std::chrono::milliseconds timeout) const;

  // An eventfd that turns readable when the store changes, for a poll() loop (the agent's
  // main loop wakes on it instead of polling); AckChange() re-arms it. Signalled once per
  // burst of changes, not once per change. -1 if eventfd failed (callers then poll).
  int change_fd() const { return change_fd_; }
  void AckChange();

 private:
  bool AllSyncedLocked() const;
  void BumpLocked();

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  bool UpsertLocked(const ObjectKey& key, SharedObject object);
  bool DeleteLocked(const ObjectKey& key);
  void JournalLocked(const ObjectKey& key);
  void ResetJournalLocked();

  int change_fd_ = -1;
  bool change_signalled_ = false;        // under mu_
  ObjectSnapshot objects_;               // generation/synced kept current under mu_
  std::map<std::string, bool> sources_;  // source name -> synced
  // Changes by generation, for Snapshot(since, ...): complete for generations after
  // journal_floor_. Bounded: past kMaxJournal entries it is dropped and the floor raised.
  static constexpr size_t kMaxJournal = 1 << 16;
  std::vector<std::pair<uint64_t, ObjectKey>> journal_;
  uint64_t journal_floor_ = 0;
};

}  // namespace skiff::model
