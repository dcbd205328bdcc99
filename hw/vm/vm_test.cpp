// hw/vm/vm_test.cpp: the in-guest proof of issue 8. Runs as the only program
// of a QEMU guest (hw/vm/run-vm-test builds the initramfs and boots it) whose
// emulated Intel IOMMU translates the DMA of QEMU's `edu` PCI device, bound
// to vfio-pci.
//
// It drives the real kernel (VFIO type1 over intel-iommu) and the ioas impl
// engine side by side: the engine decides (ranges, IOVAs, refusals), the
// kernel carries out exactly what the engine decided, and a real device's
// DMA shows whether the two agree:
//   - the kernel's valid IOVA ranges and page sizes, the group's
//     reserved_regions (the MSI window) and the engine's `ranges` after an
//     attach built from them (hw/vfio attach_args_from) are the same ranges;
//   - buffers mapped at engine-chosen IOVAs are where the device's DMA lands
//     (edu copies IOVA A -> its buffer -> IOVA B; the bytes arrive at the
//     user address the engine's uva() names);
//   - an unmapped (stale) IOVA and a read-only mapping stop device writes,
//     as the engine's own software walk predicts, and the guest's IOMMU
//     driver logs the DMAR fault;
//   - maps the engine refuses (the MSI window, above the aperture) are
//     refused before the kernel is asked; asked directly, the kernel refuses
//     them too.
// Every check prints one "ok"/"FAIL" line; the last line is the summary the
// host script looks for: "IOAS-VM-TEST: PASS n/n" or "IOAS-VM-TEST: FAIL k/n".
#include <dirent.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ioas/impl.hpp"
#include "reserved_regions.hpp"
#include "vfio.hpp"

namespace {

using ioas::Prot;
using ioas::Range;
using ioas::u64;
namespace vfio = ioas::vfio;

constexpr std::uint16_t kEduVendor = 0x1234;
constexpr std::uint16_t kEduDevice = 0x11e8;
constexpr Range kMsiWindow{0xfee00000, 0xfeefffff};

// edu's BAR0 registers (QEMU docs/specs/edu.rst).
constexpr u64 kEduId = 0x00;
constexpr u64 kEduLive = 0x04;
constexpr u64 kEduDmaSrc = 0x80;
constexpr u64 kEduDmaDst = 0x88;
constexpr u64 kEduDmaCount = 0x90;
constexpr u64 kEduDmaCmd = 0x98;
constexpr u64 kEduDmaRun = 0x1;
constexpr u64 kEduDmaToRam = 0x2;  // direction: 0 RAM -> edu, 1 edu -> RAM
// Its 4 KiB DMA buffer, in the device's own address space. QEMU 7.2 aborts
// on a transfer that touches the buffer's last byte, so stay below it.
constexpr u64 kEduBuf = 0x40000;

std::string hex(u64 v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%" PRIx64, v);
  return b;
}

class Checks {
 public:
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
    std::printf("IOAS-VM-TEST: %s %d/%d\n", passed_ == total_ && total_ > 0 ? "PASS" : "FAIL", passed_, total_);
    std::fflush(stdout);
    return passed_ == total_ && total_ > 0 ? 0 : 1;
  }

 private:
  int total_ = 0;
  int passed_ = 0;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The first PCI device with edu's IDs: its address ("0000:00:03.0").
std::optional<std::string> find_edu() {
  DIR* d = ::opendir("/sys/bus/pci/devices");
  if (!d) return std::nullopt;
  std::optional<std::string> found;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name[0] == '.') continue;
    const std::string base = "/sys/bus/pci/devices/" + name;
    if (std::strtoul(read_file(base + "/vendor").c_str(), nullptr, 16) == kEduVendor &&
        std::strtoul(read_file(base + "/device").c_str(), nullptr, 16) == kEduDevice) {
      found = name;
      break;
    }
  }
  ::closedir(d);
  return found;
}

std::string driver_of(const std::string& bdf) {
  char target[4096];
  const std::string link = "/sys/bus/pci/devices/" + bdf + "/driver";
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n < 0) return "(none)";
  target[n] = '\0';
  const char* slash = std::strrchr(target, '/');
  return slash ? slash + 1 : target;
}

// The guest kernel's log so far (/dev/kmsg, every record), one string.
std::string kernel_log() {
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
int dmar_faults_at(u64 iova) {
  const std::string log = kernel_log();
  const std::string needle = "fault addr " + hex(iova & ~u64{0xfff});
  int n = 0;
  for (std::size_t pos = 0; (pos = log.find(needle, pos)) != std::string::npos; pos += needle.size()) ++n;
  return n;
}

bool wait_dmar_fault(u64 iova, int before) {
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
  // One DMA; false when the device does not finish within `timeout`.
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

// The kernel carries out what the engine decided: map in the engine first
// (it picks the IOVA or refuses), then VFIO_IOMMU_MAP_DMA of the user address
// the engine's userspace view gives for that IOVA; a kernel refusal undoes
// the engine's map. The kernel is never asked about a map the engine refused.
struct Mirror {
  ioas::Engine& engine;
  vfio::Container& container;
  std::string ioas_name;
  int kernel_calls = 0;

  ioas::Result<u64> map(const ioas::MapArgs& args) {
    auto iova = engine.map(ioas_name, args);
    if (!iova) return iova.error();
    auto uaddr = engine.uva(ioas_name, *iova);
    if (!uaddr) {
      (void)engine.unmap(ioas_name, *iova, args.len);
      return uaddr.error();
    }
    ++kernel_calls;
    if (auto s = container.map_dma(*iova, *uaddr, args.len, args.prot); !s) {
      (void)engine.unmap(ioas_name, *iova, args.len);
      return s.error();
    }
    return *iova;
  }
  // Returns {engine bytes, kernel bytes}.
  ioas::Result<std::pair<u64, u64>> unmap(u64 iova, u64 len) {
    auto e = engine.unmap(ioas_name, iova, len);
    if (!e) return e.error();
    ++kernel_calls;
    auto k = container.unmap_dma(iova, len);
    if (!k) return k.error();
    return std::pair<u64, u64>{*e, *k};
  }
};

std::string err_text(const ioas::Error& e) { return ioas::to_string(e); }

bool all_equal(const unsigned char* p, u64 n, unsigned char v) {
  for (u64 i = 0; i < n; ++i)
    if (p[i] != v) return false;
  return true;
}

int run() {
  Checks c;

  // ---- the device and its group ----
  const auto bdf = find_edu();
  if (!bdf) c.fatal("device", "no PCI device 1234:11e8 (edu) in /sys/bus/pci/devices");
  const std::string drv = driver_of(*bdf);
  auto group = vfio::iommu_group_of(*bdf);
  if (!group) c.fatal("device", "edu at " + *bdf + ": " + err_text(group.error()));
  c.check(drv == "vfio-pci", "device", "edu at " + *bdf + ", driver " + drv + ", IOMMU group " + std::to_string(*group));

  // ---- the container ----
  auto opened = vfio::Container::open();
  if (!opened) c.fatal("container", err_text(opened.error()));
  vfio::Container container = std::move(opened).value();
  if (auto s = container.add_group(*group); !s) c.fatal("container", err_text(s.error()));
  c.check(true, "container", "/dev/vfio/vfio API " + std::to_string(container.api_version()) +
                                 ", type1v2 set on group " + std::to_string(*group));

  auto info = container.info();
  if (!info) c.fatal("iommu-info", err_text(info.error()));
  c.check(info->has_iova_ranges && !info->iova_ranges.empty() && (info->pgsizes & ioas::k4K) && info->dma_avail,
          "iommu-info", vfio::to_string(*info) + " (argsz " + std::to_string(info->argsz) + ")");
  if (!info->has_iova_ranges || info->iova_ranges.empty()) c.fatal("iommu-info", "no IOVA ranges to go on");
  const std::vector<Range>& kranges = info->iova_ranges;
  const Range hull{kranges.front().start, kranges.back().last};

  // ---- reserved regions ----
  auto regions = vfio::read_reserved_regions(*group);
  if (!regions) c.fatal("reserved-regions", err_text(regions.error()));
  std::string listed;
  bool has_msi = false;
  for (const auto& r : *regions) {
    listed += (listed.empty() ? "" : ", ") + ioas::to_string(r.range) + " " + ioas::to_string(r.type);
    if (r.type == ioas::ResvType::kMsi && r.range == kMsiWindow) has_msi = true;
  }
  c.check(has_msi, "reserved-regions", "group " + std::to_string(*group) + ": " + listed);
  bool msi_excluded = true;
  for (const auto& r : kranges)
    if (r.overlaps(kMsiWindow)) msi_excluded = false;
  c.check(msi_excluded, "kernel-excludes-msi", "no valid range touches " + ioas::to_string(kMsiWindow));
  const std::vector<Range> predicted = ioas::resv::vfio_valid_ranges(hull, *regions);
  c.check(predicted == kranges, "vfio-exclude-rule",
          "aperture " + ioas::to_string(hull) + " minus reserved_regions = " + ioas::to_string(predicted) +
              (predicted == kranges ? " = the kernel's" : " but the kernel has " + ioas::to_string(kranges)));

  // ---- the engine, attached with the kernel's geometry ----
  auto args = vfio::attach_args_from(*info, "edu", "vtd", *regions);
  if (!args) c.fatal("attach-args", err_text(args.error()));
  auto engine = ioas::make_engine();
  const std::string io = "guest";
  if (auto s = engine->create_ioas(io, {.zero_page = ioas::ZeroPage::kAllowed}); !s)
    c.fatal("engine-attach", err_text(s.error()));
  if (auto s = engine->attach(io, *args); !s) c.fatal("engine-attach", err_text(s.error()));
  auto eranges = engine->ranges(io);
  c.check(eranges && eranges->ranges == kranges && eranges->alignment == ioas::k4K, "engine-ranges",
          eranges ? "zero-page=allowed: " + ioas::to_string(eranges->ranges) + " align " + hex(eranges->alignment)
                  : err_text(eranges.error()));
  {
    // The default policy keeps page 0 back: the same ranges less [0, 0xfff].
    auto e2 = ioas::make_engine();
    auto a2 = *args;
    std::vector<Range> want = kranges;
    if (!want.empty() && want.front().start == 0) {
      if (want.front().last <= ioas::kPage - 1) want.erase(want.begin());
      else want.front().start = ioas::kPage;
    }
    const bool ok = e2->create_ioas("default", {}).ok() && e2->attach("default", a2).ok();
    auto r2 = e2->ranges("default");
    c.check(ok && r2 && r2->ranges == want, "engine-ranges-zero-page",
            r2 ? "zero-page=reserved: " + ioas::to_string(r2->ranges) : err_text(r2.error()));
  }

  // ---- the device ----
  auto opened_dev = container.device(*group, *bdf);
  if (!opened_dev) c.fatal("config", err_text(opened_dev.error()));
  vfio::Device dev = std::move(opened_dev).value();
  auto vendor = dev.config_read16(PCI_VENDOR_ID);
  auto device = dev.config_read16(PCI_DEVICE_ID);
  auto cmd = dev.config_read16(PCI_COMMAND);
  if (!vendor || !device || !cmd) c.fatal("config", "config space read failed");
  const std::uint16_t want_cmd = *cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
  if (auto s = dev.config_write16(PCI_COMMAND, want_cmd); !s) c.fatal("config", err_text(s.error()));
  auto cmd2 = dev.config_read16(PCI_COMMAND);
  c.check(*vendor == kEduVendor && *device == kEduDevice && cmd2 && (*cmd2 & PCI_COMMAND_MASTER),
          "config", "vendor " + hex(*vendor) + " device " + hex(*device) + ", command " + hex(*cmd) + " -> " +
                        (cmd2 ? hex(*cmd2) : std::string("?")) + " (memory + bus master)");
  auto bar = dev.map_region(VFIO_PCI_BAR0_REGION_INDEX);
  if (!bar) c.fatal("edu-bar0", err_text(bar.error()));
  Edu edu(std::move(bar).value());
  const std::uint32_t id = edu.id();
  const std::uint32_t live = edu.liveness(0x12345678);
  c.check((id & 0xff) == 0xed && live == ~0x12345678u, "edu-bar0",
          "id " + hex(id) + ", liveness ~0x12345678 = " + hex(live));

  // ---- maps at engine-chosen IOVAs, carried out by the kernel ----
  constexpr u64 kLen = 64 << 10;
  Buffer a(kLen), b(kLen), ro(kLen);
  if (!a.p || !b.p || !ro.p) c.fatal("buffers", std::string("mmap: ") + std::strerror(errno));
  Mirror m{*engine, container, io};
  const u64 avail_before = info->dma_avail.value_or(0);
  bool added = true;
  added &= engine->add_memory({"a", a.va(), kLen, a.va(), true}).ok();
  added &= engine->add_memory({"b", b.va(), kLen, b.va(), true}).ok();
  added &= engine->add_memory({"ro", ro.va(), kLen, ro.va(), true}).ok();
  if (!added) c.fatal("map", "add_memory failed");
  auto ia = m.map({.iova = std::nullopt, .len = kLen, .source = "a", .prot = Prot::kReadWrite});
  auto ib = m.map({.iova = std::nullopt, .len = kLen, .source = "b", .prot = Prot::kReadWrite});
  auto ir = m.map({.iova = std::nullopt, .len = kLen, .source = "ro", .prot = Prot::kRead});
  if (!ia || !ib || !ir)
    c.fatal("map", "engine+kernel map failed: " + err_text((!ia ? ia : !ib ? ib : ir).error()));
  c.check(true, "map", "engine chose A " + hex(*ia) + ", B " + hex(*ib) + ", RO " + hex(*ir) +
                           " (64 KiB each); VFIO_IOMMU_MAP_DMA accepted all three");
  auto info2 = container.info();
  c.check(info2 && info2->dma_avail && avail_before - *info2->dma_avail == 3, "dma-avail",
          "kernel's DMA budget " + std::to_string(avail_before) + " -> " +
              (info2 && info2->dma_avail ? std::to_string(*info2->dma_avail) : std::string("?")) +
              " after the engine's 3 areas");

  // ---- one DMA round trip: A -> edu -> B, crossing a page of B ----
  constexpr u64 kN = 256;
  constexpr u64 kOffA = 0x3010;  // inside A
  constexpr u64 kOffB = 0x1f80;  // B: the 256 bytes straddle B's page 1/page 2 boundary
  for (u64 i = 0; i < kLen; ++i) a.p[i] = static_cast<unsigned char>(i * 7 + 3);
  std::memset(b.p, 0xee, kLen);
  bool done = edu.ram_to_edu(*ia + kOffA, 0, kN) && edu.edu_to_ram(0, *ib + kOffB, kN);
  auto land = engine->uva(io, *ib + kOffB);
  bool bytes_ok = done && land && *land == b.va() + kOffB && std::memcmp(b.p + kOffB, a.p + kOffA, kN) == 0 &&
                  all_equal(b.p, kOffB, 0xee) && all_equal(b.p + kOffB + kN, kLen - kOffB - kN, 0xee);
  c.check(bytes_ok, "dma-roundtrip",
          std::string(done ? "" : "edu DMA timed out; ") + "IOVA " + hex(*ia + kOffA) + " -> edu -> IOVA " +
              hex(*ib + kOffB) + " (" + std::to_string(kN) + " bytes): landed at engine uva " +
              (land ? hex(*land) : std::string("?")) + ", bytes " + (bytes_ok ? "match, rest of B untouched" : "WRONG"));
  {
    auto ta = engine->translate("vtd", *ib + kOffB);
    auto da = engine->dma("vtd", ioas::DmaDir::kWrite, *ib + kOffB, kN);
    c.check(ta && *ta && (*ta)->prot == Prot::kReadWrite && da && !da->faulted, "engine-predicts-write",
            "engine's walk of IOVA " + hex(*ib + kOffB) + ": rw, no fault (as the device saw)");
  }

  // ---- unmap B; the device writing to the stale IOVA must not land ----
  auto um = m.unmap(*ib, kLen);
  c.check(um && um->first == kLen && um->second == kLen, "unmap",
          um ? "B: engine unmapped " + hex(um->first) + ", kernel " + hex(um->second) : err_text(um.error()));
  std::memset(b.p, 0x5a, kLen);
  {
    const int faults_before = dmar_faults_at(*ib + kOffB);
    done = edu.ram_to_edu(*ia, 0x100, kN) && edu.edu_to_ram(0x100, *ib + kOffB, kN);
    const bool untouched = all_equal(b.p, kLen, 0x5a);
    c.check(done && untouched, "stale-iova-blocked",
            std::string(done ? "" : "edu DMA timed out; ") + "edu -> stale IOVA " + hex(*ib + kOffB) + ": B " +
                (untouched ? "unchanged" : "WRITTEN"));
    c.check(wait_dmar_fault(*ib + kOffB, faults_before), "stale-iova-dmar-fault",
            "guest kernel logged a DMAR fault at " + hex((*ib + kOffB) & ~u64{0xfff}));
    auto d = engine->dma("vtd", ioas::DmaDir::kWrite, *ib + kOffB, kN);
    c.check(d && d->faulted && d->fault_iova == *ib + kOffB, "engine-predicts-fault",
            d ? "engine's walk faults at " + hex(d->fault_iova) : err_text(d.error()));
  }

  // ---- a read-only map: the device may read it, never write it ----
  for (u64 i = 0; i < kLen; ++i) ro.p[i] = static_cast<unsigned char>(0xa0 ^ i);
  {
    const int faults_before = dmar_faults_at(*ir);
    // Prime edu's buffer with A's bytes, then try to write them into RO.
    done = edu.ram_to_edu(*ia, 0x200, kN) && edu.edu_to_ram(0x200, *ir, kN);
    bool unchanged = true;
    for (u64 i = 0; i < kLen; ++i)
      if (ro.p[i] != static_cast<unsigned char>(0xa0 ^ i)) unchanged = false;
    c.check(done && unchanged, "read-only-write-blocked",
            std::string(done ? "" : "edu DMA timed out; ") + "edu -> read-only IOVA " + hex(*ir) + ": buffer " +
                (unchanged ? "unchanged" : "WRITTEN"));
    c.check(wait_dmar_fault(*ir, faults_before), "read-only-dmar-fault",
            "guest kernel logged a DMAR fault at " + hex(*ir));
    auto d = engine->dma("vtd", ioas::DmaDir::kWrite, *ir, kN);
    auto r = engine->dma("vtd", ioas::DmaDir::kRead, *ir, kN);
    c.check(d && d->faulted && d->fault_iova == *ir && r && !r->faulted, "engine-predicts-read-only",
            "engine's walk: write faults at " + (d ? hex(d->fault_iova) : std::string("?")) + ", read passes");
    // The device can read it: RO -> edu -> A.
    std::memset(a.p, 0, kLen);
    done = edu.ram_to_edu(*ir + 0x100, 0x300, kN) && edu.edu_to_ram(0x300, *ia, kN);
    bool read_ok = done && std::memcmp(a.p, ro.p + 0x100, kN) == 0;
    c.check(read_ok, "read-only-readable",
            "IOVA " + hex(*ir + 0x100) + " -> edu -> IOVA " + hex(*ia) + ": " + (read_ok ? "bytes match" : "WRONG"));
  }

  // ---- maps the engine refuses never reach the kernel ----
  {
    const int calls = m.kernel_calls;
    auto r = m.map({.iova = kMsiWindow.start, .len = ioas::kPage, .source = "a", .prot = Prot::kReadWrite});
    c.check(!r && r.code() == EINVAL && m.kernel_calls == calls, "msi-window-refused",
            "fixed map at " + hex(kMsiWindow.start) + ": engine " + (r ? std::string("ACCEPTED") : err_text(r.error())) +
                (m.kernel_calls == calls ? "; kernel not asked" : "; kernel WAS asked"));
    auto k = container.map_dma(kMsiWindow.start, a.va(), ioas::kPage, Prot::kReadWrite);
    if (k) (void)container.unmap_dma(kMsiWindow.start, ioas::kPage);
    c.check(!k, "kernel-refuses-msi",
            "asked directly, the kernel says " + (k ? std::string("OK (mapped!)") : err_text(k.error())));

    const u64 above = hull.last + 1;
    auto r2 = m.map({.iova = above, .len = ioas::kPage, .source = "a", .prot = Prot::kReadWrite});
    c.check(!r2 && r2.code() == EINVAL && m.kernel_calls == calls, "above-aperture-refused",
            "fixed map at " + hex(above) + ": engine " + (r2 ? std::string("ACCEPTED") : err_text(r2.error())));
    auto k2 = container.map_dma(above, a.va(), ioas::kPage, Prot::kReadWrite);
    if (k2) (void)container.unmap_dma(above, ioas::kPage);
    c.check(!k2, "kernel-refuses-above",
            "asked directly, the kernel says " + (k2 ? std::string("OK (mapped!)") : err_text(k2.error())));
  }

  // ---- teardown: the engine and the kernel agree on what was mapped ----
  {
    auto u1 = m.unmap(*ia, kLen);
    auto u2 = m.unmap(*ir, kLen);
    auto info3 = container.info();
    auto snap = engine->snapshot(io);
    const bool ok = u1 && u2 && u1->first == u1->second && u2->first == u2->second && info3 &&
                    info3->dma_avail == info->dma_avail && snap && snap->areas.empty() && engine->check().empty();
    c.check(ok, "teardown",
            std::string("A and RO unmapped in both; kernel DMA budget back to ") +
                (info3 && info3->dma_avail ? std::to_string(*info3->dma_avail) : std::string("?")) +
                ", engine empty, engine check() clean");
  }
  return c.finish();
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("IOAS-VM-TEST: start\n");
  return run();
}
