// ioas/arith.hpp: the small pure arithmetic every part of ioas relies on.
//
// Each function is a template over the word type W so that the same code runs
// on concrete values (W = uint64_t: model, engine, hw) and on Z3 bit-vector
// terms (proofs/ instantiates these very templates and proves them for all
// 64-bit inputs). For that reason:
//   - only +, -, &, |, ~, ^, <, <=, ==, != and shifts are used, and / by a
//     power of two; comparisons and division are unsigned (the Z3 word type
//     of proofs/ maps them to bvult/bvule/bvudiv);
//   - a value-dependent choice is written `select(cond, a, b)`, never `if`;
//   - a function returns every result it has (for example the end of a range
//     and whether computing it overflowed) instead of branching on it;
//   - shift amounts are C++ integers (a level, a page shift), never W.
//
// How a word type plugs in: specialise `WordTraits<W>` with
//   using Bool = ...;                       // what W's comparisons return
//   static W constant(const W& like, std::uint64_t v);  // the constant v
//   static W select(const Bool& c, const W& a, const W& b);  // c ? a : b
// `word(like, v)` and `select(c, a, b)` below forward to it. The uint64_t
// (and bool) traits live here; proofs/bv.hpp supplies the Z3 ones.
//
// Names are stable: hw/, model/, impl/ and proofs/ call them. Index of the
// templates (what each proof in proofs/ covers is named in its comment):
//   range_last  overlaps  contains  is_aligned  is_pow2  align_up  align_down
//   align_join
//   lowest_bit  smear_down  highest_bit  roundup_pow2
//   auto_alignment  hole_candidate                     (automatic IOVA)
//   align_offset                                       (offset in a block)
//   page_size  page_number  page_start  page_offset  page_advance  page_index_in
//                                                      (pages of 2^shift bytes)
//   iommu_pgsize  pgsize_run  pgsize_count  pgsize_below
//                                                      (leaf size choice)
//   pt_shift  pt_block_size  pt_index  pt_leaf_offset  pt_in_ias  pt_index_base
//                                                      (4-level, 4K, 48-bit)
//   tce_slot  tce_bus_addr  tce_encode_addr  tce_decode_addr
//                                                      (TCE window)
//   tce_addr_field                                     (TCE without READ/WRITE)
//   tce_levels  tce_level_index  tce_level_base  tce_entry_first  tce_level_last
//   tce_table_last                                     (indirect TCE levels)
//   resv_exclude                                       (VFIO exclude step)
//   run_addr  range_length  range_after  range_gap  gap_bytes
//   range_touch_hull  block_of  block_count  log2_pow2 (runs, blocks, gaps)
//   range_intersect  range_hull  run_rest  run_in_block  pages_covering
//   whole_blocks                                       (clips, joins, steps)
//   field_mask  desc_addr  desc_make  desc_advance  desc_leaf_addr
//   desc_leaf_aligned                                  (descriptor fields)
#pragma once

#include <cstdint>

namespace ioas::arith {

template <typename W>
struct WordTraits;  // specialised for each word type

template <>
struct WordTraits<std::uint64_t> {
  using Bool = bool;
  static constexpr std::uint64_t constant(const std::uint64_t&, std::uint64_t v) { return v; }
  static constexpr std::uint64_t select(bool c, std::uint64_t a, std::uint64_t b) { return c ? a : b; }
};
template <>
struct WordTraits<bool> {
  using Bool = bool;
  static bool constant(const bool&, std::uint64_t v) { return v != 0; }
  static bool select(bool c, bool a, bool b) { return c ? a : b; }
};

// The word constant `v` in W (`like` carries the context a Z3 term needs).
template <typename W>
constexpr W word(const W& like, std::uint64_t v) {
  return WordTraits<W>::constant(like, v);
}

// c ? a : b, as a term when W is symbolic (an `ite`).
template <typename W>
W select(const typename WordTraits<W>::Bool& c, const W& a, const W& b) {
  return WordTraits<W>::select(c, a, b);
}

// Last byte of [start, start+len-1]. `overflow` is true exactly when the true
// sum start+len-1 exceeds 2^64-1 (proof: RangeLast.*). len == 0
// is the caller's to reject (here it yields last = start-1 and overflow =
// (start == 0)), so callers check len first.
template <typename W, typename B = bool>
struct LastOf {
  W last;
  B overflow;
};
template <typename W>
auto range_last(const W& start, const W& len) {
  W one = word(start, 1);
  W lm1 = len - one;              // len >= 1 is the caller's precondition
  W last = start + lm1;
  auto overflow = last < start;   // wrapped iff the sum exceeded 2^64-1
  return LastOf<W, decltype(overflow)>{last, overflow};
}

// Inclusive ranges [s1,l1] and [s2,l2] share at least one byte.
// Cond1: s1 <= l2, Cond2: s2 <= l1 (the interval-tree overlap test).
template <typename W>
auto overlaps(const W& s1, const W& l1, const W& s2, const W& l2) {
  return (s1 <= l2) && (s2 <= l1);
}

// [s2,l2] lies wholly inside [s1,l1].
template <typename W>
auto contains(const W& s1, const W& l1, const W& s2, const W& l2) {
  return (s1 <= s2) && (l2 <= l1);
}

// x is a multiple of the power of two a.
template <typename W>
auto is_aligned(const W& x, const W& a) {
  return (x & (a - word(x, 1))) == word(x, 0);
}

// x is a power of two (exactly one bit set).
template <typename W>
auto is_pow2(const W& x) {
  return !(x == word(x, 0)) && (x & (x - word(x, 1))) == word(x, 0);
}

// Round x up to the power of two a; `wrapped` is true when the result does not
// fit in 64 bits (then `value` is meaningless).
template <typename W, typename B = bool>
struct Aligned {
  W value;
  B wrapped;
};
template <typename W>
auto align_up(const W& x, const W& a) {
  W mask = a - word(x, 1);
  W v = (x + mask) & ~mask;
  auto wrapped = v < x;
  return Aligned<W, decltype(wrapped)>{v, wrapped};
}

// Round x down to the power of two a.
template <typename W>
W align_down(const W& x, const W& a) {
  return x & ~(a - word(x, 1));
}

// The offset of x inside its block of the power of two a: x - align_down(x, a).
// Proof (AlignOffset.*): align_down(x, a) + align_offset(x, a) == x, and the
// offset is < a.
template <typename W>
W align_offset(const W& x, const W& a) {
  return x & (a - word(x, 1));
}

// The alignment that two alignments (powers of two) ask for together: the
// larger (a multiple of it is a multiple of both). An IOAS's iova_alignment
// over its domains' smallest page sizes and its pins.
// Proof (AlignJoin.*): for powers of two a and b, the result is a power of
// two and x is a multiple of it exactly when x is a multiple of a and of b.
template <typename W>
W align_join(const W& a, const W& b) {
  return select(a < b, b, a);
}

// The lowest set bit of x (0 for x == 0).
template <typename W>
W lowest_bit(const W& x) {
  return x & (~x + word(x, 1));
}

// All bits at or below the highest set bit of x (0 for x == 0): the mask of
// every power of two <= x.
template <typename W>
W smear_down(const W& x) {
  W v = x;
  v = v | (v >> 1);
  v = v | (v >> 2);
  v = v | (v >> 4);
  v = v | (v >> 8);
  v = v | (v >> 16);
  v = v | (v >> 32);
  return v;
}

// The highest set bit of x (0 for x == 0).
template <typename W>
W highest_bit(const W& x) {
  W s = smear_down(x);
  return s ^ (s >> 1);
}

// The smallest power of two >= x, for 1 <= x <= 2^63 (callers guarantee it).
template <typename W>
W roundup_pow2(const W& x) {
  return smear_down(x - word(x, 1)) + word(x, 1);
}

// The alignment an automatic map wants (SPEC "automatic"): len rounded up to a
// power of two, lowered to the lowest set bit of uaddr when uaddr != 0, capped
// at `cap` (2 MiB). Precondition: 1 <= len < 2^63.
template <typename W>
W auto_alignment(const W& len, const W& uaddr, const W& cap) {
  W a = roundup_pow2(len);
  W lb = lowest_bit(uaddr);
  W zero = word(len, 0);
  a = select(!(uaddr == zero) && lb < a, lb, a);
  a = select(cap < a, cap, a);
  return a;
}

// The automatic-allocation candidate in the hole [hole_start, hole_last]:
// align_up(hole_start, a) | page_offset (the kernel's formula), and whether a
// mapping of `len` bytes there fits in the hole without wrapping.
// Preconditions: a is a power of two, len >= 1.
// Proof (AutoCandidate.*, with a = auto_alignment(len, uaddr, 2M) and
// page_offset = uaddr mod PAGE, as SPEC uses it): when `fits`, the candidate
// is a multiple of a, has every bit of the page offset set (and is exactly
// that offset modulo PAGE when align_up(hole_start, a) is page aligned, e.g.
// a >= PAGE; not always otherwise: see proofs/), [iova, iova+len-1] does not
// wrap and lies in the hole, and iova != 0 when hole_start >= PAGE.
template <typename W, typename B = bool>
struct Candidate {
  W iova;
  B fits;
};
template <typename W>
auto hole_candidate(const W& hole_start, const W& hole_last, const W& a,
                    const W& page_offset, const W& len) {
  auto up = align_up(hole_start, a);
  W cand = up.value | page_offset;
  auto end = range_last(cand, len);
  auto fits = !up.wrapped && !end.overflow && (hole_start <= cand) &&
              (end.last <= hole_last);
  return Candidate<W, decltype(fits)>{cand, fits};
}

// ---------------------------------------------------------------------------
// Pages of 2^shift bytes, shift < 64: a TCE window's IOMMU pages, the mock
// domain's 2 KiB slots, the 4 KiB pages of a page pool. A page number n
// stands for bytes [n << shift, (n + 1) << shift).
// Proof (Pages.*, for every shift 0..63): page_start(page_number(x)) +
// page_offset(x) == x and the offset is < page_size; page_number(page_start(n))
// == n for n < 2^(64-shift); page_advance(base, k) == base + k * page_size;
// for x >= base, page_index_in(base, x) is the number of whole pages from
// base to x (page_advance(base, it) <= x, and x - that < page_size).

// The bytes of one page.
template <typename W>
W page_size(const W& like, unsigned shift) {
  return word(like, 1) << shift;
}

// The number of the page holding x.
template <typename W>
W page_number(const W& x, unsigned shift) {
  return x >> shift;
}

// The first byte of page n.
template <typename W>
W page_start(const W& n, unsigned shift) {
  return n << shift;
}

// The byte offset of x inside its page.
template <typename W>
W page_offset(const W& x, unsigned shift) {
  return x & (page_size(x, shift) - word(x, 1));
}

// The address k pages after base (mod 2^64).
template <typename W>
W page_advance(const W& base, const W& k, unsigned shift) {
  return base + page_start(k, shift);
}

// The index of the page holding x in pages counted from base (x >= base):
// the slot of a pool whose page 0 starts at base.
template <typename W>
W page_index_in(const W& base, const W& x, unsigned shift) {
  return page_number(x - base, shift);
}

// ---------------------------------------------------------------------------
// The page-size choice of the page tables (the kernel's iommu_pgsize rule):
// the largest size in `pgsizes` (a bitmap, one bit per power-of-two size)
// that divides both `iova` and `pa` and is <= `remaining`; 0 when none does
// (the caller's EINVAL).
//   fits:    size <= remaining  <=>  its bit lies in smear_down(remaining)
//   divides: size | (iova|pa)   <=>  size <= lowest_bit(iova|pa), or iova|pa == 0
// Proof (IommuPgsize.*): the result is 0 or one
// bit of pgsizes, divides iova and pa, fits, and no such size is larger.
template <typename W>
W iommu_pgsize(const W& pgsizes, const W& iova, const W& pa, const W& remaining) {
  W lb = lowest_bit(iova | pa);
  W divides = lb | (lb - word(iova, 1));  // iova|pa == 0: lb == 0, mask all ones
  return highest_bit(pgsizes & smear_down(remaining) & divides);
}

// How many leaves of `size` (chosen by iommu_pgsize at iova) the rule keeps
// choosing before it switches size: the kernel's count in iommu_pgsize. Let
// `next` be the smallest size in pgsizes above `size` (0: none). When iova
// and pa are equally offset within `next`, iova is not on a `next` boundary,
// and a whole `next` page still fits after that boundary, stop at it;
// otherwise take every whole `size` page that fits.
// Preconditions: size == iommu_pgsize(pgsizes, iova, pa, remaining) != 0.
// Proof (PgsizeCount.*): the count equals the literal greedy walk of the
// leaf rule (iommu_pgsize applied step after step) for every bitmap, iova
// and pa, and remaining below a bound.
// The largest size in `pgsizes` below `size` (a power of two); 0 when none:
// the one a leaf of `size` is split into.
// Proof (PgsizeBelow.*): 0 or one bit of pgsizes, below size, and every
// size of pgsizes below size is <= it.
template <typename W>
W pgsize_below(const W& pgsizes, const W& size) {
  return highest_bit(pgsizes & (size - word(size, 1)));
}

// pgsize_run gives the run both ways: `count` leaves, `bytes` = count * size
// (computed without a multiplication).
// Proof (PgsizeRun.*): for all 64-bit inputs, bytes is a whole number of
// `size` leaves, at least one, no more than `remaining`, and does not wrap
// from an iova whose remaining length does not; count = bytes / size is the
// walk's (PgsizeCount.*).
template <typename W>
struct PgsizeRun {
  W count;
  W bytes;
};
template <typename W>
PgsizeRun<W> pgsize_run(const W& pgsizes, const W& size, const W& iova, const W& pa, const W& remaining) {
  W zero = word(iova, 0);
  W one = word(iova, 1);
  W above = pgsizes & ~((size << 1) - one);  // sizes > size (none when size = 2^63)
  W next = lowest_bit(above);
  W off_in_next = (iova | pa) & (next - one);
  W to_boundary = next - (iova & (next - one));  // bytes to the next boundary
  auto same_offset = ((iova ^ pa) & (next - one)) == zero;
  auto boundary_reachable = !(next == zero) && same_offset && !(off_in_next == zero) &&
                            to_boundary <= remaining && next <= remaining - to_boundary;
  W bytes = select(boundary_reachable, to_boundary, align_down(remaining, size));
  return PgsizeRun<W>{bytes / size, bytes};
}
template <typename W>
W pgsize_count(const W& pgsizes, const W& size, const W& iova, const W& pa, const W& remaining) {
  return pgsize_run(pgsizes, size, iova, pa, remaining).count;
}

// ---------------------------------------------------------------------------
// Radix page tables with a 4 KiB granule and 9 index bits per level, 4 levels,
// 48-bit input addresses: x86-64 (PML4, PDPT, PD, PT) and ARM LPAE stage 1
// with the 4K granule (L0..L3) share this layout. Levels are numbered from
// the leaf, as generic_pt and AMD do: level 0 is the table of 4 KiB leaves
// (x86 PT, ARM L3), level 1 holds 2 MiB leaves (PD, L2), level 2 1 GiB
// leaves (PDPT, L1), level 3 is the top (PML4, L0; no leaves).
// Proof (PageTable.*): for every iova < 2^48,
// each index is < 512 and, for a leaf at any level, the indices from the top
// down to that level shifted into place plus pt_leaf_offset give back iova.
inline constexpr unsigned kPtLevels = 4;
inline constexpr unsigned kPtGranuleShift = 12;
inline constexpr unsigned kPtBitsPerLevel = 9;
inline constexpr unsigned kPtIasBits = kPtGranuleShift + kPtLevels * kPtBitsPerLevel;  // 48

// The lowest address bit a level's index covers: 12, 21, 30, 39.
constexpr unsigned pt_shift(unsigned level) { return kPtGranuleShift + kPtBitsPerLevel * level; }

// Bytes one entry of `level` covers (the leaf size at that level): 4K, 2M, 1G, 512G.
template <typename W>
W pt_block_size(const W& like, unsigned level) {
  return word(like, std::uint64_t{1} << pt_shift(level));
}

// The index of iova in the table at `level` (0..511).
template <typename W>
W pt_index(const W& iova, unsigned level) {
  return (iova >> pt_shift(level)) & word(iova, (std::uint64_t{1} << kPtBitsPerLevel) - 1);
}

// The byte offset of iova inside a leaf at `level`.
template <typename W>
W pt_leaf_offset(const W& iova, unsigned level) {
  return iova & word(iova, (std::uint64_t{1} << pt_shift(level)) - 1);
}

// The first IOVA that index `index` of a table at `level` covers, relative to
// the table's own base (the walk adds these up from the top down); also the
// bytes of `index` consecutive leaves at `level` (index <= 512).
template <typename W>
W pt_index_base(const W& index, unsigned level) {
  return index << pt_shift(level);
}

// iova is addressable by a 48-bit table (below 2^48; the x86 canonical upper
// half is not used for IOVAs).
template <typename W>
auto pt_in_ias(const W& iova) {
  return iova < word(iova, std::uint64_t{1} << kPtIasBits);
}

// ---------------------------------------------------------------------------
// TCE (POWER) windows: a flat table of `it_size` entries, one per IOMMU page
// of 2^page_shift bytes, whose first entry is TCE number `it_offset` (so the
// window is [it_offset << shift, (it_offset + it_size) << shift)).
// Proof (Tce.*): for the page shifts of POWER (12..40), every iova, offset
// and size whose window does not pass 2^64: inside the window <=> the slot is
// < it_size, and tce_bus_addr(slot) | page_offset(iova) == iova.

// The table slot of iova and whether iova is inside the window.
template <typename W, typename B = bool>
struct TceSlot {
  W index;
  B inside;
};
template <typename W>
auto tce_slot(const W& iova, unsigned page_shift, const W& it_offset, const W& it_size) {
  W entry = page_number(iova, page_shift);
  W index = entry - it_offset;
  auto inside = (it_offset <= entry) && (index < it_size);
  return TceSlot<W, decltype(inside)>{index, inside};
}

// The first bus address of table slot `index`.
template <typename W>
W tce_bus_addr(const W& index, unsigned page_shift, const W& it_offset) {
  return page_start(index + it_offset, page_shift);
}

// A TCE's address field: the page's physical address as is (its low bits
// are zero, so READ and WRITE fit below it) for pages of 4 bytes or more;
// pa << 2 for the 1- and 2-byte pages SPEC allows and no machine has.
// Proof (TceEncoding.*, every shift 0..63, pa page aligned and < 2^52): the
// two low bits are free, and decoding the field with any READ/WRITE bits
// gives pa back.
template <typename W>
W tce_encode_addr(const W& pa, unsigned page_shift) {
  return page_shift >= 2 ? pa : pa << 2;
}
template <typename W>
W tce_decode_addr(const W& tce, unsigned page_shift) {
  return page_shift >= 2 ? align_down(tce, page_size(tce, page_shift)) : tce >> 2;
}

// A TCE without its READ and WRITE bits (bits 0 and 1): the address field
// and whatever else the entry holds above them.
// Proof (TceEncoding.*, every shift 2..63): the field of an encoding with
// any permission is the encoding itself, and for any entry the field is page
// aligned exactly when decoding loses no bit of it (tce_decode_addr gives
// the field back).
inline constexpr std::uint64_t kTcePermBits = 3;  // TCE_PCI_READ | TCE_PCI_WRITE
template <typename W>
W tce_addr_field(const W& tce) {
  return tce & ~word(tce, kTcePermBits);
}

// Indirect TCE tables (PowerNV's it_indirect_levels): every level is one
// page of 2^kTceLevelBits entries (a 4 KiB page of 8-byte TCEs); level 0
// holds the TCEs, and a slot's index at level l is its bits 9l .. 9l+8.
// Proof (TceLevels.*): for tables of 1 to 8 levels and every slot they
// hold, each index is < 512 and the bases of the indices from the top down
// add up to the slot; tce_levels is the fewest levels that hold a slot;
// tce_level_last is the last entry whose slots start at or before `last`
// (capped at 511); tce_table_last is the last slot of the same level-0 page.
inline constexpr unsigned kTceLevelBits = 9;

// The index of `slot` in its table at `level`.
template <typename W>
W tce_level_index(const W& slot, unsigned level) {
  return (slot >> (kTceLevelBits * level)) & word(slot, (std::uint64_t{1} << kTceLevelBits) - 1);
}

// The first slot that entry `index` of a table at `level` covers, relative
// to the table's own first slot (the walk adds these up from the top down).
template <typename W>
W tce_level_base(const W& index, unsigned level) {
  return index << (kTceLevelBits * level);
}

// The first slot of entry `index` of a table at `level` whose own first
// slot is `base`: one step of the walk from the top down.
template <typename W>
W tce_entry_first(const W& base, const W& index, unsigned level) {
  return base + tce_level_base(index, level);
}

// The levels a table of slots 0..last_index needs: the fewest (at least 1)
// whose 512^levels slots hold last_index.
template <typename W>
W tce_levels(const W& last_index) {
  W n = word(last_index, 1);
  for (unsigned l = 1; l * kTceLevelBits < 64; ++l)
    n = n + select(!((last_index >> (kTceLevelBits * l)) == word(last_index, 0)), word(n, 1), word(n, 0));
  return n;
}

// In the table at `level` whose first slot is `base`, the index of the last
// entry a walk up to slot `last` (>= base) visits: the entry holding `last`,
// or 511 when `last` lies past the table.
template <typename W>
W tce_level_last(const W& base, const W& last, unsigned level) {
  W i = (last - base) >> (kTceLevelBits * level);
  W max = word(base, (std::uint64_t{1} << kTceLevelBits) - 1);
  return select(max < i, max, i);
}

// The last slot of the level-0 page (512 TCEs) that holds `slot`.
template <typename W>
W tce_table_last(const W& slot) {
  return slot | word(slot, (std::uint64_t{1} << kTceLevelBits) - 1);
}

// ---------------------------------------------------------------------------
// The VFIO exclude step (vfio_iommu_resv_exclude): one node [s, l] of a
// valid-IOVA list minus the reserved region [rs, rl] (rs <= rl). The node is
// replaced by at most two pieces, in order: `below` = [s, rs-1] and `above`
// = [rl+1, l]; a node the region does not touch is kept whole as `below`.
// Each piece comes with whether it exists. Applying it to every node of a
// sorted, non-overlapping list, keeping the existing pieces in order, gives
// the list minus the region, sorted and non-overlapping.
// Proof (VfioExclude.*, for lists of up to 4 nodes).
template <typename W, typename B = bool>
struct ExcludePieces {
  W below_start, below_last;
  B below;
  W above_start, above_last;
  B above;
};
template <typename W>
auto resv_exclude(const W& s, const W& l, const W& rs, const W& rl) {
  auto hit = overlaps(s, l, rs, rl);
  W one = word(s, 1);
  auto below = !hit || (s < rs);
  auto above = hit && (rl < l);
  W below_last = select(hit, rs - one, l);
  return ExcludePieces<W, decltype(hit)>{s, below_last, below, rl + one, l, above};
}

// ---------------------------------------------------------------------------
// Runs, blocks and gaps: the arithmetic of walking ranges byte for byte.

// The address of byte x of a run that starts at `start` and is mapped,
// byte for byte, at `base` (a physical address, a user address, an offset
// into a source): base + (x - start).
// Proof (RunAddr.*): for start <= x <= last, when the run's image
// [base, base + (last - start)] does not pass 2^64-1, the result lies in that
// image without wrapping, is exactly x - start bytes after base, and maps
// back to x (the inverse run_addr(start, base, result) == x).
template <typename W>
W run_addr(const W& base, const W& start, const W& x) {
  return base + (x - start);
}

// The bytes of [start, last]: last - start + 1; 0 for the whole space (2^64
// does not fit). Precondition: start <= last.
// Proof (RangeLength.*): range_last(start, length) gives back last without
// overflow whenever the length is not 0, and the length is 0 exactly for
// [0, 2^64-1].
template <typename W>
W range_length(const W& start, const W& last) {
  return last - start + word(start, 1);
}

// The first byte after a range ending at `last`, and whether there is none
// (`at_top`: last == 2^64-1, where last + 1 wraps to 0).
// Proof (RangeAfter.*): at_top <=> last == 2^64-1; otherwise next > last and
// next - last == 1 (no byte lies between).
template <typename W, typename B = bool>
struct After {
  W next;
  B at_top;
};
template <typename W>
auto range_after(const W& last) {
  W next = last + word(last, 1);
  auto at_top = next == word(last, 0);
  return After<W, decltype(at_top)>{next, at_top};
}

// The bytes strictly between a range ending at `prev_last` and one starting
// at `next_start` (prev_last < next_start): [start, last], and whether there
// is any.
// Proof (RangeGap.*): `exists` exactly when some byte lies strictly between,
// and then the gap is exactly those bytes (neither end wraps).
template <typename W, typename B = bool>
struct Gap {
  W start, last;
  B exists;
};
template <typename W>
auto range_gap(const W& prev_last, const W& next_start) {
  W one = word(prev_last, 1);
  W start = prev_last + one;
  W last = next_start - one;
  auto exists = prev_last < next_start && start < next_start;
  return Gap<W, decltype(exists)>{start, last, exists};
}

// The number of bytes strictly between a range ending at `prev_last` and
// one starting at `next_start` (prev_last < next_start): the size of the
// hole between two intervals.
// Proof (RangeGap.*): range_gap exists exactly when it is not 0, and then it
// is range_length of the gap.
template <typename W>
W gap_bytes(const W& prev_last, const W& next_start) {
  return next_start - prev_last - word(prev_last, 1);
}

// [start, last] widened by one byte each side, saturating at 0 and 2^64-1:
// the ranges it overlaps are those that overlap or adjoin [start, last]
// (the query that finds what an insert coalesces with).
// Proof (RangeTouchHull.*): for start <= last and any [s, l] (s <= l):
// overlaps(hull, [s, l]) <=> [s, l] overlaps [start, last], or ends at
// start - 1, or starts at last + 1.
template <typename W>
struct Hull {
  W start, last;
};
template <typename W>
Hull<W> range_touch_hull(const W& start, const W& last) {
  W zero = word(start, 0), one = word(start, 1);
  W max = ~zero;
  return Hull<W>{select(start == zero, zero, start - one), select(last == max, max, last + one)};
}

// The block of the power of two `size` that holds x: [first, last], and the
// byte after it (`next`; `at_top` when the block ends at 2^64-1 and next
// wraps to 0). The unit of a radix walk: an entry's span around an IOVA.
// Proof (BlockOf.*): first <= x <= last, first is a multiple of size,
// last - first == size - 1 and computing last never overflows; at_top <=>
// last == 2^64-1; otherwise next == last + 1 and is a multiple of size.
template <typename W, typename B = bool>
struct Block {
  W first, last, next;
  B at_top;
};
template <typename W>
auto block_of(const W& x, const W& size) {
  W first = align_down(x, size);
  W last = range_last(first, size).last;
  auto after = range_after(last);
  return Block<W, decltype(after.at_top)>{first, last, after.next, after.at_top};
}

// The number of blocks of the power of two `size` in `bytes` (a multiple of
// size): bytes / size.
// Proof (BlockCount.*): count * size == bytes and count <= bytes.
template <typename W>
W block_count(const W& bytes, const W& size) {
  return bytes / size;
}

// The exponent of the power of two x (x == 2^k gives k): the number of bits
// set in x - 1, counted without a multiplication. A page size's shift.
// Proof (Log2Pow2.*): for every power of two x, the result is < 64 and
// 1 << result == x.
template <typename W>
W log2_pow2(const W& x) {
  W v = x - word(x, 1);
  v = v - ((v >> 1) & word(x, 0x5555555555555555ull));
  v = (v & word(x, 0x3333333333333333ull)) + ((v >> 2) & word(x, 0x3333333333333333ull));
  v = (v + (v >> 4)) & word(x, 0x0f0f0f0f0f0f0f0full);
  v = v + (v >> 8);
  v = v + (v >> 16);
  v = v + (v >> 32);
  return v & word(x, 0x7f);
}

// ---------------------------------------------------------------------------
// Clipping, joining and stepping: the bytes two ranges share, the span of
// two ranges, what remains of a run after a step, the part of a run that
// stays in one block, the units a count needs, the whole blocks in a range.

template <typename W>
struct Ends {
  W start, last;
};

// The bytes [s1, l1] and [s2, l2] share: [max(s1, s2), min(l1, l2)], a
// valid range (start <= last) exactly when they overlap.
// Proof (RangeIntersect.*): for valid ranges, a byte lies in the result
// exactly when it lies in both, and the result is valid <=> overlaps.
template <typename W>
Ends<W> range_intersect(const W& s1, const W& l1, const W& s2, const W& l2) {
  return Ends<W>{select(s1 < s2, s2, s1), select(l2 < l1, l2, l1)};
}

// The smallest range holding [s1, l1] and [s2, l2]: [min(s1, s2),
// max(l1, l2)] (a flush's hull; the union when they overlap or adjoin).
// Proof (RangeHull.*): for valid ranges, the result holds both, and any
// range holding both holds the result.
template <typename W>
Ends<W> range_hull(const W& s1, const W& l1, const W& s2, const W& l2) {
  return Ends<W>{select(s2 < s1, s2, s1), select(l1 < l2, l2, l1)};
}

// What remains of a run of `rem` bytes (or entries) after its first `bytes`
// (bytes <= rem): rem - bytes. The rest starts at run_addr(at, 0, bytes).
// Proof (RunRest.*): rest + bytes == rem; rest == 0 exactly when the step
// took the whole run; otherwise, for a run [at, at+rem-1] that does not pass
// 2^64-1, the rest starts `bytes` further and ends on the run's last byte.
template <typename W>
W run_rest(const W& rem, const W& bytes) {
  return rem - bytes;
}

// Of a run of n entries starting at entry `index` of a block of `entries`
// entries (index < entries), the ones inside this block: min(n, entries -
// index). A radix table's leaves of one map step, a slot block's run.
// Proof (RunInBlock.*): at most n; index + it <= entries; either all n or
// up to the block's end; at least one when n is not 0.
template <typename W>
W run_in_block(const W& index, const W& n, const W& entries) {
  W room = entries - index;
  return select(room < n, room, n);
}

// The number of pages of 2^shift units that hold n units: n / 2^shift
// rounded up (a bitmap's words).
// Proof (PagesCovering.*, every shift 0..63): that many pages hold n units
// (count << shift >= n, in 128 bits), one fewer would not, and the count is
// 0 exactly for n == 0.
template <typename W>
W pages_covering(const W& n, unsigned shift) {
  W zero = word(n, 0);
  return page_number(n, shift) + select(page_offset(n, shift) == zero, zero, word(n, 1));
}

// The whole blocks of the power of two `size` inside [start, last]: the
// first block's start, the last block's start, and whether there is any.
// Proof (WholeBlocks.*): when `exists`, both are multiples of size and both
// blocks lie in the range without wrapping, first <= last_head; every block
// of size that lies wholly in the range starts between them; and when no
// block fits, `exists` is false.
template <typename W, typename B = bool>
struct WholeBlocks {
  W first, last_head;
  B exists;
};
template <typename W>
auto whole_blocks(const W& start, const W& last, const W& size) {
  W below = size - word(start, 1);
  auto up = align_up(start, size);
  auto exists = !up.wrapped && up.value <= last && !(last - up.value < below);
  W last_head = align_down(last - below, size);
  return WholeBlocks<W, decltype(exists)>{up.value, last_head, exists};
}

// ---------------------------------------------------------------------------
// Descriptor address fields: a 64-bit page-table entry (x86-64, ARM LPAE)
// holds an address in its own bit positions [lo, hi) (bits below lo are
// zero in a page-aligned address, bits from hi up are beyond the output
// size) and flags in every other bit. Encoding ORs the two; decoding masks
// the field.
// Proof (DescField.*, at the positions of x86-64 [12, 52) and ARM LPAE
// [12, 48), for a leaf at each level 0..2): for an address inside the field
// and flags outside it, decoding the encoding gives the address back and the
// flags are exactly the bits outside the field; a decoded address is always
// inside the field; a leaf's address decodes back when it is aligned to the
// leaf's size, is always aligned to it, and an aligned leaf passes
// desc_leaf_aligned whatever its flags (bit lo included: x86's PAT).

// Bits [lo, hi) set (lo <= hi <= 64).
template <typename W>
constexpr W field_mask(const W& like, unsigned lo, unsigned hi) {
  const std::uint64_t below_hi = hi >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << hi) - 1;
  const std::uint64_t below_lo = lo >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << lo) - 1;
  return word(like, below_hi & ~below_lo);
}

// The address an entry holds (a table's address, or a leaf's field).
template <typename W>
W desc_addr(const W& e, unsigned lo, unsigned hi) {
  return e & field_mask(e, lo, hi);
}

// An entry holding `addr` (inside the field) with `flags` (outside it).
template <typename W>
W desc_make(const W& addr, const W& flags) {
  return addr | flags;
}

// The entry k places after `e` in a run of entries whose address field
// counts from bit lo (a page-frame number at lo = 0): e + (k << lo).
// Proof (DescAdvance.*, the mock's pfn field [0, 53) and the radix fields
// at lo = 12): when the field plus k does not carry past hi, the field is
// e's plus k << lo and every bit outside it is e's.
template <typename W>
W desc_advance(const W& e, const W& k, unsigned lo) {
  return e + (k << lo);
}

// The output address of a leaf at radix `level` (pt_block_size bytes): its
// field without the bits below the leaf's size.
template <typename W>
W desc_leaf_addr(const W& e, unsigned lo, unsigned hi, unsigned level) {
  return align_down(desc_addr(e, lo, hi), pt_block_size(e, level));
}

// A leaf's field, bit lo aside, is aligned to the leaf's size: bit lo of a
// large x86 leaf is PAT, not an address bit, and every other field bit below
// the size must be zero.
template <typename W>
auto desc_leaf_aligned(const W& e, unsigned lo, unsigned hi, unsigned level) {
  return is_aligned(desc_addr(e, lo + 1, hi), pt_block_size(e, level));
}

}  // namespace ioas::arith
