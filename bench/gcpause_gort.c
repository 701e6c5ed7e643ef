/* gcpause with gort's collector (bench/peers/README.md, workload 7; peers:
 * gcpause/main.go at GOMAXPROCS 2, gcpause/gcpause_boehm.c).
 *
 * A live heap of 16,777,216 nodes of 64 bytes ({next; 7 x int64}, GORT_TYPE
 * with next as its pointer field: 1 GiB) reachable from a root array of as
 * many pointers (gort_new_array of a one-pointer type: 128 MiB), every
 * pointer stored with GORT_STORE; then a mutator loop at a paced garbage
 * rate that records every gap between two clock reads in the log-linear
 * histogram of bench/peers/gcpause/hist.h; then the live list is walked and
 * its checksum verified.
 *
 * Usage: gcpause_gort [seconds] [MB_per_s] [live_GiB]   (defaults 10, 256, 1;
 * live_GiB 8 is the large heap, run by hand: RSS about 2.2x it)
 * One goroutine under gort_main, GOMAXPROCS 2 unless GORT_GOMAXPROCS says
 * otherwise (peer name gort-p<N>).
 * Figures: max_stall (us, the key one), p99_stall (us), gcs (the num_gc
 * delta over the loop) and max_stw (us: the longest stop-the-world time of
 * a cycle that ended during the loop, from MemStats.pause_ns, which holds
 * a cycle's two pauses added together); INFO lines give p99.9, p99.99, the
 * gaps over 1 ms and the pauses. */
#include "gort/gc.h"
#include "gort/memstats.h"
#include "gort/sched.h"

#include "bench.h"
#include "peers/gcpause/hist.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static long NLIVE = 16 << 20; /* nodes: 1 GiB, or live_GiB's */
#define RING 4096

struct gnode { /* 64 bytes */
    struct gnode *next;
    int64_t payload[7];
};
GORT_TYPE(gnode, next);

struct garbage { /* the short-lived object: the same shape */
    struct garbage *next;
    int64_t payload[7];
};
GORT_TYPE(garbage, next);

struct root { /* one slot of the root array */
    struct gnode *p;
};
GORT_TYPE(root, p);

static struct root *roots;         /* a global: scanned as a root */
static struct garbage *ring[RING]; /* as Go's package-level array */

static uint64_t count_over(uint64_t ns) {
    uint64_t c = 0;
    for (int i = hist_idx(ns); i < HIST_N; i++) c += hist[i];
    return c;
}

static int bench(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 10.0;
    double rate = argc > 2 ? atof(argv[2]) : 256.0;
    if (argc > 3 && atof(argv[3]) > 0) NLIVE = (long)(atof(argv[3]) * (16 << 20));
    char peer[32];
    snprintf(peer, sizeof peer, "gort-p%d", gort_gomaxprocs(0));

    /* Phase 1: the live heap. roots[i] -> node i; node i.next -> node i-1. */
    long long tb = now_ns();
    GORT_STORE(roots, (struct root *)gort_new_array(&root_type, NLIVE));
    if (!roots) {
        printf("BAD out of memory (roots)\n");
        return 1;
    }
    struct gnode *prev = NULL;
    for (long i = 0; i < NLIVE; i++) {
        struct gnode *n = gort_new(&gnode_type);
        if (!n) {
            printf("BAD out of memory (node %ld)\n", i);
            return 1;
        }
        GORT_STORE(n->next, prev);
        n->payload[0] = i;
        GORT_STORE(roots[i].p, n);
        prev = n;
    }
    prev = NULL;
    double build = (now_ns() - tb) / 1e6;
    static gort_memstats ms; /* 4 KiB of pause buffers: not on the stack */
    gort_read_memstats(&ms);
    uint32_t gc0 = ms.num_gc;
    uint64_t pause0 = ms.pause_total_ns;
    printf("INFO build=%.0f ms heap_alloc=%llu MiB numgc_build=%u\n", build,
           (unsigned long long)(ms.heap_alloc >> 20), gc0);

    /* Phase 2: the paced mutator loop. */
    double bytes_per_ns = rate * 1e6 / 1e9;
    const uint64_t obj = 64;
    long long start = now_ns();
    long long end = (long long)(secs * 1e9);
    long long last = 0;
    uint64_t maxgap = 0, iters = 0, allocs = 0;
    int64_t ck = 0;
    for (;;) {
        long long now = now_ns() - start;
        uint64_t gap = (uint64_t)(now - last);
        last = now;
        hist[hist_idx(gap)]++;
        if (gap > maxgap) maxgap = gap;
        iters++;
        if (now >= end) break;
        if ((double)(allocs * obj) < (double)now * bytes_per_ns) {
            struct garbage *g = gort_new(&garbage_type);
            if (!g) {
                printf("BAD out of memory (garbage %llu)\n", (unsigned long long)allocs);
                return 1;
            }
            g->payload[0] = (int64_t)allocs;
            uint64_t slot = allocs % RING;
            if (ring[slot]) ck += ring[slot]->payload[0];
            GORT_STORE(ring[slot], g);
            allocs++;
        }
    }
    gort_read_memstats(&ms);
    uint32_t gcs = ms.num_gc - gc0;
    /* Cycle k (from 1) keeps its pauses at pause_ns[(k - 1) % 256]: the
     * cycles that ended during the loop are gc0 + 1 .. num_gc. */
    uint64_t max_stw = 0;
    char pauses[512] = "";
    size_t pn = 0;
    for (uint32_t k = gc0; k < ms.num_gc && k - gc0 < 256; k++) {
        uint64_t p = ms.pause_ns[k % 256];
        if (p > max_stw) max_stw = p;
        if (pn < sizeof pauses - 16)
            pn +=
                (size_t)snprintf(pauses + pn, sizeof pauses - pn, "%s%.1f", pn ? "," : "", p / 1e3);
    }

    /* Phase 3: the live structure, walked from the last root. */
    long long live = 0, sum = 0;
    for (struct gnode *n = roots[NLIVE - 1].p; n; n = n->next) {
        live++;
        sum += n->payload[0];
    }
    long long want = (long long)NLIVE * (NLIVE - 1) / 2; /* < 2^63 up to 3e9 nodes */
    printf("live nodes=%lld sum=%lld (want %lld)\n", live, sum, want);
    if (live != NLIVE || sum != want) {
        printf("BAD live structure\n");
        return 1;
    }
    printf("INFO iters=%llu allocs=%llu alloc_MB=%.0f ring_ck=%lld gc_pause_total_ms=%.1f"
           " heap_sys=%llu MiB\n",
           (unsigned long long)iters, (unsigned long long)allocs, allocs * obj / 1e6, (long long)ck,
           (ms.pause_total_ns - pause0) / 1e6, (unsigned long long)(ms.heap_sys >> 20));
    printf("INFO p99.99=%.1f us p99.9=%.1f us over1ms=%llu\n", hist_pct(0.9999, iters) / 1e3,
           hist_pct(0.999, iters) / 1e3, (unsigned long long)count_over(1000000));
    printf("INFO stw_per_cycle_us=[%s]\n", pauses);
    printf("RESULT gcpause %s max_stw=%.1f us\n", peer, max_stw / 1e3);
    printf("RESULT gcpause %s gcs=%u count\n", peer, gcs);
    printf("RESULT gcpause %s p99_stall=%.3f us\n", peer, hist_pct(0.99, iters) / 1e3);
    printf("RESULT gcpause %s max_stall=%.0f us\n", peer, maxgap / 1e3);
    return 0;
}

int main(int argc, char **argv) {
    if (!getenv("GORT_GOMAXPROCS")) gort_gomaxprocs(2);
    return gort_main(bench, argc, argv);
}
