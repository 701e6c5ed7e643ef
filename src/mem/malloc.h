/* Internal allocation entry points (Go's malloc.go). The public malloc family
 * is in include/gort/malloc.h. */
#ifndef GORT_MEM_MALLOC_H
#define GORT_MEM_MALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define malloc_roundup gort__malloc_roundup
#define mallocgc       gort__mallocgc

/* Go's mallocgc: an object of size bytes in GC memory (SPAN_GC spans);
 * noscan objects under 16 bytes share 16-byte tiny blocks. Zeroed when
 * needzero and the memory may hold old data. NULL when out of memory.
 * The GC layer builds gort_new/gort_alloc_noscan on this. */
void *mallocgc(size_t size, bool noscan, bool needzero);

/* Object size that serves a request of n bytes (Go's roundupsize). */
size_t malloc_roundup(size_t n);

#endif
