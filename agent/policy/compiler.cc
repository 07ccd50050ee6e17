#include "agent/policy/compiler.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace skiff::policy {
namespace {

using model::Cidr;
using model::IpAddr;
using model::NamespacedName;
using model::PolicyType;

bool HasType(const model::NetworkPolicy& p, PolicyType t) {
  return std::find(p.policy_types.begin(), p.policy_types.end(), t) != p.policy_types.end();
}

// Pods that hold their address: a finished pod's IP may already belong to a new one.
bool PodIsLive(const model::Pod& p) { return p.phase != "Succeeded" && p.phase != "Failed"; }

std::vector<IpAddr> Ipv4s(const model::Pod& p) {
  std::vector<IpAddr> out;
  for (const auto& ip : p.pod_ips)
    if (ip.family == 4) out.push_back(ip);
  return out;
}

// CIDR a contains CIDR b.
bool Covers(const Cidr& a, const Cidr& b) {
  return a.prefix_len <= b.prefix_len && a.Contains(b.addr);
}

class Builder {
 public:
  Builder(const model::ObjectSnapshot& o, const CompileOptions& opts) : o_(o), opts_(opts) {}

  Compiled Run() {
    CollectPolicyFacts();
    BuildIpcache();
    for (const auto& [id, pod] : o_.pods) {
      if (pod->node_name != opts_.node_name || !PodIsLive(*pod)) continue;
      auto ips = Ipv4s(*pod);
      if (ips.empty() || !owned_.count(id)) continue;
      CompileEndpoint(*pod, ips);
    }
    out_.any_policy = !o_.network_policies.empty();
    return std::move(out_);
  }

 private:
  const model::Labels& NsLabels(const std::string& ns) const {
    static const model::Labels kEmpty;
    auto it = o_.namespaces.find(NamespacedName{"", ns});
    return it == o_.namespaces.end() ? kEmpty : it->second->metadata.labels;
  }

  void CollectPolicyFacts() {
    std::set<Cidr> cidrs;
    for (const auto& [id, pol] : o_.network_policies) {
      for (const auto* rules : {&pol->ingress, &pol->egress})
        for (const auto& r : *rules)
          for (const auto& peer : r.peers)
            if (peer.ip_block && peer.ip_block->cidr.addr.family == 4) {
              cidrs.insert(peer.ip_block->cidr);
              for (const auto& e : peer.ip_block->except)
                if (e.addr.family == 4) cidrs.insert(e);
            }
      for (const auto& r : pol->egress)
        for (const auto& port : r.ports)
          if (port.port && port.port->is_name()) egress_port_names_.insert(port.port->name());
    }
    cidrs_.assign(cidrs.begin(), cidrs.end());
  }

  std::vector<Cidr> CidrsContaining(const Cidr& prefix) const {
    std::vector<Cidr> out;
    for (const auto& c : cidrs_)
      if (Covers(c, prefix)) out.push_back(c);
    return out;
  }

  int ClassIndex(PeerClass k) {
    auto [it, inserted] = index_.emplace(k, static_cast<int>(out_.classes.size()));
    if (inserted) out_.classes.push_back(std::move(k));
    return it->second;
  }

  void BuildIpcache() {
    std::map<Cidr, IpcacheEntry> entries;
    std::set<IpAddr> node_ips(opts_.node_addresses.begin(), opts_.node_addresses.end());
    for (const auto& ip : node_ips) {
      if (ip.family != 4) continue;
      Cidr host{ip, 32};
      entries[host] = IpcacheEntry{host, -1, Reserved::kHost, std::nullopt};
    }
    // Pods in name order; a running pod wins an address over a pending one.
    for (int pass = 0; pass < 2; pass++) {
      for (const auto& [id, pod] : o_.pods) {
        if (!PodIsLive(*pod) || (pod->phase == "Running") != (pass == 0)) continue;
        for (const auto& ip : Ipv4s(*pod)) {
          Cidr host{ip, 32};
          if (entries.count(host)) {
            if (!node_ips.count(ip))
              out_.warnings.push_back(absl::StrCat("pod ", id.ToString(), ": address ",
                                                   ip.ToString(), " is already used; ignored"));
            continue;
          }
          PeerClass k;
          k.is_pod = true;
          k.namespace_ = pod->metadata.namespace_;
          k.pod_labels = pod->metadata.labels;
          k.namespace_labels = NsLabels(k.namespace_);
          k.cidrs = CidrsContaining(host);
          for (const auto& cp : pod->container_ports)
            if (!cp.name.empty() && egress_port_names_.count(cp.name))
              k.named_ports.push_back(
                  {cp.name, static_cast<uint8_t>(cp.protocol), cp.container_port});
          std::sort(k.named_ports.begin(), k.named_ports.end());
          k.named_ports.erase(std::unique(k.named_ports.begin(), k.named_ports.end()),
                              k.named_ports.end());
          IpcacheEntry e{host, ClassIndex(std::move(k)), Reserved::kNone, std::nullopt};
          if (pod->node_name == opts_.node_name) e.endpoint = id;
          entries[host] = e;
          owned_.insert(id);
        }
      }
    }
    for (const auto& c : cidrs_) {
      if (entries.count(c)) continue;  // a /32 policy CIDR equal to a pod or node address
      PeerClass k;
      k.cidrs = CidrsContaining(c);
      entries[c] = IpcacheEntry{c, ClassIndex(std::move(k)), Reserved::kNone, std::nullopt};
    }
    for (auto& [c, e] : entries) out_.ipcache.push_back(e);
  }

  bool PeerMatchesClass(const model::NetworkPolicyPeer& peer, const std::string& policy_ns,
                        const PeerClass& k) const {
    if (peer.ip_block) {
      const auto& b = *peer.ip_block;
      if (!std::binary_search(k.cidrs.begin(), k.cidrs.end(), b.cidr)) return false;
      for (const auto& e : b.except)
        if (std::binary_search(k.cidrs.begin(), k.cidrs.end(), e)) return false;
      return true;
    }
    if (!k.is_pod) return false;
    model::Pod pod;
    pod.metadata.namespace_ = k.namespace_;
    pod.metadata.labels = k.pod_labels;
    return PeerSelectsPod(peer, policy_ns, pod, k.namespace_labels);
  }

  void AddRule(const model::Pod& self, PolicyType type, const NamespacedName& pol_id, int index,
               const model::NetworkPolicyRule& rule, std::vector<AllowEntry>* out) {
    RuleRef ref{pol_id, type, index};
    std::vector<int> peers;
    if (rule.peers.empty()) {
      peers.push_back(-1);
    } else {
      for (size_t i = 0; i < out_.classes.size(); i++)
        for (const auto& p : rule.peers)
          if (PeerMatchesClass(p, pol_id.namespace_, out_.classes[i])) {
            peers.push_back(static_cast<int>(i));
            break;
          }
    }
    auto add = [&](int peer, uint8_t proto, PortRange r) {
      AllowEntry e{peer, proto, r, ref};
      if (std::find(out->begin(), out->end(), e) == out->end()) out->push_back(e);
    };
    if (rule.ports.empty()) {
      for (int peer : peers) add(peer, 0, PortRange{0, 65535});
      return;
    }
    for (const auto& port : rule.ports) {
      const uint8_t proto = static_cast<uint8_t>(port.protocol);
      if (port.port && port.port->is_name() && type == PolicyType::kEgress) {
        // Resolves per destination: each peer class carries its pods' named ports; ANY means
        // every pod class (an outside address has no named ports).
        for (int peer : peers) {
          for (size_t i = 0; i < out_.classes.size(); i++) {
            if (peer != -1 && peer != static_cast<int>(i)) continue;
            for (const auto& np : out_.classes[i].named_ports)
              if (np.name == port.port->name() && np.proto == proto)
                add(static_cast<int>(i), proto, PortRange{np.port, np.port});
          }
        }
        continue;
      }
      auto r = ResolvePort(port, &self.container_ports);
      if (!r) continue;  // a name this pod does not have: allows nothing here
      for (int peer : peers) add(peer, proto, *r);
    }
  }

  void CompileEndpoint(const model::Pod& pod, const std::vector<IpAddr>& ips) {
    const NamespacedName& id = NamespacedName{pod.metadata.namespace_, pod.metadata.name};
    EndpointPolicy ep;
    ep.pod = id;
    ep.ips = ips;
    for (const auto& [pid, pol] : o_.network_policies) {
      if (pid.namespace_ != pod.metadata.namespace_) continue;
      if (!pol->pod_selector.Matches(pod.metadata.labels)) continue;
      if (HasType(*pol, PolicyType::kIngress)) {
        ep.ingress_isolated = true;
        ep.ingress_policies.push_back(pid);
        for (size_t i = 0; i < pol->ingress.size(); i++)
          AddRule(pod, PolicyType::kIngress, pid, static_cast<int>(i), pol->ingress[i],
                  &ep.ingress);
      }
      if (HasType(*pol, PolicyType::kEgress)) {
        ep.egress_isolated = true;
        ep.egress_policies.push_back(pid);
        for (size_t i = 0; i < pol->egress.size(); i++)
          AddRule(pod, PolicyType::kEgress, pid, static_cast<int>(i), pol->egress[i], &ep.egress);
      }
    }
    out_.endpoints[id] = std::move(ep);
  }

  const model::ObjectSnapshot& o_;
  const CompileOptions& opts_;
  Compiled out_;
  std::vector<Cidr> cidrs_;  // sorted
  std::set<std::string> egress_port_names_;
  std::map<PeerClass, int> index_;
  std::set<NamespacedName> owned_;  // pods whose address made it into the ipcache
};

bool EntryAllows(const AllowEntry& e, int peer, uint8_t proto, uint16_t port) {
  if (e.peer != -1 && e.peer != peer) return false;
  if (e.proto == 0) return true;
  return e.proto == proto && port >= e.ports.lo && port <= e.ports.hi;
}

}  // namespace

std::string PeerClass::ToString() const {
  std::vector<std::string> parts;
  if (is_pod) {
    std::vector<std::string> l;
    for (const auto& [k, v] : pod_labels) l.push_back(absl::StrCat(k.str(), "=", v));
    parts.push_back(absl::StrCat("pods of ", namespace_, " {", absl::StrJoin(l, ","), "}"));
  } else {
    parts.push_back("outside addresses");
  }
  if (!cidrs.empty()) {
    std::vector<std::string> c;
    for (const auto& x : cidrs) c.push_back(x.ToString());
    parts.push_back(absl::StrCat("in ", absl::StrJoin(c, ",")));
  }
  return absl::StrJoin(parts, " ");
}

Compiled Compile(const model::ObjectSnapshot& objects, const CompileOptions& opts) {
  return Builder(objects, opts).Run();
}

std::vector<PortPrefix> RangeToPrefixes(uint16_t lo, uint16_t hi) {
  std::vector<PortPrefix> out;
  uint32_t cur = lo;
  const uint32_t end = hi;
  while (cur <= end) {
    // The largest aligned block starting at cur that stays within [cur, end].
    int size_log = 0;
    while (size_log < 16) {
      uint32_t next = 1u << (size_log + 1);
      if (cur % next != 0 || cur + next - 1 > end) break;
      size_log++;
    }
    out.push_back({static_cast<uint16_t>(cur), static_cast<uint8_t>(16 - size_log)});
    cur += 1u << size_log;
  }
  return out;
}

const IpcacheEntry* LookupIpcache(const Compiled& c, const IpAddr& ip) {
  const IpcacheEntry* best = nullptr;
  for (const auto& e : c.ipcache)
    if (e.prefix.Contains(ip) && (!best || e.prefix.prefix_len > best->prefix.prefix_len))
      best = &e;
  return best;
}

CompiledVerdict EvaluateCompiled(const Compiled& c, const IpAddr& src, const IpAddr& dst,
                                 uint8_t proto, uint16_t port) {
  CompiledVerdict v;
  const IpcacheEntry* s = LookupIpcache(c, src);
  const IpcacheEntry* d = LookupIpcache(c, dst);
  if ((s && s->reserved == Reserved::kHost) || (d && d->reserved == Reserved::kHost)) {
    v.host = true;
    return v;
  }
  auto check = [&](const IpcacheEntry* self, const IpcacheEntry* peer, bool ingress, bool* isolated,
                   bool* allowed, std::optional<RuleRef>* rule) {
    if (!self || !self->endpoint) return;
    auto it = c.endpoints.find(*self->endpoint);
    if (it == c.endpoints.end()) return;
    const EndpointPolicy& ep = it->second;
    *isolated = ingress ? ep.ingress_isolated : ep.egress_isolated;
    if (!*isolated) return;
    *allowed = false;
    int peer_class = peer ? peer->klass : -2;  // -2: WORLD, only ANY entries match
    for (const auto& e : ingress ? ep.ingress : ep.egress)
      if (EntryAllows(e, peer_class, proto, port)) {
        *allowed = true;
        *rule = e.rule;
        return;
      }
  };
  check(s, d, false, &v.egress_isolated, &v.egress_allowed, &v.egress_rule);
  check(d, s, true, &v.ingress_isolated, &v.ingress_allowed, &v.ingress_rule);
  v.allowed = v.egress_allowed && v.ingress_allowed;
  return v;
}

}  // namespace skiff::policy
