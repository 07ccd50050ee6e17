#include "agent/policy/reconciler.h"

#include <arpa/inet.h>

#include <set>

#include "absl/strings/str_cat.h"

namespace skiff::policy {
namespace {

skiff_ipcache_key IpcacheKey(const model::Cidr& c) {
  skiff_ipcache_key k{};
  k.prefixlen = c.prefix_len;
  k.addr = c.addr.V4();
  return k;
}

template <typename K, typename V>
bool Same(const V& a, const V& b) {
  return reconcile::SameBytes<K, V>(a, b);
}

}  // namespace

skiff_policy_key MakePolicyKey(uint32_t endpoint_id, uint32_t identity, uint8_t direction,
                               uint8_t proto, PortPrefix prefix) {
  skiff_policy_key k{};
  k.endpoint_id = endpoint_id;
  k.identity = identity;
  k.direction = direction;
  if (proto == 0) {
    k.prefixlen = SKIFF_POLICY_PREFIX_ANY_PROTO;
    return k;
  }
  k.proto = proto;
  k.prefixlen = SKIFF_POLICY_PREFIX_ANY_PORT + prefix.bits;
  uint16_t mask = prefix.bits == 0 ? 0 : static_cast<uint16_t>(0xffffu << (16 - prefix.bits));
  k.dport = htons(prefix.port & mask);
  return k;
}

absl::Status PolicyReconciler::Restore() {
  policy_.clear();
  ipcache_.clear();
  // Entries() rather than a streaming walk: these maps hold at most a few 100k small entries.
  auto pol = t_.policy->Entries();
  if (!pol.ok()) return pol.status();
  for (const auto& [k, v] : *pol) policy_[k] = v;
  auto ipc = t_.ipcache->Entries();
  if (!ipc.ok()) return ipc.status();
  for (const auto& [k, v] : *ipc) {
    ipcache_[k] = v;
    if (k.prefixlen == 32 && v.identity >= SKIFF_IDENTITY_FIRST_DYNAMIC)
      identity_hints_[k.addr] = v.identity;
    if (k.prefixlen == 32 && v.endpoint_id) endpoint_hints_[k.addr] = v.endpoint_id;
  }
  auto entries = t_.state->Entries();
  if (!entries.ok()) return entries.status();
  for (const auto& [k, v] : *entries)
    if (k == 0) state_flags_ = v.flags, state_known_ = true;
  return absl::OkStatus();
}

void PolicyReconciler::AssignIds(const Compiled& c) {
  // Identities: kept per class; else the id a pod address of the class had before a restart;
  // else the lowest free one. Ids of vanished classes are freed only here, at the start of
  // the next Apply, after the previous Apply deleted every entry naming them.
  std::map<PeerClass, uint32_t> next;
  std::set<uint32_t> used;
  identity_by_index_.assign(c.classes.size(), 0);
  for (size_t i = 0; i < c.classes.size(); i++) {
    auto it = class_ids_.find(c.classes[i]);
    if (it != class_ids_.end() && used.insert(it->second).second)
      identity_by_index_[i] = it->second;
  }
  for (const auto& e : c.ipcache) {
    if (e.klass < 0 || identity_by_index_[e.klass] || e.prefix.prefix_len != 32) continue;
    auto h = identity_hints_.find(e.prefix.addr.V4());
    if (h != identity_hints_.end() && used.insert(h->second).second)
      identity_by_index_[e.klass] = h->second;
  }
  // An id still named by map entries (a class that just vanished) is not handed out again
  // before those entries are gone: the newcomer would briefly inherit its allows.
  std::set<uint32_t> busy, ep_busy;
  for (const auto& [k, v] : policy_) busy.insert(k.identity), ep_busy.insert(k.endpoint_id);
  for (const auto& [k, v] : ipcache_) busy.insert(v.identity), ep_busy.insert(v.endpoint_id);
  uint32_t next_free = SKIFF_IDENTITY_FIRST_DYNAMIC;
  for (size_t i = 0; i < c.classes.size(); i++) {
    if (identity_by_index_[i]) continue;
    while (used.count(next_free) || busy.count(next_free)) next_free++;
    identity_by_index_[i] = next_free;
    used.insert(next_free);
  }
  for (size_t i = 0; i < c.classes.size(); i++) next[c.classes[i]] = identity_by_index_[i];
  class_ids_ = std::move(next);
  identity_hints_.clear();  // only a restart's first Apply uses them

  std::map<model::NamespacedName, uint32_t> eps;
  std::set<uint32_t> ep_used;
  for (const auto& [pod, ep] : c.endpoints) {
    auto it = endpoint_ids_.find(pod);
    if (it != endpoint_ids_.end() && ep_used.insert(it->second).second) eps[pod] = it->second;
  }
  for (const auto& [pod, ep] : c.endpoints) {
    if (eps.count(pod) || ep.ips.empty()) continue;
    auto h = endpoint_hints_.find(ep.ips[0].V4());
    if (h != endpoint_hints_.end() && ep_used.insert(h->second).second) eps[pod] = h->second;
  }
  uint32_t ep_next = 1;
  for (const auto& [pod, ep] : c.endpoints) {
    if (eps.count(pod)) continue;
    while (ep_used.count(ep_next) || ep_busy.count(ep_next)) ep_next++;
    eps[pod] = ep_next;
    ep_used.insert(ep_next);
  }
  endpoint_ids_ = std::move(eps);
  endpoint_hints_.clear();
}

uint32_t PolicyReconciler::RuleId(const RuleRef& r) {
  std::string name = r.ToString();
  auto [it, inserted] = rule_ids_.emplace(name, static_cast<uint32_t>(rule_names_.size() + 1));
  if (inserted) rule_names_.push_back(name);
  return it->second;
}

uint32_t PolicyReconciler::IdentityOf(int klass) const {
  if (klass < 0 || static_cast<size_t>(klass) >= identity_by_index_.size())
    return SKIFF_IDENTITY_ANY;
  return identity_by_index_[klass];
}

uint32_t PolicyReconciler::EndpointId(const model::NamespacedName& pod) const {
  auto it = endpoint_ids_.find(pod);
  return it == endpoint_ids_.end() ? 0 : it->second;
}

const std::string& PolicyReconciler::RuleName(uint32_t rule_id) const {
  static const std::string kUnknown = "unknown rule";
  return rule_id >= 1 && rule_id <= rule_names_.size() ? rule_names_[rule_id - 1] : kUnknown;
}

PolicyApplyResult PolicyReconciler::Apply(const Compiled& c, bool synced) {
  PolicyApplyResult res;
  AssignIds(c);

  auto write_state = [&](uint32_t flags) {
    if (state_known_ && state_flags_ == flags) return;
    skiff_pol_state s{};
    s.flags = flags;
    if (auto st = t_.state->Update(0, s); !st.ok()) {
      res.errors.push_back(st.ToString());
      return;
    }
    state_flags_ = flags;
    state_known_ = true;
  };
  if (c.any_policy) write_state(SKIFF_POL_STATE_F_DENY_UNKNOWN);

  // Desired policy entries, per endpoint.
  PolicyMap want_policy;
  std::map<uint32_t, std::string> endpoint_names;
  for (const auto& [pod, ep] : c.endpoints) {
    uint32_t ep_id = endpoint_ids_[pod];
    endpoint_names[ep_id] = pod.ToString();
    for (int dir : {SKIFF_POLICY_INGRESS, SKIFF_POLICY_EGRESS}) {
      const auto& entries = dir == SKIFF_POLICY_INGRESS ? ep.ingress : ep.egress;
      for (const auto& e : entries) {
        skiff_policy_val v{};
        v.rule_id = RuleId(e.rule);
        uint32_t identity = IdentityOf(e.peer);
        if (e.proto == 0) {
          want_policy.emplace(MakePolicyKey(ep_id, identity, dir, 0, {}), v);
          continue;
        }
        for (const auto& p : RangeToPrefixes(e.ports.lo, e.ports.hi))
          want_policy.emplace(MakePolicyKey(ep_id, identity, dir, e.proto, p), v);
      }
    }
  }
  IpcacheMap want_ipcache;
  for (const auto& e : c.ipcache) {
    skiff_ipcache_val v{};
    v.identity = e.reserved == Reserved::kHost ? SKIFF_IDENTITY_HOST : IdentityOf(e.klass);
    if (e.endpoint) {
      auto it = c.endpoints.find(*e.endpoint);
      if (it != c.endpoints.end()) {
        v.endpoint_id = endpoint_ids_[*e.endpoint];
        v.flags = (it->second.ingress_isolated ? SKIFF_EP_F_INGRESS_ISOLATED : 0) |
                  (it->second.egress_isolated ? SKIFF_EP_F_EGRESS_ISOLATED : 0);
      }
    }
    want_ipcache[IpcacheKey(e.prefix)] = v;
  }

  std::set<uint32_t> full_endpoints;
  for (const auto& [k, v] : want_policy) {
    auto it = policy_.find(k);
    if (it != policy_.end() && Same<skiff_policy_key>(it->second, v)) continue;
    absl::Status st = t_.policy->Update(k, v);
    if (!st.ok()) {
      if (absl::IsResourceExhausted(st)) {
        res.map_full_errors++;
        map_full_total_++;
        if (full_endpoints.insert(k.endpoint_id).second)
          res.errors.push_back(absl::StrCat(st.message(), ": endpoint ",
                                            endpoint_names[k.endpoint_id],
                                            " is enforced with only part of its allow rules "
                                            "(fails closed)"));
      } else {
        res.errors.push_back(st.ToString());
      }
      continue;
    }
    policy_[k] = v;
    res.policy_written++;
  }
  for (const auto& [k, v] : want_ipcache) {
    auto it = ipcache_.find(k);
    if (it != ipcache_.end() && Same<skiff_ipcache_key>(it->second, v)) continue;
    absl::Status st = t_.ipcache->Update(k, v);
    if (!st.ok()) {
      if (absl::IsResourceExhausted(st)) res.map_full_errors++, map_full_total_++;
      res.errors.push_back(st.ToString());
      continue;
    }
    ipcache_[k] = v;
    res.ipcache_written++;
  }
  if (!synced) return res;
  for (auto it = policy_.begin(); it != policy_.end();) {
    if (want_policy.count(it->first)) {
      ++it;
      continue;
    }
    if (auto st = t_.policy->Delete(it->first); !st.ok()) {
      res.errors.push_back(st.ToString());
      ++it;
      continue;
    }
    it = policy_.erase(it);
    res.policy_deleted++;
  }
  for (auto it = ipcache_.begin(); it != ipcache_.end();) {
    if (want_ipcache.count(it->first)) {
      ++it;
      continue;
    }
    if (auto st = t_.ipcache->Delete(it->first); !st.ok()) {
      res.errors.push_back(st.ToString());
      ++it;
      continue;
    }
    it = ipcache_.erase(it);
    res.ipcache_deleted++;
  }
  if (!c.any_policy) write_state(0);
  return res;
}

}  // namespace skiff::policy
