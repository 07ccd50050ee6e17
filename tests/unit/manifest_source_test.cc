// The manifest directory source: which objects a file change upserts or deletes, that a bad
// file keeps the last good objects, and that the inotify watcher applies writes, renames and
// deletes within a second.
#include "agent/sources/manifest_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"

namespace skiff::sources {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string Service(const std::string& name, const std::string& ip, int port = 80) {
  return absl::StrCat("apiVersion: v1\nkind: Service\nmetadata: {name: ", name,
                      ", namespace: demo}\nspec: {clusterIP: ", ip, ", ports: [{port: ", port,
                      "}]}\n");
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "skiff-manifests-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  // Writes in place (truncate + write + close), as `kubectl ... > file` or `cat >` would.
  void Write(const std::string& name, const std::string& contents) const {
    std::ofstream(fs::path(path_) / name) << contents;
  }

 private:
  std::string path_;
};

class ManifestDirectoryTest : public ::testing::Test {
 protected:
  int Port(const std::string& name) {
    const model::Service* svc = store_.Snapshot().FindService({"demo", name});
    return svc == nullptr ? -1 : svc->spec.ports[0].port;
  }
  TempDir dir_;
  model::ObjectStore store_;
  ManifestDirectory md_{dir_.path(), &store_};
};

TEST_F(ManifestDirectoryTest, ReadsEveryManifestFileAndIgnoresOthers) {
  dir_.Write("a.yaml", Service("a", "10.96.0.1") + "---\n" + Service("b", "10.96.0.2"));
  dir_.Write("c.json",
             R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"c","namespace":"demo"},)"
             R"("spec":{"clusterIP":"10.96.0.3","ports":[{"port":80}]}})");
  dir_.Write("d.yml", Service("d", "10.96.0.4"));
  dir_.Write("notes.txt", Service("x", "10.96.0.9"));
  dir_.Write(".hidden.yaml", Service("y", "10.96.0.9"));
  ASSERT_TRUE(md_.Rescan().ok());
  EXPECT_EQ(store_.Snapshot().services.size(), 4u);
  EXPECT_EQ(md_.stats().files, 3u);
  EXPECT_EQ(md_.stats().objects, 4u);
}

TEST_F(ManifestDirectoryTest, ChangedFileUpsertsAndDropsWhatItNoLongerHas) {
  dir_.Write("a.yaml", Service("a", "10.96.0.1") + "---\n" + Service("b", "10.96.0.2"));
  ASSERT_TRUE(md_.Rescan().ok());
  dir_.Write("a.yaml", Service("a", "10.96.0.1", 81));
  md_.Refresh("a.yaml");
  EXPECT_EQ(Port("a"), 81);
  EXPECT_EQ(Port("b"), -1);
}

TEST_F(ManifestDirectoryTest, DeletedFileDeletesItsObjects) {
  dir_.Write("a.yaml", Service("a", "10.96.0.1"));
  dir_.Write("b.yaml", Service("b", "10.96.0.2"));
  ASSERT_TRUE(md_.Rescan().ok());
  fs::remove(fs::path(dir_.path()) / "a.yaml");
  ASSERT_TRUE(md_.Rescan().ok());
  EXPECT_EQ(Port("a"), -1);
  EXPECT_EQ(Port("b"), 80);
}

TEST_F(ManifestDirectoryTest, UnparseableFileKeepsEverythingItDefined) {
  dir_.Write("a.yaml", Service("a", "10.96.0.1") + "---\n" + Service("b", "10.96.0.2"));
  ASSERT_TRUE(md_.Rescan().ok());
  dir_.Write("a.yaml", "apiVersion: v1\nkind: [Service\n");
  md_.Refresh("a.yaml");
  EXPECT_EQ(Port("a"), 80);
  EXPECT_EQ(Port("b"), 80);
  EXPECT_EQ(md_.stats().files_failed, 1u);
  ASSERT_EQ(md_.errors().size(), 1u);
  EXPECT_THAT(md_.errors()[0].ToString(), HasSubstr("/a.yaml: line "));
  // Once fixed, the file rules again, including dropping what it no longer defines.
  dir_.Write("a.yaml", Service("a", "10.96.0.1", 82));
  md_.Refresh("a.yaml");
  EXPECT_EQ(Port("a"), 82);
  EXPECT_EQ(Port("b"), -1);
  EXPECT_TRUE(md_.errors().empty());
}

TEST_F(ManifestDirectoryTest, InvalidObjectKeepsItsLastGoodVersion) {
  dir_.Write("a.yaml", Service("a", "10.96.0.1") + "---\n" + Service("b", "10.96.0.2"));
  ASSERT_TRUE(md_.Rescan().ok());
  // a turns invalid, b changes: b's change applies, a stays as it was.
  dir_.Write("a.yaml", Service("a", "10.96.0.1", 70000) + "---\n" + Service("b", "10.96.0.2", 90));
  md_.Refresh("a.yaml");
  EXPECT_EQ(Port("a"), 80);
  EXPECT_EQ(Port("b"), 90);
  EXPECT_EQ(md_.stats().objects_invalid, 1u);
  ASSERT_EQ(md_.errors().size(), 1u);
  EXPECT_EQ(md_.errors()[0].ToString(),
            absl::StrCat(dir_.path(),
                         "/a.yaml: Service demo/a: spec.ports[0].port: 70000 is out of range "
                         "1-65535"));
  // A new object that is invalid from the start simply does not appear.
  dir_.Write("c.yaml", Service("c", "10.96.0.300"));
  md_.Refresh("c.yaml");
  EXPECT_EQ(Port("c"), -1);
}

TEST_F(ManifestDirectoryTest, ObjectDefinedInTwoFilesSurvivesRemovalOfOne) {
  dir_.Write("a.yaml", Service("s", "10.96.0.1", 80));
  dir_.Write("b.yaml", Service("s", "10.96.0.1", 81));
  ASSERT_TRUE(md_.Rescan().ok());
  EXPECT_EQ(Port("s"), 81);  // the last file by name wins
  fs::remove(fs::path(dir_.path()) / "b.yaml");
  ASSERT_TRUE(md_.Rescan().ok());
  EXPECT_EQ(Port("s"), 80);
  fs::remove(fs::path(dir_.path()) / "a.yaml");
  ASSERT_TRUE(md_.Rescan().ok());
  EXPECT_EQ(Port("s"), -1);
}

TEST_F(ManifestDirectoryTest, ObjectRepeatedInOneFileTakesItsLastDefinition) {
  dir_.Write("a.yaml", Service("t", "10.96.0.2") + "---\n" + Service("s", "10.96.0.1", 80) +
                           "---\n" + Service("a", "10.96.0.3") + "---\n" +
                           Service("s", "10.96.0.1", 81));
  ASSERT_TRUE(md_.Rescan().ok());
  EXPECT_EQ(Port("s"), 81);
  EXPECT_EQ(Port("t"), 80);
  EXPECT_EQ(Port("a"), 80);
  EXPECT_EQ(md_.stats().objects, 3u);
  dir_.Write("a.yaml", Service("s", "10.96.0.1", 82) + "---\n" + Service("s", "10.96.0.1", 80));
  md_.Refresh("a.yaml");
  EXPECT_EQ(Port("s"), 80);
  EXPECT_EQ(Port("t"), -1);
  EXPECT_EQ(md_.stats().objects, 1u);
}

TEST_F(ManifestDirectoryTest, LastFileByNameWinsWhateverOrderTheFilesArrivedIn) {
  dir_.Write("b.yaml", Service("s", "10.96.0.1", 81));
  ASSERT_TRUE(md_.Rescan().ok());
  dir_.Write("a.yaml", Service("s", "10.96.0.1", 80));  // read after b.yaml, sorts before it
  md_.Refresh("a.yaml");
  EXPECT_EQ(Port("s"), 81);
  dir_.Write("b.yaml", Service("s", "10.96.0.1", 82));
  md_.Refresh("b.yaml");
  EXPECT_EQ(Port("s"), 82);
  dir_.Write("b.yaml", Service("other", "10.96.0.2"));  // b.yaml stops defining s
  md_.Refresh("b.yaml");
  EXPECT_EQ(Port("s"), 80);
  EXPECT_EQ(md_.stats().objects, 2u);
}

TEST_F(ManifestDirectoryTest, MovesWithinABatchNeverDelete) {
  dir_.Write("a.yaml", Service("s", "10.96.0.1") + "---\n" + Service("t", "10.96.0.2"));
  ASSERT_TRUE(md_.Rescan().ok());
  // Service s moves from a.yaml to b.yaml; both files change in one batch.
  dir_.Write("a.yaml", Service("t", "10.96.0.2"));
  dir_.Write("b.yaml", Service("s", "10.96.0.1", 81));
  md_.Refresh(std::set<std::string>{"a.yaml", "b.yaml"});
  EXPECT_EQ(Port("s"), 81);
  // a.yaml renamed to z.yaml: the rename's two names arrive in one batch.
  fs::rename(fs::path(dir_.path()) / "a.yaml", fs::path(dir_.path()) / "z.yaml");
  md_.Refresh(std::set<std::string>{"a.yaml", "z.yaml"});
  EXPECT_EQ(Port("t"), 80);
  EXPECT_EQ(md_.stats().deletes, 0u);
  EXPECT_EQ(md_.stats().objects, 2u);
}

TEST_F(ManifestDirectoryTest, ManyFilesInOneBatchGiveTheSameResultAsOneByOne) {
  // A batch's files are applied in name order: what lands, which file wins
  // and the errors (in file order, naming file, object and field) match one file at a time.
  for (int i = 0; i < 12; ++i) {
    std::string body = absl::StrCat(Service(absl::StrCat("s", i), "10.96.1.1", 100 + i), "---\n",
                                    Service("shared", "10.96.0.1", 200 + i));
    if (i % 5 == 1) body += "---\n" + Service(absl::StrCat("bad", i), "10.96.0.2", 70000 + i);
    dir_.Write(absl::StrCat("f", i < 10 ? "0" : "", i, ".yaml"), body);
  }
  ASSERT_TRUE(md_.Rescan().ok());
  for (int i = 0; i < 12; ++i) EXPECT_EQ(Port(absl::StrCat("s", i)), 100 + i);
  EXPECT_EQ(Port("shared"), 211);  // f11.yaml sorts last
  EXPECT_EQ(md_.stats().objects, 13u);
  EXPECT_EQ(md_.stats().files_read, 12u);
  ASSERT_EQ(md_.errors().size(), 3u);
  for (int k = 0; k < 3; ++k) {
    const int i = 1 + 5 * k;
    EXPECT_EQ(md_.errors()[k].ToString(),
              absl::StrCat(dir_.path(), "/f", i < 10 ? "0" : "", i, ".yaml: Service demo/bad", i,
                           ": spec.ports[0].port: ", 70000 + i, " is out of range 1-65535"));
  }
  // Loaded one file at a time into a second store: the same objects.
  model::ObjectStore one_by_one;
  ManifestDirectory md(dir_.path(), &one_by_one);
  for (int i = 0; i < 12; ++i) md.Refresh(absl::StrCat("f", i < 10 ? "0" : "", i, ".yaml"));
  const model::ObjectSnapshot a = store_.Snapshot(), b = one_by_one.Snapshot();
  ASSERT_EQ(a.services.size(), b.services.size());
  for (const auto& [id, svc] : a.services) {
    const model::Service* other = b.FindService(id);
    ASSERT_NE(other, nullptr) << id.ToString();
    EXPECT_EQ(*svc, *other) << id.ToString();
  }
}

TEST_F(ManifestDirectoryTest, LargeBatchIsCommittedInPartsAndDeletesWaitForItsEnd) {
  // Files of 600 Services: the first ones are in the store before the last is read (the
  // reconciler programs them meanwhile), yet a Service moving from the first file to the
  // last, and a file's removal, delete nothing until the batch's end.
  auto file = [](int f, int port, int skip) {
    std::string body;
    for (int i = 0; i < 600; ++i) {
      if (i == skip) continue;
      absl::StrAppend(&body, body.empty() ? "" : "---\n",
                      Service(absl::StrCat("s", f, "-", i), "10.96.1.1", port));
    }
    return body;
  };
  dir_.Write("a.yaml", file(0, 100, -1) + "---\n" + Service("mover", "10.96.0.1", 80));
  dir_.Write("b.yaml", file(1, 100, -1));
  dir_.Write("c.yaml", file(2, 100, -1));
  const uint64_t before = store_.generation();
  ASSERT_TRUE(md_.Rescan().ok());
  EXPECT_EQ(store_.generation(), before + 2) << "a.yaml and b.yaml, then c.yaml";
  EXPECT_EQ(md_.stats().objects, 1801u);

  // One batch: a.yaml changes every port and loses "mover" and s0-7, b.yaml is deleted,
  // m.yaml is new and z.yaml takes "mover".
  dir_.Write("a.yaml", file(0, 110, 7));
  fs::remove(fs::path(dir_.path()) / "b.yaml");
  dir_.Write("m.yaml", file(3, 130, -1));
  dir_.Write("z.yaml", Service("mover", "10.96.0.1", 81));
  const uint64_t mid = store_.generation();
  md_.Refresh(std::set<std::string>{"a.yaml", "b.yaml", "m.yaml", "z.yaml"});
  EXPECT_EQ(store_.generation(), mid + 2) << "a.yaml's upserts, then the rest with the deletes";
  EXPECT_EQ(Port("mover"), 81);
  EXPECT_EQ(Port("s0-1"), 110);
  EXPECT_EQ(Port("s0-7"), -1);
  EXPECT_EQ(Port("s1-3"), -1);
  EXPECT_EQ(Port("s3-599"), 130);
  // Deleted: s0-7 and b.yaml's 600; "mover" was only ever upserted.
  EXPECT_EQ(md_.stats().deletes, 601u);
  EXPECT_EQ(md_.stats().objects, 1800u);
}

TEST_F(ManifestDirectoryTest, UnchangedFileIsNotReparsed) {
  dir_.Write("a.yaml", Service("a", "10.96.0.1"));
  ASSERT_TRUE(md_.Rescan().ok());
  const uint64_t gen = store_.generation();
  ASSERT_TRUE(md_.Rescan().ok());
  EXPECT_EQ(md_.stats().files_read, 1u);
  EXPECT_EQ(store_.generation(), gen);
}

TEST_F(ManifestDirectoryTest, MissingDirectoryIsAnErrorAndDeletesNothing) {
  dir_.Write("a.yaml", Service("a", "10.96.0.1"));
  ASSERT_TRUE(md_.Rescan().ok());
  ManifestDirectory gone(dir_.path() + "/nope", &store_);
  EXPECT_FALSE(gone.Rescan().ok());
  EXPECT_EQ(Port("a"), 80);
}

// ---- the watcher ----

constexpr auto kWithin = std::chrono::milliseconds(1000);

class ManifestSourceTest : public ::testing::Test {
 protected:
  void StartSource() {
    source_ = std::make_unique<ManifestSource>(dir_.path(), &store_);
    EXPECT_FALSE(store_.AllSynced());
    absl::Status st = source_->Start();
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_TRUE(store_.IsSynced("manifests"));
  }
  int Port(const std::string& name) {
    const model::Service* svc = store_.Snapshot().FindService({"demo", name});
    return svc == nullptr ? -1 : svc->spec.ports[0].port;
  }
  // Waits (on store changes, not sleeps) until Port(name) == want; false after `within`.
  bool WaitForPort(const std::string& name, int want, std::chrono::milliseconds within = kWithin) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    uint64_t gen = store_.generation();
    while (Port(name) != want) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      gen = store_.WaitForChange(gen, left);
    }
    return true;
  }
  // For state that changes without a store change (errors, counters): polls briefly.
  template <typename Pred>
  static bool Eventually(Pred pred, std::chrono::milliseconds within = kWithin) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  TempDir dir_;
  model::ObjectStore store_;
  std::unique_ptr<ManifestSource> source_;
};

TEST_F(ManifestSourceTest, InitialReadCompletesBeforeSynced) {
  dir_.Write("a.yaml", Service("a", "10.96.0.1"));
  StartSource();
  EXPECT_EQ(Port("a"), 80);  // already there when Start returns: no waiting
  EXPECT_EQ(source_->stats().objects, 1u);
}

TEST_F(ManifestSourceTest, StartFailsForMissingDirectoryAndStaysUnsynced) {
  ManifestSource source(dir_.path() + "/missing", &store_);
  absl::Status st = source.Start();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(st.message()), HasSubstr("/missing"));
  EXPECT_FALSE(store_.IsSynced("manifests"));
  dir_.Write("file.yaml", "");
  ManifestSource not_dir(dir_.path() + "/file.yaml", &store_);
  EXPECT_EQ(not_dir.Start().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ManifestSourceTest, WriteRenameAndDeleteApplyWithinASecond) {
  StartSource();
  // A plain write (IN_CREATE + IN_CLOSE_WRITE).
  dir_.Write("a.yaml", Service("a", "10.96.0.1"));
  EXPECT_TRUE(WaitForPort("a", 80));
  // An in-place rewrite.
  dir_.Write("a.yaml", Service("a", "10.96.0.1", 81));
  EXPECT_TRUE(WaitForPort("a", 81));
  // Atomic replace by rename from a non-manifest name (IN_MOVED_TO).
  dir_.Write("a.yaml.tmp", Service("a", "10.96.0.1", 82));
  fs::rename(Path("a.yaml.tmp"), Path("a.yaml"));
  EXPECT_TRUE(WaitForPort("a", 82));
  // Renamed away to a non-manifest name (IN_MOVED_FROM): its objects go.
  fs::rename(Path("a.yaml"), Path("a.yaml.bak"));
  EXPECT_TRUE(WaitForPort("a", -1));
  // Renamed into a manifest name from outside the directory.
  {
    TempDir other;
    other.Write("b.yaml", Service("b", "10.96.0.2"));
    fs::rename(fs::path(other.path()) / "b.yaml", Path("b.yaml"));
  }
  EXPECT_TRUE(WaitForPort("b", 80));
  // Deleted (IN_DELETE).
  fs::remove(Path("b.yaml"));
  EXPECT_TRUE(WaitForPort("b", -1));
}

TEST_F(ManifestSourceTest, SymlinkedFileIsRead) {
  TempDir target;
  target.Write("real.yaml", Service("l", "10.96.0.5"));
  StartSource();
  fs::create_symlink(fs::path(target.path()) / "real.yaml", Path("link.yaml"));
  EXPECT_TRUE(WaitForPort("l", 80));
}

TEST_F(ManifestSourceTest, BadFileKeepsLastGoodObjectAndIsReported) {
  dir_.Write("a.yaml", Service("a", "10.96.0.1"));
  dir_.Write("keep.yaml", Service("k", "10.96.0.2"));
  StartSource();
  // Broken YAML: nothing from a.yaml changes. Then a valid change elsewhere shows the
  // watcher processed the broken file (events are applied in order) without dropping a.
  dir_.Write("a.yaml", "kind: [\n");
  EXPECT_TRUE(Eventually([&] { return source_->stats().files_failed == 1; }));
  dir_.Write("keep.yaml", Service("k", "10.96.0.2", 81));
  EXPECT_TRUE(WaitForPort("k", 81));
  EXPECT_EQ(Port("a"), 80);
  ASSERT_EQ(source_->errors().size(), 1u);
  EXPECT_THAT(source_->errors()[0].ToString(),
              HasSubstr("/a.yaml: line 2, column 1: end of sequence flow not found"));

  // An invalid object: its last good version stays.
  dir_.Write("a.yaml", Service("a", "10.96.0.1", 70000));
  dir_.Write("keep.yaml", Service("k", "10.96.0.2", 82));
  EXPECT_TRUE(WaitForPort("k", 82));
  EXPECT_EQ(Port("a"), 80);
  // Fixed: applies.
  dir_.Write("a.yaml", Service("a", "10.96.0.1", 83));
  EXPECT_TRUE(WaitForPort("a", 83));
  // The status is published right after the batch's store writes.
  EXPECT_TRUE(Eventually([&] { return source_->errors().empty(); }));
}

TEST_F(ManifestSourceTest, StopIsPromptAndIdempotent) {
  StartSource();
  const auto start = std::chrono::steady_clock::now();
  source_->Stop();
  source_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
}

}  // namespace
}  // namespace skiff::sources
