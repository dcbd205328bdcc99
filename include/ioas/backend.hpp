// ioas/backend.hpp: domain back ends. A domain's page table is an
// IoPageTable; the engine (impl) makes one per new domain, by default a table
// in the domain's hardware format (x86-64, arm-lpae, tce) over software page
// memory. ImplOptions::tables lets a user supply another back end (a kernel
// IOMMU through VFIO, say), usually wrapping the built-in table as a mirror
// that answers translate/dma/leaves. The engine's clone() copies only its
// built-in tables: with any other table in a domain it answers nullptr.
//
// The engine calls a table once per area: map() when an area appears in the
// domain, unmap() when it goes, split() when a cut divides it, relayout()
// when dirty tracking switches between split and normal leaves. Leaves
// follow the iommu_pgsize rule per mapping from the mapping's own start and
// never span two mappings. Every change of one engine operation is gathered
// and ended by flush_iotlb().
//
// Failure: map, split and relayout may fail (ENOMEM from page memory, or a
// back end's own errno, which the engine reports as is); then nothing may
// have changed. unmap, unsplit (the undo of a split) and the rest never fail.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ioas/engine.hpp"
#include "ioas/range.hpp"
#include "ioas/result.hpp"

namespace ioas {

// One mapping as the page table knows it.
struct PtMapping {
  Range iova;
  u64 pa = 0;
  Prot prot = Prot::kNone;
  u64 pgsizes = 0;  // the page sizes its leaves were chosen from
  u64 uaddr = 0;    // the user address of its first byte
  friend bool operator==(const PtMapping&, const PtMapping&) = default;
};

class IoPageTable {
 public:
  virtual ~IoPageTable() = default;

  // Maps iova.. -> pa.. with prot, leaves from pgsizes; uaddr is the user
  // address of the first byte (kept by formats with a userspace view).
  // EINVAL: the iommu_pgsize rule finds no size at some step, or the format
  // cannot hold the physical range (ERANGE from hw/ becomes EINVAL); ENOMEM.
  // On error nothing changed. Precondition: the range maps nothing yet.
  virtual Status map(Range iova, u64 pa, u64 uaddr, Prot prot, u64 pgsizes) = 0;
  // Unmaps exactly one earlier mapping (or a piece made by split()); drops
  // its dirty state.
  virtual void unmap(Range iova) = 0;
  // The mapping holding `last` ends at `last`; the rest becomes a mapping of
  // its own; each side's leaves follow the rule from its own start (the one
  // leaf crossing the boundary, if any, is split). ENOMEM: nothing changed.
  virtual Status split(u64 last) = 0;
  // Undoes a successful split(last): the mappings ending at `last` and
  // starting after it become one again, with the leaves they had.
  virtual void unsplit(u64 last) = 0;
  // Chooses the leaves of every mapping again from `pgsizes` (split for
  // dirty tracking, or merge back). ENOMEM (only when leaves get smaller):
  // nothing changed.
  virtual Status relayout(u64 pgsizes) = 0;

  virtual std::optional<Translation> translate(u64 iova) const = 0;
  // Reads or writes [iova, last] through the software walker; stops at the
  // first byte with no mapping, or (write) in a read-only mapping.
  virtual DmaOutcome dma(DmaDir dir, Range iova) = 0;
  // Precondition: pgsize is a power of two, the range is pgsize aligned.
  virtual std::vector<Range> read_dirty(Range iova, u64 pgsize, bool keep) = 0;
  virtual void clear_dirty() = 0;
  // The leaves intersecting r, in order, as the software walker sees them;
  // `dirty` as the table holds it.
  virtual void leaves(Range r, const std::function<void(const LeafInfo&)>& f) const = 0;
  // The same leaves into `out` (cleared first): one call for the whole
  // list, not one through `f` per leaf. By default through leaves().
  virtual void leaves_into(Range r, std::vector<LeafInfo>& out) const {
    out.clear();
    leaves(r, [&](const LeafInfo& l) { out.push_back(l); });
  }

  virtual void flush_iotlb() = 0;
  virtual u64 flushes() const = 0;
  // Table pages reachable from the root (empty intermediate tables stay
  // after an unmap, as in the kernel's io-pgtable).
  virtual u64 table_pages() const = 0;

  virtual std::size_t mapping_count() const = 0;
  virtual void for_each_mapping(const std::function<void(const PtMapping&)>& f) const = 0;
  // Checks the table's structure and that its leaves are exactly those of
  // the mappings; aborts with a message otherwise. Returns the mapping count.
  virtual std::size_t verify() const = 0;
};

// What a new domain is (attach has checked it against the format).
struct DomainConfig {
  std::string name;
  std::string ioas;
  std::string first_device;  // the device whose attach creates the domain
  Format fmt = Format::kX86_64;
  Range aperture;
  u64 pgsize_bitmap = 0;
};

// Makes the table of a new domain. `builtin` makes the engine's own table
// for this configuration (a back end may keep it as its mirror). An error
// fails the attach with that errno, nothing changed.
using TableFactory = std::function<Result<std::unique_ptr<IoPageTable>>(
    const DomainConfig& config, const std::function<Result<std::unique_ptr<IoPageTable>>()>& builtin)>;

}  // namespace ioas
