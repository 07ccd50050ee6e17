#include "tests/e2e/topology.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace skiff::e2e {

absl::StatusOr<std::string> ShOut(const std::string& cmd) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return absl::InternalError(absl::StrCat("popen failed: ", cmd));
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  if (rc != 0) return absl::InternalError(absl::StrCat("`", cmd, "` failed (", rc, "): ", out));
  return out;
}

absl::Status Sh(const std::string& cmd) { return ShOut(cmd).status(); }

int FreePort(const std::string& netns) {
  return InNetns(netns, [] {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    close(fd);
    return port;
  });
}

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%s%04x%02x", prefix.c_str(),
                static_cast<unsigned>(getpid() ^ time(nullptr)) & 0xffff, counter++ & 0xff);
  return buf;
}

absl::Status SetEthtool(const std::string& netns, const std::string& iface, uint32_t cmd, bool on) {
  bool entered = false;
  int err = InNetns(netns, [&]() -> int {
    entered = true;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    ethtool_value v{};
    v.cmd = cmd;
    v.data = on ? 1 : 0;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, iface.c_str(), IFNAMSIZ - 1);
    ifr.ifr_data = reinterpret_cast<char*>(&v);
    int rc = ioctl(fd, SIOCETHTOOL, &ifr) == 0 ? 0 : errno;
    close(fd);
    return rc;
  });
  if (!entered) return absl::NotFoundError(absl::StrCat("cannot enter netns ", netns));
  if (err)
    return absl::InternalError(absl::StrCat("ethtool 0x", absl::Hex(cmd), " on ", netns, "/", iface,
                                            ": ", std::strerror(err)));
  return absl::OkStatus();
}

absl::Status AttachXdpPass(const std::string& netns, const std::string& iface) {
  const bpf_insn prog[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_pass", "GPL", prog, 2, nullptr);
  if (fd < 0) return absl::InternalError(absl::StrCat("loading XDP_PASS: ", std::strerror(errno)));
  bool entered = false;
  int err = InNetns(netns, [&]() -> int {
    entered = true;
    int ifindex = static_cast<int>(if_nametoindex(iface.c_str()));
    if (!ifindex) return ENODEV;
    return -bpf_xdp_attach(ifindex, fd, XDP_FLAGS_DRV_MODE, nullptr);
  });
  close(fd);
  if (!entered) return absl::NotFoundError(absl::StrCat("cannot enter netns ", netns));
  if (err)
    return absl::InternalError(
        absl::StrCat("XDP_PASS on ", netns, "/", iface, ": ", std::strerror(err)));
  return absl::OkStatus();
}

bool EnterNetns(const std::string& netns) {
  std::string path = "/run/netns/" + netns;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = setns(fd, CLONE_NEWNET) == 0;
  close(fd);
  return ok;
}

absl::StatusOr<std::unique_ptr<Node>> Node::Create(const std::string& service_cidr) {
  std::unique_ptr<Node> n(new Node());
  n->prefix_ = UniqueName("");
  n->netns_ = "sknode" + n->prefix_;
  if (auto st = Sh("ip netns add " + n->netns_); !st.ok()) {
    n->netns_.clear();
    return st;
  }
  const std::string ns = "ip -n " + n->netns_ + " ";
  for (const std::string& cmd : {
           ns + "link set lo up",
           // The node's own address; also the source of its neighbour lookups.
           ns + "addr add 10.244.0.1/32 dev lo",
           ns + "route add blackhole " + service_cidr,
           "ip netns exec " + n->netns_ + " sysctl -qw net.ipv4.ip_forward=1",
           "ip netns exec " + n->netns_ + " sysctl -qw net.ipv4.conf.all.rp_filter=0",
           "ip netns exec " + n->netns_ + " sysctl -qw net.ipv4.conf.default.rp_filter=0",
       }) {
    if (auto st = Sh(cmd); !st.ok()) return st;
  }
  return n;
}

Node::~Node() {
  for (auto& [name, pod] : pods_) Sh("ip netns del " + pod.netns).IgnoreError();
  if (!netns_.empty()) Sh("ip netns del " + netns_).IgnoreError();
}

absl::StatusOr<Pod> Node::AddPod(const std::string& name, const std::string& ip) {
  Pod p;
  p.name = name;
  p.ip = ip;
  p.netns = "skpod" + prefix_ + std::to_string(next_if_);
  p.host_if = "lxc" + prefix_ + std::to_string(next_if_);
  next_if_++;
  if (auto st = Sh("ip netns add " + p.netns); !st.ok()) return st;
  pods_[name] = p;
  const std::string node = "ip -n " + netns_ + " ";
  const std::string pod = "ip -n " + p.netns + " ";
  for (const std::string& cmd : {
           pod + "link set lo up",
           pod + "link add eth0 type veth peer name " + p.host_if + " netns " + netns_,
           pod + "addr add " + ip + "/32 dev eth0",
           pod + "link set eth0 up",
           node + "link set " + p.host_if + " up",
           "ip netns exec " + netns_ + " sysctl -qw net.ipv4.conf." + p.host_if + ".proxy_arp=1",
           "ip netns exec " + netns_ + " sysctl -qw net.ipv4.conf." + p.host_if + ".rp_filter=0",
           node + "route add " + ip + "/32 dev " + p.host_if,
           pod + "route add 169.254.1.1 dev eth0 scope link",
           pod + "route add default via 169.254.1.1 dev eth0",
       }) {
    if (auto st = Sh(cmd); !st.ok()) return st;
  }
  // Static neighbours both ways: no ARP timing in the tests.
  auto host_mac = ShOut("cat /dev/null; ip -n " + netns_ + " -o link show " + p.host_if +
                        " | sed -n 's/.*link\\/ether \\([0-9a-f:]*\\).*/\\1/p'");
  auto pod_mac = ShOut("ip -n " + p.netns +
                       " -o link show eth0 | sed -n 's/.*link\\/ether \\([0-9a-f:]*\\).*/\\1/p'");
  if (!host_mac.ok()) return host_mac.status();
  if (!pod_mac.ok()) return pod_mac.status();
  std::string hm(absl::StripAsciiWhitespace(*host_mac)), pm(absl::StripAsciiWhitespace(*pod_mac));
  if (auto st = Sh(pod + "neigh replace 169.254.1.1 lladdr " + hm + " dev eth0 nud permanent");
      !st.ok())
    return st;
  if (auto st = Sh(node + "neigh replace " + ip + " lladdr " + pm + " dev " + p.host_if +
                   " nud permanent");
      !st.ok())
    return st;
  return p;
}

absl::Status Node::RemovePod(const std::string& name) {
  auto it = pods_.find(name);
  if (it == pods_.end()) return absl::NotFoundError(name);
  auto st = Sh("ip netns del " + it->second.netns);
  pods_.erase(it);
  return st;
}

namespace {

int MakeSocket(int type, uint16_t port, bool listen_too) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      (listen_too && listen(fd, 128) != 0)) {
    close(fd);
    return -1;
  }
  return fd;
}

// True when fd is ready for `events` or has an error/hangup to report (a refused connect
// shows up as POLLERR|POLLHUP without POLLOUT).
bool WaitFd(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & (events | POLLERR | POLLHUP));
}

void AbortiveClose(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

int ConnectTimeout(const std::string& ip, uint16_t port, int timeout_ms, std::string* err,
                   uint16_t source_port = 0) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (source_port != 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(source_port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
      if (err) *err = absl::StrCat("bind to port ", source_port, ": ", strerror(errno));
      close(fd);
      return -1;
    }
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 && errno != EINPROGRESS) {
    if (err) *err = absl::StrCat("connect: ", strerror(errno));
    close(fd);
    return -1;
  }
  if (!WaitFd(fd, POLLOUT, timeout_ms)) {
    if (err) *err = "connect: timed out";
    close(fd);
    return -1;
  }
  int so_err = 0;
  socklen_t len = sizeof(so_err);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &len);
  if (so_err != 0) {
    if (err) *err = absl::StrCat("connect: ", strerror(so_err));
    close(fd);
    return -1;
  }
  return fd;
}

std::string ReadLine(int fd, int timeout_ms, std::string* err) {
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    int left = std::chrono::duration_cast<std::chrono::milliseconds>(
                   deadline - std::chrono::steady_clock::now())
                   .count();
    if (left <= 0 || !WaitFd(fd, POLLIN, left)) {
      if (err) *err = "read: timed out";
      return "";
    }
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    if (n <= 0) {
      if (n < 0 && errno == EAGAIN) continue;
      if (err) *err = n == 0 ? "read: connection closed" : absl::StrCat("read: ", strerror(errno));
      return "";
    }
    if (c == '\n') return line;
    line.push_back(c);
  }
}

}  // namespace

PodServer::PodServer(const Pod& pod, std::vector<uint16_t> tcp_ports,
                     std::vector<uint16_t> udp_ports)
    : name_(pod.name) {
  for (uint16_t port : tcp_ports) {
    int fd = InNetns(pod.netns, [&] { return MakeSocket(SOCK_STREAM, port, true); });
    if (fd < 0) {
      status_ = absl::InternalError(absl::StrCat("TCP server on ", pod.name, ":", port));
      continue;
    }
    fds_.push_back(fd);
    threads_.emplace_back([this, fd] { ServeTcp(fd); });
  }
  for (uint16_t port : udp_ports) {
    int fd = InNetns(pod.netns, [&] { return MakeSocket(SOCK_DGRAM, port, false); });
    if (fd < 0) {
      status_ = absl::InternalError(absl::StrCat("UDP server on ", pod.name, ":", port));
      continue;
    }
    fds_.push_back(fd);
    threads_.emplace_back([this, fd] { ServeUdp(fd); });
  }
}

PodServer::~PodServer() {
  stop_ = true;
  for (int fd : fds_) shutdown(fd, SHUT_RDWR);
  for (auto& t : threads_) t.join();
  for (int fd : fds_) close(fd);
}

void PodServer::ServeTcp(int lfd) {
  std::vector<std::thread> conns;
  while (!stop_) {
    if (!WaitFd(lfd, POLLIN, 100)) continue;
    int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    conns.emplace_back([this, c] {
      std::string hello = name_ + "\n";
      send(c, hello.data(), hello.size(), MSG_NOSIGNAL);
      char buf[4096];
      while (!stop_) {
        if (!WaitFd(c, POLLIN, 100)) continue;
        ssize_t n = recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        send(c, buf, n, MSG_NOSIGNAL);
      }
      close(c);
    });
  }
  for (auto& t : conns) t.join();
}

void PodServer::ServeUdp(int fd) {
  char buf[2048];
  std::string hello = name_ + "\n";
  while (!stop_) {
    if (!WaitFd(fd, POLLIN, 100)) continue;
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    ssize_t n =
        recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) continue;
    sendto(fd, hello.data(), hello.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  }
}

std::string TcpHello(const std::string& netns, const std::string& ip, uint16_t port, int timeout_ms,
                     std::string* err, uint16_t source_port) {
  return InNetns(netns, [&]() -> std::string {
    int fd = ConnectTimeout(ip, port, timeout_ms, err, source_port);
    if (fd < 0) return "";
    std::string line = ReadLine(fd, timeout_ms, err);
    AbortiveClose(fd);
    return line;
  });
}

std::string UdpHello(const std::string& netns, const std::string& ip, uint16_t port, int timeout_ms,
                     std::string* err) {
  return InNetns(netns, [&]() -> std::string {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
    // connect() makes the kernel match replies to the VIP and report ICMP errors.
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
        send(fd, "hi\n", 3, 0) != 3) {
      if (err) *err = absl::StrCat("udp: ", strerror(errno));
      close(fd);
      return "";
    }
    char buf[256];
    if (!WaitFd(fd, POLLIN, timeout_ms)) {
      if (err) *err = "udp: timed out";
      close(fd);
      return "";
    }
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    int e = errno;
    close(fd);
    if (n <= 0) {
      if (err) *err = absl::StrCat("udp: ", n < 0 ? strerror(e) : "empty");
      return "";
    }
    std::string s(buf, n);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  });
}

TcpStream::~TcpStream() {
  if (fd_ >= 0) AbortiveClose(fd_);
}

absl::Status TcpStream::Open(const std::string& netns, const std::string& ip, uint16_t port) {
  std::string err;
  fd_ = InNetns(netns, [&] { return ConnectTimeout(ip, port, 2000, &err); });
  if (fd_ < 0) return absl::UnavailableError(err);
  server_ = ReadLine(fd_, 2000, &err);
  if (server_.empty()) return absl::UnavailableError(err);
  return absl::OkStatus();
}

absl::Status TcpStream::Echo(const std::string& line, int timeout_ms) {
  std::string msg = line + "\n";
  if (send(fd_, msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size()))
    return absl::UnavailableError(absl::StrCat("send: ", strerror(errno)));
  std::string err;
  std::string got = ReadLine(fd_, timeout_ms, &err);
  if (got != line)
    return absl::UnavailableError(
        absl::StrCat("echo: expected '", line, "', got '", got, "' ", err));
  return absl::OkStatus();
}

AgentProcess::~AgentProcess() {
  if (pid_ > 0) {
    Kill(SIGKILL);
    Wait();
  }
  if (!api_dir_.empty()) Sh("rm -rf '" + api_dir_ + "'").IgnoreError();
}

absl::Status AgentProcess::Start(const std::string& netns, const std::string& log_path) {
  std::vector<std::string> argv = {"nsenter", "--net=/run/netns/" + netns, "--"};
  argv.insert(argv.end(), args_.begin(), args_.end());
  // Agents of concurrent tests must not fight over the default /run/skiff/agent.sock.
  bool has_socket = false;
  for (size_t i = 0; i < args_.size(); i++)
    if (args_[i] == "--api-socket" && i + 1 < args_.size()) {
      has_socket = true;
      api_socket_ = args_[i + 1];
    }
  if (!has_socket) {
    if (api_dir_.empty()) api_dir_ = "/tmp/" + UniqueName("skiff-api-");
    api_socket_ = api_dir_ + "/agent.sock";
    argv.insert(argv.end(), {"--api-socket", api_socket_});
  }
  // An agent under test never attaches its socket programs to the machine's real cgroup
  // root: a test that wants socket LB passes its own --cgroup-root (ClusterNode::Cgroup).
  bool socket_lb_given = false;
  for (const auto& a : args_)
    if (a.rfind("--socket-lb", 0) == 0 || a.rfind("--cgroup-root", 0) == 0) socket_lb_given = true;
  if (!socket_lb_given) argv.push_back("--socket-lb=disabled");
  pid_ = fork();
  if (pid_ < 0) return absl::InternalError("fork failed");
  if (pid_ == 0) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execvp(cargv[0], cargv.data());
    _exit(127);
  }
  return absl::OkStatus();
}

void AgentProcess::Kill(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

int AgentProcess::Wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

}  // namespace skiff::e2e
