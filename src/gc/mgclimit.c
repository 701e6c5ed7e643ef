/* The GC CPU limiter (Go's mgclimit.go) and the memory-limit callback.
 *
 * Under a memory limit a live heap near (or over) the limit would have the
 * collector run back to back, and its assists take the program's CPU: the
 * "death spiral" (golang/go#58106). The limiter bounds that. It is Go's
 * leaky bucket: GC CPU time fills it, the program's CPU time drains it,
 * its capacity is GOMAXPROCS CPU-seconds; while it is full the limiter is
 * on, and then:
 *   - mark assists stop (the allocating thread neither scans nor waits for
 *     the workers; its debt stays for when the limiter lets go), so the
 *     heap may pass its goal and the limit rather than stall the program;
 *   - allocation stops scavenging inline (mem_limit_assist_off).
 * Filling and draining with time directly sets the limit at 50% of the CPU
 * over a window the capacity sets; the bucket never goes below empty, so an
 * idle day earns no credit for a spiral the next.
 *
 * One departure: Go turns the limiter off at the first update that drains
 * the bucket at all. Updates come every 10 ms, so in a spiral it flips at
 * every update: a window of assists stopped, then a window of assists at
 * full strength whose excess over the full bucket is lost (overflow), and
 * the collector takes 60-95% of the CPU (measured, tests/test_memlimit.c).
 * Here it stays on until the bucket has drained by a twentieth (100 ms of
 * the program's time at two Ps), so that the time on and the time off
 * balance over many updates and the average is the 50% the bucket means.
 *
 * What counts, per update window of W ns wall time at N Ps (N * W in all):
 *   GC: mark assists (the time an allocating thread, holding its P, spends
 *   scanning), background workers' CPU time, and every stop of the world
 *   times N (Go's: the world stopped is every P's time);
 *   idle: workers that ran on idle Ps (idle marking soaks up time the
 *   program left unused; Go subtracts it, as it does time Ps spend idle),
 *   and assists waiting for the workers (Go parks such a goroutine and its
 *   P finds other work or idles);
 *   the program: the rest, N * W - idle - GC.
 * Go counts background marking as a flat 25% of the window while a cycle
 * runs; gort's workers are threads, not Ps, so what counts is the CPU time
 * they took (a program without gort_main marks on a whole worker: 50% at two
 * CPUs), read from the thread's clock: wall time would count the time the
 * OS ran the program instead. The time that gort cannot see as idle (Ps
 * with nothing to run while no cycle marks) counts as the program's, which
 * only drains the bucket faster between cycles; in a spiral cycles never
 * stop.
 *
 * Updates: at most every 10 ms, by whoever notices first (a worker after a
 * slice, an assist, a cycle's start), under a try-lock: time added to the
 * pools meanwhile waits for the next update.
 *
 * Beyond Go, the callback (gort_set_memory_limit_callback): when the
 * limiter has been on for a sustained period (SUSTAINED_NS, counted from
 * its first engagement and not broken by flickers: an episode ends only when
 * the bucket has drained to half), fn(arg) is queued for the finalizer
 * goroutine, once per episode. */
#include "gc/gc.h"

#include "base/atomic.h"
#include "base/lock.h"
#include "base/nanotime.h"
#include "base/os.h"
#include "gort/memstats.h"
#include "mem/scavenge.h"

#define UPDATE_PERIOD_NS  ((int64_t)10 * 1000 * 1000)
#define CAPACITY_PER_PROC ((uint64_t)1000 * 1000 * 1000) /* 1 CPU-second per P */
#define SUSTAINED_NS      ((int64_t)1000 * 1000 * 1000)
#define HYSTERESIS_DIV    20 /* on until 1/20 of the bucket has drained */

uint32_t gc_limiter_enabled;

static struct {
    uint32_t lock;       /* try-lock: one updater at a time */
    int64_t last_update; /* atomic: nanotime of the last update */
    uint64_t fill, capacity;
    int nprocs;
    int64_t pool[4];       /* atomic: ns per gc_limiter_kind since the last update */
    uint64_t total[4];     /* cumulative CPU ns up to the last update (MemStats; pauses * N) */
    uint64_t overflow;     /* GC ns the full bucket had no room for */
    uint64_t engaged_ns;   /* total time on */
    uint32_t last_enabled; /* gc_state.cycles + 1 when it last engaged */
    uint32_t traced;       /* atomic: on at some point since gctrace last asked */
    int64_t engaged_since; /* the current episode's start; 0: none */
    bool fired;            /* the callback ran in this episode */
} lim;

static lock_t callback_lock = LOCK_INIT;
static void (*callback_fn)(void *arg);
static void *callback_arg; /* a global: scanned as a root while set */

void gc_limiter_add(enum gc_limiter_kind kind, int64_t ns) {
    if (ns > 0) atomic_xadd(&lim.pool[kind], ns);
}

void gc_limiter_worker(bool on_idle, int64_t dt, int64_t now) {
    static __thread int64_t cpu_last; /* this worker's CPU time at its last slice */
    int64_t cpu = os_thread_cpu_ns(), d = cpu_last ? cpu - cpu_last : dt;
    cpu_last = cpu;
    if (on_idle) {
        gc_limiter_add(GC_LIM_IDLE, dt); /* an idle P's time, whoever ran */
    } else {
        /* CPU time, not wall time: the OS may run the program meanwhile
         * (workers are threads, not Ps). d also has what the thread did
         * since its last slice (little): at most the slice. */
        gc_limiter_add(GC_LIM_WORKER, d < dt ? d : dt);
    }
    gc_limiter_poll(now);
}

/* Go's accumulate: the bucket, and the switch. */
static void accumulate(int64_t mutator, int64_t gc) {
    uint64_t headroom = lim.capacity - lim.fill;
    bool was = atomic_load_relaxed(&gc_limiter_enabled);
    int64_t change = gc - mutator;
    if (change > 0 && headroom <= (uint64_t)change) {
        lim.overflow += (uint64_t)change - headroom;
        lim.fill = lim.capacity;
        if (!was) {
            atomic_store_rel(&gc_limiter_enabled, 1);
            lim.last_enabled = atomic_load_relaxed(&gc_state.cycles) + 1;
        }
        return;
    }
    if (change < 0)
        lim.fill = lim.fill <= (uint64_t)-change ? 0 : lim.fill - (uint64_t)-change;
    else
        lim.fill += (uint64_t)change;
    /* Off once it has drained by the hysteresis (Go: at any drain). */
    if (was && lim.fill + lim.capacity / HYSTERESIS_DIV <= lim.capacity)
        atomic_store_rel(&gc_limiter_enabled, 0);
}

static void update_locked(int64_t now) {
    int64_t last = lim.last_update;
    if (last == 0 || now <= last) {
        if (last == 0) atomic_store_relaxed(&lim.last_update, now);
        return;
    }
    int procs = gc_pacer.nprocs > 0 ? gc_pacer.nprocs : 1;
    if (procs != lim.nprocs) { /* GOMAXPROCS changed: Go's resetCapacity */
        lim.nprocs = procs;
        lim.capacity = (uint64_t)procs * CAPACITY_PER_PROC;
        if (lim.fill > lim.capacity) lim.fill = lim.capacity;
    }
    atomic_store_relaxed(&lim.last_update, now);
    int64_t t[4];
    for (int k = 0; k < 4; k++) t[k] = atomic_xchg(&lim.pool[k], 0);
    for (int k = 0; k < 4; k++)
        lim.total[k] += (uint64_t)t[k] * (k == GC_LIM_PAUSE ? (uint64_t)procs : 1);
    int64_t window = (now - last) * procs;
    int64_t gc = t[GC_LIM_ASSIST] + t[GC_LIM_WORKER] + t[GC_LIM_PAUSE] * procs;
    int64_t total = window - t[GC_LIM_IDLE];
    if (total < 0) total = 0;
    int64_t mutator = total > gc ? total - gc : 0;
    bool was = atomic_load_relaxed(&gc_limiter_enabled);
    accumulate(mutator, gc);
    bool on = atomic_load_relaxed(&gc_limiter_enabled);
    if (was) lim.engaged_ns += (uint64_t)(now - last);
    atomic_store_relaxed(&mem_limit_assist_off, on ? 1 : 0);
    if (on) {
        atomic_store_relaxed(&lim.traced, 1);
        if (!lim.engaged_since) lim.engaged_since = now;
        if (!lim.fired && now - lim.engaged_since >= SUSTAINED_NS) {
            lim.fired = true;
            lock(&callback_lock);
            void (*fn)(void *) = callback_fn;
            void *arg = callback_arg;
            unlock(&callback_lock);
            if (fn) gc_queue_call(fn, arg);
        }
    } else if (lim.fill <= lim.capacity / 2) {
        lim.engaged_since = 0; /* the episode is over */
        lim.fired = false;
    }
}

void gc_limiter_poll(int64_t now) {
    if (now - atomic_load_relaxed(&lim.last_update) < UPDATE_PERIOD_NS) return;
    uint32_t z = 0;
    if (!atomic_cas(&lim.lock, &z, 1)) return; /* someone else updates: our time waits */
    update_locked(now);
    atomic_store_rel(&lim.lock, 0);
}

bool gc_limiter_trace(void) {
    return atomic_xchg(&lim.traced, 0) != 0 || gc_limiter_on();
}

void gc_limiter_memstats(gort_memstats *ms) {
    ms->memory_limit = atomic_load_relaxed(&mem_limit);
    struct mem_limit_view v;
    mem_limit_read(&v);
    ms->memory_limit_counted = v.counted;
    /* Up to the last update plus what waits for the next (racy sums of
     * counters that only grow: good enough for statistics). */
    ms->gc_assist_ns = lim.total[GC_LIM_ASSIST] + (uint64_t)lim.pool[GC_LIM_ASSIST];
    ms->gc_worker_ns = lim.total[GC_LIM_WORKER] + (uint64_t)lim.pool[GC_LIM_WORKER];
    ms->gc_idle_ns = lim.total[GC_LIM_IDLE] + (uint64_t)lim.pool[GC_LIM_IDLE];
    int procs = gc_pacer.nprocs > 0 ? gc_pacer.nprocs : 1;
    ms->gc_pause_cpu_ns =
        lim.total[GC_LIM_PAUSE] + (uint64_t)lim.pool[GC_LIM_PAUSE] * (uint64_t)procs;
    ms->limiter_engaged_ns = lim.engaged_ns;
    ms->limiter_overflow_ns = lim.overflow;
    ms->limiter_enabled = gc_limiter_on();
    ms->limiter_last_enabled = lim.last_enabled;
}

GORT_API void gort_set_memory_limit_callback(void (*fn)(void *arg), void *arg) {
    gc_init();
    if (fn) gc_finalizer_runner_start(); /* from the program's thread */
    lock(&callback_lock);
    callback_fn = fn;
    callback_arg = fn ? arg : NULL;
    unlock(&callback_lock);
}

/* fork (mgc.c's handlers): 0 prepare, 1 parent, 2 child. Taken before the
 * finalizer queue's lock (an update queues the callback under ours). */
void gc_limiter_fork(int which) {
    if (which == 0) {
        uint32_t z;
        while (z = 0, !atomic_cas(&lim.lock, &z, 1)) cpu_relax();
        lock(&callback_lock);
    } else if (which == 1) {
        unlock(&callback_lock);
        atomic_store_rel(&lim.lock, 0);
    } else {
        callback_lock = (lock_t)LOCK_INIT;
        atomic_store_rel(&lim.lock, 0);
    }
}
