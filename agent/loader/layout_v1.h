// The v1 layouts of the maps whose layout changed in v2 (32-bit rev-NAT ids, issue 8; the
// backends map became an array indexed by backend id, issue 8), frozen: an agent that finds a
// v1 pin reads it through these to convert its entries (agent/loader/map_upgrade.h). Nothing
// else may use them; the live layouts are in maps/*.h.
#pragma once

#include <linux/types.h>

namespace skiff::loader::v1 {

inline constexpr char kServices[] = "skiff_lb4_services_v1";
inline constexpr char kRevNat[] = "skiff_lb4_revnat_v1";
inline constexpr char kAffinity[] = "skiff_lb4_affinity_v1";
inline constexpr char kSrcRange[] = "skiff_lb4_src_range_v1";
inline constexpr char kMaglev[] = "skiff_lb4_maglev_v1";
inline constexpr char kCt4[] = "skiff_ct4_global_v1";
inline constexpr char kEvents[] = "skiff_events_v1";
// A hash keyed by the __u32 backend id; its value (skiff_lb4_backend) did not change.
inline constexpr char kBackends[] = "skiff_lb4_backends_v1";

struct Lb4Service {
  __u32 backend_id;
  __u16 count;
  __u16 terminating_count;
  __u16 rev_nat_id;
  __u8 flags;
  __u8 algorithm;
  __u32 affinity_timeout;
};
static_assert(sizeof(Lb4Service) == 16);

// The revnat map's key was a __u16; its value (skiff_lb4_revnat) did not change.

struct Lb4AffinityKey {
  __be32 client;
  __u16 rev_nat_id;
  __u16 pad;
};
static_assert(sizeof(Lb4AffinityKey) == 8);

struct Lb4SrcRangeKey {
  __u32 prefixlen;
  __u16 rev_nat_id;
  __u16 pad;
  __be32 address;
};
static_assert(sizeof(Lb4SrcRangeKey) == 12);

struct CtEntry {
  __u64 packets;
  __u64 bytes;
  __u32 expires;
  __u32 created;
  __u32 backend_id;
  __u16 rev_nat_id;
  __u8 flags;
  __u8 tcp_flags;
  __be32 nat_addr;
  __be16 nat_port;
  __u16 pad;
  __be32 orig_addr;
  __be16 orig_port;
  __u16 pad2;
};
static_assert(sizeof(CtEntry) == 48);

}  // namespace skiff::loader::v1
