/* The gort tour. Build and run it with `make demo`.
 *
 * gort is Go's runtime as a C library. This tour grows as the runtime does;
 * today it shows the layer everything else stands on: Go's memory allocator
 * (size classes, per-thread caches, a page heap, a scavenger) used as a
 * malloc, with Go's MemStats to watch it. */
#include <gort.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MIB (1024.0 * 1024.0)

static void show(const char *when) {
    gort_memstats ms;
    gort_read_memstats(&ms);
    printf("  %-34s HeapAlloc %7.2f MiB  HeapInuse %7.2f MiB  HeapReleased %7.2f MiB  objects %llu\n",
           when, ms.heap_alloc / MIB, ms.heap_inuse / MIB, ms.heap_released / MIB,
           (unsigned long long)ms.heap_objects);
}

/* A second thread frees what the first allocated: gort's spans take frees
 * from any thread. */
static void *free_them(void *arg) {
    void **blocks = arg;
    for (int i = 0; i < 100000; i++) gort_free(blocks[i]);
    return NULL;
}

int main(void) {
    printf("1. Go's size classes: a request is rounded up to one of 67 classes\n");
    size_t sizes[] = {1, 17, 100, 1000, 5000, 40000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = gort_malloc(sizes[i]);
        printf("  gort_malloc(%5zu) -> %p, usable %zu bytes\n", sizes[i], p, gort_usable_size(p));
        gort_free(p);
    }

    printf("\n2. Allocate 100,000 blocks here, free them on another thread\n");
    static void *blocks[100000];
    show("start");
    for (int i = 0; i < 100000; i++) {
        blocks[i] = gort_malloc(64 + (size_t)(i % 8) * 64);
        memset(blocks[i], 0xab, 64);
    }
    show("after 100,000 mallocs");
    pthread_t t;
    pthread_create(&t, NULL, free_them, blocks);
    pthread_join(t, NULL);
    show("after the other thread freed them");

    printf("\n3. Return free memory to the OS (Go's debug.FreeOSMemory)\n");
    void *big = gort_malloc(64 << 20);
    memset(big, 1, 64 << 20);
    show("with a 64 MiB block in use");
    gort_free(big);
    gort_free_os_memory();
    show("after free + gort_free_os_memory");

    printf("\n4. Misuse is caught: gort_free of a pointer twice, or of an interior\n"
           "   pointer, is a fatal error naming the pointer (exit code 2), as Go's\n"
           "   runtime errors are. (Try it: tests/test_misuse.c shows each case.)\n");
    printf("\nNext: goroutines, channels, the garbage collector (see README.md).\n");
    return 0;
}
