// hw/vfio/vfio_backend.hpp: an engine domain carried out by the kernel's
// VFIO type1.
//
// table_factory() gives ImplOptions::tables (ioas/impl.hpp) a back end whose
// tables send every change of the domain to a type1 container and keep the
// engine's built-in table (the `builtin` callback) as a mirror:
//
//   map(iova, pa, uaddr, prot)  the mirror first, then VFIO_IOMMU_MAP_DMA(iova,
//                               uaddr, len, READ[|WRITE]). The mirror's own
//                               refusals (EINVAL for page sizes or output
//                               addresses, ENOMEM) never reach the kernel; a
//                               kernel refusal unmaps the mirror again (which
//                               cannot fail) and returns the kernel's errno:
//                               nothing changed.
//   unmap(iova)                 one VFIO_IOMMU_UNMAP_DMA over the mapping, then
//                               the mirror. The interface cannot fail here: a
//                               kernel refusal, or a byte count other than the
//                               mapping's, is recorded in KernelLog::problems;
//                               a refused mapping is kept as "leaked" and
//                               unmapped again when the table goes.
//   split(last)                 type1v2 refuses to unmap part of a mapping
//                               (EINVAL, "bisection"), so the kernel mapping
//                               holding `last` is replaced by two first: unmap
//                               the whole, map the left piece, map the right
//                               one. From the first ioctl to the last, DMA to
//                               the replaced range faults (type1 has no atomic
//                               replace; iommufd cuts in place). A failure
//                               maps the original again and returns the errno,
//                               the mirror untouched; if even that restore
//                               fails, the range is "lost" in the kernel
//                               (counted in problems; DMA there faults until
//                               the engine unmaps it). Then the mirror splits;
//                               if it fails (ENOMEM), the kernel keeps its two
//                               pieces, as after unsplit. When `last` already
//                               ends a kernel piece, the kernel is not asked.
//   unsplit(last)               the kernel keeps the two pieces: they give the
//                               device exactly the translations the joined
//                               mapping gives, and joining them again would
//                               reopen the fault window in a call that cannot
//                               fail. A later unmap of the joined mapping is
//                               one VFIO_IOMMU_UNMAP_DMA covering both pieces
//                               (type1v2 accepts whole mappings). Cost: one
//                               more of the container's DMA entries (dma_avail)
//                               until then.
//   relayout, translate, dma,   the mirror only. The kernel picks its own page
//   read_dirty, clear_dirty,    sizes (type1 maps the largest runs the pinned
//   leaves, flush_iotlb, ...    pages allow), so the mirror's leaves are the
//                               engine's layout, not the IOMMU's; dma() is the
//                               software walk of the mirror, never the device;
//                               dirty state is what software walks set (the
//                               kernel's VFIO_IOMMU_DIRTY_PAGES is not used).
//                               The kernel flushes its IOTLB inside each ioctl.
//
// When a table goes (detach of the domain's last device, a failed attach that
// discards the new table, the engine's end) it unmaps everything it still
// holds in the kernel.
//
// One container per domain: a type1 container is one IOVA space, so two
// engine domains on one container would map every area twice (EEXIST). The
// factory refuses a second live domain on a container with EBUSY; the
// container is free again once that domain's table is gone. Several domains
// of one engine need one container each (MapperFor picks them).
//
// The factory also refuses (EINVAL) a domain whose geometry the container
// cannot honour: an aperture beyond the hull of the kernel's valid IOVA
// ranges, or a smallest page size below the kernel's (type1 wants iova,
// length and user address aligned to it). Gaps between the kernel's ranges
// are the attach's business (vfio::attach_args_from turns them into reserved
// regions); a map there is refused by the kernel with EINVAL anyway.
//
// The kernel needs the user address of each mapping: the engine passes its
// memory source's va + offset (MemorySource::va). The mirror uses `pa`.
//
// Not thread-safe, like the engine that calls it. Linux only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ioas/backend.hpp"
#include "ioas/range.hpp"
#include "ioas/result.hpp"
#include "vfio.hpp"

namespace ioas::vfio {

// What the back end needs of a type1 container: its two DMA ioctls and its
// geometry. ContainerMapper is the real one; a test may supply a fake.
class DmaMapper {
 public:
  virtual ~DmaMapper() = default;
  // VFIO_IOMMU_MAP_DMA; prot kRead or kReadWrite.
  virtual Status map_dma(u64 iova, u64 uaddr, u64 len, Prot prot) = 0;
  // VFIO_IOMMU_UNMAP_DMA; the bytes the kernel unmapped.
  virtual Result<u64> unmap_dma(u64 iova, u64 len) = 0;
  // VFIO_IOMMU_GET_INFO.
  virtual Result<IommuInfo> info() const = 0;
};

// A Container as a DmaMapper. The container must outlive it.
class ContainerMapper final : public DmaMapper {
 public:
  explicit ContainerMapper(Container& c) : c_(c) {}
  Status map_dma(u64 iova, u64 uaddr, u64 len, Prot prot) override { return c_.map_dma(iova, uaddr, len, prot); }
  Result<u64> unmap_dma(u64 iova, u64 len) override { return c_.unmap_dma(iova, len); }
  Result<IommuInfo> info() const override { return c_.info(); }

 private:
  Container& c_;
};

// What the tables of one factory asked of the kernel. `problems` lists every
// place where the kernel and the mirror may now differ (an unmap the kernel
// refused or answered with another byte count, a cut whose restore failed),
// one message each: a test asserts it stays empty.
struct KernelLog {
  u64 map_calls = 0;    // VFIO_IOMMU_MAP_DMA issued (refused ones included)
  u64 unmap_calls = 0;  // VFIO_IOMMU_UNMAP_DMA issued (refused ones included)
  u64 refused = 0;      // of those, the ones the kernel failed
  std::vector<std::string> problems;
  u64 calls() const { return map_calls + unmap_calls; }
};

// Picks the container of a new domain; nullptr: the attach fails with ENODEV.
using MapperFor = std::function<std::shared_ptr<DmaMapper>(const DomainConfig&)>;

// Every domain on the mapper `pick` gives it; `log` (may be null) collects
// the kernel calls of all the factory's tables.
TableFactory table_factory(MapperFor pick, std::shared_ptr<KernelLog> log = nullptr);
// Every domain on `kernel` (so at most one live domain: EBUSY for a second).
TableFactory table_factory(std::shared_ptr<DmaMapper> kernel, std::shared_ptr<KernelLog> log = nullptr);
// The same over a Container, which must outlive every table the factory
// makes (that is, the engine, or its domains).
TableFactory table_factory(Container& container, std::shared_ptr<KernelLog> log = nullptr);

}  // namespace ioas::vfio
