// hw/vm/vm_test.cpp: the in-guest VFIO proof. Runs as the only program
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
// Then the engine alone decides and the kernel follows it through the VFIO
// back end (hw/vfio/vfio_backend.hpp, ImplOptions::tables): automatic and
// fixed maps, unmap, read-only, a cut and the unmap of one piece, kernel
// refusals (EFAULT) that roll the engine back, a trace replayed on the model
// and on the kernel-backed engine side by side, and the `ioas ranges` command
// on the group's live reserved_regions.
// Every check prints one "ok"/"FAIL" line; the last line is the summary the
// host script looks for: "IOAS-VM-TEST: PASS n/n" or "IOAS-VM-TEST: FAIL k/n".
#include <dirent.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sys/wait.h>

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

#include "ioas/core/text.hpp"
#include "guest.hpp"
#include "ioas/impl.hpp"
#include "replay.hpp"
#include "ioas/core/reserved_regions.hpp"
#include "trace.hpp"
#include "vfio.hpp"
#include "vfio_backend.hpp"

namespace {

using ioas::Prot;
using ioas::Range;
using ioas::u64;
namespace vfio = ioas::vfio;
using namespace ioas::vm;  // the shared guest helpers (guest.hpp)

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

// ---- the engine's domain carried out by the kernel (vfio_backend) ----
//
// From here on the engine alone decides and the kernel follows through
// ImplOptions::tables = vfio::table_factory(container): nothing below calls
// VFIO_IOMMU_MAP_DMA or UNMAP_DMA itself, except to ask the kernel directly
// what it answers to a request (marked "asked directly").

// The kernel's DMA entry budget now (one entry per mapping it holds).
u64 dma_avail(const vfio::Container& k) {
  auto i = k.info();
  return i && i->dma_avail ? *i->dma_avail : ~u64{0};
}

std::string calls_text(const vfio::KernelLog& l) {
  return std::to_string(l.map_calls) + " map + " + std::to_string(l.unmap_calls) + " unmap ioctls";
}

// Anonymous memory the kernel cannot pin: PROT_NONE, or unmapped again.
struct NoAccess {
  u64 va = 0;
  u64 len = 0;
  NoAccess(u64 n, bool unmap) : len(n) {
    void* m = ::mmap(nullptr, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    va = reinterpret_cast<u64>(m);
    if (unmap) ::munmap(m, n);
    else owned = true;
  }
  ~NoAccess() {
    if (owned) ::munmap(reinterpret_cast<void*>(va), len);
  }
  NoAccess(const NoAccess&) = delete;
  NoAccess& operator=(const NoAccess&) = delete;
  bool owned = false;
};

std::unique_ptr<ioas::Engine> vfio_engine(vfio::Container& k, std::shared_ptr<vfio::KernelLog> log) {
  ioas::ImplOptions o;
  o.verify_each_op = true;  // the back end's verify() included: mirror and kernel bookkeeping agree
  o.tables = vfio::table_factory(k, std::move(log));
  return ioas::make_engine(o);
}

void backend_checks(Checks& c, vfio::Container& container, Edu& edu, const vfio::IommuInfo& info,
                    const ioas::AttachArgs& args) {
  constexpr u64 kLen = 64 << 10;
  const u64 full = dma_avail(container);
  auto log = std::make_shared<vfio::KernelLog>();
  auto e = vfio_engine(container, log);
  const std::string io = "vfio";
  if (!e->create_ioas(io, {.zero_page = ioas::ZeroPage::kAllowed}).ok()) c.fatal("backend-attach", "create_ioas");
  {
    auto st = e->attach(io, args);
    auto r = e->ranges(io);
    c.check(st.ok() && r && r->ranges == info.iova_ranges && log->calls() == 0, "backend-attach",
            st.ok() ? "domain vtd on the container (tables = vfio::table_factory); ranges " +
                          (r ? ioas::to_string(r->ranges) : std::string("?")) + " = the kernel's; " + calls_text(*log)
                    : err_text(st.error()));
    if (!st.ok()) c.fatal("backend-attach", "cannot go on without the domain");
    // A second domain cannot share the container (it would map every area twice).
    ioas::AttachArgs twin = args;
    twin.dev = "edu-twin";
    twin.dom = "vtd2";
    const bool made = e->create_ioas("other", {.zero_page = ioas::ZeroPage::kAllowed}).ok();
    auto st2 = e->attach("other", twin);
    c.check(made && st2.code() == EBUSY, "one-container-per-domain",
            "a second domain on the same container: " + (st2.ok() ? std::string("ACCEPTED") : err_text(st2.error())));
  }

  // F's memory is the middle third of `fg`: the thirds around it show
  // whether the kernel maps a byte more than the engine's area.
  Buffer a(kLen), fg(3 * kLen), ro(kLen), cb(kLen);
  if (!a.p || !fg.p || !ro.p || !cb.p) c.fatal("backend-map", std::string("mmap: ") + std::strerror(errno));
  unsigned char* const fp = fg.p + kLen;
  const u64 fva = fg.va() + kLen;
  bool added = true;
  added &= e->add_memory({"a", a.va(), kLen, a.va(), true}).ok();
  added &= e->add_memory({"f", fva, kLen, fva, true}).ok();
  added &= e->add_memory({"ro", ro.va(), kLen, ro.va(), true}).ok();
  added &= e->add_memory({"c", cb.va(), kLen, cb.va(), true}).ok();
  if (!added) c.fatal("backend-map", "add_memory failed");

  // (a) maps through the engine only, automatic and fixed.
  constexpr u64 kFixed = 0x10000000;
  auto ia = e->map(io, {.iova = std::nullopt, .len = kLen, .source = "a", .prot = Prot::kReadWrite});
  auto fx = e->map(io, {.iova = kFixed, .len = kLen, .source = "f", .prot = Prot::kReadWrite});
  if (!ia || !fx) c.fatal("backend-map", "engine map: " + err_text((!ia ? ia : fx).error()));
  c.check(*fx == kFixed && log->map_calls == 2 && log->refused == 0 && full - dma_avail(container) == 2,
          "backend-map",
          "engine chose A " + hex(*ia) + " (automatic), F " + hex(*fx) + " (fixed); the back end issued " +
              calls_text(*log) + ", kernel budget " + std::to_string(full) + " -> " +
              std::to_string(dma_avail(container)));
  {
    constexpr u64 kN = 256, kOffA = 0x2040, kOffF = 0x3f80;  // F: across its page 3/page 4 boundary
    for (u64 i = 0; i < kLen; ++i) a.p[i] = static_cast<unsigned char>(i * 13 + 1);
    std::memset(fg.p, 0xee, fg.len);
    const bool done = edu.ram_to_edu(*ia + kOffA, 0, kN) && edu.edu_to_ram(0, kFixed + kOffF, kN);
    auto land = e->uva(io, kFixed + kOffF);
    const bool ok = done && land && *land == fva + kOffF && std::memcmp(fp + kOffF, a.p + kOffA, kN) == 0 &&
                    all_equal(fg.p, kLen + kOffF, 0xee) && all_equal(fp + kOffF + kN, 2 * kLen - kOffF - kN, 0xee);
    c.check(ok, "backend-roundtrip",
            std::string(done ? "" : "edu DMA timed out; ") + "IOVA " + hex(*ia + kOffA) + " -> edu -> IOVA " +
                hex(kFixed + kOffF) + ": " + (ok ? "bytes at the engine's uva, rest of F untouched" : "WRONG"));
    // The kernel mapping ends where the engine's area ends: device writes
    // to the pages just before and after F change nothing (a longer kernel
    // mapping would put them in the memory around F's), and the engine's
    // walk faults there too.
    std::memset(fg.p, 0x77, fg.len);
    const bool after = write_blocked(edu, *ia, a.p, kFixed + kLen, fg, 0x77);
    const bool before = write_blocked(edu, *ia, a.p, kFixed - ioas::kPage, fg, 0x77);
    auto pa = e->dma("vtd", ioas::DmaDir::kWrite, kFixed + kLen, 16);
    auto pb = e->dma("vtd", ioas::DmaDir::kWrite, kFixed - ioas::kPage, 16);
    c.check(after && before && pa && pa->faulted && pb && pb->faulted, "backend-extent",
            "device writes to " + hex(kFixed - ioas::kPage) + " and " + hex(kFixed + kLen) + " (just outside F) " +
                (after && before ? "change nothing around F" : "LANDED") + "; the engine's walk: " +
                (pa && pa->faulted && pb && pb->faulted ? "fault" : "NO FAULT"));
  }

  // (b) unmap through the engine: the stale IOVA no longer reaches F.
  {
    const u64 calls = log->unmap_calls;
    auto um = e->unmap(io, kFixed, kLen);
    c.check(um && *um == kLen && log->unmap_calls == calls + 1 && full - dma_avail(container) == 1, "backend-unmap",
            um ? "F: engine unmapped " + hex(*um) + "; " + calls_text(*log) + ", kernel budget back to " +
                     std::to_string(dma_avail(container))
               : err_text(um.error()));
    std::memset(fg.p, 0x5a, fg.len);
    const bool blocked = write_blocked(edu, *ia, a.p, kFixed + 0x1000, fg, 0x5a);
    c.check(blocked, "backend-stale-blocked",
            "edu -> stale IOVA " + hex(kFixed + 0x1000) + ": F's memory " + (blocked ? "unchanged" : "WRITTEN"));
  }

  // (c) a read-only area: the device reads it, never writes it.
  {
    auto ir = e->map(io, {.iova = std::nullopt, .len = kLen, .source = "ro", .prot = Prot::kRead});
    if (!ir) c.fatal("backend-read-only", err_text(ir.error()));
    for (u64 i = 0; i < kLen; ++i) ro.p[i] = static_cast<unsigned char>(0x3c ^ i);
    std::vector<unsigned char> want(ro.p, ro.p + kLen);
    // edu writes A's bytes (which differ from RO's there) into RO.
    bool done = std::memcmp(a.p, ro.p + 0x2000, 256) != 0 && edu.ram_to_edu(*ia, 0x400, 256) &&
                edu.edu_to_ram(0x400, *ir + 0x2000, 256);
    const bool kept = std::memcmp(ro.p, want.data(), kLen) == 0;
    auto walk = e->dma("vtd", ioas::DmaDir::kWrite, *ir + 0x2000, 256);
    std::memset(a.p, 0, kLen);
    done = done && edu.ram_to_edu(*ir + 0x100, 0x500, 256) && edu.edu_to_ram(0x500, *ia, 256);
    const bool readable = std::memcmp(a.p, ro.p + 0x100, 256) == 0;
    const bool predicted = walk && walk->faulted && walk->fault_iova == *ir + 0x2000;
    c.check(done && kept && readable && predicted, "backend-read-only",
            "area " + hex(*ir) + " mapped r by the engine: device write " + (kept ? "blocked" : "LANDED") +
                " (the engine's walk: " + (predicted ? "fault" : "NO FAULT") + "), device read " +
                (readable ? "works" : "WRONG"));
  }

  // (d) refused by the engine before the kernel is asked.
  {
    const u64 calls = log->calls();
    auto r = e->map(io, {.iova = 0xfee00000, .len = ioas::kPage, .source = "a", .prot = Prot::kReadWrite});
    c.check(!r && r.code() == EINVAL && log->calls() == calls, "backend-msi-refused",
            "fixed map at 0xfee00000: " + (r ? std::string("ACCEPTED") : err_text(r.error())) + "; back end ioctls " +
                std::to_string(calls) + " -> " + std::to_string(log->calls()));
  }

  // (e) a cut, then one piece unmapped: the other still carries DMA.
  {
    auto ic = e->map(io, {.iova = std::nullopt, .len = kLen, .source = "c", .prot = Prot::kReadWrite});
    if (!ic) c.fatal("backend-cut", err_text(ic.error()));
    constexpr u64 kHalf = kLen / 2;
    // Why the back end must replace the mapping: asked directly, type1v2
    // refuses to unmap half of it.
    auto half = container.unmap_dma(*ic, kHalf);
    c.check(!half && half.code() == EINVAL, "kernel-refuses-bisect",
            "asked directly to unmap " + hex(*ic) + "+" + hex(kHalf) + " of the 64 KiB mapping, the kernel says " +
                (half ? "OK (" + hex(*half) + " bytes)" : err_text(half.error())));
    const u64 maps0 = log->map_calls, unmaps0 = log->unmap_calls, avail0 = dma_avail(container);
    auto st = e->cut(io, *ic + kHalf - 1);
    auto snap = e->snapshot(io);
    c.check(st.ok() && log->unmap_calls == unmaps0 + 1 && log->map_calls == maps0 + 2 &&
                dma_avail(container) == avail0 - 1 && snap && snap->areas.size() == 4,
            "backend-cut",
            st.ok() ? "cut at " + hex(*ic + kHalf) + ": the back end unmapped the whole and mapped two pieces (" +
                          calls_text(*log) + " in all); the kernel holds one more mapping"
                    : err_text(st.error()));
    auto um = e->unmap(io, *ic, kHalf);
    for (u64 i = 0; i < kLen; ++i) a.p[i] = static_cast<unsigned char>(i * 5 + 7);
    std::memset(cb.p, 0x11, kLen);
    constexpr u64 kOff = kHalf + 0x1f00;
    const bool done = um && *um == kHalf && edu.ram_to_edu(*ia + 0x800, 0x600, 256) &&
                      edu.edu_to_ram(0x600, *ic + kOff, 256);
    const bool ok = done && std::memcmp(cb.p + kOff, a.p + 0x800, 256) == 0 && all_equal(cb.p, kOff, 0x11) &&
                    all_equal(cb.p + kOff + 256, kLen - kOff - 256, 0x11);
    c.check(ok, "backend-cut-piece-dma",
            "left piece unmapped (" + (um ? hex(*um) : err_text(um.error())) + "); edu -> IOVA " + hex(*ic + kOff) +
                " in the right piece: " + (ok ? "bytes land, rest untouched" : "WRONG"));
    std::memset(cb.p, 0x22, kLen);
    const bool blocked = write_blocked(edu, *ia + 0x800, a.p + 0x800, *ic + 0x100, cb, 0x22);
    c.check(blocked, "backend-cut-left-gone",
            "edu -> " + hex(*ic + 0x100) + " in the unmapped left piece: C's memory " +
                (blocked ? "unchanged" : "WRITTEN"));
  }

  // (f) the kernel refuses: the engine reports its errno and changes nothing.
  for (const bool unmapped : {false, true}) {
    const std::string name = unmapped ? "backend-efault-unmapped" : "backend-efault-prot-none";
    NoAccess bad(kLen, unmapped);
    if (!bad.va) c.fatal(name, "mmap failed");
    const std::string src = unmapped ? "gone" : "none";
    if (!e->add_memory({src, bad.va, kLen, bad.va, true}).ok()) c.fatal(name, "add_memory failed");
    // What the kernel answers, asked directly.
    auto direct = container.map_dma(0x20000000, bad.va, kLen, Prot::kReadWrite);
    if (direct) (void)container.unmap_dma(0x20000000, kLen);
    auto before = e->snapshot(io);
    auto leaves_before = e->leaves("vtd", Range{0, 0xffffffff});
    const u64 avail = dma_avail(container), refused = log->refused;
    auto r = e->map(io, {.iova = std::nullopt, .len = kLen, .source = src, .prot = Prot::kReadWrite});
    auto after = e->snapshot(io);
    auto leaves_after = e->leaves("vtd", Range{0, 0xffffffff});
    const bool same = before && after && *before == *after && leaves_before && leaves_after &&
                      *leaves_before == *leaves_after;
    c.check(!direct && !r && r.code() == direct.code() && r.code() == EFAULT && same &&
                dma_avail(container) == avail && log->refused == refused + 1,
            name,
            std::string(unmapped ? "user memory unmapped" : "PROT_NONE user memory") + ": kernel asked directly says " +
                (direct ? std::string("OK") : ioas::errno_name(direct.code())) + "; engine map says " +
                (r ? std::string("OK") : err_text(r.error())) + "; snapshot and mirror " +
                (same ? "unchanged" : "CHANGED"));
    (void)e->remove_memory(src);
  }

  // The domain goes with the engine: the kernel is empty again.
  e.reset();
  c.check(dma_avail(container) == full && log->problems.empty(), "backend-teardown",
          "engine destroyed: kernel budget back to " + std::to_string(dma_avail(container)) + " of " +
              std::to_string(full) + "; " + calls_text(*log) + ", " + std::to_string(log->refused) +
              " refused, problems: " + (log->problems.empty() ? "none" : log->problems.front()));

  // A kernel refusal during attach (filling the new domain with existing
  // areas): the attach fails with the kernel's errno and the half-filled
  // table unmaps what it had mapped.
  {
    auto log3 = std::make_shared<vfio::KernelLog>();
    auto e3 = vfio_engine(container, log3);
    NoAccess bad(kLen, false);
    bool ok = e3->create_ioas(io, {.zero_page = ioas::ZeroPage::kAllowed}).ok() &&
              e3->add_memory({"a", a.va(), kLen, a.va(), true}).ok() &&
              e3->add_memory({"none", bad.va, kLen, bad.va, true}).ok() &&
              e3->map(io, {.iova = 0x100000, .len = kLen, .source = "a", .prot = Prot::kReadWrite}).ok() &&
              e3->map(io, {.iova = 0x200000, .len = kLen, .source = "none", .prot = Prot::kReadWrite}).ok();
    auto before = e3->snapshot(io);
    auto st = e3->attach(io, args);
    auto after = e3->snapshot(io);
    const bool same = before && after && *before == *after && after->domains.empty();
    c.check(ok && st.code() == EFAULT && same && dma_avail(container) == full && log3->map_calls == 2 &&
                log3->unmap_calls == 1 && log3->problems.empty(),
            "backend-attach-rollback",
            "attach over an area the kernel cannot pin: " + (st.ok() ? std::string("ACCEPTED") : err_text(st.error())) +
                "; " + calls_text(*log3) + ", kernel budget " + std::to_string(dma_avail(container)) +
                ", snapshot " + (same ? "unchanged" : "CHANGED"));
  }
}

// (g) A trace of map/unmap/cut/copy, replayed line by line on the model and
// on a VFIO-backed engine: the same outcome on every line, no kernel call on
// any refused line, the same final state, and the kernel holding exactly the
// engine's areas.
std::string attach_line(const ioas::AttachArgs& a) {
  std::string pg;
  for (u64 b = 1; b; b <<= 1)
    if (a.pgsize_bitmap.value_or(0) & b) pg += (pg.empty() ? "" : ",") + hex(b);
  std::string resv;
  for (const auto& r : a.resv)
    resv += (resv.empty() ? "" : ",") + hex(r.range.start) + "-" + hex(r.range.last) + ":" + ioas::to_string(r.type);
  return "attach dev=" + a.dev + " dom=" + a.dom + " fmt=" + ioas::to_string(a.fmt.value_or(ioas::Format::kX86_64)) +
         " aperture=" + hex(a.aperture->start) + "-" + hex(a.aperture->last) + " pgsizes=" + pg +
         (resv.empty() ? "" : " resv=" + resv);
}

void trace_checks(Checks& c, vfio::Container& container, Edu& edu, const ioas::AttachArgs& args) {
  namespace trace = ioas::trace;
  constexpr u64 kLen = 256 << 10;
  Buffer t(kLen);
  if (!t.p) c.fatal("trace-replay", "mmap failed");
  const std::string text =
      "# written by hw/vm/vm_test.cpp: the user memory is a real buffer of the guest\n"
      "mem t va=" + hex(t.va()) + " len=256K\n" +
      attach_line(args) + "\n"
      "map len=64K src=t prot=rw\n"
      "map len=16K src=t+64K prot=r\n"
      "map iova=0x30000000 len=64K src=t+128K prot=rw\n"
      "cut iova=0x30007fff\n"
      "unmap iova=0x30000000 len=16K\n"                 // bisects the left piece: ENOENT
      "unmap iova=0x30000000 len=32K\n"
      "map iova=0xfee00000 len=4K src=t prot=rw\n"      // the MSI window: EINVAL
      "map iova=0x30008000 len=4K src=t prot=rw\n"      // overlaps the right piece: EEXIST
      "map iova=0x30000000 len=8K src=t+192K prot=rw\n" // where the left piece was
      "copy from=default iova=0x30008000 len=32K prot=rw\n"
      "cut iova=0x3000bfff\n"
      "translate dom=vtd iova=0x3000c000\n"
      "uva iova=0x30001000\n"
      "dma dom=vtd write iova=0x30008000 len=16K\n"
      "ranges\n"
      "check\n";
  auto parsed = trace::parse_trace(text, "vm-backend.trace");
  if (!parsed) c.fatal("trace-replay", err_text(parsed.error()));
  const u64 full = dma_avail(container);
  auto log = std::make_shared<vfio::KernelLog>();
  auto kernel = vfio_engine(container, log);
  auto model = ioas::make_model_engine();
  std::string cur_k = "default", cur_m = "default";
  const bool made = kernel->create_ioas("default", {}).ok() && model->create_ioas("default", {}).ok();
  int agree = 0, errors = 0, silent = 0;
  std::string first_bad;
  for (const trace::Line& line : parsed->lines) {
    const u64 calls = log->calls();
    const trace::EngineAnswer k = trace::execute(*kernel, cur_k, line.op);
    const trace::EngineAnswer m = trace::execute(*model, cur_m, line.op);
    const bool same = k.outcome == m.outcome;
    const bool is_error = k.outcome.kind == trace::OutcomeKind::kError;
    if (same) ++agree;
    if (is_error) ++errors;
    if (is_error && log->calls() == calls) ++silent;
    if ((!same || (is_error && log->calls() != calls)) && first_bad.empty())
      first_bad = line.text + ": kernel-backed " + trace::to_string(k.outcome) + " (" + k.note + "), model " +
                  trace::to_string(m.outcome);
  }
  const int n = static_cast<int>(parsed->lines.size());
  auto sk = kernel->snapshot("default");
  auto sm = model->snapshot("default");
  const bool states = sk && sm && *sk == *sm;
  c.check(made && agree == n && silent == errors && errors == 3 && states, "trace-replay",
          first_bad.empty() ? std::to_string(n) + " lines on the model and on the VFIO-backed engine: every outcome "
                              "equal, the 3 refused lines issued no ioctl, final snapshots " +
                                  std::string(states ? "equal" : "DIFFER") + " (" + calls_text(*log) + ")"
                            : "first disagreement: " + first_bad);
  // The kernel holds one mapping per area of the final state, and a device
  // write into the copy (an area the trace made automatically) lands in the
  // trace's buffer at the offset the engine gives.
  {
    const std::size_t areas = sk ? sk->areas.size() : 0;
    const u64 held = full - dma_avail(container);
    u64 copy_iova = 0;
    if (sk)
      for (const auto& a : sk->areas)
        if (a.offset == 128 * 1024 + 0x8000 && a.iova.start != 0x30008000) copy_iova = a.iova.start;
    bool lands = false;
    if (copy_iova) {
      std::memset(t.p, 0x99, kLen);
      Buffer src(ioas::kPage);
      for (u64 i = 0; i < ioas::kPage; ++i) src.p[i] = static_cast<unsigned char>(i ^ 0x5c);
      auto us = kernel->uva("default", copy_iova + 0x2000);
      // The device reads what it writes from edu's buffer: prime it from the
      // trace's own area at 0x30000000 (rw, t+192K).
      std::memcpy(t.p + 192 * 1024, src.p, 256);
      lands = us && edu.ram_to_edu(0x30000000, 0x700, 256) && edu.edu_to_ram(0x700, copy_iova + 0x2000, 256) &&
              *us == t.va() + 128 * 1024 + 0x8000 + 0x2000 &&
              std::memcmp(t.p + 128 * 1024 + 0x8000 + 0x2000, src.p, 256) == 0;
    }
    c.check(held == areas && areas > 0 && lands, "trace-kernel-state",
            std::to_string(areas) + " areas after the trace, the kernel holds " + std::to_string(held) +
                " mappings; edu -> the copy at " + hex(copy_iova + 0x2000) + ": " +
                (lands ? "lands" : "DOES NOT LAND"));
  }
  auto all = kernel->unmap_all("default");
  kernel.reset();
  c.check(all && dma_avail(container) == full && log->problems.empty(), "trace-teardown",
          "unmap all + engine destroyed: kernel budget back to " + std::to_string(dma_avail(container)) +
              ", problems: " + (log->problems.empty() ? "none" : log->problems.front()));
}

// (h) The `ioas ranges` command (the binary, from the initramfs) on the
// group's live reserved_regions, with the container's aperture: its valid
// ranges are the kernel's.
void ranges_cli_check(Checks& c, int group, const std::vector<Range>& kranges, const Range& hull) {
  const std::string file = "/sys/kernel/iommu_groups/" + std::to_string(group) + "/reserved_regions";
  const std::string cmd = "/ioas ranges --aperture " + hex(hull.start) + "-" + hex(hull.last) + " " + file + " 2>&1";
  if (::access("/ioas", X_OK) != 0) {
    c.check(false, "ioas-ranges-cli", "/ioas is not in the initramfs");
    return;
  }
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  if (p) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
  }
  const int status = p ? ::pclose(p) : -1;
  std::vector<Range> valid;
  std::size_t pos = 0;
  while ((pos = out.find("valid ", pos)) != std::string::npos) {
    char* end = nullptr;
    const u64 s = std::strtoull(out.c_str() + pos + 6, &end, 16);
    const u64 l = (end && *end == '-') ? std::strtoull(end + 1, &end, 16) : 0;
    valid.push_back(Range{s, l});
    pos += 6;
  }
  const bool ok = status == 0 && valid == kranges;
  c.check(ok, "ioas-ranges-cli",
          "`ioas ranges --aperture " + ioas::to_string(hull) + " " + file + "` (exit " +
              std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + "): " + ioas::to_string(valid) +
              (ok ? " = the container's" : " but the container has " + ioas::to_string(kranges)));
}

int run() {
  Checks c("IOAS-VM-TEST");

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
  const std::vector<ioas::ResvRegion> regions = check_reserved_regions(c, *group);
  bool msi_excluded = true;
  for (const auto& r : kranges)
    if (r.overlaps(kMsiWindow)) msi_excluded = false;
  c.check(msi_excluded, "kernel-excludes-msi", "no valid range touches " + ioas::to_string(kMsiWindow));
  const std::vector<Range> predicted = ioas::resv::vfio_valid_ranges(hull, regions);
  c.check(predicted == kranges, "vfio-exclude-rule",
          "aperture " + ioas::to_string(hull) + " minus reserved_regions = " + ioas::to_string(predicted) +
              (predicted == kranges ? " = the kernel's" : " but the kernel has " + ioas::to_string(kranges)));

  // ---- the engine, attached with the kernel's geometry ----
  auto args = vfio::attach_args_from(*info, "edu", "vtd", regions);
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
  Edu edu = open_edu(dev, c, "");

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

  backend_checks(c, container, edu, *info, *args);
  trace_checks(c, container, edu, *args);
  ranges_cli_check(c, *group, kranges, hull);
  return c.finish();
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("IOAS-VM-TEST: start\n");
  return run();
}
