// The format table (ioas/core/formats.hpp) against the literal values of the
// manuals and kernel headers it comes from, each written out here by hand
// with its source. A wrong value in the table fails here, whichever engine
// reads it.
#include <gtest/gtest.h>

#include "ioas/arith.hpp"
#include "ioas/core/formats.hpp"
#include "ioas/engine.hpp"
#include "ioas/rules.hpp"

namespace ioas::formats {
namespace {

TEST(Formats, RadixGeometryIsTheFourLevel4KLayout) {
  // Intel SDM vol. 3 4.5 (4-level paging: 4 KiB pages, 512-entry tables,
  // linear bits 47:39, 38:30, 29:21, 20:12); io-pgtable-arm.c
  // (ARM_LPAE_GRANULE 4K: bits_per_level = 9, shifts 39/30/21/12).
  EXPECT_EQ(kRadixGranule, 0x1000u);
  EXPECT_EQ(kRadixEntries, 512u);
  EXPECT_EQ(kRadixTopLevel, 3);
  EXPECT_EQ(arith::kPtIasBits, 48u);
  EXPECT_EQ(kRadixIasLast, 0x0000ffffffffffffu);
  EXPECT_EQ(arith::pt_shift(0), 12u);
  EXPECT_EQ(arith::pt_shift(1), 21u);
  EXPECT_EQ(arith::pt_shift(2), 30u);
  EXPECT_EQ(arith::pt_shift(3), 39u);
  // Leaves: PTE 4 KiB, PDE/L2 block 2 MiB, PDPTE/L1 block 1 GiB.
  EXPECT_EQ(kRadixPgsizes, 0x1000u | 0x200000u | 0x40000000u);
}

TEST(Formats, OutputAddressWidths) {
  // x86-64: MAXPHYADDR is at most 52 (SDM vol. 3 4.1.4; the kernel's
  // __PHYSICAL_MASK_SHIFT 52 in arch/x86/include/asm/page_64_types.h).
  EXPECT_EQ(facts(Format::kX86_64).output_last, 0x000fffffffffffffu);
  // arm-lpae, 4K granule: ARM_LPAE_PTE_ADDR_MASK = GENMASK_ULL(47, 12)
  // (drivers/iommu/io-pgtable-arm.c).
  EXPECT_EQ(facts(Format::kArmLpae).output_last, 0x0000ffffffffffffu);
  // tce: TCE_RPN_BITS 52, "Bits 0-51 represent RPN on TCE"
  // (arch/powerpc/include/asm/tce.h, v5.15+).
  EXPECT_EQ(facts(Format::kTce).output_last, 0x000fffffffffffffu);
  // mock: the selftest's xarray entry holds any pfn (MOCK_PFN_MASK =
  // ULONG_MAX / MOCK_IO_PAGE_SIZE, drivers/iommu/iommufd/selftest.c).
  EXPECT_EQ(facts(Format::kMock).output_last, 0xffffffffffffffffu);
  for (Format f : {Format::kX86_64, Format::kArmLpae, Format::kTce, Format::kMock})
    EXPECT_EQ(max_output_address(f), facts(f).output_last) << to_string(f);
}

TEST(Formats, InputAddressLimits) {
  // x86-64 and arm-lpae translate 48 bits (4 levels; arm T0SZ = 16); tce and
  // mock have no limit below 2^64 beyond their window or aperture.
  EXPECT_EQ(facts(Format::kX86_64).input_last, 0x0000ffffffffffffu);
  EXPECT_EQ(facts(Format::kArmLpae).input_last, 0x0000ffffffffffffu);
  EXPECT_EQ(facts(Format::kTce).input_last, 0xffffffffffffffffu);
  EXPECT_EQ(facts(Format::kMock).input_last, 0xffffffffffffffffu);
}

TEST(Formats, DefaultsAreSpecsAndTheSelftests) {
  // SPEC "attach": x86-64 and arm-lpae 4K|2M|1G over the 48-bit space.
  for (Format f : {Format::kX86_64, Format::kArmLpae}) {
    EXPECT_EQ(default_pgsizes(f), 0x40201000u) << to_string(f);
    EXPECT_EQ(default_aperture(f), (Range{0, 0xffffffffffff})) << to_string(f);
  }
  // SPEC: tce default 4K (IOMMU_PAGE_SHIFT_4K = 12, arch/powerpc/include/
  // asm/iommu.h), default window 0-0x7fffffff.
  EXPECT_EQ(default_pgsizes(Format::kTce), 0x1000u);
  EXPECT_EQ(default_aperture(Format::kTce), (Range{0, 0x7fffffff}));
  // drivers/iommu/iommufd/selftest.c: MOCK_IO_PAGE_SIZE = PAGE_SIZE / 2,
  // MOCK_HUGE_PAGE_SIZE = 512 * MOCK_IO_PAGE_SIZE; iommufd_test.h:
  // MOCK_APERTURE_START = 1UL << 24, MOCK_APERTURE_LAST = (1UL << 31) - 1.
  EXPECT_EQ(kMockPage, 0x800u);
  EXPECT_EQ(kMockHugePage, 0x100000u);
  EXPECT_EQ(default_pgsizes(Format::kMock), 0x800u);
  EXPECT_EQ(default_aperture(Format::kMock), (Range{0x1000000, 0x7fffffff}));
}

TEST(Formats, AllowedPageSizes) {
  for (Format f : {Format::kX86_64, Format::kArmLpae}) {
    EXPECT_TRUE(pgsizes_allowed(f, 0x1000)) << to_string(f);
    EXPECT_TRUE(pgsizes_allowed(f, 0x40201000)) << to_string(f);
    EXPECT_FALSE(pgsizes_allowed(f, 0)) << to_string(f);
    EXPECT_FALSE(pgsizes_allowed(f, 0x2000)) << to_string(f);
    EXPECT_FALSE(pgsizes_allowed(f, 0x8000000000)) << to_string(f);  // 512G: no leaf at the top level
  }
  EXPECT_TRUE(pgsizes_allowed(Format::kTce, 0x10000));
  EXPECT_FALSE(pgsizes_allowed(Format::kTce, 0x11000));
  EXPECT_FALSE(pgsizes_allowed(Format::kTce, 0));
}

TEST(Formats, X86DescriptorBitsAreTheArchitecturalBits) {
  // arch/x86/include/asm/pgtable_types.h: _PAGE_BIT_PRESENT 0, _RW 1,
  // _USER 2, _PWT 3, _PCD 4, _ACCESSED 5, _DIRTY 6, _PSE 7, _GLOBAL 8,
  // _NX 63; the address field is bits 51:12 (SDM vol. 3 table 4-19).
  EXPECT_EQ(x86::kP, 0x1u);
  EXPECT_EQ(x86::kRW, 0x2u);
  EXPECT_EQ(x86::kUS, 0x4u);
  EXPECT_EQ(x86::kPWT, 0x8u);
  EXPECT_EQ(x86::kPCD, 0x10u);
  EXPECT_EQ(x86::kA, 0x20u);
  EXPECT_EQ(x86::kD, 0x40u);
  EXPECT_EQ(x86::kPS, 0x80u);
  EXPECT_EQ(x86::kG, 0x100u);
  EXPECT_EQ(x86::kNX, 0x8000000000000000u);
  EXPECT_EQ(x86::kAddrMask, 0x000ffffffffff000u);
}

TEST(Formats, ArmDescriptorBitsAreTheVmsaBits) {
  // drivers/iommu/io-pgtable-arm.c: ARM_LPAE_PTE_TYPE_BLOCK 1, _TABLE 3,
  // _PAGE 3, _NS 1<<5, _AP_UNPRIV 1<<6, _AP_RDONLY 1<<7, _SH_IS 3<<8,
  // _AF 1<<10, _nG 1<<11, _DBM 1<<51, _XN 3<<53, ATTRINDX_SHIFT 2,
  // MAIR_ATTR_IDX_CACHE 1, ADDR_MASK GENMASK_ULL(47, 12); APTable[1] is
  // bit 62 of a table descriptor (Arm ARM D8.3.1).
  EXPECT_EQ(arm::kValid, 0x1u);
  EXPECT_EQ(arm::kTypeMask, 0x3u);
  EXPECT_EQ(arm::kTypeBlock, 1u);
  EXPECT_EQ(arm::kTypeTable, 3u);
  EXPECT_EQ(arm::kTypePage, 3u);
  EXPECT_EQ(arm::kAttrIdxShift, 2u);
  EXPECT_EQ(arm::kMairIdxWbrwa, 1u);
  EXPECT_EQ(arm::kNS, 0x20u);
  EXPECT_EQ(arm::kApUnpriv, 0x40u);
  EXPECT_EQ(arm::kApRdonly, 0x80u);
  EXPECT_EQ(arm::kShIS, 0x300u);
  EXPECT_EQ(arm::kAF, 0x400u);
  EXPECT_EQ(arm::kNG, 0x800u);
  EXPECT_EQ(arm::kDBM, 0x0008000000000000u);
  EXPECT_EQ(arm::kXN, 0x0060000000000000u);
  EXPECT_EQ(arm::kApTableNoWrite, 0x4000000000000000u);
  EXPECT_EQ(arm::kAddrMask, 0x0000fffffffff000u);
}

TEST(Formats, TceBitsAreTcePciReadWrite) {
  // arch/powerpc/include/asm/tce.h: TCE_PCI_READ 0x1, TCE_PCI_WRITE 0x2,
  // TCE_ENTRY_SIZE 8 (a 4 KiB indirect page holds 512 = 2^9 entries).
  EXPECT_EQ(tce::kRead, 0x1u);
  EXPECT_EQ(tce::kWrite, 0x2u);
  EXPECT_EQ(tce::kLevelBits, 9u);
}

}  // namespace
}  // namespace ioas::formats
