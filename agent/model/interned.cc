#include "agent/model/interned.h"

#include <mutex>

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

}  // namespace

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
