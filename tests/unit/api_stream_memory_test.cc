// A million-entry conntrack table streams through the API without the process's peak memory
// growing by more than a few MB: conntrack lists and map dumps never materialize the table.
// Measured as the growth of the peak RSS (VmHWM, reset through /proc/self/clear_refs) while
// an in-process client drains the stream — a functional bound, not a timing.
#include <grpcpp/grpcpp.h>
#include <malloc.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include <gtest/gtest.h>

#include "agent/api/server.h"
#include "skiff/v1/conntrack.grpc.pb.h"
#include "skiff/v1/maps.grpc.pb.h"
#include "tests/unit/api_scene.h"

namespace skiff::api {
namespace {

constexpr uint64_t kEntries = 1'000'000;
constexpr long kBoundKb = 8 * 1024;

long StatusKb(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field) + 1));
  return -1;
}

// Resets VmHWM to the current RSS; false when the kernel does not allow it.
bool ResetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return f.good();
}

class StreamMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& m = core_.ct().mutable_entries();
    skiff_ct_entry e{};
    e.expires = 2000;
    for (uint64_t i = 0; i < kEntries; i++) {
      skiff_ct4_key k{};
      k.saddr = htonl(0x0af40000 + static_cast<uint32_t>(i / 50000));
      k.daddr = testing::Ip("10.96.0.10");
      k.sport = htons(static_cast<uint16_t>(10000 + i % 50000));
      k.dport = htons(80);
      k.proto = IPPROTO_TCP;
      k.kind = SKIFF_CT_SERVICE;
      m.emplace_hint(m.end(), k, e);
    }
    ASSERT_EQ(m.size(), kEntries);
    dir_ = std::filesystem::temp_directory_path() / testing::UniqueDir("skiff-api-mem-");
    auto s = ApiServer::Start({.socket_path = (dir_ / "agent.sock").string()}, &core_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    // The client runs in this process too, so its buffers count against the bound: it
    // reads as agentctl does, without growing its window beyond the default.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    channel_ = grpc::CreateCustomChannel("unix:" + (dir_ / "agent.sock").string(),
                                         grpc::InsecureChannelCredentials(), args);
    // Warm up: the first call creates gRPC's threads and buffers, which are not per-entry.
    grpc::ClientContext ctx;
    v1::ListConntrackRequest req;
    req.set_limit(2000);
    auto r = v1::ConntrackService::NewStub(channel_)->ListConntrack(&ctx, req);
    v1::ListConntrackResponse b;
    while (r->Read(&b)) {
    }
    ASSERT_TRUE(r->Finish().ok());
    malloc_trim(0);
    if (!ResetPeakRss()) GTEST_SKIP() << "cannot reset VmHWM (/proc/self/clear_refs)";
    base_kb_ = StatusKb("VmHWM:");
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  testing::FakeCore core_{kEntries};
  std::filesystem::path dir_;
  std::unique_ptr<ApiServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  long base_kb_ = 0;
};

TEST_F(StreamMemoryTest, MillionEntryConntrackListStaysWithinFewMegabytes) {
  grpc::ClientContext ctx;
  auto r = v1::ConntrackService::NewStub(channel_)->ListConntrack(&ctx, {});
  v1::ListConntrackResponse b;
  uint64_t n = 0;
  while (r->Read(&b)) n += b.entries_size();
  ASSERT_TRUE(r->Finish().ok());
  EXPECT_EQ(n, kEntries);
  long growth = StatusKb("VmHWM:") - base_kb_;
  EXPECT_LT(growth, kBoundKb) << "peak RSS grew by " << growth << " kB streaming " << n
                              << " entries";
  std::cout << "peak RSS growth: " << growth << " kB for " << n << " entries\n";
}

TEST_F(StreamMemoryTest, MillionEntryMapDumpStaysWithinFewMegabytes) {
  grpc::ClientContext ctx;
  v1::DumpMapRequest req;
  req.set_name("skiff_ct4_global_v2");
  auto r = v1::MapService::NewStub(channel_)->DumpMap(&ctx, req);
  v1::DumpMapResponse b;
  uint64_t n = 0;
  while (r->Read(&b)) n += b.entries_size();
  ASSERT_TRUE(r->Finish().ok());
  EXPECT_EQ(n, kEntries);
  long growth = StatusKb("VmHWM:") - base_kb_;
  EXPECT_LT(growth, kBoundKb) << "peak RSS grew by " << growth << " kB dumping " << n << " entries";
  std::cout << "peak RSS growth: " << growth << " kB for " << n << " entries\n";
}

}  // namespace
}  // namespace skiff::api
