// Flow events end to end: the real agent in a node namespace, real traffic from a pod, then
// the real agentctl binary (`agentctl flows -o json`) against the agent's --api-socket must
// show the translated flow with the client pod's and the Service's names, a connection to a
// Service without endpoints as DROPPED with its reason, and with --follow a flow made after
// the command started.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/e2e/agent_env.h"
#include "tests/e2e/manifests.h"
#include "tests/e2e/topology.h"
#include "tests/harness/privileged.h"

namespace skiff::e2e {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr char kVip[] = "10.96.0.10";
constexpr char kEmptyVip[] = "10.96.0.20";
const std::map<std::string, std::string> kPods = {{"client", "10.244.1.10"},
                                                  {"web-1", "10.244.1.11"}};

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<Json> JsonLines(const std::string& text) {
  std::vector<Json> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    Json j = Json::parse(std::string(line), nullptr, false);
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

class FlowsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_PRIVILEGED();
    auto node = Node::Create();
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    for (const auto& [name, ip] : kPods) {
      auto pod = node_->AddPod(name, ip);
      ASSERT_TRUE(pod.ok()) << pod.status();
      pods_[name] = *pod;
    }
    server_ = std::make_unique<PodServer>(pods_["web-1"], std::vector<uint16_t>{8080},
                                          std::vector<uint16_t>{});
    ASSERT_TRUE(server_->status().ok()) << server_->status();
    env_ = std::make_unique<AgentEnv>(*node_, "flows", SKIFF_AGENT_PATH);
    std::string yaml =
        ServiceYaml("web", kVip, {{"http", 80, "http", "TCP"}}) + "---\n" +
        EndpointSliceYaml("web-abc", "web", {{"10.244.1.11"}}, {{"http", 8080, "TCP"}}) + "---\n" +
        ServiceYaml("empty", kEmptyVip, {{"http", 80, "http", "TCP"}});
    for (const auto& [name, ip] : kPods) yaml += "---\n" + PodYaml(name, ip);
    env_->Write("web.yaml", yaml);
    ASSERT_TRUE(env_->Start().ok());
  }

  void TearDown() override {
    if (follower_ > 0) {
      kill(follower_, SIGTERM);
      waitpid(follower_, nullptr, 0);
    }
    env_.reset();
    server_.reset();
    node_.reset();
  }

  std::string Cmd(const std::vector<std::string>& args) const {
    return absl::StrCat(SKIFF_AGENTCTL_PATH, " --socket ", env_->api_socket(), " flows ",
                        absl::StrJoin(args, " "));
  }

  // Runs `agentctl flows ARGS -o json`; the flows it printed, and its exit code.
  std::vector<Json> Flows(const std::vector<std::string>& args, int* code = nullptr) {
    std::string out = (env_->dir() / "flows.out").string();
    int rc = std::system(absl::StrCat(Cmd(args), " -o json >", out, " 2>&1").c_str());
    if (code) *code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    return JsonLines(ReadAll(out));
  }

  // Polls until a flow satisfies `pred` (events reach the agent asynchronously).
  std::optional<Json> WaitFlow(const std::vector<std::string>& args,
                               const std::function<bool(const Json&)>& pred) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& j : Flows(args))
        if (pred(j)) return j;
      std::this_thread::sleep_for(100ms);
    }
    return std::nullopt;
  }

  bool WaitServing() {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!TcpHello(pods_["client"].netns, kVip, 80, 300).empty()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  std::unique_ptr<Node> node_;
  std::map<std::string, Pod> pods_;
  std::unique_ptr<PodServer> server_;
  std::unique_ptr<AgentEnv> env_;
  pid_t follower_ = -1;
};

bool IsWebTranslation(const Json& j) {
  return j.value("verdict", "") == "TRANSLATED" &&
         j["IP"].value("destination", "") == "10.244.1.11" &&
         j["l4"]["TCP"].value("destination_port", 0) == 8080;
}

TEST_F(FlowsE2E, TranslatedFlowNamesThePodAndTheService) {
  ASSERT_TRUE(WaitServing()) << "service never served";
  auto f = WaitFlow({"--last", "100", "--verdict", "TRANSLATED", "--ip", kVip}, IsWebTranslation);
  ASSERT_TRUE(f) << "no translated flow to the backend; last output:\n"
                 << ReadAll((env_->dir() / "flows.out").string()) << env_->Log();
  const Json& j = *f;
  EXPECT_EQ(j["IP"]["source"], "10.244.1.10");
  EXPECT_EQ(j["IP"]["ipVersion"], "IPv4");
  EXPECT_EQ(j["source"]["namespace"], "default");
  EXPECT_EQ(j["source"]["pod_name"], "client");
  EXPECT_EQ(j["destination"]["pod_name"], "web-1");
  EXPECT_EQ(j["destination_service"]["name"], "web");
  EXPECT_EQ(j["destination_service"]["namespace"], "default");
  EXPECT_EQ(j["skiff"]["frontend"], "10.96.0.10:80");
  EXPECT_EQ(j["node_name"], "node-1");
  EXPECT_EQ(j["l4"]["TCP"]["flags"]["SYN"], true);
  // The closing of that short connection follows as a FORWARDED trace_close.
  EXPECT_TRUE(WaitFlow({"--last", "100", "--pod", "default/client", "--type", "trace_close"},
                       [](const Json& x) { return x.value("verdict", "") == "FORWARDED"; }));
  // A filter that matches nothing prints nothing; a bad one is refused, naming the field.
  EXPECT_TRUE(Flows({"--ip", "192.0.2.0/24"}).empty());
  int code = 0;
  Flows({"--ip", "10.0.0.300"}, &code);
  EXPECT_NE(code, 0);
  EXPECT_NE(ReadAll((env_->dir() / "flows.out").string()).find("filter.ip"), std::string::npos);
}

TEST_F(FlowsE2E, ServiceWithoutEndpointsIsDroppedWithItsReason) {
  ASSERT_TRUE(WaitServing()) << "service never served";
  std::string err;
  EXPECT_TRUE(TcpHello(pods_["client"].netns, kEmptyVip, 80, 1000, &err).empty());
  auto f = WaitFlow({"--verdict", "DROPPED", "--service", "default/empty"},
                    [](const Json& x) { return true; });
  ASSERT_TRUE(f) << "no drop for default/empty; last output:\n"
                 << ReadAll((env_->dir() / "flows.out").string()) << env_->Log();
  EXPECT_EQ((*f)["drop_reason_desc"], "NO_SERVICE_BACKEND");
  EXPECT_EQ((*f)["IP"]["destination"], kEmptyVip);
  EXPECT_EQ((*f)["source"]["pod_name"], "client");
  EXPECT_EQ((*f)["destination_service"]["name"], "empty");
  EXPECT_EQ((*f)["event_type"]["type"], 1);
}

TEST_F(FlowsE2E, FollowStreamsAFlowThatHappensLater) {
  ASSERT_TRUE(WaitServing()) << "service never served";
  std::string started = absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", absl::Now(), absl::UTCTimeZone());
  std::string out = (env_->dir() / "follow.out").string();
  follower_ = fork();
  ASSERT_GE(follower_, 0);
  if (follower_ == 0) {
    std::string cmd = absl::StrCat(
        "exec ", Cmd({"--follow", "--verdict", "TRANSLATED", "-o", "json"}), " >", out, " 2>&1");
    execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    _exit(127);
  }
  // New connections until one made after the follower started shows up in its output.
  auto deadline = std::chrono::steady_clock::now() + 15s;
  bool seen = false;
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    TcpHello(pods_["client"].netns, kVip, 80, 500);
    std::this_thread::sleep_for(200ms);
    for (const auto& j : JsonLines(ReadAll(out)))
      if (IsWebTranslation(j) && j.value("time", "") > started) seen = true;
  }
  EXPECT_TRUE(seen) << "follower printed:\n" << ReadAll(out);
  int status = 0;
  EXPECT_EQ(waitpid(follower_, &status, WNOHANG), 0) << "the follower exited early";
}

}  // namespace
}  // namespace skiff::e2e
