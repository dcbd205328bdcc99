/* hw/tests/x86_layout.h: the guest-physical layout of the x86 scenario
 * (tests/x86_scenario.hpp). One copy for every side that needs it: the host
 * code that builds the scenario, the KVM test's program and the TCG guest
 * (tcg/x86_guest_*), which includes it from C++ and from assembly, so only
 * plain #defines live here. */
#ifndef IOAS_HW_TESTS_X86_LAYOUT_H
#define IOAS_HW_TESTS_X86_LAYOUT_H

/* Page 0 is left out of the table (a null access faults). The TCG guest
 * reads its hand-off block there before it turns paging on:
 * { u32 magic, u32 zero, u64 cr3 }. */
#define X86_HANDOFF 0x0f00
#define X86_HANDOFF_MAGIC 0x53414f49 /* "IOAS" */

/* The guest's own pages, identity mapped with 4K read-write leaves: its
 * program and data from X86_GUEST_BASE, its stack below X86_GUEST_STACK_TOP,
 * then the command list. */
#define X86_GUEST_BASE 0x1000
#define X86_GUEST_STACK_TOP 0x8000
#define X86_GUEST_STACK_SIZE 0x2000 /* the program must end below TOP - SIZE */

/* Commands { u64 op, addr, value }, 24 bytes each, ended by op 0.
 * op 1 reads the qword at addr into value, op 2 writes value to addr. */
#define X86_CMDS 0x8000
#define X86_CMDS_END 0x10000
#define X86_CMD_SIZE 24
#define X86_OP_STOP 0
#define X86_OP_READ 1
#define X86_OP_WRITE 2

/* The page-table pages. */
#define X86_ARENA 0x100000
#define X86_ARENA_END 0x200000

#endif
