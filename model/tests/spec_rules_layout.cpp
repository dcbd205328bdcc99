// The rules of SPEC.md (see spec_rules.cpp): cut, the leaf rule, reserve,
// allow, attach and detach.
#include <cerrno>

#include "spec_rules_args.hpp"

namespace ioas::testing {

using namespace rule_args;

// ===================================================================
// cut
// ===================================================================

TEST_P(SpecRules, CutSplitsAreaSoIovaIsLastByteOfLeftPiece) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x4000, "m", 0x1000, R));  // [0x10000, 0x13fff]
  MUST(engine->cut("a", 0x11fff));
  // right piece: offset 0x1000 + (0x12000 - 0x10000) = 0x3000.
  EXPECT_EQ(Areas("a"), "0x10000-0x11fff r m+0x1000; 0x12000-0x13fff r m+0x3000");
  EXPECT_EQ(UseCount("m"), 2u);  // two areas reference m (invariant 8)
  EXPECT_EQ(MUST(engine->uva("a", 0x12000)), 0x40003000u);
  // With alignment 1 any byte can be a boundary: new boundary 0x10abd.
  MUST(engine->cut("a", 0x10abc));
  EXPECT_EQ(Areas("a"),
            "0x10000-0x10abc r m+0x1000; 0x10abd-0x11fff r m+0x1abd; 0x12000-0x13fff r m+0x3000");
  // The pieces are areas of their own.
  EXPECT_EQ(MUST(engine->unmap("a", 0x12000, 0x2000)), 0x2000u);
}

TEST_P(SpecRules, CutAtFirstOrLastByteOrOutsideAreasIsNoOp) {
  Basic(HugePagesOff());  // alignment 0x1000
  MUST(MapFixed("a", 0x10000, 0x4000, "m", 0));  // [0x10000, 0x13fff]
  // First byte: the new boundary 0x10001 would be unaligned, but it is a no-op.
  EXPECT_NO_CHANGE(engine->cut("a", 0x10000));
  EXPECT_NO_CHANGE(engine->cut("a", 0x13fff));
  EXPECT_NO_CHANGE(engine->cut("a", 0x14000));
  EXPECT_NO_CHANGE(engine->cut("a", 0xffff));
  EXPECT_NO_CHANGE(engine->cut("a", 0x20800));
  // Pinned, but no-op first (the kernel's iopt_area_split checks the ends first).
  MUST(Pin("a", 0x10000, 0x1000));
  EXPECT_NO_CHANGE(engine->cut("a", 0x10000));
  EXPECT_NO_CHANGE(engine->cut("a", 0x13fff));
}

TEST_P(SpecRules, CutPinnedAreaIsEINVAL) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x4000, "m", 0));
  MUST(Pin("a", 0x12000, 0x1000));
  EXPECT_FAILS(EINVAL, engine->cut("a", 0x10fff));  // the pin is elsewhere in the area
  EXPECT_FAILS(EINVAL, engine->cut("a", 0x12fff));
}

TEST_P(SpecRules, CutUnalignedNewBoundaryIsEINVAL) {
  Basic(HugePagesOff());
  MUST(MapFixed("a", 0x10000, 0x4000, "m", 0));
  EXPECT_FAILS(EINVAL, engine->cut("a", 0x107ff));  // boundary 0x10800
  EXPECT_FAILS(EINVAL, engine->cut("a", 0x10ffe));  // boundary 0x10fff
  MUST(engine->cut("a", 0x10fff));                   // boundary 0x11000
  EXPECT_EQ(Areas("a"), "0x10000-0x10fff rw m+0x0; 0x11000-0x13fff rw m+0x1000");
}

TEST_P(SpecRules, CutKeepsTranslationsAndUserAddresses) {
  Basic();
  MUST(Attach("a", "nic", "d"));
  // iova 0x200000 and pa 0x100000000 are 2 MiB aligned: two 2 MiB leaves.
  MUST(MapFixed("a", 0x200000, 0x400000, "m", 0));
  // Boundary 0x300000 is inside the first 2 MiB leaf (split, beyond the kernel).
  MUST(engine->cut("a", 0x2fffff));
  EXPECT_EQ(Areas("a"), "0x200000-0x2fffff rw m+0x0; 0x300000-0x5fffff rw m+0x100000");
  EXPECT_EQ(Translate("d", 0x200000), "pa 0x100000000 rw");
  EXPECT_EQ(Translate("d", 0x2fffff), "pa 0x1000fffff rw");
  EXPECT_EQ(Translate("d", 0x300000), "pa 0x100100000 rw");
  EXPECT_EQ(Translate("d", 0x400000), "pa 0x100200000 rw");
  EXPECT_EQ(Translate("d", 0x5fffff), "pa 0x1003fffff rw");
  EXPECT_EQ(MUST(engine->uva("a", 0x300000)), 0x40100000u);
}

// The leaf rule takes a larger page whenever one still fits: 4 KiB short of
// a 2 MiB boundary, with 4 KiB + 2 MiB to map (iova and pa equally offset
// within 2 MiB), one 4 KiB leaf and then exactly one 2 MiB leaf; with 4 KiB
// less, the 2 MiB page no longer fits and every leaf is 4 KiB.
TEST_P(SpecRules, LeafRuleTakesTheLargePageThatExactlyFitsAfterTheBoundary) {
  Basic();
  MUST(Attach("a", "nic", "d"));
  MUST(MapFixed("a", 0x1ff000, 0x201000, "m", 0x1ff000));
  const auto exact = MUST(engine->leaves("d", Range{0x1ff000, 0x3fffff}));
  ASSERT_EQ(exact.size(), 2u);
  EXPECT_EQ(exact[0].iova, (Range{0x1ff000, 0x1fffff}));
  EXPECT_EQ(exact[1].iova, (Range{0x200000, 0x3fffff}));
  EXPECT_EQ(exact[1].pa, kMPa + 0x200000);
  MUST(MapFixed("a", 0x5ff000, 0x200000, "m", 0x5ff000));
  const auto short_by_one = MUST(engine->leaves("d", Range{0x5ff000, 0x7fefff}));
  ASSERT_EQ(short_by_one.size(), 512u);
  for (const LeafInfo& l : short_by_one) EXPECT_EQ(l.iova.length(), 0x1000u);
}

// ===================================================================
// reserve / unreserve
// ===================================================================

TEST_P(SpecRules, ReserveStartAfterLastIsEINVAL) {
  Basic();
  EXPECT_FAILS(EINVAL, engine->reserve("a", Range{0x2000, 0x1fff}, "u"));
  MUST(engine->reserve("a", Range{0x2000, 0x2000}, "u"));  // one byte is fine
  EXPECT_EQ(Reserved("a"), "zero-page 0x0-0xfff; user u 0x2000-0x2000");
}

TEST_P(SpecRules, ReserveTouchingAreaIsEADDRINUSE) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  EXPECT_FAILS(EADDRINUSE, engine->reserve("a", Range{0x10fff, 0x20000}, "u"));
  EXPECT_FAILS(EADDRINUSE, engine->reserve("a", Range{0, 0x10000}, "u"));
  EXPECT_FAILS(EADDRINUSE, engine->reserve("a", Range::all(), "u"));
  MUST(engine->reserve("a", Range{0x11000, 0x11fff}, "u"));
  MUST(engine->reserve("a", Range{0xf000, 0xffff}, "u"));
}

TEST_P(SpecRules, ReserveTouchingAllowedIsEADDRINUSE) {
  Basic();
  MUST(Allow("a", {Range{0x100000, 0x1fffff}}));
  EXPECT_FAILS(EADDRINUSE, engine->reserve("a", Range{0x1fffff, 0x200fff}, "u"));
  EXPECT_FAILS(EADDRINUSE, engine->reserve("a", Range{0x180000, 0x180000}, "u"));
  MUST(engine->reserve("a", Range{0x200000, 0x200fff}, "u"));
  MUST(engine->reserve("a", Range{0xff000, 0xfffff}, "v"));
}

TEST_P(SpecRules, ReserveMergesSameOwnerOverlappingOrAdjacent) {
  Basic();
  MUST(engine->reserve("a", Range{0x10000, 0x1ffff}, "u"));
  MUST(engine->reserve("a", Range{0x20000, 0x2ffff}, "u"));  // adjacent
  EXPECT_EQ(Reserved("a"), "zero-page 0x0-0xfff; user u 0x10000-0x2ffff");
  MUST(engine->reserve("a", Range{0x28000, 0x3ffff}, "u"));  // overlapping
  MUST(engine->reserve("a", Range{0x50000, 0x50fff}, "u"));  // gap at 0x40000: apart
  EXPECT_EQ(Reserved("a"), "zero-page 0x0-0xfff; user u 0x10000-0x3ffff; user u 0x50000-0x50fff");
  MUST(engine->reserve("a", Range{0x40000, 0x4ffff}, "u"));  // fills the gap
  EXPECT_EQ(Reserved("a"), "zero-page 0x0-0xfff; user u 0x10000-0x50fff");
}

TEST_P(SpecRules, ReserveKeepsDifferentOwnersApartEvenWhenOverlapping) {
  Basic();
  MUST(engine->reserve("a", Range{0x10000, 0x1ffff}, "u"));
  MUST(engine->reserve("a", Range{0x18000, 0x27fff}, "v"));
  MUST(engine->reserve("a", Range{0x0, 0x1fff}, "w"));  // overlaps the zero page
  // Sorted by (owner, range): zero-page < user u < user v < user w.
  EXPECT_EQ(Reserved("a"),
            "zero-page 0x0-0xfff; user u 0x10000-0x1ffff; user v 0x18000-0x27fff; "
            "user w 0x0-0x1fff");
  // ranges: complement of the union [0, 0x1fff] + [0x10000, 0x27fff].
  EXPECT_EQ(Ranges("a"), "0x2000-0xffff 0x28000-0xffffffffffffffff align 0x1");
}

TEST_P(SpecRules, UnreserveRemovesEveryRangeOfThatUserOwnerOnly) {
  Basic();
  MUST(engine->reserve("a", Range{0x10000, 0x1ffff}, "u"));
  MUST(engine->reserve("a", Range{0x30000, 0x3ffff}, "u"));
  MUST(engine->reserve("a", Range{0x18000, 0x18fff}, "v"));
  MUST(engine->unreserve("a", "u"));
  EXPECT_EQ(Reserved("a"), "zero-page 0x0-0xfff; user v 0x18000-0x18fff");
  EXPECT_EQ(Ranges("a"), "0x1000-0x17fff 0x19000-0xffffffffffffffff align 0x1");
}

TEST_P(SpecRules, UnreserveNeverFails) {
  Basic();
  EXPECT_NO_CHANGE(engine->unreserve("a", "nobody"));
  EXPECT_NO_CHANGE(engine->unreserve("a", ""));
  EXPECT_NO_CHANGE(engine->unreserve("a", "zero-page"));
  EXPECT_EQ(Reserved("a"), "zero-page 0x0-0xfff");
}

TEST_P(SpecRules, UnreserveNeverTouchesDeviceOrDomainReservations) {
  Basic();
  MUST(Attach("a", "nic", "d", {Region(0xfee00000, 0xfeefffff, ResvType::kMsi)}));
  MUST(engine->reserve("a", Range{0x10000, 0x1ffff}, "nic"));
  MUST(engine->reserve("a", Range{0x30000, 0x3ffff}, "d"));
  MUST(engine->unreserve("a", "nic"));
  MUST(engine->unreserve("a", "d"));
  // x86-64 default aperture [0, 2^48-1]: [2^48, 2^64-1] reserved by the domain.
  EXPECT_EQ(Reserved("a"),
            "zero-page 0x0-0xfff; device nic 0xfee00000-0xfeefffff; "
            "domain d 0x1000000000000-0xffffffffffffffff");
}

// ===================================================================
// allow
// ===================================================================

TEST_P(SpecRules, AllowStartNotBelowLastIsEINVAL) {
  Basic();
  EXPECT_FAILS(EINVAL, Allow("a", {Range{0x10000, 0x10000}}));  // one byte: start == last
  EXPECT_FAILS(EINVAL, Allow("a", {Range{0x20000, 0x10000}}));
  EXPECT_FAILS(EINVAL, Allow("a", {Range{0x30000, 0x3ffff}, Range{0x20000, 0x10000}}));
  MUST(Allow("a", {Range{0x10000, 0x10001}}));
  EXPECT_EQ(Allowed("a"), "0x10000-0x10001");
}

TEST_P(SpecRules, AllowOverlappingRangesIsEINVAL) {
  Basic();
  EXPECT_FAILS(EINVAL, Allow("a", {Range{0x10000, 0x1ffff}, Range{0x1f000, 0x2ffff}}));
  EXPECT_FAILS(EINVAL, Allow("a", {Range{0x1f000, 0x2ffff}, Range{0x10000, 0x1ffff}}));
  EXPECT_FAILS(EINVAL, Allow("a", {Range{0x10000, 0x1ffff}, Range{0x10000, 0x1ffff}}));
  // Adjacent ranges do not overlap; the list is kept sorted.
  MUST(Allow("a", {Range{0x30000, 0x3ffff}, Range{0x10000, 0x1ffff}}));
  EXPECT_EQ(Allowed("a"), "0x10000-0x1ffff 0x30000-0x3ffff");
  MUST(Allow("a", {Range{0x10000, 0x1ffff}, Range{0x20000, 0x2ffff}}));
}

TEST_P(SpecRules, AllowTouchingReservedIsEADDRINUSE) {
  Basic();
  EXPECT_FAILS(EADDRINUSE, Allow("a", {Range{0, 0xffff}}));  // zero page
  MUST(engine->reserve("a", Range{0x20000, 0x2ffff}, "u"));
  MUST(Allow("a", {Range{0x1000, 0xffff}}));  // adjacent to the zero page
  EXPECT_FAILS(EADDRINUSE, Allow("a", {Range{0x1000, 0xffff}, Range{0x2ffff, 0x30fff}}));
  EXPECT_EQ(Allowed("a"), "0x1000-0xffff");  // the old list stays
}

TEST_P(SpecRules, AllowChecksEINVALBeforeEADDRINUSE) {
  Basic();
  // The first range touches the zero page, the second is malformed.
  EXPECT_FAILS(EINVAL, Allow("a", {Range{0, 0xffff}, Range{0x20000, 0x20000}}));
  EXPECT_FAILS(EINVAL, Allow("a", {Range{0, 0xffff}, Range{0x10000, 0x1ffff},
                                   Range{0x18000, 0x18fff}}));
}

TEST_P(SpecRules, AllowDoesNotCheckAreas) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(Allow("a", {Range{0x100000, 0x1fffff}}));  // the area is outside it
  MUST(Allow("a", {Range{0x8000, 0x20000}}));     // the area is inside it
  EXPECT_EQ(Areas("a"), "0x10000-0x10fff rw m+0x0");
}

TEST_P(SpecRules, AllowReplacesWholeList) {
  Basic();
  MUST(Allow("a", {Range{0x10000, 0x1ffff}, Range{0x30000, 0x3ffff}}));
  MUST(Allow("a", {Range{0x50000, 0x5ffff}}));
  EXPECT_EQ(Allowed("a"), "0x50000-0x5ffff");
  // A reservation may now go where the old list was.
  MUST(engine->reserve("a", Range{0x10000, 0x1ffff}, "u"));
}

TEST_P(SpecRules, AllowEmptyListClears) {
  Basic();
  MUST(Allow("a", {Range{0x100000, 0x1fffff}}));
  MUST(Allow("a", {}));
  EXPECT_EQ(Allowed("a"), "");
  // Automatic allocation uses the whole window again: a = 0x1000 -> 0x1000.
  EXPECT_EQ(MUST(MapAuto("a", 0x1000, "m", 0)), 0x1000u);
}

// ===================================================================
// attach / detach
// ===================================================================

TEST_P(SpecRules, AttachNewDomainTakesFormatDefaults) {
  Basic();
  MUST(engine->create_ioas("b", {}));
  MUST(Attach("a", "nic", "d"));
  auto d = Domain("a", "d");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->fmt, Format::kX86_64);
  EXPECT_EQ(d->aperture, (Range{0, 0xffffffffffff}));
  EXPECT_EQ(d->pgsize_bitmap, kX86Sizes);
  EXPECT_EQ(d->devices, std::vector<std::string>{"nic"});
  EXPECT_EQ(d->dirty, DirtyMode::kOff);
  EXPECT_EQ(Reserved("a"), "zero-page 0x0-0xfff; domain d 0x1000000000000-0xffffffffffffffff");
  // Alignment = min page size 4K; ranges narrowed to the aperture.
  EXPECT_EQ(Ranges("a"), "0x1000-0xffffffffffff align 0x1000");
  MUST(Attach("a", "nic2", "e", {}, Format::kArmLpae));
  auto e = Domain("a", "e");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->aperture, (Range{0, 0xffffffffffff}));
  EXPECT_EQ(e->pgsize_bitmap, kX86Sizes);
  // tce: 4K pages, window [0, 0x7fffffff].
  MUST(Attach("b", "nic3", "t", {}, Format::kTce));
  auto t = Domain("b", "t");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->aperture, (Range{0, 0x7fffffff}));
  EXPECT_EQ(t->pgsize_bitmap, k4K);
  EXPECT_EQ(Reserved("b"), "zero-page 0x0-0xfff; domain t 0x80000000-0xffffffffffffffff");
  EXPECT_EQ(Ranges("b"), "0x1000-0x7fffffff align 0x1000");
}

TEST_P(SpecRules, AttachDeviceAlreadyAttachedIsEBUSY) {
  Basic();
  MUST(engine->create_ioas("b", {}));
  MUST(Attach("a", "nic", "d"));
  EXPECT_FAILS(EBUSY, Attach("a", "nic", "d"));
  EXPECT_FAILS(EBUSY, Attach("a", "nic", "d2"));
  EXPECT_FAILS(EBUSY, Attach("b", "nic", "d3"));
}

TEST_P(SpecRules, AttachDomainOfAnotherIoasIsEINVAL) {
  Basic();
  MUST(engine->create_ioas("b", {}));
  MUST(Attach("a", "nic", "d"));
  EXPECT_FAILS(EINVAL, Attach("b", "nic2", "d"));
}

TEST_P(SpecRules, AttachExistingDomainWithOtherFormatApertureOrPgsizesIsEINVAL) {
  Basic();
  MUST(Attach("a", "nic", "d"));
  EXPECT_FAILS(EINVAL, Attach("a", "nic2", "d", {}, Format::kArmLpae));
  EXPECT_FAILS(EINVAL, Attach("a", "nic2", "d", {}, std::nullopt, Range{0, 0xfffffff}));
  EXPECT_FAILS(EINVAL, Attach("a", "nic2", "d", {}, std::nullopt, std::nullopt, k4K));
  // The same values are fine.
  MUST(Attach("a", "nic2", "d", {}, Format::kX86_64, Range{0, 0xffffffffffff}, kX86Sizes));
  EXPECT_EQ(Domain("a", "d")->devices, (std::vector<std::string>{"nic", "nic2"}));
}

TEST_P(SpecRules, AttachSecondDeviceToExistingDomain) {
  Basic();
  MUST(Attach("a", "nic", "d", {Region(0xfee00000, 0xfeefffff, ResvType::kMsi)}));
  MUST(MapFixed("a", 0x200000, 0x200000, "m", 0));
  MUST(Attach("a", "gpu", "d", {Region(0x80000000, 0x8fffffff)}));
  EXPECT_EQ(Snap("a").domains.size(), 1u);
  EXPECT_EQ(Domain("a", "d")->devices, (std::vector<std::string>{"gpu", "nic"}));
  EXPECT_EQ(Reserved("a"),
            "zero-page 0x0-0xfff; device gpu 0x80000000-0x8fffffff; "
            "device nic 0xfee00000-0xfeefffff; domain d 0x1000000000000-0xffffffffffffffff");
  EXPECT_EQ(Ranges("a"),
            "0x1000-0x7fffffff 0x90000000-0xfedfffff 0xfef00000-0xffffffffffff align 0x1000");
  EXPECT_EQ(Translate("d", 0x200000), "pa 0x100000000 rw");
}

TEST_P(SpecRules, AttachReservesDeviceRegionsSkippingDirectRelaxable) {
  Basic();
  MUST(MapFixed("a", 0x30000, 0x1000, "m", 0));  // under the relaxable region
  MUST(Attach("a", "nic", "d",
              {Region(0x10000, 0x1ffff, ResvType::kDirect),
               Region(0x30000, 0x3ffff, ResvType::kDirectRelaxable),
               Region(0x50000, 0x5ffff, ResvType::kReserved),
               Region(0xfee00000, 0xfeefffff, ResvType::kMsi)}));
  EXPECT_EQ(Reserved("a"),
            "zero-page 0x0-0xfff; device nic 0x10000-0x1ffff; device nic 0x50000-0x5ffff; "
            "device nic 0xfee00000-0xfeefffff; domain d 0x1000000000000-0xffffffffffffffff");
}

TEST_P(SpecRules, AttachDeviceRegionTouchingAreaOrAllowedIsEADDRINUSE) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(Allow("a", {Range{0x100000, 0x1fffff}}));
  EXPECT_FAILS(EADDRINUSE, Attach("a", "nic", "d", {Region(0x10fff, 0x11fff)}));
  EXPECT_FAILS(EADDRINUSE, Attach("a", "nic", "d", {Region(0xff00, 0x10000, ResvType::kMsi)}));
  EXPECT_FAILS(EADDRINUSE,
               Attach("a", "nic", "d", {Region(0x1ff000, 0x200fff, ResvType::kDirect)}));
  MUST(Attach("a", "nic", "d", {Region(0x11000, 0x11fff), Region(0x200000, 0x200fff)}));
}

TEST_P(SpecRules, AttachRegionStartAfterLastIsEINVAL) {
  Basic();
  EXPECT_FAILS(EINVAL, Attach("a", "nic", "d", {Region(0x20000, 0x10000)}));
}

TEST_P(SpecRules, AttachPgsizesNotAllowedByFormatIsEINVAL) {
  Basic();
  EXPECT_FAILS(EINVAL, Attach("a", "nic", "d", {}, Format::kX86_64, std::nullopt, k4K | 0x10000));
  EXPECT_FAILS(EINVAL,
               Attach("a", "nic", "d", {}, Format::kX86_64, std::nullopt, k4K | (u64{1} << 39)));
  EXPECT_FAILS(EINVAL, Attach("a", "nic", "d", {}, Format::kArmLpae, std::nullopt, k4K | 0x4000));
  // A subset is fine.
  MUST(Attach("a", "nic", "d", {}, Format::kX86_64, std::nullopt, k4K | k2M));
  EXPECT_EQ(Domain("a", "d")->pgsize_bitmap, 0x201000u);
}

TEST_P(SpecRules, AttachApertureBeyond48BitsIsEINVAL) {
  Basic();
  EXPECT_FAILS(EINVAL, Attach("a", "nic", "d", {}, Format::kX86_64, Range{0, 0x1000000000000}));
  EXPECT_FAILS(EINVAL, Attach("a", "nic", "d", {}, Format::kArmLpae, Range{0, 0x1000000000000}));
  EXPECT_FAILS(EINVAL, Attach("a", "nic", "d", {}, std::nullopt,
                              Range{0x1000000000000, 0x1000000000fff}));
  // Within 48 bits, starting above 0: both sides are reserved.
  MUST(Attach("a", "nic", "d", {}, Format::kX86_64, Range{0x1000, 0xffffffffffff}));
  EXPECT_EQ(Reserved("a"),
            "zero-page 0x0-0xfff; domain d 0x0-0xfff; "
            "domain d 0x1000000000000-0xffffffffffffffff");
}

TEST_P(SpecRules, AttachApertureStartAfterLastIsEINVAL) {
  Basic();
  EXPECT_FAILS(EINVAL, Attach("a", "nic", "d", {}, std::nullopt, Range{0x2000, 0x1000}));
}

TEST_P(SpecRules, AttachTceNeedsExactlyOnePageSize) {
  Basic();
  EXPECT_FAILS(EINVAL, Attach("a", "nic", "t", {}, Format::kTce, std::nullopt, k4K | k2M));
  EXPECT_FAILS(EINVAL, Attach("a", "nic", "t", {}, Format::kTce, std::nullopt, 0x3000));  // 4K, 8K
  MUST(Attach("a", "nic", "t", {}, Format::kTce, std::nullopt, k4K));
  EXPECT_EQ(Domain("a", "t")->pgsize_bitmap, k4K);
}

TEST_P(SpecRules, AttachMinimumPageSizeAbovePageIsEINVAL) {
  Basic();
  EXPECT_FAILS(EINVAL, Attach("a", "nic", "d", {}, Format::kX86_64, std::nullopt, k2M | k1G));
  EXPECT_FAILS(EINVAL, Attach("a", "nic", "d", {}, Format::kArmLpae, std::nullopt, k2M));
  EXPECT_FAILS(EINVAL, Attach("a", "nic", "d", {}, Format::kTce, std::nullopt, 0x10000));
}

TEST_P(SpecRules, AttachMisalignedExistingAreaIsEADDRINUSE) {
  Basic();  // alignment 1: any area can exist
  MUST(engine->create_ioas("b", {}));
  MUST(engine->create_ioas("c", {}));
  MUST(MapFixed("a", 0x10800, 0x800, "m", 0));       // iova not 4K aligned
  MUST(MapFixed("b", 0x20000, 0x800, "m", 0));       // len not 4K aligned
  MUST(MapFixed("c", 0x30000, 0x1000, "m", 0x800));  // uaddr mod PAGE = 0x800
  EXPECT_FAILS(EADDRINUSE, Attach("a", "nic", "d"));
  EXPECT_FAILS(EADDRINUSE, Attach("b", "nic", "d"));
  EXPECT_FAILS(EADDRINUSE, Attach("c", "nic", "d"));
}

TEST_P(SpecRules, AttachReservesOutsideApertureForTheDomain) {
  Basic();
  MUST(Attach("a", "nic", "d", {}, std::nullopt, Range{0x100000, 0xfffffff}));
  EXPECT_EQ(Reserved("a"),
            "zero-page 0x0-0xfff; domain d 0x0-0xfffff; domain d 0x10000000-0xffffffffffffffff");
  EXPECT_EQ(Ranges("a"), "0x100000-0xfffffff align 0x1000");
  EXPECT_FAILS(EINVAL, MapFixed("a", 0x10000000, 0x1000, "m", 0));
  EXPECT_FAILS(EINVAL, MapFixed("a", 0xff000, 0x1000, "m", 0));
  MUST(MapFixed("a", 0x100000, 0x1000, "m", 0));
}

TEST_P(SpecRules, AttachAreaOrAllowedOutsideApertureIsEADDRINUSE) {
  Basic();
  MUST(engine->create_ioas("b", {}));
  MUST(engine->create_ioas("c", {}));
  MUST(MapFixed("a", 0x1000000000000, 0x1000, "m", 0));  // at 2^48
  MUST(Allow("b", {Range{0xfffffffff000, 0x1000000000fff}}));
  MUST(MapFixed("c", 0x80000000, 0x1000, "m", 0));  // outside the tce window
  EXPECT_FAILS(EADDRINUSE, Attach("a", "nic", "d"));
  EXPECT_FAILS(EADDRINUSE, Attach("b", "nic", "d"));
  EXPECT_FAILS(EADDRINUSE, Attach("c", "nic", "t", {}, Format::kTce));
}

TEST_P(SpecRules, AttachMapsExistingAreasIntoNewDomain) {
  Basic();
  MUST(MapFixed("a", 0x200000, 0x200000, "m", 0, RW));
  MUST(MapFixed("a", 0x400000, 0x1000, "m", 0x5000, R));
  MUST(Attach("a", "nic", "d"));
  EXPECT_EQ(Translate("d", 0x200000), "pa 0x100000000 rw");
  EXPECT_EQ(Translate("d", 0x3fffff), "pa 0x1001fffff rw");
  EXPECT_EQ(Translate("d", 0x400123), "pa 0x100005123 r");
  EXPECT_EQ(Translate("d", 0x401000), "fault");
  EXPECT_EQ(Translate("d", 0x1ff000), "fault");
}

TEST_P(SpecRules, AttachChecksInSpecOrder) {
  Basic();
  MUST(engine->create_ioas("b", {}));
  MUST(engine->create_ioas("c", {}));
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(MapFixed("b", 0x10000, 0x1000, "m", 0));
  MUST(MapFixed("c", 0x10800, 0x800, "m", 0));  // misaligned for any domain
  MUST(Attach("a", "nic", "d"));
  const std::vector<ResvRegion> on_area = {Region(0x10000, 0x10fff)};
  // device attached (EBUSY) before domain in another IOAS (EINVAL).
  EXPECT_FAILS(EBUSY, Attach("b", "nic", "d"));
  // domain in another IOAS (EINVAL) before device regions (EADDRINUSE).
  EXPECT_FAILS(EINVAL, Attach("b", "nic2", "d", on_area));
  // existing domain's values differ (EINVAL) before device regions (EADDRINUSE).
  EXPECT_FAILS(EINVAL, Attach("a", "nic2", "d", on_area, Format::kTce));
  // device regions (EADDRINUSE) before the new domain's format rules (EINVAL).
  EXPECT_FAILS(EADDRINUSE,
               Attach("a", "nic2", "d2", on_area, Format::kX86_64, std::nullopt, k4K | 0x10000));
  EXPECT_FAILS(EADDRINUSE, Attach("a", "nic2", "d2", on_area, std::nullopt, Range{0x2000, 0x1000}));
  EXPECT_FAILS(EADDRINUSE, Attach("a", "nic2", "d2", on_area, std::nullopt, std::nullopt, k2M));
  // format rules (EINVAL) before misaligned areas and aperture (EADDRINUSE).
  EXPECT_FAILS(EINVAL, Attach("c", "nic3", "e", {}, std::nullopt, std::nullopt, k4K | 0x10000));
  EXPECT_FAILS(EINVAL, Attach("c", "nic3", "e", {}, std::nullopt, Range{0, 0x1000000000000}));
  EXPECT_FAILS(EINVAL, Attach("c", "nic3", "e", {}, std::nullopt, std::nullopt, k2M));
  // a malformed region (EINVAL) before misaligned areas and aperture (EADDRINUSE).
  EXPECT_FAILS(EINVAL, Attach("c", "nic3", "e", {Region(2, 1)}, std::nullopt,
                              Range{0x100000, 0xffffffffffff}));
}

TEST_P(SpecRules, AttachConflictRollsBackEverything) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(Allow("a", {Range{0x100000, 0x1fffff}}));
  MUST(Attach("a", "nic", "d", {Region(0xfee00000, 0xfeefffff, ResvType::kMsi)}));
  // New domain: its device region is fine, then the aperture [0, 0xfffff]
  // leaves [0x100000, 2^64-1] outside, which touches the allowed range.
  EXPECT_FAILS(EADDRINUSE, Attach("a", "gpu", "d2", {Region(0xfed00000, 0xfedfffff)},
                                  Format::kX86_64, Range{0, 0xfffff}));
  EXPECT_FAILS(ENOENT, engine->translate("d2", 0x10000));  // no domain was left behind
  EXPECT_FAILS(ENOENT, engine->detach("gpu"));             // nor a device
  EXPECT_EQ(Translate("d", 0x10000), "pa 0x100000000 rw");
  // Existing domain: the first region is reserved, the second conflicts.
  EXPECT_FAILS(EADDRINUSE,
               Attach("a", "gpu", "d", {Region(0xa0000000, 0xa0ffffff), Region(0x10000, 0x10fff)}));
  // Alignment step: an IOAS with alignment 1 and a misaligned area.
  MUST(engine->create_ioas("b", {}));
  MUST(MapFixed("b", 0x20800, 0x800, "m", 0));
  EXPECT_FAILS(EADDRINUSE, Attach("b", "gpu", "e", {Region(0xfee00000, 0xfeefffff)}));
  EXPECT_EQ(Alignment("b"), 1u);
  // And gpu can still be attached.
  MUST(Attach("a", "gpu", "d2"));
  EXPECT_EQ(Domain("a", "d2")->devices, std::vector<std::string>{"gpu"});
}

TEST_P(SpecRules, DetachLastDeviceRemovesDomainAndKeepsAreas) {
  Basic();
  MUST(MapFixed("a", 0x200000, 0x200000, "m", 0));
  MUST(Attach("a", "nic", "d", {Region(0xfee00000, 0xfeefffff, ResvType::kMsi)}));
  EXPECT_EQ(Ranges("a"), "0x1000-0xfedfffff 0xfef00000-0xffffffffffff align 0x1000");
  MUST(engine->detach("nic"));
  EXPECT_TRUE(Snap("a").domains.empty());
  EXPECT_EQ(Reserved("a"), "zero-page 0x0-0xfff");
  EXPECT_EQ(Ranges("a"), "0x1000-0xffffffffffffffff align 0x1");
  EXPECT_EQ(Areas("a"), "0x200000-0x3fffff rw m+0x0");
  EXPECT_FAILS(ENOENT, engine->translate("d", 0x200000));
  MUST(MapFixed("a", 0x10001, 1, "m", 0));  // alignment is 1 again
  // The device and domain names are free again, for any IOAS.
  MUST(engine->create_ioas("b", {}));
  MUST(Attach("b", "nic", "d", {}, Format::kTce));
  EXPECT_EQ(Domain("b", "d")->fmt, Format::kTce);
}

TEST_P(SpecRules, DetachKeepsDomainWhileDevicesRemain) {
  Basic();
  MUST(Attach("a", "nic", "d", {Region(0xfee00000, 0xfeefffff, ResvType::kMsi)}));
  MUST(Attach("a", "gpu", "d", {Region(0x80000000, 0x8fffffff)}));
  MUST(MapFixed("a", 0x200000, 0x1000, "m", 0));
  MUST(engine->detach("nic"));
  EXPECT_EQ(Domain("a", "d")->devices, std::vector<std::string>{"gpu"});
  EXPECT_EQ(Reserved("a"),
            "zero-page 0x0-0xfff; device gpu 0x80000000-0x8fffffff; "
            "domain d 0x1000000000000-0xffffffffffffffff");
  EXPECT_EQ(Ranges("a"), "0x1000-0x7fffffff 0x90000000-0xffffffffffff align 0x1000");
  EXPECT_EQ(Translate("d", 0x200000), "pa 0x100000000 rw");
}

TEST_P(SpecRules, DetachRecomputesAlignmentKeepingPinsAndHugePagesOff) {
  Basic(HugePagesOff());
  MUST(Attach("a", "nic", "d"));
  MUST(engine->detach("nic"));
  EXPECT_EQ(Alignment("a"), kPage);  // huge pages off
  MUST(engine->create_ioas("b", {}));
  MUST(MapFixed("b", 0x10000, 0x1000, "m", 0));
  const auto id = MUST(Pin("b", 0x10000, 0x1000));
  MUST(Attach("b", "gpu", "e"));
  MUST(engine->detach("gpu"));
  EXPECT_EQ(Alignment("b"), kPage);  // a pin is held
  MUST(engine->unpin("b", id));
  EXPECT_EQ(Alignment("b"), 1u);
}

}  // namespace ioas::testing
