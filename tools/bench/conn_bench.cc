// skiff_bench_conn: short TCP connections, the load of the datapath benchmark.
//
//   skiff_bench_conn serve --port 8080 [--threads 2]
//   skiff_bench_conn client --targets IP:PORT[,IP:PORT...] --duration 2 [--warmup 0.3]
//                           [--parallel 1] [--timeout-ms 1000]
//                           [--turn-in FIFO --turn-out FIFO [--slice-ms 100]]
//
// The client runs `parallel` threads; each opens one connection at a time, round-robin over
// the targets: connect, send a 16-byte request, read the 16-byte response, close abortively
// (SO_LINGER 0, so no TIME_WAIT anywhere: the server waits for the client's close before it
// closes, DESIGN.md §10). Latency is connect() start → response read. It prints one JSON
// object: connections/s, p50/p99/max latency, errors, and the client's own user and system
// CPU time (the user time is the generator; the system time is the kernel's network path,
// which on veths runs in the sender's context).
//
// Taking turns (--turn-in/--turn-out): two clients, each in its own namespace (and cgroup), pass
// a token through two FIFOs and run connections only while they hold it, `slice-ms` at a time,
// until each has run `duration` seconds after its `warmup`. The machine's speed drifts by
// ±10-30 % over seconds in a VM; two modes measured in alternating 100 ms slices see the same
// drift, so their ratio is steady where back-to-back measurements are not (tools/bench/run
// --paired). "seconds" is then the client's own active time; the rate is over that time.
//
// The server answers each connection in one of `threads` blocking accept loops.
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace skiff::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMsgLen = 16;

bool ReadFull(int fd, char* buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, buf + got, len - got);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    got += static_cast<size_t>(n);
  }
  return true;
}

int Serve(uint16_t port, int threads) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(lfd, 4096) != 0) {
    std::cerr << "skiff_bench_conn serve: bind/listen :" << port << ": " << strerror(errno) << "\n";
    return 1;
  }
  auto loop = [lfd] {
    char buf[kMsgLen];
    const char resp[kMsgLen + 1] = "skiff-bench-ok\n\n";
    while (true) {
      int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;
      }
      if (ReadFull(fd, buf, kMsgLen) && write(fd, resp, kMsgLen) == kMsgLen) {
        // Wait for the client's (abortive) close so the server never holds TIME_WAIT.
        while (read(fd, buf, sizeof(buf)) > 0) {
        }
      }
      close(fd);
    }
  };
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; i++) ts.emplace_back(loop);
  for (auto& t : ts) t.join();
  return 0;
}

struct Target {
  sockaddr_in addr{};
};

struct WorkerResult {
  std::vector<uint32_t> latency_ns;
  uint64_t errors = 0;
  std::string first_error;
  // Every connection made, warm-up and the last one after the window included: what the
  // datapath's per-program counters (tools/bench/run --bpf-stats) see.
  uint64_t made = 0;
};

// One connection; returns latency in ns or 0 on error.
uint32_t OneConnection(const Target& t, int timeout_ms, std::string* err) {
  const auto start = Clock::now();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = absl::StrCat("socket: ", strerror(errno));
    return 0;
  }
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  uint32_t result = 0;
  const char req[kMsgLen + 1] = "GET skiff-bench\n";
  char resp[kMsgLen];
  if (connect(fd, reinterpret_cast<const sockaddr*>(&t.addr), sizeof(t.addr)) != 0) {
    *err = absl::StrCat("connect: ", strerror(errno));
  } else if (write(fd, req, kMsgLen) != static_cast<ssize_t>(kMsgLen)) {
    *err = absl::StrCat("write: ", strerror(errno));
  } else if (!ReadFull(fd, resp, kMsgLen)) {
    *err = absl::StrCat("read: ", errno ? strerror(errno) : "short");
  } else {
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
    result = static_cast<uint32_t>(std::clamp<int64_t>(ns, 1, UINT32_MAX));
  }
  close(fd);
  return result;
}

double CpuSeconds(const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

// Where two clients take turns (--turn-in/--turn-out).
struct Turns {
  std::string in, out;
  int slice_ms = 100;
  bool enabled() const { return !in.empty(); }
};

// Waits for the other client's byte: 't' (your turn) or 'd' (it has finished; take one last
// turn). Returns 0 on error or when none came in 10 s (the other client died).
char AwaitTurn(int fd) {
  pollfd p{fd, POLLIN, 0};
  int n;
  while ((n = poll(&p, 1, 10000)) < 0 && errno == EINTR) {
  }
  char c = 0;
  if (n != 1 || read(fd, &c, 1) != 1) return 0;
  return c;
}

int Client(const std::vector<Target>& targets, double duration, double warmup, int parallel,
           int timeout_ms, const Turns& turns) {
  std::vector<WorkerResult> results(parallel);
  // active: workers open connections; measuring: they count them. busy: workers inside a
  // connection (the turn ends when it reaches 0 after `active` clears).
  std::atomic<bool> measuring{false}, stop{false}, active{!turns.enabled()};
  std::atomic<int> busy{0};
  std::vector<std::thread> ts;
  for (int w = 0; w < parallel; w++) {
    ts.emplace_back([&, w] {
      WorkerResult& r = results[w];
      r.latency_ns.reserve(1 << 20);
      size_t next = w;
      while (!stop.load(std::memory_order_relaxed)) {
        busy.fetch_add(1);
        if (!active.load()) {
          busy.fetch_sub(1);
          active.wait(false);
          continue;
        }
        const bool counted = measuring.load(std::memory_order_relaxed);
        std::string err;
        uint32_t ns = OneConnection(targets[next++ % targets.size()], timeout_ms, &err);
        busy.fetch_sub(1);
        if (ns != 0) r.made++;
        if (!counted) continue;
        if (ns == 0) {
          if (r.errors++ == 0) r.first_error = err;
        } else {
          r.latency_ns.push_back(ns);
        }
      }
    });
  }
  rusage ru0{}, ru1{};
  double wall = 0;
  if (!turns.enabled()) {
    std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
    getrusage(RUSAGE_SELF, &ru0);
    const auto t0 = Clock::now();
    measuring = true;
    std::this_thread::sleep_for(std::chrono::duration<double>(duration));
    measuring = false;
    wall = std::chrono::duration<double>(Clock::now() - t0).count();
    getrusage(RUSAGE_SELF, &ru1);
  } else {
    // O_RDWR: opening never blocks on the peer, and a write never fails for want of a reader.
    int in = open(turns.in.c_str(), O_RDWR | O_CLOEXEC);
    int out = open(turns.out.c_str(), O_RDWR | O_CLOEXEC);
    if (in < 0 || out < 0) {
      std::cerr << "skiff_bench_conn: opening " << (in < 0 ? turns.in : turns.out) << ": "
                << strerror(errno) << "\n";
      std::exit(2);
    }
    const auto slice = std::chrono::milliseconds(turns.slice_ms);
    double warm = 0;
    bool peer_done = false, counted_any = false;
    while (true) {
      const char c = AwaitTurn(in);
      if (c != 't' && c != 'd') {
        std::cerr << "skiff_bench_conn: no turn from the other client in 10 s\n";
        std::exit(1);
      }
      peer_done = peer_done || c == 'd';
      const bool counting = warm >= warmup;
      if (counting && !counted_any) {
        getrusage(RUSAGE_SELF, &ru0);  // CPU from the first counted turn (idle between turns)
        counted_any = true;
      }
      measuring = counting;
      const auto t0 = Clock::now();
      active = true;
      active.notify_all();
      std::this_thread::sleep_for(slice);
      active = false;
      while (busy.load() != 0) std::this_thread::yield();  // the connection in flight ends
      const double took = std::chrono::duration<double>(Clock::now() - t0).count();
      measuring = false;
      if (counting) {
        wall += took;
      } else {
        warm += took;
      }
      // The peer has finished: this was our last turn (nobody passes the token back).
      if (peer_done) break;
      const bool done = wall >= duration;
      const char token = done ? 'd' : 't';
      if (write(out, &token, 1) != 1 || done) break;
    }
    getrusage(RUSAGE_SELF, &ru1);
    close(in);
    close(out);
  }
  stop = true;
  active = true;
  active.notify_all();
  for (auto& t : ts) t.join();

  std::vector<uint32_t> all;
  uint64_t errors = 0, made = 0;
  std::string first_error;
  for (auto& r : results) {
    all.insert(all.end(), r.latency_ns.begin(), r.latency_ns.end());
    errors += r.errors;
    made += r.made;
    if (first_error.empty()) first_error = r.first_error;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) -> double {
    if (all.empty()) return 0;
    size_t i = std::min(all.size() - 1, static_cast<size_t>(p * static_cast<double>(all.size())));
    return all[i] / 1e3;
  };
  if (wall <= 0) wall = 1e-9;
  const double user = CpuSeconds(ru1.ru_utime) - CpuSeconds(ru0.ru_utime);
  const double sys = CpuSeconds(ru1.ru_stime) - CpuSeconds(ru0.ru_stime);
  std::string fe;
  for (char c : first_error)
    if (c != '"' && c != '\\') fe += c;
  std::printf(
      "{\"connections\": %zu, \"errors\": %llu, \"seconds\": %.3f, \"conn_per_s\": %.1f, "
      "\"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, \"parallel\": %d, "
      "\"client_user_cpu\": %.3f, \"client_sys_cpu\": %.3f, \"first_error\": \"%s\", "
      "\"connections_made\": %llu}\n",
      all.size(), static_cast<unsigned long long>(errors), wall,
      static_cast<double>(all.size()) / wall, pct(0.5), pct(0.99),
      all.empty() ? 0 : all.back() / 1e3, parallel, user / wall, sys / wall, fe.c_str(),
      static_cast<unsigned long long>(made));
  return all.empty() ? 1 : 0;
}

int Usage() {
  std::cerr << "usage: skiff_bench_conn serve --port P [--threads T]\n"
               "       skiff_bench_conn client --targets IP:PORT[,...] [--duration S] "
               "[--warmup S] [--parallel K] [--timeout-ms MS]\n"
               "                               [--turn-in FIFO --turn-out FIFO [--slice-ms MS]]\n";
  return 2;
}

int Main(int argc, char** argv) {
  if (argc < 2) return Usage();
  const std::string mode = argv[1];
  int port = 8080, threads = 2, parallel = 1, timeout_ms = 1000;
  double duration = 2, warmup = 0.3;
  std::vector<Target> targets;
  Turns turns;
  for (int i = 2; i < argc; i++) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return Usage();
    const std::string v = argv[++i];
    bool ok = true;
    if (a == "--port") {
      ok = absl::SimpleAtoi(v, &port);
    } else if (a == "--threads") {
      ok = absl::SimpleAtoi(v, &threads) && threads > 0;
    } else if (a == "--parallel") {
      ok = absl::SimpleAtoi(v, &parallel) && parallel > 0;
    } else if (a == "--timeout-ms") {
      ok = absl::SimpleAtoi(v, &timeout_ms) && timeout_ms > 0;
    } else if (a == "--duration") {
      ok = absl::SimpleAtod(v, &duration) && duration > 0;
    } else if (a == "--warmup") {
      ok = absl::SimpleAtod(v, &warmup) && warmup >= 0;
    } else if (a == "--turn-in") {
      turns.in = v;
    } else if (a == "--turn-out") {
      turns.out = v;
    } else if (a == "--slice-ms") {
      ok = absl::SimpleAtoi(v, &turns.slice_ms) && turns.slice_ms > 0;
    } else if (a == "--targets") {
      for (absl::string_view s : absl::StrSplit(v, ',', absl::SkipEmpty())) {
        std::vector<std::string> hp = absl::StrSplit(s, ':');
        Target t;
        t.addr.sin_family = AF_INET;
        int p = 0;
        if (hp.size() != 2 || inet_pton(AF_INET, hp[0].c_str(), &t.addr.sin_addr) != 1 ||
            !absl::SimpleAtoi(hp[1], &p)) {
          ok = false;
          break;
        }
        t.addr.sin_port = htons(static_cast<uint16_t>(p));
        targets.push_back(t);
      }
    } else {
      ok = false;
    }
    if (!ok) {
      std::cerr << "skiff_bench_conn: bad " << a << " " << v << "\n";
      return 2;
    }
  }
  if (mode == "serve") return Serve(static_cast<uint16_t>(port), threads);
  if (turns.in.empty() != turns.out.empty()) {
    std::cerr << "skiff_bench_conn: --turn-in and --turn-out go together\n";
    return 2;
  }
  if (mode == "client" && !targets.empty())
    return Client(targets, duration, warmup, parallel, timeout_ms, turns);
  return Usage();
}

}  // namespace
}  // namespace skiff::bench

int main(int argc, char** argv) { return skiff::bench::Main(argc, argv); }
