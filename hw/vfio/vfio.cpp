#include "vfio.hpp"

#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "ioas/arith.hpp"
#include "ioas/core/formats.hpp"
#include "ioas/core/reserved_regions.hpp"
#include "ioas/core/text.hpp"

namespace ioas::vfio {
namespace {

// An Error from the errno of a failed call: "what: strerror".
Error sys_error(int code, const std::string& what) {
  return make_error(code == 0 ? EIO : code, what + ": " + std::strerror(code));
}

int retry_ioctl(int fd, unsigned long req, void* arg) {
  int r;
  do r = ::ioctl(fd, req, arg);
  while (r < 0 && errno == EINTR);
  return r;
}

}  // namespace

// ---- Fd ----

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

// ---- printing ----

std::string pgsizes_to_string(u64 bitmap) {
  if (bitmap == 0) return "none";
  std::string out;
  for (unsigned b = 0; b < 64; ++b) {
    if (!(bitmap >> b & 1)) continue;
    if (!out.empty()) out += '|';
    if (b >= 30 && b < 40) out += std::to_string(u64{1} << (b - 30)) + "G";
    else if (b >= 20 && b < 30) out += std::to_string(u64{1} << (b - 20)) + "M";
    else if (b >= 10 && b < 20) out += std::to_string(u64{1} << (b - 10)) + "K";
    else out += hex(u64{1} << b);
  }
  return out;
}

std::string to_string(const IommuInfo& info) {
  std::string out = "pgsizes " + pgsizes_to_string(info.pgsizes) + ", ranges ";
  out += info.has_iova_ranges ? (info.iova_ranges.empty() ? "(none)" : ioas::to_string(info.iova_ranges))
                              : "(not reported)";
  out += ", dma_avail ";
  out += info.dma_avail ? std::to_string(*info.dma_avail) : "(not reported)";
  return out;
}

// ---- MappedRegion ----

MappedRegion::MappedRegion(MappedRegion&& o) noexcept : base_(o.base_), size_(o.size_) {
  o.base_ = nullptr;
  o.size_ = 0;
}

MappedRegion& MappedRegion::operator=(MappedRegion&& o) noexcept {
  if (this != &o) {
    if (base_) ::munmap(base_, size_);
    base_ = o.base_;
    size_ = o.size_;
    o.base_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedRegion::~MappedRegion() {
  if (base_) ::munmap(base_, size_);
}

std::uint32_t MappedRegion::read32(u64 off) const {
  return *reinterpret_cast<volatile std::uint32_t*>(static_cast<char*>(base_) + off);
}
std::uint64_t MappedRegion::read64(u64 off) const {
  return *reinterpret_cast<volatile std::uint64_t*>(static_cast<char*>(base_) + off);
}
void MappedRegion::write32(u64 off, std::uint32_t v) {
  *reinterpret_cast<volatile std::uint32_t*>(static_cast<char*>(base_) + off) = v;
}
void MappedRegion::write64(u64 off, std::uint64_t v) {
  *reinterpret_cast<volatile std::uint64_t*>(static_cast<char*>(base_) + off) = v;
}

// ---- Device ----

Result<RegionInfo> Device::region_info(std::uint32_t index) const {
  vfio_region_info ri{};
  ri.argsz = sizeof ri;
  ri.index = index;
  if (retry_ioctl(fd_.get(), VFIO_DEVICE_GET_REGION_INFO, &ri) < 0)
    return sys_error(errno, "VFIO_DEVICE_GET_REGION_INFO " + name_ + " region " + std::to_string(index));
  return RegionInfo{ri.index, ri.flags, ri.size, ri.offset};
}

namespace {

// pread or pwrite of [off, off + len) inside region `ri` of device `fd`;
// `verb` ("read" or "write") and `who` (device and region) name it.
template <typename Io, typename Buf>
Status region_io(Io io, const char* verb, int fd, const std::string& who, const RegionInfo& ri, u64 off, Buf buf,
                 std::size_t len) {
  const std::string what = std::string(verb) + " " + who + " at " + hex(off) + " (" + std::to_string(len) + " bytes)";
  if (off > ri.size || len > ri.size - off) return make_error(EINVAL, what + ": past the region's size " + hex(ri.size));
  const ssize_t n = io(fd, buf, len, static_cast<off_t>(ri.offset + off));
  if (n < 0) return sys_error(errno, what);
  if (static_cast<std::size_t>(n) != len)
    return make_error(EIO, what + ": short " + verb + " of " + std::to_string(n));
  return {};
}

}  // namespace

Status Device::read(std::uint32_t index, u64 off, void* buf, std::size_t len) const {
  auto ri = region_info(index);
  if (!ri) return ri.error();
  return region_io(::pread, "read", fd_.get(), name_ + " region " + std::to_string(index), *ri, off, buf, len);
}

Status Device::write(std::uint32_t index, u64 off, const void* buf, std::size_t len) {
  auto ri = region_info(index);
  if (!ri) return ri.error();
  return region_io(::pwrite, "write", fd_.get(), name_ + " region " + std::to_string(index), *ri, off, buf, len);
}

Result<std::uint16_t> Device::config_read16(u64 off) const {
  unsigned char b[2];
  if (auto s = read(VFIO_PCI_CONFIG_REGION_INDEX, off, b, 2); !s) return s.error();
  return static_cast<std::uint16_t>(b[0] | b[1] << 8);
}

Result<std::uint32_t> Device::config_read32(u64 off) const {
  unsigned char b[4];
  if (auto s = read(VFIO_PCI_CONFIG_REGION_INDEX, off, b, 4); !s) return s.error();
  return static_cast<std::uint32_t>(b[0] | b[1] << 8 | b[2] << 16 | static_cast<std::uint32_t>(b[3]) << 24);
}

Status Device::config_write16(u64 off, std::uint16_t v) {
  const unsigned char b[2] = {static_cast<unsigned char>(v), static_cast<unsigned char>(v >> 8)};
  return write(VFIO_PCI_CONFIG_REGION_INDEX, off, b, 2);
}

Result<MappedRegion> Device::map_region(std::uint32_t index) {
  auto ri = region_info(index);
  if (!ri) return ri.error();
  const std::string what = "mmap " + name_ + " region " + std::to_string(index);
  if (!(ri->flags & VFIO_REGION_INFO_FLAG_MMAP)) return make_error(EINVAL, what + ": the region cannot be mmap'd");
  if (ri->size == 0) return make_error(EINVAL, what + ": the region is empty");
  int prot = 0;
  if (ri->flags & VFIO_REGION_INFO_FLAG_READ) prot |= PROT_READ;
  if (ri->flags & VFIO_REGION_INFO_FLAG_WRITE) prot |= PROT_WRITE;
  void* p = ::mmap(nullptr, ri->size, prot, MAP_SHARED, fd_.get(), static_cast<off_t>(ri->offset));
  if (p == MAP_FAILED) return sys_error(errno, what);
  return MappedRegion(p, ri->size);
}

// ---- Container ----

Result<Container> Container::open(const std::string& dev_dir) {
  const std::string path = dev_dir + "/vfio";
  Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return sys_error(errno, "open " + path + " (is the vfio module loaded?)");
  const int api = ::ioctl(fd.get(), VFIO_GET_API_VERSION);
  if (api < 0) return sys_error(errno, "VFIO_GET_API_VERSION on " + path);
  if (api != VFIO_API_VERSION)
    return make_error(EINVAL, path + ": VFIO API version " + std::to_string(api) + ", expected " +
                                  std::to_string(VFIO_API_VERSION));
  const int ext = ::ioctl(fd.get(), VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
  if (ext < 0) return sys_error(errno, "VFIO_CHECK_EXTENSION VFIO_TYPE1v2_IOMMU on " + path);
  if (ext == 0)
    return make_error(ENODEV, path + ": no VFIO_TYPE1v2_IOMMU extension (is vfio_iommu_type1 loaded?)");
  return Container(std::move(fd), dev_dir, api);
}

const Container::Group* Container::find_group(int group) const {
  for (const auto& g : groups_)
    if (g.number == group) return &g;
  return nullptr;
}

Status Container::add_group(int group) {
  const std::string path = dev_dir_ + "/" + std::to_string(group);
  if (group < 0) return make_error(EINVAL, "group " + std::to_string(group) + ": not a group number");
  if (find_group(group)) return make_error(EEXIST, path + ": already in this container");
  Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return sys_error(errno, "open " + path + " (is every device of the group bound to vfio-pci?)");
  vfio_group_status st{};
  st.argsz = sizeof st;
  if (retry_ioctl(fd.get(), VFIO_GROUP_GET_STATUS, &st) < 0) return sys_error(errno, "VFIO_GROUP_GET_STATUS " + path);
  if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE))
    return make_error(EBUSY, path + ": group not viable (a device of the group is bound to a host driver)");
  int cfd = fd_.get();
  if (retry_ioctl(fd.get(), VFIO_GROUP_SET_CONTAINER, &cfd) < 0)
    return sys_error(errno, "VFIO_GROUP_SET_CONTAINER " + path);
  if (!iommu_set_) {
    if (::ioctl(fd_.get(), VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
      const int e = errno;
      (void)::ioctl(fd.get(), VFIO_GROUP_UNSET_CONTAINER);
      std::string what = "VFIO_SET_IOMMU VFIO_TYPE1v2_IOMMU after adding " + path;
      if (e == EPERM) what += " (no interrupt remapping? the IOMMU must remap interrupts)";
      return sys_error(e, what);
    }
    iommu_set_ = true;
  }
  groups_.push_back(Group{group, std::move(fd)});
  return {};
}

Result<IommuInfo> Container::info() const {
  if (!iommu_set_) return make_error(ENODEV, "VFIO_IOMMU_GET_INFO: no group in the container yet");
  // The kernel fills what fits and raises argsz to what the capability chain
  // needs; ask again with that size until it stops growing.
  std::vector<std::uint64_t> buf((sizeof(vfio_iommu_type1_info) + 7) / 8, 0);
  std::uint32_t argsz = sizeof(vfio_iommu_type1_info);
  vfio_iommu_type1_info* hdr = nullptr;
  for (int attempt = 0;; ++attempt) {
    std::fill(buf.begin(), buf.end(), 0);
    hdr = reinterpret_cast<vfio_iommu_type1_info*>(buf.data());
    hdr->argsz = argsz;
    if (retry_ioctl(fd_.get(), VFIO_IOMMU_GET_INFO, hdr) < 0) return sys_error(errno, "VFIO_IOMMU_GET_INFO");
    if (hdr->argsz <= argsz) break;
    if (attempt == 4 || hdr->argsz > (1u << 20))
      return make_error(EIO, "VFIO_IOMMU_GET_INFO: the kernel keeps asking for a larger buffer (" +
                                 std::to_string(hdr->argsz) + " bytes)");
    argsz = hdr->argsz;
    buf.assign((argsz + 7) / 8, 0);
  }
  IommuInfo info;
  info.flags = hdr->flags;
  info.argsz = hdr->argsz;
  if (hdr->flags & VFIO_IOMMU_INFO_PGSIZES) info.pgsizes = hdr->iova_pgsizes;
  if (!(hdr->flags & VFIO_IOMMU_INFO_CAPS) || hdr->cap_offset == 0) return info;

  const char* base = reinterpret_cast<const char*>(buf.data());
  std::uint32_t off = hdr->cap_offset;
  for (int n = 0; off != 0; ++n) {
    if (n == 64) return make_error(EIO, "VFIO_IOMMU_GET_INFO: capability chain longer than 64 (a loop?)");
    if (off < sizeof(vfio_iommu_type1_info) || off + sizeof(vfio_info_cap_header) > argsz)
      return make_error(EIO, "VFIO_IOMMU_GET_INFO: capability at offset " + std::to_string(off) +
                                 " lies outside the " + std::to_string(argsz) + "-byte buffer");
    vfio_info_cap_header ch;
    std::memcpy(&ch, base + off, sizeof ch);
    info.cap_ids.push_back(ch.id);
    if (ch.id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
      vfio_iommu_type1_info_cap_iova_range cap;
      if (off + sizeof cap > argsz) return make_error(EIO, "VFIO_IOMMU_GET_INFO: truncated IOVA range capability");
      std::memcpy(&cap, base + off, sizeof cap);
      const u64 need = sizeof cap + u64{cap.nr_iovas} * sizeof(vfio_iova_range);
      if (off + need > argsz)
        return make_error(EIO, "VFIO_IOMMU_GET_INFO: IOVA range capability claims " + std::to_string(cap.nr_iovas) +
                                   " ranges, more than the buffer holds");
      info.has_iova_ranges = true;
      for (std::uint32_t i = 0; i < cap.nr_iovas; ++i) {
        vfio_iova_range r;
        std::memcpy(&r, base + off + sizeof cap + i * sizeof r, sizeof r);
        info.iova_ranges.push_back(Range{r.start, r.end});  // type1's end is inclusive
      }
    } else if (ch.id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
      vfio_iommu_type1_info_dma_avail cap;
      if (off + sizeof cap > argsz) return make_error(EIO, "VFIO_IOMMU_GET_INFO: truncated DMA avail capability");
      std::memcpy(&cap, base + off, sizeof cap);
      info.dma_avail = cap.avail;
    }
    off = ch.next;
  }
  return info;
}

Result<Device> Container::device(int group, const std::string& name) const {
  const Group* g = find_group(group);
  if (!g) return make_error(ENOENT, "device " + name + ": group " + std::to_string(group) + " is not in the container");
  const int fd = ::ioctl(g->fd.get(), VFIO_GROUP_GET_DEVICE_FD, name.c_str());
  if (fd < 0) return sys_error(errno, "VFIO_GROUP_GET_DEVICE_FD " + name + " in group " + std::to_string(group));
  return Device(Fd(fd), name);
}

Status Container::map_dma(u64 iova, u64 uaddr, u64 len, Prot prot) {
  const std::string what = "VFIO_IOMMU_MAP_DMA iova " + hex(iova) + " len " + hex(len) + " uaddr " + hex(uaddr) +
                           " " + ioas::to_string(prot);
  std::uint32_t flags;
  if (prot == Prot::kRead) flags = VFIO_DMA_MAP_FLAG_READ;
  else if (prot == Prot::kReadWrite) flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  else if (prot == Prot::kWrite) flags = VFIO_DMA_MAP_FLAG_WRITE;  // type1 takes it, as iommufd does
  else return make_error(EINVAL, what + ": prot must be r, w or rw");
  vfio_iommu_type1_dma_map m{};
  m.argsz = sizeof m;
  m.flags = flags;
  m.vaddr = uaddr;
  m.iova = iova;
  m.size = len;
  if (retry_ioctl(fd_.get(), VFIO_IOMMU_MAP_DMA, &m) < 0) return sys_error(errno, what);
  return {};
}

Result<u64> Container::unmap_dma(u64 iova, u64 len) {
  vfio_iommu_type1_dma_unmap u{};
  u.argsz = sizeof u;
  u.iova = iova;
  u.size = len;
  if (retry_ioctl(fd_.get(), VFIO_IOMMU_UNMAP_DMA, &u) < 0)
    return sys_error(errno, "VFIO_IOMMU_UNMAP_DMA iova " + hex(iova) + " len " + hex(len));
  return u64{u.size};
}

// ---- sysfs ----

Result<int> iommu_group_of(const std::string& bdf, const std::string& sysfs) {
  const std::string link = sysfs + "/bus/pci/devices/" + bdf + "/iommu_group";
  char target[4096];
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n < 0) return sys_error(errno, "readlink " + link + " (no IOMMU, or no such device?)");
  target[n] = '\0';
  const char* slash = std::strrchr(target, '/');
  const std::string last = slash ? slash + 1 : target;
  if (last.empty() || last.size() > 9 || !std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return make_error(EINVAL, link + " -> " + target + ": not a group number");
  return std::stoi(last);
}

Result<std::vector<ResvRegion>> read_reserved_regions(int group, const std::string& sysfs) {
  const std::string path = sysfs + "/kernel/iommu_groups/" + std::to_string(group) + "/reserved_regions";
  std::ifstream in(path);
  if (!in) return sys_error(errno ? errno : ENOENT, "open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto lines = resv::parse_reserved_regions(ss.str(), path);
  if (!lines) return lines.error();
  return resv::regions_of(*lines);
}

// ---- the kernel's geometry as an engine attach ----

Result<AttachArgs> attach_args_from(const IommuInfo& info, std::string dev, std::string dom,
                                    const std::vector<ResvRegion>& device_regions, Format fmt) {
  if (!info.has_iova_ranges || info.iova_ranges.empty())
    return make_error(EINVAL, "the container reports no valid IOVA ranges (no VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)");
  const auto& rs = info.iova_ranges;
  for (std::size_t i = 0; i < rs.size(); ++i) {
    if (!rs[i].valid()) return make_error(EINVAL, "kernel IOVA range " + ioas::to_string(rs[i]) + " is empty");
    if (i > 0 && rs[i].start <= rs[i - 1].last)
      return make_error(EINVAL, "kernel IOVA ranges " + ioas::to_string(rs[i - 1]) + " and " +
                                    ioas::to_string(rs[i]) + " are unsorted or overlap");
  }
  if (info.pgsizes == 0) return make_error(EINVAL, "the container reports no page sizes");

  const u64 smallest = arith::lowest_bit(info.pgsizes);
  u64 can = 0;
  switch (fmt) {
    case Format::kX86_64:
    case Format::kArmLpae: can = formats::kRadixPgsizes; break;
    case Format::kTce: can = smallest; break;  // one size per window
    case Format::kMock: can = 0; break;        // the selftest's domain, never a VFIO container's
  }
  const u64 keep = info.pgsizes & can;
  if (!(keep & smallest))
    return make_error(EINVAL, "the kernel's smallest page size " + pgsizes_to_string(smallest) + " (of " +
                                  pgsizes_to_string(info.pgsizes) + ") is not a " + ioas::to_string(fmt) +
                                  " page size");

  AttachArgs a;
  a.dev = std::move(dev);
  a.dom = std::move(dom);
  a.fmt = fmt;
  a.aperture = Range{rs.front().start, rs.back().last};
  a.pgsize_bitmap = keep;
  a.resv = device_regions;
  for (std::size_t i = 1; i < rs.size(); ++i)
    if (const auto gap = arith::range_gap(rs[i - 1].last, rs[i].start); gap.exists)
      a.resv.push_back(ResvRegion{Range{gap.start, gap.last}, ResvType::kReserved});
  return a;
}

}  // namespace ioas::vfio
