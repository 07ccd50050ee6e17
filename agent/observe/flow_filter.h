// `Observe` requests (proto/skiff/v1/flows.proto) checked once and matched against stored
// flows: values of one filter field are alternatives, different fields must all match
// (Hubble's semantics). Pure code: unit-tested without the agent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/observe/flow_store.h"
#include "skiff/v1/flows.pb.h"

namespace skiff::observe {

struct Cidr4 {
  uint32_t net = 0;   // host byte order, masked
  uint32_t mask = 0;  // host byte order
  bool Contains(uint32_t addr_be) const;
};

struct FlowFilter {
  std::vector<Cidr4> ip, source_ip, destination_ip;
  std::vector<uint16_t> ports;  // host byte order
  std::vector<uint8_t> protocols;
  std::vector<uint8_t> verdicts;  // SKIFF_VERDICT_*
  std::vector<std::string> pods;  // "namespace/name" or "namespace/"
  std::vector<std::string> services;
  std::vector<int> drop_reasons;
  std::vector<uint8_t> event_types;  // SKIFF_EVENT_*
  bool Matches(const FlowRecord& r) const;
};

struct FlowQuery {
  FlowFilter filter;
  uint64_t last = 0;  // 0: every buffered match
  bool follow = false;
  int64_t since_unix_ns = 0;
};

// INVALID_ARGUMENT naming the field (e.g. "filter.ip: '10.0.0.300' is not an IPv4 address or
// CIDR") for a bad value.
absl::StatusOr<FlowFilter> ParseFlowFilter(const v1::FlowFilter& f);
absl::StatusOr<FlowQuery> ParseObserveRequest(const v1::ObserveRequest& req);

// The buffered records a query returns before following: since, filter, then the last N.
std::vector<FlowRecord> SelectBuffered(std::vector<FlowRecord> records, const FlowQuery& q);

// Short names: "trace_new", "trace_close", "drop"; "FORWARDED", "DROPPED", "TRANSLATED".
const char* EventTypeName(uint8_t type);
const char* VerdictName(uint8_t verdict);

}  // namespace skiff::observe
