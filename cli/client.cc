#include "cli/client.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace skiff::cli {
namespace {

constexpr char kHint[] =
    "is skiff-agent running? Start it, or pass --socket PATH (its --api-socket); "
    "`agentctl bpf map list` reads the maps without the agent";

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  std::ifstream f(path);
  if (!f) return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot read"));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

std::string Target::Describe() const { return server.empty() ? "unix:" + socket : server; }

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const Target& t) {
  if (!t.server.empty()) {
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (t.insecure) {
      creds = grpc::InsecureChannelCredentials();
    } else {
      grpc::SslCredentialsOptions o;
      if (!t.tls_ca.empty()) {
        auto ca = ReadPem(t.tls_ca, "--tls-ca");
        if (!ca.ok()) return ca.status();
        o.pem_root_certs = *ca;
      }
      if (!t.tls_cert.empty() || !t.tls_key.empty()) {
        auto cert = ReadPem(t.tls_cert, "--tls-cert");
        if (!cert.ok()) return cert.status();
        auto key = ReadPem(t.tls_key, "--tls-key");
        if (!key.ok()) return key.status();
        o.pem_cert_chain = *cert;
        o.pem_private_key = *key;
      }
      creds = grpc::SslCredentials(o);
    }
    return grpc::CreateChannel(t.server, creds);
  }
  struct stat st {};
  if (stat(t.socket.c_str(), &st) != 0) {
    int err = errno;
    std::string why = err == ENOENT ? "the socket does not exist" : std::strerror(err);
    if (err == EACCES)
      return absl::PermissionDeniedError(absl::StrCat("cannot reach skiff-agent at ", t.socket,
                                                      ": permission denied (run as root)"));
    return absl::UnavailableError(
        absl::StrCat("cannot reach skiff-agent at ", t.socket, ": ", why, " (", kHint, ")"));
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, t.socket.c_str(), sizeof(addr.sun_path) - 1);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  close(fd);
  if (rc != 0) {
    if (err == EACCES || err == EPERM)
      return absl::PermissionDeniedError(
          absl::StrCat("cannot reach skiff-agent at ", t.socket,
                       ": permission denied (the socket is 0600: run as root)"));
    std::string why = err == ECONNREFUSED
                          ? "nothing is listening (stale socket of an agent that exited)"
                          : std::strerror(err);
    return absl::UnavailableError(
        absl::StrCat("cannot reach skiff-agent at ", t.socket, ": ", why, " (", kHint, ")"));
  }
  return grpc::CreateChannel("unix:" + t.socket, grpc::InsecureChannelCredentials());
}

Failure FromStatus(const absl::Status& st, const Target& t) {
  Failure f{std::string(st.message()), kExitError};
  switch (st.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kDeadlineExceeded:
      f.exit_code = kExitUnreachable;
      break;
    case absl::StatusCode::kInvalidArgument:
      f.exit_code = kExitUsage;
      break;
    case absl::StatusCode::kNotFound:
      f.exit_code = kExitNotFound;
      break;
    default:
      break;
  }
  return f;
}

Failure FromGrpc(const grpc::Status& st, const Target& t) {
  if (st.error_code() == grpc::StatusCode::UNAVAILABLE ||
      st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
    return {absl::StrCat("cannot reach skiff-agent at ", t.Describe(), ": ", st.error_message(),
                         " (", kHint, ")"),
            kExitUnreachable};
  return FromStatus(
      absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message()), t);
}

std::unique_ptr<grpc::ClientContext> UnaryContext() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return ctx;
}

}  // namespace skiff::cli
