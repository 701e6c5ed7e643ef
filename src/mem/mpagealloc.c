/* The page allocator. See mpagealloc.h for the contract.
 *
 * Free memory is a set of maximal runs of free pages, each described by a
 * small record (struct run, from a fixalloc). Runs are indexed three ways:
 *
 * - By size, for allocation. Runs of 1..BIN_MAX pages sit in exact-size bins,
 *   larger ones in one "big" tree keyed by (npages, base). A bitmap of
 *   non-empty bins finds the smallest bin that fits in a couple of word
 *   operations. Each bin is itself a tree keyed by base, so that the policy is
 *   exactly: best fit, then lowest address, then take the lowest pages of the
 *   run. (An address-ordered list would make insertion linear; a LIFO list
 *   would break the lowest-address rule.) The trees are treaps with parent
 *   pointers, so removing a known record needs no search.
 * - By endpoint, for coalescing. Each arena carries a pa_arena record (hung
 *   on heap_arena.pa) whose ends[] maps the first and the last page of every
 *   free run to its record; every other entry is NULL. Freeing looks at the
 *   page just below and just above the freed range: O(1) to find both
 *   neighbours, across arena boundaries too when arenas are contiguous.
 * - By address, for the scavenger, which wants the run holding the highest
 *   dirty free page. A run holding dirty pages is marked by one bit at its
 *   last page in its arena's dlast[] bitmap (with a one-word-per-64-words
 *   summary), and arenas with marks sit in a small tree keyed by address. The
 *   highest mark of the highest arena is the run wanted: O(log arenas) to
 *   find, and O(1) to maintain on every alloc and free. (A tree of the dirty
 *   runs themselves, tried first, cost a second tree insertion per free: a
 *   third of the allocator's time.) An arena whose marks all go stays in the
 *   tree until the scavenger next looks, so that runs coming and going at the
 *   end of one arena do not churn the tree.
 *
 * Dirty and released pages. Each pa_arena has a bitmap, backed[], one bit per
 * page: 0 means free and released to the OS, or fresh from mmap (never
 * touched: both read as zero and cost no RSS); 1 means the page may be backed
 * by memory: in use, or free and dirty, or being scavenged. Zero is "released"
 * so that a fresh arena's metadata needs no initialisation. A run counts its
 * released pages in nreleased. Allocating n pages counts and sets the bits of
 * those n pages only, so the cost is proportional to the allocation, never to
 * the run it is carved from; the remainder's count follows by subtraction.
 * Freeing costs nothing in the bitmap: pages in use already have bit 1.
 * pa_arena.ndirty counts the free dirty pages of the arena; arenas that have
 * some sit in the "hot" tree, which lets the scavenger jump over clean arenas
 * inside a long run (removal from it is lazy, as from the dirty tree).
 *
 * Growth. When no run fits, the heap grows by ceil(n / 8192) arenas (at least
 * one); the new pages join the free set as released, coalescing with the free
 * run below when the new arenas are contiguous with the old ones, which
 * arena.c arranges. Address space is reserved before metadata is allocated, so
 * that a request too large for the address space fails with no side effect.
 *
 * Scavenging. Under the lock, the scavenger takes the highest dirty run,
 * finds its highest dirty pages (arena by arena, skipping clean arenas),
 * collects up to SCAV_RANGES dirty ranges within one arena, and lifts the
 * chunk that spans them out of the free set: it belongs to no run while the
 * lock is dropped for the madvise calls, so no one can allocate it, and
 * free_pages keeps counting it. Then, locked again, it marks the pages
 * released and puts the chunk back, coalescing as a free does.
 *
 * Failure. Metadata comes from persistent_alloc/fixalloc only, never malloc
 * (this code is under malloc). Every record an operation may need is secured
 * before the operation changes anything: allocation and scavenging keep
 * SPARE_RUNS run records in reserve (failing cleanly if they cannot). Arenas
 * whose pa_arena array the OS refused stay pending (counted as mapped, free
 * and released: that is what they are) and are attached first by the next
 * growth. pagealloc_free needs at most one record and finds it in the reserve;
 * only when the reserve is empty and the OS refuses memory does it throw.
 *
 * Invariants (checked by pagealloc_verify):
 * - Runs do not overlap and are maximal: no free page, other than one being
 *   scavenged, is adjacent to a run without being in it.
 * - ends[] is non-NULL exactly at the first and last page of each run.
 * - A run is marked in dlast[] (at its last page) iff nreleased < npages;
 *   an arena with a mark is in the dirty tree.
 * - nreleased is the number of 0 bits in the run; bits outside runs are 1.
 * - stats.free_pages = pages in runs + pages being scavenged + pending arenas;
 *   stats.released_pages = sum of nreleased over runs + pending arenas.
 * All of it is protected by pagealloc_lock. */
#include "mem/mpagealloc.h"
#include "base/atomic.h"
#include "base/fatal.h"
#include "mem/arena.h"
#include "mem/fixalloc.h"
#include "base/os.h"

#include <stddef.h>
#include <string.h>

#define BIN_MAX      128 /* runs up to this many pages live in exact-size bins */
#define BIN_WORDS    (BIN_MAX / 64)
#define SPARE_RUNS   4  /* run records kept in reserve: a free needs <= 1, a scavenge <= 2 */
#define SCAV_RANGES  32 /* dirty ranges released per scavenger round trip */
#define PAGE_MASK_A  ((uintptr_t)PAGES_PER_ARENA - 1)
#define BITMAP_WORDS (PAGES_PER_ARENA / 64)

#define container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

/* A treap node: a binary search tree on key, a min-heap on prio. */
struct tnode {
    struct tnode *l, *r, *p;
    uint64_t key;
    uint32_t prio;
    uint32_t aux; /* the owner's: fills what would be padding */
};

/* One cache line: a tree descent touches one line per node. */
struct run {
    struct tnode size; /* in bins[npages] (key: base) or in the big tree (key: BIG_KEY) */
    uintptr_t base;    /* first page number (address >> PAGE_SHIFT) */
    uintptr_t npages;
    uintptr_t nreleased; /* pages of this run released to the OS */
};
/* A run's dirty flag: marked in dlast[] at its last page; kept equal to
 * nreleased < npages. */
#define run_dirty(r) ((r)->size.aux)
_Static_assert(sizeof(struct run) == 64, "struct run should fill one cache line");

/* The big tree's key: size, then address. Page numbers take 35 bits; sizes
 * saturate at 2^29 - 1 pages (4 TiB), which only merges in the order runs far
 * larger than any request (PAGEALLOC_MAX_PAGES): all fit, the lowest wins. */
#define BASE_BITS 35
#define SIZE_SAT  (((uint64_t)1 << (64 - BASE_BITS)) - 1)
#define BIG_KEY(npages, base)                                                                      \
    (((uint64_t)(npages) < SIZE_SAT ? (uint64_t)(npages) : SIZE_SAT) << BASE_BITS | (base))
_Static_assert(HEAP_ADDR_BITS - PAGE_SHIFT == BASE_BITS, "page numbers fit the key");

/* Per-arena metadata, all zero for a fresh arena: nothing is written when an
 * arena is attached, so a large reservation costs no RSS here. */
struct pa_arena {
    struct tnode node;                 /* in pa.dirty (key: first page) while in_tree */
    struct tnode hot;                  /* in pa.hot (key: first page) while in_hot */
    bool in_tree;                      /* dlast non-empty, or was (removal is lazy) */
    bool in_hot;                       /* ndirty > 0, or was (removal is lazy) */
    uint32_t ndirty;                   /* free dirty pages in this arena */
    uint32_t vdirty, vrel;             /* pagealloc_verify's scratch counters */
    struct pa_arena *next_block;       /* in block[0] only: the previous block attached */
    size_t nblock;                     /* in block[0] only: arenas in this block */
    uint64_t dsum[BITMAP_WORDS / 64];  /* bit w: dlast[w] != 0 */
    uint64_t dlast[BITMAP_WORDS];      /* 1 at the last page of each run holding dirty pages */
    uint64_t backed[BITMAP_WORDS];     /* 0: free and released (or fresh); see the top comment */
    struct run *ends[PAGES_PER_ARENA]; /* run whose first or last page this is, else NULL */
};

lock_t pagealloc_lock = LOCK_INIT;

static GORT_RTDATA struct {
    bool inited;
    struct tnode *bins[BIN_MAX + 1]; /* bins[n]: runs of exactly n pages */
    uint64_t binmask[BIN_WORDS];     /* bit n-1 set iff bins[n] is non-empty */
    struct tnode *big;               /* runs of more than BIN_MAX pages */
    struct tnode *dirty;             /* arenas where runs holding dirty pages end */
    struct tnode *hot;               /* arenas holding free dirty pages */
    fixalloc runs;                   /* struct run records */
    struct run *spare;               /* reserve of run records, linked through size.l */
    size_t nspare;
    struct pa_arena *blocks;   /* pa_arena arrays, one per growth, newest first */
    uintptr_t pending_base;    /* arenas reserved whose metadata the OS refused */
    size_t pending_n;          /* (at most one such group: growth retries it first) */
    uint32_t seed;             /* treap priorities */
    uintptr_t inflight;        /* pages lifted out by scavengers */
    struct pagealloc_stats st; /* meta_bytes is updated atomically */
} pa;

/* GORT_DEBUG >= 2 checks every invariant after every operation. */
static void verify_locked(void);
#define VERIFY_EXPENSIVE()                                                                         \
    do {                                                                                           \
        if (GORT_DEBUG >= 2) verify_locked();                                                      \
    } while (0)

/* ---- treaps ---- */

static uint32_t rnd(void) {
    uint32_t x = pa.seed; /* xorshift32: deterministic, so tests are */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return pa.seed = x;
}

/* Rotates x above its parent. */
static void rotate_up(struct tnode **root, struct tnode *x) {
    struct tnode *p = x->p, *g = p->p;
    if (p->l == x) {
        p->l = x->r;
        if (x->r) x->r->p = p;
        x->r = p;
    } else {
        p->r = x->l;
        if (x->l) x->l->p = p;
        x->l = p;
    }
    p->p = x;
    x->p = g;
    if (!g)
        *root = x;
    else if (g->l == p)
        g->l = x;
    else
        g->r = x;
}

static void tinsert(struct tnode **root, struct tnode *n) {
    struct tnode *p = NULL, **link = root;
    while (*link) {
        p = *link;
        link = n->key < p->key ? &p->l : &p->r;
    }
    n->l = n->r = NULL;
    n->p = p;
    n->prio = rnd();
    *link = n;
    while (n->p && n->p->prio > n->prio) rotate_up(root, n);
}

static void tremove(struct tnode **root, struct tnode *n) {
    while (n->l && n->r) rotate_up(root, n->l->prio < n->r->prio ? n->l : n->r);
    struct tnode *c = n->l ? n->l : n->r, *p = n->p;
    if (c) c->p = p;
    if (!p)
        *root = c;
    else if (p->l == n)
        p->l = c;
    else
        p->r = c;
}

static struct tnode *tmin(struct tnode *t) {
    if (t)
        while (t->l) t = t->l;
    return t;
}

static struct tnode *tmax(struct tnode *t) {
    if (t)
        while (t->r) t = t->r;
    return t;
}

/* In-order successor. */
static struct tnode *tnext(struct tnode *n) {
    if (n->r) return tmin(n->r);
    while (n->p && n->p->r == n) n = n->p;
    return n->p;
}

/* The largest node <= key, or NULL. */
static struct tnode *tfloor(struct tnode *t, uint64_t key) {
    struct tnode *best = NULL;
    while (t) {
        if (t->key > key) {
            t = t->l;
        } else {
            best = t;
            t = t->r;
        }
    }
    return best;
}

/* The smallest node >= key, or NULL. */
static struct tnode *tlower_bound(struct tnode *t, uint64_t key) {
    struct tnode *best = NULL;
    while (t) {
        if (t->key < key) {
            t = t->r;
        } else {
            best = t;
            t = t->l;
        }
    }
    return best;
}

/* ---- the size index ---- */

static void size_insert(struct run *r) {
    if (r->npages <= BIN_MAX) {
        r->size.key = r->base;
        tinsert(&pa.bins[r->npages], &r->size);
        pa.binmask[(r->npages - 1) / 64] |= (uint64_t)1 << ((r->npages - 1) % 64);
    } else {
        r->size.key = BIG_KEY(r->npages, r->base);
        tinsert(&pa.big, &r->size);
    }
}

static void size_remove(struct run *r) {
    if (r->npages <= BIN_MAX) {
        tremove(&pa.bins[r->npages], &r->size);
        if (!pa.bins[r->npages])
            pa.binmask[(r->npages - 1) / 64] &= ~((uint64_t)1 << ((r->npages - 1) % 64));
    } else {
        tremove(&pa.big, &r->size);
    }
}

/* The first non-empty bin of at least n pages (<= BIN_MAX), or 0. */
static size_t bin_from(uintptr_t n) {
    size_t w = (n - 1) / 64;
    uint64_t m = pa.binmask[w] & (~(uint64_t)0 << ((n - 1) % 64));
    while (!m && ++w < BIN_WORDS) m = pa.binmask[w];
    return m ? w * 64 + (size_t)__builtin_ctzll(m) + 1 : 0;
}

/* Best fit, then lowest address. */
static struct run *best_fit(uintptr_t n) {
    struct tnode *t;
    if (n <= BIN_MAX) {
        size_t b = bin_from(n);
        if (b) return container_of(tmin(pa.bins[b]), struct run, size);
        t = tmin(pa.big);
    } else {
        t = tlower_bound(pa.big, BIG_KEY(n, 0));
    }
    return t ? container_of(t, struct run, size) : NULL;
}

/* The run after r in best-fit order (its bin, the larger bins, the big
 * tree), or NULL. */
static struct run *fit_next(struct run *r) {
    struct tnode *t = tnext(&r->size);
    if (!t && r->npages < BIN_MAX) {
        size_t b = bin_from(r->npages + 1);
        t = b ? tmin(pa.bins[b]) : tmin(pa.big);
    } else if (!t && r->npages == BIN_MAX) {
        t = tmin(pa.big);
    }
    return t ? container_of(t, struct run, size) : NULL;
}

/* Runs looked at past a best fit whose pages were released. */
#define FIT_LOOK 16

/* The best fit, unless its pages were released to the OS and one of the
 * next FIT_LOOK runs that fit has enough dirty (never released) pages:
 * that one. Taking released pages grows the process while free dirty
 * pages sit unused; under a memory limit the growth is then given back at
 * once (scavenge_alloc_assist), and the next allocation takes those
 * released pages again: a page fault and an madvise per span while tens of
 * MiB of dirty pages were free (memlimit, 400 MiB limit: 44,683 8 KiB
 * madvise calls and 3 times Go's page faults). Go's first fit by address
 * avoids it without trying, as its scavenger releases the highest
 * addresses. */
static struct run *find_fit(uintptr_t n) {
    struct run *best = best_fit(n);
    if (!best || best->nreleased == 0 || pa.st.free_pages - pa.st.released_pages < n) return best;
    struct run *r = best;
    for (int i = 0; i < FIT_LOOK && (r = fit_next(r)); i++)
        if (r->npages - r->nreleased >= n) return r;
    return best;
}

/* ---- per-arena metadata ---- */

static inline struct pa_arena *pa_of(uintptr_t pn) {
    struct heap_arena *ha = arena_of(pn << PAGE_SHIFT);
    return ha ? (struct pa_arena *)ha->pa : NULL;
}

static inline struct run **endp(uintptr_t pn) {
    return &pa_of(pn)->ends[pn & PAGE_MASK_A];
}

static void set_ends(struct run *r, struct run *v) {
    *endp(r->base) = v;
    *endp(r->base + r->npages - 1) = v;
}

/* The mask of bits [s, e) of word w (s, e bit indexes of the whole bitmap). */
static inline uint64_t word_mask(size_t w, size_t s, size_t e) {
    size_t lo = s > w * 64 ? s - w * 64 : 0;
    size_t hi = e < w * 64 + 64 ? e - w * 64 : 64;
    uint64_t m = hi == 64 ? ~(uint64_t)0 : ((uint64_t)1 << hi) - 1;
    return m & (~(uint64_t)0 << lo);
}

/* Bits [s, e) of one arena's bitmap: counts the clear ones and sets them. */
static size_t bits_take(uint64_t *b, size_t s, size_t e) {
    size_t c = 0;
    for (size_t w = s / 64; w * 64 < e; w++) {
        uint64_t m = word_mask(w, s, e);
        c += (size_t)__builtin_popcountll(~b[w] & m);
        b[w] |= m;
    }
    return c;
}

static size_t bits_count(const uint64_t *b, size_t s, size_t e) {
    size_t c = 0;
    for (size_t w = s / 64; w * 64 < e; w++)
        c += (size_t)__builtin_popcountll(b[w] & word_mask(w, s, e));
    return c;
}

static void bits_clear(uint64_t *b, size_t s, size_t e) {
    for (size_t w = s / 64; w * 64 < e; w++) b[w] &= ~word_mask(w, s, e);
}

/* The highest index in [s, e) whose bit equals one, or -1. */
static long bits_highest(const uint64_t *b, size_t s, size_t e, bool one) {
    while (e > s) {
        size_t w = (e - 1) / 64;
        uint64_t x = (one ? b[w] : ~b[w]) & word_mask(w, s, e);
        if (x) return (long)(w * 64 + 63 - (size_t)__builtin_clzll(x));
        e = w * 64;
    }
    return -1;
}

/* ---- the dirty index ---- */

/* Marks r as holding dirty pages, by a bit at its last page. Call it again
 * after anything that moves the last page (dirty_unmark first). */
static void dirty_mark(struct run *r) {
    uintptr_t last = r->base + r->npages - 1;
    struct pa_arena *a = pa_of(last);
    size_t i = last & PAGE_MASK_A;
    a->dlast[i / 64] |= (uint64_t)1 << (i % 64);
    a->dsum[i / 4096] |= (uint64_t)1 << (i / 64 % 64);
    if (!a->in_tree) {
        a->node.key = last & ~PAGE_MASK_A;
        tinsert(&pa.dirty, &a->node);
        a->in_tree = true;
    }
    run_dirty(r) = true;
}

/* An arena whose last mark goes stays in pa.dirty until the scavenger finds it
 * empty: runs come and go at the same arena's end, and the tree must not churn. */
static void dirty_unmark(struct run *r) {
    uintptr_t last = r->base + r->npages - 1;
    struct pa_arena *a = pa_of(last);
    size_t i = last & PAGE_MASK_A;
    if (!(a->dlast[i / 64] &= ~((uint64_t)1 << (i % 64))))
        a->dsum[i / 4096] &= ~((uint64_t)1 << (i / 64 % 64));
    run_dirty(r) = false;
}

static void dirty_update(struct run *r) {
    bool want = r->nreleased < r->npages;
    if (want && !run_dirty(r))
        dirty_mark(r);
    else if (!want && run_dirty(r))
        dirty_unmark(r);
}

/* The run holding the highest-addressed dirty page, or NULL: the highest
 * marked run of the highest marked arena (a run is marked where it ends, and
 * runs do not overlap). */
static struct run *highest_dirty(void) {
    for (;;) {
        struct tnode *t = tmax(pa.dirty);
        if (!t) return NULL;
        struct pa_arena *a = container_of(t, struct pa_arena, node);
        for (long w = BITMAP_WORDS / 64 - 1; w >= 0; w--) {
            if (!a->dsum[w]) continue;
            size_t dw = (size_t)w * 64 + 63 - (size_t)__builtin_clzll(a->dsum[w]);
            size_t i = dw * 64 + 63 - (size_t)__builtin_clzll(a->dlast[dw]);
            return a->ends[i];
        }
        tremove(&pa.dirty, t); /* empty: drop it now */
        a->in_tree = false;
    }
}

/* Pages [pn, pn+n) go into use: returns how many were released and marks
 * them backed. Cost proportional to n, never to the run around them. */
static uintptr_t take_pages(uintptr_t pn, uintptr_t n) {
    uintptr_t rel = 0;
    while (n) {
        struct pa_arena *a = pa_of(pn);
        size_t i = pn & PAGE_MASK_A;
        size_t m = PAGES_PER_ARENA - i < n ? PAGES_PER_ARENA - i : n;
        size_t c = bits_take(a->backed, i, i + m);
        a->ndirty -= (uint32_t)(m - c);
        rel += c;
        pn += m;
        n -= m;
    }
    return rel;
}

/* ---- run records ---- */

static bool reserve_runs(void) {
    while (pa.nspare < SPARE_RUNS) {
        struct run *r = fixalloc_alloc(&pa.runs);
        if (!r) return false;
        r->size.l = (struct tnode *)pa.spare;
        pa.spare = r;
        pa.nspare++;
    }
    return true;
}

static struct run *run_get(void) {
    struct run *r = pa.spare;
    if (r) {
        pa.spare = (struct run *)r->size.l;
        pa.nspare--;
        memset(r, 0, sizeof *r);
        return r;
    }
    r = fixalloc_alloc(&pa.runs);
    if (!r) throw("out of memory allocating page allocator metadata");
    return r;
}

static void run_put(struct run *r) {
    fixalloc_free(&pa.runs, r);
}

/* ---- the free set ---- */

/* Puts [pn, pn+n) into the free set, nrel of its pages released (the bitmap
 * already says which), coalescing with the free neighbours. rec, if not NULL,
 * is a record the caller set aside for the run, used or given back. */
static void insert_free(uintptr_t pn, uintptr_t n, uintptr_t nrel, struct run *rec) {
    struct run *left = NULL, *right = NULL;
    struct pa_arena *a = pa_of(pn - 1);
    if (a && (left = a->ends[(pn - 1) & PAGE_MASK_A]) && left->base + left->npages != pn)
        throw("pagealloc_free: pages already free");
    a = pa_of(pn + n);
    if (a && (right = a->ends[(pn + n) & PAGE_MASK_A]) && right->base != pn + n)
        throw("pagealloc_free: pages already free");

    struct run *r;
    if (left) {
        size_remove(left);
        set_ends(left, NULL);
        if (run_dirty(left)) dirty_unmark(left); /* its last page moves */
        r = left;
        r->npages += n;
        r->nreleased += nrel;
    } else {
        r = rec ? rec : run_get();
        rec = NULL;
        r->base = pn;
        r->npages = n;
        r->nreleased = nrel;
    }
    if (right) {
        size_remove(right);
        set_ends(right, NULL);
        if (run_dirty(right)) dirty_unmark(right);
        r->npages += right->npages;
        r->nreleased += right->nreleased;
        run_put(right);
    }
    if (rec) run_put(rec);
    set_ends(r, r);
    size_insert(r);
    dirty_update(r);
}

static bool init_locked(void) {
    if (pa.inited) return true;
    if (arena_init() < 0) return false;
    fixalloc_init(&pa.runs, sizeof(struct run), &pa.st.meta_bytes);
    pa.seed = 2463534242u;
    pa.inited = true;
    return true;
}

/* Gives n reserved arenas at base their metadata and their pages to the free
 * set. One zeroed array for all n: nothing is touched per arena but the
 * heap_arena's pa pointer. */
static bool attach(uintptr_t base, size_t n) {
    struct pa_arena *b = persistent_alloc(n * sizeof *b, 64, &pa.st.meta_bytes);
    if (!b) return false;
    b->next_block = pa.blocks;
    b->nblock = n;
    pa.blocks = b;
    for (size_t i = 0; i < n; i++) arena_of(base + i * ARENA_BYTES)->pa = &b[i];
    insert_free(base >> PAGE_SHIFT, n * PAGES_PER_ARENA, n * PAGES_PER_ARENA, NULL);
    return true;
}

/* Grows the heap by enough whole arenas for n pages. The address space comes
 * first (a request too large for it fails without side effects), then the
 * metadata; if the OS refuses that, the arenas wait, counted as mapped free
 * released pages, and the next growth attaches them before anything else. */
static bool grow(uintptr_t n) {
    if (pa.pending_n) {
        if (!attach(pa.pending_base, pa.pending_n)) return false;
        pa.pending_n = 0;
        if (find_fit(n)) return true;
    }
    size_t k = (n + PAGES_PER_ARENA - 1) / PAGES_PER_ARENA;
    uintptr_t base = arena_grow(k);
    if (!base) return false;
    uintptr_t np = k * PAGES_PER_ARENA;
    pa.st.mapped_pages += np;
    pa.st.free_pages += np;
    pa.st.released_pages += np;
    if (!attach(base, k)) {
        pa.pending_base = base;
        pa.pending_n = k;
        return false;
    }
    return true;
}

uintptr_t pagealloc_alloc(size_t npages, size_t *released, bool *needzero) {
    if (npages == 0) throw("pagealloc_alloc: zero pages");
    if (npages > PAGEALLOC_MAX_PAGES) return 0;
    lock(&pagealloc_lock);
    struct run *r = NULL;
    if (!init_locked() || !reserve_runs()) goto fail;
    r = find_fit(npages);
    if (!r) {
        if (!grow(npages)) goto fail;
        r = find_fit(npages);
    }
    uintptr_t pn = r->base;
    uintptr_t rel = take_pages(pn, npages);
    size_remove(r);
    set_ends(r, NULL);
    if (r->npages == npages) {
        if (run_dirty(r)) dirty_unmark(r);
        run_put(r);
    } else {
        /* The remainder keeps the record, and its last page: its dirty mark
         * stays unless it is now all released. */
        r->base += npages;
        r->npages -= npages;
        r->nreleased -= rel;
        set_ends(r, r);
        size_insert(r);
        dirty_update(r);
    }
    pa.st.free_pages -= npages;
    pa.st.released_pages -= rel;
    if (pa.st.mapped_pages - pa.st.free_pages > pa.st.peak_inuse_pages)
        pa.st.peak_inuse_pages = pa.st.mapped_pages - pa.st.free_pages;
    VERIFY_EXPENSIVE();
    unlock(&pagealloc_lock);
    *released = rel;
    *needzero = rel < npages;
    return pn << PAGE_SHIFT;
fail:
    unlock(&pagealloc_lock);
    *released = 0;
    *needzero = false;
    return 0;
}

void pagealloc_free(uintptr_t base, size_t npages) {
    uintptr_t pn = base >> PAGE_SHIFT;
    if (npages == 0) return;
    if ((base & (PAGE_SIZE - 1)) || npages > PAGEALLOC_MAX_PAGES)
        throw("pagealloc_free: bad page range");
    lock(&pagealloc_lock);
    /* Every page must be in an arena; and neither end may already be the end
     * of a free run (a cheap double-free check; insert_free catches overlap
     * with a neighbour). */
    for (uintptr_t p = pn, left = npages; left;) {
        struct pa_arena *a = pa_of(p);
        if (!a) throw("pagealloc_free: address not in the heap");
        size_t i = p & PAGE_MASK_A;
        size_t m = PAGES_PER_ARENA - i < left ? PAGES_PER_ARENA - i : left;
        a->ndirty += (uint32_t)m;
        if (!a->in_hot) {
            a->hot.key = p & ~PAGE_MASK_A;
            tinsert(&pa.hot, &a->hot);
            a->in_hot = true;
        }
        p += m;
        left -= m;
    }
    if (*endp(pn) || *endp(pn + npages - 1)) throw("pagealloc_free: pages already free");
    insert_free(pn, npages, 0, NULL);
    pa.st.free_pages += npages;
    VERIFY_EXPENSIVE();
    unlock(&pagealloc_lock);
}

struct range {
    uintptr_t pn, n;
};

/* Under the lock: lifts out of the free set a chunk holding the highest dirty
 * pages, at most want of them, and lists its dirty ranges. Returns the number
 * of ranges (0: nothing dirty); *lo and *len describe the chunk, *nrel how
 * many of its pages were already released, *rec a record set aside for putting
 * it back (other threads may drain the reserve meanwhile). */
static int scav_take(uintptr_t want, struct range *rs, uintptr_t *lo, uintptr_t *len,
                     uintptr_t *nrel, struct run **rec) {
    struct run *r = highest_dirty();
    if (!r) return 0;
    uintptr_t top = r->base + r->npages, p = top, abase = 0;
    struct pa_arena *a = NULL;
    long h = -1;
    /* The highest dirty page of r: jump to the highest arena below p that
     * holds dirty pages, look in r's part of it, and go on below if those
     * pages were another run's. A long run is crossed in O(log arenas), not
     * arena by arena. */
    while (p > r->base) {
        struct tnode *t = tfloor(pa.hot, p - 1);
        if (!t || t->key + PAGES_PER_ARENA <= r->base) break;
        a = container_of(t, struct pa_arena, hot);
        if (!a->ndirty) { /* clean since: drop it now */
            tremove(&pa.hot, t);
            a->in_hot = false;
            continue;
        }
        abase = t->key;
        uintptr_t floor = abase > r->base ? abase : r->base;
        uintptr_t ceil = p < abase + PAGES_PER_ARENA ? p : abase + PAGES_PER_ARENA;
        if ((h = bits_highest(a->backed, floor - abase, ceil - abase, true)) >= 0) break;
        p = floor;
    }
    if (h < 0) throw("pagealloc_scavenge: dirty run without dirty pages");

    /* Collect dirty ranges downward, within this arena and this run. */
    size_t floor = (abase > r->base ? abase : r->base) - abase;
    size_t q = (size_t)h + 1, s;
    uintptr_t got = 0;
    int nr = 0;
    for (;;) {
        long o = bits_highest(a->backed, floor, q, false);
        s = o < 0 ? floor : (size_t)o + 1;
        if (q - s > want - got) s = q - (want - got);
        rs[nr].pn = abase + s;
        rs[nr].n = q - s;
        got += q - s;
        nr++;
        if (got == want || nr == SCAV_RANGES || s == floor) break;
        long d = bits_highest(a->backed, floor, s, true);
        if (d < 0) break;
        q = (size_t)d + 1;
    }
    uintptr_t clo = abase + s, chi = abase + (uintptr_t)h + 1;
    uintptr_t crel = (chi - clo) - got;
    uintptr_t ulen = top - chi;

    size_remove(r);
    set_ends(r, NULL);
    dirty_unmark(r);
    if (ulen) { /* above the chunk: all released */
        struct run *u = run_get();
        u->base = chi;
        u->npages = u->nreleased = ulen;
        set_ends(u, u);
        size_insert(u);
    }
    if (clo > r->base) {
        r->npages = clo - r->base;
        r->nreleased -= ulen + crel;
        set_ends(r, r);
        size_insert(r);
        dirty_update(r);
    } else {
        run_put(r);
    }
    pa.inflight += chi - clo;
    *rec = run_get();
    *lo = clo;
    *len = chi - clo;
    *nrel = crel;
    return nr;
}

size_t pagealloc_scavenge(size_t max_pages) {
    size_t done = 0;
    struct range rs[SCAV_RANGES];
    while (done < max_pages) {
        lock(&pagealloc_lock);
        uintptr_t lo = 0, len = 0, nrel = 0;
        struct run *rec = NULL;
        int nr = 0;
        if (pa.inited && reserve_runs())
            nr = scav_take(max_pages - done, rs, &lo, &len, &nrel, &rec);
        unlock(&pagealloc_lock);
        if (nr == 0) break;

        bool ok[SCAV_RANGES], failed = false;
        for (int i = 0; i < nr; i++) {
            ok[i] = os_decommit((void *)(rs[i].pn << PAGE_SHIFT), rs[i].n << PAGE_SHIFT) == 0;
            failed |= !ok[i];
        }

        lock(&pagealloc_lock);
        uintptr_t got = 0;
        for (int i = 0; i < nr; i++) {
            if (!ok[i]) continue; /* those pages go back dirty */
            struct pa_arena *a = pa_of(rs[i].pn);
            size_t s = rs[i].pn & PAGE_MASK_A;
            bits_clear(a->backed, s, s + rs[i].n);
            a->ndirty -= (uint32_t)rs[i].n;
            got += rs[i].n;
        }
        pa.inflight -= len;
        pa.st.released_pages += got;
        insert_free(lo, len, nrel + got, rec);
        VERIFY_EXPENSIVE();
        unlock(&pagealloc_lock);
        done += got;
        if (failed) break;
    }
    return done;
}

void pagealloc_read_stats(struct pagealloc_stats *st) {
    lock(&pagealloc_lock);
    *st = pa.st;
    st->meta_bytes = atomic_load_relaxed(&pa.st.meta_bytes);
    unlock(&pagealloc_lock);
}

void pagealloc_reset_peak(struct pagealloc_stats *st) {
    lock(&pagealloc_lock);
    *st = pa.st;
    st->meta_bytes = atomic_load_relaxed(&pa.st.meta_bytes);
    pa.st.peak_inuse_pages = pa.st.mapped_pages - pa.st.free_pages;
    unlock(&pagealloc_lock);
}

void pagealloc_atfork_prepare(void) {
    lock(&pagealloc_lock);
}

void pagealloc_atfork_parent(void) {
    unlock(&pagealloc_lock);
}

void pagealloc_atfork_child(void) {
    pagealloc_lock = (lock_t)LOCK_INIT;
}

/* ---- the verifier ---- */

static void verify_run(struct run *r, uintptr_t *npages, uintptr_t *nrel, size_t *ndirty) {
    if (!r->npages) throw("pagealloc_verify: empty run");
    if (*endp(r->base) != r || *endp(r->base + r->npages - 1) != r)
        throw("pagealloc_verify: run endpoints not mapped");
    struct pa_arena *a;
    if ((a = pa_of(r->base - 1)) && a->ends[(r->base - 1) & PAGE_MASK_A])
        throw("pagealloc_verify: free run not coalesced with its lower neighbour");
    if ((a = pa_of(r->base + r->npages)) && a->ends[(r->base + r->npages) & PAGE_MASK_A])
        throw("pagealloc_verify: free run not coalesced with its upper neighbour");
    uintptr_t rel = 0;
    for (uintptr_t p = r->base, left = r->npages; left;) {
        a = pa_of(p);
        if (!a) throw("pagealloc_verify: run outside the arenas");
        size_t i = p & PAGE_MASK_A;
        size_t m = PAGES_PER_ARENA - i < left ? PAGES_PER_ARENA - i : left;
        for (size_t j = i; j < i + m; j++)
            if (a->ends[j] && p + (j - i) != r->base && p + (j - i) != r->base + r->npages - 1)
                throw("pagealloc_verify: stale endpoint inside a run");
        size_t c = m - bits_count(a->backed, i, i + m);
        a->vrel += (uint32_t)c;
        a->vdirty += (uint32_t)(m - c);
        rel += c;
        p += m;
        left -= m;
    }
    if (rel != r->nreleased) throw("pagealloc_verify: run's released count is wrong");
    if (run_dirty(r) != (rel < r->npages)) throw("pagealloc_verify: dirty mark");
    uintptr_t last = r->base + r->npages - 1;
    a = pa_of(last);
    if (run_dirty(r) != (a->dlast[(last & PAGE_MASK_A) / 64] >> (last % 64) & 1))
        throw("pagealloc_verify: dirty mark not at the run's last page");
    *npages += r->npages;
    *nrel += rel;
    *ndirty += run_dirty(r);
}

static void verify_locked(void) {
    if (!pa.inited) return;
#define FOR_EACH_ARENA(a)                                                                          \
    for (struct pa_arena *b_ = pa.blocks; b_; b_ = b_->next_block)                                 \
        for (struct pa_arena *a = b_; a < b_ + b_->nblock; a++)
    FOR_EACH_ARENA(a) a->vrel = a->vdirty = 0;
    uintptr_t npages = 0, nrel = 0;
    size_t ndirty = 0;
    for (size_t b = 1; b <= BIN_MAX; b++) {
        bool bit = pa.binmask[(b - 1) / 64] >> ((b - 1) % 64) & 1;
        if (bit != (pa.bins[b] != NULL)) throw("pagealloc_verify: bin mask");
        uintptr_t last = 0;
        for (struct tnode *t = tmin(pa.bins[b]); t; t = tnext(t)) {
            struct run *r = container_of(t, struct run, size);
            if (r->npages != b || t->key != r->base || (last && r->base <= last))
                throw("pagealloc_verify: bin order");
            last = r->base;
            verify_run(r, &npages, &nrel, &ndirty);
        }
    }
    for (struct tnode *t = tmin(pa.big), *prev = NULL; t; prev = t, t = tnext(t)) {
        struct run *r = container_of(t, struct run, size);
        if (r->npages <= BIN_MAX || t->key != BIG_KEY(r->npages, r->base) ||
            (prev && t->key <= prev->key))
            throw("pagealloc_verify: big tree order");
        verify_run(r, &npages, &nrel, &ndirty);
    }
    size_t nd = 0, ntree = 0, nin = 0;
    for (struct tnode *t = tmin(pa.dirty), *prev = NULL; t; prev = t, t = tnext(t)) {
        struct pa_arena *a = container_of(t, struct pa_arena, node);
        if ((prev && t->key <= prev->key) || !a->in_tree ||
            arena_of(t->key << PAGE_SHIFT)->pa != a || (t->key & PAGE_MASK_A))
            throw("pagealloc_verify: dirty arena tree");
        ntree++;
    }
    FOR_EACH_ARENA(a) {
        nin += a->in_tree;
        for (size_t w = 0; w < BITMAP_WORDS; w++) {
            nd += (size_t)__builtin_popcountll(a->dlast[w]);
            if ((a->dlast[w] != 0) != (a->dsum[w / 64] >> (w % 64) & 1))
                throw("pagealloc_verify: dirty summary");
            if (a->dlast[w] && !a->in_tree) throw("pagealloc_verify: dirty arena not in tree");
        }
    }
    if (nd != ndirty) throw("pagealloc_verify: dirty marks on no run");
    if (ntree != nin) throw("pagealloc_verify: dirty arena tree count");
    ntree = nin = 0;
    for (struct tnode *t = tmin(pa.hot), *prev = NULL; t; prev = t, t = tnext(t)) {
        struct pa_arena *a = container_of(t, struct pa_arena, hot);
        if ((prev && t->key <= prev->key) || !a->in_hot ||
            arena_of(t->key << PAGE_SHIFT)->pa != a || (t->key & PAGE_MASK_A))
            throw("pagealloc_verify: hot arena tree");
        ntree++;
    }
    FOR_EACH_ARENA(a) {
        nin += a->in_hot;
        if (a->ndirty && !a->in_hot) throw("pagealloc_verify: arena with dirty pages not hot");
    }
    if (ntree != nin) throw("pagealloc_verify: hot arena tree count");
    if (pa.inflight == 0) {
        uintptr_t pending = pa.pending_n * PAGES_PER_ARENA, narenas = pa.pending_n;
        if (npages + pending != pa.st.free_pages) throw("pagealloc_verify: free page count");
        if (nrel + pending != pa.st.released_pages) throw("pagealloc_verify: released page count");
        FOR_EACH_ARENA(a) {
            narenas++;
            if (a->vdirty != a->ndirty) throw("pagealloc_verify: arena dirty count");
            if (PAGES_PER_ARENA - bits_count(a->backed, 0, PAGES_PER_ARENA) != a->vrel)
                throw("pagealloc_verify: released page outside a free run");
        }
        if (narenas * PAGES_PER_ARENA != pa.st.mapped_pages)
            throw("pagealloc_verify: mapped page count");
    }
    if (pa.st.free_pages > pa.st.mapped_pages || pa.st.released_pages > pa.st.free_pages)
        throw("pagealloc_verify: stats out of order");
}

void pagealloc_verify(void) {
    lock(&pagealloc_lock);
    verify_locked();
    unlock(&pagealloc_lock);
}
