#include "tests/k8s/fake_apiserver.h"

#include <httplib.h>

#include <chrono>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace skiff::testing {
namespace {

using nlohmann::json;

struct ResourceInfo {
  const char* resource;
  const char* path;
  const char* kind;
  const char* api_version;
};

constexpr ResourceInfo kResources[] = {
    {"services", "/api/v1/services", "Service", "v1"},
    {"pods", "/api/v1/pods", "Pod", "v1"},
    {"namespaces", "/api/v1/namespaces", "Namespace", "v1"},
    {"nodes", "/api/v1/nodes", "Node", "v1"},
    {"endpointslices", "/apis/discovery.k8s.io/v1/endpointslices", "EndpointSlice",
     "discovery.k8s.io/v1"},
    {"networkpolicies", "/apis/networking.k8s.io/v1/networkpolicies", "NetworkPolicy",
     "networking.k8s.io/v1"},
};

const ResourceInfo* ByPath(const std::string& path) {
  for (const ResourceInfo& r : kResources) {
    if (path == r.path) return &r;
  }
  return nullptr;
}

const ResourceInfo* ByName(const std::string& name) {
  for (const ResourceInfo& r : kResources) {
    if (name == r.resource) return &r;
  }
  return nullptr;
}

std::string KeyOf(const json& obj) {
  const json& m = obj["metadata"];
  return absl::StrCat(m.value("namespace", ""), "/", m.value("name", ""));
}

std::string NodeOf(const json& obj) {
  if (obj.contains("spec") && obj["spec"].is_object()) return obj["spec"].value("nodeName", "");
  return "";
}

json Status(int code, const std::string& reason, const std::string& message) {
  return json{{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
              {"status", "Failure"}, {"message", message}, {"reason", reason},
              {"code", code}};
}

}  // namespace

// One open watch: events queued for it and how it should misbehave.
struct FakeApiServer::Watcher {
  std::string resource;
  std::string node_selector;  // spec.nodeName=... ("" = all)
  bool bookmarks = false;
  bool stalled = false;
  bool drop = false;
  std::deque<std::string> queue;
};

FakeApiServer::FakeApiServer(Options options) : options_(std::move(options)) {
  token_ = options_.token;
}

std::unique_ptr<FakeApiServer> FakeApiServer::Start(Options options) {
  std::unique_ptr<FakeApiServer> s(new FakeApiServer(std::move(options)));
  const Options& o = s->options_;
  if (!o.cert_file.empty()) {
    s->server_ = std::make_unique<httplib::SSLServer>(
        o.cert_file.c_str(), o.key_file.c_str(),
        o.client_ca_file.empty() ? nullptr : o.client_ca_file.c_str());
  } else {
    s->server_ = std::make_unique<httplib::Server>();
  }
  if (!s->server_->is_valid()) return nullptr;
  // Watches hold a pool thread each for their whole life.
  s->server_->new_task_queue = [] { return new httplib::ThreadPool(64); };
  FakeApiServer* self = s.get();
  s->server_->Get(".*", [self](const httplib::Request& req, httplib::Response& res) {
    self->Handle(req.path, req.params, req.get_header_value("Authorization"), &res);
  });
  s->port_ = s->server_->bind_to_any_port("127.0.0.1");
  if (s->port_ <= 0) return nullptr;
  s->thread_ = std::thread([self] { self->server_->listen_after_bind(); });
  while (!s->server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return s;
}

FakeApiServer::~FakeApiServer() { Stop(); }

void FakeApiServer::Stop() {
  if (stopping_.exchange(true)) return;
  cv_.notify_all();
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string FakeApiServer::url() const {
  return absl::StrCat(options_.cert_file.empty() ? "http" : "https", "://127.0.0.1:", port_);
}

int64_t FakeApiServer::resource_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rv_;
}

void FakeApiServer::Emit(const std::string& resource, const std::string& type, const json& object,
                         int64_t rv) {
  const ResourceInfo* info = ByName(resource);
  json obj = object;
  obj["kind"] = info->kind;
  obj["apiVersion"] = info->api_version;
  const std::string line = json{{"type", type}, {"object", obj}}.dump() + "\n";
  const std::string node = NodeOf(object);
  history_.push_back(Event{rv, resource, node, line});
  for (auto& w : watchers_) {
    if (w->resource != resource) continue;
    if (!w->node_selector.empty() && w->node_selector != node) continue;
    w->queue.push_back(line);
  }
  cv_.notify_all();
}

int64_t FakeApiServer::Upsert(const std::string& resource, json object) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t rv = ++rv_;
  json& meta = object["metadata"];
  meta["resourceVersion"] = std::to_string(rv);
  if (!meta.contains("uid")) meta["uid"] = absl::StrCat("uid-", KeyOf(object));
  meta["creationTimestamp"] = "2024-01-01T00:00:00Z";
  // As the real server sends it: bulky bookkeeping the client must skip.
  meta["managedFields"] = json::array({json{{"manager", "kubectl"},
                                            {"operation", "Update"},
                                            {"apiVersion", "v1"},
                                            {"fieldsType", "FieldsV1"},
                                            {"fieldsV1", json{{"f:metadata", json::object()}}}}});
  auto& bucket = objects_[resource];
  const std::string key = KeyOf(object);
  const bool existed = bucket.count(key) > 0;
  bucket[key] = object;
  Emit(resource, existed ? "MODIFIED" : "ADDED", object, rv);
  return rv;
}

bool FakeApiServer::Delete(const std::string& resource, const std::string& ns,
                           const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& bucket = objects_[resource];
  auto it = bucket.find(absl::StrCat(ns, "/", name));
  if (it == bucket.end()) return false;
  json object = it->second;
  bucket.erase(it);
  const int64_t rv = ++rv_;
  object["metadata"]["resourceVersion"] = std::to_string(rv);
  Emit(resource, "DELETED", object, rv);
  return true;
}

void FakeApiServer::Bookmark(const std::string& resource) {
  std::lock_guard<std::mutex> lock(mu_);
  const ResourceInfo* info = ByName(resource);
  const std::string line =
      json{{"type", "BOOKMARK"},
           {"object", json{{"kind", info->kind},
                           {"apiVersion", info->api_version},
                           {"metadata", json{{"resourceVersion", std::to_string(rv_)}}}}}}
          .dump() +
      "\n";
  for (auto& w : watchers_) {
    if (w->resource == resource && w->bookmarks) w->queue.push_back(line);
  }
  cv_.notify_all();
}

void FakeApiServer::Compact() {
  std::lock_guard<std::mutex> lock(mu_);
  compacted_rv_ = rv_;
  history_.clear();
}

void FakeApiServer::DropWatches() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& w : watchers_) w->drop = true;
  cv_.notify_all();
}

void FakeApiServer::SetStall(bool stall) {
  std::lock_guard<std::mutex> lock(mu_);
  stall_ = stall;
}

void FakeApiServer::SetUnavailable(const std::string& resource, bool unavailable) {
  std::lock_guard<std::mutex> lock(mu_);
  if (unavailable) {
    unavailable_.insert(resource);
  } else {
    unavailable_.erase(resource);
  }
}

void FakeApiServer::SendRawLine(const std::string& resource, const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& w : watchers_) {
    if (w->resource == resource) w->queue.push_back(line + "\n");
  }
  cv_.notify_all();
}

void FakeApiServer::SetToken(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  token_ = token;
}

std::vector<FakeApiServer::Request> FakeApiServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

size_t FakeApiServer::CountRequests(const std::string& resource, bool watch) const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const Request& r : requests_) n += r.resource == resource && r.watch == watch;
  return n;
}

size_t FakeApiServer::OpenWatches(const std::string& resource) const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& w : watchers_) n += w->resource == resource;
  return n;
}

void FakeApiServer::Handle(const std::string& path,
                           const std::multimap<std::string, std::string>& params,
                           const std::string& authorization, void* response) {
  auto& res = *static_cast<httplib::Response*>(response);
  auto reply = [&res](int code, const json& body) {
    res.status = code;
    res.set_content(body.dump(), "application/json");
  };
  Request rec;
  for (const auto& [k, v] : params) rec.params[k] = v;
  rec.authorization = authorization;
  const ResourceInfo* info = ByPath(path);
  if (info != nullptr) rec.resource = info->resource;
  rec.watch = rec.params["watch"] == "true" || rec.params["watch"] == "1";

  std::unique_lock<std::mutex> lock(mu_);
  auto record = [&](int status) {
    rec.status = status;
    requests_.push_back(rec);
  };
  if (!token_.empty() && authorization != "Bearer " + token_) {
    record(401);
    return reply(401, Status(401, "Unauthorized", "Unauthorized"));
  }
  if (info == nullptr) {
    record(404);
    return reply(404, Status(404, "NotFound", "the server could not find the requested resource"));
  }
  if (unavailable_.count(info->resource)) {
    record(503);
    return reply(503, Status(503, "ServiceUnavailable", "etcd is unavailable"));
  }
  std::string node_selector;
  if (auto fs = rec.params.find("fieldSelector"); fs != rec.params.end() && !fs->second.empty()) {
    const std::string prefix = "spec.nodeName=";
    if (fs->second.rfind(prefix, 0) != 0) {
      record(400);
      return reply(
          400, Status(400, "BadRequest", absl::StrCat("field label not supported: ", fs->second)));
    }
    node_selector = fs->second.substr(prefix.size());
  }

  if (!rec.watch) {
    // LIST: a snapshot taken by the first page, served page by page through continue tokens.
    int64_t id = 0;
    size_t start = 0;
    if (auto c = rec.params.find("continue"); c != rec.params.end() && !c->second.empty()) {
      std::string decoded;
      json token;
      if (absl::WebSafeBase64Unescape(c->second, &decoded)) {
        token = json::parse(decoded, nullptr, /*allow_exceptions=*/false);
      }
      if (!token.is_object() || !snapshots_.count(token.value("id", int64_t{0}))) {
        record(400);
        return reply(400, Status(400, "BadRequest", "invalid continue token"));
      }
      id = token["id"];
      start = token["start"];
      if (snapshots_[id].rv < compacted_rv_) {
        record(410);
        return reply(410, Status(410, "Expired",
                                 "The provided continue parameter is too old to display a "
                                 "consistent list result. You can start a new list without "
                                 "the continue parameter."));
      }
    } else {
      id = next_snapshot_++;
      Snapshot snap;
      snap.rv = rv_;
      for (const auto& [key, obj] : objects_[info->resource]) {
        if (!node_selector.empty() && NodeOf(obj) != node_selector) continue;
        snap.items.push_back(obj.dump());  // list items carry no kind/apiVersion
      }
      snapshots_[id] = std::move(snap);
    }
    const Snapshot& snap = snapshots_[id];
    size_t limit = snap.items.size();
    if (auto l = rec.params.find("limit"); l != rec.params.end()) {
      limit = std::max<size_t>(1, std::stoul(l->second));
    }
    const size_t end = std::min(snap.items.size(), start + limit);
    json meta{{"resourceVersion", std::to_string(snap.rv)}};
    if (end < snap.items.size()) {
      meta["continue"] = absl::WebSafeBase64Escape(json{{"id", id}, {"start", end}}.dump());
      meta["remainingItemCount"] = snap.items.size() - end;
    }
    std::string body =
        absl::StrCat("{\"kind\":\"", info->kind, "List\",\"apiVersion\":\"", info->api_version,
                     "\",\"metadata\":", meta.dump(), ",\"items\":[");
    for (size_t i = start; i < end; ++i)
      absl::StrAppend(&body, i > start ? "," : "", snap.items[i]);
    body += "]}";
    record(200);
    res.status = 200;
    res.set_content(body, "application/json");
    return;
  }

  // WATCH: 200 at once, then one JSON line per event, as kube-apiserver streams them.
  record(200);
  auto w = std::make_shared<Watcher>();
  w->resource = info->resource;
  w->node_selector = node_selector;
  w->bookmarks = rec.params["allowWatchBookmarks"] == "true";
  w->stalled = stall_;
  const std::string rv_param = rec.params["resourceVersion"];
  const int64_t from = rv_param.empty() ? rv_ : std::stoll(rv_param);
  if (from < compacted_rv_) {
    w->queue.push_back(json{{"type", "ERROR"},
                            {"object", Status(410, "Expired",
                                              absl::StrCat("too old resource version: ", from, " (",
                                                           compacted_rv_, ")"))}}
                           .dump() +
                       "\n");
  } else {
    for (const Event& e : history_) {
      if (e.rv <= from || e.resource != w->resource) continue;
      if (!node_selector.empty() && e.node_name != node_selector) continue;
      w->queue.push_back(e.line);
    }
  }
  const bool gone = from < compacted_rv_;
  watchers_.push_back(w);
  int timeout_s = 1800;
  if (auto t = rec.params.find("timeoutSeconds"); t != rec.params.end()) {
    timeout_s = std::stoi(t->second);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  lock.unlock();

  res.status = 200;
  res.set_chunked_content_provider(
      "application/json",
      [this, w, deadline, gone](size_t, httplib::DataSink& sink) {
        std::unique_lock<std::mutex> l(mu_);
        auto finish = [&](bool ok) {
          watchers_.remove(w);  // also done by the releaser when the client goes first
          l.unlock();
          if (ok) sink.done();
          return ok;
        };
        cv_.wait_for(l, std::chrono::milliseconds(50), [&] {
          return stopping_.load() || w->drop || (!w->stalled && !w->queue.empty());
        });
        if (stopping_) return finish(false);
        if (w->drop) {
          // Cut the connection in the middle of an event, as a crashing server or a broken
          // middlebox does.
          const std::string half = R"({"type":"ADDED","object":{"metadata":{"name":"cut)";
          l.unlock();
          sink.write(half.data(), half.size());
          l.lock();
          return finish(false);
        }
        if (w->stalled) return true;
        while (!w->queue.empty()) {
          const std::string line = std::move(w->queue.front());
          w->queue.pop_front();
          l.unlock();
          if (!sink.write(line.data(), line.size())) {
            l.lock();
            return finish(false);
          }
          l.lock();
        }
        if (gone || std::chrono::steady_clock::now() >= deadline) return finish(true);
        return true;
      },
      [this, w](bool) {
        std::lock_guard<std::mutex> l(mu_);
        watchers_.remove(w);
      });
}

}  // namespace skiff::testing
