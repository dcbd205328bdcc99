// hw/vfio/vfio.hpp: a small C++ layer over Linux VFIO type1.
//
// What it covers, and nothing more: the container (/dev/vfio/vfio, API
// version, the VFIO_TYPE1v2_IOMMU extension), groups (/dev/vfio/N, viability,
// VFIO_GROUP_SET_CONTAINER, then VFIO_SET_IOMMU once), the container's
// geometry (VFIO_IOMMU_GET_INFO with its capability chain: page sizes, the
// valid IOVA ranges, the DMA mapping budget), DMA maps (VFIO_IOMMU_MAP_DMA /
// VFIO_IOMMU_UNMAP_DMA), and a device's fd with its regions (config space,
// BARs by pread/pwrite or mmap).
//
// Beside it, what an ioas engine needs to mirror the kernel: the group's
// reserved regions from sysfs and attach_args_from(), which turns the
// container's IOVA ranges and page sizes into AttachArgs such that an engine
// attached with them reports `ranges` equal to what the kernel enforces.
// vfio_backend.hpp builds on it: an engine domain whose page table is this
// container (ImplOptions::tables).
//
// Errors are ioas::Result values carrying the kernel's errno and a message
// naming the ioctl, the object and its arguments. Linux only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ioas/engine.hpp"
#include "ioas/range.hpp"
#include "ioas/result.hpp"

namespace ioas::vfio {

// A file descriptor that closes itself.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// VFIO_IOMMU_GET_INFO, decoded.
struct IommuInfo {
  std::uint32_t flags = 0;         // VFIO_IOMMU_INFO_*
  u64 pgsizes = 0;                 // 0 when the kernel does not report them
  bool has_iova_ranges = false;    // VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE seen
  std::vector<Range> iova_ranges;  // inclusive, in the kernel's order
  std::optional<std::uint32_t> dma_avail;  // VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL
  std::vector<std::uint16_t> cap_ids;      // every capability in chain order
  std::uint32_t argsz = 0;                 // the size the kernel asked for
};

// "pgsizes 4K|2M|1G, ranges 0x0-0xfedfffff 0xfef00000-0x7fffffffff, dma_avail 65535".
std::string to_string(const IommuInfo& info);
// "4K|2M|1G" (sizes that are not a K/M/G power print in hex).
std::string pgsizes_to_string(u64 bitmap);

// VFIO_DEVICE_GET_REGION_INFO, decoded.
struct RegionInfo {
  std::uint32_t index = 0;
  std::uint32_t flags = 0;  // VFIO_REGION_INFO_FLAG_*
  u64 size = 0;
  u64 offset = 0;           // of the region in the device fd
};

// A region mapped into this process (a BAR). Accesses are volatile and of
// exactly the width named (MMIO registers care).
class MappedRegion {
 public:
  MappedRegion() = default;
  MappedRegion(void* base, std::size_t size) : base_(base), size_(size) {}
  MappedRegion(MappedRegion&& o) noexcept;
  MappedRegion& operator=(MappedRegion&& o) noexcept;
  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;
  ~MappedRegion();

  std::size_t size() const { return size_; }
  std::uint32_t read32(u64 off) const;
  std::uint64_t read64(u64 off) const;
  void write32(u64 off, std::uint32_t v);
  void write64(u64 off, std::uint64_t v);

 private:
  void* base_ = nullptr;
  std::size_t size_ = 0;
};

class Device {
 public:
  Device(Fd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }

  Result<RegionInfo> region_info(std::uint32_t index) const;
  // pread/pwrite at `off` inside region `index`; a short transfer is EIO.
  Status read(std::uint32_t index, u64 off, void* buf, std::size_t len) const;
  Status write(std::uint32_t index, u64 off, const void* buf, std::size_t len);
  // PCI config space (VFIO_PCI_CONFIG_REGION_INDEX), little-endian.
  Result<std::uint16_t> config_read16(u64 off) const;
  Result<std::uint32_t> config_read32(u64 off) const;
  Status config_write16(u64 off, std::uint16_t v);
  // mmap a region that has VFIO_REGION_INFO_FLAG_MMAP (EINVAL otherwise).
  Result<MappedRegion> map_region(std::uint32_t index);

 private:
  Fd fd_;
  std::string name_;
};

class Container {
 public:
  // Opens /dev/vfio/vfio (dir is "/dev/vfio" but for tests), checks
  // VFIO_API_VERSION and the VFIO_TYPE1v2_IOMMU extension.
  static Result<Container> open(const std::string& dev_dir = "/dev/vfio");

  // Opens /dev/vfio/<group>, checks it is viable (every device of the group
  // bound to a VFIO driver, else EBUSY) and adds it to the container; the
  // first group also sets the IOMMU type (VFIO_SET_IOMMU, type1v2). EPERM
  // there usually means no interrupt remapping.
  Status add_group(int group);

  // VFIO_IOMMU_GET_INFO with the whole capability chain (the buffer grows to
  // the argsz the kernel asks for). ENODEV before a group is added.
  Result<IommuInfo> info() const;

  // VFIO_GROUP_GET_DEVICE_FD on an added group ("0000:00:03.0").
  Result<Device> device(int group, const std::string& name) const;

  // VFIO_IOMMU_MAP_DMA of [uaddr, uaddr+len) at iova; prot kRead gives the
  // device read access only, kReadWrite both (others: EINVAL, no ioctl).
  Status map_dma(u64 iova, u64 uaddr, u64 len, Prot prot);
  // VFIO_IOMMU_UNMAP_DMA; returns the bytes the kernel unmapped.
  Result<u64> unmap_dma(u64 iova, u64 len);

  int api_version() const { return api_version_; }
  int fd() const { return fd_.get(); }

 private:
  explicit Container(Fd fd, std::string dev_dir, int api) : fd_(std::move(fd)), dev_dir_(std::move(dev_dir)), api_version_(api) {}
  struct Group {
    int number;
    Fd fd;
  };
  const Group* find_group(int group) const;

  Fd fd_;
  std::string dev_dir_;
  int api_version_ = 0;
  bool iommu_set_ = false;
  std::vector<Group> groups_;
};

// ---- sysfs ----

// The IOMMU group number of a PCI device: the last component of the link
// <sysfs>/bus/pci/devices/<bdf>/iommu_group. ENOENT when there is none.
Result<int> iommu_group_of(const std::string& bdf, const std::string& sysfs = "/sys");

// <sysfs>/kernel/iommu_groups/<group>/reserved_regions, parsed
// (ioas/core/reserved_regions.hpp). ENOENT when the file is missing, EINVAL
// "file:line: ..." on a malformed line.
Result<std::vector<ResvRegion>> read_reserved_regions(int group, const std::string& sysfs = "/sys");

// ---- the kernel's geometry as an engine attach ----

// AttachArgs for `dev` joining domain `dom` such that the engine's `ranges`
// equal the kernel's valid IOVA ranges (with ZeroPage::kAllowed; with the
// default zero-page policy, minus [0, PAGE-1]):
//   aperture      = the hull of the valid ranges;
//   resv          = `device_regions` (the group's reserved_regions, kept so
//                   the engine names the device as their owner), then every
//                   gap between two valid ranges as a kReserved region;
//   pgsize_bitmap = the kernel's page sizes that `fmt` can express (larger
//                   kernel sizes a format lacks are dropped: mappings split
//                   into smaller pages); EINVAL when the kernel's smallest
//                   size is not among them.
// EINVAL when the kernel reports no IOVA ranges, ranges that are unsorted,
// overlapping or empty, or no page sizes.
Result<AttachArgs> attach_args_from(const IommuInfo& info, std::string dev, std::string dom,
                                    const std::vector<ResvRegion>& device_regions = {},
                                    Format fmt = Format::kX86_64);

}  // namespace ioas::vfio
