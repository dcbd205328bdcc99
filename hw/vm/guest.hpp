// hw/vm/guest.hpp: what the in-guest programs of hw/vm share: the check
// lines they print, QEMU's `edu` PCI device (finding it in sysfs, its BAR0
// registers, its DMA engine), page-aligned buffers, the guest kernel's
// DMAR fault log, the group's reserved regions and the probe of a blocked
// device write.
//
// Every check prints one "ok"/"FAIL" line; the last line is the summary the
// host script looks for: "<TAG>: PASS n/n" or "<TAG>: FAIL k/n".
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ioas/core/text.hpp"
#include "ioas/range.hpp"
#include "vfio.hpp"

namespace ioas::vm {

inline constexpr std::uint16_t kEduVendor = 0x1234;
inline constexpr std::uint16_t kEduDevice = 0x11e8;
// The Intel IOMMU's interrupt window (IOAPIC_RANGE_START..END of
// drivers/iommu/intel/iommu.c), a reserved region of type msi for every device.
inline constexpr Range kMsiWindow{0xfee00000, 0xfeefffff};

// edu's BAR0 registers (QEMU docs/specs/edu.rst).
inline constexpr u64 kEduId = 0x00;
inline constexpr u64 kEduLive = 0x04;
inline constexpr u64 kEduDmaSrc = 0x80;
inline constexpr u64 kEduDmaDst = 0x88;
inline constexpr u64 kEduDmaCount = 0x90;
inline constexpr u64 kEduDmaCmd = 0x98;
inline constexpr u64 kEduDmaRun = 0x1;
inline constexpr u64 kEduDmaToRam = 0x2;  // direction: 0 RAM -> edu, 1 edu -> RAM
// Its 4 KiB DMA buffer, in the device's own address space. QEMU 7.2 aborts
// on a transfer that touches the buffer's last byte, so stay below it.
inline constexpr u64 kEduBuf = 0x40000;

using ioas::hex;

class Checks {
 public:
  explicit Checks(std::string tag) : tag_(std::move(tag)) {}
  bool check(bool ok, const std::string& name, const std::string& detail) {
    ++total_;
    if (ok) ++passed_;
    std::printf("%-4s %-24s %s\n", ok ? "ok" : "FAIL", name.c_str(), detail.c_str());
    std::fflush(stdout);
    return ok;
  }
  // A step the rest depends on failed: report it and stop.
  [[noreturn]] void fatal(const std::string& name, const std::string& detail) {
    check(false, name, detail);
    finish();
    std::exit(1);
  }
  int finish() {
    const bool pass = passed_ == total_ && total_ > 0;
    std::printf("%s: %s %d/%d\n", tag_.c_str(), pass ? "PASS" : "FAIL", passed_, total_);
    std::fflush(stdout);
    return pass ? 0 : 1;
  }

 private:
  std::string tag_;
  int total_ = 0;
  int passed_ = 0;
};

// A sysfs-style file's text without its trailing newline and blanks.
inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The first PCI device with edu's IDs: its address ("0000:00:03.0").
inline std::optional<std::string> find_edu() {
  DIR* d = ::opendir("/sys/bus/pci/devices");
  if (!d) return std::nullopt;
  std::optional<std::string> found;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name[0] == '.') continue;
    const std::string base = "/sys/bus/pci/devices/" + name;
    if (std::strtoul(read_text(base + "/vendor").c_str(), nullptr, 16) == kEduVendor &&
        std::strtoul(read_text(base + "/device").c_str(), nullptr, 16) == kEduDevice) {
      found = name;
      break;
    }
  }
  ::closedir(d);
  return found;
}

inline std::string driver_of(const std::string& bdf) {
  char target[4096];
  const std::string link = "/sys/bus/pci/devices/" + bdf + "/driver";
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n < 0) return "(none)";
  target[n] = '\0';
  const char* slash = std::strrchr(target, '/');
  return slash ? slash + 1 : target;
}

// The guest kernel's log so far (/dev/kmsg, every record), one string.
inline std::string kernel_log() {
  const int fd = ::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char rec[8192];
  for (;;) {
    const ssize_t n = ::read(fd, rec, sizeof rec);
    if (n < 0 && errno == EPIPE) continue;  // a record was overwritten: go on
    if (n <= 0) break;
    out.append(rec, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

// Lines of the kernel log mentioning a DMAR fault at the page of `iova`.
// The count grows by one per faulting DMA (the log is rate limited, so a
// check waits for the new line a little).
inline int dmar_faults_at(u64 iova) {
  const std::string log = kernel_log();
  const std::string needle = "fault addr " + hex(iova & ~u64{0xfff});
  int n = 0;
  for (std::size_t pos = 0; (pos = log.find(needle, pos)) != std::string::npos; pos += needle.size()) ++n;
  return n;
}

inline bool wait_dmar_fault(u64 iova, int before) {
  for (int i = 0; i < 50; ++i) {
    if (dmar_faults_at(iova) > before) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

class Edu {
 public:
  explicit Edu(vfio::MappedRegion bar) : bar_(std::move(bar)) {}
  std::uint32_t id() const { return bar_.read32(kEduId); }
  std::uint32_t liveness(std::uint32_t v) {
    bar_.write32(kEduLive, v);
    return bar_.read32(kEduLive);
  }
  // One DMA; false when the device does not finish within 10 s.
  bool dma(u64 src, u64 dst, u64 count, bool to_ram) {
    bar_.write64(kEduDmaSrc, src);
    bar_.write64(kEduDmaDst, dst);
    bar_.write64(kEduDmaCount, count);
    bar_.write64(kEduDmaCmd, kEduDmaRun | (to_ram ? kEduDmaToRam : 0));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (bar_.read64(kEduDmaCmd) & kEduDmaRun) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  bool ram_to_edu(u64 iova, u64 edu_off, u64 count) { return dma(iova, kEduBuf + edu_off, count, false); }
  bool edu_to_ram(u64 edu_off, u64 iova, u64 count) { return dma(kEduBuf + edu_off, iova, count, true); }

 private:
  vfio::MappedRegion bar_;
};

// The reserved regions sysfs lists for `group`, checked to hold the msi
// window ("reserved-regions"); stops the program when they cannot be read.
inline std::vector<ResvRegion> check_reserved_regions(Checks& c, int group) {
  auto regions = vfio::read_reserved_regions(group);
  if (!regions) c.fatal("reserved-regions", ioas::to_string(regions.error()));
  std::string listed;
  bool has_msi = false;
  for (const auto& r : *regions) {
    listed += (listed.empty() ? "" : ", ") + ioas::to_string(r.range) + " " + ioas::to_string(r.type);
    if (r.type == ResvType::kMsi && r.range == kMsiWindow) has_msi = true;
  }
  c.check(has_msi, "reserved-regions", "group " + std::to_string(group) + ": " + listed);
  return std::move(regions).value();
}

// edu's BAR0 through `dev`, checked: its id register and its liveness
// register (which answers the bitwise NOT of what was written). A BAR that
// cannot be mapped ends the run; `via` prefixes the check's detail.
inline Edu open_edu(vfio::Device& dev, Checks& c, const std::string& via) {
  auto bar = dev.map_region(VFIO_PCI_BAR0_REGION_INDEX);
  if (!bar) c.fatal("edu-bar0", ioas::to_string(bar.error()));
  Edu edu(std::move(bar).value());
  const std::uint32_t id = edu.id();
  const std::uint32_t live = edu.liveness(0x12345678);
  c.check((id & 0xff) == 0xed && live == ~0x12345678u, "edu-bar0",
          via + "id " + hex(id) + ", liveness ~0x12345678 = " + hex(live));
  return edu;
}

// Page-aligned anonymous memory that unmaps itself.
struct Buffer {
  unsigned char* p = nullptr;
  u64 len = 0;
  explicit Buffer(u64 n) : len(n) {
    void* m = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (m != MAP_FAILED) p = static_cast<unsigned char*>(m);
  }
  ~Buffer() {
    if (p) ::munmap(p, len);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  u64 va() const { return reinterpret_cast<u64>(p); }
};

inline bool all_equal(const unsigned char* p, u64 n, unsigned char v) {
  for (u64 i = 0; i < n; ++i)
    if (p[i] != v) return false;
  return true;
}

// A write the device must not land: edu reads 256 bytes at `from` (bytes
// that are not all `fill`) and writes them to `iova`; `watch`, filled with
// `fill`, must stay so. Only the memory tells: the guest's DMAR fault log is
// rate limited (about three faults per 5 s are logged).
inline bool write_blocked(Edu& edu, u64 from, const unsigned char* from_bytes, u64 iova, const Buffer& watch,
                          unsigned char fill) {
  constexpr u64 kN = 256;
  if (all_equal(from_bytes, kN, fill)) return false;  // the probe could not show a landed write
  const bool done = edu.ram_to_edu(from, 0x400, kN) && edu.edu_to_ram(0x400, iova, kN);
  return done && all_equal(watch.p, watch.len, fill);
}

}  // namespace ioas::vm
