/* Internal allocation entry points (Go's malloc.go). The public malloc family
 * is in include/gort/malloc.h; GC allocation (Go's mallocgc) is the GC
 * layer's (src/gc/mallocgc.c). */
#ifndef GORT_MEM_MALLOC_H
#define GORT_MEM_MALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define cxx_new_retry                gort__cxx_new_retry
#define malloc_direct                gort__malloc_direct
#define malloc_direct_atfork_child   gort__malloc_direct_atfork_child
#define malloc_direct_atfork_parent  gort__malloc_direct_atfork_parent
#define malloc_direct_atfork_prepare gort__malloc_direct_atfork_prepare
#define malloc_direct_free           gort__malloc_direct_free
#define malloc_direct_size           gort__malloc_direct_size
#define malloc_roundup               gort__malloc_roundup

#include <stdint.h>

/* Object size that serves a request of n bytes (Go's roundupsize). */
size_t malloc_roundup(size_t n);

/* libgort-malloc.so with C++ operators (GORT_PRELOAD_CXX): operator new(n)
 * after gort failed to allocate n bytes; never returns NULL (the C++
 * runtime's new_handler loop, then std::bad_alloc; malloc_new.cc). */
void *cxx_new_retry(size_t n);

/* Alignments above this come from malloc_direct, not the heap. */
#define MALLOC_DIRECT_ALIGN ((size_t)64 << 20) /* ARENA_BYTES */
/* An explicit object of n bytes aligned to align, in a mapping of its own
 * (malloc_direct.c); NULL when the OS refuses. */
void *malloc_direct(size_t n, size_t align);
/* The bytes of the direct object at p, or 0 if p is not one. */
size_t malloc_direct_size(uintptr_t p);
/* Frees the direct object at p; false if p is not one. */
bool malloc_direct_free(uintptr_t p);
void malloc_direct_atfork_prepare(void);
void malloc_direct_atfork_parent(void);
void malloc_direct_atfork_child(void);

#endif
