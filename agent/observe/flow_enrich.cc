#include "agent/observe/flow_enrich.h"

#include <arpa/inet.h>

namespace skiff::observe {

void FlowEnricher::Rebuild(const api::ApiState& s) {
  pod_by_ip_.clear();
  service_by_frontend_.clear();
  for (const auto& [id, pod] : s.objects.pods) {
    if (pod->phase == "Succeeded" || pod->phase == "Failed") continue;
    for (const auto& ip : pod->pod_ips)
      if (ip.family == 4)
        pod_by_ip_.emplace(ip.V4(), pod->metadata.namespace_.str() + "/" + pod->metadata.name);
  }
  for (const auto& [key, fe] : s.desired.frontends)
    if (key.vip.family == 4)
      service_by_frontend_.emplace(
          std::tuple{key.vip.V4(), key.port, static_cast<uint8_t>(key.proto)}, fe.service);
}

void FlowEnricher::Enrich(FlowRecord& r) {
  if (board_) EnrichFrom(board_->Get(), r);
}

void FlowEnricher::EnrichFrom(const std::shared_ptr<const api::ApiState>& state, FlowRecord& r) {
  if (state && state != state_) {
    state_ = state;
    Rebuild(*state_);
  }
  auto pod = [&](uint32_t ip) -> std::string {
    auto it = pod_by_ip_.find(ip);
    return it == pod_by_ip_.end() ? "" : it->second;
  };
  const skiff_flow_event& e = r.ev;
  if (e.family != SKIFF_AF_INET) return;
  r.source_pod = pod(e.orig_saddr);
  const bool x = e.flags & SKIFF_EVENT_F_XLATED;
  r.destination_pod = pod(x ? e.xlated_daddr : e.orig_daddr);
  // A translated flow's frontend is its original destination; a drop to a frontend (e.g. no
  // backends) names the service too.
  auto it = service_by_frontend_.find({e.orig_daddr, ntohs(e.orig_dport), e.proto});
  if (it != service_by_frontend_.end()) r.service = it->second;
}

}  // namespace skiff::observe
