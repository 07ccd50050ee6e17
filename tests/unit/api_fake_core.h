// An AgentCore over in-memory tables (FakeKvTable), for testing the API services and
// agentctl without root. The LB tables are filled by the real LbReconciler from a
// hand-written desired state, so the services read exactly what the agent would write.
#pragma once

#include <arpa/inet.h>

#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/api/core.h"
#include "agent/reconcile/lb_reconciler.h"
#include "maps/names.h"

namespace skiff::api::testing {

inline uint32_t Ip(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

inline model::IpAddr ModelIp(const char* s) { return *model::IpAddr::Parse(s); }

class FakeCore : public AgentCore {
 public:
  FakeCore(uint32_t ct_max = 1 << 21)
      : services_(SKIFF_STR(SKIFF_MAP_LB4_SERVICES), 65536),
        backends_(SKIFF_STR(SKIFF_MAP_LB4_BACKENDS), 65536),
        revnat_(SKIFF_STR(SKIFF_MAP_LB4_REVNAT), 65536),
        affinity_(SKIFF_STR(SKIFF_MAP_LB4_AFFINITY), 65536),
        ct_(SKIFF_STR(SKIFF_MAP_CT4), ct_max) {}

  StaticInfo Info() const override { return {"9.9.9", "6.1.0-test", "node-1"}; }
  int64_t UptimeSeconds() const override { return 3725; }
  std::shared_ptr<const ApiState> State() const override { return board.Get(); }
  reconcile::LbTables Lb() const override {
    auto* self = const_cast<FakeCore*>(this);
    return {&self->services_, &self->backends_, &self->revnat_, &self->affinity_};
  }
  reconcile::KvTable<skiff_ct4_key, skiff_ct_entry>* Conntrack() const override {
    return const_cast<reconcile::FakeKvTable<skiff_ct4_key, skiff_ct_entry>*>(&ct_);
  }
  int64_t MonotonicSeconds() const override { return now; }
  uint32_t HairpinAddress() const override { return Ip("169.254.42.1"); }
  std::vector<std::string> MapNames() const override {
    return {ct_.name(), affinity_.name(), backends_.name(), revnat_.name(), services_.name()};
  }
  absl::StatusOr<std::unique_ptr<MapReader>> OpenMap(const std::string& name) const override {
    if (name == ct_.name()) return Reader(&ct_, "lru_hash");
    if (name == services_.name()) return Reader(&services_, "hash");
    if (name == backends_.name()) return Reader(&backends_, "array");
    if (name == revnat_.name()) return Reader(&revnat_, "hash");
    if (name == affinity_.name()) return Reader(&affinity_, "lru_hash");
    return absl::NotFoundError(absl::StrCat("map ", name, " not found"));
  }
  absl::StatusOr<std::map<uint32_t, PodRoute>> PodRoutes() const override { return routes; }

  reconcile::FakeKvTable<skiff_ct4_key, skiff_ct_entry>& ct() { return ct_; }
  reconcile::FakeKvTable<__u32, skiff_lb4_backend>& backends() { return backends_; }

  StateBoard board;
  int64_t now = 1000;
  std::map<uint32_t, PodRoute> routes;

 private:
  template <typename K, typename V>
  static std::unique_ptr<MapReader> Reader(const reconcile::KvTable<K, V>* t, const char* type) {
    return std::make_unique<KvTableMapReader<K, V>>(t, type);
  }
  reconcile::FakeKvTable<skiff_lb4_key, skiff_lb4_service> services_;
  reconcile::FakeKvTable<__u32, skiff_lb4_backend> backends_;
  reconcile::FakeKvTable<__u32, skiff_lb4_revnat> revnat_;
  reconcile::FakeKvTable<skiff_lb4_affinity_key, skiff_lb_affinity_val> affinity_;
  reconcile::FakeKvTable<skiff_ct4_key, skiff_ct_entry> ct_;
};

// A client -> vip flow translated to backend: both conntrack entries, as BPF writes them.
inline void AddFlow(reconcile::FakeKvTable<skiff_ct4_key, skiff_ct_entry>& ct, const char* client,
                    uint16_t cport, const char* vip, uint16_t vport, const char* backend,
                    uint16_t bport, uint8_t proto, uint32_t rev_nat_id, uint32_t backend_id,
                    uint32_t created, uint32_t expires) {
  skiff_ct4_key k;
  std::memset(&k, 0, sizeof(k));
  skiff_ct_entry e;
  std::memset(&e, 0, sizeof(e));
  k.saddr = Ip(client);
  k.daddr = Ip(vip);
  k.sport = htons(cport);
  k.dport = htons(vport);
  k.proto = proto;
  k.kind = SKIFF_CT_SERVICE;
  e.packets = 3;
  e.bytes = 180;
  e.created = created;
  e.expires = expires;
  e.backend_id = backend_id;
  e.rev_nat_id = rev_nat_id;
  e.flags = proto == IPPROTO_TCP ? SKIFF_CT_F_SEEN_NON_SYN : 0;
  e.tcp_flags = proto == IPPROTO_TCP ? 0x12 : 0;
  e.nat_addr = Ip(backend);
  e.nat_port = htons(bport);
  e.orig_addr = Ip(client);
  e.orig_port = htons(cport);
  ct.mutable_entries()[k] = e;
  skiff_ct4_key r;
  std::memset(&r, 0, sizeof(r));
  r.saddr = Ip(backend);
  r.daddr = Ip(client);
  r.sport = htons(bport);
  r.dport = htons(cport);
  r.proto = proto;
  r.kind = SKIFF_CT_REPLY;
  e.packets = 2;
  e.bytes = 120;
  e.nat_addr = Ip(vip);
  e.nat_port = htons(vport);
  ct.mutable_entries()[r] = e;
}

}  // namespace skiff::api::testing
