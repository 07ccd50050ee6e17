// The frontend filter (maps/lb_filter.h) kept in step with the service map: a KvTable over the
// service map that, for every frontend key (SKIFF_SCOPE_EXTERNAL slot 0), sets the frontend's
// filter bit before writing the entry and clears it only after the last frontend using that
// bit is deleted. Every writer of the service map goes through it (the LB reconciler and the
// API get it from loader::Datapath::tables()), so the filter never lacks a live frontend's
// bit. Init() arms the filter with the frontends the map already holds (a restart, an upgrade
// from a datapath without the filter).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/btree_set.h"
#include "agent/reconcile/kv_table.h"
#include "maps/lb.h"
#include "maps/lb_filter.h"

namespace skiff::reconcile {

class FrontendFilterTable : public KvTable<skiff_lb4_key, skiff_lb4_service> {
 public:
  using Services = KvTable<skiff_lb4_key, skiff_lb4_service>;
  using Filter = KvTable<__u32, skiff_lb4_fe_filter>;

  FrontendFilterTable(Services* services, Filter* filter);

  // Reads the frontends already in the service map, writes their bits and arms the filter.
  // Until it succeeds the filter stays unarmed and BPF looks every packet up as before.
  absl::Status Init();
  bool armed() const { return armed_; }

  const std::string& name() const override { return services_->name(); }
  uint32_t max_entries() const override { return services_->max_entries(); }
  absl::StatusOr<std::vector<std::pair<skiff_lb4_key, skiff_lb4_service>>> Entries()
      const override {
    return services_->Entries();
  }
  absl::Status ForEach(const std::function<bool(const skiff_lb4_key&, const skiff_lb4_service&)>&
                           fn) const override {
    return services_->ForEach(fn);
  }
  absl::StatusOr<std::optional<skiff_lb4_service>> Lookup(const skiff_lb4_key& key) const override {
    return services_->Lookup(key);
  }
  // A new frontend's bit is written first; if that write fails the entry is not written.
  absl::Status Update(const skiff_lb4_key& key, const skiff_lb4_service& value) override;
  // New frontends' bits are written once for the whole batch, before any entry.
  absl::Status UpdateBatch(const skiff_lb4_key* keys, const skiff_lb4_service* values, size_t n,
                           size_t* done) override;
  absl::Status Delete(const skiff_lb4_key& key) override;
  absl::StatusOr<bool> Remove(const skiff_lb4_key& key) override;
  absl::StatusOr<uint64_t> DeleteIf(
      const std::function<bool(const skiff_lb4_key&, const skiff_lb4_service&)>& pred) override;

  static bool IsFrontend(const skiff_lb4_key& k) {
    return k.slot == 0 && k.scope == SKIFF_SCOPE_EXTERNAL;
  }

 private:
  uint32_t Bit(const skiff_lb4_key& k) const;
  bool Track(const skiff_lb4_key& k);    // true when the key's bit went from clear to set
  bool Untrack(const skiff_lb4_key& k);  // true when the key's bit went from set to clear
  absl::Status Write();

  Services* services_;
  Filter* filter_;
  // A B-tree: 100,000 frontends at 100,000 Services, 12-byte keys (a std::set node is 48).
  absl::btree_set<skiff_lb4_key, BytewiseLess<skiff_lb4_key>> frontends_;
  std::vector<uint32_t> users_;  // frontends per bit
  std::unique_ptr<skiff_lb4_fe_filter> value_;
  bool armed_ = false;
};

}  // namespace skiff::reconcile
