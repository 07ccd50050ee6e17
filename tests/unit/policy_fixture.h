// Builders for NetworkPolicy scenarios: namespaces, pods with container ports, and policies
// written close to their YAML. Shared by the policy unit tests, the e2e test and the benchmark.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/model/object_store.h"
#include "agent/model/objects.h"

namespace skiff::policy::testing {

using model::Labels;

inline model::IpAddr Ip(const std::string& s) { return *model::IpAddr::Parse(s); }
inline model::Cidr Net(const std::string& s) { return *model::Cidr::Parse(s); }

inline model::LabelSelector Sel(Labels l = {},
                                std::vector<model::LabelSelectorRequirement> exprs = {}) {
  return model::LabelSelector{std::move(l), std::move(exprs)};
}
inline model::LabelSelectorRequirement Expr(std::string key, model::SelectorOperator op,
                                            std::vector<std::string> values = {}) {
  return {std::move(key), op, std::move(values)};
}

inline model::NetworkPolicyPeer PodPeer(model::LabelSelector s) {
  model::NetworkPolicyPeer p;
  p.pod_selector = std::move(s);
  return p;
}
inline model::NetworkPolicyPeer NsPeer(model::LabelSelector s) {
  model::NetworkPolicyPeer p;
  p.namespace_selector = std::move(s);
  return p;
}
inline model::NetworkPolicyPeer BothPeer(model::LabelSelector ns, model::LabelSelector pod) {
  model::NetworkPolicyPeer p;
  p.namespace_selector = std::move(ns);
  p.pod_selector = std::move(pod);
  return p;
}
inline model::NetworkPolicyPeer CidrPeer(const std::string& cidr,
                                         std::vector<std::string> except = {}) {
  model::NetworkPolicyPeer p;
  p.ip_block = model::IpBlock{Net(cidr), {}};
  for (const auto& e : except) p.ip_block->except.push_back(Net(e));
  return p;
}

inline model::NetworkPolicyPort Port(int32_t port, model::Protocol proto = model::Protocol::kTcp,
                                     std::optional<uint16_t> end = std::nullopt) {
  model::NetworkPolicyPort p;
  p.protocol = proto;
  p.port = model::IntOrString{port};
  p.end_port = end;
  return p;
}
inline model::NetworkPolicyPort PortName(std::string name,
                                         model::Protocol proto = model::Protocol::kTcp) {
  model::NetworkPolicyPort p;
  p.protocol = proto;
  p.port = model::IntOrString{std::move(name)};
  return p;
}
inline model::NetworkPolicyPort AllPorts(model::Protocol proto) {
  model::NetworkPolicyPort p;
  p.protocol = proto;
  return p;
}

inline model::NetworkPolicyRule Rule(std::vector<model::NetworkPolicyPeer> peers,
                                     std::vector<model::NetworkPolicyPort> ports = {}) {
  return {std::move(peers), std::move(ports)};
}

// A cluster under construction; Snapshot() freezes it.
class Cluster {
 public:
  void Namespace(const std::string& name, Labels labels = {}) {
    model::Namespace ns;
    ns.metadata.name = name;
    ns.metadata.labels = std::move(labels);
    snap_.namespaces[{"", name}] = std::make_shared<model::Namespace>(ns);
  }
  void Pod(const std::string& ns, const std::string& name, const std::string& ip, Labels labels,
           std::vector<model::ContainerPort> ports = {}, const std::string& node = "node-1") {
    model::Pod p;
    p.metadata.namespace_ = ns;
    p.metadata.name = name;
    p.metadata.labels = std::move(labels);
    p.node_name = node;
    p.phase = "Running";
    p.pod_ips = {Ip(ip)};
    p.container_ports = std::move(ports);
    snap_.pods[{ns, name}] = std::make_shared<model::Pod>(p);
  }
  void RemovePod(const std::string& ns, const std::string& name) { snap_.pods.erase({ns, name}); }
  // policyTypes defaulted as the API server does unless given.
  void Policy(const std::string& ns, const std::string& name, model::LabelSelector selector,
              std::vector<model::NetworkPolicyRule> ingress,
              std::vector<model::NetworkPolicyRule> egress = {},
              std::vector<model::PolicyType> types = {}) {
    model::NetworkPolicy pol;
    pol.metadata.namespace_ = ns;
    pol.metadata.name = name;
    pol.pod_selector = std::move(selector);
    pol.ingress = std::move(ingress);
    pol.egress = std::move(egress);
    if (types.empty()) {
      types.push_back(model::PolicyType::kIngress);
      if (!pol.egress.empty()) types.push_back(model::PolicyType::kEgress);
    }
    pol.policy_types = std::move(types);
    snap_.network_policies[{ns, name}] = std::make_shared<model::NetworkPolicy>(pol);
  }
  void RemovePolicy(const std::string& ns, const std::string& name) {
    snap_.network_policies.erase({ns, name});
  }
  const model::ObjectSnapshot& Snapshot() const { return snap_; }
  model::ObjectSnapshot& mutable_snapshot() { return snap_; }

 private:
  model::ObjectSnapshot snap_;
};

inline constexpr model::PolicyType kIngress = model::PolicyType::kIngress;
inline constexpr model::PolicyType kEgress = model::PolicyType::kEgress;

}  // namespace skiff::policy::testing
