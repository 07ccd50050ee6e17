// The service datapath (bpf/lxc.bpf.c) loaded for PROG_TEST_RUN tests and benchmarks: the
// skeleton with pinning disabled (tests must not touch the bpffs of a running agent) and
// typed handles on every map, plus helpers that write services the way the agent's
// reconciler does (maps/lb.h) and read conntrack/affinity/metrics back.
#pragma once

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <time.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "agent/loader/skeleton.h"
#include "maps/config.h"  // before the skeleton: its rodata holds struct skiff_config
#include "lxc.skel.h"
#include "maps/ct.h"
#include "maps/lb.h"
#include "maps/map.h"
#include "maps/metrics.h"
#include "maps/slot_array.h"
#include "tests/harness/packet.h"

namespace skiff::testing {

inline uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}
inline uint32_t MonotonicSec() { return static_cast<uint32_t>(MonotonicNs() / 1000000000ull); }

struct BackendSpec {
  uint32_t id;
  const char* ip;
  uint16_t port;
  uint8_t proto = 6;
  uint8_t state = SKIFF_BACKEND_ACTIVE;
  uint8_t flags = 0;
};

// One frontend in the slot model: active backend ids, then terminating ones.
struct ServiceSpec {
  const char* vip;
  uint16_t port;
  uint8_t proto = 6;
  uint32_t rev_nat_id = 1;
  std::vector<uint32_t> active;
  std::vector<uint32_t> terminating;
  uint8_t flags = SKIFF_SVC_F_CLUSTER_IP;
  uint32_t affinity_timeout = 0;
  // internalTrafficPolicy Local: the node-local set (SKIFF_SCOPE_INTERNAL entries).
  std::optional<std::pair<std::vector<uint32_t>, std::vector<uint32_t>>> local;
  uint8_t algorithm = SKIFF_LB_ALG_RANDOM;  // SKIFF_LB_ALG_MAGLEV: see AddMaglevTable
};

class LbEnv {
 public:
  // events_ring: the flow-event ring buffer's size in bytes (0: the default);
  // maglev_table_size: --maglev-table-size (the modulus and the maglev map's value size);
  // host_routing: --host-routing=bpf (off by default: tests that run in the machine's own
  // network namespace must not consult its FIB).
  static absl::StatusOr<std::unique_ptr<LbEnv>> Load(
      uint32_t ct_max = 4096, uint32_t events_ring = 0,
      uint32_t maglev_table_size = SKIFF_MAGLEV_TABLE_SIZE_DEFAULT, bool host_routing = false) {
    auto skel = OpenSkeleton<lxc_bpf>(lxc_bpf__open, lxc_bpf__destroy);
    if (!skel.ok()) return skel.status();
    // As the agent does (loader/datapath.cc): the table size is the modulus and the value size.
    if (int err = bpf_map__set_value_size((*skel)->maps.SKIFF_MAP_LB4_MAGLEV,
                                          maglev_table_size * sizeof(__u32)))
      return ErrnoStatus(err, "sizing maglev tables");
    (*skel)->rodata->skiff_config.maglev_table_size = maglev_table_size;
    (*skel)->rodata->skiff_config.host_routing = host_routing ? 1 : 0;
    bpf_map* m;
    bpf_object__for_each_map(m, (*skel)->obj) {
      if (int err = bpf_map__set_pin_path(m, nullptr)) return ErrnoStatus(err, "unpinning");
    }
    if (int err = bpf_map__set_max_entries((*skel)->maps.SKIFF_MAP_CT4, ct_max))
      return ErrnoStatus(err, "sizing conntrack");
    if (events_ring != 0)
      if (int err = bpf_map__set_max_entries((*skel)->maps.SKIFF_MAP_EVENTS, events_ring))
        return ErrnoStatus(err, "sizing the event ring");
    if (auto st = skel->Load(lxc_bpf__load); !st.ok()) return st;
    std::unique_ptr<LbEnv> env(new LbEnv());
    env->skel = std::move(*skel);
    lxc_bpf* s = env->skel.get();
    auto services = Map<skiff_lb4_key, skiff_lb4_service>::From(s->maps.SKIFF_MAP_LB4_SERVICES);
    auto backends = BackendArray::From(s->maps.SKIFF_MAP_LB4_BACKENDS);
    auto revnat = Map<__u32, skiff_lb4_revnat>::From(s->maps.SKIFF_MAP_LB4_REVNAT);
    auto affinity =
        Map<skiff_lb4_affinity_key, skiff_lb_affinity_val>::From(s->maps.SKIFF_MAP_LB4_AFFINITY);
    auto ct = Map<skiff_ct4_key, skiff_ct_entry>::From(s->maps.SKIFF_MAP_CT4);
    auto metrics = PerCpuMap<__u32, skiff_metrics_val>::From(s->maps.SKIFF_MAP_METRICS);
    auto hint = Map<__u32, skiff_ct_hint>::From(s->maps.SKIFF_MAP_CT4_HINT);
    for (const absl::Status& st : {services.status(), backends.status(), revnat.status(),
                                   affinity.status(), ct.status(), metrics.status(), hint.status()})
      if (!st.ok()) return st;
    env->services = *services;
    env->backends = *backends;
    env->revnat = *revnat;
    env->affinity = *affinity;
    env->ct = *ct;
    env->metrics = *metrics;
    env->hint = *hint;
    env->maglev_fd = bpf_map__fd(s->maps.SKIFF_MAP_LB4_MAGLEV);
    env->maglev_size = maglev_table_size;
    return env;
  }

  int prog_fd() const { return bpf_program__fd(skel->progs.from_container); }

  // Empties every map and zeroes the counters. Conntrack is empty, so the hint is armed with
  // no bit set (the steady state; maps/ct.h).
  absl::Status Reset() {
    for (absl::Status st : {services.Clear(), backends.Clear(), revnat.Clear(), affinity.Clear(),
                            ct.Clear(), SetHint(SKIFF_CT_HINT_ARMED)})
      if (!st.ok()) return st;
    skiff_lb4_maglev_key mk{};
    while (bpf_map_get_next_key(maglev_fd, nullptr, &mk) == 0)
      if (bpf_map_delete_elem(maglev_fd, &mk) != 0) return ErrnoStatus(errno, "clearing maglev");
    int ncpu = libbpf_num_possible_cpus();
    std::vector<skiff_metrics_val> zeros(ncpu);
    for (__u32 i = 0; i < SKIFF_METRICS_ENTRIES; i++)
      if (bpf_map_update_elem(metrics.fd(), &i, zeros.data(), BPF_ANY) != 0)
        return ErrnoStatus(errno, "zeroing metrics");
    return absl::OkStatus();
  }

  absl::Status AddBackend(const BackendSpec& b) {
    skiff_lb4_backend v{};
    v.address = Ip4(b.ip);
    v.port = htons(b.port);
    v.proto = b.proto;
    v.state = b.state;
    v.flags = b.flags;
    return backends.Update(b.id, v);
  }

  static skiff_lb4_key Key(const char* vip, uint16_t port, uint8_t proto, uint8_t scope,
                           uint16_t slot) {
    skiff_lb4_key k{};
    k.address = Ip4(vip);
    k.dport = htons(port);
    k.proto = proto;
    k.scope = scope;
    k.slot = slot;
    return k;
  }

  // Writes slots, then slot 0 (the order the reconciler uses), and the rev-NAT entry.
  absl::Status AddService(const ServiceSpec& s) {
    auto write_scope = [&](uint8_t scope, const std::vector<uint32_t>& act,
                           const std::vector<uint32_t>& term) -> absl::Status {
      uint16_t slot = 1;
      for (const auto* ids : {&act, &term})
        for (uint32_t id : *ids) {
          skiff_lb4_service v{};
          v.backend_id = id;
          v.rev_nat_id = s.rev_nat_id;
          if (auto st = services.Update(Key(s.vip, s.port, s.proto, scope, slot++), v); !st.ok())
            return st;
        }
      skiff_lb4_service v0{};
      v0.count = act.size();
      v0.terminating_count = term.size();
      v0.rev_nat_id = s.rev_nat_id;
      v0.flags = s.flags | (s.local ? SKIFF_SVC_F_INT_LOCAL : 0);
      v0.affinity_timeout = s.affinity_timeout;
      v0.algorithm = s.algorithm;
      return services.Update(Key(s.vip, s.port, s.proto, scope, 0), v0);
    };
    if (s.local)
      if (auto st = write_scope(SKIFF_SCOPE_INTERNAL, s.local->first, s.local->second); !st.ok())
        return st;
    if (auto st = write_scope(SKIFF_SCOPE_EXTERNAL, s.active, s.terminating); !st.ok()) return st;
    skiff_lb4_revnat r{};
    r.address = Ip4(s.vip);
    r.port = htons(s.port);
    return revnat.Update(s.rev_nat_id, r);
  }

  // Writes the maglev table of (rev-NAT id, scope); table.size() must be the loaded size.
  absl::Status AddMaglevTable(uint32_t rev_nat_id, uint8_t scope,
                              const std::vector<uint32_t>& table) {
    if (table.size() != maglev_size)
      return absl::InvalidArgumentError(
          absl::StrCat("maglev table of ", table.size(), " entries, loaded with ", maglev_size));
    skiff_lb4_maglev_key k{};
    k.rev_nat_id = rev_nat_id;
    k.scope = scope;
    if (bpf_map_update_elem(maglev_fd, &k, table.data(), BPF_ANY) != 0)
      return ErrnoStatus(errno, "writing a maglev table");
    return absl::OkStatus();
  }

  // Removes every entry of a frontend (both scopes), as the reconciler does on delete.
  absl::Status DeleteService(const ServiceSpec& s) {
    for (uint8_t scope : {SKIFF_SCOPE_EXTERNAL, SKIFF_SCOPE_INTERNAL})
      for (uint16_t slot = 0; slot <= 16; slot++)
        if (auto st = services.Delete(Key(s.vip, s.port, s.proto, scope, slot)); !st.ok())
          return st;
    return revnat.Delete(s.rev_nat_id);
  }

  static skiff_ct4_key CtKey(const char* saddr, const char* daddr, uint16_t sport, uint16_t dport,
                             uint8_t proto, uint8_t kind) {
    skiff_ct4_key k{};
    k.saddr = Ip4(saddr);
    k.daddr = Ip4(daddr);
    k.sport = htons(sport);
    k.dport = htons(dport);
    k.proto = proto;
    k.kind = kind;
    return k;
  }

  std::optional<skiff_ct_entry> Ct(const skiff_ct4_key& k) const {
    auto v = ct.Lookup(k);
    return v.ok() ? *v : std::nullopt;
  }
  size_t CtSize() const {
    auto e = ct.Entries();
    return e.ok() ? e->size() : 0;
  }

  // Writes the hint's state with every bit clear.
  absl::Status SetHint(uint32_t state, uint32_t armed_at = 0) {
    auto h = std::make_unique<skiff_ct_hint>();
    h->state = state;
    h->armed_at = armed_at;
    return hint.Update(0, *h);
  }
  skiff_ct_hint Hint() const {
    auto v = hint.Lookup(0);
    return v.ok() && v->has_value() ? **v : skiff_ct_hint{};
  }
  // Whether the hint bit of {addr, port} (host byte order port) is set.
  bool HintBit(const char* addr, uint16_t port, uint8_t proto, uint8_t kind) const {
    skiff_ct_hint h = Hint();
    uint32_t bit = skiff_ct_hint_bit(Ip4(addr), htons(port), proto, kind);
    return (h.bits[bit / 64] >> (bit % 64)) & 1;
  }

  static skiff_lb4_affinity_key AffinityKey(const char* client, uint32_t rev_nat_id) {
    skiff_lb4_affinity_key k{};
    k.client = Ip4(client);
    k.rev_nat_id = rev_nat_id;
    return k;
  }

  // Packets counted for (direction, outcome) over all CPUs; code 0 = went on.
  uint64_t Metric(int dir, int code) const {
    auto v = metrics.Lookup(SKIFF_METRICS_INDEX(dir, code));
    if (!v.ok()) return ~0ull;
    uint64_t n = 0;
    for (const auto& x : *v) n += x.packets;
    return n;
  }
  uint64_t MetricBytes(int dir, int code) const {
    auto v = metrics.Lookup(SKIFF_METRICS_INDEX(dir, code));
    if (!v.ok()) return ~0ull;
    uint64_t n = 0;
    for (const auto& x : *v) n += x.bytes;
    return n;
  }
  // Sum over every outcome of a direction.
  uint64_t MetricTotal(int dir) const {
    uint64_t n = 0;
    for (int o = 0; o < SKIFF_METRICS_OUTCOMES; o++) {
      auto v = metrics.Lookup(dir * SKIFF_METRICS_OUTCOMES + o);
      if (v.ok())
        for (const auto& x : *v) n += x.packets;
    }
    return n;
  }

  Skeleton<lxc_bpf> skel;
  Map<skiff_lb4_key, skiff_lb4_service> services;
  BackendArray backends;  // Delete zeroes the slot, as the agent does
  Map<__u32, skiff_lb4_revnat> revnat;
  Map<skiff_lb4_affinity_key, skiff_lb_affinity_val> affinity;
  Map<skiff_ct4_key, skiff_ct_entry> ct;
  PerCpuMap<__u32, skiff_metrics_val> metrics;
  Map<__u32, skiff_ct_hint> hint;
  int maglev_fd = -1;  // owned by the skeleton
  uint32_t maglev_size = 0;

 private:
  LbEnv() = default;
};

}  // namespace skiff::testing
