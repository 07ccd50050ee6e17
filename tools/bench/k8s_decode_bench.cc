// Kubernetes source decode cost and memory: a 100,000-Service list and a 100,000-EndpointSlice
// list, shaped as kube-apiserver returns them, decoded by the source's own code
// (DecodeListPage: simdjson + the manifest decoders) and stored in an ObjectStore. Peer in the
// same run: simdjson's bare parse of the same bytes (the floor for any decoder using it).
// Two shapes: the whole list in one body, and pages of PAGE_SIZE with continue tokens, decoded
// and committed page by page as the agent's reflector lists. Best of 3, wall and CPU time.
// Memory: RSS after the paged sync with the JSON freed (the store only), against the JSON's size.
//
//   skiff_bench_k8s_decode [N [PAGE_SIZE]]     (defaults 100000 and 500)
#include <malloc.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <simdjson.h>

#include "absl/strings/str_cat.h"
#include "agent/heap_hugepages.h"
#include "agent/model/object_store.h"
#include "agent/sources/kubernetes/api_objects.h"

namespace {

using skiff::model::ObjectKind;
namespace k8s = skiff::sources::k8s;

long RssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

std::string Ip(int i, int base) {
  return absl::StrCat(base, ".", (i >> 16) & 255, ".", (i >> 8) & 255, ".", i & 255);
}

// Server-side fields (uid, managedFields, ...) included: the decoder must skip them.
std::string Meta(const std::string& name, int i, const std::string& labels) {
  return absl::StrCat(R"({"name":")", name, R"(","namespace":"ns-)", i % 100,
                      R"(","uid":"6b1c3e52-0d4f-4a8e-9a51-)", 100000000000 + i,
                      R"(","resourceVersion":")", 1000 + i,
                      R"(","creationTimestamp":"2024-05-01T10:00:00Z","labels":{)", labels,
                      R"(},"managedFields":[{"manager":"kube-controller-manager","operation":)"
                      R"("Update","apiVersion":"v1","time":"2024-05-01T10:00:00Z","fieldsType":)"
                      R"("FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{}}}}]})");
}

// The list's metadata: a continue token on every page but the last, as the API server pages.
std::string ListMeta(bool more) {
  return absl::StrCat(R"({"resourceVersion":"9")", more ? R"(,"continue":"eyJ2IjoibWV0YSJ9")" : "",
                      "}");
}

// Items [first, end) of the list; `more`: further pages follow.
std::string ServiceList(int first, int end, bool more) {
  std::string s = absl::StrCat(R"({"kind":"ServiceList","apiVersion":"v1","metadata":)",
                               ListMeta(more), R"(,"items":[)");
  for (int i = first; i < end; ++i) {
    const std::string name = absl::StrCat("svc-", i);
    absl::StrAppend(
        &s, i > first ? "," : "", R"({"metadata":)",
        Meta(name, i, absl::StrCat(R"("app":")", name, "\"")),
        R"(,"spec":{"ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080},)"
        R"({"name":"https","protocol":"TCP","port":443,"targetPort":"https"}],"selector":)"
        R"({"app":")",
        name, R"("},"clusterIP":")", Ip(i, 10), R"(","clusterIPs":[")", Ip(i, 10),
        R"("],"type":"ClusterIP","sessionAffinity":"None","ipFamilies":["IPv4"],)"
        R"("ipFamilyPolicy":"SingleStack","internalTrafficPolicy":"Cluster"},)"
        R"("status":{"loadBalancer":{}}})");
  }
  return s + "]}";
}

std::string EndpointSliceList(int first, int end, bool more) {
  std::string s =
      absl::StrCat(R"({"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","metadata":)",
                   ListMeta(more), R"(,"items":[)");
  for (int i = first; i < end; ++i) {
    const std::string svc = absl::StrCat("svc-", i);
    absl::StrAppend(&s, i > first ? "," : "", R"({"metadata":)",
                    Meta(absl::StrCat(svc, "-x7k2p"), i,
                         absl::StrCat(R"("kubernetes.io/service-name":")", svc,
                                      R"(","endpointslice.kubernetes.io/managed-by":)"
                                      R"("endpointslice-controller.k8s.io")")),
                    R"(,"addressType":"IPv4","endpoints":[)");
    for (int e = 0; e < 3; ++e) {
      absl::StrAppend(&s, e ? "," : "", R"({"addresses":[")", Ip(i * 3 + e, 11),
                      R"("],"conditions":{"ready":true,"serving":true,"terminating":false},)"
                      R"("nodeName":"node-)",
                      e, R"(","targetRef":{"kind":"Pod","namespace":"ns-)", i % 100,
                      R"(","name":")", svc, "-", e, R"(","uid":"0b6c-)", i, "-", e, R"("}})");
    }
    absl::StrAppend(&s, R"(],"ports":[{"name":"http","protocol":"TCP","port":8080},)"
                        R"({"name":"https","protocol":"TCP","port":8443}]})");
  }
  return s + "]}";
}

using Clock = std::chrono::steady_clock;
double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// This thread's CPU time (user + system, page faults included): steadier than the wall clock
// on a machine shared with other work.
double CpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

std::string List(ObjectKind kind, int first, int end, bool more) {
  std::string json = kind == ObjectKind::kService ? ServiceList(first, end, more)
                                                  : EndpointSliceList(first, end, more);
  json.reserve(json.size() + simdjson::SIMDJSON_PADDING);  // as the agent's HTTP client leaves it
  return json;
}

struct Times {
  double decode_ms = 0, decode_cpu = 0, store_ms = 0, store_cpu = 0;
};

// Decodes the pages and stores them as the reflector's list does: DecodeListPage, then one
// ObjectStore::Commit per page.
bool DecodeAndStore(const k8s::ApiResource& resource, simdjson::dom::parser& parser,
                    const std::vector<std::string>& pages, skiff::model::ObjectStore& store,
                    Times& t, size_t& objects) {
  for (const std::string& json : pages) {
    auto t0 = Clock::now();
    const double c0 = CpuMs();
    absl::StatusOr<k8s::ListPage> page = k8s::DecodeListPage(resource, parser, json);
    t.decode_ms += Ms(Clock::now() - t0);
    t.decode_cpu += CpuMs() - c0;
    if (!page.ok()) {
      std::fprintf(stderr, "decode failed: %s\n", page.status().ToString().c_str());
      return false;
    }
    auto t1 = Clock::now();
    const double c1 = CpuMs();
    std::vector<skiff::model::Object> batch;
    batch.reserve(page->items.size());
    for (k8s::DecodedObject& item : page->items) {
      if (!item.object) {
        std::fprintf(stderr, "invalid: %s\n", item.ErrorText().c_str());
        return false;
      }
      batch.push_back(std::move(*item.object));
    }
    objects += batch.size();
    store.Commit(std::move(batch), {});
    page = absl::StatusOr<k8s::ListPage>();  // freed as the reflector frees it
    t.store_ms += Ms(Clock::now() - t1);
    t.store_cpu += CpuMs() - c1;
  }
  return true;
}

// Best of 3 (each into a fresh store); the last store is kept in *kept.
bool Measure(const k8s::ApiResource& resource, const std::vector<std::string>& pages, int n,
             Times& best, std::unique_ptr<skiff::model::ObjectStore>* kept) {
  simdjson::dom::parser parser;
  best = Times{1e9, 1e9, 1e9, 1e9};
  for (int rep = 0; rep < 3; ++rep) {
    kept->reset();
    malloc_trim(0);
    *kept = std::make_unique<skiff::model::ObjectStore>();
    Times t;
    size_t objects = 0;
    if (!DecodeAndStore(resource, parser, pages, **kept, t, objects)) return false;
    if (objects != static_cast<size_t>(n)) {
      std::fprintf(stderr, "decoded %zu objects, want %d\n", objects, n);
      return false;
    }
    best.decode_ms = std::min(best.decode_ms, t.decode_ms);
    best.decode_cpu = std::min(best.decode_cpu, t.decode_cpu);
    best.store_ms = std::min(best.store_ms, t.store_ms);
    best.store_cpu = std::min(best.store_cpu, t.store_cpu);
  }
  return true;
}

int Run(const char* what, ObjectKind kind, int n, int page_size) {
  const k8s::ApiResource& resource = k8s::ResourceFor(kind);
  malloc_trim(0);
  const long rss_before = RssKiB();  // before any JSON exists

  // The whole list in one body (the worst case: no limit).
  std::vector<std::string> whole{List(kind, 0, n, false)};
  const size_t json_bytes = whole[0].size();
  double parse_ms = 1e9;
  {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    for (int rep = 0; rep < 3; ++rep) {  // best of 3: the floor
      auto t0 = Clock::now();
      if (parser.parse(whole[0]).get(root) != simdjson::SUCCESS) return 1;
      parse_ms = std::min(parse_ms, Ms(Clock::now() - t0));
    }
  }
  Times one;
  std::unique_ptr<skiff::model::ObjectStore> store;
  if (!Measure(resource, whole, n, one, &store)) return 1;
  std::vector<std::string>().swap(whole);
  store.reset();

  // Pages of `page_size` with continue tokens, as the agent lists (the reflector's LIST limit,
  // 500 by default).
  std::vector<std::string> pages;
  for (int first = 0; first < n; first += page_size) {
    const int end = std::min(n, first + page_size);
    pages.push_back(List(kind, first, end, end < n));
  }
  Times paged;
  if (!Measure(resource, pages, n, paged, &store)) return 1;
  std::vector<std::string>().swap(pages);  // what the agent keeps after a sync: the store only
  malloc_trim(0);
  const long rss_after = RssKiB();
  std::printf(
      "%-15s n=%d  json %.1f MiB  simdjson parse %.0f ms\n"
      "  one body:          decode %.0f ms (cpu %.0f ms, %.1fx parse)  store %.0f ms (cpu %.0f "
      "ms)\n"
      "  pages of %-5d:    decode %.0f ms (cpu %.0f ms)  store %.0f ms (cpu %.0f ms)  "
      "total %.0f ms\n"
      "  RSS after sync +%.1f MiB (%.0f B/object, %.2fx the JSON)\n",
      what, n, json_bytes / 1048576.0, parse_ms, one.decode_ms, one.decode_cpu,
      one.decode_ms / parse_ms, one.store_ms, one.store_cpu, page_size, paged.decode_ms,
      paged.decode_cpu, paged.store_ms, paged.store_cpu, paged.decode_ms + paged.store_ms,
      (rss_after - rss_before) / 1024.0, (rss_after - rss_before) * 1024.0 / n,
      (rss_after - rss_before) * 1024.0 / json_bytes);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // The heap as the agent has it (agent/heap_hugepages.h); SKIFF_HEAP_HUGEPAGES=0 compares.
  std::string heap_note;
  const bool huge_heap = skiff::ReexecWithHugePageHeap(argv, &heap_note);
  std::printf("heap: %s pages (%s)\n", huge_heap ? "transparent huge" : "4 KiB", heap_note.c_str());
  const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  const int page_size = argc > 2 ? std::atoi(argv[2]) : 500;
  if (n <= 0 || page_size <= 0) {
    std::fprintf(stderr, "usage: skiff_bench_k8s_decode [N [PAGE_SIZE]]\n");
    return 2;
  }
  if (Run("Services", ObjectKind::kService, n, page_size) != 0) return 1;
  if (Run("EndpointSlices", ObjectKind::kEndpointSlice, n, page_size) != 0) return 1;
  return 0;
}
