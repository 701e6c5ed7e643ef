/* Page allocator scaling: alloc+free time with 1 GiB of address space under
 * management against 32 GiB, mostly free and returned to the OS. The claim
 * (mpagealloc.h) is that the cost does not grow with the heap: the two must be
 * within 1.5x of each other.
 *
 *   pagealloc_bench GIB [ops]    one measurement in this process
 *   pagealloc_bench compare [runs [ops]]
 *                                1 and 32 GiB, each in fresh child processes
 *                                (fork + exec of this program), interleaved,
 *                                `runs` times; medians and their ratio
 *
 * Setup grows the heap to GIB GiB with 1 GiB requests, frees it all and
 * scavenges everything, so the heap is one released run and RSS stays low: the
 * pages are never touched. The timed workload is the same in both cases, with a
 * fixed seed: 4096 live allocations of 1-16 pages, one in 64 of 64-512 pages;
 * each step frees a random live one and allocates a replacement. It lives in
 * the low part of the heap (lowest address first), so the rest of the address
 * space is what differs. */
#define _GNU_SOURCE
#include "base/os.h"
#include "mem/arena.h"
#include "mem/mpagealloc.h"

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LIVE      4096
#define GIB_PAGES (((size_t)1 << 30) / PAGE_SIZE)
#define DEF_OPS   1000000L
#define DEF_RUNS  5
#define WITHIN    1.5

static uint64_t seed = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

static size_t pick_size(void) {
    if (rnd() % 64 == 0) return 64 + rnd() % 449;
    return 1 + rnd() % 16;
}

static uintptr_t must_alloc(size_t n) {
    size_t rel;
    bool nz;
    uintptr_t p = pagealloc_alloc(n, &rel, &nz);
    if (!p) {
        fprintf(stderr, "pagealloc_bench: out of memory allocating %zu pages\n", n);
        exit(1);
    }
    return p;
}

static int run_one(long gib, long ops) {
    static uintptr_t chunks[4096];
    static struct {
        uintptr_t p;
        size_t n;
    } live[LIVE];
    if (gib < 1 || gib > 4096 || ops < 1) {
        fprintf(stderr, "pagealloc_bench: GIB must be 1..4096 and ops >= 1\n");
        return 2;
    }

    int64_t t0 = now_ns();
    for (long i = 0; i < gib; i++) chunks[i] = must_alloc(GIB_PAGES);
    for (long i = 0; i < gib; i++) pagealloc_free(chunks[i], GIB_PAGES);
    size_t scav = pagealloc_scavenge(SIZE_MAX);
    int64_t t1 = now_ns();
    struct pagealloc_stats st;
    pagealloc_read_stats(&st);
    printf("setup: %ld GiB managed in %.1f ms; scavenged %zu pages; mapped %llu MiB, "
           "released %llu MiB, meta %llu KiB, rss %zu KiB\n",
           gib, (double)(t1 - t0) / 1e6, scav,
           (unsigned long long)(st.mapped_pages * PAGE_SIZE >> 20),
           (unsigned long long)(st.released_pages * PAGE_SIZE >> 20),
           (unsigned long long)(st.meta_bytes >> 10), os_rss() >> 10);

    for (int i = 0; i < LIVE; i++) {
        live[i].n = pick_size();
        live[i].p = must_alloc(live[i].n);
    }
    for (long op = 0; op < ops / 4; op++) { /* warm up to the steady state */
        int i = (int)(rnd() % LIVE);
        pagealloc_free(live[i].p, live[i].n);
        live[i].n = pick_size();
        live[i].p = must_alloc(live[i].n);
    }
    int64_t t2 = now_ns();
    for (long op = 0; op < ops; op++) {
        int i = (int)(rnd() % LIVE);
        pagealloc_free(live[i].p, live[i].n);
        live[i].n = pick_size();
        live[i].p = must_alloc(live[i].n);
    }
    int64_t t3 = now_ns();
    double pair = (double)(t3 - t2) / (double)ops;

    pagealloc_read_stats(&st);
    printf("steady state: %ld pairs; mapped %llu MiB, free %llu MiB, released %llu MiB, "
           "meta %llu KiB, rss %zu KiB\n",
           ops, (unsigned long long)(st.mapped_pages * PAGE_SIZE >> 20),
           (unsigned long long)(st.free_pages * PAGE_SIZE >> 20),
           (unsigned long long)(st.released_pages * PAGE_SIZE >> 20),
           (unsigned long long)(st.meta_bytes >> 10), os_rss() >> 10);
    printf("RESULT pagealloc-%ldg gort pair=%.1f ns\n", gib, pair);
    return 0;
}

/* Runs this program on "gib ops" in a child; returns its pair time, or -1. */
static double run_child(const char *self, long gib, long ops, bool show) {
    char a1[32], a2[32];
    snprintf(a1, sizeof a1, "%ld", gib);
    snprintf(a2, sizeof a2, "%ld", ops);
    int pfd[2];
    if (pipe(pfd) < 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execl(self, self, a1, a2, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    static char buf[8192];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(pfd[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(pfd[0]);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "pagealloc_bench: child for %ld GiB failed:\n%s", gib, buf);
        return -1;
    }
    char *res = strstr(buf, "RESULT pagealloc-");
    char *pr = res ? strstr(res, "pair=") : NULL;
    if (!pr) return -1;
    if (show) { /* the child's setup line */
        char *nl = strchr(buf, '\n');
        if (nl) fprintf(stdout, "  [%ld GiB] %.*s\n", gib, (int)(nl - buf), buf);
    }
    return strtod(pr + 5, NULL);
}

static int compare(int runs, long ops) {
    const char *self = "/proc/self/exe";
    double t1[64], t32[64];
    if (runs < 1 || runs > 64) runs = DEF_RUNS;
    for (int i = 0; i < runs; i++) { /* interleaved, so drift hits both alike */
        t1[i] = run_child(self, 1, ops, i == 0);
        t32[i] = run_child(self, 32, ops, i == 0);
        if (t1[i] < 0 || t32[i] < 0) return 1;
        printf("run %d: 1 GiB %.1f ns, 32 GiB %.1f ns per alloc+free\n", i + 1, t1[i], t32[i]);
    }
    qsort(t1, (size_t)runs, sizeof t1[0], cmp_double);
    qsort(t32, (size_t)runs, sizeof t32[0], cmp_double);
    double m1 = t1[runs / 2], m32 = t32[runs / 2];
    if (runs % 2 == 0) {
        m1 = (t1[runs / 2 - 1] + m1) / 2;
        m32 = (t32[runs / 2 - 1] + m32) / 2;
    }
    double ratio = m32 / m1;
    printf("median of %d runs, %ld pairs each: 1 GiB %.1f ns, 32 GiB %.1f ns; "
           "ratio 32g/1g %.2f: %s 1.5x\n",
           runs, ops, m1, m32, ratio,
           ratio <= WITHIN && ratio >= 1 / WITHIN ? "within" : "NOT within");
    printf("RESULT pagealloc-1g gort pair=%.1f ns\n", m1);
    printf("RESULT pagealloc-32g gort pair=%.1f ns\n", m32);
    printf("RESULT pagealloc-ratio gort ratio=%.2f\n", ratio);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "compare") == 0)
        return compare(argc >= 3 ? atoi(argv[2]) : DEF_RUNS, argc >= 4 ? atol(argv[3]) : DEF_OPS);
    if (argc < 2) {
        fprintf(stderr,
                "usage: pagealloc_bench GIB [ops] | pagealloc_bench compare [runs [ops]]\n");
        return 2;
    }
    return run_one(atol(argv[1]), argc >= 3 ? atol(argv[2]) : DEF_OPS);
}
