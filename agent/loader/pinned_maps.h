// Pinned maps across agent restarts and upgrades.
//
// libbpf re-uses a pinned map (LIBBPF_PIN_BY_NAME) only when type, key size, value size,
// max_entries and flags all match, and fails the whole load otherwise. Before loading, the
// agent checks each pin itself:
//  - same shape: re-used as is (ids and conntrack survive the restart);
//  - only max_entries differs (an operator changed --ct-max, --lb-map-max, ...): an explicit
//    migration — the old pin is moved aside, the new map is created at load, the entries are
//    copied over, then the old pin is removed. Ids do not change (Cilium #31069);
//  - type, key or value size differs: a clear error naming the map and the field. A layout
//    change must bump the map's version suffix (maps/names.h), never reuse a name.
#pragma once

#include <bpf/libbpf.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace skiff::loader {

struct MapMigration {
  std::string name;
  std::string old_pin;  // where the previous map was moved
  uint32_t old_max = 0;
  uint32_t new_max = 0;
};

// Gives every map of obj that `from` pins under the same name the shape of from's (max
// entries, value size): a second object sharing the first one's pins (libbpf reuses a pin
// only when its shape matches). Call after open, before PreparePinnedMaps.
absl::Status ShareMapShapes(bpf_object* obj, const bpf_object* from);

// Call after open and after every bpf_map__set_max_entries, before load. Sets each map's pin
// path under root.
absl::StatusOr<std::vector<MapMigration>> PreparePinnedMaps(bpf_object* obj,
                                                            const std::string& root);

// Call after a successful load: copies entries into the new maps and drops the old pins.
absl::Status FinishMigrations(bpf_object* obj, const std::vector<MapMigration>& migrations);

// Call when the load failed: puts the moved pins back so the running datapath stays whole.
void AbortMigrations(const std::vector<MapMigration>& migrations, const std::string& root);

}  // namespace skiff::loader
