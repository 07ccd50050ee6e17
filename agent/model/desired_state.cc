#include "agent/model/desired_state.h"

#include <arpa/inet.h>

#include <cstring>

namespace skiff::model {

std::optional<IpAddr> IpAddr::Parse(const std::string& text) {
  IpAddr ip;
  // inet_pton accepts exactly the dotted-quad and RFC 4291 forms the Kubernetes API accepts
  // (no leading zeros, no shorthand like "10.1"), so manifests that load here load there.
  if (inet_pton(AF_INET, text.c_str(), ip.bytes.data()) == 1) {
    ip.family = 4;
    return ip;
  }
  if (inet_pton(AF_INET6, text.c_str(), ip.bytes.data()) == 1) {
    ip.family = 6;
    return ip;
  }
  return std::nullopt;
}

std::string IpAddr::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family == 6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof(buf)) == nullptr) {
    return "<invalid>";
  }
  return buf;
}

uint32_t IpAddr::V4() const {
  uint32_t v = 0;
  std::memcpy(&v, bytes.data(), sizeof(v));
  return v;
}

}  // namespace skiff::model
