// The agent's gRPC server: skiff.v1 services plus grpc.health.v1 (libgrpc++'s default
// health-check service) on a Unix socket, and optionally on TCP with TLS.
//
// Unix socket: the parent directory is created (0700 when created), a stale socket file from
// a previous run is replaced, a live one (another agent answering) is an error, and the
// socket is created with mode 0600 (umask held at 0177 while gRPC binds, then chmod).
// TCP: only with a certificate and key (mTLS when a client CA is given), or with
// `insecure` set explicitly.
//
// Threads: Start() and Shutdown() run on the agent's main thread; gRPC's own thread pool runs
// the calls (services.h).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/api/core.h"
#include "agent/observe/flow_store.h"

namespace skiff::api {

struct ServerOptions {
  std::string socket_path;  // required
  std::string tcp_listen;   // "HOST:PORT"; empty = no TCP listener
  std::string tls_cert;     // PEM files
  std::string tls_key;
  std::string tls_client_ca;  // set = clients must present a certificate signed by it
  bool insecure = false;      // allow TCP without TLS
  const observe::FlowStore* flows = nullptr;  // serves FlowService when set (docs/flows.md)
};

// Checks the TCP/TLS combination without touching anything (flag validation).
absl::Status ValidateServerOptions(const ServerOptions& o);

class ApiServer {
 public:
  static absl::StatusOr<std::unique_ptr<ApiServer>> Start(const ServerOptions& o, AgentCore* core);
  ~ApiServer();  // Shutdown()
  // Health turns NOT_SERVING, in-flight calls get a short grace period, then the socket goes.
  void Shutdown();
  // The TCP port actually bound (useful with port 0), or 0.
  int tcp_port() const { return tcp_port_; }

 private:
  ApiServer() = default;
  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::unique_ptr<grpc::Server> server_;
  std::string socket_path_;
  int tcp_port_ = 0;
};

}  // namespace skiff::api
