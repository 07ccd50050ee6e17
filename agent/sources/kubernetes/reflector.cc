#include "agent/sources/kubernetes/reflector.h"

#include <spdlog/spdlog.h>

#include <random>

#include "absl/strings/str_cat.h"

namespace skiff::sources::k8s {
namespace {

// A watch that ran this long counts as healthy: the next failure starts from the first delay.
constexpr auto kHealthyWatch = std::chrono::seconds(10);

std::string HttpError(const std::string& url, const HttpResponse& r,
                      simdjson::dom::parser& parser) {
  std::optional<ApiStatus> st = DecodeStatus(parser, r.body);
  std::string detail =
      st ? (st->reason.empty() ? st->message : absl::StrCat(st->reason, ": ", st->message))
         : r.body.substr(0, 200);
  std::string hint;
  if (r.status == 401) hint = " (check the bearer token or client certificate)";
  if (r.status == 403) hint = " (the agent's identity lacks list/watch permission)";
  return absl::StrCat("GET ", url, ": HTTP ", r.status, " ", detail, hint);
}

}  // namespace

Reflector::Reflector(const ApiResource& resource, std::shared_ptr<const ClusterConfig> cluster,
                     std::shared_ptr<BearerToken> token, ReflectorOptions options,
                     model::ObjectStore* store, std::function<void()> on_listed)
    : resource_(resource),
      options_(std::move(options)),
      store_(store),
      on_listed_(std::move(on_listed)),
      client_(std::move(cluster), std::move(token), options_.http),
      backoff_(options_.backoff_initial) {
  stats_.resource = resource.resource;
}

Reflector::~Reflector() { Stop(); }

void Reflector::Start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
}

void Reflector::RequestStop() {
  {
    std::lock_guard<std::mutex> lock(sleep_mu_);
    stop_ = true;
  }
  sleep_cv_.notify_all();
}

void Reflector::Stop() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
}

ReflectorStats Reflector::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

void Reflector::Run() {
  bool need_list = true;
  while (!stop_) {
    if (need_list) {
      if (!ListAndReconcile()) {
        if (!Backoff()) return;
        continue;
      }
      need_list = false;
    }
    switch (Watch()) {
      case WatchOutcome::kStop:
        return;
      case WatchOutcome::kRelist:
        need_list = true;
        break;
      case WatchOutcome::kRewatchAfterBackoff:
        if (!Backoff()) return;
        break;
      case WatchOutcome::kRewatch:
        break;
    }
  }
}

bool Reflector::ListAndReconcile() {
  std::set<model::NamespacedName> listed;
  std::string continue_token;
  std::string resource_version;
  size_t pages = 0;
  while (!stop_) {
    std::string path = absl::StrCat(resource_.path, "?limit=", options_.page_size);
    if (!continue_token.empty()) absl::StrAppend(&path, "&continue=", QueryEscape(continue_token));
    if (!options_.field_selector.empty()) {
      absl::StrAppend(&path, "&fieldSelector=", QueryEscape(options_.field_selector));
    }
    absl::StatusOr<HttpResponse> resp = client_.Get(path, stop_);
    if (stop_) return false;
    if (!resp.ok()) {
      RecordError(std::string(resp.status().message()));
      return false;
    }
    if (resp->status == 410 && !continue_token.empty()) {
      // The continue token outlived the server's compaction window: start the list over.
      spdlog::info("kubernetes: {} list continue token expired; listing again", resource_.resource);
      continue_token.clear();
      listed.clear();
      pages = 0;
      continue;
    }
    if (resp->status != 200) {
      RecordError(HttpError(client_.Url(path), *resp, parser_));
      return false;
    }
    absl::StatusOr<ListPage> page = DecodeListPage(resource_, parser_, resp->body);
    resp->body.clear();
    resp->body.shrink_to_fit();  // keep only the typed objects, not the page's JSON
    if (!page.ok()) {
      RecordError(absl::StrCat("GET ", client_.Url(path), ": ", page.status().message()));
      return false;
    }
    ++pages;
    UpdateStats([](ReflectorStats& s) { ++s.list_pages; });
    // One store change per page: the reconciler wakes once per page, not once per object.
    std::vector<model::Object> batch;
    batch.reserve(page->items.size());
    for (DecodedObject& obj : page->items) {
      if (obj.key) listed.insert(obj.key->id);
      if (!obj.object) {
        Upsert(obj, "list");  // logs and counts the invalid object
        continue;
      }
      delivered_.insert(obj.key->id);
      batch.push_back(std::move(*obj.object));
    }
    store_->Commit(std::move(batch), {});
    continue_token = page->continue_token;
    resource_version = page->resource_version;
    if (continue_token.empty()) break;
  }
  if (stop_) return false;

  // Reconcile: whatever this reflector delivered earlier and the list no longer holds was
  // deleted while we were not watching.
  size_t deleted = 0;
  for (auto it = delivered_.begin(); it != delivered_.end();) {
    if (listed.count(*it) == 0) {
      store_->Delete(model::ObjectKey{resource_.kind, *it});
      it = delivered_.erase(it);
      ++deleted;
    } else {
      ++it;
    }
  }
  resource_version_ = resource_version;
  backoff_ = options_.backoff_initial;
  ClearError();
  UpdateStats([&](ReflectorStats& s) {
    ++s.lists;
    s.listed = true;
    s.resource_version = resource_version;
  });
  spdlog::info("kubernetes: listed {} {} at resourceVersion {} ({} pages{})", listed.size(),
               resource_.resource, resource_version, pages,
               deleted ? absl::StrCat(", ", deleted, " deleted since the last list") : "");
  if (!listed_once_) {
    listed_once_ = true;
    if (on_listed_) on_listed_();
  }
  return true;
}

Reflector::WatchOutcome Reflector::Watch() {
  std::string path = absl::StrCat(
      resource_.path,
      "?watch=true&allowWatchBookmarks=true&resourceVersion=", QueryEscape(resource_version_),
      "&timeoutSeconds=", options_.watch_timeout_seconds);
  if (!options_.field_selector.empty()) {
    absl::StrAppend(&path, "&fieldSelector=", QueryEscape(options_.field_selector));
  }
  UpdateStats([](ReflectorStats& s) { ++s.watches; });
  bool gone = false;  // an ERROR event: relist; events after it are not trusted
  size_t applied = 0;
  auto on_line = [&](std::string_view line) {
    if (gone || line.find_first_not_of(" \t\r") == std::string_view::npos) return;
    absl::StatusOr<WatchEvent> ev = DecodeWatchEvent(resource_, parser_, line);
    if (!ev.ok()) {
      // One bad event must not cost the watch: log it, skip it, read on.
      spdlog::warn("kubernetes: skipping a malformed event: {}",
                   std::string(ev.status().message()));
      UpdateStats([](ReflectorStats& s) { ++s.malformed_events; });
      return;
    }
    if (ev->type == WatchEventType::kError) {
      spdlog::warn("kubernetes: {} watch: ERROR event {}; relisting", resource_.resource,
                   ev->status.ToString());
      gone = true;
      return;
    }
    ApplyEvent(*ev);
    ++applied;
  };
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<StreamResult> res = client_.Stream(path, on_line, options_.idle_timeout, stop_);
  if (stop_) return WatchOutcome::kStop;
  const bool healthy = applied > 0 || std::chrono::steady_clock::now() - started > kHealthyWatch;
  if (healthy) backoff_ = options_.backoff_initial;
  if (gone) {
    UpdateStats([](ReflectorStats& s) { ++s.relists_gone; });
    return WatchOutcome::kRelist;
  }
  if (!res.ok()) {
    // Dropped mid-stream (or refused): resume from the last resourceVersion we applied.
    RecordError(std::string(res.status().message()));
    return WatchOutcome::kRewatchAfterBackoff;
  }
  if (res->end == StreamEnd::kStalled) {
    spdlog::warn("kubernetes: {} watch silent for {} ms; restarting it", resource_.resource,
                 options_.idle_timeout.count());
    UpdateStats([](ReflectorStats& s) { ++s.stalled_watches; });
    return WatchOutcome::kRewatch;
  }
  if (res->response.status == 410) {
    spdlog::warn("kubernetes: {} watch from resourceVersion {}: 410 Gone; relisting",
                 resource_.resource, resource_version_);
    UpdateStats([](ReflectorStats& s) { ++s.relists_gone; });
    return WatchOutcome::kRelist;
  }
  if (res->response.status != 200) {
    RecordError(HttpError(client_.Url(path), res->response, parser_));
    return WatchOutcome::kRewatchAfterBackoff;
  }
  if (res->discarded_bytes > 0) {
    spdlog::debug("kubernetes: {} watch ended inside an event ({} bytes discarded)",
                  resource_.resource, res->discarded_bytes);
  }
  ClearError();
  // A clean close (timeoutSeconds): watch again at once if the watch was healthy.
  return healthy ? WatchOutcome::kRewatch : WatchOutcome::kRewatchAfterBackoff;
}

void Reflector::ApplyEvent(const WatchEvent& ev) {
  if (!ev.object.resource_version.empty()) resource_version_ = ev.object.resource_version;
  switch (ev.type) {
    case WatchEventType::kBookmark:
      UpdateStats([&](ReflectorStats& s) {
        ++s.bookmarks;
        s.resource_version = resource_version_;
      });
      return;
    case WatchEventType::kDeleted:
      if (ev.object.key) {
        store_->Delete(*ev.object.key);
        delivered_.erase(ev.object.key->id);
      }
      break;
    case WatchEventType::kAdded:
    case WatchEventType::kModified:
      Upsert(ev.object, "watch");
      break;
    case WatchEventType::kError:
      return;
  }
  UpdateStats([&](ReflectorStats& s) {
    ++s.events;
    s.resource_version = resource_version_;
  });
}

void Reflector::Upsert(const DecodedObject& obj, const char* why) {
  if (!obj.object) {
    // As with manifests: an invalid update keeps the last good version of the object.
    spdlog::warn("kubernetes: {} ({}): invalid object skipped: {}", resource_.resource, why,
                 obj.ErrorText());
    UpdateStats([](ReflectorStats& s) { ++s.invalid_objects; });
    return;
  }
  store_->Upsert(*obj.object);
  delivered_.insert(obj.key->id);
}

void Reflector::RecordError(const std::string& message) {
  spdlog::warn("kubernetes: {}: {}; retrying in about {} ms", resource_.resource, message,
               backoff_.count());
  UpdateStats([&](ReflectorStats& s) {
    ++s.errors;
    s.last_error = message;
  });
}

void Reflector::ClearError() {
  UpdateStats([](ReflectorStats& s) { s.last_error.clear(); });
}

bool Reflector::Backoff() {
  // Half fixed, half random: many agents restarting together must not retry in lockstep.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const int64_t half = backoff_.count() / 2;
  std::uniform_int_distribution<int64_t> jitter(0, half);
  const auto delay = std::chrono::milliseconds(half + jitter(rng));
  backoff_ = std::min(backoff_ * 2, options_.backoff_max);
  return SleepFor(delay);
}

bool Reflector::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(sleep_mu_);
  sleep_cv_.wait_for(lock, d, [this] { return stop_.load(); });
  return !stop_;
}

}  // namespace skiff::sources::k8s
