/* The pacer (Go 1.18's gcControllerState, mgcpacer.go): when a cycle starts
 * and how much marking each byte of allocation must pay for.
 *
 * Goal: with GOGC = 100, the heap may reach twice what the last cycle
 * found live, plus GOGC% of the stacks and globals it scanned (Go 1.18's
 * heap goal counts them), and at least 4 MiB * GOGC/100 (heapMinimum).
 *
 * Trigger: the cycle must start early enough to finish by the goal with the
 * background workers at their 25% (plus 5% of assists, gcGoalUtilization
 * 30%). From the measured cons/mark ratio (bytes the program allocates per
 * byte the collector scans, at those utilizations) the runway is
 *     cons_mark * (1 - 0.3) / 0.3 * (last_heap_scan + stacks + globals),
 * where last_heap_scan is the heap scan work the last cycle did (Go 1.19's
 * lastHeapScan: the objects it found live and scanned, not those it
 * allocated black),
 * and the trigger is goal - runway, clamped to [heap_marked + 0.7 * (goal -
 * heap_marked), heap_marked + 0.95 * (goal - heap_marked)] (and goal - 4 MiB
 * for large heaps), as Go's.
 *
 * Assists: assist_work_per_byte = expected scan work left / heap left
 * before the goal, revised as marking goes (gc_pacer_revise); the work
 * expected is the same sum as the runway's. An assisting thread that finds
 * no grey object waits for the workers' credit (mgcmark.c), so the ratio
 * bounds what the program allocates during a mark: with GOGC = 100 and the
 * trigger at 70%, at most 30% of the last live heap, usually less, is
 * allocated black and counted live by the next goal.
 *
 * The memory limit (Go 1.19's memoryLimitHeapGoal): the goal is the lower
 * of GOGC's and the limit's. The limit counts everything gort maps less what
 * it released (mem/scavenge.h: the heap's retained pages, the runtime's
 * metadata, goroutine stacks); the heap goal is in heap objects, so the
 * limit's goal is
 *     limit - (counted - heap_free - heap_alloc) - max(counted - limit, 0) - 1 MiB,
 * where counted - heap_free - heap_alloc is everything counted that is not,
 * and cannot become, a heap object (metadata, stacks, explicit malloc
 * memory, fragmentation: free slots of partly used spans, span tails);
 * heap_free (free pages not released) is left out as a pool the heap reuses
 * without growing; the overage (what is counted beyond the limit) lowers
 * the goal so that a cycle comes sooner and frees room; 1 MiB is Go's
 * headroom for pacing errors. Never below the live heap: with a live heap
 * over the limit, cycles run back to back, and the GC CPU limiter
 * (mgclimit.c) keeps that from taking the program's CPU. The counted
 * figures change between cycles (stacks, fragmentation, memory released),
 * so the goal and trigger are recomputed every limit/128 bytes of
 * allocation (between 256 KiB and 4 MiB: gc_pacer_limit_poll), as Go's are
 * at every trigger check. Goroutine stacks are counted as the last cycle
 * scanned them (the used depth of each, plus a page), as their pages are
 * committed by the kernel when touched and gort cannot see which. */
#include "gc/gc.h"

#include "base/atomic.h"
#include "base/env.h"
#include "base/lock.h"
#include "base/nanotime.h"
#include "mem/scavenge.h"
#include "sched/stack.h"

#include <stdint.h>

#define HEAP_MINIMUM         ((uint64_t)4 << 20)
#define GOAL_UTILIZATION     0.30
#define BG_UTILIZATION       0.25
#define MIN_TRIGGER_FRACTION 0.70
#define MAX_TRIGGER_FRACTION 0.95
#define LIMIT_HEADROOM       ((uint64_t)1 << 20) /* Go's memoryLimitHeapGoalHeadroom */

struct gc_pacer gc_pacer = {
    .gcpercent = 100,
    .limit_check = UINT64_MAX,
    .heap_goal = HEAP_MINIMUM,
    .trigger = HEAP_MINIMUM * 7 / 8,
    .cons_mark = 1.0,
};

/* Publishes the goroutine stacks' estimate for the limit (see the header). */
static void publish_stacks(void) {
    if (!sched_started_now()) return;
    struct stack_stats st;
    stack_read_stats(&st);
    atomic_store_relaxed(&mem_limit_extra, gc_pacer.stack_scan + st.inuse_stacks * 4096);
}

/* The heap goal the memory limit allows (Go's memoryLimitHeapGoal; see the
 * header); UINT64_MAX with no limit. */
static uint64_t memory_limit_goal(void) {
    int64_t limit = atomic_load_relaxed(&mem_limit);
    if (limit == INT64_MAX) return UINT64_MAX;
    struct mem_limit_view v;
    mem_limit_read(&v);
    uint64_t lim = limit > 0 ? (uint64_t)limit : 0, counted = v.counted;
    uint64_t alloc = atomic_load_relaxed(&gc_pacer.heap_alloc);
    uint64_t nonheap = counted > v.heap_free + alloc ? counted - v.heap_free - alloc : 0;
    uint64_t overage = counted > lim ? counted - lim : 0;
    uint64_t marked = gc_pacer.heap_marked;
    if (nonheap + overage >= lim) return marked;
    uint64_t goal = lim - (nonheap + overage);
    goal = goal >= 2 * LIMIT_HEADROOM ? goal - LIMIT_HEADROOM : LIMIT_HEADROOM;
    return goal < marked ? marked : goal;
}

/* The heap goal: GOGC's (none with GOGC off) or the memory limit's, the
 * lower. */
static uint64_t heap_goal_for(uint64_t marked) {
    int pct = gc_pacer.gcpercent;
    uint64_t goal = UINT64_MAX;
    if (pct >= 0) {
        uint64_t roots = gc_pacer.stack_scan + gc_pacer.globals_scan;
        goal = marked + (marked + roots) / 100 * (uint64_t)pct;
        uint64_t min = HEAP_MINIMUM / 100 * (uint64_t)pct;
        if (goal < min) goal = min;
    }
    uint64_t lg = memory_limit_goal();
    return lg < goal ? lg : goal;
}

/* When the limit's goal is next recomputed (see the header). */
static void next_limit_check(void) {
    int64_t limit = atomic_load_relaxed(&mem_limit);
    uint64_t next = UINT64_MAX;
    if (limit != INT64_MAX) {
        uint64_t step = (uint64_t)(limit > 0 ? limit : 0) / 128;
        if (step < (256 << 10)) step = 256 << 10;
        if (step > (4 << 20)) step = 4 << 20;
        next = atomic_load_relaxed(&gc_pacer.heap_live) + step;
    }
    atomic_store_relaxed(&gc_pacer.limit_check, next);
}

void gc_pacer_end_cycle(void) {
    uint64_t marked = gc_pacer.heap_marked;
    publish_stacks();
    next_limit_check();
    uint64_t goal = heap_goal_for(marked);
    gc_pacer.heap_goal = goal;
    if (goal == UINT64_MAX) {
        atomic_store_rel(&gc_pacer.trigger, UINT64_MAX);
        return;
    }
    if (goal <= marked) goal = marked + 1;
    uint64_t lo = marked + (uint64_t)((double)(goal - marked) * MIN_TRIGGER_FRACTION);
    uint64_t hi = marked + (uint64_t)((double)(goal - marked) * MAX_TRIGGER_FRACTION);
    if (goal > HEAP_MINIMUM && goal - HEAP_MINIMUM > hi) hi = goal - HEAP_MINIMUM;
    if (hi < lo) hi = lo;
    double scan = (double)(gc_pacer.last_heap_scan + gc_pacer.stack_scan + gc_pacer.globals_scan);
    double runway = gc_pacer.cons_mark * (1 - GOAL_UTILIZATION) / GOAL_UTILIZATION * scan;
    uint64_t trigger = runway >= (double)goal ? lo : goal - (uint64_t)runway;
    if (trigger < lo) trigger = lo;
    if (trigger > hi) trigger = hi;
    atomic_store_rel(&gc_pacer.trigger, trigger);
}

void gc_pacer_start_cycle(void) {
    gc_pacer.heap_live_at_start = atomic_load_relaxed(&gc_pacer.heap_live);
    gc_pacer.mark_start_ns = nanotime();
    gc_pacer.bg_scan_credit = 0;
    int procs = gc_pacer.nprocs > 0 ? gc_pacer.nprocs : 1;
    double total = procs * BG_UTILIZATION;
    int dedicated = (int)(total + 0.5);
    double err = total > 0 ? dedicated / total - 1 : 0;
    gc_pacer.fractional_goal = 0;
    if (err < -0.3 || err > 0.3) {
        if (dedicated > total) dedicated--;
        gc_pacer.fractional_goal = (total - dedicated) / procs;
    }
    gc_pacer.dedicated_workers = dedicated;
    next_limit_check();
    gc_pacer.heap_goal = heap_goal_for(gc_pacer.heap_marked);
    if (gc_pacer.heap_goal == UINT64_MAX) /* a forced cycle with GOGC off */
        gc_pacer.heap_goal = gc_pacer.heap_live_at_start * 2 + HEAP_MINIMUM;
    gc_pacer_revise();
}

/* Go's revise: the assist ratio from the work and the heap left.
 *
 * The work expected is what the last cycle scanned. When marking has done
 * more than that, the heap grew since (the first cycle expects next to
 * nothing: no cycle measured it), so, as Go 1.19, the work left is taken
 * from the worst case instead, all of the scannable heap (heap_scan) live,
 * and the goal is pushed back in proportion, at most to (1 + GOGC/100)
 * times itself. Without this the floor of the work left made the ratio
 * next to zero in such a cycle: the program allocated past the goal as
 * fast as it could while the workers marked (a first cycle under a 256 MiB
 * memory limit took the heap from 239 to 282 MB with 0.2 ms of assists;
 * under CPU contention, when the workers got less of a core, peak RSS
 * passed the limit by up to 90%). */
void gc_pacer_revise(void) {
    uint64_t live = atomic_load_relaxed(&gc_pacer.heap_live);
    double goal = (double)gc_pacer.heap_goal;
    double roots = (double)(gc_pacer.stack_scan + gc_pacer.globals_scan);
    double expected = (double)gc_pacer.last_heap_scan + roots;
    double max_work = (double)atomic_load_relaxed(&gc_pacer.heap_scan) + roots;
    double done = (double)atomic_load_relaxed(&gc_state.scan_work);
    double start = (double)gc_pacer.heap_live_at_start;
    if (done > expected && max_work > expected) {
        int pct = gc_pacer.gcpercent;
        double hard = pct >= 0 ? goal * (1 + pct / 100.0) : goal;
        /* Nothing expected (the first cycle: no cycle measured the heap,
         * stacks or globals) extrapolates to the hard goal, as Go's
         * division does (its expectation is the globals alone). */
        double ext = goal;
        if (goal > start) ext = expected > 0 ? (goal - start) / expected * max_work + start : hard;
        goal = ext > hard ? hard : ext;
        expected = max_work;
    }
    if ((double)live > goal) {
        /* Past the goal, even the pushed-back one: aim at 110% of it (Go's
         * maxOvershoot), with the worst-case work, so that assists grow
         * steep but not infinite. */
        goal *= 1.1;
        expected = max_work > expected ? max_work : expected;
    }
    double work_left = expected - done;
    if (work_left < 1000) work_left = 1000;
    double heap_left = goal - (double)live;
    if (heap_left < 64 * 1024.0) heap_left = 64 * 1024.0;
    gc_pacer.assist_work_per_byte = work_left / heap_left;
}

/* At mark termination: the measured cons/mark ratio (Go 1.18). */
void gc_pacer_update_cons_mark(int64_t mark_ns, int64_t cpu_ns, int nprocs) {
    uint64_t live = atomic_load_relaxed(&gc_pacer.heap_live);
    double allocated =
        live > gc_pacer.heap_live_at_start ? (double)(live - gc_pacer.heap_live_at_start) : 0;
    double work = (double)atomic_load_relaxed(&gc_state.scan_work);
    if (mark_ns <= 0 || work <= 0 || nprocs <= 0) return;
    double util = (double)cpu_ns / ((double)mark_ns * nprocs);
    if (util <= 0) util = BG_UTILIZATION;
    if (util >= 1) util = 0.99;
    double cm = allocated * util / (work * (1 - util));
    /* Go 1.19 smooths with the previous cycles; a running mean of two. */
    gc_pacer.cons_mark = (gc_pacer.cons_mark + cm) / 2;
}

void gc_pacer_limit_update(void) {
    if (atomic_load_relaxed(&mem_limit) == INT64_MAX) {
        atomic_store_relaxed(&gc_pacer.limit_check, UINT64_MAX);
        return;
    }
    if (!trylock(&gc_state.lock)) return; /* a transition, or another update: next time */
    uint32_t ph = gc_phase();
    if (ph == GC_OFF) {
        gc_pacer_end_cycle();
    } else {
        next_limit_check();
        /* Marking: a lower goal makes assists steeper (gc_pacer_revise). */
        uint64_t g = memory_limit_goal();
        if (ph == GC_MARK && g < gc_pacer.heap_goal) gc_pacer.heap_goal = g;
    }
    unlock(&gc_state.lock);
}

GORT_API int64_t gort_set_memory_limit(int64_t bytes) {
    gc_init();
    lock(&gc_state.lock);
    int64_t old = atomic_load_relaxed(&mem_limit);
    bool changed = bytes >= 0 && bytes != old;
    if (changed) {
        atomic_store_relaxed(&mem_limit, bytes);
        if (gc_phase() == GC_OFF)
            gc_pacer_end_cycle();
        else
            next_limit_check();
    }
    unlock(&gc_state.lock);
    /* A lower goal may already be exceeded (Go's next allocation would see
     * it; start now, as gort_set_gc_percent does). */
    if (changed) gc_start(GC_TRIGGER_HEAP, false);
    return old;
}
