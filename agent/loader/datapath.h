// The service datapath as loaded into the kernel: the lxc object (bpf/lxc.bpf.c) opened with
// the configured map sizes, its maps pinned under the bpffs root (re-used or migrated, see
// pinned_maps.h), and typed tables over those maps for the reconciler.
//
// Thread: created and used by the agent's main thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/loader/skeleton.h"
#include "agent/reconcile/frontend_filter.h"
#include "agent/reconcile/kv_table.h"
#include "agent/policy/reconciler.h"
#include "agent/reconcile/lb_reconciler.h"
#include "lxc.skel.h"
#include "maps/ct.h"
#include "maps/events.h"
#include "maps/flow_hash.h"
#include "maps/host_route.h"
#include "maps/lb.h"
#include "maps/policy.h"

namespace skiff::loader {

struct DatapathOptions {
  std::string bpffs_root = "/sys/fs/bpf/skiff";
  uint32_t ct_max = 262144;
  uint32_t lb_services_max = 65536;
  uint32_t lb_backends_max = 65536;
  uint32_t lb_revnat_max = 65536;
  uint32_t lb_affinity_max = 65536;
  uint32_t lb_src_range_max = SKIFF_LB_SRC_RANGE_SIZE_DEFAULT;
  uint32_t lb_maglev_max = SKIFF_LB_MAGLEV_MAP_SIZE_DEFAULT;
  uint32_t maglev_table_size = SKIFF_MAGLEV_TABLE_SIZE_DEFAULT;  // a prime (maps/lb.h)
  uint32_t maglev_hash_seed = SKIFF_MAGLEV_HASH_SEED_DEFAULT;
  uint32_t ipcache_max = SKIFF_IPCACHE_SIZE_DEFAULT;
  uint32_t policy_map_max = SKIFF_POLICY_MAP_SIZE_DEFAULT;
  uint32_t policy_ct_max = SKIFF_POL_CT_SIZE_DEFAULT;
  uint32_t events_ring_size = SKIFF_EVENTS_RING_SIZE_DEFAULT;        // bytes, power of two
  uint32_t drop_events_per_sec = SKIFF_DROP_EVENTS_PER_SEC_DEFAULT;  // per CPU; 0: none
  bool host_routing = true;  // --host-routing=bpf (bpf/lib/host_route.h)
};

struct MapStatus {
  std::string name;
  uint32_t max_entries = 0;
};

class Datapath {
 public:
  static absl::StatusOr<std::unique_ptr<Datapath>> Load(const DatapathOptions& opts);

  int from_container_fd() const;
  int to_container_fd() const;
  reconcile::LbTables tables();
  policy::PolicyTables policy_tables();
  // The attached pod interfaces host routing may deliver to (maps/host_route.h).
  reconcile::KvTable<__u32, skiff_endpoint_iface>* endpoint_ifaces() {
    return endpoint_ifaces_.get();
  }
  std::vector<MapStatus> maps() const;
  std::vector<std::string> migrated() const { return migrated_; }
  lxc_bpf* skel() const { return skel_.get(); }
  int events_fd() const { return bpf_map__fd(skel_->maps.SKIFF_MAP_EVENTS); }

 private:
  Datapath() = default;
  Skeleton<lxc_bpf> skel_;
  std::unique_ptr<reconcile::BpfKvTable<skiff_lb4_key, skiff_lb4_service>> services_;
  std::unique_ptr<reconcile::BpfKvTable<__u32, skiff_lb4_fe_filter>> fe_filter_map_;
  std::unique_ptr<reconcile::FrontendFilterTable> fe_filter_;  // over services_
  std::unique_ptr<reconcile::BpfSlotKvTable<skiff_lb4_backend, BackendSlots>> backends_;
  std::unique_ptr<reconcile::BpfKvTable<__u32, skiff_lb4_revnat>> revnat_;
  std::unique_ptr<reconcile::BpfKvTable<skiff_lb4_affinity_key, skiff_lb_affinity_val>> affinity_;
  std::unique_ptr<reconcile::BpfKvTable<skiff_lb4_src_range_key, skiff_lb4_src_range_val>>
      src_ranges_;
  std::unique_ptr<reconcile::BpfMaglevTable> maglev_;
  std::unique_ptr<reconcile::BpfKvTable<skiff_ipcache_key, skiff_ipcache_val>> ipcache_;
  std::unique_ptr<reconcile::BpfKvTable<skiff_policy_key, skiff_policy_val>> policy_;
  std::unique_ptr<reconcile::BpfKvTable<__u32, skiff_pol_state>> pol_state_;
  std::unique_ptr<reconcile::BpfKvTable<__u32, skiff_endpoint_iface>> endpoint_ifaces_;
  std::vector<std::string> migrated_;
};

}  // namespace skiff::loader
