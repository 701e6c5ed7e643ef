/* Context switch: the floor under every goroutine switch.
 *
 * A context is a suspended flow of control on its own stack. Switching saves
 * what the C ABI obliges a callee to preserve and nothing else: everything
 * else is dead at a call, so the compiler already spilled it. That is why
 * this is a few nanoseconds where ucontext's swapcontext makes a system call
 * (it saves the signal mask) and copies hundreds of bytes.
 *
 * What is saved (x86_64, SysV ABI): rbx, rbp, r12-r15, the stack pointer, the
 * return address, MXCSR (all of it: rounding mode, DAZ/FTZ, exception masks
 * and the sticky exception flags) and the x87 control word (precision and
 * rounding). The callee-saved registers are stored on the suspended stack
 * itself, as Boost.Context's fcontext does, so a gort_context is one word
 * and a conservative scan of [sp, stack top) covers the registers too: the
 * GC needs no separate register area for a parked goroutine. (Storing them
 * in the struct instead measured no faster: 5.06 against 4.96 ns.) Not
 * saved: the signal mask and everything else that is per thread (TLS, errno),
 * the x87 and SSE data registers (caller-saved), and the CET shadow stack.
 *
 * The saved frame, at ctx->sp, lowest address first (ARCH_CTX_FRAME_SIZE
 * bytes, 16-byte aligned when the caller followed the ABI):
 *
 *     sp+0   MXCSR (4 bytes), x87 control word (2 bytes), 2 bytes unused
 *     sp+8   r15
 *     sp+16  r14
 *     sp+24  r13
 *     sp+32  r12
 *     sp+40  rbx
 *     sp+48  rbp     } a frame record {saved rbp, return pc}, exactly what a
 *     sp+56  pc      } call + push rbp makes: arch_ctx_frame() for tracebacks
 *
 * A new context (arch_ctx_make) starts with such a frame whose pc is a small
 * start routine, plus a terminating record above it:
 *
 *     top     = (stack_lo + stack_size) rounded down to 16
 *     top-8   0                     zero return address  } the outermost frame:
 *     top-16  0                     zero saved rbp       } walkers stop here
 *     top-24  pc   = arch_ctx_start
 *     top-32  rbp  = 0
 *     top-40  rbx  = entry
 *     top-48  r12  = arg
 *     top-56..-72  r13, r14, r15 = 0
 *     top-80  MXCSR 0x1F80, x87 CW 0x037F   <- ctx->sp
 *
 * The first switch into it lands in arch_ctx_start with rsp = top-16 (16-byte
 * aligned) and rbp = 0, which calls entry(arg): entry starts with rsp + 8
 * 16-byte aligned, as the ABI requires, and its frame-pointer chain ends in
 * the zero rbp, while arch_ctx_start's unwind info marks it outermost, so gdb
 * and libgcc stop there too. A new context starts with the ABI's initial FP
 * control state, not its creator's: a goroutine's rounding mode must not
 * depend on which thread happened to create or recycle it.
 *
 * Invariants and rules for the caller (the scheduler):
 * - entry must never return: it switches away for the last time. A return
 *   lands in arch_ctx_start, which calls arch_ctx_return_trap (abort() until
 *   the runtime installs its own), then abort() if that returns.
 * - A context is resumed at most once per save: switching into a context
 *   that is running, or that was never saved, is undefined. Across threads,
 *   publish a context (make it runnable) only after the switch that saved it
 *   has completed, i.e. from the other side of the switch, as Go's park does
 *   on g0; the switch has no fences of its own, the hand-off must provide the
 *   release/acquire.
 * - The switch writes from->sp before it reads to->sp, so from == to is a
 *   harmless round trip.
 * - Stacks grow down; the switch frame and the new-context frame take 80
 *   bytes at the top of a fresh stack. The red zone (128 bytes below rsp) is
 *   never live across the switch, since the switch is an ordinary call.
 * - The switch is an ordinary function to the compiler (no returns_twice):
 *   it returns once, possibly much later and on another thread. Code must not
 *   keep a TLS address across it (docs/design.md, "Threads, goroutines and TLS").
 * - Signals: the switch changes rsp with one instruction, so at every point a
 *   handler runs on a valid stack with everything below rsp free. But for a
 *   few instructions rsp is already on the new stack while the scheduler still
 *   names the old goroutine current: a handler that inspects the interrupted
 *   context (stop-the-world, profiling) must find the stack from the
 *   interrupted rsp, not from the current G. Handlers should run on an
 *   alternate stack (SA_ONSTACK): a signal frame with AVX-512 state is ~3 KiB
 *   and would otherwise land on a goroutine stack.
 * - Sanitizers: ASan must be told about each switch with
 *   __sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber around
 *   the call (and at the top of entry), and the stack of a dead context must
 *   be unpoisoned (__asan_unpoison_memory_region) before it is reused, since
 *   frames that switched away never unpoisoned their locals. Valgrind wants
 *   VALGRIND_STACK_REGISTER per stack. This layer does neither: it does not
 *   know stack lifetimes; tests/test_arch.c shows the calls.
 * - arch_ctx_switch_hook is the same switch for a caller that wants code to
 *   run first whenever the suspended side resumes (the scheduler's "after
 *   the switch" work, Go's mcall(fn) second half): the saved context
 *   resumes in a small stub that calls arch_ctx_resume_hook(arg), arg being
 *   the resuming switch's, and returns its result as the switch's result.
 *   Why not call the hook after an ordinary switch returns: the stub can
 *   leave by an indirect jump straight to the switch's caller, so a switch
 *   reached by tail calls from a user's call site (gort_yield) returns to
 *   that site without the return misprediction that otherwise costs ~6 ns
 *   per switch between two different call sites (ctx_x86_64.S). Its frame
 *   is the standard one plus the caller's {rbp, return pc} record above
 *   it (80 bytes then; arch_ctx_frame walks through it). Contexts saved by
 *   either switch may be resumed by either.
 * - CET: the return is an indirect jump to another stack's return address,
 *   which shadow stacks and IBT forbid; the object carries no GNU property
 *   note, so the linker turns CET off for any binary that links it.
 *
 * The implementation is chosen by architecture below; each lives in its own
 * ctx_<arch>.S. */
#ifndef GORT_ARCH_ARCH_H
#define GORT_ARCH_ARCH_H

#include <stddef.h>
#include <stdint.h>

#include "arch/ctx_names.h"

typedef struct gort_context {
    void *sp; /* the saved switch frame (layout above); meaningless while running */
} gort_context;

#if defined(__x86_64__)

#define ARCH_CTX_FRAME_SIZE  64      /* bytes the switch keeps at a suspended sp (_hook: 80) */
#define ARCH_CTX_START_BYTES 80      /* bytes arch_ctx_make uses below the aligned top */
#define ARCH_CTX_MXCSR_INIT  0x1F80u /* SysV initial MXCSR: all masked, nearest */
#define ARCH_CTX_X87CW_INIT  0x037Fu /* SysV initial x87 CW: all masked, extended, nearest */

#elif defined(__aarch64__)
/* The place for the port: ctx_aarch64.S saving x19-x28, x29 (fp), x30 (lr),
 * sp, d8-d15 and FPCR, with the same frame-record-at-the-top shape. */
#error "gort: the aarch64 context switch is not written yet (src/arch/ctx_aarch64.S)"
#else
#error "gort: no context switch for this architecture (src/arch/)"
#endif

/* Prepares ctx to run entry(arg) on [stack_lo, stack_lo + stack_size) when
 * first switched to. The top is aligned down to 16 bytes; stack_size must
 * leave room for ARCH_CTX_START_BYTES plus what entry uses. Writes only the
 * top of the stack and ctx; does not switch. entry must never return. */
void arch_ctx_make(gort_context *ctx, void *stack_lo, size_t stack_size, void (*entry)(void *),
                   void *arg);

/* Saves the current context into from and resumes to. Returns when some
 * later switch resumes from. */
void arch_ctx_switch(gort_context *from, gort_context *to);

/* The same, passing a word: the arch_ctx_switch_arg call that suspended `to`
 * returns arg (NULL if the resuming call was arch_ctx_switch). A fresh
 * context does not receive it: its entry gets the arg given to make. Lets the
 * scheduler say, on g0, which goroutine just switched away (Go's mcall(fn)
 * passing gp) without a shared field. */
void *arch_ctx_switch_arg(gort_context *from, gort_context *to, void *arg);

/* The same, but the context saved in from resumes (whichever switch resumes
 * it) by calling arch_ctx_resume_hook(arg of the resuming switch) on its own
 * stack; the hook's result is what this call returns. A fresh context does
 * not run the hook (its entry does what it needs). */
void *arch_ctx_switch_hook(gort_context *from, gort_context *to, void *arg);

/* The hook of arch_ctx_switch_hook: set once, before any such switch
 * (default: return arg). Runs with the resumed context's callee-saved
 * registers and FP control state in place; an ordinary C function. */
extern void *(*arch_ctx_resume_hook)(void *arg);

/* Called, on the dead context's stack, if an entry function returns. The
 * runtime points it at a function that reports the misuse and exits; it must
 * not return (if it does, abort() follows). Defaults to abort(). */
extern void (*arch_ctx_return_trap)(void);

/* The frame record {saved rbp, return pc} of a suspended context, for a
 * frame-pointer traceback of a parked goroutine: fr[1] is the pc it will
 * resume at, fr[0] the frame pointer of its caller; walk fr = (uintptr_t *)fr[0]
 * until it is 0. A fresh context shows arch_ctx_start and then 0; one saved
 * by arch_ctx_switch_hook shows its resume stub, then its caller's record. */
static inline uintptr_t *arch_ctx_frame(const gort_context *ctx) {
    return (uintptr_t *)ctx->sp + ARCH_CTX_FRAME_SIZE / sizeof(uintptr_t) - 2;
}

#endif
