/* Internal allocation entry points (Go's malloc.go). The public malloc family
 * is in include/gort/malloc.h; GC allocation (Go's mallocgc) is the GC
 * layer's (src/gc/mallocgc.c). */
#ifndef GORT_MEM_MALLOC_H
#define GORT_MEM_MALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define cxx_new_retry  gort__cxx_new_retry
#define malloc_roundup gort__malloc_roundup

/* Object size that serves a request of n bytes (Go's roundupsize). */
size_t malloc_roundup(size_t n);

/* libgort-malloc.so with C++ operators (GORT_PRELOAD_CXX): operator new(n)
 * after gort failed to allocate n bytes; never returns NULL (the C++
 * runtime's new_handler loop, then std::bad_alloc; malloc_new.cc). */
void *cxx_new_retry(size_t n);

#endif
