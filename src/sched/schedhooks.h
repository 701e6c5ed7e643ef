/* The scheduler's profiling and tracing hooks (src/prof installs them):
 * the execution trace's events, the block profile's timings and the
 * scheduling-latency histogram (runtime/metrics' /sched/latencies).
 *
 * The scheduler calls sched_hook_* at its transitions (create, start,
 * park, ready, yield, preempt, exit, syscall, P acquire/release), each
 * behind one relaxed load of sched_hooks_on: a program that does not link
 * the profiler pays that load and a branch. What the hooks measure:
 * - TRACE: every event, recorded inline into the tracer's per-thread
 *   buffers (sched_trace below), the tracer called only for a new buffer
 *   or a clock read (sched_hooks.trace);
 * - BLOCK: the time from a park to the ready that ends it, for parks on
 *   channels, select, sync and I/O (Go's blockevent), reported on the
 *   blocked goroutine's own stack once it runs again (sched_hooks.block);
 * - LATENCY: for one in 8 readies and creations of each goroutine, the time
 *   from runnable to running (Go's tracking of every 8th transition),
 *   reported to sched_hooks.latency.
 * Hooks run where the transition happens: on g0, on a goroutine's stack
 * inside the switch (after_switch), in a signal-free context; they must not
 * block, park or allocate from the GC heap. */
#ifndef GORT_SCHED_SCHEDHOOKS_H
#define GORT_SCHED_SCHEDHOOKS_H

#include "base/atomic.h"
#include "sched/runtime2.h"

#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define sched_hook_create  gort__sched_hook_create
#define sched_hook_park    gort__sched_hook_park
#define sched_hook_ready   gort__sched_hook_ready
#define sched_hook_start   gort__sched_hook_start
#define sched_hook_unpark  gort__sched_hook_unpark
#define sched_hooks        gort__sched_hooks
#define sched_hooks_on     gort__sched_hooks_on
#define sched_block_reason gort__sched_block_reason
#define sched_trace_clock  gort__sched_trace_clock
#define tls_trace_buf      gort__tls_trace_buf
#define tls_trace_seen     gort__tls_trace_seen

enum {
    SCHED_HOOK_TRACE = 1,
    SCHED_HOOK_BLOCK = 2,
    SCHED_HOOK_LATENCY = 4,
};

/* ---- the execution trace's recording (prof/trace.c owns the buffers) ----
 *
 * An event is one 64-bit word in the calling thread's buffer: the
 * goroutine (32 bits), its kind, a small argument and the P; then the TSC
 * if the kind has TK_CLOCK, then two words if it has TK_EXT. The recording
 * is inline at each transition: one load of sched_trace_clock compared with
 * the value the thread saw at its latest clocked event, a bound check, two
 * stores. The
 * clock is read (sched_hooks.trace, out of line) only when that value
 * changed: the tracer's helper ticks it every millisecond, so that an
 * event without a time happened less than a tick after the thread's
 * previous clocked one (prof/trace.c says how the times are assigned). A
 * new session changes its high half, which sends every thread to the slow
 * path for a fresh buffer. */
enum trace_kind {
    TK_GO_CREATE = 1, /* +ext: fn, creator goid */
    TK_GO_DESC,       /* +ext: fn (a goroutine alive at trace start) */
    TK_GO_START,
    TK_GO_STOP, /* the thread's goroutine stops (small: TRACE_STOP_* or the wait
                 * reason of a block), the event's goroutine (if any) starts */
    TK_GO_UNBLOCK,
    TK_GO_SYSCALL,
    TK_GO_SYSEXIT,
    TK_PROC_START,
    TK_PROC_STOP,
    TK_STW_START, /* +ext: reason string */
    TK_STW_DONE,
    TK_GC_START, /* +ext: cycle */
    TK_GC_DONE,  /* +ext: cycle */
    TK_ASSIST_START,
    TK_ASSIST_DONE,
    TK_SWEEP_START,
    TK_SWEEP_DONE,   /* +ext: pages */
    TK_COUNTERS,     /* +ext: heap_live, goroutines */
    TK_CLOCK = 0x40, /* flag: the TSC follows */
    TK_EXT = 0x80,   /* flag: two words follow (after the TSC) */
};

enum {
    TRACE_STOP_YIELD = 0xfd,
    TRACE_STOP_PREEMPT = 0xfe,
    TRACE_STOP_END = 0xff,
};

#define TRACE_BUF_WORDS 8192 /* 64 KiB buffers */
#define TRACE_BUF_TAIL  4    /* events in a buffer's last words read the clock: its last one does */

typedef struct trace_buf {
    struct trace_buf *next;     /* on the tracer's full list or free list */
    uint32_t gen;               /* the session it belongs to */
    uint32_t n;                 /* words written (release store) */
    struct trace_thread *owner; /* the thread that fills it (prof/trace.c) */
    uint64_t w[TRACE_BUF_WORDS];
} trace_buf;

extern uint64_t sched_trace_clock; /* the session << 32 | the helper's tick */
extern __thread trace_buf *tls_trace_buf __attribute__((tls_model("initial-exec")));
/* sched_trace_clock at the thread's latest clocked event in tls_trace_buf
 * (0: none; the next event takes the slow path) */
extern __thread uint64_t tls_trace_seen __attribute__((tls_model("initial-exec")));

static inline uint64_t trace_word(uint32_t kind, int64_t goid, uint32_t small, int p) {
    return (uint64_t)(uint32_t)goid | (uint64_t)(kind & 0xff) << 32 |
           (uint64_t)(small & 0xff) << 40 | (uint64_t)(uint16_t)p << 48;
}

typedef struct sched_hook_table {
    /* the tracer's slow path: records word w (and, for TK_EXT, a and b)
     * with the clock read, taking a new buffer if needed */
    void (*trace)(uint64_t w, uint64_t a, uint64_t b);
    void (*block)(g *gp, int reason, int64_t ns);
    void (*latency)(int64_t ns);
} sched_hook_table;

extern uint32_t sched_hooks_on; /* SCHED_HOOK_* bits */
extern sched_hook_table sched_hooks;

static inline void trace_slow(uint64_t w, uint64_t a, uint64_t b) {
    void (*f)(uint64_t, uint64_t, uint64_t) = atomic_load_relaxed(&sched_hooks.trace);
    if (f) f(w, a, b);
}

/* Records an event, reading the clock only if a tick passed since the
 * thread's latest clocked event. The caller checked SCHED_HOOK_TRACE. */
static inline void sched_trace(uint32_t kind, int64_t goid, uint32_t small, int p) {
    uint64_t w = trace_word(kind, goid, small, p);
    if (__builtin_expect(atomic_load_relaxed(&sched_trace_clock) == tls_trace_seen, 1)) {
        trace_buf *b = tls_trace_buf; /* set whenever tls_trace_seen is */
        uint32_t n = b->n;
        if (__builtin_expect(n < TRACE_BUF_WORDS - TRACE_BUF_TAIL, 1)) {
            b->w[n] = w;
            atomic_store_rel(&b->n, n + 1);
            return;
        }
    }
    trace_slow(w, 0, 0);
}

/* The same with two more words (kind without TK_EXT). */
static inline void sched_trace_ext(uint32_t kind, int64_t goid, uint32_t small, int p, uint64_t a,
                                   uint64_t x) {
    uint64_t w = trace_word(kind | TK_EXT, goid, small, p);
    if (__builtin_expect(atomic_load_relaxed(&sched_trace_clock) == tls_trace_seen, 1)) {
        trace_buf *b = tls_trace_buf;
        uint32_t n = b->n;
        if (__builtin_expect(n + 2 < TRACE_BUF_WORDS - TRACE_BUF_TAIL, 1)) {
            b->w[n] = w;
            b->w[n + 1] = a;
            b->w[n + 2] = x;
            atomic_store_rel(&b->n, n + 3);
            return;
        }
    }
    trace_slow(w, a, x);
}

/* An event that always reads the clock (P start and stop, syscalls,
 * stop-the-world: rare, and after them a long gap may have passed). */
static inline void sched_trace_clocked(uint32_t kind, int64_t goid, uint32_t small, int p,
                                       uint64_t a) {
    trace_slow(trace_word(kind, goid, small, p), a, 0);
}

static inline bool sched_tracing(void) {
    return __builtin_expect(atomic_load_relaxed(&sched_hooks_on) & SCHED_HOOK_TRACE, 0);
}

/* Whether a park for this reason counts as blocking (Go's block profile:
 * channels, select, sync, and here I/O too; not sleep or the runtime's own). */
bool sched_block_reason(int reason);

void sched_hook_create(g *gp, m *mp);
void sched_hook_start(m *mp, g *gp);
void sched_hook_park(g *gp, m *mp, int reason);
void sched_hook_unpark(g *gp);
void sched_hook_ready(g *gp, uint32_t on, bool track);

static inline uint32_t sched_hooks_active(void) {
    return atomic_load_relaxed(&sched_hooks_on);
}

static inline int trace_pid(m *mp) {
    return mp && mp->p ? mp->p->id : -1;
}

/* At every ready (ready_status): the latency bit alone costs a counter. */
static inline void sched_hook_on_ready(g *gp) {
    uint32_t on = atomic_load_relaxed(&sched_hooks_on);
    if (__builtin_expect(on == 0, 1)) return;
    if (on & SCHED_HOOK_TRACE) sched_trace(TK_GO_UNBLOCK, gp->goid, 0, trace_pid(tls_m));
    bool track = (on & SCHED_HOOK_LATENCY) && (++gp->trackseq & 7) == 0;
    if (track || (on & SCHED_HOOK_BLOCK)) sched_hook_ready(gp, on, track);
}

/* switch_out: the running gp leaves the CPU (mp->pend says why) and next,
 * or g0 (NULL), takes its place: one event. */
static inline void sched_trace_stop(m *mp, g *gp, g *next) {
    uint32_t why = mp->pend == PEND_PARK      ? gp->waitreason
                   : mp->pend == PEND_YIELD   ? TRACE_STOP_YIELD
                   : mp->pend == PEND_PREEMPT ? TRACE_STOP_PREEMPT
                                              : TRACE_STOP_END;
    sched_trace(TK_GO_STOP, next ? next->goid : 0, why, mp->p->id);
}

/* switch_out switches from gp to next directly: the trace's stop and start,
 * a tracked latency. */
static inline void sched_hook_on_switch(m *mp, g *gp, g *next) {
    uint32_t on = atomic_load_relaxed(&sched_hooks_on);
    if (__builtin_expect((next->runnable_since | (on & SCHED_HOOK_TRACE)) != 0, 0)) {
        if (on & SCHED_HOOK_TRACE) sched_trace_stop(mp, gp, next);
        if (next->runnable_since) sched_hook_start(mp, next);
    }
}

/* When gp starts running on mp's P from g0 (execute): a tracked latency,
 * or the tracer. */
static inline void sched_hook_on_start(m *mp, g *gp) {
    uint32_t on = atomic_load_relaxed(&sched_hooks_on);
    if (__builtin_expect((gp->runnable_since | (on & SCHED_HOOK_TRACE)) != 0, 0)) {
        if (on & SCHED_HOOK_TRACE) sched_trace(TK_GO_START, gp->goid, 0, mp->p->id);
        if (gp->runnable_since) sched_hook_start(mp, gp);
    }
}

#endif
