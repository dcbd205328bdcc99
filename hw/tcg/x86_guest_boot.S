/* hw/tcg/x86_guest_boot.S: the TCG guest from reset to long mode on our
 * table, and the code that must be assembly: the exception entry points and
 * the two accesses that may fault.
 *
 * The image is QEMU's firmware (-bios), so nothing but this guest writes to
 * guest RAM: SeaBIOS would put its tables at the top of RAM and use low
 * memory, where the scenario keeps table pages and test data.
 * Layout: x86_guest.ld.in; addresses: tests/x86_layout.h. */
#include "tests/x86_layout.h"

#define SEL_CODE32 0x08
#define SEL_DATA 0x10
#define SEL_CODE64 0x18

/* ---- ROM, executed in place ---- */

	.section .reset, "ax"
	.code16
	.globl reset_vector
reset_vector:	/* 0xfffffff0: real mode, CS base 0xffff0000 */
	jmp	rom_start16
	.org	16, 0xf4

	.section .rom, "ax"
	.code16
rom_start16:
	cli
	/* lgdt addresses its operand through CS (base 0xffff0000). */
	lgdtl	%cs:(gdt_rom_ptr - 0xffff0000)
	movl	%cr0, %eax
	orl	$1, %eax		/* PE */
	movl	%eax, %cr0
	ljmpl	$SEL_CODE32, $rom_start32

	.code32
rom_start32:
	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	cld
	movl	$__image_lma, %esi	/* the program to its place in RAM */
	movl	$__image_start, %edi
	movl	$__image_size, %ecx
	rep movsb
	movl	$__bss_start, %edi
	movl	$__bss_size, %ecx
	xorl	%eax, %eax
	rep stosb
	movl	$enter_long_mode, %eax	/* RAM is 4G away: no relative jump reaches it */
	jmp	*%eax

	.balign	8
gdt_rom_ptr:	/* the GDT's copy in ROM, until the one in RAM exists */
	.word	gdt_end - gdt - 1
	.long	gdt_rom

/* ---- RAM (X86_GUEST_BASE), reached through our table once paging is on ---- */

	.section .text.entry, "ax"
	.code32
enter_long_mode:
	lgdtl	gdt_ptr		/* the CPU reads the GDT again on every exception */
	cmpl	$X86_HANDOFF_MAGIC, X86_HANDOFF
	jne	no_handoff
	cmpl	$0, X86_HANDOFF + 12	/* the table's root is below 4G */
	jne	no_handoff
	movl	%cr4, %eax
	orl	$0x20, %eax		/* PAE: long mode walks 64-bit entries */
	movl	%eax, %cr4
	movl	X86_HANDOFF + 8, %eax
	movl	%eax, %cr3		/* our table */
	movl	$0xc0000080, %ecx	/* EFER.LME */
	rdmsr
	orl	$0x100, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$0x80010000, %eax	/* PG; WP: ring-0 writes obey RW */
	movl	%eax, %cr0
	ljmpl	$SEL_CODE64, $long_mode
no_handoff:			/* the host wrote no (valid) hand-off block: exit code 2 */
	movl	$2, %eax
	outl	%eax, $0xf4
1:	hlt
	jmp	1b

	.code64
long_mode:
	movq	$X86_GUEST_STACK_TOP, %rsp
	call	guest_main
1:	hlt
	jmp	1b

/* The accesses a command performs. A #PF on one of them resumes at the
 * matching _resume label (exception() in x86_guest.cpp). */
	.text
	.globl	probe_read, probe_read_access, probe_read_resume
	.globl	probe_write, probe_write_access, probe_write_resume
probe_read:			/* u64 probe_read(u64 addr) */
probe_read_access:
	movq	(%rdi), %rax
probe_read_resume:
	ret
probe_write:			/* void probe_write(u64 addr, u64 value) */
probe_write_access:
	movq	%rsi, (%rdi)
probe_write_resume:
	ret

/* Exception entry points, 16 bytes apart (vector n at exception_vectors +
 * 16 n). Each pushes a zero where the CPU pushes no error code, then the
 * vector, so that exception() sees one frame layout. The CPU aligns RSP to
 * 16 before its 5 or 6 pushes; 2 + 9 more qwords keep the call aligned. */
	.globl	exception_vectors
	.balign	16
exception_vectors:
	.irp	n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.balign	16, 0xcc
	.if	!((\n == 8) || (\n >= 10 && \n <= 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30))
	pushq	$0
	.endif
	pushq	$\n
	jmp	exception_common
	.endr
exception_common:
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	movq	%rsp, %rdi		/* struct Frame* */
	call	exception
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rax
	addq	$16, %rsp		/* vector, error code */
	iretq

	.data
	.balign	8
	.globl	gdt		/* x86_guest.ld.in places its ROM copy */
gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08: 32-bit code, flat */
	.quad	0x00cf92000000ffff	/* 0x10: data, flat */
	.quad	0x00af9a000000ffff	/* 0x18: 64-bit code */
gdt_end:
	.balign	8
gdt_ptr:	/* the GDT in RAM */
	.word	gdt_end - gdt - 1
	.long	gdt

	.section .note.GNU-stack, "", @progbits	/* no executable stack */
