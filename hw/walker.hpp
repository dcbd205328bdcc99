// hw/walker.hpp: a software IOMMU that walks our tables in memory.
//
// The walkers read raw descriptors through PageMemory, starting from the
// root physical address, and decode them with the architectural bit
// definitions; they share no code with the table implementations beyond
// the bit constants of formats.hpp (whose values the unit tests pin to the
// documented ones). So a table that the walker accepts is one hardware
// would walk the same way.
//
// What each walker does, as the hardware does:
//   x86-64:   P clear at any level -> not-present fault; a write needs RW at
//             every level -> else write-protect fault; PS in the top level is
//             a reserved-bit fault; sets A in every entry used and D in the
//             leaf on a successful write.
//   arm-lpae: invalid descriptor, or a block at level 3 or a block
//             encoding at level 0 -> translation fault; AF clear -> set it
//             (hardware access flag, SMMU HA); a write to AP[2]=1: with DBM
//             clear AP[2] (HTTU HD: the entry becomes writable-dirty), without
//             DBM a permission fault; APTable[1] in a table forbids writes.
//   tce:      outside the window or an entry without the needed READ/WRITE
//             permission -> fault; a write marks the software dirty bit.
//   mock:     no entry -> not present; a write to a read-only slot or a
//             read of a write-only one -> fault (kReadOnly: a permission
//             fault either way).
#pragma once

#include <cstdint>

#include "ioas/engine.hpp"
#include "pagetable.hpp"

namespace ioas::hw {

enum class Fault : std::uint8_t { kNone, kNotPresent, kReadOnly, kReserved, kOutOfRange };
const char* to_string(Fault f);

struct WalkResult {
  Fault fault = Fault::kNone;
  u64 pa = 0;         // the output address of iova, when no fault
  u64 leaf_iova = 0;  // the leaf's first IOVA and size, when a leaf was found
  u64 leaf_size = 0;
  // When no fault: whether a write to iova would have found no fault either
  // (what the same walk with write=true and update=false answers), so one
  // walk gives both permissions of a leaf.
  bool writes = false;
};

// What a look (a walk with update=false) keeps for the next one, as an
// IOMMU's paging-structure cache does: the last table it descended to, the
// IOVA bits that chose it (the indexes of the levels above) and the write
// permission of those levels. A later look whose IOVA has the same bits
// starts at that table. Valid only while the table's memory does not change.
struct WalkCache {
  bool valid = false;
  unsigned shift = 0;  // tag = arith::page_number(iova, shift)
  u64 tag = 0;
  int step = 0;  // the walk step that reads `table`
  u64 table = 0;
  std::uint64_t* page = nullptr;  // page(table), looked up once per table, not once per look
  bool writable = true;           // no level above forbids writes
};

// One access; `update` sets the accessed/dirty state as hardware does.
// With a cache (and update=false), the levels above the cached table are
// not read again.
WalkResult walk_x86_64(const PageMemory& mem, u64 cr3, u64 iova, bool write, bool update = true,
                       WalkCache* cache = nullptr);
WalkResult walk_arm_lpae(const PageMemory& mem, u64 ttbr, u64 iova, bool write, bool update = true,
                         WalkCache* cache = nullptr);

class TceTable;
WalkResult walk_tce(TceTable& t, u64 iova, bool write, bool update = true, WalkCache* cache = nullptr);

class MockTable;
// The mock domain: one xarray entry per 2 KiB slot (hw/mock.hpp).
// With a cache (and update=false), the block of slots of the last look is
// kept: a look in the same block reads its entry there.
WalkResult walk_mock(MockTable& t, u64 iova, bool write, bool update = true, WalkCache* cache = nullptr);

// The software device: DMA through a table, byte range by leaf.
class Walker {
 public:
  explicit Walker(PageTable& pt) : pt_(pt), format_(pt.format()), root_(pt.root()) {}
  WalkResult access(u64 iova, bool write, bool update = true);
  // access(iova, false, false) for a table that does not change while this
  // walker looks: each look starts below the levels it shares with the
  // last one (WalkCache).
  WalkResult look(u64 iova);
  // Reads or writes [r.start, r.last]: stops at the first faulting byte and
  // reports it (bytes before it were accessed, and are dirty if written).
  DmaOutcome dma(DmaDir dir, Range r);

 private:
  PageTable& pt_;
  // A look's table does not change while the walker looks (its root
  // neither), so looks read these once.
  Format format_;
  u64 root_;
  WalkCache cache_;
};

}  // namespace ioas::hw
