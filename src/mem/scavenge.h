/* The scavenger: returns free pages to the OS toward a retained-memory goal
 * (Go's mgcscavenge.go).
 *
 * Retained memory is heap_sys - heap_released: what the heap may hold
 * resident. The goal is 10% above the recent peak of heap_inuse (Go retains
 * 10% over the heap goal), never below heap_inuse + 4 MiB, and under a memory
 * limit at most 95% of it. In the library a background thread wakes every
 * 100 ms and releases the excess, highest addresses first, at most 64 MiB per
 * wake (Go paces its scavenger to ~1% of a CPU). Under LD_PRELOAD (no threads
 * of our own in somebody else's program) the same step runs inline after every
 * 16 MiB of freed pages. */
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
#define scavenger_start         gort__scavenger_start
#define scavenger_started       gort__scavenger_started

/* Called by mheap without locks held: pages given back to the page heap. */
void scavenge_note_free(size_t npages);

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

#endif
