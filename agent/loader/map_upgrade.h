// Layout upgrades of pinned maps. A map whose layout changes gets a new version suffix
// (maps/names.h), so libbpf never re-uses a pin it would misread. What happens to the
// previous version's pin is decided here, per map, right after the new object is loaded and
// before anything reads the new maps:
//  - converted: every entry is read through the frozen old layout (layout_v1.h), converted
//    and written into the new map, then the old pin is removed. Ids (rev-NAT, backend) and
//    conntrack entries survive, so the reconciler rewrites nothing that is right and
//    established flows keep their backend and reverse NAT;
//  - dropped: the old pin is removed without copying (maglev tables, which the reconciler
//    rebuilds; the events ring, whose records are transient).
// The old programs keep running on the (now unpinned) old maps until the new programs
// replace them a moment later; flows created in that window exist only in the old
// conntrack map and are re-balanced when their next packet meets the new datapath
// (docs/maps.md, "Layout changes").
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff::loader {

struct LayoutUpgrade {
  std::string old_name;  // pin name of the previous version
  std::string new_name;  // the map in the new object
  uint32_t old_type = 0, old_key_size = 0, old_value_size = 0;
  // Writes the new key and value of one old entry; false skips it. Empty: the entries are
  // dropped, not converted.
  std::function<bool(const void* old_key, const void* old_value, void* new_key, void* new_value)>
      convert;
};

// The upgrades this agent knows (v1 -> v2: 32-bit rev-NAT ids; the backends map an array).
const std::vector<LayoutUpgrade>& KnownLayoutUpgrades();

// Whether the pin of any map in `upgrades` named `new_name` is still in its old version.
bool HasOldPin(const std::string& root, const std::string& new_name,
               const std::vector<LayoutUpgrade>& upgrades = KnownLayoutUpgrades());

// Call before load. A new-version pin beside an old-version pin of the same map is stale: an
// agent of this version removes the old pins once converted, so the old one is what ran last
// (a downgrade, or an upgrade interrupted before its old pins were removed). Removes such new
// pins, so the load creates them empty and UpgradePinnedLayouts converts the old ones again.
// Returns the names removed.
absl::StatusOr<std::vector<std::string>> DropStaleNewPins(
    const std::string& root, const std::vector<LayoutUpgrade>& upgrades = KnownLayoutUpgrades());

// Call after load. For each upgrade whose old pin exists under root: checks the pin's shape
// (an unexpected one is an error naming the map, and nothing is removed), converts or drops
// its entries as above, removes the pin. Returns one line per upgraded map for the log.
absl::StatusOr<std::vector<std::string>> UpgradePinnedLayouts(
    bpf_object* obj, const std::string& root,
    const std::vector<LayoutUpgrade>& upgrades = KnownLayoutUpgrades());

}  // namespace skiff::loader
