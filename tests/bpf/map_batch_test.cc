// Map::UpdateBatch (maps/map.h) against real kernel maps: batches written in order, the
// single-update fallback for a map type without batch operations, and a failure part-way
// through a batch reported with the index and key of the entry that failed; Map::ForEach
// reading in batches (every entry once, early stop, the key-by-key fallback).
#include <bpf/bpf.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <vector>

#include "agent/reconcile/kv_table.h"
#include "maps/map.h"
#include "tests/harness/privileged.h"

namespace skiff {
namespace {

struct OwnedFd {
  int fd;
  ~OwnedFd() {
    if (fd >= 0) close(fd);
  }
};

int Create(bpf_map_type type, uint32_t max) {
  int fd = bpf_map_create(type, "skiff_batch_t", sizeof(__u32), sizeof(__u32), max, nullptr);
  EXPECT_GE(fd, 0) << strerror(errno);
  return fd;
}

TEST(MapUpdateBatch, WritesEveryEntryInBatches) {
  SKIFF_REQUIRE_PRIVILEGED();
  OwnedFd m{Create(BPF_MAP_TYPE_HASH, 100000)};
  Map<__u32, __u32> map(m.fd, "skiff_batch_t");
  // More than one syscall's worth, and a key written twice: the later value wins, as it would
  // with single updates in the same order.
  std::vector<__u32> keys, values;
  for (__u32 i = 0; i < Map<__u32, __u32>::kBatchMax + 100; i++) {
    keys.push_back(i);
    values.push_back(i * 3);
  }
  keys.push_back(7);
  values.push_back(12345);
  size_t done = 0;
  ASSERT_TRUE(map.UpdateBatch(keys.data(), values.data(), keys.size(), &done).ok());
  EXPECT_EQ(done, keys.size());
  EXPECT_TRUE(map.batch_supported());
  EXPECT_EQ(map.batch_calls(), 2u);
  auto v = map.Lookup(7);
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ(**v, 12345u);
  v = map.Lookup(Map<__u32, __u32>::kBatchMax + 99);
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ(**v, (Map<__u32, __u32>::kBatchMax + 99) * 3);
}

TEST(MapUpdateBatch, FallsBackToSingleUpdatesWhenTheMapHasNoBatchOps) {
  SKIFF_REQUIRE_PRIVILEGED();
  // A devmap (key: slot, value: ifindex) has no batch update in the kernel: ENOTSUPP. The
  // loopback device of the test's namespace is ifindex 1.
  OwnedFd m{Create(BPF_MAP_TYPE_DEVMAP, 8)};
  Map<__u32, __u32> map(m.fd, "skiff_batch_t");
  std::vector<__u32> keys{0, 3, 5}, values{1, 1, 1};
  size_t done = 0;
  auto st = map.UpdateBatch(keys.data(), values.data(), keys.size(), &done);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(done, 3u);
  EXPECT_FALSE(map.batch_supported());
  EXPECT_EQ(map.batch_calls(), 0u);
  for (__u32 k : keys) {
    auto v = map.Lookup(k);
    ASSERT_TRUE(v.ok() && v->has_value()) << k;
    EXPECT_EQ(**v, 1u);
  }
  // The fallback reports a failing entry the same way: slot 9 is past max_entries.
  keys = {1, 9, 2};
  st = map.UpdateBatch(keys.data(), values.data(), keys.size(), &done);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(done, 1u);
  EXPECT_NE(st.message().find("at key 09000000 (entry 1 of 3"), std::string::npos) << st;
  auto v2 = map.Lookup(2);
  ASSERT_TRUE(v2.ok());
  EXPECT_FALSE(v2->has_value()) << "an entry after the failing one was written";
}

TEST(MapUpdateBatch, PartWayFailureNamesTheFailingKey) {
  SKIFF_REQUIRE_PRIVILEGED();
  OwnedFd m{Create(BPF_MAP_TYPE_HASH, 4)};
  reconcile::BpfKvTable<__u32, __u32> table(Map<__u32, __u32>(m.fd, "skiff_batch_t"), 4);
  std::vector<__u32> keys{10, 11, 12, 13, 0x01020304, 15}, values{1, 2, 3, 4, 5, 6};
  size_t done = 0;
  auto st = table.UpdateBatch(keys.data(), values.data(), keys.size(), &done);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(st)) << st;
  EXPECT_EQ(done, 4u);
  EXPECT_TRUE(table.map().batch_supported()) << "a full map is not a refusal of batches";
  EXPECT_NE(st.message().find("map skiff_batch_t is full"), std::string::npos) << st;
  EXPECT_NE(st.message().find("at key 04030201 (entry 4 of 6"), std::string::npos) << st;
  EXPECT_NE(st.message().find("(4 entries); raise its size flag"), std::string::npos) << st;
  for (size_t i = 0; i < keys.size(); i++) {
    auto v = table.map().Lookup(keys[i]);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->has_value(), i < 4) << "key " << keys[i];
  }
}

// Every entry exactly once, with its value, from maps larger than one read batch.
void ExpectForEachReadsAll(bpf_map_type type, uint32_t max, uint32_t n) {
  OwnedFd m{Create(type, max)};
  Map<__u32, __u32> map(m.fd, "skiff_batch_t");
  std::vector<__u32> keys, values;
  for (__u32 i = 0; i < n; i++) {
    keys.push_back(i * 7 % max);
    values.push_back(i + 1);
  }
  size_t done = 0;
  ASSERT_TRUE(map.UpdateBatch(keys.data(), values.data(), keys.size(), &done).ok());
  std::map<__u32, __u32> seen;
  size_t calls = 0;
  ASSERT_TRUE(map.ForEach([&](__u32 k, __u32 v) {
                   calls++;
                   seen[k] = v;
                 })
                  .ok());
  if (type == BPF_MAP_TYPE_ARRAY) {
    EXPECT_EQ(calls, max) << "an array has every index";
  } else {
    EXPECT_EQ(calls, n);
  }
  for (__u32 i = 0; i < n; i++) EXPECT_EQ(seen[i * 7 % max], i + 1) << "key " << i * 7 % max;
  // Stops when asked, in the middle of a batch.
  calls = 0;
  ASSERT_TRUE(map.ForEachUntil([&](__u32, __u32) { return ++calls < 10; }).ok());
  EXPECT_EQ(calls, std::min<size_t>(n, 10));
}

TEST(MapForEach, ReadsEveryEntryOfHashLruAndArrayMapsInBatches) {
  SKIFF_REQUIRE_PRIVILEGED();
  const uint32_t n = 3 * 4096 + 17;  // more than three read batches
  ExpectForEachReadsAll(BPF_MAP_TYPE_HASH, 65536, n);
  ExpectForEachReadsAll(BPF_MAP_TYPE_LRU_HASH, 65536, n);
  ExpectForEachReadsAll(BPF_MAP_TYPE_ARRAY, n + 5, n);
  ExpectForEachReadsAll(BPF_MAP_TYPE_HASH, 16, 0);  // empty
}

TEST(MapForEach, WalksKeyByKeyWhenTheMapHasNoBatchLookup) {
  SKIFF_REQUIRE_PRIVILEGED();
  // A devmap has no batch lookup in the kernel (ENOTSUPP): the same entries, one by one.
  OwnedFd m{Create(BPF_MAP_TYPE_DEVMAP_HASH, 8)};
  Map<__u32, __u32> map(m.fd, "skiff_batch_t");
  for (__u32 k : {2u, 5u, 6u}) ASSERT_TRUE(map.Update(k, 1).ok());
  std::map<__u32, __u32> seen;
  ASSERT_TRUE(map.ForEach([&](__u32 k, __u32 v) { seen[k] = v; }).ok());
  EXPECT_EQ(seen, (std::map<__u32, __u32>{{2, 1}, {5, 1}, {6, 1}}));
}

}  // namespace
}  // namespace skiff
