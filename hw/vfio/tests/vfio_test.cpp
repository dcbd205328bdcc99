// hw/vfio/tests/vfio_test.cpp: the host-side half of the VFIO layer's tests.
// attach_args_from must make both engines report exactly the kernel's valid
// IOVA ranges; the sysfs readers are run on a fake tree; the container's
// errors are checked where /dev/vfio does not exist. The real kernel is in
// hw/vm/ (run-vm-test).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "ioas/impl.hpp"
#include "qemu_vtd.hpp"
#include "vfio.hpp"

namespace ioas::vfio {
namespace {

using Factory = std::function<std::unique_ptr<Engine>()>;
const std::vector<std::pair<const char*, Factory>> kEngines = {
    {"model", [] { return make_model_engine(); }},
    {"impl", [] { return make_checked_engine(); }},
};

// The ranges an engine reports after attaching with attach_args_from(info).
std::vector<Range> engine_ranges(const Factory& make, const IommuInfo& info, ZeroPage zp,
                                 const std::vector<ResvRegion>& regions = {}) {
  auto args = attach_args_from(info, "dev", "dom", regions);
  EXPECT_TRUE(args.ok()) << (args.ok() ? "" : to_string(args.error()));
  if (!args) return {};
  auto e = make();
  EXPECT_TRUE(e->create_ioas("io", {.zero_page = zp}).ok());
  auto s = e->attach("io", *args);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : to_string(s.error()));
  auto r = e->ranges("io");
  EXPECT_TRUE(r.ok());
  return r ? r->ranges : std::vector<Range>{};
}

TEST(AttachArgsFrom, QemuVtdGeometry) {
  auto a = attach_args_from(qemu_vtd(), "edu", "vtd", kMsi);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->dev, "edu");
  EXPECT_EQ(a->dom, "vtd");
  EXPECT_EQ(a->fmt, Format::kX86_64);
  EXPECT_EQ(a->aperture, (Range{0, 0x7fffffffff}));
  EXPECT_EQ(a->pgsize_bitmap, k4K | k2M | k1G);
  ASSERT_EQ(a->resv.size(), 2u);
  EXPECT_EQ(a->resv[0], kMsi[0]);  // the device's own region first
  EXPECT_EQ(a->resv[1], (ResvRegion{{0xfee00000, 0xfeefffff}, ResvType::kReserved}));  // the gap
}

TEST(AttachArgsFrom, EnginesReportTheKernelsRanges) {
  for (const auto& [name, make] : kEngines) {
    SCOPED_TRACE(name);
    const IommuInfo info = qemu_vtd();
    EXPECT_EQ(engine_ranges(make, info, ZeroPage::kAllowed), info.iova_ranges);
    EXPECT_EQ(engine_ranges(make, info, ZeroPage::kAllowed, kMsi), info.iova_ranges);
    // The default zero-page policy holds back [0, PAGE-1] on top.
    std::vector<Range> want = info.iova_ranges;
    want[0].start = kPage;
    EXPECT_EQ(engine_ranges(make, info, ZeroPage::kReserved, kMsi), want);
  }
}

TEST(AttachArgsFrom, RandomGeometriesRoundTrip) {
  std::mt19937_64 rng(8);
  for (int iter = 0; iter < 200; ++iter) {
    // 1..6 sorted, disjoint, page-granular ranges inside 48 bits.
    const int n = 1 + static_cast<int>(rng() % 6);
    std::vector<u64> cuts;
    for (int i = 0; i < 2 * n; ++i) cuts.push_back((rng() % (u64{1} << 36)) << 12);
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    IommuInfo info;
    info.pgsizes = k4K | k2M;
    info.has_iova_ranges = true;
    for (std::size_t i = 0; i + 1 < cuts.size(); i += 2) {
      const Range r{cuts[i], cuts[i + 1] - 1};
      if (!info.iova_ranges.empty() && info.iova_ranges.back().last + 1 == r.start) continue;  // the kernel merges
      info.iova_ranges.push_back(r);
    }
    if (info.iova_ranges.empty()) continue;
    for (const auto& [name, make] : kEngines) {
      SCOPED_TRACE(std::string(name) + " " + to_string(info.iova_ranges));
      ASSERT_EQ(engine_ranges(make, info, ZeroPage::kAllowed), info.iova_ranges);
    }
  }
}

TEST(AttachArgsFrom, PageSizes) {
  IommuInfo info = qemu_vtd();
  info.pgsizes = ~u64{0xfff};  // "every size from 4K": kept to what x86-64 has
  auto a = attach_args_from(info, "d", "m");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->pgsize_bitmap, k4K | k2M | k1G);
  auto t = attach_args_from(info, "d", "m", {}, Format::kTce);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->pgsize_bitmap, k4K);
  info.pgsizes = u64{1} << 16;  // 64K only: x86-64 cannot map it
  auto bad = attach_args_from(info, "d", "m");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), EINVAL);
  EXPECT_NE(bad.error().message.find("64K"), std::string::npos) << bad.error().message;
  info.pgsizes = 0;
  EXPECT_EQ(attach_args_from(info, "d", "m").code(), EINVAL);
}

TEST(AttachArgsFrom, RejectsBadKernelRanges) {
  IommuInfo info = qemu_vtd();
  info.has_iova_ranges = false;
  info.iova_ranges.clear();
  EXPECT_EQ(attach_args_from(info, "d", "m").code(), EINVAL);
  info = qemu_vtd();
  info.iova_ranges = {{0x2000, 0x1000}};
  EXPECT_EQ(attach_args_from(info, "d", "m").code(), EINVAL);
  info.iova_ranges = {{0, 0x1fff}, {0x1000, 0x3fff}};
  EXPECT_EQ(attach_args_from(info, "d", "m").code(), EINVAL);
  info.iova_ranges = {{0x5000, 0x5fff}, {0, 0x1fff}};
  EXPECT_EQ(attach_args_from(info, "d", "m").code(), EINVAL);
}

TEST(PgSizes, Printing) {
  EXPECT_EQ(pgsizes_to_string(k4K | k2M | k1G), "4K|2M|1G");
  EXPECT_EQ(pgsizes_to_string(0), "none");
  EXPECT_EQ(pgsizes_to_string(u64{1} << 16 | u64{1} << 42), "64K|0x40000000000");
  EXPECT_EQ(to_string(qemu_vtd()), "pgsizes 4K|2M|1G, ranges 0x0-0xfedfffff 0xfef00000-0x7fffffffff, dma_avail 65535");
}

// A fake /sys in a temporary directory.
class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ioas-vfio-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(root_ + "/" + rel).parent_path());
    std::ofstream(root_ + "/" + rel) << text;
  }
  std::string root_;
};

TEST_F(FakeSysfs, ReservedRegions) {
  write("kernel/iommu_groups/7/reserved_regions",
        "0x00000000fee00000 0x00000000feefffff msi\n0x00000000000a0000 0x00000000000bffff direct-relaxable\n");
  auto r = read_reserved_regions(7, root_);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0], kMsi[0]);
  EXPECT_EQ((*r)[1], (ResvRegion{{0xa0000, 0xbffff}, ResvType::kDirectRelaxable}));

  auto missing = read_reserved_regions(8, root_);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.code(), ENOENT);
  EXPECT_NE(missing.error().message.find("iommu_groups/8/reserved_regions"), std::string::npos);

  write("kernel/iommu_groups/9/reserved_regions", "0x1000 0x1fff msi\n0x3000 oops msi\n");
  auto bad = read_reserved_regions(9, root_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), EINVAL);
  EXPECT_NE(bad.error().message.find("reserved_regions:2: end 'oops'"), std::string::npos) << bad.error().message;
}

TEST_F(FakeSysfs, IommuGroupOf) {
  std::filesystem::create_directories(root_ + "/kernel/iommu_groups/12");
  std::filesystem::create_directories(root_ + "/bus/pci/devices/0000:00:03.0");
  std::filesystem::create_directory_symlink("../../../../kernel/iommu_groups/12",
                                            root_ + "/bus/pci/devices/0000:00:03.0/iommu_group");
  auto g = iommu_group_of("0000:00:03.0", root_);
  ASSERT_TRUE(g.ok()) << to_string(g.error());
  EXPECT_EQ(*g, 12);
  auto none = iommu_group_of("0000:00:04.0", root_);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.code(), ENOENT);
}

TEST_F(FakeSysfs, ContainerWithoutVfio) {
  auto c = Container::open(root_);  // no <root>/vfio
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.code(), ENOENT);
  EXPECT_NE(c.error().message.find(root_ + "/vfio"), std::string::npos) << c.error().message;
}

}  // namespace
}  // namespace ioas::vfio
