/* The goroutine dump (Go's traceback.go): on a fatal error and on SIGQUIT,
 * every goroutine's id, state, wait reason (with the minutes it has waited,
 * from one minute on) and stack, as Go prints them, with file:line from the
 * DWARF line table and the site that created it ("created by f in goroutine
 * N"). The same pieces serve the goroutine profile (src/prof) through
 * traceback.h.
 *
 * Which stack each goroutine is walked from: the caller's own frames for the
 * goroutine that died (from the throw or panic on); the interrupted context
 * for the goroutine a SIGQUIT or a stack overflow hit; the saved context for
 * a parked or runnable one (arch_ctx_frame), whose first frames, the
 * scheduler's switch, are trimmed so that the trace starts at the park (as
 * Go's at runtime.gopark); the registers stop-the-world published for one
 * running on another thread while the world is stopped (the goroutine
 * profile), else none ("stack unavailable", as Go); the frames above
 * gort_syscall_enter for one in a system call. A goroutine that never ran
 * shows its start function.
 *
 * Minutes waited: sysmon notes when it first sees a goroutine parked (the
 * shrinking pass, every 5 s), so the figure costs the park nothing; it errs
 * low by up to that period.
 *
 * Everything here runs on the fatal path: no allocation (the goroutines are
 * sorted in an anonymous mapping), no lock but symtab's own. */
#define _GNU_SOURCE
#include "sched/traceback.h"

#include "base/fatal.h"
#include "base/lock.h"
#include "base/nanotime.h"
#include "base/print.h"
#include "base/symtab.h"
#include "sched/proc.h"
#include "sched/stack.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

/* ---- output ---- */

static void fd_write(void *arg, const char *p, size_t n) {
    int fd = (int)(intptr_t)arg;
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return;
        p += r;
        n -= (size_t)r;
    }
}

void tb_fd_writer(tb_writer *w, int fd) {
    w->write = fd_write;
    w->arg = (void *)(intptr_t)fd;
    w->n = 0;
}

void tb_flush(tb_writer *w) {
    if (w->n) w->write(w->arg, w->buf, w->n);
    w->n = 0;
}

void tb_printf(tb_writer *w, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    size_t n = vsnprint(line, sizeof line, fmt, ap);
    va_end(ap);
    if (w->n + n > sizeof w->buf) tb_flush(w);
    if (n > sizeof w->buf) {
        w->write(w->arg, line, n);
        return;
    }
    memcpy(w->buf + w->n, line, n);
    w->n += n;
}

/* ---- stacks ---- */

int tb_walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max) {
    int n = 0;
    uintptr_t *fr = (uintptr_t *)fp;
    while (n < max && fr) {
        uintptr_t a = (uintptr_t)fr;
        if ((a & 7) || (hi && (a < lo || a + 16 > hi))) break;
        uintptr_t pc = fr[1];
        if (!pc) break;
        pcs[n++] = pc;
        uintptr_t up = fr[0];
        if (up <= a) break;
        if (!hi && up - a > ((uintptr_t)64 << 20)) break; /* unbounded: a sane frame only */
        fr = (uintptr_t *)up;
    }
    return n;
}

static bool has_prefix(const char *s, const char *p) {
    return s && strncmp(s, p, strlen(p)) == 0;
}

static const char *func_of(uintptr_t pc) {
    symtab_sym s;
    static __thread char nb[256]; /* valid until this thread's next call */
    return symtab_lookup(pc - 1, &s) && s.func ? symtab_name(s.func, nb, sizeof nb) : NULL;
}

int tb_trim(const uintptr_t *pcs, int n) {
    /* The switch comes first: the arch routine's resume stub (no symbol of
     * its own), proc.c's static switch functions; tail calls may have taken
     * sched_park and its caller's frames with them. */
    static const char *const sched_names[] = {"switch_out",   "gswitch",           "resume_hook",
                                              "after_switch", "after_switch_slow", NULL};
    for (int i = 0; i < n && i < 8; i++) {
        const char *f = func_of(pcs[i]);
        bool internal = !f || has_prefix(f, "gort__arch_ctx");
        for (int k = 0; f && !internal && sched_names[k]; k++)
            if (strcmp(f, sched_names[k]) == 0) internal = true;
        if (!internal) return i;
    }
    return 0;
}

int tb_trim_bottom(const uintptr_t *pcs, int n) {
    /* Every goroutine starts in gentry (proc.c), under arch_ctx_start, and
     * the main goroutine in main_entry above it: Go's runtime.goexit and
     * runtime.main, which its tracebacks leave out too. */
    for (int i = 1; i < n; i++) {
        const char *f = func_of(pcs[i]);
        if (!f) continue;
        if (strcmp(f, "arch_ctx_start") == 0) return i;
        if (strcmp(f, "gentry") != 0) continue;
        const char *up = func_of(pcs[i - 1]);
        return up && strcmp(up, "main_entry") == 0 && i > 1 ? i - 1 : i;
    }
    return n;
}

bool tb_leaf_return(uintptr_t start, uintptr_t pc, uintptr_t ret) {
    const uint8_t *f = (const uint8_t *)start;
    if (f[0] == 0xf3 && f[1] == 0x0f && f[2] == 0x1e && f[3] == 0xfa) f += 4; /* endbr64 */
    if (f[0] == 0x55 && pc > (uintptr_t)f) return false; /* it has a frame, past its push */
    const uint8_t *c = (const uint8_t *)ret;
    if (c[-5] == 0xe8) {
        int32_t d;
        memcpy(&d, c - 4, 4);
        return ret + (uintptr_t)(intptr_t)d == start;
    }
    if (c[-2] == 0xff && (c[-1] & 0xf8) == 0xd0) return true; /* call *%reg */
    if (c[-6] == 0xff && c[-5] == 0x15) return true;          /* call *disp32(%rip) */
    if (c[-3] == 0xff && (c[-2] & 0x38) == 0x10 && (c[-2] >> 6) == 1) return true; /* disp8 */
    return false;
}

/* The index of the first frame whose function is one of names (among the
 * first 8), or 0. */
static int trim_to(const uintptr_t *pcs, int n, const char *const *names) {
    for (int i = 0; i < n && i < 8; i++) {
        const char *f = func_of(pcs[i]);
        for (int k = 0; f && names[k]; k++)
            if (strcmp(f, names[k]) == 0) return i;
    }
    return 0;
}

static void print_frame(tb_writer *w, uintptr_t pc, bool is_pc) {
    symtab_sym s;
    uintptr_t at = is_pc ? pc : pc - 1; /* inside the call instruction: the caller's line */
    if (!symtab_lookup(at, &s)) {
        tb_printf(w, "?()\n\tpc=%p\n", (void *)pc);
        return;
    }
    char nb[256];
    tb_printf(w, "%s(...)\n", s.func ? symtab_name(s.func, nb, sizeof nb) : "?");
    char path[512];
    if (symtab_path(&s, path, sizeof path))
        tb_printf(w, "\t%s:%d", path, s.line);
    else
        tb_printf(w, "\t%s", s.object);
    tb_printf(w, " +0x%zx\n", (size_t)(pc - (s.func ? s.start : s.base)));
}

void tb_print_pcs(tb_writer *w, const uintptr_t *pcs, int n, bool leaf_is_pc) {
    for (int i = 0; i < n; i++) print_frame(w, pcs[i], i == 0 && leaf_is_pc);
    if (n == TB_MAX_FRAMES) tb_printf(w, "...additional frames elided...\n");
}

void tb_print_creator(tb_writer *w, uintptr_t gopc, int64_t parent) {
    if (!gopc) return;
    symtab_sym s;
    if (!symtab_lookup(gopc - 1, &s)) return;
    char nb[256];
    tb_printf(w, "created by %s", s.func ? symtab_name(s.func, nb, sizeof nb) : "?");
    if (parent > 0) tb_printf(w, " in goroutine %lld", (long long)parent);
    char path[512];
    if (symtab_path(&s, path, sizeof path))
        tb_printf(w, "\n\t%s:%d", path, s.line);
    else
        tb_printf(w, "\n\t%s", s.object);
    tb_printf(w, " +0x%zx\n", (size_t)(gopc - (s.func ? s.start : s.base)));
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

void tb_print_header(tb_writer *w, g *gp, int64_t now) {
    tb_printf(w, "goroutine %lld [%s", (long long)gp->goid, status_string(gp));
    uint32_t s = atomic_load_relaxed(&gp->status);
    if ((s == G_WAITING || s == G_WAITING_SHRINK) &&
        gp->shrinkseen == atomic_load_relaxed(&gp->parkseq) + 1) {
        int64_t since = atomic_load_relaxed(&gp->waitsince);
        if (since > 0 && now - since >= (int64_t)60 * 1000000000)
            tb_printf(w, ", %lld minutes", (long long)((now - since) / ((int64_t)60 * 1000000000)));
    }
    tb_printf(w, "%s]:\n", gp->lockedm ? ", locked to thread" : "");
}

/* The stack of a goroutine that never ran: its start function. */
static int fresh_stack(g *gp, uintptr_t *pcs, bool *leaf_is_pc) {
    pcs[0] = (uintptr_t)gp->fn;
    *leaf_is_pc = true;
    return 1;
}

int sched_g_stack(g *gp, uintptr_t *pcs, int max, bool *leaf_is_pc) {
    *leaf_is_pc = false;
    if (max < 2) return 0;
    uint32_t s = atomic_load_acq(&gp->status);
    uintptr_t lo = gp->stack.lo, hi = gp->stack.hi;
    if (s == G_SYSCALL) {
        /* The frames above gort_syscall_enter stay put until it returns. */
        uintptr_t sp = gp->syscallsp;
        if (!hi || sp < lo || sp + 8 > hi) return 0;
        pcs[0] = *(uintptr_t *)sp; /* the return into gort_syscall_enter's caller */
        return 1 + tb_walk(gp->syscall_regs[1], sp, hi, pcs + 1, max - 1);
    }
    if (s == G_RUNNING) {
        m *mp = gp->m;
        const suspend_ctx *c = mp ? stw_suspended(&mp->st) : NULL;
        if (!c || !hi || c->sp < lo || c->sp >= hi) return 0;
        /* A thread stopped by the signal: its interrupted pc and frame
         * pointer (rsp is set); one that stopped itself (at its outermost
         * unlock, or taking a P): its frame pointer alone. */
        uintptr_t fp = c->regs[6];
        if (!fp) return 0;
        if (c->regs[7]) {
            pcs[0] = c->pc;
            *leaf_is_pc = true;
            return 1 + tb_walk(fp, c->sp - STW_RED_ZONE, hi, pcs + 1, max - 1);
        }
        return tb_walk(fp, c->sp - STW_RED_ZONE, hi, pcs, max);
    }
    if (s != G_RUNNABLE && s != G_WAITING && s != G_WAITING_SHRINK) return 0;
    int n = tb_walk((uintptr_t)arch_ctx_frame(&gp->ctx), lo, hi, pcs, max);
    if (n <= 1 && gp->fn) return fresh_stack(gp, pcs, leaf_is_pc);
    return n;
}

/* ---- the dump ---- */

/* A stack overflow or a SIGQUIT being reported: its goroutine's trace starts
 * at the fault. */
static g *fault_g;
static uintptr_t fault_fp, fault_pc, fault_sp;
/* A fault on a thread's own stack (not a goroutine's): printed first. */
static uintptr_t sysfault_fp, sysfault_pc;

/* The caller of a frameless function that faulted (a leaf: gcc omits its
 * frame at -O1 and above whatever -mno-omit-leaf-frame-pointer says), or of
 * one hit before its push %rbp: the return address at sp, 0 if none. Both
 * functions must be sized ELF symbols, so that the bytes read are code. */
static uintptr_t fault_leaf_caller(g *gp) {
    uintptr_t sp = fault_sp;
    if (!sp || (sp & 7) || sp < gp->stack.lo || sp + 8 > gp->stack.hi) return 0;
    uintptr_t ret = *(uintptr_t *)sp;
    symtab_sym s, r;
    if (!symtab_lookup(fault_pc, &s) || !s.sized || ret < 8 || !symtab_lookup(ret - 1, &r) ||
        !r.sized || ret - 6 < r.start)
        return 0;
    return tb_leaf_return(s.start, fault_pc, ret) ? ret : 0;
}

static void dump_one(tb_writer *w, g *gp, g *cur, int64_t now) {
    uintptr_t pcs[TB_MAX_FRAMES];
    int n, start = 0;
    bool leaf = false;
    tb_printf(w, "\n");
    tb_print_header(w, gp, now);
    if (gp == fault_g && fault_pc) {
        int k = 0;
        pcs[k++] = fault_pc;
        leaf = true;
        uintptr_t caller = fault_leaf_caller(gp);
        if (caller) pcs[k++] = caller;
        bool in = gp->stack.hi && fault_fp >= gp->stack.lo && fault_fp < gp->stack.hi;
        n = k + tb_walk(fault_fp, in ? gp->stack.lo : 0, in ? gp->stack.hi : 0, pcs + k,
                        TB_MAX_FRAMES - k);
    } else if (gp == cur) {
        static const char *const fatal_names[] = {"gort__throw", "gort__throwf", "gort__gopanic",
                                                  NULL};
        n = tb_walk((uintptr_t)__builtin_frame_address(0), 0, 0, pcs, TB_MAX_FRAMES);
        start = trim_to(pcs, n, fatal_names);
    } else {
        n = sched_g_stack(gp, pcs, TB_MAX_FRAMES, &leaf);
        if (n == 0) {
            tb_printf(w, "\tgoroutine running on other thread; stack unavailable\n");
        } else if (!leaf) {
            start = tb_trim(pcs, n);
        }
    }
    if (n > start + 1) n = start + tb_trim_bottom(pcs + start, n - start);
    tb_print_pcs(w, pcs + start, n - start, leaf && start == 0);
    tb_print_creator(w, gp->gopc, gp->parentgoid);
    tb_flush(w);
}

static void g_sift(g **v, size_t i, size_t n) {
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && v[c]->goid < v[c + 1]->goid) c++;
        if (v[i]->goid >= v[c]->goid) return;
        g *t = v[i];
        v[i] = v[c];
        v[c] = t;
        i = c;
    }
}

void tb_goroutine_dump(tb_writer *w) {
    m *mp = tls_m;
    g *cur = mp ? mp->curg : NULL;
    if (fault_g) cur = fault_g;
    int64_t now = nanotime();
    if (sysfault_pc) { /* a fault off every goroutine's stack (Go's "runtime stack:") */
        uintptr_t pcs[TB_MAX_FRAMES];
        pcs[0] = sysfault_pc;
        int n = 1 + tb_walk(sysfault_fp, 0, 0, pcs + 1, TB_MAX_FRAMES - 1);
        tb_printf(w, "\nruntime stack:\n");
        tb_print_pcs(w, pcs, n, true);
        tb_flush(w);
    }
    if (cur) dump_one(w, cur, cur, now);
    size_t count = 0;
    for (g *gp = atomic_load_acq(&allgs); gp; gp = gp->alllink) count++;
    size_t bytes = (count * sizeof(g *) + 4095) & ~(size_t)4095;
    g **v = count ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                  : MAP_FAILED;
    size_t n = 0;
    if (v != MAP_FAILED) {
        for (g *gp = atomic_load_acq(&allgs); gp && n < count; gp = gp->alllink) v[n++] = gp;
        for (size_t i = n / 2; i-- > 0;) g_sift(v, i, n);
        for (size_t k = n; k > 1; k--) {
            g *t = v[0];
            v[0] = v[k - 1];
            v[k - 1] = t;
            g_sift(v, 0, k - 1);
        }
    }
    g *gp = atomic_load_acq(&allgs);
    for (size_t i = 0;; i++) {
        g *x = v != MAP_FAILED ? (i < n ? v[i] : NULL) : gp;
        if (!x) break;
        if (v == MAP_FAILED) gp = gp->alllink;
        uint32_t s = atomic_load_relaxed(&x->status);
        if (x == cur || s == G_DEAD || s == G_IDLE) continue;
        dump_one(w, x, cur, now);
    }
    if (v != MAP_FAILED) munmap(v, bytes);
    tb_flush(w);
}

void dump_goroutines(void) {
    tb_writer w;
    tb_fd_writer(&w, 2);
    tb_goroutine_dump(&w);
}

/* ---- SIGQUIT ---- */

static int sigquit_dying;

static void sigquit_handler(int sig, siginfo_t *si, void *uctx) {
    (void)sig;
    if (__atomic_fetch_add(&sigquit_dying, 1, __ATOMIC_ACQ_REL) > 0) _exit(2);
    const ucontext_t *uc = uctx;
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    m *mp = tls_m;
    print("SIGQUIT: quit\nPC=%p m=%lld sigcode=%d\n", (void *)pc, mp ? (long long)mp->id : -1LL,
          si ? si->si_code : 0);
    g *gp = mp ? mp->curg : NULL;
    if (gp) {
        fault_g = gp;
        fault_pc = pc;
        fault_fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
        fault_sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    }
    dump_goroutines();
    _exit(2);
}

void tb_sigquit_install(void) {
    /* Installed whatever the program inherited (a shell's background job
     * starts with SIGQUIT ignored): Go's runtime does the same. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = sigquit_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigaction(SIGQUIT, &sa, NULL);
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
        fault_sp = f.sp;
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
        fault_sp = f.sp;
    } else {
        sysfault_fp = f.fp;
        sysfault_pc = f.pc;
    }
    char line[160];
    snprint(line, sizeof line, "[signal %s code=0x%x addr=%p pc=%p]",
            sig == SIGBUS ? "SIGBUS: bus error" : "SIGSEGV: segmentation violation", (unsigned)code,
            (void *)addr, (void *)f.pc);
    if (!fault_g || lock_depth > 0) throwf("unexpected signal during runtime execution\n%s", line);
    if (addr < 4096) {
        char msg[256];
        snprint(msg, sizeof msg,
                "runtime error: invalid memory address or nil pointer dereference\n%s", line);
        gopanic(msg);
    }
    print("unexpected fault address %p\n", (void *)addr);
    throwf("fault\n%s", line);
}
