// What the API services need from the agent, behind an interface so the services are
// unit-tested without root against fake tables (tests/unit/api_fake_core.h) and served by
// the real agent over its pinned maps (DatapathCore).
//
// Thread-safety contract (every implementation):
//  - State() returns an immutable snapshot the main loop published (StateBoard); callers may
//    keep it as long as they like.
//  - Lb(), Conntrack() and OpenMap() reach BPF maps, which the kernel makes safe for
//    concurrent readers and writers; the API only reads them, except FlushConntrack, which
//    deletes conntrack entries (the agent may delete conntrack entries; only BPF creates them).
//  - Every method may be called from any gRPC thread, concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/api/map_reader.h"
#include "agent/model/desired_state.h"
#include "agent/model/object_store.h"
#include "agent/reconcile/kv_table.h"
#include "agent/reconcile/lb_reconciler.h"
#include "maps/ct.h"

namespace skiff::api {

struct PolicyState;  // policy_state.h

struct AttachedProgram {
  std::string iface;
  int ifindex = 0;
  std::string hook;     // "tc-ingress", ...
  std::string program;  // "from_container", ...
};

// What the main loop publishes after each reconcile and each attachment change.
struct ApiState {
  model::ObjectSnapshot objects;        // shares the store's objects; never copied deeply
  std::map<std::string, bool> sources;  // source name -> first read complete
  model::DesiredState desired;
  std::vector<std::string> reconcile_errors;
  std::vector<AttachedProgram> programs;
  std::shared_ptr<const PolicyState> policy;  // last applied NetworkPolicy; null before
};

// Holds the latest ApiState. The main loop Publish()es a new immutable snapshot; API threads
// Get() it. The mutex guards only the pointer swap, so neither side ever waits on the other's
// work.
class StateBoard {
 public:
  void Publish(std::shared_ptr<const ApiState> s) {
    std::lock_guard<std::mutex> l(mu_);
    state_ = std::move(s);
  }
  std::shared_ptr<const ApiState> Get() const {
    std::lock_guard<std::mutex> l(mu_);
    return state_ ? state_ : std::make_shared<const ApiState>();
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const ApiState> state_;
};

struct StaticInfo {
  std::string version;
  std::string kernel;
  std::string node_name;
};

// A host route to a pod address: the interface its traffic leaves the node on.
struct PodRoute {
  std::string iface;
  int ifindex = 0;
};

class AgentCore {
 public:
  virtual ~AgentCore() = default;
  virtual StaticInfo Info() const = 0;
  virtual int64_t UptimeSeconds() const = 0;
  virtual std::shared_ptr<const ApiState> State() const = 0;

  // The LB maps (services, backends, revnat, affinity), read only.
  virtual reconcile::LbTables Lb() const = 0;
  virtual reconcile::KvTable<skiff_ct4_key, skiff_ct_entry>* Conntrack() const = 0;
  // CLOCK_MONOTONIC seconds: the clock of skiff_ct_entry.created/expires.
  virtual int64_t MonotonicSeconds() const = 0;
  // skiff_config.hairpin_ipv4 (network order): the reply key of a hairpin flow uses it.
  virtual uint32_t HairpinAddress() const = 0;

  // Every pinned map, sorted by name.
  virtual std::vector<std::string> MapNames() const = 0;
  // NotFound for a name that is not one of MapNames().
  virtual absl::StatusOr<std::unique_ptr<MapReader>> OpenMap(const std::string& name) const = 0;

  // /32 routes of the node, by IPv4 address (network order).
  virtual absl::StatusOr<std::map<uint32_t, PodRoute>> PodRoutes() const = 0;
};

}  // namespace skiff::api
