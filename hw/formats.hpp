// hw/formats.hpp: descriptor bit layouts, exactly as the hardware defines
// them, and the encoders the radix tables use.
//
// Levels are numbered from the leaf up, as generic_pt does: level 0 holds
// 4 KiB leaves, level 1 2 MiB, level 2 1 GiB, level 3 is the top table
// (x86 PML4, ARM level 0). ARM's own numbering runs the other way (its L3
// is our level 0); comments use ours.
//
// Sources (confirmed against the kernel with the search tools; no code
// copied): Intel SDM vol. 3 4.5 and drivers/iommu/generic_pt/fmt/x86_64.h
// for x86-64; drivers/iommu/io-pgtable-arm.c (ARM_LPAE_PTE_*) and the Arm
// ARM VMSAv8-64 descriptor formats for arm-lpae; arch/powerpc/include/asm/
// iommu.h (TCE_PCI_READ/WRITE) for tce.
#pragma once

#include <cstdint>

#include "ioas/engine.hpp"
#include "ioas/range.hpp"

namespace ioas::hw {

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
inline constexpr u64 kAddrMask = 0x000F'FFFF'FFFF'F000;  // bits 51:12

// Table entry = P|RW|US(|A) and the next table's address; leaf = P|US(|A),
// RW when writable, PS above level 0. Never XD/PWT/PCD/G (generic_pt's
// x86_64 does the same). D is clear when a leaf is written: writes made
// before dirty tracking starts must not look dirty, and a CPU or IOMMU
// sets D on the first write.
struct Fmt {
  static constexpr const char* kName = "x86-64";
  static bool present(u64 e) { return e & kP; }
  // The top level (PML4) cannot hold a leaf (PS is reserved there).
  static bool is_table(u64 e, int level) { return level == 3 || (level > 0 && !(e & kPS)); }
  static u64 table_pa(u64 e) { return e & kAddrMask; }
  static u64 table_entry(u64 pa, bool accessed) { return pa | kP | kRW | kUS | (accessed ? kA : 0); }
  static u64 leaf_entry(u64 pa, int level, Prot prot, bool accessed, bool dirty) {
    // No write-only encoding: P is always set, R/W for any writing prot (as
    // VT-d's first stage and AMD v2 write IOMMU_WRITE alone).
    const bool w = prot_writes(prot);
    return pa | kP | kUS | (accessed ? kA : 0) | (level > 0 ? kPS : 0) | (w ? kRW : 0) |
           (w && dirty ? kD : 0);
  }
  static u64 oa(u64 e, int level) { return e & kAddrMask & ~((u64{1} << (12 + 9 * level)) - 1); }
  static Prot prot(u64 e) { return (e & kRW) ? Prot::kReadWrite : Prot::kRead; }
  static bool accessed(u64 e) { return e & kA; }
  static bool dirty(u64 e) { return e & kD; }
  static u64 clean(u64 e) { return e & ~kD; }
  static constexpr u64 kMaxOa = (u64{1} << 52) - 1;
};
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
inline constexpr u64 kAddrMask = 0x0000'FFFF'FFFF'F000;  // bits 47:12

// Stage-1 leaf = type | AttrIndx(WBRWA) | SH(IS) | AF | nG | AP[1], and the
// HTTU states (io-pgtable-arm.c, read_and_clear_dirty):
//   read-only       DBM=0 AP[2]=1
//   writable-clean  DBM=1 AP[2]=1   (a write makes the SMMU clear AP[2])
//   writable-dirty  DBM=1 AP[2]=0
// New writable leaves start clean (Linux's ARM_HD quirk starts them dirty
// and relies on iommufd clearing at enable; ours are clean from the start,
// so a map while tracking reports nothing until written).
struct Fmt {
  static constexpr const char* kName = "arm-lpae";
  static bool present(u64 e) { return e & kValid; }
  static bool is_table(u64 e, int level) { return level > 0 && (e & kTypeMask) == kTypeTable; }
  static u64 table_pa(u64 e) { return e & kAddrMask; }
  static u64 table_entry(u64 pa, bool /*accessed: no AF in table descriptors*/) {
    return pa | kTypeTable;
  }
  static u64 leaf_entry(u64 pa, int level, Prot prot, bool accessed, bool dirty) {
    // Stage 1 has no write-only encoding: any writing prot leaves AP[2]
    // (RDONLY) to the dirty state (arm_lpae_prot_to_pte sets RDONLY only for
    // IOMMU_READ without IOMMU_WRITE).
    const bool w = prot_writes(prot);
    u64 e = pa | (level == 0 ? kTypePage : kTypeBlock) | (kMairIdxWbrwa << kAttrIdxShift) | kShIS |
            kNG | kApUnpriv | (accessed ? kAF : 0);
    if (w) return e | kDBM | (dirty ? 0 : kApRdonly);
    return e | kApRdonly;
  }
  static u64 oa(u64 e, int level) { return e & kAddrMask & ~((u64{1} << (12 + 9 * level)) - 1); }
  static Prot prot(u64 e) { return (e & kDBM) ? Prot::kReadWrite : Prot::kRead; }
  static bool accessed(u64 e) { return e & kAF; }
  static bool dirty(u64 e) { return (e & (kApRdonly | kDBM)) == kDBM; }
  static u64 clean(u64 e) { return (e & kDBM) ? (e | kApRdonly) : e; }
  static constexpr u64 kMaxOa = (u64{1} << 48) - 1;
};
}  // namespace arm

namespace tce {
inline constexpr u64 kRead = 0x1;   // TCE_PCI_READ: the device may read
inline constexpr u64 kWrite = 0x2;  // TCE_PCI_WRITE: the device may write
// A TCE is a big-endian 64-bit word: (pa & page mask) | kRead | kWrite.
inline u64 to_be(u64 v) { return __builtin_bswap64(v); }
inline u64 from_be(u64 v) { return __builtin_bswap64(v); }
}  // namespace tce

}  // namespace ioas::hw
