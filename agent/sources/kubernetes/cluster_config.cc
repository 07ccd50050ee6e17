#include "agent/sources/kubernetes/cluster_config.h"

#include <sys/stat.h>

#include <cstdlib>
#include <exception>
#include <fstream>
#include <sstream>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace skiff::sources::k8s {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// One kubeconfig file: its named entries (clusters/users/contexts), as yaml-cpp nodes.
struct KubeconfigFile {
  std::string path;
  YAML::Node root;
};

// A named entry's body and the file it came from (relative paths resolve against it).
struct Entry {
  YAML::Node body;
  const KubeconfigFile* file = nullptr;
};

std::string Scalar(const YAML::Node& parent, const char* key) {
  if (!parent.IsMap()) return "";
  const YAML::Node n = parent[key];
  return n.IsDefined() && n.IsScalar() ? n.Scalar() : "";
}

// Adds the file's `section` entries (a list of {name, <item_key>: body}) that are not yet known.
absl::Status CollectNamed(const KubeconfigFile& file, const char* section, const char* item_key,
                          std::map<std::string, Entry>& out) {
  const YAML::Node list = file.root[section];
  if (!list.IsDefined() || list.IsNull()) return absl::OkStatus();
  if (!list.IsSequence()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig ", file.path, ": ", section, ": expected a list"));
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string name = Scalar(list[i], "name");
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("kubeconfig ", file.path, ": ", section, "[", i, "].name: is required"));
    }
    out.emplace(name, Entry{list[i][item_key], &file});  // first definition wins
  }
  return absl::OkStatus();
}

// "<field>" as a file path (relative to the kubeconfig) or "<field>-data" as base64.
absl::StatusOr<std::string> PemField(const Entry& e, const std::string& where,
                                     const std::string& field) {
  const std::string data = Scalar(e.body, (field + "-data").c_str());
  if (!data.empty()) {
    std::string decoded;
    if (!absl::Base64Unescape(data, &decoded)) {
      return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", e.file->path, ": ", where, ".",
                                                     field, "-data: not valid base64"));
    }
    return decoded;
  }
  std::string path = Scalar(e.body, field.c_str());
  if (path.empty()) return std::string();
  if (path.front() != '/') path = absl::StrCat(DirName(e.file->path), "/", path);
  absl::StatusOr<std::string> contents = ReadFile(path);
  if (!contents.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", e.file->path, ": ", where, ".",
                                                   field, ": ", contents.status().message()));
  }
  return contents;
}

}  // namespace

absl::StatusOr<ClusterConfig> LoadKubeconfig(const std::string& paths) {
  std::vector<KubeconfigFile> files;
  std::vector<std::string> tried;
  for (absl::string_view p : absl::StrSplit(paths, ':', absl::SkipEmpty())) {
    const std::string path(p);
    tried.push_back(path);
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) continue;  // kubectl skips missing files of a KUBECONFIG list
    KubeconfigFile f{path, {}};
    // yaml-cpp throws on syntax errors; nothing past this boundary may see an exception.
    try {
      f.root = YAML::Load(*text);
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path, ": ", e.what()));
    }
    if (!f.root.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat("kubeconfig ", path, ": expected a mapping (apiVersion: v1, kind: Config)"));
    }
    files.push_back(std::move(f));
  }
  if (files.empty()) {
    return absl::NotFoundError(absl::StrCat("no kubeconfig file found (tried ", paths, ")"));
  }

  std::map<std::string, Entry> clusters, users, contexts;
  std::string current_context;
  const KubeconfigFile* context_file = nullptr;
  for (const KubeconfigFile& f : files) {
    try {
      if (auto st = CollectNamed(f, "clusters", "cluster", clusters); !st.ok()) return st;
      if (auto st = CollectNamed(f, "users", "user", users); !st.ok()) return st;
      if (auto st = CollectNamed(f, "contexts", "context", contexts); !st.ok()) return st;
      if (current_context.empty()) {
        current_context = Scalar(f.root, "current-context");
        if (!current_context.empty()) context_file = &f;
      }
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", f.path, ": ", e.what()));
    }
  }
  const std::string where = files.size() == 1 ? files.front().path : paths;
  if (current_context.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig ", where, ": current-context is not set"));
  }
  auto ctx = contexts.find(current_context);
  if (ctx == contexts.end()) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", where, ": current-context \"",
                                                   current_context, "\" is not in contexts"));
  }
  const std::string cluster_name = Scalar(ctx->second.body, "cluster");
  const std::string user_name = Scalar(ctx->second.body, "user");
  auto cluster = clusters.find(cluster_name);
  if (cluster == clusters.end()) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", ctx->second.file->path,
                                                   ": contexts[", current_context, "].cluster \"",
                                                   cluster_name, "\" is not in clusters"));
  }

  ClusterConfig c;
  c.origin = absl::StrCat("kubeconfig ", context_file ? context_file->path : where, ", context ",
                          current_context);
  const std::string cluster_where = absl::StrCat("clusters[", cluster_name, "]");
  c.server = Scalar(cluster->second.body, "server");
  if (c.server.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", cluster->second.file->path, ": ",
                                                   cluster_where, ".server: is required"));
  }
  while (absl::EndsWith(c.server, "/")) c.server.pop_back();
  if (!absl::StartsWith(c.server, "https://") && !absl::StartsWith(c.server, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", cluster->second.file->path, ": ",
                                                   cluster_where, ".server: \"", c.server,
                                                   "\" is not an http:// or https:// URL"));
  }
  const std::string insecure = Scalar(cluster->second.body, "insecure-skip-tls-verify");
  c.insecure_skip_tls_verify = absl::AsciiStrToLower(insecure) == "true";
  auto ca = PemField(cluster->second, cluster_where, "certificate-authority");
  if (!ca.ok()) return ca.status();
  c.ca_pem = std::move(*ca);

  if (!user_name.empty()) {
    auto user = users.find(user_name);
    if (user == users.end()) {
      return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", ctx->second.file->path,
                                                     ": contexts[", current_context, "].user \"",
                                                     user_name, "\" is not in users"));
    }
    const std::string user_where = absl::StrCat("users[", user_name, "]");
    auto cert = PemField(user->second, user_where, "client-certificate");
    if (!cert.ok()) return cert.status();
    auto key = PemField(user->second, user_where, "client-key");
    if (!key.ok()) return key.status();
    if (cert->empty() != key->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("kubeconfig ", user->second.file->path, ": ", user_where,
                       ": client-certificate and client-key must be given together"));
    }
    c.client_cert_pem = std::move(*cert);
    c.client_key_pem = std::move(*key);
    c.token = Scalar(user->second.body, "token");
    c.token_file = Scalar(user->second.body, "tokenFile");
    if (!c.token_file.empty() && c.token_file.front() != '/') {
      c.token_file = absl::StrCat(DirName(user->second.file->path), "/", c.token_file);
    }
  }
  return c;
}

InClusterEnvironment InClusterEnvironment::FromProcess() {
  InClusterEnvironment env;
  if (const char* h = std::getenv("KUBERNETES_SERVICE_HOST")) env.service_host = h;
  if (const char* p = std::getenv("KUBERNETES_SERVICE_PORT")) env.service_port = p;
  return env;
}

absl::StatusOr<ClusterConfig> LoadInClusterConfig(const InClusterEnvironment& env) {
  if (env.service_host.empty() || env.service_port.empty()) {
    return absl::FailedPreconditionError(
        "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be "
        "set");
  }
  ClusterConfig c;
  const bool ipv6 = env.service_host.find(':') != std::string::npos;
  c.server = absl::StrCat("https://", ipv6 ? "[" : "", env.service_host, ipv6 ? "]" : "", ":",
                          env.service_port);
  c.origin = absl::StrCat("in-cluster config (", env.service_account_dir, ")");
  auto ca = ReadFile(absl::StrCat(env.service_account_dir, "/ca.crt"));
  if (!ca.ok())
    return absl::FailedPreconditionError(
        absl::StrCat("in-cluster config: ", ca.status().message()));
  c.ca_pem = std::move(*ca);
  c.token_file = absl::StrCat(env.service_account_dir, "/token");
  BearerToken probe("", c.token_file);
  if (auto t = probe.Get(); !t.ok()) return t.status();
  return c;
}

absl::StatusOr<ClusterConfig> ResolveClusterConfig(const std::string& kubeconfig,
                                                   const std::string& api_server,
                                                   const InClusterEnvironment& env) {
  std::string server = api_server;
  while (absl::EndsWith(server, "/")) server.pop_back();
  if (!server.empty() && !absl::StartsWith(server, "https://") &&
      !absl::StartsWith(server, "http://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--k8s-api-server \"", api_server, "\" is not an http:// or https:// URL"));
  }
  absl::StatusOr<ClusterConfig> c;
  if (!kubeconfig.empty()) {
    c = LoadKubeconfig(kubeconfig);
  } else if (server.empty()) {
    c = LoadInClusterConfig(env);
  } else {
    InClusterEnvironment e = env;
    if (e.service_host.empty()) e.service_host = "overridden";
    if (e.service_port.empty()) e.service_port = "443";
    c = LoadInClusterConfig(e);
    if (!c.ok()) {
      ClusterConfig anonymous;
      anonymous.origin = "--k8s-api-server, no credentials";
      c = anonymous;
    }
  }
  if (!c.ok()) return c.status();
  if (!server.empty()) {
    c->server = server;
    c->origin = absl::StrCat(c->origin, ", server from --k8s-api-server");
  }
  return c;
}

absl::StatusOr<std::string> BearerToken::Get() {
  if (!token_.empty() || file_.empty()) return token_;
  std::lock_guard<std::mutex> lock(mu_);
  struct stat st {};
  // stat follows symlinks: kubelet rotates a projected token by swapping the ..data symlink.
  if (stat(file_.c_str(), &st) != 0) {
    if (!cached_.empty()) return cached_;
    return absl::FailedPreconditionError(absl::StrCat("cannot read token file ", file_));
  }
  if (st.st_ino == ino_ && st.st_size == size_ && st.st_mtim.tv_sec == mtime_.tv_sec &&
      st.st_mtim.tv_nsec == mtime_.tv_nsec) {
    return cached_;
  }
  absl::StatusOr<std::string> text = ReadFile(file_);
  if (!text.ok()) {
    if (!cached_.empty()) return cached_;
    return absl::FailedPreconditionError(absl::StrCat("cannot read token file ", file_));
  }
  std::string token(absl::StripAsciiWhitespace(*text));
  if (token.empty()) {
    if (!cached_.empty()) return cached_;
    return absl::FailedPreconditionError(absl::StrCat("token file ", file_, " is empty"));
  }
  cached_ = std::move(token);
  ino_ = st.st_ino;
  size_ = st.st_size;
  mtime_ = st.st_mtim;
  return cached_;
}

}  // namespace skiff::sources::k8s
