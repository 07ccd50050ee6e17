#include "agent/agent.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/api/datapath_core.h"
#include "agent/api/policy_state.h"
#include "agent/api/server.h"
#include "agent/loader/attacher.h"
#include "agent/loader/bpffs.h"
#include "agent/loader/datapath.h"
#include "agent/loader/devices.h"
#include "agent/loader/libbpf_log.h"
#include "agent/loader/links.h"
#include "agent/loader/socket_lb.h"
#include "agent/loader/tc.h"
#include "agent/model/compute.h"
#include "agent/model/desired_cache.h"
#include "agent/model/object_store.h"
#include "agent/observe/ct_gc.h"
#include "agent/observe/flow_reader.h"
#include "agent/observe/server.h"
#include "agent/observe/service_health.h"
#include "agent/policy/compiler.h"
#include "agent/policy/inputs.h"
#include "agent/policy/reconciler.h"
#include "agent/reconcile/lb_reconciler.h"
#include "agent/sources/kubernetes/kubernetes_source.h"
#include "agent/sources/manifest_source.h"

namespace skiff {
namespace {

// Blocks SIGTERM/SIGINT for the process and returns a signalfd that reports them.
absl::StatusOr<int> SignalFd() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0)
    return absl::InternalError("blocking SIGTERM/SIGINT failed");
  int fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) return absl::InternalError("signalfd failed");
  return fd;
}

loader::DatapathOptions DatapathOptionsFrom(const AgentConfig& cfg) {
  loader::DatapathOptions o;
  o.bpffs_root = cfg.bpffs_root;
  o.ct_max = cfg.ct_max;
  o.lb_services_max = cfg.lb_map_max;
  o.lb_backends_max = cfg.lb_backends_max;
  o.lb_revnat_max = cfg.lb_revnat_max;
  o.lb_affinity_max = cfg.lb_affinity_max;
  o.lb_src_range_max = cfg.lb_source_ranges_max;
  o.lb_maglev_max = cfg.lb_maglev_max;
  o.maglev_table_size = cfg.maglev_table_size;
  o.maglev_hash_seed = cfg.maglev_hash_seed;
  o.ipcache_max = cfg.ipcache_max;
  o.policy_map_max = cfg.policy_map_max;
  o.policy_ct_max = cfg.policy_ct_max;
  o.events_ring_size = cfg.events_ring_size;
  o.drop_events_per_sec = cfg.drop_events_per_sec;
  o.host_routing = cfg.host_routing == "bpf";
  return o;
}

// This node's addresses from its Node object (InternalIP, ExternalIP): the policy HOST
// identity, so pod traffic to the node itself (kubelet, node-local DNS) is never denied.
std::vector<model::IpAddr> NodeAddresses(const model::ObjectSnapshot& snap,
                                         const std::string& node) {
  std::vector<model::IpAddr> out;
  auto it = snap.nodes.find(model::NamespacedName{"", node});
  if (it == snap.nodes.end()) return out;
  for (const auto& a : it->second->addresses)
    if (a.type == "InternalIP" || a.type == "ExternalIP")
      if (auto ip = model::IpAddr::Parse(a.address)) out.push_back(*ip);
  return out;
}

// Whether a changed Service asks for a health check node port now: only then can a pass that
// had no health check before have one after it.
bool AnyServiceWithHealthCheck(const std::vector<model::ObjectKey>& keys,
                               const model::ObjectSnapshot& snap) {
  for (const model::ObjectKey& k : keys) {
    if (k.kind != model::ObjectKind::kService) continue;
    const model::Service* svc = snap.FindService(k.id);
    if (svc != nullptr && svc->spec.health_check_node_port != 0) return true;
  }
  return false;
}

// Re-applies the desired state whenever the store changes, and retries after errors.
class ReconcileLoop {
 public:
  ReconcileLoop(model::ObjectStore* store, reconcile::LbReconciler* rec, std::string node)
      : store_(store), rec_(rec), node_(std::move(node)) {}
  void set_policy(policy::PolicyReconciler* pol) { pol_ = pol; }
  void set_observer(observe::ObserveBoard* board) { board_ = board; }
  // The --devices addresses: NodePort frontends (compute_nodeport.h).
  void set_node_addresses(std::vector<model::IpAddr> a) { node_addrs_ = std::move(a); }
  void set_service_health(observe::ServiceHealthServers* h) { health_ = h; }

  // Returns whether it reconciled (and so has a new state to publish to the API).
  bool MaybeRun() {
    auto now = std::chrono::steady_clock::now();
    uint64_t gen = store_->generation();
    bool retry = failing_ && now - last_run_ > std::chrono::seconds(5);
    if (gen == applied_generation_ && !retry) return false;
    last_run_ = now;
    // Incremental: only what changed since the last run is recomputed and written (a failing
    // state retries everything).
    std::optional<std::vector<model::ObjectKey>> changed;
    model::ObjectSnapshot snap = store_->Snapshot(failing_ ? ~0ull : applied_generation_, &changed);
    if (board_) board_->QueuedUpdate(snap.changed_at);
    std::vector<std::string> warnings;
    model::DesiredStateCache::Update update =
        desired_cache_.Apply(snap, changed, node_, node_addrs_, &warnings);
    const model::DesiredState& desired = desired_cache_.state();
    for (const auto& w : warnings) spdlog::warn("{}", w);
    // Health checks read every Service (O(N)). With none in force they change only when a
    // changed Service has a health check node port; with some, on any change (a slice's
    // local endpoints, a Service losing its port). So loading Services without one (nearly
    // all: only externalTrafficPolicy Local NodePort/LoadBalancer Services have it) is not
    // O(N) per pass.
    if (health_ && (!changed || health_checks_ > 0 || AnyServiceWithHealthCheck(*changed, snap))) {
      std::vector<model::HealthCheck> checks = model::ComputeHealthChecks(snap, node_);
      health_checks_ = checks.size();
      health_->Update(checks);
    }
    // Policy first: a pod that just became a backend is already protected by its ingress
    // policy when the service starts sending it traffic.
    std::vector<std::string> policy_errors;
    // Skipped when no pod, namespace, policy or node changed (policy/inputs.h).
    if (pol_ && (!changed || policy::InputsChanged(*changed))) {
      policy::Compiled compiled = policy::Compile(snap, {node_, NodeAddresses(snap, node_)});
      for (const auto& w : compiled.warnings) spdlog::warn("policy: {}", w);
      policy::PolicyApplyResult pr = pol_->Apply(compiled, snap.synced);
      if (pr.policy_written || pr.policy_deleted || pr.ipcache_written || pr.ipcache_deleted)
        spdlog::info(
            "policy generation {}: {} endpoints, {} peer classes; allow entries {} written, {} "
            "deleted; ipcache {} written, {} deleted",
            snap.generation, compiled.endpoints.size(), compiled.classes.size(), pr.policy_written,
            pr.policy_deleted, pr.ipcache_written, pr.ipcache_deleted);
      policy_errors = std::move(pr.errors);
      policy_state_ = api::MakePolicyState(std::move(compiled), *pol_, snap.generation);
    }
    reconcile::ApplyResult res = update.full
                                     ? rec_->Apply(desired, snap.synced)
                                     : rec_->ApplyChanges(desired, snap.synced, update.changed);
    // The last map write of this pass: the latency from the store's change to here is logged
    // (the benchmark's "store → maps" figure).
    const auto written = std::chrono::steady_clock::now();
    for (auto& e : policy_errors) res.errors.push_back("policy: " + e);
    applied_generation_ = snap.generation;
    if (res.frontends_written || res.frontends_deleted || res.backends_written ||
        res.backends_deleted || !res.ok())
      spdlog::info(
          "reconciled generation {} (synced={}): {} frontends, {} written, {} deleted; "
          "backends {} written, {} deleted; {:.3f} ms after the store's change",
          snap.generation, snap.synced, desired.frontends.size(), res.frontends_written,
          res.frontends_deleted, res.backends_written, res.backends_deleted,
          std::chrono::duration<double, std::milli>(written - snap.changed_at).count());
    for (const auto& e : res.errors) spdlog::error("reconcile: {}", e);
    failing_ = !res.ok();
    if (board_) {
      auto done = std::chrono::steady_clock::now();
      board_->Reconciled(res.ok(), snap.synced, done - now, done - snap.changed_at);
    }
    if (snap.synced && !synced_logged_) {
      spdlog::info("all sources synced; deletions enabled");
      synced_logged_ = true;
    }
    last_snapshot_ = std::move(snap);
    last_errors_ = std::move(res.errors);
    return true;
  }

  // What the last run saw and did, for the API's snapshot (main thread only).
  const model::ObjectSnapshot& last_snapshot() const { return last_snapshot_; }
  const model::DesiredState& last_desired() const { return desired_cache_.state(); }
  const std::vector<std::string>& last_errors() const { return last_errors_; }
  std::shared_ptr<const api::PolicyState> policy_state() const { return policy_state_; }

 private:
  model::ObjectStore* store_;
  std::vector<model::IpAddr> node_addrs_;
  observe::ServiceHealthServers* health_ = nullptr;
  reconcile::LbReconciler* rec_;
  std::string node_;
  policy::PolicyReconciler* pol_ = nullptr;
  observe::ObserveBoard* board_ = nullptr;  // metrics and health, when serving
  uint64_t applied_generation_ = ~0ull;
  bool failing_ = false;
  bool synced_logged_ = false;
  std::chrono::steady_clock::time_point last_run_{};
  model::ObjectSnapshot last_snapshot_;
  model::DesiredStateCache desired_cache_;  // the last desired state, kept up to date
  std::vector<std::string> last_errors_;
  std::shared_ptr<const api::PolicyState> policy_state_;  // for `agentctl policy`
  size_t health_checks_ = 0;                              // of the last computation
};

// The API reads the main loop's state only through immutable snapshots published here.
void PublishApiState(api::StateBoard& board, const ReconcileLoop& loop,
                     const model::ObjectStore& store, const loader::Attacher& attacher,
                     const loader::NodePortDatapath* nodeport, const loader::SocketLb* sock_lb,
                     bool host_routing) {
  auto s = std::make_shared<api::ApiState>();
  s->objects = loop.last_snapshot();
  s->sources = store.Sources();
  s->desired = loop.last_desired();
  s->reconcile_errors = loop.last_errors();
  s->policy = loop.policy_state();
  for (const auto& a : attacher.attachments())
    s->programs.push_back({a.iface, a.ifindex, loader::TcDirectionName(a.dir),
                           host_routing && a.program == "from_container"
                               ? "from_container (host routing)"
                               : a.program});
  // The node devices: tc both ways, and XDP when it runs (else why not).
  if (nodeport)
    for (const auto& x : nodeport->xdp()) {
      s->programs.push_back({x.device, x.ifindex, "tc-ingress", "from_netdev"});
      s->programs.push_back({x.device, x.ifindex, "tc-egress", "to_netdev"});
      s->programs.push_back(
          {x.device, x.ifindex, x.attached ? "xdp-native" : "xdp",
           x.attached ? loader::kSkiffXdpProgram : absl::StrCat("none (", x.reason, ")")});
    }
  // Socket LB: one row per cgroup hook, or why there is none (as for XDP).
  if (sock_lb)
    for (const auto& h : sock_lb->hooks())
      s->programs.push_back(
          {sock_lb->cgroup_root(), 0, h.hook,
           sock_lb->pods() ? absl::StrCat(h.program, " (host+pods)") : h.program});
  else
    s->programs.push_back({"-", 0, "cgroup", "none (--socket-lb=disabled)"});
  board.Publish(std::move(s));
}

// Readiness needs every interface matching --endpoint-ifaces attached; the attacher only
// knows its successes, so compare against a fresh link list (only on link changes).
void PublishAttachments(observe::ObserveBoard& board, const loader::IfaceMatcher& matcher,
                        const loader::Attacher& attacher) {
  std::set<int> attached;
  for (const auto& a : attacher.attachments()) attached.insert(a.ifindex);
  std::vector<std::string> missing;
  if (auto links = loader::ListLinks(); links.ok())
    for (const auto& l : *links)
      if (matcher.Matches(l.name) && !attached.count(l.ifindex)) missing.push_back(l.name);
  board.SetAttachments(static_cast<int>(attached.size()), std::move(missing));
}

}  // namespace

absl::Status RunAgent(const AgentConfig& cfg) {
  loader::InstallLibbpfLogger();
  spdlog::info("skiff-agent {} starting: node {}, manifests {}, endpoint ifaces {}, bpffs {}",
               SKIFF_VERSION, cfg.node_name, cfg.manifests, cfg.endpoint_ifaces, cfg.bpffs_root);
  auto sigfd = SignalFd();
  if (!sigfd.ok()) return sigfd.status();

  if (auto st = loader::EnsureBpffs(cfg.bpffs_root); !st.ok()) return st;
  auto dp = loader::Datapath::Load(DatapathOptionsFrom(cfg));
  if (!dp.ok()) return dp.status();
  for (const auto& m : (*dp)->migrated()) spdlog::warn("migrated pinned map {}", m);

  reconcile::LbOptions lb_opts;
  lb_opts.default_maglev = cfg.lb_algorithm == "maglev";
  lb_opts.maglev_table_size = cfg.maglev_table_size;
  lb_opts.maglev_seed = cfg.maglev_hash_seed;
  reconcile::LbReconciler rec((*dp)->tables(), lb_opts);
  if (auto st = rec.Restore(); !st.ok())
    return absl::Status(st.code(), absl::StrCat("reading pinned maps: ", st.message()));
  spdlog::info("restored {} frontends and {} backends from pinned maps", rec.frontend_count(),
               rec.backend_count());

  policy::PolicyReconciler pol((*dp)->policy_tables());
  if (auto st = pol.Restore(); !st.ok())
    return absl::Status(st.code(), absl::StrCat("reading pinned policy maps: ", st.message()));

  model::ObjectStore store;
  // One source feeds the store: the manifest directory, or the Kubernetes API (which syncs in
  // the background; the reconciler deletes nothing until every list completed).
  std::unique_ptr<sources::ManifestSource> manifests;
  std::unique_ptr<sources::k8s::KubernetesSource> kubernetes;
  if (cfg.use_kubernetes) {
    auto cluster = sources::k8s::ResolveClusterConfig(
        cfg.kubeconfig, cfg.k8s_api_server, sources::k8s::InClusterEnvironment::FromProcess());
    if (!cluster.ok()) return cluster.status();
    sources::k8s::KubernetesSourceOptions k8s_options;
    k8s_options.cluster = *std::move(cluster);
    if (cfg.k8s_node_pods_only) k8s_options.pods_node_name = cfg.node_name;
    kubernetes = std::make_unique<sources::k8s::KubernetesSource>(std::move(k8s_options), &store);
    if (auto st = kubernetes->Start(); !st.ok()) return st;
  } else {
    manifests = std::make_unique<sources::ManifestSource>(cfg.manifests, &store);
    if (auto st = manifests->Start(); !st.ok()) return st;
  }

  loader::Attacher attacher(loader::IfaceMatcher(cfg.endpoint_ifaces), (*dp)->from_container_fd(),
                            (*dp)->to_container_fd(), (*dp)->endpoint_ifaces());
  auto watcher = loader::LinkWatcher::Open();
  if (!watcher.ok()) return watcher.status();
  auto links = loader::ListLinks();
  if (!links.ok()) return links.status();
  attacher.Sync(*links);

  observe::ServiceHealthServers service_health;  // healthCheckNodePorts
  ReconcileLoop loop(&store, &rec, cfg.node_name);
  loop.set_service_health(&service_health);
  // North-south services on the node devices (docs/north-south.md). Without --devices and
  // without a default route there is no device: NodePorts are not served, the rest runs.
  std::unique_ptr<loader::NodePortDatapath> nodeport;
  if (auto devices = loader::ResolveDevices(cfg.devices); !devices.ok()) {
    if (!cfg.devices.empty()) return devices.status();
    spdlog::warn("north-south services disabled: {}", devices.status().ToString());
  } else {
    auto ports = loader::ParsePortRange(cfg.nat_port_range);
    if (!ports.ok()) return ports.status();
    loader::NodePortOptions np_opts{cfg.bpffs_root, cfg.nat_max, ports->first, ports->second};
    auto np = loader::NodePortDatapath::Load(np_opts, (*dp)->skel());
    if (!np.ok()) return np.status();
    nodeport = std::move(*np);
    auto xdp = loader::ParseXdpMode(cfg.xdp);
    if (!xdp.ok()) return xdp.status();
    if (auto st = nodeport->Attach(*devices, *xdp); !st.ok()) return st;
    loop.set_node_addresses(loader::DeviceAddresses(*devices));
    attacher.SetAcceptLocal(true);
  }
  loop.set_policy(&pol);

  // Socket-level LB for the node's own sockets (docs/socket-lb.md); disabled detaches links a
  // previous run pinned.
  std::unique_ptr<loader::SocketLb> sock_lb;
  auto sock_lb_on = loader::ParseSocketLb(cfg.socket_lb);
  if (!sock_lb_on.ok()) return sock_lb_on.status();
  auto sock_lb_pods = loader::ParseSocketLbScope(cfg.socket_lb_scope);
  if (!sock_lb_pods.ok()) return sock_lb_pods.status();
  if (*sock_lb_on) {
    std::string cgroup_root = cfg.cgroup_root;
    if (cgroup_root.empty()) {
      auto def = loader::DefaultCgroupRoot();
      if (!def.ok()) return def.status();
      cgroup_root = *def;
    }
    auto cookie = loader::OwnNetnsCookie();
    if (!cookie.ok()) return cookie.status();
    auto lb = loader::SocketLb::Load(cfg.bpffs_root, (*dp)->skel(), *cookie, *sock_lb_pods);
    if (!lb.ok()) return lb.status();
    if (auto st = (*lb)->Attach(cgroup_root); !st.ok()) return st;
    spdlog::info("socket LB enabled on cgroup {} for network namespace cookie {}{}", cgroup_root,
                 *cookie, *sock_lb_pods ? " and pods (--socket-lb-scope=all)" : "");
    sock_lb = std::move(*lb);
  } else {
    auto n = loader::DetachSocketLb(cfg.bpffs_root);
    if (!n.ok()) return n.status();
    spdlog::info("socket LB disabled (--socket-lb=disabled){}",
                 *n ? absl::StrCat("; detached ", *n, " links of an earlier run") : "");
  }

  // Metrics and health endpoints; a listener that cannot bind is logged, not fatal: the
  // datapath matters more than its metrics (and the chart's probes will report it).
  observe::ObserveBoard board_obs;
  loop.set_observer(&board_obs);
  board_obs.SetSources(store.Sources());
  const loader::IfaceMatcher obs_matcher(cfg.endpoint_ifaces);
  PublishAttachments(board_obs, obs_matcher, attacher);
  observe::ServerOptions obs_opts;
  obs_opts.metrics_listen = cfg.metrics_listen;
  obs_opts.healthz_listen = cfg.healthz_listen;
  obs_opts.bpffs_root = cfg.bpffs_root;
  obs_opts.build = {SKIFF_VERSION, __VERSION__};
  auto obs_server = observe::ObserveServer::Start(obs_opts, &board_obs);
  if (!obs_server.ok())
    spdlog::error("metrics/health endpoints disabled: {}", obs_server.status().ToString());
  else if (!cfg.metrics_listen.empty() || !cfg.healthz_listen.empty())
    spdlog::info("metrics on {} (port {}), node health check on {} (port {})", cfg.metrics_listen,
                 (*obs_server)->metrics_port(), cfg.healthz_listen, (*obs_server)->healthz_port());

  // Conntrack GC on its own thread (agent/observe/ct_gc.h); declared after `dp`, `nodeport`
  // and `board_obs`, so it stops before any of them goes.
  std::unique_ptr<observe::CtGc> ct_gc;
  if (cfg.ct_gc_interval > 0) {
    lxc_bpf* skel = (*dp)->skel();
    auto targets = observe::DatapathGcTargets(
        skel->maps.SKIFF_MAP_CT4, skel->maps.SKIFF_MAP_POL_CT4, skel->maps.SKIFF_MAP_HOST_ROUTE4,
        nodeport ? nodeport->skel()->maps.SKIFF_MAP_NAT4 : nullptr);
    if (!targets.ok()) return targets.status();
    ct_gc = observe::CtGc::Start(*std::move(targets), std::chrono::seconds(cfg.ct_gc_interval),
                                 &board_obs);
    spdlog::info("conntrack GC every {} s", cfg.ct_gc_interval);
  } else {
    spdlog::info("conntrack GC disabled (--ct-gc-interval 0)");
  }

  // The API starts once the datapath is loaded; it reads pinned maps directly and the main
  // loop's state through `board`. Declared after `dp`, so it stops before the maps close.
  api::StateBoard board;
  PublishApiState(board, loop, store, attacher, nodeport.get(), sock_lb.get(),
                  cfg.host_routing == "bpf");
  auto core = api::DatapathCore::Create(dp->get(), &board, cfg.node_name);
  if (!core.ok()) return core.status();
  // Flow events (docs/flows.md): read on their own thread, enriched from `board`.
  auto flows = observe::FlowObserver::Start((*dp)->events_fd(), &board, cfg.flow_buffer_size);
  if (!flows.ok()) return flows.status();
  api::ServerOptions api_opts = ApiServerOptions(cfg);
  api_opts.flows = (*flows)->store();
  auto api_server = api::ApiServer::Start(api_opts, core->get());
  if (!api_server.ok()) return api_server.status();
  spdlog::info("API serving on unix:{}{}", cfg.api_socket,
               cfg.api_listen.empty() ? "" : absl::StrCat(" and ", cfg.api_listen));

  spdlog::info("running");
  bool links_changed = false;
  while (true) {
    if (loop.MaybeRun() || links_changed)
      PublishApiState(board, loop, store, attacher, nodeport.get(), sock_lb.get(),
                      cfg.host_routing == "bpf");
    board_obs.SetSources(store.Sources());
    if (links_changed) PublishAttachments(board_obs, obs_matcher, attacher);
    links_changed = false;
    // The store's eventfd wakes the loop on a change (poll ignores it if it is -1).
    pollfd fds[3] = {
        {*sigfd, POLLIN, 0}, {watcher->fd(), POLLIN, 0}, {store.change_fd(), POLLIN, 0}};
    int n = poll(fds, 3, 100);
    if (n > 0 && (fds[2].revents & POLLIN)) store.AckChange();
    if (n < 0 && errno != EINTR) return absl::InternalError("poll failed");
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      if (read(*sigfd, &si, sizeof(si)) == sizeof(si)) {
        spdlog::info("received {}; exiting, the datapath stays attached and serving",
                     si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
      }
    }
    if (fds[1].revents & POLLIN) {
      bool overflow = false;
      auto events = watcher->ReadEvents(&overflow);
      if (!events.ok()) {
        spdlog::warn("link events: {}", events.status().ToString());
        continue;
      }
      for (const auto& ev : *events) attacher.OnEvent(ev);
      if (overflow) {
        spdlog::warn("link events were lost; re-listing interfaces");
        if (auto l = loader::ListLinks(); l.ok()) attacher.Sync(*l);
      }
      links_changed = true;
    }
  }
  (*api_server)->Shutdown();
  if (manifests) manifests->Stop();
  if (kubernetes) kubernetes->Stop();
  close(*sigfd);
  return absl::OkStatus();
}

absl::Status Cleanup(const AgentConfig& cfg) {
  loader::InstallLibbpfLogger();
  auto links = loader::ListLinks();
  if (!links.ok()) return links.status();
  int detached = 0;
  loader::QuietLibbpf quiet;  // most links have no Skiff filter; the kernel says so loudly
  for (const auto& l : *links) {
    for (auto dir : {loader::TcDirection::kIngress, loader::TcDirection::kEgress}) {
      if (!loader::TcQuery(l.ifindex, dir).ok()) continue;
      if (auto st = loader::TcDetach(l.ifindex, dir); !st.ok()) return st;
      spdlog::info("detached {} from {}", loader::TcDirectionName(dir), l.name);
      detached++;
    }
  }
  for (const auto& l : *links) {
    auto x = loader::XdpQuery(l.ifindex);
    if (!x.ok() || x->name != loader::kSkiffXdpProgram) continue;
    if (auto st = loader::XdpDetach(l.ifindex); !st.ok()) return st;
    spdlog::info("detached xdp from {}", l.name);
    detached++;
  }
  auto sock = loader::DetachSocketLb(cfg.bpffs_root);
  if (!sock.ok()) return sock.status();
  detached += *sock;
  if (auto st = loader::RemovePins(cfg.bpffs_root); !st.ok()) return st;
  spdlog::info("cleanup done: {} programs detached, pins under {} removed", detached,
               cfg.bpffs_root);
  return absl::OkStatus();
}

}  // namespace skiff
