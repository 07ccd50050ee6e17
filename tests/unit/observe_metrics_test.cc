// The /metrics exposition and the health answers, from fake inputs: the text must parse with
// the reference Prometheus parser (python3-prometheus-client) and say what the inputs say.
#include <gtest/gtest.h>

#include "agent/observe/board.h"
#include "agent/observe/exposition.h"
#include "agent/observe/render.h"
#include "maps/drop_reasons.h"
#include "tests/harness/prom_parse.h"

namespace skiff::observe {
namespace {

using skiff::testing::ParsePrometheusText;
using skiff::testing::SumSamples;

MetricsInput FakeInput() {
  MetricsInput in;
  in.build = {"1.2.3", "gcc \"12\"\nx\\y"};  // quote, newline and backslash need escaping
  in.datapath.traffic = {{"from_container", 0, 10, 1000},
                         {"to_container", 0, 7, 700},
                         {"from_container", SKIFF_DROP_NO_SERVICE_BACKEND, 3, 180},
                         {"from_container", SKIFF_DROP_POLICY_DENIED_EGRESS, 0, 0}};
  in.datapath.conntrack = {{"ipv4", "tcp", 5}, {"ipv4", "udp", 2}, {"ipv4", "icmp", 0}};
  in.datapath.maps = {{"skiff_ct4_global_v2", 7, 262144}, {"skiff_lb4_services_v2", 4, 8}};
  in.agent.sources = {{"manifests:/etc/x", true}, {"kubernetes", false}};
  in.agent.sync_latency.Observe(0.003);
  in.agent.sync_latency.Observe(0.2);
  in.agent.sync_latency.Observe(1000);  // beyond the last bound: only +Inf
  in.agent.reconcile_duration.Observe(0.0002);
  in.process = ProcessStats{1.5, 4096, 8192, 1.7e9, 12, 1024};
  return in;
}

TEST(ObserveExposition, ParsesWithThePrometheusParserAndCarriesTheInputs) {
  auto parsed = ParsePrometheusText(RenderMetrics(FakeInput()));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const auto& f = (*parsed)["families"];
  // The parser names counter families without _total; samples keep it.
  EXPECT_EQ(f["skiff_forwarded_packets"]["type"], "counter");
  EXPECT_EQ(SumSamples(*parsed, "skiff_forwarded_packets", "skiff_forwarded_packets_total",
                       {{"direction", "from_container"}}),
            10);
  EXPECT_EQ(SumSamples(*parsed, "skiff_forwarded_bytes", "skiff_forwarded_bytes_total",
                       {{"direction", "to_container"}}),
            700);
  EXPECT_EQ(SumSamples(*parsed, "skiff_drop_packets", "skiff_drop_packets_total",
                       {{"direction", "from_container"}, {"reason", "no_service_backend"}}),
            3);
  // A reason that never happened has no series.
  for (const auto& s : f["skiff_drop_packets"]["samples"])
    EXPECT_NE(s["labels"]["reason"], "policy_denied_egress");
  EXPECT_EQ(SumSamples(*parsed, "skiff_conntrack_entries", "skiff_conntrack_entries",
                       {{"family", "ipv4"}, {"protocol", "tcp"}}),
            5);
  EXPECT_EQ(SumSamples(*parsed, "skiff_bpf_map_pressure", "skiff_bpf_map_pressure",
                       {{"map", "skiff_lb4_services_v2"}}),
            0.5);
  EXPECT_EQ(
      SumSamples(*parsed, "skiff_source_synced", "skiff_source_synced", {{"source", "kubernetes"}}),
      0);
  EXPECT_EQ(SumSamples(*parsed, "skiff_ready", "skiff_ready"), 0);
  EXPECT_EQ(f["process_cpu_seconds"]["type"], "counter");
  EXPECT_EQ(SumSamples(*parsed, "process_resident_memory_bytes", "process_resident_memory_bytes"),
            4096);
  // Label escaping survives the round trip.
  ASSERT_EQ(f["skiff_build_info"]["samples"].size(), 1u);
  EXPECT_EQ(f["skiff_build_info"]["samples"][0]["labels"]["compiler"], "gcc \"12\"\nx\\y");
}

TEST(ObserveExposition, HistogramBucketsAreCumulativeWithInf) {
  auto parsed = ParsePrometheusText(RenderMetrics(FakeInput()));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const auto& fam = (*parsed)["families"]["skiff_sync_latency_seconds"];
  EXPECT_EQ(fam["type"], "histogram");
  std::map<std::string, double> buckets;
  for (const auto& s : fam["samples"])
    if (s["name"] == "skiff_sync_latency_seconds_bucket")
      buckets[s["labels"]["le"].get<std::string>()] = s["value"].get<double>();
  EXPECT_EQ(buckets["0.001"], 0);
  EXPECT_EQ(buckets["0.005"], 1);
  EXPECT_EQ(buckets["0.25"], 2);
  EXPECT_EQ(buckets["60"], 2);
  EXPECT_EQ(buckets["+Inf"], 3);
  EXPECT_EQ(SumSamples(*parsed, "skiff_sync_latency_seconds", "skiff_sync_latency_seconds_count"),
            3);
  EXPECT_NEAR(SumSamples(*parsed, "skiff_sync_latency_seconds", "skiff_sync_latency_seconds_sum"),
              1000.203, 1e-9);
}

TEST(ObserveExposition, EveryFamilyFollowsTheNamingConventions) {
  auto text = RenderMetrics(FakeInput());
  auto parsed = ParsePrometheusText(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  for (const auto& [name, fam] : (*parsed)["families"].items()) {
    EXPECT_TRUE(name.rfind("skiff_", 0) == 0 || name.rfind("process_", 0) == 0) << name;
    if (fam["type"] == "counter") {
      for (const auto& s : fam["samples"])
        EXPECT_EQ(s["name"], name + "_total") << "counter sample without _total";
    }
  }
  EXPECT_NE(text.find("# TYPE skiff_forwarded_packets_total counter\n"), std::string::npos);
}

TEST(ObserveExposition, TheParserRejectsMalformedText) {
  // The check above must be able to fail: these are what a broken writer would produce.
  for (const char* bad :
       {"# TYPE x counter\n# HELP x h\nx{a=\"unterminated} 1\n",
        "# TYPE x gauge\n# HELP x h\nx{a=1} 1\n" /* unquoted */,
        "# TYPE x gauge\n# HELP x h\nx{a=\"1\"}\n" /* no value */,
        "# TYPE x gauge\n# HELP x h\nx{a=\"1\"} not-a-number\n", "y 1\n" /* no TYPE/HELP */}) {
    auto r = ParsePrometheusText(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad << r.status();
  }
}

TEST(ObserveExposition, FormatsValuesAndEscapes) {
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(18446744073709551615.0), "1.8446744073709552e+19");
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(EscapeHelp("a\\b\nc\"d"), "a\\\\b\\nc\"d");
  EXPECT_EQ(DropReasonLabel(SKIFF_DROP_CT_MAP_FULL), "ct_map_full");
}

TEST(ObserveReadiness, NeedsSyncedSourcesWrittenStateAndAttachedInterfaces) {
  ObserveBoard b;
  EXPECT_NE(NotReadyReason(b.Read()), "");
  b.SetSources({{"manifests", false}});
  EXPECT_NE(NotReadyReason(b.Read()).find("manifests"), std::string::npos);
  b.SetSources({{"manifests", true}});
  EXPECT_NE(NotReadyReason(b.Read()), "") << "synced but nothing written yet";
  b.Reconciled(true, true, std::chrono::milliseconds(1), std::chrono::milliseconds(2));
  EXPECT_EQ(NotReadyReason(b.Read()), "");
  b.SetAttachments(1, {"lxc42"});
  EXPECT_NE(NotReadyReason(b.Read()).find("lxc42"), std::string::npos);
}

TEST(ObserveNodeHealth, FollowsKubeProxySemantics) {
  using namespace std::chrono;
  ObserveBoard b;
  auto now = steady_clock::now();
  system_clock::time_point wall{seconds(1700000000) + nanoseconds(120000000)};
  // Starting up with nothing pending: healthy, lastUpdated is the current time.
  auto a = NodeHealth(b.Read(), wall, now, seconds(60), false);
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body,
            "{\"lastUpdated\": \"2023-11-14 22:13:20.12 +0000 UTC\",\"currentTime\": "
            "\"2023-11-14 22:13:20.12 +0000 UTC\", \"nodeEligible\": true}");
  // A pending change younger than the timeout is fine; older is not.
  b.QueuedUpdate(now - seconds(10));
  EXPECT_EQ(NodeHealth(b.Read(), wall, now, seconds(60), false).status, 200);
  b.Reconciled(false, true, milliseconds(1), std::nullopt);  // failed: still pending
  auto stale = NodeHealth(b.Read(), wall, now + seconds(55), seconds(60), false);
  EXPECT_EQ(stale.status, 503);
  EXPECT_NE(stale.body.find("\"lastUpdated\": \"0001-01-01 00:00:00 +0000 UTC\""),
            std::string::npos);
  EXPECT_EQ(
      NodeHealth(b.Read(), wall, now + seconds(55), seconds(60), true).body.find("nodeEligible"),
      std::string::npos);
  b.Reconciled(true, true, milliseconds(1), milliseconds(3));
  EXPECT_EQ(NodeHealth(b.Read(), wall, now + seconds(55), seconds(60), false).status, 200);
}

}  // namespace
}  // namespace skiff::observe
