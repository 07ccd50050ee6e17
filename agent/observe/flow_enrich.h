// Names for flow events: the pod behind an address and the Service behind a frontend, taken
// from the immutable snapshot the agent's main loop publishes to the API (api::StateBoard),
// so the observer never touches the object store. The lookup index is rebuilt only when a
// new snapshot appears.
//
// Threads: one FlowEnricher belongs to the flow reader's thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>

#include "agent/api/core.h"
#include "agent/observe/flow_store.h"

namespace skiff::observe {

class FlowEnricher {
 public:
  explicit FlowEnricher(const api::StateBoard* board) : board_(board) {}
  // Fills source_pod, destination_pod and service.
  void Enrich(FlowRecord& r);
  // Same, from a given state (tests).
  void EnrichFrom(const std::shared_ptr<const api::ApiState>& state, FlowRecord& r);

 private:
  void Rebuild(const api::ApiState& s);
  const api::StateBoard* board_;
  std::shared_ptr<const api::ApiState> state_;
  std::unordered_map<uint32_t, std::string> pod_by_ip_;  // network-order IPv4
  std::map<std::tuple<uint32_t, uint16_t, uint8_t>, std::string> service_by_frontend_;
};

}  // namespace skiff::observe
