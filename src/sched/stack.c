/* Goroutine stacks: pooled, lazily committed, guarded. See stack.h for the
 * contract; this comment is the design.
 *
 * Regions. Stacks of one class (a power of two from 16 KiB to 16 GiB) are
 * carved from regions: up to REGION_BYTES (256 MiB) of address space,
 * starting on a REGION_BYTES boundary, mapped read/write with MAP_NORESERVE
 * and MADV_NOHUGEPAGE, so that untouched pages cost nothing (heuristic
 * overcommit does not charge NORESERVE mappings; a THP would commit 2 MiB
 * on the first touch of a stack). A region is one mapping, whatever the
 * number of its stacks. A region is cut into slots of guard page + canary
 * page + class; a class too big for a region gets a region of its own, a
 * multiple of REGION_BYTES. A class's first region is REGION_FIRST (16 MiB)
 * and each next one twice the last, up to REGION_BYTES, so that a program
 * with few goroutines needs little address space (RLIMIT_AS: gort starts
 * within 256 MiB; docs/allocator.md). Each region has its REGION_BYTES
 * chunk(s) of the table to itself; the rest of a small region's chunk is
 * not ours (another mapping may live there: lookups check the slot index).
 * Regions are placed at REGION_HINT and upward, MAP_FIXED_NOREPLACE, one
 * chunk after another; where that fails (something lives there, ASan's
 * shadow), anywhere the kernel likes, over-reserved by REGION_BYTES and
 * trimmed to the boundary, as before.
 *
 * Lookup without locks. table[addr >> REGION_SHIFT] names the region that
 * covers addr; an entry is written once (release) after the region record is
 * complete and never changes, and a record's geometry (base, slot, nslots)
 * never changes either. So stack_is_guard is a table load, a division and a
 * byte load (the slot's guard kind): O(1) and async-signal-safe, as the
 * SIGSEGV handler needs. Why power-of-two classes rather than 64 KiB steps:
 * the waste is virtual only (untouched pages are free), there are 21 classes
 * instead of thousands, so regions and cached stacks are shared by more
 * goroutines; lookups divide by the slot size either way.
 *
 * Guards are installed when a slot is first carved and stay while its region
 * lives: MADV_GUARD_INSTALL markers (no VMA; they survive MADV_DONTNEED), or
 * mprotect(PROT_NONE), which splits the region's VMA: two mappings per
 * guard, so at most (max_map_count - 8192) / 2 of them, then slots are carved
 * unguarded and a warning is printed once. A failing mprotect (ENOMEM: the
 * kernel ran out of mappings earlier than we counted) ends the budget too.
 *
 * Canary: the page below lo. Nothing legitimate touches it, so it is never
 * committed and reads as zero (the kernel's shared zero page once read); a
 * stack that runs below lo writes frames there. It is zero rather than a
 * random value because a write would commit it: one more page per idle
 * goroutine (tests/test_stack.c measures both: ~4 KiB idle, ~8 KiB armed).
 * An unguarded slot's would-be guard page stays untouched too: a second,
 * deeper zero page that stack_check_deep reads.
 *
 * Slot lifecycle, and who owns what:
 *   FREE    uncarved, or on its region's cold list: decommitted whole (the
 *           canary page and an unguarded slot's guard page included).
 *   USED    held by a caller (stack_alloc .. stack_free).
 *   CACHED  in a per-P stack_cache (owned by that P, maybe untrimmed: no
 *           system call on the fast path) or in the global cache (per-class
 *           warm lists, under pool.lock, at most GLOBAL_WARM_MAX stacks, each
 *           trimmed: only the top STACK_KEEP bytes may be committed).
 * Stacks leave a full per-P cache half at a time; what the global cache has
 * no room for goes cold. List links live in the region's per-slot link[]
 * array, never in the stack's memory (that would commit a page).
 *
 * Regions come back. When a region's last live slot goes cold, the class
 * keeps it as its one empty region (guards still installed, cheap to reuse);
 * any further empty region is reset: mapped afresh over itself with
 * MAP_FIXED, which drops its pages, its page tables (guard markers live in
 * page tables: ~512 KiB per region), its mprotect VMAs (their budget returns)
 * and its guards. A reset region keeps its address range and its class, on
 * the class's spare list; sys_bytes counts reserved address space and does
 * not shrink. Allocation prefers regions with live slots, then the empty
 * one, then a spare, then a new region, so that empty regions can appear.
 *
 * Locks: pool.lock (a leaf) guards the classes, the regions' lists, counts
 * and the stats; the per-slot state byte is written by whoever owns the slot
 * (the lock holder, or the P whose cache holds it); the fault handler takes
 * no lock. System calls that give memory back run outside the lock, except a
 * region's creation and reset (rare).
 *
 * Port: this file calls mmap(MAP_FIXED), madvise, mprotect, sigaction and
 * sigaltstack directly, beyond base/os.h: Linux only, as the guards are. */
#define _GNU_SOURCE
#include "sched/stack.h"
#include "base/atomic.h"
#include "base/env.h"
#include "base/fatal.h"
#include "base/sanitizer.h"
#include "base/lock.h"
#include "base/os.h"
#include "base/print.h"
#include "mem/fixalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif

#define REGION_SHIFT    28
#define REGION_BYTES    ((uintptr_t)1 << REGION_SHIFT)
#define REGION_FIRST    ((uintptr_t)16 << 20)     /* a class's first region */
#define REGION_HINT     ((uintptr_t)0x0200 << 32) /* 2 TiB: below the heap's second hint */
#define ADDR_BITS       48                        /* user addresses from mmap without a high hint */
#define TABLE_LEN       ((uintptr_t)1 << (ADDR_BITS - REGION_SHIFT))
#define CLASS_MIN_SHIFT 14 /* 16 KiB, GORT_STACKSIZE's minimum */
#define CLASS_MAX_SHIFT 34 /* 16 GiB, GORT_STACKSIZE's maximum */
#define NCLASS          (CLASS_MAX_SHIFT - CLASS_MIN_SHIFT + 1)
#define GLOBAL_WARM_MAX 512  /* global cache bound: <= 8 MiB committed */
#define MAPS_MARGIN     8192 /* mappings left to the rest of the program */
#define SIGSTACK_SIZE   ((size_t)64 << 10)
#define CANARY_CHECK    64     /* bytes below lo that stack_check_canary reads */
#define STACK_TRIMMED   0x100u /* flags: pages below the keep depth already given back */

enum { SLOT_FREE, SLOT_USED, SLOT_CACHED };
enum { MODE_MADVISE = 1, MODE_MPROTECT, MODE_NONE };

struct region {
    uintptr_t base;  /* REGION_BYTES-aligned */
    uintptr_t len;   /* bytes mapped: up to REGION_BYTES, more for a big class */
    uintptr_t slot;  /* bytes per slot: guard page + canary page + class */
    uintptr_t csize; /* the class: usable bytes per stack */
    uint32_t nslots;
    uint32_t carved;    /* slots [0, carved) got their guard since the last reset */
    uint32_t nlive;     /* carved slots not on the cold list */
    uint32_t nguard[3]; /* carved slots by guard kind (0: unguarded) */
    int cls;
    bool on_avail;              /* on its class's avail list */
    uintptr_t cold;             /* first slot base of the cold list, 0 if empty */
    struct region *prev, *next; /* avail list; next also links the spare list */
    uint8_t *kind;              /* per slot: guard kind, read by the fault handler */
    uint8_t *state;             /* per slot: SLOT_* */
    uintptr_t *link;            /* per slot: next slot base on the cold or warm list;
                                   while USED, the owner (stack_set_owner) */
};

struct sclass {
    struct region *avail; /* regions with live slots and room (a cold or uncarved slot) */
    struct region *empty; /* one region without live slots, kept with its guards */
    struct region *spare; /* reset regions: fresh memory, nothing carved */
    uintptr_t warm;       /* the global cache for this class: slot bases via link[] */
    uint32_t nwarm;
    uintptr_t next_len; /* bytes of the class's next region (0: REGION_FIRST) */
};

static struct {
    lock_t lock;
    uintptr_t page;
    uintptr_t keep;      /* max(STACK_KEEP, page) */
    int kmin;            /* smallest class index (4 pages at least) */
    int mode;            /* MODE_*: the guard kind new slots get */
    bool warned;         /* the budget warning was printed */
    bool handlers;       /* stack_init installed the fault handlers */
    int64_t budget;      /* mprotect guards allowed */
    int64_t nmprotect;   /* mprotect guards installed */
    uintptr_t next_hint; /* where the next region would extend the last one */
    uint32_t warm_total; /* warm stacks, plus places reserved by global_put */
    uint64_t inuse_bytes, inuse_stacks, sys_bytes, meta_bytes, nguard[3];
    uintptr_t default_size;
    struct sclass cls[NCLASS];
    void (*hook)(uintptr_t); /* the overflow hook (atomic: read by the handler) */
    void (*crash)(int, int, uintptr_t); /* stack_set_crash_hook's (atomic) */
    struct sigaction old_segv, old_bus;
} pool = {.lock = LOCK_INIT};

static struct region **table; /* REGION_BYTES chunk -> region; entries set once */
static int init_state;        /* 0 not yet, 1 initializing, 2 done */

/* Per thread: the alternate signal stack, and the fault being reported. */
static __thread struct {
    int sig_state; /* 0 none, 1 ours (in sig), 2 the thread's own */
    gstack sig;
    stack_t prev;
    bool faulting;
    struct stack_fault fault;
} tls;

/* ---- geometry ----------------------------------------------------------- */

static inline uintptr_t class_bytes(int k) {
    return (uintptr_t)1 << (k + CLASS_MIN_SHIFT);
}

static int class_of(uintptr_t size) {
    if (size > class_bytes(NCLASS - 1)) return -1;
    int k = pool.kmin;
    while (class_bytes(k) < size) k++;
    return k;
}

static inline struct region *region_of(uintptr_t a) {
    struct region **t = atomic_load_acq(&table);
    if (!t || (a >> REGION_SHIFT) >= TABLE_LEN) return NULL;
    return atomic_load_acq(&t[a >> REGION_SHIFT]);
}

static inline uintptr_t slot_base(const struct region *r, uint32_t i) {
    return r->base + (uintptr_t)i * r->slot;
}

static void fill(gstack *st, const struct region *r, uint32_t i) {
    st->lo = slot_base(r, i) + 2 * pool.page;
    st->hi = st->lo + r->csize;
    st->size = r->csize;
    st->flags = atomic_load_relaxed(&r->kind[i]);
    st->vg_id = 0;
}

/* The region and slot of a gstack, after checking that it is one. */
static bool slot_of_stack(const gstack *st, struct region **rp, uint32_t *ip) {
    struct region *r = region_of(st->lo);
    if (!r || st->lo < r->base + 2 * pool.page) return false;
    uintptr_t off = st->lo - 2 * pool.page - r->base;
    uintptr_t i = off / r->slot;
    if (off != i * r->slot || i >= r->nslots) return false;
    if (st->size != r->csize || st->hi != st->lo + r->csize) return false;
    *rp = r;
    *ip = (uint32_t)i;
    return true;
}

bool stack_guard_owner(uintptr_t a, gstack *out) {
    struct region *r = region_of(a);
    if (!r || a < r->base) return false;
    uintptr_t off = a - r->base, i = off / r->slot;
    if (i >= r->nslots || off - i * r->slot >= pool.page) return false;
    if (!atomic_load_relaxed(&r->kind[i])) return false;
    if (out) fill(out, r, (uint32_t)i);
    return true;
}

bool stack_is_guard(uintptr_t a) {
    return stack_guard_owner(a, NULL);
}

/* ---- initialization ----------------------------------------------------- */

static bool probe_guard_install(void) {
    void *p;
    if (os_map(&p, NULL, 2 * pool.page, false) < 0) return false;
    bool ok = madvise(p, pool.page, MADV_GUARD_INSTALL) == 0;
    os_unmap(p, 2 * pool.page);
    return ok;
}

/* GORT_STACKGUARD: auto (MADV_GUARD_INSTALL where the kernel has it, else
 * mprotect), madvise, mprotect, none. Read here rather than in the options
 * table (base/env.c) because only this file knows the kinds. */
static int guard_mode(void) {
    const char *v = getenv("GORT_STACKGUARD");
    int want = 0;
    if (v && *v) {
        if (strcmp(v, "madvise") == 0)
            want = MODE_MADVISE;
        else if (strcmp(v, "mprotect") == 0)
            want = MODE_MPROTECT;
        else if (strcmp(v, "none") == 0)
            want = MODE_NONE;
        else if (strcmp(v, "auto") != 0)
            print("gort: invalid GORT_STACKGUARD=\"%s\" (want auto, madvise, mprotect or "
                  "none); using the default\n",
                  v);
    }
    if (want == MODE_MPROTECT || want == MODE_NONE) return want;
    if (probe_guard_install()) return MODE_MADVISE;
    if (want == MODE_MADVISE)
        print("gort: GORT_STACKGUARD=madvise: the kernel lacks MADV_GUARD_INSTALL "
              "(Linux 6.13+); using mprotect guards\n");
    return MODE_MPROTECT;
}

/* mprotect guards allowed: two mappings each, within vm.max_map_count less a
 * margin for the rest of the program. Read without stdio (no malloc). */
static int64_t map_budget(void) {
    int64_t mmc = 65530;
    int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char b[32];
        ssize_t n = read(fd, b, sizeof b - 1);
        close(fd);
        while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == ' ')) n--;
        int64_t v;
        if (n > 0) {
            b[n] = 0;
            if (env_parse_int(b, &v) == 0 && v > 0) mmc = v;
        }
    }
    int64_t b = (mmc - MAPS_MARGIN) / 2;
    return b > 0 ? b : 0;
}

static int pool_init(void) {
    if (likely(atomic_load_acq(&init_state) == 2)) return 0;
    int z = 0;
    if (!atomic_cas(&init_state, &z, 1)) {
        while (atomic_load_acq(&init_state) == 1) cpu_relax();
        return pool_init(); /* done, or failed and to be retried */
    }
    env_init();
    pool.page = os_page_size();
    pool.keep = STACK_KEEP > pool.page ? STACK_KEEP : pool.page;
    pool.kmin = 0;
    while (class_bytes(pool.kmin) < 4 * pool.page) pool.kmin++;
    void *t;
    if (os_map(&t, NULL, TABLE_LEN * sizeof(struct region *), false) < 0) {
        atomic_store_rel(&init_state, 0);
        return -ENOMEM;
    }
    pool.default_size = (uintptr_t)opts.stacksize;
    pool.mode = guard_mode();
    pool.budget = map_budget();
    atomic_store_rel(&table, (struct region **)t);
    atomic_store_rel(&init_state, 2);
    return 0;
}

/* ---- regions ------------------------------------------------------------ */

/* Reserves len bytes starting on a REGION_BYTES boundary: at the hint
 * (the chunk after the last region, from REGION_HINT) with nothing more
 * than len mapped; where that is taken, one mapping REGION_BYTES longer,
 * anywhere, trimmed. next_hint 1: hints failed, the kernel chooses. */
static int reserve(uintptr_t len, uintptr_t *out) {
    void *p;
    uintptr_t a = 0;
    if (pool.next_hint == 0) pool.next_hint = REGION_HINT;
    if (pool.next_hint != 1) {
        int e = os_map(&p, (void *)pool.next_hint, len, true);
        if (e == -ENOMEM) return e; /* refused (RLIMIT_AS): no point elsewhere */
        if (e == 0)
            a = (uintptr_t)p;
        else
            pool.next_hint = 1; /* taken: the kernel chooses from now on */
    }
    if (!a) {
        if (os_map(&p, NULL, len + REGION_BYTES, false) < 0) return -ENOMEM;
        uintptr_t m = (uintptr_t)p;
        a = (m + REGION_BYTES - 1) & ~(REGION_BYTES - 1);
        if (a > m) os_unmap(p, a - m);
        os_unmap((void *)(a + len), m + REGION_BYTES - a);
    }
    if (((a + len - 1) >> REGION_SHIFT) >= TABLE_LEN) {
        os_unmap((void *)a, len);
        return -ENOMEM;
    }
    madvise((void *)a, len, MADV_NOHUGEPAGE); /* advisory: failure is harmless */
    if (pool.next_hint != 1) pool.next_hint = (a + len + REGION_BYTES - 1) & ~(REGION_BYTES - 1);
    *out = a;
    return 0;
}

/* A new region for class k, or NULL. Under pool.lock. */
static struct region *region_new(int k) {
    uintptr_t csize = class_bytes(k), slot = csize + 2 * pool.page;
    struct sclass *c = &pool.cls[k];
    uintptr_t want = c->next_len ? c->next_len : REGION_FIRST;
    uintptr_t nslots = want / slot ? want / slot : 1;
    uintptr_t len = nslots * slot; /* a multiple of the page */
    uintptr_t base;
    if (reserve(len, &base) < 0) return NULL;
    c->next_len = want < REGION_BYTES ? 2 * want : REGION_BYTES;
    size_t head = (sizeof(struct region) + 15) & ~(size_t)15;
    char *m = persistent_alloc(head + nslots * (sizeof(uintptr_t) + 2), 64, &pool.meta_bytes);
    if (!m) {
        os_unmap((void *)base, len);
        return NULL;
    }
    struct region *r = (struct region *)m;
    r->base = base;
    r->len = len;
    r->slot = slot;
    r->csize = csize;
    r->nslots = (uint32_t)nslots;
    r->cls = k;
    r->link = (uintptr_t *)(m + head);
    r->kind = (uint8_t *)(r->link + nslots);
    r->state = r->kind + nslots;
    for (uintptr_t a = base; a < base + len; a += REGION_BYTES)
        atomic_store_rel(&table[a >> REGION_SHIFT], r);
    pool.sys_bytes += len;
    return r;
}

static void avail_push(struct sclass *c, struct region *r) {
    r->prev = NULL;
    r->next = c->avail;
    if (c->avail) c->avail->prev = r;
    c->avail = r;
    r->on_avail = true;
}

static void avail_remove(struct sclass *c, struct region *r) {
    if (r->prev)
        r->prev->next = r->next;
    else
        c->avail = r->next;
    if (r->next) r->next->prev = r->prev;
    r->prev = r->next = NULL;
    r->on_avail = false;
}

static void warn_unguarded(void) {
    if (pool.warned) return;
    pool.warned = true;
    print("gort: warning: %lld goroutine stacks have mprotect guard pages, as many as "
          "vm.max_map_count allows (each takes two memory mappings); further stacks are "
          "unguarded, their overflow is caught only by the canary check. Raise "
          "vm.max_map_count (sysctl -w vm.max_map_count=...), or use Linux 6.13+ "
          "(MADV_GUARD_INSTALL guards take no mapping).\n",
          (long long)pool.nmprotect);
}

/* Installs slot i's guard as the mode and the budget allow. Under pool.lock. */
static void guard(struct region *r, uint32_t i) {
    void *g = (void *)slot_base(r, i);
    int kind = 0;
    if (pool.mode == MODE_MADVISE && madvise(g, pool.page, MADV_GUARD_INSTALL) == 0) {
        kind = STACK_GUARD_MADVISE;
    } else if (pool.mode != MODE_NONE) {
        if (pool.nmprotect < pool.budget && mprotect(g, pool.page, PROT_NONE) == 0) {
            kind = STACK_GUARD_MPROTECT;
            pool.nmprotect++;
        } else {
            if (pool.budget > pool.nmprotect) pool.budget = pool.nmprotect; /* ENOMEM: no maps */
            warn_unguarded();
        }
    }
    atomic_store_relaxed(&r->kind[i], (uint8_t)kind);
    r->nguard[kind]++;
    pool.nguard[kind]++;
}

/* Maps a region without live slots afresh over itself: pages, page tables,
 * guards and mprotect VMAs go; it joins the class's spares. Under pool.lock. */
static void region_reset(struct sclass *c, struct region *r) {
    void *p = mmap((void *)r->base, r->len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) { /* keep it as it is: an empty region with cold slots */
        avail_push(c, r);
        return;
    }
    madvise(p, r->len, MADV_NOHUGEPAGE);
    pool.nmprotect -= r->nguard[STACK_GUARD_MPROTECT]; /* their mappings are gone */
    for (int k = 0; k < 3; k++) {
        pool.nguard[k] -= r->nguard[k];
        r->nguard[k] = 0;
    }
    for (uint32_t i = 0; i < r->carved; i++) atomic_store_relaxed(&r->kind[i], 0);
    r->carved = 0;
    r->cold = 0;
    r->next = c->spare;
    c->spare = r;
}

/* Takes a cold or uncarved slot of class k. Under pool.lock. */
static int take_slot(int k, struct region **rp, uint32_t *ip) {
    struct sclass *c = &pool.cls[k];
    struct region *r = c->avail;
    if (!r) {
        if ((r = c->empty)) {
            c->empty = NULL;
        } else if ((r = c->spare)) {
            c->spare = r->next;
        } else if (!(r = region_new(k))) {
            return -ENOMEM;
        }
        avail_push(c, r);
    }
    uint32_t i;
    if (r->cold) {
        i = (uint32_t)((r->cold - r->base) / r->slot);
        r->cold = r->link[i];
    } else {
        i = r->carved++;
        guard(r, i);
    }
    r->nlive++;
    if (!r->cold && r->carved == r->nslots) avail_remove(c, r);
    pool.inuse_bytes += r->csize;
    pool.inuse_stacks++;
    *rp = r;
    *ip = i;
    return 0;
}

/* Pops a stack off a class's global cache (it is trimmed). Under pool.lock. */
static void warm_pop(struct sclass *cl, gstack *dst) {
    struct region *r = region_of(cl->warm);
    uint32_t i = (uint32_t)((cl->warm - r->base) / r->slot);
    cl->warm = r->link[i];
    cl->nwarm--;
    pool.warm_total--;
    fill(dst, r, i);
    dst->flags |= STACK_TRIMMED;
}

/* Puts a decommitted slot on its region's cold list. Under pool.lock. */
static void cold_put(struct region *r, uint32_t i) {
    struct sclass *c = &pool.cls[r->cls];
    atomic_store_relaxed(&r->state[i], SLOT_FREE);
    r->link[i] = r->cold;
    r->cold = slot_base(r, i);
    r->nlive--;
    pool.inuse_bytes -= r->csize;
    pool.inuse_stacks--;
    if (r->nlive == 0) {
        if (r->on_avail) avail_remove(c, r);
        if (!c->empty)
            c->empty = r;
        else
            region_reset(c, r);
    } else if (!r->on_avail) {
        avail_push(c, r);
    }
}

/* ---- giving memory back ------------------------------------------------- */

/* Keeps the top keep bytes (what a new goroutine touches first) and gives
 * back the rest, the canary page included (and an unguarded slot's would-be
 * guard): a trimmed stack's canary pages are fresh. */
static void trim(const gstack *st) {
    uintptr_t from = st->lo - ((st->flags & STACK_GUARD_MASK) ? 1 : 2) * pool.page;
    uintptr_t to = st->size > pool.keep ? st->hi - pool.keep : st->lo;
    os_decommit((void *)from, to - from);
}

/* The whole slot but a real guard: the next user finds it as new. */
static void decommit(const gstack *st) {
    uintptr_t from = st->lo - 2 * pool.page;
    if (st->flags & STACK_GUARD_MASK) from += pool.page;
    os_decommit((void *)from, st->hi - from);
}

/* Moves n cached stacks to the global cache, or cold past its bound. The
 * system calls run outside the lock; places in the warm lists are reserved
 * first, so that a trimmed stack never lands on a cold list. */
static void global_put(gstack *v, int n) {
    lock(&pool.lock);
    uint32_t room = pool.warm_total < GLOBAL_WARM_MAX ? GLOBAL_WARM_MAX - pool.warm_total : 0;
    int nw = (uint32_t)n < room ? n : (int)room;
    pool.warm_total += (uint32_t)nw;
    unlock(&pool.lock);
    for (int j = 0; j < n; j++) {
        if (j >= nw)
            decommit(&v[j]);
        else if (!(v[j].flags & STACK_TRIMMED))
            trim(&v[j]);
    }
    lock(&pool.lock);
    for (int j = 0; j < n; j++) {
        struct region *r;
        uint32_t i;
        if (!slot_of_stack(&v[j], &r, &i)) throw("stack: corrupt stack cache");
        if (j < nw) {
            struct sclass *c = &pool.cls[r->cls];
            r->link[i] = c->warm;
            c->warm = slot_base(r, i);
            c->nwarm++;
        } else {
            cold_put(r, i);
        }
    }
    unlock(&pool.lock);
}

static void sanitize_release(gstack *st) {
#if GORT_HAVE_ASAN
    /* Frames that switched away and never returned left their redzones
     * poisoned. Read the shadow first: unpoisoning all of a 256 KiB stack
     * would write (commit) 32 KiB of shadow per stack. */
    void *p = __asan_region_is_poisoned((void *)st->lo, st->size);
    if (p) __asan_unpoison_memory_region(p, st->hi - (uintptr_t)p);
#endif
#if GORT_HAVE_VALGRIND
    if (st->vg_id) VALGRIND_STACK_DEREGISTER(st->vg_id);
#endif
    st->vg_id = 0;
}

/* ---- the API ------------------------------------------------------------ */

int stack_alloc(stack_cache *c, gstack *st, size_t size) {
    if (pool_init() < 0) return -ENOMEM;
    int k = class_of(size ? size : pool.default_size);
    if (k < 0) return -ENOMEM;
    uintptr_t csize = class_bytes(k);
    struct region *r;
    uint32_t i;
    if (c) {
        for (int j = c->n - 1; j >= 0; j--) {
            if (c->slot[j].size == csize) {
                *st = c->slot[j];
                c->slot[j] = c->slot[--c->n];
                goto found;
            }
        }
    }
    lock(&pool.lock);
    struct sclass *cl = &pool.cls[k];
    if (cl->warm) { /* one for the caller, and up to half the P's cache */
        warm_pop(cl, st);
        while (c && cl->warm && c->n < STACK_CACHE_SLOTS / 2) warm_pop(cl, &c->slot[c->n++]);
        unlock(&pool.lock);
        goto found;
    }
    int e = take_slot(k, &r, &i);
    unlock(&pool.lock);
    if (e < 0) return e;
    fill(st, r, i);
found:
    if (!slot_of_stack(st, &r, &i) || r->state[i] == SLOT_USED) throw("stack: corrupt stack cache");
    atomic_store_relaxed(&r->link[i], 0); /* no owner yet */
    atomic_store_relaxed(&r->state[i], SLOT_USED);
    st->flags &= STACK_GUARD_MASK;
#if GORT_HAVE_VALGRIND
    st->vg_id = VALGRIND_STACK_REGISTER(st->lo, st->hi);
#endif
    return 0;
}

void stack_free(stack_cache *c, gstack *st) {
    struct region *r;
    uint32_t i;
    if (!slot_of_stack(st, &r, &i) || r->state[i] != SLOT_USED)
        throw("stack_free: not an allocated stack (freed twice?)");
    /* The last chance to catch an overflow of an unguarded stack: the slot
     * must not be handed on with its canary written. */
    if (!stack_check_canary(st))
        throw("stack overflow (found at stack_free: the canary below the stack was written)");
    atomic_store_relaxed(&r->state[i], SLOT_CACHED);
    sanitize_release(st);
    gstack s = *st;
    s.flags = atomic_load_relaxed(&r->kind[i]);
    if (c) {
        if (c->n == STACK_CACHE_SLOTS) { /* the oldest half goes to the global cache */
            int h = STACK_CACHE_SLOTS / 2;
            global_put(c->slot, h);
            memmove(c->slot, c->slot + h, (size_t)(c->n - h) * sizeof c->slot[0]);
            c->n -= h;
        }
        c->slot[c->n++] = s;
        return;
    }
    global_put(&s, 1);
}

void stack_cache_flush(stack_cache *c) {
    if (c->n) global_put(c->slot, c->n);
    c->n = 0;
}

void stack_cache_trim(stack_cache *c) {
    for (int j = 0; j < c->n; j++) {
        if (c->slot[j].flags & STACK_TRIMMED) continue;
        trim(&c->slot[j]);
        c->slot[j].flags |= STACK_TRIMMED;
    }
}

void stack_scavenge(void) {
    if (pool_init() < 0) return;
    for (;;) {
        gstack v[64];
        int n = 0;
        lock(&pool.lock);
        for (int k = 0; k < NCLASS && n < 64; k++)
            while (pool.cls[k].warm && n < 64) warm_pop(&pool.cls[k], &v[n++]);
        unlock(&pool.lock);
        if (n == 0) return;
        for (int j = 0; j < n; j++) decommit(&v[j]);
        lock(&pool.lock);
        for (int j = 0; j < n; j++) {
            struct region *r;
            uint32_t i;
            if (!slot_of_stack(&v[j], &r, &i)) throw("stack: corrupt stack cache");
            cold_put(r, i);
        }
        unlock(&pool.lock);
    }
}

void stack_shrink(const gstack *st, uintptr_t sp) {
    uintptr_t P = pool.page;
    if (sp < st->lo || sp > st->hi) return;
    uintptr_t end = sp & ~(P - 1); /* the page holding sp stays */
    if (end < st->lo + 2 * P) return;
    end -= P; /* and one below it: the red zone, a signal, a shallow call */
    os_decommit((void *)st->lo, end - st->lo);
}

NO_ASAN static bool zero(uintptr_t from, uintptr_t len) {
    const uint64_t *w = (const uint64_t *)from;
    uint64_t x = 0;
    for (uintptr_t j = 0; j < len / 8; j++) x |= w[j];
    return x == 0;
}

NO_ASAN bool stack_check_canary(const gstack *st) {
    return zero(st->lo - CANARY_CHECK, CANARY_CHECK);
}

NO_ASAN bool stack_check_deep(const gstack *st) {
    uintptr_t P = pool.page;
    if (!zero(st->lo - P, P)) return false;
    return (st->flags & STACK_GUARD_MASK) || zero(st->lo - 2 * P, P);
}

void stack_read_stats(struct stack_stats *s) {
    if (pool_init() < 0) {
        memset(s, 0, sizeof *s);
        return;
    }
    lock(&pool.lock);
    s->inuse_bytes = pool.inuse_bytes;
    s->sys_bytes = pool.sys_bytes;
    s->guards_madvise = pool.nguard[STACK_GUARD_MADVISE];
    s->guards_mprotect = pool.nguard[STACK_GUARD_MPROTECT];
    s->unguarded = pool.nguard[0];
    s->inuse_stacks = pool.inuse_stacks;
    s->cached_stacks = 0;
    for (int k = 0; k < NCLASS; k++) s->cached_stacks += pool.cls[k].nwarm;
    s->meta_bytes = atomic_load_relaxed(&pool.meta_bytes);
    s->mprotect_budget = pool.mode == MODE_NONE ? 0 : (uint64_t)pool.budget;
    unlock(&pool.lock);
}

void stack_atfork_prepare(void) {
    lock(&pool.lock);
}
void stack_atfork_parent(void) {
    unlock(&pool.lock);
}
void stack_atfork_child(void) {
    unlock(&pool.lock);
}

/* ---- overflow ----------------------------------------------------------- */

void stack_set_owner(const gstack *st, void *owner) {
    struct region *r;
    uint32_t i;
    if (!slot_of_stack(st, &r, &i) || r->state[i] != SLOT_USED)
        throw("stack_set_owner: not an allocated stack");
    atomic_store_relaxed(&r->link[i], (uintptr_t)owner);
}

/* Async-signal-safe: st came from stack_guard_owner. */
static void *owner_of(const gstack *st) {
    struct region *r;
    uint32_t i;
    if (!slot_of_stack(st, &r, &i) || atomic_load_relaxed(&r->state[i]) != SLOT_USED) return NULL;
    return (void *)atomic_load_relaxed(&r->link[i]);
}

bool stack_fault_info(struct stack_fault *out) {
    if (!tls.faulting) return false;
    *out = tls.fault;
    return true;
}

static void default_overflow(uintptr_t addr) {
    struct stack_fault f;
    if (stack_fault_info(&f)) {
        print("runtime: goroutine stack exceeds %zu-byte limit\n"
              "runtime: sp=%p stack=[%p, %p] fault addr=%p pc=%p\n",
              (size_t)f.stack.size, (void *)f.sp, (void *)f.stack.lo, (void *)f.stack.hi,
              (void *)addr, (void *)f.pc);
    }
    throw("stack overflow");
}

/* Hands a fault that is not ours to whoever had the signal before us, as
 * Go's sigfwd; with no handler before, the default action: the fault comes
 * back when the instruction is restarted and kills the process (core dump
 * included); a signal sent by kill() is raised again. */
static void forward(int sig, siginfo_t *si, void *uc) {
    struct sigaction *o = sig == SIGBUS ? &pool.old_bus : &pool.old_segv;
    if (o->sa_handler == SIG_IGN && si->si_code <= 0) return;
    if (o->sa_handler == SIG_DFL || o->sa_handler == SIG_IGN) {
        struct sigaction d;
        memset(&d, 0, sizeof d);
        d.sa_handler = SIG_DFL;
        sigemptyset(&d.sa_mask);
        sigaction(sig, &d, NULL);
        if (si->si_code <= 0) raise(sig); /* blocked here: delivered on return */
        return;
    }
    if (o->sa_flags & SA_SIGINFO)
        o->sa_sigaction(sig, si, uc);
    else
        o->sa_handler(sig);
}

/* The interrupted context's registers, for a traceback from the fault. */
static void fault_regs(void *ucv) {
    ucontext_t *uc = ucv;
#if defined(__x86_64__)
    tls.fault.pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    tls.fault.sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    tls.fault.fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__)
    tls.fault.pc = (uintptr_t)uc->uc_mcontext.pc;
    tls.fault.sp = (uintptr_t)uc->uc_mcontext.sp;
    tls.fault.fp = (uintptr_t)uc->uc_mcontext.regs[29];
#else
    (void)uc;
#endif
}

static void on_fault(int sig, siginfo_t *si, void *ucv) {
    int saved = errno;
    uintptr_t a = (uintptr_t)si->si_addr;
    gstack st;
    if (si->si_code > 0 && stack_guard_owner(a, &st)) {
        tls.fault.addr = a;
        tls.fault.signo = sig;
        tls.fault.stack = st;
        tls.fault.owner = owner_of(&st);
        fault_regs(ucv);
        tls.faulting = true;
        void (*hook)(uintptr_t) = atomic_load_acq(&pool.hook);
        if (hook) hook(a);
        throw("stack overflow"); /* the hook returned */
    }
    /* A real fault (not a kill) that nobody before us wanted to handle: the
     * crash hook reports it the way Go does rather than dying silently. */
    struct sigaction *o = sig == SIGBUS ? &pool.old_bus : &pool.old_segv;
    void (*crash)(int, int, uintptr_t) = atomic_load_acq(&pool.crash);
    if (crash && si->si_code > 0 && o->sa_handler == SIG_DFL && !(o->sa_flags & SA_SIGINFO)) {
        memset(&tls.fault, 0, sizeof tls.fault);
        tls.fault.addr = a;
        tls.fault.signo = sig;
        fault_regs(ucv);
        tls.faulting = true;
        crash(sig, si->si_code, a);
    }
    forward(sig, si, ucv);
    errno = saved;
}

void stack_set_crash_hook(void (*hook)(int sig, int code, uintptr_t addr)) {
    atomic_store_rel(&pool.crash, hook);
}

int stack_init(void (*on_overflow)(uintptr_t fault_addr)) {
    int e = pool_init();
    if (e < 0) return e;
    atomic_store_rel(&pool.hook, on_overflow ? on_overflow : default_overflow);
    lock(&pool.lock);
    if (!pool.handlers) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, &pool.old_segv) < 0) {
            e = -errno;
        } else if (sigaction(SIGBUS, &sa, &pool.old_bus) < 0) {
            e = -errno;
            sigaction(SIGSEGV, &pool.old_segv, NULL);
        } else {
            pool.handlers = true;
        }
    }
    unlock(&pool.lock);
    return e;
}

int stack_thread_init(void) {
    if (tls.sig_state) return 0;
    stack_t cur;
    if (sigaltstack(NULL, &cur) < 0) return -errno;
    if (!(cur.ss_flags & SS_DISABLE) && cur.ss_size >= STACK_SIGSTACK_MIN) {
        tls.sig_state = 2;
        return 0;
    }
    gstack st;
    int e = stack_alloc(NULL, &st, SIGSTACK_SIZE);
    if (e < 0) return e;
    stack_t ss = {.ss_sp = (void *)st.lo, .ss_size = st.hi - st.lo, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) < 0) {
        e = -errno;
        stack_free(NULL, &st);
        return e;
    }
    tls.prev = cur;
    tls.sig = st;
    tls.sig_state = 1;
    return 0;
}

void stack_thread_exit(void) {
    if (tls.sig_state == 1) {
        stack_t ss = tls.prev;
        if (ss.ss_flags & SS_DISABLE) {
            memset(&ss, 0, sizeof ss);
            ss.ss_flags = SS_DISABLE;
        } else {
            ss.ss_flags = 0;
        }
        if (sigaltstack(&ss, NULL) < 0) return; /* running on it: keep it */
        stack_free(NULL, &tls.sig);
    }
    tls.sig_state = 0;
}
