#include "agent/api/policy_maps.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "maps/names.h"

namespace skiff::api {
namespace {

// Whether the first `bits` bits of `a` and `b` (n bytes each) are equal.
bool PrefixEqual(const uint8_t* a, const uint8_t* b, uint32_t bits, size_t n) {
  if (bits > n * 8) return false;
  size_t full = bits / 8;
  if (std::memcmp(a, b, full) != 0) return false;
  uint32_t rest = bits % 8;
  if (!rest) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

// The data bytes of an LPM key: everything after its __u32 prefixlen.
template <typename K>
const uint8_t* Data(const K& k) {
  return reinterpret_cast<const uint8_t*>(&k) + sizeof(__u32);
}
template <typename K>
constexpr size_t DataSize() {
  return sizeof(K) - sizeof(__u32);
}

template <typename K, typename V>
absl::Status ReadAll(const AgentCore& core, const char* name, std::vector<std::pair<K, V>>* out) {
  auto r = core.OpenMap(name);
  if (!r.ok()) return r.status();
  const MapMeta& m = (*r)->meta();
  if (m.key_size != sizeof(K) || m.value_size != sizeof(V))
    return absl::FailedPreconditionError(absl::StrCat("map ", name, ": key/value size ", m.key_size,
                                                      "/", m.value_size, ", expected ", sizeof(K),
                                                      "/", sizeof(V)));
  return (*r)->ForEach([&](Bytes k, Bytes v) {
    std::pair<K, V> e;
    std::memcpy(&e.first, k.data(), sizeof(K));
    std::memcpy(&e.second, v.data(), sizeof(V));
    out->push_back(e);
    return true;
  });
}

}  // namespace

absl::StatusOr<PolicyMapsSnapshot> PolicyMapsSnapshot::Read(const AgentCore& core) {
  PolicyMapsSnapshot s;
  if (auto st = ReadAll(core, SKIFF_STR(SKIFF_MAP_IPCACHE4), &s.ipcache); !st.ok()) return st;
  if (auto st = ReadAll(core, SKIFF_STR(SKIFF_MAP_POLICY4), &s.policy); !st.ok()) return st;
  std::vector<std::pair<__u32, skiff_pol_state>> state;
  if (auto st = ReadAll(core, SKIFF_STR(SKIFF_MAP_POL_STATE), &state); !st.ok()) return st;
  for (const auto& [k, v] : state)
    if (k == 0) s.state_flags = v.flags;
  return s;
}

const skiff_ipcache_val* PolicyMapsSnapshot::LookupIpcache(uint32_t addr) const {
  skiff_ipcache_key want{};
  want.prefixlen = 32;
  want.addr = addr;
  const skiff_ipcache_val* best = nullptr;
  uint32_t best_len = 0;
  for (const auto& [k, v] : ipcache) {
    if (k.prefixlen > 32 || (best && k.prefixlen <= best_len)) continue;
    if (!PrefixEqual(Data(k), Data(want), k.prefixlen, DataSize<skiff_ipcache_key>())) continue;
    best = &v;
    best_len = k.prefixlen;
  }
  return best;
}

uint32_t PolicyMapsSnapshot::IdentityOf(uint32_t addr) const {
  const skiff_ipcache_val* v = LookupIpcache(addr);
  return v ? v->identity : SKIFF_IDENTITY_WORLD;
}

const std::pair<skiff_policy_key, skiff_policy_val>* PolicyMapsSnapshot::LookupPolicy(
    uint32_t endpoint_id, uint32_t identity, uint8_t direction, uint8_t proto,
    uint16_t port) const {
  skiff_policy_key want{};
  want.prefixlen = SKIFF_POLICY_PREFIX_FULL;
  want.endpoint_id = endpoint_id;
  want.identity = identity;
  want.direction = direction;
  want.proto = proto;
  want.dport = htons(port);
  const std::pair<skiff_policy_key, skiff_policy_val>* best = nullptr;
  for (const auto& e : policy) {
    uint32_t len = e.first.prefixlen;
    if (len > SKIFF_POLICY_PREFIX_FULL || (best && len <= best->first.prefixlen)) continue;
    if (!PrefixEqual(Data(e.first), Data(want), len, DataSize<skiff_policy_key>())) continue;
    best = &e;
  }
  return best;
}

bool PolicyMapsSnapshot::Allows(uint32_t endpoint_id, uint32_t identity, uint8_t direction,
                                uint8_t proto, uint16_t port,
                                const std::pair<skiff_policy_key, skiff_policy_val>** hit) const {
  *hit = nullptr;
  if (identity == SKIFF_IDENTITY_HOST) return true;
  *hit = LookupPolicy(endpoint_id, identity, direction, proto, port);
  if (!*hit) *hit = LookupPolicy(endpoint_id, SKIFF_IDENTITY_ANY, direction, proto, port);
  return *hit != nullptr;
}

}  // namespace skiff::api
