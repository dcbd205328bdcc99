// hw/tcg/arm/start.S: the guest's entry, exception vectors and the two probe
// instructions. QEMU's virt board enters an ELF image at EL1 (EL1h), MMU off.

    .section .text.start, "ax"
    .global _start
_start:
    ldr     x0, =stack_top
    mov     sp, x0
    adr     x0, vectors
    msr     vbar_el1, x0
    isb
    bl      guest_main
    b       power_off

// PSCI SYSTEM_OFF through HVC: the virt board's conduit when it emulates
// neither EL2 nor EL3.
    .global power_off
power_off:
    movz    x0, #0x0008
    movk    x0, #0x8400, lsl #16
    hvc     #0
1:  wfi
    b       1b

// probe_read(addr, if_faulted) -> the 8 bytes at addr; a data abort skips
// the load and if_faulted is returned.
    .global probe_read, probe_read_insn
probe_read:
    mov     x2, x0
    mov     x0, x1
probe_read_insn:
    ldr     x0, [x2]
    ret

// probe_write(addr, value)
    .global probe_write, probe_write_insn
probe_write:
probe_write_insn:
    str     x1, [x0]
    ret

// Sixteen vectors; each saves x0-x30 in a frame and calls
// on_exception(kind, frame) with kind = the vector's number (4 = a
// synchronous exception at EL1 on SP_EL1), then restores and returns.
    .macro  vector kind
    .balign 0x80
    sub     sp, sp, #256
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       save_rest
    .endm

    .balign 0x800
vectors:
    .irp    k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    vector  \k
    .endr

save_rest:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
    mov     x1, sp
    bl      on_exception
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    add     sp, sp, #256
    eret
