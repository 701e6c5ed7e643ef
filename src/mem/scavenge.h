/* The scavenger: returns memory a program no longer uses, on a clock (Go's
 * mgcscavenge.go paces its scavenger by time; mimalloc waits a purge delay).
 *
 * Every period (100 ms) it does two things. First mcentral_trim: empty
 * explicit spans that waited a whole period on their central's empty list
 * without being reused go to the page heap (mcentral.c). Then a step toward
 * a retained-memory goal: retained memory is heap_sys - heap_released, what
 * the heap may hold resident; the goal is 10% above the peak of heap_inuse
 * over the last ten periods (Go retains 10% over the heap goal), at least
 * 4 MiB above it, and under a memory limit at most the limit; the
 * excess goes back to the OS (MADV_DONTNEED), highest addresses first, at
 * most 64 MiB per period. So a page is released only after a second in
 * which the program never needed it (the page allocator records the peak
 * as it hands out pages).
 *
 * Who runs the period: in the library, a background thread. Under
 * LD_PRELOAD (no threads of our own in somebody else's program) the
 * allocation slow path does (scavenge_tick, every few span refills: a
 * clock read, and one thread per period runs it, inline, bounded). A free
 * never runs it: until 2026-11 the freeing thread released pages inline
 * after every 16 MiB freed, which cost a producer/consumer program 15,577
 * madvise calls and 13 times mimalloc's page faults in 5 s. Pressure: under
 * a memory limit, 16 MiB of freed pages make the next tick run at once.
 *
 * The memory limit (Go's GOMEMLIMIT: GORT_GOMEMLIMIT, gort_set_memory_limit)
 * counts what Go's counts, everything the runtime maps minus what it gave
 * back: the heap's retained pages, the runtime's metadata (every byte of
 * persistent_alloc: span records, mcaches, page-allocator and arena records,
 * the collector's work buffers and specials, goroutine records, ...) and
 * what the layers above publish in mem_limit_extra (goroutine stacks, as the
 * collector estimates them). Under a limit:
 *   - the retained goal is at most the limit less the non-heap part (Go's
 *     memoryLimitGoal is 95% of it, worked toward at 1% of a CPU; see
 *     scavenge.c's goal_of for why gort's is the limit), and a wake that
 *     finds the process over the limit itself releases all of the overage
 *     at once, not 64 MiB;
 *   - allocation scavenges inline (Go's scavenge assist in allocSpan): a
 *     span that took released pages grew the process; if that puts it over
 *     the limit, as many other free pages go back at once
 *     (scavenge_alloc_assist), unless the GC CPU limiter is on
 *     (mem_limit_assist_off: a program in a death spiral should not pay for
 *     page faults too, Go's rule);
 *   - the collector lowers its heap goal to fit (src/gc/mgcpacer.c). */
#ifndef GORT_MEM_SCAVENGE_H
#define GORT_MEM_SCAVENGE_H

#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define scavenge_atfork_child   gort__scavenge_atfork_child
#define scavenge_atfork_parent  gort__scavenge_atfork_parent
#define scavenge_atfork_prepare gort__scavenge_atfork_prepare
#define scavenge_goal           gort__scavenge_goal
#define scavenge_note_free      gort__scavenge_note_free
#define scavenge_step           gort__scavenge_step
#define scavenge_tick           gort__scavenge_tick
#define scavenger_start         gort__scavenger_start
#define scavenger_started       gort__scavenger_started
#define scavenge_alloc_assist   gort__scavenge_alloc_assist
#define free_os_memory_gc_hook  gort__free_os_memory_gc_hook
#define mem_limit               gort__mem_limit
#define mem_limit_assist_off    gort__mem_limit_assist_off
#define mem_limit_extra         gort__mem_limit_extra
#define mem_limit_read          gort__mem_limit_read

/* Called by mheap (any lock may be held; it takes none): pages given back
 * to the page heap. */
void scavenge_note_free(size_t npages);
/* Under LD_PRELOAD, runs the scavenger's period if it is due; a no-op in
 * the library (its thread runs it). Call with no allocator lock held. */
void scavenge_tick(void);

/* Starts the background scavenger once (library mode); safe to call often,
 * but only where no allocator lock is held (it creates a thread). */
void scavenger_start(void);
extern int scavenger_started; /* nonzero once started (reset in a forked child) */

/* fork handlers: the scavenging step's lock; the child has no scavenger
 * thread, so the next allocation slow path starts a new one. */
void scavenge_atfork_prepare(void);
void scavenge_atfork_parent(void);
void scavenge_atfork_child(void);

/* The current retained-memory goal in bytes, and one scavenging step toward
 * it; returns bytes released. Exported for tests. */
uint64_t scavenge_goal(void);
uint64_t scavenge_step(uint64_t max_bytes);

/* The memory limit in bytes, INT64_MAX for none (atomic): GORT_GOMEMLIMIT
 * at start (mheap_init), then gort_set_memory_limit (src/gc). */
extern int64_t mem_limit;
/* Atomic: bytes the layers above count toward the limit that the heap
 * cannot see (goroutine stacks; published by the collector). */
extern uint64_t mem_limit_extra;
/* Atomic: nonzero while the GC CPU limiter is on (no inline scavenging). */
extern uint32_t mem_limit_assist_off;

/* What the memory limit counts, now (Go's mappedReady and its parts). */
struct mem_limit_view {
    uint64_t counted;       /* heap_retained + persistent_bytes + mem_limit_extra */
    uint64_t heap_retained; /* heap pages mapped and not released (HeapSys - HeapReleased) */
    uint64_t heap_free;     /* of those, the free ones (HeapIdle - HeapReleased): reusable
                               without asking the OS */
    uint64_t heap_inuse;    /* pages in spans (HeapInuse) */
};
void mem_limit_read(struct mem_limit_view *v);

/* Called by mheap_alloc_span when the span took npages released pages
 * (see the header). No lock held but the allocation's critical section. */
void scavenge_alloc_assist(size_t npages);

/* Installed by the collector: gort_free_os_memory runs a full collection
 * first (Go's debug.FreeOSMemory), so that what it returns is everything
 * the collector can free. */
extern void (*free_os_memory_gc_hook)(void);

#endif
