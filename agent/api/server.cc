#include "agent/api/server.h"

#include <grpcpp/health_check_service_interface.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "agent/api/policy_service.h"
#include "agent/api/services.h"
#include "agent/observe/flow_service.h"

namespace skiff::api {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream f(path);
  if (!f) return absl::InvalidArgumentError(absl::StrCat("cannot read ", what, " ", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Makes `path` free for a new socket: creates the parent directory, removes a stale socket
// file, refuses to replace a live socket or anything that is not a socket.
absl::Status PrepareSocketPath(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    return absl::InvalidArgumentError(absl::StrCat("--api-socket ", path, ": longer than ",
                                                   sizeof(sockaddr_un::sun_path) - 1, " bytes"));
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::exists(parent)) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec)
      return absl::InternalError(
          absl::StrCat("creating ", parent.string(), " for --api-socket: ", ec.message()));
    chmod(parent.c_str(), 0700);
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return absl::OkStatus();
  if (!S_ISSOCK(st.st_mode))
    return absl::FailedPreconditionError(
        absl::StrCat("--api-socket ", path, " exists and is not a socket; not replacing it"));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket(AF_UNIX) failed");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool live = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  if (live)
    return absl::AlreadyExistsError(
        absl::StrCat("--api-socket ", path, " is in use: another skiff-agent is serving there"));
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return absl::InternalError(
        absl::StrCat("removing stale socket ", path, ": ", std::strerror(errno)));
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateServerOptions(const ServerOptions& o) {
  if (o.socket_path.empty()) return absl::InvalidArgumentError("--api-socket must not be empty");
  bool tls = !o.tls_cert.empty() || !o.tls_key.empty();
  if (tls && (o.tls_cert.empty() || o.tls_key.empty()))
    return absl::InvalidArgumentError("--api-tls-cert and --api-tls-key go together");
  if (!o.tls_client_ca.empty() && !tls)
    return absl::InvalidArgumentError("--api-tls-client-ca needs --api-tls-cert and --api-tls-key");
  if ((tls || o.insecure) && o.tcp_listen.empty())
    return absl::InvalidArgumentError(
        "--api-tls-* and --api-insecure only apply to --api-listen HOST:PORT");
  if (!o.tcp_listen.empty()) {
    if (o.tcp_listen.rfind(':') == std::string::npos)
      return absl::InvalidArgumentError(
          absl::StrCat("--api-listen ", o.tcp_listen, ": expected HOST:PORT"));
    if (!tls && !o.insecure)
      return absl::InvalidArgumentError(
          "--api-listen without TLS: pass --api-tls-cert and --api-tls-key (and "
          "--api-tls-client-ca for mTLS), or --api-insecure to serve plaintext on purpose");
    if (tls && o.insecure)
      return absl::InvalidArgumentError("--api-insecure contradicts --api-tls-cert/--api-tls-key");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Start(const ServerOptions& o,
                                                            AgentCore* core) {
  if (auto st = ValidateServerOptions(o); !st.ok()) return st;
  if (auto st = PrepareSocketPath(o.socket_path); !st.ok()) return st;

  std::unique_ptr<ApiServer> s(new ApiServer());
  s->socket_path_ = o.socket_path;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  // Without BDP probing the HTTP/2 window stays at its default (64 KiB) instead of growing to
  // megabytes per stream, so a streamed million-entry dump holds a batch or two in memory, not
  // a window's worth, and flow control pauses the map iteration while the client is slow.
  b.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  b.AddListeningPort("unix:" + o.socket_path, grpc::InsecureServerCredentials());
  if (!o.tcp_listen.empty()) {
    std::shared_ptr<grpc::ServerCredentials> creds;
    if (o.insecure) {
      creds = grpc::InsecureServerCredentials();
    } else {
      auto cert = ReadFile(o.tls_cert, "--api-tls-cert");
      if (!cert.ok()) return cert.status();
      auto key = ReadFile(o.tls_key, "--api-tls-key");
      if (!key.ok()) return key.status();
      grpc::SslServerCredentialsOptions ssl;
      ssl.pem_key_cert_pairs.push_back({*key, *cert});
      if (!o.tls_client_ca.empty()) {
        auto ca = ReadFile(o.tls_client_ca, "--api-tls-client-ca");
        if (!ca.ok()) return ca.status();
        ssl.pem_root_certs = *ca;
        ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
      }
      creds = grpc::SslServerCredentials(ssl);
    }
    b.AddListeningPort(o.tcp_listen, creds, &s->tcp_port_);
  }
  s->services_.push_back(std::make_unique<StatusServiceImpl>(core));
  s->services_.push_back(std::make_unique<MapServiceImpl>(core));
  s->services_.push_back(std::make_unique<ServiceServiceImpl>(core));
  s->services_.push_back(std::make_unique<EndpointServiceImpl>(core));
  s->services_.push_back(std::make_unique<ConntrackServiceImpl>(core));
  s->services_.push_back(std::make_unique<PolicyServiceImpl>(core));
  if (o.flows)
    s->services_.push_back(
        std::make_unique<observe::FlowServiceImpl>(o.flows, core->Info().node_name));
  for (auto& svc : s->services_) b.RegisterService(svc.get());

  // The socket must never be reachable by other users, not even between bind and chmod.
  mode_t old = umask(0177);
  s->server_ = b.BuildAndStart();
  umask(old);
  if (!s->server_)
    return absl::UnavailableError(
        absl::StrCat("starting the API server failed (socket ", o.socket_path,
                     o.tcp_listen.empty() ? "" : absl::StrCat(", TCP ", o.tcp_listen),
                     "): see the gRPC error above"));
  if (!o.tcp_listen.empty() && s->tcp_port_ == 0)
    return absl::UnavailableError(absl::StrCat("--api-listen ", o.tcp_listen, ": cannot bind"));
  if (chmod(o.socket_path.c_str(), 0600) != 0)
    return absl::InternalError(
        absl::StrCat("chmod 0600 ", o.socket_path, ": ", std::strerror(errno)));
  if (auto* h = s->server_->GetHealthCheckService()) h->SetServingStatus(true);
  return s;
}

void ApiServer::Shutdown() {
  if (!server_) return;
  if (auto* h = server_->GetHealthCheckService()) h->SetServingStatus(false);
  // Long dumps are cut after the grace period rather than holding up the agent's exit.
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  server_->Wait();
  server_.reset();
  unlink(socket_path_.c_str());
}

ApiServer::~ApiServer() { Shutdown(); }

}  // namespace skiff::api
