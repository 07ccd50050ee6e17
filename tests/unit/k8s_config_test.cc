// Kubeconfig and in-cluster config resolution, and bearer-token rotation.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "agent/sources/kubernetes/cluster_config.h"
#include "tests/k8s/test_pki.h"

namespace skiff::sources::k8s {
namespace {

using skiff::testing::TempDir;

constexpr char kTwoContexts[] = R"(apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: dev
  cluster:
    server: http://127.0.0.1:1111
- name: prod
  cluster:
    server: https://prod.example:6443/
    certificate-authority: pki/ca.crt
users:
- name: dev-user
  user:
    token: dev-token
- name: prod-user
  user:
    client-certificate: pki/client.crt
    client-key: pki/client.key
contexts:
- name: dev
  context: {cluster: dev, user: dev-user}
- name: prod
  context: {cluster: prod, user: prod-user}
)";

TEST(KubeconfigTest, CurrentContextSelectsClusterAndUserWithFilesRelativeToTheKubeconfig) {
  TempDir dir;
  mkdir((dir.path() + "/pki").c_str(), 0700);
  dir.Write("pki/ca.crt", "CA PEM");
  dir.Write("pki/client.crt", "CERT PEM");
  dir.Write("pki/client.key", "KEY PEM");
  const std::string path = dir.Write("config", kTwoContexts);
  absl::StatusOr<ClusterConfig> c = LoadKubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://prod.example:6443");  // trailing slash dropped
  EXPECT_EQ(c->ca_pem, "CA PEM");
  EXPECT_EQ(c->client_cert_pem, "CERT PEM");
  EXPECT_EQ(c->client_key_pem, "KEY PEM");
  EXPECT_EQ(c->token, "");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
  EXPECT_NE(c->origin.find("context prod"), std::string::npos) << c->origin;

  std::string dev = kTwoContexts;
  dev.replace(dev.find("current-context: prod"), 21, "current-context: dev");
  c = LoadKubeconfig(dir.Write("config-dev", dev));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "http://127.0.0.1:1111");
  EXPECT_EQ(c->token, "dev-token");
  EXPECT_EQ(c->ca_pem, "");
}

TEST(KubeconfigTest, DataFieldsTokenFileAndInsecureSkipTlsVerify) {
  TempDir dir;
  const std::string config = absl::StrCat(R"(apiVersion: v1
kind: Config
current-context: c
clusters:
- name: k
  cluster:
    server: https://10.0.0.1:6443
    insecure-skip-tls-verify: true
    certificate-authority-data: )",
                                          absl::Base64Escape("CA DATA"), R"(
users:
- name: u
  user:
    client-certificate-data: )",
                                          absl::Base64Escape("CERT DATA"), R"(
    client-key-data: )",
                                          absl::Base64Escape("KEY DATA"), R"(
    tokenFile: token
contexts:
- name: c
  context: {cluster: k, user: u}
)");
  absl::StatusOr<ClusterConfig> c = LoadKubeconfig(dir.Write("config", config));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca_pem, "CA DATA");
  EXPECT_EQ(c->client_cert_pem, "CERT DATA");
  EXPECT_EQ(c->client_key_pem, "KEY DATA");
  EXPECT_TRUE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->token_file, dir.path() + "/token");
}

TEST(KubeconfigTest, ErrorsNameTheFileAndField) {
  TempDir dir;
  std::string bad = kTwoContexts;
  bad.replace(bad.find("current-context: prod"), 21, "current-context: nope");
  absl::StatusOr<ClusterConfig> c = LoadKubeconfig(dir.Write("config", bad));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(dir.path() + "/config"), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("\"nope\" is not in contexts"), std::string::npos);

  // The CA file is missing (pki/ was never written).
  c = LoadKubeconfig(dir.Write("config2", kTwoContexts));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("clusters[prod].certificate-authority"), std::string::npos)
      << c.status();

  const std::string b64 = R"(apiVersion: v1
current-context: c
clusters: [{name: k, cluster: {server: "https://x", certificate-authority-data: "%%%"}}]
contexts: [{name: c, context: {cluster: k}}]
)";
  c = LoadKubeconfig(dir.Write("config3", b64));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("clusters[k].certificate-authority-data: not valid base64"),
            std::string::npos)
      << c.status();

  c = LoadKubeconfig(dir.path() + "/missing");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("missing"), std::string::npos);
}

TEST(KubeconfigTest, ListOfFilesMergesFirstWinsAndSkipsMissingOnes) {
  TempDir dir;
  const std::string a = dir.Write("a", R"(apiVersion: v1
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {token: from-a}}]
)");
  const std::string b = dir.Write("b", R"(apiVersion: v1
current-context: other
clusters: [{name: k, cluster: {server: "http://127.0.0.1:2222"}}]
users: [{name: u, user: {token: from-b}}]
)");
  absl::StatusOr<ClusterConfig> c = LoadKubeconfig(absl::StrCat(dir.path(), "/none:", a, ":", b));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "http://127.0.0.1:2222");
  EXPECT_EQ(c->token, "from-a");
}

TEST(InClusterConfigTest, ServiceAccountFilesAndEnvironment) {
  TempDir dir;
  dir.Write("ca.crt", "SA CA");
  dir.Write("token", "sa-token\n");
  InClusterEnvironment env{"10.96.0.1", "443", dir.path()};
  absl::StatusOr<ClusterConfig> c = LoadInClusterConfig(env);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->ca_pem, "SA CA");
  EXPECT_EQ(c->token_file, dir.path() + "/token");

  env.service_host = "fd00::1";
  c = LoadInClusterConfig(env);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://[fd00::1]:443");

  env.service_host = "";
  EXPECT_FALSE(LoadInClusterConfig(env).ok());
  InClusterEnvironment no_files{"10.96.0.1", "443", dir.path() + "/nope"};
  EXPECT_FALSE(LoadInClusterConfig(no_files).ok());
}

TEST(BearerTokenTest, StaticTokenWinsAndATokenFileIsReReadWhenItRotates) {
  TempDir dir;
  EXPECT_EQ(*BearerToken("static", dir.path() + "/none").Get(), "static");
  EXPECT_EQ(*BearerToken("", "").Get(), "");

  const std::string file = dir.Write("token", "first\n");
  BearerToken token("", file);
  EXPECT_EQ(*token.Get(), "first");
  // kubelet's rotation: a new file renamed over the old one.
  const std::string next = dir.Write("token.new", "second");
  ASSERT_EQ(rename(next.c_str(), file.c_str()), 0);
  EXPECT_EQ(*token.Get(), "second");
  // A vanished file keeps the last good token rather than failing requests.
  ASSERT_EQ(unlink(file.c_str()), 0);
  EXPECT_EQ(*token.Get(), "second");
  EXPECT_FALSE(BearerToken("", dir.path() + "/never").Get().ok());
}

TEST(ResolveClusterConfigTest, ApiServerFlagOverridesTheAddressOfEitherConfig) {
  TempDir dir;
  dir.Write("ca.crt", "SA CA");
  dir.Write("token", "sa-token");
  InClusterEnvironment env{"10.96.0.1", "443", dir.path()};
  absl::StatusOr<ClusterConfig> c = ResolveClusterConfig("", "", env);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");

  // Without kube-proxy the ClusterIP above is not reachable yet: the node's real address.
  c = ResolveClusterConfig("", "https://192.168.0.2:6443/", env);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://192.168.0.2:6443");
  EXPECT_EQ(c->ca_pem, "SA CA");
  EXPECT_EQ(c->token_file, dir.path() + "/token");

  const std::string kubeconfig = dir.Write("config", R"(apiVersion: v1
current-context: c
clusters: [{name: k, cluster: {server: "http://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: k}}]
)");
  c = ResolveClusterConfig(kubeconfig, "http://127.0.0.1:2", env);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "http://127.0.0.1:2");

  // Not in a cluster, no kubeconfig: the override alone, without credentials.
  c = ResolveClusterConfig("", "http://127.0.0.1:3", InClusterEnvironment{"", "", "/nonexistent"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "http://127.0.0.1:3");
  EXPECT_EQ(c->token_file, "");

  EXPECT_FALSE(ResolveClusterConfig("", "ftp://x", env).ok());
  EXPECT_FALSE(ResolveClusterConfig("", "", InClusterEnvironment{"", "", dir.path()}).ok());
}

}  // namespace
}  // namespace skiff::sources::k8s
