// Conntrack filters (skiff.v1.ConntrackFilter) parsed once per call and matched per entry,
// the translation of an entry into skiff.v1.ConntrackEntry, and the peer of an entry (the
// other direction of the same flow), so a flush never leaves half a flow behind.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "agent/api/lb_view.h"
#include "maps/ct.h"
#include "skiff/v1/conntrack.pb.h"

namespace skiff::api {

struct CtFilter {
  std::optional<uint32_t> ip;    // network order
  std::optional<uint16_t> port;  // network order
  std::optional<uint8_t> proto;
  std::optional<std::set<uint32_t>> rev_nat_ids;  // set: the service filter

  bool Matches(const skiff_ct4_key& k, const skiff_ct_entry& e) const;
};

// InvalidArgument for a malformed field, NotFound for a service the maps do not hold.
absl::StatusOr<CtFilter> ParseCtFilter(const v1::ConntrackFilter& f, const LbView& view);

void FillCtEntry(const skiff_ct4_key& k, const skiff_ct_entry& e, int64_t now_s,
                 const std::map<uint32_t, std::string>& service_of_rev_nat,
                 v1::ConntrackEntry* out);

// The other entry of the flow (see maps/ct.h); hairpin_addr in network order.
skiff_ct4_key CtPeerKey(const skiff_ct4_key& k, const skiff_ct_entry& e, uint32_t hairpin_addr);

}  // namespace skiff::api
