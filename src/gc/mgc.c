/* The collector's cycle (Go's mgc.go): starting a cycle, the background mark
 * workers, mark termination, and the public controls (gort_gc,
 * gort_set_gc_percent). The phases and invariants are in gc.h.
 *
 * Workers. The collector runs on its own threads ("gort-gcmark", one per
 * P, created at the first cycle), not on Ps: a program that never calls
 * gort_main has no Ps, and a worker must be able to stop the world and
 * suspend threads, which an M holding a P must not do from inside a
 * goroutine's critical section. Each worker decides at every slice
 * (GC_SLICE_NS of work) whether it may run (Go's dedicated / fractional /
 * idle split, computed by the pacer from GOMAXPROCS):
 *   - workers [0, dedicated) run all the time (25% of the Ps, rounded);
 *   - the next one is fractional: it runs while its share of the mark
 *     phase's wall time is under fractional_goal * P;
 *   - more run while Ps are idle (one per idle P): idle marking, which on
 *     a machine where the program leaves CPUs unused makes the cycle fast.
 * The OS schedules the threads; a worker that may not run sleeps a slice.
 *
 * Termination (Go's gcMarkDone). A worker with nothing to do counts itself
 * idle (gc_state.nwait). When every worker is idle, no root job is left and
 * the global work list is empty, that worker moves the phase to MARKTERM
 * (under gc_state.lock, so that no idle worker resumes draining), waits for
 * the others to be idle, stops the world, flushes every write-barrier
 * buffer, rescans the running threads (gc_mark_termination_scan), drains
 * what that found, and ends the cycle: barrier off, phase OFF, sweepgen
 * += 2, every mcache told to flush before its next allocation, the pacer's
 * next goal and trigger. Then it starts the world and wakes the sweeper.
 *
 * GORT_GODEBUG=gctrace=1 prints Go's line at the end of each cycle.
 * GORT_GODEBUG=gcstoptheworld=1 marks with the world stopped (debugging). */
#define _GNU_SOURCE
#include "gc/gc.h"

#include "base/atomic.h"
#include "base/env.h"
#include "base/fatal.h"
#include "base/nanotime.h"
#include "base/os.h"
#include "base/print.h"
#include "base/thread.h"
#include "gort/memstats.h"
#include "gort/sched.h"
#include "mem/mcache.h"
#include "mem/mheap.h"
#include "mem/scavenge.h"
#include "sched/proc.h"
#include "sched/stack.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

/* Counters only, no reference: in the runtime's own section (GORT_RTDATA,
 * mem/arena.h), out of the collector's data scan. Scanned, two of its words
 * side by side read as a heap address every so often (sweepgen 192 beside
 * markgen 96 is 0xc000000060, an object near the heap's start), a false
 * root for the cycles that lasted. */
struct gc_state gc_state GORT_RTDATA = {.lock = LOCK_INIT};
void (*gc_pool_cleanup_hook)(void);
void (*gc_trace_hook)(int ev, uint64_t arg);

#define GC_SLICE_NS     (1000 * 1000) /* a worker's unit of work between checks */
#define GC_SLICE_WORK   (256 << 10)   /* bytes of scan work per drain call */
#define MAX_WORKERS     64
#define FORCE_PERIOD_NS ((int64_t)120 * 1000 * 1000 * 1000) /* Go's forcegcperiod */

static uint32_t start_mutex;    /* serializes gc_start (a futex mutex: held across stops) */
static uint32_t worker_seq;     /* futex word: bumped at each mark start */
static uint32_t cycle_done_seq; /* futex word: bumped at each cycle's end */
static int nworkers;
static int64_t worker_busy_ns[MAX_WORKERS];
static int64_t stw1_ns, stw2_ns, mark_ns_wall, cycle_start_ns;
static int64_t assist_ns_at_start;
static uint64_t heap0, heap1; /* gctrace: heap at the start, at the end of mark */
static uint32_t forced_cycle;
static uint64_t cycle_goal; /* the heap goal of the cycle in progress (gctrace) */

static void fmutex_lock(uint32_t *mu) {
    uint32_t z = 0;
    if (atomic_cas(mu, &z, 1)) return;
    while (atomic_xchg(mu, 2) != 0) futex_sleep(mu, 2, -1);
}

static void fmutex_unlock(uint32_t *mu) {
    if (atomic_xchg(mu, 0) == 2) futex_wake(mu, 1);
}

/* Whether the scheduler is running (gort_main has started it). */
bool sched_started_now(void) {
    return atomic_load_acq(&sched.nallp) > 0;
}

static int gc_nprocs(void) {
    if (sched_started_now()) return atomic_load_acq(&sched.gomaxprocs);
    int n = os_ncpu();
    return n > 0 ? n : 1;
}

static void newproc_hook(void *arg);

/* ---- the end of a cycle ---- */

static void record_pause(int64_t ns) {
    uint32_t i = gc_state.cycles % 256;
    gc_state.pause_ns[i] += (uint64_t)ns;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    gc_state.pause_end[i] = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    gc_state.pause_total_ns += ns;
    gc_limiter_add(GC_LIM_PAUSE, ns);
    GC_HOOK(GC_EV_PAUSE, (uint64_t)ns);
}

void gc_record_extra_pause(int64_t ns) {
    record_pause(ns);
}

/* Go's gctrace line (runtime/extern.go's description): cycle number,
 * seconds since start, percentage of CPU time spent in GC since start; the
 * wall-clock times of the sweep-termination stop, the concurrent mark and
 * the mark-termination stop; their CPU times (stops * P, then assist /
 * background / idle marking); the heap at the cycle's start, at the end of
 * mark, and the live heap marked; the goal of the cycle; stacks and
 * globals scanned; the number of Ps. */
static void gctrace_line(void) {
    int procs = gc_nprocs();
    double since = (double)(nanotime() - gc_state.start_ns);
    int pct = since > 0 ? (int)(100.0 * (double)gc_state.gc_cpu_ns / (since * procs)) : 0;
    char line[512];
    size_t n = snprint(line, sizeof line, "gc %u @%lld.%03llds %d%%: ", gc_state.cycles,
                       (long long)((cycle_start_ns - gc_state.start_ns) / 1000000000),
                       (long long)((cycle_start_ns - gc_state.start_ns) / 1000000 % 1000), pct);
#define MS3(ns) (long long)((ns) / 1000000), (long long)((ns) / 1000 % 1000)
    n += snprint(line + n, sizeof line - n, "%lld.%03lld+%lld.%03lld+%lld.%03lld ms clock, ",
                 MS3(stw1_ns), MS3(mark_ns_wall), MS3(stw2_ns));
    int64_t bg = gc_state.mark_cpu_bg - gc_state.idle_ns;
    n += snprint(line + n, sizeof line - n,
                 "%lld.%03lld+%lld.%03lld/%lld.%03lld/%lld.%03lld+%lld.%03lld ms cpu, ",
                 MS3(stw1_ns * procs), MS3(gc_state.assist_ns), MS3(bg > 0 ? bg : 0),
                 MS3(gc_state.idle_ns), MS3(stw2_ns * procs));
#undef MS3
    n += snprint(
        line + n, sizeof line - n,
        "%llu->%llu->%llu MB, %llu MB goal, %llu MB stacks, %llu MB globals, %d P%s\n",
        (unsigned long long)(heap0 >> 20), (unsigned long long)(heap1 >> 20),
        (unsigned long long)(gc_pacer.heap_marked >> 20), (unsigned long long)(cycle_goal >> 20),
        (unsigned long long)(gc_pacer.stack_scan >> 20),
        (unsigned long long)(gc_pacer.globals_scan >> 20), procs, forced_cycle ? " (forced)" : "");
    /* The GC CPU limiter engaged since the last line (mgclimit.c). */
    if (gc_limiter_trace() && n > 0 && n < sizeof line - 21)
        n += snprint(line + n - 1, sizeof line - n + 1, " (GC CPU limiter on)\n") - 1;
    print("%s", line);
}

/* GORT_GODEBUG=gcpacertrace=1: Go's pacer line at mark termination (before
 * the cycle's figures feed the next): the GC's share of the CPU while
 * marking, the scan work done against what the pacer expected, the heap
 * from the trigger to now against the goal, the cons/mark ratio the trigger
 * was computed from, and the trigger's place between the live heap and the
 * goal. */
static void pacertrace_line(int64_t cpu) {
    int procs = gc_nprocs();
    double util = mark_ns_wall > 0 ? (double)cpu / ((double)mark_ns_wall * procs) : 0;
    uint64_t exp = gc_pacer.last_heap_scan + gc_pacer.stack_scan + gc_pacer.globals_scan;
    uint64_t work = atomic_load_relaxed(&gc_state.scan_work);
    uint64_t start = gc_pacer.heap_live_at_start, prev = gc_pacer.heap_marked;
    int64_t dgoal = (int64_t)heap1 - (int64_t)cycle_goal;
    int tpct =
        cycle_goal > prev
            ? (int)(100 * ((double)start - (double)prev) / ((double)cycle_goal - (double)prev))
            : 0;
    print("pacer: %d%% CPU for %llu B work (%llu B exp.) in %llu B -> %llu B (goal %llu, "
          "delta %lld), cons/mark %d/1000, trigger at %d%%\n",
          (int)(100 * util), (unsigned long long)work, (unsigned long long)exp,
          (unsigned long long)start, (unsigned long long)heap1, (unsigned long long)cycle_goal,
          (long long)dgoal, (int)(1000 * gc_pacer.cons_mark), tpct);
}

/* Grey objects termination may find and still drain with the world stopped;
 * beyond this, marking goes back to being concurrent (Go's gcMarkDone
 * restarts the same way when its ragged barrier finds work). */
#define TERM_DRAIN_MAX 4096

/* World stopped: flushes the barrier buffers and rescans the running
 * threads; false (the work handed to the workers) if that found too much
 * to drain now. */
static bool mark_termination_scan(void) {
    gcwork w = {0};
    gc_mark_termination_scan(&w);
    uint64_t n = (w.wbuf1 ? w.wbuf1->nobj : 0) + (w.wbuf2 ? w.wbuf2->nobj : 0);
    bool small = n <= TERM_DRAIN_MAX && gcw_global_empty();
    if (small) gc_drain(&w, -1, NULL, false);
    gcw_dispose(&w);
    return small;
}

/* World stopped: the end of the mark phase. */
static void mark_termination(int64_t stop_ns) {
    int64_t t0 = nanotime();
    gcwork w = {0};
    gc_drain(&w, -1, NULL, false); /* what others disposed meanwhile (nobody runs) */
    gcw_dispose(&w);
    gcw_reset_global();
    if (opts.debug.gccheckmark) gc_checkmark();

    int64_t mark_end = nanotime();
    mark_ns_wall = mark_end - gc_pacer.mark_start_ns;
    heap1 = atomic_load_relaxed(&gc_pacer.heap_live);
    /* Live: what was marked, plus what was allocated black meanwhile. */
    uint64_t alloc_during =
        heap1 > gc_pacer.heap_live_at_start ? heap1 - gc_pacer.heap_live_at_start : 0;
    uint64_t marked = atomic_load_relaxed(&gc_state.bytes_marked) + alloc_during;
    int64_t cpu = atomic_load_relaxed(&gc_state.gc_cpu_ns) - gc_state.cpu_at_mark_start;
    if (opts.debug.gcpacertrace) pacertrace_line(cpu);
    gc_pacer_update_cons_mark(mark_ns_wall, cpu, gc_nprocs());
    gc_pacer.heap_marked = marked;
    gc_pacer.stack_scan = (uint64_t)atomic_load_relaxed(&gc_state.stack_scan_bytes);
    gc_pacer.globals_scan = (uint64_t)atomic_load_relaxed(&gc_state.globals_bytes);
    /* The heap's scan work of this cycle (Go 1.19's lastHeapScan: what the
     * next cycle is expected to scan again), not the scannable heap at its
     * end: objects allocated black during the mark were never scanned, and
     * counting them (2-3 x the work in binarytrees) made the assist ratio
     * and the trigger's runway those times too large. */
    uint64_t roots_done = gc_pacer.stack_scan + gc_pacer.globals_scan;
    uint64_t work = (uint64_t)atomic_load_relaxed(&gc_state.scan_work);
    gc_pacer.last_heap_scan = work > roots_done ? work - roots_done : 0;

    __atomic_store_n(&gort__writebarrier, 0, __ATOMIC_RELEASE);
    sched_gc_newproc_hook = NULL;
    atomic_store_rel(&gc_state.phase, GC_OFF);
    atomic_store_rel(&gc_state.sweepgen, gc_state.sweepgen + 2);
    atomic_store_rel(&gc_state.flushgen, gc_state.flushgen + 1);
    atomic_store_rel(&gc_state.sweep_done, 0);
    /* heap_live restarts from what is live; spans still cached count their
     * free slots again when they are next cached (mgccentral.c). */
    atomic_store_rel(&gc_pacer.heap_live, marked);
    atomic_store_rel(&gc_pacer.heap_scan, gc_pacer.last_heap_scan); /* Go's heapScan */
    gc_pacer_end_cycle();
    gc_sweep_credit_reset();
    gc_state.last_mark_end_ns = (uint64_t)nanotime();
    stw2_ns = nanotime() - stop_ns;
    record_pause(stw2_ns);
    gc_state.cycles++;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    gc_state.last_gc_unix = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    (void)t0;
}

static void wake_workers(void) {
    atomic_xadd(&gc_state.mark_done_seq, 1);
    futex_wake(&gc_state.mark_done_seq, INT32_MAX);
}

static int term_restarts; /* of this cycle's termination (under the stop) */

/* Run by the worker that found marking done (see the header). */
static void try_terminate(void) {
    lock(&gc_state.lock);
    /* An assist inside a drain chunk holds grey objects of its own, which
     * it gives back to the global list when the chunk ends: the stop found
     * them there and went back to concurrent marking, and after three such
     * restarts drained all that was left with the world stopped (binarytrees:
     * restarts in most cycles, stops of 1 to 10 ms). */
    if (gc_state.phase != GC_MARK || gc_state.nwait != gc_state.nproc || gc_roots_pending() ||
        !gcw_global_empty() || atomic_load_acq(&gc_state.assists_draining) != 0) {
        unlock(&gc_state.lock);
        return;
    }
    atomic_store_rel(&gc_state.phase, GC_MARKTERM);
    atomic_store_rel(&gc_state.stop_drain, 1);
    unlock(&gc_state.lock);
    /* The idle workers are not woken here but after the stop: woken now,
     * they took the CPU from the stopper or from the thread it signals
     * just as the stop began, and the stop waited for them (binarytrees,
     * 2 CPUs: stops of 0.5 to 1 ms in about one cycle in 100). */
    int64_t t0 = nanotime();
    stop_the_world("GC mark termination");
    if (!mark_termination_scan() && term_restarts < 3) {
        /* Too much left: back to concurrent marking. */
        term_restarts++;
        lock(&gc_state.lock);
        atomic_store_rel(&gc_state.stop_drain, 0);
        atomic_store_rel(&gc_state.phase, GC_MARK);
        unlock(&gc_state.lock);
        record_pause(nanotime() - t0);
        start_the_world();
        wake_workers();
        return;
    }
    term_restarts = 0;
    mark_termination(t0);
    start_the_world();
    wake_workers(); /* to wait for the next cycle (worker_main) */
    GC_HOOK(GC_EV_DONE, gc_state.cycles);
    if (opts.debug.gctrace) gctrace_line();
    gc_sweeper_wake();
    atomic_xadd(&cycle_done_seq, 1);
    futex_wake(&cycle_done_seq, INT32_MAX);
}

/* ---- workers ---- */

/* A worker stops marking (no work, or not its turn): its work goes to the
 * global lists, and the last one to stop checks whether marking is done.
 * A worker counts only in the cycle it joined (cyc): a new cycle starts
 * with every worker counted idle. */
static void go_idle(gcwork *w, uint32_t cyc) {
    gcw_dispose(w);
    lock(&gc_state.lock);
    bool last = false;
    if (gc_state.markgen == cyc) {
        gc_state.nwait++;
        last = gc_state.nwait == gc_state.nproc;
    }
    unlock(&gc_state.lock);
    if (last) try_terminate();
}

/* Whether worker id may mark now; *idle: on an idle P's time. */
static bool may_work(int id, int64_t mark_start, int64_t now, bool *idle_p) {
    *idle_p = false;
    int ded = gc_pacer.dedicated_workers;
    if (!sched_started_now() && ded == 0) ded = 1; /* no Ps to be idle: one always runs */
    if (id < ded) return true;
    int idle = sched_started_now() ? (int)atomic_load_relaxed(&sched.npidle) : 0;
    int frac = gc_pacer.fractional_goal > 0 ? 1 : 0;
    int extra = idle > frac ? idle : frac;
    if (id >= ded + extra) return false;
    if (idle > id - ded) { /* an idle P's worth of CPU */
        *idle_p = true;
        return true;
    }
    /* The fractional worker: its share of the phase's wall time. */
    double goal = gc_pacer.fractional_goal * gc_nprocs();
    double elapsed = (double)(now - mark_start);
    return elapsed <= 0 || (double)worker_busy_ns[id] < goal * elapsed;
}

static void worker_main(void *arg) {
    int id = (int)(intptr_t)arg;
    gc_internal_thread = true;
    gcwork w = {0};
    for (;;) {
        uint32_t s = atomic_load_acq(&worker_seq);
        if (gc_phase() != GC_MARK) {
            futex_sleep(&worker_seq, s, 100 * 1000 * 1000);
            continue;
        }
        uint32_t cyc = atomic_load_acq(&gc_state.markgen);
        int64_t mark_start = gc_pacer.mark_start_ns;
        /* The fractional worker's share is of this cycle's mark. */
        worker_busy_ns[id] = 0;
        bool active = false; /* a cycle starts with every worker counted idle */
        while (gc_phase() == GC_MARK && atomic_load_acq(&gc_state.markgen) == cyc) {
            int64_t now = nanotime();
            bool on_idle;
            if (!may_work(id, mark_start, now, &on_idle)) {
                if (active) {
                    active = false;
                    go_idle(&w, cyc);
                }
                uint32_t q = atomic_load_acq(&gc_state.mark_done_seq);
                futex_sleep(&gc_state.mark_done_seq, q, 200 * 1000);
                continue;
            }
            if (!active) {
                lock(&gc_state.lock);
                if (gc_state.phase != GC_MARK || gc_state.markgen != cyc) {
                    unlock(&gc_state.lock);
                    break;
                }
                gc_state.nwait--;
                unlock(&gc_state.lock);
                active = true;
            }
            int64_t done = 0, t0 = now, d;
            do {
                d = gc_drain(&w, GC_SLICE_WORK, &gc_state.stop_drain, true);
                done += d;
            } while (d > 0 && nanotime() - t0 < GC_SLICE_NS && gc_phase() == GC_MARK);
            int64_t dt = nanotime() - t0;
            worker_busy_ns[id] += dt;
            atomic_xadd(&gc_state.gc_cpu_ns, dt);
            atomic_xadd(&gc_state.mark_cpu_bg, dt);
            if (on_idle) atomic_xadd(&gc_state.idle_ns, dt);
            gc_limiter_worker(on_idle, dt, t0 + dt);
            if (done > 0) atomic_xadd(&gc_pacer.bg_scan_credit, done);
            if (d > 0) continue;
            /* No work: idle until some appears or the cycle ends. */
            active = false;
            go_idle(&w, cyc);
            uint32_t q = atomic_load_acq(&gc_state.mark_done_seq);
            if (gc_phase() == GC_MARK && gcw_global_empty() && !gc_roots_pending())
                futex_sleep(&gc_state.mark_done_seq, q, 1000 * 1000);
        }
        if (active) go_idle(&w, cyc);
        gcw_dispose(&w);
        /* Wait for this cycle to end before looking for the next. */
        while (gc_phase() != GC_OFF && atomic_load_acq(&gc_state.markgen) == cyc) {
            uint32_t q = atomic_load_acq(&gc_state.mark_done_seq);
            futex_sleep(&gc_state.mark_done_seq, q, 1000 * 1000);
        }
    }
}

static void start_workers(int n) {
    if (n > MAX_WORKERS) n = MAX_WORKERS;
    while (nworkers < n) {
        if (os_thread_start(worker_main, (void *)(intptr_t)nworkers, 0, "gort-gcmark") < 0)
            throw("cannot start a GC worker thread");
        nworkers++;
    }
}

/* ---- starting a cycle ---- */

static bool trigger_holds(enum gc_trigger why, uint32_t n) {
    switch (why) {
    case GC_TRIGGER_HEAP:
        return atomic_load_relaxed(&gc_pacer.heap_live) >= atomic_load_acq(&gc_pacer.trigger);
    case GC_TRIGGER_TIME:
        return gc_pacer.gcpercent >= 0 &&
               nanotime() - (int64_t)gc_state.last_mark_end_ns > FORCE_PERIOD_NS;
    case GC_TRIGGER_CYCLE:
        return (int32_t)(n - gc_state.started) > 0;
    }
    return false;
}

/* Starts a cycle (see the header). n: for GC_TRIGGER_CYCLE, the cycle
 * number wanted. */
static void gc_start_n(enum gc_trigger why, uint32_t n) {
    gc_init();
    if (lock_depth > 0) throw("gc_start inside a runtime critical section");
    if (!trigger_holds(why, n)) return;
    fmutex_lock(&start_mutex);
    if (gc_phase() != GC_OFF || !trigger_holds(why, n)) {
        fmutex_unlock(&start_mutex);
        return;
    }
    gc_finish_sweep();
    int procs = gc_nprocs();
    gc_pacer.nprocs = procs;
    start_workers(procs);
    cycle_start_ns = nanotime();
    heap0 = atomic_load_relaxed(&gc_pacer.heap_live);
    forced_cycle = why == GC_TRIGGER_CYCLE;
    int64_t t0 = nanotime();
    gc_limiter_poll(t0);
    stop_the_world("GC sweep termination");
    /* Mcaches that never allocated since the last cycle flush now (their
     * spans are swept as they are given back). */
    uint32_t fg = gc_state.flushgen;
    for (mcache *c = mcache_all(); c; c = c->next_all)
        if (c->gc_flushgen != fg) gc_mcache_flush(c);
    gc_finish_sweep();
    void (*pools)(void) = gc_pool_cleanup_hook;
    if (pools) pools(); /* Go's clearpools */
    gc_state.started++;
    if (why == GC_TRIGGER_CYCLE) gc_state.forced++;
    gc_state.markgen++;
    gc_state.bytes_marked = 0;
    gc_state.scan_work = 0;
    gc_state.stack_scan_bytes = gc_state.globals_bytes = 0;
    gc_state.mark_cpu_bg = 0;
    gc_state.cpu_at_mark_start = gc_state.gc_cpu_ns;
    assist_ns_at_start = gc_state.gc_cpu_ns;
    gc_state.pause_ns[gc_state.cycles % 256] = 0;
    gc_state.assist_ns = gc_state.idle_ns = 0;
    gc_prepare_roots();
    gc_pacer_start_cycle();
    cycle_goal = gc_pacer.heap_goal;
    /* Allocate black from here in every span cached now. */
    uint32_t mg = gc_state.markgen;
    for (mcache *c = mcache_all(); c; c = c->next_all) {
        for (unsigned i = 2; i < NUM_SIZE_CLASSES * 2; i++) {
            mspan *s = c->alloc_gc[i];
            if (s == &empty_mspan) continue;
            s->fi_markstart = s->freeindex;
            atomic_store_rel(&s->markgen, mg);
        }
    }
    gcwork w = {0};
    gc_mark_tiny_allocs(&w);
    gcw_dispose(&w);
    gc_state.nproc = (uint32_t)nworkers;
    gc_state.nwait = (uint32_t)nworkers; /* each joins as it wakes (worker_main) */
    gc_state.stop_drain = 0;
    __atomic_store_n(&gort__writebarrier, 1, __ATOMIC_RELEASE);
    sched_gc_newproc_hook = newproc_hook;
    atomic_store_rel(&gc_state.phase, GC_MARK);
    stw1_ns = nanotime() - t0;
    record_pause(stw1_ns);
    start_the_world();
    GC_HOOK(GC_EV_START, gc_state.started);
    atomic_xadd(&worker_seq, 1);
    futex_wake(&worker_seq, INT32_MAX);
    fmutex_unlock(&start_mutex);
}

void gc_start(enum gc_trigger why, bool wait) {
    uint32_t target = gc_state.started + 1;
    gc_start_n(why, why == GC_TRIGGER_CYCLE ? target : 0);
    (void)wait;
}

/* Waits (without holding a P) until cycle n has ended. */
static void wait_cycle(uint32_t n) {
    if ((int32_t)(atomic_load_acq(&gc_state.cycles) - n) >= 0) return;
    bool in_g = sched_getg() != NULL;
    if (in_g) gort_syscall_enter();
    while ((int32_t)(gc_state.cycles - n) < 0) {
        uint32_t s = atomic_load_acq(&cycle_done_seq);
        if ((int32_t)(atomic_load_acq(&gc_state.cycles) - n) >= 0) break;
        futex_sleep(&cycle_done_seq, s, 10 * 1000 * 1000);
    }
    if (in_g) gort_syscall_exit();
}

/* ---- public controls ---- */

GORT_API void gort_gc(void) {
    gc_init();
    gc_thread_self();
    /* As runtime.GC: wait for a cycle in progress, run a new one to its end,
     * then finish its sweep, so that the heap is as collected as it gets. */
    /* n is read once (Go's runtime.GC): a cycle started after this read is
     * one the caller may count as its own. Reading started again after the
     * wait lost a race with a cycle starting in between: gc_start_n found
     * that cycle marking and declined, and wait_cycle(n + 1) then waited
     * for a cycle nobody would start (gc_back_to_back, three goroutines
     * calling gort_gc back to back, hung in about one run in eight). */
    uint32_t n = atomic_load_acq(&gc_state.started);
    wait_cycle(n); /* the cycle in progress, if any */
    gc_start_n(GC_TRIGGER_CYCLE, n + 1);
    wait_cycle(n + 1);
    /* Every span swept, those still cached in mcaches too (Go's mark
     * termination flushes every P's mcache; ours flush on their next
     * allocation): a brief stop flushes the ones that have not. */
    fmutex_lock(&start_mutex);
    if (gc_phase() == GC_OFF) {
        stop_the_world("GC flush mcaches");
        uint32_t fg = gc_state.flushgen;
        for (mcache *c = mcache_all(); c; c = c->next_all)
            if (c->gc_flushgen != fg) gc_mcache_flush(c);
        start_the_world();
        gc_finish_sweep();
    }
    fmutex_unlock(&start_mutex);
}

GORT_API int gort_set_gc_percent(int percent) {
    gc_init();
    lock(&gc_state.lock);
    int old = gc_pacer.gcpercent;
    gc_pacer.gcpercent = percent < 0 ? -1 : percent;
    if (gc_phase() == GC_OFF) gc_pacer_end_cycle();
    unlock(&gc_state.lock);
    /* A lower goal may already be exceeded. */
    gc_start(GC_TRIGGER_HEAP, false);
    return old;
}

GORT_API int gort_add_roots(void *start, size_t len) {
    gc_init();
    gc_thread_self();
    uintptr_t lo = (uintptr_t)start;
    if (!start || !len || lo + len < lo) return -EINVAL;
    return gc_add_root_range(lo, lo + len, true);
}

GORT_API int gort_remove_roots(void *start, size_t len) {
    uintptr_t lo = (uintptr_t)start;
    if (!start || !len || lo + len < lo) return -EINVAL;
    return gc_add_root_range(lo, lo + len, false);
}

/* gort_free_os_memory (mem's hook): debug.FreeOSMemory's collection first,
 * and the goroutine stacks the scheduler keeps cached. */
void gc_free_os_memory_hook(void) {
    gort_gc();
    if (sched_started_now()) stack_scavenge();
}

/* sysmon's forced cycle (Go's forcegc): every 2 minutes without one. */
void gc_sysmon_tick(void) {
    if (gc_state.enabled && gc_phase() == GC_OFF && trigger_holds(GC_TRIGGER_TIME, 0))
        gc_start(GC_TRIGGER_TIME, false);
}

/* ---- fork ----
 *
 * A fork waits for a cycle in progress to end (a child could not finish
 * it: the workers are threads, gone in the child) and holds every lock of
 * the collector across the fork, in the order the collector takes them:
 * the cycle's start mutex, then (the scheduler has meanwhile stopped the
 * world, which holds stop-the-world's mutexes) runtime locks. The
 * scheduler's fork handlers call this at each phase (sched_gc_fork_hook),
 * so that the world stops after the cycle ends and before these locks are
 * taken. In the child the collector's threads are restarted on demand. */
static int fork_lock_depth; /* the forking thread's lock_depth before our locks */

static void fork_hook(int phase) {
    switch (phase) {
    case 0: /* before the world stops */
        fmutex_lock(&start_mutex);
        while (gc_phase() != GC_OFF) {
            uint32_t s = atomic_load_acq(&cycle_done_seq);
            if (gc_phase() == GC_OFF) break;
            futex_sleep(&cycle_done_seq, s, 10 * 1000 * 1000);
        }
        break;
    case 1: /* the world stopped */
        fork_lock_depth = lock_depth;
        lock(&gc_state.lock);
        gc_limiter_fork(0);
        gc_thread_fork(0);
        gc_mark_fork(0);
        gc_final_fork(0);
        gc_central_lock_all();
        gc_work_fork(0);
        break;
    case 2: /* parent, before the world starts */
        gc_work_fork(1);
        gc_central_unlock_all();
        gc_final_fork(1);
        gc_mark_fork(1);
        gc_thread_fork(1);
        gc_limiter_fork(1);
        unlock(&gc_state.lock);
        break;
    case 3: /* parent, after */
        fmutex_unlock(&start_mutex);
        break;
    default: /* child */
        gc_work_fork(2);
        gc_central_reinit_locks();
        gc_final_fork(2);
        gc_mark_fork(2);
        gc_thread_fork(2);
        gc_limiter_fork(2);
        gc_state.lock = (lock_t)LOCK_INIT;
        lock_depth = fork_lock_depth; /* the locks were reset, not unlocked */
        start_mutex = 0;
        nworkers = 0; /* started again by the next cycle */
        gc_sweep_fork_child();
        break;
    }
}

/* ---- init ---- */

static void flush_hook(mcache *c) {
    gc_mcache_flush(c);
}

/* gort_go while marking: the new goroutine's stack starts black, so its
 * argument is shaded (installed only during the mark phase). */
static void newproc_hook(void *arg) {
    gort__wb_slow(NULL, arg);
}

static void memstats_hook(gort_memstats *ms) {
    ms->num_gc = gc_state.cycles;
    ms->num_forced_gc = gc_state.forced;
    ms->pause_total_ns = (uint64_t)gc_state.pause_total_ns;
    memcpy(ms->pause_ns, gc_state.pause_ns, sizeof ms->pause_ns);
    memcpy(ms->pause_end, gc_state.pause_end, sizeof ms->pause_end);
    ms->last_gc = gc_state.last_gc_unix;
    ms->next_gc = gc_pacer.heap_goal == UINT64_MAX ? 0 : gc_pacer.heap_goal;
    int64_t since = nanotime() - gc_state.start_ns;
    int procs = gc_nprocs();
    ms->gc_cpu_fraction =
        since > 0 ? (double)atomic_load_relaxed(&gc_state.gc_cpu_ns) / ((double)since * procs) : 0;
    /* Large GC objects freed by the sweeper (small ones are derived from
     * the spans, as explicit ones are). */
    uint64_t lf = atomic_load_relaxed(&gc_state.large_frees);
    uint64_t lb = atomic_load_relaxed(&gc_state.large_free_bytes);
    ms->frees += lf;
    ms->heap_objects = ms->mallocs > ms->frees ? ms->mallocs - ms->frees : 0;
    uint64_t ha = ms->heap_alloc > lb ? ms->heap_alloc - lb : 0;
    ms->heap_alloc = ms->alloc = ha;
    gc_limiter_memstats(ms);
}

static void sysmon_hook(void) {
    gc_sysmon_tick();
}

void gc_init(void) {
    static uint32_t state; /* 0 no, 1 in progress, 2 done */
    if (__builtin_expect(atomic_load_acq(&state) == 2, 1)) return;
    uint32_t z = 0;
    if (!atomic_cas(&state, &z, 1)) {
        while (atomic_load_acq(&state) != 2) cpu_relax();
        return;
    }
    env_init();
    if (mheap_init() < 0) throw("cannot initialize the heap");
    if (stw_init() < 0) throw("cannot install the stop-the-world signal");
    gc_pacer.gcpercent = opts.gogc;
    gc_pacer_end_cycle();
    gc_state.start_ns = nanotime();
    gc_state.last_mark_end_ns = (uint64_t)gc_state.start_ns;
    mcache_gc_flush_hook = flush_hook;
    memstats_gc_hook = memstats_hook;
    free_os_memory_gc_hook = gc_free_os_memory_hook;
    sched_gc_sysmon_hook = sysmon_hook;
    gc_sweeper_start();
    atomic_store_rel(&sched_gc_fork_hook, fork_hook);
    sched_fork_register();
    gc_state.enabled = true;
    atomic_store_rel(&state, 2);
}
