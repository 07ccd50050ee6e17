#include "agent/api/policy_view.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/policy/semantics.h"

namespace skiff::api {
namespace {

bool Has(const std::vector<model::Cidr>& v, const model::Cidr& c) {
  return std::find(v.begin(), v.end(), c) != v.end();
}

// Whether `peer` of a policy in `policy_ns` matches every address of class `c`.
bool PeerMatchesClass(const model::NetworkPolicyPeer& peer, const std::string& policy_ns,
                      const policy::PeerClass& c) {
  if (peer.ip_block) {
    if (!Has(c.cidrs, peer.ip_block->cidr)) return false;
    for (const auto& e : peer.ip_block->except)
      if (Has(c.cidrs, e)) return false;
    return true;
  }
  if (!c.is_pod) return false;
  model::Pod pod;
  pod.metadata.namespace_ = c.namespace_;
  pod.metadata.labels = c.pod_labels;
  return policy::PeerSelectsPod(peer, policy_ns, pod, c.namespace_labels);
}

}  // namespace

absl::StatusOr<std::shared_ptr<const PolicyState>> PolicyStateOf(const ApiState& s) {
  if (!s.policy)
    return absl::FailedPreconditionError(
        "the agent has not compiled NetworkPolicy yet (starting, or no policy reconciler)");
  return s.policy;
}

std::string DescribeIdentity(const PolicyState& p, uint32_t identity) {
  if (identity < SKIFF_IDENTITY_FIRST_DYNAMIC) {
    switch (identity) {
      case SKIFF_IDENTITY_ANY:
        return "any peer";
      case SKIFF_IDENTITY_WORLD:
        return "world";
      case SKIFF_IDENTITY_HOST:
        return "host";
    }
    return absl::StrCat("reserved identity ", identity);
  }
  int k = p.ClassOf(identity);
  if (k < 0) return absl::StrCat("unknown identity ", identity);
  return p.compiled.classes[k].ToString();
}

std::string RuleWithPeer(const model::ObjectSnapshot& objects, const PolicyState& p,
                         const std::string& rule, int klass) {
  // "NS/NAME ingress[I]"
  std::vector<std::string> parts = absl::StrSplit(rule, ' ');
  if (parts.size() != 2) return rule;
  std::vector<std::string> id = absl::StrSplit(parts[0], absl::MaxSplits('/', 1));
  if (id.size() != 2) return rule;
  bool ingress = absl::StartsWith(parts[1], "ingress[");
  std::string idx = parts[1].substr(ingress ? 8 : 7);
  if (!ingress && !absl::StartsWith(parts[1], "egress[")) return rule;
  int index = 0;
  if (idx.empty() || idx.back() != ']' || !absl::SimpleAtoi(idx.substr(0, idx.size() - 1), &index))
    return rule;
  auto it = objects.network_policies.find({id[0], id[1]});
  if (it == objects.network_policies.end()) return rule;
  const auto& rules = ingress ? it->second->ingress : it->second->egress;
  if (index < 0 || static_cast<size_t>(index) >= rules.size()) return rule;
  const model::NetworkPolicyRule& r = rules[index];
  if (r.peers.empty()) return absl::StrCat(rule, " (every peer)");
  if (klass < 0 || static_cast<size_t>(klass) >= p.compiled.classes.size()) return rule;
  for (size_t i = 0; i < r.peers.size(); i++)
    if (PeerMatchesClass(r.peers[i], id[0], p.compiled.classes[klass]))
      return absl::StrCat(rule, " peer[", i, "]");
  return rule;
}

const model::Pod* FindPodByInput(const model::ObjectSnapshot& objects, const std::string& input) {
  if (input.find('/') != std::string::npos) {
    std::vector<std::string> id = absl::StrSplit(input, absl::MaxSplits('/', 1));
    auto it = objects.pods.find({id[0], id[1]});
    return it == objects.pods.end() ? nullptr : it->second.get();
  }
  auto ip = model::IpAddr::Parse(input);
  if (!ip) return nullptr;
  for (const auto& [id, pod] : objects.pods)
    for (const auto& a : pod->pod_ips)
      if (a == *ip) return pod.get();
  return nullptr;
}

}  // namespace skiff::api
