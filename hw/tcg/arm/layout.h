/* hw/tcg/arm/layout.h: the guest-physical layout and the shared area of the
 * AArch64 guest that walks an arm-lpae table under QEMU TCG. Included by the
 * freestanding guest (C) and by the host test (C++), so both sides read one
 * copy of every address and of the shared area's layout.
 *
 * QEMU's virt board: RAM from 0x40000000 (the DTB at its start, below the
 * guest image), the PL011 UART at 0x09000000. The guest image sits at
 * kArmGuestText (read-only, executable) and kArmGuestData (data, bss, stack:
 * writable); guest.ld asserts each fits its window. */
#ifndef IOAS_HW_TCG_ARM_LAYOUT_H
#define IOAS_HW_TCG_ARM_LAYOUT_H

#include <stdint.h>

#define ARM_RAM_BASE 0x40000000ull
#define ARM_UART_BASE 0x09000000ull
#define ARM_GUEST_TEXT 0x40200000ull   /* 64 KiB: .text, .rodata */
#define ARM_GUEST_DATA 0x40210000ull   /* 64 KiB: .data, .bss, the stack */
#define ARM_WINDOW_SIZE 0x10000ull
#define ARM_SHARED 0x40400000ull       /* struct ArmShared, 64 KiB */
#define ARM_TABLE_ARENA 0x40800000ull  /* page-table pages, 2 MiB */
#define ARM_TABLE_ARENA_SIZE 0x200000ull

#define ARM_MAX_CMDS 1024
#define ARM_MAX_FAULTS 1024
#define ARM_MAGIC 0x6c70616534386b34ull /* host -> guest: the commands are in place */

/* ArmShared.status, written by the guest. */
#define ARM_STATUS_RUNNING 1
#define ARM_STATUS_DONE 2
#define ARM_STATUS_UNEXPECTED 3  /* an exception other than a probe's data abort */
#define ARM_STATUS_NO_HAFDBS 4   /* ID_AA64MMFR1_EL1.HAFDBS < 2: no hardware AF and dirty state */
#define ARM_STATUS_BAD_MAGIC 5

/* ArmCmd.op */
#define ARM_OP_STOP 0
#define ARM_OP_READ 1  /* value := the 8 bytes at addr (left as it was on a fault) */
#define ARM_OP_WRITE 2 /* the 8 bytes at addr := value */

struct ArmCmd {
  uint64_t op, addr, value;
};

/* One data abort taken by a probe: ESR_EL1 and FAR_EL1 as the CPU gave them. */
struct ArmFault {
  uint64_t index, far, esr;
};

struct ArmShared {
  uint64_t magic;     /* host: ARM_MAGIC */
  uint64_t status;    /* guest: ARM_STATUS_* */
  uint64_t hafdbs;    /* guest: ID_AA64MMFR1_EL1.HAFDBS */
  uint64_t tcr;       /* guest: the TCR_EL1 it ran with */
  uint64_t nfaults;   /* guest: entries of faults[] */
  uint64_t unexpected_kind, unexpected_esr, unexpected_far, unexpected_elr;
  struct ArmFault faults[ARM_MAX_FAULTS];
  struct ArmCmd cmds[ARM_MAX_CMDS]; /* host fills, ends with ARM_OP_STOP */
};

#endif
