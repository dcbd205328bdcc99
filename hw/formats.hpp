// hw/formats.hpp: descriptor bit layouts, exactly as the hardware defines
// them, and the encoders the radix tables use.
//
// Levels are numbered from the leaf up, as generic_pt does: level 0 holds
// 4 KiB leaves, level 1 2 MiB, level 2 1 GiB, level 3 is the top table
// (x86 PML4, ARM level 0). ARM's own numbering runs the other way (its L3
// is our level 0); comments use ours.
//
// The bits themselves, and each format's address widths, are the table of
// ioas/core/formats.hpp (pinned with their sources in core/tests).
#pragma once

#include <cstdint>

#include "ioas/arith.hpp"
#include "ioas/core/formats.hpp"
#include "ioas/engine.hpp"
#include "ioas/range.hpp"

namespace ioas::hw {

// A radix descriptor's address field is bits [granule shift, oas) of the
// entry (ioas/arith.hpp's desc_* templates, proved at these positions); the
// format table's mask is that field.
template <unsigned kOasBits>
struct AddrField {
  static constexpr unsigned kLo = arith::kPtGranuleShift, kHi = kOasBits;
  static constexpr u64 kMask = arith::field_mask(u64{0}, kLo, kHi);
  // The address an entry (or a CR3/TTBR) holds.
  static u64 addr(u64 e) { return arith::desc_addr(e, kLo, kHi); }
  // The output address of a leaf at `level`: its field without the bits
  // below the leaf's size.
  static u64 leaf_addr(u64 e, int level) { return arith::desc_leaf_addr(e, kLo, kHi, static_cast<unsigned>(level)); }
  // The field of a leaf at `level` is aligned to its size (bit kLo aside:
  // x86's PAT in a large leaf).
  static bool leaf_aligned(u64 e, int level) {
    return arith::desc_leaf_aligned(e, kLo, kHi, static_cast<unsigned>(level));
  }
};

namespace x86 {
using namespace ::ioas::formats::x86;  // the descriptor bits (ioas/core/formats.hpp)

// Table entry = P|RW|US(|A) and the next table's address; leaf = P|US(|A),
// RW when writable, PS above level 0. Never XD/PWT/PCD/G (generic_pt's
// x86_64 does the same). D is clear when a leaf is written: writes made
// before dirty tracking starts must not look dirty, and a CPU or IOMMU
// sets D on the first write.
struct Fmt : AddrField<formats::kX86OasBits> {
  static_assert(kMask == kAddrMask, "the address field is the format table's");
  static constexpr const char* kName = "x86-64";
  static bool present(u64 e) { return e & kP; }
  // The top level (PML4) cannot hold a leaf (PS is reserved there).
  static bool is_table(u64 e, int level) { return level == formats::kRadixTopLevel || (level > 0 && !(e & kPS)); }
  static u64 table_pa(u64 e) { return addr(e); }
  static u64 table_entry(u64 pa, bool accessed) { return arith::desc_make(pa, kP | kRW | kUS | (accessed ? kA : 0)); }
  static u64 leaf_entry(u64 pa, int level, Prot prot, bool accessed, bool dirty) {
    // No write-only encoding: P is always set, R/W for any writing prot (as
    // VT-d's first stage and AMD v2 write IOMMU_WRITE alone).
    const bool w = prot_writes(prot);
    return arith::desc_make(pa, kP | kUS | (accessed ? kA : 0) | (level > 0 ? kPS : 0) | (w ? kRW : 0) |
                                    (w && dirty ? kD : 0));
  }
  static_assert(((kP | kUS | kA | kPS | kRW | kD) & kMask) == 0, "x86 flags lie outside the address field");
  static u64 oa(u64 e, int level) { return leaf_addr(e, level); }
  // r, with w where RW is set: RW is Prot::kWrite's bit, so one AND and
  // one OR, no branch or flag sequence (translate's leaf).
  static Prot prot(u64 e) { return static_cast<Prot>(static_cast<u64>(Prot::kRead) | (e & kRW)); }
  static_assert(kRW == static_cast<u64>(Prot::kWrite), "RW sits where Prot has w");
  static bool accessed(u64 e) { return e & kA; }
  static bool dirty(u64 e) { return e & kD; }
  static u64 clean(u64 e) { return e & ~kD; }
  static constexpr u64 kMaxOa = formats::facts(Format::kX86_64).output_last;
};
}  // namespace x86

namespace arm {
using namespace ::ioas::formats::arm;  // the descriptor bits (ioas/core/formats.hpp)

// Stage-1 leaf = type | AttrIndx(WBRWA) | SH(IS) | AF | nG | AP[1], and the
// HTTU states (io-pgtable-arm.c, read_and_clear_dirty):
//   read-only       DBM=0 AP[2]=1
//   writable-clean  DBM=1 AP[2]=1   (a write makes the SMMU clear AP[2])
//   writable-dirty  DBM=1 AP[2]=0
// New writable leaves start clean (Linux's ARM_HD quirk starts them dirty
// and relies on iommufd clearing at enable; ours are clean from the start,
// so a map while tracking reports nothing until written).
struct Fmt : AddrField<formats::kArmLpaeOasBits> {
  static_assert(kMask == kAddrMask, "the address field is the format table's");
  static constexpr const char* kName = "arm-lpae";
  static bool present(u64 e) { return e & kValid; }
  static bool is_table(u64 e, int level) { return level > 0 && (e & kTypeMask) == kTypeTable; }
  static u64 table_pa(u64 e) { return addr(e); }
  static u64 table_entry(u64 pa, bool /*accessed: no AF in table descriptors*/) {
    return arith::desc_make(pa, kTypeTable);
  }
  static u64 leaf_entry(u64 pa, int level, Prot prot, bool accessed, bool dirty) {
    // Stage 1 has no write-only encoding: any writing prot leaves AP[2]
    // (RDONLY) to the dirty state (arm_lpae_prot_to_pte sets RDONLY only for
    // IOMMU_READ without IOMMU_WRITE).
    const bool w = prot_writes(prot);
    const u64 flags = (level == 0 ? kTypePage : kTypeBlock) | (kMairIdxWbrwa << kAttrIdxShift) | kShIS | kNG |
                      kApUnpriv | (accessed ? kAF : 0);
    return arith::desc_make(pa, flags | (w ? kDBM | (dirty ? 0 : kApRdonly) : kApRdonly));
  }
  static_assert(((kTypeMask | (kMairIdxWbrwa << kAttrIdxShift) | kShIS | kNG | kApUnpriv | kAF | kDBM | kApRdonly) &
                 kMask) == 0,
                "arm flags lie outside the address field");
  static u64 oa(u64 e, int level) { return leaf_addr(e, level); }
  static Prot prot(u64 e) { return (e & kDBM) ? Prot::kReadWrite : Prot::kRead; }
  static bool accessed(u64 e) { return e & kAF; }
  static bool dirty(u64 e) { return (e & (kApRdonly | kDBM)) == kDBM; }
  static u64 clean(u64 e) { return (e & kDBM) ? (e | kApRdonly) : e; }
  static constexpr u64 kMaxOa = formats::facts(Format::kArmLpae).output_last;
};
}  // namespace arm

namespace tce {
using namespace ::ioas::formats::tce;  // TCE_PCI_READ, TCE_PCI_WRITE (ioas/core/formats.hpp)
// A TCE is a big-endian 64-bit word: (pa & page mask) | kRead | kWrite.
inline u64 to_be(u64 v) { return __builtin_bswap64(v); }
inline u64 from_be(u64 v) { return __builtin_bswap64(v); }
}  // namespace tce

}  // namespace ioas::hw
