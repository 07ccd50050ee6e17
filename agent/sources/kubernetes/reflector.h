// Keeps the ObjectStore's objects of one resource (e.g. all Services) equal to the API
// server's, as client-go's reflector does: LIST (paginated with limit/continue), then WATCH
// from the list's resourceVersion with bookmarks. On 410 Gone or an ERROR event it relists
// and reconciles against what it put in the store, so deletions missed while disconnected are
// applied; a dropped watch resumes from the last resourceVersion seen, after an exponential
// backoff with jitter; a watch silent for longer than idle_timeout is restarted.
//
// Threads: Start() spawns the reflector's own thread, which alone owns the ApiClient, the
// parser and the set of keys it delivered; Stop() joins it (prompt: transfers poll the stop
// flag every 100 ms). stats() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <simdjson.h>

#include "agent/model/object_store.h"
#include "agent/sources/kubernetes/api_client.h"
#include "agent/sources/kubernetes/api_objects.h"

namespace skiff::sources::k8s {

struct ReflectorOptions {
  size_t page_size = 500;                          // LIST limit
  int watch_timeout_seconds = 300;                 // WATCH timeoutSeconds (the server closes)
  std::chrono::milliseconds idle_timeout{150000};  // silence after which a watch is restarted
  std::chrono::milliseconds backoff_initial{500};  // first retry delay (then doubled)
  std::chrono::milliseconds backoff_max{30000};
  std::string field_selector;  // e.g. spec.nodeName=node-1 for pods
  ApiClient::Options http;
};

struct ReflectorStats {
  std::string resource;
  bool listed = false;  // the first full list completed
  std::string resource_version;
  uint64_t lists = 0;  // complete lists (the first one and every relist)
  uint64_t list_pages = 0;
  uint64_t watches = 0;  // watch requests made
  uint64_t events = 0;   // ADDED/MODIFIED/DELETED applied
  uint64_t bookmarks = 0;
  uint64_t relists_gone = 0;  // relists after 410 Gone / ERROR events
  uint64_t stalled_watches = 0;
  uint64_t malformed_events = 0;
  uint64_t invalid_objects = 0;
  uint64_t errors = 0;     // failed requests (each followed by a backoff)
  std::string last_error;  // "" once a request succeeded again
};

class Reflector {
 public:
  // on_listed runs on the reflector's thread once, after the first complete list.
  Reflector(const ApiResource& resource, std::shared_ptr<const ClusterConfig> cluster,
            std::shared_ptr<BearerToken> token, ReflectorOptions options, model::ObjectStore* store,
            std::function<void()> on_listed);
  ~Reflector();  // Stop()
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  void Start();
  void RequestStop();  // returns at once; Stop() waits
  void Stop();
  ReflectorStats stats() const;

 private:
  enum class WatchOutcome { kRewatch, kRewatchAfterBackoff, kRelist, kStop };

  void Run();
  // Lists every page and reconciles the store; false when stopped or failed (error recorded).
  bool ListAndReconcile();
  WatchOutcome Watch();
  void ApplyEvent(const WatchEvent& ev);
  void Upsert(const DecodedObject& obj, const char* why);
  void RecordError(const std::string& message);
  void ClearError();
  // Sleeps the current backoff (with jitter) and doubles it; false when stopped meanwhile.
  bool Backoff();
  bool SleepFor(std::chrono::milliseconds d);
  template <typename F>
  void UpdateStats(F&& f) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    f(stats_);
  }

  const ApiResource& resource_;
  const ReflectorOptions options_;
  model::ObjectStore* const store_;
  std::function<void()> on_listed_;
  ApiClient client_;
  simdjson::dom::parser parser_;
  std::set<model::NamespacedName> delivered_;  // what this reflector put in the store
  std::string resource_version_;
  std::chrono::milliseconds backoff_;
  bool listed_once_ = false;

  std::atomic<bool> stop_{false};
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
  std::thread thread_;

  mutable std::mutex stats_mu_;
  ReflectorStats stats_;
};

}  // namespace skiff::sources::k8s
