// The rules of SPEC.md (see spec_rules.cpp): pins, copy, memory sources,
// translate and dma, dirty tracking, and what error messages name.
#include <cerrno>

#include "spec_rules_args.hpp"

namespace ioas::testing {

using namespace rule_args;

// ===================================================================
// pins (accesses)
// ===================================================================

TEST_P(SpecRules, PinLenZeroIsEINVAL) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  EXPECT_FAILS(EINVAL, Pin("a", 0x10000, 0));
}

TEST_P(SpecRules, PinOverflowIsEOVERFLOW) {
  Basic();
  MUST(MapFixed("a", kMax - 0xfff, 0x1000, "m", 0));
  EXPECT_FAILS(EOVERFLOW, Pin("a", kMax - 0xfff, 0x2000));
}

TEST_P(SpecRules, PinNotWhollyCoveredByContiguousAreasIsENOENT) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(MapFixed("a", 0x12000, 0x1000, "m", 0x2000));  // gap [0x11000, 0x11fff]
  EXPECT_FAILS(ENOENT, Pin("a", 0x10000, 0x3000));
  EXPECT_FAILS(ENOENT, Pin("a", 0x12000, 0x2000));  // runs past the end
  EXPECT_FAILS(ENOENT, Pin("a", 0x20000, 0x1000));  // nothing there
}

TEST_P(SpecRules, PinSpanningAdjacentAreasSucceeds) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0, RW));
  MUST(MapFixed("a", 0x11000, 0x1000, "ro", 0, R));
  EXPECT_EQ(MUST(Pin("a", 0x10000, 0x2000)), 1u);
  EXPECT_EQ(Areas("a"), "0x10000-0x10fff rw m+0x0 pins=1; 0x11000-0x11fff r ro+0x0 pins=1");
  EXPECT_EQ(Pins("a"), "1 0x10000-0x11fff read");
}

TEST_P(SpecRules, PinWriteOnReadOnlyAreaIsEPERM) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0, R));  // writable source, read-only area
  MUST(MapFixed("a", 0x11000, 0x1000, "m", 0x1000, RW));
  EXPECT_FAILS(EPERM, Pin("a", 0x10000, 0x1000, true));
  EXPECT_FAILS(EPERM, Pin("a", 0x10000, 0x2000, true));
  EXPECT_EQ(MUST(Pin("a", 0x10000, 0x1000, false)), 1u);
  EXPECT_EQ(MUST(Pin("a", 0x11000, 0x1000, true)), 2u);
  EXPECT_EQ(Pins("a"), "1 0x10000-0x10fff read; 2 0x11000-0x11fff write");
}

TEST_P(SpecRules, PinChecksInSpecOrder) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0, R));
  MUST(MapFixed("a", 0x20800, 0x800, "m", 0x800));  // disagrees with PAGE alignment
  EXPECT_FAILS(EINVAL, Pin("a", kMax, 0));                // len 0 before overflow
  EXPECT_FAILS(EOVERFLOW, Pin("a", kMax - 0xfff, 0x2000, true));  // overflow before ENOENT
  EXPECT_FAILS(ENOENT, Pin("a", 0x10000, 0x2000, true));  // ENOENT before EPERM
  EXPECT_FAILS(EPERM, Pin("a", 0x10000, 0x1000, true));   // EPERM before EADDRINUSE
  EXPECT_FAILS(ENOENT, Pin("a", 0x30000, 0x1000));        // ENOENT before EADDRINUSE
  EXPECT_FAILS(EADDRINUSE, Pin("a", 0x10000, 0x1000));
}

TEST_P(SpecRules, FirstPinRaisesAlignmentToPageUntilLastPinGoes) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x2000, "m", 0));
  EXPECT_EQ(Alignment("a"), 1u);
  const auto p1 = MUST(Pin("a", 0x10000, 0x1000));
  EXPECT_EQ(Alignment("a"), kPage);
  EXPECT_EQ(Ranges("a"), "0x1000-0xffffffffffffffff align 0x1000");
  EXPECT_FAILS(EINVAL, MapFixed("a", 0x20001, 0x1000, "m", 0));
  const auto p2 = MUST(Pin("a", 0x11000, 0x1000));
  MUST(engine->unpin("a", p1));
  EXPECT_EQ(Alignment("a"), kPage);
  MUST(engine->unpin("a", p2));
  EXPECT_EQ(Alignment("a"), 1u);
  MUST(MapFixed("a", 0x20001, 0x1000, "m", 0));
}

TEST_P(SpecRules, FirstPinWithMisalignedAreasIsEADDRINUSE) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(MapFixed("a", 0x20800, 0x800, "m", 0x800));
  EXPECT_FAILS(EADDRINUSE, Pin("a", 0x10000, 0x1000));
  EXPECT_EQ(Snap("a").next_pin_id, 1u);
  MUST(engine->unmap("a", 0x20800, 0x800));
  EXPECT_EQ(MUST(Pin("a", 0x10000, 0x1000)), 1u);
}

TEST_P(SpecRules, PinIdsCountFromOneAndAreNeverReused) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x4000, "m", 0));
  EXPECT_EQ(MUST(Pin("a", 0x10000, 0x1000)), 1u);
  EXPECT_EQ(MUST(Pin("a", 0x11000, 0x1000)), 2u);
  MUST(engine->unpin("a", 1));
  EXPECT_EQ(MUST(Pin("a", 0x10000, 0x1000)), 3u);
  MUST(engine->unpin("a", 3));
  MUST(engine->unpin("a", 2));
  EXPECT_EQ(MUST(Pin("a", 0x10000, 0x1000)), 4u);
  EXPECT_EQ(Snap("a").next_pin_id, 5u);
}

TEST_P(SpecRules, FailedPinTakesNoId) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0, R));
  EXPECT_EQ(MUST(Pin("a", 0x10000, 0x1000)), 1u);
  EXPECT_FAILS(ENOENT, Pin("a", 0x50000, 0x1000));
  EXPECT_FAILS(EPERM, Pin("a", 0x10000, 0x1000, true));
  EXPECT_EQ(MUST(Pin("a", 0x10000, 0x1000)), 2u);
}

TEST_P(SpecRules, PinIdsArePerIoas) {
  Basic();
  MUST(engine->create_ioas("b", {}));
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(MapFixed("b", 0x10000, 0x1000, "m", 0));
  EXPECT_EQ(MUST(Pin("a", 0x10000, 0x1000)), 1u);
  EXPECT_EQ(MUST(Pin("a", 0x10000, 0x1000)), 2u);
  EXPECT_EQ(MUST(Pin("b", 0x10000, 0x1000)), 1u);
  EXPECT_FAILS(ENOENT, engine->unpin("b", 2));
}

TEST_P(SpecRules, PinIsCountedInAreaAndMemoryUse) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x2000, "m", 0));
  EXPECT_EQ(UseCount("m"), 1u);
  const auto p1 = MUST(Pin("a", 0x10000, 0x1000, true, false));
  const auto p2 = MUST(Pin("a", 0x11000, 0x1000));
  EXPECT_EQ(Areas("a"), "0x10000-0x11fff rw m+0x0 pins=2");
  EXPECT_EQ(UseCount("m"), 3u);  // one area + two pins
  EXPECT_EQ(Pins("a"), "1 0x10000-0x10fff write hold; 2 0x11000-0x11fff read");
  MUST(engine->unpin("a", p1));
  MUST(engine->unpin("a", p2));
  EXPECT_EQ(UseCount("m"), 1u);
  EXPECT_EQ(Areas("a"), "0x10000-0x11fff rw m+0x0");
}

// ===================================================================
// copy (CopyWorld: a has A1 [0x10000,0x13fff] m+0 rw, A2 [0x14000,0x14fff]
// ro+0 r, A3 [0x20000,0x20fff] m+0x100000 rw; b is empty)
// ===================================================================

TEST_P(SpecRules, CopyBadProtIsEINVAL) {
  CopyWorld();
  EXPECT_FAILS(EINVAL, CopyFixed("b", "a", 0x10000, 0x1000, 0x50000, Prot::kNone));
  EXPECT_FAILS(EINVAL, CopyFixed("b", "a", 0x10000, 0x1000, 0x50000, Prot::kWrite));
  EXPECT_FAILS(EINVAL, CopyAuto("b", "a", 0x10000, 0x1000, Prot::kWrite));
}

TEST_P(SpecRules, CopyLenZeroIsEINVAL) {
  CopyWorld();
  EXPECT_FAILS(EINVAL, CopyFixed("b", "a", 0x10000, 0, 0x50000));
  EXPECT_FAILS(EINVAL, CopyAuto("b", "a", 0x10000, 0));
}

TEST_P(SpecRules, CopySourceOverflowIsEOVERFLOW) {
  CopyWorld();
  EXPECT_FAILS(EOVERFLOW, CopyFixed("b", "a", kMax - 0xfff, 0x2000, 0x50000));
  EXPECT_FAILS(EOVERFLOW, CopyAuto("b", "a", kMax - 0xfff, 0x2000));
}

TEST_P(SpecRules, CopyDestinationOverflowIsEOVERFLOW) {
  CopyWorld();
  EXPECT_FAILS(EOVERFLOW, CopyFixed("b", "a", 0x10000, 0x2000, kMax - 0xfff));
}

TEST_P(SpecRules, CopyUncoveredSourceIsENOENT) {
  CopyWorld();
  EXPECT_FAILS(ENOENT, CopyFixed("b", "a", 0x14000, 0x2000, 0x50000));  // A2 then a gap
  EXPECT_FAILS(ENOENT, CopyFixed("b", "a", 0x30000, 0x1000, 0x50000));  // nothing
  EXPECT_FAILS(ENOENT, CopyFixed("b", "a", 0x1f000, 0x2000, 0x50000));  // gap then A3
  EXPECT_FAILS(ENOENT, CopyAuto("b", "a", 0x10000, 0x11000));           // A1..A3 with a gap
}

TEST_P(SpecRules, CopyFollowsMapRulesAtDestination) {
  CopyWorld();
  MUST(MapFixed("b", 0x50000, 0x1000, "m", 0));
  MUST(engine->reserve("b", Range{0x60000, 0x60fff}, "u"));
  EXPECT_FAILS(EEXIST, CopyFixed("b", "a", 0x10000, 0x1000, 0x50000));
  EXPECT_FAILS(EINVAL, CopyFixed("b", "a", 0x10000, 0x1000, 0x60000));
  EXPECT_FAILS(EINVAL, CopyFixed("b", "a", 0x10000, 0x1000, 0x0));  // zero page
  MUST(Allow("b", {Range{0x100000, 0x100fff}}));
  EXPECT_FAILS(ENOSPC, CopyAuto("b", "a", 0x10000, 0x2000));
  MUST(CopyFixed("b", "a", 0x10000, 0x2000, 0x70000));  // fixed ignores allowed
}

TEST_P(SpecRules, CopyChecksInSpecOrder) {
  CopyWorld();
  MUST(MapFixed("b", 0x50000, 0x1000, "m", 0));
  EXPECT_FAILS(EINVAL, CopyFixed("b", "a", kMax - 0xfff, 0x2000, 0x50000, Prot::kNone));
  EXPECT_FAILS(EINVAL, CopyFixed("b", "a", kMax, 0, kMax));  // len 0 before overflow
  // destination overflow before source cover.
  EXPECT_FAILS(EOVERFLOW, CopyFixed("b", "a", 0x30000, 0x2000, kMax - 0xfff));
  // source cover (ENOENT) before the destination's map rules.
  EXPECT_FAILS(ENOENT, CopyFixed("b", "a", 0x30000, 0x1000, 0x0));
  EXPECT_FAILS(ENOENT, CopyFixed("b", "a", 0x30000, 0x1000, 0x50000));
  EXPECT_FAILS(ENOENT, CopyFixed("b", "a", 0x14000, 0x2000, 0x50000, RW));  // not EPERM
  // EPERM before the destination's reserved (EINVAL) and area (EEXIST) checks.
  EXPECT_FAILS(EPERM, CopyFixed("b", "a", 0x14000, 0x1000, 0x50000, RW));
  EXPECT_FAILS(EPERM, CopyFixed("b", "a", 0x14000, 0x1000, 0x0, RW));
}

TEST_P(SpecRules, CopySubRangeOfArea) {
  CopyWorld();
  EXPECT_EQ(MUST(CopyFixed("b", "a", 0x11000, 0x2000, 0x80000)), 0x80000u);
  EXPECT_EQ(Areas("b"), "0x80000-0x81fff rw m+0x1000");
  EXPECT_EQ(MUST(engine->uva("b", 0x80000)), 0x40001000u);
}

TEST_P(SpecRules, CopySpanningSeveralAreasMakesOneAreaPerPiece) {
  CopyWorld();
  // [0x13000, 0x14fff]: the last page of A1 (m+0x3000) then A2 (ro+0).
  EXPECT_EQ(MUST(CopyFixed("b", "a", 0x13000, 0x2000, 0x80000, R)), 0x80000u);
  EXPECT_EQ(Areas("b"), "0x80000-0x80fff r m+0x3000; 0x81000-0x81fff r ro+0x0");
}

TEST_P(SpecRules, CopyAutomaticUsesUaddrOfFirstCopiedByte) {
  CopyWorld();
  // First copied byte 0x11000 -> uaddr 0x40001000 (lowest bit 0x1000):
  // a = min(0x2000, 0x1000) = 0x1000 -> 0x1000 in b. (A1's own uaddr
  // 0x40000000 would give a = 0x2000 -> 0x2000.)
  EXPECT_EQ(MUST(CopyAuto("b", "a", 0x11000, 0x2000)), 0x1000u);
  // uaddr 0x40002000: a = 0x2000; b's hole [0x3000, ...] -> 0x4000.
  EXPECT_EQ(MUST(CopyAuto("b", "a", 0x12000, 0x2000)), 0x4000u);
  EXPECT_EQ(Areas("b"), "0x1000-0x2fff rw m+0x1000; 0x4000-0x5fff rw m+0x2000");
}

TEST_P(SpecRules, CopyWriteFromReadOnlyMemoryIsEPERM) {
  CopyWorld();
  EXPECT_FAILS(EPERM, CopyFixed("b", "a", 0x14000, 0x1000, 0x80000, RW));
  EXPECT_FAILS(EPERM, CopyAuto("b", "a", 0x13000, 0x2000, RW));
  MUST(CopyFixed("b", "a", 0x14000, 0x1000, 0x80000, R));
  EXPECT_EQ(Areas("b"), "0x80000-0x80fff r ro+0x0");
}

TEST_P(SpecRules, CopyWritePermissionFollowsMemorySourceNotArea) {
  // SPEC: "write permission is governed by the memory source's read-only
  // flag". (The kernel would look at the original mapping's WRITEABLE flag.)
  CopyWorld();
  MUST(MapFixed("a", 0x30000, 0x1000, "m", 0x200000, R));  // writable source, r area
  MUST(CopyFixed("b", "a", 0x30000, 0x1000, 0x80000, RW));
  EXPECT_EQ(Areas("b"), "0x80000-0x80fff rw m+0x200000");
}

TEST_P(SpecRules, CopyWithinSameIoas) {
  CopyWorld();
  EXPECT_EQ(MUST(CopyFixed("a", "a", 0x10000, 0x4000, 0x40000)), 0x40000u);
  // uaddr 0x40000000, len 0x1000: a = 0x1000; a's first hole [0x1000, 0xffff].
  EXPECT_EQ(MUST(CopyAuto("a", "a", 0x10000, 0x1000)), 0x1000u);
  EXPECT_EQ(Areas("a"),
            "0x1000-0x1fff rw m+0x0; 0x10000-0x13fff rw m+0x0; 0x14000-0x14fff r ro+0x0; "
            "0x20000-0x20fff rw m+0x100000; 0x40000-0x43fff rw m+0x0");
  EXPECT_FAILS(EEXIST, CopyFixed("a", "a", 0x10000, 0x1000, 0x13000));
}

TEST_P(SpecRules, CopySharesTheMemorySource) {
  CopyWorld();
  EXPECT_EQ(UseCount("m"), 2u);   // A1, A3
  EXPECT_EQ(UseCount("ro"), 1u);  // A2
  MUST(CopyFixed("b", "a", 0x13000, 0x2000, 0x80000, R));  // one piece of each
  EXPECT_EQ(UseCount("m"), 3u);
  EXPECT_EQ(UseCount("ro"), 2u);
  // The copy outlives the source areas.
  MUST(engine->unmap_all("a"));
  EXPECT_EQ(UseCount("m"), 1u);
  EXPECT_EQ(MUST(engine->uva("b", 0x80000)), 0x40003000u);
  EXPECT_EQ(MUST(engine->uva("b", 0x81000)), 0x90000000u);
  EXPECT_FAILS(EBUSY, engine->remove_memory("ro"));
}

TEST_P(SpecRules, CopyChecksAlignmentOfEachPiece) {
  Basic();
  MUST(engine->create_ioas("h", HugePagesOff()));
  MUST(MapFixed("a", 0x10000, 0x800, "m", 0));
  MUST(MapFixed("a", 0x10800, 0x800, "m", 0x800));
  MUST(MapFixed("a", 0x20000, 0x1000, "m", 0x1000));
  // Total 0x1000 is aligned, but each piece is 0x800 long.
  EXPECT_FAILS(EINVAL, CopyFixed("h", "a", 0x10000, 0x1000, 0x2000));
  EXPECT_EQ(MUST(CopyFixed("h", "a", 0x20000, 0x1000, 0x2000)), 0x2000u);
}

TEST_P(SpecRules, CopyMapsIntoDestinationDomains) {
  CopyWorld();
  MUST(Attach("b", "nic", "d"));
  MUST(CopyFixed("b", "a", 0x11000, 0x1000, 0x80000));
  EXPECT_EQ(Translate("d", 0x80010), "pa 0x100001010 rw");
}

// ===================================================================
// memory sources
// ===================================================================

TEST_P(SpecRules, AddMemoryExistingNameIsEEXIST) {
  Basic();
  EXPECT_FAILS(EEXIST, Mem("m", 0x1000, 0x1000, 0x1000));
  std::vector<MemoryInfo> mems = engine->memories();
  ASSERT_EQ(mems.size(), 2u);  // sorted by name
  EXPECT_EQ(mems[0].source, (MemorySource{"m", kMVa, kMLen, kMPa, true}));
  EXPECT_EQ(mems[1].source, (MemorySource{"ro", kRoVa, kRoLen, kRoPa, false}));
}

TEST_P(SpecRules, AddMemoryLenZeroIsEINVAL) {
  Basic();
  EXPECT_FAILS(EINVAL, Mem("z", 0x1000, 0, 0x1000));
}

TEST_P(SpecRules, AddMemoryVaOrPaOverflowIsEOVERFLOW) {
  Basic();
  EXPECT_FAILS(EOVERFLOW, Mem("z", kMax - 0xfff, 0x2000, 0x1000));
  EXPECT_FAILS(EOVERFLOW, Mem("z", 0x1000, 0x2000, kMax - 0xfff));
  MUST(Mem("z", kMax - 0xfff, 0x1000, kMax - 0xfff));  // ends at 2^64-1 exactly
}

TEST_P(SpecRules, AddMemoryPageOffsetMismatchIsEINVAL) {
  Basic();
  EXPECT_FAILS(EINVAL, Mem("z", 0x1010, 0x1000, 0x2020));
  MUST(Mem("z", 0x1010, 0x1000, 0x5010));
}

TEST_P(SpecRules, AddMemoryChecksInSpecOrder) {
  Basic();
  EXPECT_FAILS(EEXIST, Mem("m", 0x1000, 0, 0x1000));  // EEXIST before len 0
  EXPECT_FAILS(EINVAL, Mem("z", kMax, 0, 0x1000));    // len 0 (EINVAL) before overflow
  // overflow (EOVERFLOW) before page-offset mismatch (EINVAL).
  EXPECT_FAILS(EOVERFLOW, Mem("z", 0xfffffffffffff010, 0x2000, 0x20));
}

TEST_P(SpecRules, RemoveMemoryInUseIsEBUSY) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  EXPECT_FAILS(EBUSY, engine->remove_memory("m"));
  MUST(engine->unmap_all("a"));
  MUST(engine->remove_memory("m"));
  ASSERT_EQ(engine->memories().size(), 1u);
  EXPECT_EQ(engine->memories()[0].source.name, "ro");
  EXPECT_FAILS(ENOENT, MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(Mem("m", 0x1000, 0x1000, 0x1000));  // the name is free again
}

TEST_P(SpecRules, MemoryUseCountCountsAreasAndPins) {
  Basic();
  MUST(engine->create_ioas("b", {}));
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(MapFixed("a", 0x20000, 0x1000, "m", 0x1000));
  MUST(MapFixed("b", 0x10000, 0x1000, "m", 0));
  EXPECT_EQ(UseCount("m"), 3u);
  MUST(Pin("b", 0x10000, 0x1000));
  EXPECT_EQ(UseCount("m"), 4u);
  MUST(engine->unmap("a", 0x20000, 0x1000));
  EXPECT_EQ(UseCount("m"), 3u);
  EXPECT_EQ(engine->memories()[0].use_count, 3u);
}

TEST_P(SpecRules, MemoryAddedAfterIoasesIsCountedInEachAndAFreedNameStartsUnused) {
  Basic();
  MUST(engine->create_ioas("b", {}));
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(engine->remove_memory("ro"));
  // "n" comes after both IOASes, "ro" again after its removal: each starts
  // at 0 and counts the areas of both IOASes.
  MUST(Mem("n", 0x1000, 0x10000, 0x1000));
  MUST(Mem("ro", 0x90000000, 0x1000000, 0x200000000, false));
  EXPECT_EQ(UseCount("n"), 0u);
  EXPECT_EQ(UseCount("ro"), 0u);
  MUST(MapFixed("a", 0x20000, 0x2000, "n", 0));
  MUST(MapFixed("b", 0x20000, 0x1000, "n", 0x1000));
  MUST(MapFixed("b", 0x30000, 0x1000, "ro", 0, R));
  EXPECT_EQ(UseCount("n"), 2u);
  EXPECT_EQ(UseCount("ro"), 1u);
  EXPECT_EQ(UseCount("m"), 1u);
  EXPECT_FAILS(EBUSY, engine->remove_memory("n"));
  MUST(engine->unmap("a", 0x20000, 0x2000));
  EXPECT_EQ(UseCount("n"), 1u);
  EXPECT_FAILS(EBUSY, engine->remove_memory("n"));  // b still maps it
  MUST(engine->unmap("b", 0x20000, 0x1000));
  MUST(engine->remove_memory("n"));
}

TEST_P(SpecRules, UvaGivesUserAddressBehindMappedIova) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x4000, "m", 0x2000));
  EXPECT_EQ(MUST(engine->uva("a", 0x10000)), 0x40002000u);
  EXPECT_EQ(MUST(engine->uva("a", 0x10123)), 0x40002123u);
  EXPECT_EQ(MUST(engine->uva("a", 0x13fff)), 0x40005fffu);
  EXPECT_FAILS(ENOENT, engine->uva("a", 0x14000));
  EXPECT_FAILS(ENOENT, engine->uva("a", 0xffff));
  // The message names the IOVA.
  auto r = engine->uva("a", 0x14000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "uva 0x14000: not mapped");
}

// ===================================================================
// translate, dma (DomainWorld: d maps A [0x200000,0x3fffff] rw -> pa
// 0x100000000 and B [0x400000,0x5fffff] r -> pa 0x100200000)
// ===================================================================

TEST_P(SpecRules, TranslateGivesPhysicalAddressAndProt) {
  DomainWorld();
  EXPECT_EQ(Translate("d", 0x2abcde), "pa 0x1000abcde rw");
  EXPECT_EQ(Translate("d", 0x400000), "pa 0x100200000 r");
  EXPECT_EQ(Translate("d", 0x5fffff), "pa 0x1003fffff r");
  EXPECT_EQ(Translate("d", 0x600000), "fault");
  EXPECT_EQ(Translate("d", 0x1fffff), "fault");
  EXPECT_EQ(Translate("d", 0), "fault");
}

TEST_P(SpecRules, TceDomainTranslatesInsideItsWindow) {
  Basic();
  MUST(Attach("a", "nic", "t", {}, Format::kTce));
  MUST(MapFixed("a", 0x10000, 0x2000, "m", 0x3000));
  // pa 0x100000000 + 0x3000 + 0x1abc.
  EXPECT_EQ(Translate("t", 0x11abc), "pa 0x100004abc rw");
  EXPECT_EQ(Translate("t", 0x12000), "fault");
  EXPECT_FAILS(EINVAL, MapFixed("a", 0x80000000, 0x1000, "m", 0));
}

TEST_P(SpecRules, DmaLenZeroIsEINVAL) {
  DomainWorld();
  EXPECT_FAILS(EINVAL, engine->dma("d", DmaDir::kRead, 0x200000, 0));
  EXPECT_FAILS(EINVAL, engine->dma("d", DmaDir::kWrite, kMax, 0));
}

TEST_P(SpecRules, DmaOverflowIsEOVERFLOW) {
  DomainWorld();
  EXPECT_FAILS(EOVERFLOW, engine->dma("d", DmaDir::kWrite, kMax, 2));
  EXPECT_FAILS(EOVERFLOW, engine->dma("d", DmaDir::kRead, 0x200000, kMax));
}

TEST_P(SpecRules, DmaReadReportsFirstUnmappedByte) {
  DomainWorld();
  EXPECT_EQ(Dma("d", DmaDir::kRead, 0x200000, 0x400000), "ok");
  EXPECT_EQ(Dma("d", DmaDir::kRead, 0x5ffff0, 0x20), "fault 0x600000");
  EXPECT_EQ(Dma("d", DmaDir::kRead, 0x1ffff0, 0x20), "fault 0x1ffff0");
}

TEST_P(SpecRules, DmaWriteReportsFirstByteOfReadOnlyArea) {
  DomainWorld();
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x200000, 0x200000), "ok");
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x3ffff0, 0x20), "fault 0x400000");
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x400000, 1), "fault 0x400000");
}

TEST_P(SpecRules, DmaWritesBeforeFaultStayDirty) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOnSplit));
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x3ffff0, 0x20), "fault 0x400000");
  // [0x3ffff0, 0x3fffff] was written: one 4 KiB page with split tracking.
  EXPECT_EQ(Dirty("d", 0x200000, 0x400000), "0x3ff000-0x3fffff");
  // A write faulting on its first byte writes nothing.
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x400000, 0x10), "fault 0x400000");
  EXPECT_EQ(Dirty("d", 0x200000, 0x400000), "");
}

// ===================================================================
// dirty tracking
// ===================================================================

TEST_P(SpecRules, ReadDirtyWithTrackingOffIsEINVAL) {
  DomainWorld();
  EXPECT_FAILS(EINVAL, engine->read_dirty("d", 0x200000, 0x1000, kPage, false));
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOff));
  EXPECT_FAILS(EINVAL, engine->read_dirty("d", 0x200000, 0x1000, kPage, true));
}

TEST_P(SpecRules, ReadDirtyBadLenOrPageSizeIsEINVAL) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_FAILS(EINVAL, engine->read_dirty("d", 0x200000, 0, kPage, false));
  EXPECT_FAILS(EINVAL, engine->read_dirty("d", 0x200000, 0x1000, 0, false));
  EXPECT_FAILS(EINVAL, engine->read_dirty("d", 0x200000, 0x3000, 0x3000, false));
  EXPECT_FAILS(EINVAL, engine->read_dirty("d", 0x200800, 0x1000, kPage, false));   // iova
  EXPECT_FAILS(EINVAL, engine->read_dirty("d", 0x200000, 0x1800, kPage, false));   // len
  EXPECT_FAILS(EINVAL, engine->read_dirty("d", 0x201000, 0x200000, k2M, false));   // iova vs 2M
  // A failed read clears nothing.
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x200000, 1), "ok");
  EXPECT_FAILS(EINVAL, engine->read_dirty("d", 0x200000, 0x200000, 3, false));
  EXPECT_EQ(Dirty("d", 0x200000, 0x200000), "0x200000-0x3fffff");
}

TEST_P(SpecRules, ReadDirtyOverflowIsEOVERFLOW) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_FAILS(EOVERFLOW, engine->read_dirty("d", 0xfffffffffffff000, 0x2000, kPage, false));
}

TEST_P(SpecRules, ReadDirtyChecksInSpecOrder) {
  DomainWorld();
  // tracking off (EINVAL) before overflow.
  EXPECT_FAILS(EINVAL, engine->read_dirty("d", 0xfffffffffffff000, 0x2000, kPage, false));
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  // page size and alignment (EINVAL) before overflow.
  EXPECT_FAILS(EINVAL, engine->read_dirty("d", 0xfffffffffffff000, 0x2000, 3, false));
  EXPECT_FAILS(EINVAL, engine->read_dirty("d", 0xfffffffffffff800, 0x1000, kPage, false));
}

TEST_P(SpecRules, DirtyTrackingOnClearsDirtyState) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x200000, 1), "ok");
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));  // on while on clears again
  EXPECT_EQ(Dirty("d", 0x200000, 0x400000), "");
  EXPECT_EQ(Domain("a", "d")->dirty, DirtyMode::kOn);
}

TEST_P(SpecRules, WritesWhileTrackingOffAreNotRecorded) {
  DomainWorld();
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x200000, 0x1000), "ok");
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_EQ(Dirty("d", 0x200000, 0x400000), "");
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOff));
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x200000, 0x1000), "ok");
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_EQ(Dirty("d", 0x200000, 0x400000), "");
}

TEST_P(SpecRules, WriteWithoutSplitDirtiesWholeLeaf) {
  DomainWorld();
  // A 1 GiB leaf too: iova 0x40000000 and pa 0x100000000 are 1 GiB aligned.
  MUST(MapFixed("a", 0x40000000, 0x40000000, "m", 0));
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x2abcde, 1), "ok");
  EXPECT_EQ(Dirty("d", 0x200000, 0x400000), "0x200000-0x3fffff");
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x40012345, 1), "ok");
  EXPECT_EQ(Dirty("d", 0x40000000, 0x40000000), "0x40000000-0x7fffffff");
}

TEST_P(SpecRules, WriteWithSplitDirtiesOneSmallPage) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOnSplit));
  EXPECT_EQ(Domain("a", "d")->dirty, DirtyMode::kOnSplit);
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x2abcde, 1), "ok");
  EXPECT_EQ(Dirty("d", 0x200000, 0x400000), "0x2ab000-0x2abfff");
  EXPECT_EQ(Translate("d", 0x2abcde), "pa 0x1000abcde rw");  // splitting keeps translations
}

TEST_P(SpecRules, OnSplitWhileOnSplitsLeaves) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOnSplit));  // the mode now given wins
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x2abcde, 1), "ok");
  EXPECT_EQ(Dirty("d", 0x200000, 0x200000), "0x2ab000-0x2abfff");
}

TEST_P(SpecRules, ReadsAndReadOnlyAreasAreNeverDirty) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_EQ(Dma("d", DmaDir::kRead, 0x200000, 0x400000), "ok");
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x400000, 1), "fault 0x400000");
  EXPECT_EQ(Dirty("d", 0x200000, 0x400000), "");
}

TEST_P(SpecRules, MapWhileTrackingWithoutSplitUsesLargestLeaves) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  MUST(MapFixed("a", 0x600000, 0x200000, "m", 0x400000));  // pa 0x100400000: 2 MiB leaf
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x600000, 1), "ok");
  EXPECT_EQ(Dirty("d", 0x600000, 0x200000), "0x600000-0x7fffff");
}

TEST_P(SpecRules, SplitTrackingMapsNewAreasWithSmallestPages) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOnSplit));
  // iova 0x600000, pa 0x100400000: 2 MiB aligned, yet mapped with 4 KiB pages.
  MUST(MapFixed("a", 0x600000, 0x200000, "m", 0x400000));
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x600000, 1), "ok");
  EXPECT_EQ(Dirty("d", 0x600000, 0x200000), "0x600000-0x600fff");
}

TEST_P(SpecRules, PlainOnAfterSplitMergesBack) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOnSplit));
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_EQ(Domain("a", "d")->dirty, DirtyMode::kOn);
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x2abcde, 1), "ok");
  EXPECT_EQ(Dirty("d", 0x200000, 0x400000), "0x200000-0x3fffff");
}

TEST_P(SpecRules, TrackingOffMergesBackToLargestLeaves) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOnSplit));
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOff));
  EXPECT_EQ(Domain("a", "d")->dirty, DirtyMode::kOff);
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x2abcde, 1), "ok");
  EXPECT_EQ(Dirty("d", 0x200000, 0x400000), "0x200000-0x3fffff");
}

TEST_P(SpecRules, ReadDirtyClearsUnlessKeep) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOnSplit));
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x200010, 1), "ok");
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x3ff000, 4), "ok");
  EXPECT_EQ(Dirty("d", 0x200000, 0x200000, kPage, true), "0x200000-0x200fff 0x3ff000-0x3fffff");
  EXPECT_EQ(Dirty("d", 0x200000, 0x200000, kPage, true), "0x200000-0x200fff 0x3ff000-0x3fffff");
  EXPECT_EQ(Dirty("d", 0x200000, 0x200000, kPage, false), "0x200000-0x200fff 0x3ff000-0x3fffff");
  EXPECT_EQ(Dirty("d", 0x200000, 0x200000, kPage, false), "");
}

TEST_P(SpecRules, ReadingPartOfDirtyLeafReportsPartAndCleansWholeLeaf) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x2abcde, 1), "ok");  // dirties the 2 MiB leaf
  EXPECT_EQ(Dirty("d", 0x300000, 0x1000), "0x300000-0x300fff");
  EXPECT_EQ(Dirty("d", 0x200000, 0x200000), "");
}

TEST_P(SpecRules, ReadDirtyHolesAreNoError) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_EQ(Dirty("d", 0, 0x10000000), "");
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x2abcde, 1), "ok");
  // [0x100000, 0x4fffff]: a hole, all of A, half of B.
  EXPECT_EQ(Dirty("d", 0x100000, 0x400000), "0x200000-0x3fffff");
}

TEST_P(SpecRules, ReadDirtyReportsPagesOfGivenSizeCoalesced) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOnSplit));
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x2abcde, 1), "ok");
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x2ac000, 1), "ok");
  // Two adjacent 4 KiB pages come back as one range.
  EXPECT_EQ(Dirty("d", 0x200000, 0x200000, kPage, true), "0x2ab000-0x2acfff");
  // In 64 KiB pages: 0x2a0000-0x2affff holds both.
  EXPECT_EQ(Dirty("d", 0x200000, 0x200000, 0x10000, true), "0x2a0000-0x2affff");
  EXPECT_EQ(Dirty("d", 0x200000, 0x200000, k2M, true), "0x200000-0x3fffff");
}

TEST_P(SpecRules, CutSplitsDirtyLeafIntoDirtyPieces) {
  DomainWorld();
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x200010, 1), "ok");  // the 2 MiB leaf is dirty
  MUST(engine->cut("a", 0x2fffff));
  // Two 1 MiB areas: mapped with 4 KiB leaves, every one dirty.
  EXPECT_EQ(Dirty("d", 0x200000, 0x200000, kPage, true), "0x200000-0x3fffff");
  // Reading one piece cleans only that 4 KiB leaf now.
  EXPECT_EQ(Dirty("d", 0x300000, 0x1000), "0x300000-0x300fff");
  EXPECT_EQ(Dirty("d", 0x200000, 0x200000), "0x200000-0x2fffff 0x301000-0x3fffff");
}

// leaves_into and snapshot_into answer as leaves and snapshot do, into
// memory that held another answer before (a larger one: nothing of it may
// remain; a smaller one: it grows), and fail as they do.
TEST_P(SpecRules, IntoFormsAnswerAsThePlainForms) {
  CopyWorld();
  MUST(Attach("a", "nic", "d"));
  MUST(engine->reserve("a", Range{0x30000, 0x30fff}, "u0"));
  EXPECT_EQ(MUST(Pin("a", 0x10000, 0x1000)), 1u);
  IoasState st;
  for (const char* name : {"a", "b", "a"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(engine->snapshot_into(name, st).ok());
    EXPECT_EQ(st, MUST(engine->snapshot(name)));
  }
  EXPECT_EQ(engine->snapshot_into("nowhere", st).code(), ENOENT);
  std::vector<LeafInfo> leaves;
  for (const Range r : {Range{0, kMax}, Range{0x20000, 0x20fff}, Range{0x10000, 0x14fff}}) {
    SCOPED_TRACE(to_string(r));
    ASSERT_TRUE(engine->leaves_into("d", r, leaves).ok());
    EXPECT_EQ(leaves, MUST(engine->leaves("d", r)));
    EXPECT_FALSE(leaves.empty());
  }
  EXPECT_EQ(engine->leaves_into("nowhere", Range{0, kMax}, leaves).code(), ENOENT);
}

TEST_P(SpecRules, LeavesNeverSpanTwoAreas) {
  DomainWorld();
  // Contiguous in iova and pa, 2 MiB aligned at 0x800000 / 0x100800000, but two areas.
  MUST(MapFixed("a", 0x800000, 0x100000, "m", 0x800000));
  MUST(MapFixed("a", 0x900000, 0x100000, "m", 0x900000));
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x800010, 1), "ok");
  EXPECT_EQ(Dirty("d", 0x800000, 0x200000), "0x800000-0x800fff");
}

TEST_P(SpecRules, LeafNeedsIovaAndPhysicalAddressAligned) {
  DomainWorld();
  // iova 0x800000 is 2 MiB aligned, pa 0x100001000 is not: 4 KiB leaves.
  MUST(MapFixed("a", 0x800000, 0x200000, "m", 0x1000));
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x8abcde, 1), "ok");
  EXPECT_EQ(Dirty("d", 0x800000, 0x200000), "0x8ab000-0x8abfff");
}

TEST_P(SpecRules, DomainMapsOnlyWithItsPageSizes) {
  Basic();
  MUST(Attach("a", "nic", "d", {}, Format::kX86_64, std::nullopt, k4K | k2M));
  // 1 GiB aligned in iova and pa, but the domain has no 1 GiB pages.
  MUST(MapFixed("a", 0x40000000, 0x40000000, "m", 0));
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x40000010, 1), "ok");
  EXPECT_EQ(Dirty("d", 0x40000000, 0x40000000), "0x40000000-0x401fffff");
}

TEST_P(SpecRules, HugePagesOffMapsOnlyPageLeaves) {
  DomainWorld(HugePagesOff());
  MUST(engine->set_dirty_tracking("d", DirtyMode::kOn));
  EXPECT_EQ(Dma("d", DmaDir::kWrite, 0x2abcde, 1), "ok");
  EXPECT_EQ(Dirty("d", 0x200000, 0x200000), "0x2ab000-0x2abfff");
}

// ===================================================================
// Error messages name what they are about: a reserved conflict names the
// range and its owner, an error about an area names the area's range.
// (Both engines; the wording may differ, these names may not.)
// ===================================================================

TEST_P(SpecRules, ReservedConflictNamesTheRangeAndItsOwner) {
  CopyWorld();
  MUST(engine->reserve("a", Range{0x30000, 0x3ffff}, "u"));
  MUST(engine->reserve("b", Range{0x50000, 0x5ffff}, "w"));
  EXPECT_FAILS_NAMING(EINVAL, MapFixed("a", 0x2f000, 0x2000, "m", 0), "0x30000-0x3ffff", "user u");
  EXPECT_FAILS_NAMING(EINVAL, CopyFixed("b", "a", 0x10000, 0x1000, 0x5f000), "0x50000-0x5ffff", "user w");
  EXPECT_FAILS_NAMING(EADDRINUSE, Allow("a", {Range{0x38000, 0x48000}}), "0x30000-0x3ffff", "user u");
}

TEST_P(SpecRules, FixedPlacementOverAnAreaNamesTheArea) {
  CopyWorld();
  MUST(MapFixed("b", 0x70000, 0x2000, "m", 0));
  EXPECT_FAILS_NAMING(EEXIST, MapFixed("a", 0x13000, 0x2000, "m", 0), "0x10000-0x13fff");
  EXPECT_FAILS_NAMING(EEXIST, CopyFixed("b", "a", 0x10000, 0x1000, 0x71000), "0x70000-0x71fff");
}

TEST_P(SpecRules, ReservingOverAnAreaNamesTheArea) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x2000, "m", 0));
  EXPECT_FAILS_NAMING(EADDRINUSE, engine->reserve("a", Range{0x11000, 0x30000}, "u"), "0x10000-0x11fff");
  EXPECT_FAILS_NAMING(EADDRINUSE, Attach("a", "nic", "d", {Region(0x11800, 0x12000)}), "0x10000-0x11fff");
}

TEST_P(SpecRules, AttachNamesTheAreaOutsideTheApertureOrMisaligned) {
  Basic();
  MUST(MapFixed("a", 0x100000, 0x1000, "m", 0));
  EXPECT_FAILS_NAMING(EADDRINUSE, Attach("a", "nic", "d", {}, Format::kX86_64, Range{0x200000, 0xffffffff}),
                      "0x100000-0x100fff");
  MUST(MapFixed("a", 0x20800, 0x800, "m", 0x800));
  EXPECT_FAILS_NAMING(EADDRINUSE, Attach("a", "nic", "d"), "0x20800-0x20fff");
}

TEST_P(SpecRules, FirstPinAndHugePagesOffNameTheMisalignedArea) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x1000, "m", 0));
  MUST(MapFixed("a", 0x20800, 0x800, "m", 0x800));
  EXPECT_FAILS_NAMING(EADDRINUSE, Pin("a", 0x10000, 0x1000), "0x20800-0x20fff");
  EXPECT_FAILS_NAMING(EADDRINUSE, engine->set_huge_pages("a", false), "0x20800-0x20fff");
}

TEST_P(SpecRules, UnmapOfPartOfAnAreaNamesTheArea) {
  Basic();
  MUST(MapFixed("a", 0x10000, 0x2000, "m", 0));
  EXPECT_FAILS_NAMING(ENOENT, engine->unmap("a", 0x10000, 0x1000), "0x10000-0x11fff");
  MUST(engine->cut("a", 0x10fff));
  MUST(Pin("a", 0x10000, 0x1000));
  EXPECT_FAILS_NAMING(EINVAL, engine->cut("a", 0x107ff), "0x10000-0x10fff");
}

}  // namespace ioas::testing
