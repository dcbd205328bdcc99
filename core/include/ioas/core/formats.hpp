// ioas/core/formats.hpp: the facts of each page-table format, in one table.
//
// The model, the engine and hw/ read every format fact from here: the input
// and output address widths, the page sizes a format allows and those a new
// domain gets, the default aperture, and the descriptor bits the hardware
// defines. A value written twice could be copied wrong into both engines,
// where the differential tests cannot see it; core/tests/formats_test.cpp
// pins each one to the literal value of the manual or kernel header it
// comes from.
//
// The radix layout of x86-64 and arm-lpae (4 KiB granule, 9 index bits per
// level, 4 levels, hence 48 input bits) is the geometry of ioas/arith.hpp's
// proved pt_* templates; the table names it rather than restating it.
#pragma once

#include <cstdint>

#include "ioas/arith.hpp"
#include "ioas/engine.hpp"

namespace ioas::formats {

// ---- The radix tables (x86-64, arm-lpae) ---------------------------------
inline constexpr u64 kRadixGranule = u64{1} << arith::kPtGranuleShift;       // a table page, the smallest leaf
inline constexpr unsigned kRadixEntries = 1u << arith::kPtBitsPerLevel;      // entries per table
inline constexpr int kRadixTopLevel = static_cast<int>(arith::kPtLevels) - 1;  // holds no leaves
inline constexpr u64 kRadixIasLast = (u64{1} << arith::kPtIasBits) - 1;       // the last input address
// Leaves sit at levels 0..2: 4K, 2M, 1G.
inline constexpr u64 kRadixPgsizes =
    (u64{1} << arith::pt_shift(0)) | (u64{1} << arith::pt_shift(1)) | (u64{1} << arith::pt_shift(2));

// Output address widths (bits).
inline constexpr unsigned kX86OasBits = 52;      // MAXPHYADDR's architectural limit
inline constexpr unsigned kArmLpaeOasBits = 48;  // 4K granule without the 52-bit extension
inline constexpr unsigned kTceRpnBits = 52;      // TCE_RPN_BITS

constexpr u64 last_of_bits(unsigned bits) { return bits >= 64 ? ~u64{0} : (u64{1} << bits) - 1; }
// The output-address field of a radix descriptor: bits oas-1 .. granule.
constexpr u64 radix_addr_mask(unsigned oas_bits) { return last_of_bits(oas_bits) & ~(kRadixGranule - 1); }

// ---- Descriptor bits --------------------------------------------------------
namespace x86 {
inline constexpr u64 kP = u64{1} << 0;    // present
inline constexpr u64 kRW = u64{1} << 1;   // writable (ANDed over levels)
inline constexpr u64 kUS = u64{1} << 2;   // user (ANDed over levels)
inline constexpr u64 kPWT = u64{1} << 3;
inline constexpr u64 kPCD = u64{1} << 4;
inline constexpr u64 kA = u64{1} << 5;    // accessed: set by the walker on every entry used
inline constexpr u64 kD = u64{1} << 6;    // dirty: leaves only, set on write
inline constexpr u64 kPS = u64{1} << 7;   // page size: a leaf in a PDPTE (1G) or PDE (2M)
inline constexpr u64 kG = u64{1} << 8;
inline constexpr u64 kNX = u64{1} << 63;  // execute disable (needs EFER.NXE)
inline constexpr u64 kAddrMask = radix_addr_mask(kX86OasBits);  // bits 51:12
}  // namespace x86

namespace arm {
inline constexpr u64 kValid = u64{1} << 0;
inline constexpr u64 kTypeMask = 3;
inline constexpr u64 kTypeBlock = 1;  // levels 1..2 (2M, 1G)
inline constexpr u64 kTypeTable = 3;  // levels 1..3
inline constexpr u64 kTypePage = 3;   // level 0 (4K)
inline constexpr u64 kAttrIdxShift = 2;           // AttrIndx, bits 4:2, indexes MAIR
inline constexpr u64 kMairIdxWbrwa = 1;           // Linux: MAIR idx 1 = 0xff, IOMMU_CACHE
inline constexpr u64 kNS = u64{1} << 5;
inline constexpr u64 kApUnpriv = u64{1} << 6;     // AP[1]
inline constexpr u64 kApRdonly = u64{1} << 7;     // AP[2]
inline constexpr u64 kShIS = u64{3} << 8;         // inner shareable
inline constexpr u64 kAF = u64{1} << 10;          // access flag
inline constexpr u64 kNG = u64{1} << 11;          // not global
inline constexpr u64 kDBM = u64{1} << 51;         // dirty bit modifier (HTTU)
inline constexpr u64 kXN = u64{3} << 53;          // UXN|PXN
inline constexpr u64 kApTableNoWrite = u64{1} << 62;  // APTable[1] in table descriptors
inline constexpr u64 kAddrMask = radix_addr_mask(kArmLpaeOasBits);  // bits 47:12
}  // namespace arm

namespace tce {
inline constexpr u64 kRead = 0x1;   // TCE_PCI_READ: the device may read
inline constexpr u64 kWrite = 0x2;  // TCE_PCI_WRITE: the device may write
inline constexpr u64 kDefaultPgsize = u64{1} << 12;  // IOMMU_PAGE_SHIFT_4K
// An indirect level is one 4 KiB page of 512 8-byte entries (TCE_ENTRY_SIZE):
// the geometry of ioas/arith.hpp's tce_level_* templates.
inline constexpr unsigned kLevelBits = arith::kTceLevelBits;
inline constexpr Range kDefaultWindow{0, 0x7fffffff};  // SPEC's default window: 2 GiB at 0
}  // namespace tce

namespace mock {
// The kernel selftest's mock domain (iommufd_test.h): MOCK_APERTURE_START,
// MOCK_APERTURE_LAST. Its page sizes are ioas/engine.hpp's kMockPage and
// kMockHugePage.
inline constexpr Range kAperture{u64{1} << 24, (u64{1} << 31) - 1};
}  // namespace mock

// ---- The table ----------------------------------------------------------
struct FormatFacts {
  u64 input_last;       // the last IOVA the format's table can translate
  u64 output_last;      // the last physical address a leaf can hold
  u64 default_pgsizes;  // what a new domain gets when none are given
  Range default_aperture;
};

constexpr FormatFacts facts(Format f) {
  switch (f) {
    case Format::kX86_64:
      return {kRadixIasLast, last_of_bits(kX86OasBits), kRadixPgsizes, Range{0, kRadixIasLast}};
    case Format::kArmLpae:
      return {kRadixIasLast, last_of_bits(kArmLpaeOasBits), kRadixPgsizes, Range{0, kRadixIasLast}};
    case Format::kTce:  // a window anywhere in the 64-bit space
      return {kMaxIova, last_of_bits(kTceRpnBits), tce::kDefaultPgsize, tce::kDefaultWindow};
    case Format::kMock:  // the xarray indexes any IOVA; its entry holds any pfn
      return {kMaxIova, kMaxIova, kMockPage, mock::kAperture};
  }
  return {0, 0, 0, Range{0, 0}};
}

}  // namespace ioas::formats
