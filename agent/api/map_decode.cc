#include "agent/api/map_decode.h"

#include <arpa/inet.h>
#include <net/if.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/api/policy_key.h"
#include "maps/ct.h"
#include "maps/host_route.h"
#include "maps/lb.h"
#include "maps/metrics.h"
#include "maps/names.h"
#include "maps/nat.h"
#include "maps/policy.h"
#include "maps/sock_lb.h"

namespace skiff::api {
namespace {

template <typename T>
bool As(Bytes b, T* out) {
  if (b.size() < sizeof(T)) return false;
  std::memcpy(out, b.data(), sizeof(T));
  return true;
}

void Uint(google::protobuf::RepeatedPtrField<v1::MapField>* f, const char* name, uint64_t v) {
  auto* x = f->Add();
  x->set_name(name);
  x->set_uint(v);
}
void Text(google::protobuf::RepeatedPtrField<v1::MapField>* f, const char* name, std::string v) {
  auto* x = f->Add();
  x->set_name(name);
  x->set_text(std::move(v));
}
void Hex(google::protobuf::RepeatedPtrField<v1::MapField>* f, Bytes b) {
  std::string s;
  static const char* d = "0123456789abcdef";
  for (uint8_t c : b) {
    s.push_back(d[c >> 4]);
    s.push_back(d[c & 15]);
  }
  Text(f, "hex", std::move(s));
}

std::string BackendState(uint8_t s) {
  switch (s) {
    case SKIFF_BACKEND_ACTIVE:
      return "active";
    case SKIFF_BACKEND_TERMINATING:
      return "terminating";
    case SKIFF_BACKEND_QUARANTINED:
      return "quarantined";
  }
  return absl::StrCat(s);
}

std::string ServiceFlags(uint8_t f) {
  std::vector<std::string> out;
  if (f & SKIFF_SVC_F_AFFINITY) out.push_back("affinity");
  if (f & SKIFF_SVC_F_INT_LOCAL) out.push_back("int-local");
  if (f & SKIFF_SVC_F_EXT_LOCAL) out.push_back("ext-local");
  if (f & SKIFF_SVC_F_CLUSTER_IP) out.push_back("cluster-ip");
  if (f & SKIFF_SVC_F_NODE_PORT) out.push_back("node-port");
  if (f & SKIFF_SVC_F_EXTERNAL_IP) out.push_back("external-ip");
  if (f & SKIFF_SVC_F_LOAD_BALANCER) out.push_back("load-balancer");
  if (f & SKIFF_SVC_F_SRC_RANGES) out.push_back("source-ranges");
  return absl::StrJoin(out, "|");
}

std::string CtFlags(uint8_t f) {
  std::vector<std::string> out;
  if (f & SKIFF_CT_F_SEEN_NON_SYN) out.push_back("established");
  if (f & SKIFF_CT_F_TX_CLOSING) out.push_back("tx_closing");
  if (f & SKIFF_CT_F_RX_CLOSING) out.push_back("rx_closing");
  if (f & SKIFF_CT_F_RESET) out.push_back("reset");
  if (f & SKIFF_CT_F_HAIRPIN) out.push_back("hairpin");
  if (f & SKIFF_CT_F_AFFINITY) out.push_back("affinity");
  return absl::StrJoin(out, "|");
}

std::string EndpointFlags(uint8_t f) {
  std::vector<std::string> out;
  if (f & SKIFF_EP_F_INGRESS_ISOLATED) out.push_back("ingress-isolated");
  if (f & SKIFF_EP_F_EGRESS_ISOLATED) out.push_back("egress-isolated");
  return absl::StrJoin(out, "|");
}

std::string PolicyCtFlags(uint8_t f) {
  std::vector<std::string> out;
  if (f & SKIFF_POL_CT_EGRESS_OK) out.push_back("egress-ok");
  if (f & SKIFF_POL_CT_INGRESS_OK) out.push_back("ingress-ok");
  if (f & SKIFF_POL_CT_SEEN_NON_SYN) out.push_back("established");
  if (f & SKIFF_POL_CT_CLOSING) out.push_back("closing");
  return absl::StrJoin(out, "|");
}

void Tuple(google::protobuf::RepeatedPtrField<v1::MapField>* k, uint32_t saddr, uint16_t sport,
           uint32_t daddr, uint16_t dport, uint8_t proto) {
  Text(k, "src", Ipv4String(saddr));
  Uint(k, "sport", ntohs(sport));
  Text(k, "dst", Ipv4String(daddr));
  Uint(k, "dport", ntohs(dport));
  Text(k, "proto", ProtocolString(proto));
}

std::string DirectionName(uint32_t dir) {
  switch (dir) {
    case SKIFF_DIR_FROM_CONTAINER:
      return "from-container";
    case SKIFF_DIR_TO_CONTAINER:
      return "to-container";
    case SKIFF_DIR_FROM_NETDEV:
      return "from-netdev";
    case SKIFF_DIR_TO_NETDEV:
      return "to-netdev";
    case SKIFF_DIR_XDP:
      return "xdp";
    case SKIFF_DIR_SOCK:
      return "sock";
    case SKIFF_DIR_HOST_ROUTED:
      return "host-routed";
  }
  return absl::StrCat("dir-", dir);
}

bool DecodeKnown(const MapMeta& m, Bytes key, Bytes value, v1::MapEntry* out) {
  auto* k = out->mutable_key();
  auto* v = out->mutable_value();
  const std::string& n = m.name;
  if (n == SKIFF_STR(SKIFF_MAP_LB4_SERVICES)) {
    skiff_lb4_key kk;
    skiff_lb4_service vv;
    if (!As(key, &kk) || !As(value, &vv)) return false;
    Text(k, "address", Ipv4String(kk.address));
    Uint(k, "port", ntohs(kk.dport));
    Text(k, "proto", ProtocolString(kk.proto));
    Text(k, "scope", kk.scope == SKIFF_SCOPE_INTERNAL ? "internal" : "external");
    Uint(k, "slot", kk.slot);
    if (kk.slot == 0) {
      Uint(v, "count", vv.count);
      Uint(v, "terminating_count", vv.terminating_count);
      Uint(v, "rev_nat_id", vv.rev_nat_id);
      Text(v, "flags", ServiceFlags(vv.flags));
      Text(v, "algorithm", vv.algorithm == SKIFF_LB_ALG_MAGLEV ? "maglev" : "random");
      Uint(v, "affinity_timeout", vv.affinity_timeout);
    } else {
      Uint(v, "backend_id", vv.backend_id);
      Uint(v, "rev_nat_id", vv.rev_nat_id);
    }
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_LB4_BACKENDS)) {
    __u32 id;
    skiff_lb4_backend b;
    if (!As(key, &id) || !As(value, &b)) return false;
    Uint(k, "id", id);
    Text(v, "address", Ipv4String(b.address));
    Uint(v, "port", ntohs(b.port));
    Text(v, "proto", ProtocolString(b.proto));
    Text(v, "state", BackendState(b.state));
    Text(v, "flags", (b.flags & SKIFF_BACKEND_F_LOCAL) ? "local" : "");
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_LB4_REVNAT)) {
    __u32 id;
    skiff_lb4_revnat r;
    if (!As(key, &id) || !As(value, &r)) return false;
    Uint(k, "id", id);
    Text(v, "address", Ipv4String(r.address));
    Uint(v, "port", ntohs(r.port));
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_LB4_AFFINITY)) {
    skiff_lb4_affinity_key a;
    skiff_lb_affinity_val av;
    if (!As(key, &a) || !As(value, &av)) return false;
    Text(k, "client", Ipv4String(a.client));
    Uint(k, "rev_nat_id", a.rev_nat_id);
    Uint(v, "backend_id", av.backend_id);
    Uint(v, "last_used_ns", av.last_used_ns);
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_CT4)) {
    skiff_ct4_key c;
    skiff_ct_entry e;
    if (!As(key, &c) || !As(value, &e)) return false;
    Tuple(k, c.saddr, c.sport, c.daddr, c.dport, c.proto);
    Text(k, "kind",
         c.kind == SKIFF_CT_SERVICE ? "service"
         : c.kind == SKIFF_CT_REPLY ? "reply"
                                    : absl::StrCat(c.kind));
    Text(v, "nat", Ipv4String(e.nat_addr));
    Uint(v, "nat_port", ntohs(e.nat_port));
    Text(v, "orig", Ipv4String(e.orig_addr));
    Uint(v, "orig_port", ntohs(e.orig_port));
    Uint(v, "backend_id", e.backend_id);
    Uint(v, "rev_nat_id", e.rev_nat_id);
    Text(v, "flags", CtFlags(e.flags));
    Text(v, "tcp_flags", TcpFlagsString(e.tcp_flags));
    Uint(v, "packets", e.packets);
    Uint(v, "bytes", e.bytes);
    Uint(v, "created", e.created);
    Uint(v, "expires", e.expires);
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_LB4_MAGLEV)) {
    // The whole table would be 16381 numbers: show its size, how many slots each backend
    // owns, and the first slots.
    skiff_lb4_maglev_key mk;
    if (!As(key, &mk) || value.size() % sizeof(__u32) != 0) return false;
    const size_t size = value.size() / sizeof(__u32);
    std::map<uint32_t, uint64_t> owned;
    std::vector<std::string> head;
    for (size_t i = 0; i < size; i++) {
      __u32 id;
      std::memcpy(&id, value.data() + i * sizeof(id), sizeof(id));
      owned[id]++;
      if (i < 8) head.push_back(absl::StrCat(id));
    }
    Uint(k, "rev_nat_id", mk.rev_nat_id);
    Text(k, "scope", mk.scope == SKIFF_SCOPE_INTERNAL ? "internal" : "external");
    Uint(v, "table_size", size);
    Text(v, "slots_per_backend", absl::StrJoin(owned, " ", [](std::string* out, const auto& p) {
           absl::StrAppend(out, p.first, ":", p.second);
         }));
    Text(v, "first_slots", absl::StrJoin(head, " "));
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_LB4_SRC_RANGE)) {
    skiff_lb4_src_range_key r;
    if (!As(key, &r) || value.empty()) return false;
    Uint(k, "rev_nat_id", r.rev_nat_id);
    Text(k, "cidr", absl::StrCat(Ipv4String(r.address), "/", r.prefixlen - 32));
    Uint(v, "allow", value[0]);
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_NAT4)) {
    skiff_nat4_key nk;
    skiff_nat4_entry ne;
    if (!As(key, &nk) || !As(value, &ne)) return false;
    Tuple(k, nk.saddr, nk.sport, nk.daddr, nk.dport, nk.proto);
    Text(k, "dir",
         nk.dir == SKIFF_NAT_OUT  ? "out"
         : nk.dir == SKIFF_NAT_IN ? "in"
                                  : absl::StrCat(nk.dir));
    Text(v, "to", Ipv4String(ne.to_addr));
    Uint(v, "to_port", ntohs(ne.to_port));
    Uint(v, "created", ne.created);
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_NODE_ADDR4)) {
    __u32 ifindex;
    skiff_node_addr4 a;
    if (!As(key, &ifindex) || !As(value, &a)) return false;
    Uint(k, "ifindex", ifindex);
    Text(v, "address", Ipv4String(a.address));
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_SOCK4_REVNAT)) {
    skiff_sock4_revnat_key rk;
    skiff_sock4_revnat_val rv;
    if (!As(key, &rk) || !As(value, &rv)) return false;
    Uint(k, "cookie", rk.cookie);
    Text(k, "backend", Ipv4String(rk.address));
    Uint(k, "backend_port", ntohs(rk.port));
    Text(v, "frontend", Ipv4String(rv.address));
    Uint(v, "frontend_port", ntohs(rv.port));
    Uint(v, "rev_nat_id", rv.rev_nat_id);
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_IPCACHE4)) {
    skiff_ipcache_key ik;
    skiff_ipcache_val iv;
    if (!As(key, &ik) || !As(value, &iv)) return false;
    Text(k, "cidr", absl::StrCat(Ipv4String(ik.addr), "/", ik.prefixlen));
    Text(v, "identity", IdentityName(iv.identity));
    Uint(v, "endpoint_id", iv.endpoint_id);
    Text(v, "flags", EndpointFlags(iv.flags));
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_POLICY4)) {
    skiff_policy_key pk;
    skiff_policy_val pv;
    if (!As(key, &pk) || !As(value, &pv)) return false;
    KeyPorts ports = DecodePolicyKeyPorts(pk);
    Uint(k, "endpoint_id", pk.endpoint_id);
    Text(k, "direction",
         pk.direction == SKIFF_POLICY_INGRESS  ? "ingress"
         : pk.direction == SKIFF_POLICY_EGRESS ? "egress"
                                               : absl::StrCat(pk.direction));
    Text(k, "identity", IdentityName(pk.identity));
    Text(k, "proto", ProtocolName(ports.proto));
    Text(k, "ports",
         ports.lo == ports.hi ? absl::StrCat(ports.lo) : absl::StrCat(ports.lo, "-", ports.hi));
    Uint(k, "prefixlen", pk.prefixlen);
    Uint(v, "rule_id", pv.rule_id);
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_POL_CT4)) {
    skiff_ct4_key c;
    skiff_pol_ct_entry e;
    if (!As(key, &c) || !As(value, &e)) return false;
    // The key holds the lower endpoint first; show the direction the connection was opened.
    if (!(e.flags & SKIFF_POL_CT_REVERSED))
      Tuple(k, c.saddr, c.sport, c.daddr, c.dport, c.proto);
    else if (c.proto == IPPROTO_ICMP)  // the identifier stays in sport
      Tuple(k, c.daddr, c.sport, c.saddr, c.dport, c.proto);
    else
      Tuple(k, c.daddr, c.dport, c.saddr, c.sport, c.proto);
    Text(v, "flags", PolicyCtFlags(e.flags));
    Uint(v, "created", e.created);
    Uint(v, "expires", e.expires);
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_POL_STATE)) {
    __u32 idx;
    skiff_pol_state ps;
    if (!As(key, &idx) || !As(value, &ps)) return false;
    Uint(k, "index", idx);
    Text(v, "flags", (ps.flags & SKIFF_POL_STATE_F_DENY_UNKNOWN) ? "deny-unknown" : "");
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_ENDPOINT_IFACES)) {
    __u32 ifindex;
    skiff_endpoint_iface e;
    if (!As(key, &ifindex) || !As(value, &e)) return false;
    Uint(k, "ifindex", ifindex);
    char name[IF_NAMESIZE] = {};
    Text(k, "name", if_indextoname(ifindex, name) ? name : "(gone)");
    Uint(v, "flags", e.flags);
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_HOST_ROUTE4)) {
    skiff_host_route4_key rk;
    skiff_host_route4 r;
    if (!As(key, &rk) || !As(value, &r)) return false;
    Text(k, "dst", Ipv4String(rk.daddr));
    Text(k, "src", Ipv4String(rk.saddr));
    Uint(k, "ifindex", rk.ifindex);
    Uint(k, "tos", rk.tos);
    Text(k, "proto", ProtocolString(rk.proto));
    Uint(v, "ifindex", r.ifindex);
    Uint(v, "mtu", r.mtu);
    auto mac = [](const __u8* m) {
      char buf[18];
      std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                    m[5]);
      return std::string(buf);
    };
    Text(v, "dmac", mac(r.dmac));
    Text(v, "smac", mac(r.smac));
    Uint(v, "expires_ns", r.expires);
    return true;
  }
  if (n == SKIFF_STR(SKIFF_MAP_METRICS)) {
    __u32 idx;
    if (!As(key, &idx)) return false;
    uint32_t dir = idx / SKIFF_METRICS_OUTCOMES, outcome = idx % SKIFF_METRICS_OUTCOMES;
    Uint(k, "index", idx);
    Text(k, "direction", DirectionName(dir));
    Text(k, "outcome",
         outcome == SKIFF_METRICS_FORWARDED
             ? std::string("forwarded")
             : SkiffDropReasonName(SKIFF_DROP_MIN - static_cast<int>(outcome - 1)));
    uint64_t packets = 0, bytes = 0;
    size_t stride = m.per_cpu ? (m.value_size + 7) / 8 * 8 : m.value_size;
    for (size_t off = 0; off + sizeof(skiff_metrics_val) <= value.size(); off += stride) {
      skiff_metrics_val mv;
      std::memcpy(&mv, value.data() + off, sizeof(mv));
      packets += mv.packets;
      bytes += mv.bytes;
      if (!m.per_cpu) break;
    }
    Uint(v, "packets", packets);
    Uint(v, "bytes", bytes);
    return true;
  }
  return false;
}

}  // namespace

std::string Ipv4String(uint32_t be_addr) {
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &be_addr, buf, sizeof(buf));
  return buf;
}

std::string ProtocolString(uint8_t proto) {
  switch (proto) {
    case 1:
      return "ICMP";
    case 6:
      return "TCP";
    case 17:
      return "UDP";
    case 132:
      return "SCTP";
  }
  return absl::StrCat(proto);
}

std::string TcpFlagsString(uint8_t f) {
  static const char* names[] = {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"};
  std::vector<std::string> out;
  for (int i = 0; i < 8; i++)
    if (f & (1u << i)) out.push_back(names[i]);
  return absl::StrJoin(out, "|");
}

void DecodeMapEntry(const MapMeta& meta, Bytes key, Bytes value, v1::MapEntry* out) {
  if (DecodeKnown(meta, key, value, out)) return;
  out->Clear();
  Hex(out->mutable_key(), key);
  Hex(out->mutable_value(), value);
}

void FillMapInfo(const MapMeta& meta, uint64_t entries, v1::MapInfo* out) {
  out->set_name(meta.name);
  out->set_type(meta.type);
  out->set_key_size(meta.key_size);
  out->set_value_size(meta.value_size);
  out->set_entries(entries);
  out->set_max_entries(meta.max_entries);
  out->set_pressure(meta.max_entries ? static_cast<double>(entries) / meta.max_entries : 0);
}

}  // namespace skiff::api
