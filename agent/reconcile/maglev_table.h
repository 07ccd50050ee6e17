// The maglev map (maps/lb.h) as a KvTable: {rev-NAT id, scope} -> the lookup table as a vector
// of table_size backend ids. Its value has no fixed C type (the size is --maglev-table-size),
// so it cannot be a Map<K, V>; this reads and writes the bytes with the map's value size.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/reconcile/kv_table.h"
#include "maps/lb.h"

namespace skiff::reconcile {

using MaglevRow = std::vector<uint32_t>;
using MaglevKvTable = KvTable<skiff_lb4_maglev_key, MaglevRow>;

class BpfMaglevTable : public MaglevKvTable {
 public:
  // m: a bpf_map of the loaded object (its fd, name, value size and max entries are taken).
  explicit BpfMaglevTable(const bpf_map* m)
      : fd_(bpf_map__fd(m)),
        name_(bpf_map__name(m)),
        size_(bpf_map__value_size(m) / sizeof(uint32_t)),
        max_(bpf_map__max_entries(m)) {}

  const std::string& name() const override { return name_; }
  uint32_t max_entries() const override { return max_; }
  uint32_t table_size() const { return size_; }

  absl::StatusOr<std::vector<std::pair<skiff_lb4_maglev_key, MaglevRow>>> Entries() const override {
    std::vector<std::pair<skiff_lb4_maglev_key, MaglevRow>> out;
    skiff_lb4_maglev_key cur{}, next{};
    const skiff_lb4_maglev_key* prev = nullptr;
    MaglevRow row(size_);
    while (bpf_map_get_next_key(fd_, prev, &next) == 0) {
      if (bpf_map_lookup_elem(fd_, &next, row.data()) == 0) out.emplace_back(next, row);
      cur = next;
      prev = &cur;
    }
    if (errno != ENOENT) return ErrnoStatus(errno, absl::StrCat("iterating map ", name_));
    return out;
  }

  absl::Status Update(const skiff_lb4_maglev_key& key, const MaglevRow& row) override {
    if (row.size() != size_)
      return absl::InternalError(absl::StrCat("map ", name_, ": a table of ", row.size(),
                                              " entries, the map holds ", size_));
    if (bpf_map_update_elem(fd_, &key, row.data(), BPF_ANY) == 0) return absl::OkStatus();
    int err = errno;
    if (err == E2BIG || err == ENOSPC || err == ENOMEM)
      return absl::ResourceExhaustedError(
          absl::StrCat("map ", name_, " is full (", max_, " tables); raise --lb-maglev-max"));
    return ErrnoStatus(err, absl::StrCat("update of map ", name_));
  }

  absl::StatusOr<std::optional<MaglevRow>> Lookup(const skiff_lb4_maglev_key& key) const override {
    MaglevRow row(size_);
    if (bpf_map_lookup_elem(fd_, &key, row.data()) == 0) return std::optional<MaglevRow>(row);
    if (errno == ENOENT) return std::optional<MaglevRow>();
    return ErrnoStatus(errno, absl::StrCat("lookup in map ", name_));
  }

  absl::Status Delete(const skiff_lb4_maglev_key& key) override {
    if (bpf_map_delete_elem(fd_, &key) == 0 || errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("delete from map ", name_));
  }

 private:
  int fd_;
  std::string name_;
  uint32_t size_;
  uint32_t max_;
};

}  // namespace skiff::reconcile
