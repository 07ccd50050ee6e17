// The service maps read back and grouped per frontend, joined with the model's names. Shared
// by ServiceService (what each frontend holds), EndpointService and ConntrackService (which
// rev-NAT ids belong to which Service).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/api/core.h"
#include "agent/model/desired_state.h"
#include "maps/lb.h"

namespace skiff::api {

struct LbFrontendEntries {
  bool present = false;  // external slot 0 exists
  skiff_lb4_service slot0{};
  std::map<uint16_t, uint32_t> slots;  // external scope: slot -> backend id
};

struct LbView {
  std::map<model::FrontendKey, LbFrontendEntries> frontends;
  std::map<uint32_t, skiff_lb4_backend> backends;
  // rev-NAT id -> "namespace/name" of the Service whose frontend holds it.
  std::map<uint32_t, std::string> service_of_rev_nat;
};

// Reads the services and backends maps (bounded by --lb-map-max, so materializing is fine).
absl::StatusOr<LbView> ReadLbView(const AgentCore& core, const ApiState& state);

model::FrontendKey FrontendKeyOf(const skiff_lb4_key& k);

}  // namespace skiff::api
