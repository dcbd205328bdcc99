// hw/pt_arith.hpp: the page-table arithmetic hw/ needs beyond ioas/arith.hpp,
// in its style (a template over the word type W; value-dependent choices
// through `select`). The page-size choice (iommu_pgsize), the radix indexes
// (pt_index, pt_shift) and the TCE slot (tce_slot) are ioas/arith.hpp's and
// are used from there.
#pragma once

#include "ioas/arith.hpp"

namespace ioas::hw::arith {

using ioas::arith::iommu_pgsize;
using ioas::arith::lowest_bit;
using ioas::arith::pt_index;
using ioas::arith::select;
using ioas::arith::tce_slot;
using ioas::arith::word;

// How many leaves of `size` (chosen by iommu_pgsize at iova) the rule keeps
// choosing before it would switch to a larger size: the kernel's count in
// iommu_pgsize. Let `next` be the smallest size in pgsizes above `size`
// (0: none). When iova and pa are equally offset within `next` and a whole
// `next` page still fits after reaching the next `next` boundary, stop at
// that boundary; otherwise use every whole `size` page that fits.
// Preconditions: size != 0 and size divides iova, pa; remaining >= size.
template <typename W>
W pgsize_count(const W& pgsizes, const W& size, const W& iova, const W& pa,
               const W& remaining) {
  W zero = word(iova, 0);
  W one = word(iova, 1);
  W above = pgsizes & ~((size << 1) - one);  // sizes > size (none when size = 2^63)
  W next = lowest_bit(above);
  W all = remaining / size;  // size is a power of two: the compiler shifts
  W off_in_next = (iova | pa) & (next - one);
  W to_boundary = next - (iova & (next - one));  // bytes to the next boundary
  auto same_offset = ((iova ^ pa) & (next - one)) == zero;
  auto boundary_reachable = !(next == zero) && same_offset && !(off_in_next == zero) &&
                            to_boundary <= remaining && next <= remaining - to_boundary;
  return select(boundary_reachable, to_boundary / size, all);
}

}  // namespace ioas::hw::arith
