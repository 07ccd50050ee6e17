// Golden tests of agentctl's output formats from hand-built API messages: kubectl-style
// tables and the JSON/YAML contract (field names, every field present, numbers as numbers),
// and the streaming printer being byte-identical to printing the whole document.
#include <sstream>

#include <gtest/gtest.h>

#include "cli/output.h"
#include "cli/render.h"

namespace skiff::cli {
namespace {

v1::ConntrackEntry Entry() {
  v1::ConntrackEntry e;
  e.set_kind("service");
  e.set_protocol("TCP");
  e.set_src_address("10.244.1.10");
  e.set_src_port(40000);
  e.set_dst_address("10.96.0.10");
  e.set_dst_port(80);
  e.set_nat_address("10.244.1.11");
  e.set_nat_port(8080);
  e.set_orig_address("10.244.1.10");
  e.set_orig_port(40000);
  e.set_backend_id(1);
  e.set_rev_nat_id(2);
  e.set_service("default/web");
  e.set_packets(3);
  e.set_bytes(180);
  e.set_age_seconds(75);
  e.set_expires_in_seconds(21590);
  e.add_flags("established");
  e.set_tcp_flags("SYN|ACK");
  return e;
}

TEST(AgentctlGolden, TableIsAlignedLikeKubectl) {
  Table t({"NAME", "VALUE", "LAST"});
  t.Add({"a", "", "x"});
  t.Add({"longer-name", "1", ""});
  EXPECT_EQ(t.Render(),
            "NAME          VALUE    LAST\n"
            "a             <none>   x\n"
            "longer-name   1        <none>\n");
}

TEST(AgentctlGolden, ConntrackTable) {
  Table t = ConntrackTable();
  AddConntrackRow(t, Entry());
  v1::ConntrackEntry reply = Entry();
  reply.set_kind("reply");
  reply.set_src_address("10.244.1.11");
  reply.set_src_port(8080);
  reply.set_dst_address("10.244.1.10");
  reply.set_dst_port(40000);
  reply.set_nat_address("10.96.0.10");
  reply.set_nat_port(80);
  reply.set_expires_in_seconds(-3);
  AddConntrackRow(t, reply);
  EXPECT_EQ(t.Render(),
            "KIND      PROTO   SOURCE              DESTINATION         NAT                "
            "SERVICE       FLAGS         PACKETS   BYTES   AGE     EXPIRES\n"
            "service   TCP     10.244.1.10:40000   10.96.0.10:80       10.244.1.11:8080   "
            "default/web   established   3         180     1m15s   5h59m\n"
            "reply     TCP     10.244.1.11:8080    10.244.1.10:40000   10.96.0.10:80      "
            "default/web   established   3         180     1m15s   expired\n");
}

TEST(AgentctlGolden, ConntrackJson) {
  EXPECT_EQ(ToJson(Entry()).dump(2), R"({
  "kind": "service",
  "protocol": "TCP",
  "src_address": "10.244.1.10",
  "src_port": 40000,
  "dst_address": "10.96.0.10",
  "dst_port": 80,
  "nat_address": "10.244.1.11",
  "nat_port": 8080,
  "orig_address": "10.244.1.10",
  "orig_port": 40000,
  "backend_id": 1,
  "rev_nat_id": 2,
  "service": "default/web",
  "packets": 3,
  "bytes": 180,
  "age_seconds": 75,
  "expires_in_seconds": 21590,
  "flags": [
    "established"
  ],
  "tcp_flags": "SYN|ACK"
})");
}

TEST(AgentctlGolden, ServiceListTableAndJson) {
  v1::ListServicesResponse r;
  auto* s = r.add_services();
  s->set_namespace_("default");
  s->set_name("web");
  auto* f = s->add_frontends();
  f->set_address("10.96.0.10");
  f->set_port(80);
  f->set_protocol("TCP");
  f->set_kind("ClusterIP");
  f->set_port_name("http");
  f->set_rev_nat_id(1);
  f->set_state("programmed");
  f->set_lb_algorithm("maglev");
  auto* b = f->add_backends();
  b->set_id(1);
  b->set_address("10.244.1.11");
  b->set_port(8080);
  b->set_state("active");
  b->set_node_local(true);
  b->set_pod("default/web-1");
  b->set_slot(1);
  auto* headless = r.add_services();
  headless->set_namespace_("kube-system");
  headless->set_name("dns-headless");
  EXPECT_EQ(ServiceListTable(r),
            "NAMESPACE     NAME           KIND        FRONTEND            PORT     ACTIVE   "
            "TERMINATING   REV-NAT   ALGORITHM   STATE\n"
            "default       web            ClusterIP   10.96.0.10:80/TCP   http     1        0  "
            "           1         maglev      programmed\n"
            "kube-system   dns-headless   <none>      <none>              <none>   <none>   <none>"
            "        <none>    <none>      <none>\n");
  EXPECT_EQ(ToJson(r).dump(2), R"({
  "services": [
    {
      "namespace": "default",
      "name": "web",
      "frontends": [
        {
          "address": "10.96.0.10",
          "port": 80,
          "protocol": "TCP",
          "kind": "ClusterIP",
          "port_name": "http",
          "rev_nat_id": 1,
          "state": "programmed",
          "session_affinity": false,
          "affinity_timeout_seconds": 0,
          "internal_traffic_local": false,
          "external_traffic_local": false,
          "backends": [
            {
              "id": 1,
              "address": "10.244.1.11",
              "port": 8080,
              "state": "active",
              "node_local": true,
              "pod": "default/web-1",
              "slot": 1
            }
          ],
          "lb_algorithm": "maglev"
        }
      ]
    },
    {
      "namespace": "kube-system",
      "name": "dns-headless",
      "frontends": []
    }
  ]
})");
}

TEST(AgentctlGolden, MapEntryJsonIsKeyAndValueObjects) {
  v1::MapEntry e;
  auto* k = e.add_key();
  k->set_name("id");
  k->set_uint(7);
  auto* v = e.add_value();
  v->set_name("address");
  v->set_text("10.244.1.11");
  EXPECT_EQ(ToJson(e).dump(), R"({"key":{"id":7},"value":{"address":"10.244.1.11"}})");
  Table t = MapDumpTable(e);
  AddMapDumpRow(t, e);
  EXPECT_EQ(t.Render(), "ID   ADDRESS\n7    10.244.1.11\n");
}

TEST(AgentctlGolden, YamlQuotesStringsAndKeepsNumbers) {
  v1::ConntrackEntry e = Entry();
  e.clear_flags();
  std::string y = ToYaml(ToJson(e));
  EXPECT_NE(y.find("kind: \"service\"\n"), std::string::npos) << y;
  EXPECT_NE(y.find("src_port: 40000\n"), std::string::npos) << y;
  EXPECT_NE(y.find("flags: []\n"), std::string::npos) << y;
}

// Streaming a list must print exactly what printing the whole document prints.
class StreamingListTest : public ::testing::TestWithParam<std::tuple<Format, int>> {};

TEST_P(StreamingListTest, MatchesWholeDocument) {
  auto [format, n] = GetParam();
  Json head = Json::object();
  head["map"] = Json{{"name", "skiff_ct4_global_v2"}, {"entries", 0}};
  Json whole = head;
  whole["entries"] = Json::array();
  std::ostringstream streamed;
  StreamingList list(streamed, format, head, "entries");
  for (int i = 0; i < n; i++) {
    v1::ConntrackEntry e = Entry();
    e.set_src_port(40000 + i);
    Json j = ToJson(e);
    whole["entries"].push_back(j);
    list.Add(j);
  }
  list.End();
  EXPECT_EQ(streamed.str(), Render(whole, format));
}

INSTANTIATE_TEST_SUITE_P(Formats, StreamingListTest,
                         ::testing::Combine(::testing::Values(Format::kJson, Format::kYaml),
                                            ::testing::Values(0, 1, 3)));

TEST(AgentctlGolden, DurationsReadLikeKubectl) {
  EXPECT_EQ(Duration(45), "45s");
  EXPECT_EQ(Duration(192), "3m12s");
  EXPECT_EQ(Duration(3600), "1h");
  EXPECT_EQ(Duration(7500), "2h5m");
  EXPECT_EQ(Duration(273600), "3d4h");
}

}  // namespace
}  // namespace skiff::cli
