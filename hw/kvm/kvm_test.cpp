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
// The scenario (table, commands, check) is tests/x86_scenario.hpp's, the one
// QEMU's TCG MMU also walks (tcg/tcg_test.cpp). It also runs on our software
// walker here (always, KVM or not), so its expectations are exercised even
// where /dev/kvm is absent; the KVM test itself then reports SKIPPED, never
// passed.
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

#include "kvm/kvm_abi.hpp"
#include "pagetable.hpp"
#include "tests/x86_scenario.hpp"

namespace ioas::hw {
namespace {

using x86_scenario::build;
using x86_scenario::check;
using x86_scenario::PfReport;
using x86_scenario::run_on_walker;
using x86_scenario::Scenario;

// The program's place in the scenario's guest-physical layout
// (tests/x86_layout.h): code, IDT and GDT in the guest's own pages.
constexpr u64 kCode = X86_GUEST_BASE;  // entry; the #PF handler at kCode + 0x80
constexpr u64 kIdt = X86_GUEST_BASE + 0x1000;
constexpr u64 kGdt = X86_GUEST_BASE + 0x2000;
static_assert(kGdt + 0x1000 <= X86_GUEST_STACK_TOP - X86_GUEST_STACK_SIZE);

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

// The program, its #PF handler, IDT and GDT, into the scenario's RAM.
void load_program(Scenario& s) {
  std::memcpy(s.ram + kCode, kProgram, sizeof kProgram);
  std::memcpy(s.ram + kCode + 0x80, kPfHandler, sizeof kPfHandler);
  // IDT vector 14: a 64-bit interrupt gate to the handler, selector 0x08.
  const u64 h = kCode + 0x80;
  const u64 gate_lo = (h & 0xffff) | (u64{0x08} << 16) | (u64{0x8e} << 40) | (((h >> 16) & 0xffff) << 48);
  s.store(kIdt + 14 * 16, gate_lo);
  s.store(kIdt + 14 * 16 + 8, h >> 32);
  s.store(kGdt + 8, 0x00af9b000000ffffull);   // 0x08: 64-bit code, DPL 0
  s.store(kGdt + 16, 0x00cf93000000ffffull);  // 0x10: data
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
    load_program(s);
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
    regs.rsp = X86_GUEST_STACK_TOP;
    regs.rsi = X86_CMDS;
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
              cur.index = (v - X86_CMDS) / X86_CMD_SIZE;
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
    std::fprintf(stderr, "hw.Kvm seed %llu: the x86 MMU checked leaves of sizes:%s; %zu accesses, %zu faults\n",
                 static_cast<unsigned long long>(seed), s.sizes().c_str(), s.cmds.size(), faults.size());
    // One memslot per VM at a time: drop it before the next scenario's RAM.
    region.memory_size = 0;
    ioctl(vm.fd, kvm_abi::kSetUserMemoryRegion, &region);
  }
}

}  // namespace
}  // namespace ioas::hw
