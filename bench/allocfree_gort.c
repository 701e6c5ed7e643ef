/* allocfree with gort's collector (bench/peers/README.md, workload 8; peers:
 * allocfree/main.go scan and noscan at GOMAXPROCS 2, allocfree.c with
 * Boehm).
 *
 * 100,000,000 iterations: allocate S bytes, write i & 0xff into the first
 * word (typed) or byte (noscan), publish the object in a global sink with
 * GORT_STORE, read the value back through the sink into a checksum (the sum
 * over i of i & 0xff), drop it. Typed objects are gort_new of a type whose
 * every word is a pointer field (as Go's [S/8]unsafe.Pointer); noscan ones
 * are gort_alloc_noscan(S) (as Go's [S]byte).
 *
 * Usage: allocfree_gort SIZE [scan|noscan] [count]   SIZE 16, 64 or 256
 * One goroutine under gort_main, GOMAXPROCS 2 unless GORT_GOMAXPROCS says
 * otherwise. Peer names gort and gort-noscan (as go and go-noscan). Metric
 * alloc, ns per iteration. */
#include "gort/gc.h"
#include "gort/memstats.h"
#include "gort/sched.h"

#include "bench.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct o16 {
    void *p[2];
};
GORT_TYPE(o16, p);
struct o64 {
    void *p[8];
};
GORT_TYPE(o64, p);
struct o256 {
    void *p[32];
};
GORT_TYPE(o256, p);

/* The sinks: globals, so scanned as roots; one per type, as Go's. */
static struct o16 *sink16;
static struct o64 *sink64;
static struct o256 *sink256;
static unsigned char *sink_noscan;

/* The typed loop for struct T: i & 0xff is not a heap pointer, so the
 * store into the fresh object needs no barrier (Go elides it too). */
#define TYPED_LOOP(T, sink)                                                                        \
    for (long i = 0; i < n; i++) {                                                                 \
        struct T *p = gort_new(&T##_type);                                                         \
        p->p[0] = (void *)(uintptr_t)(i & 0xff);                                                   \
        GORT_STORE(sink, p);                                                                       \
        ck += (uintptr_t)sink->p[0];                                                               \
    }

static int bench(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: allocfree_gort SIZE [scan|noscan] [count]\n");
        return 2;
    }
    long size = atol(argv[1]);
    const char *mode = argc > 2 ? argv[2] : "scan";
    long n = argc > 3 ? atol(argv[3]) : 100000000L;
    bool noscan = strcmp(mode, "noscan") == 0;
    if ((!noscan && strcmp(mode, "scan") != 0) || (size != 16 && size != 64 && size != 256)) {
        fprintf(stderr, "SIZE must be 16, 64 or 256; mode scan or noscan\n");
        return 2;
    }
    uint64_t ck = 0;
    long long t0 = now_ns();
    if (noscan) {
        for (long i = 0; i < n; i++) {
            unsigned char *p = gort_alloc_noscan((size_t)size);
            p[0] = (unsigned char)i;
            GORT_STORE(sink_noscan, p);
            ck += sink_noscan[0];
        }
    } else if (size == 16) {
        TYPED_LOOP(o16, sink16)
    } else if (size == 64) {
        TYPED_LOOP(o64, sink64)
    } else {
        TYPED_LOOP(o256, sink256)
    }
    long long t1 = now_ns();
    gort_memstats ms;
    gort_read_memstats(&ms);
    uint64_t want = 0;
    for (int i = 0; i < 256; i++) want += (uint64_t)i;
    want *= (uint64_t)(n / 256);
    for (int i = 0; i < n % 256; i++) want += (uint64_t)i;
    printf("allocs=%ld size=%ld checksum=%llu numgc=%u\n", n, size, (unsigned long long)ck,
           ms.num_gc);
    printf("INFO pause_total=%.3f ms gc_cpu_fraction=%.3f heap_sys=%llu MiB\n",
           ms.pause_total_ns / 1e6, ms.gc_cpu_fraction, (unsigned long long)(ms.heap_sys >> 20));
    if (ck != want) {
        printf("BAD checksum want %llu\n", (unsigned long long)want);
        return 1;
    }
    printf("RESULT allocfree-%ld %s alloc=%.2f ns\n", size, noscan ? "gort-noscan" : "gort",
           (double)(t1 - t0) / (double)n);
    return 0;
}

int main(int argc, char **argv) {
    if (!getenv("GORT_GOMAXPROCS")) gort_gomaxprocs(2);
    return gort_main(bench, argc, argv);
}
