/* Memory, block and mutex profiles (Go's mprof.go and the writers of
 * runtime/pprof).
 *
 * A bucket is a stack (and, for the heap, an object size) with its
 * counters; buckets live in one hash table under mprof_lock and are never
 * freed, as Go's. The allocator's samples (mem/msample.h) land in memory
 * buckets: allocations and frees, each counting the sampling points its
 * sample stands for. Blocking events (sched/schedhooks.h) and mutex
 * releases (sync/sync.h) land in block and mutex buckets: a count and the
 * nanoseconds. Contention on runtime locks (base/lock.h) happens where no
 * lock may be taken, so it goes to a lock-free table of its own (rtlock_*)
 * and joins the mutex profile when it is written.
 *
 * Stacks are frame-pointer walks from the hook, bounded by the goroutine's
 * stack (or the thread's); the writer drops the frames that are gort's own
 * (prof_trim_stack) before the stack reaches pprof: a heap profile's
 * leaf is the program's allocating function, a block or mutex profile's is
 * the gort call that blocked (gort_chan_recv, gort_mutex_unlock), as Go's
 * show runtime.chanrecv1 and sync.(*Mutex).Unlock.
 *
 * Values are Go's: the heap profile is unsampled with Go's formula (each
 * bucket's counts times 1 / (1 - e^(-size/rate))); the mutex profile is
 * sampled 1/rate and scaled back by rate; the block profile keeps every
 * event of rate nanoseconds or more and one in rate/ns of shorter ones,
 * counted as rate/ns events (Go's debiasing). The heap profile's in-use
 * figures are the state at the time of the call (Go's are as of the last
 * collection); they include objects the sweeper has not reached yet, as
 * MemStats' heap_alloc does. */
#define _GNU_SOURCE
#include "prof/prof.h"

#include "base/atomic.h"
#include "base/env.h"
#include "base/fatal.h"
#include "base/nanotime.h"
#include "gc/gc.h"
#include "gort/prof.h"
#include "mem/fixalloc.h"
#include "mem/msample.h"
#include "sched/schedhooks.h"
#include "sched/traceback.h"
#include "sync/sync.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

enum { BUCKET_MEM = 1, BUCKET_BLOCK = 2, BUCKET_MUTEX = 3 };

#define BUCKET_HASH 16384

typedef struct bucket {
    struct bucket *next;    /* hash chain */
    struct bucket *allnext; /* every bucket of its type, newest first */
    uint64_t hash;
    int type;
    int nstk;
    size_t size; /* memory buckets: the object size */
    /* memory */
    uint64_t allocs, alloc_bytes, frees, free_bytes;
    /* block and mutex: count in thousandths (the block profile's debiased
     * counts are fractions), and nanoseconds */
    uint64_t count_milli;
    uint64_t ns;
    uintptr_t stk[];
} bucket;

static lock_t mprof_lock = LOCK_INIT;
static bucket **buckets; /* BUCKET_HASH chains */
static bucket *all_mem, *all_block, *all_mutex;
uint64_t prof_bucket_bytes; /* /memory/classes/profiling/buckets:bytes */

static int block_rate; /* ns; 0 off */
static int mutex_rate; /* 1/rate sampled; 0 off */

/* ---- stacks ---- */

static __thread uintptr_t thread_lo, thread_hi; /* a thread that is not an M: its stack */

/* The calling thread's or goroutine's stack bounds for a walk from fp. */
static void stack_bounds(uintptr_t fp, uintptr_t *lo, uintptr_t *hi) {
    m *mp = tls_m;
    g *gp = mp ? mp->curg : NULL;
    if (gp && gp->stack.hi && fp >= gp->stack.lo && fp < gp->stack.hi) {
        *lo = gp->stack.lo;
        *hi = gp->stack.hi;
        return;
    }
    if (mp && mp->stack_hi && fp < mp->stack_hi && mp->stack_hi - fp < ((uintptr_t)64 << 20)) {
        *lo = fp;
        *hi = mp->stack_hi;
        return;
    }
    if (!thread_hi) {
        pthread_attr_t a;
        void *addr = NULL;
        size_t size = 0;
        if (pthread_getattr_np(pthread_self(), &a) == 0) {
            pthread_attr_getstack(&a, &addr, &size);
            pthread_attr_destroy(&a);
        }
        thread_lo = (uintptr_t)addr;
        thread_hi = addr ? (uintptr_t)addr + size : 1;
    }
    if (thread_hi > 1 && fp >= thread_lo && fp < thread_hi) {
        *lo = thread_lo;
        *hi = thread_hi;
        return;
    }
    *lo = *hi = 0; /* unknown: tb_walk's own sanity bounds */
}

int prof_callers(uintptr_t *pcs, int max) {
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0), lo, hi;
    stack_bounds(fp, &lo, &hi);
    return tb_walk(fp, lo, hi, pcs, max);
}

/* ---- buckets ---- */

static uint64_t stack_hash(int type, const uintptr_t *stk, int n, size_t size) {
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)type;
    for (int i = 0; i < n; i++) h = (h ^ stk[i]) * 0x100000001b3ULL;
    h = (h ^ size) * 0x100000001b3ULL;
    return h;
}

/* The bucket for (type, stack, size), made if new. Under mprof_lock. */
static bucket *bucket_get(int type, const uintptr_t *stk, int n, size_t size) {
    if (!buckets) {
        buckets = persistent_alloc(BUCKET_HASH * sizeof *buckets, 64, &prof_bucket_bytes);
        if (!buckets) return NULL;
    }
    uint64_t h = stack_hash(type, stk, n, size);
    bucket **chain = &buckets[h % BUCKET_HASH];
    for (bucket *b = *chain; b; b = b->next)
        if (b->hash == h && b->type == type && b->nstk == n && b->size == size &&
            memcmp(b->stk, stk, (size_t)n * sizeof *stk) == 0)
            return b;
    bucket *b = persistent_alloc(sizeof *b + (size_t)n * sizeof *stk, 8, &prof_bucket_bytes);
    if (!b) return NULL;
    b->hash = h;
    b->type = type;
    b->nstk = n;
    b->size = size;
    memcpy(b->stk, stk, (size_t)n * sizeof *stk);
    b->next = *chain;
    *chain = b;
    bucket **all = type == BUCKET_MEM ? &all_mem : type == BUCKET_BLOCK ? &all_block : &all_mutex;
    b->allnext = *all;
    atomic_store_rel(all, b);
    return b;
}

/* ---- hooks ---- */

static void *alloc_hook(size_t size, uint64_t count) {
    uintptr_t stk[TB_MAX_FRAMES];
    int n = prof_callers(stk, TB_MAX_FRAMES);
    lock(&mprof_lock);
    bucket *b = bucket_get(BUCKET_MEM, stk, n, size);
    unlock(&mprof_lock);
    if (!b) return NULL;
    atomic_xadd(&b->allocs, count);
    atomic_xadd(&b->alloc_bytes, count * size);
    return b;
}

static void free_hook(void *bk, size_t size, uint64_t count) {
    bucket *b = bk;
    atomic_xadd(&b->frees, count);
    atomic_xadd(&b->free_bytes, count * size);
}

static uint32_t prof_rand(void) {
    return fastrand();
}

static void record_event(int type, uint64_t count_milli, int64_t ns) {
    uintptr_t stk[TB_MAX_FRAMES];
    int n = prof_callers(stk, TB_MAX_FRAMES);
    lock(&mprof_lock);
    bucket *b = bucket_get(type, stk, n, 0);
    unlock(&mprof_lock);
    if (!b) return;
    atomic_xadd(&b->count_milli, count_milli);
    atomic_xadd(&b->ns, (uint64_t)ns);
}

static void block_hook(g *gp, int reason, int64_t ns) {
    (void)gp, (void)reason;
    int64_t rate = atomic_load_relaxed(&block_rate);
    if (rate <= 0) return;
    if (ns < rate) {
        /* Go's blocksampled: keep it with probability ns/rate, as rate/ns events. */
        if ((int64_t)(((uint64_t)prof_rand() << 32 | prof_rand()) % (uint64_t)rate) > ns) return;
        record_event(BUCKET_BLOCK, ns > 0 ? (uint64_t)(1000 * rate / ns) : 1000, rate);
        return;
    }
    record_event(BUCKET_BLOCK, 1000, ns);
}

static void mutex_hook(int64_t ns) {
    int rate = atomic_load_relaxed(&mutex_rate);
    if (rate <= 0 || (rate > 1 && prof_rand() % (uint32_t)rate != 0)) return;
    record_event(BUCKET_MUTEX, 1000, ns);
}

/* ---- runtime locks: a lock-free table ----
 *
 * A slot is claimed by a CAS of its state from 0 (empty) to 1 (being
 * written), filled, then published as the stack's hash (odd, never 0 or 1)
 * with a release store; later events of the same stack add to its counters
 * atomically. A full table (or a slot being written) drops the event. */

#define RTLOCK_SLOTS  1024
#define RTLOCK_FRAMES 32

typedef struct rtlock_slot {
    uint64_t state; /* 0 empty, 1 being written, else the stack's hash | 1 */
    uint64_t count, ns;
    int n;
    uintptr_t stk[RTLOCK_FRAMES];
} rtlock_slot;

static rtlock_slot *rtlock_table;
static uint64_t rtlock_dropped;

static void rtlock_hook(int64_t ns) {
    static __thread int busy; /* a contended lock inside this hook: not recorded */
    rtlock_slot *t = atomic_load_acq(&rtlock_table);
    int rate = atomic_load_relaxed(&mutex_rate);
    if (!t || busy || rate <= 0 || (rate > 1 && prof_rand() % (uint32_t)rate != 0)) return;
    busy = 1;
    uintptr_t stk[RTLOCK_FRAMES];
    int n = prof_callers(stk, RTLOCK_FRAMES);
    uint64_t h = stack_hash(BUCKET_MUTEX, stk, n, 0) | 1;
    if (h == 1) h = 3;
    for (unsigned i = 0, j = (unsigned)(h >> 1) % RTLOCK_SLOTS; i < 16;
         i++, j = (j + 1) % RTLOCK_SLOTS) {
        rtlock_slot *s = &t[j];
        uint64_t st = atomic_load_acq(&s->state);
        if (st == 0) {
            if (!atomic_cas(&s->state, &st, 1)) {
                if (st != h) continue;
            } else {
                s->n = n;
                memcpy(s->stk, stk, (size_t)n * sizeof *stk);
                atomic_store_rel(&s->state, h);
                st = h;
            }
        }
        if (st == h && s->n == n && memcmp(s->stk, stk, (size_t)n * sizeof *stk) == 0) {
            atomic_xadd(&s->count, 1);
            atomic_xadd(&s->ns, (uint64_t)ns);
            busy = 0;
            return;
        }
    }
    atomic_xadd(&rtlock_dropped, 1);
    busy = 0;
}

/* ---- rates ---- */

GORT_API int gort_set_memprofile_rate(int bytes) {
    prof_init();
    if (bytes < 0) return -EINVAL;
    int old = atomic_xchg(&mprof_rate, bytes);
    mprof_reset_all();
    return old;
}

GORT_API void gort_set_block_profile_rate(int rate) {
    prof_init();
    if (rate < 0) rate = 0;
    atomic_store_rel(&block_rate, rate);
    if (rate > 0) {
        atomic_store_rel(&sched_hooks.block, block_hook);
        __atomic_fetch_or(&sched_hooks_on, SCHED_HOOK_BLOCK, __ATOMIC_ACQ_REL);
    } else {
        __atomic_fetch_and(&sched_hooks_on, ~(uint32_t)SCHED_HOOK_BLOCK, __ATOMIC_ACQ_REL);
    }
}

GORT_API int gort_set_mutex_profile_fraction(int rate) {
    prof_init();
    if (rate < 0) return atomic_load_relaxed(&mutex_rate);
    if (rate > 0 && !atomic_load_acq(&rtlock_table)) {
        size_t bytes = (RTLOCK_SLOTS * sizeof(rtlock_slot) + 4095) & ~(size_t)4095;
        void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            rtlock_slot *expect = NULL;
            if (!atomic_cas(&rtlock_table, &expect, (rtlock_slot *)m)) munmap(m, bytes);
        }
    }
    int old = atomic_xchg(&mutex_rate, rate);
    atomic_store_rel(&sync_mutex_prof_hook, rate > 0 ? mutex_hook : NULL);
    atomic_store_rel(&lock_contended_hook, rate > 0 ? rtlock_hook : NULL);
    return old;
}

/* ---- writing ---- */

/* Go's scaleHeapSample: the unsampled estimate of count objects of total
 * bytes, each sampled with probability 1 - e^(-size/rate). */
static double exp_neg(double x) { /* e^-x for x >= 0, without libm */
    int k = 0;
    while (x > 0.5) {
        x /= 2;
        k++;
    }
    double t = 1, s = 1;
    for (int i = 1; i < 12; i++) {
        t *= -x / i;
        s += t;
    }
    while (k-- > 0) s *= s;
    return s;
}

static void scale_heap(uint64_t count, uint64_t bytes, int rate, int64_t *c, int64_t *b) {
    if (count == 0 || bytes == 0 || rate <= 1) {
        *c = (int64_t)count;
        *b = (int64_t)bytes;
        return;
    }
    double avg = (double)bytes / (double)count;
    double scale = 1 / (1 - exp_neg(avg / (double)rate));
    *c = (int64_t)((double)count * scale);
    *b = (int64_t)((double)bytes * scale);
}

static int write_heap(int fd, bool allocs_default) {
    prof_init();
    pprof p;
    static const pprof_value_type types[] = {{"alloc_objects", "count"},
                                             {"alloc_space", "bytes"},
                                             {"inuse_objects", "count"},
                                             {"inuse_space", "bytes"}};
    int rate = atomic_load_relaxed(&mprof_rate);
    int rc = pprof_begin(&p, types, 4, (pprof_value_type){"space", "bytes"}, rate);
    if (rc < 0) return rc;
    for (bucket *b = atomic_load_acq(&all_mem); b; b = b->allnext) {
        uint64_t a = atomic_load_relaxed(&b->allocs), ab = atomic_load_relaxed(&b->alloc_bytes);
        uint64_t f = atomic_load_relaxed(&b->frees), fb = atomic_load_relaxed(&b->free_bytes);
        if (f > a) f = a;
        if (fb > ab) fb = ab;
        int64_t v[4];
        scale_heap(a, ab, rate, &v[0], &v[1]);
        scale_heap(a - f, ab - fb, rate, &v[2], &v[3]);
        int skip = prof_trim_stack(b->stk, b->nstk, false);
        pprof_label l = {"bytes", NULL, (int64_t)b->size, NULL};
        pprof_add_sample(&p, b->stk + skip, b->nstk - skip, false, v, &l, 1);
    }
    rc = pprof_finish(&p, fd, prof_unix_nanos(), 0, allocs_default ? "alloc_space" : "inuse_space");
    pprof_free(&p);
    return rc;
}

GORT_API int gort_write_heap_profile(int fd) {
    return write_heap(fd, false);
}

GORT_API int gort_write_allocs_profile(int fd) {
    return write_heap(fd, true);
}

static int write_contention(int fd, int type) {
    prof_init();
    pprof p;
    static const pprof_value_type types[] = {{"contentions", "count"}, {"delay", "nanoseconds"}};
    int64_t scale = 1;
    if (type == BUCKET_MUTEX) {
        scale = atomic_load_relaxed(&mutex_rate);
        if (scale < 1) scale = 1;
    }
    int rc = pprof_begin(&p, types, 2, (pprof_value_type){"contentions", "count"}, scale);
    if (rc < 0) return rc;
    for (bucket *b = atomic_load_acq(type == BUCKET_MUTEX ? &all_mutex : &all_block); b;
         b = b->allnext) {
        int64_t v[2] = {(int64_t)((atomic_load_relaxed(&b->count_milli) + 500) / 1000) * scale,
                        (int64_t)atomic_load_relaxed(&b->ns) * scale};
        if (v[0] == 0) v[0] = scale;
        int skip = prof_trim_stack(b->stk, b->nstk, true);
        pprof_add_sample(&p, b->stk + skip, b->nstk - skip, false, v, NULL, 0);
    }
    rtlock_slot *t = type == BUCKET_MUTEX ? atomic_load_acq(&rtlock_table) : NULL;
    for (int i = 0; t && i < RTLOCK_SLOTS; i++) {
        uint64_t st = atomic_load_acq(&t[i].state);
        if (st <= 1) continue;
        int64_t v[2] = {(int64_t)atomic_load_relaxed(&t[i].count) * scale,
                        (int64_t)atomic_load_relaxed(&t[i].ns) * scale};
        int skip = prof_trim_stack(t[i].stk, t[i].n, true);
        pprof_label l = {"lock", "runtime", 0, NULL};
        pprof_add_sample(&p, t[i].stk + skip, t[i].n - skip, false, v, &l, 1);
    }
    rc = pprof_finish(&p, fd, prof_unix_nanos(), 0, NULL);
    pprof_free(&p);
    return rc;
}

GORT_API int gort_write_block_profile(int fd) {
    return write_contention(fd, BUCKET_BLOCK);
}

GORT_API int gort_write_mutex_profile(int fd) {
    return write_contention(fd, BUCKET_MUTEX);
}

/* ---- init ---- */

void prof_init(void) {
    static uint32_t state;
    if (__builtin_expect(atomic_load_acq(&state) == 2, 1)) return;
    uint32_t z = 0;
    if (!atomic_cas(&state, &z, 1)) {
        while (atomic_load_acq(&state) != 2) cpu_relax();
        return;
    }
    env_init();
    atomic_store_rel(&mprof_rate, opts.memprofilerate);
    atomic_store_rel(&mprof_free_hook, free_hook);
    atomic_store_rel(&mprof_alloc_hook, alloc_hook);
    prof_metrics_init();
    atomic_store_rel(&state, 2);
}

/* The profiler starts with the program, as Go's MemProfileRate sampling
 * does: a program that links this file samples from its first allocation. */
__attribute__((constructor)) static void prof_ctor(void) {
    prof_init();
}
