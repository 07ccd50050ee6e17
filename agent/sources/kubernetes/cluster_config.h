// Where the Kubernetes API server is and how to authenticate to it, resolved from a kubeconfig
// (kubectl's file format) or from the in-cluster service-account files. Certificates are read
// into memory when the config is resolved; a token file is re-read whenever it changes
// (kubelet rotates projected service-account tokens), see BearerToken.
#pragma once

#include <sys/types.h>

#include <ctime>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"

namespace skiff::sources::k8s {

struct ClusterConfig {
  std::string server;  // "https://10.0.0.1:6443" (no trailing slash); http:// for tests
  std::string origin;  // for messages: "kubeconfig /root/.kube/config, context kind"
  std::string ca_pem;  // empty: the system's CA bundle
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string token;       // a static bearer token; wins over token_file, as in kubectl
  std::string token_file;  // re-read when it changes
  bool insecure_skip_tls_verify = false;
};

// `paths` is a --kubeconfig value or KUBECONFIG: one file or several joined by ':'. As kubectl
// does, several files merge: the first file that defines a named cluster/user/context or
// current-context wins, and missing files are skipped (all missing is an error). Relative
// paths inside a file are relative to that file's directory. Errors name the file and field.
absl::StatusOr<ClusterConfig> LoadKubeconfig(const std::string& paths);

struct InClusterEnvironment {
  std::string service_host;  // KUBERNETES_SERVICE_HOST
  std::string service_port;  // KUBERNETES_SERVICE_PORT
  std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  static InClusterEnvironment FromProcess();  // reads the two variables
};

// https://HOST:PORT with the service account's ca.crt and token file.
absl::StatusOr<ClusterConfig> LoadInClusterConfig(const InClusterEnvironment& env);

// What skiff-agent connects to: the kubeconfig when `kubeconfig` is set, else the in-cluster
// config. A non-empty `api_server` (--k8s-api-server) replaces the server address — without
// kube-proxy the API's ClusterIP is unreachable until the agent runs, so nodes are given the
// real address; with it and no service-account files, the connection has no credentials.
absl::StatusOr<ClusterConfig> ResolveClusterConfig(const std::string& kubeconfig,
                                                   const std::string& api_server,
                                                   const InClusterEnvironment& env);

// The bearer token for the next request. Thread-safe (shared by every watch thread); cheap:
// one stat() per call, a read only when the file changed.
class BearerToken {
 public:
  BearerToken(std::string token, std::string file)
      : token_(std::move(token)), file_(std::move(file)) {}
  // "" when the config has no token. A token file that cannot be read keeps the last token
  // read from it; the error is returned only when there never was one.
  absl::StatusOr<std::string> Get();

 private:
  const std::string token_;
  const std::string file_;
  std::mutex mu_;
  std::string cached_;
  ino_t ino_ = 0;
  timespec mtime_{};
  off_t size_ = -1;
};

}  // namespace skiff::sources::k8s
