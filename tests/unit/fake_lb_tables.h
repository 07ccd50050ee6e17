// In-memory LB maps for reconciler tests: one FakeKvTable per map, named as the pinned maps
// are (maps/names.h), so a renamed map version cannot leave the tests behind.
#pragma once

#include <cstdint>
#include <optional>

#include "agent/reconcile/kv_table.h"
#include "agent/reconcile/lb_reconciler.h"
#include "maps/lb.h"
#include "maps/names.h"

namespace skiff::reconcile {

struct FakeLbTables {
  FakeKvTable<skiff_lb4_key, skiff_lb4_service> services{SKIFF_STR(SKIFF_MAP_LB4_SERVICES), 1000};
  FakeKvTable<__u32, skiff_lb4_backend> backends{SKIFF_STR(SKIFF_MAP_LB4_BACKENDS), 1000};
  FakeKvTable<__u32, skiff_lb4_revnat> revnat{SKIFF_STR(SKIFF_MAP_LB4_REVNAT), 1000};
  FakeKvTable<skiff_lb4_affinity_key, skiff_lb_affinity_val> affinity{
      SKIFF_STR(SKIFF_MAP_LB4_AFFINITY), 1000};
  FakeKvTable<skiff_lb4_src_range_key, skiff_lb4_src_range_val> src_ranges{
      SKIFF_STR(SKIFF_MAP_LB4_SRC_RANGE), 1000};

  // Without a Maglev table map: maglev frontends fall back to the random pick.
  LbTables View() { return LbTables{&services, &backends, &revnat, &affinity, &src_ranges}; }
  void ClearLogs() {
    services.ClearLog();
    backends.ClearLog();
    revnat.ClearLog();
    affinity.ClearLog();
    src_ranges.ClearLog();
  }
  std::optional<skiff_lb4_service> Slot(const model::FrontendKey& k, uint16_t slot,
                                        uint8_t scope = SKIFF_SCOPE_EXTERNAL) {
    auto it = services.entries().find(MakeLb4Key(k, scope, slot));
    if (it == services.entries().end()) return std::nullopt;
    return it->second;
  }
};

}  // namespace skiff::reconcile
