#include "agent/api/datapath_core.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "maps/names.h"

namespace skiff::api {

absl::StatusOr<std::unique_ptr<DatapathCore>> DatapathCore::Create(loader::Datapath* dp,
                                                                   const StateBoard* board,
                                                                   std::string node_name) {
  std::unique_ptr<DatapathCore> c(new DatapathCore());
  c->board_ = board;
  c->info_.version = SKIFF_VERSION;
  c->info_.node_name = std::move(node_name);
  utsname u{};
  if (uname(&u) == 0) c->info_.kernel = u.release;
  c->lb_ = dp->tables();
  lxc_bpf* skel = dp->skel();
  auto ct = Map<skiff_ct4_key, skiff_ct_entry>::From(skel->maps.SKIFF_MAP_CT4);
  if (!ct.ok()) return ct.status();
  c->ct_ = std::make_unique<reconcile::BpfKvTable<skiff_ct4_key, skiff_ct_entry>>(
      *ct, bpf_map__max_entries(skel->maps.SKIFF_MAP_CT4));
  c->hairpin_ = skel->rodata->skiff_config.hairpin_ipv4;
  bpf_map* m;
  bpf_object__for_each_map(m, skel->obj) {
    if (bpf_map__pin_path(m) == nullptr) continue;
    c->map_fds_[bpf_map__name(m)] = bpf_map__fd(m);
  }
  return c;
}

int64_t DatapathCore::UptimeSeconds() const {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start_)
      .count();
}

int64_t DatapathCore::MonotonicSeconds() const {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}

std::vector<std::string> DatapathCore::MapNames() const {
  std::vector<std::string> out;
  for (const auto& [name, fd] : map_fds_) out.push_back(name);
  return out;
}

absl::StatusOr<std::unique_ptr<MapReader>> DatapathCore::OpenMap(const std::string& name) const {
  auto it = map_fds_.find(name);
  if (it == map_fds_.end())
    return absl::NotFoundError(
        absl::StrCat("map ", name, " not found (agentctl map list shows the pinned maps)"));
  auto r = FdMapReader::Borrow(it->second, name);
  if (!r.ok()) return r.status();
  return std::unique_ptr<MapReader>(std::move(*r));
}

absl::StatusOr<std::map<uint32_t, PodRoute>> DatapathCore::PodRoutes() const {
  return ListHostRoutes();
}

absl::StatusOr<std::map<uint32_t, PodRoute>> ListHostRoutes() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return ErrnoStatus(errno, "opening rtnetlink socket");
  struct {
    nlmsghdr nh;
    rtmsg rt;
  } req{};
  req.nh.nlmsg_len = sizeof(req);
  req.nh.nlmsg_type = RTM_GETROUTE;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nh.nlmsg_seq = 1;
  req.rt.rtm_family = AF_INET;
  if (send(fd, &req, sizeof(req), 0) < 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, "RTM_GETROUTE dump");
  }
  std::map<uint32_t, PodRoute> out;
  std::vector<char> buf(1 << 16);
  bool done = false;
  while (!done) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    size_t len = n;
    for (auto* nh = reinterpret_cast<const nlmsghdr*>(buf.data()); NLMSG_OK(nh, len);
         nh = NLMSG_NEXT(nh, len)) {
      if (nh->nlmsg_type == NLMSG_DONE || nh->nlmsg_type == NLMSG_ERROR) {
        done = true;
        break;
      }
      if (nh->nlmsg_type != RTM_NEWROUTE) continue;
      auto* rt = static_cast<const rtmsg*>(NLMSG_DATA(nh));
      if (rt->rtm_family != AF_INET || rt->rtm_dst_len != 32 || rt->rtm_table != RT_TABLE_MAIN)
        continue;
      uint32_t dst = 0;
      int oif = 0;
      int attrlen = nh->nlmsg_len - NLMSG_LENGTH(sizeof(*rt));
      for (auto* a = RTM_RTA(rt); RTA_OK(a, attrlen); a = RTA_NEXT(a, attrlen)) {
        if (a->rta_type == RTA_DST) std::memcpy(&dst, RTA_DATA(a), 4);
        if (a->rta_type == RTA_OIF) std::memcpy(&oif, RTA_DATA(a), 4);
      }
      if (!dst || !oif) continue;
      char name[IF_NAMESIZE] = {};
      if (!if_indextoname(oif, name)) continue;
      out[dst] = PodRoute{name, oif};
    }
  }
  close(fd);
  return out;
}

}  // namespace skiff::api
