// The compact endpoint parts (agent/model/endpoint_fields.h): addresses read back as written
// whether kept as a parsed IP or as text, and a targetRef reads like the ObjectReference it was
// made from, whether kept inline (a pool entry for all of it but the name's last part) or in a
// block of its own.
#include "agent/model/endpoint_fields.h"

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/model/objects.h"
#include "agent/model/ref_prefixes.h"
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

// Every field as written, and equal to a copy.
void ExpectRoundTrip(const ObjectReference& ref, bool is_inline) {
  SCOPED_TRACE(testing::Message() << "ref " << ref.kind.str() << " " << ref.namespace_.str()
                                  << " \"" << ref.name << "\"");
  const TargetRef t = ref;
  ASSERT_TRUE(t);
  EXPECT_EQ(t.is_inline(), is_inline);
  EXPECT_EQ(t->kind, ref.kind);
  EXPECT_EQ(t->namespace_, ref.namespace_);
  EXPECT_EQ(t->name, ref.name);
  EXPECT_EQ(t->name.size(), ref.name.size());
  const TargetRef copy = t;
  EXPECT_EQ(copy, t);
  EXPECT_EQ(copy.is_inline(), is_inline);
  EXPECT_EQ((*copy).name, ref.name);
}

TEST(TargetRef, DeploymentPodsAreInlineAndRoundTrip) {
  ExpectRoundTrip({"Pod", "shop", "web-7d4b9c8f5d-x2x9k"}, true);
  ExpectRoundTrip({"Pod", "default", "svc-12345-kbnk5q6lwp-zflm4"}, true);
  ExpectRoundTrip({"Pod", "shop", "db-0"}, true);  // a StatefulSet's
  ExpectRoundTrip({"Pod", "shop", "db-12"}, true);
  ExpectRoundTrip({"Pod", "kube-system", "kube-proxy-8hx2q"}, true);  // a DaemonSet's
  ExpectRoundTrip({"Pod", "shop", "abc"}, true);   // no '-': all of it is the last part
  ExpectRoundTrip({"Pod", "shop", "web-"}, true);  // an empty last part
  ExpectRoundTrip({"Pod", "", ""}, true);          // everything empty
  ExpectRoundTrip({"", "", "x"}, true);
  ExpectRoundTrip({"Node", "", "node-1"}, true);                         // another kind
  ExpectRoundTrip({"Pod", "shop", std::string("a-b\0c\x7f", 6)}, true);  // any ASCII byte
}

TEST(TargetRef, UnusualNamesTakeABlockAndRoundTrip) {
  ExpectRoundTrip({"Pod", "shop", "web-7d4b9c8f5-x2x9k-with-a-longname"}, false);
  ExpectRoundTrip({"Pod", "shop", "web-7d4b9c8f5-x2x9k-with-a-long-name"}, true);  // "name"
  ExpectRoundTrip({"Pod", "shop", "web-abcdef"}, false);       // last part of 6 characters
  ExpectRoundTrip({"Pod", "shop", "standalone"}, false);       // no '-', longer than 5
  ExpectRoundTrip({"Pod", "shop", "web-caf\xc3\xa9"}, false);  // not ASCII
  ExpectRoundTrip({"Pod", "shop", std::string(300, 'p')}, false);
  ExpectRoundTrip({"Pod", "", std::string(200, 'p') + "-x"}, true);   // a long prefix is fine
  ExpectRoundTrip({"Pod", "", std::string(300, 'p') + "-x"}, false);  // up to 255 bytes
}

TEST(TargetRef, EqualityIsTheFields) {
  const TargetRef a = ObjectReference{"Pod", "shop", "web-7d4b9c8f5d-x2x9k"};
  EXPECT_EQ(a, TargetRef(ObjectReference{"Pod", "shop", "web-7d4b9c8f5d-x2x9k"}));
  EXPECT_NE(a, TargetRef(ObjectReference{"Pod", "shop", "web-7d4b9c8f5d-x2x9q"}));
  EXPECT_NE(a, TargetRef(ObjectReference{"Pod", "shop", "web-7d4b9c8f5d-x2x9"}));
  EXPECT_NE(a, TargetRef(ObjectReference{"Pod", "shop", "web-7d4b9c8f5e-x2x9k"}));
  EXPECT_NE(a, TargetRef(ObjectReference{"Pod", "other", "web-7d4b9c8f5d-x2x9k"}));
  EXPECT_NE(a, TargetRef(ObjectReference{"Node", "shop", "web-7d4b9c8f5d-x2x9k"}));
  EXPECT_NE(a, TargetRef(ObjectReference{"Pod", "shop", "web-7d4b9c8f5d-x2x9kk"}));  // a block
  EXPECT_NE(a, TargetRef());
  // A shorter suffix is not the same one padded with NULs.
  EXPECT_NE(TargetRef(ObjectReference{"Pod", "", "web-a"}),
            TargetRef(ObjectReference{"Pod", "", std::string("web-a\0", 6)}));
  EXPECT_NE(TargetRef(ObjectReference{"Pod", "", ""}), TargetRef());
  const TargetRef long_name = ObjectReference{"Pod", "shop", "web-abcdefgh"};
  EXPECT_EQ(long_name, TargetRef(ObjectReference{"Pod", "shop", "web-abcdefgh"}));
  EXPECT_NE(long_name, TargetRef(ObjectReference{"Pod", "shop", "web-abcdefgi"}));
  EXPECT_NE(long_name, a);
}

TEST(TargetRef, CopiesAndMovesShareOneEntryFreedWithTheLast) {
  const size_t before = ref_prefixes::Count();
  {
    TargetRef a = ObjectReference{"Pod", "count-test", "api-5c9d7f8b6c-abcde"};
    EXPECT_EQ(ref_prefixes::Count(), before + 1);
    std::vector<TargetRef> slice;
    for (const char* s : {"q2w4e", "r5t6y", "z7x8c"})
      slice.push_back(ObjectReference{"Pod", "count-test", std::string("api-5c9d7f8b6c-") + s});
    EXPECT_EQ(ref_prefixes::Count(), before + 1);  // one replicaset, one entry
    TargetRef b = a;
    TargetRef c = std::move(b);
    EXPECT_FALSE(b);  // NOLINT: moved from is empty
    EXPECT_EQ(c, a);
    c = slice[1];
    EXPECT_EQ(c->name, "api-5c9d7f8b6c-r5t6y");
    c = c;  // NOLINT: self-assignment keeps it
    EXPECT_EQ(c->name, "api-5c9d7f8b6c-r5t6y");
    a = TargetRef(ObjectReference{"Pod", "count-test", "api-6f8e9d7c5b-abcde"});  // a rollout
    EXPECT_EQ(ref_prefixes::Count(), before + 2);
    slice.clear();
    c = std::nullopt;
    EXPECT_EQ(ref_prefixes::Count(), before + 1);  // the old replicaset's entry is gone
    EXPECT_EQ(a->name, "api-6f8e9d7c5b-abcde");
  }
  EXPECT_EQ(ref_prefixes::Count(), before);
  // A freed entry's id is reused, and reads as the new entry.
  const TargetRef again = ObjectReference{"Pod", "count-test", "api-7a6b5c4d3e-fghij"};
  EXPECT_EQ(again->name, "api-7a6b5c4d3e-fghij");
  EXPECT_EQ(again->namespace_, "count-test");
}

TEST(TargetRef, ThreadsMakeCopyAndDropReferencesToOneEntry) {
  const size_t before = ref_prefixes::Count();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([t] {
      for (int i = 0; i < 20000; i++) {
        const std::string name = "job-" + std::to_string(i % 7) + "-" + std::to_string(t);
        TargetRef a = ObjectReference{"Pod", "threads", name};
        TargetRef b = a;
        TargetRef c = std::move(a);
        if (b->name != name || c != b) ADD_FAILURE() << "read back " << b->name << " for " << name;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(ref_prefixes::Count(), before);
}

TEST(Endpoint, IsCompact) {
  // A million of these at 100,000 Services × 10: the targetRef and addresses out of line.
  EXPECT_LE(sizeof(Endpoint), 40u);
}

}  // namespace
}  // namespace skiff::model
