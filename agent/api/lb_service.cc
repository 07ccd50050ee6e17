// ServiceService and EndpointService, plus the LB map read-back (lb_view.h).
#include <arpa/inet.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/api/lb_view.h"
#include "agent/api/map_decode.h"
#include "agent/api/services.h"
#include "agent/model/compute.h"

namespace skiff::api {

model::FrontendKey FrontendKeyOf(const skiff_lb4_key& k) {
  model::FrontendKey f;
  f.vip.family = 4;
  std::memcpy(f.vip.bytes.data(), &k.address, 4);
  f.port = ntohs(k.dport);
  f.proto = static_cast<model::Protocol>(k.proto);
  return f;
}

absl::StatusOr<LbView> ReadLbView(const AgentCore& core, const ApiState& state) {
  LbView view;
  reconcile::LbTables t = core.Lb();
  auto st = t.services->ForEach([&](const skiff_lb4_key& k, const skiff_lb4_service& v) {
    if (k.scope != SKIFF_SCOPE_EXTERNAL) return true;
    auto& fe = view.frontends[FrontendKeyOf(k)];
    if (k.slot == 0) {
      fe.present = true;
      fe.slot0 = v;
    } else {
      fe.slots[k.slot] = v.backend_id;
    }
    return true;
  });
  if (!st.ok()) return st;
  st = t.backends->ForEach([&](const __u32& id, const skiff_lb4_backend& b) {
    view.backends[id] = b;
    return true;
  });
  if (!st.ok()) return st;
  for (const auto& [key, fe] : view.frontends) {
    if (!fe.present) continue;
    auto it = state.desired.frontends.find(key);
    if (it != state.desired.frontends.end())
      view.service_of_rev_nat[fe.slot0.rev_nat_id] = it->second.service;
  }
  return view;
}

namespace {

const char* KindName(model::FrontendKind k) {
  switch (k) {
    case model::FrontendKind::kClusterIp:
      return "ClusterIP";
    case model::FrontendKind::kExternalIp:
      return "ExternalIP";
    case model::FrontendKind::kNodePort:
      return "NodePort";
    case model::FrontendKind::kLoadBalancer:
      return "LoadBalancer";
  }
  return "";
}

// Fills backends from the map slots; returns whether they equal what the model wants.
bool FillBackends(const LbView& view, const LbFrontendEntries& fe, const model::Frontend* want,
                  const model::BackendPods& pods, v1::Frontend* out) {
  std::vector<std::string> want_pods;
  if (want) want_pods = pods.Of(*want);
  using Tuple = std::tuple<model::IpAddr, uint16_t, std::string>;
  std::set<Tuple> have;
  uint16_t active = fe.slot0.count, total = fe.slot0.count + fe.slot0.terminating_count;
  for (uint16_t slot = 1; slot <= total; slot++) {
    auto* b = out->add_backends();
    b->set_slot(slot);
    auto s = fe.slots.find(slot);
    if (s == fe.slots.end()) {
      b->set_state("missing");
      have.insert({model::IpAddr{}, 0, "missing"});
      continue;
    }
    b->set_id(s->second);
    auto be = view.backends.find(s->second);
    if (be == view.backends.end()) {
      b->set_state("missing");
      have.insert({model::IpAddr{}, 0, "missing"});
      continue;
    }
    model::IpAddr ip;
    std::memcpy(ip.bytes.data(), &be->second.address, 4);
    b->set_address(ip.ToString());
    b->set_port(ntohs(be->second.port));
    b->set_state(slot <= active ? "active" : "terminating");
    b->set_node_local(be->second.flags & SKIFF_BACKEND_F_LOCAL);
    if (want) {
      for (size_t i = 0; i < want->backends.size(); i++) {
        const model::Backend& wb = want->backends[i];
        if (wb.ip == ip && wb.port == b->port()) b->set_pod(want_pods[i]);
      }
    }
    have.insert({ip, static_cast<uint16_t>(b->port()), b->state()});
  }
  if (!want) return false;
  std::set<Tuple> wanted;
  for (const auto& wb : want->backends)
    wanted.insert(
        {wb.ip, wb.port, wb.state == model::BackendState::kActive ? "active" : "terminating"});
  return have == wanted &&
         fe.slot0.affinity_timeout == (want->affinity_client_ip ? want->affinity_timeout_s : 0u);
}

const char* AlgorithmName(model::LbAlgorithm a) {
  switch (a) {
    case model::LbAlgorithm::kRandom:
      return "random";
    case model::LbAlgorithm::kMaglev:
      return "maglev";
    case model::LbAlgorithm::kDefault:
      break;
  }
  return "";
}

const char* AlgorithmName(uint8_t slot0_algorithm) {
  return slot0_algorithm == SKIFF_LB_ALG_MAGLEV ? "maglev" : "random";
}

void FillFrontend(const LbView& view, const model::FrontendKey& key, const model::Frontend* want,
                  const model::BackendPods& pods, v1::Frontend* out) {
  out->set_address(key.vip.ToString());
  out->set_port(key.port);
  out->set_protocol(ProtocolString(static_cast<uint8_t>(key.proto)));
  if (want) {
    out->set_kind(KindName(want->kind));
    out->set_port_name(want->port_name);
    out->set_session_affinity(want->affinity_client_ip);
    out->set_affinity_timeout_seconds(want->affinity_client_ip ? want->affinity_timeout_s : 0);
    out->set_internal_traffic_local(want->internal_traffic_local);
    out->set_external_traffic_local(want->external_traffic_local);
    out->set_lb_algorithm(AlgorithmName(want->lb_algorithm));
  }
  auto it = view.frontends.find(key);
  if (it == view.frontends.end() || !it->second.present) {
    out->set_state("pending");
    return;
  }
  const auto& fe = it->second;
  out->set_rev_nat_id(fe.slot0.rev_nat_id);
  if (!want) {
    out->set_session_affinity(fe.slot0.flags & SKIFF_SVC_F_AFFINITY);
    out->set_affinity_timeout_seconds(fe.slot0.affinity_timeout);
    out->set_internal_traffic_local(fe.slot0.flags & SKIFF_SVC_F_INT_LOCAL);
    out->set_external_traffic_local(fe.slot0.flags & SKIFF_SVC_F_EXT_LOCAL);
  }
  // A Service that names its algorithm is programmed once slot 0 says the same; one that
  // leaves it to the agent's default takes whatever the agent wrote.
  const bool same_algorithm =
      out->lb_algorithm().empty() || out->lb_algorithm() == AlgorithmName(fe.slot0.algorithm);
  out->set_lb_algorithm(AlgorithmName(fe.slot0.algorithm));
  bool equal = FillBackends(view, fe, want, pods, out) && same_algorithm;
  out->set_state(!want ? "stale" : equal ? "programmed" : "pending");
}

// Every Service of the model (optionally one namespace) plus, under an unnamed Service, the
// frontends the maps hold that the model no longer wants.
std::vector<v1::Service> BuildServices(const ApiState& state, const LbView& view,
                                       const std::string& ns) {
  std::map<std::pair<std::string, std::string>, v1::Service> out;
  const model::BackendPods pods(state.objects);
  for (const auto& [id, svc] : state.objects.services) {
    if (!ns.empty() && id.namespace_ != ns) continue;
    auto& s = out[{id.namespace_, id.name}];
    s.set_namespace_(id.namespace_);
    s.set_name(id.name);
  }
  for (const auto& [key, fe] : state.desired.frontends) {
    std::vector<std::string> parts = absl::StrSplit(fe.service, absl::MaxSplits('/', 1));
    if (parts.size() != 2 || (!ns.empty() && parts[0] != ns)) continue;
    auto& s = out[{parts[0], parts[1]}];
    s.set_namespace_(parts[0]);
    s.set_name(parts[1]);
    FillFrontend(view, key, &fe, pods, s.add_frontends());
  }
  if (ns.empty()) {
    v1::Service stale;
    for (const auto& [key, fe] : view.frontends) {
      if (!fe.present || state.desired.frontends.count(key)) continue;
      FillFrontend(view, key, nullptr, pods, stale.add_frontends());
    }
    if (stale.frontends_size()) out[{"", ""}] = std::move(stale);
  }
  std::vector<v1::Service> list;
  for (auto& [k, s] : out) list.push_back(std::move(s));
  return list;
}

}  // namespace

grpc::Status ServiceServiceImpl::ListServices(grpc::ServerContext*,
                                              const v1::ListServicesRequest* req,
                                              v1::ListServicesResponse* resp) {
  auto state = core_->State();
  auto view = ReadLbView(*core_, *state);
  if (!view.ok()) return ToGrpc(view.status());
  for (auto& s : BuildServices(*state, *view, req->namespace_()))
    *resp->add_services() = std::move(s);
  return grpc::Status::OK;
}

grpc::Status ServiceServiceImpl::GetService(grpc::ServerContext*, const v1::GetServiceRequest* req,
                                            v1::Service* resp) {
  if (req->name().empty())
    return {grpc::StatusCode::INVALID_ARGUMENT, "service name is required (NAMESPACE/NAME)"};
  std::string ns = req->namespace_().empty() ? "default" : req->namespace_();
  auto state = core_->State();
  auto view = ReadLbView(*core_, *state);
  if (!view.ok()) return ToGrpc(view.status());
  for (auto& s : BuildServices(*state, *view, ns)) {
    if (s.name() != req->name()) continue;
    *resp = std::move(s);
    return grpc::Status::OK;
  }
  return {grpc::StatusCode::NOT_FOUND,
          absl::StrCat("service ", ns, "/", req->name(), " not found")};
}

grpc::Status EndpointServiceImpl::ListEndpoints(grpc::ServerContext*,
                                                const v1::ListEndpointsRequest* req,
                                                v1::ListEndpointsResponse* resp) {
  auto state = core_->State();
  auto routes = core_->PodRoutes();
  if (!routes.ok()) return ToGrpc(routes.status());
  std::string node = core_->Info().node_name;
  std::map<std::string, std::set<std::string>> backend_of;  // pod -> services
  const model::BackendPods pods(state->objects);
  for (const auto& [key, fe] : state->desired.frontends)
    for (const std::string& pod : pods.Of(fe))
      if (!pod.empty()) backend_of[pod].insert(fe.service);
  std::set<int> attached;
  for (const auto& p : state->programs) attached.insert(p.ifindex);
  for (const auto& [id, pod] : state->objects.pods) {
    if (pod->node_name != node) continue;
    if (!req->namespace_().empty() && id.namespace_ != req->namespace_()) continue;
    auto* e = resp->add_endpoints();
    e->set_namespace_(id.namespace_);
    e->set_name(id.name);
    e->set_phase(pod->phase);
    for (const auto& ip : pod->pod_ips) {
      e->add_addresses(ip.ToString());
      if (ip.family != 4 || !e->interface().empty()) continue;
      auto r = routes->find(ip.V4());
      if (r == routes->end()) continue;
      e->set_interface(r->second.iface);
      e->set_ifindex(r->second.ifindex);
      e->set_attached(attached.count(r->second.ifindex) > 0);
    }
    for (const auto& s : backend_of[id.ToString()]) e->add_backend_of(s);
  }
  return grpc::Status::OK;
}

}  // namespace skiff::api
