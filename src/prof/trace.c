/* The execution trace (Go's runtime/trace, shown the way Go's trace viewer
 * shows it), written as Chrome trace-event JSON, which Perfetto
 * (ui.perfetto.dev) and chrome://tracing open as it is.
 *
 * Recording. The scheduler's hooks (sched/schedhooks.h) and the collector's
 * (gc.h, through metrics.c) call in at every transition; each event is 32
 * bytes (the TSC, the goroutine, an argument, its kind and P) appended to
 * the calling thread's own buffer: no lock, no atomic read-modify-write,
 * one rdtsc. A full buffer goes to the writer's queue (under trace.lock, a
 * leaf) and the thread takes an empty one. Buffers are never unmapped, only
 * reused, and tagged with the session, so a thread that races the end of a
 * session writes into a buffer nobody reads rather than into freed memory.
 *
 * Writing. A helper thread ("gort-trace") converts the queued buffers to
 * JSON every 100 ms and writes them out, with counters of the heap and the
 * goroutines every 10 ms; at gort_trace_stop it takes every thread's
 * partial buffer too (after a grace period for writers already past their
 * check) and closes the JSON. TSC values become nanoseconds since the
 * start by a calibration against CLOCK_MONOTONIC, refreshed at each flush.
 *
 * The JSON: process "Procs" has a row per P with a slice per goroutine run
 * ("G12 worker", its end reason in args: blocked on chan receive, yield,
 * preempted, syscall, exit), instants for creation, unblocking (who woke
 * whom) and P start/stop, and a "GC" row with each cycle, its
 * stop-the-world pauses, and the heap and goroutine counters; process
 * "Threads" has a row per thread with its syscalls, and the mark assists
 * and sweeps a thread does without a P. A goroutine's slice is opened and
 * closed by events of one thread (it runs on one M at a time), so each
 * thread's events are converted in order, with the open slices kept per
 * thread. */
#define _GNU_SOURCE
#include "prof/prof.h"

#include "base/atomic.h"
#include "base/symtab.h"
#include "base/thread.h"
#include "gc/gc.h"
#include "gort/malloc.h"
#include "gort/prof.h"
#include "gort/sched.h"
#include "mem/fixalloc.h"
#include "base/print.h"
#include "sched/runtime2.h"
#include "sched/schedhooks.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <x86intrin.h>

#define TBUF_EVENTS 2048

enum tkind {
    TK_GO_CREATE = 1,
    TK_GO_START,
    TK_GO_BLOCK,
    TK_GO_UNBLOCK,
    TK_GO_YIELD,
    TK_GO_PREEMPT,
    TK_GO_END,
    TK_GO_SYSCALL,
    TK_GO_SYSEXIT,
    TK_PROC_START,
    TK_PROC_STOP,
    TK_STW_START,
    TK_STW_DONE,
    TK_GC_START,
    TK_GC_DONE,
    TK_ASSIST_START,
    TK_ASSIST_DONE,
    TK_SWEEP_START,
    TK_SWEEP_DONE,
};

typedef struct tev {
    uint64_t tsc;
    int64_t goid; /* the goroutine concerned (0: none) */
    uint64_t arg; /* kind-specific: a reason, a start pc, a goroutine, a string */
    uint8_t kind; /* enum tkind */
    uint8_t pad;
    int16_t p;     /* the P the thread held, or -1 */
    int32_t extra; /* kind-specific: the M id, the waker */
} tev;

/* Per thread: the conversion state of its stream. */
typedef struct tthread {
    struct tthread *next;
    int tid;
    bool named;
    /* the goroutine slice open on this thread */
    bool g_open;
    int64_t g_goid, g_t0;
    uint64_t g_fn;
    int g_p;
    /* syscall, assist and sweep slices */
    int64_t sys_t0, assist_t0, sweep_t0;
    int assist_p, sweep_p;
} tthread;

typedef struct tbuf {
    struct tbuf *next; /* on the queue or the free list */
    uint32_t gen;      /* the session it belongs to */
    uint32_t n;        /* events written (release store) */
    tthread *owner;
    tev ev[TBUF_EVENTS];
} tbuf;

static struct {
    lock_t lock;  /* queue, free list, threads, session state */
    uint32_t on;  /* events are recorded */
    uint32_t gen; /* the session */
    bool running; /* a session exists (start .. stop) */
    int fd;
    tbuf *queue, *queue_tail, *free, *all_bufs[4096];
    int nall;
    tthread *threads;
    uint32_t stop_seq, writer_done;
    int64_t ns0;   /* CLOCK_MONOTONIC at start */
    uint64_t tsc0; /* TSC at start */
    double ns_per_tick;
    int64_t gc_t0, stw_t0;
    const char *stw_reason;
    uint64_t gc_n;
    int rc; /* the first write error */
    bool first_event;
    uint64_t dropped;
} tr = {.lock = LOCK_INIT};

static __thread tbuf *tls_buf;
static __thread uint32_t tls_gen; /* the session tls_buf was taken in */
static __thread tthread *tls_thread;

/* ---- recording ---- */

static __attribute__((noinline)) tbuf *refill(void) {
    tbuf *old = tls_buf;
    lock(&tr.lock);
    if (!atomic_load_relaxed(&tr.on)) {
        unlock(&tr.lock);
        return NULL;
    }
    if (old && tls_gen == tr.gen && old->gen == tr.gen) { /* full: to the writer */
        old->next = NULL;
        if (tr.queue_tail)
            tr.queue_tail->next = old;
        else
            tr.queue = old;
        tr.queue_tail = old;
    }
    tthread *t = tls_thread;
    if (!t) t = persistent_alloc(sizeof *t, 8, &prof_bucket_bytes);
    tbuf *b = tr.free;
    if (b) {
        tr.free = b->next;
    } else if (tr.nall < (int)(sizeof tr.all_bufs / sizeof tr.all_bufs[0])) {
        void *m =
            mmap(NULL, sizeof(tbuf), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        b = m == MAP_FAILED ? NULL : m;
        if (b) tr.all_bufs[tr.nall++] = b;
    }
    if (t && !tls_thread) {
        memset(t, 0, sizeof *t);
        t->tid = os_gettid();
        t->next = tr.threads;
        tr.threads = t;
        tls_thread = t;
    }
    if (b) {
        b->gen = tr.gen;
        b->owner = t;
        b->next = NULL;
        atomic_store_rel(&b->n, 0);
    } else {
        tr.dropped++;
    }
    unlock(&tr.lock);
    tls_buf = b;
    tls_gen = b ? b->gen : 0;
    return b;
}

static inline void emit(uint8_t kind, int64_t goid, uint64_t arg, int p, int32_t extra) {
    tbuf *b = tls_buf;
    if (__builtin_expect(!b || tls_gen != atomic_load_relaxed(&tr.gen) || b->n == TBUF_EVENTS, 0)) {
        b = refill();
        if (!b) return;
    }
    tev *e = &b->ev[b->n];
    e->tsc = __rdtsc();
    e->goid = goid;
    e->arg = arg;
    e->kind = kind;
    e->p = (int16_t)p;
    e->extra = extra;
    atomic_store_rel(&b->n, b->n + 1);
}

static void sched_event(int ev, g *gp, m *mp, uintptr_t arg) {
    if (!atomic_load_relaxed(&tr.on)) return;
    int p = mp && mp->p ? mp->p->id : -1;
    int64_t goid = gp ? gp->goid : 0;
    switch (ev) {
    case SEV_GO_CREATE: {
        g *cur = mp ? mp->curg : NULL;
        emit(TK_GO_CREATE, goid, arg, p, cur ? (int32_t)cur->goid : 0);
        break;
    }
    case SEV_GO_START:
        emit(TK_GO_START, goid, (uintptr_t)gp->fn, p, mp ? (int32_t)mp->id : 0);
        break;
    case SEV_GO_BLOCK:
        emit(TK_GO_BLOCK, goid, arg, p, 0);
        break;
    case SEV_GO_UNBLOCK: {
        g *cur = mp ? mp->curg : NULL;
        emit(TK_GO_UNBLOCK, goid, 0, p, cur ? (int32_t)cur->goid : 0);
        break;
    }
    case SEV_GO_YIELD:
        emit(TK_GO_YIELD, goid, 0, p, 0);
        break;
    case SEV_GO_PREEMPT:
        emit(TK_GO_PREEMPT, goid, 0, p, 0);
        break;
    case SEV_GO_END:
        emit(TK_GO_END, goid, 0, p, 0);
        break;
    case SEV_GO_SYSCALL:
        emit(TK_GO_SYSCALL, goid, 0, p, 0);
        break;
    case SEV_GO_SYSEXIT:
        emit(TK_GO_SYSEXIT, goid, (uintptr_t)gp->fn, p, 0);
        break;
    case SEV_PROC_START:
        emit(TK_PROC_START, 0, arg, (int)arg, mp ? (int32_t)mp->id : 0);
        break;
    case SEV_PROC_STOP:
        emit(TK_PROC_STOP, 0, arg, (int)arg, mp ? (int32_t)mp->id : 0);
        break;
    case SEV_STW_START:
        emit(TK_STW_START, 0, arg, p, 0);
        break;
    case SEV_STW_DONE:
        emit(TK_STW_DONE, 0, 0, p, 0);
        break;
    }
}

void prof_trace_gc(int ev, uint64_t arg) {
    if (!atomic_load_relaxed(&tr.on)) return;
    m *mp = tls_m;
    int p = mp && mp->p ? mp->p->id : -1;
    g *gp = mp ? mp->curg : NULL;
    int64_t goid = gp ? gp->goid : 0;
    static const uint8_t kinds[] = {
        [GC_EV_START] = TK_GC_START,
        [GC_EV_DONE] = TK_GC_DONE,
        [GC_EV_ASSIST_START] = TK_ASSIST_START,
        [GC_EV_ASSIST_DONE] = TK_ASSIST_DONE,
        [GC_EV_SWEEP_START] = TK_SWEEP_START,
        [GC_EV_SWEEP_DONE] = TK_SWEEP_DONE,
    };
    if (ev < 0 || ev >= (int)(sizeof kinds / sizeof kinds[0]) || !kinds[ev]) return;
    emit(kinds[ev], goid, arg, p, 0);
}

/* ---- JSON ---- */

#define ROW_GC 100000 /* the GC row's tid in process 1 */

static int64_t ts_of(uint64_t tsc) {
    return (int64_t)((double)(int64_t)(tsc - tr.tsc0) * tr.ns_per_tick);
}

static void json_ts(pbuf *b, const char *key, int64_t ns) {
    if (ns < 0) ns = 0;
    pbuf_printf(b, ",\"%s\":%lld.%03lld", key, (long long)(ns / 1000), (long long)(ns % 1000));
}

static void json_begin(pbuf *b) {
    pbuf_printf(b, tr.first_event ? "\n" : ",\n");
    tr.first_event = false;
}

/* A JSON string of s (escaped) as key's value. */
static void json_str(pbuf *b, const char *key, const char *s) {
    pbuf_printf(b, ",\"%s\":\"", key);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            pbuf_printf(b, "\\%c", c);
        else if (c < 0x20)
            pbuf_printf(b, "\\u%04x", c);
        else
            pbuf_bytes(b, s, 1);
    }
    pbuf_printf(b, "\"");
}

static const char *fn_name(uint64_t pc) {
    symtab_sym s;
    if (pc && symtab_lookup((uintptr_t)pc, &s) && s.func) return s.func;
    return "?";
}

static void slice(pbuf *b, int pid, int64_t tid, const char *name, const char *cat, int64_t t0,
                  int64_t t1, const char *args) {
    json_begin(b);
    pbuf_printf(b, "{\"ph\":\"X\",\"pid\":%d,\"tid\":%lld", pid, (long long)tid);
    json_str(b, "name", name);
    json_str(b, "cat", cat);
    json_ts(b, "ts", t0);
    json_ts(b, "dur", t1 > t0 ? t1 - t0 : 0);
    pbuf_printf(b, ",\"args\":{%s}}", args ? args : "");
}

static void instant(pbuf *b, int pid, int64_t tid, const char *name, int64_t t, const char *args) {
    json_begin(b);
    pbuf_printf(b, "{\"ph\":\"i\",\"s\":\"t\",\"pid\":%d,\"tid\":%lld", pid, (long long)tid);
    json_str(b, "name", name);
    json_ts(b, "ts", t);
    pbuf_printf(b, ",\"args\":{%s}}", args ? args : "");
}

static void meta(pbuf *b, int pid, int64_t tid, const char *what, const char *name, int sort) {
    json_begin(b);
    pbuf_printf(b, "{\"ph\":\"M\",\"pid\":%d,\"tid\":%lld,\"name\":\"%s\",\"args\":{", pid,
                (long long)tid, what);
    json_str(b, "name", name);
    pbuf_printf(b, "}}");
    json_begin(b);
    pbuf_printf(b,
                "{\"ph\":\"M\",\"pid\":%d,\"tid\":%lld,\"name\":\"thread_sort_index\","
                "\"args\":{\"sort_index\":%d}}",
                pid, (long long)tid, sort);
}

static uint64_t procs_named[MAX_GOMAXPROCS / 64];

static void name_proc(pbuf *b, int p) {
    if (p < 0 || p >= MAX_GOMAXPROCS || (procs_named[p / 64] >> (p % 64)) & 1) return;
    procs_named[p / 64] |= (uint64_t)1 << (p % 64);
    char n[32];
    snprint(n, sizeof n, "Proc %d", p);
    meta(b, 1, p, "thread_name", n, p);
}

static void close_g(pbuf *b, tthread *t, int64_t now, const char *why) {
    if (!t->g_open) return;
    t->g_open = false;
    char name[160], args[256];
    snprint(name, sizeof name, "G%lld %s", (long long)t->g_goid, fn_name(t->g_fn));
    snprint(args, sizeof args, "\"goroutine\":%lld,\"end\":\"%s\"", (long long)t->g_goid, why);
    slice(b, 1, t->g_p, name, "goroutine", t->g_t0, now, args);
}

static void open_g(pbuf *b, tthread *t, int64_t now, int64_t goid, uint64_t fn, int p) {
    close_g(b, t, now, "switch");
    name_proc(b, p < 0 ? 0 : p);
    t->g_open = true;
    t->g_goid = goid;
    t->g_fn = fn;
    t->g_p = p < 0 ? 0 : p;
    t->g_t0 = now;
}

static void convert(pbuf *b, tbuf *buf, uint32_t n) {
    tthread *t = buf->owner;
    if (!t) return;
    if (!t->named) {
        t->named = true;
        char nm[48];
        snprint(nm, sizeof nm, "thread %d", t->tid);
        meta(b, 2, t->tid, "thread_name", nm, t->tid);
    }
    char args[256];
    for (uint32_t i = 0; i < n; i++) {
        const tev *e = &buf->ev[i];
        int64_t now = ts_of(e->tsc);
        int prow = e->p >= 0 ? e->p : -1;
        switch (e->kind) {
        case TK_GO_CREATE:
            snprint(args, sizeof args, "\"goroutine\":%lld,\"creator\":%d,\"fn\":\"%s\"",
                    (long long)e->goid, e->extra, fn_name(e->arg));
            if (prow >= 0) name_proc(b, prow);
            instant(b, prow >= 0 ? 1 : 2, prow >= 0 ? prow : t->tid, "GoCreate", now, args);
            break;
        case TK_GO_START:
            open_g(b, t, now, e->goid, e->arg, prow);
            break;
        case TK_GO_BLOCK: {
            int r = (int)e->arg;
            char why[64];
            snprint(why, sizeof why, "blocked: %s",
                    r > 0 && r < WAIT_REASON_COUNT ? wait_reason_strings[r] : "waiting");
            close_g(b, t, now, why);
            break;
        }
        case TK_GO_UNBLOCK:
            snprint(args, sizeof args, "\"goroutine\":%lld,\"by\":%d", (long long)e->goid,
                    e->extra);
            if (prow >= 0) name_proc(b, prow);
            instant(b, prow >= 0 ? 1 : 2, prow >= 0 ? prow : t->tid, "GoUnblock", now, args);
            break;
        case TK_GO_YIELD:
            close_g(b, t, now, "yield");
            break;
        case TK_GO_PREEMPT:
            close_g(b, t, now, "preempted");
            break;
        case TK_GO_END:
            close_g(b, t, now, "exit");
            break;
        case TK_GO_SYSCALL:
            close_g(b, t, now, "syscall");
            t->sys_t0 = now;
            break;
        case TK_GO_SYSEXIT:
            if (t->sys_t0) {
                snprint(args, sizeof args, "\"goroutine\":%lld", (long long)e->goid);
                slice(b, 2, t->tid, "syscall", "syscall", t->sys_t0, now, args);
                t->sys_t0 = 0;
            }
            if (prow >= 0) open_g(b, t, now, e->goid, e->arg, prow); /* it kept its P */
            break;
        case TK_PROC_START:
        case TK_PROC_STOP:
            name_proc(b, (int)e->arg);
            snprint(args, sizeof args, "\"m\":%d", e->extra);
            instant(b, 1, (int64_t)e->arg, e->kind == TK_PROC_START ? "ProcStart" : "ProcStop", now,
                    args);
            if (e->kind == TK_PROC_STOP) close_g(b, t, now, "proc stop");
            break;
        case TK_STW_START:
            tr.stw_t0 = now;
            tr.stw_reason = (const char *)e->arg;
            break;
        case TK_STW_DONE:
            if (tr.stw_t0) {
                char nm[96];
                snprint(nm, sizeof nm, "STW: %s", tr.stw_reason ? tr.stw_reason : "?");
                slice(b, 1, ROW_GC, nm, "gc", tr.stw_t0, now, NULL);
                tr.stw_t0 = 0;
            }
            break;
        case TK_GC_START:
            tr.gc_t0 = now;
            tr.gc_n = e->arg;
            break;
        case TK_GC_DONE:
            if (tr.gc_t0) {
                char nm[48];
                snprint(nm, sizeof nm, "GC %llu", (unsigned long long)tr.gc_n);
                slice(b, 1, ROW_GC, nm, "gc", tr.gc_t0, now, NULL);
                tr.gc_t0 = 0;
            }
            break;
        case TK_ASSIST_START:
            t->assist_t0 = now;
            t->assist_p = prow;
            break;
        case TK_ASSIST_DONE:
            if (t->assist_t0) {
                snprint(args, sizeof args, "\"goroutine\":%lld", (long long)e->goid);
                slice(b, t->assist_p >= 0 ? 1 : 2, t->assist_p >= 0 ? t->assist_p : t->tid,
                      "GC mark assist", "gc", t->assist_t0, now, args);
                t->assist_t0 = 0;
            }
            break;
        case TK_SWEEP_START:
            t->sweep_t0 = now;
            t->sweep_p = prow;
            break;
        case TK_SWEEP_DONE:
            if (t->sweep_t0) {
                snprint(args, sizeof args, "\"pages\":%llu", (unsigned long long)e->arg);
                slice(b, t->sweep_p >= 0 ? 1 : 2, t->sweep_p >= 0 ? t->sweep_p : t->tid, "GC sweep",
                      "gc", t->sweep_t0, now, args);
                t->sweep_t0 = 0;
            }
            break;
        }
    }
}

static void counters(pbuf *b) {
    int64_t now = prof_nanotime() - tr.ns0;
    json_begin(b);
    pbuf_printf(b, "{\"ph\":\"C\",\"pid\":1,\"tid\":%d,\"name\":\"Heap\"", ROW_GC);
    json_ts(b, "ts", now);
    uint64_t goal = gc_pacer.heap_goal == UINT64_MAX ? 0 : gc_pacer.heap_goal;
    pbuf_printf(b, ",\"args\":{\"heap_live\":%llu,\"heap_goal\":%llu}}",
                (unsigned long long)atomic_load_relaxed(&gc_pacer.heap_live),
                (unsigned long long)goal);
    json_begin(b);
    pbuf_printf(b, "{\"ph\":\"C\",\"pid\":1,\"tid\":%d,\"name\":\"Goroutines\"", ROW_GC);
    json_ts(b, "ts", now);
    pbuf_printf(b, ",\"args\":{\"goroutines\":%d}}", gort_num_goroutine());
}

static void calibrate(void) {
    int64_t ns = prof_nanotime();
    uint64_t tsc = __rdtsc();
    if (ns - tr.ns0 > 1000000 && tsc > tr.tsc0)
        tr.ns_per_tick = (double)(ns - tr.ns0) / (double)(tsc - tr.tsc0);
}

static void out(pbuf *b) {
    if (b->n && tr.rc == 0) tr.rc = pbuf_write_fd(b, tr.fd, false);
    b->n = 0;
}

/* The writer: the queued buffers, in order, then back to the free list. */
static void drain_queue(pbuf *b) {
    for (;;) {
        lock(&tr.lock);
        tbuf *q = tr.queue;
        if (q) {
            tr.queue = q->next;
            if (!tr.queue) tr.queue_tail = NULL;
        }
        unlock(&tr.lock);
        if (!q) return;
        convert(b, q, atomic_load_acq(&q->n));
        lock(&tr.lock);
        q->gen = 0;
        q->next = tr.free;
        tr.free = q;
        unlock(&tr.lock);
        if (b->n > (1 << 20)) out(b);
    }
}

static void writer(void *arg) {
    (void)arg;
    pbuf b = {0};
    uint32_t seq = atomic_load_acq(&tr.stop_seq);
    int ticks = 0;
    while (atomic_load_acq(&tr.stop_seq) == seq) {
        futex_sleep(&tr.stop_seq, seq, 10 * 1000 * 1000);
        counters(&b);
        if (++ticks % 10 == 0) {
            calibrate();
            drain_queue(&b);
            out(&b);
        }
    }
    /* Stopped: no new events. Give late writers a moment, then take
     * every thread's partial buffer. */
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    calibrate();
    drain_queue(&b);
    for (int i = 0; i < tr.nall; i++) {
        tbuf *x = tr.all_bufs[i];
        if (x->gen != tr.gen) continue;
        convert(&b, x, atomic_load_acq(&x->n));
        x->gen = 0;
        atomic_store_rel(&x->n, 0);
    }
    int64_t end = ts_of(__rdtsc());
    for (tthread *t = tr.threads; t; t = t->next) close_g(&b, t, end, "trace end");
    counters(&b);
    pbuf_printf(&b,
                "\n],\n\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"gort\","
                "\"version\":\"%d.%d.%d\",\"dropped_buffers\":%llu}}\n",
                GORT_VERSION_MAJOR, GORT_VERSION_MINOR, GORT_VERSION_PATCH,
                (unsigned long long)tr.dropped);
    out(&b);
    pbuf_free(&b);
    atomic_store_rel(&tr.writer_done, 1);
    futex_wake(&tr.writer_done, 1);
}

/* ---- start, stop ---- */

bool prof_trace_running(void) {
    lock(&tr.lock);
    bool r = tr.running;
    unlock(&tr.lock);
    return r;
}

GORT_API int gort_trace_start(int fd) {
    prof_init();
    if (fd < 0) return -EBADF;
    lock(&tr.lock);
    if (tr.running) {
        unlock(&tr.lock);
        return -EBUSY;
    }
    tr.running = true;
    tr.gen++;
    if (tr.gen == 0) tr.gen = 1;
    tr.fd = fd;
    tr.rc = 0;
    tr.queue = tr.queue_tail = NULL;
    tr.writer_done = 0;
    tr.first_event = true;
    tr.gc_t0 = tr.stw_t0 = 0;
    tr.dropped = 0;
    memset(procs_named, 0, sizeof procs_named);
    for (tthread *t = tr.threads; t; t = t->next) {
        int tid = t->tid;
        tthread *next = t->next;
        memset(t, 0, sizeof *t);
        t->tid = tid;
        t->next = next;
    }
    /* Every buffer is free again. */
    tr.free = NULL;
    for (int i = 0; i < tr.nall; i++) {
        tr.all_bufs[i]->gen = 0;
        tr.all_bufs[i]->next = tr.free;
        tr.free = tr.all_bufs[i];
    }
    tr.ns0 = prof_nanotime();
    tr.tsc0 = __rdtsc();
    tr.ns_per_tick = 1.0 / 3.0; /* until the first calibration */
    /* A first estimate of the TSC rate over 2 ms. */
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
    calibrate();
    unlock(&tr.lock);

    pbuf b = {0};
    pbuf_printf(&b, "{\"traceEvents\":[");
    json_begin(&b);
    pbuf_printf(&b,
                "{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\",\"args\":{\"name\":\"Procs\"}}");
    json_begin(&b);
    pbuf_printf(
        &b, "{\"ph\":\"M\",\"pid\":2,\"name\":\"process_name\",\"args\":{\"name\":\"Threads\"}}");
    meta(&b, 1, ROW_GC, "thread_name", "GC", -1);
    int rc = pbuf_write_fd(&b, fd, false);
    pbuf_free(&b);
    if (rc == 0) rc = os_thread_start(writer, NULL, 0, "gort-trace");
    if (rc < 0) {
        lock(&tr.lock);
        tr.running = false;
        unlock(&tr.lock);
        return rc;
    }
    atomic_store_rel(&sched_hooks.event, sched_event);
    atomic_store_rel(&tr.on, 1);
    __atomic_fetch_or(&sched_hooks_on, SCHED_HOOK_TRACE, __ATOMIC_ACQ_REL);
    return 0;
}

GORT_API int gort_trace_stop(void) {
    prof_init();
    lock(&tr.lock);
    if (!tr.running) {
        unlock(&tr.lock);
        return -EINVAL;
    }
    unlock(&tr.lock);
    __atomic_fetch_and(&sched_hooks_on, ~(uint32_t)SCHED_HOOK_TRACE, __ATOMIC_ACQ_REL);
    atomic_store_rel(&tr.on, 0);
    atomic_xadd(&tr.stop_seq, 1);
    futex_wake(&tr.stop_seq, 1);
    bool in_g = sched_getg() != NULL;
    if (in_g) gort_syscall_enter();
    while (!atomic_load_acq(&tr.writer_done)) futex_sleep(&tr.writer_done, 0, 10 * 1000 * 1000);
    if (in_g) gort_syscall_exit();
    lock(&tr.lock);
    tr.running = false;
    int rc = tr.rc;
    unlock(&tr.lock);
    return rc;
}
