// How agentctl reaches the agent (Unix socket by default, TCP with TLS on request) and how it
// turns failures into one-line messages and stable exit codes (docs/cli.md).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace skiff::cli {

// Exit codes: a contract for scripts.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;        // the agent reported an error
inline constexpr int kExitUsage = 2;        // bad flags or arguments
inline constexpr int kExitUnreachable = 3;  // no agent at the socket/address
inline constexpr int kExitNotFound = 4;     // the named service/map does not exist

struct Target {
  std::string socket = "/run/skiff/agent.sock";
  std::string server;  // HOST:PORT: use TCP instead of the socket
  std::string tls_ca, tls_cert, tls_key;
  bool insecure = false;
  std::string Describe() const;  // "unix:/run/skiff/agent.sock" / "host:port"
};

// Checks the socket first, so "not running" is told precisely (missing file, refused,
// permission denied) instead of gRPC's generic UNAVAILABLE. Unavailable/PermissionDenied
// carry the one-line message to print.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const Target& t);

// The one-line message and exit code for a failed call.
struct Failure {
  std::string message;
  int exit_code = kExitError;
};
Failure FromGrpc(const grpc::Status& st, const Target& t);
Failure FromStatus(const absl::Status& st, const Target& t);

// A context with a deadline for unary calls; streams get none (they may be long).
std::unique_ptr<grpc::ClientContext> UnaryContext();

}  // namespace skiff::cli
