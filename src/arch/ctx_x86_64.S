/* Context switch for x86_64, SysV ABI (the contract and the frame layout are
 * in arch.h).
 *
 * The switch stores the callee-saved registers and the FP control words in a
 * frame below the return address on the current stack, stores rsp into from,
 * loads rsp from to and reads the same frame back there. The two halves
 * mirror each other, so the unwind info stays true after rsp changes stacks:
 * both stacks hold the same frame shape at the same offsets from rsp.
 * Plain moves off one rsp adjustment measured ~5% faster than push/pop here
 * (AMD Zen 5), likely because the stack engine resynchronises after rsp is
 * loaded from memory, before every pop.
 *
 * The resume pc is loaded and jumped to rather than returned to. A ret here
 * would always mispredict: the return-stack predictor expects the return to
 * the caller of this switch, on this stack, while we go to the caller of the
 * switch that suspended the other stack. An indirect jump is predicted from
 * the branch history instead, which gets a ping-pong right; ret measured
 * twice as slow (11.5 ns against 5.2 ns per switch).
 *
 * The FP control state is saved whole (stmxcsr, fnstcw) and reloaded
 * unconditionally. It is a third of the cost (without it: 3.5 ns), stmxcsr
 * most of that, but the state cannot be known without reading it; skipping
 * the reload when the two contexts' words are equal measured slower, as the
 * compare waits for stmxcsr's result.
 *
 * arch_ctx_switch_hook saves a context that resumes in arch_ctx_resume: the
 * resume hook, then the return to the switch's caller (see arch.h for why).
 * Both switches pass the switching side's return pc in r8 (a scratch
 * register at a call) to whatever resume pc they jump to; arch_ctx_resume
 * compares it with its own return pc to choose between ret and an indirect
 * jump (at its comment). */

#include "arch/ctx_names.h"

#if defined(__x86_64__)

        .text

/* The two halves every switch shares. SAVE_FP_AND_CALLEE_SAVED fills a
 * frame at rsp (MXCSR and x87 CW at 0 and 4, then r15, r14, r13, r12, rbx at
 * 8..40; the caller stores rbp at 48 and the resume pc at 56).
 * RESUME_FRAME restores such a frame at rsp (to's), pops it and jumps to its
 * resume pc with rax = rdx (the arg). */
        .macro SAVE_FP_AND_CALLEE_SAVED
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %r15, 8(%rsp)
        .cfi_rel_offset %r15, 8
        movq    %r14, 16(%rsp)
        .cfi_rel_offset %r14, 16
        movq    %r13, 24(%rsp)
        .cfi_rel_offset %r13, 24
        movq    %r12, 32(%rsp)
        .cfi_rel_offset %r12, 32
        movq    %rbx, 40(%rsp)
        .cfi_rel_offset %rbx, 40
        .endm

        .macro RESUME_FRAME
        movq    56(%rsp), %rcx          /* the resume pc */
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        movq    8(%rsp), %r15
        movq    16(%rsp), %r14
        movq    24(%rsp), %r13
        movq    32(%rsp), %r12
        movq    40(%rsp), %rbx
        movq    48(%rsp), %rbp
        leaq    64(%rsp), %rsp
        .cfi_adjust_cfa_offset -64
        .cfi_restore %r15
        .cfi_restore %r14
        .cfi_restore %r13
        .cfi_restore %r12
        .cfi_restore %rbx
        .cfi_restore %rbp
        .cfi_register %rip, %rcx
        movq    %rdx, %rax
        jmp     *%rcx
        .endm

/* void *arch_ctx_switch_arg(gort_context *from, gort_context *to, void *arg)
 * rdi = from, rsi = to, rdx = arg; returns arg in the resumed context. */
        .globl  arch_ctx_switch_arg
        .hidden arch_ctx_switch_arg
        .type   arch_ctx_switch_arg, @function
/* void arch_ctx_switch(gort_context *from, gort_context *to)
 * The same with arg = NULL, so that a resumed arch_ctx_switch_arg never sees
 * a stray rdx. */
        .globl  arch_ctx_switch
        .hidden arch_ctx_switch
        .type   arch_ctx_switch, @function
        .p2align 4
arch_ctx_switch:
        .cfi_startproc
        xorl    %edx, %edx
        /* fall through: the two entries share one body and one FDE */
arch_ctx_switch_arg:
        movq    (%rsp), %r8             /* our return pc, for arch_ctx_resume */
        leaq    -56(%rsp), %rsp         /* the frame: 8 FP + 6 * 8 regs, below the pc */
        .cfi_adjust_cfa_offset 56
        SAVE_FP_AND_CALLEE_SAVED
        movq    %rbp, 48(%rsp)
        .cfi_rel_offset %rbp, 48

        movq    %rsp, (%rdi)            /* from->sp: from is now resumable */
        movq    (%rsi), %rsp            /* to->sp: from here on, to's stack */

        RESUME_FRAME
        .cfi_endproc
        .size   arch_ctx_switch, . - arch_ctx_switch
        .size   arch_ctx_switch_arg, . - arch_ctx_switch_arg

/* void *arch_ctx_switch_hook(gort_context *from, gort_context *to, void *arg)
 * rdi = from, rsi = to, rdx = arg. The same switch, but from is saved with
 * the resume pc arch_ctx_resume. The frame it leaves is the standard one
 * plus its caller's frame record {rbp, return pc} just above, so that a
 * frame-pointer walk from arch_ctx_frame() still reaches the caller:
 *
 *     sp+0..47  MXCSR and x87 CW, r15, r14, r13, r12, rbx (as always)
 *     sp+48     rbp slot = sp+64, the record above (arch_ctx_resume pops
 *               the caller's rbp from there)
 *     sp+56     pc = arch_ctx_resume
 *     sp+64     the caller's rbp           } the record, written here, over
 *     sp+72     this call's return pc       } the return pc of the call
 *
 * 16-byte aligned like the standard frame (sp+72 is the entry rsp). Aligned
 * to 64 bytes, as arch_ctx_resume: the yield path's speed measured 20% apart
 * depending on where the linker had put its hot code. */
        .globl  arch_ctx_switch_hook
        .hidden arch_ctx_switch_hook
        .type   arch_ctx_switch_hook, @function
        .p2align 6
arch_ctx_switch_hook:
        .cfi_startproc
        movq    (%rsp), %r8             /* our return pc, for arch_ctx_resume */
        movq    %rbp, -8(%rsp)          /* the record {rbp, return pc} */
        leaq    arch_ctx_resume(%rip), %rax
        movq    %rax, -16(%rsp)         /* the resume pc */
        leaq    -72(%rsp), %rsp
        .cfi_adjust_cfa_offset 72
        .cfi_rel_offset %rbp, 64
        SAVE_FP_AND_CALLEE_SAVED
        leaq    64(%rsp), %rax
        movq    %rax, 48(%rsp)          /* the frame's rbp: the record */

        movq    %rsp, (%rdi)            /* from->sp: from is now resumable */
        movq    (%rsi), %rsp            /* to->sp: a standard frame from here on */
        .cfi_def_cfa_offset 64
        .cfi_offset %r15, -56
        .cfi_offset %r14, -48
        .cfi_offset %r13, -40
        .cfi_offset %r12, -32
        .cfi_offset %rbx, -24
        .cfi_offset %rbp, -16

        RESUME_FRAME
        .cfi_endproc
        .size   arch_ctx_switch_hook, . - arch_ctx_switch_hook

/* Where a context saved by arch_ctx_switch_hook resumes, with rsp and rbp at
 * its caller's record {rbp, return pc}, rax = the resuming switch's arg and
 * r8 = the resuming switch's own return pc. It calls the hook (a call and a
 * return that the return predictor pairs up), then returns to the caller.
 *
 * How it returns decides the speed of a yield. A ret is predicted from the
 * return-stack predictor, whose top entry is now the *resuming* side's
 * return pc (its call into the switch is the last unreturned call): right
 * when both sides were suspended from the same place (goroutines running the
 * same loop), wrong when they were not (two different loops yielding to each
 * other), a misprediction per switch, ~6 ns. An indirect jump is predicted
 * from the branch history, which gets both patterns right, but leaves the
 * return-stack entry unpopped, and measured ~4 ns slower than a predicted
 * ret in the same-place case. So: ret when our return pc equals r8, else
 * the jump. (Either is correct; this only picks the predictor.) The FDE
 * starts one byte early: unwinders look up pc - 1 for a return address. */
        .p2align 6
        .cfi_startproc
        .cfi_def_cfa %rsp, 16
        .cfi_offset %rbp, -16
        nop
        .type   arch_ctx_resume, @function
arch_ctx_resume:
        cmpq    %r8, 8(%rsp)
        je      1f
        movq    %rax, %rdi
        callq   *arch_ctx_resume_hook(%rip)
        popq    %rbp
        .cfi_remember_state
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rbp
        popq    %rcx
        .cfi_adjust_cfa_offset -8
        .cfi_register %rip, %rcx
        jmp     *%rcx
        .cfi_restore_state
1:      movq    %rax, %rdi
        callq   *arch_ctx_resume_hook(%rip)
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rbp
        ret
        .cfi_endproc
        .size   arch_ctx_resume, . - arch_ctx_resume

/* The default hook: void *arch_ctx_resume_identity(void *arg) { return arg; } */
        .type   arch_ctx_resume_identity, @function
        .p2align 4
arch_ctx_resume_identity:
        .cfi_startproc
        movq    %rdi, %rax
        ret
        .cfi_endproc
        .size   arch_ctx_resume_identity, . - arch_ctx_resume_identity

/* void arch_ctx_make(gort_context *ctx, void *stack_lo, size_t stack_size,
 *                    void (*entry)(void *), void *arg)
 * rdi = ctx, rsi = stack_lo, rdx = stack_size, rcx = entry, r8 = arg.
 * Writes the first frame described in arch.h. */
        .globl  arch_ctx_make
        .hidden arch_ctx_make
        .type   arch_ctx_make, @function
        .p2align 4
arch_ctx_make:
        .cfi_startproc
        leaq    (%rsi,%rdx), %rax
        andq    $-16, %rax              /* top */
        xorl    %r9d, %r9d
        movq    %r9, -8(%rax)           /* zero return address */
        movq    %r9, -16(%rax)          /* zero saved rbp */
        leaq    arch_ctx_start(%rip), %r10
        movq    %r10, -24(%rax)         /* pc */
        movq    %r9, -32(%rax)          /* rbp */
        movq    %rcx, -40(%rax)         /* rbx = entry */
        movq    %r8, -48(%rax)          /* r12 = arg */
        movq    %r9, -56(%rax)          /* r13 */
        movq    %r9, -64(%rax)          /* r14 */
        movq    %r9, -72(%rax)          /* r15 */
        movl    $0x1F80, -80(%rax)      /* MXCSR, as ARCH_CTX_MXCSR_INIT */
        movl    $0x037F, -76(%rax)      /* x87 CW, as ARCH_CTX_X87CW_INIT; 2 bytes unused */
        leaq    -80(%rax), %rax
        movq    %rax, (%rdi)
        ret
        .cfi_endproc
        .size   arch_ctx_make, . - arch_ctx_make

/* The start routine: the first switch into a made context lands here with
 * rsp = top - 16 (16-byte aligned), rbp = 0, rbx = entry, r12 = arg. Its
 * return-address column is undefined, which tells gdb and libgcc's unwinder
 * that this is the outermost frame. */
        .type   arch_ctx_start, @function
        .p2align 4
arch_ctx_start:
        .cfi_startproc
        .cfi_undefined %rip
        movq    %r12, %rdi
        callq   *%rbx
        /* entry returned: a fatal misuse. rsp is aligned again here. */
        callq   *arch_ctx_return_trap(%rip)
        callq   abort@PLT
        ud2
        .cfi_endproc
        .size   arch_ctx_start, . - arch_ctx_start

/* void *(*arch_ctx_resume_hook)(void *) = arch_ctx_resume_identity; */
        .section .data.rel,"aw",@progbits
        .p2align 3
        .globl  arch_ctx_resume_hook
        .hidden arch_ctx_resume_hook
        .type   arch_ctx_resume_hook, @object
        .size   arch_ctx_resume_hook, 8
arch_ctx_resume_hook:
        .quad   arch_ctx_resume_identity

/* void (*arch_ctx_return_trap)(void) = abort; */
        .section .data.rel,"aw",@progbits
        .p2align 3
        .globl  arch_ctx_return_trap
        .hidden arch_ctx_return_trap
        .type   arch_ctx_return_trap, @object
        .size   arch_ctx_return_trap, 8
arch_ctx_return_trap:
        .quad   abort

/* void gort_syscall_enter(void): the public entry (sched/proc.c's
 * syscall_enter_regs does the work). It passes the caller's callee-saved
 * registers and stack pointer, which the garbage collector scans instead of
 * signalling a thread that may be blocked in a system call: the caller's
 * live values are in those registers or in its frames above that pointer,
 * and stay there until gort_syscall_exit. */
#ifndef GORT_PRELOAD /* libgort-malloc.so has no scheduler */
        .text
        .globl  gort_syscall_enter
        .type   gort_syscall_enter, @function
        .hidden gort__syscall_enter_regs
gort_syscall_enter:
        .cfi_startproc
        subq    $56, %rsp
        .cfi_adjust_cfa_offset 56
        movq    %rbx, 0(%rsp)
        movq    %rbp, 8(%rsp)
        movq    %r12, 16(%rsp)
        movq    %r13, 24(%rsp)
        movq    %r14, 32(%rsp)
        movq    %r15, 40(%rsp)
        movq    %rsp, %rdi
        leaq    56(%rsp), %rsi
        call    gort__syscall_enter_regs
        addq    $56, %rsp
        .cfi_adjust_cfa_offset -56
        ret
        .cfi_endproc
        .size   gort_syscall_enter, . - gort_syscall_enter
#endif

#endif /* __x86_64__ */

/* No executable stack, on every architecture (an empty object included). */
        .section .note.GNU-stack, "", %progbits
