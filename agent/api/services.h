// The gRPC services of skiff.v1 over an AgentCore (core.h). Each call reads the core afresh;
// nothing here caches datapath state.
//
// Threads: gRPC's synchronous server runs every call on one of its own threads, several at a
// time; the services keep no mutable state of their own, and the core is safe to call from
// any thread (core.h).
#pragma once

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "agent/api/core.h"
#include "skiff/v1/conntrack.grpc.pb.h"
#include "skiff/v1/endpoints.grpc.pb.h"
#include "skiff/v1/maps.grpc.pb.h"
#include "skiff/v1/services.grpc.pb.h"
#include "skiff/v1/status.grpc.pb.h"

namespace skiff::api {

// absl and gRPC share the canonical code numbers.
grpc::Status ToGrpc(const absl::Status& st);

class StatusServiceImpl final : public v1::StatusService::Service {
 public:
  explicit StatusServiceImpl(const AgentCore* core) : core_(core) {}
  grpc::Status GetStatus(grpc::ServerContext* ctx, const v1::GetStatusRequest* req,
                         v1::GetStatusResponse* resp) override;

 private:
  const AgentCore* core_;
};

class MapServiceImpl final : public v1::MapService::Service {
 public:
  explicit MapServiceImpl(const AgentCore* core) : core_(core) {}
  grpc::Status ListMaps(grpc::ServerContext* ctx, const v1::ListMapsRequest* req,
                        v1::ListMapsResponse* resp) override;
  grpc::Status DumpMap(grpc::ServerContext* ctx, const v1::DumpMapRequest* req,
                       grpc::ServerWriter<v1::DumpMapResponse>* writer) override;

 private:
  const AgentCore* core_;
};

class ServiceServiceImpl final : public v1::ServiceService::Service {
 public:
  explicit ServiceServiceImpl(const AgentCore* core) : core_(core) {}
  grpc::Status ListServices(grpc::ServerContext* ctx, const v1::ListServicesRequest* req,
                            v1::ListServicesResponse* resp) override;
  grpc::Status GetService(grpc::ServerContext* ctx, const v1::GetServiceRequest* req,
                          v1::Service* resp) override;

 private:
  const AgentCore* core_;
};

class EndpointServiceImpl final : public v1::EndpointService::Service {
 public:
  explicit EndpointServiceImpl(const AgentCore* core) : core_(core) {}
  grpc::Status ListEndpoints(grpc::ServerContext* ctx, const v1::ListEndpointsRequest* req,
                             v1::ListEndpointsResponse* resp) override;

 private:
  const AgentCore* core_;
};

class ConntrackServiceImpl final : public v1::ConntrackService::Service {
 public:
  explicit ConntrackServiceImpl(AgentCore* core) : core_(core) {}
  grpc::Status ListConntrack(grpc::ServerContext* ctx, const v1::ListConntrackRequest* req,
                             grpc::ServerWriter<v1::ListConntrackResponse>* writer) override;
  grpc::Status FlushConntrack(grpc::ServerContext* ctx, const v1::FlushConntrackRequest* req,
                              v1::FlushConntrackResponse* resp) override;

 private:
  AgentCore* core_;
};

// Entries per streamed message: large enough to amortize a write, small enough that a dump
// holds well under a megabyte at a time.
inline constexpr int kStreamBatch = 512;

}  // namespace skiff::api
