// The in-process agentctl fixture: the real API server on a Unix socket in a private
// directory, over a fake core that `Scene` fills, and Run() calling the real CLI
// (RunAgentctl) with captured output. Shared by the agentctl tests.
#pragma once

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "agent/api/server.h"
#include "cli/commands.h"
#include "tests/unit/api_scene.h"

namespace skiff::cli::testing {

struct Result {
  int code;
  std::string out, err;
};

template <typename Core, typename Scene>
class AgentctlFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    scene_.Build(core_);
    dir_ = std::filesystem::temp_directory_path() / api::testing::UniqueDir("skiff-ctl-");
    socket_ = (dir_ / "agent.sock").string();
    auto s = api::ApiServer::Start({.socket_path = socket_}, &core_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // `agentctl [--socket S] args...`; without the socket flag agentctl uses its default.
  Result Run(std::vector<std::string> args, bool with_socket = true) {
    args.insert(args.begin(), "agentctl");
    if (with_socket) args.insert(args.begin() + 1, {"--socket", socket_});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    std::ostringstream out, err;
    int code = RunAgentctl(static_cast<int>(argv.size()), argv.data(), out, err);
    return {code, out.str(), err.str()};
  }

  Core core_;
  Scene scene_;
  std::filesystem::path dir_;
  std::string socket_;
  std::unique_ptr<api::ApiServer> server_;
};

}  // namespace skiff::cli::testing
