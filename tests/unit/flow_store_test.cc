// The observer's flow store and filters (agent/observe/flow_store.h, flow_filter.h) and
// agentctl's flow rendering (cli/flows.h): pure code, no BPF.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <gtest/gtest.h>

#include "agent/observe/flow_filter.h"
#include "agent/observe/flow_proto.h"
#include "agent/observe/flow_store.h"
#include "cli/flows.h"
#include "maps/drop_reasons.h"
#include "maps/metrics.h"

namespace skiff::observe {
namespace {

uint32_t Ip(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

FlowRecord Translated(const char* client, uint16_t cport, const char* vip, uint16_t vport,
                      const char* backend, uint16_t bport, int64_t t = 1000) {
  FlowRecord r;
  r.time_unix_ns = t;
  r.ev.type = SKIFF_EVENT_TRACE_NEW;
  r.ev.verdict = SKIFF_VERDICT_TRANSLATED;
  r.ev.family = SKIFF_AF_INET;
  r.ev.proto = IPPROTO_TCP;
  r.ev.tcp_flags = 0x02;
  r.ev.flags = SKIFF_EVENT_F_XLATED;
  r.ev.direction = 0;
  r.ev.orig_saddr = Ip(client);
  r.ev.orig_sport = htons(cport);
  r.ev.orig_daddr = Ip(vip);
  r.ev.orig_dport = htons(vport);
  r.ev.xlated_saddr = Ip(client);
  r.ev.xlated_sport = htons(cport);
  r.ev.xlated_daddr = Ip(backend);
  r.ev.xlated_dport = htons(bport);
  r.ev.backend_id = 7;
  r.ev.rev_nat_id = 3;
  return r;
}

FlowRecord Drop(const char* src, const char* dst, uint16_t dport, int reason, int64_t t = 1000) {
  FlowRecord r;
  r.time_unix_ns = t;
  r.ev.type = SKIFF_EVENT_DROP;
  r.ev.verdict = SKIFF_VERDICT_DROPPED;
  r.ev.family = SKIFF_AF_INET;
  r.ev.proto = IPPROTO_UDP;
  r.ev.drop_reason = reason;
  r.ev.orig_saddr = Ip(src);
  r.ev.orig_daddr = Ip(dst);
  r.ev.orig_sport = htons(5000);
  r.ev.orig_dport = htons(dport);
  return r;
}

FlowFilter Filter(const std::function<void(v1::FlowFilter&)>& fill) {
  v1::FlowFilter f;
  fill(f);
  auto parsed = ParseFlowFilter(f);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : FlowFilter{};
}

TEST(FlowStore, KeepsTheLastNAndNumbersEveryRecord) {
  FlowStore s(3);
  for (int i = 0; i < 5; i++) s.Add(Drop("10.0.0.1", "10.0.0.2", 1000 + i, -138));
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.last_seq(), 5u);
  auto all = s.Since(0);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].seq, 3u);
  EXPECT_EQ(ntohs(all[0].ev.orig_dport), 1002);
  EXPECT_EQ(all[2].seq, 5u);
  auto newer = s.Since(4);
  ASSERT_EQ(newer.size(), 1u);
  EXPECT_EQ(newer[0].seq, 5u);
  EXPECT_TRUE(s.Since(5).empty());
  EXPECT_TRUE(s.WaitNewer(4, std::chrono::milliseconds(0)));
  EXPECT_FALSE(s.WaitNewer(5, std::chrono::milliseconds(0)));
}

TEST(FlowFilter, IpAndCidrMatchEitherSideOfTheTranslation) {
  auto r = Translated("10.0.1.5", 40000, "10.96.0.10", 80, "10.244.1.11", 8080);
  EXPECT_TRUE(Filter([](auto& f) { f.add_ip("10.96.0.10"); }).Matches(r));
  EXPECT_TRUE(Filter([](auto& f) { f.add_ip("10.244.0.0/16"); }).Matches(r));
  EXPECT_TRUE(Filter([](auto& f) { f.add_ip("10.0.1.5/32"); }).Matches(r));
  EXPECT_FALSE(Filter([](auto& f) { f.add_ip("192.168.0.0/16"); }).Matches(r));
  EXPECT_TRUE(Filter([](auto& f) { f.add_source_ip("10.0.1.0/24"); }).Matches(r));
  EXPECT_FALSE(Filter([](auto& f) { f.add_source_ip("10.244.0.0/16"); }).Matches(r));
  EXPECT_TRUE(Filter([](auto& f) { f.add_destination_ip("10.244.1.11"); }).Matches(r));
  EXPECT_FALSE(Filter([](auto& f) { f.add_destination_ip("10.0.1.5"); }).Matches(r));
  // Values of one field are alternatives.
  EXPECT_TRUE(Filter([](auto& f) {
                f.add_ip("192.168.0.1");
                f.add_ip("10.244.1.11");
              }).Matches(r));
  EXPECT_TRUE(Filter([](auto& f) { f.add_ip("0.0.0.0/0"); }).Matches(r));
}

TEST(FlowFilter, FieldsMustAllMatch) {
  auto r = Translated("10.0.1.5", 40000, "10.96.0.10", 80, "10.244.1.11", 8080);
  r.source_pod = "default/client";
  r.destination_pod = "default/web-1";
  r.service = "default/web";
  EXPECT_TRUE(Filter([](auto& f) { f.add_port(8080); }).Matches(r));
  EXPECT_TRUE(Filter([](auto& f) { f.add_port(80); }).Matches(r));
  EXPECT_FALSE(Filter([](auto& f) { f.add_port(443); }).Matches(r));
  EXPECT_TRUE(Filter([](auto& f) { f.add_protocol("TCP"); }).Matches(r));
  EXPECT_FALSE(Filter([](auto& f) { f.add_protocol("udp"); }).Matches(r));
  EXPECT_TRUE(Filter([](auto& f) { f.add_verdict("translated"); }).Matches(r));
  EXPECT_FALSE(Filter([](auto& f) { f.add_verdict("DROPPED"); }).Matches(r));
  EXPECT_TRUE(Filter([](auto& f) { f.add_pod("default/web-1"); }).Matches(r));
  EXPECT_TRUE(Filter([](auto& f) { f.add_pod("default/"); }).Matches(r));
  EXPECT_FALSE(Filter([](auto& f) { f.add_pod("kube-system/"); }).Matches(r));
  EXPECT_TRUE(Filter([](auto& f) { f.add_service("default/web"); }).Matches(r));
  EXPECT_FALSE(Filter([](auto& f) { f.add_service("default/api"); }).Matches(r));
  EXPECT_FALSE(Filter([](auto& f) {
                 f.add_port(80);
                 f.add_verdict("DROPPED");
               }).Matches(r));
}

TEST(FlowFilter, DropReasonByNameShortNameOrCode) {
  auto r = Drop("10.0.1.5", "10.96.0.20", 80, SKIFF_DROP_NO_SERVICE_BACKEND);
  EXPECT_TRUE(
      Filter([](auto& f) { f.add_drop_reason("SKIFF_DROP_NO_SERVICE_BACKEND"); }).Matches(r));
  EXPECT_TRUE(Filter([](auto& f) { f.add_drop_reason("no_service_backend"); }).Matches(r));
  EXPECT_TRUE(Filter([](auto& f) { f.add_drop_reason("-138"); }).Matches(r));
  EXPECT_FALSE(Filter([](auto& f) { f.add_drop_reason("POLICY_DENIED"); }).Matches(r));
}

TEST(FlowFilter, BadValuesNameTheField) {
  auto bad = [](const std::function<void(v1::FlowFilter&)>& fill, const std::string& field) {
    v1::FlowFilter f;
    fill(f);
    auto st = ParseFlowFilter(f).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_NE(std::string(st.message()).find(field), std::string::npos) << st;
  };
  bad([](auto& f) { f.add_ip("10.0.0.300"); }, "filter.ip");
  bad([](auto& f) { f.add_ip("10.0.0.0/33"); }, "filter.ip");
  bad([](auto& f) { f.add_source_ip("web"); }, "filter.source_ip");
  bad([](auto& f) { f.add_port(70000); }, "filter.port");
  bad([](auto& f) { f.add_protocol("sctp"); }, "filter.protocol");
  bad([](auto& f) { f.add_verdict("ALLOWED"); }, "filter.verdict");
  bad([](auto& f) { f.add_pod("web"); }, "filter.pod");
  bad([](auto& f) { f.add_service("/web"); }, "filter.service");
  bad([](auto& f) { f.add_drop_reason("BANANA"); }, "filter.drop_reason");
  bad([](auto& f) { f.add_event_type("trace"); }, "filter.event_type");
}

TEST(FlowQuery, SinceFilterThenLastN) {
  std::vector<FlowRecord> recs;
  for (int i = 0; i < 10; i++) {
    auto r = Drop("10.0.0.1", "10.0.0.2", i % 2 ? 53 : 80, SKIFF_DROP_POLICY_DENIED, 100 * i);
    r.seq = i + 1;
    recs.push_back(r);
  }
  v1::ObserveRequest req;
  req.mutable_filter()->add_port(53);
  req.set_since_unix_nano(300);
  req.set_last(2);
  auto q = ParseObserveRequest(req);
  ASSERT_TRUE(q.ok()) << q.status();
  auto out = SelectBuffered(recs, *q);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].time_unix_ns, 700);  // port 53 at 300, 500, 700, 900: the last two
  EXPECT_EQ(out[1].time_unix_ns, 900);
  req.set_last(0);
  q = ParseObserveRequest(req);
  EXPECT_EQ(SelectBuffered(recs, *q).size(), 4u);
}

TEST(FlowRender, JsonUsesHubbleFieldNames) {
  auto r =
      Translated("10.0.1.5", 40000, "10.96.0.10", 80, "10.244.1.11", 8080, 1700000000123456789);
  r.source_pod = "default/client";
  r.destination_pod = "default/web-1";
  r.service = "default/web";
  v1::Flow f;
  FillFlow(r, "node-a", &f);
  cli::Json j = cli::FlowJson(f);
  EXPECT_EQ(j["time"], "2023-11-14T22:13:20.123456789Z");
  EXPECT_EQ(j["verdict"], "TRANSLATED");
  EXPECT_EQ(j["IP"]["source"], "10.0.1.5");
  EXPECT_EQ(j["IP"]["destination"], "10.244.1.11");
  EXPECT_EQ(j["IP"]["ipVersion"], "IPv4");
  EXPECT_EQ(j["l4"]["TCP"]["source_port"], 40000);
  EXPECT_EQ(j["l4"]["TCP"]["destination_port"], 8080);
  EXPECT_EQ(j["l4"]["TCP"]["flags"]["SYN"], true);
  EXPECT_EQ(j["source"]["namespace"], "default");
  EXPECT_EQ(j["source"]["pod_name"], "client");
  EXPECT_EQ(j["destination"]["pod_name"], "web-1");
  EXPECT_EQ(j["destination_service"]["name"], "web");
  EXPECT_EQ(j["destination_service"]["namespace"], "default");
  EXPECT_EQ(j["service"], "default/web");
  EXPECT_EQ(j["Type"], "L3_L4");
  EXPECT_EQ(j["node_name"], "node-a");
  EXPECT_EQ(j["is_reply"], false);
  EXPECT_EQ(j["trace_observation_point"], "FROM_ENDPOINT");
  EXPECT_EQ(j["event_type"]["type"], 4);
  EXPECT_EQ(j["skiff"]["frontend"], "10.96.0.10:80");
  EXPECT_EQ(j["skiff"]["backend"], "10.244.1.11:8080");
  EXPECT_FALSE(j.contains("drop_reason_desc"));

  std::string line = cli::FlowLine(f);
  EXPECT_NE(line.find("default/client:40000 -> default/web-1:8080 service default/web "
                      "10.96.0.10:80 -> 10.244.1.11:8080 TRANSLATED (TCP Flags: SYN)"),
            std::string::npos)
      << line;
}

TEST(FlowRender, DropCarriesItsReason) {
  auto r = Drop("10.0.1.5", "10.96.0.20", 80, SKIFF_DROP_NO_SERVICE_BACKEND);
  r.service = "default/empty";
  v1::Flow f;
  FillFlow(r, "node-a", &f);
  EXPECT_EQ(f.drop_reason_name(), "SKIFF_DROP_NO_SERVICE_BACKEND");
  cli::Json j = cli::FlowJson(f);
  EXPECT_EQ(j["verdict"], "DROPPED");
  EXPECT_EQ(j["drop_reason_desc"], "NO_SERVICE_BACKEND");
  EXPECT_EQ(j["l4"]["UDP"]["destination_port"], 80);
  EXPECT_EQ(j["event_type"]["type"], 1);
  EXPECT_EQ(j["destination_service"]["name"], "empty");
  std::string line = cli::FlowLine(f);
  EXPECT_NE(line.find("DROPPED (service has no backends)"), std::string::npos) << line;
}

TEST(FlowRender, XdpDropsComeFromTheNetwork) {
  auto r = Drop("203.0.113.5", "198.51.100.9", 80, SKIFF_DROP_SOURCE_RANGE);
  r.ev.direction = SKIFF_DIR_XDP;
  v1::Flow f;
  FillFlow(r, "node-a", &f);
  EXPECT_EQ(f.direction(), "xdp");
  EXPECT_EQ(cli::FlowJson(f)["trace_observation_point"], "FROM_NETWORK");
}

}  // namespace
}  // namespace skiff::observe
