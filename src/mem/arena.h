/* Heap arenas and the arena index (Go's malloc.go "arena" design).
 *
 * The heap is made of 64 MiB arenas reserved at hinted addresses, starting at
 * 0x00c000000000 and growing upward as Go's do, so that heap addresses are
 * recognisable in dumps and the heap stays contiguous. Each arena has a
 * heap_arena record (allocated outside the arena) holding the span of every
 * page: that is what makes span_of(p) O(1) for any pointer, interior or not.
 *
 * The index is two-level, arena_l1[L1][L2], as Go's. On x86_64 with a 48-bit
 * address space L1 has 64 entries (ARENA_L1_BITS 6: Go has one, a 32 MiB L2
 * reserved at start); an L2 array (64K entries, 512 KiB of address space,
 * touched lazily) is mapped when the first arena of its range is, so that
 * gort starts small (docs/allocator.md: within 256 MiB of address space).
 * span_of() first tries the flat page map below, which covers the hinted
 * heap range with one load.
 *
 * Invariants: an arena's index entry is published (release store) only after
 * its heap_arena record is fully initialised, and is never removed; readers
 * need no lock. spans[] entries are written by mheap under the heap lock. */
#ifndef GORT_MEM_ARENA_H
#define GORT_MEM_ARENA_H

/* The runtime's own globals that hold heap addresses as numbers (the page
 * allocator's run being scavenged, the next arena hint), or that can read
 * as one (counters side by side: stw.c's, gc_state): in a section of
 * their own, which the collector leaves out when it scans the program's
 * data and bss (src/gc/mgcmark.c). Scanned, each such value was a false
 * root: it kept whatever object began at that page, and when it changed
 * during a cycle gccheckmark took it for a missed mark. */
#define GORT_RTDATA __attribute__((section("gort_rtdata")))

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define arena_atfork_child   gort__arena_atfork_child
#define arena_atfork_parent  gort__arena_atfork_parent
#define arena_atfork_prepare gort__arena_atfork_prepare
#define arena_grow           gort__arena_grow
#define arena_init           gort__arena_init
#define arena_l1             gort__arena_l1
#define arena_list           gort__arena_list
#define arena_meta_bytes     gort__arena_meta_bytes
#define arena_reserved_bytes gort__arena_reserved_bytes
#define arena_set_spans      gort__arena_set_spans
#define heap_flat            gort__heap_flat

#define PAGE_SHIFT      13
#define PAGE_SIZE       ((size_t)1 << PAGE_SHIFT) /* 8 KiB, Go's page */
#define ARENA_SHIFT     26
#define ARENA_BYTES     ((size_t)1 << ARENA_SHIFT) /* 64 MiB */
#define PAGES_PER_ARENA (ARENA_BYTES / PAGE_SIZE)  /* 8192 */
#define HEAP_ADDR_BITS  48
#define ARENA_L1_BITS   6
#define ARENA_L2_BITS   (HEAP_ADDR_BITS - ARENA_SHIFT - ARENA_L1_BITS) /* 16: 64K entries */

struct mspan;

struct heap_arena {
    /* The span owning each page, or NULL. For an in-use span every page maps to
     * it; for a free page it is NULL. */
    struct mspan *spans[PAGES_PER_ARENA];
    void *pa;                /* the page allocator's per-arena metadata (mpagealloc.c) */
    uintptr_t base;          /* first byte of the arena */
    struct heap_arena *next; /* the list of every arena, newest first (arena_list) */
    void *checkmarks;        /* GORT_GODEBUG=gccheckmark: its bits by page (mcheckmark.c) */
};

extern struct heap_arena **arena_l1[1 << ARENA_L1_BITS];
/* Every arena, newest first; grows only, published with release stores. */
extern struct heap_arena *arena_list;

/* The flat page map: the span of every page of the first hint region
 * (HEAP_FLAT_BASE, 1 TiB, where all arenas go unless that range is taken),
 * as one array indexed by page number. It makes span_of a single load that
 * depends on p: one dependent load fewer than the two-level index, which
 * measured ~2 ns of a ~9 ns malloc/free pair, all of it on free's critical
 * path. For the whole region it is 1 GiB: it is mapped as the heap grows, a
 * MiB (a GiB of heap) at a time, at a hinted address where it can grow in
 * place (arena.c); it covers the heap from HEAP_FLAT_BASE up to size. Only
 * the entries of pages in use are ever written. Pages elsewhere use the
 * arena index. */
#define HEAP_FLAT_BASE ((uintptr_t)0x00c0 << 32)
#define HEAP_FLAT_SIZE ((uintptr_t)1 << 40)
/* One object, so that span_of finds both fields from one address. */
extern struct heap_flat {
    uintptr_t size;     /* bytes of heap from HEAP_FLAT_BASE that map covers; grows only */
    struct mspan **map; /* the span of each page of the region (mapped up to size) */
} heap_flat;

static inline struct heap_arena *arena_of(uintptr_t p) {
    uintptr_t i = p >> ARENA_SHIFT;
    if (__builtin_expect(i >> (ARENA_L1_BITS + ARENA_L2_BITS), 0)) return NULL;
    struct heap_arena **l2 = __atomic_load_n(&arena_l1[i >> ARENA_L2_BITS], __ATOMIC_ACQUIRE);
    if (!l2) return NULL; /* no arena there */
    return __atomic_load_n(&l2[i & (((uintptr_t)1 << ARENA_L2_BITS) - 1)], __ATOMIC_ACQUIRE);
}

/* The span containing p, or NULL when p is not in gort's heap or in a free page. */
static inline struct mspan *span_of(uintptr_t p) {
    uintptr_t off = p - HEAP_FLAT_BASE;
    if (__builtin_expect(off < __atomic_load_n(&heap_flat.size, __ATOMIC_ACQUIRE), 1))
        return __atomic_load_n(&heap_flat.map[off >> PAGE_SHIFT], __ATOMIC_ACQUIRE);
    struct heap_arena *ha = arena_of(p);
    if (__builtin_expect(!ha, 0)) return NULL;
    return __atomic_load_n(&ha->spans[(p >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)], __ATOMIC_ACQUIRE);
}

/* Records span s for npages pages starting at base (s NULL clears). */
void arena_set_spans(uintptr_t base, size_t npages, struct mspan *s);

/* Reserves n contiguous arenas (n * 64 MiB of address space, not committed),
 * preferring the next hint address, creates and publishes their heap_arena
 * records, and returns the base address (0 when out of address space or
 * metadata memory). Called by the page allocator with its lock held. */
uintptr_t arena_grow(size_t n);

/* fork handlers for arena_lock (taken inside the page allocator's lock). */
void arena_atfork_prepare(void);
void arena_atfork_parent(void);
void arena_atfork_child(void);

/* Makes arena_l1 usable; idempotent; called under the heap lock. */
int arena_init(void);

/* Bytes of address space reserved for arenas so far (Go's HeapSys upper bound). */
extern size_t arena_reserved_bytes;
/* Bytes of heap_arena records (reported in MemStats.GCSys). */
extern uint64_t arena_meta_bytes;

#endif
