#include "agent/model/ref_prefixes.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"

namespace skiff::model::ref_prefixes {
namespace {

// One allocation: the fields, then the prefix's characters. 17 bytes before them (kind and
// namespace as 4-byte ids, the size in one byte), so that a Deployment's prefix of up to 23
// characters takes a 48-byte malloc chunk, not 64.
struct Entry {
  std::atomic<uint32_t> refs{1};
  uint32_t id = 0;
  InternedId kind;
  InternedId namespace_;
  uint8_t size = 0;
  const char* chars() const { return reinterpret_cast<const char*>(&size + 1); }
  char* chars() { return reinterpret_cast<char*>(&size + 1); }
  std::string_view prefix() const { return std::string_view(chars(), size); }
};
constexpr size_t kHeader = offsetof(Entry, size) + 1;
constexpr size_t kPrefixMax = 255;

struct Key {
  const std::string* kind;  // interned: equal texts, equal pointers
  const std::string* namespace_;
  std::string_view prefix;
};
Key KeyOf(const Entry* e) { return Key{&e->kind.str(), &e->namespace_.str(), e->prefix()}; }

struct Hash {
  using is_transparent = void;
  size_t operator()(const Key& k) const { return absl::HashOf(k.kind, k.namespace_, k.prefix); }
  size_t operator()(const Entry* e) const { return (*this)(KeyOf(e)); }
};
struct Eq {
  using is_transparent = void;
  static bool Same(const Key& a, const Key& b) {
    return a.kind == b.kind && a.namespace_ == b.namespace_ && a.prefix == b.prefix;
  }
  bool operator()(const Entry* a, const Entry* b) const { return a == b; }
  bool operator()(const Entry* a, const Key& b) const { return Same(KeyOf(a), b); }
  bool operator()(const Key& a, const Entry* b) const { return Same(a, KeyOf(b)); }
};

// id -> entry, in chunks that never move (as InternedId's table), so Get reads without the
// lock.
constexpr uint32_t kChunkBits = 12;
constexpr uint32_t kChunkSize = 1u << kChunkBits;
constexpr uint32_t kChunks = 1u << (kIdBits - kChunkBits);

struct Pool {
  std::mutex mu;
  absl::flat_hash_set<Entry*, Hash, Eq> entries;  // under mu
  std::vector<uint32_t> free_ids;                 // under mu
  uint32_t next_id = 0;                           // under mu
  std::atomic<std::atomic<Entry*>*> chunks[kChunks] = {};

  std::atomic<Entry*>& Slot(uint32_t id) {
    return chunks[id >> kChunkBits].load(std::memory_order_acquire)[id & (kChunkSize - 1)];
  }
};

Pool& ThePool() {
  static Pool* pool = new Pool();  // never destroyed: references may outlive static teardown
  return *pool;
}

Entry* EntryOf(uint32_t id) { return ThePool().Slot(id).load(std::memory_order_acquire); }

}  // namespace

std::optional<uint32_t> Acquire(InternedString kind, InternedString namespace_,
                                std::string_view prefix) {
  Pool& p = ThePool();
  std::lock_guard<std::mutex> lock(p.mu);
  if (prefix.size() > kPrefixMax) return std::nullopt;
  auto it = p.entries.find(Key{&kind.str(), &namespace_.str(), prefix});
  if (it != p.entries.end()) {
    (*it)->refs.fetch_add(1, std::memory_order_relaxed);
    return (*it)->id;
  }
  uint32_t id;
  if (!p.free_ids.empty()) {
    id = p.free_ids.back();
    p.free_ids.pop_back();
  } else {
    if (p.next_id >= (1u << kIdBits)) return std::nullopt;
    id = p.next_id++;
    std::atomic<std::atomic<Entry*>*>& chunk = p.chunks[id >> kChunkBits];
    if (chunk.load(std::memory_order_relaxed) == nullptr) {
      chunk.store(new std::atomic<Entry*>[kChunkSize](), std::memory_order_release);
    }
  }
  void* raw = ::operator new(std::max(sizeof(Entry), kHeader + prefix.size()));
  Entry* e = new (raw) Entry{.id = id,
                             .kind = InternedId(kind),
                             .namespace_ = InternedId(namespace_),
                             .size = static_cast<uint8_t>(prefix.size())};
  if (!prefix.empty()) std::memcpy(e->chars(), prefix.data(), prefix.size());
  p.Slot(id).store(e, std::memory_order_release);
  p.entries.insert(e);
  return id;
}

void Ref(uint32_t id) { EntryOf(id)->refs.fetch_add(1, std::memory_order_relaxed); }

void Unref(uint32_t id) {
  Entry* e = EntryOf(id);
  // Not the last reference: no lock. The last is dropped under the lock, where Acquire cannot
  // hand the entry out again meanwhile.
  uint32_t refs = e->refs.load(std::memory_order_relaxed);
  while (refs > 1) {
    if (e->refs.compare_exchange_weak(refs, refs - 1, std::memory_order_acq_rel)) return;
  }
  Pool& p = ThePool();
  std::lock_guard<std::mutex> lock(p.mu);
  if (e->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  p.entries.erase(e);
  p.Slot(id).store(nullptr, std::memory_order_relaxed);
  p.free_ids.push_back(id);
  e->~Entry();
  ::operator delete(e);
}

Fields Get(uint32_t id) {
  const Entry* e = EntryOf(id);
  // The ids name the pool's texts (interned.h): these find them again, usually among the
  // thread's recent texts, without the pool's lock.
  return Fields{InternedString(e->kind.str()), InternedString(e->namespace_.str()), e->prefix()};
}

size_t Count() {
  Pool& p = ThePool();
  std::lock_guard<std::mutex> lock(p.mu);
  return p.entries.size();
}

}  // namespace skiff::model::ref_prefixes
