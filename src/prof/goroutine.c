/* The goroutine profile (Go's pprof.Lookup("goroutine") and
 * runtime.Stack(buf, true)): every goroutine's stack, taken with the world
 * stopped so that none moves meanwhile, then written in one of Go's three
 * forms: 0, pprof (one sample per distinct stack, its count as the value);
 * 1, the same as text ("N @ pcs" and a "#" line per frame); 2, the dump
 * (traceback.c's format: "goroutine N [wait reason, M minutes]:", frames,
 * "created by").
 *
 * While the world is stopped, the states and stacks are copied into memory
 * allocated as needed (gort_malloc takes runtime locks only, which a
 * stopped thread never holds: sched/stw.h); symbolization and output wait
 * until the world runs again. A goroutine running on a thread that was
 * stopped in the middle of C code is walked from the registers the stop
 * published; the caller's own stack is walked from here. */
#define _GNU_SOURCE
#include "prof/prof.h"

#include "base/atomic.h"
#include "base/nanotime.h"
#include "base/print.h"
#include "base/symtab.h"
#include "gort/malloc.h"
#include "gort/prof.h"
#include "sched/proc.h"
#include "sched/stw.h"
#include "sched/traceback.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct grec {
    int64_t goid, parent;
    uint32_t status;
    uint8_t waitreason;
    bool locked, leaf, unavailable;
    int64_t waited_ns; /* how long it has been parked, when known, else -1 */
    uintptr_t gopc;
    int n;
    uintptr_t *pcs;
} grec;

/* A chunked arena for the stacks (allocated during the stop). */
typedef struct arena {
    struct chunk {
        struct chunk *next;
        size_t used;
        uintptr_t v[32768];
    } * head;
} arena;

static uintptr_t *arena_take(arena *a, int n) {
    if (!a->head || a->head->used + (size_t)n > 32768) {
        struct chunk *c = gort_malloc(sizeof *c);
        if (!c) return NULL;
        c->next = a->head;
        c->used = 0;
        a->head = c;
    }
    uintptr_t *p = a->head->v + a->head->used;
    a->head->used += (size_t)n;
    return p;
}

static void arena_free(arena *a) {
    while (a->head) {
        struct chunk *c = a->head;
        a->head = c->next;
        gort_free(c);
    }
}

static __attribute__((noinline)) int own_stack(uintptr_t *pcs, int max) {
    return prof_callers(pcs, max);
}

/* Copies every live goroutine's state and stack; returns how many, or a
 * negative errno. *out is gort_malloc'd. */
static int snapshot(grec **out, arena *a) {
    for (int attempt = 0; attempt < 4; attempt++) {
        size_t cap = 64;
        for (g *gp = atomic_load_acq(&allgs); gp; gp = gp->alllink) cap++;
        cap += cap / 4;
        grec *v = gort_calloc(cap, sizeof *v);
        if (!v) return -ENOMEM;
        m *mp = tls_m;
        g *self = mp ? mp->curg : NULL;
        int64_t now = nanotime();
        stop_the_world("goroutine profile");
        size_t n = 0;
        bool full = false;
        for (g *gp = atomic_load_acq(&allgs); gp; gp = gp->alllink) {
            uint32_t s = atomic_load_relaxed(&gp->status);
            if (s == G_DEAD || s == G_IDLE) continue;
            if (n == cap) {
                full = true;
                break;
            }
            grec *r = &v[n++];
            r->goid = gp->goid;
            r->parent = gp->parentgoid;
            r->status = s == G_WAITING_SHRINK ? G_WAITING : s;
            r->waitreason = gp->waitreason;
            r->locked = gp->lockedm != NULL;
            r->gopc = gp->gopc;
            r->waited_ns = -1;
            if ((s == G_WAITING || s == G_WAITING_SHRINK) &&
                gp->shrinkseen == atomic_load_relaxed(&gp->parkseq) + 1 && gp->waitsince > 0)
                r->waited_ns = now - gp->waitsince;
            uintptr_t tmp[TB_MAX_FRAMES];
            int k;
            if (gp == self) {
                k = own_stack(tmp, TB_MAX_FRAMES);
            } else {
                k = sched_g_stack(gp, tmp, TB_MAX_FRAMES, &r->leaf);
                if (k == 0) r->unavailable = true;
            }
            r->pcs = k ? arena_take(a, k) : NULL;
            if (r->pcs) {
                memcpy(r->pcs, tmp, (size_t)k * sizeof *tmp);
                r->n = k;
            }
        }
        start_the_world();
        if (!full) {
            *out = v;
            return (int)n;
        }
        gort_free(v);
        arena_free(a);
    }
    return -EAGAIN;
}

/* The frames to show of r: the scheduler's own on top and the goroutine
 * entry at the bottom go (traceback.h), and for the caller the profiler's. */
static void visible(const grec *r, bool self, int *start, int *n) {
    int s = 0, k = r->n;
    if (self) {
        s = prof_trim_stack(r->pcs, k, true);
    } else if (!r->leaf) {
        s = tb_trim(r->pcs, k);
    }
    if (k > s + 1) k = s + tb_trim_bottom(r->pcs + s, k - s);
    *start = s;
    *n = k - s;
}

static const char *status_name(const grec *r) {
    switch (r->status) {
    case G_RUNNABLE:
        return "runnable";
    case G_RUNNING:
        return "running";
    case G_SYSCALL:
        return "syscall";
    case G_WAITING:
        return r->waitreason && r->waitreason < WAIT_REASON_COUNT
                   ? wait_reason_strings[r->waitreason]
                   : "waiting";
    default:
        return "idle";
    }
}

static void pbuf_sink(void *arg, const char *p, size_t n) {
    pbuf_bytes(arg, p, n);
}

/* ---- aggregation by stack (forms 0 and 1) ---- */

typedef struct agg {
    const uintptr_t *pcs;
    int n;
    bool leaf;
    int64_t count;
} agg;

static int agg_cmp_count(const void *a, const void *b) {
    const agg *x = a, *y = b;
    return (x->count < y->count) - (x->count > y->count);
}

static int aggregate(grec *v, int n, int64_t self_goid, agg **out) {
    agg *a = gort_calloc((size_t)n + 1, sizeof *a);
    if (!a) return -ENOMEM;
    int na = 0;
    /* Quadratic only in the number of distinct stacks, found through a
     * small hash of the first frames. */
    size_t hcap = 1;
    while (hcap < (size_t)n * 2) hcap <<= 1;
    int *h = gort_malloc(hcap * sizeof *h);
    if (!h) {
        gort_free(a);
        return -ENOMEM;
    }
    for (size_t i = 0; i < hcap; i++) h[i] = -1;
    for (int i = 0; i < n; i++) {
        int s, k;
        visible(&v[i], v[i].goid == self_goid, &s, &k);
        const uintptr_t *pcs = v[i].pcs ? v[i].pcs + s : NULL;
        uint64_t hh = 0xcbf29ce484222325ULL;
        for (int j = 0; j < k; j++) hh = (hh ^ pcs[j]) * 0x100000001b3ULL;
        size_t slot = hh & (hcap - 1);
        for (;;) {
            int e = h[slot];
            if (e < 0) {
                h[slot] = na;
                a[na++] = (agg){pcs, k, v[i].leaf && s == 0, 1};
                break;
            }
            if (a[e].n == k && (k == 0 || memcmp(a[e].pcs, pcs, (size_t)k * sizeof *pcs) == 0)) {
                a[e].count++;
                break;
            }
            slot = (slot + 1) & (hcap - 1);
        }
    }
    gort_free(h);
    *out = a;
    return na;
}

static void frame_line(pbuf *b, uintptr_t pc, bool is_pc) {
    uintptr_t at = is_pc ? pc : pc - 1;
    symtab_sym s;
    char path[512] = "?";
    int line = 0;
    const char *fn = "?";
    uintptr_t off = 0;
    if (symtab_lookup(at, &s)) {
        if (s.func) {
            fn = s.func;
            off = at - s.start;
        }
        if (symtab_path(&s, path, sizeof path))
            line = s.line;
        else if (s.object)
            snprint(path, sizeof path, "%s", s.object);
    }
    pbuf_printf(b, "#\t0x%lx\t%s+0x%lx\t%s:%d\n", (unsigned long)at, fn, (unsigned long)off, path,
                line);
}

GORT_API int gort_write_goroutine_profile(int fd, int debug) {
    prof_init();
    if (fd < 0) return -EBADF;
    if (debug < 0) return -EINVAL;
    arena ar = {0};
    grec *v = NULL;
    int n = snapshot(&v, &ar);
    if (n < 0) return n;
    m *mp = tls_m;
    int64_t self_goid = mp && mp->curg ? mp->curg->goid : -1;
    int rc = 0;
    if (debug >= 2) {
        pbuf b = {0};
        tb_writer w;
        w.write = pbuf_sink;
        w.arg = &b;
        w.n = 0;
        for (int i = 0; i < n; i++) {
            grec *r = &v[i];
            tb_printf(&w, "%sgoroutine %lld [%s", i ? "\n" : "", (long long)r->goid,
                      status_name(r));
            if (r->waited_ns >= (int64_t)60 * 1000000000)
                tb_printf(&w, ", %lld minutes",
                          (long long)(r->waited_ns / ((int64_t)60 * 1000000000)));
            tb_printf(&w, "%s]:\n", r->locked ? ", locked to thread" : "");
            if (r->unavailable) {
                tb_printf(&w, "\tgoroutine running on other thread; stack unavailable\n");
            } else {
                int s, k;
                visible(r, r->goid == self_goid, &s, &k);
                tb_print_pcs(&w, r->pcs + s, k, r->leaf && s == 0);
            }
            tb_print_creator(&w, r->gopc, r->parent);
        }
        tb_flush(&w);
        rc = b.oom ? -ENOMEM : pbuf_write_fd(&b, fd, false);
        pbuf_free(&b);
    } else {
        agg *a = NULL;
        int na = aggregate(v, n, self_goid, &a);
        if (na < 0) {
            rc = na;
        } else if (debug == 1) {
            qsort(a, (size_t)na, sizeof *a, agg_cmp_count);
            pbuf b = {0};
            pbuf_printf(&b, "goroutine profile: total %d\n", n);
            for (int i = 0; i < na; i++) {
                pbuf_printf(&b, "%lld @", (long long)a[i].count);
                for (int j = 0; j < a[i].n; j++)
                    pbuf_printf(&b, " 0x%lx", (unsigned long)(a[i].pcs[j] + (j == 0 && a[i].leaf)));
                pbuf_printf(&b, "\n");
                for (int j = 0; j < a[i].n; j++) frame_line(&b, a[i].pcs[j], j == 0 && a[i].leaf);
                pbuf_printf(&b, "\n");
            }
            rc = pbuf_write_fd(&b, fd, false);
            pbuf_free(&b);
        } else {
            pprof p;
            static const pprof_value_type types[] = {{"goroutine", "count"}};
            rc = pprof_begin(&p, types, 1, types[0], 1);
            for (int i = 0; rc == 0 && i < na; i++)
                pprof_add_sample(&p, a[i].pcs, a[i].n, a[i].leaf, &a[i].count, NULL, 0);
            if (rc == 0) rc = pprof_finish(&p, fd, prof_unix_nanos(), 0, NULL);
            pprof_free(&p);
        }
        gort_free(a);
    }
    gort_free(v);
    arena_free(&ar);
    return rc;
}
