// End-to-end test topology: a "node" network namespace whose pods are network namespaces,
// wired the way common CNIs wire them — a veth pair per pod (host side "lxc..." in the node,
// eth0 in the pod), a /32 route per pod on the node, the pod's default route via the
// link-local gateway 169.254.1.1, static neighbour entries both ways. The node has no default
// route and a blackhole route for the service CIDR, so a packet the datapath fails to
// translate goes nowhere. Names are unique per test run; everything is removed in the
// destructors, also when a test fails.
//
// Traffic is sent from threads that enter a pod's namespace (setns), so sockets live in the
// pod; servers are threads of the test process too. Only namespaces made here carry traffic.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace skiff::e2e {

// Runs a shell command; the error carries its output.
absl::Status Sh(const std::string& cmd);
absl::StatusOr<std::string> ShOut(const std::string& cmd);

// A short name unique to this process and call ("sk3f2a01").
std::string UniqueName(const std::string& prefix);

// An ethtool on/off setting (ETHTOOL_STXCSUM, ETHTOOL_SGRO, ...) of iface in netns, through
// SIOCETHTOOL (no ethtool binary needed).
absl::Status SetEthtool(const std::string& netns, const std::string& iface, uint32_t cmd, bool on);

// Attaches a two-instruction XDP_PASS program (native mode) to iface in netns: what the peer of
// a veth needs before frames sent to it with XDP_TX or a redirect are received (its NAPI).
// The attachment goes with the device.
absl::Status AttachXdpPass(const std::string& netns, const std::string& iface);

// Runs fn on a new thread inside network namespace `netns` (a name under /run/netns) and
// returns its result. Sockets created by fn stay in that namespace.
template <typename F>
auto InNetns(const std::string& netns, F fn) -> decltype(fn());
bool EnterNetns(const std::string& netns);  // for the calling thread
// A loopback TCP port nobody in `netns` uses now (for listeners of an agent running there), or
// 0 when none could be bound.
int FreePort(const std::string& netns);

struct Pod {
  std::string name;     // pod name, also what its servers answer
  std::string netns;    // network namespace name
  std::string host_if;  // host-side veth in the node namespace
  std::string ip;
};

class Node {
 public:
  static absl::StatusOr<std::unique_ptr<Node>> Create(
      const std::string& service_cidr = "10.96.0.0/16");
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  absl::StatusOr<Pod> AddPod(const std::string& name, const std::string& ip);
  absl::Status RemovePod(const std::string& name);

  const std::string& netns() const { return netns_; }
  const std::string& prefix() const { return prefix_; }
  // Glob matching this node's pod interfaces, for --endpoint-ifaces.
  std::string IfaceGlob() const { return "lxc" + prefix_ + "*"; }

 private:
  Node() = default;
  std::string prefix_;
  std::string netns_;
  std::map<std::string, Pod> pods_;
  int next_if_ = 0;
};

// TCP and UDP servers in a pod: TCP sends "<pod>\n" on accept, then echoes; UDP answers each
// datagram with "<pod>\n".
class PodServer {
 public:
  PodServer(const Pod& pod, std::vector<uint16_t> tcp_ports, std::vector<uint16_t> udp_ports);
  ~PodServer();
  absl::Status status() const { return status_; }

 private:
  void ServeTcp(int lfd);
  void ServeUdp(int fd);
  std::string name_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  absl::Status status_;
};

// Client helpers, each run inside the pod's namespace.
// Connects, reads the server's first line; "" plus a message in *err on failure.
// source_port != 0 binds the client to that port (the connection ends with an RST, so the
// port is free again at once).
std::string TcpHello(const std::string& netns, const std::string& ip, uint16_t port, int timeout_ms,
                     std::string* err = nullptr, uint16_t source_port = 0);
std::string UdpHello(const std::string& netns, const std::string& ip, uint16_t port, int timeout_ms,
                     std::string* err = nullptr);

// A long-lived TCP connection from a pod: Open() connects and reads the hello;
// Echo() sends a line and expects it back.
class TcpStream {
 public:
  ~TcpStream();
  absl::Status Open(const std::string& netns, const std::string& ip, uint16_t port);
  absl::Status Echo(const std::string& line, int timeout_ms = 2000);
  const std::string& server() const { return server_; }

 private:
  int fd_ = -1;
  std::string server_;
};

// The real skiff-agent, run inside the node's network namespace only (nsenter --net), so it
// shares the host's bpffs. Without --socket-lb or --cgroup-root in args it runs with
// --socket-lb=disabled: a test agent never attaches to the machine's real cgroup root.
class AgentProcess {
 public:
  explicit AgentProcess(std::vector<std::string> args) : args_(std::move(args)) {}
  ~AgentProcess();
  absl::Status Start(const std::string& netns, const std::string& log_path);
  void Kill(int sig);
  int Wait();  // exit status
  bool running() const { return pid_ > 0; }
  // The API socket: from --api-socket in args, else a fresh one in a private temp
  // directory (removed by the destructor).
  const std::string& api_socket() const { return api_socket_; }

 private:
  std::vector<std::string> args_;
  int pid_ = -1;
  std::string api_socket_;
  std::string api_dir_;
};

// --- implementation of the template ---
template <typename F>
auto InNetns(const std::string& netns, F fn) -> decltype(fn()) {
  using R = decltype(fn());
  if constexpr (std::is_void_v<R>) {
    std::thread t([&] {
      if (EnterNetns(netns)) fn();
    });
    t.join();
  } else {
    R result{};
    std::thread t([&] {
      if (EnterNetns(netns)) result = fn();
    });
    t.join();
    return result;
  }
}

}  // namespace skiff::e2e
