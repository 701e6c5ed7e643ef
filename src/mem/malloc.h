/* Internal allocation entry points (Go's malloc.go). The public malloc family
 * is in include/gort/malloc.h; GC allocation (Go's mallocgc) is the GC
 * layer's (src/gc/mallocgc.c). */
#ifndef GORT_MEM_MALLOC_H
#define GORT_MEM_MALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define malloc_roundup gort__malloc_roundup

/* Object size that serves a request of n bytes (Go's roundupsize). */
size_t malloc_roundup(size_t n);

#endif
