// A stored flow as the API's v1::Flow (proto/skiff/v1/flows.proto).
#pragma once

#include <string>

#include "agent/observe/flow_store.h"
#include "skiff/v1/flows.pb.h"

namespace skiff::observe {

void FillFlow(const FlowRecord& r, const std::string& node_name, v1::Flow* out);

}  // namespace skiff::observe
