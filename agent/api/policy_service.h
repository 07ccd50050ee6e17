// PolicyService (proto/skiff/v1/policy.proto): what NetworkPolicy this node enforces, per
// endpoint, and the verdict the datapath would reach for one connection (docs/policy.md).
// Every answer joins the compiled policy the main loop last applied (ApiState::policy) with
// the pinned maps read afresh (policy_maps.h); where they disagree the answer says so.
//
// Threads: like every service (services.h), stateless; the core is safe from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "agent/api/core.h"
#include "skiff/v1/policy.grpc.pb.h"

namespace skiff::api {

// The calls without gRPC, for unit tests.
absl::StatusOr<v1::ListPolicyEndpointsResponse> ListPolicyEndpoints(
    const AgentCore& core, const v1::ListPolicyEndpointsRequest& req);
absl::StatusOr<v1::PolicyEndpoint> GetPolicyEndpoint(const AgentCore& core,
                                                     const v1::GetPolicyEndpointRequest& req);
absl::StatusOr<v1::PolicyTraceResponse> TracePolicy(const AgentCore& core,
                                                    const v1::PolicyTraceRequest& req);

class PolicyServiceImpl final : public v1::PolicyService::Service {
 public:
  explicit PolicyServiceImpl(const AgentCore* core) : core_(core) {}
  grpc::Status ListEndpoints(grpc::ServerContext* ctx, const v1::ListPolicyEndpointsRequest* req,
                             v1::ListPolicyEndpointsResponse* resp) override;
  grpc::Status GetEndpoint(grpc::ServerContext* ctx, const v1::GetPolicyEndpointRequest* req,
                           v1::PolicyEndpoint* resp) override;
  grpc::Status Trace(grpc::ServerContext* ctx, const v1::PolicyTraceRequest* req,
                     v1::PolicyTraceResponse* resp) override;

 private:
  const AgentCore* core_;
};

}  // namespace skiff::api
