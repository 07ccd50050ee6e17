#include "agent/model/interned.h"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>

#include <cstdio>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_set.h"
#include "absl/strings/string_view.h"

namespace skiff::model {
namespace {

struct Pool {
  std::mutex mu;
  // node_hash_set: elements never move, so the pointers handed out stay valid.
  absl::node_hash_set<std::string> texts;
};

Pool& ThePool() {
  static Pool* pool = new Pool();  // never destroyed: objects may outlive static teardown
  return *pool;
}

// InternedId's table: id -> the pool's text, in chunks that never move, so a reader indexes it
// without the lock. 2^14 chunks of 2^12 ids: 64M distinct texts, far beyond any cluster's
// node count.
struct IdTable {
  static constexpr uint32_t kChunkBits = 12;
  static constexpr uint32_t kChunkSize = 1u << kChunkBits;
  static constexpr uint32_t kChunks = 1u << 14;
  IdTable() {
    const std::string* empty = &InternedString().str();  // id 0: the default value
    auto* first = new const std::string*[kChunkSize]();
    first[0] = empty;
    chunks[0].store(first, std::memory_order_release);
    ids.emplace(empty, 0);
  }
  std::mutex mu;
  absl::flat_hash_map<const std::string*, uint32_t> ids;  // under mu
  uint32_t next = 1;                                      // under mu
  std::atomic<const std::string**> chunks[kChunks] = {};
};

IdTable& TheIdTable() {
  static IdTable* table = new IdTable();  // never destroyed, as the pool
  return *table;
}

}  // namespace

uint32_t InternedId::IdOf(InternedString text) {
  // As Intern: the few texts a thread used last skip the lock.
  constexpr size_t kRecent = 8;
  thread_local std::pair<const std::string*, uint32_t> recent[kRecent] = {};
  thread_local size_t next_recent = 0;
  const std::string* ptr = &text.str();
  for (const auto& [r, id] : recent) {
    if (r == ptr) return id;
  }
  IdTable& t = TheIdTable();
  uint32_t id;
  {
    std::lock_guard<std::mutex> lock(t.mu);
    auto it = t.ids.find(ptr);
    if (it != t.ids.end()) {
      id = it->second;
    } else {
      id = t.next;
      const uint32_t c = id >> IdTable::kChunkBits;
      if (c >= IdTable::kChunks) {
        std::fprintf(stderr, "InternedId: more than %u distinct texts\n", t.next);
        std::abort();
      }
      const std::string** chunk = t.chunks[c].load(std::memory_order_relaxed);
      if (chunk == nullptr) {
        chunk = new const std::string*[IdTable::kChunkSize]();
        t.chunks[c].store(chunk, std::memory_order_release);
      }
      chunk[id & (IdTable::kChunkSize - 1)] = ptr;
      t.ids.emplace(ptr, id);
      ++t.next;
    }
  }
  recent[next_recent++ % kRecent] = {ptr, id};
  return id;
}

const std::string& InternedId::TextOf(uint32_t id) {
  if (id == 0) return InternedString().str();
  // An id is handed out after its slot is written, and reaches other threads through the
  // store's lock or the like; the chunk pointer is read with acquire all the same.
  const std::string** chunk =
      TheIdTable().chunks[id >> IdTable::kChunkBits].load(std::memory_order_acquire);
  return *chunk[id & (IdTable::kChunkSize - 1)];
}

size_t InternedId::Count() {
  IdTable& t = TheIdTable();
  std::lock_guard<std::mutex> lock(t.mu);
  return t.next;
}

const std::string& InternedString::Empty() {
  static const std::string* empty = Intern(std::string_view());
  return *empty;
}

const std::string* InternedString::Intern(std::string_view text) {
  // The few texts a thread interned last, checked before the pool's lock: a source decoding a
  // million endpoints repeats a handful of node names, so most calls skip the lock and the
  // hash lookup. (Pool entries are never freed, so the pointers stay valid.)
  constexpr size_t kRecent = 8;
  thread_local const std::string* recent[kRecent] = {};
  thread_local size_t next = 0;
  for (const std::string* r : recent) {
    if (r != nullptr && *r == text) return r;
  }
  const std::string* found;
  {
    Pool& pool = ThePool();
    std::lock_guard<std::mutex> lock(pool.mu);
    auto it = pool.texts.find(absl::string_view(text.data(), text.size()));
    if (it == pool.texts.end()) it = pool.texts.emplace(std::string(text)).first;
    found = &*it;
  }
  recent[next++ % kRecent] = found;
  return found;
}

size_t InternedString::PoolSize() {
  Pool& pool = ThePool();
  std::lock_guard<std::mutex> lock(pool.mu);
  return pool.texts.size();
}

}  // namespace skiff::model
