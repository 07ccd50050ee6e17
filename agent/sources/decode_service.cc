// core/v1 Service and discovery.k8s.io/v1 EndpointSlice: the two kinds the load balancer
// is built from, so their validation is the strictest.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/sources/manifest_decode.h"

namespace skiff::sources {
namespace {

using model::IpAddr;

void ReadClusterIps(FieldReader& r, const Field& spec, model::ServiceSpec& out) {
  const std::string cluster_ip = r.StringOr(spec["clusterIP"], "");
  std::vector<std::string> cluster_ips = r.StringList(spec["clusterIPs"]);
  if (!cluster_ip.empty() && !cluster_ips.empty() && cluster_ips.front() != cluster_ip) {
    r.Error(spec["clusterIPs"][0],
            absl::StrCat(cluster_ips.front(), " does not match spec.clusterIP ", cluster_ip));
    return;
  }
  if (cluster_ips.empty() && !cluster_ip.empty()) cluster_ips.push_back(cluster_ip);
  if (cluster_ips.size() == 1 && cluster_ips.front() == "None") {
    out.headless = true;
    return;
  }
  if (cluster_ips.size() > 2) {
    r.Error(spec["clusterIPs"], "at most two addresses (one per IP family)");
    return;
  }
  for (size_t i = 0; i < cluster_ips.size(); ++i) {
    const Field f = spec["clusterIPs"].present() ? spec["clusterIPs"][i] : spec["clusterIP"];
    std::optional<IpAddr> ip = IpAddr::Parse(cluster_ips[i]);
    if (!ip) {
      r.Error(f, absl::StrCat("\"", cluster_ips[i], "\" is not a valid IP address"));
      continue;
    }
    out.cluster_ips.push_back(*ip);
  }
  if (out.cluster_ips.size() == 2 && out.cluster_ips[0].family == out.cluster_ips[1].family) {
    r.Error(spec["clusterIPs"], "the two addresses must be of different IP families");
  }
}

void ReadPorts(FieldReader& r, const Field& spec, model::ServiceSpec& out) {
  const Field ports = spec["ports"];
  const bool needs_ports = out.type != model::ServiceType::kExternalName && !out.headless;
  if (needs_ports && ports.size() == 0 && r.ok()) {
    r.Error(ports, "at least one port is required");
  }
  // Duplicates are looked for among the earlier ports (a handful): no set to allocate.
  auto name_taken = [&](const std::string& name) {
    return std::any_of(out.ports.begin(), out.ports.end(),
                       [&](const model::ServicePort& q) { return q.name == name; });
  };
  auto port_taken = [&](uint16_t number, model::Protocol protocol) {
    return std::any_of(out.ports.begin(), out.ports.end(), [&](const model::ServicePort& q) {
      return q.port == number && q.protocol == protocol;
    });
  };
  out.ports.reserve(ports.size());
  r.ForEach(ports, [&](const Field& p) {
    model::ServicePort port;
    // Interned (objects.h) only once valid: the pool keeps every text it is given.
    const std::string name = r.StringOr(p["name"], "");
    if (ports.size() > 1 && name.empty()) {
      r.Error(p["name"], "is required when a Service has more than one port");
    } else if (!name.empty() && !IsDnsLabel(name)) {
      r.Error(p["name"], absl::StrCat("\"", name, "\" is not a valid port name"));
    } else if (!name.empty() && name_taken(name)) {
      r.Error(p["name"], absl::StrCat("duplicate port name \"", name, "\""));
    } else {
      port.name = name;
    }
    if (std::optional<model::Protocol> proto = r.Protocol(p["protocol"])) port.protocol = *proto;
    if (!p["port"].present()) {
      r.Error(p["port"], "is required");
    } else if (std::optional<uint16_t> n = r.Port(p["port"])) {
      port.port = *n;
      if (port_taken(port.port, port.protocol)) {
        r.Error(p["port"], absl::StrCat("duplicate port ", port.port, "/",
                                        model::ProtocolName(port.protocol)));
      }
    }
    // The API defaults targetPort to port.
    port.target_port = model::IntOrString{int32_t{port.port}};
    if (std::optional<model::IntOrString> t = r.PortOrName(p["targetPort"])) port.target_port = *t;
    if (std::optional<uint16_t> np = r.Port(p["nodePort"], /*allow_zero=*/true)) {
      port.node_port = *np;
    }
    out.ports.push_back(std::move(port));
  });
}

void ReadAffinityAndPolicies(FieldReader& r, const Field& spec, model::ServiceSpec& out) {
  if (std::optional<std::string> a = r.Enum(spec["sessionAffinity"], {"None", "ClientIP"})) {
    out.session_affinity_client_ip = *a == "ClientIP";
  }
  const Field timeout = spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"];
  if (std::optional<int64_t> t = r.Int(timeout)) {
    if (*t < 1 || *t > 86400) {
      r.Error(timeout, absl::StrCat(*t, " is out of range 1-86400"));
    } else {
      out.session_affinity_timeout_s = static_cast<uint32_t>(*t);
    }
  }
  auto policy = [&](const char* field) {
    std::optional<std::string> p = r.Enum(spec[field], {"Cluster", "Local"});
    return p && *p == "Local" ? model::TrafficPolicy::kLocal : model::TrafficPolicy::kCluster;
  };
  out.internal_traffic_policy = policy("internalTrafficPolicy");
  out.external_traffic_policy = policy("externalTrafficPolicy");
}

}  // namespace

model::Service DecodeService(FieldReader& r, const Field& doc) {
  model::Service svc;
  svc.metadata = ReadMeta(r, doc["metadata"], /*namespaced=*/true, /*dns_label_name=*/true);
  svc.lb_algorithm = r.StringOr(doc["metadata"]["annotations"][model::kLbAlgorithmAnnotation], "");
  const Field spec = doc["spec"];
  model::ServiceSpec& out = svc.spec;

  std::optional<std::string> type =
      r.Enum(spec["type"], {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"});
  if (type == "NodePort") out.type = model::ServiceType::kNodePort;
  if (type == "LoadBalancer") out.type = model::ServiceType::kLoadBalancer;
  if (type == "ExternalName") {
    out.type = model::ServiceType::kExternalName;
    if (auto name = r.RequiredString(spec["externalName"])) out.external_name = *name;
  } else {
    ReadClusterIps(r, spec, out);
  }

  r.ForEach(spec["ipFamilies"], [&](const Field& f) {
    if (std::optional<std::string> fam = r.Enum(f, {"IPv4", "IPv6"})) {
      out.ip_families.push_back(*fam == "IPv4" ? model::IpFamily::kIpv4 : model::IpFamily::kIpv6);
    }
  });
  if (!spec["ipFamilies"].present()) {
    for (const IpAddr& ip : out.cluster_ips) {
      out.ip_families.push_back(ip.family == 4 ? model::IpFamily::kIpv4 : model::IpFamily::kIpv6);
    }
  }

  ReadPorts(r, spec, out);
  ReadAffinityAndPolicies(r, spec, out);

  r.ForEach(spec["externalIPs"], [&](const Field& f) {
    if (std::optional<IpAddr> ip = r.Ip(f)) out.external_ips.push_back(*ip);
  });
  r.ForEach(spec["loadBalancerSourceRanges"], [&](const Field& f) {
    if (std::optional<model::Cidr> c = r.Cidr(f)) out.load_balancer_source_ranges.push_back(*c);
  });
  if (std::optional<uint16_t> p = r.Port(spec["healthCheckNodePort"], /*allow_zero=*/true)) {
    out.health_check_node_port = *p;
  }
  // Ingress entries may carry only a hostname (some cloud LBs); those give no VIP.
  r.ForEach(doc["status"]["loadBalancer"]["ingress"], [&](const Field& f) {
    if (std::optional<IpAddr> ip = r.Ip(f["ip"])) svc.load_balancer_ingress_ips.push_back(*ip);
  });
  return svc;
}

model::EndpointSlice DecodeEndpointSlice(FieldReader& r, const Field& doc) {
  model::EndpointSlice slice;
  slice.metadata = ReadMeta(r, doc["metadata"], /*namespaced=*/true, /*dns_label_name=*/false);

  if (!doc["addressType"].present()) r.Error(doc["addressType"], "is required");
  std::optional<std::string> type = r.Enum(doc["addressType"], {"IPv4", "IPv6", "FQDN"});
  if (type == "IPv6") slice.address_type = model::AddressType::kIpv6;
  if (type == "FQDN") slice.address_type = model::AddressType::kFqdn;

  // The lists' lengths are known (the parsed document stores them): one allocation each.
  slice.ports.reserve(doc["ports"].size());
  r.ForEach(doc["ports"], [&](const Field& p) {
    model::EndpointPort port;
    const std::string name = r.StringOr(p["name"], "");  // interned once valid (as above)
    if (!name.empty() && !IsDnsLabel(name)) {
      r.Error(p["name"], absl::StrCat("\"", name, "\" is not a valid port name"));
    } else {
      port.name = name;
    }
    if (std::optional<model::Protocol> proto = r.Protocol(p["protocol"])) port.protocol = *proto;
    port.port = r.Port(p["port"]);
    slice.ports.push_back(std::move(port));
  });

  slice.endpoints.reserve(doc["endpoints"].size());
  r.ForEach(doc["endpoints"], [&](const Field& e) {
    model::Endpoint ep;
    // Each address is parsed once, here: the endpoint keeps the parsed IP (endpoint_fields.h).
    const bool ips = type && slice.address_type != model::AddressType::kFqdn;
    const uint8_t family = slice.address_type == model::AddressType::kIpv4 ? 4 : 6;
    r.ForEach(e["addresses"], [&](const Field& item) {
      std::optional<std::string> a = r.String(item);
      if (!a) return;
      std::optional<IpAddr> ip = IpAddr::Parse(*a);
      if (ips && (!ip || ip->family != family)) {
        r.Error(item, absl::StrCat("\"", *a, "\" is not a valid ", *type, " address"));
      }
      ep.addresses.push_back(std::move(*a), ip);
    });
    if (ep.addresses.empty()) r.Error(e["addresses"], "at least one address is required");
    // The API's nil rules: ready nil = true, serving nil = ready, terminating nil = false.
    const Field c = e["conditions"];
    ep.conditions.ready = r.Bool(c["ready"]).value_or(true);
    ep.conditions.serving = r.Bool(c["serving"]).value_or(ep.conditions.ready);
    ep.conditions.terminating = r.Bool(c["terminating"]).value_or(false);
    ep.node_name = r.StringOr(e["nodeName"], "");
    if (e["targetRef"].present()) {
      model::ObjectReference ref;
      ref.kind = r.StringOr(e["targetRef"]["kind"], "");
      ref.namespace_ = r.StringOr(e["targetRef"]["namespace"], "");
      ref.name = r.StringOr(e["targetRef"]["name"], "");
      ep.target_ref = std::move(ref);
    }
    slice.endpoints.push_back(std::move(ep));
  });
  return slice;
}

}  // namespace skiff::sources
