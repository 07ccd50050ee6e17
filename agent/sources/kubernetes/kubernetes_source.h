// The Kubernetes API as a source: one Reflector (list + watch) per resource — Services,
// EndpointSlices, Pods, Namespaces, Nodes, NetworkPolicies — all feeding one ObjectStore. The
// source counts as synced only once every resource's first list completed, so the reconciler
// deletes nothing before it has seen the whole cluster.
//
// Threads: construction, Start() and Stop() on the caller's thread; each reflector runs its
// own thread (see reflector.h) and calls MarkSynced from whichever finishes last. stats() may
// be called from any thread.
//
// Usage:
//   auto cluster = LoadKubeconfig(path);                 // or LoadInClusterConfig(...)
//   KubernetesSource k8s({.cluster = *cluster}, &store); // registers "kubernetes", unsynced
//   k8s.Start();                                         // non-blocking
//   ...
//   k8s.Stop();                                          // joins every watch thread
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/model/object_store.h"
#include "agent/sources/kubernetes/cluster_config.h"
#include "agent/sources/kubernetes/reflector.h"

namespace skiff::sources::k8s {

struct KubernetesSourceOptions {
  ClusterConfig cluster;
  std::string source_name = "kubernetes";  // the store's sync-state name for this source
  // When set, only this node's pods are watched (fieldSelector spec.nodeName=NAME).
  std::string pods_node_name;
  ReflectorOptions reflector;
  std::vector<model::ObjectKind> kinds = {
      model::ObjectKind::kNamespace,     model::ObjectKind::kNode,
      model::ObjectKind::kPod,           model::ObjectKind::kService,
      model::ObjectKind::kEndpointSlice, model::ObjectKind::kNetworkPolicy};
};

class KubernetesSource {
 public:
  // No I/O: registers the source in the store, unsynced.
  KubernetesSource(KubernetesSourceOptions options, model::ObjectStore* store);
  ~KubernetesSource();  // Stop()
  KubernetesSource(const KubernetesSource&) = delete;
  KubernetesSource& operator=(const KubernetesSource&) = delete;

  // Starts every reflector. Errors reaching the server are not returned here: they are
  // logged and retried with backoff (the API server may come up after the agent).
  absl::Status Start();
  void Stop();

  const std::string& server() const { return options_.cluster.server; }
  std::vector<ReflectorStats> stats() const;

 private:
  const KubernetesSourceOptions options_;
  model::ObjectStore* const store_;
  std::atomic<size_t> unlisted_{0};
  std::vector<std::unique_ptr<Reflector>> reflectors_;
};

}  // namespace skiff::sources::k8s
