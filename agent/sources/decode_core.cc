// core/v1 Pod, Namespace and Node: the inputs of policy identities and node-local decisions.
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/sources/manifest_decode.h"

namespace skiff::sources {

model::Pod DecodePod(FieldReader& r, const Field& doc) {
  model::Pod pod;
  pod.metadata = ReadMeta(r, doc["metadata"], /*namespaced=*/true, /*dns_label_name=*/false);
  const Field spec = doc["spec"];
  pod.node_name = r.StringOr(spec["nodeName"], "");
  r.ForEach(spec["containers"], [&](const Field& c) {
    r.ForEach(c["ports"], [&](const Field& p) {
      model::ContainerPort port;
      port.name = r.StringOr(p["name"], "");
      if (!port.name.empty() && !IsIanaSvcName(port.name)) {
        r.Error(p["name"], absl::StrCat("\"", port.name, "\" is not a valid port name"));
      }
      if (!p["containerPort"].present()) r.Error(p["containerPort"], "is required");
      if (std::optional<uint16_t> n = r.Port(p["containerPort"])) port.container_port = *n;
      if (std::optional<model::Protocol> proto = r.Protocol(p["protocol"])) {
        port.protocol = *proto;
      }
      pod.container_ports.push_back(std::move(port));
    });
  });

  const Field status = doc["status"];
  pod.phase = r.StringOr(status["phase"], "");
  r.ForEach(status["podIPs"], [&](const Field& f) {
    if (std::optional<model::IpAddr> ip = r.Ip(f["ip"])) pod.pod_ips.push_back(*ip);
  });
  // Older writers set only status.podIP; podIPs[0] equals it when both are present.
  if (pod.pod_ips.empty()) {
    if (std::optional<model::IpAddr> ip = r.Ip(status["podIP"])) pod.pod_ips.push_back(*ip);
  }
  return pod;
}

model::Namespace DecodeNamespace(FieldReader& r, const Field& doc) {
  model::Namespace ns;
  ns.metadata = ReadMeta(r, doc["metadata"], /*namespaced=*/false, /*dns_label_name=*/true);
  return ns;
}

model::Node DecodeNode(FieldReader& r, const Field& doc) {
  model::Node node;
  node.metadata = ReadMeta(r, doc["metadata"], /*namespaced=*/false, /*dns_label_name=*/false);
  r.ForEach(doc["status"]["addresses"], [&](const Field& a) {
    model::NodeAddress addr;
    if (auto type = r.RequiredString(a["type"])) addr.type = *type;
    if (auto address = r.RequiredString(a["address"])) addr.address = *address;
    node.addresses.push_back(std::move(addr));
  });
  const Field spec = doc["spec"];
  r.ForEach(spec["podCIDRs"], [&](const Field& f) {
    if (std::optional<model::Cidr> c = r.Cidr(f)) node.pod_cidrs.push_back(*c);
  });
  if (node.pod_cidrs.empty()) {
    if (std::optional<model::Cidr> c = r.Cidr(spec["podCIDR"])) node.pod_cidrs.push_back(*c);
  }
  return node;
}

model::Object DecodeObject(model::ObjectKind kind, FieldReader& r, const Field& doc) {
  const FieldPath::Scope paths;
  switch (kind) {
    case model::ObjectKind::kService:
      return DecodeService(r, doc);
    case model::ObjectKind::kEndpointSlice:
      return DecodeEndpointSlice(r, doc);
    case model::ObjectKind::kPod:
      return DecodePod(r, doc);
    case model::ObjectKind::kNamespace:
      return DecodeNamespace(r, doc);
    case model::ObjectKind::kNode:
      return DecodeNode(r, doc);
    case model::ObjectKind::kNetworkPolicy:
      return DecodeNetworkPolicy(r, doc);
  }
  return DecodeService(r, doc);
}

}  // namespace skiff::sources
