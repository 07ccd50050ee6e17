#include "agent/model/compute.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/model/compute_nodeport.h"

namespace skiff::model {
namespace {

using SlicesByService = std::map<NamespacedName, std::vector<const EndpointSlice*>>;

SlicesByService IndexSlices(const ObjectSnapshot& objects) {
  SlicesByService index;
  // endpoint_slices is ordered by (namespace, name), so each service's list is too: the
  // dedupe below then picks the same duplicate every time.
  for (const auto& [id, slice] : objects.endpoint_slices) {
    const std::string service = slice->service_name();
    if (service.empty()) continue;
    index[NamespacedName{id.namespace_, service}].push_back(slice.get());
  }
  return index;
}

bool Skipped(const Service& svc) {
  return svc.spec.type == ServiceType::kExternalName || svc.spec.headless ||
         svc.metadata.labels.count(kServiceProxyNameLabel) > 0;
}

// The slice's port a Service port's backends use (the one with its name and protocol), nullptr
// when it has none with a number.
const EndpointPort* SlicePort(const EndpointSlice& slice, absl::string_view name,
                              Protocol protocol) {
  auto it = std::find_if(slice.ports.begin(), slice.ports.end(),
                         [&](const auto& p) { return p.name == name && p.protocol == protocol; });
  return it == slice.ports.end() || !it->port ? nullptr : &*it;
}

// ready -> kActive; serving and terminating -> kTerminating; anything else is no backend.
std::optional<BackendState> StateOf(const EndpointConditions& c) {
  if (c.ready) return BackendState::kActive;
  if (c.serving && c.terminating) return BackendState::kTerminating;
  return std::nullopt;
}

std::string PodOf(const Endpoint& ep, const EndpointSlice& slice) {
  if (!ep.target_ref || ep.target_ref->kind != "Pod") return "";
  const std::string& ns =
      ep.target_ref->namespace_.empty() ? slice.metadata.namespace_ : ep.target_ref->namespace_;
  return absl::StrCat(ns, "/", ep.target_ref->name);
}

std::vector<Backend> BackendsFor(const ServicePort& svc_port,
                                 const std::vector<const EndpointSlice*>& slices,
                                 absl::string_view node_name) {
  // Candidates in slice order, then sorted by (ip, port) and merged: one vector, not a map
  // node per backend (a million of them at 100,000 Services x 10).
  std::vector<Backend> candidates;
  for (const EndpointSlice* slice : slices) {
    if (slice->address_type != AddressType::kIpv4) continue;
    const EndpointPort* slice_port = SlicePort(*slice, svc_port.name, svc_port.protocol);
    if (slice_port == nullptr) continue;
    const uint16_t port = *slice_port->port;

    candidates.reserve(candidates.size() + slice->endpoints.size());
    for (const Endpoint& ep : slice->endpoints) {
      const std::optional<BackendState> state = StateOf(ep.conditions);
      if (!state) continue;
      std::optional<IpAddr> ip = ep.addresses.FrontIp();
      if (!ip || ip->family != 4) continue;

      Backend& backend = candidates.emplace_back();
      backend.ip = *ip;
      backend.port = port;
      backend.state = *state;
      backend.node_local = !node_name.empty() && ep.node_name == node_name;
    }
  }
  auto addr_less = [](const Backend& a, const Backend& b) {
    return std::tie(a.ip, a.port) < std::tie(b.ip, b.port);
  };
  // Stable: among duplicates the first seen stays first, as the map's first insert did.
  if (!std::is_sorted(candidates.begin(), candidates.end(), addr_less)) {
    std::stable_sort(candidates.begin(), candidates.end(), addr_less);
  }
  // Merged in place: the candidates' vector is the result (no second vector and copy per
  // Service port).
  size_t kept = 0;
  for (size_t i = 0; i < candidates.size(); i++) {
    const Backend& b = candidates[i];
    if (kept == 0 || addr_less(candidates[kept - 1], b)) {
      candidates[kept++] = b;
    } else if (candidates[kept - 1].state == BackendState::kTerminating &&
               b.state == BackendState::kActive) {
      // Slices may overlap while the EndpointSlice controller moves endpoints between them;
      // the most usable copy wins so a pod is never demoted by a stale duplicate.
      candidates[kept - 1] = b;
    }
  }
  candidates.resize(kept);
  return candidates;  // (ip, port) order
}

// loadBalancerSourceRanges of a LoadBalancer frontend: the ranges of its family, sorted and
// unique (Cidr::Parse already cleared the host bits).
void SetSourceRanges(const ServiceSpec& spec, Frontend& fe) {
  if (spec.load_balancer_source_ranges.empty()) return;
  fe.restrict_sources = true;
  for (const Cidr& c : spec.load_balancer_source_ranges) {
    if (c.addr.family == fe.key.vip.family) fe.source_ranges.push_back({c.addr, c.prefix_len});
  }
  std::sort(fe.source_ranges.begin(), fe.source_ranges.end());
  fe.source_ranges.erase(std::unique(fe.source_ranges.begin(), fe.source_ranges.end()),
                         fe.source_ranges.end());
}

}  // namespace

LbAlgorithm ServiceLbAlgorithm(const Service& svc, std::vector<std::string>* warnings) {
  const std::string& value = svc.lb_algorithm;
  if (value.empty()) return LbAlgorithm::kDefault;
  if (value == "maglev") return LbAlgorithm::kMaglev;
  if (value == "random") return LbAlgorithm::kRandom;
  if (warnings != nullptr)
    warnings->push_back(absl::StrCat("Service ", svc.metadata.namespace_.str(), "/",
                                     svc.metadata.name, ": annotation ", kLbAlgorithmAnnotation,
                                     " \"", value,
                                     "\" is not \"random\" or \"maglev\"; the agent's "
                                     "--lb-algorithm applies"));
  return LbAlgorithm::kDefault;
}

DesiredState ComputeDesiredState(const ObjectSnapshot& objects, absl::string_view node_name,
                                 std::vector<std::string>* warnings) {
  return ComputeDesiredState(objects, node_name, {}, warnings);
}

void AddServiceFrontends(const NamespacedName& id, const Service& svc,
                         const std::vector<const EndpointSlice*>& slices,
                         absl::string_view node_name, const std::vector<IpAddr>& node_addresses,
                         DesiredState& state, std::vector<std::string>* warnings) {
  if (Skipped(svc)) return;
  std::vector<std::pair<IpAddr, FrontendKind>> vips;
  for (const IpAddr& ip : svc.spec.cluster_ips) vips.emplace_back(ip, FrontendKind::kClusterIp);
  for (const IpAddr& ip : svc.spec.external_ips) vips.emplace_back(ip, FrontendKind::kExternalIp);
  if (svc.spec.type == ServiceType::kLoadBalancer) {
    for (const IpAddr& ip : svc.load_balancer_ingress_ips) {
      vips.emplace_back(ip, FrontendKind::kLoadBalancer);
    }
  }

  const std::string service_id = id.ToString();
  const LbAlgorithm algorithm = ServiceLbAlgorithm(svc, warnings);
  for (const ServicePort& port : svc.spec.ports) {
    std::vector<Backend> backends = BackendsFor(port, slices, node_name);
    // The last frontend of the port takes the vector, the others copy it.
    size_t left = 0;
    for (const auto& [vip, kind] : vips) left += vip.family == 4;
    const bool node_ports =
        (svc.spec.type == ServiceType::kNodePort || svc.spec.type == ServiceType::kLoadBalancer) &&
        port.node_port != 0 && !node_addresses.empty();
    for (const auto& [vip, kind] : vips) {
      if (vip.family != 4) continue;
      Frontend fe;
      fe.key = FrontendKey{vip, port.port, port.protocol};
      fe.kind = kind;
      fe.service = service_id;
      fe.port_name = port.name;
      if (--left == 0 && !node_ports) {
        fe.backends = std::move(backends);
      } else {
        fe.backends = backends;
      }
      fe.affinity_client_ip = svc.spec.session_affinity_client_ip;
      fe.affinity_timeout_s =
          svc.spec.session_affinity_client_ip ? svc.spec.session_affinity_timeout_s : 0;
      if (kind == FrontendKind::kClusterIp) {
        fe.internal_traffic_local = svc.spec.internal_traffic_policy == TrafficPolicy::kLocal;
      } else {
        fe.external_traffic_local = svc.spec.external_traffic_policy == TrafficPolicy::kLocal;
      }
      if (kind == FrontendKind::kLoadBalancer) SetSourceRanges(svc.spec, fe);
      fe.lb_algorithm = algorithm;
      InsertFrontend(std::move(fe), "", state, warnings);
    }
    if (node_ports) {
      AddNodePortFrontends(svc, service_id, port, backends, node_addresses, algorithm, state,
                           warnings);
    }
  }
}

DesiredState ComputeDesiredState(const ObjectSnapshot& objects, absl::string_view node_name,
                                 const std::vector<IpAddr>& node_addresses,
                                 std::vector<std::string>* warnings) {
  DesiredState state;
  const SlicesByService slices_by_service = IndexSlices(objects);
  static const std::vector<const EndpointSlice*> kNoSlices;

  for (const auto& [id, svc_ptr] : objects.services) {
    auto slices_it = slices_by_service.find(id);
    const auto& slices = slices_it == slices_by_service.end() ? kNoSlices : slices_it->second;
    AddServiceFrontends(id, *svc_ptr, slices, node_name, node_addresses, state, warnings);
  }
  return state;
}

BackendPods::BackendPods(const ObjectSnapshot& objects) : slices_(IndexSlices(objects)) {}

std::vector<std::string> BackendPods::Of(const Frontend& fe) const {
  std::vector<std::string> pods(fe.backends.size());
  const size_t slash = fe.service.find('/');
  if (slash == std::string::npos) return pods;
  auto it = slices_.find({fe.service.substr(0, slash), fe.service.substr(slash + 1)});
  if (it == slices_.end()) return pods;
  // Which backends have their endpoint yet, and whether it is an active one: as in
  // BackendsFor, the first endpoint stays unless a later active one replaces a terminating one.
  std::vector<uint8_t> found(fe.backends.size(), 0);  // 0: none, 1: terminating, 2: active
  auto addr_less = [](const Backend& b, const std::pair<IpAddr, uint16_t>& a) {
    return std::tie(b.ip, b.port) < std::tie(a.first, a.second);
  };
  for (const EndpointSlice* slice : it->second) {
    if (slice->address_type != AddressType::kIpv4) continue;
    const EndpointPort* slice_port = SlicePort(*slice, fe.port_name, fe.key.proto);
    if (slice_port == nullptr) continue;
    for (const Endpoint& ep : slice->endpoints) {
      const std::optional<BackendState> state = StateOf(ep.conditions);
      if (!state) continue;
      std::optional<IpAddr> ip = ep.addresses.FrontIp();
      if (!ip || ip->family != 4) continue;
      const std::pair<IpAddr, uint16_t> addr{*ip, *slice_port->port};
      auto b = std::lower_bound(fe.backends.begin(), fe.backends.end(), addr, addr_less);
      if (b == fe.backends.end() || b->ip != addr.first || b->port != addr.second) continue;
      const size_t i = b - fe.backends.begin();
      const uint8_t rank = *state == BackendState::kActive ? 2 : 1;
      if (found[i] >= rank) continue;
      found[i] = rank;
      pods[i] = PodOf(ep, *slice);
    }
  }
  return pods;
}

DesiredState ComputeDesiredState(const ObjectStore& store, absl::string_view node_name,
                                 std::vector<std::string>* warnings) {
  return ComputeDesiredState(store.Snapshot(), node_name, warnings);
}

}  // namespace skiff::model
