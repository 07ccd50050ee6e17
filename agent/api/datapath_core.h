// The real AgentCore: the loaded datapath's pinned maps (through the skeleton's fds, which
// stay open while the agent runs) and the state the main loop publishes on a StateBoard.
//
// Threads: constructed on the main thread after the datapath is loaded and destroyed before
// it; its methods run on gRPC threads. It holds no mutable state: map access goes to the
// kernel, state comes from the StateBoard, routes from a fresh rtnetlink socket per call.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "agent/api/core.h"
#include "agent/loader/datapath.h"

namespace skiff::api {

class DatapathCore : public AgentCore {
 public:
  static absl::StatusOr<std::unique_ptr<DatapathCore>> Create(loader::Datapath* dp,
                                                              const StateBoard* board,
                                                              std::string node_name);

  StaticInfo Info() const override { return info_; }
  int64_t UptimeSeconds() const override;
  std::shared_ptr<const ApiState> State() const override { return board_->Get(); }
  reconcile::LbTables Lb() const override { return lb_; }
  reconcile::KvTable<skiff_ct4_key, skiff_ct_entry>* Conntrack() const override {
    return ct_.get();
  }
  int64_t MonotonicSeconds() const override;
  uint32_t HairpinAddress() const override { return hairpin_; }
  std::vector<std::string> MapNames() const override;
  absl::StatusOr<std::unique_ptr<MapReader>> OpenMap(const std::string& name) const override;
  absl::StatusOr<std::map<uint32_t, PodRoute>> PodRoutes() const override;

 private:
  DatapathCore() = default;
  StaticInfo info_;
  const StateBoard* board_ = nullptr;
  reconcile::LbTables lb_;
  std::unique_ptr<reconcile::BpfKvTable<skiff_ct4_key, skiff_ct_entry>> ct_;
  std::map<std::string, int> map_fds_;  // pinned maps by name; fds owned by the skeleton
  uint32_t hairpin_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// IPv4 /32 routes of the main table in the current network namespace (rtnetlink dump).
absl::StatusOr<std::map<uint32_t, PodRoute>> ListHostRoutes();

}  // namespace skiff::api
