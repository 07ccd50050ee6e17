// --socket-lb and --cgroup-root checks (agent/loader/socket_lb.h); no root needed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "agent/loader/socket_lb.h"

namespace skiff::loader {
namespace {

TEST(SocketLbConfig, ParsesTheModes) {
  EXPECT_EQ(ParseSocketLb("enabled").value(), true);
  EXPECT_EQ(ParseSocketLb("disabled").value(), false);
  auto bad = ParseSocketLb("on");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--socket-lb"), std::string::npos);
}

TEST(SocketLbConfig, ParsesTheScopes) {
  EXPECT_EQ(ParseSocketLbScope("host").value(), false);
  EXPECT_EQ(ParseSocketLbScope("all").value(), true);
  auto bad = ParseSocketLbScope("pods");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--socket-lb-scope"), std::string::npos);
  EXPECT_NE(bad.status().message().find("'pods'"), std::string::npos);
}

TEST(SocketLbConfig, RefusesWhatIsNotACgroupV2DirectoryNamingTheFlag) {
  const auto tmp =
      std::filesystem::temp_directory_path() / ("skiff-cgroup-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(tmp);
  std::ofstream(tmp / "file") << "x";
  for (const std::string& path : {std::string("relative/dir"), tmp.string(),
                                  (tmp / "file").string(), (tmp / "missing").string()}) {
    absl::Status st = CheckCgroupV2Dir(path);
    EXPECT_FALSE(st.ok()) << path;
    EXPECT_NE(st.message().find("--cgroup-root"), std::string::npos) << st;
    EXPECT_NE(st.message().find(path), std::string::npos) << st;
  }
  EXPECT_NE(CheckCgroupV2Dir(tmp.string()).message().find("not a cgroup v2 directory"),
            std::string::npos);
  std::filesystem::remove_all(tmp);
}

TEST(SocketLbConfig, TheDefaultRootIsACgroupV2Directory) {
  auto root = DefaultCgroupRoot();
  if (!root.ok()) {
    // No cgroup2 mount on this machine: the error says what to do.
    EXPECT_NE(root.status().message().find("--socket-lb=disabled"), std::string::npos);
    return;
  }
  EXPECT_TRUE(CheckCgroupV2Dir(*root).ok()) << *root;
}

}  // namespace
}  // namespace skiff::loader
