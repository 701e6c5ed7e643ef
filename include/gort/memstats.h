/* Go's runtime.MemStats, field for field, in snake_case. */
#ifndef GORT_MEMSTATS_H
#define GORT_MEMSTATS_H

#include <stdbool.h>
#include <stdint.h>

#include "gort/config.h"

GORT_EXTERN_C_BEGIN

#define GORT_NUM_SIZE_CLASSES 68 /* as Go's; BySize has 61 entries as Go's */

typedef struct gort_memstats {
    /* General statistics. */
    uint64_t alloc;       /* bytes of allocated heap objects (= heap_alloc) */
    uint64_t total_alloc; /* cumulative bytes allocated (never decreases) */
    uint64_t sys;         /* total bytes obtained from the OS (sum of the *_sys fields) */
    uint64_t lookups;     /* pointer lookups by the runtime (always 0, as Go's) */
    uint64_t mallocs;     /* cumulative count of heap objects allocated */
    uint64_t frees;       /* cumulative count of heap objects freed */

    /* Heap memory statistics. */
    uint64_t heap_alloc;    /* bytes of allocated heap objects */
    uint64_t heap_sys;      /* bytes of heap memory obtained from the OS (virtual) */
    uint64_t heap_idle;     /* bytes in idle (unused) spans */
    uint64_t heap_inuse;    /* bytes in in-use spans */
    uint64_t heap_released; /* bytes of physical memory returned to the OS */
    uint64_t heap_objects;  /* number of allocated heap objects */

    /* Stack memory statistics. */
    uint64_t stack_inuse; /* bytes in stack spans */
    uint64_t stack_sys;   /* bytes of stack memory obtained from the OS */

    /* Off-heap memory statistics. */
    uint64_t mspan_inuse;   /* bytes of allocated mspan structures */
    uint64_t mspan_sys;     /* bytes obtained from the OS for mspan structures */
    uint64_t mcache_inuse;  /* bytes of allocated mcache structures */
    uint64_t mcache_sys;    /* bytes obtained from the OS for mcache structures */
    uint64_t buck_hash_sys; /* bytes of memory in profiling bucket hash tables */
    uint64_t gc_sys;        /* bytes of memory in garbage collection metadata */
    uint64_t other_sys;     /* bytes of memory in miscellaneous off-heap allocations */

    /* Garbage collector statistics. */
    uint64_t next_gc;        /* target heap size of the next GC cycle */
    uint64_t last_gc;        /* time the last GC finished, ns since the Unix epoch */
    uint64_t pause_total_ns; /* cumulative ns in GC stop-the-world pauses */
    uint64_t pause_ns[256];  /* circular buffer of recent pause times */
    uint64_t pause_end[256]; /* circular buffer of recent pause end times */
    uint32_t num_gc;         /* completed GC cycles */
    uint32_t num_forced_gc;  /* GC cycles forced by the program (runtime.GC) */
    double gc_cpu_fraction;  /* fraction of CPU time used by the GC */
    bool enable_gc;          /* always true, as Go's */
    bool debug_gc;           /* currently unused, as Go's */

    /* Per-size-class allocation statistics (Go's BySize: 61 entries). */
    struct {
        uint32_t size;    /* maximum byte size of an object in this class */
        uint64_t mallocs; /* cumulative count of objects allocated in this class */
        uint64_t frees;   /* cumulative count of objects freed in this class */
    } by_size[61];

    /* Beyond Go's MemStats (Go shows these in runtime/metrics): the memory
     * limit and the GC CPU limiter (docs/gc.md, "The memory limit"). */
    int64_t memory_limit;          /* bytes (GORT_GOMEMLIMIT, gort_set_memory_limit); INT64_MAX:
                                      none */
    uint64_t memory_limit_counted; /* what the limit counts now: heap_sys - heap_released, the
                                      runtime's metadata and the goroutine stacks (estimated) */
    uint64_t gc_assist_ns;         /* cumulative CPU ns of mark assists (waits for the workers
                                      included: the program's thread is held) */
    uint64_t gc_worker_ns;         /* cumulative CPU ns of mark workers on the program's share */
    uint64_t gc_idle_ns;           /* cumulative CPU ns of mark workers on idle Ps */
    uint64_t gc_pause_cpu_ns;      /* cumulative stop-the-world ns times GOMAXPROCS */
    uint64_t limiter_engaged_ns;   /* total time the GC CPU limiter has been on */
    uint64_t limiter_overflow_ns;  /* GC CPU ns the limiter's full bucket had no room for */
    uint32_t limiter_enabled;      /* 1 while the limiter is on: assists are off, the heap may
                                      pass its goal and the limit */
    uint32_t limiter_last_enabled; /* the cycle (num_gc + 1 then) in which it last engaged (Go's
                                      /gc/limiter/last-enabled:gc-cycle); 0: never */
} gort_memstats;

/* Fills *ms; the figures are consistent with each other as Go's are
 * (alloc == heap_alloc, heap_objects == mallocs - frees, sys is the sum of
 * the *_sys fields, heap_idle + heap_inuse == heap_sys, heap_released <= heap_idle). */
GORT_API void gort_read_memstats(gort_memstats *ms);

GORT_EXTERN_C_END

#endif
