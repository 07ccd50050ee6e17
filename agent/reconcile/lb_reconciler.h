// Writes the desired services into the LB maps (maps/lb.h), changing only what differs.
//
// Order of writes (make-before-break, DESIGN.md §3): backends, then revnat, then a
// frontend's backend slots and its loadBalancerSourceRanges entries, then its slot 0 (the
// count and flags the datapath trusts), and only then deletions of ranges it no longer has,
// deletions of slots past the new count, of frontends no longer wanted and of backends no
// longer referenced. A packet therefore never sees a count that points at missing slots.
//
// Maglev frontends (model::LbAlgorithm, --lb-algorithm) also get a lookup table per scope in
// the maglev map, built from the scope's active backends (else its terminating ones) and
// written before the slot 0 that selects SKIFF_LB_ALG_MAGLEV; it is deleted after a slot 0
// that no longer does. A table is recomputed only when its backend ids change.
//
// Ids (backend, rev-NAT) are rebuilt from the maps by Restore(), so a restarted agent keeps
// every id and rewrites nothing that is already right. Before every source has completed its
// first read (synced == false) nothing is deleted: a restarting agent must not wipe services
// it has not heard about yet (Cilium #27215).
//
// Thread: owned by the agent's reconcile loop; not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "agent/model/desired_state.h"
#include "agent/reconcile/id_pool.h"
#include "agent/reconcile/kv_table.h"
#include "agent/reconcile/maglev.h"
#include "agent/reconcile/maglev_table.h"
#include "maps/flow_hash.h"
#include "maps/lb.h"

namespace skiff::reconcile {

struct LbTables {
  KvTable<skiff_lb4_key, skiff_lb4_service>* services = nullptr;
  KvTable<__u32, skiff_lb4_backend>* backends = nullptr;
  KvTable<__u32, skiff_lb4_revnat>* revnat = nullptr;
  KvTable<skiff_lb4_affinity_key, skiff_lb_affinity_val>* affinity = nullptr;
  // loadBalancerSourceRanges; a frontend with ranges fails to apply without it.
  KvTable<skiff_lb4_src_range_key, skiff_lb4_src_range_val>* src_ranges = nullptr;
  // Maglev lookup tables; a Maglev frontend fails to apply without it.
  MaglevKvTable* maglev = nullptr;
};

struct LbOptions {
  // --lb-algorithm: what frontends without the annotation use.
  bool default_maglev = false;
  // --maglev-table-size (a prime, maps/lb.h) and --maglev-hash-seed; the maglev map's value
  // size and the datapath's skiff_config must match them.
  uint32_t maglev_table_size = SKIFF_MAGLEV_TABLE_SIZE_DEFAULT;
  uint32_t maglev_seed = SKIFF_MAGLEV_HASH_SEED_DEFAULT;
};

struct ApplyResult {
  int frontends_written = 0;  // frontends whose entries changed
  int frontends_deleted = 0;
  int backends_written = 0;
  int backends_deleted = 0;
  int map_full_errors = 0;
  std::vector<std::string> errors;  // one per frontend left at its last good state
  bool ok() const { return errors.empty(); }
};

// Rev-NAT ids are 32 bits (maps/lb.h); 0 means "none". The revnat map's size
// (--lb-revnat-max) is the practical bound.
inline constexpr uint32_t kMaxRevNatId = 0xfffffffe;

// Identity of a backend entry: the same pod address:port:protocol shares one id across
// every service that selects it.
// A backend as the maps know it: IPv4 address, port, protocol. 8 bytes rather than a
// model::IpAddr's 17: the reconciler keeps several tables keyed by it, a million entries each
// at 100,000 Services × 10 endpoints. The address is kept in host order so the ordering is
// the IpAddr's (address bytes, then port, then protocol).
struct BackendAddr {
  BackendAddr() = default;
  // `ip` is IPv4: the LB maps hold IPv4 backends only (compute.cc leaves out the others).
  BackendAddr(const model::IpAddr& ip, uint16_t port, uint8_t proto);
  __be32 address() const;  // network order, as in skiff_lb4_backend
  uint32_t ip_host = 0;
  uint16_t port = 0;
  uint8_t proto = 0;
  auto operator<=>(const BackendAddr&) const = default;
};

// How many desired frontends use a backend, and how many of them see it active / local.
struct BackendUse {
  uint32_t users = 0, active = 0, local = 0;
};
// Everything kept per backend, in one B-tree keyed by address (one entry, not one in each
// of an id table, a value table and a use-count table: ~28 bytes per backend at 1,000,000).
// An entry exists while the backend has an id or a user.
struct BackendEntry {
  uint32_t id = 0;  // its id in the backends map; 0: none
  BackendUse use;   // in the reconciler's counted_
  // What the map holds under id (the rest of the value follows from the address).
  uint8_t state = 0, flags = 0;
  bool written = false;  // state and flags are the map's value; false: (re)write it
};

class LbReconciler {
 public:
  explicit LbReconciler(LbTables tables, LbOptions options = {});

  // Reads the maps and rebuilds the cache and the id pools. Call once before Apply.
  absl::Status Restore();

  ApplyResult Apply(const model::DesiredState& desired, bool synced);
  // The same result when only the frontends in `changed` differ from the previous call's
  // `desired` (model::DesiredStateCache reports them), in time proportional to those
  // frontends: backends are reference-counted by the frontends that use them. Falls back to
  // Apply() unless the previous call left the maps exactly at its desired state (no errors,
  // synced) and `synced` still holds.
  ApplyResult ApplyChanges(const model::DesiredState& desired, bool synced,
                           const std::set<model::FrontendKey>& changed);

  std::optional<uint32_t> RevNatId(const model::FrontendKey& key) const;
  std::optional<uint32_t> BackendId(const BackendAddr& addr) const;
  size_t frontend_count() const { return frontends_.size(); }
  size_t backend_count() const { return backend_ids_; }
  // Maglev tables computed (not found in the per-Apply memo) since construction.
  uint64_t maglev_tables_computed() const { return maglev_computed_; }

 private:
  // The maglev map's entry of one scope: the backend ids its table was built from (ids_known
  // false after Restore: only the fingerprint of the table read back is known).
  struct MaglevEntry {
    bool ids_known = false;
    std::vector<uint32_t> ids;
    uint64_t fp = 0;
  };
  // What one frontend holds in the services map, per scope.
  struct ScopeEntries {
    // Declared, so frontends_ (a B-tree, which asks whether this is nothrow constructible
    // while LbReconciler is still incomplete) does not need the member initializers yet.
    ScopeEntries() noexcept {}
    skiff_lb4_service slot0{};
    bool present = false;
    std::vector<uint32_t> slots;          // backend ids of slots 1..n
    std::unique_ptr<MaglevEntry> maglev;  // set while the maglev map holds this scope's table
  };
  using Range = std::pair<__be32, uint8_t>;  // a source range: (address, prefix length)
  // What only some frontends have: the node-local scope (internal/externalTrafficPolicy
  // Local) and loadBalancerSourceRanges entries.
  struct FrontendExtra {
    ScopeEntries internal;
    std::vector<Range> ranges;  // written under rev_nat_id; sorted, unique
  };
  // Kept per frontend, 100,000 of them at 100,000 Services: the external scope inline, the
  // rest behind a pointer that most frontends leave empty (72 bytes, was 230 with both scopes,
  // their maglev state and a std::set of ranges inline).
  struct FrontendRecord {
    FrontendRecord() noexcept {}  // as ScopeEntries()
    ScopeEntries external;
    uint32_t rev_nat_id = 0;
    std::unique_ptr<FrontendExtra> extra;
    // SKIFF_SCOPE_EXTERNAL or SKIFF_SCOPE_INTERNAL; the internal one is created on first use.
    ScopeEntries& scope(uint8_t s);
    // The internal scope, nullptr when the frontend never had one.
    ScopeEntries* internal() { return extra ? &extra->internal : nullptr; }
    const std::vector<Range>& ranges() const;
  };

  // Appends the backend ids of rec's slots (both scopes) to `ids`.
  static void AddReferenced(const FrontendRecord& rec, std::vector<uint32_t>& ids);
  // Frees rec.extra once it holds nothing (no internal scope entries, no ranges).
  static void DropEmptyExtra(FrontendRecord& rec);

  using Backends = absl::btree_map<BackendAddr, BackendEntry>;
  void RebuildUses(const model::DesiredState& desired);
  // Adds (+1) or removes (-1) the uses of `fe`, a frontend of `key`; collects the backends.
  void CountUses(const model::FrontendKey& key, const model::Frontend& fe, int sign,
                 std::vector<BackendAddr>* touched);
  // Replaces the uses `key` had in counted_ by those of `fe` (nullptr: none). The caller then
  // sets counted_ to the desired state these frontends come from.
  void SetUses(const model::FrontendKey& key, const model::Frontend* fe,
               std::vector<BackendAddr>& touched);
  static skiff_lb4_backend BackendValue(const BackendAddr& a, bool active, bool local);
  void Fail(ApplyResult& res, const model::Frontend* fe, const model::FrontendKey& key,
            const absl::Status& st);
  // Backend writes are queued and written in batches (lb_batch.cc): QueueBackend allocates
  // the id and skips a value the map already holds; FlushBackends writes the queue and does
  // the bookkeeping of each entry as it turned out. Apply flushes before any frontend.
  // The value written is the one e's use counts call for.
  void QueueBackend(const BackendAddr& addr, BackendEntry& e, std::set<BackendAddr>& failed,
                    ApplyResult& res);
  void FlushBackends(std::set<BackendAddr>& failed, ApplyResult& res);
  // Writes of a fresh frontend (nothing of it in the maps yet) to the revnat and service maps
  // while staging_ is set are staged in call order and written in batches by FlushStage,
  // revnat first; its maglev tables and source ranges are written at once, so still before
  // its slot 0. A fresh frontend only adds entries, so no delete has to wait for the batch.
  absl::Status PutService(const skiff_lb4_key& key, const skiff_lb4_service& value);
  absl::Status PutRevNat(uint32_t id, const skiff_lb4_revnat& value);
  void ApplyFresh(const model::FrontendKey& key, const model::Frontend& fe,
                  const std::set<BackendAddr>& failed_backends, ApplyResult& res);
  void FlushStage(ApplyResult& res);
  // Removes whatever of a fresh frontend reached the maps and forgets it (its last good state
  // is "absent").
  void AbandonFresh(const model::FrontendKey& key);
  void ApplyFrontend(const model::FrontendKey& key, const model::Frontend& fe,
                     const std::set<BackendAddr>& failed_backends, ApplyResult& res,
                     std::vector<std::pair<uint32_t, uint32_t>>& dropped_pairs);

  absl::Status WriteFrontend(const model::Frontend& fe, FrontendRecord& rec, bool* changed);
  absl::Status WriteScope(const model::FrontendKey& key, uint8_t scope,
                          const skiff_lb4_service& slot0, const std::vector<uint32_t>& slots,
                          const std::vector<MaglevBackend>* maglev, ScopeEntries& have,
                          bool* changed);
  // Writes the scope's maglev table when it differs from what the map holds.
  absl::Status WriteMaglev(uint32_t rev_nat_id, uint8_t scope,
                           const std::vector<MaglevBackend>& backends, ScopeEntries& have,
                           bool* changed);
  absl::Status DeleteMaglev(uint32_t rev_nat_id, uint8_t scope, ScopeEntries& have);
  absl::Status DeleteScope(const model::FrontendKey& key, uint32_t rev_nat_id, uint8_t scope,
                           ScopeEntries& have);
  absl::Status DeleteFrontend(const model::FrontendKey& key, FrontendRecord& rec);
  // Deletes the range entries of rec not in `keep`.
  absl::Status DeleteRanges(FrontendRecord& rec, const std::vector<Range>& keep, bool* changed);
  bool RemoveFrontend(const model::FrontendKey& key, FrontendRecord& rec, ApplyResult& res,
                      std::vector<uint32_t>& dropped_services);
  // Returns the iterator after `it` (it stays when the delete failed).
  // Deletes the backend's map entry and releases its id; the entry itself goes too unless it
  // still has users.
  Backends::iterator RemoveBackend(Backends::iterator it, ApplyResult& res);
  absl::Status ForgetAffinity(const std::vector<std::pair<uint32_t, uint32_t>>& pairs,
                              const std::vector<uint32_t>& rev_nat_ids);

  LbTables t_;
  LbOptions opts_;
  // Tables computed during one Apply, by backend ids: a Service's frontends (ClusterIP,
  // NodePorts, external IPs) share their backends. Bounded; cleared by every Apply.
  std::map<std::vector<uint32_t>, MaglevRow> maglev_memo_;
  uint64_t maglev_computed_ = 0;
  // A B-tree (values move as it grows: no FrontendRecord reference is kept across an insert
  // or erase), not 100,000 std::map nodes of 32 bytes' overhead each.
  absl::btree_map<model::FrontendKey, FrontendRecord> frontends_;
  Backends backends_;
  size_t backend_ids_ = 0;  // entries of backends_ with an id
  // What the revnat map holds, by id: a B-tree (12-byte slots) rather than a 48-byte std::map
  // node per frontend.
  absl::btree_map<uint32_t, skiff_lb4_revnat> revnat_;
  // Backend ids index the backends array (maps/lb.h): 1 .. max_entries - 1.
  IdPool backend_pool_{1, 1};
  IdPool NewBackendPool() const;
  bool backend_ids_full_reported_ = false;  // this Apply said the backends map is full
  IdPool revnat_pool_{1, kMaxRevNatId};
  // The desired state backends_' use counts count: a persistent copy (O(1), sharing the caller's
  // nodes), so a changed frontend's previous backends are read from it rather than kept per
  // frontend.
  model::DesiredState counted_;
  bool clean_ = false;  // the maps hold exactly the last desired state

  struct PendingBackends {
    std::vector<__u32> ids;
    std::vector<skiff_lb4_backend> values;
    std::vector<BackendAddr> addrs;
    std::vector<bool> new_id;  // allocated for this write: released if it fails
  } pending_backends_;
  struct Stage {
    // Owner i: the i-th fresh frontend of this chunk; its entries are contiguous.
    std::vector<std::pair<const model::FrontendKey*, const model::Frontend*>> owners;
    std::vector<uint32_t> revnat_keys;
    std::vector<skiff_lb4_revnat> revnat_values;
    std::vector<uint32_t> revnat_owner;
    std::vector<skiff_lb4_key> service_keys;
    std::vector<skiff_lb4_service> service_values;
    std::vector<uint32_t> service_owner;
  } stage_;
  bool staging_ = false;
};

// Map keys and values built field by field from zeroed memory, so padding is always zero
// (the kernel hashes every byte of a key).
skiff_lb4_key MakeLb4Key(const model::FrontendKey& key, uint8_t scope, uint16_t slot);
skiff_lb4_src_range_key MakeSrcRangeKey(uint32_t rev_nat_id, __be32 address, uint8_t prefix_len);

}  // namespace skiff::reconcile
