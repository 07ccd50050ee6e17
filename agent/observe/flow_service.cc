#include "agent/observe/flow_service.h"

#include "agent/observe/flow_filter.h"
#include "agent/observe/flow_proto.h"

namespace skiff::observe {

grpc::Status FlowServiceImpl::Observe(grpc::ServerContext* ctx, const v1::ObserveRequest* req,
                                      grpc::ServerWriter<v1::Flow>* writer) {
  auto q = ParseObserveRequest(*req);
  if (!q.ok())
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(q.status().message()));
  // The cursor is taken with the snapshot, so following continues exactly after it.
  std::vector<FlowRecord> buffered = store_->Since(0);
  uint64_t cursor = buffered.empty() ? 0 : buffered.back().seq;
  for (const auto& r : SelectBuffered(std::move(buffered), *q)) {
    v1::Flow f;
    FillFlow(r, node_name_, &f);
    if (!writer->Write(f)) return grpc::Status::OK;  // the client went away
  }
  if (!q->follow) return grpc::Status::OK;
  while (!ctx->IsCancelled()) {
    if (!store_->WaitNewer(cursor, std::chrono::milliseconds(200))) continue;
    for (const auto& r : store_->Since(cursor)) {
      cursor = r.seq;
      if (r.time_unix_ns < q->since_unix_ns || !q->filter.Matches(r)) continue;
      v1::Flow f;
      FillFlow(r, node_name_, &f);
      if (!writer->Write(f)) return grpc::Status::OK;
    }
  }
  return grpc::Status::OK;
}

}  // namespace skiff::observe
