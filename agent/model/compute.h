// Model -> desired datapath state: which frontends exist and which backends each one load
// balances to. Pure: the same snapshot and node name always give the same DesiredState, so the
// reconciler can recompute it from scratch on every change and diff.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/model/desired_state.h"
#include "agent/model/object_store.h"

namespace skiff::model {

// Rules (kube-proxy's, so Skiff is a drop-in replacement):
//  - Services of type ExternalName, headless ones (clusterIP None) and ones labelled
//    service.kubernetes.io/service-proxy-name (owned by another proxy) get no frontends.
//  - One frontend per Service port per IPv4 clusterIP, externalIP and (type LoadBalancer)
//    status.loadBalancer.ingress IP. IPv6 addresses are skipped until the datapath has them.
//  - Backends come from every EndpointSlice in the Service's namespace labelled
//    kubernetes.io/service-name=<service>, addressType IPv4. A Service port uses the slice
//    port with the same name and protocol (that is how named targetPorts resolve: the
//    EndpointSlice controller already wrote the number). Only addresses[0] of an endpoint is
//    used, as kube-proxy does (the API says the addresses are fungible).
//  - ready -> kActive; not ready but serving and terminating -> kTerminating; anything else
//    is left out. An address:port present in several slices appears once, kActive winning.
//  - Backends are sorted by (ip, port). A frontend with no backends is still emitted: the
//    datapath must reject connections to it rather than let them hang.
//  - When two Services claim the same (vip, port, protocol), the first in namespace/name
//    order keeps it and the clash is reported in `warnings`.
DesiredState ComputeDesiredState(const ObjectSnapshot& objects, absl::string_view node_name,
                                 std::vector<std::string>* warnings = nullptr);

// The Service's service.skiff.io/lb-algorithm annotation (Service::lb_algorithm): kMaglev for
// "maglev", kRandom for "random", kDefault when absent or empty; any other value is reported in
// `warnings` (naming the Service and the annotation) and gives kDefault.
LbAlgorithm ServiceLbAlgorithm(const Service& svc, std::vector<std::string>* warnings);

// The same, plus NodePort frontends on `node_addresses` (the addresses of the --devices;
// compute_nodeport.h).
DesiredState ComputeDesiredState(const ObjectSnapshot& objects, absl::string_view node_name,
                                 const std::vector<IpAddr>& node_addresses,
                                 std::vector<std::string>* warnings);

// One Service's frontends by the rules above, added to `state` (a key `state` already holds
// stays and is reported in `warnings`). `slices` are the Service's EndpointSlices in
// namespace/name order. ComputeDesiredState calls it for every Service in order;
// DesiredStateCache for the Services a change touches.
void AddServiceFrontends(const NamespacedName& id, const Service& svc,
                         const std::vector<const EndpointSlice*>& slices,
                         absl::string_view node_name, const std::vector<IpAddr>& node_addresses,
                         DesiredState& state, std::vector<std::string>* warnings);

// The pods behind frontends' backends, which Backend does not keep (a string per backend, a
// million at 100,000 Services × 10): looked up in the snapshot the desired state was computed
// from, by the rules above that chose each backend — among the Service's EndpointSlices (in
// namespace/name order), the endpoints whose first address and whose slice's port of the
// frontend's port name and protocol are the backend's, the first ready one, else the first
// serving and terminating one. For the API; holds pointers into `objects`, which must outlive it.
class BackendPods {
 public:
  explicit BackendPods(const ObjectSnapshot& objects);
  // "namespace/name" (a targetRef of kind Pod) for each of fe.backends, in their order; "" when
  // the endpoint names no pod or the snapshot no longer has it.
  std::vector<std::string> Of(const Frontend& fe) const;

 private:
  std::map<NamespacedName, std::vector<const EndpointSlice*>> slices_;
};

// Convenience for callers holding the store: computes from a fresh snapshot.
DesiredState ComputeDesiredState(const ObjectStore& store, absl::string_view node_name,
                                 std::vector<std::string>* warnings = nullptr);

}  // namespace skiff::model
