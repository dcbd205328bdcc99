// The kernel engine (ioas/kernel_engine.hpp): ioas::Engine over iommufd ioctls.
//
// The engine keeps a mirror of what it asked for and the kernel granted:
// per IOAS its kernel id, options, areas (iova, source, offset, prot), pins
// and domains (mock devices); per memory source its buffer. The kernel's
// answers decide every change to the mirror: an area is added only when
// IOMMU_IOAS_MAP or IOMMU_IOAS_COPY succeeded, removed when an unmap
// succeeded over it, and after a failed unmap (the kernel may have removed
// some areas before it stopped) each area of the range is looked up in the
// kernel by copying it into a scratch IOAS. Checks that are the Engine
// interface's own (names, memory-source bounds) are made here, in the
// model's order, before the kernel is asked.
#include "ioas/kernel_engine.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "ioas/arith.hpp"
#include "ioas/core/text.hpp"
#include "ioas/rules.hpp"
#include "ioas/uapi/iommufd.h"
#include "ioas/uapi/iommufd_test.h"

namespace ioas {
namespace {

using u32 = std::uint32_t;

Error refuse(std::string what) { return make_error(kNotExpressible, "kernel engine: " + what); }

// /dev/iommu through ioctl(2).
class DevPort final : public IommufdPort {
 public:
  DevPort(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~DevPort() override { ::close(fd_); }
  int ioctl(unsigned long request, void* arg) override {
    return ::ioctl(fd_, request, arg) == 0 ? 0 : -errno;
  }
  void close_fd(int fd) override { ::close(fd); }
  std::string describe() const override { return path_; }

 private:
  int fd_;
  std::string path_;
};

struct AreaRec {
  Range iova;
  std::string source;
  u64 offset = 0;
  Prot prot = Prot::kNone;
};

struct PinRec {
  Range iova;
  bool write = false;
  u32 item = 0;          // the access's access_pages_id
  bool released = false; // an unmap told the access to drop it (the kernel did)
};

struct DeviceRec {
  std::string dom;
  u32 stdev_id = 0;  // the selftest device: IOMMU_DESTROY detaches it
};

struct IoasRec {
  u32 id = 0;
  IoasOptions options;
  std::map<u64, AreaRec> areas;      // by iova.start
  std::map<u32, PinRec> pins;        // by trace pin id
  u32 next_pin_id = 1;
  int access_fd = -1;                // the selftest access of this IOAS's pins
  u32 access_id = 0;
  struct Domain {
    u64 pgsizes = 0;
    std::set<std::string> devices;
  };
  std::map<std::string, Domain> domains;
};

struct MemRec {
  MemorySource source;
};

class KernelEngine final : public Engine {
 public:
  explicit KernelEngine(std::unique_ptr<IommufdPort> port) : port_(std::move(port)) {}
  ~KernelEngine() override {
    for (auto& [name, io] : ioases_)
      if (io.access_fd >= 0) port_->close_fd(io.access_fd);
    for (const auto& [page, users] : pages_) ::munmap(reinterpret_cast<void*>(page), kPage);
  }

  Status probe() {
    auto scratch = alloc_ioas();
    if (!scratch.ok()) return make_error(EIO, port_->describe() + ": IOMMU_IOAS_ALLOC: " + scratch.error().message);
    scratch_ = *scratch;
    iommu_test_cmd cmd{};
    cmd.size = sizeof(cmd);
    cmd.op = IOMMU_TEST_OP_ADD_RESERVED;
    cmd.id = scratch_;
    cmd.add_reserved.length = 0;  // EINVAL where the selftest commands exist, ENOTTY where not
    have_test_ = port_->ioctl(IOMMU_TEST_CMD, &cmd) != -ENOTTY;
    auto other = alloc_ioas();
    if (other.ok()) {
      can_disable_huge_ = option_huge_pages(*other, false) == 0;
      destroy(*other);
    }
    return ok_status();
  }

  const char* kind() const override { return "kernel"; }

  // ---- IOASes ----
  Status create_ioas(std::string_view name, const IoasOptions& options) override {
    if (name.empty()) return make_error(EINVAL, "create ioas: the name is empty");
    if (ioases_.count(std::string(name))) return make_error(EEXIST, "create ioas " + std::string(name) + ": exists");
    if (options.mode != IoasMode::kKernel)
      return refuse("ioas " + std::string(name) + ": the kernel has only its own rules (mode=kernel)");
    if (!options.huge_pages && !can_disable_huge_)
      return refuse("ioas " + std::string(name) + ": " + port_->describe() +
                    " does not turn huge pages off (IOMMU_OPTION_HUGE_PAGES)");
    auto id = alloc_ioas();
    if (!id.ok()) return id.error();
    if (!options.huge_pages) {
      if (int rc = option_huge_pages(*id, false)) {
        destroy(*id);
        return make_error(-rc, "IOMMU_OPTION_HUGE_PAGES=0 refused");
      }
    }
    IoasRec io;
    io.id = *id;
    io.options = options;
    io.options.zero_page = rules_for(IoasMode::kKernel).forced_zero_page.value_or(options.zero_page);
    ioases_.emplace(std::string(name), std::move(io));
    return ok_status();
  }
  Result<IoasOptions> ioas_options(std::string_view ioas) const override {
    const IoasRec* io = find(ioas);
    if (!io) return no_ioas(ioas);
    return io->options;
  }
  std::vector<std::string> ioas_names() const override {
    std::vector<std::string> out;
    for (const auto& [n, io] : ioases_) out.push_back(n);
    return out;
  }

  // ---- memory sources: real buffers at their va ----
  Status add_memory(const MemorySource& s) override {
    const std::string what = "mem " + s.name;
    if (s.name.empty()) return make_error(EINVAL, "mem: the name is empty");
    if (memories_.count(s.name)) return make_error(EEXIST, what + ": a memory source of that name exists");
    if (s.len == 0) return make_error(EINVAL, what + ": length 0");
    if (arith::range_last(s.va, s.len).overflow) return make_error(EOVERFLOW, what + ": va + len passes 2^64-1");
    if (arith::range_last(s.pa, s.len).overflow) return make_error(EOVERFLOW, what + ": pa + len passes 2^64-1");
    if (s.pa != s.va) return refuse(what + ": the kernel pins the pages behind va; pa cannot be chosen");
    if (!s.writable)
      return refuse(what + ": read-only memory (the kernel finds it only when it pins, as EFAULT)");
    if (Status st = map_pages(s.va, s.len); !st.ok()) return st;
    memories_.emplace(s.name, MemRec{s});
    return ok_status();
  }
  Status remove_memory(std::string_view name) override {
    auto it = memories_.find(std::string(name));
    if (it == memories_.end()) return make_error(ENOENT, "unmem " + std::string(name) + ": no such memory source");
    if (u64 n = use_count(it->first))
      return make_error(EBUSY, "unmem " + std::string(name) + ": in use by " + std::to_string(n) + " areas and pins");
    unmap_pages(it->second.source.va, it->second.source.len);
    memories_.erase(it);
    return ok_status();
  }
  std::vector<MemoryInfo> memories() const override {
    std::vector<MemoryInfo> out;
    for (const auto& [n, m] : memories_) out.push_back(MemoryInfo{m.source, use_count(n)});
    return out;
  }

  // ---- mapping ----
  Result<u64> map(std::string_view ioas, const MapArgs& a) override {
    IoasRec* io = find(ioas);
    if (!io) return no_ioas(ioas);
    auto m = memories_.find(a.source);
    if (m == memories_.end()) return make_error(ENOENT, "map: no memory source named " + a.source);
    const auto end = arith::range_last(a.offset, a.len);
    if (end.overflow || (a.len && end.last >= m->second.source.len))
      return refuse("map: " + a.source + "+" + hex(a.offset) + " length " + hex(a.len) +
                    " runs past the source; the kernel sees user memory, not sources");
    iommu_ioas_map cmd{};
    cmd.size = sizeof(cmd);
    cmd.flags = prot_flags(a.prot) | (a.iova ? IOMMU_IOAS_MAP_FIXED_IOVA : 0);
    cmd.ioas_id = io->id;
    cmd.user_va = m->second.source.va + a.offset;
    cmd.length = a.len;
    cmd.iova = a.iova.value_or(0);
    if (int rc = port_->ioctl(IOMMU_IOAS_MAP, &cmd)) return kernel_error(rc, "IOMMU_IOAS_MAP");
    io->areas[cmd.iova] = AreaRec{Range{cmd.iova, cmd.iova + (a.len - 1)}, a.source, a.offset, a.prot};
    return u64{cmd.iova};
  }

  Result<u64> unmap(std::string_view ioas, u64 iova, u64 len) override {
    IoasRec* io = find(ioas);
    if (!io) return no_ioas(ioas);
    iommu_ioas_unmap cmd{};
    cmd.size = sizeof(cmd);
    cmd.ioas_id = io->id;
    cmd.iova = iova;
    cmd.length = len;
    const int rc = port_->ioctl(IOMMU_IOAS_UNMAP, &cmd);
    const bool all = iova == 0 && len == kMaxIova;
    const auto end = arith::range_last(iova, len);
    const Range r = all ? Range::all() : Range{iova, len == 0 ? iova : end.overflow ? kMaxIova : end.last};
    if (rc == 0) {
      for (auto it = io->areas.begin(); it != io->areas.end();) {
        if (r.contains(it->second.iova)) {
          release_pins(*io, it->second.iova);
          it = io->areas.erase(it);
        } else {
          ++it;
        }
      }
      return u64{cmd.length};
    }
    // The kernel may have removed areas before it stopped: ask it which are left.
    for (auto it = io->areas.begin(); it != io->areas.end();) {
      if (r.overlaps(it->second.iova) && !area_present(*io, it->second.iova)) {
        release_pins(*io, it->second.iova);
        it = io->areas.erase(it);
      } else {
        ++it;
      }
    }
    return kernel_error(rc, "IOMMU_IOAS_UNMAP");
  }

  Status cut(std::string_view, u64 iova) override {
    return refuse("cut " + hex(iova) + ": iommufd has no uAPI to split an area");
  }

  Result<u64> copy(std::string_view ioas, const CopyArgs& a) override {
    IoasRec* dst = find(ioas);
    if (!dst) return no_ioas(ioas);
    IoasRec* src = find(a.from);
    if (!src) return no_ioas(a.from);
    iommu_ioas_copy cmd{};
    cmd.size = sizeof(cmd);
    cmd.flags = prot_flags(a.prot) | (a.dst_iova ? IOMMU_IOAS_MAP_FIXED_IOVA : 0);
    cmd.dst_ioas_id = dst->id;
    cmd.src_ioas_id = src->id;
    cmd.length = a.len;
    cmd.dst_iova = a.dst_iova.value_or(0);
    cmd.src_iova = a.src_iova;
    if (int rc = port_->ioctl(IOMMU_IOAS_COPY, &cmd)) return kernel_error(rc, "IOMMU_IOAS_COPY");
    // The new areas: the source's pieces over [src_iova, +len), one per area.
    const Range from{a.src_iova, a.src_iova + (a.len - 1)};
    std::vector<AreaRec> pieces;
    for (const auto& [start, area] : src->areas) {
      if (!area.iova.overlaps(from)) continue;
      const u64 s = std::max(area.iova.start, from.start), l = std::min(area.iova.last, from.last);
      pieces.push_back(AreaRec{Range{cmd.dst_iova + (s - from.start), cmd.dst_iova + (l - from.start)}, area.source,
                               area.offset + (s - area.iova.start), a.prot});
    }
    for (auto& p : pieces) dst->areas[p.iova.start] = std::move(p);
    return u64{cmd.dst_iova};
  }

  // ---- reserved and allowed ----
  Status reserve(std::string_view ioas, Range range, std::string_view owner) override {
    IoasRec* io = find(ioas);
    if (!io) return no_ioas(ioas);
    if (!have_test_) return refuse("reserve: needs CONFIG_IOMMUFD_TEST (IOMMU_TEST_OP_ADD_RESERVED)");
    if (range.start > range.last || range == Range::all())
      return refuse("reserve " + hex(range.start) + "-" + hex(range.last) +
                    ": IOMMU_TEST_OP_ADD_RESERVED takes start and a length from 1 to 2^64-1");
    (void)owner;  // the kernel's reserved ranges have no owner names
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_ADD_RESERVED, io->id);
    cmd.add_reserved.start = range.start;
    cmd.add_reserved.length = range.last - range.start + 1;
    if (int rc = port_->ioctl(IOMMU_TEST_CMD, &cmd)) return kernel_error(rc, "IOMMU_TEST_OP_ADD_RESERVED");
    return ok_status();
  }
  Status unreserve(std::string_view, std::string_view owner) override {
    return refuse("unreserve owner=" + std::string(owner) + ": the kernel never removes a test reservation");
  }
  Status allow(std::string_view ioas, std::span<const Range> ranges) override {
    IoasRec* io = find(ioas);
    if (!io) return no_ioas(ioas);
    std::vector<iommu_iova_range> list;
    for (const Range& r : ranges) list.push_back(iommu_iova_range{r.start, r.last});
    iommu_ioas_allow_iovas cmd{};
    cmd.size = sizeof(cmd);
    cmd.ioas_id = io->id;
    cmd.num_iovas = static_cast<u32>(list.size());
    cmd.allowed_iovas = reinterpret_cast<std::uintptr_t>(list.data());
    if (int rc = port_->ioctl(IOMMU_IOAS_ALLOW_IOVAS, &cmd)) return kernel_error(rc, "IOMMU_IOAS_ALLOW_IOVAS");
    return ok_status();
  }
  Result<IovaRanges> ranges(std::string_view ioas) const override {
    const IoasRec* io = find(ioas);
    if (!io) return no_ioas(ioas);
    std::vector<iommu_iova_range> buf(16);
    for (;;) {
      iommu_ioas_iova_ranges cmd{};
      cmd.size = sizeof(cmd);
      cmd.ioas_id = io->id;
      cmd.num_iovas = static_cast<u32>(buf.size());
      cmd.allowed_iovas = reinterpret_cast<std::uintptr_t>(buf.data());
      const int rc = port_->ioctl(IOMMU_IOAS_IOVA_RANGES, &cmd);
      if (rc == -EMSGSIZE) {
        buf.resize(cmd.num_iovas);
        continue;
      }
      if (rc) return kernel_error(rc, "IOMMU_IOAS_IOVA_RANGES");
      IovaRanges out;
      out.alignment = cmd.out_iova_alignment;
      for (u32 i = 0; i < cmd.num_iovas; ++i) out.ranges.push_back(Range{buf[i].start, buf[i].last});
      return out;
    }
  }

  // ---- devices and domains: the selftest's mock device and domain ----
  Status attach(std::string_view ioas, const AttachArgs& a) override {
    IoasRec* io = find(ioas);
    if (!io) return no_ioas(ioas);
    const std::string what = "attach dev=" + a.dev + " dom=" + a.dom + ": ";
    if (!have_test_) return refuse(what + "needs CONFIG_IOMMUFD_TEST (IOMMU_TEST_OP_MOCK_DOMAIN)");
    if (a.fmt != Format::kMock) return refuse(what + "the only domain the kernel makes without hardware is fmt=mock");
    if (a.aperture && *a.aperture != default_aperture(Format::kMock))
      return refuse(what + "the mock domain's aperture is fixed");
    const u64 small = kMockPage, huge = kMockPage | kMockHugePage;
    if ((a.pgsize_bitmap && *a.pgsize_bitmap != small && *a.pgsize_bitmap != huge) || !a.pgsizes_not_pow2.empty())
      return refuse(what + "the mock domain's page sizes are 2K, or 2K|1M for a huge device");
    if (!a.resv.empty()) return refuse(what + "the mock device has no reserved regions");
    if (devices_.count(a.dev)) return refuse(what + "the mock device is made by its attach; it cannot attach twice");
    const u64 pgsizes = a.pgsize_bitmap.value_or(small);
    auto dom = io->domains.find(a.dom);
    if (dom == io->domains.end() ? !io->domains.empty() : dom->second.pgsizes != pgsizes)
      return refuse(what + "the kernel's auto domain joins a device to the IOAS's existing domain");
    for (const auto& [name, other] : ioases_)
      if (&other != io && other.domains.count(a.dom)) return refuse(what + "the domain belongs to another IOAS");
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, io->id);
    cmd.mock_domain_flags.dev_flags = pgsizes == huge ? MOCK_FLAGS_DEVICE_HUGE_IOVA : 0;
    if (int rc = port_->ioctl(IOMMU_TEST_CMD, &cmd)) return kernel_error(rc, "IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS");
    io->domains[a.dom].pgsizes = pgsizes;
    io->domains[a.dom].devices.insert(a.dev);
    devices_[a.dev] = DeviceRec{a.dom, cmd.mock_domain_flags.out_stdev_id};
    return ok_status();
  }
  Status detach(std::string_view dev) override {
    auto it = devices_.find(std::string(dev));
    if (it == devices_.end()) return make_error(ENOENT, "detach " + std::string(dev) + ": no such device");
    if (int rc = destroy(it->second.stdev_id)) return kernel_error(rc, "IOMMU_DESTROY of the mock device");
    for (auto& [name, io] : ioases_) {
      auto d = io.domains.find(it->second.dom);
      if (d == io.domains.end()) continue;
      d->second.devices.erase(it->first);
      if (d->second.devices.empty()) io.domains.erase(d);
    }
    devices_.erase(it);
    return ok_status();
  }

  // ---- pins: a selftest access per IOAS ----
  Result<std::uint32_t> pin(std::string_view ioas, const PinArgs& a) override {
    IoasRec* io = find(ioas);
    if (!io) return no_ioas(ioas);
    if (!have_test_) return refuse("pin: needs CONFIG_IOMMUFD_TEST (IOMMU_TEST_OP_ACCESS_PAGES)");
    if (!a.release) return refuse("pin release=no: the selftest access always releases when told");
    if (a.len > (u64{16} << 20)) return refuse("pin: the selftest access pins at most 16 MiB at a time");
    if (io->access_fd < 0) {
      iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_CREATE_ACCESS, io->id);
      cmd.create_access.flags = MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES;
      if (int rc = port_->ioctl(IOMMU_TEST_CMD, &cmd)) return kernel_error(rc, "IOMMU_TEST_OP_CREATE_ACCESS");
      io->access_fd = static_cast<int>(cmd.create_access.out_access_fd);
    }
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_ACCESS_PAGES, static_cast<u32>(io->access_fd));
    cmd.access_pages.flags = a.write ? MOCK_FLAGS_ACCESS_WRITE : 0;
    cmd.access_pages.iova = a.iova;
    cmd.access_pages.length = a.len;
    cmd.access_pages.uptr = user_address(*io, a.iova, a.len);
    if (int rc = port_->ioctl(IOMMU_TEST_CMD, &cmd)) {
      close_access_if_idle(*io);
      return kernel_error(rc, "IOMMU_TEST_OP_ACCESS_PAGES");
    }
    const u32 id = io->next_pin_id++;
    io->pins[id] = PinRec{Range{a.iova, a.iova + (a.len - 1)}, a.write, cmd.access_pages.out_access_pages_id, false};
    return id;
  }
  Status unpin(std::string_view ioas, std::uint32_t id) override {
    IoasRec* io = find(ioas);
    if (!io) return no_ioas(ioas);
    auto it = io->pins.find(id);
    if (it == io->pins.end() || it->second.released)
      return make_error(ENOENT, "unpin " + std::to_string(id) + ": no such pin (an unmap released it, or never)");
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, static_cast<u32>(io->access_fd));
    cmd.destroy_access_pages.access_pages_id = it->second.item;
    const int rc = port_->ioctl(IOMMU_TEST_CMD, &cmd);
    if (rc) return kernel_error(rc, "IOMMU_TEST_OP_DESTROY_ACCESS_PAGES");
    it->second.released = true;
    close_access_if_idle(*io);
    return ok_status();
  }

  // ---- what the uAPI does not observe ----
  Result<std::optional<Translation>> translate(std::string_view dom, u64 iova) const override {
    return refuse("translate dom=" + std::string(dom) + " iova=" + hex(iova) + ": the uAPI does not show translations");
  }
  Result<DmaOutcome> dma(std::string_view dom, DmaDir, u64, u64) override {
    return refuse("dma dom=" + std::string(dom) + ": the mock domain does no DMA");
  }
  Status set_dirty_tracking(std::string_view dom, DirtyMode) override {
    return refuse("dirty dom=" + std::string(dom) + ": dirty tracking is not driven by this engine");
  }
  Result<std::vector<Range>> read_dirty(std::string_view dom, u64, u64, u64, bool) override {
    return refuse("read-dirty dom=" + std::string(dom) + ": dirty tracking is not driven by this engine");
  }
  Result<u64> uva(std::string_view, u64 iova) const override {
    return refuse("uva " + hex(iova) + ": the uAPI does not show the user address behind an IOVA");
  }
  Result<std::vector<LeafInfo>> leaves(std::string_view dom, Range) const override {
    return refuse("leaves of " + std::string(dom) + ": the uAPI does not show page tables");
  }

  // ---- observation ----
  Result<IoasState> snapshot(std::string_view ioas) const override {
    const IoasRec* io = find(ioas);
    if (!io) return no_ioas(ioas);
    auto valid = ranges(ioas);
    if (!valid.ok()) return valid.error();
    IoasState s;
    s.name = std::string(ioas);
    s.options = io->options;
    s.iova_alignment = valid->alignment;
    for (const auto& [start, a] : io->areas) {
      u64 pins = 0;
      for (const auto& [id, p] : io->pins) pins += !p.released && p.iova.overlaps(a.iova);
      s.areas.push_back(AreaInfo{a.iova, a.prot, a.source, a.offset, pins});
    }
    for (const Range& r : complement(valid->ranges))
      s.reserved.push_back(ReservedInfo{r, Owner{OwnerKind::kUser, "kernel"}});
    for (const auto& [id, p] : io->pins)
      if (!p.released) s.pins.push_back(PinInfo{id, p.iova, p.write, true});
    for (const auto& [name, d] : io->domains) {
      DomainInfo di;
      di.name = name;
      di.fmt = Format::kMock;
      di.aperture = default_aperture(Format::kMock);
      di.pgsize_bitmap = d.pgsizes;
      di.devices.assign(d.devices.begin(), d.devices.end());
      s.domains.push_back(std::move(di));
    }
    s.next_pin_id = io->next_pin_id;
    return s;
  }
  // What can be checked from outside: no area lies outside the ranges the
  // kernel reports as valid.
  std::vector<Violation> check() const override {
    std::vector<Violation> out;
    for (const auto& [name, io] : ioases_) {
      auto valid = ranges(name);
      if (!valid.ok()) continue;
      for (const auto& [start, a] : io.areas)
        for (const Range& hole : complement(valid->ranges))
          if (hole.overlaps(a.iova))
            out.push_back(Violation{Invariant::kAreaReserved, name,
                                    "area " + to_string(a.iova) + " lies outside the kernel's IOVA ranges at " +
                                        to_string(hole),
                                    std::max(hole.start, a.iova.start)});
    }
    return out;
  }

 private:
  static Error no_ioas(std::string_view name) { return make_error(ENOENT, "no IOAS named " + std::string(name)); }
  Error kernel_error(int rc, const char* what) const {
    return make_error(-rc, std::string(what) + " on " + port_->describe() + " failed: " + std::strerror(-rc));
  }
  const IoasRec* find(std::string_view name) const {
    auto it = ioases_.find(std::string(name));
    return it == ioases_.end() ? nullptr : &it->second;
  }
  IoasRec* find(std::string_view name) {
    auto it = ioases_.find(std::string(name));
    return it == ioases_.end() ? nullptr : &it->second;
  }
  static u32 prot_flags(Prot p) {
    return (static_cast<u32>(p) & static_cast<u32>(Prot::kRead) ? IOMMU_IOAS_MAP_READABLE : 0) |
           (static_cast<u32>(p) & static_cast<u32>(Prot::kWrite) ? IOMMU_IOAS_MAP_WRITEABLE : 0);
  }
  static iommu_test_cmd test_cmd(u32 op, u32 id) {
    iommu_test_cmd cmd{};
    cmd.size = sizeof(cmd);
    cmd.op = op;
    cmd.id = id;
    return cmd;
  }

  Result<u32> alloc_ioas() {
    iommu_ioas_alloc cmd{};
    cmd.size = sizeof(cmd);
    if (int rc = port_->ioctl(IOMMU_IOAS_ALLOC, &cmd)) return kernel_error(rc, "IOMMU_IOAS_ALLOC");
    return u32{cmd.out_ioas_id};
  }
  int option_huge_pages(u32 ioas_id, bool on) {
    iommu_option cmd{};
    cmd.size = sizeof(cmd);
    cmd.option_id = IOMMU_OPTION_HUGE_PAGES;
    cmd.op = IOMMU_OPTION_OP_SET;
    cmd.object_id = ioas_id;
    cmd.val64 = on ? 1 : 0;
    return port_->ioctl(IOMMU_OPTION, &cmd);
  }
  int destroy(u32 id) {
    iommu_destroy cmd{};
    cmd.size = sizeof(cmd);
    cmd.id = id;
    return port_->ioctl(IOMMU_DESTROY, &cmd);
  }

  // Whether the kernel still has an area at exactly `r`: a copy of it into
  // the scratch IOAS succeeds only then (the mirror's areas never overlap, so
  // no other areas can cover r whole).
  bool area_present(const IoasRec& io, Range r) {
    iommu_ioas_copy cmd{};
    cmd.size = sizeof(cmd);
    cmd.flags = IOMMU_IOAS_MAP_READABLE;
    cmd.dst_ioas_id = scratch_;
    cmd.src_ioas_id = io.id;
    cmd.length = r.last - r.start + 1;
    cmd.src_iova = r.start;
    if (port_->ioctl(IOMMU_IOAS_COPY, &cmd) != 0) return false;
    iommu_ioas_unmap un{};
    un.size = sizeof(un);
    un.ioas_id = scratch_;
    un.length = kMaxIova;
    (void)port_->ioctl(IOMMU_IOAS_UNMAP, &un);
    return true;
  }

  // The selftest access's unmap callback drops every item overlapping the area.
  void release_pins(IoasRec& io, Range area) {
    for (auto& [id, p] : io.pins)
      if (p.iova.overlaps(area)) p.released = true;
    close_access_if_idle(io);
  }

  // The access lives exactly while the IOAS has a pin: attached, it raises
  // the IOAS's iova_alignment to PAGE (iopt_add_access), which a pin-less
  // IOAS must not show.
  void close_access_if_idle(IoasRec& io) {
    if (io.access_fd < 0) return;
    for (const auto& [id, p] : io.pins)
      if (!p.released) return;
    port_->close_fd(io.access_fd);
    io.access_fd = -1;
  }

  // The user address of [iova, iova+len) when one area holds it whole (the
  // kernel then checks the pinned pages against it); 0 otherwise (no check).
  u64 user_address(const IoasRec& io, u64 iova, u64 len) const {
    if (len == 0 || arith::range_last(iova, len).overflow) return 0;
    const Range r{iova, iova + (len - 1)};
    for (const auto& [start, a] : io.areas)
      if (a.iova.contains(r)) return memories_.at(a.source).source.va + a.offset + (iova - a.iova.start);
    return 0;
  }

  u64 use_count(const std::string& source) const {
    u64 n = 0;
    for (const auto& [name, io] : ioases_)
      for (const auto& [start, a] : io.areas) {
        if (a.source != source) continue;
        ++n;
        for (const auto& [id, p] : io.pins) n += !p.released && p.iova.overlaps(a.iova);
      }
    return n;
  }

  // The pages of [va, va+len), mapped once however many sources share them.
  Status map_pages(u64 va, u64 len) {
    const u64 first = va & ~(kPage - 1), last = (va + (len - 1)) & ~(kPage - 1);
    std::vector<u64> added;
    for (u64 p = first;; p += kPage) {
      if (!pages_.count(p)) {
        void* want = reinterpret_cast<void*>(p);
        void* got = ::mmap(want, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE,
                           -1, 0);
        if (got != want) {
          const int e = got == MAP_FAILED ? errno : EEXIST;
          if (got != MAP_FAILED) ::munmap(got, kPage);
          for (u64 q : added) {
            ::munmap(reinterpret_cast<void*>(q), kPage);
            pages_.erase(q);
          }
          return make_error(kAddressUnavailable, "kernel engine: mem at " + hex(va) + "+" + hex(len) + ": page " +
                                                     hex(p) + " cannot be mapped in this process (" +
                                                     std::strerror(e) + ")");
        }
        added.push_back(p);
      }
      if (p == last) break;
    }
    for (u64 p = first;; p += kPage) {
      ++pages_[p];
      if (p == last) break;
    }
    return ok_status();
  }
  void unmap_pages(u64 va, u64 len) {
    const u64 first = va & ~(kPage - 1), last = (va + (len - 1)) & ~(kPage - 1);
    for (u64 p = first;; p += kPage) {
      if (--pages_[p] == 0) {
        ::munmap(reinterpret_cast<void*>(p), kPage);
        pages_.erase(p);
      }
      if (p == last) break;
    }
  }

  std::unique_ptr<IommufdPort> port_;
  u32 scratch_ = 0;  // an IOAS of the engine's own, for area_present
  bool have_test_ = false;
  bool can_disable_huge_ = false;
  std::map<std::string, IoasRec> ioases_;
  std::map<std::string, MemRec> memories_;
  std::map<std::string, DeviceRec> devices_;
  std::map<u64, u32> pages_;  // page address -> sources using it
};

}  // namespace

Result<std::unique_ptr<IommufdPort>> open_dev_iommu(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return make_error(errno, path + ": " + std::strerror(errno));
  return std::unique_ptr<IommufdPort>(std::make_unique<DevPort>(fd, path));
}

Result<std::unique_ptr<Engine>> make_kernel_engine(std::unique_ptr<IommufdPort> port) {
  auto e = std::make_unique<KernelEngine>(std::move(port));
  if (Status s = e->probe(); !s.ok()) return s.error();
  return std::unique_ptr<Engine>(std::move(e));
}

}  // namespace ioas
