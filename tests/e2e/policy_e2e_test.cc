// NetworkPolicy end to end: three namespaces of three pods on one node, every pod serving TCP
// 80, 81 and 8080, the real agent on a manifest directory. After each scenario every ordered
// pair of different pods is probed on every port (plus a ClusterIP whose one backend is x/a),
// and the outcome is compared with the truth table agent/policy/semantics.h computes from the
// very objects the agent reads: the test parses its own manifest directory with the agent's
// parser, so the oracle and the datapath can never see different inputs.
//
// A denied connection is a silent drop, so a probe is "denied" when the SYN got no answer
// within kProbeTimeout; each source pod probes all its targets at once (non-blocking
// connects) and the nine sources run in parallel, so a round takes about one timeout.
// Self pairs are not probed: a pod reaching its own address stays on its loopback and never
// meets the datapath.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/model/object_store.h"
#include "agent/policy/semantics.h"
#include "agent/sources/manifest_parse.h"
#include "tests/e2e/manifests.h"
#include "tests/e2e/topology.h"
#include "tests/harness/privileged.h"

namespace skiff::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kProbeTimeoutMs = 400;
// The bound: a policy or label change is in force within 2 s.
constexpr auto kChangeBound = 2s;
constexpr char kVip[] = "10.96.0.10";
constexpr uint16_t kVipPort = 90;  // -> x/a:80
const std::vector<uint16_t> kPorts = {80, 81, 8080};

struct PodDef {
  std::string ns, name, ip;
  // name per port (index as kPorts). "web" is 80 on a, 81 on b and absent on c, so a named
  // port resolves differently per destination pod.
  std::vector<std::string> port_names;
  std::string id() const { return ns + "/" + name; }
};

std::vector<PodDef> PodDefs() {
  std::vector<PodDef> out;
  int base = 10;
  for (const char* ns : {"x", "y", "z"}) {
    out.push_back({ns, "a", absl::StrCat("10.244.1.", base), {"web", "p81", "alt"}});
    out.push_back({ns, "b", absl::StrCat("10.244.1.", base + 1), {"p80", "web", "alt"}});
    out.push_back({ns, "c", absl::StrCat("10.244.1.", base + 2), {"p80", "p81", "http"}});
    base += 10;
  }
  return out;
}

// One thread per pod answers every port with "<ns>/<pod>\n" and closes.
class HelloServer {
 public:
  HelloServer(const Pod& pod, const std::string& answer) : answer_(answer + "\n") {
    for (uint16_t port : kPorts) {
      int fd = InNetns(pod.netns, [&] {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || listen(fd, 256) != 0) {
          close(fd);
          return -1;
        }
        return fd;
      });
      if (fd < 0)
        status_ = absl::InternalError(absl::StrCat("listen ", answer, ":", port));
      else
        fds_.push_back(fd);
    }
    thread_ = std::thread([this] { Serve(); });
  }
  ~HelloServer() {
    stop_ = true;
    thread_.join();
    for (int fd : fds_) close(fd);
  }
  absl::Status status() const { return status_; }

 private:
  void Serve() {
    std::vector<pollfd> p;
    for (int fd : fds_) p.push_back({fd, POLLIN, 0});
    while (!stop_) {
      if (poll(p.data(), p.size(), 100) <= 0) continue;
      for (auto& e : p) {
        if (!(e.revents & POLLIN)) continue;
        int c;
        while ((c = accept4(e.fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0) {
          send(c, answer_.data(), answer_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          close(c);
        }
      }
    }
  }
  std::string answer_;
  std::vector<int> fds_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  absl::Status status_;
};

struct Target {
  int dst = -1;  // index into pods, or -1 for the ClusterIP
  uint16_t port = 0;
  auto operator<=>(const Target&) const = default;
};
struct ProbeKey {
  int src = 0;
  Target t;
  auto operator<=>(const ProbeKey&) const = default;
};
struct Outcome {
  bool allowed = false;
  std::string detail;  // who answered, or why not
};

// Connects to every target at once from inside the calling thread's netns; a target is
// allowed when its server's hello arrived before the deadline.
std::vector<Outcome> ProbeFrom(const std::vector<std::pair<std::string, uint16_t>>& targets,
                               int timeout_ms) {
  std::vector<Outcome> out(targets.size());
  std::vector<int> fds(targets.size(), -1);
  std::vector<std::string> got(targets.size());
  std::vector<bool> done(targets.size(), false);
  for (size_t i = 0; i < targets.size(); i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(targets[i].second);
    inet_pton(AF_INET, targets[i].first.c_str(), &sa.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 && errno != EINPROGRESS) {
      out[i].detail = absl::StrCat("connect: ", strerror(errno));
      done[i] = true;
    }
    fds[i] = fd;
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    std::vector<pollfd> p;
    std::vector<size_t> idx;
    for (size_t i = 0; i < fds.size(); i++) {
      if (done[i]) continue;
      p.push_back({fds[i], POLLIN, 0});
      idx.push_back(i);
    }
    int left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (p.empty() || left <= 0) break;
    if (poll(p.data(), p.size(), left) <= 0) continue;
    for (size_t k = 0; k < p.size(); k++) {
      if (!p[k].revents) continue;
      size_t i = idx[k];
      char buf[128];
      ssize_t n = recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) {
        got[i].append(buf, n);
        if (got[i].find('\n') == std::string::npos) continue;
        out[i].allowed = true;
        out[i].detail = got[i].substr(0, got[i].find('\n'));
      } else if (n < 0 && errno == EAGAIN) {
        continue;
      } else {
        out[i].detail = n == 0 ? "closed without hello" : absl::StrCat("recv: ", strerror(errno));
      }
      done[i] = true;
    }
  }
  for (size_t i = 0; i < fds.size(); i++) {
    if (!done[i]) out[i].detail = "no answer";
    linger l{1, 0};  // RST: no TIME_WAIT piling up over hundreds of probes
    setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(fds[i]);
  }
  return out;
}

std::string PodYaml(const PodDef& d, const model::Labels& labels) {
  std::string y = absl::StrCat("apiVersion: v1\nkind: Pod\nmetadata:\n  name: ", d.name,
                               "\n  namespace: ", d.ns, "\n  labels:\n");
  for (const auto& [k, v] : labels) absl::StrAppend(&y, "    ", k.str(), ": \"", v, "\"\n");
  absl::StrAppend(&y, "spec:\n  nodeName: node-1\n  containers:\n  - name: srv\n    ports:\n");
  for (size_t i = 0; i < kPorts.size(); i++)
    absl::StrAppend(&y, "    - name: ", d.port_names[i], "\n      containerPort: ", kPorts[i],
                    "\n      protocol: TCP\n");
  absl::StrAppend(&y, "status:\n  phase: Running\n  podIP: ", d.ip, "\n  podIPs:\n  - ip: ", d.ip,
                  "\n");
  return y;
}

// A NetworkPolicy document; `spec` is the YAML below "spec:", indented by two.
std::string Policy(const std::string& ns, const std::string& name, const std::string& spec) {
  return absl::StrCat("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: ",
                      name, "\n  namespace: ", ns, "\nspec:\n", spec);
}

class PolicyE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_PRIVILEGED();
    auto node = Node::Create();
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    defs_ = PodDefs();
    for (const auto& d : defs_) {
      auto pod = node_->AddPod(d.id(), d.ip);
      ASSERT_TRUE(pod.ok()) << pod.status();
      pods_.push_back(*pod);
      servers_.push_back(std::make_unique<HelloServer>(*pod, d.id()));
      ASSERT_TRUE(servers_.back()->status().ok()) << servers_.back()->status();
      labels_[d.id()] = {{"pod", d.name}};
    }
    dir_ = fs::temp_directory_path() / ("skiff-pol-e2e-" + node_->prefix());
    fs::create_directories(dir_);
    bpffs_root_ = "/sys/fs/bpf/skiff-pol-e2e-" + node_->prefix();
    log_ = (dir_.parent_path() / ("skiff-pol-e2e-" + node_->prefix() + ".log")).string();

    std::string nss;
    for (const char* ns : {"x", "y", "z"})
      absl::StrAppend(&nss, "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ", ns,
                      "\n  labels:\n    ns: ", ns, "\n");
    Write("namespaces.yaml", nss);
    WritePods();
    Write("svc.yaml",
          ServiceYaml("web", kVip, {{"http", kVipPort, "80", "TCP"}}, false, "x") + "---\n" +
              EndpointSliceYaml("web-1", "web", {{defs_[0].ip}}, {{"http", 80, "TCP"}}, "x"));
  }

  void TearDown() override {
    if (agent_) {
      agent_->Kill(SIGKILL);
      agent_->Wait();
    }
    if (node_) {
      Sh(absl::StrCat("nsenter --net=/run/netns/", node_->netns(), " ", SKIFF_AGENT_PATH,
                      " --cleanup --bpffs-root ", bpffs_root_, " >>", log_, " 2>&1"))
          .IgnoreError();
    }
    if (HasFailure() && !log_.empty()) {
      std::ifstream f(log_);
      std::stringstream ss;
      ss << f.rdbuf();
      std::string s = ss.str();
      // The tail is where the failing scenario's reconcile lines are.
      if (s.size() > 20000) s = "...\n" + s.substr(s.size() - 20000);
      std::cerr << "---- agent log ----\n" << s << "-------------------\n";
    }
    servers_.clear();
    node_.reset();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
    if (!log_.empty()) fs::remove(log_, ec);
    fs::remove_all(bpffs_root_, ec);
  }

  void Write(const std::string& file, const std::string& yaml) {
    WriteFileAtomically((dir_ / file).string(), yaml);
  }
  void WritePods() {
    std::string y;
    for (const auto& d : defs_) absl::StrAppend(&y, "---\n", PodYaml(d, labels_[d.id()]));
    Write("pods.yaml", y);
  }
  void WritePolicies(const std::vector<std::string>& docs) {
    if (docs.empty()) {
      std::error_code ec;
      fs::remove(dir_ / "policies.yaml", ec);
    } else {
      Write("policies.yaml", "---\n" + absl::StrJoin(docs, "---\n"));
    }
  }

  void StartAgent() {
    agent_ = std::make_unique<AgentProcess>(std::vector<std::string>{
        SKIFF_AGENT_PATH, "--manifests", dir_.string(), "--endpoint-ifaces", node_->IfaceGlob(),
        "--bpffs-root", bpffs_root_, "--node-name", "node-1", "--log-level", "debug"});
    ASSERT_TRUE(agent_->Start(node_->netns(), log_).ok());
  }

  // The manifest directory as the agent reads it, with the agent's own parser.
  model::ObjectSnapshot ReadDirectory() {
    model::ObjectSnapshot snap;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (!sources::IsManifestFileName(e.path().filename().string())) continue;
      std::ifstream f(e.path());
      std::stringstream ss;
      ss << f.rdbuf();
      auto res = sources::ParseManifestFile(e.path().string(), ss.str());
      for (const auto& err : res.errors) ADD_FAILURE() << "manifest: " << err.ToString();
      for (auto& obj : res.objects) {
        model::ObjectKey key = model::KeyOf(obj);
        std::visit(
            [&](auto& o) {
              using T = std::decay_t<decltype(o)>;
              auto p = std::make_shared<const T>(o);
              if constexpr (std::is_same_v<T, model::Namespace>)
                snap.namespaces[key.id] = p;
              else if constexpr (std::is_same_v<T, model::Pod>)
                snap.pods[key.id] = p;
              else if constexpr (std::is_same_v<T, model::Service>)
                snap.services[key.id] = p;
              else if constexpr (std::is_same_v<T, model::EndpointSlice>)
                snap.endpoint_slices[key.id] = p;
              else if constexpr (std::is_same_v<T, model::NetworkPolicy>)
                snap.network_policies[key.id] = p;
              else if constexpr (std::is_same_v<T, model::Node>)
                snap.nodes[key.id] = p;
            },
            obj);
      }
    }
    snap.synced = true;
    return snap;
  }

  std::vector<ProbeKey> Probes() const {
    std::vector<ProbeKey> out;
    for (int s = 0; s < static_cast<int>(defs_.size()); s++) {
      for (int d = 0; d < static_cast<int>(defs_.size()); d++)
        if (s != d)
          for (uint16_t port : kPorts) out.push_back({s, {d, port}});
      // Hairpin (the backend through its own ClusterIP) is a documented limit; not probed.
      if (s != 0) out.push_back({s, {-1, kVipPort}});
    }
    return out;
  }

  struct Expectation {
    bool allowed = false;
    std::string why;
  };
  std::map<ProbeKey, Expectation> TruthTable() {
    model::ObjectSnapshot snap = ReadDirectory();
    policy::Semantics sem(&snap);
    std::map<ProbeKey, Expectation> out;
    auto ref = [&](int i) {
      return policy::PeerRef{model::NamespacedName{defs_[i].ns, defs_[i].name},
                             *model::IpAddr::Parse(defs_[i].ip)};
    };
    for (const auto& k : Probes()) {
      // Policy sees the backend: the ClusterIP's only backend is x/a:80.
      int dst = k.t.dst < 0 ? 0 : k.t.dst;
      uint16_t port = k.t.dst < 0 ? 80 : k.t.port;
      policy::ConnectionVerdict v = sem.Connection(ref(k.src), ref(dst), 6, port);
      out[k] = {v.allowed, v.Explain()};
    }
    return out;
  }

  std::map<ProbeKey, Outcome> ProbeAll() {
    std::vector<ProbeKey> keys = Probes();
    std::map<int, std::vector<size_t>> by_src;
    for (size_t i = 0; i < keys.size(); i++) by_src[keys[i].src].push_back(i);
    std::vector<Outcome> outcomes(keys.size());
    std::vector<std::thread> threads;
    for (auto& [src, idx] : by_src) {
      threads.emplace_back([&, src = src, idx = idx] {
        if (!EnterNetns(pods_[src].netns)) {
          for (size_t i : idx) outcomes[i].detail = "setns failed";
          return;
        }
        std::vector<std::pair<std::string, uint16_t>> targets;
        for (size_t i : idx) {
          const Target& t = keys[i].t;
          targets.push_back({t.dst < 0 ? kVip : defs_[t.dst].ip, t.port});
        }
        std::vector<Outcome> r = ProbeFrom(targets, kProbeTimeoutMs);
        for (size_t j = 0; j < idx.size(); j++) outcomes[idx[j]] = r[j];
      });
    }
    for (auto& t : threads) t.join();
    std::map<ProbeKey, Outcome> out;
    for (size_t i = 0; i < keys.size(); i++) out[keys[i]] = outcomes[i];
    return out;
  }

  std::string Name(const ProbeKey& k) const {
    std::string to = k.t.dst < 0 ? absl::StrCat("svc ", kVip, ":", k.t.port, " (x/a:80)")
                                 : absl::StrCat(defs_[k.t.dst].id(), ":", k.t.port);
    return absl::StrCat(defs_[k.src].id(), " -> ", to);
  }

  // Probes until the datapath matches the truth table twice in a row (a transient match
  // while the reconciler is mid-way is not enough), giving up when no round that started
  // within `bound` of the change matched. Returns the mismatch table of the last round.
  void Expect(const std::string& scenario, Clock::time_point changed, Clock::duration bound) {
    auto truth = TruthTable();
    int allowed = 0;
    for (auto& [k, e] : truth) allowed += e.allowed;
    std::string mismatches;
    bool matched_once = false;
    int rounds = 0;
    while (true) {
      auto started = Clock::now();
      auto got = ProbeAll();
      rounds++;
      mismatches.clear();
      int n = 0;
      for (auto& [k, e] : truth) {
        const Outcome& o = got[k];
        // The ClusterIP must also reach the right backend.
        bool ok = o.allowed == e.allowed && (!o.allowed || k.t.dst >= 0 || o.detail == "x/a");
        if (ok) continue;
        n++;
        absl::StrAppend(&mismatches, "  ", Name(k), "  expected ", e.allowed ? "ALLOW" : "DENY ",
                        "  got ", o.allowed ? "ALLOW" : "DENY ", " (", o.detail, ")\n      ", e.why,
                        "\n");
      }
      if (n == 0) {
        if (matched_once) break;
        matched_once = true;
        continue;
      }
      matched_once = false;
      if (started - changed > bound) {
        ADD_FAILURE() << "scenario \"" << scenario << "\": " << n << " of " << truth.size()
                      << " probes differ from the truth table after "
                      << std::chrono::duration<double>(Clock::now() - changed).count() << " s:\n"
                      << mismatches;
        return;
      }
    }
    std::printf("%-44s %3d/%zu allowed, matched after %.2f s (%d rounds)\n", scenario.c_str(),
                allowed, truth.size(),
                std::chrono::duration<double>(Clock::now() - changed).count(), rounds);
  }

  void Scenario(const std::string& name, const std::vector<std::string>& policies,
                Clock::duration bound = kChangeBound) {
    auto t0 = Clock::now();
    WritePolicies(policies);
    Expect(name, t0, bound);
  }
  void Relabel(const std::string& name, const std::string& pod, model::Labels labels) {
    auto t0 = Clock::now();
    labels_[pod] = std::move(labels);
    WritePods();
    Expect(name, t0, kChangeBound);
  }

  std::unique_ptr<Node> node_;
  std::vector<PodDef> defs_;
  std::vector<Pod> pods_;
  std::map<std::string, model::Labels> labels_;
  std::vector<std::unique_ptr<HelloServer>> servers_;
  std::unique_ptr<AgentProcess> agent_;
  fs::path dir_;
  std::string bpffs_root_;
  std::string log_;
};

const char kDenyIngressX[] = "  podSelector: {}\n  policyTypes: [Ingress]\n";

TEST_F(PolicyE2E, EveryPairAndPortMatchesTheTruthTable) {
  StartAgent();
  // Startup (program load, first sync) is not a policy change: a generous bound.
  Expect("no policy: everything allowed", Clock::now(), 20s);

  Scenario("default deny ingress in x", {Policy("x", "deny-in", kDenyIngressX)});
  Scenario("default deny egress in y",
           {Policy("y", "deny-out", "  podSelector: {}\n  policyTypes: [Egress]\n")});
  Scenario("podSelector alone (x/a from x pod=b)",
           {Policy("x", "a-from-b",
                   "  podSelector: {matchLabels: {pod: a}}\n"
                   "  ingress:\n  - from:\n    - podSelector: {matchLabels: {pod: b}}\n")});
  Scenario("namespaceSelector alone (x/a from ns y)",
           {Policy("x", "a-from-y",
                   "  podSelector: {matchLabels: {pod: a}}\n"
                   "  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n")});
  Scenario("both in one peer (AND: ns y and pod=b)",
           {Policy("x", "a-and",
                   "  podSelector: {matchLabels: {pod: a}}\n"
                   "  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n"
                   "      podSelector: {matchLabels: {pod: b}}\n")});
  Scenario("separate peers (OR: ns y or pod=b)",
           {Policy("x", "a-or",
                   "  podSelector: {matchLabels: {pod: a}}\n"
                   "  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n"
                   "    - podSelector: {matchLabels: {pod: b}}\n")});
  Scenario("matchExpressions (x from pod NotIn [c], ns In [y,z])",
           {Policy("x", "expr",
                   "  podSelector: {}\n"
                   "  ingress:\n  - from:\n    - namespaceSelector:\n        matchExpressions:\n"
                   "        - {key: ns, operator: In, values: [y, z]}\n"
                   "      podSelector:\n        matchExpressions:\n"
                   "        - {key: pod, operator: NotIn, values: [c]}\n")});
  Scenario(
      "ipBlock with except (ingress z, egress y/c)",
      {Policy(
           "z", "cidr-in",
           "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n        cidr: 10.244.1.0/24\n"
           "        except: [10.244.1.20/30]\n"),
       Policy("y", "cidr-out",
              "  podSelector: {matchLabels: {pod: c}}\n  policyTypes: [Egress]\n"
              "  egress:\n  - to:\n    - ipBlock:\n        cidr: 10.244.1.0/26\n"
              "        except: [10.244.1.30/31, 10.244.1.12/32]\n")});
  Scenario("named ports (ingress x port web, egress z/b port web)",
           {Policy("x", "named-in", "  podSelector: {}\n  ingress:\n  - ports:\n    - port: web\n"),
            Policy("z", "named-out",
                   "  podSelector: {matchLabels: {pod: b}}\n  policyTypes: [Egress]\n"
                   "  egress:\n  - to:\n    - namespaceSelector: {}\n"
                   "    ports:\n    - port: web\n      protocol: TCP\n")});
  Scenario(
      "endPort (ingress y 80-81, egress x/c 8000-8100)",
      {Policy("y", "range-in",
              "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 80\n      endPort: 81\n"),
       Policy("x", "range-out",
              "  podSelector: {matchLabels: {pod: c}}\n  policyTypes: [Egress]\n"
              "  egress:\n  - ports:\n    - port: 8000\n      endPort: 8100\n")});
  Scenario("several policies at once",
           {Policy("x", "deny-in", kDenyIngressX),
            Policy("x", "a-80-from-y",
                   "  podSelector: {matchLabels: {pod: a}}\n"
                   "  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n"
                   "    ports:\n    - port: 80\n"),
            Policy("x", "b-from-z-c",
                   "  podSelector: {matchLabels: {pod: b}}\n"
                   "  ingress:\n  - from:\n    - ipBlock: {cidr: 10.244.1.32/32}\n"),
            Policy("z", "to-x",
                   "  podSelector: {}\n  policyTypes: [Egress]\n"
                   "  egress:\n  - to:\n    - namespaceSelector: {matchLabels: {ns: x}}\n"
                   "    ports:\n    - port: 80\n    - port: 8080\n"),
            Policy("y", "deny-in", kDenyIngressX)});
  Scenario("policy removal: all allowed again", {});

  // Label changes: x/a admits pods labelled role=client from any namespace.
  Scenario("x/a admits role=client",
           {Policy("x", "clients",
                   "  podSelector: {matchLabels: {pod: a}}\n"
                   "  ingress:\n  - from:\n    - namespaceSelector: {}\n"
                   "      podSelector: {matchLabels: {role: client}}\n")});
  Relabel("label added: y/b role=client", "y/b", {{"pod", "b"}, {"role", "client"}});
  Relabel("label added: x/a pod=a2 (no longer selected)", "x/a", {{"pod", "a2"}});
  Relabel("label restored: x/a pod=a", "x/a", {{"pod", "a"}});
  Relabel("label removed: y/b", "y/b", {{"pod", "b"}});
  Scenario("policy removal: all allowed again", {});
}

}  // namespace
}  // namespace skiff::e2e
