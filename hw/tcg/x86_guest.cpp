// hw/tcg/x86_guest.cpp: the TCG guest's program, in long mode on our table.
//
// x86_guest_boot.S brings the CPU from reset to long mode with CR3 = the
// scenario's table (tests/x86_scenario.hpp) and calls guest_main, which
// installs the exception handlers, performs the command list and reports
// over COM1, one line per event, numbers in hexadecimal:
//   CPUID 80000001 EDX <edx> PDPE1GB <0|1>   whether 1G leaves are walked
//   CR3 <cr3>                                the table the MMU walks
//   R <index> <value>   a read; the value is also stored in the command
//   W <index>           a write that completed
//   PF <index> <cr2> <error>   the command's access took a #PF and was skipped
//   DONE <count>        every command was performed
//   EXCEPTION <vector> <error> <rip> <cr2>   anything else: the run ends
// and ends QEMU through isa-debug-exit (port 0xf4): code 0 when the list is
// done, 1 after an unexpected exception or command (QEMU exits with 2 code + 1).
#include "tests/x86_layout.h"

namespace {

using u8 = unsigned char;
using u16 = unsigned short;
using u32 = unsigned int;
using u64 = unsigned long;

constexpr u16 kCom1 = 0x3f8;
constexpr u16 kDebugExit = 0xf4;
constexpr u64 kPageFault = 14;

void outb(u16 port, u8 v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
void outl(u16 port, u32 v) { asm volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
u8 inb(u16 port) {
  u8 v;
  asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

// QEMU's 16550 sends at any baud rate, so the UART needs no set-up; the
// transmitter is still polled as on hardware.
void put(char c) {
  while (!(inb(kCom1 + 5) & 0x20)) {  // LSR: transmit holding register empty
  }
  outb(kCom1, static_cast<u8>(c));
}
void put(const char* s) {
  while (*s) put(*s++);
}
void put_hex(u64 v) {
  char digits[16];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  while (n) put(digits[--n]);
}
// A line of a keyword and numbers.
void report(const char* keyword, const u64* values, int n) {
  put(keyword);
  for (int i = 0; i < n; ++i) {
    put(' ');
    put_hex(values[i]);
  }
  put('\n');
}

[[noreturn]] void finish(u32 code) {
  outl(kDebugExit, code);
  for (;;) asm volatile("cli; hlt");
}

u64 read_cr2() {
  u64 v;
  asm volatile("mov %%cr2, %0" : "=r"(v));
  return v;
}
u64 read_cr3() {
  u64 v;
  asm volatile("mov %%cr3, %0" : "=r"(v));
  return v;
}
void cpuid(u32 leaf, u32 out[4]) {
  asm volatile("cpuid" : "=a"(out[0]), "=b"(out[1]), "=c"(out[2]), "=d"(out[3]) : "a"(leaf), "c"(0));
}

struct Cmd {
  u64 op, addr, value;
};
static_assert(sizeof(Cmd) == X86_CMD_SIZE);

// What exception_common pushed, then the CPU's frame.
struct Frame {
  u64 r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
  u64 vector, error;
  u64 rip, cs, rflags, rsp, ss;
};

// A 64-bit interrupt gate.
struct Gate {
  u16 offset_lo, selector, attributes, offset_mid;
  u32 offset_hi, zero;
};
static_assert(sizeof(Gate) == 16);
Gate idt[32];

volatile u64 current;   // the command being performed
volatile bool faulted;  // its access took a #PF

}  // namespace

extern "C" {
// x86_guest_boot.S.
u64 probe_read(u64 addr);
void probe_write(u64 addr, u64 value);
extern const char probe_read_access[], probe_read_resume[], probe_write_access[], probe_write_resume[];
extern const char exception_vectors[];

// Every exception comes here. A #PF of a command's access is the expected
// kind: report it and resume after the access. Anything else (a #PF
// elsewhere means our own pages are not mapped as they must be) ends the run.
void exception(Frame* f) {
  const u64 cr2 = read_cr2();
  const u64 rip = f->rip;
  const u64 read_at = reinterpret_cast<u64>(probe_read_access);
  const u64 write_at = reinterpret_cast<u64>(probe_write_access);
  if (f->vector == kPageFault && (rip == read_at || rip == write_at)) {
    const u64 line[] = {current, cr2, f->error};
    report("PF", line, 3);
    f->rip = reinterpret_cast<u64>(rip == read_at ? probe_read_resume : probe_write_resume);
    faulted = true;
    return;
  }
  const u64 line[] = {f->vector, f->error, rip, cr2};
  report("EXCEPTION", line, 4);
  finish(1);
}

[[noreturn]] void guest_main() {
  for (u64 v = 0; v < 32; ++v) {
    const u64 h = reinterpret_cast<u64>(exception_vectors) + 16 * v;
    idt[v].offset_lo = static_cast<u16>(h);
    idt[v].selector = 0x18;      // 64-bit code (x86_guest_boot.S's GDT)
    idt[v].attributes = 0x8e00;  // present, DPL 0, interrupt gate
    idt[v].offset_mid = static_cast<u16>(h >> 16);
    idt[v].offset_hi = static_cast<u32>(h >> 32);
    idt[v].zero = 0;
  }
  struct [[gnu::packed]] {
    u16 limit;
    u64 base;
  } idtr{sizeof idt - 1, reinterpret_cast<u64>(idt)};
  asm volatile("lidt %0" : : "m"(idtr));

  // 1G leaves need pdpe1gb (CPUID 0x80000001 EDX bit 26); the host decides.
  u32 r[4];
  cpuid(0x80000000, r);
  u64 edx = 0;
  if (r[0] >= 0x80000001) {
    cpuid(0x80000001, r);
    edx = r[3];
  }
  put("CPUID 80000001 EDX ");
  put_hex(edx);
  put(" PDPE1GB ");
  put_hex((edx >> 26) & 1);
  put('\n');
  const u64 cr3 = read_cr3();
  report("CR3", &cr3, 1);

  Cmd* cmds = reinterpret_cast<Cmd*>(X86_CMDS);
  const u64 max = (X86_CMDS_END - X86_CMDS) / X86_CMD_SIZE;
  u64 i = 0;
  for (; i < max && cmds[i].op != X86_OP_STOP; ++i) {
    current = i;
    faulted = false;
    Cmd& c = cmds[i];
    if (c.op == X86_OP_READ) {
      const u64 v = probe_read(c.addr);
      if (faulted) continue;
      c.value = v;
      const u64 line[] = {i, v};
      report("R", line, 2);
    } else if (c.op == X86_OP_WRITE) {
      probe_write(c.addr, c.value);
      if (faulted) continue;
      report("W", &i, 1);
    } else {
      const u64 line[] = {i, c.op};
      report("BADOP", line, 2);
      finish(1);
    }
  }
  report("DONE", &i, 1);
  finish(0);
}
}
