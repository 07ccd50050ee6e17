// The bookkeeping half of the manifest source: which file defines which objects, and how a
// re-read file turns into upserts and deletes in the store. No inotify and no threads here,
// so the "last good version stays" rules are unit-tested without timing.
//
// Threads: not thread-safe; one thread (ManifestSource's watcher thread, or a test) owns it.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "agent/model/object_store.h"
#include "agent/sources/manifest_parse.h"

namespace skiff::sources {

struct ManifestStats {
  uint64_t files_read = 0;       // parses attempted (unchanged files are not re-read)
  uint64_t files_failed = 0;     // whole file unreadable or not YAML/JSON
  uint64_t objects_invalid = 0;  // objects rejected by validation
  uint64_t upserts = 0;          // store changes made
  uint64_t deletes = 0;
  size_t files = 0;    // manifest files currently known
  size_t objects = 0;  // objects currently in force from this directory
};

class ManifestDirectory {
 public:
  // `dir` is used as given in error messages ("examples/bad.yaml: ...").
  ManifestDirectory(std::string dir, model::ObjectStore* store);

  // Reads every manifest file and forgets files that are gone. Fails (changing nothing for
  // files it could not see) only when the directory itself cannot be listed.
  absl::Status Rescan();
  // Re-reads files by name (relative to the directory) as one batch; missing ones are
  // removed. The store sees the batch's upserts first, then its deletes.
  void Refresh(const std::set<std::string>& names);
  void Refresh(const std::string& name) { Refresh(std::set<std::string>{name}); }

  const ManifestStats& stats() const { return stats_; }
  // The errors of the last read of every file still present, in file order.
  std::vector<ManifestError> errors() const;

 private:
  // A file's objects sorted by key (model::KeyRefOf), keys unique. The key is read from the
  // object rather than kept beside it: 24 bytes an object instead of a 72-byte B-tree slot
  // holding a 48-byte ObjectKey copy (200,000 objects at 100,000 Services).
  using ObjectList = std::vector<model::SharedObject>;
  struct FileState {
    size_t content_hash = 0;
    // In force from this file; shared with the store (one copy of each object between them).
    ObjectList objects;
    std::vector<ManifestError> errors;
  };

  // A file read and decoded, its objects keyed and shared (reusing the copy the file had for
  // unchanged ones): everything of a re-read that does not change the directory's state.
  struct Loaded {
    enum class Read { kOk, kMissing, kError } read = Read::kOk;
    std::string error;           // kError: why the file could not be read
    size_t hash = 0;             // kOk: of the contents
    bool unchanged = false;      // kOk: the same bytes as the last read; nothing else is set
    ManifestParseResult parsed;  // its objects moved into `next`
    ObjectList next;             // sorted and unique as FileState::objects
  };
  // Load only reads the directory's state; Settle then applies one Loaded. StageAll loads and
  // settles a batch of files in name order, committing upserts every
  // kUpsertsPerPartialCommit touched keys (a large batch is programmed while it is read).
  static constexpr size_t kUpsertsPerPartialCommit = 1024;
  Loaded Load(const std::string& name) const;
  // StageAll/Settle/Remove update the per-file state and collect touched keys; Commit pushes
  // the winner for each touched key (the last file by name that defines it) to the store, or
  // deletes the key when no file defines it any more; a partial commit (final = false) pushes
  // only the winners, keeping the undefined keys for the batch's final commit.
  void StageAll(const std::vector<std::string>& names);
  void Settle(const std::string& name, Loaded loaded);
  void Remove(const std::string& name);
  void Commit(bool final = true);
  std::string DisplayPath(const std::string& name) const;

  std::string dir_;
  model::ObjectStore* store_;
  std::map<std::string, FileState> files_;
  // Which files define each key: pointers to files_'s keys (stable while the file is known),
  // nearly always exactly one, so stored inline. An entry is keyed by `anchor`, one of the
  // key's objects (the last one a file settled with), instead of by an ObjectKey copy: the
  // anchor keeps the viewed name alive, and every object it may be replaced by has the same
  // key, so the set's order holds. Both members change in place (hence mutable).
  using Definers = absl::InlinedVector<const std::string*, 1>;
  struct KeyDefiners {
    mutable model::SharedObject anchor;
    mutable Definers files;
  };
  struct ByKey {
    using is_transparent = void;
    static model::ObjectKeyRef Ref(const KeyDefiners& d) { return model::KeyRefOf(d.anchor); }
    static model::ObjectKeyRef Ref(const model::ObjectKeyRef& k) { return k; }
    static model::ObjectKeyRef Ref(const model::ObjectKey& k) { return k; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Ref(a) < Ref(b);
    }
  };
  static const model::SharedObject* Find(const ObjectList& list, model::ObjectKeyRef key);
  model::SharedObject Winner(const KeyDefiners& entry) const;
  void Push(std::vector<model::SharedObject> upserts, const std::vector<model::ObjectKey>& gone);
  void AddDefiner(const model::SharedObject& object, const std::string* file);
  void DropDefiner(model::ObjectKeyRef key, const std::string& name);
  absl::btree_set<KeyDefiners, ByKey> definers_;
  absl::btree_set<model::ObjectKey> touched_;  // by the batch being staged
  ManifestStats stats_;
};

}  // namespace skiff::sources
