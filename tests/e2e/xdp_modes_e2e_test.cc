// --xdp modes of the real agent on node devices it can and cannot run XDP on (docs/north-south.md,
// "XDP acceleration"): a bridge has no native XDP, so --xdp=native stops the agent naming
// it and --xdp=best-effort falls back to tc with a warning naming it; a veth takes native XDP,
// a restart with --xdp=disabled detaches it, and --cleanup detaches it too. Each agent runs in
// a node namespace of its own (tests/e2e/topology.h) whose devices vanish with it.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/e2e/agent_env.h"
#include "tests/e2e/topology.h"
#include "tests/harness/privileged.h"

namespace skiff::e2e {
namespace {

class XdpModesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_PRIVILEGED();
    auto node = Node::Create();
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    const std::string n = "ip -n " + node_->netns() + " ";
    for (const std::string& cmd : {
             n + "link add xbr0 type bridge",
             n + "addr add 10.77.0.1/24 dev xbr0",
             n + "link set xbr0 up",
             n + "link add xve0 type veth peer name xve0p",
             n + "addr add 10.78.0.1/24 dev xve0",
             n + "link set xve0 up",
             n + "link set xve0p up",
         })
      ASSERT_TRUE(Sh(cmd).ok()) << cmd;
    env_ = std::make_unique<AgentEnv>(*node_, "xdp", SKIFF_AGENT_PATH);
  }

  // Waits until the (appended, all runs) log holds `text` at least `times` times.
  bool WaitForLog(const std::string& text, int times = 1) {
    for (int i = 0; i < 300; i++) {
      const std::string log = env_->Log();
      int n = 0;
      for (size_t p = log.find(text); p != std::string::npos; p = log.find(text, p + 1)) n++;
      if (n >= times) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  // `agentctl status` of the running agent (the node devices' rows: tc both ways, and XDP).
  std::string Status() {
    auto out = ShOut(std::string(SKIFF_AGENTCTL_PATH) + " --socket " + env_->api_socket() +
                     " status 2>&1");
    return out.ok() ? *out : out.status().ToString();
  }
  bool HasXdp(const std::string& dev) {
    auto out = ShOut("ip -n " + node_->netns() + " link show " + dev);
    return out.ok() && out->find(" xdp") != std::string::npos;
  }

  std::unique_ptr<Node> node_;
  std::unique_ptr<AgentEnv> env_;
};

TEST_F(XdpModesTest, NativeOnADeviceWithoutXdpStopsTheAgentNamingIt) {
  ASSERT_TRUE(env_->Start({"--devices", "xbr0", "--xdp", "native"}).ok());
  EXPECT_TRUE(WaitForLog("--xdp=native: cannot attach XDP to xbr0")) << env_->Log();
  EXPECT_NE(env_->Terminate(), 0);
  EXPECT_FALSE(HasXdp("xbr0"));
}

TEST_F(XdpModesTest, BestEffortFallsBackToTcWithAWarningNamingTheDevice) {
  ASSERT_TRUE(env_->Start({"--devices", "xbr0,xve0"}).ok());
  EXPECT_TRUE(WaitForLog("running")) << env_->Log();
  EXPECT_NE(env_->Log().find("--xdp=best-effort: no XDP on xbr0"), std::string::npos);
  EXPECT_NE(env_->Log().find("--xdp=best-effort: no XDP on xve0"), std::string::npos);  // veth
  EXPECT_NE(env_->Log().find("attached from-netdev/to-netdev to xbr0"), std::string::npos);
  EXPECT_FALSE(HasXdp("xbr0"));
  EXPECT_FALSE(HasXdp("xve0"));
  const std::string st = Status();
  EXPECT_NE(st.find("from_netdev"), std::string::npos) << st;
  EXPECT_NE(st.find("none (veth: tc only unless --xdp=native)"), std::string::npos) << st;
  EXPECT_EQ(st.find("xdp-native"), std::string::npos) << st;
  EXPECT_EQ(env_->Terminate(), 0);
}

TEST_F(XdpModesTest, NativeOnAVethAttachesAndDisabledOrCleanupDetaches) {
  ASSERT_TRUE(env_->Start({"--devices", "xve0", "--xdp", "native"}).ok());
  ASSERT_TRUE(WaitForLog("XDP native on xve0")) << env_->Log();
  EXPECT_TRUE(HasXdp("xve0"));
  ASSERT_TRUE(WaitForLog("running")) << env_->Log();
  const std::string st = Status();
  EXPECT_NE(st.find("xdp-native"), std::string::npos) << st;
  EXPECT_NE(st.find("from_netdev_xdp"), std::string::npos) << st;
  EXPECT_EQ(env_->Terminate(), 0);
  EXPECT_TRUE(HasXdp("xve0"));  // the kernel's attachment outlives the agent
  // Restarted with XDP off: the program left by the earlier run goes.
  ASSERT_TRUE(env_->Start({"--devices", "xve0", "--xdp", "disabled"}).ok());
  ASSERT_TRUE(WaitForLog("XDP disabled on xve0")) << env_->Log();
  EXPECT_FALSE(HasXdp("xve0"));
  EXPECT_EQ(env_->Terminate(), 0);
  // And --cleanup detaches it.
  ASSERT_TRUE(env_->Start({"--devices", "xve0", "--xdp", "native"}).ok());
  ASSERT_TRUE(WaitForLog("running", 3)) << env_->Log();
  EXPECT_EQ(env_->Terminate(), 0);
  ASSERT_TRUE(HasXdp("xve0"));
  ASSERT_TRUE(Sh("nsenter --net=/run/netns/" + node_->netns() + " " + SKIFF_AGENT_PATH +
                 " --cleanup --bpffs-root " + env_->bpffs_root() + " >/dev/null 2>&1")
                  .ok());
  EXPECT_FALSE(HasXdp("xve0"));
}

}  // namespace
}  // namespace skiff::e2e
