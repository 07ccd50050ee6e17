#include "agent/api/policy_service.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "agent/api/policy_maps.h"
#include "agent/api/policy_view.h"
#include "agent/api/services.h"

namespace skiff::api {
namespace {

using MapEntry = std::pair<skiff_policy_key, skiff_policy_val>;

// The endpoint's peer identity per the compiled state (its first address's ipcache class).
uint32_t CompiledIdentity(const PolicyState& p, const policy::EndpointPolicy& ep) {
  if (ep.ips.empty()) return SKIFF_IDENTITY_WORLD;
  const policy::IpcacheEntry* e = policy::LookupIpcache(p.compiled, ep.ips[0]);
  if (!e) return SKIFF_IDENTITY_WORLD;
  if (e->reserved == policy::Reserved::kHost) return SKIFF_IDENTITY_HOST;
  return p.IdentityOf(e->klass);
}

// Where the pinned ipcache disagrees with the compiled state about this endpoint.
void CheckEndpoint(const PolicyState& p, const PolicyMapsSnapshot& maps,
                   const policy::EndpointPolicy& ep, uint32_t ep_id,
                   google::protobuf::RepeatedPtrField<std::string>* problems) {
  std::string who = ep.pod.ToString();
  uint8_t flags = (ep.ingress_isolated ? SKIFF_EP_F_INGRESS_ISOLATED : 0) |
                  (ep.egress_isolated ? SKIFF_EP_F_EGRESS_ISOLATED : 0);
  for (const auto& ip : ep.ips) {
    const skiff_ipcache_val* v = maps.LookupIpcache(ip.V4());
    std::string where = absl::StrCat(who, " ", ip.ToString(), ": ");
    if (!v || v->endpoint_id == 0) {
      problems->Add(absl::StrCat(
          where, "no endpoint entry in the pinned ipcache (compiled: ", "endpoint ", ep_id, ")"));
      continue;
    }
    if (v->endpoint_id != ep_id)
      problems->Add(
          absl::StrCat(where, "ipcache endpoint id ", v->endpoint_id, ", compiled ", ep_id));
    if (v->flags != flags)
      problems->Add(absl::StrCat(where, "ipcache isolation flags 0x", absl::Hex(v->flags),
                                 ", compiled 0x", absl::Hex(flags)));
    uint32_t want = CompiledIdentity(p, ep);
    if (v->identity != want)
      problems->Add(absl::StrCat(where, "ipcache identity ", v->identity, ", compiled ", want));
  }
}

void FillCommon(const PolicyState& p, const policy::EndpointPolicy& ep, std::string* ns,
                std::string* name, google::protobuf::RepeatedPtrField<std::string>* addrs,
                uint32_t* identity) {
  *ns = ep.pod.namespace_;
  *name = ep.pod.name;
  for (const auto& ip : ep.ips) addrs->Add(ip.ToString());
  *identity = CompiledIdentity(p, ep);
}

uint32_t EndpointIdOf(const PolicyState& p, const model::NamespacedName& pod) {
  auto it = p.endpoint_ids.find(pod);
  return it == p.endpoint_ids.end() ? 0 : it->second;
}

}  // namespace

absl::StatusOr<v1::ListPolicyEndpointsResponse> ListPolicyEndpoints(
    const AgentCore& core, const v1::ListPolicyEndpointsRequest& req) {
  auto state = core.State();
  auto p = PolicyStateOf(*state);
  if (!p.ok()) return p.status();
  auto maps = PolicyMapsSnapshot::Read(core);
  if (!maps.ok()) return maps.status();
  std::map<std::pair<uint32_t, uint8_t>, uint64_t> counts;  // {endpoint, direction}
  for (const auto& [k, v] : maps->policy) counts[{k.endpoint_id, k.direction}]++;

  v1::ListPolicyEndpointsResponse resp;
  for (const auto& [pod, ep] : (*p)->compiled.endpoints) {
    if (!req.namespace_().empty() && pod.namespace_ != req.namespace_()) continue;
    uint32_t ep_id = EndpointIdOf(**p, pod);
    auto* e = resp.add_endpoints();
    uint32_t identity = 0;
    FillCommon(**p, ep, e->mutable_namespace_(), e->mutable_name(), e->mutable_addresses(),
               &identity);
    e->set_identity(identity);
    e->set_endpoint_id(ep_id);
    e->set_ingress_isolated(ep.ingress_isolated);
    e->set_egress_isolated(ep.egress_isolated);
    e->set_ingress_policies(ep.ingress_policies.size());
    e->set_egress_policies(ep.egress_policies.size());
    e->set_ingress_entries(counts[{ep_id, SKIFF_POLICY_INGRESS}]);
    e->set_egress_entries(counts[{ep_id, SKIFF_POLICY_EGRESS}]);
    CheckEndpoint(**p, *maps, ep, ep_id, resp.mutable_problems());
  }
  return resp;
}

absl::StatusOr<v1::PolicyEndpoint> GetPolicyEndpoint(const AgentCore& core,
                                                     const v1::GetPolicyEndpointRequest& req) {
  const std::string& in = req.pod();
  if (in.empty())
    return absl::InvalidArgumentError("policy get: give a pod as NAMESPACE/NAME or an address");
  bool by_name = in.find('/') != std::string::npos;
  if (!by_name && !model::IpAddr::Parse(in))
    return absl::InvalidArgumentError(
        absl::StrCat("policy get ", in, ": expected NAMESPACE/NAME or an IPv4 address"));
  auto state = core.State();
  auto p = PolicyStateOf(*state);
  if (!p.ok()) return p.status();
  const model::Pod* pod = FindPodByInput(state->objects, in);
  if (!pod)
    return absl::NotFoundError(
        absl::StrCat("policy get ", in, ": no pod ", by_name ? "named " : "with address ", in));
  model::NamespacedName id{pod->metadata.namespace_, pod->metadata.name};
  auto it = (*p)->compiled.endpoints.find(id);
  if (it == (*p)->compiled.endpoints.end())
    return absl::NotFoundError(absl::StrCat(
        "policy get ", in, ": pod ", id.ToString(), " is not an endpoint of this node (node ",
        pod->node_name.empty() ? "<none>" : pod->node_name, " enforces its policy)"));
  auto maps = PolicyMapsSnapshot::Read(core);
  if (!maps.ok()) return maps.status();

  const policy::EndpointPolicy& ep = it->second;
  uint32_t ep_id = EndpointIdOf(**p, id);
  v1::PolicyEndpoint out;
  uint32_t identity = 0;
  FillCommon(**p, ep, out.mutable_namespace_(), out.mutable_name(), out.mutable_addresses(),
             &identity);
  out.set_identity(identity);
  out.set_endpoint_id(ep_id);
  out.set_ingress_isolated(ep.ingress_isolated);
  out.set_egress_isolated(ep.egress_isolated);
  for (const auto& n : ep.ingress_policies) out.add_ingress_policies(n.ToString());
  for (const auto& n : ep.egress_policies) out.add_egress_policies(n.ToString());

  std::vector<const MapEntry*> mine;
  for (const auto& e : maps->policy)
    if (ep_id != 0 && e.first.endpoint_id == ep_id) mine.push_back(&e);
  auto order = [](const MapEntry* e) {
    KeyPorts kp = DecodePolicyKeyPorts(e->first);
    return std::make_tuple(e->first.direction, e->first.identity, kp.proto, kp.lo, kp.hi);
  };
  std::sort(mine.begin(), mine.end(),
            [&](const MapEntry* a, const MapEntry* b) { return order(a) < order(b); });
  for (const MapEntry* e : mine) {
    auto* o = out.add_entries();
    KeyPorts kp = DecodePolicyKeyPorts(e->first);
    o->set_direction(e->first.direction == SKIFF_POLICY_INGRESS  ? "ingress"
                     : e->first.direction == SKIFF_POLICY_EGRESS ? "egress"
                                                                 : "unknown");
    o->set_identity(e->first.identity);
    o->set_peer(DescribeIdentity(**p, e->first.identity));
    o->set_protocol(ProtocolName(kp.proto));
    o->set_port_low(kp.lo);
    o->set_port_high(kp.hi);
    o->set_rule_id(e->second.rule_id);
    std::string rule = (*p)->RuleName(e->second.rule_id);
    if (!rule.empty())
      rule = RuleWithPeer(state->objects, **p, rule, (*p)->ClassOf(e->first.identity));
    o->set_rule(rule);
  }
  CheckEndpoint(**p, *maps, ep, ep_id, out.mutable_problems());
  if (ep_id == 0)
    out.add_problems(absl::StrCat(id.ToString(), ": the agent has no endpoint id for it"));
  return out;
}

grpc::Status PolicyServiceImpl::ListEndpoints(grpc::ServerContext*,
                                              const v1::ListPolicyEndpointsRequest* req,
                                              v1::ListPolicyEndpointsResponse* resp) {
  auto r = ListPolicyEndpoints(*core_, *req);
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status PolicyServiceImpl::GetEndpoint(grpc::ServerContext*,
                                            const v1::GetPolicyEndpointRequest* req,
                                            v1::PolicyEndpoint* resp) {
  auto r = GetPolicyEndpoint(*core_, *req);
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status PolicyServiceImpl::Trace(grpc::ServerContext*, const v1::PolicyTraceRequest* req,
                                      v1::PolicyTraceResponse* resp) {
  auto r = TracePolicy(*core_, *req);
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

}  // namespace skiff::api
