#include "agent/reconcile/frontend_filter.h"

#include <cstring>

namespace skiff::reconcile {

FrontendFilterTable::FrontendFilterTable(Services* services, Filter* filter)
    : services_(services),
      filter_(filter),
      users_(SKIFF_LB4_FE_FILTER_BITS, 0),
      value_(std::make_unique<skiff_lb4_fe_filter>()) {
  std::memset(value_.get(), 0, sizeof(*value_));
}

uint32_t FrontendFilterTable::Bit(const skiff_lb4_key& k) const {
  return skiff_lb4_fe_filter_bit(k.address, k.dport, k.proto) % SKIFF_LB4_FE_FILTER_BITS;
}

bool FrontendFilterTable::Track(const skiff_lb4_key& k) {
  if (!frontends_.insert(k).second) return false;
  uint32_t b = Bit(k);
  if (users_[b]++ != 0) return false;
  value_->bits[b / 64] |= 1ULL << (b % 64);
  return true;
}

bool FrontendFilterTable::Untrack(const skiff_lb4_key& k) {
  if (frontends_.erase(k) == 0) return false;
  uint32_t b = Bit(k);
  if (--users_[b] != 0) return false;
  value_->bits[b / 64] &= ~(1ULL << (b % 64));
  return true;
}

absl::Status FrontendFilterTable::Write() {
  value_->state = armed_ ? SKIFF_LB4_FE_FILTER_ARMED : SKIFF_LB4_FE_FILTER_OFF;
  return filter_->Update(0, *value_);
}

absl::Status FrontendFilterTable::Init() {
  absl::Status st = services_->ForEach([&](const skiff_lb4_key& k, const skiff_lb4_service&) {
    if (IsFrontend(k)) Track(k);
    return true;
  });
  if (!st.ok()) return st;
  armed_ = true;
  if (st = Write(); !st.ok()) armed_ = false;
  return st;
}

absl::Status FrontendFilterTable::Update(const skiff_lb4_key& key, const skiff_lb4_service& value) {
  bool tracked_new = false;
  if (IsFrontend(key) && !frontends_.count(key)) {
    tracked_new = true;
    if (Track(key) && armed_) {
      if (absl::Status st = Write(); !st.ok()) {
        Untrack(key);
        return absl::Status(st.code(), absl::StrCat("frontend filter: ", st.message()));
      }
    }
  }
  absl::Status st = services_->Update(key, value);
  // The bit stays set (harmless: it only costs a lookup); the count follows the map.
  if (!st.ok() && tracked_new) {
    uint32_t b = Bit(key);
    frontends_.erase(key);
    --users_[b];
  }
  return st;
}

absl::Status FrontendFilterTable::UpdateBatch(const skiff_lb4_key* keys,
                                              const skiff_lb4_service* values, size_t n,
                                              size_t* done) {
  std::vector<size_t> fresh;
  bool new_bits = false;
  for (size_t i = 0; i < n; i++) {
    if (!IsFrontend(keys[i]) || frontends_.count(keys[i])) continue;
    fresh.push_back(i);
    new_bits |= Track(keys[i]);
  }
  if (new_bits && armed_) {
    if (absl::Status st = Write(); !st.ok()) {
      for (size_t i : fresh) Untrack(keys[i]);
      *done = 0;
      return absl::Status(st.code(), absl::StrCat("frontend filter: ", st.message()));
    }
  }
  absl::Status st = services_->UpdateBatch(keys, values, n, done);
  if (!st.ok()) {
    // As in Update: bits stay set, the counts follow what the map holds.
    for (size_t i : fresh) {
      if (i < *done) continue;
      frontends_.erase(keys[i]);
      --users_[Bit(keys[i])];
    }
  }
  return st;
}

absl::Status FrontendFilterTable::Delete(const skiff_lb4_key& key) {
  if (absl::Status st = services_->Delete(key); !st.ok()) return st;
  // A failed filter write leaves a stale bit, which only costs a lookup.
  if (Untrack(key) && armed_) (void)Write();
  return absl::OkStatus();
}

absl::StatusOr<bool> FrontendFilterTable::Remove(const skiff_lb4_key& key) {
  auto had = services_->Remove(key);
  if (!had.ok()) return had;
  if (Untrack(key) && armed_) (void)Write();
  return had;
}

absl::StatusOr<uint64_t> FrontendFilterTable::DeleteIf(
    const std::function<bool(const skiff_lb4_key&, const skiff_lb4_service&)>& pred) {
  std::vector<skiff_lb4_key> gone;
  auto n = services_->DeleteIf([&](const skiff_lb4_key& k, const skiff_lb4_service& v) {
    bool del = pred(k, v);
    if (del && IsFrontend(k)) gone.push_back(k);
    return del;
  });
  // After a failure the selected keys may or may not be gone: they keep their bits.
  if (!n.ok()) return n;
  bool changed = false;
  for (const auto& k : gone) changed |= Untrack(k);
  if (changed && armed_) (void)Write();
  return n;
}

}  // namespace skiff::reconcile
