// Kubernetes source decode cost and memory: a 100,000-Service list and a 100,000-EndpointSlice
// list, shaped as kube-apiserver returns them, decoded by the source's own code
// (DecodeListPage: simdjson + the manifest decoders) and stored in an ObjectStore. Peer in the
// same run: simdjson's bare parse of the same bytes (the floor for any decoder using it).
// Memory: RSS after the sync with the JSON freed, against the raw JSON's size.
//
//   skiff_bench_k8s_decode [N]     (default N = 100000)
#include <malloc.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <simdjson.h>

#include "absl/strings/str_cat.h"
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

std::string ServiceList(int n) {
  std::string s =
      R"({"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"9"},"items":[)";
  for (int i = 0; i < n; ++i) {
    const std::string name = absl::StrCat("svc-", i);
    absl::StrAppend(
        &s, i ? "," : "", R"({"metadata":)", Meta(name, i, absl::StrCat(R"("app":")", name, "\"")),
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

std::string EndpointSliceList(int n) {
  std::string s =
      R"({"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"9"},"items":[)";
  for (int i = 0; i < n; ++i) {
    const std::string svc = absl::StrCat("svc-", i);
    absl::StrAppend(&s, i ? "," : "", R"({"metadata":)",
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

int Run(const char* what, ObjectKind kind, int n) {
  const k8s::ApiResource& resource = k8s::ResourceFor(kind);
  skiff::model::ObjectStore store;
  malloc_trim(0);
  const long rss_before = RssKiB();  // before the JSON exists
  std::string json = kind == ObjectKind::kService ? ServiceList(n) : EndpointSliceList(n);
  json.reserve(json.size() + simdjson::SIMDJSON_PADDING);  // as the agent's HTTP client leaves it
  double parse_ms = 1e9, decode_ms = 1e9, store_ms = 0, decode_cpu = 1e9, store_cpu = 0;
  {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    for (int rep = 0; rep < 3; ++rep) {  // best of 3: the floor
      auto t0 = Clock::now();
      if (parser.parse(json).get(root) != simdjson::SUCCESS) return 1;
      parse_ms = std::min(parse_ms, Ms(Clock::now() - t0));
    }
    for (int rep = 0; rep < 3; ++rep) {
      auto t0 = Clock::now();
      const double c0 = CpuMs();
      absl::StatusOr<k8s::ListPage> page = k8s::DecodeListPage(resource, parser, json);
      const double ms = Ms(Clock::now() - t0);
      decode_cpu = std::min(decode_cpu, CpuMs() - c0);
      if (!page.ok() || page->items.size() != static_cast<size_t>(n)) {
        std::fprintf(stderr, "decode failed\n");
        return 1;
      }
      for (const auto& item : page->items) {
        if (!item.object) {
          std::fprintf(stderr, "invalid: %s\n", item.ErrorText().c_str());
          return 1;
        }
      }
      decode_ms = std::min(decode_ms, ms);
      if (rep == 2) {
        auto t1 = Clock::now();
        const double c1 = CpuMs();
        for (auto& item : page->items) store.Upsert(std::move(*item.object));
        store_ms = Ms(Clock::now() - t1);
        store_cpu = CpuMs() - c1;
      }
    }
  }
  const size_t json_bytes = json.size();
  std::string().swap(json);  // what the agent keeps after a sync: the store only
  malloc_trim(0);
  const long rss_after = RssKiB();
  std::printf(
      "%-15s n=%d  json %.1f MiB  simdjson parse %.0f ms  decode %.0f ms (%.2fx parse, cpu %.0f "
      "ms)  store %.0f ms (cpu %.0f ms)  RSS after sync +%.1f MiB (%.0f B/object, %.2fx of the "
      "JSON)\n",
      what, n, json_bytes / 1048576.0, parse_ms, decode_ms, decode_ms / parse_ms, decode_cpu,
      store_ms, store_cpu, (rss_after - rss_before) / 1024.0, (rss_after - rss_before) * 1024.0 / n,
      (rss_after - rss_before) * 1024.0 / json_bytes);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  if (Run("Services", ObjectKind::kService, n) != 0) return 1;
  if (Run("EndpointSlices", ObjectKind::kEndpointSlice, n) != 0) return 1;
  return 0;
}
