// FlowService (proto/skiff/v1/flows.proto) over the observer's FlowStore.
//
// Threads: gRPC runs Observe on its own threads, several at a time; the store is thread-safe
// and the service keeps no mutable state. A following call wakes at least every 200 ms to
// notice a cancelled client or a server shutdown.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "agent/observe/flow_store.h"
#include "skiff/v1/flows.grpc.pb.h"

namespace skiff::observe {

class FlowServiceImpl final : public v1::FlowService::Service {
 public:
  FlowServiceImpl(const FlowStore* store, std::string node_name)
      : store_(store), node_name_(std::move(node_name)) {}
  grpc::Status Observe(grpc::ServerContext* ctx, const v1::ObserveRequest* req,
                       grpc::ServerWriter<v1::Flow>* writer) override;

 private:
  const FlowStore* store_;
  std::string node_name_;
};

}  // namespace skiff::observe
