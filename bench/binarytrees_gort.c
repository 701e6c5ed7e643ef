/* binarytrees with gort's collector (bench/peers/README.md, workload 6;
 * peers: binarytrees/main.go seq at GOMAXPROCS 2, binarytrees.c with Boehm).
 *
 * Every node is gort_new(&node_type), its children stored with GORT_STORE;
 * no tree is freed, the collector reclaims them. The output must be
 * bench/peers/binarytrees/expected-21.txt byte for byte at depth 21 (every
 * check is also verified here: a tree of depth d checks 2^(d+1) - 1).
 *
 * Usage: binarytrees_gort [depth] [main|plain]
 *   main  (default): one goroutine under gort_main, GOMAXPROCS 2 unless
 *         GORT_GOMAXPROCS says otherwise (as go-seq-p2: the collector's
 *         threads may use the other core); peer name gort-seq-p<N>
 *   plain: a plain C main that never starts the scheduler (as c-boehm);
 *         peer name gort-plain
 * Figures: wall (ms, from the start of the program's main to the end) and
 * peak_rss (KiB, getrusage's ru_maxrss). */
#include "gort/gc.h"
#include "gort/memstats.h"
#include "gort/sched.h"

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct node {
    struct node *left, *right;
};
GORT_TYPE(node, left, right);

static struct node *bottom_up_tree(int depth) {
    struct node *n = gort_new(&node_type);
    if (!n) {
        printf("BAD out of memory\n");
        exit(1);
    }
    if (depth > 0) {
        GORT_STORE(n->left, bottom_up_tree(depth - 1));
        GORT_STORE(n->right, bottom_up_tree(depth - 1));
    }
    return n;
}

static long item_check(const struct node *n) {
    if (n->left == NULL) return 1;
    return 1 + item_check(n->left) + item_check(n->right);
}

#define MIN_DEPTH 4

static int bad;

/* The check of a tree of depth d. */
static long want_check(int d) {
    return (2L << d) - 1;
}

static void verify(const char *what, long got, long want) {
    if (got != want) {
        printf("BAD %s: check %ld, want %ld\n", what, got, want);
        bad = 1;
    }
}

static const char *peer;
static long long t0;

/* Each tree is built and checked in a function of its own, so that once it
 * returns no stale copy of the tree's root stays in a live frame or
 * register of run(): gort scans stacks conservatively (as Boehm does), and
 * a leftover pointer to the 128 MiB stretch tree would keep it alive. */
static __attribute__((noinline)) long check_new_tree(int depth) {
    long c = item_check(bottom_up_tree(depth));
    __asm__ __volatile__("" ::: "rbx", "r12", "r13", "r14", "r15", "memory");
    return c;
}

static int run(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 21;
    int max_depth = n < MIN_DEPTH + 2 ? MIN_DEPTH + 2 : n;
    int stretch_depth = max_depth + 1;

    long c = check_new_tree(stretch_depth);
    printf("stretch tree of depth %d\t check: %ld\n", stretch_depth, c);
    verify("stretch tree", c, want_check(stretch_depth));

    struct node *long_lived = bottom_up_tree(max_depth);

    for (int d = MIN_DEPTH; d <= max_depth; d += 2) {
        long iterations = 1L << (max_depth - d + MIN_DEPTH);
        long check = 0;
        for (long i = 1; i <= iterations; i++) check += check_new_tree(d);
        printf("%ld\t trees of depth %d\t check: %ld\n", iterations, d, check);
        verify("trees", check, iterations * want_check(d));
    }
    c = item_check(long_lived);
    printf("long lived tree of depth %d\t check: %ld\n", max_depth, c);
    verify("long lived tree", c, want_check(max_depth));
    gort_keep_alive(long_lived);

    double wall = (now_ns() - t0) / 1e6;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    gort_memstats ms;
    gort_read_memstats(&ms);
    uint64_t max_pause = 0;
    for (uint32_t i = 0; i < ms.num_gc && i < 256; i++)
        if (ms.pause_ns[i] > max_pause) max_pause = ms.pause_ns[i];
    printf("INFO numgc=%u pause_total=%.3f ms max_pause=%.1f us gc_cpu_fraction=%.3f"
           " heap_sys=%llu MiB\n",
           ms.num_gc, ms.pause_total_ns / 1e6, max_pause / 1e3, ms.gc_cpu_fraction,
           (unsigned long long)(ms.heap_sys >> 20));
    /* Where the resident memory beyond the heap goes (MiB at the end). */
    printf("INFO sys MiB: heap_inuse=%.1f heap_idle_unreleased=%.1f mspan=%.1f gc=%.1f"
           " stack=%.1f other=%.1f mcache=%.1f\n",
           ms.heap_inuse / 1048576.0, (ms.heap_idle - ms.heap_released) / 1048576.0,
           ms.mspan_sys / 1048576.0, ms.gc_sys / 1048576.0, ms.stack_sys / 1048576.0,
           ms.other_sys / 1048576.0, ms.mcache_sys / 1048576.0);
    printf("RESULT binarytrees %s peak_rss=%ld KiB\n", peer, ru.ru_maxrss);
    printf("RESULT binarytrees %s wall=%.0f ms\n", peer, wall);
    printf("RESULT binarytrees %s max_stw=%.1f us\n", peer, max_pause / 1e3);
    fflush(stdout);
    return bad;
}

static int goroutine_main(int argc, char **argv) {
    t0 = now_ns();
    static char name[32];
    snprintf(name, sizeof name, "gort-seq-p%d", gort_gomaxprocs(0));
    peer = name;
    return run(argc, argv);
}

int main(int argc, char **argv) {
    const char *mode = argc > 2 ? argv[2] : "main";
    if (strcmp(mode, "plain") == 0) {
        t0 = now_ns();
        peer = "gort-plain";
        return run(argc, argv);
    }
    if (strcmp(mode, "main") != 0) {
        fprintf(stderr, "usage: binarytrees_gort [depth] [main|plain]\n");
        return 2;
    }
    if (!getenv("GORT_GOMAXPROCS")) gort_gomaxprocs(2);
    return gort_main(goroutine_main, argc, argv);
}
