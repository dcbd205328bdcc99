// SPEC "Kernel mode" and the mock format, one TEST per rule, over any
// ioas::Engine (run on the model and on impl like spec_rules.cpp).
//
// Each kernel-mode rule names the Linux 6.12 function that shows it
// (drivers/iommu/iommufd/); docs/kernel-mode.md has the same table.
// Fixtures as in spec_rules.cpp: m is va 0x40000000, 1 GiB, pa 0x100000000.
#include <cerrno>

#include "ioas/rules.hpp"
#include "spec_rules.hpp"

namespace ioas::testing {
namespace {

IoasOptions Kernel(bool huge_pages = true) {
  IoasOptions o;
  o.mode = IoasMode::kKernel;
  o.huge_pages = huge_pages;
  return o;
}

AttachArgs MockAttach(std::string dev, std::string dom, std::optional<u64> pgsizes = std::nullopt) {
  AttachArgs a;
  a.dev = std::move(dev);
  a.dom = std::move(dom);
  a.fmt = Format::kMock;
  a.pgsize_bitmap = pgsizes;
  return a;
}

// The prots of the leaves of dom in r ("w w", "rw").
std::string LeafProts(const Engine& e, std::string_view dom, Range r) {
  auto l = e.leaves(dom, r);
  if (!l.ok()) return to_string(l.error());
  std::string s;
  for (const auto& leaf : l.value()) s += (s.empty() ? "" : " ") + std::string(to_string(leaf.prot));
  return s;
}

std::string LeafSizes(const Engine& e, std::string_view dom, Range r) {
  auto l = e.leaves(dom, r);
  if (!l.ok()) return to_string(l.error());
  std::string s;
  for (const auto& leaf : l.value()) s += (s.empty() ? "" : " ") + spec_text::hex(leaf.iova.length());
  return s;
}

}  // namespace

// The one table of differences, pinned with literal values.
TEST(ModeRules, DefaultModeKeepsEveryBeyondRule) {
  const ModeRules r = rules_for(IoasMode::kDefault);
  EXPECT_EQ(r.forced_zero_page, std::nullopt);
  EXPECT_TRUE(r.unmap_all_or_nothing);
  EXPECT_EQ(r.unmap_stuck_pin_errno, EBUSY);
  EXPECT_TRUE(r.cut_splits_domain_areas);
  EXPECT_FALSE(r.write_only_maps);
  EXPECT_FALSE(r.fixed_iova_alignment_before_overflow);
  EXPECT_FALSE(r.page_offset_after_iova);
  EXPECT_FALSE(r.copy_source_before_destination);
  EXPECT_FALSE(r.ulong_max_overflows);
  EXPECT_FALSE(r.pin_alignment_before_range);
  EXPECT_FALSE(r.pin_checks_each_area_in_turn);
  EXPECT_FALSE(r.copy_write_needs_writable_pages);
  EXPECT_FALSE(r.auto_aligns_span_start);
}

TEST(ModeRules, KernelModeTakesTheKernelsRules) {
  const ModeRules r = rules_for(IoasMode::kKernel);
  EXPECT_EQ(r.forced_zero_page, std::optional<ZeroPage>{ZeroPage::kAllowed});
  EXPECT_FALSE(r.unmap_all_or_nothing);
  EXPECT_EQ(r.unmap_stuck_pin_errno, EDEADLOCK);
  EXPECT_FALSE(r.cut_splits_domain_areas);
  EXPECT_TRUE(r.write_only_maps);
  EXPECT_TRUE(r.fixed_iova_alignment_before_overflow);
  EXPECT_TRUE(r.page_offset_after_iova);
  EXPECT_TRUE(r.copy_source_before_destination);
  EXPECT_TRUE(r.ulong_max_overflows);
  EXPECT_TRUE(r.pin_alignment_before_range);
  EXPECT_TRUE(r.pin_checks_each_area_in_turn);
  EXPECT_TRUE(r.copy_write_needs_writable_pages);
  EXPECT_TRUE(r.auto_aligns_span_start);
}

// What each format's leaves make of a prot: x86-64 and arm-lpae have no
// write-only encoding (VT-d first stage and AMD v2 set present and R/W, arm
// stage 1 leaves AP[2] clear), tce and the mock keep w.
TEST(ModeRules, LeafProtOfEachFormat) {
  EXPECT_EQ(leaf_prot(Format::kX86_64, Prot::kWrite), Prot::kReadWrite);
  EXPECT_EQ(leaf_prot(Format::kArmLpae, Prot::kWrite), Prot::kReadWrite);
  EXPECT_EQ(leaf_prot(Format::kTce, Prot::kWrite), Prot::kWrite);
  EXPECT_EQ(leaf_prot(Format::kMock, Prot::kWrite), Prot::kWrite);
  for (Format f : {Format::kX86_64, Format::kArmLpae, Format::kTce, Format::kMock}) {
    EXPECT_EQ(leaf_prot(f, Prot::kRead), Prot::kRead) << to_string(f);
    EXPECT_EQ(leaf_prot(f, Prot::kReadWrite), Prot::kReadWrite) << to_string(f);
  }
}

TEST(ModeRules, MockFormatFacts) {
  // iommufd_test.h: MOCK_APERTURE_START 1UL << 24, MOCK_APERTURE_LAST (1UL << 31) - 1;
  // selftest.c: MOCK_IO_PAGE_SIZE PAGE_SIZE / 2, MOCK_HUGE_PAGE_SIZE 512 * that.
  EXPECT_EQ(default_aperture(Format::kMock), (Range{0x1000000, 0x7fffffff}));
  EXPECT_EQ(default_pgsizes(Format::kMock), u64{0x800});
  EXPECT_EQ(kMockHugePage, u64{0x100000});
  EXPECT_TRUE(pgsizes_allowed(Format::kMock, 0x800));
  EXPECT_TRUE(pgsizes_allowed(Format::kMock, 0x100800));
  EXPECT_FALSE(pgsizes_allowed(Format::kMock, 0x100000));
  EXPECT_FALSE(pgsizes_allowed(Format::kMock, 0x1000));
  EXPECT_FALSE(pgsizes_allowed(Format::kMock, 0x1800));
  EXPECT_STREQ(to_string(Format::kMock), "mock");
  EXPECT_EQ(format_from_string("mock"), std::optional<Format>{Format::kMock});
  EXPECT_EQ(format_from_string("Mock"), std::nullopt);
  EXPECT_STREQ(to_string(IoasMode::kKernel), "kernel");
}

// ---- zero page: iopt_init_table reserves nothing; iopt_alloc_iova starts at PAGE_SIZE ----

TEST_P(SpecRules, KernelModeHasTheKernelsZeroPage) {
  Basic(Kernel());
  const IoasOptions o = MUST(engine->ioas_options("a"));
  EXPECT_EQ(o.mode, IoasMode::kKernel);
  EXPECT_EQ(o.zero_page, ZeroPage::kAllowed);  // whatever was given
  EXPECT_EQ(Ranges("a"), "0x0-0xffffffffffffffff align 0x1");
  EXPECT_EQ(MUST(MapFixed("a", 0, 0x1000, "m", 0)), 0u);
  // Automatic placement never returns 0: the next page after the area at 0.
  MUST(engine->unmap("a", 0, 0x1000));
  EXPECT_EQ(MUST(MapAuto("a", 0x1000, "m", 0)), 0x1000u);
}

// ---- unmap: iopt_unmap_iova_range removes area by area ----

TEST_P(SpecRules, KernelModeUnmapKeepsAreasRemovedBeforeAPartlyCoveredOne) {
  Basic(Kernel());
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(MapFixed("a", 0x11000, 0x1000, "m", 0x1000));
  MUST(MapFixed("a", 0x12000, 0x2000, "m", 0x2000));
  EXPECT_FAILS_PART_DONE(ENOENT, engine->unmap("a", 0x10000, 0x3000));
  EXPECT_EQ(Areas("a"), "0x12000-0x13fff rw m+0x2000");
  EXPECT_EQ(UseCount("m"), 1u);
}

TEST_P(SpecRules, KernelModeUnmapStoppingAtItsFirstAreaChangesNothing) {
  Basic(Kernel());
  MUST(MapFixed("a", 0x10000, 0x2000, "m", 0));
  MUST(MapFixed("a", 0x12000, 0x1000, "m", 0x2000));
  EXPECT_FAILS(ENOENT, engine->unmap("a", 0x11000, 0x2000));
  EXPECT_FAILS(ENOENT, engine->unmap("a", 0x40000, 0x1000));  // nothing there
}

TEST_P(SpecRules, KernelModeUnmapOfAPinThatDoesNotReleaseIsEDEADLOCK) {
  Basic(Kernel());
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(MapFixed("a", 0x11000, 0x1000, "m", 0x1000));
  MUST(MapFixed("a", 0x12000, 0x1000, "m", 0x2000));
  MUST(Pin("a", 0x11000, 0x1000, false, false));  // pin 1 holds
  MUST(Pin("a", 0x11000, 0x1000));                // pin 2 releases when told
  EXPECT_FAILS_PART_DONE(EDEADLOCK, engine->unmap_all("a"));
  // The first area went; the stuck one and those after it stay; pin 2 was
  // told and released.
  EXPECT_EQ(Areas("a"), "0x11000-0x11fff rw m+0x1000 pins=1; 0x12000-0x12fff rw m+0x2000");
  EXPECT_EQ(Pins("a"), "1 0x11000-0x11fff read hold");
}

TEST_P(SpecRules, DefaultModeUnmapOfAPinThatDoesNotReleaseIsEBUSYAndKeepsEverything) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(MapFixed("a", 0x11000, 0x1000, "m", 0x1000));
  MUST(Pin("a", 0x11000, 0x1000, false, false));
  MUST(Pin("a", 0x10000, 0x1000));
  EXPECT_FAILS(EBUSY, engine->unmap_all("a"));
}

// ---- cut: iopt_area_split refuses an area with a storage domain unless large pages are off ----

TEST_P(SpecRules, KernelModeCutRefusesAnAreaADomainHolds) {
  DomainWorld(Kernel());
  EXPECT_FAILS(EINVAL, engine->cut("a", 0x2fffff));
  // Whatever page size the domain used: B's leaves would allow a 4K cut too.
  EXPECT_FAILS(EINVAL, engine->cut("a", 0x400fff));
  EXPECT_NO_CHANGE(engine->cut("a", 0x200000));  // the first byte: no cut at all
  MUST(engine->detach("nic"));
  MUST(engine->cut("a", 0x2fffff));
  EXPECT_EQ(Areas("a"), "0x200000-0x2fffff rw m+0x0; 0x300000-0x3fffff rw m+0x100000; "
                        "0x400000-0x5fffff r m+0x200000");
}

TEST_P(SpecRules, KernelModeCutSplitsWhenLargePagesAreOff) {
  DomainWorld(Kernel(false));
  MUST(engine->cut("a", 0x2fffff));
  EXPECT_EQ(Translate("d", 0x300000), "pa 0x100100000 rw");
}

TEST_P(SpecRules, DefaultModeCutSplitsTheLargePage) {
  DomainWorld();
  MUST(engine->cut("a", 0x2fffff));
  // The 2 MiB leaf became 4 KiB leaves on both sides of the new boundary.
  EXPECT_EQ(LeafSizes(*engine, "d", Range{0x2ff000, 0x300fff}), "0x1000 0x1000");
}

// ---- huge_pages changed on an existing IOAS: iopt_disable_large_pages,
// iopt_enable_large_pages, iopt_calculate_iova_alignment ----

TEST_P(SpecRules, HugePagesOffRaisesTheAlignmentToPageAndOnLowersIt) {
  Basic(Kernel());
  EXPECT_EQ(Ranges("a"), "0x0-0xffffffffffffffff align 0x1");
  MUST(engine->set_huge_pages("a", false));
  EXPECT_FALSE(MUST(engine->ioas_options("a")).huge_pages);
  EXPECT_EQ(Ranges("a"), "0x0-0xffffffffffffffff align 0x1000");
  EXPECT_FAILS(EINVAL, MapFixed("a", 0x10800, 0x1000, "m", 0));  // now below PAGE alignment
  EXPECT_NO_CHANGE(engine->set_huge_pages("a", false));           // already off
  MUST(engine->set_huge_pages("a", true));
  EXPECT_TRUE(MUST(engine->ioas_options("a")).huge_pages);
  EXPECT_EQ(Ranges("a"), "0x0-0xffffffffffffffff align 0x1");
  EXPECT_NO_CHANGE(engine->set_huge_pages("a", true));
}

TEST_P(SpecRules, HugePagesOffIsRefusedWhileADomainHoldsAreas) {
  DomainWorld(Kernel());
  EXPECT_FAILS(EINVAL, engine->set_huge_pages("a", false));
  // Areas without a domain, or a domain without areas, are not refused.
  MUST(engine->detach("nic"));
  MUST(engine->set_huge_pages("a", false));
  MUST(engine->set_huge_pages("a", true));
  MUST(Attach("a", "nic", "d"));
  MUST(engine->unmap_all("a"));
  MUST(engine->set_huge_pages("a", false));
  EXPECT_FALSE(MUST(engine->ioas_options("a")).huge_pages);
}

TEST_P(SpecRules, HugePagesOffWhenAlreadyOffIsNotRefusedWithADomainAndAreas) {
  DomainWorld(Kernel(false));
  EXPECT_NO_CHANGE(engine->set_huge_pages("a", false));
}

TEST_P(SpecRules, HugePagesOffRefusesAnAreaBelowTheNewAlignment) {
  Basic(Kernel());
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(MapFixed("a", 0x20000, 0x1000, "m", 0x800));  // uaddr 0x40000800: 2K into its page
  EXPECT_FAILS(EADDRINUSE, engine->set_huge_pages("a", false));
  EXPECT_TRUE(MUST(engine->ioas_options("a")).huge_pages);
  MUST(engine->unmap("a", 0x20000, 0x1000));
  MUST(MapFixed("a", 0x20800, 0x1000, "m", 0x1000));  // iova 2K into its page
  EXPECT_FAILS(EADDRINUSE, engine->set_huge_pages("a", false));
  MUST(engine->unmap("a", 0x20800, 0x1000));
  MUST(MapFixed("a", 0x20000, 0x800, "m", 0x1000));  // length 2K
  EXPECT_FAILS(EADDRINUSE, engine->set_huge_pages("a", false));
  MUST(engine->unmap("a", 0x20000, 0x800));
  MUST(engine->set_huge_pages("a", false));
}

TEST_P(SpecRules, HugePagesKeepTheAlignmentADomainNeeds) {
  Basic(Kernel());
  MUST(engine->attach("a", MockAttach("m0", "mk")));
  EXPECT_EQ(Ranges("a"), "0x1000000-0x7fffffff align 0x800");
  MUST(engine->set_huge_pages("a", false));
  EXPECT_EQ(Ranges("a"), "0x1000000-0x7fffffff align 0x1000");
  MUST(engine->set_huge_pages("a", true));
  EXPECT_EQ(Ranges("a"), "0x1000000-0x7fffffff align 0x800");
}

TEST_P(SpecRules, HugePagesOnLetsTheDomainsLeavesGrow) {
  DomainWorld(Kernel(false));
  EXPECT_EQ(LeafSizes(*engine, "d", Range{0x3ff000, 0x400fff}), "0x1000 0x1000");
  MUST(engine->set_huge_pages("a", true));
  EXPECT_EQ(LeafSizes(*engine, "d", Range{0x3ff000, 0x400fff}), "0x200000 0x200000");
  EXPECT_EQ(Translate("d", 0x3fffff), "pa 0x1001fffff rw");
  EXPECT_EQ(Translate("d", 0x400000), "pa 0x100200000 r");
  // Large pages again: kernel mode's cut refuses the areas the domain holds.
  EXPECT_FAILS(EINVAL, engine->cut("a", 0x2fffff));
}

TEST_P(SpecRules, HugePagesOfAnUnknownIoasIsENOENT) {
  Basic(Kernel());
  EXPECT_FAILS(ENOENT, engine->set_huge_pages("nope", false));
  EXPECT_FAILS(ENOENT, engine->set_huge_pages("nope", true));
}

// ---- the order of a fixed IOVA's checks: io_pagetable.c:iopt_check_iova ----

// IOVAs whose alignment and overflow disagree, with huge pages off (the
// alignment is PAGE in both modes).
constexpr u64 kMisalignedOverflow = 0xfffffffffffff800;
constexpr u64 kAlignedOverflow = 0xfffffffffffff000;

TEST_P(SpecRules, KernelModeChecksAFixedIovasAlignmentBeforeItsOverflow) {
  Basic(Kernel(false));
  EXPECT_FAILS(EINVAL, MapFixed("a", kMisalignedOverflow, 0x2000, "m", 0, Prot::kReadWrite));
  EXPECT_FAILS(EOVERFLOW, MapFixed("a", kAlignedOverflow, 0x2000, "m", 0, Prot::kReadWrite));
  // The overflow is no longer an argument check: the source's are first.
  EXPECT_FAILS(EINVAL, MapFixed("a", kAlignedOverflow, 0x2000, "m", kMLen - 0x1000, Prot::kReadWrite));
}

TEST_P(SpecRules, DefaultModeChecksAFixedIovasOverflowWithTheArguments) {
  IoasOptions o;
  o.huge_pages = false;
  Basic(o);
  EXPECT_FAILS(EOVERFLOW, MapFixed("a", kMisalignedOverflow, 0x2000, "m", 0, Prot::kReadWrite));
  EXPECT_FAILS(EOVERFLOW, MapFixed("a", kAlignedOverflow, 0x2000, "m", kMLen - 0x1000, Prot::kReadWrite));
}

// A mock domain makes the alignment 2 KiB: m+0x801 is a user address whose
// page offset is not a multiple of it. "a" is in kernel mode, "d" in the
// default mode; "b" (no domain) holds an area there to copy from.
TEST_P(SpecRules, KernelModeChecksTheUserAddressesPageOffsetOnceTheIovaIsSettled) {
  Basic(Kernel());
  MUST(engine->create_ioas("d", {}));
  MUST(engine->create_ioas("b", Kernel()));
  MUST(engine->attach("a", MockAttach("m0", "mk")));
  MUST(engine->attach("d", MockAttach("m1", "md")));
  for (const char* ioas : {"a", "d"}) MUST(MapFixed(ioas, 0x1000000, 0x1000, "m", 0, Prot::kReadWrite));
  MUST(MapFixed("b", 0x10000, 0x1000, "m", 0x801, Prot::kReadWrite));
  EXPECT_FAILS(EEXIST, MapFixed("a", 0x1000000, 0x1000, "m", 0x801, Prot::kReadWrite));
  EXPECT_FAILS(EEXIST, CopyFixed("a", "b", 0x10000, 0x1000, 0x1000000, Prot::kReadWrite));
  EXPECT_FAILS(EINVAL, MapFixed("a", 0x2000000, 0x1000, "m", 0x801, Prot::kReadWrite));
  EXPECT_FAILS(EINVAL, CopyFixed("a", "b", 0x10000, 0x1000, 0x2000000, Prot::kReadWrite));
  // The default mode checks it with the IOVA's alignment.
  EXPECT_FAILS(EINVAL, MapFixed("d", 0x1000000, 0x1000, "m", 0x801, Prot::kReadWrite));
  EXPECT_FAILS(EINVAL, CopyFixed("d", "b", 0x10000, 0x1000, 0x1000000, Prot::kReadWrite));
}

// iommufd_ioas_copy: iopt_get_pages on the source, then the destination's
// iopt_check_iova. "a" (kernel mode, alignment PAGE) and "d" (default mode)
// are destinations; the source "b" holds [0x10000, 0x11fff].
TEST_P(SpecRules, KernelModeCopyTakesTheSourceBeforeCheckingTheDestination) {
  Basic(Kernel(false));
  MUST(engine->create_ioas("b", Kernel()));
  IoasOptions o;
  o.huge_pages = false;
  MUST(engine->create_ioas("d", o));
  MUST(MapFixed("b", 0x10000, 0x2000, "m", 0, Prot::kReadWrite));
  EXPECT_FAILS(ENOENT, CopyFixed("a", "b", 0x20000, 0x2000, kAlignedOverflow, Prot::kRead));
  EXPECT_FAILS(EINVAL, CopyFixed("a", "b", 0x10000, 0x2000, kMisalignedOverflow, Prot::kRead));
  EXPECT_FAILS(EOVERFLOW, CopyFixed("a", "b", 0x10000, 0x2000, kAlignedOverflow, Prot::kRead));
  // The default mode checks the destination's overflow with the arguments.
  EXPECT_FAILS(EOVERFLOW, CopyFixed("d", "b", 0x20000, 0x2000, kAlignedOverflow, Prot::kRead));
  EXPECT_FAILS(EOVERFLOW, CopyFixed("d", "b", 0x10000, 0x2000, kMisalignedOverflow, Prot::kRead));
}

// ---- ioas.c: an iova or length of ULONG_MAX is EOVERFLOW first ----

TEST_P(SpecRules, KernelModeRefusesAnIovaOrLengthOfULongMaxBeforeTheProt) {
  Basic(Kernel());
  MUST(engine->create_ioas("d", {}));
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0, Prot::kReadWrite));
  EXPECT_FAILS(EOVERFLOW, MapFixed("a", kMaxIova, 1, "m", 0, Prot::kNone));
  EXPECT_FAILS(EOVERFLOW, MapFixed("a", 0x20000, kMaxIova, "m", 0, Prot::kNone));
  EXPECT_FAILS(EOVERFLOW, MapAuto("a", kMaxIova, "m", 0, Prot::kNone));
  EXPECT_FAILS(EOVERFLOW, engine->unmap("a", kMaxIova, 1));
  EXPECT_FAILS(EOVERFLOW, engine->unmap("a", 0x10000, kMaxIova));
  EXPECT_FAILS(EOVERFLOW, CopyFixed("a", "a", kMaxIova, 1, 0x20000, Prot::kNone));
  EXPECT_FAILS(EOVERFLOW, CopyFixed("a", "a", 0x10000, 0x1000, kMaxIova, Prot::kRead));
  EXPECT_EQ(Areas("a"), "0x10000-0x10fff rw m+0x0");
  // Iova 0 with length 2^64-1 is unmap all.
  EXPECT_EQ(MUST(engine->unmap("a", 0, kMaxIova)), 0x1000u);
  // The default mode takes 2^64-1 as any other value.
  EXPECT_FAILS(EINVAL, MapFixed("d", kMaxIova, 1, "m", 0, Prot::kNone));
  EXPECT_FAILS(ENOENT, engine->unmap("d", kMaxIova, 1));
}

// ---- a pin is an access (iopt_add_access) before pages are pinned ----

// An area of "a" (kernel mode) and of "d" (default mode) whose user address
// is 0x800 into a page: the first pin needs every area PAGE aligned.
TEST_P(SpecRules, KernelModeChecksTheFirstPinsAlignmentBeforeItsRange) {
  Basic(Kernel());
  MUST(engine->create_ioas("d", {}));
  for (const char* ioas : {"a", "d"}) MUST(MapFixed(ioas, 0x10000, 0x1000, "m", 0x800, Prot::kRead));
  EXPECT_FAILS(EADDRINUSE, Pin("a", 0x20000, 0x1000, false));
  EXPECT_FAILS(EADDRINUSE, Pin("a", 0x10000, 0, true));
  EXPECT_FAILS(ENOENT, Pin("d", 0x20000, 0x1000, false));
  EXPECT_FAILS(EADDRINUSE, Pin("d", 0x10000, 0x1000, false));
}

// ---- device.c:iommufd_access_pin_pages checks the areas in turn ----

// "a" (kernel mode) and "d" (default mode) each hold [0x10000, 0x12fff] rw
// and [0x13000, 0x13fff] r, then nothing: a hole at 0x14000.
TEST_P(SpecRules, KernelModePinChecksEachAreaInTurn) {
  Basic(Kernel());
  MUST(engine->create_ioas("d", {}));
  for (const char* ioas : {"a", "d"}) {
    MUST(MapFixed(ioas, 0x10000, 0x3000, "m", 0, Prot::kReadWrite));
    MUST(MapFixed(ioas, 0x13000, 0x1000, "m", 0x100000, Prot::kRead));
  }
  // Kernel: the first area's page alignment (EINVAL), each area's
  // permission (EPERM), and only then the hole (ENOENT).
  EXPECT_FAILS(EINVAL, Pin("a", 0x13001, 0x2000, true));
  EXPECT_FAILS(EINVAL, Pin("a", 0x10001, 0x10));
  EXPECT_FAILS(EPERM, Pin("a", 0x12000, 0x3000, true));
  EXPECT_FAILS(ENOENT, Pin("a", 0x12000, 0x3000));
  EXPECT_FAILS(ENOENT, Pin("a", 0x20000, 0x1000));
  // The start decides, not the end.
  EXPECT_EQ(MUST(Pin("a", 0x10000, 0x10)), 1u);
  EXPECT_EQ(MUST(Pin("a", 0x12000, 0x1801)), 2u);
  EXPECT_EQ(Pins("a"), "1 0x10000-0x1000f read; 2 0x12000-0x13800 read");
  // Default: the hole first, then permission; a pin may start at any byte.
  EXPECT_FAILS(ENOENT, Pin("d", 0x13001, 0x2000, true));
  EXPECT_FAILS(ENOENT, Pin("d", 0x12000, 0x3000, true));
  EXPECT_FAILS(EPERM, Pin("d", 0x13001, 0x10, true));
  EXPECT_EQ(MUST(Pin("d", 0x10001, 0x10)), 1u);
}

// ---- io_pagetable.c:iopt_insert_area: a copy writes only writable pages ----

// "a" (kernel mode) and "d" (default mode) each map m+0 read-only and
// m+0x100000 rw; the memory source is writable.
TEST_P(SpecRules, KernelModeCopyAsksTheAreasPagesForWrite) {
  Basic(Kernel());
  MUST(engine->create_ioas("d", {}));
  for (const char* ioas : {"a", "d"}) {
    MUST(MapFixed(ioas, 0x10000, 0x2000, "m", 0, Prot::kRead));
    MUST(MapFixed(ioas, 0x12000, 0x2000, "m", 0x100000, Prot::kReadWrite));
  }
  // Kernel: EPERM once the destination is settled (EEXIST first), for any
  // piece whose pages are the read-only map's.
  EXPECT_FAILS(EEXIST, CopyFixed("a", "a", 0x10000, 0x1000, 0x12000, Prot::kReadWrite));
  EXPECT_FAILS(EPERM, CopyFixed("a", "a", 0x10000, 0x1000, 0x20000, Prot::kReadWrite));
  EXPECT_FAILS(EPERM, CopyFixed("a", "a", 0x11000, 0x2000, 0x20000, Prot::kWrite));
  EXPECT_FAILS(EPERM, CopyAuto("a", "a", 0x10000, 0x1000, Prot::kReadWrite));
  // The pages go with a copy (one that only reads them too) and with both
  // halves of a cut.
  MUST(CopyFixed("a", "a", 0x10000, 0x2000, 0x20000, Prot::kRead));
  MUST(CopyFixed("a", "a", 0x12000, 0x2000, 0x30000, Prot::kRead));
  MUST(engine->cut("a", 0x20fff));
  MUST(engine->cut("a", 0x30fff));
  EXPECT_FAILS(EPERM, CopyFixed("a", "a", 0x21000, 0x1000, 0x40000, Prot::kReadWrite));
  EXPECT_EQ(MUST(CopyFixed("a", "a", 0x30000, 0x1000, 0x40000, Prot::kReadWrite)), 0x40000u);
  EXPECT_EQ(MUST(CopyFixed("a", "a", 0x31000, 0x1000, 0x41000, Prot::kWrite)), 0x41000u);
  EXPECT_EQ(Areas("a"), "0x10000-0x11fff r m+0x0; 0x12000-0x13fff rw m+0x100000; 0x20000-0x20fff r m+0x0; "
                        "0x21000-0x21fff r m+0x1000; 0x30000-0x30fff r m+0x100000; 0x31000-0x31fff r m+0x101000; "
                        "0x40000-0x40fff rw m+0x100000; 0x41000-0x41fff w m+0x101000");
  // Default: the memory source decides, and it is writable.
  EXPECT_EQ(MUST(CopyFixed("d", "d", 0x10000, 0x1000, 0x20000, Prot::kReadWrite)), 0x20000u);
  // A read-only memory source is EPERM in both modes.
  MUST(MapFixed("a", 0x50000, 0x1000, "ro", 0, Prot::kRead));
  EXPECT_FAILS(EPERM, CopyFixed("a", "a", 0x50000, 0x1000, 0x60000, Prot::kReadWrite));
}

// ---- io_pagetable.c:iopt_alloc_iova moves the span's start first ----

// m+1 and m+0x801 are user addresses 1 and 0x801 bytes into a page: their
// automatic alignment is 1 for up to 2 bytes, and 1 for any length at
// m+0x801 too (its lowest set bit), with page offsets 0x1 and 0x801.
TEST_P(SpecRules, KernelModeAlignsTheSearchSpansStartFirst) {
  Basic(Kernel());
  MUST(engine->create_ioas("d", IoasOptions{ZeroPage::kAllowed}));
  for (const char* ioas : {"a", "d"}) EXPECT_EQ(MUST(MapAuto(ioas, 1, "m", 1, Prot::kReadWrite)), 0x1001u);
  // Kernel mode searches the window [PAGE, ...] from 0x1000 | 0x801; the
  // default mode applies the formula to the hole from 0x1002 alone.
  EXPECT_EQ(MUST(MapAuto("a", 0x3000, "m", 0x801, Prot::kReadWrite)), 0x1801u);
  EXPECT_EQ(MUST(MapAuto("d", 0x3000, "m", 0x801, Prot::kReadWrite)), 0x1803u);
  // An allowed span's start too: 0x100000 | 0x801, then the hole after the
  // two bytes at 0x100000.
  for (const char* ioas : {"a", "d"}) {
    const Range allowed[] = {Range{0x100000, 0x1fffff}};
    MUST(engine->allow(ioas, allowed));
    MUST(MapFixed(ioas, 0x100000, 2, "m", 0, Prot::kReadWrite));
  }
  EXPECT_EQ(MUST(MapAuto("a", 0x3000, "m", 0x801, Prot::kReadWrite)), 0x100801u);
  EXPECT_EQ(MUST(MapAuto("d", 0x3000, "m", 0x801, Prot::kReadWrite)), 0x100803u);
  // A span whose moved start leaves no room is skipped, though a hole in it
  // has room for the formula applied to the hole's own start: [0x301002,
  // 0x301803] moves to 0x301803, while its hole from 0x301800 gives 0x301801.
  for (const char* ioas : {"a", "d"}) {
    const Range spans[] = {Range{0x301002, 0x301803}, Range{0x400000, 0x4fffff}};
    MUST(engine->allow(ioas, spans));
    MUST(MapFixed(ioas, 0x301002, 0x7fe, "m", 0, Prot::kReadWrite));
  }
  EXPECT_EQ(MUST(MapAuto("a", 2, "m", 0x801, Prot::kReadWrite)), 0x400801u);
  EXPECT_EQ(MUST(MapAuto("d", 2, "m", 0x801, Prot::kReadWrite)), 0x301801u);
}

// ---- write-only maps: ioas.c:conv_iommu_prot gives IOMMU_WRITE alone ----

TEST_P(SpecRules, KernelModeMapsAndCopiesWriteOnly) {
  Basic(Kernel());
  MUST(engine->create_ioas("b", Kernel()));
  EXPECT_EQ(MUST(MapFixed("a", 0x10000, 0x2000, "m", 0, Prot::kWrite)), 0x10000u);
  EXPECT_EQ(MUST(MapAuto("a", 0x1000, "m", 0x5000, Prot::kWrite)), 0x1000u);
  // The destination takes the prot the copy asks for, whatever the source's.
  EXPECT_EQ(MUST(CopyFixed("b", "a", 0x10000, 0x1000, 0x30000, Prot::kWrite)), 0x30000u);
  EXPECT_EQ(MUST(CopyAuto("b", "a", 0x11000, 0x1000, Prot::kRead)), 0x1000u);
  EXPECT_EQ(Areas("a"), "0x1000-0x1fff w m+0x5000; 0x10000-0x11fff w m+0x0");
  EXPECT_EQ(Areas("b"), "0x1000-0x1fff r m+0x1000; 0x30000-0x30fff w m+0x0");
  // Writing needs a writable source, w as much as rw (iopt_insert_area).
  EXPECT_FAILS(EPERM, MapFixed("a", 0x40000, 0x1000, "ro", 0, Prot::kWrite));
  EXPECT_FAILS(EINVAL, MapFixed("a", 0x40000, 0x1000, "m", 0, Prot::kNone));
  EXPECT_FAILS(EINVAL, CopyFixed("b", "a", 0x10000, 0x1000, 0x40000, Prot::kNone));
  // Cut and unmap treat it as any area.
  MUST(engine->cut("a", 0x10fff));
  EXPECT_EQ(Areas("a"), "0x1000-0x1fff w m+0x5000; 0x10000-0x10fff w m+0x0; 0x11000-0x11fff w m+0x1000");
  EXPECT_EQ(MUST(engine->unmap("a", 0x10000, 0x2000)), 0x2000u);
}

TEST_P(SpecRules, DefaultModeRefusesWriteOnly) {
  Basic();
  MUST(engine->create_ioas("k", Kernel()));
  MUST(MapFixed("k", 0x10000, 0x1000, "m", 0, Prot::kWrite));
  EXPECT_FAILS(EINVAL, MapFixed("a", 0x10000, 0x1000, "m", 0, Prot::kWrite));
  // The destination's mode decides, not the source's.
  EXPECT_FAILS(EINVAL, CopyFixed("a", "k", 0x10000, 0x1000, 0x20000, Prot::kWrite));
}

// x86-64 and arm-lpae cannot hold write-only: the leaf is rw, so a device
// read succeeds (as on the hardware Linux programs).
TEST_P(SpecRules, KernelModeWriteOnlyAreaIsReadWriteInX86AndArmLeaves) {
  Basic(Kernel());
  MUST(Attach("a", "nic", "d"));
  MUST(Attach("a", "smmu", "s", {}, Format::kArmLpae));
  MUST(MapFixed("a", 0x200000, 0x201000, "m", 0, Prot::kWrite));  // one 2M leaf and one 4K leaf
  for (const char* dom : {"d", "s"}) {
    SCOPED_TRACE(dom);
    EXPECT_EQ(Translate(dom, 0x200010), "pa 0x100000010 rw");
    EXPECT_EQ(LeafProts(*engine, dom, Range{0x200000, 0x400fff}), "rw rw");
    EXPECT_EQ(Dma(dom, DmaDir::kRead, 0x3ffff0, 0x20), "ok");
    EXPECT_EQ(Dma(dom, DmaDir::kWrite, 0x3ffff0, 0x20), "ok");
  }
  EXPECT_EQ(Areas("a"), "0x200000-0x400fff w m+0x0");
}

// tce (TCE_PCI_WRITE without TCE_PCI_READ) and the mock hold write-only: a
// device read faults at the first byte of the write-only area.
TEST_P(SpecRules, KernelModeWriteOnlyAreaIsWriteOnlyInTceAndMockLeaves) {
  Basic(Kernel());
  MUST(engine->attach("a", MockAttach("m0", "mk")));
  MUST(Attach("a", "phb0", "t0", {}, Format::kTce));
  MUST(MapFixed("a", 0x1000000, 0x1000, "m", 0, Prot::kRead));
  MUST(MapFixed("a", 0x1001000, 0x1000, "m", 0x1000, Prot::kWrite));
  for (const char* dom : {"mk", "t0"}) {
    SCOPED_TRACE(dom);
    EXPECT_EQ(Translate(dom, 0x1001010), "pa 0x100001010 w");
    EXPECT_EQ(Dma(dom, DmaDir::kRead, 0x1000ff0, 0x20), "fault 0x1001000");
    EXPECT_EQ(Dma(dom, DmaDir::kWrite, 0x1001000, 0x1000), "ok");
    EXPECT_EQ(Dma(dom, DmaDir::kWrite, 0x1000fff, 2), "fault 0x1000fff");
  }
  EXPECT_EQ(LeafProts(*engine, "mk", Range{0x1000000, 0x1001fff}), "r r w w");
  EXPECT_EQ(LeafProts(*engine, "t0", Range{0x1000000, 0x1001fff}), "r w");
  // A write through a write-only leaf is recorded like any other.
  MUST(engine->set_dirty_tracking("mk", DirtyMode::kOn));
  EXPECT_EQ(Dma("mk", DmaDir::kWrite, 0x1001900, 1), "ok");
  EXPECT_EQ(Dirty("mk", 0x1000000, 0x2000, 0x800), "0x1001800-0x1001fff");
}

// Pins ask the area, not a domain (device.c:check_area_prot): a read pin
// needs IOMMU_READ, a write pin IOMMU_WRITE alone.
TEST_P(SpecRules, KernelModeReadPinOfAWriteOnlyAreaIsEPERM) {
  Basic(Kernel());
  MUST(Attach("a", "nic", "d"));  // its leaves are rw: the area still says w
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0, Prot::kRead));
  MUST(MapFixed("a", 0x11000, 0x1000, "m", 0x1000, Prot::kWrite));
  EXPECT_FAILS(EPERM, Pin("a", 0x11000, 0x1000));
  EXPECT_FAILS(EPERM, Pin("a", 0x10000, 0x2000));             // read across r then w
  EXPECT_FAILS(EPERM, Pin("a", 0x10000, 0x2000, true));       // write across r then w
  EXPECT_EQ(MUST(Pin("a", 0x11000, 0x1000, true)), 1u);
  EXPECT_EQ(Pins("a"), "1 0x11000-0x11fff write");
}

// ---- the mock format ----

TEST_P(SpecRules, MockDomainHasTheSelftestsDefaults) {
  Basic(Kernel());
  MUST(engine->attach("a", MockAttach("m0", "mk")));
  const auto d = Domain("a", "mk");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->fmt, Format::kMock);
  EXPECT_EQ(d->aperture, (Range{0x1000000, 0x7fffffff}));
  EXPECT_EQ(d->pgsize_bitmap, 0x800u);
  // Its minimum page size is below PAGE: the alignment is 2K.
  EXPECT_EQ(Ranges("a"), "0x1000000-0x7fffffff align 0x800");
}

TEST_P(SpecRules, MockDomainMapsTwoKilobyteSlots) {
  Basic(Kernel());
  MUST(engine->attach("a", MockAttach("m0", "mk")));
  MUST(MapFixed("a", 0x1000800, 0x1800, "m", 0x800));  // 6K at a 2K boundary
  EXPECT_FAILS(EINVAL, MapFixed("a", 0x1010400, 0x800, "m", 0));  // not 2K aligned
  EXPECT_EQ(LeafSizes(*engine, "mk", Range{0x1000000, 0x1001fff}), "0x800 0x800 0x800");
  EXPECT_EQ(Translate("mk", 0x1001fff), "pa 0x100001fff rw");
  MUST(engine->set_dirty_tracking("mk", DirtyMode::kOn));
  EXPECT_EQ(Dma("mk", DmaDir::kWrite, 0x1001000, 1), "ok");
  EXPECT_EQ(Dirty("mk", 0x1000000, 0x10000, 0x800), "0x1001000-0x10017ff");
}

TEST_P(SpecRules, HugeMockDomainMapsOneMegabyteLeavesAndReadsThemDirtyWhole) {
  Basic(Kernel());
  MUST(engine->attach("a", MockAttach("m0", "mk", kMockPage | kMockHugePage)));
  MUST(MapFixed("a", 0x1100000, 0x100800, "m", 0x100000));  // pa 0x100100000: 1M aligned
  EXPECT_EQ(LeafSizes(*engine, "mk", Range{0x1100000, 0x12007ff}), "0x100000 0x800");
  MUST(engine->set_dirty_tracking("mk", DirtyMode::kOn));
  EXPECT_EQ(Dma("mk", DmaDir::kWrite, 0x1100010, 1), "ok");
  EXPECT_EQ(Dirty("mk", 0x1100000, 0x200000, 0x800), "0x1100000-0x11fffff");
  EXPECT_EQ(Dirty("mk", 0x1100000, 0x200000, 0x800), "");
}

TEST_P(SpecRules, MockDomainTakesOnlyTheMocksPageSizes) {
  Basic(Kernel());
  EXPECT_FAILS(EINVAL, engine->attach("a", MockAttach("m0", "mk", k4K)));
  EXPECT_FAILS(EINVAL, engine->attach("a", MockAttach("m0", "mk", kMockHugePage)));
  EXPECT_FAILS(EINVAL, engine->attach("a", MockAttach("m0", "mk", kMockPage | k4K)));
}

TEST_P(SpecRules, MockDomainIsAvailableInTheDefaultMode) {
  Basic();
  MUST(engine->attach("a", MockAttach("m0", "mk")));
  EXPECT_EQ(Alignment("a"), 0x800u);
  MUST(MapFixed("a", 0x1000800, 0x800, "m", 0x800));
  EXPECT_EQ(Translate("mk", 0x1000800), "pa 0x100000800 rw");
}

// ---- page sizes that are no power of two reach attach ----

TEST_P(SpecRules, PageSizeThatIsNoPowerOfTwoIsEINVALInAttachsOrder) {
  Basic();
  AttachArgs a;
  a.dev = "phb0";
  a.dom = "t0";
  a.fmt = Format::kTce;
  a.pgsizes_not_pow2 = {0xc00};
  EXPECT_FAILS(EINVAL, engine->attach("a", a));
  MUST(Attach("a", "phb0", "t0", {}, Format::kTce));
  EXPECT_FAILS(EBUSY, engine->attach("a", a));  // the device is attached: EBUSY first
  a.dev = "phb1";
  EXPECT_FAILS(EINVAL, engine->attach("a", a));  // not the existing domain's sizes
}

}  // namespace ioas::testing
