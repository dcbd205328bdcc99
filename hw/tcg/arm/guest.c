/* hw/tcg/arm/guest.c: a freestanding AArch64 guest that runs the host's
 * commands through a stage-1 table the host built with hw/'s arm-lpae code.
 *
 * The host has written, in guest RAM (layout.h): the table (its root at
 * ARM_TABLE_ARENA, the first page of the arena), which identity-maps this
 * program, the UART and the shared area; and the commands. The guest turns
 * the MMU on with that table as TTBR0_EL1, runs every command through
 * probe_read / probe_write, and records each data abort those two
 * instructions take (index, FAR_EL1, ESR_EL1) before skipping them. Any other
 * exception is a failure: it is recorded and the guest powers off.
 *
 * Translation regime, as the arm-lpae format assumes (formats.hpp):
 *   TCR_EL1: T0SZ=16 (48-bit input), TG0=4K, IRGN0/ORGN0 write-back
 *   write-allocate, SH0 inner shareable, EPD1 (no TTBR1 walks), IPS 48 bits,
 *   HA (hardware access flag) and HD (hardware dirty state through DBM),
 *   which need FEAT_HAFDBS's second level (ID_AA64MMFR1_EL1.HAFDBS = 2).
 *   MAIR_EL1: index 1 = 0xff (normal, write-back), the only AttrIndx the
 *   format writes; index 0 = Device-nGnRnE, which the format never selects,
 *   so the UART is mapped as normal memory (TCG does not model the
 *   difference). */
#include "layout.h"

typedef uint64_t u64;

u64 probe_read(u64 addr, u64 if_faulted);
void probe_write(u64 addr, u64 value);
extern const char probe_read_insn[], probe_write_insn[];
void power_off(void) __attribute__((noreturn));

#define SYSREG_READ(name)                                 \
  ({                                                      \
    u64 v_;                                               \
    __asm__ volatile("mrs %0, " #name : "=r"(v_));        \
    v_;                                                   \
  })
#define SYSREG_WRITE(name, v) __asm__ volatile("msr " #name ", %0" ::"r"((u64)(v)) : "memory")

static volatile struct ArmShared* const shared = (volatile struct ArmShared*)ARM_SHARED;
static volatile uint32_t* const uart = (volatile uint32_t*)ARM_UART_BASE;
static u64 current;  /* the command being run */

static void putc_(char c) {
  while (uart[0x18 / 4] & (1u << 5)) {  /* UARTFR.TXFF */
  }
  uart[0] = (uint32_t)c;
}
static void puts_(const char* s) {
  for (; *s; ++s) putc_(*s);
}
static void puthex(u64 v) {
  puts_("0x");
  for (int i = 60; i >= 0; i -= 4) putc_("0123456789abcdef"[(v >> i) & 15]);
}

static void fail(u64 status) __attribute__((noreturn));
static void fail(u64 status) {
  shared->status = status;
  __asm__ volatile("dsb sy" ::: "memory");
  power_off();
}

void on_exception(u64 kind, u64* frame) {
  (void)frame;
  const u64 esr = SYSREG_READ(esr_el1), far = SYSREG_READ(far_el1), elr = SYSREG_READ(elr_el1);
  const u64 ec = esr >> 26;
  const int from_probe = elr == (u64)probe_read_insn || elr == (u64)probe_write_insn;
  if (kind == 4 && ec == 0x25 && from_probe && shared->nfaults < ARM_MAX_FAULTS) {
    volatile struct ArmFault* f = &shared->faults[shared->nfaults++];
    f->index = current;
    f->far = far;
    f->esr = esr;
    SYSREG_WRITE(elr_el1, elr + 4);
    return;
  }
  shared->unexpected_kind = kind;
  shared->unexpected_esr = esr;
  shared->unexpected_far = far;
  shared->unexpected_elr = elr;
  puts_("guest: unexpected exception kind ");
  puthex(kind);
  puts_(" esr ");
  puthex(esr);
  puts_(" far ");
  puthex(far);
  puts_(" elr ");
  puthex(elr);
  puts_("\n");
  fail(ARM_STATUS_UNEXPECTED);
}

void guest_main(void) {
  /* The MMU is still off: every access is Device memory, so shared is
   * touched with aligned 8-byte accesses only (-mstrict-align). */
  if (shared->magic != ARM_MAGIC) fail(ARM_STATUS_BAD_MAGIC);
  const u64 hafdbs = (SYSREG_READ(id_aa64mmfr1_el1) >> 0) & 15;
  shared->hafdbs = hafdbs;
  shared->nfaults = 0;
  shared->status = ARM_STATUS_RUNNING;
  puts_("guest: ID_AA64MMFR1_EL1.HAFDBS = ");
  puthex(hafdbs);
  puts_("\n");
  /* Every leaf is built with AF clear, and every writable leaf clean
   * (AP[2]=1 with DBM): without the hardware access flag the first fetch
   * after enabling the MMU takes an access flag fault, and without hardware
   * dirty state even this program's stack is read-only. */
  if (hafdbs < 2) fail(ARM_STATUS_NO_HAFDBS);

  const u64 tcr = 16u                  /* T0SZ */
                  | (1u << 8)          /* IRGN0: WBWA */
                  | (1u << 10)         /* ORGN0: WBWA */
                  | (3u << 12)         /* SH0: inner shareable */
                  | (0u << 14)         /* TG0: 4 KiB */
                  | (16u << 16)        /* T1SZ */
                  | (1u << 23)         /* EPD1 */
                  | (2ull << 30)       /* TG1: 4 KiB */
                  | (5ull << 32)       /* IPS: 48 bits */
                  | (1ull << 39)       /* HA */
                  | (1ull << 40);      /* HD */
  shared->tcr = tcr;
  SYSREG_WRITE(mair_el1, 0xff00ull);
  SYSREG_WRITE(tcr_el1, tcr);
  SYSREG_WRITE(ttbr0_el1, ARM_TABLE_ARENA);
  __asm__ volatile("msr pan, #0\n\tisb\n\ttlbi vmalle1\n\tdsb sy\n\tisb" ::: "memory");
  /* SCTLR_EL1: the RES1 bits of ARMv8.0 (29, 28, 22, 20, 11), SPAN (23: PAN
   * is left alone on exceptions, so EL1 keeps access to the AP[1]=1 pages
   * the format writes), I, C, M. */
  const u64 sctlr = (1u << 29) | (1u << 28) | (1u << 23) | (1u << 22) | (1u << 20) | (1u << 11) |
                    (1u << 12) | (1u << 2) | (1u << 0);
  SYSREG_WRITE(sctlr_el1, sctlr);
  __asm__ volatile("isb" ::: "memory");
  puts_("guest: MMU on, TCR_EL1 = ");
  puthex(tcr);
  puts_("\n");

  u64 n = 0;
  for (current = 0; current < ARM_MAX_CMDS; ++current) {
    volatile struct ArmCmd* c = &shared->cmds[current];
    if (c->op == ARM_OP_READ) {
      c->value = probe_read(c->addr, c->value);
    } else if (c->op == ARM_OP_WRITE) {
      probe_write(c->addr, c->value);
    } else {
      break;
    }
    ++n;
  }
  __asm__ volatile("dsb sy" ::: "memory");
  puts_("guest: ran ");
  puthex(n);
  puts_(" commands, ");
  puthex(shared->nfaults);
  puts_(" data aborts\n");
  shared->status = ARM_STATUS_DONE;
  __asm__ volatile("dsb sy" ::: "memory");
}
