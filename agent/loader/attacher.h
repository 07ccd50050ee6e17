// Keeps Skiff's tc programs attached to every pod-facing interface that matches
// --endpoint-ifaces: all matches at start, each new match as it appears, and forgets an
// interface when it disappears (the kernel drops its filters with it).
//
// Thread: the agent's main loop.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "agent/loader/links.h"
#include "agent/reconcile/kv_table.h"
#include "agent/loader/tc.h"
#include "maps/host_route.h"

namespace skiff::loader {

struct Attachment {
  std::string iface;
  int ifindex = 0;
  TcDirection dir = TcDirection::kIngress;
  std::string program;
};

class Attacher {
 public:
  // to_container_fd < 0: from_container only. ifaces (optional): the attached interfaces'
  // map for host routing (maps/host_route.h), kept equal to the attached set.
  Attacher(IfaceMatcher matcher, int from_container_fd, int to_container_fd = -1,
           reconcile::KvTable<__u32, skiff_endpoint_iface>* ifaces = nullptr)
      : matcher_(std::move(matcher)),
        from_container_fd_(from_container_fd),
        to_container_fd_(to_container_fd),
        ifaces_(ifaces) {}

  // Reconciles against a full list of links (start-up, or after lost netlink events).
  void Sync(const std::vector<Link>& links);
  void OnEvent(const LinkEvent& ev);
  std::vector<Attachment> attachments() const;

  // North-south: a node-local backend's reply is reverse-NATed on its pod's interface to
  // nodeIP:nodePort, a local source address the kernel drops as a martian unless the
  // interface has net.ipv4.conf.IFACE.accept_local=1 (docs/north-south.md). When on, it is
  // set on every attached interface, now and as they appear.
  void SetAcceptLocal(bool on);

 private:
  void Attach(const Link& link);
  void Forget(std::map<int, std::string>::iterator it);
  // Drops map entries of interfaces not attached (a previous run's, gone meanwhile).
  void PruneIfaces();
  bool accept_local_ = false;
  IfaceMatcher matcher_;
  int from_container_fd_;
  int to_container_fd_;
  reconcile::KvTable<__u32, skiff_endpoint_iface>* ifaces_;
  std::map<int, std::string> attached_;  // ifindex -> name
};

}  // namespace skiff::loader
