/* The scavenger. See scavenge.h. */
#include "mem/scavenge.h"
#include "base/atomic.h"
#include "base/env.h"
#include "base/lock.h"
#include "base/nanotime.h"
#include "base/print.h"
#include "base/thread.h"
#include "gort/malloc.h"
#include "mem/arena.h"
#include "mem/fixalloc.h"
#include "mem/mcache.h"
#include "mem/mcentral.h"
#include "mem/mpagealloc.h"

#include <string.h>

#define SCAV_PERIOD_NS (100 * 1000 * 1000)
#define SCAV_MAX_STEP  ((uint64_t)64 << 20)
#define SCAV_MIN_SLACK ((uint64_t)4 << 20)
#define SCAV_PRESSURE  ((uint64_t)16 << 20)
#define SCAV_WINDOW    10 /* periods the goal looks back over (1 s) */

/* heap_inuse peaks (bytes) of the SCAV_WINDOW - 1 periods before this one,
 * a ring (step_lock), and their maximum (atomic, for scavenge_goal). */
static uint64_t peak_ring[SCAV_WINDOW - 1];
static unsigned peak_next;
static uint64_t peak_prev;
static uint64_t freed_since; /* bytes of pages freed since the last period (memory limit) */
__attribute__((unused)) static int64_t next_period; /* LD_PRELOAD: when the next period is due */
static lock_t step_lock = LOCK_INIT;
int scavenger_started;
int64_t mem_limit = INT64_MAX;
uint64_t mem_limit_extra;
uint32_t mem_limit_assist_off;
void (*free_os_memory_gc_hook)(void);

static uint64_t heap_inuse_now(struct pagealloc_stats *st) {
    return (st->mapped_pages - st->free_pages) * PAGE_SIZE;
}

void scavenge_note_free(size_t npages) {
#ifdef GORT_PRELOAD
    /* Pressure: under a memory limit, 16 MiB freed make the next tick run
     * the period at once, whatever the clock says. */
    if (atomic_load_relaxed(&mem_limit) != INT64_MAX &&
        atomic_xadd_relaxed(&freed_since, npages * PAGE_SIZE) + npages * PAGE_SIZE >= SCAV_PRESSURE)
        atomic_store_relaxed(&next_period, 0);
#else
    (void)npages;
    (void)freed_since;
#endif
}

static void view_of(const struct pagealloc_stats *st, struct mem_limit_view *v) {
    v->heap_retained = (st->mapped_pages - st->released_pages) * PAGE_SIZE;
    v->heap_free = (st->free_pages - st->released_pages) * PAGE_SIZE;
    v->heap_inuse = heap_inuse_now((struct pagealloc_stats *)st);
    v->counted = v->heap_retained + atomic_load_relaxed(&persistent_bytes) +
                 atomic_load_relaxed(&mem_limit_extra);
}

void mem_limit_read(struct mem_limit_view *v) {
    struct pagealloc_stats st;
    pagealloc_read_stats(&st);
    view_of(&st, v);
}

/* The goal for the heap st describes, whose in-use peak over the window is
 * peak. */
static uint64_t goal_of(const struct pagealloc_stats *st, uint64_t peak) {
    uint64_t inuse = heap_inuse_now((struct pagealloc_stats *)st);
    if (inuse > peak) peak = inuse;
    uint64_t goal = peak + peak / 10;
    if (goal < peak + SCAV_MIN_SLACK) goal = peak + SCAV_MIN_SLACK;
    int64_t limit = atomic_load_relaxed(&mem_limit);
    if (limit != INT64_MAX) {
        /* The limit for everything counted, so the heap's share is the
         * limit less the rest. Not Go's 95% (memoryLimitGoal): the pacer
         * lets the heap grow to the limit less the non-heap memory less
         * 1 MiB (src/gc/mgcpacer.c), so free pages below the limit are
         * pages the heap fills again before its next cycle; a goal of 95%
         * gave back 5% of the limit after every cycle to fault it in
         * again (memlimit, 400 MiB limit: 729 MiB of madvise and 4.2
         * times Go's page faults in 42 cycles). Go's scavenger does the
         * same but at 1% of a CPU, which bounds the waste; here the
         * window above bounds what is kept instead: an idle program's
         * pages still go after a second. */
        struct mem_limit_view v;
        view_of(st, &v);
        uint64_t other = v.counted - v.heap_retained;
        uint64_t lim = (uint64_t)limit > other ? (uint64_t)limit - other : 0;
        if (goal > lim) goal = lim > inuse ? lim : inuse;
    }
    return goal;
}

/* Bytes by which what the limit counts exceeds it (0: under, or no limit). */
static uint64_t over_limit(const struct pagealloc_stats *st) {
    int64_t limit = atomic_load_relaxed(&mem_limit);
    if (limit == INT64_MAX) return 0;
    struct mem_limit_view v;
    view_of(st, &v);
    return v.counted > (uint64_t)limit ? v.counted - (uint64_t)limit : 0;
}

void scavenge_alloc_assist(size_t npages) {
    (void)npages; /* already counted: the pages are in use now */
    if (atomic_load_relaxed(&mem_limit) == INT64_MAX || atomic_load_relaxed(&mem_limit_assist_off))
        return;
    struct pagealloc_stats st;
    pagealloc_read_stats(&st);
    uint64_t over = over_limit(&st);
    if (over) pagealloc_scavenge((size_t)((over + PAGE_SIZE - 1) / PAGE_SIZE));
}

uint64_t scavenge_goal(void) {
    struct pagealloc_stats st;
    pagealloc_read_stats(&st);
    uint64_t peak = st.peak_inuse_pages * PAGE_SIZE, prev = atomic_load_relaxed(&peak_prev);
    return goal_of(&st, peak > prev ? peak : prev);
}

uint64_t scavenge_step(uint64_t max_bytes) {
    lock(&step_lock);
    /* The goal keeps 10% (at least 4 MiB) over the peak of the last
     * SCAV_WINDOW periods: pages a program freed and needs again within a
     * second (a queue that fills and drains, a phase that repeats) stay; a
     * peak that has passed stops counting after a second, and its pages
     * go. (Over two periods, 200 ms, a producer/consumer program whose
     * queue drained for a while gave back and faulted in megabytes every
     * period, in 8-16 KiB pieces: 600-1,800 madvise calls in 5 s.) */
    struct pagealloc_stats st;
    pagealloc_reset_peak(&st);
    uint64_t peak = st.peak_inuse_pages * PAGE_SIZE, prev = atomic_load_relaxed(&peak_prev);
    uint64_t goal = goal_of(&st, peak > prev ? peak : prev);
    peak_ring[peak_next] = peak;
    peak_next = (peak_next + 1) % (SCAV_WINDOW - 1);
    prev = 0;
    for (int i = 0; i < SCAV_WINDOW - 1; i++)
        if (peak_ring[i] > prev) prev = peak_ring[i];
    atomic_store_relaxed(&peak_prev, prev);
    atomic_store_relaxed(&freed_since, 0);
    uint64_t retained = (st.mapped_pages - st.released_pages) * PAGE_SIZE;
    uint64_t done = 0;
    if (retained > goal) {
        uint64_t want = retained - goal;
        if (want > max_bytes) want = max_bytes;
        /* Over the memory limit: all of the overage now (eagerly). */
        uint64_t over = over_limit(&st);
        if (want < over) want = over < retained - goal ? over : retained - goal;
        done = (uint64_t)pagealloc_scavenge((size_t)(want / PAGE_SIZE)) * PAGE_SIZE;
    }
    unlock(&step_lock);
    if (done && opts.debug.scavtrace) {
        pagealloc_read_stats(&st);
        print("scav %llu KiB work, %llu KiB total, %llu%% util\n", (unsigned long long)(done >> 10),
              (unsigned long long)(st.released_pages * PAGE_SIZE >> 10),
              (unsigned long long)(st.mapped_pages
                                       ? 100 * (st.mapped_pages - st.free_pages) / st.mapped_pages
                                       : 0));
    }
    return done;
}

/* One period: empty spans unused for a whole period go to the page heap,
 * then free pages over the goal go to the OS. */
static void scavenge_period(void) {
    mcentral_trim();
    scavenge_step(SCAV_MAX_STEP);
}

void scavenge_tick(void) {
#ifdef GORT_PRELOAD
    int64_t now = nanotime(), due = atomic_load_relaxed(&next_period);
    if (now < due) return;
    /* One thread runs the period; the others go on allocating. */
    if (!atomic_cas(&next_period, &due, now + SCAV_PERIOD_NS)) return;
    scavenge_period();
#endif
}

__attribute__((unused)) static void scavenger_loop(void *arg) {
    (void)arg;
    for (;;) {
        struct timespec ts = {0, SCAV_PERIOD_NS};
        nanosleep(&ts, NULL);
        scavenge_period();
    }
}

void scavenger_start(void) {
#ifndef GORT_PRELOAD
    if (atomic_load_relaxed(&scavenger_started)) return;
    int z = 0;
    if (!atomic_cas(&scavenger_started, &z, 1)) return;
    if (os_thread_start(scavenger_loop, NULL, 64 << 10, "gort-scavenger") < 0)
        atomic_store_relaxed(&scavenger_started, 0);
#endif
}

void scavenge_atfork_prepare(void) {
    lock(&step_lock);
}

void scavenge_atfork_parent(void) {
    unlock(&step_lock);
}

void scavenge_atfork_child(void) {
    step_lock = (lock_t)LOCK_INIT;
    scavenger_started = 0;
}

GORT_API void gort_free_os_memory(void) {
    void (*gc)(void) = free_os_memory_gc_hook;
    if (gc) gc(); /* a full collection first, as Go's debug.FreeOSMemory */
    mcache *c = tls_mcache;
    if (c != &empty_mcache) mcache_flush(c);
    mcentral_reclaim();
    lock(&step_lock);
    pagealloc_scavenge(SIZE_MAX / PAGE_SIZE);
    struct pagealloc_stats st;
    pagealloc_reset_peak(&st);
    memset(peak_ring, 0, sizeof peak_ring);
    atomic_store_relaxed(&peak_prev, 0);
    unlock(&step_lock);
}
