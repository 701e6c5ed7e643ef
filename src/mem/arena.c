/* Heap arenas and the arena index. See arena.h for the contract.
 *
 * Address space. Arenas are 64 MiB and 64 MiB aligned, so an arena's index is
 * simply p >> ARENA_SHIFT. We reserve them at hinted addresses as Go does:
 * 128 hint regions, (i << 40) | 0x00c000000000 for i = 0..0x7f, tried in order.
 * Within a region the hint advances by what was mapped, so consecutive calls
 * return contiguous arenas and the page allocator can coalesce free runs across
 * them. A hint that is taken (mmap with MAP_FIXED_NOREPLACE says EEXIST: some
 * other mapping, or ASan's shadow gap, sits there) moves us to the next region
 * for good. When every region has failed we map anywhere, over-reserving one
 * arena and trimming both ends to 64 MiB alignment.
 *
 * ENOMEM is not an address conflict but the OS refusing memory (map count, or
 * RLIMIT_AS, or fault injection): we give up at once and return 0 rather than
 * spin through hints, so the caller sees a clean failure.
 *
 * Memory. os_map maps PROT_READ|WRITE with MAP_NORESERVE, so a reserved arena
 * costs no RSS and no commit charge until its pages are touched. L2 arrays
 * of the index (64K pointers, 512 KiB of address space each) are mapped the
 * same way when the first arena in their range is; only the entries of
 * arenas in use are ever touched. heap_arena records come from
 * persistent_alloc (never malloc: this code runs inside malloc) and are
 * counted in arena_meta_bytes.
 *
 * The flat page map grows with the heap (flat_extend): FLAT_STEP of map
 * (a GiB of heap) at a time, mapped MAP_FIXED_NOREPLACE right after the
 * previous piece, from FLAT_MAP_HINT (the GiB below HEAP_FLAT_BASE). It
 * covers [HEAP_FLAT_BASE, HEAP_FLAT_BASE + size): arenas are placed there
 * in increasing order, so new coverage only ever covers new arenas (whose
 * entries are all NULL, as their spans[]); an arena that is not next to the
 * covered range, or a piece that cannot be mapped in place, stops the
 * growth for good, and later arenas use the index. Where the hint itself is
 * taken (ASan's shadow gap), the whole map is mapped at once, anywhere, as
 * it used to be, or, refused, not at all. Address space at start: nothing;
 * with the first arena 64 MiB, a 512 KiB L2 array and a 1 MiB piece.
 *
 * Order of growth: address space first, then the records (one zeroed array for
 * all n arenas), then publication. A request too large for the address space
 * fails before any metadata exists; if the records cannot be had, the mapping
 * is undone and the hint moved back, so a failure leaves nothing behind.
 *
 * Invariants:
 * - An index entry is published with a release store after its record is
 *   fully initialised and is never changed again; arena_of readers take no lock.
 * - Hints and arena_reserved_bytes change only under arena_lock
 *   (the page allocator also holds its own lock around arena_grow). */
#include "mem/arena.h"
#include "base/atomic.h"
#include "base/fatal.h"
#include "base/lock.h"
#include "base/os.h"
#include "mem/fixalloc.h"

#include <errno.h>

#define L2_ENTRIES  ((uintptr_t)1 << ARENA_L2_BITS)
#define USER_TOP    ((uintptr_t)1 << 47) /* x86_64 user address space ends here */
#define HINT_BASE   ((uintptr_t)0x00c0 << 32)
#define HINT_REGION ((uintptr_t)1 << 40)
#define HINT_NREG   0x80

#define FLAT_MAP_HINT (HEAP_FLAT_BASE - (HEAP_FLAT_SIZE >> PAGE_SHIFT) * sizeof(struct mspan *))
#define FLAT_STEP     ((uintptr_t)1 << 20) /* bytes of map added at a time: a GiB of heap */

struct heap_arena **arena_l1[1 << ARENA_L1_BITS];
struct heap_flat heap_flat;
struct heap_arena *arena_list;
size_t arena_reserved_bytes;
uint64_t arena_meta_bytes;

static lock_t arena_lock = LOCK_INIT;
static GORT_RTDATA unsigned hint_region; /* current hint region; HINT_NREG: none left */
static GORT_RTDATA uintptr_t hint_addr;  /* next address to try in that region (0: its start) */
static uintptr_t flat_mapped;            /* bytes of heap_flat.map mapped (under arena_lock) */
static bool flat_stopped;                /* the flat map grows no more */

/* Nothing to set up before the first arena (everything is mapped lazily). */
int arena_init(void) {
    return 0;
}

/* Maps the L2 arrays that the arenas [base, base + len) need. Under arena_lock. */
static int l2_ensure(uintptr_t base, size_t len) {
    for (uintptr_t i = base >> ARENA_SHIFT; i <= (base + len - 1) >> ARENA_SHIFT; i++) {
        struct heap_arena ***slot = &arena_l1[i >> ARENA_L2_BITS];
        if (*slot) continue;
        void *p;
        int err = os_map(&p, NULL, L2_ENTRIES * sizeof(struct heap_arena *), false);
        if (err < 0) return err;
        atomic_store_rel(slot, (struct heap_arena **)p);
    }
    return 0;
}

/* Extends the flat map over the new arenas [base, base + len), if they are
 * next to what it covers (see the file comment). Under arena_lock, before
 * the arenas are published. A failure only stops the growth. */
static void flat_extend(uintptr_t base, size_t len) {
    if (flat_stopped) return;
    uintptr_t covered = heap_flat.size;
    if (base != HEAP_FLAT_BASE + covered || base + len > HEAP_FLAT_BASE + HEAP_FLAT_SIZE) {
        if (base >= HEAP_FLAT_BASE && base < HEAP_FLAT_BASE + HEAP_FLAT_SIZE) flat_stopped = true;
        return;
    }
    size_t need = ((covered + len) >> PAGE_SHIFT) * sizeof(struct mspan *);
    if (need > flat_mapped) {
        size_t grow = (need - flat_mapped + FLAT_STEP - 1) & ~(FLAT_STEP - 1);
        void *p;
        if (!heap_flat.map) {
            if (os_map(&p, (void *)FLAT_MAP_HINT, grow, true) == 0) {
                heap_flat.map = p;
                flat_mapped = grow;
            } else if (os_map(&p, NULL, (HEAP_FLAT_SIZE >> PAGE_SHIFT) * sizeof(struct mspan *),
                              false) == 0) {
                heap_flat.map = p; /* the hint is taken: all at once, anywhere */
                flat_mapped = (HEAP_FLAT_SIZE >> PAGE_SHIFT) * sizeof(struct mspan *);
            } else {
                flat_stopped = true; /* the index serves everything */
                return;
            }
        } else if (os_map(&p, (char *)heap_flat.map + flat_mapped, grow, true) == 0) {
            flat_mapped += grow;
        } else {
            flat_stopped = true;
            return;
        }
    }
    atomic_store_rel(&heap_flat.size, covered + len);
}

/* Maps len bytes at a hint, advancing the hints; 0 when no hint worked, and
 * -ENOMEM in *err when the OS refused memory outright. */
static uintptr_t map_hinted(size_t len, int *err) {
    while (hint_region < HINT_NREG) {
        uintptr_t h = hint_addr ? hint_addr : hint_region * HINT_REGION | HINT_BASE;
        if (h + len > USER_TOP || h + len < h) {
            hint_region++;
            hint_addr = 0;
            continue;
        }
        void *p;
        int e = os_map(&p, (void *)h, len, true);
        if (e == 0) {
            hint_addr = h + len;
            return h;
        }
        if (e == -ENOMEM) {
            *err = e;
            return 0;
        }
        hint_region++; /* something lives there: move to the next region */
        hint_addr = 0;
    }
    return 0;
}

/* Maps len bytes anywhere, 64 MiB aligned. */
static uintptr_t map_anywhere(size_t len) {
    void *p;
    if (len + ARENA_BYTES < len) return 0;
    if (os_map(&p, NULL, len + ARENA_BYTES, false) < 0) return 0;
    uintptr_t raw = (uintptr_t)p;
    uintptr_t base = (raw + ARENA_BYTES - 1) & ~(uintptr_t)(ARENA_BYTES - 1);
    if (base > raw) os_unmap(p, base - raw);
    os_unmap((void *)(base + len), raw + ARENA_BYTES - base); /* base < raw + ARENA_BYTES */
    if (base + len > ((uintptr_t)1 << HEAP_ADDR_BITS)) {      /* outside what the index covers */
        os_unmap((void *)base, len);
        return 0;
    }
    return base;
}

uintptr_t arena_grow(size_t n) {
    if (n == 0 || n > (((uintptr_t)1 << HEAP_ADDR_BITS) >> ARENA_SHIFT)) return 0;
    size_t len = n << ARENA_SHIFT;
    lock(&arena_lock);
    uintptr_t base = 0;
    int err = 0;
    base = map_hinted(len, &err);
    if (!base && err == 0) base = map_anywhere(len);
    if (!base) goto out;
    struct heap_arena *rec =
        l2_ensure(base, len) == 0 ? persistent_alloc(n * sizeof *rec, 64, &arena_meta_bytes) : NULL;
    if (!rec) {
        os_unmap((void *)base, len);
        if (hint_addr == base + len) hint_addr = base; /* try the same place next time */
        base = 0;
        goto out;
    }
    flat_extend(base, len);
    for (size_t i = 0; i < n; i++) {
        struct heap_arena *ha = &rec[i]; /* zeroed: no spans; pa is the page allocator's */
        ha->base = base + (i << ARENA_SHIFT);
        ha->next = arena_list;
        atomic_store_rel(&arena_list, ha);
        uintptr_t ai = ha->base >> ARENA_SHIFT;
        atomic_store_rel(&arena_l1[ai >> ARENA_L2_BITS][ai & (L2_ENTRIES - 1)], ha);
    }
    atomic_store_relaxed(&arena_reserved_bytes, arena_reserved_bytes + len);
out:
    unlock(&arena_lock);
    return base;
}

void arena_set_spans(uintptr_t base, size_t npages, struct mspan *s) {
    uintptr_t pn = base >> PAGE_SHIFT;
    while (npages) {
        struct heap_arena *ha = arena_of(pn << PAGE_SHIFT);
        if (unlikely(!ha)) throw("arena_set_spans: address not in the heap");
        size_t i = pn & (PAGES_PER_ARENA - 1);
        size_t m = PAGES_PER_ARENA - i < npages ? PAGES_PER_ARENA - i : npages;
        for (size_t j = 0; j < m; j++) atomic_store_rel(&ha->spans[i + j], s);
        uintptr_t off = (pn << PAGE_SHIFT) - HEAP_FLAT_BASE;
        if (off < heap_flat.size)
            for (size_t j = 0; j < m; j++)
                atomic_store_rel(&heap_flat.map[(off >> PAGE_SHIFT) + j], s);
        pn += m;
        npages -= m;
    }
}

void arena_atfork_prepare(void) {
    lock(&arena_lock);
}

void arena_atfork_parent(void) {
    unlock(&arena_lock);
}

void arena_atfork_child(void) {
    arena_lock = (lock_t)LOCK_INIT;
}
