// The frontend filter kept by FrontendFilterTable (agent/reconcile/frontend_filter.h): a
// frontend's bit is in the filter before its service entry exists and leaves only after the
// last frontend sharing it is gone; backend slots and node-local scopes never set bits.
#include "agent/reconcile/frontend_filter.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>
#include <vector>

namespace skiff::reconcile {
namespace {

skiff_lb4_key Key(uint32_t vip, uint16_t port, uint8_t scope = SKIFF_SCOPE_EXTERNAL,
                  uint16_t slot = 0) {
  skiff_lb4_key k{};
  k.address = htonl(vip);
  k.dport = htons(port);
  k.proto = IPPROTO_TCP;
  k.scope = scope;
  k.slot = slot;
  return k;
}

using FilterTable = FakeKvTable<__u32, skiff_lb4_fe_filter>;

bool BitSet(const FilterTable& f, const skiff_lb4_key& k) {
  auto it = f.entries().find(0);
  if (it == f.entries().end()) return false;
  uint32_t b = skiff_lb4_fe_filter_bit(k.address, k.dport, k.proto);
  return (it->second.bits[b / 64] >> (b % 64)) & 1;
}

bool Armed(const FilterTable& f) {
  auto it = f.entries().find(0);
  return it != f.entries().end() && it->second.state == SKIFF_LB4_FE_FILTER_ARMED;
}

// The service map, checking on every write that a frontend's bit is already in the filter.
class CheckedServices : public FakeKvTable<skiff_lb4_key, skiff_lb4_service> {
 public:
  explicit CheckedServices(const FilterTable* filter)
      : FakeKvTable("services", 1024), filter_(filter) {}
  absl::Status Update(const skiff_lb4_key& k, const skiff_lb4_service& v) override {
    if (FrontendFilterTable::IsFrontend(k) && Armed(*filter_) && !BitSet(*filter_, k))
      violations.push_back(ntohs(k.dport));
    return FakeKvTable::Update(k, v);
  }
  std::vector<int> violations;

 private:
  const FilterTable* filter_;
};

TEST(FrontendFilterTest, InitArmsWithTheFrontendsAlreadyInTheMap) {
  FilterTable filter("filter", 1);
  CheckedServices services(&filter);
  skiff_lb4_service v{};
  ASSERT_TRUE(services.Update(Key(0x0a60000a, 80), v).ok());
  ASSERT_TRUE(services.Update(Key(0x0a60000a, 80, SKIFF_SCOPE_EXTERNAL, 1), v).ok());
  ASSERT_TRUE(services.Update(Key(0x0a60000b, 81, SKIFF_SCOPE_INTERNAL, 0), v).ok());
  FrontendFilterTable t(&services, &filter);
  EXPECT_FALSE(Armed(filter));
  ASSERT_TRUE(t.Init().ok());
  EXPECT_TRUE(t.armed());
  EXPECT_TRUE(Armed(filter));
  EXPECT_TRUE(BitSet(filter, Key(0x0a60000a, 80)));
  // Only frontends: the backend slot and the internal scope have keys of their own but no bit
  // (the same address and port as the external frontend would, so check other ones).
  EXPECT_FALSE(BitSet(filter, Key(0x0a60000b, 81)));
}

TEST(FrontendFilterTest, BitBeforeTheFrontendAndClearedAfterTheLastUser) {
  FilterTable filter("filter", 1);
  CheckedServices services(&filter);
  FrontendFilterTable t(&services, &filter);
  ASSERT_TRUE(t.Init().ok());
  skiff_lb4_service v{};
  // Two frontends sharing one bit.
  skiff_lb4_key a = Key(0x0a600001, 80), b{};
  bool found = false;
  for (uint32_t vip = 0x0a600002; vip < 0x0a610000 && !found; vip++)
    for (uint16_t port = 1; port < 64 && !found; port++) {
      b = Key(vip, port);
      found = skiff_lb4_fe_filter_bit(a.address, a.dport, a.proto) ==
              skiff_lb4_fe_filter_bit(b.address, b.dport, b.proto);
    }
  ASSERT_TRUE(found);
  ASSERT_TRUE(t.Update(a, v).ok());
  ASSERT_TRUE(t.Update(a, v).ok());  // a rewrite is not a second user
  ASSERT_TRUE(t.Update(b, v).ok());
  ASSERT_TRUE(t.Update(Key(0x0a600001, 80, SKIFF_SCOPE_EXTERNAL, 1), v).ok());
  EXPECT_TRUE(services.violations.empty());
  EXPECT_TRUE(BitSet(filter, a));
  ASSERT_TRUE(t.Delete(a).ok());
  EXPECT_TRUE(BitSet(filter, a)) << "b still uses the bit";
  ASSERT_TRUE(t.Delete(Key(0x0a600001, 80, SKIFF_SCOPE_EXTERNAL, 1)).ok());
  auto removed = t.Remove(b);
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  EXPECT_FALSE(BitSet(filter, b));
  EXPECT_TRUE(services.entries().empty());
}

TEST(FrontendFilterTest, DeleteIfClearsTheBitsOfDeletedFrontends) {
  FilterTable filter("filter", 1);
  CheckedServices services(&filter);
  FrontendFilterTable t(&services, &filter);
  ASSERT_TRUE(t.Init().ok());
  skiff_lb4_service v{};
  for (uint16_t p = 1; p <= 4; p++) ASSERT_TRUE(t.Update(Key(0x0a600001, p), v).ok());
  auto n = t.DeleteIf(
      [](const skiff_lb4_key& k, const skiff_lb4_service&) { return ntohs(k.dport) % 2 == 0; });
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  for (uint16_t p = 1; p <= 4; p++)
    EXPECT_EQ(BitSet(filter, Key(0x0a600001, p)), p % 2 == 1) << "port " << p;
}

// A filter write that fails keeps the frontend out of the service map.
class FailingFilter : public FilterTable {
 public:
  FailingFilter() : FilterTable("filter", 1) {}
  absl::Status Update(const __u32& k, const skiff_lb4_fe_filter& v) override {
    if (fail) return absl::UnavailableError("injected");
    return FilterTable::Update(k, v);
  }
  bool fail = false;
};

TEST(FrontendFilterTest, NoFrontendWithoutItsBit) {
  FailingFilter filter;
  CheckedServices services(&filter);
  FrontendFilterTable t(&services, &filter);
  ASSERT_TRUE(t.Init().ok());
  filter.fail = true;
  skiff_lb4_service v{};
  EXPECT_FALSE(t.Update(Key(0x0a600001, 80), v).ok());
  EXPECT_TRUE(services.entries().empty());
  filter.fail = false;
  ASSERT_TRUE(t.Update(Key(0x0a600001, 80), v).ok());
  EXPECT_TRUE(BitSet(filter, Key(0x0a600001, 80)));
  EXPECT_TRUE(services.violations.empty());
}

}  // namespace
}  // namespace skiff::reconcile
