// Layout upgrades of pinned maps (agent/loader/map_upgrade.h): an agent that finds the v1
// pins of an older agent (16-bit rev-NAT ids) converts services, rev-NAT, affinity, source
// ranges and conntrack into the v2 maps, drops the maglev tables and the event ring, removes
// the old pins, and the reconciler then sees the same ids. The backends hash of v1 becomes
// the v2 array indexed by id, with the same ids. An old pin of an unknown shape, or a
// backend id the new array cannot hold, stops the load and the old pin stays where it is.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/loader/bpffs.h"
#include "agent/loader/datapath.h"
#include "agent/loader/layout_v1.h"
#include "maps/map.h"
#include "maps/slot_array.h"
#include "tests/harness/privileged.h"

namespace skiff::loader {
namespace {

__be32 Ip(const char* s) {
  __be32 a;
  inet_pton(AF_INET, s, &a);
  return a;
}

// A TCP service conntrack key.
skiff_ct4_key CtKey(const char* client, const char* vip, uint16_t sport, uint16_t dport) {
  skiff_ct4_key k{};
  k.saddr = Ip(client);
  k.daddr = Ip(vip);
  k.sport = htons(sport);
  k.dport = htons(dport);
  k.proto = IPPROTO_TCP;
  k.kind = SKIFF_CT_SERVICE;
  return k;
}

class MapUpgradeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) return;
    root_ = absl::StrCat("/sys/fs/bpf/skiff-upgrade-test-", getpid());
    ASSERT_TRUE(EnsureBpffs(root_).ok());
  }
  void TearDown() override {
    if (!root_.empty()) (void)RemovePins(root_);
  }

  // Creates and pins an old-layout map; returns its fd (closed by the test).
  int Pin(const char* name, bpf_map_type type, uint32_t key, uint32_t value, uint32_t max,
          uint32_t flags = 0) {
    LIBBPF_OPTS(bpf_map_create_opts, o);
    o.map_flags = flags;
    int fd = bpf_map_create(type, name, key, value, max, &o);
    EXPECT_GE(fd, 0) << name << ": " << strerror(errno);
    EXPECT_EQ(bpf_obj_pin(fd, Path(name).c_str()), 0) << name << ": " << strerror(errno);
    fds_.push_back(fd);
    return fd;
  }
  std::string Path(const std::string& name) const { return absl::StrCat(root_, "/", name); }
  bool Exists(const std::string& name) const { return access(Path(name).c_str(), F_OK) == 0; }

  DatapathOptions Opts() const {
    DatapathOptions o;
    o.bpffs_root = root_;
    o.ct_max = 4096;
    o.lb_services_max = o.lb_backends_max = o.lb_revnat_max = o.lb_affinity_max = 4096;
    o.lb_maglev_max = 16;
    return o;
  }

  std::string root_;
  std::vector<int> fds_;

 public:
  ~MapUpgradeTest() override {
    for (int fd : fds_) close(fd);
  }
};

TEST_F(MapUpgradeTest, V1PinsAreConvertedAndRemoved) {
  SKIFF_REQUIRE_PRIVILEGED();
  // An older agent's maps: one frontend 10.96.0.10:80/TCP with rev-NAT id 7 and backend 3,
  // one established flow through it, an affinity entry and a source range.
  int svc =
      Pin(v1::kServices, BPF_MAP_TYPE_HASH, sizeof(skiff_lb4_key), sizeof(v1::Lb4Service), 4096);
  int rn = Pin(v1::kRevNat, BPF_MAP_TYPE_HASH, sizeof(__u16), sizeof(skiff_lb4_revnat), 4096);
  int aff = Pin(v1::kAffinity, BPF_MAP_TYPE_LRU_HASH, sizeof(v1::Lb4AffinityKey),
                sizeof(skiff_lb_affinity_val), 4096);
  int src = Pin(v1::kSrcRange, BPF_MAP_TYPE_LPM_TRIE, sizeof(v1::Lb4SrcRangeKey),
                sizeof(skiff_lb4_src_range_val), 64, BPF_F_NO_PREALLOC);
  int ct = Pin(v1::kCt4, BPF_MAP_TYPE_LRU_HASH, sizeof(skiff_ct4_key), sizeof(v1::CtEntry), 4096);
  Pin(v1::kMaglev, BPF_MAP_TYPE_HASH, 4, 251 * 4, 16, BPF_F_NO_PREALLOC);
  Pin(v1::kEvents, BPF_MAP_TYPE_RINGBUF, 0, 0, 4096);

  skiff_lb4_key k0{};
  k0.address = Ip("10.96.0.10");
  k0.dport = htons(80);
  k0.proto = IPPROTO_TCP;
  skiff_lb4_key k1 = k0;
  k1.slot = 1;
  v1::Lb4Service s0{}, s1{};
  s0.count = 1;
  s0.rev_nat_id = 7;
  s0.flags = SKIFF_SVC_F_CLUSTER_IP | SKIFF_SVC_F_AFFINITY;
  s0.affinity_timeout = 300;
  s1.backend_id = 3;
  s1.rev_nat_id = 7;
  ASSERT_EQ(bpf_map_update_elem(svc, &k0, &s0, BPF_ANY), 0);
  ASSERT_EQ(bpf_map_update_elem(svc, &k1, &s1, BPF_ANY), 0);
  __u16 rn_key = 7;
  skiff_lb4_revnat rn_val{Ip("10.96.0.10"), htons(80), 0};
  ASSERT_EQ(bpf_map_update_elem(rn, &rn_key, &rn_val, BPF_ANY), 0);
  v1::Lb4AffinityKey ak{Ip("10.244.1.2"), 7, 0};
  skiff_lb_affinity_val av{123456789, 3, 0};
  ASSERT_EQ(bpf_map_update_elem(aff, &ak, &av, BPF_ANY), 0);
  v1::Lb4SrcRangeKey rk{32 + 24, 7, 0, Ip("203.0.113.0")};
  skiff_lb4_src_range_val rv{1, {0, 0, 0}};
  ASSERT_EQ(bpf_map_update_elem(src, &rk, &rv, BPF_ANY), 0);
  const skiff_ct4_key ck = CtKey("10.244.1.2", "10.96.0.10", 40000, 80);
  v1::CtEntry ce{};
  ce.packets = 5;
  ce.bytes = 500;
  ce.expires = 1000;
  ce.created = 900;
  ce.backend_id = 3;
  ce.rev_nat_id = 7;
  ce.flags = SKIFF_CT_F_SEEN_NON_SYN;
  ce.tcp_flags = 0x12;
  ce.nat_addr = Ip("10.244.1.11");
  ce.nat_port = htons(8080);
  ce.orig_addr = Ip("10.244.1.2");
  ce.orig_port = htons(40000);
  ASSERT_EQ(bpf_map_update_elem(ct, &ck, &ce, BPF_ANY), 0);

  auto dp = Datapath::Load(Opts());
  ASSERT_TRUE(dp.ok()) << dp.status();
  for (const char* old : {v1::kServices, v1::kRevNat, v1::kAffinity, v1::kSrcRange, v1::kCt4,
                          v1::kMaglev, v1::kEvents})
    EXPECT_FALSE(Exists(old)) << old << " still pinned";
  EXPECT_TRUE(Exists(SKIFF_STR(SKIFF_MAP_CT4)));
  EXPECT_EQ((*dp)->migrated().size(), 7u);

  lxc_bpf* s = (*dp)->skel();
  auto services = Map<skiff_lb4_key, skiff_lb4_service>::From(s->maps.SKIFF_MAP_LB4_SERVICES);
  ASSERT_TRUE(services.ok());
  auto n0 = services->Lookup(k0);
  ASSERT_TRUE(n0.ok() && n0->has_value());
  EXPECT_EQ((*n0)->rev_nat_id, 7u);
  EXPECT_EQ((*n0)->count, 1);
  EXPECT_EQ((*n0)->flags, s0.flags);
  EXPECT_EQ((*n0)->affinity_timeout, 300u);
  EXPECT_EQ((*n0)->pad, 0);
  auto n1 = services->Lookup(k1);
  ASSERT_TRUE(n1.ok() && n1->has_value());
  EXPECT_EQ((*n1)->backend_id, 3u);

  auto revnat = Map<__u32, skiff_lb4_revnat>::From(s->maps.SKIFF_MAP_LB4_REVNAT);
  ASSERT_TRUE(revnat.ok());
  auto r = revnat->Lookup(7);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->port, htons(80));

  auto affinity =
      Map<skiff_lb4_affinity_key, skiff_lb_affinity_val>::From(s->maps.SKIFF_MAP_LB4_AFFINITY);
  ASSERT_TRUE(affinity.ok());
  auto a = affinity->Lookup(skiff_lb4_affinity_key{Ip("10.244.1.2"), 7});
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->backend_id, 3u);
  EXPECT_EQ((*a)->last_used_ns, 123456789u);

  auto ranges =
      Map<skiff_lb4_src_range_key, skiff_lb4_src_range_val>::From(s->maps.SKIFF_MAP_LB4_SRC_RANGE);
  ASSERT_TRUE(ranges.ok());
  auto rr = ranges->Lookup(skiff_lb4_src_range_key{64, 7, Ip("203.0.113.9")});  // LPM match
  ASSERT_TRUE(rr.ok() && rr->has_value());
  EXPECT_EQ((*rr)->allow, 1);

  auto conntrack = Map<skiff_ct4_key, skiff_ct_entry>::From(s->maps.SKIFF_MAP_CT4);
  ASSERT_TRUE(conntrack.ok());
  auto e = conntrack->Lookup(ck);
  ASSERT_TRUE(e.ok() && e->has_value());
  EXPECT_EQ((*e)->packets, 5u);
  EXPECT_EQ((*e)->bytes, 500u);
  EXPECT_EQ((*e)->expires, 1000u);
  EXPECT_EQ((*e)->created, 900u);
  EXPECT_EQ((*e)->backend_id, 3u);
  EXPECT_EQ((*e)->rev_nat_id, 7u);
  EXPECT_EQ((*e)->flags, SKIFF_CT_F_SEEN_NON_SYN);
  EXPECT_EQ((*e)->tcp_flags, 0x12);
  EXPECT_EQ((*e)->nat_addr, Ip("10.244.1.11"));
  EXPECT_EQ((*e)->nat_port, htons(8080));
  EXPECT_EQ((*e)->orig_addr, Ip("10.244.1.2"));
  EXPECT_EQ((*e)->orig_port, htons(40000));
  // The converted conntrack map is not empty: its hint must warm up, not start armed.
  auto hint = Map<__u32, skiff_ct_hint>::From(s->maps.SKIFF_MAP_CT4_HINT);
  ASSERT_TRUE(hint.ok());
  auto h = hint->Lookup(0);
  ASSERT_TRUE(h.ok());
  EXPECT_NE(h->value_or(skiff_ct_hint{}).state, (__u32)SKIFF_CT_HINT_ARMED);

  // The reconciler finds the old ids.
  reconcile::LbReconciler rec((*dp)->tables());
  ASSERT_TRUE(rec.Restore().ok());
  model::FrontendKey fk;
  fk.vip.family = 4;
  std::memcpy(fk.vip.bytes.data(), &k0.address, 4);
  fk.port = 80;
  fk.proto = model::Protocol::kTcp;
  ASSERT_TRUE(rec.RevNatId(fk).has_value());
  EXPECT_EQ(*rec.RevNatId(fk), 7u);
}

// After a downgrade (or an interrupted upgrade) both versions are pinned; the old one ran
// last, so the new one is dropped and the old one converted again.
TEST_F(MapUpgradeTest, NewPinBesideAnOldOneIsStaleAndRecreated) {
  SKIFF_REQUIRE_PRIVILEGED();
  int rn = Pin(v1::kRevNat, BPF_MAP_TYPE_HASH, sizeof(__u16), sizeof(skiff_lb4_revnat), 4096);
  int stale = Pin(SKIFF_STR(SKIFF_MAP_LB4_REVNAT), BPF_MAP_TYPE_HASH, sizeof(__u32),
                  sizeof(skiff_lb4_revnat), 4096);
  __u16 live_key = 9;
  __u32 stale_key = 4;
  skiff_lb4_revnat live{Ip("10.96.0.9"), htons(53), 0}, old{Ip("10.96.0.4"), htons(80), 0};
  ASSERT_EQ(bpf_map_update_elem(rn, &live_key, &live, BPF_ANY), 0);
  ASSERT_EQ(bpf_map_update_elem(stale, &stale_key, &old, BPF_ANY), 0);
  auto dp = Datapath::Load(Opts());
  ASSERT_TRUE(dp.ok()) << dp.status();
  EXPECT_FALSE(Exists(v1::kRevNat));
  auto revnat = Map<__u32, skiff_lb4_revnat>::From((*dp)->skel()->maps.SKIFF_MAP_LB4_REVNAT);
  ASSERT_TRUE(revnat.ok());
  auto entries = revnat->Entries();
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u) << "the stale new-layout entry survived";
  EXPECT_EQ((*entries)[0].first, 9u);
}

skiff_lb4_backend Backend(const char* ip, uint16_t port, uint8_t flags = 0) {
  skiff_lb4_backend b{};
  b.address = Ip(ip);
  b.port = htons(port);
  b.proto = IPPROTO_TCP;
  b.state = SKIFF_BACKEND_ACTIVE;
  b.flags = flags;
  return b;
}

reconcile::BackendAddr Addr(const char* ip, uint16_t port) {
  return reconcile::BackendAddr(*model::IpAddr::Parse(ip), port, IPPROTO_TCP);
}

// What the agent before the array left: every map at v2 but the backends hash at v1.
TEST_F(MapUpgradeTest, V1BackendsHashBecomesTheArrayWithTheSameIds) {
  SKIFF_REQUIRE_PRIVILEGED();
  int old = Pin(v1::kBackends, BPF_MAP_TYPE_HASH, sizeof(__u32), sizeof(skiff_lb4_backend), 4096);
  const std::vector<std::pair<__u32, skiff_lb4_backend>> want = {
      {3, Backend("10.244.1.11", 8080)},
      {17, Backend("10.244.1.12", 8080, SKIFF_BACKEND_F_LOCAL)},
      {4095, Backend("10.244.2.9", 53)}};
  for (const auto& [id, b] : want) ASSERT_EQ(bpf_map_update_elem(old, &id, &b, BPF_ANY), 0);

  for (int start = 0; start < 2; start++) {  // the upgrade, then a restart over the array
    auto dp = Datapath::Load(Opts());
    ASSERT_TRUE(dp.ok()) << dp.status();
    EXPECT_FALSE(Exists(v1::kBackends));
    EXPECT_TRUE(Exists(SKIFF_STR(SKIFF_MAP_LB4_BACKENDS)));
    if (start == 0) {
      ASSERT_EQ((*dp)->migrated().size(), 1u);
      EXPECT_EQ((*dp)->migrated()[0],
                absl::StrCat(v1::kBackends, " -> ", SKIFF_STR(SKIFF_MAP_LB4_BACKENDS),
                             ": 3 entries converted"));
    }
    auto array = BackendArray::From((*dp)->skel()->maps.SKIFF_MAP_LB4_BACKENDS);
    ASSERT_TRUE(array.ok()) << array.status();
    EXPECT_EQ(array->max_entries(), 4096u);
    auto entries = array->Entries();  // present slots only
    ASSERT_TRUE(entries.ok()) << entries.status();
    ASSERT_EQ(entries->size(), want.size());
    for (size_t i = 0; i < want.size(); i++) {
      EXPECT_EQ((*entries)[i].first, want[i].first);
      EXPECT_EQ(std::memcmp(&(*entries)[i].second, &want[i].second, sizeof(skiff_lb4_backend)), 0)
          << "id " << want[i].first;
    }
    auto empty = array->Lookup(4);
    ASSERT_TRUE(empty.ok());
    EXPECT_FALSE(empty->has_value()) << "an empty slot reads as a backend";

    // The reconciler takes the ids over: the same backends keep them.
    reconcile::LbReconciler rec((*dp)->tables());
    ASSERT_TRUE(rec.Restore().ok());
    EXPECT_EQ(rec.backend_count(), 3u);
    EXPECT_EQ(rec.BackendId(Addr("10.244.1.12", 8080)), std::optional<uint32_t>(17));
    EXPECT_EQ(rec.BackendId(Addr("10.244.2.9", 53)), std::optional<uint32_t>(4095));
  }
}

// An id the new array cannot hold (--lb-backends-max at or below it) stops the load with the id
// named; the v1 hash stays, and a larger size then converts it.
TEST_F(MapUpgradeTest, V1BackendIdBeyondTheArrayStopsTheLoadAndStays) {
  SKIFF_REQUIRE_PRIVILEGED();
  int old = Pin(v1::kBackends, BPF_MAP_TYPE_HASH, sizeof(__u32), sizeof(skiff_lb4_backend), 8192);
  const __u32 id = 5000;
  const skiff_lb4_backend b = Backend("10.244.1.11", 8080);
  ASSERT_EQ(bpf_map_update_elem(old, &id, &b, BPF_ANY), 0);
  {
    auto dp = Datapath::Load(Opts());  // 4096 entries
    ASSERT_FALSE(dp.ok());
    EXPECT_NE(dp.status().message().find("holds id 5000"), std::string::npos) << dp.status();
    EXPECT_TRUE(Exists(v1::kBackends));
  }
  DatapathOptions o = Opts();
  o.lb_backends_max = 8192;
  auto dp = Datapath::Load(o);
  ASSERT_TRUE(dp.ok()) << dp.status();
  EXPECT_FALSE(Exists(v1::kBackends));
  auto array = BackendArray::From((*dp)->skel()->maps.SKIFF_MAP_LB4_BACKENDS);
  ASSERT_TRUE(array.ok());
  auto got = array->Lookup(5000);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->address, b.address);
}

// The backends array is indexed by id: --lb-backends-max may not shrink it to or below its
// highest id in use. Refused before anything is moved; the pin and its entries stay. (The
// resize itself renames the pin aside, covered with the other maps' resizes.)
TEST_F(MapUpgradeTest, BackendsArrayMayNotShrinkBelowItsHighestId) {
  SKIFF_REQUIRE_PRIVILEGED();
  {
    auto dp = Datapath::Load(Opts());
    ASSERT_TRUE(dp.ok()) << dp.status();
    auto array = BackendArray::From((*dp)->skel()->maps.SKIFF_MAP_LB4_BACKENDS);
    ASSERT_TRUE(array.ok());
    ASSERT_TRUE(array->Update(3000, Backend("10.244.1.11", 8080)).ok());
    auto beyond = array->Update(4096, Backend("10.244.1.12", 8080));
    ASSERT_FALSE(beyond.ok());
    EXPECT_NE(beyond.message().find("id 4096 is beyond map"), std::string::npos) << beyond;
  }
  for (uint32_t size : {2048u, 3000u}) {
    DatapathOptions o = Opts();
    o.lb_backends_max = size;
    auto small = Datapath::Load(o);
    ASSERT_FALSE(small.ok()) << size;
    EXPECT_NE(small.status().message().find("holds id 3000"), std::string::npos) << small.status();
  }
  auto dp = Datapath::Load(Opts());
  ASSERT_TRUE(dp.ok()) << dp.status();
  auto array = BackendArray::From((*dp)->skel()->maps.SKIFF_MAP_LB4_BACKENDS);
  ASSERT_TRUE(array.ok());
  auto entries = array->Entries();
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].first, 3000u);
}

// A size change (docs/maps.md "Layout changes and size changes"): a restart with larger
// --ct-max and --lb-backends-max moves each pin aside, creates the map with the new size,
// copies every entry and removes the aside pin; live conntrack entries and backend ids survive.
// A restart at the same size migrates nothing.
TEST_F(MapUpgradeTest, LargerSizesKeepEveryEntry) {
  SKIFF_REQUIRE_PRIVILEGED();
  const skiff_ct4_key k = CtKey("10.244.1.5", "10.96.0.10", 40000, 80);
  skiff_ct_entry e{};
  e.nat_addr = Ip("10.244.1.11");
  e.nat_port = htons(8080);
  e.backend_id = 3000;
  e.expires = 123456;
  {
    auto dp = Datapath::Load(Opts());
    ASSERT_TRUE(dp.ok()) << dp.status();
    EXPECT_TRUE((*dp)->migrated().empty());
    int ct = bpf_map__fd((*dp)->skel()->maps.SKIFF_MAP_CT4);
    ASSERT_EQ(bpf_map_update_elem(ct, &k, &e, BPF_NOEXIST), 0) << strerror(errno);
    auto array = BackendArray::From((*dp)->skel()->maps.SKIFF_MAP_LB4_BACKENDS);
    ASSERT_TRUE(array.ok());
    ASSERT_TRUE(array->Update(3000, Backend("10.244.1.11", 8080)).ok());
  }
  DatapathOptions o = Opts();
  o.ct_max = 8192;
  o.lb_backends_max = 8192;
  for (int start = 0; start < 2; start++) {  // the resize, then a restart at the new size
    auto dp = Datapath::Load(o);
    ASSERT_TRUE(dp.ok()) << dp.status();
    const std::vector<std::string> migrated = (*dp)->migrated();
    if (start == 0) {
      EXPECT_NE(std::find(migrated.begin(), migrated.end(),
                          absl::StrCat(SKIFF_STR(SKIFF_MAP_CT4), ": 4096 -> 8192 entries")),
                migrated.end())
          << ::testing::PrintToString(migrated);
      EXPECT_NE(
          std::find(migrated.begin(), migrated.end(),
                    absl::StrCat(SKIFF_STR(SKIFF_MAP_LB4_BACKENDS), ": 4096 -> 8192 entries")),
          migrated.end())
          << ::testing::PrintToString(migrated);
    } else {
      EXPECT_TRUE(migrated.empty()) << ::testing::PrintToString(migrated);
    }
    for (const auto& entry : std::filesystem::directory_iterator(root_))
      EXPECT_EQ(entry.path().string().find("__resizing"), std::string::npos) << entry.path();
    EXPECT_EQ(bpf_map__max_entries((*dp)->skel()->maps.SKIFF_MAP_CT4), 8192u);
    skiff_ct_entry got{};
    ASSERT_EQ(bpf_map_lookup_elem(bpf_map__fd((*dp)->skel()->maps.SKIFF_MAP_CT4), &k, &got), 0)
        << "the conntrack entry did not survive the resize";
    EXPECT_EQ(got.backend_id, 3000u);
    EXPECT_EQ(got.nat_addr, e.nat_addr);
    EXPECT_EQ(got.expires, e.expires);
    auto array = BackendArray::From((*dp)->skel()->maps.SKIFF_MAP_LB4_BACKENDS);
    ASSERT_TRUE(array.ok());
    EXPECT_EQ(array->max_entries(), 8192u);
    auto entries = array->Entries();
    ASSERT_TRUE(entries.ok());
    ASSERT_EQ(entries->size(), 1u);
    EXPECT_EQ((*entries)[0].first, 3000u);
    EXPECT_EQ((*entries)[0].second.address, Ip("10.244.1.11"));
  }
}

TEST_F(MapUpgradeTest, UnknownOldShapeStopsTheLoadAndStays) {
  SKIFF_REQUIRE_PRIVILEGED();
  // A "v1" conntrack map whose value is not the v1 entry: not ours to convert.
  Pin(v1::kCt4, BPF_MAP_TYPE_LRU_HASH, sizeof(skiff_ct4_key), 40, 64);
  auto dp = Datapath::Load(Opts());
  ASSERT_FALSE(dp.ok());
  EXPECT_NE(dp.status().message().find(v1::kCt4), std::string::npos) << dp.status();
  EXPECT_TRUE(Exists(v1::kCt4));
}

}  // namespace
}  // namespace skiff::loader
