#include "agent/sources/manifest_directory.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <string_view>
#include <optional>
#include <type_traits>
#include <utility>

#include <spdlog/spdlog.h>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace skiff::sources {
namespace {

// A file's bytes plus kManifestPadding bytes after them, so JSON is parsed in place. One per
// thread, reused file after file, and never zero-filled: a std::string sized for the file
// wrote zeros over it first (a memset of every byte read, ~5% of a 100,000-Service load), and
// the parser then copied it into a padded buffer.
class ReadBuffer {
 public:
  char* data() { return data_.get(); }
  size_t size() const { return size_; }
  absl::string_view view() const { return absl::string_view(data_.get(), size_); }
  // Room for at least n bytes of text (plus the padding), keeping the first size() bytes.
  void Reserve(size_t n) {
    if (n + kManifestPadding <= capacity_) return;
    const size_t capacity = std::max(n + kManifestPadding, capacity_ * 2);
    std::unique_ptr<char[]> grown(new char[capacity]);
    if (size_ > 0) std::memcpy(grown.get(), data_.get(), size_);
    data_ = std::move(grown);
    capacity_ = capacity;
  }
  size_t room() const { return capacity_ - kManifestPadding - size_; }
  void set_size(size_t n) { size_ = n; }
  void Release() { *this = ReadBuffer(); }

 private:
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t size_ = 0;
};

thread_local ReadBuffer read_buffer;

enum class ReadResult { kOk, kMissing, kError };

// Follows symlinks (ConfigMap volumes are symlink farms); anything but a regular file at the
// end of the chain counts as missing.
ReadResult ReadRegularFile(const std::string& path, ReadBuffer* out, std::string* error) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) return ReadResult::kMissing;
    *error = std::strerror(errno);
    return ReadResult::kError;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return ReadResult::kMissing;
  }
  // Sized by fstat (appending 64 KiB chunks reallocated and copied a 1.5 MB file several
  // times: ~10% of a 100,000-Service load). A file that grows meanwhile is still read to its
  // end.
  out->set_size(0);
  out->Reserve(static_cast<size_t>(st.st_size) + 1);
  while (true) {
    if (out->room() == 0) out->Reserve(out->size() * 2);
    const ssize_t n = read(fd, out->data() + out->size(), out->room());
    if (n > 0) {
      out->set_size(out->size() + static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      *error = std::strerror(errno);
      close(fd);
      return ReadResult::kError;
    }
  }
  close(fd);
  return ReadResult::kOk;
}

// An unchanged object keeps the copy the file had: the store holds that one (or an equal one
// from another file), so re-reading a file after one edit does not make the directory hold
// a second copy of the objects that did not change.
bool SameValue(const model::SharedObject& kept, const model::Object& fresh) {
  if (kept.index() != fresh.index()) return false;
  return std::visit(
      [&](const auto& ptr) {
        using T = typename std::decay_t<decltype(ptr)>::element_type;
        return *ptr == std::get<std::remove_const_t<T>>(fresh);
      },
      kept);
}

bool KeyLess(const model::SharedObject& a, const model::SharedObject& b) {
  return model::KeyRefOf(a) < model::KeyRefOf(b);
}

// Sorts a file's objects by key; of several with one key the last in the file wins (as a map
// assigned in file order would have it).
void SortUnique(std::vector<model::SharedObject>& list) {
  if (!std::is_sorted(list.begin(), list.end(), KeyLess)) {
    std::stable_sort(list.begin(), list.end(), KeyLess);
  }
  size_t out = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    if (i + 1 < list.size() && model::KeyRefOf(list[i]) == model::KeyRefOf(list[i + 1])) continue;
    if (out != i) list[out] = std::move(list[i]);
    ++out;
  }
  list.resize(out);
}

}  // namespace

const model::SharedObject* ManifestDirectory::Find(const ObjectList& list,
                                                   model::ObjectKeyRef key) {
  auto it = std::lower_bound(list.begin(), list.end(), key,
                             [](const model::SharedObject& o, const model::ObjectKeyRef& k) {
                               return model::KeyRefOf(o) < k;
                             });
  return it != list.end() && model::KeyRefOf(*it) == key ? &*it : nullptr;
}

ManifestDirectory::ManifestDirectory(std::string dir, model::ObjectStore* store)
    : dir_(std::move(dir)), store_(store) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

std::string ManifestDirectory::DisplayPath(const std::string& name) const {
  return absl::StrCat(dir_, "/", name);
}

absl::Status ManifestDirectory::Rescan() {
  DIR* d = opendir(dir_.c_str());
  if (d == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("manifest directory ", dir_, ": ", std::strerror(errno)));
  }
  std::set<std::string> names;
  while (dirent* e = readdir(d)) {
    if (IsManifestFileName(e->d_name)) names.insert(e->d_name);
  }
  closedir(d);
  StageAll(std::vector<std::string>(names.begin(), names.end()));
  std::vector<std::string> gone;
  for (const auto& [name, state] : files_) {
    if (!names.count(name)) gone.push_back(name);
  }
  for (const std::string& name : gone) Remove(name);
  Commit();
  return absl::OkStatus();
}

void ManifestDirectory::Refresh(const std::set<std::string>& names) {
  std::vector<std::string> list;
  for (const std::string& name : names) {
    if (IsManifestFileName(name)) list.push_back(name);
  }
  StageAll(list);
  Commit();
}

void ManifestDirectory::StageAll(const std::vector<std::string>& names) {
  size_t staged = touched_.size();
  for (size_t i = 0; i < names.size(); ++i) {
    Settle(names[i], Load(names[i]));
    // A large batch (a directory filled at once, or the first read of a full one) hands its
    // upserts to the store as it goes: the reconciler programs the first files on the other
    // core while later ones are parsed. Deletes still wait for the batch's end (Commit).
    if (i + 1 < names.size() && touched_.size() - staged >= kUpsertsPerPartialCommit) {
      Commit(/*final=*/false);
      staged = touched_.size();
    }
  }
  // The buffers sized for this batch's largest file go back before the last commit, when the
  // reconciler's state grows most. The next batch (usually one edited file) sizes them anew.
  read_buffer.Release();
  ReleaseManifestParseBuffers();
}

ManifestDirectory::Loaded ManifestDirectory::Load(const std::string& name) const {
  Loaded out;
  ReadBuffer& contents = read_buffer;
  switch (ReadRegularFile(DisplayPath(name), &contents, &out.error)) {
    case ReadResult::kMissing:
      out.read = Loaded::Read::kMissing;
      return out;
    case ReadResult::kError:
      out.read = Loaded::Read::kError;
      return out;
    case ReadResult::kOk:
      break;
  }
  // absl's hash reads ~5x faster than std::hash (libstdc++'s murmur) on a 1.5 MB file; the
  // value never leaves this process, so its per-process seed does not matter.
  out.hash = absl::HashOf(absl::string_view(contents.data(), contents.size()));
  auto existing = files_.find(name);
  // inotify reports a rename and a close-write for one save, and a full rescan re-reads
  // everything: identical bytes change nothing and should log nothing.
  if (existing != files_.end() && existing->second.content_hash == out.hash) {
    out.unchanged = true;
    return out;
  }
  out.parsed = ParsePaddedManifestFile(DisplayPath(name), contents.view());
  static const ObjectList kNone;
  const ObjectList& before = existing != files_.end() ? existing->second.objects : kNone;
  out.next.reserve(out.parsed.objects.size());
  for (model::Object& obj : out.parsed.objects) {
    const model::SharedObject* old = Find(before, model::KeyRefOf(obj));
    out.next.push_back(old != nullptr && SameValue(*old, obj) ? *old
                                                              : model::Share(std::move(obj)));
  }
  out.parsed.objects.clear();
  SortUnique(out.next);
  return out;
}

void ManifestDirectory::Settle(const std::string& name, Loaded loaded) {
  switch (loaded.read) {
    case Loaded::Read::kMissing:
      Remove(name);
      return;
    case Loaded::Read::kError:
      // Unreadable is not gone (e.g. a permission slip): keep what the file defined.
      ++stats_.files_failed;
      spdlog::warn("{}: cannot read: {}; keeping the objects it defined", DisplayPath(name),
                   loaded.error);
      return;
    case Loaded::Read::kOk:
      break;
  }
  if (loaded.unchanged) return;

  ++stats_.files_read;
  ManifestParseResult& parsed = loaded.parsed;
  FileState& state = files_[name];
  state.content_hash = loaded.hash;
  state.errors = parsed.errors;
  for (const ManifestError& e : parsed.errors) spdlog::warn("{}", e.ToString());
  if (parsed.file_failed) {
    ++stats_.files_failed;
    stats_.files = files_.size();
    return;
  }

  ObjectList& next = loaded.next;
  std::set<model::ObjectKey> invalid;
  for (const ManifestError& e : parsed.errors) {
    if (e.key) invalid.insert(*e.key);
  }
  stats_.objects_invalid += invalid.size();
  for (const model::ObjectKey& key : invalid) {
    const model::SharedObject* old = Find(state.objects, key);
    if (old != nullptr && Find(next, key) == nullptr) {
      spdlog::warn("{}: {}: keeping the last good version", DisplayPath(name), key.ToString());
      next.insert(std::upper_bound(next.begin(), next.end(), *old, KeyLess), *old);
    }
  }
  // Unnamed invalid objects count too, though they have no previous version to keep.
  std::set<std::string> unnamed;
  for (const ManifestError& e : parsed.errors) {
    if (!e.key && !e.object.empty()) unnamed.insert(e.object);
  }
  stats_.objects_invalid += unnamed.size();

  for (const model::SharedObject& obj : state.objects) touched_.insert(model::KeyOf(obj));
  for (const model::SharedObject& obj : next) touched_.insert(model::KeyOf(obj));
  for (const model::SharedObject& obj : state.objects) {
    const model::ObjectKeyRef key = model::KeyRefOf(obj);
    if (Find(next, key) == nullptr) DropDefiner(key, name);
  }
  const std::string* file = &files_.find(name)->first;
  for (const model::SharedObject& obj : next) AddDefiner(obj, file);
  state.objects = std::move(next);
  stats_.files = files_.size();
  // One line per file read, not per object: a directory of thousands of objects must not
  // flood the log at start; per-object lines are at debug level.
  spdlog::info("{}: {} objects, {} invalid, {} other documents ignored", DisplayPath(name),
               state.objects.size(), invalid.size(), parsed.ignored_documents);
}

void ManifestDirectory::Remove(const std::string& name) {
  auto it = files_.find(name);
  if (it == files_.end()) return;
  const size_t defined = it->second.objects.size();
  for (const model::SharedObject& obj : it->second.objects) {
    DropDefiner(model::KeyRefOf(obj), name);  // before the erase: definers_ points at files_'s keys
    touched_.insert(model::KeyOf(obj));
  }
  files_.erase(it);
  stats_.files = files_.size();
  spdlog::info("{}: removed; it defined {} objects", DisplayPath(name), defined);
}

void ManifestDirectory::AddDefiner(const model::SharedObject& object, const std::string* file) {
  const model::ObjectKeyRef key = model::KeyRefOf(object);
  auto it = definers_.lower_bound(key);
  if (it == definers_.end() || ByKey::Ref(*it) != key) {
    definers_.insert(it, KeyDefiners{object, Definers{file}});
    return;
  }
  // The newest object becomes the anchor, so a changed object's old version is not kept.
  it->anchor = object;
  Definers& files = it->files;
  if (std::find(files.begin(), files.end(), file) == files.end()) files.push_back(file);
}

// Leaves an empty entry for Commit, which erases it once it knows the key is gone (its anchor
// keeps the key's name alive until then).
void ManifestDirectory::DropDefiner(model::ObjectKeyRef key, const std::string& name) {
  auto it = definers_.find(key);
  if (it == definers_.end()) return;
  Definers& files = it->files;
  files.erase(
      std::remove_if(files.begin(), files.end(), [&](const std::string* f) { return *f == name; }),
      files.end());
  // A key another file still defines anchors on that file's object, not on the dropped one.
  if (!files.empty()) {
    if (const model::SharedObject* kept = Find(files_.at(*files.front()).objects, key)) {
      it->anchor = *kept;
    }
  }
}

// The winner for a key some file defines: the last file by name.
model::SharedObject ManifestDirectory::Winner(const KeyDefiners& entry) const {
  const Definers& files = entry.files;
  const std::string& winner =
      **std::max_element(files.begin(), files.end(),
                         [](const std::string* a, const std::string* b) { return *a < *b; });
  const model::ObjectKeyRef key = ByKey::Ref(entry);
  if (files.size() > 1) {
    spdlog::warn("{} is defined in {} files; using {}", key.ToKey().ToString(), files.size(),
                 DisplayPath(winner));
  }
  return *Find(files_.at(winner).objects, key);
}

void ManifestDirectory::Commit(bool final) {
  // Upserts before deletes, and deletes only after every file of the batch was read: an object
  // that moved between files, or a file renamed within the directory, never disappears on the
  // way. A partial commit keeps the undefined keys for the batch's final one.
  std::vector<model::ObjectKey> gone;
  std::vector<model::SharedObject> upserts;
  absl::btree_set<model::ObjectKey> undefined;
  for (const model::ObjectKey& key : touched_) {
    auto it = definers_.find(key);
    if (it == definers_.end() || it->files.empty()) {
      if (!final) {
        undefined.insert(key);
      } else {
        if (it != definers_.end()) definers_.erase(it);
        gone.push_back(key);
      }
      continue;
    }
    upserts.push_back(Winner(*it));
  }
  touched_ = std::move(undefined);
  Push(std::move(upserts), gone);
}

void ManifestDirectory::Push(std::vector<model::SharedObject> upserts,
                             const std::vector<model::ObjectKey>& gone) {
  // One store change per commit: the reconciler wakes once for it, not once per object.
  const auto [applied, deleted] = store_->Commit(std::move(upserts), gone);
  stats_.upserts += applied;
  stats_.deletes += deleted;
  stats_.objects = definers_.size();
  if (applied + deleted > 0) {
    spdlog::info("manifests {}: {} objects applied, {} deleted", dir_, applied, deleted);
  }
}

std::vector<ManifestError> ManifestDirectory::errors() const {
  std::vector<ManifestError> out;
  for (const auto& [name, state] : files_) {
    out.insert(out.end(), state.errors.begin(), state.errors.end());
  }
  return out;
}

}  // namespace skiff::sources
