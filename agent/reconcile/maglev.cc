#include "agent/reconcile/maglev.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "maps/lb.h"

namespace skiff::reconcile {
namespace {

bool IsPrime(uint32_t n) {
  if (n < 2) return false;
  for (uint32_t d = 2; static_cast<uint64_t>(d) * d <= n; d++)
    if (n % d == 0) return false;
  return true;
}

// 64-bit FNV-1a over the name, then a murmur3 finalizer for avalanche: cheap, stable across
// platforms and releases (the tables of all nodes must agree).
uint64_t NameHash(const std::string& s, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

}  // namespace

absl::Status ValidateMaglevTableSize(uint32_t m) {
  if (m < SKIFF_MAGLEV_TABLE_SIZE_MIN || m > SKIFF_MAGLEV_TABLE_SIZE_MAX || !IsPrime(m))
    return absl::InvalidArgumentError(
        absl::StrCat("--maglev-table-size ", m, " must be a prime between ",
                     SKIFF_MAGLEV_TABLE_SIZE_MIN, " and ", SKIFF_MAGLEV_TABLE_SIZE_MAX,
                     " (e.g. 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071)"));
  return absl::OkStatus();
}

std::vector<uint32_t> MaglevTable(std::vector<MaglevBackend> backends, uint32_t m, uint32_t seed) {
  std::vector<uint32_t> table;
  if (backends.empty() || m == 0) return table;
  std::sort(backends.begin(), backends.end(),
            [](const MaglevBackend& a, const MaglevBackend& b) { return a.name < b.name; });
  const size_t n = backends.size();
  std::vector<uint64_t> offset(n), skip(n), next(n, 0);
  for (size_t i = 0; i < n; i++) {
    offset[i] = NameHash(backends[i].name, seed) % m;
    skip[i] = m == 1 ? 1 : NameHash(backends[i].name, ~static_cast<uint64_t>(seed)) % (m - 1) + 1;
  }
  constexpr uint32_t kFree = ~0u;
  std::vector<uint32_t> owner(m, kFree);
  uint32_t filled = 0;
  while (true) {
    for (size_t i = 0; i < n; i++) {
      // The backend's next preferred slot that is still free (the permutation visits every
      // slot once, so this ends while any slot is free).
      uint64_t c = (offset[i] + next[i] * skip[i]) % m;
      while (owner[c] != kFree) {
        next[i]++;
        c = (offset[i] + next[i] * skip[i]) % m;
      }
      owner[c] = static_cast<uint32_t>(i);
      next[i]++;
      if (++filled == m) {
        table.resize(m);
        for (uint32_t s = 0; s < m; s++) table[s] = backends[owner[s]].id;
        return table;
      }
    }
  }
}

}  // namespace skiff::reconcile
