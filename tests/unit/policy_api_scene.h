// A NetworkPolicy scene for PolicyService and `agentctl policy` tests: a fake core with the
// policy maps, filled by the real compiler and reconciler, and the published ApiState.
//
// node-1 holds a/web (app=web, no policy), a/db (app=db; a/db-in allows app=web pods on the
// named port "pg" = 5432, and 192.0.2.0/24 except 192.0.2.128/25 on 9000-9100), a/other and
// b/client (app=client; b/client-out allows egress to namespace team=a on 8080 only);
// b/remote runs on node-2. Service a/web-svc: 10.96.0.10:80 -> a/web:8080 (its slice names
// the pod).
#pragma once

#include <memory>

#include "agent/api/policy_state.h"
#include "agent/policy/compiler.h"
#include "agent/policy/reconciler.h"
#include "agent/sources/manifest_parse.h"
#include "maps/names.h"
#include "tests/unit/api_fake_core.h"
#include "tests/unit/policy_fixture.h"

namespace skiff::api::testing {

class PolicyFakeCore : public FakeCore {
 public:
  std::vector<std::string> MapNames() const override {
    auto v = FakeCore::MapNames();
    for (const auto* n : {&ipcache.name(), &policy.name(), &state.name()}) v.push_back(*n);
    return v;
  }
  absl::StatusOr<std::unique_ptr<MapReader>> OpenMap(const std::string& name) const override {
    if (name == ipcache.name())
      return std::unique_ptr<MapReader>(
          std::make_unique<KvTableMapReader<skiff_ipcache_key, skiff_ipcache_val>>(&ipcache,
                                                                                   "lpm_trie"));
    if (name == policy.name())
      return std::unique_ptr<MapReader>(
          std::make_unique<KvTableMapReader<skiff_policy_key, skiff_policy_val>>(&policy,
                                                                                 "lpm_trie"));
    if (name == state.name())
      return std::unique_ptr<MapReader>(
          std::make_unique<KvTableMapReader<__u32, skiff_pol_state>>(&state, "array"));
    return FakeCore::OpenMap(name);
  }
  policy::PolicyTables Tables() { return {&ipcache, &policy, &state}; }

  reconcile::FakeKvTable<skiff_ipcache_key, skiff_ipcache_val> ipcache{
      SKIFF_STR(SKIFF_MAP_IPCACHE4), 1000};
  reconcile::FakeKvTable<skiff_policy_key, skiff_policy_val> policy{SKIFF_STR(SKIFF_MAP_POLICY4),
                                                                    1000};
  reconcile::FakeKvTable<__u32, skiff_pol_state> state{SKIFF_STR(SKIFF_MAP_POL_STATE), 1};
};

struct PolicyScene {
  policy::testing::Cluster cluster;
  model::DesiredState desired;

  void Build(PolicyFakeCore& core) {
    using namespace policy::testing;
    using model::Protocol;
    cluster.Namespace("a", {{"team", "a"}});
    cluster.Namespace("b", {{"team", "b"}});
    cluster.Pod("a", "web", "10.0.1.1", {{"app", "web"}}, {{"http", 8080, Protocol::kTcp}});
    cluster.Pod("a", "db", "10.0.1.2", {{"app", "db"}}, {{"pg", 5432, Protocol::kTcp}});
    cluster.Pod("a", "other", "10.0.1.3", {{"app", "other"}});
    cluster.Pod("b", "client", "10.0.2.1", {{"app", "client"}});
    cluster.Pod("b", "remote", "10.0.2.9", {{"app", "client"}}, {}, "node-2");
    cluster.Policy(
        "a", "db-in", Sel({{"app", "db"}}),
        {Rule({PodPeer(Sel({{"app", "web"}}))}, {PortName("pg")}),
         Rule({CidrPeer("192.0.2.0/24", {"192.0.2.128/25"})}, {Port(9000, Protocol::kTcp, 9100)})});
    cluster.Policy("b", "client-out", Sel({{"app", "client"}}), {},
                   {Rule({NsPeer(Sel({{"team", "a"}}))}, {Port(8080)})}, {kEgress});
    cluster.mutable_snapshot().generation = 3;
    cluster.mutable_snapshot().synced = true;

    // web-svc's slice names the backend's pod, as the API shows it (model::BackendPods).
    sources::ManifestParseResult slice = sources::ParseManifestFile(
        "web-svc-slice.yaml",
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-svc-1\n"
        "  namespace: a\n  labels:\n    kubernetes.io/service-name: web-svc\naddressType: IPv4\n"
        "ports:\n- port: 8080\n  protocol: TCP\nendpoints:\n- addresses: [\"10.0.1.1\"]\n"
        "  targetRef: {kind: Pod, namespace: a, name: web}\n");
    if (slice.objects.size() != 1 || !slice.errors.empty()) std::abort();
    cluster.mutable_snapshot().endpoint_slices[{"a", "web-svc-1"}] =
        std::make_shared<model::EndpointSlice>(
            std::get<model::EndpointSlice>(std::move(slice.objects.front())));

    model::Frontend f;
    f.key = {ModelIp("10.96.0.10"), 80, model::Protocol::kTcp};
    f.service = "a/web-svc";
    f.backends = {{ModelIp("10.0.1.1"), 8080, model::BackendState::kActive, true}};
    desired.frontends[f.key] = f;
    Apply(core);
  }

  // Compiles the cluster, writes the maps and publishes the state, as the agent's loop does.
  void Apply(PolicyFakeCore& core) {
    policy::Compiled c = policy::Compile(cluster.Snapshot(), {"node-1", {}});
    policy::PolicyApplyResult r = rec(core).Apply(c, true);
    if (!r.ok()) std::abort();
    auto s = std::make_shared<ApiState>();
    s->objects = cluster.Snapshot();
    s->desired = desired;
    s->policy = MakePolicyState(std::move(c), rec(core), cluster.Snapshot().generation);
    core.board.Publish(std::move(s));
  }

 private:
  policy::PolicyReconciler& rec(PolicyFakeCore& core) {
    if (!rec_) rec_ = std::make_unique<policy::PolicyReconciler>(core.Tables());
    return *rec_;
  }
  std::unique_ptr<policy::PolicyReconciler> rec_;
};

}  // namespace skiff::api::testing
