// hw/vfio/tests/vfio_backend_test.cpp: the VFIO back end (vfio_backend.hpp)
// without a kernel. FakeType1 keeps type1v2's rules for the calls the back
// end makes (alignment, valid ranges, EEXIST on overlap, the v2 refusal to
// bisect a mapping, EFAULT for user memory that cannot be pinned, the DMA
// entry budget) and answers "what would the device reach at this IOVA"; the
// rules the back end depends on are checked against the real kernel in the
// guest (hw/vm/vm_test.cpp: kernel-refuses-bisect, backend-kernel-efault).
// What is tested here is the back end's own logic: the order of its calls,
// its rollbacks, its bookkeeping, and that after every engine operation the
// kernel holds exactly the engine's areas.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "ioas/impl.hpp"
#include "qemu_vtd.hpp"
#include "vfio_backend.hpp"

namespace ioas::vfio {
namespace {

class FakeType1 final : public DmaMapper {
 public:
  struct Map {
    Range iova;
    u64 uaddr = 0;
    Prot prot = Prot::kNone;
    friend bool operator==(const Map&, const Map&) = default;
  };

  IommuInfo geometry = qemu_vtd();
  std::vector<Range> unpinnable;  // user memory not mapped in the process
  // Calls (map and unmap, 1-based from the last arm()) that fail with `errno_`.
  void arm(std::set<int> nth, int err) {
    fail_ = std::move(nth);
    errno_ = err;
    calls_ = 0;
    fired_ = 0;
  }
  int fired() const { return fired_; }
  const std::map<u64, Map>& maps() const { return maps_; }
  u64 avail() const { return avail_; }

  Status map_dma(u64 iova, u64 uaddr, u64 len, Prot prot) override {
    if (inject()) return make_error(errno_, "injected map failure");
    const u64 mask = (geometry.pgsizes & (~geometry.pgsizes + 1)) - 1;
    if ((prot != Prot::kRead && prot != Prot::kReadWrite) || len == 0 || ((iova | uaddr | len) & mask))
      return make_error(EINVAL, "map: prot, length or alignment");
    auto r = Range::from_len(iova, len);
    if (!r || !Range::from_len(uaddr, len)) return make_error(EINVAL, "map: wraps");
    bool valid = false;
    for (const Range& v : geometry.iova_ranges) valid = valid || v.contains(*r);
    if (!valid) return make_error(EINVAL, "map: outside the valid IOVA ranges");
    for (const auto& [s, m] : maps_)
      if (m.iova.overlaps(*r)) return make_error(EEXIST, "map: overlaps " + to_string(m.iova));
    if (avail_ == 0) return make_error(ENOSPC, "map: no DMA entry left");
    for (const Range& u : unpinnable)
      if (u.overlaps(Range{uaddr, uaddr + len - 1})) return make_error(EFAULT, "map: cannot pin user memory");
    maps_.emplace(iova, Map{*r, uaddr, prot});
    --avail_;
    return ok_status();
  }

  Result<u64> unmap_dma(u64 iova, u64 len) override {
    if (inject()) return make_error(errno_, "injected unmap failure");
    const u64 mask = (geometry.pgsizes & (~geometry.pgsizes + 1)) - 1;
    auto r = Range::from_len(iova, len);
    if (!r || ((iova | len) & mask)) return make_error(EINVAL, "unmap: length or alignment");
    // type1v2: the range must not bisect a mapping at either end.
    for (const auto& [s, m] : maps_)
      if ((m.iova.contains(r->start) && m.iova.start != r->start) ||
          (m.iova.contains(r->last) && m.iova.last != r->last))
        return make_error(EINVAL, "unmap: bisects " + to_string(m.iova));
    u64 n = 0;
    for (auto it = maps_.begin(); it != maps_.end();) {
      if (r->contains(it->second.iova)) {
        n += it->second.iova.length();
        it = maps_.erase(it);
        ++avail_;
      } else {
        ++it;
      }
    }
    return n;
  }

  Result<IommuInfo> info() const override {
    if (info_errno) return make_error(info_errno, "no group");
    IommuInfo i = geometry;
    i.dma_avail = static_cast<std::uint32_t>(avail_);
    return i;
  }
  int info_errno = 0;

  // What the device reaches at `iova`: the user address and access.
  std::optional<Map> at(u64 iova) const {
    for (const auto& [s, m] : maps_)
      if (m.iova.contains(iova)) return Map{{iova, iova}, m.uaddr + (iova - s), m.prot};
    return std::nullopt;
  }

 private:
  bool inject() {
    ++calls_;
    if (!fail_.contains(calls_)) return false;
    ++fired_;
    return true;
  }
  std::map<u64, Map> maps_;
  u64 avail_ = 65535;
  std::set<int> fail_;
  int errno_ = 0;
  int calls_ = 0;
  int fired_ = 0;
};

constexpr u64 kVa = 0x7f0000000000;
constexpr u64 kLen = 16 << 20;

// An impl engine (verified after every call, the back end's verify()
// included) whose domains are on fake containers: "vtd" on k, any other on k2.
struct World {
  std::shared_ptr<FakeType1> k = std::make_shared<FakeType1>();
  std::shared_ptr<FakeType1> k2 = std::make_shared<FakeType1>();
  std::shared_ptr<KernelLog> log = std::make_shared<KernelLog>();
  std::unique_ptr<Engine> e;

  explicit World(bool attach = true) {
    ImplOptions o;
    o.verify_each_op = true;
    o.tables = table_factory(
        [this](const DomainConfig& c) -> std::shared_ptr<DmaMapper> {
          if (c.name == "vtd") return k;
          return k2;
        },
        log);
    e = make_engine(o);
    EXPECT_TRUE(e->create_ioas("io", {.zero_page = ZeroPage::kAllowed}).ok());
    EXPECT_TRUE(e->add_memory({"m", kVa, kLen, 0x40000000, true}).ok());
    if (attach) {
      EXPECT_TRUE(e->attach("io", args("edu", "vtd")).ok());
    }
  }
  static AttachArgs args(std::string dev, std::string dom) {
    return attach_args_from(qemu_vtd(), std::move(dev), std::move(dom), kMsi).value();
  }
  Result<u64> map(std::optional<u64> iova, u64 len, u64 off = 0, Prot prot = Prot::kReadWrite) {
    return e->map("io", MapArgs{iova, len, "m", off, prot});
  }
  IoasState snap() const { return e->snapshot("io").value(); }
  std::vector<LeafInfo> leaves(const std::string& dom = "vtd") const {
    return e->leaves(dom, Range{0, 0x7fffffffff}).value();
  }
};

// The kernel holds exactly the engine's areas: every byte of every area at
// the user address the engine's source gives and with the area's access,
// pieces (after an undone cut) allowed, and nothing else.
::testing::AssertionResult kernel_holds_areas(const Engine& e, const FakeType1& k, const std::string& ioas = "io") {
  auto s = e.snapshot(ioas);
  if (!s.ok()) return ::testing::AssertionFailure() << "no snapshot";
  std::map<std::string, u64> va;
  for (const auto& m : e.memories()) va[m.source.name] = m.source.va;
  u64 area_bytes = 0, kernel_bytes = 0;
  for (const auto& [st, m] : k.maps()) kernel_bytes += m.iova.length();
  for (const AreaInfo& a : s->areas) {
    area_bytes += a.iova.length();
    u64 at = a.iova.start;
    while (true) {
      auto it = k.maps().find(at);
      if (it == k.maps().end())
        return ::testing::AssertionFailure() << "area " << to_string(a.iova) << ": no kernel mapping starts at " << at;
      const auto& m = it->second;
      const u64 want = va[a.source] + a.offset + (at - a.iova.start);
      if (!a.iova.contains(m.iova) || m.uaddr != want || m.prot != a.prot)
        return ::testing::AssertionFailure() << "area " << to_string(a.iova) << " " << to_string(a.prot)
                                             << ": kernel mapping " << to_string(m.iova) << " uaddr " << m.uaddr
                                             << " " << to_string(m.prot) << ", wanted uaddr " << want;
      if (m.iova.last == a.iova.last) break;
      at = m.iova.last + 1;
    }
  }
  if (area_bytes != kernel_bytes)
    return ::testing::AssertionFailure() << "the kernel maps " << kernel_bytes << " bytes, the areas are "
                                         << area_bytes;
  return ::testing::AssertionSuccess();
}

TEST(VfioBackend, MapsReachTheKernelAtTheEnginesIovaWithTheSourcesUserAddress) {
  World w;
  auto a = w.map(std::nullopt, 0x10000, 0x3000, Prot::kReadWrite);
  auto f = w.map(0x40000000, 0x200000, 0x200000, Prot::kRead);
  ASSERT_TRUE(a.ok() && f.ok());
  EXPECT_TRUE(kernel_holds_areas(*w.e, *w.k));
  EXPECT_EQ(w.k->at(*a + 0x10)->uaddr, kVa + 0x3010);
  EXPECT_EQ(w.k->at(0x40000000)->prot, Prot::kRead);
  EXPECT_FALSE(w.k->at(0x40200000));
  EXPECT_EQ(w.log->map_calls, 2u);
  EXPECT_EQ(w.log->unmap_calls, 0u);
  EXPECT_TRUE(w.log->problems.empty());
}

TEST(VfioBackend, AKernelRefusalKeepsItsErrnoAndChangesNothing) {
  World w;
  ASSERT_TRUE(w.map(0x100000, 0x1000).ok());
  const IoasState before = w.snap();
  const auto leaves_before = w.leaves();
  w.k->unpinnable = {{kVa + 0x100000, kVa + 0x100fff}};
  auto r = w.map(0x400000, 0x200000, 0x80000);
  EXPECT_EQ(r.code(), EFAULT);
  EXPECT_NE(r.error().message.find("kernel:"), std::string::npos) << r.error().message;
  EXPECT_EQ(w.snap(), before);
  EXPECT_EQ(w.leaves(), leaves_before);  // the mirror was unmapped again
  EXPECT_FALSE(w.e->translate("vtd", 0x400000).value());
  EXPECT_TRUE(kernel_holds_areas(*w.e, *w.k));
  EXPECT_EQ(w.log->refused, 1u);
  // The kernel's EEXIST (someone else mapped there behind the engine's back)
  // is reported as is too.
  ASSERT_TRUE(w.k->map_dma(0x800000, kVa, 0x1000, Prot::kRead).ok());
  EXPECT_EQ(w.map(0x800000, 0x1000).code(), EEXIST);
  EXPECT_EQ(w.snap(), before);
}

TEST(VfioBackend, TheMirrorsRefusalsNeverReachTheKernel) {
  World w;
  // A physical range beyond x86-64's 52-bit output: the mirror says EINVAL.
  ASSERT_TRUE(w.e->add_memory({"far", 0x7f1000000000, 0x100000, u64{1} << 53, true}).ok());
  auto r = w.e->map("io", MapArgs{std::nullopt, 0x1000, "far", 0, Prot::kReadWrite});
  EXPECT_EQ(r.code(), EINVAL);
  // Out of page-table memory for the mirror: ENOMEM (allocation 1 is the
  // engine's area node, 2 the mirror's first table page).
  ASSERT_TRUE(fail_nth_alloc(*w.e, 2));
  EXPECT_EQ(w.map(0x40000000, 0x1000).code(), ENOMEM);
  fail_nth_alloc(*w.e, 0);
  EXPECT_EQ(w.log->calls(), 0u);
  EXPECT_TRUE(w.k->maps().empty());
}

TEST(VfioBackend, AnUnmapRemovesExactlyItsAreasFromTheKernel) {
  World w;
  ASSERT_TRUE(w.map(0x100000, 0x10000).ok());
  ASSERT_TRUE(w.map(0x110000, 0x10000, 0x10000).ok());
  ASSERT_TRUE(w.map(0x200000, 0x10000, 0x20000).ok());
  EXPECT_EQ(w.e->unmap("io", 0x100000, 0x20000).value(), 0x20000u);  // two adjacent areas
  EXPECT_TRUE(kernel_holds_areas(*w.e, *w.k));
  EXPECT_EQ(w.k->maps().size(), 1u);
  EXPECT_EQ(w.log->unmap_calls, 2u);  // one per area
  EXPECT_EQ(w.e->unmap("io", 0x200000, 0x1000).code(), ENOENT);  // the engine refuses a bisection itself
  EXPECT_EQ(w.log->unmap_calls, 2u);
  EXPECT_TRUE(w.log->problems.empty());
}

TEST(VfioBackend, ACutReplacesTheKernelMappingByTwo) {
  World w;
  ASSERT_TRUE(w.map(0x200000, 0x200000).ok());
  const u64 calls = w.log->calls();
  ASSERT_TRUE(w.e->cut("io", 0x2fffff).ok());
  EXPECT_EQ(w.log->calls(), calls + 3);  // unmap the whole, map the two pieces
  ASSERT_EQ(w.k->maps().size(), 2u);
  EXPECT_EQ(w.k->maps().at(0x300000).uaddr, kVa + 0x100000);
  EXPECT_TRUE(kernel_holds_areas(*w.e, *w.k));
  // Now one piece can go while the other stays.
  ASSERT_EQ(w.e->unmap("io", 0x200000, 0x100000).value(), 0x100000u);
  EXPECT_FALSE(w.k->at(0x2fffff));
  EXPECT_EQ(w.k->at(0x300000)->uaddr, kVa + 0x100000);
  EXPECT_TRUE(kernel_holds_areas(*w.e, *w.k));
}

TEST(VfioBackend, ACutTheKernelRefusesAtAnyStepRestoresTheOriginal) {
  for (int step = 1; step <= 3; ++step) {
    SCOPED_TRACE("failing kernel call " + std::to_string(step) + " of the cut");
    World w;
    ASSERT_TRUE(w.map(0x200000, 0x200000).ok());
    const IoasState before = w.snap();
    const auto leaves_before = w.leaves();
    const auto maps_before = w.k->maps();
    w.k->arm({step}, EIO);
    auto st = w.e->cut("io", 0x2fffff);
    EXPECT_EQ(st.code(), EIO);
    EXPECT_EQ(w.k->fired(), 1);
    EXPECT_EQ(w.snap(), before);
    EXPECT_EQ(w.leaves(), leaves_before);  // the mirror was joined again, leaves as they were
    EXPECT_EQ(w.k->maps(), maps_before);   // the original mapping, restored
    EXPECT_TRUE(w.log->problems.empty());
    w.k->arm({}, 0);
    EXPECT_TRUE(w.e->cut("io", 0x2fffff).ok());
    EXPECT_TRUE(kernel_holds_areas(*w.e, *w.k));
  }
}

TEST(VfioBackend, ACutTheMirrorCannotMakeKeepsTheKernelsPieces) {
  World w;
  ASSERT_TRUE(w.map(0x200000, 0x200000, 0x200000).ok());  // one 2M leaf in the mirror
  const IoasState before = w.snap();
  const auto leaves_before = w.leaves();
  ASSERT_TRUE(fail_nth_alloc(*w.e, 2));  // 1: the engine's node for the new area; 2: the mirror's split page
  EXPECT_EQ(w.e->cut("io", 0x2fffff).code(), ENOMEM);
  fail_nth_alloc(*w.e, 0);
  EXPECT_EQ(w.snap(), before);
  EXPECT_EQ(w.leaves(), leaves_before);
  EXPECT_EQ(w.k->maps().size(), 2u);  // the kernel's cut stays: same translations
  EXPECT_TRUE(kernel_holds_areas(*w.e, *w.k));
  EXPECT_TRUE(w.log->problems.empty());
  ASSERT_EQ(w.e->unmap("io", 0x200000, 0x200000).value(), 0x200000u);
  EXPECT_TRUE(w.k->maps().empty());
}

TEST(VfioBackend, ACutWhoseRestoreFailsLosesTheRangeAndSaysSo) {
  World w;
  ASSERT_TRUE(w.map(0x200000, 0x200000).ok());
  const IoasState before = w.snap();
  w.k->arm({2, 3}, EIO);  // the left piece's map, then the restore's
  EXPECT_EQ(w.e->cut("io", 0x2fffff).code(), EIO);
  EXPECT_EQ(w.snap(), before);
  ASSERT_EQ(w.log->problems.size(), 1u);
  EXPECT_NE(w.log->problems[0].find("lost in the kernel"), std::string::npos) << w.log->problems[0];
  EXPECT_TRUE(w.k->maps().empty());
  // The engine can still cut and unmap the area; the kernel is not asked
  // about what it no longer holds.
  w.k->arm({}, 0);
  const u64 calls = w.log->calls();
  EXPECT_TRUE(w.e->cut("io", 0x2fffff).ok());
  EXPECT_EQ(w.e->unmap("io", 0x200000, 0x200000).value(), 0x200000u);
  EXPECT_EQ(w.log->calls(), calls);
  EXPECT_EQ(w.log->problems.size(), 1u);
}

TEST(VfioBackend, ACutAnotherDomainRefusesLeavesTheKernelsPiecesWithTheSameTranslations) {
  World w;
  ASSERT_TRUE(w.e->attach("io", World::args("edu2", "vtd2")).ok());
  ASSERT_TRUE(w.map(0x200000, 0x200000, 0x200000).ok());
  const IoasState before = w.snap();
  w.k2->arm({1}, EIO);  // vtd splits first (names in order), then vtd2 refuses
  EXPECT_EQ(w.e->cut("io", 0x2fffff).code(), EIO);
  EXPECT_EQ(w.snap(), before);
  EXPECT_EQ(w.k->maps().size(), 2u);  // vtd keeps its two pieces (unsplit is bookkeeping only)
  EXPECT_TRUE(kernel_holds_areas(*w.e, *w.k));
  EXPECT_TRUE(kernel_holds_areas(*w.e, *w.k2));
  // A cut at the same place again: vtd's kernel is not asked.
  w.k2->arm({}, 0);
  const u64 before_calls = w.log->calls();
  EXPECT_TRUE(w.e->cut("io", 0x2fffff).ok());
  EXPECT_EQ(w.log->calls(), before_calls + 3);  // vtd2's three only
  ASSERT_TRUE(w.e->unmap("io", 0, kMaxIova).ok());
  EXPECT_TRUE(w.k->maps().empty() && w.k2->maps().empty());
  EXPECT_TRUE(w.log->problems.empty());
}

TEST(VfioBackend, ASecondDomainsRefusalUnmapsTheFirstDomainsKernelMapping) {
  World w;
  ASSERT_TRUE(w.e->attach("io", World::args("edu2", "vtd2")).ok());
  const IoasState before = w.snap();
  w.k2->unpinnable = {{kVa, kVa + 0xfff}};
  EXPECT_EQ(w.map(std::nullopt, 0x1000).code(), EFAULT);
  EXPECT_EQ(w.snap(), before);
  EXPECT_TRUE(w.k->maps().empty());
  EXPECT_EQ(w.log->map_calls, 2u);
  EXPECT_EQ(w.log->unmap_calls, 1u);
}

TEST(VfioBackend, AnUnmapTheKernelRefusesIsReportedAndRetriedWhenTheDomainGoes) {
  World w;
  ASSERT_TRUE(w.map(0x100000, 0x1000).ok());
  w.k->arm({1}, EBUSY);
  EXPECT_EQ(w.e->unmap("io", 0x100000, 0x1000).value(), 0x1000u);  // the interface's unmap cannot fail
  ASSERT_EQ(w.log->problems.size(), 1u);
  EXPECT_NE(w.log->problems[0].find("refused"), std::string::npos) << w.log->problems[0];
  EXPECT_TRUE(w.k->at(0x100000));  // the device may still reach it
  w.k->arm({}, 0);
  ASSERT_TRUE(w.e->detach("edu").ok());
  EXPECT_TRUE(w.k->maps().empty());
  EXPECT_EQ(w.log->problems.size(), 1u);
}

TEST(VfioBackend, TheKernelIsEmptiedWhenTheDomainGoes) {
  World w;
  ASSERT_TRUE(w.map(0x100000, 0x10000).ok());
  ASSERT_TRUE(w.map(0x110000, 0x10000, 0x10000).ok());
  ASSERT_TRUE(w.map(0x400000, 0x10000, 0x20000).ok());
  ASSERT_TRUE(w.e->detach("edu").ok());
  EXPECT_TRUE(w.k->maps().empty());
  EXPECT_EQ(w.k->avail(), 65535u);
  // And when the engine goes.
  ASSERT_TRUE(w.e->attach("io", World::args("edu", "vtd")).ok());
  EXPECT_EQ(w.k->maps().size(), 3u);
  w.e.reset();
  EXPECT_TRUE(w.k->maps().empty());
  EXPECT_TRUE(w.log->problems.empty());
}

TEST(VfioBackend, AnAttachMapsEveryAreaAndAFailedOneLeavesTheKernelEmpty) {
  World w(false);
  ASSERT_TRUE(w.map(0x100000, 0x10000).ok());
  ASSERT_TRUE(w.map(0x200000, 0x10000, 0x10000).ok());
  ASSERT_TRUE(w.e->attach("io", World::args("edu", "vtd")).ok());
  EXPECT_TRUE(kernel_holds_areas(*w.e, *w.k));
  ASSERT_TRUE(w.e->detach("edu").ok());
  const IoasState before = w.snap();
  w.k->unpinnable = {{kVa + 0x10000, kVa + 0x10fff}};  // the second area's memory
  EXPECT_EQ(w.e->attach("io", World::args("edu", "vtd")).code(), EFAULT);
  EXPECT_EQ(w.snap(), before);
  EXPECT_TRUE(w.k->maps().empty());  // the discarded table unmapped the first area
  EXPECT_TRUE(w.log->problems.empty());
}

TEST(VfioBackend, OneContainerBacksOneDomain) {
  World w;
  ASSERT_TRUE(w.e->create_ioas("io2", {}).ok());
  // A factory over one container only: a second domain is EBUSY while the first lives.
  auto k = std::make_shared<FakeType1>();
  ImplOptions o;
  o.tables = table_factory(std::shared_ptr<DmaMapper>(k));
  auto e = make_engine(o);
  ASSERT_TRUE(e->create_ioas("a", {}).ok() && e->create_ioas("b", {}).ok());
  ASSERT_TRUE(e->attach("a", World::args("edu", "d1")).ok());
  auto st = e->attach("b", World::args("nic", "d2"));
  EXPECT_EQ(st.code(), EBUSY);
  EXPECT_NE(st.error().message.find("already backs domain d1"), std::string::npos) << st.error().message;
  ASSERT_TRUE(e->detach("edu").ok());
  EXPECT_TRUE(e->attach("b", World::args("nic", "d2")).ok());
}

TEST(VfioBackend, ADomainTheContainerCannotHonourIsRefused) {
  World w(false);
  // An aperture beyond the kernel's IOVA ranges.
  auto wide = World::args("edu", "vtd");
  wide.aperture = Range{0, 0xffffffffffff};
  wide.resv.clear();
  auto st0 = w.e->attach("io", wide);
  EXPECT_EQ(st0.code(), EINVAL);
  EXPECT_NE(st0.error().message.find("reaches beyond the container's IOVA ranges"), std::string::npos)
      << st0.error().message;
  // A smallest page the kernel does not map in.
  w.k->geometry.pgsizes = 0x10000 | k2M;
  auto st = w.e->attach("io", World::args("edu", "vtd"));
  EXPECT_EQ(st.code(), EINVAL);
  EXPECT_NE(st.error().message.find("below the container's"), std::string::npos) << st.error().message;
  // A container that cannot say (no group yet): its errno.
  w.k->geometry = qemu_vtd();
  w.k->info_errno = ENODEV;
  EXPECT_EQ(w.e->attach("io", World::args("edu", "vtd")).code(), ENODEV);
  EXPECT_TRUE(w.snap().domains.empty());
  EXPECT_EQ(w.log->calls(), 0u);
}

// Random map/unmap/cut/copy on the model and on the VFIO-backed engine; after
// every operation the answers agree and the kernel holds exactly the areas.
// Some operations get one kernel call failed: they must fail with that errno
// and change nothing (the model does not see them).
TEST(VfioBackend, LockstepWithTheModelTheKernelHoldsExactlyTheAreas) {
  World w;
  auto model = make_model_engine();
  ASSERT_TRUE(model->create_ioas("io", {.zero_page = ZeroPage::kAllowed}).ok());
  ASSERT_TRUE(model->add_memory({"m", kVa, kLen, 0x40000000, true}).ok());
  ASSERT_TRUE(model->attach("io", World::args("edu", "vtd")).ok());
  std::mt19937_64 rng(8);
  auto pick = [&](u64 n) { return n ? rng() % n : 0; };
  int injected = 0, cuts = 0, maps = 0;
  for (int step = 0; step < 3000; ++step) {
    const auto areas = w.snap().areas;
    const int kind = static_cast<int>(pick(10));
    const bool inject = pick(6) == 0 && kind != 7 && kind != 8;  // never on unmaps: they cannot fail
    const int err = inject ? (pick(2) ? EFAULT : ENOSPC) : 0;
    if (inject) w.k->arm({static_cast<int>(1 + pick(3))}, err);
    struct Op {
      std::string what;
      std::function<std::pair<int, u64>(Engine&)> run;
    } o;
    auto res = [](auto r) -> std::pair<int, u64> {
      if (!r.ok()) return {r.code(), 0};
      if constexpr (std::is_same_v<std::decay_t<decltype(r)>, Status>) return {0, 0};
      else return {0, *r};
    };
    if (kind <= 2) {
      const u64 len = (1 + pick(kind == 0 ? 600 : 16)) * kPage, off = pick((kLen - len) / kPage) * kPage;
      const Prot prot = pick(3) ? Prot::kReadWrite : Prot::kRead;
      o = {"map auto len " + std::to_string(len),
           [=](Engine& e) { return res(e.map("io", MapArgs{std::nullopt, len, "m", off, prot})); }};
      ++maps;
    } else if (kind <= 4) {
      const u64 len = (1 + pick(32)) * kPage, off = pick((kLen - len) / kPage) * kPage;
      const u64 iova = pick(20) == 0 ? 0xfee00000 : 0x100000 + pick(2048) * kPage;
      const Prot prot = pick(3) ? Prot::kReadWrite : Prot::kRead;
      o = {"map fixed " + std::to_string(iova),
           [=](Engine& e) { return res(e.map("io", MapArgs{iova, len, "m", off, prot})); }};
      ++maps;
    } else if (kind <= 6) {
      if (areas.empty()) continue;
      const AreaInfo& a = areas[pick(areas.size())];
      const u64 at = a.iova.start + pick(a.iova.length() / kPage) * kPage + kPage - 1;
      o = {"cut " + std::to_string(at), [=](Engine& e) { return res(e.cut("io", at)); }};
      ++cuts;
    } else if (kind == 7) {
      if (areas.empty()) continue;
      const AreaInfo& a = areas[pick(areas.size())];
      o = {"unmap " + to_string(a.iova), [=](Engine& e) { return res(e.unmap("io", a.iova.start, a.iova.length())); }};
    } else if (kind == 8) {
      const u64 start = 0x100000 + pick(4096) * kPage, len = (1 + pick(64)) * kPage;
      o = {"unmap span", [=](Engine& e) { return res(e.unmap("io", start, len)); }};
    } else {
      if (areas.empty()) continue;
      const AreaInfo& a = areas[pick(areas.size())];
      o = {"copy " + to_string(a.iova), [=](Engine& e) {
             return res(e.copy("io", CopyArgs{"io", a.iova.start, a.iova.length(), std::nullopt, a.prot}));
           }};
    }
    SCOPED_TRACE("step " + std::to_string(step) + ": " + o.what);
    const IoasState before = w.snap();
    const auto got = o.run(*w.e);
    if (inject && w.k->fired()) {
      ++injected;
      ASSERT_EQ(got.first, err);
      ASSERT_EQ(w.snap(), before);
    } else {
      ASSERT_EQ(got, o.run(*model));
      ASSERT_EQ(w.snap(), model->snapshot("io").value());
    }
    w.k->arm({}, 0);
    ASSERT_TRUE(kernel_holds_areas(*w.e, *w.k));
    ASSERT_TRUE(w.log->problems.empty()) << w.log->problems[0];
    if (step % 500 == 499) {
      ASSERT_TRUE(w.e->unmap("io", 0, kMaxIova).ok() && model->unmap("io", 0, kMaxIova).ok());
    }
  }
  EXPECT_GT(injected, 100);
  EXPECT_GT(cuts, 300);
  EXPECT_GT(maps, 1000);
  w.e.reset();
  EXPECT_TRUE(w.k->maps().empty());
}

}  // namespace
}  // namespace ioas::vfio
