// The gRPC API against an in-process core over fake tables: every service, its error codes,
// the Unix socket's handling, and the health service. No root needed.
#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "agent/api/server.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "skiff/v1/conntrack.grpc.pb.h"
#include "skiff/v1/endpoints.grpc.pb.h"
#include "skiff/v1/maps.grpc.pb.h"
#include "skiff/v1/services.grpc.pb.h"
#include "skiff/v1/status.grpc.pb.h"
#include "agent/api/conntrack_filter.h"
#include "tests/unit/api_scene.h"

namespace skiff::api {
namespace {

using testing::AddFlow;
using testing::Ip;

class ApiServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scene_.Build(core_);
    dir_ = std::filesystem::temp_directory_path() / testing::UniqueDir("skiff-api-test-");
    socket_ = (dir_ / "run" / "agent.sock").string();
    auto s = ApiServer::Start({.socket_path = socket_}, &core_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    channel_ = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::vector<v1::ConntrackEntry> ListCt(const v1::ConntrackFilter& f, grpc::Status* st,
                                         uint64_t limit = 0) {
    v1::ListConntrackRequest req;
    *req.mutable_filter() = f;
    req.set_limit(limit);
    grpc::ClientContext ctx;
    auto r = v1::ConntrackService::NewStub(channel_)->ListConntrack(&ctx, req);
    std::vector<v1::ConntrackEntry> out;
    v1::ListConntrackResponse batch;
    while (r->Read(&batch))
      for (const auto& e : batch.entries()) out.push_back(e);
    *st = r->Finish();
    return out;
  }

  testing::FakeCore core_;
  testing::Scene scene_;
  std::filesystem::path dir_;
  std::string socket_;
  std::unique_ptr<ApiServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(ApiServicesTest, SocketIsPrivateAndItsDirectoryIsCreated) {
  struct stat st {};
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir_ / "run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(ApiServicesTest, LiveSocketIsNotTakenOverButStaleOneIsReplaced) {
  auto second = ApiServer::Start({.socket_path = socket_}, &core_);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsAlreadyExists(second.status())) << second.status();

  // A socket file nobody listens on (an agent that was killed) is replaced.
  server_.reset();
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);
  auto third = ApiServer::Start({.socket_path = socket_}, &core_);
  ASSERT_TRUE(third.ok()) << third.status();
  v1::GetStatusResponse r;
  grpc::ClientContext ctx;
  auto ch = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
  EXPECT_TRUE(v1::StatusService::NewStub(ch)->GetStatus(&ctx, {}, &r).ok());
}

TEST_F(ApiServicesTest, RegularFileAtSocketPathIsNotReplaced) {
  std::string path = (dir_ / "not-a-socket").string();
  { std::ofstream(path) << "keep me"; }
  auto s = ApiServer::Start({.socket_path = path}, &core_);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(s.status())) << s.status();
  EXPECT_TRUE(std::filesystem::is_regular_file(path));
}

TEST(ApiServerOptions, TcpNeedsTlsOrExplicitInsecure) {
  ServerOptions o{.socket_path = "/tmp/x.sock", .tcp_listen = "127.0.0.1:0"};
  auto st = ValidateServerOptions(o);
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_NE(st.message().find("--api-insecure"), std::string::npos) << st;
  o.insecure = true;
  EXPECT_TRUE(ValidateServerOptions(o).ok());
  o.insecure = false;
  o.tls_cert = "cert.pem";
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateServerOptions(o)));  // key missing
  o.tls_key = "key.pem";
  EXPECT_TRUE(ValidateServerOptions(o).ok());
  o.tcp_listen = "";
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateServerOptions(o)));  // TLS without a listener
}

TEST_F(ApiServicesTest, InsecureTcpListenerServesWhenAskedExplicitly) {
  server_.reset();
  auto s = ApiServer::Start({.socket_path = socket_, .tcp_listen = "127.0.0.1:0", .insecure = true},
                            &core_);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_GT((*s)->tcp_port(), 0);
  auto ch = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*s)->tcp_port()),
                                grpc::InsecureChannelCredentials());
  v1::GetStatusResponse r;
  grpc::ClientContext ctx;
  ASSERT_TRUE(v1::StatusService::NewStub(ch)->GetStatus(&ctx, {}, &r).ok());
  EXPECT_EQ(r.node_name(), "node-1");
}

TEST_F(ApiServicesTest, HealthIsServing) {
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  grpc::ClientContext ctx;
  auto st = grpc::health::v1::Health::NewStub(channel_)->Check(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(ApiServicesTest, StatusReportsSourcesProgramsAndMapFill) {
  v1::GetStatusResponse r;
  grpc::ClientContext ctx;
  ASSERT_TRUE(v1::StatusService::NewStub(channel_)->GetStatus(&ctx, {}, &r).ok());
  EXPECT_EQ(r.version(), "9.9.9");
  EXPECT_EQ(r.kernel(), "6.1.0-test");
  EXPECT_EQ(r.uptime_seconds(), 3725);
  EXPECT_TRUE(r.synced());
  ASSERT_EQ(r.sources_size(), 1);
  EXPECT_EQ(r.sources(0).name(), "manifests");
  EXPECT_EQ(r.frontends(), 3);
  ASSERT_EQ(r.programs_size(), 1);
  EXPECT_EQ(r.programs(0).interface(), "lxcweb1");
  std::map<std::string, v1::MapInfo> maps;
  for (const auto& m : r.maps()) maps[m.name()] = m;
  ASSERT_TRUE(maps.count("skiff_ct4_global_v2"));
  EXPECT_EQ(maps["skiff_ct4_global_v2"].entries(), 4u);    // two flows, two entries each
  EXPECT_EQ(maps["skiff_lb4_backends_v2"].entries(), 3u);  // web-1:8080, web-2:8080, web-1:5353
  // Slot 0 + 2 slots (web:80), slot 0 + 1 slot (web:53), slot 0 (empty:80).
  EXPECT_EQ(maps["skiff_lb4_services_v2"].entries(), 6u);
  EXPECT_DOUBLE_EQ(maps["skiff_lb4_backends_v2"].pressure(), 3.0 / 65536);
}

TEST_F(ApiServicesTest, ServicesShowFrontendsWithBackendsFromTheMaps) {
  v1::ListServicesResponse r;
  grpc::ClientContext ctx;
  ASSERT_TRUE(v1::ServiceService::NewStub(channel_)->ListServices(&ctx, {}, &r).ok());
  ASSERT_EQ(r.services_size(), 2);
  EXPECT_EQ(r.services(0).name(), "empty");
  const v1::Service& web = r.services(1);
  EXPECT_EQ(web.namespace_(), "default");
  ASSERT_EQ(web.frontends_size(), 2);
  const v1::Frontend& http = web.frontends(1);  // sorted by address, port, protocol
  ASSERT_EQ(http.port(), 80u) << http.DebugString();
  EXPECT_EQ(http.protocol(), "TCP");
  EXPECT_EQ(http.kind(), "ClusterIP");
  EXPECT_EQ(http.port_name(), "http");
  EXPECT_EQ(http.state(), "programmed");
  EXPECT_NE(http.rev_nat_id(), 0u);
  ASSERT_EQ(http.backends_size(), 2);
  EXPECT_EQ(http.backends(0).address(), "10.244.1.11");
  EXPECT_EQ(http.backends(0).port(), 8080u);
  EXPECT_EQ(http.backends(0).state(), "active");
  EXPECT_EQ(http.backends(0).pod(), "default/web-1");
  EXPECT_TRUE(http.backends(0).node_local());
  EXPECT_EQ(http.backends(1).address(), "10.244.1.12");
  EXPECT_EQ(http.backends(1).state(), "terminating");
  EXPECT_FALSE(http.backends(1).node_local());
}

TEST_F(ApiServicesTest, FrontendWhoseMapsDifferFromTheModelIsPending) {
  // The model now wants a third backend that the reconciler has not written yet.
  model::FrontendKey http{testing::ModelIp("10.96.0.10"), 80, model::Protocol::kTcp};
  scene_.desired.frontends.at(http).backends.push_back(
      {testing::ModelIp("10.244.1.13"), 8080, model::BackendState::kActive, false});
  scene_.Publish(core_);
  v1::Service r;
  v1::GetServiceRequest req;
  req.set_namespace_("default");
  req.set_name("web");
  grpc::ClientContext ctx;
  ASSERT_TRUE(v1::ServiceService::NewStub(channel_)->GetService(&ctx, req, &r).ok());
  std::map<uint32_t, std::string> states;
  for (const auto& f : r.frontends()) states[f.port()] = f.state();
  EXPECT_EQ(states[80], "pending");
  EXPECT_EQ(states[53], "programmed");
}

TEST_F(ApiServicesTest, GetServiceErrorsHaveRealCodes) {
  auto stub = v1::ServiceService::NewStub(channel_);
  v1::Service r;
  v1::GetServiceRequest req;
  req.set_namespace_("default");
  req.set_name("nope");
  grpc::ClientContext c1;
  EXPECT_EQ(stub->GetService(&c1, req, &r).error_code(), grpc::StatusCode::NOT_FOUND);
  req.set_name("");
  grpc::ClientContext c2;
  EXPECT_EQ(stub->GetService(&c2, req, &r).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ApiServicesTest, EndpointsAreLocalPodsWithTheirInterfaces) {
  v1::ListEndpointsResponse r;
  grpc::ClientContext ctx;
  ASSERT_TRUE(v1::EndpointService::NewStub(channel_)->ListEndpoints(&ctx, {}, &r).ok());
  ASSERT_EQ(r.endpoints_size(), 2);  // web-2 runs on another node
  EXPECT_EQ(r.endpoints(0).name(), "client");
  EXPECT_EQ(r.endpoints(0).interface(), "lxcclient");
  EXPECT_FALSE(r.endpoints(0).attached());
  EXPECT_EQ(r.endpoints(1).name(), "web-1");
  EXPECT_EQ(r.endpoints(1).interface(), "lxcweb1");
  EXPECT_EQ(r.endpoints(1).ifindex(), 7);
  EXPECT_TRUE(r.endpoints(1).attached());
  ASSERT_EQ(r.endpoints(1).backend_of_size(), 1);
  EXPECT_EQ(r.endpoints(1).backend_of(0), "default/web");
}

TEST_F(ApiServicesTest, ConntrackListDecodesAndFilters) {
  grpc::Status st;
  auto all = ListCt({}, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(all.size(), 4u);
  const v1::ConntrackEntry* svc = nullptr;
  for (const auto& e : all)
    if (e.kind() == "service" && e.protocol() == "TCP") svc = &e;
  ASSERT_NE(svc, nullptr);
  EXPECT_EQ(svc->src_address(), "10.244.1.10");
  EXPECT_EQ(svc->src_port(), 40000u);
  EXPECT_EQ(svc->dst_address(), "10.96.0.10");
  EXPECT_EQ(svc->dst_port(), 80u);
  EXPECT_EQ(svc->nat_address(), "10.244.1.11");
  EXPECT_EQ(svc->nat_port(), 8080u);
  EXPECT_EQ(svc->service(), "default/web");
  EXPECT_EQ(svc->age_seconds(), 10);
  EXPECT_EQ(svc->expires_in_seconds(), 50);
  EXPECT_EQ(svc->tcp_flags(), "SYN|ACK");
  ASSERT_EQ(svc->flags_size(), 1);
  EXPECT_EQ(svc->flags(0), "established");

  v1::ConntrackFilter f;
  f.set_protocol("udp");
  EXPECT_EQ(ListCt(f, &st).size(), 2u);
  f.Clear();
  f.set_port(8080);
  EXPECT_EQ(ListCt(f, &st).size(), 2u);  // the TCP flow's two entries
  f.Clear();
  f.set_ip("10.244.1.10");
  EXPECT_EQ(ListCt(f, &st).size(), 4u);
  f.set_protocol("TCP");
  EXPECT_EQ(ListCt(f, &st).size(), 2u);
  f.Clear();
  f.set_service("default/web");
  EXPECT_EQ(ListCt(f, &st).size(), 4u);
  f.set_service("default/empty");
  EXPECT_EQ(ListCt(f, &st).size(), 0u);
  EXPECT_TRUE(st.ok());
  f.Clear();
  EXPECT_EQ(ListCt(f, &st, 3).size(), 3u);
}

TEST_F(ApiServicesTest, ConntrackFilterErrorsHaveRealCodes) {
  grpc::Status st;
  v1::ConntrackFilter f;
  f.set_ip("10.0.0.300");
  ListCt(f, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  f.Clear();
  f.set_protocol("sctp-ish");
  ListCt(f, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  f.Clear();
  f.set_port(70000);
  ListCt(f, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  f.Clear();
  f.set_service("web");
  ListCt(f, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  f.set_service("default/nope");
  ListCt(f, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ApiServicesTest, FlushDeletesMatchingFlowsInBothDirections) {
  auto stub = v1::ConntrackService::NewStub(channel_);
  v1::FlushConntrackRequest req;
  // Only the service entry has the client port as its source port, yet the reply entry of
  // the same flow must go too.
  req.mutable_filter()->set_protocol("tcp");
  req.mutable_filter()->set_ip("10.96.0.10");
  v1::FlushConntrackResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->FlushConntrack(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.deleted(), 2u);  // the matching service entry and its reply
  ASSERT_EQ(core_.ct().entries().size(), 2u);
  for (const auto& [k, v] : core_.ct().entries()) EXPECT_EQ(k.proto, IPPROTO_UDP);

  req.Clear();  // an empty filter flushes everything
  grpc::ClientContext ctx2;
  ASSERT_TRUE(stub->FlushConntrack(&ctx2, req, &resp).ok());
  EXPECT_TRUE(core_.ct().entries().empty());
}

TEST_F(ApiServicesTest, PeerOfEachEntryIsTheOtherDirectionOfItsFlow) {
  // Flush removes an entry's peer by computing its key; it must be the key BPF wrote.
  int checked = 0;
  for (const auto& [k, e] : core_.ct().entries()) {
    skiff_ct4_key peer = CtPeerKey(k, e, core_.HairpinAddress());
    EXPECT_TRUE(core_.ct().entries().count(peer)) << "no peer for kind " << int(k.kind);
    EXPECT_NE(peer.kind, k.kind);
    checked++;
  }
  EXPECT_EQ(checked, 4);
}

TEST_F(ApiServicesTest, MapDumpDecodesTypedFieldsAndUnknownMapIsNotFound) {
  auto stub = v1::MapService::NewStub(channel_);
  v1::DumpMapRequest req;
  req.set_name("skiff_lb4_backends_v2");
  grpc::ClientContext ctx;
  auto r = stub->DumpMap(&ctx, req);
  v1::DumpMapResponse batch;
  std::vector<v1::MapEntry> entries;
  bool got_meta = false;
  while (r->Read(&batch)) {
    got_meta |= batch.map().name() == "skiff_lb4_backends_v2";
    for (const auto& e : batch.entries()) entries.push_back(e);
  }
  ASSERT_TRUE(r->Finish().ok());
  EXPECT_TRUE(got_meta);
  ASSERT_EQ(entries.size(), 3u);
  std::map<std::string, std::string> v;
  for (const auto& e : entries)
    if (e.value(0).text() == "10.244.1.11" && e.value(1).uint() == 8080)
      for (const auto& f : e.value()) v[f.name()] = f.has_text() ? f.text() : "";
  EXPECT_EQ(v["address"], "10.244.1.11");
  EXPECT_EQ(v["proto"], "TCP");
  EXPECT_EQ(v["state"], "active");
  EXPECT_EQ(v["flags"], "local");

  req.set_name("skiff_nope_v1");
  grpc::ClientContext ctx2;
  auto r2 = stub->DumpMap(&ctx2, req);
  while (r2->Read(&batch)) {
  }
  EXPECT_EQ(r2->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace skiff::api
