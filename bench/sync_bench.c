/* sync_bench: gort's sync package against Go's, GOMAXPROCS=2.
 *
 *   mutex-2, mutex-8: 2 or 8 goroutines share one mutex and each do
 *     TOTAL/N lock; counter++; unlock pairs. ns per pair (total time over
 *     TOTAL pairs). Peer: bench/peers/mutex/main.go (workload 16 of
 *     bench/peers/README.md).
 *   spawn: workload 5 of bench/peers/README.md:
 *     wg.Add(1000000); 1,000,000 goroutines each only call wg.Done();
 *     wg.Wait(). ns per goroutine. Peer: bench/peers/spawn/main.go.
 * Each is timed REPS (5) times; the median is reported as a RESULT line.
 *
 * Usage: sync_bench [reps [mutex|spawn]]. With GO_MUTEX_PEER and/or GO_SPAWN_PEER set to
 * the built Go peers' paths, it runs them first (GOMAXPROCS=2) and prints
 * gort/Go ratios (target: <= 0.8). */
#include "gort/sched.h"
#include "gort/sync.h"

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOTAL_PAIRS 2000000L
#define SPAWN_N     1000000L

static int reps = 5;
static const char *only;               /* argv[2]: "mutex" or "spawn" runs just that */
static double go_ns[3] = {-1, -1, -1}; /* mutex-2, mutex-8, spawn */
static double gort_ns[3];

/* ---- mutex ---------------------------------------------------------------------------- */

/* The mutex and the counter it guards share a cache line (as in the Go
 * peer, where both are small adjacent heap objects); nothing else does. */
static struct {
    gort_mutex mu;
    long counter;
} __attribute__((aligned(64))) shared = {GORT_MUTEX_INIT, 0};
#define mu      shared.mu
#define counter shared.counter
static long per_worker __attribute__((aligned(64)));
static gort_waitgroup mwg = GORT_WAITGROUP_INIT;

static void mutex_worker(void *arg) {
    (void)arg;
    long n = per_worker;
    for (long i = 0; i < n; i++) {
        gort_mutex_lock(&mu);
        counter++;
        gort_mutex_unlock(&mu);
    }
    gort_waitgroup_done(&mwg);
}

static double bench_mutex(int n) {
    double v[64];
    for (int r = 0; r < reps; r++) {
        per_worker = TOTAL_PAIRS / n;
        counter = 0;
        long long t0 = now_ns();
        gort_waitgroup_add(&mwg, n);
        for (int i = 0; i < n; i++) gort_go(mutex_worker, NULL);
        gort_waitgroup_wait(&mwg);
        long long d = now_ns() - t0;
        if (counter != per_worker * n) {
            printf("BAD mutex counter %ld != %ld\n", counter, per_worker * n);
            exit(1);
        }
        v[r] = (double)d / (double)(per_worker * n);
        printf("rep %d: mutex-%d %.1f ns/pair\n", r, n, v[r]);
    }
    return median(v, reps);
}

/* ---- spawn ---------------------------------------------------------------------------- */

static gort_waitgroup swg = GORT_WAITGROUP_INIT;

static void spawn_worker(void *arg) {
    (void)arg;
    gort_waitgroup_done(&swg);
}

static double bench_spawn(void) {
    double v[64];
    for (int r = 0; r < reps; r++) {
        long long t0 = now_ns();
        gort_waitgroup_add(&swg, SPAWN_N);
        for (long i = 0; i < SPAWN_N; i++) gort_go(spawn_worker, NULL);
        gort_waitgroup_wait(&swg);
        long long d = now_ns() - t0;
        v[r] = (double)d / (double)SPAWN_N;
        printf("rep %d: %ld goroutines done, %.1f ns/goroutine\n", r, SPAWN_N, v[r]);
    }
    return median(v, reps);
}

static int bench_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int procs = gort_gomaxprocs(0);
    if (!only || strcmp(only, "mutex") == 0) {
        gort_ns[0] = bench_mutex(2);
        printf("RESULT sync_mutex2 gort-p%d pair=%.1f ns\n", procs, gort_ns[0]);
        gort_ns[1] = bench_mutex(8);
        printf("RESULT sync_mutex8 gort-p%d pair=%.1f ns\n", procs, gort_ns[1]);
    }
    if (!only || strcmp(only, "spawn") == 0) {
        gort_ns[2] = bench_spawn();
        printf("RESULT spawn gort-p%d goroutine=%.1f ns\n", procs, gort_ns[2]);
    }
    static const char *names[3] = {"mutex-2", "mutex-8", "spawn"};
    for (int i = 0; i < 3; i++)
        if (go_ns[i] > 0 && gort_ns[i] > 0)
            printf("COMPARE %-8s gort %8.1f ns  go %8.1f ns  ratio %.2f (target <= 0.80)%s\n",
                   names[i], gort_ns[i], go_ns[i], gort_ns[i] / go_ns[i],
                   gort_ns[i] / go_ns[i] <= 0.8 ? "" : "  MISSED");
    fflush(stdout);
    return 0;
}

/* Runs a Go peer and picks the numbers of its RESULT lines. */
static void run_peer(const char *path, const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "GOMAXPROCS=2 '%s' %s", path, args);
    FILE *f = popen(cmd, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        fputs(line, stdout);
        const char *eq = strrchr(line, '=');
        if (strncmp(line, "RESULT ", 7) != 0 || !eq) continue;
        double v = atof(eq + 1);
        if (strstr(line, "sync_mutex2")) go_ns[0] = v;
        if (strstr(line, "sync_mutex8")) go_ns[1] = v;
        if (strstr(line, "RESULT spawn ")) go_ns[2] = v;
    }
    pclose(f);
}

int main(int argc, char **argv) {
    if (argc > 1) reps = atoi(argv[1]);
    if (reps < 1 || reps > 64) reps = 5;
    if (argc > 2) only = argv[2];
    char rs[16];
    snprintf(rs, sizeof rs, "%d", reps);
    const char *mp = getenv("GO_MUTEX_PEER"), *sp = getenv("GO_SPAWN_PEER");
    if (mp && *mp) run_peer(mp, rs);
    if (sp && *sp) run_peer(sp, rs);
    fflush(stdout);
    gort_gomaxprocs(2);
    return gort_main(bench_main, argc, argv);
}
