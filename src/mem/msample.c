/* Heap-profile sampling (msample.h): the exponential draws and the records
 * on spans.
 *
 * Records live in a fixalloc under msample_lock, which also guards every
 * span's record list and, for explicit spans, the small_malloc flag while
 * records come and go: an allocation's record is added (and the flag
 * cleared) before the program has the pointer, so every free of a sampled
 * object takes the slow path; a free that drops a span's last record sets
 * the flag again under the same lock, so no racing sample is lost. */
#include "mem/msample.h"

#include "base/atomic.h"
#include "base/lock.h"
#include "mem/fixalloc.h"

typedef struct mprof_rec {
    struct mprof_rec *next; /* on its span */
    uintptr_t obj;          /* the object's slot (or the pointer handed out, inside it) */
    size_t size;
    uint64_t count;
    void *bucket;
} mprof_rec;

int mprof_rate = 512 * 1024;
void *(*mprof_alloc_hook)(size_t size, uint64_t count);
void (*mprof_free_hook)(void *bucket, size_t size, uint64_t count);

static lock_t msample_lock = LOCK_INIT;
static fixalloc rec_pool;
static uint64_t rec_sys;
static bool rec_pool_ready;

/* ---- the exponential draw (Go's fastexprand), without libm ---- */

static __thread uint64_t rnd_state __attribute__((tls_model("initial-exec")));

static uint64_t rnd(void) {
    if (!rnd_state) rnd_state = (uint64_t)(uintptr_t)&rnd_state ^ 0x9e3779b97f4a7c15ULL;
    uint64_t x = rnd_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rnd_state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* ln(x) for x in (0, 1]: x = m * 2^e, m in [1, 2); ln m = 2 atanh((m-1)/(m+1)). */
static double ln01(double x) {
    union {
        double d;
        uint64_t u;
    } v = {x};
    int e = (int)((v.u >> 52) & 0x7ff) - 1023;
    v.u = (v.u & ~((uint64_t)0x7ff << 52)) | ((uint64_t)1023 << 52);
    double z = (v.d - 1) / (v.d + 1), z2 = z * z;
    double s = z * (2 + z2 * (2.0 / 3 + z2 * (2.0 / 5 + z2 * (2.0 / 7 + z2 * (2.0 / 9)))));
    return s + e * 0.69314718055994530942;
}

/* An exponential draw of mean rate bytes (at least 1). */
static int64_t draw(int rate) {
    double u = (double)((rnd() >> 11) + 1) / 9007199254740992.0; /* (0, 1] */
    double v = -ln01(u) * (double)rate;
    if (v > (double)((int64_t)1 << 40)) v = (double)((int64_t)1 << 40);
    return v < 1 ? 1 : (int64_t)v;
}

uint64_t mprof_due(mcache *c, uint64_t objects, size_t size) {
    int rate = atomic_load_relaxed(&mprof_rate);
    if (rate <= 0 || !atomic_load_relaxed(&mprof_alloc_hook)) {
        c->next_sample = (int64_t)1 << 40;
        return 0;
    }
    if (rate == 1) { /* every allocation: each object since the last visit */
        c->next_sample = 0;
        (void)size;
        return objects;
    }
    uint64_t k = 0;
    while (c->next_sample <= 0 && k < 1000000) {
        c->next_sample += draw(rate);
        k++;
    }
    if (c->next_sample <= 0) c->next_sample = draw(rate);
    /* Each point crossed samples one object (Go samples an object at most
     * once, and unbiases with 1 / (1 - e^(-size/rate)): several points in
     * one object count once, or large objects would be overcounted). */
    return k < objects ? k : objects;
}

void mprof_reset_all(void) {
    /* Racy stores into other threads' caches: the owner's own update may
     * win, which only delays its new draw. */
    for (mcache *c = mcache_all(); c; c = c->next_all) atomic_store_relaxed(&c->next_sample, 0);
}

/* ---- records ---- */

void mprof_record(mspan *s, void *p, size_t size, uint64_t count) {
    void *(*hook)(size_t, uint64_t) = atomic_load_acq(&mprof_alloc_hook);
    if (!hook) return;
    void *bucket = hook(size, count);
    if (!bucket) return;
    lock(&msample_lock);
    if (!rec_pool_ready) {
        fixalloc_init(&rec_pool, sizeof(mprof_rec), &rec_sys);
        rec_pool_ready = true;
    }
    mprof_rec *r = fixalloc_alloc(&rec_pool);
    if (r) {
        r->obj = (uintptr_t)p;
        r->size = size;
        r->count = count;
        r->bucket = bucket;
        r->next = s->profrecs;
        s->profrecs = r;
        if (s->kind == SPAN_MALLOC && s->sizeclass) s->small_malloc = 0;
    }
    unlock(&msample_lock);
    if (!r) {
        void (*fh)(void *, size_t, uint64_t) = atomic_load_acq(&mprof_free_hook);
        if (fh) fh(bucket, size, count); /* no record: count it freed at once */
    }
}

void mprof_free(mspan *s, void *p) {
    mprof_rec *found = NULL;
    lock(&msample_lock);
    for (mprof_rec **pp = &s->profrecs, *r; (r = *pp); pp = &r->next) {
        if (r->obj == (uintptr_t)p) {
            *pp = r->next;
            found = r;
            break;
        }
    }
    if (!s->profrecs && s->kind == SPAN_MALLOC && s->sizeclass && s->state == SPAN_IN_USE)
        s->small_malloc = 1;
    void *bucket = found ? found->bucket : NULL;
    size_t size = found ? found->size : 0;
    uint64_t count = found ? found->count : 0;
    if (found) fixalloc_free(&rec_pool, found);
    unlock(&msample_lock);
    void (*fh)(void *, size_t, uint64_t) = atomic_load_acq(&mprof_free_hook);
    if (bucket && fh) fh(bucket, size, count);
}

void mprof_sweep(mspan *s, uint64_t *live) {
    lock(&msample_lock);
    for (mprof_rec **pp = &s->profrecs, *r; (r = *pp);) {
        uint32_t idx = s->sizeclass ? span_obj_index(s, r->obj) : 0;
        bool alive = (live[idx >> 6] >> (idx & 63)) & 1;
        if (alive) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        void (*fh)(void *, size_t, uint64_t) = atomic_load_acq(&mprof_free_hook);
        if (fh) fh(r->bucket, r->size, r->count); /* a counter update: takes no lock */
        fixalloc_free(&rec_pool, r);
    }
    unlock(&msample_lock);
}
