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
  Pool& pool = ThePool();
  std::lock_guard<std::mutex> lock(pool.mu);
  auto it = pool.texts.find(absl::string_view(text.data(), text.size()));
  if (it == pool.texts.end()) it = pool.texts.emplace(std::string(text)).first;
  return &*it;
}

size_t InternedString::PoolSize() {
  Pool& pool = ThePool();
  std::lock_guard<std::mutex> lock(pool.mu);
  return pool.texts.size();
}

}  // namespace skiff::model
