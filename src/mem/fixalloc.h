/* Persistent and fixed-size allocation for runtime metadata (Go's
 * persistentalloc and fixalloc).
 *
 * Runtime metadata (span records, arena records, page-allocator nodes, mcaches)
 * can never come from malloc: gort *is* malloc. persistent_alloc carves chunks
 * mapped from the OS and never frees; fixalloc keeps a free list of one object
 * size on top of it. Each fixalloc is protected by its caller's lock. Bytes
 * mapped are counted into a MemStats *_sys field given at init. */
#ifndef GORT_MEM_FIXALLOC_H
#define GORT_MEM_FIXALLOC_H

#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define fixalloc_alloc            gort__fixalloc_alloc
#define fixalloc_free             gort__fixalloc_free
#define fixalloc_init             gort__fixalloc_init
#define persistent_alloc          gort__persistent_alloc
#define persistent_atfork_child   gort__persistent_atfork_child
#define persistent_atfork_parent  gort__persistent_atfork_parent
#define persistent_atfork_prepare gort__persistent_atfork_prepare
#define persistent_bytes          gort__persistent_bytes

/* Returns zeroed memory of size bytes aligned to align (a power of two <= 4096),
 * or NULL if the OS refuses memory. Thread-safe. stat accumulates bytes mapped. */
void *persistent_alloc(size_t size, size_t align, uint64_t *stat);
/* Atomic: every byte persistent_alloc charged, whatever the stat (the sum of
 * every caller's stat): the runtime's metadata, which the memory limit
 * counts (src/mem/scavenge.h). */
extern uint64_t persistent_bytes;

typedef struct fixalloc {
    size_t size;    /* object size */
    void *list;     /* free objects, linked through their first word */
    char *chunk;    /* bump region */
    size_t nchunk;  /* bytes left in chunk */
    uint64_t *stat; /* MemStats field charged for chunks */
    uint64_t inuse; /* bytes handed out and not freed */
} fixalloc;

void fixalloc_init(fixalloc *f, size_t size, uint64_t *stat);
/* Zeroed object, or NULL when out of memory. Caller holds the lock guarding f. */
void *fixalloc_alloc(fixalloc *f);
void fixalloc_free(fixalloc *f, void *p);

/* fork handlers for the persistent allocator's lock (a leaf lock). */
void persistent_atfork_prepare(void);
void persistent_atfork_parent(void);
void persistent_atfork_child(void);

#endif
