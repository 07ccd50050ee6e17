// A client process for socket-LB tests (tests/e2e/socket_lb_e2e_test.cc): socket-level load
// balancing acts on processes by cgroup, so node-originated traffic must come from a process of
// its own, moved into the agent's test cgroup (ClusterNode::HostCommand).
//
//   skiff_e2e_sock_client tcp|udp|udpc IP PORT [N]
//
// Makes N (default 1) attempts; prints one line per attempt:
//   ok <first line the server sent> <peer address:port>   (tcp: getpeername; udp: recvfrom's
//                                                           source; udpc: getpeername)
//   err <errno name>
// tcp connects and reads the server's hello; udp sends a datagram with sendto() on an
// unconnected socket; udpc connect()s the UDP socket first. Exit status 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

std::string Addr(const sockaddr_in& sa) {
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
  return std::string(ip) + ":" + std::to_string(ntohs(sa.sin_port));
}

std::string Err(int e) {
  const char* n = strerrorname_np(e);
  return std::string("err ") + (n ? n : std::to_string(e).c_str());
}

std::string FirstLine(const char* buf, ssize_t n) {
  std::string s(buf, n > 0 ? n : 0);
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

std::string Attempt(const std::string& mode, const sockaddr_in& dst) {
  const bool tcp = mode == "tcp";
  int fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) return Err(errno);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::string out;
  char buf[512];
  sockaddr_in peer{};
  socklen_t plen = sizeof(peer);
  auto* d = reinterpret_cast<const sockaddr*>(&dst);
  if (tcp || mode == "udpc") {
    if (connect(fd, d, sizeof(dst)) != 0) {
      out = Err(errno);
    } else if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0) {
      out = Err(errno);
    } else if (!tcp && send(fd, "hi\n", 3, 0) != 3) {
      out = Err(errno);
    } else {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      out = n > 0 ? "ok " + FirstLine(buf, n) + " " + Addr(peer) : Err(n < 0 ? errno : ECONNRESET);
    }
  } else {
    if (sendto(fd, "hi\n", 3, 0, d, sizeof(dst)) != 3) {
      out = Err(errno);
    } else {
      ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&peer), &plen);
      out = n > 0 ? "ok " + FirstLine(buf, n) + " " + Addr(peer) : Err(n < 0 ? errno : EIO);
    }
  }
  if (tcp) {  // abortive close: no TIME_WAIT to collide with the next attempt
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  close(fd);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s tcp|udp|udpc IP PORT [N]\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  if (mode != "tcp" && mode != "udp" && mode != "udpc") return 2;
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[3])));
  if (inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1) return 2;
  const int n = argc > 4 ? std::atoi(argv[4]) : 1;
  for (int i = 0; i < n; i++) std::printf("%s\n", Attempt(mode, dst).c_str());
  return 0;
}
