#include "agent/loader/datapath.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "agent/loader/map_upgrade.h"
#include "agent/loader/pinned_maps.h"
#include "maps/config.h"
#include "maps/names.h"

namespace skiff::loader {
namespace {

template <typename K, typename V>
absl::StatusOr<std::unique_ptr<reconcile::BpfKvTable<K, V>>> Table(bpf_map* m) {
  auto map = Map<K, V>::From(m);
  if (!map.ok()) return map.status();
  return std::make_unique<reconcile::BpfKvTable<K, V>>(*map, bpf_map__max_entries(m));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Datapath>> Datapath::Load(const DatapathOptions& o) {
  std::unique_ptr<Datapath> dp(new Datapath());
  auto skel = OpenSkeleton<lxc_bpf>(lxc_bpf__open, lxc_bpf__destroy);
  if (!skel.ok()) return skel.status();
  dp->skel_ = std::move(*skel);
  lxc_bpf* s = dp->skel_.get();

  struct Size {
    bpf_map* map;
    uint32_t max;
    const char* flag;
  } sizes[] = {
      {s->maps.SKIFF_MAP_CT4, o.ct_max, "--ct-max"},
      {s->maps.SKIFF_MAP_LB4_SERVICES, o.lb_services_max, "--lb-map-max"},
      {s->maps.SKIFF_MAP_LB4_BACKENDS, o.lb_backends_max, "--lb-backends-max"},
      {s->maps.SKIFF_MAP_LB4_REVNAT, o.lb_revnat_max, "--lb-revnat-max"},
      {s->maps.SKIFF_MAP_LB4_AFFINITY, o.lb_affinity_max, "--lb-affinity-max"},
      {s->maps.SKIFF_MAP_LB4_SRC_RANGE, o.lb_src_range_max, "--lb-source-ranges-max"},
      {s->maps.SKIFF_MAP_LB4_MAGLEV, o.lb_maglev_max, "--lb-maglev-max"},
      {s->maps.SKIFF_MAP_IPCACHE4, o.ipcache_max, "--ipcache-max"},
      {s->maps.SKIFF_MAP_POLICY4, o.policy_map_max, "--policy-map-max"},
      {s->maps.SKIFF_MAP_POL_CT4, o.policy_ct_max, "--policy-ct-max"},
  };
  // Backend ids index the backends array from 1 (0 is "no backend"; maps/lb.h).
  if (o.lb_backends_max < 2)
    return absl::InvalidArgumentError(
        absl::StrCat("--lb-backends-max ", o.lb_backends_max,
                     " must be at least 2: backend ids index the map from 1 (0 means no backend)"));
  for (const auto& sz : sizes) {
    if (sz.max == 0)
      return absl::InvalidArgumentError(absl::StrCat(sz.flag, " must be greater than 0"));
    if (int err = bpf_map__set_max_entries(sz.map, sz.max))
      return ErrnoStatus(err, absl::StrCat("setting ", sz.flag, " = ", sz.max));
  }

  const uint32_t ring = o.events_ring_size;
  if (ring < 4096 || (ring & (ring - 1)) != 0)
    return absl::InvalidArgumentError(absl::StrCat(
        "--events-ring-size ", ring, " must be a power of two of at least 4096 bytes"));
  if (int err = bpf_map__set_max_entries(s->maps.SKIFF_MAP_EVENTS, ring))
    return ErrnoStatus(err, absl::StrCat("setting --events-ring-size = ", ring));
  s->rodata->skiff_config.drop_events_per_sec = o.drop_events_per_sec;
  s->rodata->skiff_config.host_routing = o.host_routing ? 1 : 0;

  // Maglev: the table size is both the datapath's modulus and the map's value size.
  if (auto st = reconcile::ValidateMaglevTableSize(o.maglev_table_size); !st.ok()) return st;
  if (int err = bpf_map__set_value_size(s->maps.SKIFF_MAP_LB4_MAGLEV,
                                        o.maglev_table_size * sizeof(__u32)))
    return ErrnoStatus(err, absl::StrCat("setting --maglev-table-size = ", o.maglev_table_size));
  s->rodata->skiff_config.maglev_table_size = o.maglev_table_size;
  s->rodata->skiff_config.maglev_hash_seed = o.maglev_hash_seed;

  // Stale new-layout pins beside old ones go first, so the old ones are converted again.
  auto stale = DropStaleNewPins(o.bpffs_root);
  if (!stale.ok()) return stale.status();

  // A conntrack map created by this load is empty, so its hint bitmap is complete from the
  // start and may skip lookups at once (maps/ct.h); a pinned one must go through warm-up, and
  // so must one that is about to receive an older layout's entries (map_upgrade.h).
  const std::string ct_pin = absl::StrCat(o.bpffs_root, "/", SKIFF_STR(SKIFF_MAP_CT4));
  const bool fresh_ct =
      access(ct_pin.c_str(), F_OK) != 0 && !HasOldPin(o.bpffs_root, SKIFF_STR(SKIFF_MAP_CT4));

  auto migrations = PreparePinnedMaps(s->obj, o.bpffs_root);
  if (!migrations.ok()) return migrations.status();
  if (auto st = dp->skel_.Load(lxc_bpf__load); !st.ok()) {
    AbortMigrations(*migrations, o.bpffs_root);
    return absl::Status(st.code(), absl::StrCat("loading the service datapath: ", st.message()));
  }
  if (auto st = FinishMigrations(s->obj, *migrations); !st.ok()) return st;
  // Before anything reads the maps: the ids and conntrack of an older layout move over.
  auto upgraded = UpgradePinnedLayouts(s->obj, o.bpffs_root);
  if (!upgraded.ok()) return upgraded.status();
  if (fresh_ct) {
    auto hint = Map<__u32, skiff_ct_hint>::From(s->maps.SKIFF_MAP_CT4_HINT);
    if (!hint.ok()) return hint.status();
    auto cur = hint->Lookup(0);
    if (!cur.ok()) return cur.status();
    skiff_ct_hint h = cur->value_or(skiff_ct_hint{});
    h.state = SKIFF_CT_HINT_ARMED;
    if (auto st = hint->Update(0, h); !st.ok()) return st;
  }
  for (const auto& m : *migrations)
    dp->migrated_.push_back(absl::StrCat(m.name, ": ", m.old_max, " -> ", m.new_max, " entries"));
  for (const auto& name : *stale)
    dp->migrated_.push_back(
        absl::StrCat(name, ": stale (an older layout's pin ran last); recreated"));
  for (auto& line : *upgraded) dp->migrated_.push_back(std::move(line));

  auto services = Table<skiff_lb4_key, skiff_lb4_service>(s->maps.SKIFF_MAP_LB4_SERVICES);
  if (!services.ok()) return services.status();
  dp->services_ = std::move(*services);
  auto fe_filter = Table<__u32, skiff_lb4_fe_filter>(s->maps.SKIFF_MAP_LB4_FE_FILTER);
  if (!fe_filter.ok()) return fe_filter.status();
  dp->fe_filter_map_ = std::move(*fe_filter);
  dp->fe_filter_ = std::make_unique<reconcile::FrontendFilterTable>(dp->services_.get(),
                                                                    dp->fe_filter_map_.get());
  if (auto st = dp->fe_filter_->Init(); !st.ok())
    return absl::Status(st.code(), absl::StrCat("arming the frontend filter: ", st.message()));
  auto backends = BackendArray::From(s->maps.SKIFF_MAP_LB4_BACKENDS);
  if (!backends.ok()) return backends.status();
  dp->backends_ =
      std::make_unique<reconcile::BpfSlotKvTable<skiff_lb4_backend, BackendSlots>>(*backends);
  auto revnat = Table<__u32, skiff_lb4_revnat>(s->maps.SKIFF_MAP_LB4_REVNAT);
  if (!revnat.ok()) return revnat.status();
  dp->revnat_ = std::move(*revnat);
  auto affinity =
      Table<skiff_lb4_affinity_key, skiff_lb_affinity_val>(s->maps.SKIFF_MAP_LB4_AFFINITY);
  if (!affinity.ok()) return affinity.status();
  dp->affinity_ = std::move(*affinity);
  auto src_ranges =
      Table<skiff_lb4_src_range_key, skiff_lb4_src_range_val>(s->maps.SKIFF_MAP_LB4_SRC_RANGE);
  if (!src_ranges.ok()) return src_ranges.status();
  dp->src_ranges_ = std::move(*src_ranges);
  dp->maglev_ = std::make_unique<reconcile::BpfMaglevTable>(s->maps.SKIFF_MAP_LB4_MAGLEV);
  auto ipcache = Table<skiff_ipcache_key, skiff_ipcache_val>(s->maps.SKIFF_MAP_IPCACHE4);
  if (!ipcache.ok()) return ipcache.status();
  dp->ipcache_ = std::move(*ipcache);
  auto policy = Table<skiff_policy_key, skiff_policy_val>(s->maps.SKIFF_MAP_POLICY4);
  if (!policy.ok()) return policy.status();
  dp->policy_ = std::move(*policy);
  auto pol_state = Table<__u32, skiff_pol_state>(s->maps.SKIFF_MAP_POL_STATE);
  if (!pol_state.ok()) return pol_state.status();
  dp->pol_state_ = std::move(*pol_state);
  auto ifaces = Table<__u32, skiff_endpoint_iface>(s->maps.SKIFF_MAP_ENDPOINT_IFACES);
  if (!ifaces.ok()) return ifaces.status();
  dp->endpoint_ifaces_ = std::move(*ifaces);
  return dp;
}

int Datapath::from_container_fd() const { return bpf_program__fd(skel_->progs.from_container); }
int Datapath::to_container_fd() const { return bpf_program__fd(skel_->progs.to_container); }

policy::PolicyTables Datapath::policy_tables() {
  return policy::PolicyTables{ipcache_.get(), policy_.get(), pol_state_.get()};
}

reconcile::LbTables Datapath::tables() {
  // Every service-map writer goes through the frontend filter (maps/lb_filter.h).
  return reconcile::LbTables{fe_filter_.get(), backends_.get(),   revnat_.get(),
                             affinity_.get(),  src_ranges_.get(), maglev_.get()};
}

std::vector<MapStatus> Datapath::maps() const {
  std::vector<MapStatus> out;
  bpf_map* m;
  bpf_object__for_each_map(m, skel_->obj) {
    if (bpf_map__pin_path(m) == nullptr) continue;
    out.push_back({bpf_map__name(m), bpf_map__max_entries(m)});
  }
  return out;
}

}  // namespace skiff::loader
