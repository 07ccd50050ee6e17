#include "agent/sources/kubernetes/kubernetes_source.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace skiff::sources::k8s {

KubernetesSource::KubernetesSource(KubernetesSourceOptions options, model::ObjectStore* store)
    : options_(std::move(options)), store_(store) {
  store_->AddSource(options_.source_name);
}

KubernetesSource::~KubernetesSource() { Stop(); }

absl::Status KubernetesSource::Start() {
  if (!reflectors_.empty()) return absl::FailedPreconditionError("already started");
  if (options_.kinds.empty()) return absl::InvalidArgumentError("no resources to watch");
  auto cluster = std::make_shared<const ClusterConfig>(options_.cluster);
  auto token = std::make_shared<BearerToken>(options_.cluster.token, options_.cluster.token_file);
  spdlog::info("kubernetes: watching {} ({}){}", options_.cluster.server, options_.cluster.origin,
               options_.pods_node_name.empty()
                   ? ""
                   : absl::StrCat(", pods of node ", options_.pods_node_name, " only"));
  unlisted_ = options_.kinds.size();
  for (model::ObjectKind kind : options_.kinds) {
    ReflectorOptions ro = options_.reflector;
    if (kind == model::ObjectKind::kPod && !options_.pods_node_name.empty()) {
      ro.field_selector = absl::StrCat("spec.nodeName=", options_.pods_node_name);
    }
    reflectors_.push_back(std::make_unique<Reflector>(
        ResourceFor(kind), cluster, token, std::move(ro), store_, [this] {
          if (--unlisted_ == 0) {
            spdlog::info("kubernetes: every resource listed; source synced");
            store_->MarkSynced(options_.source_name);
          }
        }));
  }
  for (auto& r : reflectors_) r->Start();
  return absl::OkStatus();
}

void KubernetesSource::Stop() {
  // Ask all first, then join: the threads wind down in parallel.
  for (auto& r : reflectors_) r->RequestStop();
  for (auto& r : reflectors_) r->Stop();
}

std::vector<ReflectorStats> KubernetesSource::stats() const {
  std::vector<ReflectorStats> out;
  for (const auto& r : reflectors_) out.push_back(r->stats());
  return out;
}

}  // namespace skiff::sources::k8s
