// StatusService and MapService.
#include "absl/strings/str_cat.h"
#include "agent/api/map_decode.h"
#include "agent/api/services.h"

namespace skiff::api {

grpc::Status ToGrpc(const absl::Status& st) {
  if (st.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), std::string(st.message()));
}

namespace {

// Counts entries of every pinned map; a map that cannot be read is reported with 0 entries
// rather than failing the whole status.
absl::Status FillMaps(const AgentCore* core, google::protobuf::RepeatedPtrField<v1::MapInfo>* out) {
  for (const auto& name : core->MapNames()) {
    auto r = core->OpenMap(name);
    if (!r.ok()) return r.status();
    auto n = (*r)->Count();
    if (!n.ok()) return n.status();
    FillMapInfo((*r)->meta(), *n, out->Add());
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status StatusServiceImpl::GetStatus(grpc::ServerContext*, const v1::GetStatusRequest*,
                                          v1::GetStatusResponse* resp) {
  StaticInfo info = core_->Info();
  auto state = core_->State();
  resp->set_version(info.version);
  resp->set_kernel(info.kernel);
  resp->set_node_name(info.node_name);
  resp->set_uptime_seconds(core_->UptimeSeconds());
  resp->set_synced(state->objects.synced);
  for (const auto& [name, synced] : state->sources) {
    auto* s = resp->add_sources();
    s->set_name(name);
    s->set_synced(synced);
  }
  resp->set_generation(state->objects.generation);
  resp->set_objects(static_cast<int64_t>(state->objects.size()));
  resp->set_frontends(static_cast<int32_t>(state->desired.frontends.size()));
  for (const auto& e : state->reconcile_errors) resp->add_reconcile_errors(e);
  for (const auto& p : state->programs) {
    auto* a = resp->add_programs();
    a->set_interface(p.iface);
    a->set_ifindex(p.ifindex);
    a->set_hook(p.hook);
    a->set_program(p.program);
  }
  return ToGrpc(FillMaps(core_, resp->mutable_maps()));
}

grpc::Status MapServiceImpl::ListMaps(grpc::ServerContext*, const v1::ListMapsRequest*,
                                      v1::ListMapsResponse* resp) {
  return ToGrpc(FillMaps(core_, resp->mutable_maps()));
}

grpc::Status MapServiceImpl::DumpMap(grpc::ServerContext* ctx, const v1::DumpMapRequest* req,
                                     grpc::ServerWriter<v1::DumpMapResponse>* writer) {
  if (req->name().empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "map name is required"};
  auto r = core_->OpenMap(req->name());
  if (!r.ok()) return ToGrpc(r.status());
  const MapMeta& meta = (*r)->meta();
  v1::DumpMapResponse batch;
  FillMapInfo(meta, 0, batch.mutable_map());
  batch.mutable_map()->clear_entries();
  uint64_t sent = 0;
  bool aborted = false;
  auto st = (*r)->ForEach([&](Bytes k, Bytes v) {
    if (req->limit() && sent >= req->limit()) return false;
    DecodeMapEntry(meta, k, v, batch.add_entries());
    sent++;
    if (batch.entries_size() >= kStreamBatch) {
      if (ctx->IsCancelled() || !writer->Write(batch)) {
        aborted = true;
        return false;
      }
      batch.Clear();
    }
    return true;
  });
  if (aborted) return {grpc::StatusCode::CANCELLED, "client went away"};
  if (!st.ok()) return ToGrpc(st);
  // Always end with a message, so an empty map still tells the client its shape.
  if (batch.entries_size() > 0 || sent == 0 || batch.has_map()) writer->Write(batch);
  return grpc::Status::OK;
}

}  // namespace skiff::api
