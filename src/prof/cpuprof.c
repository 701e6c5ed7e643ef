/* The CPU profile (Go's cpuprof.go and its per-thread timers of Go 1.18):
 * SIGPROF from one CPU-time timer per thread, a frame-pointer walk in the
 * handler, samples counted in a table the handler fills without locks, and
 * the pprof profile written when the profile stops.
 *
 * Timers. A process-wide setitimer(ITIMER_PROF) delivers its signal to
 * whichever thread the kernel picks, which skews a profile of several busy
 * threads; so each thread gets its own timer_create on its own CPU clock
 * (SIGEV_THREAD_ID), as Go does. A helper thread ("gort-cpuprof") looks at
 * /proc/self/task every 100 ms and gives every new thread a timer (Ms,
 * sysmon, the collector's workers, the program's own threads alike), and
 * deletes those of threads that are gone. It is the one thread not
 * profiled.
 *
 * The handler (async-signal-safe: no lock, no allocation, no libc call but
 * process_vm_readv) records the interrupted pc and the return addresses of
 * a frame-pointer walk. Walks are bounded by the stack they start on: the
 * running goroutine's, or an M's own; on a thread whose stack it does not
 * know, it reads each frame through process_vm_readv, which fails instead
 * of faulting. A sample is attributed to the goroutine that was running
 * (a "goroutine" label with its id). The table: slots claimed by a CAS,
 * filled, then published with a release store; equal samples add to one
 * slot's count. A full table counts the sample lost (the profile's comment
 * says how many).
 *
 * Frameless leaves. gcc (up to 13) ignores -mno-omit-leaf-frame-pointer:
 * a leaf function that needs no stack keeps its caller's rbp, and a
 * frame-pointer walk from there skips the leaf's caller (a function that
 * burns CPU in a loop of its own is exactly such a leaf). So the handler
 * also keeps the word at the interrupted sp when it points into an
 * executable segment (a leaf that pushed nothing has its return address
 * there), and the writer inserts it as the leaf's caller only if the code
 * before it is a call of the leaf's own function (or an indirect call) and
 * the leaf has no frame of its own; otherwise it is dropped.
 *
 * Stopping: the helper deletes every timer; the handler is left installed
 * (a SIGPROF still pending must not meet the default action, which kills)
 * and ignores what arrives after; the previous handler comes back at the
 * next stop if it was the program's own. */
#define _GNU_SOURCE
#include "prof/prof.h"

#include "base/atomic.h"
#include "base/env.h"
#include "base/symtab.h"
#include "base/thread.h"
#include "gort/prof.h"
#include "gort/sched.h"
#include "sched/runtime2.h"
#include "sched/traceback.h"

#include <dirent.h>
#include <link.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define CPU_SLOTS  8192
#define CPU_FRAMES 64
#define CPU_PROBES 32

typedef struct cpu_slot {
    uint64_t state; /* 0 empty, 1 being written, else the sample's hash | 1 */
    uint64_t count;
    int64_t goid;
    uintptr_t ret0; /* the word at sp, if a code address: maybe a frameless leaf's return */
    int n;
    uintptr_t stk[CPU_FRAMES]; /* stk[0]: the interrupted pc */
} cpu_slot;

/* Samples per second: GORT_CPUPROFILERATE (100), read at each start. */
static int cpu_hz = 100;

/* The executable segments, for the frameless-leaf check (at start). */
#define CPU_TEXT_MAX 128
static struct { uintptr_t lo, hi; } text_ranges[CPU_TEXT_MAX];
static int ntext;

static int text_cb(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size, (void)arg;
    for (int i = 0; i < info->dlpi_phnum && ntext < CPU_TEXT_MAX; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        text_ranges[ntext].lo = info->dlpi_addr + ph->p_vaddr;
        text_ranges[ntext].hi = text_ranges[ntext].lo + ph->p_memsz;
        ntext++;
    }
    return 0;
}

static bool in_text(uintptr_t a) {
    for (int i = 0; i < ntext; i++)
        if (a - text_ranges[i].lo < text_ranges[i].hi - text_ranges[i].lo) return true;
    return false;
}

static struct {
    lock_t lock; /* start/stop */
    bool running;
    int fd;
    cpu_slot *table;
    size_t table_bytes;
    uint64_t lost, samples;
    uint32_t active;   /* handlers in progress */
    uint32_t on;       /* the handler records */
    uint32_t stop_seq; /* futex word: the helper exits when it changes */
    uint32_t helper_done;
    int64_t start_ns, start_unix;
    int helper_tid;
    struct sigaction old;
    bool have_old;
} cpu = {.lock = LOCK_INIT};

/* ---- the handler ---- */

static bool safe_read(uintptr_t addr, uintptr_t *out) {
    struct iovec local = {out, sizeof *out}, remote = {(void *)addr, sizeof *out};
    return syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0) == sizeof *out;
}

static int walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max) {
    if (hi) return tb_walk(fp, lo, hi, pcs, max);
    int n = 0; /* unknown bounds: every read checked */
    while (n < max && fp && !(fp & 7)) {
        uintptr_t up, pc;
        if (!safe_read(fp, &up) || !safe_read(fp + 8, &pc) || !pc) break;
        pcs[n++] = pc;
        if (up <= fp || up - fp > ((uintptr_t)16 << 20)) break;
        fp = up;
    }
    return n;
}

static void sigprof_handler(int sig, siginfo_t *si, void *uctx) {
    (void)sig, (void)si;
    if (!atomic_load_acq(&cpu.on)) return;
    int saved_errno = errno;
    atomic_xadd(&cpu.active, 1);
    cpu_slot *t = atomic_load_acq(&cpu.table);
    if (!t || !atomic_load_acq(&cpu.on)) goto out;
    const ucontext_t *uc = uctx;
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    uintptr_t fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    uintptr_t stk[CPU_FRAMES];
    int64_t goid = 0;
    uintptr_t lo = 0, hi = 0;
    m *mp = tls_m;
    g *gp = mp ? mp->curg : NULL;
    if (gp && gp->stack.hi && sp >= gp->stack.lo && sp < gp->stack.hi) {
        lo = sp > STW_RED_ZONE ? sp - STW_RED_ZONE : 0;
        hi = gp->stack.hi;
        goid = gp->goid;
    } else if (mp && mp->stack_hi && sp < mp->stack_hi &&
               mp->stack_hi - sp < ((uintptr_t)64 << 20)) {
        lo = sp;
        hi = mp->stack_hi;
    }
    stk[0] = pc;
    int n = 1;
    if (fp >= sp || !hi) n += walk(fp, lo, hi, stk + 1, CPU_FRAMES - 1);
    uintptr_t ret0 = 0;
    if (hi && sp >= lo && sp + 8 <= hi) {
        uintptr_t c = *(const uintptr_t *)sp;
        if (in_text(c) && (n < 2 || c != stk[1])) ret0 = c;
    }
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)goid ^ ((uint64_t)ret0 << 1);
    for (int i = 0; i < n; i++) h = (h ^ stk[i]) * 0x100000001b3ULL;
    h |= 1;
    if (h == 1) h = 3;
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0, j = (unsigned)(h >> 1) % CPU_SLOTS; i < CPU_PROBES;
             i++, j = (j + 1) % CPU_SLOTS) {
            cpu_slot *s = &t[j];
            uint64_t st = atomic_load_acq(&s->state);
            if (st == 0) {
                uint64_t z = 0;
                if (atomic_cas(&s->state, &z, 1)) {
                    s->goid = goid;
                    s->ret0 = ret0;
                    s->n = n;
                    memcpy(s->stk, stk, (size_t)n * sizeof *stk);
                    s->count = 1;
                    atomic_store_rel(&s->state, h);
                    atomic_xadd(&cpu.samples, 1);
                    goto out;
                }
                st = z;
            }
            if (st == h && s->goid == goid && s->ret0 == ret0 && s->n == n &&
                memcmp(s->stk, stk, (size_t)n * sizeof *stk) == 0) {
                atomic_xadd(&s->count, 1);
                atomic_xadd(&cpu.samples, 1);
                goto out;
            }
        }
        if (goid == 0) break;
        /* Crowded: the same stack without its goroutine. */
        goid = 0;
        h = 0xcbf29ce484222325ULL ^ ((uint64_t)ret0 << 1);
        for (int i = 0; i < n; i++) h = (h ^ stk[i]) * 0x100000001b3ULL;
        h |= 1;
        if (h == 1) h = 3;
    }
    atomic_xadd(&cpu.lost, 1);
out:
    atomic_xadd(&cpu.active, (uint32_t)-1);
    errno = saved_errno;
}

/* ---- the helper: a timer per thread ---- */

typedef struct thread_timer {
    int tid;
    timer_t timer;
    bool seen;
} thread_timer;

static int tid_cmp(const void *a, const void *b) {
    const thread_timer *x = a, *y = b;
    return (x->tid > y->tid) - (x->tid < y->tid);
}

static bool arm(int tid, timer_t *out) {
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGPROF;
    ev._sigev_un._tid = tid;
    clockid_t clk = (clockid_t)((~(unsigned)tid << 3) | 6); /* the thread's CPU clock */
    if (timer_create(clk, &ev, out) != 0) return false;
    long ns = 1000000000L / atomic_load_relaxed(&cpu_hz);
    /* A random first expiry spreads the threads' signals. */
    long first = 1 + (long)(((uint64_t)tid * 2654435761u) % (uint64_t)ns);
    struct itimerspec its = {{ns / 1000000000L, ns % 1000000000L},
                             {first / 1000000000L, first % 1000000000L}};
    if (timer_settime(*out, 0, &its, NULL) != 0) {
        timer_delete(*out);
        return false;
    }
    return true;
}

static void helper(void *arg) {
    (void)arg;
    int self = os_gettid();
    atomic_store_rel(&cpu.helper_tid, self);
    thread_timer *v = NULL;
    size_t n = 0, cap = 0;
    uint32_t seq = atomic_load_acq(&cpu.stop_seq);
    while (atomic_load_acq(&cpu.stop_seq) == seq) {
        for (size_t i = 0; i < n; i++) v[i].seen = false;
        DIR *d = opendir("/proc/self/task");
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            int tid = atoi(e->d_name);
            if (tid <= 0 || tid == self) continue;
            thread_timer key = {tid, 0, false};
            thread_timer *found = n ? bsearch(&key, v, n, sizeof *v, tid_cmp) : NULL;
            if (found) {
                found->seen = true;
                continue;
            }
            timer_t tm;
            if (!arm(tid, &tm)) continue;
            if (n == cap) {
                size_t c = cap ? cap * 2 : 64;
                thread_timer *nv = realloc(v, c * sizeof *nv);
                if (!nv) {
                    timer_delete(tm);
                    continue;
                }
                v = nv;
                cap = c;
            }
            v[n++] = (thread_timer){tid, tm, true};
            qsort(v, n, sizeof *v, tid_cmp);
        }
        if (d) closedir(d);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (v[i].seen) {
                v[k++] = v[i];
            } else {
                timer_delete(v[i].timer); /* the thread is gone */
            }
        }
        n = k;
        futex_sleep(&cpu.stop_seq, seq, 100 * 1000 * 1000);
    }
    for (size_t i = 0; i < n; i++) timer_delete(v[i].timer);
    free(v);
    atomic_store_rel(&cpu.helper_done, 1);
    futex_wake(&cpu.helper_done, 1);
}

/* Whether ret is the return address of a call into the function holding
 * pc (a direct call of its entry, or an indirect call), and that function
 * has no frame of its own (no push %rbp at its entry, after an endbr64). */
static bool leaf_caller(uintptr_t pc, uintptr_t ret) {
    symtab_sym s;
    if (!in_text(ret) || !in_text(ret - 6) || !symtab_lookup(pc, &s) || !s.func) return false;
    return tb_leaf_return(s.start, pc, ret);
}

/* ---- start, stop ---- */

GORT_API int gort_cpu_profile_start(int fd) {
    prof_init();
    if (fd < 0) return -EBADF;
    lock(&cpu.lock);
    if (cpu.running) {
        unlock(&cpu.lock);
        return -EBUSY;
    }
    size_t bytes = (CPU_SLOTS * sizeof(cpu_slot) + 4095) & ~(size_t)4095;
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        unlock(&cpu.lock);
        return -ENOMEM;
    }
    cpu.table_bytes = bytes;
    atomic_store_relaxed(&cpu_hz, opts.cpuprofilerate > 0 ? opts.cpuprofilerate : 100);
    cpu.lost = cpu.samples = 0;
    cpu.fd = fd;
    cpu.helper_done = 0;
    atomic_store_rel(&cpu.table, (cpu_slot *)mem);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = sigprof_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, &old);
    if (old.sa_sigaction != sigprof_handler) {
        /* The program's own handler comes back at stop; the default one
         * (which kills) never does: ours stays, ignoring late signals. */
        cpu.old = old;
        cpu.have_old = (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL;
    }
    ntext = 0;
    dl_iterate_phdr(text_cb, NULL);
    cpu.start_ns = prof_nanotime();
    cpu.start_unix = prof_unix_nanos();
    atomic_store_rel(&cpu.on, 1);
    cpu.running = true;
    unlock(&cpu.lock);
    int rc = os_thread_start(helper, NULL, 0, "gort-cpuprof");
    if (rc < 0) {
        atomic_store_rel(&cpu.on, 0);
        lock(&cpu.lock);
        cpu.running = false;
        unlock(&cpu.lock);
        return rc;
    }
    return 0;
}

GORT_API int gort_cpu_profile_stop(void) {
    prof_init();
    lock(&cpu.lock);
    if (!cpu.running) {
        unlock(&cpu.lock);
        return -EINVAL;
    }
    unlock(&cpu.lock);
    int64_t dur = prof_nanotime() - cpu.start_ns;
    atomic_xadd(&cpu.stop_seq, 1);
    futex_wake(&cpu.stop_seq, 1);
    /* Waiting for the helper blocks this thread briefly (a timer deletion
     * per thread): outside a goroutine's P. */
    bool in_g = sched_getg() != NULL;
    if (in_g) gort_syscall_enter();
    while (!atomic_load_acq(&cpu.helper_done)) futex_sleep(&cpu.helper_done, 0, 10 * 1000 * 1000);
    atomic_store_rel(&cpu.on, 0);
    while (atomic_load_acq(&cpu.active)) sched_yield();
    if (in_g) gort_syscall_exit();
    if (cpu.have_old) sigaction(SIGPROF, &cpu.old, NULL);
    cpu_slot *t = cpu.table;
    pprof p;
    static const pprof_value_type types[] = {{"samples", "count"}, {"cpu", "nanoseconds"}};
    int64_t period = 1000000000 / atomic_load_relaxed(&cpu_hz);
    int rc = pprof_begin(&p, types, 2, types[1], period);
    for (int i = 0; rc == 0 && i < CPU_SLOTS; i++) {
        if (atomic_load_acq(&t[i].state) <= 1) continue;
        int64_t v[2] = {(int64_t)t[i].count, (int64_t)t[i].count * period};
        pprof_label l = {"goroutine", NULL, t[i].goid, NULL};
        uintptr_t stk[CPU_FRAMES + 1];
        int n = t[i].n;
        memcpy(stk, t[i].stk, (size_t)n * sizeof *stk);
        if (t[i].ret0 && leaf_caller(t[i].stk[0], t[i].ret0)) { /* a frameless leaf's caller */
            memmove(stk + 2, stk + 1, (size_t)(n - 1) * sizeof *stk);
            stk[1] = t[i].ret0;
            n++;
        }
        pprof_add_sample(&p, stk, n, true, v, &l, t[i].goid ? 1 : 0);
    }
    if (rc == 0 && cpu.lost) {
        char msg[96];
        snprintf(msg, sizeof msg, "gort: %llu samples lost (table full)",
                 (unsigned long long)cpu.lost);
        int64_t idx = pprof_string(&p, msg); /* interned before the comment field */
        pbuf_tag(&p.out, 13, 0);
        pbuf_varint(&p.out, (uint64_t)idx);
    }
    if (rc == 0) rc = pprof_finish(&p, cpu.fd, cpu.start_unix, dur, NULL);
    pprof_free(&p);
    atomic_store_rel(&cpu.table, NULL);
    munmap(t, cpu.table_bytes);
    lock(&cpu.lock);
    cpu.running = false;
    unlock(&cpu.lock);
    return rc;
}
