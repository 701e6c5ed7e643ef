/* The goroutine dump (Go's traceback.go): on a fatal error, every
 * goroutine's id, state, wait reason and stack, by a frame-pointer walk (the
 * library and the programs it serves are built with frame pointers).
 *
 * Which stack each goroutine is walked from: the caller's own frames for the
 * goroutine that died; the saved context for a parked or runnable one
 * (arch_ctx_frame); the faulting frame for a stack overflow; none for one
 * running on another thread (the world is not stopped on the fatal path).
 * Names come from symtab (src/base/symtab.h): dladdr, then the ELF .symtab.
 * Everything here runs on the fatal path: no allocation, no locks. */
#define _GNU_SOURCE
#include "sched/proc.h"

#include "base/fatal.h"
#include "base/lock.h"
#include "base/print.h"
#include "base/symtab.h"
#include "sched/stack.h"

#include <signal.h>
#include <string.h>

/* exact: pc is a faulting instruction, not a return address (whose call
 * instruction, the caller's line, is at pc - 1). */
static void print_pc_at(uintptr_t pc, bool exact) {
    symtab_sym s;
    uintptr_t at = exact ? pc : pc - 1;
    if (!symtab_lookup(at, &s))
        print("?()\n\tpc=%p\n", (void *)pc);
    else if (s.func)
        print("%s(...)\n\t%s +0x%zx\n", s.func, s.object, (size_t)(pc - s.start));
    else
        print("?()\n\t%s pc=%p +0x%zx\n", s.object, (void *)pc, (size_t)(pc - s.base));
}

static void print_pc(uintptr_t pc) {
    print_pc_at(pc, false);
}

/* Frame-pointer walk from the record fr, inside [lo, hi) when hi != 0. */
static void traceback(uintptr_t *fr, uintptr_t lo, uintptr_t hi) {
    for (int i = 0; i < 50 && fr; i++) {
        uintptr_t a = (uintptr_t)fr;
        if ((a & 7) || (hi && (a < lo || a + 16 > hi))) break;
        uintptr_t pc = fr[1];
        if (!pc) break;
        print_pc(pc);
        uintptr_t *up = (uintptr_t *)fr[0];
        if ((uintptr_t)up <= a) break;
        fr = up;
    }
}

static const char *status_string(g *gp) {
    switch (atomic_load_relaxed(&gp->status)) {
    case G_RUNNABLE:
        return "runnable";
    case G_RUNNING:
        return "running";
    case G_SYSCALL:
        return "syscall";
    case G_WAITING:
    case G_WAITING_SHRINK:
        return gp->waitreason < WAIT_REASON_COUNT && gp->waitreason
                   ? wait_reason_strings[gp->waitreason]
                   : "waiting";
    default:
        return "idle";
    }
}

/* A stack overflow being reported: its goroutine's trace starts at the fault. */
static g *fault_g;
static uintptr_t fault_fp, fault_pc;
/* A fault on a thread's own stack (not a goroutine's): printed first. */
static uintptr_t sysfault_fp, sysfault_pc;

void dump_goroutines(void) {
    m *mp = tls_m;
    g *cur = mp ? mp->curg : NULL;
    if (sysfault_pc) {
        print("\nruntime stack:\n");
        print_pc_at(sysfault_pc, true);
        traceback((uintptr_t *)sysfault_fp, 0, 0);
    }
    for (g *gp = atomic_load_acq(&allgs); gp; gp = gp->alllink) {
        uint32_t s = atomic_load_relaxed(&gp->status);
        if (s == G_DEAD || s == G_IDLE) continue;
        print("\ngoroutine %lld [%s%s]:\n", (long long)gp->goid, status_string(gp),
              gp->lockedm ? ", locked to thread" : "");
        if (gp == fault_g && fault_fp) {
            print_pc_at(fault_pc, true);
            traceback((uintptr_t *)fault_fp, gp->stack.lo, gp->stack.hi);
        } else if (gp == cur) {
            traceback(__builtin_frame_address(0), 0, 0);
        } else if (s == G_RUNNING || s == G_SYSCALL) {
            print("\tgoroutine running on other thread; stack unavailable\n");
        } else {
            traceback(arch_ctx_frame(&gp->ctx), gp->stack.lo, gp->stack.hi);
        }
    }
}

/* The overflow hook (stack.c): on the alternate signal stack, must not return.
 * The stack's owner, not tls_m->curg, names the goroutine: a fault can hit in
 * the middle of a switch. */
void on_stack_overflow(uintptr_t addr) {
    fatal_in_signal = 1; /* the fault may have hit inside stdio */
    struct stack_fault f;
    g *gp = NULL;
    if (stack_fault_info(&f)) {
        gp = f.owner;
        fault_fp = f.fp;
        fault_pc = f.pc;
    }
    if (!gp) {
        m *mp = tls_m;
        gp = mp ? mp->curg : NULL;
    }
    fault_g = gp;
    if (gp)
        print("runtime: goroutine stack exceeds %llu-byte limit\n"
              "runtime: sp=%p stack=[%p, %p] fault at %p in goroutine %lld\n",
              (unsigned long long)(gp->stack.hi - gp->stack.lo), (void *)f.sp, (void *)gp->stack.lo,
              (void *)gp->stack.hi, (void *)addr, (long long)gp->goid);
    throw("stack overflow");
}

/* The crash hook (stack.c): a SIGSEGV or SIGBUS that no handler wanted.
 * Reported in Go's three forms, chosen as Go's canpanic chooses: off a
 * goroutine's stack (a runtime thread, a scheduler stack) or inside a
 * runtime critical section (lock_depth, Go's m.locks), "fatal error:
 * unexpected signal during runtime execution"; on a goroutine,
 * a nil dereference (an address in the first page) is Go's runtime-error
 * panic and any other address "unexpected fault address" and "fatal error:
 * fault". Each with Go's [signal ...] line, then the dump from the faulting
 * frame (on the goroutine's stack, or a thread's own stack: "runtime
 * stack"), exit 2. */
void on_unexpected_signal(int sig, int code, uintptr_t addr) {
    struct stack_fault f;
    memset(&f, 0, sizeof f);
    stack_fault_info(&f);
    m *mp = tls_m;
    g *gp = mp ? mp->curg : NULL;
    if (gp && f.sp >= gp->stack.lo && f.sp < gp->stack.hi) {
        fault_g = gp;
        fault_fp = f.fp;
        fault_pc = f.pc;
    } else {
        sysfault_fp = f.fp;
        sysfault_pc = f.pc;
    }
    char line[160];
    snprint(line, sizeof line, "[signal %s code=0x%x addr=%p pc=%p]",
            sig == SIGBUS ? "SIGBUS: bus error" : "SIGSEGV: segmentation violation",
            (unsigned)code, (void *)addr, (void *)f.pc);
    if (!fault_g || lock_depth > 0) throwf("unexpected signal during runtime execution\n%s", line);
    if (addr < 4096) {
        char msg[256];
        snprint(msg, sizeof msg, "runtime error: invalid memory address or nil pointer dereference\n%s",
                line);
        gopanic(msg);
    }
    print("unexpected fault address %p\n", (void *)addr);
    throwf("fault\n%s", line);
}
