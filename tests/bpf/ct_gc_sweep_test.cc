// The conntrack GC's sweep (agent/observe/ct_gc.h) on a real kernel LRU hash of the service
// conntrack's layout: many batches' worth of entries, half expired; exactly the expired ones
// go. The map is unpinned and closed at the end of the test.
#include <bpf/bpf.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>

#include "agent/observe/ct_gc.h"
#include "tests/harness/privileged.h"

namespace skiff::observe {
namespace {

struct OwnedFd {
  int fd;
  ~OwnedFd() {
    if (fd >= 0) close(fd);
  }
};

TEST(CtGcSweepKernel, DeletesExactlyTheExpiredEntriesOfAnLruHash) {
  SKIFF_REQUIRE_PRIVILEGED();
  constexpr uint32_t kEntries = 20000;  // several WalkMap batches (up to 4,096 each)
  OwnedFd map{bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "skiff_gc_t", sizeof(skiff_ct4_key),
                             sizeof(skiff_ct_entry), 2 * kEntries, nullptr)};
  const int fd = map.fd;
  ASSERT_GE(fd, 0) << strerror(errno);
  auto table = std::make_unique<reconcile::BpfKvTable<skiff_ct4_key, skiff_ct_entry>>(
      Map<skiff_ct4_key, skiff_ct_entry>(fd, "skiff_gc_t"), 2 * kEntries);
  const GcClock now{5000ULL * 1000000000ULL};
  auto key = [](uint32_t i) {
    skiff_ct4_key k{};
    k.saddr = i;
    k.daddr = 0x0a60000a;
    k.sport = static_cast<__be16>(i);
    k.proto = 17;
    k.kind = SKIFF_CT_SERVICE;
    return k;
  };
  for (uint32_t i = 0; i < kEntries; i++) {
    skiff_ct_entry e{};
    e.expires = i % 2 ? 4999 : 5000;  // odd: expired; even: live this second
    ASSERT_TRUE(table->Update(key(i), e).ok());
  }
  ExpiringTable<skiff_ct4_key, skiff_ct_entry> target(std::move(table), CtEntryExpired);
  auto c = target.Sweep(now);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->seen, kEntries);
  EXPECT_EQ(c->expired, kEntries / 2);
  EXPECT_EQ(c->deleted, kEntries / 2);
  uint32_t left = 0;
  for (uint32_t i = 0; i < kEntries; i++) {
    skiff_ct_entry e{};
    skiff_ct4_key k = key(i);
    bool present = bpf_map_lookup_elem(fd, &k, &e) == 0;
    EXPECT_EQ(present, i % 2 == 0) << "entry " << i;
    left += present;
  }
  EXPECT_EQ(left, kEntries / 2);
  // A second sweep finds nothing more to do.
  c = target.Sweep(now);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->seen, kEntries / 2);
  EXPECT_EQ(c->deleted, 0u);
}

}  // namespace
}  // namespace skiff::observe
