// A protocol-faithful fake Kubernetes API server for tests: LIST with limit/continue
// (consistent snapshots, remainingItemCount), WATCH from a resourceVersion with ADDED /
// MODIFIED / DELETED / BOOKMARK / ERROR lines, 410 Expired after compaction, Status bodies for
// errors, a bearer token, HTTP or HTTPS (optionally requiring client certificates). Responses
// are shaped as kube-apiserver shapes them (items without kind/apiVersion, watch objects with
// them, string resourceVersions). Faults are injected from the test: dropped connections,
// stalled watches, unavailable resources, raw (malformed) lines.
//
// Threads: cpp-httplib serves requests on its own pool; every public method may be called
// from the test thread at any time (one mutex guards the state).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace httplib {
class Server;
}

namespace skiff::testing {

class FakeApiServer {
 public:
  struct Options {
    std::string cert_file;  // with key_file: serve HTTPS
    std::string key_file;
    std::string client_ca_file;  // HTTPS only: require client certificates signed by it
    std::string token;           // when set, requests need "Authorization: Bearer <token>"
  };

  struct Request {
    std::string resource;  // "services", ... ("" for unknown paths)
    bool watch = false;
    std::map<std::string, std::string> params;
    std::string authorization;
    int status = 0;
  };

  // Listens on 127.0.0.1, port 0 (the kernel picks). nullptr when it cannot.
  static std::unique_ptr<FakeApiServer> Start(Options options);
  ~FakeApiServer();  // Stop()
  void Stop();

  std::string url() const;  // "http://127.0.0.1:PORT" or "https://..."
  int64_t resource_version() const;

  // Creates or replaces an object (ADDED or MODIFIED to open watches); returns its new
  // resourceVersion. `resource` is the plural name: services, endpointslices, pods, ...
  int64_t Upsert(const std::string& resource, nlohmann::json object);
  // Deletes (DELETED to open watches); false when absent.
  bool Delete(const std::string& resource, const std::string& ns, const std::string& name);
  // A BOOKMARK at the current resourceVersion to open watches (those that asked for them).
  void Bookmark(const std::string& resource);
  // Forgets history: watches and continue tokens from before now get 410 Expired.
  void Compact();
  // Cuts every open watch connection, in the middle of an event line.
  void DropWatches();
  // New watches send their headers and then nothing at all (until Stop or SetStall(false)).
  void SetStall(bool stall);
  // LIST and WATCH of `resource` answer 503 while set.
  void SetUnavailable(const std::string& resource, bool unavailable);
  // Sends `line` (plus '\n') as-is to open watches of `resource`.
  void SendRawLine(const std::string& resource, const std::string& line);
  void SetToken(const std::string& token);

  std::vector<Request> requests() const;
  size_t CountRequests(const std::string& resource, bool watch) const;
  size_t OpenWatches(const std::string& resource) const;

 private:
  struct Watcher;
  struct Snapshot {
    int64_t rv = 0;
    std::vector<std::string> items;
  };

  explicit FakeApiServer(Options options);
  void Handle(const std::string& path, const std::multimap<std::string, std::string>& params,
              const std::string& authorization, void* response);
  void Emit(const std::string& resource, const std::string& type, const nlohmann::json& object,
            int64_t rv);

  const Options options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string token_;
  int64_t rv_ = 100;
  int64_t compacted_rv_ = 0;
  std::map<std::string, std::map<std::string, nlohmann::json>> objects_;  // resource -> key
  struct Event {
    int64_t rv;
    std::string resource;
    std::string node_name;  // spec.nodeName of pods, for fieldSelector
    std::string line;
  };
  std::deque<Event> history_;
  std::list<std::shared_ptr<Watcher>> watchers_;
  std::map<int64_t, Snapshot> snapshots_;
  int64_t next_snapshot_ = 1;
  bool stall_ = false;
  std::set<std::string> unavailable_;
  std::vector<Request> requests_;
};

}  // namespace skiff::testing
