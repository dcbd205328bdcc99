// hw/kvm/kvm_test.cpp: an x86 MMU walks a table our code built.
//
// We build a random x86-64 table with hw/ (4K and 2M leaves, 1G where the
// guest CPUID offers pdpe1gb), place it in a KVM guest's RAM, point CR3 at
// it and run a small long-mode program that reads and writes through IOVAs.
// On a VMX/SVM host the CPU walks the table; on PVM hosts KVM's shadow MMU
// (the kernel's implementation of the x86 paging rules) walks it and the CPU
// runs through the shadow. Either way an implementation of x86 paging that
// is not ours decides each access. We then check that
//   - every read returned the bytes at the physical address our table gives,
//     and every write landed there;
//   - every access we leave unmapped or map read-only faulted, with CR2 = the
//     address and the architectural error code (0 / 2 not present, 3 write
//     protect), reported by the guest's #PF handler through port I/O (it then
//     skips the 3-byte faulting instruction and carries on);
//   - the hardware-set D bits are exactly the leaves written, and our
//     read_and_clear_dirty reports them (and then reports nothing), and the
//     leaves used have A set.
// The same scenario also runs on our software walker (always, KVM or not),
// so its expectations are exercised even where /dev/kvm is absent; the KVM
// test itself then reports SKIPPED, never passed.
//
// The guest program is machine code bytes (assembled once by hand, listing
// beside the bytes); no assembler is needed at build time.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "formats.hpp"
#include "kvm/kvm_abi.hpp"
#include "pagetable.hpp"
#include "walker.hpp"

namespace ioas::hw {
namespace {

// Guest physical layout.
constexpr u64 kCode = 0x1000;     // entry; the #PF handler at kCode + 0x80
constexpr u64 kIdt = 0x2000;
constexpr u64 kGdt = 0x3000;
constexpr u64 kStackTop = 0x8000;
constexpr u64 kCmds = 0x8000;     // commands {op, addr, value}, 24 bytes each
constexpr u64 kCmdsEnd = 0x10000;
constexpr u64 kArena = 0x100000;  // page-table pages
constexpr u64 kArenaEnd = 0x200000;
constexpr u64 kSmallRam = 64 << 20;
constexpr u64 kBigRam = u64{2} << 30;  // when 1G leaves are offered: a 1G leaf at GPA 1G

// The guest program. rsi = command list; op 0 = stop, 1 = read qword at
// addr into value, 2 = write value to addr. Both accesses are 3-byte
// instructions, which the #PF handler skips.
const unsigned char kProgram[] = {
    0x48, 0x8b, 0x0e,              // 00: mov rcx, [rsi]
    0x48, 0x85, 0xc9,              // 03: test rcx, rcx
    0x74, 0x20,                    // 06: jz 28
    0x48, 0x8b, 0x5e, 0x08,        // 08: mov rbx, [rsi+8]
    0x48, 0x8b, 0x46, 0x10,        // 0c: mov rax, [rsi+16]
    0x48, 0x83, 0xf9, 0x01,        // 10: cmp rcx, 1
    0x74, 0x05,                    // 14: je 1b
    0x48, 0x89, 0x03,              // 16: mov [rbx], rax      (write)
    0xeb, 0x07,                    // 19: jmp 22
    0x48, 0x8b, 0x03,              // 1b: mov rax, [rbx]      (read)
    0x48, 0x89, 0x46, 0x10,        // 1e: mov [rsi+16], rax
    0x48, 0x83, 0xc6, 0x18,        // 22: add rsi, 24
    0xeb, 0xd8,                    // 26: jmp 00
    0xf4,                          // 28: hlt
    0xeb, 0xfd,                    // 29: jmp 28
};
const unsigned char kPfHandler[] = {
    0x50,                          // 80: push rax
    0x52,                          // 81: push rdx
    0x0f, 0x20, 0xd0,              // 82: mov rax, cr2
    0x66, 0xba, 0x10, 0x00,        // 85: mov dx, 0x10
    0xef,                          // 89: out dx, eax          (CR2 low)
    0x48, 0xc1, 0xe8, 0x20,        // 8a: shr rax, 32
    0x66, 0xba, 0x11, 0x00,        // 8e: mov dx, 0x11
    0xef,                          // 92: out dx, eax          (CR2 high)
    0x48, 0x8b, 0x44, 0x24, 0x10,  // 93: mov rax, [rsp+16]    (error code)
    0x66, 0xba, 0x12, 0x00,        // 98: mov dx, 0x12
    0xef,                          // 9c: out dx, eax
    0x48, 0x89, 0xf0,              // 9d: mov rax, rsi
    0x66, 0xba, 0x13, 0x00,        // a0: mov dx, 0x13
    0xef,                          // a4: out dx, eax          (command pointer)
    0x48, 0x83, 0x44, 0x24, 0x18, 0x03,  // a5: add qword [rsp+24], 3 (skip the access)
    0x5a,                          // ab: pop rdx
    0x58,                          // ac: pop rax
    0x48, 0x83, 0xc4, 0x08,        // ad: add rsp, 8           (drop the error code)
    0x48, 0xcf,                    // b1: iretq
};

struct Cmd {
  u64 op, addr, value;
};
struct PfReport {
  u64 index, cr2, error;
  friend bool operator==(const PfReport&, const PfReport&) = default;
};
std::ostream& operator<<(std::ostream& os, const PfReport& r) {
  return os << "{cmd " << r.index << " cr2 0x" << std::hex << r.cr2 << " err " << r.error << std::dec << "}";
}

u64 pattern(u64 pa) { return (pa * 0x9e3779b97f4a7c15ull) ^ 0x5a5a00000000a5a5ull; }
constexpr u64 kMarker = 0xdeadbeefcafef00dull;

// A random table in guest RAM and the commands that probe it.
struct Scenario {
  u64 ram_size = 0;
  unsigned char* ram = nullptr;
  std::unique_ptr<ArenaPageMemory> mem;
  std::unique_ptr<PageTable> pt;
  std::vector<Cmd> cmds;
  std::vector<PfReport> expect_faults;
  Range test_region{};            // IOVAs of the random mappings
  std::set<u64> written_leaves;   // leaf IOVAs written successfully
  std::set<u64> used_leaves;      // leaf IOVAs accessed successfully
  std::set<u64> sizes_used;       // leaf sizes the commands touch

  ~Scenario() {
    pt.reset();
    if (ram) munmap(ram, ram_size);
  }
  u64 load(u64 pa) const {
    u64 v;
    std::memcpy(&v, ram + pa, 8);
    return v;
  }
  void store(u64 pa, u64 v) { std::memcpy(ram + pa, &v, 8); }
};

void build(Scenario& s, std::uint64_t seed, bool gbpages) {
  s.ram_size = gbpages ? kBigRam : kSmallRam;
  void* p = mmap(nullptr, s.ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  s.ram = static_cast<unsigned char*>(p);
  s.mem = std::make_unique<ArenaPageMemory>(s.ram + kArena, kArena, kArenaEnd - kArena);
  TableConfig cfg;
  cfg.format = Format::kX86_64;
  cfg.pgsize_bitmap = k4K | k2M | (gbpages ? k1G : 0);
  cfg.preset_accessed = false;  // so that the walker visibly sets A
  auto t = make_page_table(cfg, *s.mem);
  ASSERT_TRUE(t.ok());
  s.pt = std::move(t).value();

  // The guest's own pages, identity mapped with 4K leaves.
  ASSERT_TRUE(s.pt->map({kCode, kCode, kCmdsEnd - kCode, Prot::kReadWrite, 0, k4K}).ok());
  std::memcpy(s.ram + kCode, kProgram, sizeof kProgram);
  std::memcpy(s.ram + kCode + 0x80, kPfHandler, sizeof kPfHandler);
  // IDT vector 14: a 64-bit interrupt gate to the handler, selector 0x08.
  const u64 h = kCode + 0x80;
  const u64 gate_lo = (h & 0xffff) | (u64{0x08} << 16) | (u64{0x8e} << 40) | (((h >> 16) & 0xffff) << 48);
  s.store(kIdt + 14 * 16, gate_lo);
  s.store(kIdt + 14 * 16 + 8, h >> 32);
  s.store(kGdt + 8, 0x00af9b000000ffffull);   // 0x08: 64-bit code, DPL 0
  s.store(kGdt + 16, 0x00cf93000000ffffull);  // 0x10: data

  std::mt19937_64 rng(seed);
  const u64 base2m = u64{256} << 30, base4k = u64{300} << 30, base1g = u64{512} << 30;
  s.test_region = Range{base2m, base1g + k1G - 1};
  struct Map {
    u64 iova, len, pa;
    Prot prot;
  };
  std::vector<Map> maps;
  // 2M leaves: 12 of 24 slots, each on its own 2M chunk of RAM (chunks 1..).
  std::vector<u64> chunks;
  for (u64 c = 1; c < kSmallRam / k2M - 4; ++c) chunks.push_back(c * k2M);
  std::shuffle(chunks.begin(), chunks.end(), rng);
  std::vector<u64> slots2m(24);
  for (u64 i = 0; i < 24; ++i) slots2m[i] = i;
  std::shuffle(slots2m.begin(), slots2m.end(), rng);
  for (int i = 0; i < 12; ++i)
    maps.push_back({base2m + slots2m[i] * k2M, k2M, chunks[i], rng() % 3 ? Prot::kReadWrite : Prot::kRead});
  // 4K runs of 1..4 pages, on 4K pages of the last 4 chunks, shuffled.
  std::vector<u64> pages;
  for (u64 pa = kSmallRam - 4 * k2M; pa < kSmallRam; pa += k4K) pages.push_back(pa);
  std::shuffle(pages.begin(), pages.end(), rng);
  u64 next_page = 0, iova = base4k;
  for (int i = 0; i < 16; ++i) {
    iova += k4K * (1 + rng() % 3);  // a hole before each run
    const u64 n = 1 + rng() % 4;
    const Prot prot = rng() % 3 ? Prot::kReadWrite : Prot::kRead;
    for (u64 k = 0; k < n; ++k) maps.push_back({iova + k * k4K, k4K, pages[next_page++], prot});
    iova += n * k4K;
  }
  if (gbpages) maps.push_back({base1g, k1G, k1G, Prot::kReadWrite});
  for (const Map& m : maps) ASSERT_TRUE(s.pt->map({m.iova, m.pa, m.len, m.prot}).ok());

  // Commands: inside every mapping 1..3 accesses, and probes of the holes.
  std::set<u64> used_pa;
  auto leaf_of = [&](u64 a) {
    u64 r = 0;
    s.pt->for_each_leaf(Range{a, a}, [&](const Leaf& l) { r = l.iova; });
    return r;
  };
  auto add = [&](u64 addr, bool write) {
    const u64 idx = s.cmds.size();
    auto t = s.pt->translate(addr);
    if (!t) {
      s.expect_faults.push_back({idx, addr, write ? 2u : 0u});
      s.cmds.push_back({write ? 2u : 1u, addr, write ? rng() : kMarker});
      return;
    }
    if (!used_pa.insert(t->pa).second) return;
    if (write && t->prot != Prot::kReadWrite) {
      s.expect_faults.push_back({idx, addr, 3u});
      s.store(t->pa, pattern(t->pa));  // must stay
      s.cmds.push_back({2u, addr, rng()});
      return;
    }
    u64 size = 0;
    s.pt->for_each_leaf(Range{addr, addr}, [&](const Leaf& l) { size = l.size; });
    s.sizes_used.insert(size);
    s.used_leaves.insert(leaf_of(addr));
    if (write) s.written_leaves.insert(leaf_of(addr));
    s.store(t->pa, pattern(t->pa));
    s.cmds.push_back({write ? 2u : 1u, addr, write ? rng() : kMarker});
  };
  for (const Map& m : maps) {
    const int n = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < n; ++k) add(m.iova + (rng() % (m.len / 8)) * 8, rng() % 2);
  }
  for (int k = 0; k < 24; ++k) {  // holes: 2M slots left out, gaps between 4K runs
    add(base2m + slots2m[12 + k % 12] * k2M + (rng() % (k2M / 8)) * 8, rng() % 2);
  }
  for (u64 a = base4k; a < iova; a += k4K)
    if (!s.pt->translate(a)) add(a + 8 * (rng() % 512), rng() % 2);
  std::shuffle(s.cmds.begin(), s.cmds.end(), rng);
  // Faults are expected in command order: recompute after the shuffle.
  s.expect_faults.clear();
  for (u64 i = 0; i < s.cmds.size(); ++i) {
    const Cmd& c = s.cmds[i];
    auto t = s.pt->translate(c.addr);
    if (!t) s.expect_faults.push_back({i, c.addr, c.op == 2 ? 2u : 0u});
    else if (c.op == 2 && t->prot != Prot::kReadWrite) s.expect_faults.push_back({i, c.addr, 3u});
  }
  ASSERT_LT(kCmds + (s.cmds.size() + 1) * 24, kCmdsEnd);
  std::memcpy(s.ram + kCmds, s.cmds.data(), s.cmds.size() * 24);
  std::memset(s.ram + kCmds + s.cmds.size() * 24, 0, 24);  // op 0: stop
}

// What the run must have produced, whoever walked the table.
void check(Scenario& s, const std::vector<PfReport>& faults, const char* walker) {
  SCOPED_TRACE(walker);
  EXPECT_EQ(faults, s.expect_faults);
  std::set<u64> faulted;
  for (const auto& f : s.expect_faults) faulted.insert(f.index);
  for (u64 i = 0; i < s.cmds.size(); ++i) {
    const Cmd& c = s.cmds[i];
    const u64 after = s.load(kCmds + i * 24 + 16);
    auto t = s.pt->translate(c.addr);
    if (faulted.count(i)) {
      EXPECT_EQ(after, c.value) << "command " << i;
      if (t) {
        EXPECT_EQ(s.load(t->pa), pattern(t->pa)) << "read-only memory changed, command " << i;
      }
      continue;
    }
    ASSERT_TRUE(t);
    if (c.op == 1)
      EXPECT_EQ(after, pattern(t->pa)) << "read of 0x" << std::hex << c.addr << " pa 0x" << t->pa;
    else
      EXPECT_EQ(s.load(t->pa), c.value) << "write of 0x" << std::hex << c.addr << " pa 0x" << t->pa;
  }
  // Hardware-set D bits: exactly the leaves written; A on every leaf used.
  std::set<u64> dirty, accessed;
  s.pt->for_each_leaf(s.test_region, [&](const Leaf& l) {
    if (l.dirty) dirty.insert(l.iova);
    if (l.accessed) accessed.insert(l.iova);
  });
  EXPECT_EQ(dirty, s.written_leaves);
  for (u64 l : s.used_leaves) EXPECT_TRUE(accessed.count(l)) << "A not set on leaf 0x" << std::hex << l;
  // Our read-and-clear reports them, then nothing.
  DirtyBitmap bm(s.test_region.start, s.test_region.length(), k4K);
  EXPECT_EQ(s.pt->read_and_clear_dirty(s.test_region, &bm, false), s.written_leaves.size());
  u64 expect_units = 0;
  s.pt->for_each_leaf(s.test_region, [&](const Leaf& l) {
    if (s.written_leaves.count(l.iova)) {
      expect_units += l.size / k4K;
      for (u64 u = 0; u < l.size / k4K; u += 97) EXPECT_TRUE(bm.test((l.iova - s.test_region.start) / k4K + u));
    }
  });
  EXPECT_EQ(bm.count(), expect_units);
  EXPECT_EQ(s.pt->read_and_clear_dirty(s.test_region, nullptr, false), 0u);
}

// The guest's program, executed on our software walker.
std::vector<PfReport> run_on_walker(Scenario& s) {
  std::vector<PfReport> faults;
  for (u64 i = 0;; ++i) {
    Cmd c;
    std::memcpy(&c, s.ram + kCmds + i * 24, 24);
    if (c.op == 0) break;
    const bool write = c.op == 2;
    WalkResult w = walk_x86_64(*s.mem, s.pt->root(), c.addr, write);
    if (w.fault != Fault::kNone) {
      faults.push_back({i, c.addr, (w.fault == Fault::kReadOnly ? 1u : 0u) | (write ? 2u : 0u)});
      continue;
    }
    if (write)
      s.store(w.pa, c.value);
    else
      s.store(kCmds + i * 24 + 16, s.load(w.pa));
  }
  return faults;
}

TEST(KvmScenario, RunsOnTheSoftwareWalker) {
  for (std::uint64_t seed : {1, 2, 3}) {
    for (bool gb : {false, true}) {
      Scenario s;
      build(s, seed, gb);
      ASSERT_FALSE(HasFatalFailure());
      ASSERT_FALSE(s.expect_faults.empty());
      ASSERT_FALSE(s.written_leaves.empty());
      check(s, run_on_walker(s), "software walker");
    }
  }
}

// ---- KVM ----

// Each request number is the one a C program built against <linux/kvm.h>
// gets (x86-64), so the kernel recognises it. KVM_GET_SUPPORTED_CPUID and
// KVM_SET_CPUID2 are where the C++ layout of the header's struct kvm_cpuid2
// differs (kvm_abi.hpp): the header's own macros give 0xc00cae05 and
// 0x400cae90 in C++, which the kernel refuses with EINVAL.
TEST(KvmAbi, RequestNumbersAreTheKernels) {
  EXPECT_EQ(kvm_abi::kGetApiVersion, 0xae00u);
  EXPECT_EQ(kvm_abi::kCreateVm, 0xae01u);
  EXPECT_EQ(kvm_abi::kGetVcpuMmapSize, 0xae04u);
  EXPECT_EQ(kvm_abi::kGetSupportedCpuid, 0xc008ae05u);
  EXPECT_EQ(kvm_abi::kCreateVcpu, 0xae41u);
  EXPECT_EQ(kvm_abi::kSetUserMemoryRegion, 0x4020ae46u);
  EXPECT_EQ(kvm_abi::kRun, 0xae80u);
  EXPECT_EQ(kvm_abi::kGetRegs, 0x8090ae81u);
  EXPECT_EQ(kvm_abi::kSetRegs, 0x4090ae82u);
  EXPECT_EQ(kvm_abi::kGetSregs, 0x8138ae83u);
  EXPECT_EQ(kvm_abi::kSetSregs, 0x4138ae84u);
  EXPECT_EQ(kvm_abi::kSetCpuid2, 0x4008ae90u);
}

// The pitfall itself: if a future header or compiler lays kvm_cpuid2 out as
// C does, this tells us the workaround is no longer needed.
TEST(KvmAbi, CppLayoutOfKvmCpuid2DiffersFromC) {
  EXPECT_NE(sizeof(kvm_cpuid2), sizeof(kvm_abi::Cpuid2Header))
      << "C++ now lays struct kvm_cpuid2 out as C does";
  EXPECT_NE(static_cast<unsigned long>(KVM_GET_SUPPORTED_CPUID), kvm_abi::kGetSupportedCpuid);
}


void on_alarm(int) {}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

TEST(Kvm, X86CpuWalksOurTable) {
  Fd kvm{open("/dev/kvm", O_RDWR | O_CLOEXEC)};
  if (kvm.fd < 0) {
    const int e = errno;
    std::fprintf(stderr,
                 "\n*** hw.Kvm: SKIPPED: /dev/kvm cannot be opened (%s). The x86-64 table was NOT "
                 "checked by a real x86 MMU on this machine. ***\n\n",
                 std::strerror(e));
    GTEST_SKIP() << "/dev/kvm cannot be opened (" << std::strerror(e)
                 << "): the x86-64 page table was NOT checked by a real x86 MMU";
  }
  ASSERT_EQ(ioctl(kvm.fd, kvm_abi::kGetApiVersion, 0), KVM_API_VERSION);
  Fd vm{ioctl(kvm.fd, kvm_abi::kCreateVm, 0)};
  ASSERT_GE(vm.fd, 0) << std::strerror(errno);

  // The CPUID KVM supports: pass it to the guest, and use 1G leaves only
  // where pdpe1gb (CPUID 0x80000001 EDX bit 26) is offered.
  auto cpuid = std::make_unique<kvm_abi::Cpuid2>();
  cpuid->hdr.nent = kvm_abi::Cpuid2::kMaxEntries;
  ASSERT_EQ(ioctl(kvm.fd, kvm_abi::kGetSupportedCpuid, cpuid.get()), 0) << std::strerror(errno);
  bool gbpages = false;
  for (u64 i = 0; i < cpuid->hdr.nent; ++i)
    if (cpuid->entries[i].function == 0x80000001) gbpages = (cpuid->entries[i].edx >> 26) & 1;
  std::fprintf(stderr, "hw.Kvm: guest CPUID 0x80000001 EDX bit 26 (pdpe1gb) = %d\n", gbpages ? 1 : 0);

  for (std::uint64_t seed : {11, 12, 13}) {
    SCOPED_TRACE(seed);
    Scenario s;
    build(s, seed, gbpages);
    ASSERT_FALSE(HasFatalFailure());
    kvm_userspace_memory_region region{};
    region.slot = 0;
    region.guest_phys_addr = 0;
    region.memory_size = s.ram_size;
    region.userspace_addr = reinterpret_cast<u64>(s.ram);
    ASSERT_EQ(ioctl(vm.fd, kvm_abi::kSetUserMemoryRegion, &region), 0) << std::strerror(errno);
    Fd vcpu{ioctl(vm.fd, kvm_abi::kCreateVcpu, seed)};
    ASSERT_GE(vcpu.fd, 0) << std::strerror(errno);
    ASSERT_EQ(ioctl(vcpu.fd, kvm_abi::kSetCpuid2, cpuid.get()), 0) << std::strerror(errno);
    const int run_size = ioctl(kvm.fd, kvm_abi::kGetVcpuMmapSize, 0);
    ASSERT_GT(run_size, 0);
    auto* run = static_cast<kvm_run*>(mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu.fd, 0));
    ASSERT_NE(run, MAP_FAILED);

    kvm_sregs sregs{};
    ASSERT_EQ(ioctl(vcpu.fd, kvm_abi::kGetSregs, &sregs), 0);
    kvm_segment code{};
    code.base = 0;
    code.limit = 0xffffffff;
    code.selector = 0x08;
    code.type = 11;
    code.present = 1;
    code.s = 1;
    code.l = 1;
    code.g = 1;
    kvm_segment data = code;
    data.selector = 0x10;
    data.type = 3;
    data.l = 0;
    data.db = 1;
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.gdt.base = kGdt;
    sregs.gdt.limit = 23;
    sregs.idt.base = kIdt;
    sregs.idt.limit = 256 * 16 - 1;
    sregs.cr3 = s.pt->root();
    sregs.cr4 = 1u << 5;                 // PAE
    sregs.cr0 = 0x80050033;              // PE MP ET NE WP AM PG
    sregs.efer = (1u << 8) | (1u << 10);  // LME LMA
    ASSERT_EQ(ioctl(vcpu.fd, kvm_abi::kSetSregs, &sregs), 0) << std::strerror(errno);
    kvm_regs regs{};
    regs.rip = kCode;
    regs.rsp = kStackTop;
    regs.rsi = kCmds;
    regs.rflags = 2;
    ASSERT_EQ(ioctl(vcpu.fd, kvm_abi::kSetRegs, &regs), 0);

    struct sigaction sa{};
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, nullptr);  // no SA_RESTART: KVM_RUN returns EINTR
    alarm(20);
    std::vector<PfReport> faults;
    PfReport cur{};
    bool halted = false;
    for (int exits = 0; exits < 100000 && !halted; ++exits) {
      if (ioctl(vcpu.fd, kvm_abi::kRun, 0) < 0) {
        ADD_FAILURE() << "KVM_RUN: " << std::strerror(errno) << " (a hung guest times out after 20 s)";
        break;
      }
      switch (run->exit_reason) {
        case KVM_EXIT_HLT: halted = true; break;
        case KVM_EXIT_IO: {
          ASSERT_EQ(run->io.direction, KVM_EXIT_IO_OUT);
          std::uint32_t v;
          std::memcpy(&v, reinterpret_cast<char*>(run) + run->io.data_offset, 4);
          switch (run->io.port) {
            case 0x10: cur = PfReport{0, v, 0}; break;
            case 0x11: cur.cr2 |= u64{v} << 32; break;
            case 0x12: cur.error = v; break;
            case 0x13:
              cur.index = (v - kCmds) / 24;
              faults.push_back(cur);
              break;
            default: ADD_FAILURE() << "unexpected port 0x" << std::hex << run->io.port;
          }
          break;
        }
        default: {
          kvm_regs r{};
          ioctl(vcpu.fd, kvm_abi::kGetRegs, &r);
          ADD_FAILURE() << "unexpected exit " << run->exit_reason << " at rip 0x" << std::hex << r.rip
                        << " (8 = shutdown: a triple fault)";
          halted = true;
          alarm(0);
          break;
        }
      }
    }
    alarm(0);
    munmap(run, run_size);
    ASSERT_TRUE(halted);
    check(s, faults, "KVM x86 MMU");
    std::string sizes;
    for (u64 z : s.sizes_used) sizes += z == k4K ? " 4K" : z == k2M ? " 2M" : " 1G";
    std::fprintf(stderr, "hw.Kvm seed %llu: the x86 MMU checked leaves of sizes:%s; %zu accesses, %zu faults\n",
                 static_cast<unsigned long long>(seed), sizes.c_str(), s.cmds.size(), faults.size());
    // One memslot per VM at a time: drop it before the next scenario's RAM.
    region.memory_size = 0;
    ioctl(vm.fd, kvm_abi::kSetUserMemoryRegion, &region);
  }
}

}  // namespace
}  // namespace ioas::hw
