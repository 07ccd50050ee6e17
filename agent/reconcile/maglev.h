// Maglev lookup tables (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016, section 3.4), the agent half of SKIFF_LB_ALG_MAGLEV (maps/lb.h).
//
// Each backend is known by a stable name (its "ip:port", the same on every node, unlike
// backend ids). Two seeded hashes of the name give offset in [0, M) and skip in [1, M); the
// backend's preference list is offset, offset + skip, offset + 2 * skip, ... (mod M, a prime,
// so every slot appears once). Backends take turns claiming their next free preferred slot
// until all M slots are owned. Every backend gets M/N slots give or take one, and removing
// one of N backends reassigns its slots plus only a small fraction of the others' (the
// paper's "minimal disruption"). Backends are ordered by name first, so the same set gives
// the same table whatever order it arrives in, on every node.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace skiff::reconcile {

struct MaglevBackend {
  std::string name;  // stable across nodes: "ip:port"
  uint32_t id = 0;   // what the table holds (the node-local backend id)
};

// Whether `m` can be a table size: a prime in [SKIFF_MAGLEV_TABLE_SIZE_MIN,
// SKIFF_MAGLEV_TABLE_SIZE_MAX] (maps/lb.h). InvalidArgument naming --maglev-table-size if not.
absl::Status ValidateMaglevTableSize(uint32_t m);

// The table of size m (a prime, see above) for `backends`, with the hashes seeded by `seed`.
// Slot i holds the id of the backend flows hashing to i go to. Empty when backends is.
std::vector<uint32_t> MaglevTable(std::vector<MaglevBackend> backends, uint32_t m, uint32_t seed);

}  // namespace skiff::reconcile
