// PolicyService.Trace: the verdict of one connection, from the compiled state
// (policy::EvaluateCompiled) and from the pinned maps looked up as bpf/lib/policy.h does.
#include <netinet/in.h>

#include <algorithm>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/api/policy_maps.h"
#include "agent/api/policy_service.h"
#include "agent/api/policy_view.h"
#include "agent/model/compute.h"
#include "maps/drop_reasons.h"

namespace skiff::api {
namespace {

struct End {
  model::IpAddr ip;
  const model::Pod* pod = nullptr;
};

absl::StatusOr<End> Resolve(const model::ObjectSnapshot& objects, const std::string& flag,
                            const std::string& in) {
  End e;
  if (in.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("policy trace: ", flag, " is required (NAMESPACE/POD or an IPv4 address)"));
  if (in.find('/') != std::string::npos) {
    e.pod = FindPodByInput(objects, in);
    if (!e.pod)
      return absl::NotFoundError(
          absl::StrCat("policy trace ", flag, " ", in, ": no pod named ", in));
    auto it = std::find_if(e.pod->pod_ips.begin(), e.pod->pod_ips.end(),
                           [](const model::IpAddr& a) { return a.family == 4; });
    if (it == e.pod->pod_ips.end())
      return absl::FailedPreconditionError(
          absl::StrCat("policy trace ", flag, " ", in, ": the pod has no IPv4 address yet"));
    e.ip = *it;
    return e;
  }
  auto ip = model::IpAddr::Parse(in);
  if (!ip || ip->family != 4)
    return absl::InvalidArgumentError(absl::StrCat("policy trace ", flag, " ", in,
                                                   ": expected NAMESPACE/POD or an IPv4 address"));
  e.ip = *ip;
  e.pod = FindPodByInput(objects, in);
  return e;
}

// Policy sees addresses after service translation: a Service address is refused, naming the
// backends to trace instead.
absl::Status RefuseServiceAddress(const model::DesiredState& desired,
                                  const model::ObjectSnapshot& objects, const End& to,
                                  uint16_t port, uint8_t proto) {
  if (to.pod) return absl::OkStatus();
  std::vector<std::string> services, backends;
  std::optional<model::BackendPods> pod_index;  // built once, only for a Service address
  for (const auto& [key, f] : desired.frontends) {
    if (key.vip != to.ip || f.kind == model::FrontendKind::kNodePort) continue;
    if (std::find(services.begin(), services.end(), f.service) == services.end())
      services.push_back(f.service);
    if (key.port != port || static_cast<uint8_t>(key.proto) != proto) continue;
    if (!pod_index) pod_index.emplace(objects);
    const std::vector<std::string> pods = pod_index->Of(f);
    for (size_t i = 0; i < f.backends.size(); i++)
      backends.push_back(absl::StrCat(f.backends[i].ip.ToString(), ":", f.backends[i].port,
                                      pods[i].empty() ? "" : absl::StrCat(" (", pods[i], ")")));
  }
  if (services.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "policy trace --to ", to.ip.ToString(), ": an address of Service ",
      absl::StrJoin(services, ", "),
      "; policy sees the backend the connection is translated to: trace to a backend instead",
      backends.empty() ? std::string(" (no backend for this port)")
                       : absl::StrCat(": ", absl::StrJoin(backends, ", "))));
}

void FillEnd(const PolicyState& p, const PolicyMapsSnapshot& maps, const std::string& input,
             const End& e, v1::PolicyTraceEnd* out) {
  out->set_input(input);
  if (e.pod)
    out->set_pod(absl::StrCat(e.pod->metadata.namespace_.str(), "/", e.pod->metadata.name));
  out->set_address(e.ip.ToString());
  if (e.pod)
    out->set_local(p.compiled.endpoints.count({e.pod->metadata.namespace_, e.pod->metadata.name}));
  uint32_t id = maps.IdentityOf(e.ip.V4());
  out->set_identity(id);
  out->set_identity_is(DescribeIdentity(p, id));
}

}  // namespace

absl::StatusOr<v1::PolicyTraceResponse> TracePolicy(const AgentCore& core,
                                                    const v1::PolicyTraceRequest& req) {
  if (req.port() < 1 || req.port() > 65535)
    return absl::InvalidArgumentError(
        absl::StrCat("policy trace --port ", req.port(), ": expected 1-65535"));
  std::string proto_name = absl::AsciiStrToUpper(req.protocol().empty() ? "TCP" : req.protocol());
  uint8_t proto = proto_name == "TCP"    ? IPPROTO_TCP
                  : proto_name == "UDP"  ? IPPROTO_UDP
                  : proto_name == "SCTP" ? IPPROTO_SCTP
                                         : 0;
  if (!proto)
    return absl::InvalidArgumentError(
        absl::StrCat("policy trace --protocol ", req.protocol(), ": expected TCP, UDP or SCTP"));
  uint16_t port = static_cast<uint16_t>(req.port());

  auto state = core.State();
  auto ps = PolicyStateOf(*state);
  if (!ps.ok()) return ps.status();
  const PolicyState& p = **ps;
  auto from = Resolve(state->objects, "--from", req.from());
  if (!from.ok()) return from.status();
  auto to = Resolve(state->objects, "--to", req.to());
  if (!to.ok()) return to.status();
  if (auto st = RefuseServiceAddress(state->desired, state->objects, *to, port, proto); !st.ok())
    return st;
  auto maps = PolicyMapsSnapshot::Read(core);
  if (!maps.ok()) return maps.status();

  v1::PolicyTraceResponse out;
  FillEnd(p, *maps, req.from(), *from, out.mutable_from());
  FillEnd(p, *maps, req.to(), *to, out.mutable_to());
  out.set_protocol(proto_name);
  out.set_port(port);

  // The compiled state, evaluated as the datapath does.
  policy::CompiledVerdict cv = policy::EvaluateCompiled(p.compiled, from->ip, to->ip, proto, port);
  out.set_host(cv.host);
  auto klass_of = [&](const model::IpAddr& ip) {
    const policy::IpcacheEntry* e = policy::LookupIpcache(p.compiled, ip);
    return e ? e->klass : -1;
  };
  auto endpoint_of = [&](const End& e) -> const policy::EndpointPolicy* {
    if (!e.pod) return nullptr;
    auto it = p.compiled.endpoints.find({e.pod->metadata.namespace_, e.pod->metadata.name});
    return it == p.compiled.endpoints.end() ? nullptr : &it->second;
  };
  auto compiled_side = [&](bool ingress, const End& self, const End& peer,
                           v1::PolicyDirectionTrace* d) {
    const policy::EndpointPolicy* ep = endpoint_of(self);
    d->set_enforced(ep != nullptr);
    d->set_isolated(ingress ? cv.ingress_isolated : cv.egress_isolated);
    d->set_allowed(ingress ? cv.ingress_allowed : cv.egress_allowed);
    if (ep)
      for (const auto& n : ingress ? ep->ingress_policies : ep->egress_policies)
        d->add_selecting(n.ToString());
    const auto& rule = ingress ? cv.ingress_rule : cv.egress_rule;
    if (rule) d->set_rule(RuleWithPeer(state->objects, p, rule->ToString(), klass_of(peer.ip)));
  };
  compiled_side(false, *from, *to, out.mutable_egress());
  compiled_side(true, *to, *from, out.mutable_ingress());

  // The pinned maps, looked up as from_container (egress) and to_container (ingress) do.
  std::string map_drop;
  auto map_side = [&](bool ingress, const End& self, const End& peer, v1::PolicyDirectionTrace* d) {
    const skiff_ipcache_val* v = maps->LookupIpcache(self.ip.V4());
    uint8_t flag = ingress ? SKIFF_EP_F_INGRESS_ISOLATED : SKIFF_EP_F_EGRESS_ISOLATED;
    d->set_map_allowed(true);
    if (!v || !v->endpoint_id) {
      // to_container of a pod of this node the agent has not programmed yet.
      if (ingress && self.pod && self.pod->node_name == core.Info().node_name &&
          (maps->state_flags & SKIFF_POL_STATE_F_DENY_UNKNOWN)) {
        d->set_map_allowed(false);
        d->set_map_isolated(true);
        if (map_drop.empty()) map_drop = SkiffDropReasonName(SKIFF_DROP_POLICY_NOT_READY);
      }
      return;
    }
    d->set_map_endpoint_id(v->endpoint_id);
    uint32_t peer_id = maps->IdentityOf(peer.ip.V4());
    d->set_map_peer_identity(peer_id);
    d->set_map_isolated(v->flags & flag);
    if (!(v->flags & flag)) return;
    const std::pair<skiff_policy_key, skiff_policy_val>* hit = nullptr;
    bool ok = maps->Allows(v->endpoint_id, peer_id,
                           ingress ? SKIFF_POLICY_INGRESS : SKIFF_POLICY_EGRESS, proto, port, &hit);
    d->set_map_allowed(ok);
    if (hit) {
      d->set_map_entry(FormatPolicyKey(hit->first));
      std::string rule = p.RuleName(hit->second.rule_id);
      d->set_map_rule(rule.empty() ? absl::StrCat("rule id ", hit->second.rule_id, " (unknown)")
                                   : RuleWithPeer(state->objects, p, rule, p.ClassOf(peer_id)));
    }
    if (!ok && map_drop.empty())
      map_drop = SkiffDropReasonName(ingress ? SKIFF_DROP_POLICY_DENIED_INGRESS
                                             : SKIFF_DROP_POLICY_DENIED_EGRESS);
  };
  map_side(false, *from, *to, out.mutable_egress());  // from_container runs first
  map_side(true, *to, *from, out.mutable_ingress());

  out.set_verdict(cv.allowed ? "ALLOWED" : "DENIED");
  if (!cv.egress_allowed)
    out.set_drop_reason(SkiffDropReasonName(SKIFF_DROP_POLICY_DENIED_EGRESS));
  else if (!cv.ingress_allowed)
    out.set_drop_reason(SkiffDropReasonName(SKIFF_DROP_POLICY_DENIED_INGRESS));
  bool map_allowed = out.egress().map_allowed() && out.ingress().map_allowed();
  out.set_map_verdict(map_allowed ? "ALLOWED" : "DENIED");
  out.set_map_drop_reason(map_drop);

  auto compare = [&](const char* what, const v1::PolicyDirectionTrace& d) {
    if (cv.host) return;
    if (d.isolated() != d.map_isolated())
      out.add_problems(absl::StrCat(what, ": compiled isolated=", d.isolated() ? "yes" : "no",
                                    ", pinned ipcache isolated=", d.map_isolated() ? "yes" : "no"));
    if (d.allowed() != d.map_allowed())
      out.add_problems(absl::StrCat(what, ": compiled ", d.allowed() ? "allows" : "denies",
                                    ", pinned maps ", d.map_allowed() ? "allow" : "deny"));
  };
  compare("egress of the source", out.egress());
  compare("ingress of the destination", out.ingress());
  for (const auto* e : {&out.from(), &out.to()}) {
    const model::IpAddr ip = *model::IpAddr::Parse(e->address());
    const policy::IpcacheEntry* ce = policy::LookupIpcache(p.compiled, ip);
    uint32_t want = !ce                                       ? SKIFF_IDENTITY_WORLD
                    : ce->reserved == policy::Reserved::kHost ? SKIFF_IDENTITY_HOST
                                                              : p.IdentityOf(ce->klass);
    if (want != e->identity())
      out.add_problems(absl::StrCat(e->address(), ": pinned ipcache identity ", e->identity(),
                                    ", compiled ", want));
  }
  if (out.verdict() != out.map_verdict())
    out.add_problems(
        absl::StrCat("verdict: compiled ", out.verdict(), ", pinned maps ", out.map_verdict()));
  out.set_mismatch(out.problems_size() > 0);

  auto summary = [&](const char* what, const End& self, bool ingress, v1::PolicyDirectionTrace* d) {
    if (cv.host) {
      d->set_summary("allowed: traffic to or from the node is always allowed");
    } else if (!d->enforced()) {
      d->set_summary(
          absl::StrCat(what, " is not a pod of this node: ",
                       self.pod ? "its node enforces its policy" : "no policy applies to it"));
    } else if (!d->isolated()) {
      d->set_summary("not isolated: no policy selects it for " +
                     std::string(ingress ? "ingress" : "egress"));
    } else if (d->allowed()) {
      d->set_summary(absl::StrCat("allowed by ", d->rule()));
    } else {
      d->set_summary(absl::StrCat("denied: isolated by ", absl::StrJoin(d->selecting(), ", "),
                                  "; no rule allows ", proto_name, "/", port,
                                  ingress ? " from this source" : " to this destination"));
    }
  };
  summary("the source", *from, false, out.mutable_egress());
  summary("the destination", *to, true, out.mutable_ingress());
  return out;
}

}  // namespace skiff::api
