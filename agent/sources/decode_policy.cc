// networking.k8s.io/v1 NetworkPolicy, kept whole: absent and empty selectors mean different
// things (an absent podSelector in a peer is "no pod restriction", an empty one "all pods"),
// so the typed form keeps that distinction instead of flattening it.
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/sources/manifest_decode.h"

namespace skiff::sources {
namespace {

model::LabelSelector ReadSelector(FieldReader& r, const Field& f) {
  model::LabelSelector sel;
  if (f.present() && !f.is_map()) {
    r.Error(f, "expected a label selector (matchLabels/matchExpressions)");
    return sel;
  }
  sel.match_labels = r.StringMap(f["matchLabels"]);
  r.ForEach(f["matchExpressions"], [&](const Field& e) {
    model::LabelSelectorRequirement req;
    if (auto key = r.RequiredString(e["key"])) req.key = *key;
    if (!e["operator"].present()) r.Error(e["operator"], "is required");
    std::optional<std::string> op =
        r.Enum(e["operator"], {"In", "NotIn", "Exists", "DoesNotExist"});
    req.values = r.StringList(e["values"]);
    if (op == "In" || op == "NotIn") {
      req.op = op == "In" ? model::SelectorOperator::kIn : model::SelectorOperator::kNotIn;
      if (req.values.empty()) r.Error(e["values"], absl::StrCat("must not be empty for ", *op));
    } else if (op) {
      req.op = op == "Exists" ? model::SelectorOperator::kExists
                              : model::SelectorOperator::kDoesNotExist;
      if (!req.values.empty()) r.Error(e["values"], absl::StrCat("must be empty for ", *op));
    }
    sel.match_expressions.push_back(std::move(req));
  });
  return sel;
}

std::optional<model::LabelSelector> ReadOptionalSelector(FieldReader& r, const Field& f) {
  if (!f.present()) return std::nullopt;
  return ReadSelector(r, f);
}

model::NetworkPolicyPeer ReadPeer(FieldReader& r, const Field& f) {
  model::NetworkPolicyPeer peer;
  peer.pod_selector = ReadOptionalSelector(r, f["podSelector"]);
  peer.namespace_selector = ReadOptionalSelector(r, f["namespaceSelector"]);
  const Field block = f["ipBlock"];
  if (block.present()) {
    if (peer.pod_selector || peer.namespace_selector) {
      r.Error(block, "may not be combined with podSelector or namespaceSelector");
    }
    model::IpBlock ip_block;
    if (!block["cidr"].present()) r.Error(block["cidr"], "is required");
    if (std::optional<model::Cidr> c = r.Cidr(block["cidr"])) ip_block.cidr = *c;
    r.ForEach(block["except"], [&](const Field& e) {
      std::optional<model::Cidr> c = r.Cidr(e);
      if (!c) return;
      if (c->prefix_len <= ip_block.cidr.prefix_len || !ip_block.cidr.Contains(c->addr)) {
        r.Error(e, absl::StrCat(c->ToString(), " is not inside ", ip_block.cidr.ToString()));
      }
      ip_block.except.push_back(*c);
    });
    peer.ip_block = std::move(ip_block);
  } else if (!peer.pod_selector && !peer.namespace_selector) {
    r.Error(f, "needs podSelector, namespaceSelector or ipBlock");
  }
  return peer;
}

model::NetworkPolicyPort ReadPolicyPort(FieldReader& r, const Field& f) {
  model::NetworkPolicyPort port;
  if (std::optional<model::Protocol> proto = r.Protocol(f["protocol"])) port.protocol = *proto;
  port.port = r.PortOrName(f["port"]);
  if (f["endPort"].present()) {
    std::optional<uint16_t> end = r.Port(f["endPort"]);
    if (!port.port || port.port->is_name()) {
      r.Error(f["endPort"], "requires a numeric port");
    } else if (end && *end < port.port->number()) {
      r.Error(f["endPort"], absl::StrCat(*end, " is below port ", port.port->number()));
    }
    port.end_port = end;
  }
  return port;
}

std::vector<model::NetworkPolicyRule> ReadRules(FieldReader& r, const Field& rules,
                                                const char* peers_field) {
  std::vector<model::NetworkPolicyRule> out;
  r.ForEach(rules, [&](const Field& rule) {
    model::NetworkPolicyRule parsed;
    r.ForEach(rule[peers_field], [&](const Field& p) { parsed.peers.push_back(ReadPeer(r, p)); });
    r.ForEach(rule["ports"], [&](const Field& p) { parsed.ports.push_back(ReadPolicyPort(r, p)); });
    out.push_back(std::move(parsed));
  });
  return out;
}

}  // namespace

model::NetworkPolicy DecodeNetworkPolicy(FieldReader& r, const Field& doc) {
  model::NetworkPolicy policy;
  policy.metadata = ReadMeta(r, doc["metadata"], /*namespaced=*/true, /*dns_label_name=*/false);
  const Field spec = doc["spec"];
  if (!spec["podSelector"].present())
    r.Error(spec["podSelector"], "is required ({} selects all pods)");
  policy.pod_selector = ReadSelector(r, spec["podSelector"]);
  policy.ingress = ReadRules(r, spec["ingress"], "from");
  policy.egress = ReadRules(r, spec["egress"], "to");

  r.ForEach(spec["policyTypes"], [&](const Field& f) {
    if (std::optional<std::string> t = r.Enum(f, {"Ingress", "Egress"})) {
      policy.policy_types.push_back(*t == "Ingress" ? model::PolicyType::kIngress
                                                    : model::PolicyType::kEgress);
    }
  });
  if (!spec["policyTypes"].present()) {
    // The API server's default: Ingress always, Egress only if egress rules were given.
    policy.policy_types.push_back(model::PolicyType::kIngress);
    if (spec["egress"].present()) policy.policy_types.push_back(model::PolicyType::kEgress);
  }
  return policy;
}

}  // namespace skiff::sources
