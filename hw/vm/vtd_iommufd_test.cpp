// hw/vm/vtd_iommufd_test.cpp: Linux's iommufd on a real (emulated) Intel
// IOMMU, beside the ioas engine in kernel mode. Runs as the command of a QEMU
// guest (hw/vm/run-vtd-iommufd) whose kernel has iommufd, the Intel IOMMU and
// VFIO's PCI driver with the device cdev, on a q35 board with
// `-device intel-iommu` and QEMU's `edu` PCI device.
//
// The device goes the iommufd way, without a VFIO container: edu is bound to
// vfio-pci, its cdev /dev/vfio/devices/vfioN is bound to /dev/iommu
// (VFIO_DEVICE_BIND_IOMMUFD) and attached to an IOAS
// (VFIO_DEVICE_ATTACH_IOMMUFD_PT), whose auto domain is then a VT-d
// second-stage page table. What is compared:
//   - the IOAS's IOVA ranges (IOMMU_IOAS_IOVA_RANGES) before and after the
//     attach, with those of an engine IOAS in kernel mode attached with the
//     x86-64 format, the group's reserved regions (sysfs) and the aperture
//     the VT-d's capability register gives (IOMMU_GET_HW_INFO); and with
//     those of the x86-64 format's default aperture, which are the kernel's
//     only when the VT-d's address width is 48 bits;
//   - every map, copy and unmap, asked of both with the same arguments: the
//     same IOVA chosen, the same bytes unmapped, the same errno refused
//     (the MSI window, above the aperture, a partial unmap);
//   - edu's DMA through the kernel's mappings: the bytes land at the user
//     address the engine's uva() names, through a copy too and at the last
//     page of the aperture, and a write to an unmapped IOVA changes nothing
//     (the engine's own walk faults there, the guest's IOMMU logs a DMAR
//     fault);
//   - a paging HWPT allocated explicitly (IOMMU_HWPT_ALLOC) carries the same
//     ranges, and dirty tracking is refused where the hardware info says the
//     IOMMU has none.
// Every check prints one "ok"/"FAIL" line; the last line is
// "IOAS-VTD-TEST: PASS n/n" or "IOAS-VTD-TEST: FAIL k/n".
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "guest.hpp"
#include "ioas/impl.hpp"
#include "ioas/rules.hpp"
#include "ioas/uapi/iommufd.h"
#include "ioas/core/reserved_regions.hpp"
#include "vfio.hpp"

namespace {

using ioas::Prot;
using ioas::Range;
using ioas::u64;
using u32 = std::uint32_t;
namespace vfio = ioas::vfio;
using namespace ioas::vm;  // the shared guest helpers (guest.hpp)

// The VFIO device cdev's iommufd ioctls (Linux 6.6 and later, so not in
// Debian 12's linux/vfio.h): layouts of include/uapi/linux/vfio.h, 6.12.
struct VfioBindIommufd {
  u32 argsz;
  u32 flags;
  std::int32_t iommufd;
  u32 out_devid;
};
struct VfioAttachPt {
  u32 argsz;
  u32 flags;
  u32 pt_id;
};
struct VfioDetachPt {
  u32 argsz;
  u32 flags;
};
static_assert(sizeof(VfioBindIommufd) == 16 && sizeof(VfioAttachPt) == 12 && sizeof(VfioDetachPt) == 8);
constexpr unsigned long kVfioBindIommufd = _IO(VFIO_TYPE, VFIO_BASE + 18);
constexpr unsigned long kVfioAttachPt = _IO(VFIO_TYPE, VFIO_BASE + 19);
constexpr unsigned long kVfioDetachPt = _IO(VFIO_TYPE, VFIO_BASE + 20);

std::string err_text(const ioas::Error& e) { return ioas::to_string(e); }

ioas::Error sys_error(int code, const std::string& what) {
  return ioas::make_error(code, what + ": " + std::strerror(code));
}

// VT-d's capability register (VT-d spec 11.4.2), the fields the Intel IOMMU
// driver reads to size a second-stage domain.
struct VtdCaps {
  u64 cap = 0;
  unsigned mgaw = 0;    // bits 21:16, maximum guest address width - 1
  unsigned sagaw = 0;   // bits 12:8, supported adjusted widths: bit 1 39, bit 2 48, bit 3 57
  unsigned sllps = 0;   // bits 37:34, second-level large pages: bit 0 2M, bit 1 1G
  explicit VtdCaps(u64 reg)
      : cap(reg),
        mgaw(static_cast<unsigned>((reg >> 16) & 0x3f)),
        sagaw(static_cast<unsigned>((reg >> 8) & 0x1f)),
        sllps(static_cast<unsigned>((reg >> 34) & 0xf)) {}

  // The domain's width as intel/iommu.c's paging_domain_alloc() sets it:
  // the widest SAGAW level up to 57 bits, capped by MGAW + 1.
  unsigned width() const {
    unsigned w = 0;
    for (unsigned level = 1; level <= 3; ++level)
      if (sagaw & (1u << level)) w = 30 + 9 * level;
    return w < mgaw + 1 ? w : mgaw + 1;
  }
  // Second-stage aperture: [0, 2^width - 1] (the domain's geometry).
  Range aperture() const { return Range{0, (u64{1} << width()) - 1}; }
  // 4K, then the superpage levels: fls(SLLPS) of them (2M, then 1G).
  u64 pgsizes() const {
    unsigned levels = 0;
    for (unsigned b = 0; b < 4; ++b)
      if (sllps & (1u << b)) levels = b + 1;
    return ioas::k4K | (levels >= 1 ? ioas::k2M : 0) | (levels >= 2 ? ioas::k1G : 0);
  }
};

// /dev/iommu through its ioctls, one call per method; a failed call is the
// kernel's errno with the ioctl's name and arguments.
class Iommufd {
 public:
  static ioas::Result<Iommufd> open() {
    const int fd = ::open("/dev/iommu", O_RDWR | O_CLOEXEC);
    if (fd < 0) return sys_error(errno, "open /dev/iommu");
    return Iommufd(vfio::Fd(fd));
  }
  int fd() const { return fd_.get(); }

  ioas::Result<u32> ioas_alloc() {
    iommu_ioas_alloc cmd{};
    cmd.size = sizeof cmd;
    if (int e = call(IOMMU_IOAS_ALLOC, &cmd)) return sys_error(e, "IOMMU_IOAS_ALLOC");
    return cmd.out_ioas_id;
  }
  ioas::Result<ioas::IovaRanges> ranges(u32 ioas) {
    std::vector<iommu_iova_range> buf(8);
    iommu_ioas_iova_ranges cmd{};
    cmd.size = sizeof cmd;
    cmd.ioas_id = ioas;
    cmd.num_iovas = static_cast<u32>(buf.size());
    cmd.allowed_iovas = reinterpret_cast<u64>(buf.data());
    if (int e = call(IOMMU_IOAS_IOVA_RANGES, &cmd)) return sys_error(e, "IOMMU_IOAS_IOVA_RANGES");
    ioas::IovaRanges out;
    out.alignment = cmd.out_iova_alignment;
    for (u32 i = 0; i < cmd.num_iovas; ++i) out.ranges.push_back(Range{buf[i].start, buf[i].last});
    return out;
  }
  ioas::Result<u64> map(u32 ioas, std::optional<u64> iova, u64 uva, u64 len, Prot prot) {
    iommu_ioas_map cmd{};
    cmd.size = sizeof cmd;
    cmd.flags = map_flags(prot) | (iova ? IOMMU_IOAS_MAP_FIXED_IOVA : 0);
    cmd.ioas_id = ioas;
    cmd.user_va = uva;
    cmd.length = len;
    cmd.iova = iova.value_or(0);
    if (int e = call(IOMMU_IOAS_MAP, &cmd))
      return sys_error(e, "IOMMU_IOAS_MAP " + (iova ? hex(*iova) : std::string("auto")) + "+" + hex(len));
    return u64{cmd.iova};
  }
  ioas::Result<u64> copy(u32 ioas, u64 src_iova, u64 len, std::optional<u64> dst_iova, Prot prot) {
    iommu_ioas_copy cmd{};
    cmd.size = sizeof cmd;
    cmd.flags = map_flags(prot) | (dst_iova ? IOMMU_IOAS_MAP_FIXED_IOVA : 0);
    cmd.dst_ioas_id = ioas;
    cmd.src_ioas_id = ioas;
    cmd.length = len;
    cmd.dst_iova = dst_iova.value_or(0);
    cmd.src_iova = src_iova;
    if (int e = call(IOMMU_IOAS_COPY, &cmd)) return sys_error(e, "IOMMU_IOAS_COPY from " + hex(src_iova));
    return u64{cmd.dst_iova};
  }
  // Bytes unmapped; iova 0 with length 2^64-1 unmaps everything.
  ioas::Result<u64> unmap(u32 ioas, u64 iova, u64 len) {
    iommu_ioas_unmap cmd{};
    cmd.size = sizeof cmd;
    cmd.ioas_id = ioas;
    cmd.iova = iova;
    cmd.length = len;
    if (int e = call(IOMMU_IOAS_UNMAP, &cmd)) return sys_error(e, "IOMMU_IOAS_UNMAP " + hex(iova) + "+" + hex(len));
    return u64{cmd.length};
  }
  // IOMMU_GET_HW_INFO of a bound device, with the VT-d data.
  ioas::Result<std::pair<iommu_hw_info, iommu_hw_info_vtd>> hw_info(u32 dev_id) {
    iommu_hw_info_vtd vtd{};
    iommu_hw_info cmd{};
    cmd.size = sizeof cmd;
    cmd.dev_id = dev_id;
    cmd.data_len = sizeof vtd;
    cmd.data_uptr = reinterpret_cast<u64>(&vtd);
    if (int e = call(IOMMU_GET_HW_INFO, &cmd)) return sys_error(e, "IOMMU_GET_HW_INFO");
    return std::pair{cmd, vtd};
  }
  ioas::Result<u32> hwpt_alloc(u32 dev_id, u32 pt_id, u32 flags) {
    iommu_hwpt_alloc cmd{};
    cmd.size = sizeof cmd;
    cmd.flags = flags;
    cmd.dev_id = dev_id;
    cmd.pt_id = pt_id;
    if (int e = call(IOMMU_HWPT_ALLOC, &cmd)) return sys_error(e, "IOMMU_HWPT_ALLOC flags " + hex(flags));
    return cmd.out_hwpt_id;
  }
  ioas::Status destroy(u32 id) {
    iommu_destroy cmd{};
    cmd.size = sizeof cmd;
    cmd.id = id;
    if (int e = call(IOMMU_DESTROY, &cmd)) return sys_error(e, "IOMMU_DESTROY " + std::to_string(id));
    return ioas::ok_status();
  }

 private:
  explicit Iommufd(vfio::Fd fd) : fd_(std::move(fd)) {}
  static u32 map_flags(Prot p) {
    return (ioas::prot_reads(p) ? IOMMU_IOAS_MAP_READABLE : 0) | (ioas::prot_writes(p) ? IOMMU_IOAS_MAP_WRITEABLE : 0);
  }
  int call(unsigned long request, void* arg) { return ::ioctl(fd_.get(), request, arg) == 0 ? 0 : errno; }
  vfio::Fd fd_;
};

// A cdev ioctl with an argsz-first struct: 0 or errno.
template <class T>
int vfio_call(int fd, unsigned long request, T& arg) {
  arg.argsz = sizeof arg;
  return ::ioctl(fd, request, &arg) == 0 ? 0 : errno;
}

bool write_sysfs(const std::string& path, const std::string& value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  ::close(fd);
  return ok;
}

// Binds `bdf` to vfio-pci (driver_override, then a probe) and returns its
// cdev's name ("vfio0", from /sys/bus/pci/devices/<bdf>/vfio-dev/).
std::optional<std::string> bind_vfio_pci(const std::string& bdf) {
  const std::string dev = "/sys/bus/pci/devices/" + bdf;
  if (driver_of(bdf) != "vfio-pci") {
    if (driver_of(bdf) != "(none)") write_sysfs(dev + "/driver/unbind", bdf);
    if (!write_sysfs(dev + "/driver_override", "vfio-pci") || !write_sysfs("/sys/bus/pci/drivers_probe", bdf))
      return std::nullopt;
  }
  DIR* d = ::opendir((dev + "/vfio-dev").c_str());
  if (!d) return std::nullopt;
  std::optional<std::string> name;
  while (dirent* e = ::readdir(d))
    if (std::strncmp(e->d_name, "vfio", 4) == 0) name = e->d_name;
  ::closedir(d);
  return name;
}

// "kernel X, engine Y" for two answers of one operation.
template <class T>
std::string answer(const ioas::Result<T>& r) {
  if (!r) return "errno " + std::to_string(r.code()) + " (" + r.error().message + ")";
  if constexpr (std::is_same_v<T, u64>) return hex(*r);
  else return ioas::to_string(r->ranges) + " align " + hex(r->alignment);
}
template <class T>
bool same(const ioas::Result<T>& k, const ioas::Result<T>& e) {
  return k.ok() == e.ok() && (k.ok() ? *k == *e : k.code() == e.code());
}
template <class T>
std::string both(const ioas::Result<T>& k, const ioas::Result<T>& e) {
  return "kernel " + answer(k) + "; engine " + answer(e);
}

// The kernel IOAS and the engine's, asked the same things.
struct Pair {
  Iommufd& kernel;
  u32 kernel_ioas;
  ioas::Engine& engine;
  std::string engine_ioas;

  // The kernel maps the buffer's own address; the engine, source `source`.
  void map(std::optional<u64> iova, const std::string& source, const Buffer& buf, u64 offset, u64 len, Prot prot) {
    last_kernel = kernel.map(kernel_ioas, iova, buf.va() + offset, len, prot);
    last_engine = engine.map(engine_ioas, {.iova = iova, .len = len, .source = source, .offset = offset, .prot = prot});
  }
  void copy(u64 src_iova, u64 len, std::optional<u64> dst_iova, Prot prot = Prot::kReadWrite) {
    last_kernel = kernel.copy(kernel_ioas, src_iova, len, dst_iova, prot);
    last_engine = engine.copy(engine_ioas, {.from = engine_ioas, .src_iova = src_iova, .len = len, .dst_iova = dst_iova,
                                            .prot = prot});
  }
  void unmap(u64 iova, u64 len) {
    last_kernel = kernel.unmap(kernel_ioas, iova, len);
    last_engine = engine.unmap(engine_ioas, iova, len);
  }
  void unmap_all() {
    last_kernel = kernel.unmap(kernel_ioas, 0, ~u64{0});
    last_engine = engine.unmap_all(engine_ioas);
  }
  bool agree() const { return same(last_kernel, last_engine); }
  std::string answers() const { return both(last_kernel, last_engine); }
  bool ranges_agree(std::string* text) {
    auto k = kernel.ranges(kernel_ioas);
    auto e = engine.ranges(engine_ioas);
    *text = both(k, e);
    return k && same(k, e);
  }

  ioas::Result<u64> last_kernel = u64{0};
  ioas::Result<u64> last_engine = u64{0};
};

// Random maps, copies and unmaps on both sides, every answer compared (and
// the IOVA ranges every tenth operation), as the kernel campaign does on the
// mock domain, here on the VT-d domain: fixed IOVAs are drawn near the edges
// that matter (the MSI window, the aperture's end, existing areas). Some
// agreed read-write areas also carry an edu DMA (it reads 64 bytes of the
// area and writes them elsewhere in it): the bytes must arrive where the
// engine's uva() says. Stops at the first disagreement (the states may differ
// after it). Returns the number of disagreements (0 or 1).
struct RandomRun {
  int ops = 0, refused = 0, dma_checks = 0, dma_wrong = 0;
  std::string first_difference;
};

RandomRun random_ops(Pair& p, Edu& edu, const Buffer& pool, const std::string& pool_name, Range aperture,
                     std::uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  auto below = [&](u64 k) { return k ? rng() % k : 0; };
  const u64 pool_pages = pool.len / ioas::kPage;
  RandomRun out;
  auto areas = [&] {
    auto snap = p.engine.snapshot(p.engine_ioas);
    return snap ? snap->areas : std::vector<ioas::AreaInfo>{};
  };
  for (int i = 0; i < n && out.first_difference.empty(); ++i) {
    const auto current = areas();
    const u64 pages = 1 + below(16);
    u64 len = pages * ioas::kPage;
    if (below(16) == 0) len -= 0x800;  // not a multiple of the alignment
    const ioas::AreaInfo* some = current.empty() ? nullptr : &current[below(current.size())];
    // A fixed IOVA near an edge, or anywhere in the low GiB.
    auto fixed_iova = [&]() -> u64 {
      switch (below(7)) {
        case 0: return kMsiWindow.start - len + ioas::kPage * below(2);
        case 1: return kMsiWindow.last + 1 - ioas::kPage * below(2);
        case 2: return aperture.last + 1 - len + ioas::kPage * below(2);
        case 3: return some ? some->iova.start + ioas::kPage * below(2) : 0;
        case 4: return 0;
        default: return ioas::kPage * below(u64{1} << 18);
      }
    };
    const std::optional<u64> iova = below(2) ? std::optional<u64>(fixed_iova()) : std::nullopt;
    const unsigned kind = static_cast<unsigned>(below(20));
    std::string what;
    if (kind < 9) {  // map
      const u64 offset = ioas::kPage * below(pool_pages - pages + 1);
      const Prot prot = below(5) ? Prot::kReadWrite : Prot::kRead;
      p.map(iova, pool_name, pool, offset, len, prot);
      what = "map " + (iova ? hex(*iova) : std::string("auto")) + "+" + hex(len) + " " + ioas::to_string(prot) +
             " of pool+" + hex(offset);
    } else if (kind < 12) {  // copy
      const u64 src = some ? some->iova.start : ioas::kPage * below(u64{1} << 18);
      const u64 clen = some && below(2) ? some->iova.length() : len;
      // The copy asks the source's rights or read-write (EPERM on both
      // sides when the source's pages are read-only).
      const Prot prot = some && below(2) ? some->prot : Prot::kReadWrite;
      p.copy(src, clen, iova, prot);
      what = "copy " + hex(src) + "+" + hex(clen) + " " + ioas::to_string(prot) + " to " +
             (iova ? hex(*iova) : std::string("auto"));
    } else if (kind < 19) {  // unmap: an area, part of one, or a random range
      u64 start = ioas::kPage * below(u64{1} << 18), ulen = len;
      if (some && below(4)) {
        start = some->iova.start;
        ulen = below(4) ? some->iova.length() : some->iova.length() / 2;
      }
      p.unmap(start, ulen);
      what = "unmap " + hex(start) + "+" + hex(ulen);
    } else {
      p.unmap_all();
      what = "unmap all";
    }
    ++out.ops;
    if (!p.last_kernel) ++out.refused;
    std::string ranges;
    if (!p.agree() || (i % 10 == 9 && !p.ranges_agree(&ranges))) {
      std::string held;  // the areas before the operation, for the reader
      for (const auto& a : current) held += " " + ioas::to_string(a.iova) + " " + ioas::to_string(a.prot);
      out.first_difference = "op " + std::to_string(i) + " (" + what + "): " +
                             (p.agree() ? "IOVA ranges: " + ranges : p.answers()) + "; areas before:" + held;
      break;
    }
    // A DMA through an area a map or copy just made.
    if (kind < 12 && p.last_kernel && out.dma_checks < 12 && below(3) == 0) {
      const u64 at = *p.last_kernel;
      auto snap = areas();
      const ioas::AreaInfo* made = nullptr;
      for (const auto& a : snap)
        if (a.iova.start == at) made = &a;
      if (!made || made->prot != Prot::kReadWrite || made->iova.length() < 2 * ioas::kPage) continue;
      constexpr u64 kN = 64;
      const u64 from = at + 0x100, to = at + made->iova.length() - ioas::kPage + 0x200;
      auto src = p.engine.uva(p.engine_ioas, from);
      auto dst = p.engine.uva(p.engine_ioas, to);
      ++out.dma_checks;
      if (!src || !dst) {
        ++out.dma_wrong;
        continue;
      }
      unsigned char want[kN];
      std::memcpy(want, reinterpret_cast<const void*>(*src), kN);
      const bool done = edu.ram_to_edu(from, 0x800, kN) && edu.edu_to_ram(0x800, to, kN);
      if (!done || std::memcmp(reinterpret_cast<const void*>(*dst), want, kN) != 0) ++out.dma_wrong;
    }
  }
  return out;
}

int run(std::uint64_t seed, int ops) {
  Checks c("IOAS-VTD-TEST");

  // ---- edu on vfio-pci, its cdev bound to /dev/iommu ----
  const auto bdf = find_edu();
  if (!bdf) c.fatal("device", "no PCI device 1234:11e8 (edu) in /sys/bus/pci/devices");
  const auto cdev = bind_vfio_pci(*bdf);
  auto group = vfio::iommu_group_of(*bdf);
  if (!cdev || !group)
    c.fatal("device", "edu at " + *bdf + ": driver " + driver_of(*bdf) + ", no vfio-dev cdev or no IOMMU group");
  c.check(driver_of(*bdf) == "vfio-pci", "device",
          "edu at " + *bdf + ", driver " + driver_of(*bdf) + ", cdev /dev/vfio/devices/" + *cdev + ", IOMMU group " +
              std::to_string(*group));
  auto opened = Iommufd::open();
  if (!opened) c.fatal("iommufd", err_text(opened.error()));
  Iommufd iommufd = std::move(opened).value();
  const int cfd = ::open(("/dev/vfio/devices/" + *cdev).c_str(), O_RDWR | O_CLOEXEC);
  if (cfd < 0) c.fatal("bind", "open /dev/vfio/devices/" + *cdev + ": " + std::strerror(errno));
  vfio::Device dev(vfio::Fd(cfd), *bdf);
  VfioBindIommufd bind{};
  bind.iommufd = iommufd.fd();
  if (int e = vfio_call(dev.fd(), kVfioBindIommufd, bind))
    c.fatal("bind", std::string("VFIO_DEVICE_BIND_IOMMUFD: ") + std::strerror(e));
  const u32 dev_id = bind.out_devid;
  c.check(true, "bind", "VFIO_DEVICE_BIND_IOMMUFD: device id " + std::to_string(dev_id));

  // ---- the IOMMU behind it ----
  auto hw = iommufd.hw_info(dev_id);
  if (!hw) c.fatal("hw-info", err_text(hw.error()));
  const VtdCaps caps(hw->second.cap_reg);
  const bool dirty_cap = hw->first.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING;
  c.check(hw->first.out_data_type == IOMMU_HW_INFO_TYPE_INTEL_VTD && caps.width() >= 39, "hw-info",
          "type " + std::to_string(hw->first.out_data_type) + " (1 = Intel VT-d), cap_reg " + hex(caps.cap) +
              " ecap_reg " + hex(hw->second.ecap_reg) + ": MGAW " + std::to_string(caps.mgaw + 1) + ", SAGAW " +
              hex(caps.sagaw) + ", SLLPS " + hex(caps.sllps) + " -> domain width " + std::to_string(caps.width()) +
              " bits, pgsizes " + vfio::pgsizes_to_string(caps.pgsizes()) + "; dirty tracking " +
              (dirty_cap ? "yes" : "no"));

  const std::vector<ioas::ResvRegion> regions = ioas::vm::check_reserved_regions(c, *group);

  // ---- an IOAS on both sides; edu attached ----
  auto kio = iommufd.ioas_alloc();
  if (!kio) c.fatal("ioas", err_text(kio.error()));
  auto engine = ioas::make_engine();
  const std::string io = "vtd";
  if (auto s = engine->create_ioas(io, {.mode = ioas::IoasMode::kKernel}); !s) c.fatal("ioas", err_text(s.error()));
  Pair both_sides{iommufd, *kio, *engine, io};
  std::string text;
  bool agreed = both_sides.ranges_agree(&text);
  c.check(agreed, "ranges-unattached", text);

  VfioAttachPt attach{};
  attach.pt_id = *kio;
  if (int e = vfio_call(dev.fd(), kVfioAttachPt, attach))
    c.fatal("attach", std::string("VFIO_DEVICE_ATTACH_IOMMUFD_PT: ") + std::strerror(e));
  const u32 auto_hwpt = attach.pt_id;
  const ioas::AttachArgs args{.dev = "edu", .dom = "vtd", .fmt = ioas::Format::kX86_64, .aperture = caps.aperture(),
                              .pgsize_bitmap = caps.pgsizes(), .resv = regions,
                              .pgsizes_not_pow2 = {}};
  if (auto s = engine->attach(io, args); !s) c.fatal("attach", "engine: " + err_text(s.error()));
  c.check(true, "attach",
          "VFIO_DEVICE_ATTACH_IOMMUFD_PT to IOAS " + std::to_string(*kio) + ": auto domain HWPT " +
              std::to_string(auto_hwpt) + "; engine: x86-64, aperture " + ioas::to_string(caps.aperture()));

  auto kranges = iommufd.ranges(*kio);
  if (!kranges) c.fatal("ranges", err_text(kranges.error()));
  agreed = both_sides.ranges_agree(&text);
  c.check(agreed, "ranges-attached", text);
  {
    // Linux's rule (iopt_table_enforce_dev_resv_regions and the domain's
    // aperture) applied to what sysfs and the capability register say.
    const auto predicted = ioas::resv::iommufd_valid_ranges(caps.aperture(), regions);
    bool msi_out = true;
    for (const Range& r : kranges->ranges)
      if (r.overlaps(kMsiWindow)) msi_out = false;
    c.check(predicted == kranges->ranges && msi_out, "ranges-rule",
            "aperture " + ioas::to_string(caps.aperture()) + " minus reserved_regions = " +
                ioas::to_string(predicted) + "; the MSI window " + (msi_out ? "excluded" : "NOT EXCLUDED"));
  }
  {
    // The x86-64 format's default aperture (48 bits, four levels) is the
    // VT-d domain's only when the IOMMU is 48 bits wide.
    auto e2 = ioas::make_engine();
    ioas::AttachArgs dflt = args;
    dflt.aperture.reset();
    dflt.pgsize_bitmap.reset();
    const bool made = e2->create_ioas("d", {.mode = ioas::IoasMode::kKernel}).ok() && e2->attach("d", dflt).ok();
    auto r2 = e2->ranges("d");
    const bool equal = made && r2 && r2->ranges == kranges->ranges;
    const bool wide48 = caps.width() == 48;
    c.check(made && r2 && equal == wide48, "x86-64-default-aperture",
            "engine with the format's default aperture " + ioas::to_string(ioas::default_aperture(ioas::Format::kX86_64)) +
                ": " + (r2 ? ioas::to_string(r2->ranges) : std::string("?")) + (equal ? " = " : " differs from ") +
                "the kernel's (VT-d width " + std::to_string(caps.width()) + " bits)");
  }

  // ---- config space, BAR0 ----
  auto cmd = dev.config_read16(PCI_COMMAND);
  if (!cmd) c.fatal("config", err_text(cmd.error()));
  if (auto s = dev.config_write16(PCI_COMMAND, *cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER); !s)
    c.fatal("config", err_text(s.error()));
  Edu edu = open_edu(dev, c, "through the cdev: ");

  // ---- maps, asked of both ----
  constexpr u64 kLen = 64 << 10;
  constexpr u64 kFixed = 0x10000000;
  Buffer a(kLen), b(kLen), top(ioas::kPage);
  if (!a.p || !b.p || !top.p) c.fatal("buffers", std::string("mmap: ") + std::strerror(errno));
  bool added = engine->add_memory({"a", a.va(), kLen, a.va(), true}).ok();
  added &= engine->add_memory({"b", b.va(), kLen, b.va(), true}).ok();
  added &= engine->add_memory({"top", top.va(), ioas::kPage, top.va(), true}).ok();
  if (!added) c.fatal("map", "engine add_memory failed");

  both_sides.map(std::nullopt, "a", a, 0, kLen, Prot::kReadWrite);
  const auto ia = both_sides.last_kernel;
  c.check(ia && both_sides.agree(), "map-auto", "A, 64 KiB, automatic: " + both_sides.answers());
  both_sides.map(kFixed, "b", b, 0, kLen, Prot::kReadWrite);
  const auto ib = both_sides.last_kernel;
  c.check(ib && both_sides.agree(), "map-fixed", "B at " + hex(kFixed) + ": " + both_sides.answers());
  if (!ia || !ib || !both_sides.agree()) c.fatal("map", "cannot go on without A and B mapped alike");
  const u64 last_page = caps.aperture().last - (ioas::kPage - 1);
  both_sides.map(last_page, "top", top, 0, ioas::kPage, Prot::kReadWrite);
  const auto it = both_sides.last_kernel;
  c.check(it && both_sides.agree(), "map-aperture-end", "the aperture's last page: " + both_sides.answers());
  both_sides.map(kMsiWindow.start, "a", a, 0, ioas::kPage, Prot::kReadWrite);
  c.check(!both_sides.last_kernel && both_sides.agree(), "map-msi-window-refused",
          "fixed at " + hex(kMsiWindow.start) + ": " + both_sides.answers());
  both_sides.map(caps.aperture().last + 1, "a", a, 0, ioas::kPage, Prot::kReadWrite);
  c.check(!both_sides.last_kernel && both_sides.agree(), "map-above-aperture-refused",
          "fixed at " + hex(caps.aperture().last + 1) + ": " + both_sides.answers());
  both_sides.copy(*ia, kLen, std::nullopt);
  const auto ic = both_sides.last_kernel;
  c.check(ic && both_sides.agree(), "copy-auto", "A's area copied, automatic: " + both_sides.answers());
  agreed = both_sides.ranges_agree(&text);
  c.check(agreed, "ranges-with-areas", text);
  {
    // A read-write copy of a read-only area: the kernel pinned its pages
    // read-only and refuses to map them writable (iopt_map_pages: EPERM). The
    // engine in kernel mode does not know this rule yet: its answer is shown,
    // and its extra area taken out again so both sides stay equal.
    both_sides.map(std::nullopt, "b", b, 0, kLen, Prot::kRead);
    const auto ir = both_sides.last_kernel;
    const bool mapped = ir && both_sides.agree();
    if (mapped) both_sides.copy(*ir, kLen, std::nullopt, Prot::kReadWrite);
    const bool kernel_eperm = mapped && both_sides.last_kernel.code() == EPERM;
    const std::string copied = both_sides.answers();
    if (mapped && both_sides.last_engine) (void)engine->unmap(io, *both_sides.last_engine, kLen);
    if (mapped) both_sides.unmap(*ir, kLen);
    c.check(kernel_eperm && both_sides.agree(), "copy-rw-of-read-only",
            "copy rw of the read-only area " +
                (ir ? hex(*ir) : std::string("?")) + ": " + copied);
  }

  // ---- edu's DMA through the kernel's VT-d mappings ----
  {
    constexpr u64 kN = 256, kOffA = 0x2040, kOffB = 0x3f80;  // B: across its page 3/page 4 boundary
    for (u64 i = 0; i < kLen; ++i) a.p[i] = static_cast<unsigned char>(i * 13 + 1);
    std::memset(b.p, 0xee, kLen);
    const bool done = edu.ram_to_edu(*ia + kOffA, 0, kN) && edu.edu_to_ram(0, kFixed + kOffB, kN);
    auto land = engine->uva(io, kFixed + kOffB);
    auto walk = engine->dma("vtd", ioas::DmaDir::kWrite, kFixed + kOffB, kN);
    const bool ok = done && land && *land == b.va() + kOffB && std::memcmp(b.p + kOffB, a.p + kOffA, kN) == 0 &&
                    all_equal(b.p, kOffB, 0xee) && all_equal(b.p + kOffB + kN, kLen - kOffB - kN, 0xee) && walk &&
                    !walk->faulted;
    c.check(ok, "dma-roundtrip",
            std::string(done ? "" : "edu DMA timed out; ") + "IOVA " + hex(*ia + kOffA) + " -> edu -> IOVA " +
                hex(kFixed + kOffB) + ": " + (ok ? "the bytes at the engine's uva, the rest of B untouched" : "WRONG"));
  }
  if (ic) {
    // A write through the copy lands in A's memory, where the engine says.
    constexpr u64 kN = 256, kOff = 0x5000;
    for (u64 i = 0; i < kLen; ++i) b.p[i] = static_cast<unsigned char>(0x5a ^ i);
    std::memset(a.p, 0, kLen);
    const bool done = edu.ram_to_edu(kFixed, 0, kN) && edu.edu_to_ram(0, *ic + kOff, kN);
    auto land = engine->uva(io, *ic + kOff);
    const bool ok = done && land && *land == a.va() + kOff && std::memcmp(a.p + kOff, b.p, kN) == 0 &&
                    all_equal(a.p, kOff, 0) && all_equal(a.p + kOff + kN, kLen - kOff - kN, 0);
    c.check(ok, "dma-through-copy",
            "edu -> IOVA " + hex(*ic + kOff) + " (the copy of A): " + (ok ? "landed in A at the engine's uva" : "WRONG"));
  }
  if (it) {
    constexpr u64 kN = 256;
    std::memset(top.p, 0, ioas::kPage);
    const u64 at = last_page + ioas::kPage - 2 * kN;
    const bool done = edu.ram_to_edu(kFixed, 0, kN) && edu.edu_to_ram(0, at, kN);
    auto land = engine->uva(io, at);
    const bool ok = done && land && *land == top.va() + ioas::kPage - 2 * kN &&
                    std::memcmp(top.p + ioas::kPage - 2 * kN, b.p, kN) == 0;
    c.check(ok, "dma-aperture-end",
            "edu -> IOVA " + hex(at) + ": " + (ok ? "landed in the last page's buffer" : "WRONG"));
  }

  // ---- unmaps, asked of both ----
  both_sides.unmap(*ia, kLen / 2);
  c.check(!both_sides.last_kernel && both_sides.agree(), "unmap-partial-refused",
          "half of A's area: " + both_sides.answers());
  both_sides.unmap(kFixed, kLen);
  c.check(both_sides.last_kernel && *both_sides.last_kernel == kLen && both_sides.agree(), "unmap-fixed",
          "B: " + both_sides.answers());
  {
    std::memset(b.p, 0x77, kLen);
    for (u64 i = 0; i < kLen; ++i) a.p[i] = static_cast<unsigned char>(i * 7 + 3);
    const int faults = dmar_faults_at(kFixed + 0x1000);
    const bool blocked = write_blocked(edu, *ia, a.p, kFixed + 0x1000, b, 0x77);
    const bool logged = wait_dmar_fault(kFixed + 0x1000, faults);
    auto walk = engine->dma("vtd", ioas::DmaDir::kWrite, kFixed + 0x1000, 16);
    const bool predicted = walk && walk->faulted && walk->fault_iova == kFixed + 0x1000;
    c.check(blocked && logged && predicted, "stale-iova-blocked",
            "edu -> stale IOVA " + hex(kFixed + 0x1000) + ": B " + (blocked ? "unchanged" : "WRITTEN") +
                ", DMAR fault " + (logged ? "logged" : "NOT LOGGED") + ", the engine's walk " +
                (predicted ? "faults" : "DOES NOT FAULT"));
  }
  both_sides.unmap_all();
  c.check(both_sides.agree(), "unmap-all", both_sides.answers());

  // ---- random operations on both sides ----
  {
    constexpr u64 kPool = 2 << 20;
    Buffer pool(kPool);
    if (!pool.p) c.fatal("random-ops", std::string("mmap: ") + std::strerror(errno));
    for (u64 i = 0; i < kPool; ++i) pool.p[i] = static_cast<unsigned char>((i >> 3) * 29 + i);
    if (!engine->add_memory({"pool", pool.va(), kPool, pool.va(), true}).ok()) c.fatal("random-ops", "add_memory");
    const RandomRun r = random_ops(both_sides, edu, pool, "pool", caps.aperture(), seed, ops);
    c.check(r.first_difference.empty(), "random-ops",
            std::to_string(r.ops) + " operations (seed " + std::to_string(seed) + "), " + std::to_string(r.refused) +
                " refused by both" + (r.first_difference.empty() ? ", every answer equal" : "; " + r.first_difference));
    c.check(r.dma_wrong == 0 && r.dma_checks > 0, "random-ops-dma",
            std::to_string(r.dma_checks) + " edu DMAs through areas the random run made, " +
                std::to_string(r.dma_wrong) + " landed elsewhere than the engine's uva");
    both_sides.unmap_all();
    c.check(both_sides.agree(), "random-ops-unmap-all", both_sides.answers());
    (void)engine->remove_memory("pool");
  }

  // ---- detach; an explicit paging HWPT ----
  VfioDetachPt detach{};
  const int de = vfio_call(dev.fd(), kVfioDetachPt, detach);
  const auto ed = engine->detach("edu");
  agreed = both_sides.ranges_agree(&text);
  c.check(de == 0 && ed.ok() && agreed, "detach",
          std::string("VFIO_DEVICE_DETACH_IOMMUFD_PT: ") + (de ? std::strerror(de) : "ok") + "; " + text);
  auto hwpt = iommufd.hwpt_alloc(dev_id, *kio, 0);
  if (hwpt) {
    VfioAttachPt to_hwpt{};
    to_hwpt.pt_id = *hwpt;
    const int ae = vfio_call(dev.fd(), kVfioAttachPt, to_hwpt);
    const bool re = engine->attach(io, args).ok();
    agreed = both_sides.ranges_agree(&text);
    c.check(ae == 0 && re && agreed, "hwpt-paging",
            "IOMMU_HWPT_ALLOC on IOAS " + std::to_string(*kio) + " -> HWPT " + std::to_string(*hwpt) +
                ", device attached: " + (ae ? std::strerror(ae) : "ok") + "; " + text);
    // Maps after the attach reach the explicit domain too.
    constexpr u64 kN = 256;
    both_sides.map(kFixed, "b", b, 0, kLen, Prot::kReadWrite);
    const auto im = both_sides.last_kernel;
    std::memset(a.p, 0, kLen);
    for (u64 i = 0; i < kLen; ++i) b.p[i] = static_cast<unsigned char>(i ^ 0xa5);
    const bool mapped = im && both_sides.agree();
    both_sides.map(std::nullopt, "a", a, 0, kLen, Prot::kReadWrite);
    const auto ia2 = both_sides.last_kernel;
    const bool done = mapped && ia2 && both_sides.agree() && edu.ram_to_edu(kFixed + 0x100, 0, kN) &&
                      edu.edu_to_ram(0, *ia2 + 0x300, kN);
    const bool ok = done && std::memcmp(a.p + 0x300, b.p + 0x100, kN) == 0;
    c.check(ok, "hwpt-paging-dma",
            "maps on both (" + both_sides.answers() + "), edu B -> A through the explicit HWPT: " +
                (ok ? "bytes landed" : "WRONG"));
    both_sides.unmap_all();
    c.check(both_sides.agree(), "hwpt-unmap-all", both_sides.answers());
    vfio_call(dev.fd(), kVfioDetachPt, detach);
    (void)engine->detach("edu");
    (void)iommufd.destroy(*hwpt);
  } else {
    c.check(false, "hwpt-paging", err_text(hwpt.error()));
  }
  {
    auto dirty = iommufd.hwpt_alloc(dev_id, *kio, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    const bool consistent = dirty_cap ? dirty.ok() : dirty.code() == EOPNOTSUPP;
    c.check(consistent, "hwpt-dirty-tracking",
            std::string("hardware info says dirty tracking ") + (dirty_cap ? "yes" : "no") +
                "; IOMMU_HWPT_ALLOC with DIRTY_TRACKING: " +
                (dirty ? "HWPT " + std::to_string(*dirty) : err_text(dirty.error())));
    if (dirty) (void)iommufd.destroy(*dirty);
  }
  return c.finish();
}

}  // namespace

// Usage: ioas_vtd_iommufd_test [SEED [OPS]]  (the random run's; default 1 and 300)
int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::uint64_t seed = argc > 1 ? std::strtoull(argv[1], nullptr, 0) : 1;
  const int ops = argc > 2 ? std::atoi(argv[2]) : 300;
  std::printf("IOAS-VTD-TEST: start (seed %llu, %d random operations)\n", static_cast<unsigned long long>(seed), ops);
  return run(seed, ops);
}
