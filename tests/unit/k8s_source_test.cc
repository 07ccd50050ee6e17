// KubernetesSource against the fake API server (tests/k8s): initial sync, watch events,
// bookmarks, 410 Gone relists, dropped and stalled watches, pagination, auth failures, TLS,
// kubeconfig, and the synced flag. Every wait is a generous functional bound, not a timing
// assertion.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/sources/kubernetes/kubernetes_source.h"
#include "tests/k8s/fake_apiserver.h"
#include "tests/k8s/test_pki.h"

namespace skiff::sources::k8s {
namespace {

using nlohmann::json;
using skiff::testing::FakeApiServer;
using skiff::testing::TempDir;
using ::testing::HasSubstr;

json ServiceJson(const std::string& ns, const std::string& name, const std::string& ip,
                 int port = 80) {
  return json{
      {"metadata", {{"name", name}, {"namespace", ns}}},
      {"spec",
       {{"clusterIP", ip},
        {"clusterIPs", {ip}},
        {"type", "ClusterIP"},
        {"ports",
         {{{"name", "http"}, {"protocol", "TCP"}, {"port", port}, {"targetPort", 8080}}}}}}};
}

json PodJson(const std::string& name, const std::string& node, const std::string& ip) {
  return json{{"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"app", "a"}}}}},
              {"spec", {{"nodeName", node}, {"containers", {{{"name", "c"}}}}}},
              {"status", {{"phase", "Running"}, {"podIP", ip}, {"podIPs", {{{"ip", ip}}}}}}};
}

model::ObjectKey Key(model::ObjectKind kind, const std::string& ns, const std::string& name) {
  return model::ObjectKey{kind, model::NamespacedName{ns, name}};
}
model::ObjectKey SvcKey(const std::string& name) {
  return Key(model::ObjectKind::kService, "default", name);
}

bool WaitFor(const std::function<bool()>& pred,
             std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

class K8sSourceTest : public ::testing::Test {
 protected:
  void StartServer(FakeApiServer::Options o = {}) {
    server_ = FakeApiServer::Start(std::move(o));
    ASSERT_NE(server_, nullptr) << "fake API server did not start";
  }

  KubernetesSourceOptions Options(std::vector<model::ObjectKind> kinds = {
                                      model::ObjectKind::kService}) {
    KubernetesSourceOptions o;
    o.cluster.server = server_->url();
    o.cluster.origin = "test";
    o.kinds = std::move(kinds);
    o.reflector.backoff_initial = std::chrono::milliseconds(20);
    o.reflector.backoff_max = std::chrono::milliseconds(200);
    o.reflector.watch_timeout_seconds = 60;
    return o;
  }

  void StartSource(KubernetesSourceOptions o) {
    source_ = std::make_unique<KubernetesSource>(std::move(o), &store_);
    ASSERT_TRUE(source_->Start().ok());
  }

  ReflectorStats Stats(const std::string& resource) const {
    for (const ReflectorStats& s : source_->stats()) {
      if (s.resource == resource) return s;
    }
    return ReflectorStats{};
  }

  bool Has(const model::ObjectKey& key) const { return store_.Get(key).has_value(); }

  void TearDown() override {
    if (source_) source_->Stop();  // before the server: no retries against a dead server
    if (server_) server_->Stop();
  }

  model::ObjectStore store_;
  std::unique_ptr<FakeApiServer> server_;
  std::unique_ptr<KubernetesSource> source_;
};

TEST_F(K8sSourceTest, SyncedOnlyAfterEveryResourceListedThenAllObjectsPresent) {
  StartServer();
  server_->Upsert("namespaces", {{"metadata", {{"name", "default"}}}});
  server_->Upsert("nodes", {{"metadata", {{"name", "node-1"}}}});
  server_->Upsert("pods", PodJson("p1", "node-1", "10.244.1.5"));
  server_->Upsert("services", ServiceJson("default", "web", "10.96.0.10"));
  server_->Upsert("endpointslices", {{"metadata",
                                      {{"name", "web-1"},
                                       {"namespace", "default"},
                                       {"labels", {{"kubernetes.io/service-name", "web"}}}}},
                                     {"addressType", "IPv4"},
                                     {"ports", {{{"name", "http"}, {"port", 8080}}}},
                                     {"endpoints", {{{"addresses", {"10.244.1.5"}}}}}});
  server_->Upsert("networkpolicies", {{"metadata", {{"name", "deny"}, {"namespace", "default"}}},
                                      {"spec", {{"podSelector", json::object()}}}});
  server_->SetUnavailable("networkpolicies", true);

  StartSource(Options(KubernetesSourceOptions{}.kinds));
  EXPECT_FALSE(store_.IsSynced("kubernetes"));
  ASSERT_TRUE(WaitFor([&] { return Has(SvcKey("web")) && Stats("networkpolicies").errors >= 2; }));
  // Five of six lists are done and the sixth keeps failing: not synced, nothing may be deleted.
  EXPECT_FALSE(store_.IsSynced("kubernetes"));
  EXPECT_FALSE(store_.Snapshot().synced);
  EXPECT_THAT(Stats("networkpolicies").last_error, HasSubstr("HTTP 503"));

  server_->SetUnavailable("networkpolicies", false);
  ASSERT_TRUE(WaitFor([&] { return store_.IsSynced("kubernetes"); }));
  model::ObjectSnapshot snap = store_.Snapshot();
  EXPECT_TRUE(snap.synced);
  EXPECT_EQ(snap.namespaces.size(), 1u);
  EXPECT_EQ(snap.nodes.size(), 1u);
  EXPECT_EQ(snap.pods.size(), 1u);
  EXPECT_EQ(snap.services.size(), 1u);
  EXPECT_EQ(snap.endpoint_slices.size(), 1u);
  EXPECT_EQ(snap.network_policies.size(), 1u);
  ASSERT_NE(snap.FindService({"default", "web"}), nullptr);
  EXPECT_EQ(snap.FindService({"default", "web"})->spec.cluster_ips[0].ToString(), "10.96.0.10");

  // The watch starts where the list ended, with bookmarks and a server-side timeout.
  ASSERT_TRUE(WaitFor([&] { return server_->CountRequests("services", true) >= 1; }));
  for (const FakeApiServer::Request& r : server_->requests()) {
    if (r.resource != "services") continue;
    if (r.watch) {
      EXPECT_EQ(r.params.at("allowWatchBookmarks"), "true");
      EXPECT_EQ(r.params.at("resourceVersion"), Stats("services").resource_version);
      EXPECT_EQ(r.params.at("timeoutSeconds"), "60");
    } else {
      EXPECT_EQ(r.params.at("limit"), "500");
    }
  }
}

TEST_F(K8sSourceTest, WatchAppliesAddModifyDelete) {
  StartServer();
  StartSource(Options());
  ASSERT_TRUE(WaitFor([&] { return store_.IsSynced("kubernetes"); }));
  ASSERT_TRUE(WaitFor([&] { return server_->OpenWatches("services") == 1; }));

  server_->Upsert("services", ServiceJson("default", "a", "10.96.0.1"));
  ASSERT_TRUE(WaitFor([&] { return Has(SvcKey("a")); }));
  server_->Upsert("services", ServiceJson("default", "a", "10.96.0.1", 8443));
  ASSERT_TRUE(WaitFor([&] {
    auto o = store_.Get(SvcKey("a"));
    return o && std::get<model::Service>(*o).spec.ports[0].port == 8443;
  }));
  server_->Delete("services", "default", "a");
  ASSERT_TRUE(WaitFor([&] { return !Has(SvcKey("a")); }));
  EXPECT_EQ(Stats("services").events, 3u);
  EXPECT_EQ(Stats("services").lists, 1u);  // all through the one watch
  EXPECT_EQ(Stats("services").watches, 1u);
}

TEST_F(K8sSourceTest, BookmarkMovesTheResumePointOfTheNextWatch) {
  StartServer();
  StartSource(Options());
  ASSERT_TRUE(WaitFor([&] { return server_->OpenWatches("services") == 1; }));
  const std::string listed_rv = Stats("services").resource_version;
  server_->Upsert("pods", PodJson("p", "n", "10.244.0.9"));  // moves the global revision
  server_->Bookmark("services");
  const std::string bookmark_rv = std::to_string(server_->resource_version());
  ASSERT_NE(listed_rv, bookmark_rv);
  ASSERT_TRUE(WaitFor([&] { return Stats("services").bookmarks == 1; }));
  EXPECT_EQ(Stats("services").resource_version, bookmark_rv);

  server_->DropWatches();
  ASSERT_TRUE(WaitFor([&] { return server_->CountRequests("services", true) >= 2; }));
  EXPECT_EQ(server_->requests().back().params.at("resourceVersion"), bookmark_rv);
  EXPECT_EQ(Stats("services").lists, 1u);  // resumed, not relisted
}

TEST_F(K8sSourceTest, GoneAfterCompactionRelistsAndAppliesTheDeletionMissedMeanwhile) {
  StartServer();
  server_->Upsert("services", ServiceJson("default", "keep", "10.96.0.1"));
  server_->Upsert("services", ServiceJson("default", "gone", "10.96.0.2"));
  StartSource(Options());
  ASSERT_TRUE(WaitFor([&] { return store_.IsSynced("kubernetes") && Has(SvcKey("gone")); }));
  ASSERT_TRUE(WaitFor([&] { return server_->OpenWatches("services") == 1; }));

  // Disconnect the agent, change the cluster, and compact history past what it has seen.
  server_->SetUnavailable("services", true);
  server_->DropWatches();
  ASSERT_TRUE(WaitFor([&] { return Stats("services").errors >= 2; }));
  server_->Delete("services", "default", "gone");
  server_->Upsert("services", ServiceJson("default", "new", "10.96.0.3"));
  server_->Compact();
  server_->SetUnavailable("services", false);

  ASSERT_TRUE(WaitFor([&] { return !Has(SvcKey("gone")) && Has(SvcKey("new")); }));
  EXPECT_TRUE(Has(SvcKey("keep")));
  EXPECT_GE(Stats("services").relists_gone, 1u);
  EXPECT_EQ(Stats("services").lists, 2u);
}

TEST_F(K8sSourceTest, DroppedMidEventResumesFromTheLastResourceVersion) {
  StartServer();
  StartSource(Options());
  ASSERT_TRUE(WaitFor([&] { return server_->OpenWatches("services") == 1; }));
  server_->Upsert("services", ServiceJson("default", "before", "10.96.0.1"));
  ASSERT_TRUE(WaitFor([&] { return Has(SvcKey("before")); }));
  server_->DropWatches();  // cuts the stream inside an event line
  server_->Upsert("services", ServiceJson("default", "after", "10.96.0.2"));
  ASSERT_TRUE(WaitFor([&] { return Has(SvcKey("after")); }));
  const ReflectorStats s = Stats("services");
  EXPECT_EQ(s.malformed_events, 0u);  // the half line was dropped, not decoded
  EXPECT_EQ(s.lists, 1u);
  EXPECT_GE(s.watches, 2u);
  EXPECT_FALSE(Has(SvcKey("cut")));
}

TEST_F(K8sSourceTest, StalledWatchIsRestarted) {
  StartServer();
  KubernetesSourceOptions o = Options();
  o.reflector.idle_timeout = std::chrono::milliseconds(1000);
  StartSource(std::move(o));
  ASSERT_TRUE(WaitFor([&] { return server_->OpenWatches("services") == 1; }));

  server_->SetStall(true);
  server_->DropWatches();
  ASSERT_TRUE(WaitFor([&] { return server_->CountRequests("services", true) >= 2; }));
  server_->SetStall(false);  // only watches opened from now on deliver again
  server_->Upsert("services", ServiceJson("default", "late", "10.96.0.5"));
  // The stalled watch never delivers it; only a restarted watch can.
  ASSERT_TRUE(WaitFor([&] { return Has(SvcKey("late")); }));
  EXPECT_GE(Stats("services").stalled_watches, 1u);
  EXPECT_EQ(Stats("services").lists, 1u);
}

TEST_F(K8sSourceTest, PaginatedListFollowsContinueTokens) {
  StartServer();
  for (int i = 0; i < 25; ++i) {
    server_->Upsert("services",
                    ServiceJson("default", absl::StrCat("s", i), absl::StrCat("10.96.1.", i + 1)));
  }
  KubernetesSourceOptions o = Options();
  o.reflector.page_size = 10;
  StartSource(std::move(o));
  ASSERT_TRUE(WaitFor([&] { return store_.IsSynced("kubernetes"); }));
  EXPECT_EQ(store_.Snapshot().services.size(), 25u);
  EXPECT_EQ(server_->CountRequests("services", false), 3u);
  EXPECT_EQ(Stats("services").list_pages, 3u);
  size_t with_continue = 0;
  for (const auto& r : server_->requests()) {
    with_continue += !r.watch && r.params.count("continue") > 0;
  }
  EXPECT_EQ(with_continue, 2u);
}

TEST_F(K8sSourceTest, WrongTokenIsAClearRetriedErrorUntilTheTokenFileRotates) {
  StartServer({.token = "right-token"});
  server_->Upsert("services", ServiceJson("default", "web", "10.96.0.10"));
  TempDir dir;
  const std::string token_file = dir.Write("token", "wrong-token\n");
  KubernetesSourceOptions o = Options();
  o.cluster.token_file = token_file;
  StartSource(std::move(o));
  ASSERT_TRUE(WaitFor([&] { return Stats("services").errors >= 3; }));
  const std::string err = Stats("services").last_error;
  EXPECT_THAT(err, HasSubstr(server_->url()));
  EXPECT_THAT(err, HasSubstr("HTTP 401"));
  EXPECT_THAT(err, HasSubstr("Unauthorized"));
  EXPECT_FALSE(store_.IsSynced("kubernetes"));
  EXPECT_EQ(server_->requests().front().authorization, "Bearer wrong-token");

  const std::string rotated = dir.Write("token.new", "right-token\n");
  ASSERT_EQ(std::rename(rotated.c_str(), token_file.c_str()), 0);
  ASSERT_TRUE(WaitFor([&] { return store_.IsSynced("kubernetes") && Has(SvcKey("web")); }));
  EXPECT_EQ(Stats("services").last_error, "");
}

TEST_F(K8sSourceTest, MalformedEventIsSkippedAndTheWatchGoesOn) {
  StartServer();
  StartSource(Options());
  ASSERT_TRUE(WaitFor([&] { return server_->OpenWatches("services") == 1; }));
  server_->SendRawLine("services", R"({"type":"ADDED","object":{"metadata":{"name": oops}}})");
  server_->SendRawLine(
      "services",
      R"({"type":"ADDED","object":{"metadata":{"name":"Bad_Name"},"spec":{"clusterIP":"10.96.0.9","ports":[{"port":80}]}}})");
  server_->Upsert("services", ServiceJson("default", "fine", "10.96.0.3"));
  ASSERT_TRUE(WaitFor([&] { return Has(SvcKey("fine")); }));
  EXPECT_EQ(Stats("services").malformed_events, 1u);
  EXPECT_EQ(Stats("services").invalid_objects, 1u);
  EXPECT_EQ(Stats("services").watches, 1u);
}

TEST_F(K8sSourceTest, PodsRestrictedToThisNodeByFieldSelector) {
  StartServer();
  server_->Upsert("pods", PodJson("mine", "node-1", "10.244.1.2"));
  server_->Upsert("pods", PodJson("theirs", "node-2", "10.244.2.2"));
  KubernetesSourceOptions o = Options({model::ObjectKind::kPod});
  o.pods_node_name = "node-1";
  StartSource(std::move(o));
  ASSERT_TRUE(WaitFor([&] { return server_->OpenWatches("pods") == 1; }));
  server_->Upsert("pods", PodJson("mine-2", "node-1", "10.244.1.3"));
  server_->Upsert("pods", PodJson("theirs-2", "node-2", "10.244.2.3"));
  ASSERT_TRUE(WaitFor([&] { return Has(Key(model::ObjectKind::kPod, "default", "mine-2")); }));
  EXPECT_TRUE(Has(Key(model::ObjectKind::kPod, "default", "mine")));
  EXPECT_EQ(store_.Snapshot().pods.size(), 2u);
  for (const auto& r : server_->requests()) {
    EXPECT_EQ(r.params.at("fieldSelector"), "spec.nodeName=node-1");
  }
}

class K8sTlsTest : public K8sSourceTest {
 protected:
  void SetUp() override {
    auto pki = skiff::testing::MakeTestPki(dir_.path());
    ASSERT_TRUE(pki.ok()) << pki.status() << " (is the openssl CLI installed?)";
    pki_ = *pki;
  }
  TempDir dir_;
  skiff::testing::TestPki pki_;
};

TEST_F(K8sTlsTest, HttpsWithCaAndBearerTokenFromAKubeconfig) {
  StartServer({.cert_file = pki_.server_cert, .key_file = pki_.server_key, .token = "t0ken"});
  server_->Upsert("services", ServiceJson("default", "web", "10.96.0.10"));
  dir_.Write("token", "t0ken\n");
  const std::string kubeconfig = dir_.Write("kubeconfig", absl::StrCat(R"(apiVersion: v1
kind: Config
current-context: fake
clusters:
- name: fake
  cluster: {server: ")",
                                                                       server_->url(), R"(",
            certificate-authority: ca.crt}
users:
- name: agent
  user: {tokenFile: token}
contexts:
- name: fake
  context: {cluster: fake, user: agent}
)"));
  absl::StatusOr<ClusterConfig> cluster = LoadKubeconfig(kubeconfig);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  KubernetesSourceOptions o = Options();
  o.cluster = *cluster;
  StartSource(std::move(o));
  ASSERT_TRUE(WaitFor([&] { return store_.IsSynced("kubernetes") && Has(SvcKey("web")); }));
  EXPECT_EQ(server_->requests().front().authorization, "Bearer t0ken");
  server_->Upsert("services", ServiceJson("default", "web2", "10.96.0.11"));
  ASSERT_TRUE(WaitFor([&] { return Has(SvcKey("web2")); }));
}

TEST_F(K8sTlsTest, UnknownCaFailsUnlessInsecureSkipTlsVerify) {
  StartServer({.cert_file = pki_.server_cert, .key_file = pki_.server_key});
  KubernetesSourceOptions o = Options();
  o.cluster.ca_pem = "";  // the system bundle does not know the test CA
  StartSource(o);
  ASSERT_TRUE(WaitFor([&] { return Stats("services").errors >= 1; }));
  EXPECT_THAT(Stats("services").last_error, HasSubstr(server_->url()));
  EXPECT_FALSE(store_.IsSynced("kubernetes"));
  source_->Stop();

  model::ObjectStore store2;
  o.cluster.insecure_skip_tls_verify = true;
  KubernetesSource insecure(o, &store2);
  ASSERT_TRUE(insecure.Start().ok());
  EXPECT_TRUE(WaitFor([&] { return store2.IsSynced("kubernetes"); }));
  insecure.Stop();
}

TEST_F(K8sTlsTest, ClientCertificateAuthentication) {
  StartServer(
      {.cert_file = pki_.server_cert, .key_file = pki_.server_key, .client_ca_file = pki_.ca_cert});
  KubernetesSourceOptions o = Options();
  o.cluster.ca_pem = skiff::testing::ReadFileOrDie(pki_.ca_cert);
  o.cluster.client_cert_pem = skiff::testing::ReadFileOrDie(pki_.client_cert);
  o.cluster.client_key_pem = skiff::testing::ReadFileOrDie(pki_.client_key);
  StartSource(o);
  ASSERT_TRUE(WaitFor([&] { return store_.IsSynced("kubernetes"); }));
  source_->Stop();

  // Without the client certificate the handshake is refused.
  model::ObjectStore store2;
  o.cluster.client_cert_pem.clear();
  o.cluster.client_key_pem.clear();
  KubernetesSource anonymous(o, &store2);
  ASSERT_TRUE(anonymous.Start().ok());
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& s : anonymous.stats()) return s.errors >= 1;
    return false;
  }));
  EXPECT_FALSE(store2.IsSynced("kubernetes"));
  anonymous.Stop();
}

}  // namespace
}  // namespace skiff::sources::k8s
