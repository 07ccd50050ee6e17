// The compact endpoint parts (agent/model/endpoint_fields.h): addresses read back as written
// whether kept as a parsed IP or as text, and a targetRef in one block reads like the
// ObjectReference it was made from.
#include "agent/model/endpoint_fields.h"

#include <string>
#include <utility>

#include "agent/model/objects.h"
#include "gtest/gtest.h"

namespace skiff::model {
namespace {

TEST(EndpointAddresses, KeepsTheTextAsWrittenAndTheFirstIp) {
  EndpointAddresses a;
  EXPECT_TRUE(a.empty());
  EXPECT_FALSE(a.FrontIp());
  a.push_back("10.244.1.5");
  a.push_back("10.244.1.6");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0], "10.244.1.5");
  EXPECT_EQ(a.front(), "10.244.1.5");
  EXPECT_EQ(a[1], "10.244.1.6");
  ASSERT_TRUE(a.FrontIp());
  EXPECT_EQ(a.FrontIp()->ToString(), "10.244.1.5");

  // Text that is not an address's canonical form stays text: FQDNs, IPv6 as not written by
  // inet_ntop; canonical IPv6 is kept parsed.
  EndpointAddresses fqdn = {"backend.example.com"};
  EXPECT_EQ(fqdn.front(), "backend.example.com");
  EXPECT_FALSE(fqdn.FrontIp());
  EndpointAddresses v6 = {"FD00:0::1"};
  EXPECT_EQ(v6.front(), "FD00:0::1");
  ASSERT_TRUE(v6.FrontIp());
  EXPECT_EQ(v6.FrontIp()->ToString(), "fd00::1");
  EndpointAddresses v6c = {"fd00::1"};
  EXPECT_EQ(v6c.front(), "fd00::1");
  EXPECT_NE(v6, v6c);  // different text, as the std::string addresses compared
}

TEST(EndpointAddresses, CopiesAndComparesByValue) {
  EndpointAddresses a = {"10.0.0.1", "not-an-ip"};
  EndpointAddresses b = a;
  EXPECT_EQ(a, b);
  b.push_back("10.0.0.3");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1], "not-an-ip");
  EndpointAddresses c = std::move(b);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c[2], "10.0.0.3");
  EXPECT_NE(EndpointAddresses{"10.0.0.1"}, EndpointAddresses{"10.0.0.2"});
  EXPECT_EQ(EndpointAddresses{"10.0.0.1"}, EndpointAddresses{"10.0.0.1"});
}

TEST(TargetRef, ReadsLikeTheReferenceItWasMadeFrom) {
  TargetRef none;
  EXPECT_FALSE(none);
  EXPECT_EQ(none, TargetRef(std::nullopt));

  TargetRef pod = ObjectReference{"Pod", "shop", "web-7d4b9c8f5-x2x9k-with-a-long-name"};
  ASSERT_TRUE(pod);
  EXPECT_EQ(pod->kind, "Pod");
  EXPECT_EQ(pod->namespace_, "shop");
  EXPECT_EQ(pod->name, "web-7d4b9c8f5-x2x9k-with-a-long-name");
  TargetRef copy = pod;
  EXPECT_EQ(copy, pod);
  EXPECT_NE(copy, none);
  EXPECT_NE(pod, TargetRef(ObjectReference{"Pod", "shop", "web-2"}));
  EXPECT_NE(pod, TargetRef(ObjectReference{"Pod", "", "web-7d4b9c8f5-x2x9k-with-a-long-name"}));

  TargetRef moved = std::move(copy);
  EXPECT_EQ(moved->name, "web-7d4b9c8f5-x2x9k-with-a-long-name");
  moved = none;
  EXPECT_FALSE(moved);
  TargetRef empty_name = ObjectReference{"Pod", "", ""};
  ASSERT_TRUE(empty_name);
  EXPECT_TRUE(empty_name->name.empty());
}

TEST(Endpoint, IsCompact) {
  // A million of these at 100,000 Services × 10: the targetRef and addresses out of line.
  EXPECT_LE(sizeof(Endpoint), 40u);
}

}  // namespace
}  // namespace skiff::model
