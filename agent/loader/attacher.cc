#include "agent/loader/attacher.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <iterator>
#include <set>

namespace skiff::loader {
namespace {

void WriteAcceptLocal(const std::string& iface) {
  const std::string path = "/proc/sys/net/ipv4/conf/" + iface + "/accept_local";
  std::ofstream f(path);
  f << "1\n";
  f.flush();
  if (!f)
    spdlog::warn("could not set {} (NodePort replies of local backends may be dropped)", path);
}

}  // namespace

void Attacher::Attach(const Link& link) {
  if (attached_.count(link.ifindex) || !matcher_.Matches(link.name)) return;
  absl::Status st = TcAttach(link.ifindex, TcDirection::kIngress, from_container_fd_);
  if (!st.ok()) {
    // The link may have vanished between the event and the attach; the next event or
    // resync tries again.
    spdlog::warn("attach from-container to {} (ifindex {}) failed: {}", link.name, link.ifindex,
                 st.ToString());
    return;
  }
  if (to_container_fd_ >= 0) {
    // Ingress NetworkPolicy: without it the pod would be reachable unchecked, so a failure
    // leaves the interface unrecorded and the next event or resync tries both again.
    st = TcAttach(link.ifindex, TcDirection::kEgress, to_container_fd_);
    if (!st.ok()) {
      spdlog::warn("attach to-container to {} (ifindex {}) failed: {}", link.name, link.ifindex,
                   st.ToString());
      return;
    }
  }
  attached_[link.ifindex] = link.name;
  if (accept_local_) WriteAcceptLocal(link.name);
  if (ifaces_) {
    // Without the entry the interface still works, through the node's stack.
    if (absl::Status ust = ifaces_->Update(static_cast<__u32>(link.ifindex), {}); !ust.ok())
      spdlog::warn("host routing will not deliver to {} (ifindex {}): {}", link.name, link.ifindex,
                   ust.ToString());
  }
  spdlog::info("attached from-container{} to {} (ifindex {}, tc ingress{})",
               to_container_fd_ >= 0 ? " and to-container" : "", link.name, link.ifindex,
               to_container_fd_ >= 0 ? " and egress" : "");
}

void Attacher::SetAcceptLocal(bool on) {
  accept_local_ = on;
  if (on)
    for (const auto& [idx, name] : attached_) WriteAcceptLocal(name);
}

void Attacher::Forget(std::map<int, std::string>::iterator it) {
  spdlog::info("interface {} (ifindex {}) is gone", it->second, it->first);
  // An ifindex the kernel may hand to another device: host routing must not deliver to it.
  if (ifaces_) {
    if (absl::Status st = ifaces_->Delete(static_cast<__u32>(it->first)); !st.ok())
      spdlog::warn("removing ifindex {} from {}: {}", it->first, ifaces_->name(), st.ToString());
  }
  attached_.erase(it);
}

void Attacher::PruneIfaces() {
  if (!ifaces_) return;
  auto entries = ifaces_->Entries();
  if (!entries.ok()) {
    spdlog::warn("reading {}: {}", ifaces_->name(), entries.status().ToString());
    return;
  }
  for (const auto& [ifindex, v] : *entries) {
    if (attached_.count(static_cast<int>(ifindex))) continue;
    if (absl::Status st = ifaces_->Delete(ifindex); !st.ok())
      spdlog::warn("removing ifindex {} from {}: {}", ifindex, ifaces_->name(), st.ToString());
  }
}

void Attacher::Sync(const std::vector<Link>& links) {
  std::set<int> present;
  for (const auto& l : links) {
    present.insert(l.ifindex);
    Attach(l);
  }
  for (auto it = attached_.begin(); it != attached_.end();) {
    auto next = std::next(it);
    if (!present.count(it->first)) Forget(it);
    it = next;
  }
  PruneIfaces();
}

void Attacher::OnEvent(const LinkEvent& ev) {
  if (ev.removed) {
    auto it = attached_.find(ev.link.ifindex);
    if (it != attached_.end()) Forget(it);
    return;
  }
  Attach(ev.link);
}

std::vector<Attachment> Attacher::attachments() const {
  std::vector<Attachment> out;
  for (const auto& [idx, name] : attached_) {
    out.push_back({name, idx, TcDirection::kIngress, "from_container"});
    if (to_container_fd_ >= 0) out.push_back({name, idx, TcDirection::kEgress, "to_container"});
  }
  return out;
}

}  // namespace skiff::loader
