/* The execution trace (Go's runtime/trace, shown the way Go's trace viewer
 * shows it), written as Chrome trace-event JSON, which Perfetto
 * (ui.perfetto.dev) and chrome://tracing open as they are.
 *
 * Recording. The scheduler records its events inline (sched_trace,
 * sched/schedhooks.h) at every transition; the collector's hooks (gc.h,
 * through metrics.c) call in here. An event is one 64-bit word (the
 * goroutine, its kind, a small argument, the P) appended to the calling
 * thread's own buffer, no lock, no atomic read-modify-write; the TSC
 * follows it only if the event read the clock, and two words more for the
 * few that carry them (a creation's start function, a stop-the-world's
 * reason, the counters). A direct switch is one event (TK_GO_STOP: the
 * running goroutine stops, for its reason, and the next one starts), so a
 * channel round trip is four words: two unblocks and two switches.
 *
 * The clock. rdtsc costs about 18 ns here, as much as a goroutine switch,
 * so most events do not read it: an event reads the clock only when the
 * helper ticked (sched_trace_clock, every 1 ms) since the thread's latest
 * clocked event, and always at P start and stop, syscalls, stop-the-world,
 * the collector's events and a buffer's last event. An event without a
 * time therefore happened after the thread's previous clocked event L and
 * before the tick after L: the converter spaces the thread's events
 * between L and the next clocked one N evenly over [L, min(N, L + 1 ms)].
 * The bound: an event's time is off by less than the interval between two
 * ticks, 1 ms while the helper gets a CPU when it wakes (the trace's
 * otherData.max_tick_gap_us reports the longest interval seen; an
 * overloaded machine widens it). A goroutine that runs long between two
 * events sees a tick, so its end reads the clock: a 50 ms run is a 50 ms
 * slice, to within the bound (test_trace_times). Per thread, times only go
 * up: a clocked time earlier than the thread's previous event (a TSC
 * skewed across CPUs) takes the previous one's.
 *
 * Like Go's tracer, it records a compact binary form while the program
 * runs and makes the viewer's format afterwards: turning an event into
 * JSON text costs several times recording it. A helper thread
 * ("gort-trace") ticks the clock every 1 ms, moves full buffers every
 * 10 ms to an unlinked temporary file (so memory stays bounded and
 * buffers are reused while still mapped: no page faults in the traced
 * threads), records the heap and
 * goroutine counters, and calibrates the TSC against CLOCK_MONOTONIC; at
 * gort_trace_stop it reads the file back and writes the JSON to the
 * caller's fd. Without a temporary file the buffers stay in memory, up to
 * GORT_TRACEBUF MiB (256 by default), and events beyond that are dropped
 * (the trace says how many). At start, every existing goroutine is
 * described (its id and start function), as Go's tracer does.
 *
 * The JSON: process "Procs" has a row per P with a slice per goroutine run
 * ("G12 worker", its end reason in args: blocked on chan receive, yield,
 * preempted, syscall, exit), instants for creation, unblocking (who woke
 * whom) and P start/stop, and a "GC" row with each cycle, its
 * stop-the-world pauses, and the heap and goroutine counters; process
 * "Threads" has a row per thread with its syscalls, and the mark assists
 * and sweeps a thread does without a P. A goroutine's slice is opened and
 * closed by events of one thread (it runs on one M at a time), so each
 * thread's buffers are converted in the order it filled them, with its
 * open slices kept per thread; a GC cycle, which starts on one thread and
 * ends on another, is paired by its number. */
#define _GNU_SOURCE
#include "prof/prof.h"

#include "base/atomic.h"
#include "base/print.h"
#include "base/symtab.h"
#include "base/thread.h"
#include "gc/gc.h"
#include "gort/malloc.h"
#include "gort/prof.h"
#include "gort/sched.h"
#include "mem/fixalloc.h"
#include "sched/proc.h"
#include "sched/schedhooks.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#define TBUF_WORDS TRACE_BUF_WORDS
#define TICK_NS    1000000 /* the helper ticks sched_trace_clock this often */

/* An event, decoded. */
typedef struct tev {
    uint64_t tsc;  /* 0: not read (the time is interpolated) */
    uint64_t a, x; /* TK_EXT's words */
    uint32_t goid;
    int kind; /* enum trace_kind, without the flags */
    bool ext;
    uint8_t small;
    int p;        /* the P the thread held, or -1 */
    uint32_t len; /* words */
} tev;

static inline uint32_t ev_len(uint64_t w) {
    uint32_t k = (uint32_t)(w >> 32) & 0xff;
    return 1 + (k & TK_CLOCK ? 1 : 0) + (k & TK_EXT ? 2 : 0);
}

/* The event at word i of n; false if it is cut off. */
static bool decode(const uint64_t *w, uint32_t i, uint32_t n, tev *e) {
    uint64_t v = w[i];
    uint32_t k = (uint32_t)(v >> 32) & 0xff;
    e->len = ev_len(v);
    if (i + e->len > n) return false;
    e->goid = (uint32_t)v;
    e->kind = (int)(k & ~(uint32_t)(TK_CLOCK | TK_EXT));
    e->small = (uint8_t)(v >> 40);
    e->p = (int16_t)(v >> 48);
    e->tsc = k & TK_CLOCK ? w[i + 1] : 0;
    e->ext = k & TK_EXT;
    uint32_t j = i + 1 + (k & TK_CLOCK ? 1 : 0);
    e->a = e->ext ? w[j] : 0;
    e->x = e->ext ? w[j + 1] : 0;
    return true;
}

/* Per thread: its identity, and the conversion state of its stream. */
typedef struct trace_thread {
    struct trace_thread *next;
    int tid;
    uint32_t id; /* this session's number for it (the file's buffer headers) */
    bool named;
    bool g_open;
    int64_t g_goid, g_t0;
    int g_p;
    int64_t sys_t0, assist_t0, sweep_t0, stw_t0;
    int assist_p, sweep_p;
    const char *stw_reason;
    int64_t last; /* the time of its latest event converted (ns) */
} tthread;

typedef trace_buf tbuf;

/* A buffer in the temporary file: this header, then n words. */
typedef struct file_hdr {
    uint32_t thread; /* tthread.id */
    uint32_t n;
} file_hdr;

#define GC_PAIRS 4096

static struct {
    lock_t lock;  /* the lists, threads, session state */
    uint32_t on;  /* events are recorded */
    uint32_t gen; /* the session */
    bool running; /* a session exists (start .. stop) */
    int fd;       /* the caller's */
    int tmp;      /* the temporary file, or -1 */
    tbuf *full, *full_tail, *free;
    tbuf **all_bufs; /* every buffer ever mapped */
    int nall, maxbufs;
    tthread *threads;
    uint32_t nthreads;
    uint32_t stop_seq, writer_done;
    int64_t ns0;   /* CLOCK_MONOTONIC at start */
    uint64_t tsc0; /* TSC at start */
    uint64_t stop_tsc;
    uint64_t max_tick_gap; /* TSC ticks: the longest the helper took between two ticks */
    double ns_per_tick;
    int rc; /* the first error */
    bool first_event;
    uint64_t dropped; /* events */
    struct {
        uint64_t n;
        int64_t t0, t1;
    } gc[GC_PAIRS];
    int ngc;
} tr = {.lock = LOCK_INIT, .tmp = -1};

static __thread uint32_t tls_gen; /* the session tls_trace_buf was taken in */
static __thread tthread *tls_thread;

/* ---- recording ----
 * The fast path is inline in the scheduler (sched_trace, schedhooks.h);
 * this is its slow path, and the path of the events that always read the
 * clock. */

static __attribute__((noinline)) tbuf *refill(void) {
    tbuf *old = tls_trace_buf;
    tls_trace_seen = 0;
    lock(&tr.lock);
    if (!atomic_load_relaxed(&tr.on)) {
        unlock(&tr.lock);
        return NULL;
    }
    if (old && tls_gen == tr.gen && old->gen == tr.gen) { /* full: for the helper */
        old->next = NULL;
        if (tr.full_tail)
            tr.full_tail->next = old;
        else
            tr.full = old;
        tr.full_tail = old;
    }
    tthread *t = tls_thread;
    if (!t) {
        t = persistent_alloc(sizeof *t, 8, &prof_bucket_bytes);
        if (t) {
            t->tid = os_gettid();
            t->next = tr.threads;
            tr.threads = t;
            tls_thread = t;
        }
    }
    if (t && t->id == 0) t->id = ++tr.nthreads; /* numbered per session (start clears) */
    tbuf *b = tr.free;
    if (b) {
        tr.free = b->next;
    } else if (tr.nall < tr.maxbufs) {
        void *m = mmap(NULL, sizeof(tbuf), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        b = m == MAP_FAILED ? NULL : m;
        if (b) tr.all_bufs[tr.nall++] = b;
    }
    if (b && t) {
        b->gen = tr.gen;
        b->owner = t;
        b->next = NULL;
        atomic_store_rel(&b->n, 0);
    } else {
        b = NULL;
        tr.dropped++;
    }
    unlock(&tr.lock);
    tls_trace_buf = b;
    tls_gen = b ? b->gen : 0;
    return b;
}

/* Records word w (and a, x if it has TK_EXT) with the clock read: the
 * scheduler's slow path (sched_hooks.trace), and the tracer's own events. */
static void trace_clocked(uint64_t w, uint64_t a, uint64_t x) {
    w |= (uint64_t)TK_CLOCK << 32;
    uint32_t words = ev_len(w);
    uint64_t c = atomic_load_acq(&sched_trace_clock); /* before the clock: see the top */
    tbuf *b = tls_trace_buf;
    if (!b || tls_gen != (uint32_t)(c >> 32) || b->n + words > TBUF_WORDS) {
        b = refill();
        if (!b) return;
    }
    uint32_t n = b->n;
    b->w[n] = w;
    b->w[n + 1] = __rdtsc();
    if (words == 4) {
        b->w[n + 2] = a;
        b->w[n + 3] = x;
    }
    atomic_store_rel(&b->n, n + words);
    tls_trace_seen = c;
}

static void emit(uint32_t kind, int64_t goid, uint32_t small, int p) {
    trace_clocked(trace_word(kind, goid, small, p), 0, 0);
}

static void emit2(uint32_t kind, int64_t goid, uint32_t small, int p, uint64_t a, uint64_t x) {
    trace_clocked(trace_word(kind | TK_EXT, goid, small, p), a, x);
}

void prof_trace_gc(int ev, uint64_t arg) {
    if (!atomic_load_relaxed(&tr.on)) return;
    m *mp = tls_m;
    int p = trace_pid(mp);
    g *gp = mp ? mp->curg : NULL;
    int64_t goid = gp ? gp->goid : 0;
    switch (ev) {
    case GC_EV_START:
        emit2(TK_GC_START, goid, 0, p, arg, 0);
        break;
    case GC_EV_DONE:
        emit2(TK_GC_DONE, goid, 0, p, arg, 0);
        break;
    case GC_EV_ASSIST_START:
        emit(TK_ASSIST_START, goid, 0, p);
        break;
    case GC_EV_ASSIST_DONE:
        emit(TK_ASSIST_DONE, goid, 0, p);
        break;
    case GC_EV_SWEEP_START:
        emit(TK_SWEEP_START, goid, 0, p);
        break;
    case GC_EV_SWEEP_DONE:
        emit2(TK_SWEEP_DONE, goid, 0, p, arg, 0);
        break;
    }
}

/* ---- JSON, written with appenders of our own (no printf per field) ---- */

#define ROW_GC 100000 /* the GC row's tid in process 1 */

/* The appenders reserve before they write: no event's field is longer
 * than RESERVE bytes (names are cut at 200), so each writes straight into
 * the buffer. */
#define RESERVE 512

static inline char *room(pbuf *b) {
    if (b->oom) return NULL;
    if (b->cap - b->n < RESERVE) {
        size_t cap = b->cap ? b->cap * 2 : 1 << 16;
        while (cap - b->n < RESERVE) cap *= 2;
        uint8_t *np = gort_realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return NULL;
        }
        b->p = np;
        b->cap = cap;
    }
    return (char *)b->p + b->n;
}

static inline void put_n(pbuf *b, const char *s, size_t n) {
    if (n > 200) n = 200;
    char *d = room(b);
    if (!d) return;
    memcpy(d, s, n);
    b->n += n;
}

static void put(pbuf *b, const char *s) {
    put_n(b, s, strlen(s));
}

/* A string literal: its length known at compile time. */
#define PUTL(b, lit) put_n((b), (lit), sizeof(lit) - 1)

static void put_u(pbuf *b, uint64_t v) {
    char t[24];
    int i = sizeof t;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    char *d = room(b);
    if (!d) return;
    memcpy(d, t + i, sizeof t - (size_t)i);
    b->n += sizeof t - (size_t)i;
}

static void put_i(pbuf *b, int64_t v) {
    if (v < 0) {
        PUTL(b, "-");
        v = -v;
    }
    put_u(b, (uint64_t)v);
}

/* Nanoseconds as microseconds with three decimals. */
static void put_us(pbuf *b, int64_t ns) {
    if (ns < 0) ns = 0;
    put_u(b, (uint64_t)(ns / 1000));
    char *d = room(b);
    if (!d) return;
    d[0] = '.';
    d[1] = (char)('0' + ns / 100 % 10);
    d[2] = (char)('0' + ns / 10 % 10);
    d[3] = (char)('0' + ns % 10);
    b->n += 4;
}

static void put_quoted(pbuf *b, const char *s) {
    char *d = room(b);
    if (!d) return;
    char *start = d;
    *d++ = '"';
    for (int k = 0; s && *s && k < 200; s++, k++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            *d++ = '\\';
            *d++ = (char)c;
        } else if (c < 0x20) {
            *d++ = '?';
        } else {
            *d++ = (char)c;
        }
    }
    *d++ = '"';
    b->n += (size_t)(d - start);
}

static void json_begin(pbuf *b) {
    put(b, tr.first_event ? "\n" : ",\n");
    tr.first_event = false;
}

/* {"ph":PH,"pid":PID,"tid":TID,"name":NAME,"ts":T  (the caller closes it) */
static void ev_head(pbuf *b, const char *ph, int pid, int64_t tid, const char *name, int64_t t) {
    json_begin(b);
    PUTL(b, "{\"ph\":\"");
    put(b, ph);
    PUTL(b, "\",\"pid\":");
    put_i(b, pid);
    PUTL(b, ",\"tid\":");
    put_i(b, tid);
    PUTL(b, ",\"name\":");
    put_quoted(b, name);
    PUTL(b, ",\"ts\":");
    put_us(b, t);
}

static void meta(pbuf *b, int pid, int64_t tid, const char *what, const char *name, int sort) {
    json_begin(b);
    PUTL(b, "{\"ph\":\"M\",\"pid\":");
    put_i(b, pid);
    PUTL(b, ",\"tid\":");
    put_i(b, tid);
    PUTL(b, ",\"name\":\"");
    put(b, what);
    PUTL(b, "\",\"args\":{\"name\":");
    put_quoted(b, name);
    PUTL(b, "}}");
    json_begin(b);
    PUTL(b, "{\"ph\":\"M\",\"pid\":");
    put_i(b, pid);
    PUTL(b, ",\"tid\":");
    put_i(b, tid);
    PUTL(b, ",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":");
    put_i(b, sort);
    PUTL(b, "}}");
}

/* ---- conversion ---- */

/* Goroutine start functions, by id (open addressing), and their names. */
static struct {
    uint64_t *goid, *fn;
    size_t cap, n;
} gfn;

static void gfn_set(uint64_t goid, uint64_t fn) {
    if ((gfn.n + 1) * 2 > gfn.cap) {
        size_t cap = gfn.cap ? gfn.cap * 2 : 1024;
        uint64_t *k = gort_calloc(cap, sizeof *k), *v = gort_calloc(cap, sizeof *v);
        if (!k || !v) {
            gort_free(k);
            gort_free(v);
            return;
        }
        for (size_t i = 0; i < gfn.cap; i++) {
            if (!gfn.goid[i]) continue;
            size_t j = (gfn.goid[i] * 0x9e3779b97f4a7c15ULL) >> 20 & (cap - 1);
            while (k[j]) j = (j + 1) & (cap - 1);
            k[j] = gfn.goid[i];
            v[j] = gfn.fn[i];
        }
        gort_free(gfn.goid);
        gort_free(gfn.fn);
        gfn.goid = k;
        gfn.fn = v;
        gfn.cap = cap;
    }
    size_t j = (goid * 0x9e3779b97f4a7c15ULL) >> 20 & (gfn.cap - 1);
    while (gfn.goid[j] && gfn.goid[j] != goid) j = (j + 1) & (gfn.cap - 1);
    if (!gfn.goid[j]) gfn.n++;
    gfn.goid[j] = goid;
    gfn.fn[j] = fn;
}

static uint64_t gfn_get(uint64_t goid) {
    if (!gfn.cap) return 0;
    size_t j = (goid * 0x9e3779b97f4a7c15ULL) >> 20 & (gfn.cap - 1);
    while (gfn.goid[j]) {
        if (gfn.goid[j] == goid) return gfn.fn[j];
        j = (j + 1) & (gfn.cap - 1);
    }
    return 0;
}

static struct {
    uint64_t pc;
    const char *name;
} name_cache[1024];

static const char *fn_name(uint64_t pc) {
    if (!pc) return "?";
    size_t h = (pc * 0x9e3779b97f4a7c15ULL) >> 54;
    if (name_cache[h].pc == pc) return name_cache[h].name;
    symtab_sym s;
    const char *n = symtab_lookup((uintptr_t)pc, &s) && s.func ? s.func : "?";
    if (strcmp(n, "main_entry") == 0) n = "main"; /* the main goroutine's */
    name_cache[h].pc = pc;
    name_cache[h].name = n;
    return n;
}

static int64_t ts_of(uint64_t tsc) {
    return (int64_t)((double)(int64_t)(tsc - tr.tsc0) * tr.ns_per_tick);
}

static uint64_t procs_named[MAX_GOMAXPROCS / 64];

static void name_proc(pbuf *b, int p) {
    if (p < 0 || p >= MAX_GOMAXPROCS || (procs_named[p / 64] >> (p % 64)) & 1) return;
    procs_named[p / 64] |= (uint64_t)1 << (p % 64);
    char n[32];
    snprint(n, sizeof n, "Proc %d", p);
    meta(b, 1, p, "thread_name", n, p);
}

static void slice(pbuf *b, int pid, int64_t tid, const char *name, const char *cat, int64_t t0,
                  int64_t t1) {
    ev_head(b, "X", pid, tid, name, t0);
    PUTL(b, ",\"dur\":");
    put_us(b, t1 > t0 ? t1 - t0 : 0);
    PUTL(b, ",\"cat\":\"");
    put(b, cat);
    PUTL(b, "\",\"args\":{");
}

static void close_g(pbuf *b, tthread *t, int64_t now, const char *why, int reason) {
    if (!t->g_open) return;
    t->g_open = false;
    char name[160];
    snprint(name, sizeof name, "G%lld %s", (long long)t->g_goid,
            fn_name(gfn_get((uint64_t)t->g_goid)));
    slice(b, 1, t->g_p, name, "goroutine", t->g_t0, now);
    PUTL(b, "\"goroutine\":");
    put_i(b, t->g_goid);
    PUTL(b, ",\"end\":\"");
    put(b, why);
    if (reason > 0 && reason < WAIT_REASON_COUNT) put(b, wait_reason_strings[reason]);
    PUTL(b, "\"}}");
}

static void open_g(pbuf *b, tthread *t, int64_t now, int64_t goid, int p) {
    close_g(b, t, now, "switch", 0);
    if (p < 0) p = 0;
    name_proc(b, p);
    t->g_open = true;
    t->g_goid = goid;
    t->g_p = p;
    t->g_t0 = now;
}

static void gc_pair(uint64_t n, int64_t t, bool end) {
    for (int i = tr.ngc; i-- > 0;) {
        if (tr.gc[i].n != n) continue;
        if (end)
            tr.gc[i].t1 = t;
        else
            tr.gc[i].t0 = t;
        return;
    }
    if (tr.ngc == GC_PAIRS) return;
    tr.gc[tr.ngc].n = n;
    tr.gc[tr.ngc].t0 = end ? 0 : t;
    tr.gc[tr.ngc].t1 = end ? t : 0;
    tr.ngc++;
}

/* The times of a thread's events: a clocked event's own (never before the
 * thread's previous one: per thread, times only go up); the events without
 * one, between clocked events lo and hi, evenly spaced between lo's time
 * and the earlier of hi's and a tick after lo. An event reads the clock
 * whenever the helper ticked since the thread's previous clocked event, so
 * it happened before the tick after that one: within one tick interval of
 * lo. The spacing is even because pingpong-like runs of switches, the ones
 * that leave the clock alone, are. */
typedef struct run_times {
    uint32_t next;    /* the word of the next clocked event (n: none) */
    uint32_t k, runs; /* the unclocked events before it: this one's rank, how many */
    int64_t lo, hi;
} run_times;

static int64_t event_time(tthread *t, run_times *tm, const tev *e, const uint64_t *w, uint32_t i,
                          uint32_t n) {
    int64_t now;
    if (e->tsc) {
        now = ts_of(e->tsc);
        if (now < t->last) now = t->last;
        tm->runs = 0;
    } else {
        if (tm->runs == 0 || i > tm->next) { /* a run of unclocked events starts */
            uint32_t k = i, c = 0;
            while (k < n && !((w[k] >> 32) & TK_CLOCK)) {
                c++;
                k += ev_len(w[k]);
            }
            tm->next = k;
            tm->runs = c;
            tm->k = 0;
            tm->lo = t->last;
            int64_t hi = ts_of(k + 1 < n ? w[k + 1] : tr.stop_tsc);
            if (hi > tm->lo + TICK_NS) hi = tm->lo + TICK_NS;
            tm->hi = hi < tm->lo ? tm->lo : hi;
        }
        tm->k++;
        now = tm->lo + (tm->hi - tm->lo) * (int64_t)tm->k / (int64_t)(tm->runs + 1);
    }
    t->last = now;
    return now;
}

static void convert(pbuf *b, tthread *t, const uint64_t *w, uint32_t n) {
    if (!t->named) {
        t->named = true;
        char nm[48];
        snprint(nm, sizeof nm, "thread %d", t->tid);
        meta(b, 2, t->tid, "thread_name", nm, t->tid);
    }
    run_times tm = {0};
    tev ev;
    const tev *e = &ev;
    for (uint32_t i = 0; i < n; i += ev.len) {
        if (!decode(w, i, n, &ev)) break;
        const tev *x = ev.ext ? &ev : NULL;
        int64_t now = event_time(t, &tm, e, w, i, n);
        int kind = e->kind, p = e->p;
        int pid = p >= 0 ? 1 : 2;
        int64_t row = p >= 0 ? p : t->tid;
        if (p >= 0) name_proc(b, p);
        switch (kind) {
        case TK_GO_CREATE:
            if (!x) break;
            gfn_set(e->goid, x->a);
            ev_head(b, "i", pid, row, "GoCreate", now);
            PUTL(b, ",\"s\":\"t\",\"args\":{\"goroutine\":");
            put_u(b, e->goid);
            PUTL(b, ",\"creator\":");
            put_u(b, x->x);
            PUTL(b, ",\"fn\":");
            put_quoted(b, fn_name(x->a));
            PUTL(b, "}}");
            break;
        case TK_GO_DESC:
            if (x) gfn_set(e->goid, x->a);
            break;
        case TK_GO_START:
            open_g(b, t, now, e->goid, p);
            break;
        case TK_GO_STOP:
            if (e->small == TRACE_STOP_YIELD)
                close_g(b, t, now, "yield", 0);
            else if (e->small == TRACE_STOP_PREEMPT)
                close_g(b, t, now, "preempted", 0);
            else if (e->small == TRACE_STOP_END)
                close_g(b, t, now, "exit", 0);
            else
                close_g(b, t, now, "blocked: ", e->small ? e->small : -1);
            if (e->goid) open_g(b, t, now, e->goid, p);
            break;
        case TK_GO_UNBLOCK:
            ev_head(b, "i", pid, row, "GoUnblock", now);
            PUTL(b, ",\"s\":\"t\",\"args\":{\"goroutine\":");
            put_u(b, e->goid);
            PUTL(b, ",\"by\":");
            put_i(b, t->g_open ? t->g_goid : 0);
            PUTL(b, "}}");
            break;
        case TK_GO_SYSCALL:
            close_g(b, t, now, "syscall", 0);
            t->sys_t0 = now;
            break;
        case TK_GO_SYSEXIT:
            if (t->sys_t0) {
                slice(b, 2, t->tid, "syscall", "syscall", t->sys_t0, now);
                PUTL(b, "\"goroutine\":");
                put_u(b, e->goid);
                PUTL(b, "}}");
                t->sys_t0 = 0;
            }
            if (p >= 0) open_g(b, t, now, e->goid, p); /* it kept or got a P */
            break;
        case TK_PROC_START:
        case TK_PROC_STOP:
            if (kind == TK_PROC_STOP) close_g(b, t, now, "proc stop", 0);
            ev_head(b, "i", 1, p >= 0 ? p : 0, kind == TK_PROC_START ? "ProcStart" : "ProcStop",
                    now);
            PUTL(b, ",\"s\":\"t\",\"args\":{\"thread\":");
            put_i(b, t->tid);
            PUTL(b, "}}");
            break;
        case TK_STW_START:
            t->stw_t0 = now;
            t->stw_reason = x ? (const char *)x->a : NULL;
            break;
        case TK_STW_DONE:
            if (t->stw_t0) {
                char nm[96];
                snprint(nm, sizeof nm, "STW: %s", t->stw_reason ? t->stw_reason : "?");
                slice(b, 1, ROW_GC, nm, "gc", t->stw_t0, now);
                PUTL(b, "}}");
                t->stw_t0 = 0;
            }
            break;
        case TK_GC_START:
        case TK_GC_DONE:
            if (x) gc_pair(x->a, now, kind == TK_GC_DONE);
            break;
        case TK_ASSIST_START:
            t->assist_t0 = now;
            t->assist_p = p;
            break;
        case TK_ASSIST_DONE:
            if (t->assist_t0) {
                slice(b, t->assist_p >= 0 ? 1 : 2, t->assist_p >= 0 ? t->assist_p : t->tid,
                      "GC mark assist", "gc", t->assist_t0, now);
                PUTL(b, "\"goroutine\":");
                put_u(b, e->goid);
                PUTL(b, "}}");
                t->assist_t0 = 0;
            }
            break;
        case TK_SWEEP_START:
            t->sweep_t0 = now;
            t->sweep_p = p;
            break;
        case TK_SWEEP_DONE:
            if (t->sweep_t0) {
                slice(b, t->sweep_p >= 0 ? 1 : 2, t->sweep_p >= 0 ? t->sweep_p : t->tid, "GC sweep",
                      "gc", t->sweep_t0, now);
                PUTL(b, "\"pages\":");
                put_u(b, x ? x->a : 0);
                PUTL(b, "}}");
                t->sweep_t0 = 0;
            }
            break;
        case TK_COUNTERS:
            if (!x) break;
            ev_head(b, "C", 1, ROW_GC, "Heap", now);
            PUTL(b, ",\"args\":{\"heap_live\":");
            put_u(b, x->a);
            PUTL(b, "}}");
            ev_head(b, "C", 1, ROW_GC, "Goroutines", now);
            PUTL(b, ",\"args\":{\"goroutines\":");
            put_u(b, x->x);
            PUTL(b, "}}");
            break;
        }
    }
}

/* ---- the helper ---- */

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

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -errno;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Moves the full buffers to the temporary file and frees them (helper). */
static void spill(void) {
    if (tr.tmp < 0) return;
    for (;;) {
        lock(&tr.lock);
        tbuf *q = tr.full;
        if (q) {
            tr.full = q->next;
            if (!tr.full) tr.full_tail = NULL;
        }
        unlock(&tr.lock);
        if (!q) return;
        file_hdr h = {q->owner->id, atomic_load_acq(&q->n)};
        if (write_all(tr.tmp, &h, sizeof h) < 0 || write_all(tr.tmp, q->w, (size_t)h.n * 8) < 0) {
            close(tr.tmp); /* the file failed: keep the rest in memory */
            tr.tmp = -1;
            lock(&tr.lock);
            q->next = tr.full;
            tr.full = q;
            if (!tr.full_tail) tr.full_tail = q;
            unlock(&tr.lock);
            return;
        }
        lock(&tr.lock);
        q->gen = 0;
        q->next = tr.free;
        tr.free = q;
        unlock(&tr.lock);
    }
}

static tthread *thread_by_id(uint32_t id) {
    for (tthread *t = tr.threads; t; t = t->next)
        if (t->id == id) return t;
    return NULL;
}

/* The first pass: every goroutine's start function (its creation or its
 * description at start), so that a slice converted before the creation
 * that another thread recorded still gets its name. */
static void collect_names(const uint64_t *w, uint32_t n) {
    tev e;
    for (uint32_t i = 0; i < n; i += e.len) {
        if (!decode(w, i, n, &e)) break;
        if (e.ext && (e.kind == TK_GO_CREATE || e.kind == TK_GO_DESC)) gfn_set(e.goid, e.a);
    }
}

/* Reads the temporary file's buffers, calling fn on each. */
static void file_each(void (*fn)(tthread *t, const uint64_t *w, uint32_t n, pbuf *b), pbuf *b) {
    static uint64_t words[TBUF_WORDS];
    if (tr.tmp < 0) return;
    lseek(tr.tmp, 0, SEEK_SET);
    file_hdr h;
    while (read(tr.tmp, &h, sizeof h) == (ssize_t)sizeof h && h.n <= TBUF_WORDS) {
        size_t want = (size_t)h.n * 8, got = 0;
        while (got < want) {
            ssize_t r = read(tr.tmp, (char *)words + got, want - got);
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (got < want) break;
        fn(thread_by_id(h.thread), words, h.n, b);
    }
}

static void names_fn(tthread *t, const uint64_t *w, uint32_t n, pbuf *b) {
    (void)t, (void)b;
    collect_names(w, n);
}

static void convert_fn(tthread *t, const uint64_t *w, uint32_t n, pbuf *b) {
    if (t) convert(b, t, w, n);
    if (b->n > (1 << 20)) out(b);
}

static void helper(void *arg) {
    (void)arg;
    uint32_t seq = atomic_load_acq(&tr.stop_seq);
    uint64_t last = __rdtsc();
    for (uint32_t k = 0; atomic_load_acq(&tr.stop_seq) == seq; k++) {
        if (k % 10 == 0) { /* every 10 ms */
            calibrate();
            emit2(TK_COUNTERS, 0, 0, -1, atomic_load_relaxed(&gc_pacer.heap_live),
                  (uint64_t)gort_num_goroutine());
            spill();
        }
        futex_sleep(&tr.stop_seq, seq, TICK_NS);
        /* The tick: every thread's next event reads the clock. */
        atomic_store_rel(&sched_trace_clock, atomic_load_relaxed(&sched_trace_clock) + 1);
        uint64_t now = __rdtsc();
        if (now - last > tr.max_tick_gap) tr.max_tick_gap = now - last;
        last = now;
    }
    /* Stopped: no new events. Give writers already past their check a
     * moment, then take everything: the file, the full list, then every
     * thread's current buffer (each thread's in the order it filled them). */
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
    calibrate();
    spill();
    pbuf b = {0};
    PUTL(&b, "{\"traceEvents\":[");
    tr.first_event = true;
    json_begin(&b);
    PUTL(&b, "{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\",\"args\":{\"name\":\"Procs\"}}");
    json_begin(&b);
    PUTL(&b, "{\"ph\":\"M\",\"pid\":2,\"name\":\"process_name\",\"args\":{\"name\":\"Threads\"}}");
    meta(&b, 1, ROW_GC, "thread_name", "GC", -1);
    /* Pass 1: names. Pass 2: the events, each thread's in its order. */
    file_each(names_fn, &b);
    for (tbuf *x = tr.full; x; x = x->next) collect_names(x->w, atomic_load_acq(&x->n));
    for (int i = 0; i < tr.nall; i++)
        if (tr.all_bufs[i]->gen == tr.gen)
            collect_names(tr.all_bufs[i]->w, atomic_load_acq(&tr.all_bufs[i]->n));
    file_each(convert_fn, &b);
    if (tr.tmp >= 0) close(tr.tmp);
    tr.tmp = -1;
    for (tbuf *x = tr.full; x; x = x->next) { /* what the file could not take */
        convert(&b, x->owner, x->w, atomic_load_acq(&x->n));
        if (b.n > (1 << 20)) out(&b);
    }
    for (int i = 0; i < tr.nall; i++) {
        tbuf *x = tr.all_bufs[i];
        bool listed = false;
        for (tbuf *f = tr.full; f && !listed; f = f->next) listed = f == x;
        if (x->gen != tr.gen || listed) continue;
        convert(&b, x->owner, x->w, atomic_load_acq(&x->n));
        if (b.n > (1 << 20)) out(&b);
    }
    int64_t end = ts_of(tr.stop_tsc);
    for (tthread *t = tr.threads; t; t = t->next) close_g(&b, t, end, "trace end", 0);
    for (int i = 0; i < tr.ngc; i++) {
        char nm[48];
        snprint(nm, sizeof nm, "GC %llu", (unsigned long long)tr.gc[i].n);
        if (!tr.gc[i].t0 && !tr.gc[i].t1) continue;
        slice(&b, 1, ROW_GC, nm, "gc", tr.gc[i].t0, tr.gc[i].t1 ? tr.gc[i].t1 : end);
        PUTL(&b, "}}");
    }
    pbuf_printf(&b,
                "\n],\n\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"gort\","
                "\"version\":\"%d.%d.%d\",\"dropped_buffers\":%llu,\"max_tick_gap_us\":%lld}}\n",
                GORT_VERSION_MAJOR, GORT_VERSION_MINOR, GORT_VERSION_PATCH,
                (unsigned long long)tr.dropped,
                (long long)((double)tr.max_tick_gap * tr.ns_per_tick / 1000));
    out(&b);
    pbuf_free(&b);
    gort_free(gfn.goid);
    gort_free(gfn.fn);
    memset(&gfn, 0, sizeof gfn);
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

static int tmpfile_open(void) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    char path[512];
    snprint(path, sizeof path, "%s/gort-trace-XXXXXX", dir);
    fd = mkstemp(path);
    if (fd >= 0) unlink(path);
    return fd;
}

/* Describes every goroutine alive now (its start function), as Go's
 * tracer does at start, and opens the caller's slice: it runs from the
 * trace's start (a goroutine running on another thread gets its first
 * slice at its next start). */
static void describe_goroutines(void) {
    for (g *gp = atomic_load_acq(&allgs); gp; gp = gp->alllink) {
        uint32_t s = atomic_load_relaxed(&gp->status);
        if (s == G_DEAD || s == G_IDLE) continue;
        sched_trace_ext(TK_GO_DESC, gp->goid, 0, -1, (uint64_t)(uintptr_t)gp->fn, 0);
    }
    m *mp = tls_m;
    if (mp && mp->curg && mp->p) sched_trace(TK_GO_START, mp->curg->goid, 0, mp->p->id);
}

GORT_API int gort_trace_start(int fd) {
    prof_init();
    if (fd < 0) return -EBADF;
    lock(&tr.lock);
    if (tr.running) {
        unlock(&tr.lock);
        return -EBUSY;
    }
    if (!tr.all_bufs) {
        int mib = 256;
        const char *v = getenv("GORT_TRACEBUF");
        if (v && atoi(v) > 0) mib = atoi(v);
        tr.maxbufs = (int)(((int64_t)mib << 20) / (int64_t)sizeof(tbuf));
        if (tr.maxbufs < 16) tr.maxbufs = 16;
        tr.all_bufs =
            persistent_alloc((size_t)tr.maxbufs * sizeof *tr.all_bufs, 8, &prof_bucket_bytes);
        if (!tr.all_bufs) {
            unlock(&tr.lock);
            return -ENOMEM;
        }
    }
    tr.running = true;
    tr.gen++;
    if (tr.gen == 0) tr.gen = 1;
    tr.fd = fd;
    tr.rc = 0;
    tr.full = tr.full_tail = NULL;
    tr.writer_done = 0;
    tr.ngc = 0;
    tr.dropped = 0;
    tr.nthreads = 0;
    memset(procs_named, 0, sizeof procs_named);
    for (tthread *t = tr.threads; t; t = t->next) {
        int tid = t->tid;
        tthread *next = t->next;
        memset(t, 0, sizeof *t);
        t->tid = tid;
        t->next = next;
    }
    tr.free = NULL;
    for (int i = 0; i < tr.nall; i++) {
        tr.all_bufs[i]->gen = 0;
        tr.all_bufs[i]->next = tr.free;
        tr.free = tr.all_bufs[i];
    }
    tr.max_tick_gap = 0;
    atomic_store_rel(&sched_trace_clock, (uint64_t)tr.gen << 32);
    tr.ns0 = prof_nanotime();
    tr.tsc0 = __rdtsc();
    tr.ns_per_tick = 1.0 / 3.0; /* until the helper's first calibration */
    unlock(&tr.lock);
    tr.tmp = tmpfile_open();
    int rc = os_thread_start(helper, NULL, 0, "gort-trace");
    if (rc < 0) {
        if (tr.tmp >= 0) close(tr.tmp);
        tr.tmp = -1;
        lock(&tr.lock);
        tr.running = false;
        unlock(&tr.lock);
        return rc;
    }
    atomic_store_rel(&sched_hooks.trace, trace_clocked);
    atomic_store_rel(&tr.on, 1);
    describe_goroutines();
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
    tr.stop_tsc = __rdtsc();
    atomic_xadd(&tr.stop_seq, 1);
    futex_wake(&tr.stop_seq, 1);
    /* The helper converts and writes: this thread waits outside its P. */
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
