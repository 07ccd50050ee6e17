#include "agent/model/object_store.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <type_traits>
#include <utility>

namespace skiff::model {
namespace {

template <typename T>
ObjectMap<T>& MapFor(ObjectSnapshot& s) {
  if constexpr (std::is_same_v<T, Namespace>) return s.namespaces;
  if constexpr (std::is_same_v<T, Node>) return s.nodes;
  if constexpr (std::is_same_v<T, Pod>) return s.pods;
  if constexpr (std::is_same_v<T, Service>) return s.services;
  if constexpr (std::is_same_v<T, EndpointSlice>) return s.endpoint_slices;
  if constexpr (std::is_same_v<T, NetworkPolicy>) return s.network_policies;
}

// Calls fn(map) with the typed map for `kind`, whatever the alternative type.
template <typename Snapshot, typename Fn>
auto WithMap(Snapshot& s, ObjectKind kind, Fn&& fn) {
  switch (kind) {
    case ObjectKind::kNamespace:
      return fn(s.namespaces);
    case ObjectKind::kNode:
      return fn(s.nodes);
    case ObjectKind::kPod:
      return fn(s.pods);
    case ObjectKind::kService:
      return fn(s.services);
    case ObjectKind::kEndpointSlice:
      return fn(s.endpoint_slices);
    case ObjectKind::kNetworkPolicy:
      return fn(s.network_policies);
  }
  return fn(s.services);
}

}  // namespace

ObjectStore::ObjectStore() : change_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

ObjectStore::~ObjectStore() {
  if (change_fd_ >= 0) close(change_fd_);
}

void ObjectStore::AckChange() {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t value = 0;
  if (change_fd_ >= 0) [[maybe_unused]]
    ssize_t n = read(change_fd_, &value, sizeof(value));
  change_signalled_ = false;
}

size_t ObjectSnapshot::size() const {
  return namespaces.size() + nodes.size() + pods.size() + services.size() + endpoint_slices.size() +
         network_policies.size();
}

const Service* ObjectSnapshot::FindService(const NamespacedName& id) const {
  auto it = services.find(id);
  return it == services.end() ? nullptr : it->second.get();
}

const EndpointSlice* ObjectSnapshot::FindEndpointSlice(const NamespacedName& id) const {
  auto it = endpoint_slices.find(id);
  return it == endpoint_slices.end() ? nullptr : it->second.get();
}

bool ObjectSnapshot::Contains(const ObjectKey& key) const {
  return WithMap(*this, key.kind, [&](const auto& m) { return m.count(key.id) > 0; });
}

void ObjectStore::AddSource(absl::string_view source) {
  std::lock_guard<std::mutex> lock(mu_);
  sources_[std::string(source)] = false;
  BumpLocked();
  ResetJournalLocked();
}

void ObjectStore::MarkSynced(absl::string_view source) {
  std::lock_guard<std::mutex> lock(mu_);
  bool& synced = sources_[std::string(source)];
  if (synced) return;
  synced = true;
  BumpLocked();
  ResetJournalLocked();
}

bool ObjectStore::IsSynced(absl::string_view source) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sources_.find(std::string(source));
  return it != sources_.end() && it->second;
}

std::map<std::string, bool> ObjectStore::Sources() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sources_;
}

bool ObjectStore::AllSynced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return AllSyncedLocked();
}

bool ObjectStore::AllSyncedLocked() const {
  if (sources_.empty()) return false;
  for (const auto& [name, synced] : sources_) {
    if (!synced) return false;
  }
  return true;
}

bool ObjectStore::UpsertLocked(const ObjectKey& key, SharedObject object) {
  return std::visit(
      [&](auto& typed) {
        using T = typename std::decay_t<decltype(typed)>::element_type;
        auto& map = MapFor<std::remove_const_t<T>>(objects_);
        // A persistent map (persistent_map.h): the write copies only the nodes on the key's
        // path that a snapshot still shares.
        auto it = map.find(key.id);
        if (it != map.end() && (it->second == typed || *it->second == *typed)) return false;
        map.insert_or_assign(key.id, std::move(typed));
        return true;
      },
      object);
}

bool ObjectStore::DeleteLocked(const ObjectKey& key) {
  return WithMap(objects_, key.kind, [&](auto& m) { return m.erase(key.id) > 0; });
}

bool ObjectStore::Upsert(Object object) {
  const ObjectKey key = KeyOf(object);
  std::lock_guard<std::mutex> lock(mu_);
  if (!UpsertLocked(key, Share(std::move(object)))) return false;
  BumpLocked();
  JournalLocked(key);
  return true;
}

bool ObjectStore::Delete(const ObjectKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!DeleteLocked(key)) return false;
  BumpLocked();
  JournalLocked(key);
  return true;
}

std::pair<size_t, size_t> ObjectStore::Commit(std::vector<Object> upserts,
                                              const std::vector<ObjectKey>& deletes) {
  std::vector<SharedObject> shared;
  shared.reserve(upserts.size());
  for (Object& object : upserts) shared.push_back(Share(std::move(object)));
  upserts.clear();
  return Commit(std::move(shared), deletes);
}

std::pair<size_t, size_t> ObjectStore::Commit(std::vector<SharedObject> upserts,
                                              const std::vector<ObjectKey>& deletes) {
  // The changed keys for the journal, but only while they fit in it: a bigger change (a first
  // load of 200,000 objects) drops the journal anyway, and collecting its keys cost a copy of
  // each and a growing vector.
  std::vector<ObjectKey> changed;
  bool overflow = false;
  size_t upserted = 0, deleted = 0;
  std::lock_guard<std::mutex> lock(mu_);
  auto note = [&](ObjectKey key) {
    if (overflow || journal_.size() + changed.size() >= kMaxJournal) {
      overflow = true;
      changed.clear();
      return;
    }
    changed.push_back(std::move(key));
  };
  for (SharedObject& object : upserts) {
    ObjectKey key = KeyOf(object);
    if (UpsertLocked(key, std::move(object))) {
      ++upserted;
      note(std::move(key));
    }
  }
  for (const ObjectKey& key : deletes) {
    if (DeleteLocked(key)) {
      ++deleted;
      note(key);
    }
  }
  if (upserted + deleted == 0) return {0, 0};
  BumpLocked();
  if (overflow) {
    ResetJournalLocked();
  } else {
    for (const ObjectKey& key : changed) JournalLocked(key);
  }
  return {upserted, deleted};
}

void ObjectStore::JournalLocked(const ObjectKey& key) {
  if (journal_.size() >= kMaxJournal) {
    ResetJournalLocked();
    return;
  }
  journal_.emplace_back(objects_.generation, key);
}

// Whoever asks for changes since an earlier generation must recompute everything.
void ObjectStore::ResetJournalLocked() {
  journal_.clear();
  journal_.shrink_to_fit();
  journal_floor_ = objects_.generation;
}

ObjectSnapshot ObjectStore::Snapshot(uint64_t since,
                                     std::optional<std::vector<ObjectKey>>* changed) {
  std::lock_guard<std::mutex> lock(mu_);
  ObjectSnapshot copy = objects_;
  copy.synced = AllSyncedLocked();
  changed->reset();
  if (since >= journal_floor_ && since <= objects_.generation) {
    std::vector<ObjectKey> keys;
    for (const auto& [gen, key] : journal_) {
      if (gen > since) keys.push_back(key);
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    *changed = std::move(keys);
    journal_.erase(std::remove_if(journal_.begin(), journal_.end(),
                                  [&](const auto& entry) { return entry.first <= since; }),
                   journal_.end());
  }
  return copy;
}

std::optional<Object> ObjectStore::Get(const ObjectKey& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  return WithMap(objects_, key.kind, [&](const auto& m) -> std::optional<Object> {
    auto it = m.find(key.id);
    if (it == m.end()) return std::nullopt;
    return Object(*it->second);
  });
}

ObjectSnapshot ObjectStore::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  ObjectSnapshot copy = objects_;
  copy.synced = AllSyncedLocked();
  return copy;
}

uint64_t ObjectStore::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return objects_.generation;
}

uint64_t ObjectStore::WaitForChange(uint64_t seen, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, timeout, [&] { return objects_.generation > seen; });
  return objects_.generation;
}

void ObjectStore::BumpLocked() {
  ++objects_.generation;
  objects_.changed_at = std::chrono::steady_clock::now();
  changed_.notify_all();
  if (change_fd_ >= 0 && !change_signalled_) {
    const uint64_t one = 1;
    // An 8-byte eventfd write cannot be short; failing means the counter is already set.
    [[maybe_unused]] ssize_t n = write(change_fd_, &one, sizeof(one));
    change_signalled_ = true;
  }
}

}  // namespace skiff::model
