// A small cluster for API and agentctl tests: Services default/web (ClusterIP 10.96.0.10,
// http 80/TCP -> 8080 on web-1 (local, active) and web-2 (remote, terminating); dns 53/UDP ->
// 5353 on web-1) and default/empty (10.96.0.20:80, no endpoints); pods client and web-1 on
// node-1, web-2 elsewhere; one TCP and one UDP flow from the client through the ClusterIP.
#pragma once

#include <unistd.h>

#include <atomic>

#include "agent/model/objects.h"
#include "tests/unit/api_fake_core.h"

namespace skiff::api::testing {

inline std::string UniqueDir(const std::string& prefix) {
  static std::atomic<int> n{0};
  return absl::StrCat(prefix, getpid(), "-", n++);
}

struct Scene {
  model::DesiredState desired;
  model::ObjectSnapshot objects;

  void Build(FakeCore& core) {
    auto web1 = ModelIp("10.244.1.11"), web2 = ModelIp("10.244.1.12");
    model::Frontend http;
    http.key = {ModelIp("10.96.0.10"), 80, model::Protocol::kTcp};
    http.service = "default/web";
    http.port_name = "http";
    http.backends = {{web1, 8080, model::BackendState::kActive, true},
                     {web2, 8080, model::BackendState::kTerminating, false}};
    model::Frontend dns = http;
    dns.key = {ModelIp("10.96.0.10"), 53, model::Protocol::kUdp};
    dns.port_name = "dns";
    dns.backends = {{web1, 5353, model::BackendState::kActive, true}};
    model::Frontend empty;
    empty.key = {ModelIp("10.96.0.20"), 80, model::Protocol::kTcp};
    empty.service = "default/empty";
    empty.port_name = "http";
    for (const auto& f : {http, dns, empty}) desired.frontends[f.key] = f;

    reconcile::LbReconciler rec(core.Lb());
    if (!rec.Restore().ok() || !rec.Apply(desired, true).ok()) std::abort();
    uint32_t web_rev = *rec.RevNatId(http.key), dns_rev = *rec.RevNatId(dns.key);
    uint32_t web1_http = *rec.BackendId({web1, 8080, IPPROTO_TCP});
    uint32_t web1_dns = *rec.BackendId({web1, 5353, IPPROTO_UDP});

    objects.generation = 7;
    objects.synced = true;
    for (const char* name : {"web", "empty"}) {
      model::Service s;
      s.metadata.namespace_ = "default";
      s.metadata.name = name;
      objects.services[{"default", name}] = std::make_shared<const model::Service>(s);
    }
    // The slice the backends come from: it names their pods (model::BackendPods).
    model::EndpointSlice slice;
    slice.metadata.namespace_ = "default";
    slice.metadata.name = "web-abcde";
    slice.metadata.labels[model::kServiceNameLabel] = "web";
    slice.ports = {{"http", model::Protocol::kTcp, 8080}, {"dns", model::Protocol::kUdp, 5353}};
    auto endpoint = [&](const char* ip, const char* node, const char* pod, bool ready) {
      model::Endpoint ep;
      ep.addresses = {ip};
      ep.node_name = node;
      ep.target_ref = model::ObjectReference{"Pod", "", pod};
      ep.conditions = {ready, true, !ready};
      slice.endpoints.push_back(std::move(ep));
    };
    endpoint("10.244.1.11", "node-1", "web-1", true);
    endpoint("10.244.1.12", "node-2", "web-2", false);
    objects.endpoint_slices[{"default", "web-abcde"}] =
        std::make_shared<const model::EndpointSlice>(slice);
    auto pod = [&](const char* name, const char* node, const char* ip) {
      model::Pod p;
      p.metadata.namespace_ = "default";
      p.metadata.name = name;
      p.node_name = node;
      p.phase = "Running";
      p.pod_ips = {ModelIp(ip)};
      objects.pods[{"default", name}] = std::make_shared<const model::Pod>(p);
    };
    pod("client", "node-1", "10.244.1.10");
    pod("web-1", "node-1", "10.244.1.11");
    pod("web-2", "node-2", "10.244.1.12");
    core.routes[Ip("10.244.1.10")] = {"lxcclient", 8};
    core.routes[Ip("10.244.1.11")] = {"lxcweb1", 7};

    // now = 1000: created 10 s ago, 50 s to live.
    AddFlow(core.ct(), "10.244.1.10", 40000, "10.96.0.10", 80, "10.244.1.11", 8080, IPPROTO_TCP,
            web_rev, web1_http, 990, 1050);
    AddFlow(core.ct(), "10.244.1.10", 40001, "10.96.0.10", 53, "10.244.1.11", 5353, IPPROTO_UDP,
            dns_rev, web1_dns, 995, 1055);
    Publish(core);
  }

  void Publish(FakeCore& core) const {
    auto s = std::make_shared<ApiState>();
    s->objects = objects;
    s->sources = {{"manifests", true}};
    s->desired = desired;
    s->programs = {{"lxcweb1", 7, "tc-ingress", "from_container"}};
    core.board.Publish(std::move(s));
  }
};

}  // namespace skiff::api::testing
