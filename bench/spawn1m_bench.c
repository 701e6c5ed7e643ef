/* spawn1m: 1,000,000 goroutines started and finished (peer workload 5,
 * spawn/, without a WaitGroup yet: an atomic counter polled by main with
 * gort_sleep(1 ms) once all are spawned). ns per goroutine, amortized. */
#include "gort/sched.h"

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long done;

static void worker(void *arg) {
    (void)arg;
    __atomic_fetch_add(&done, 1, __ATOMIC_RELAXED);
}

static int bench(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) gort_go(worker, NULL);
    while (__atomic_load_n(&done, __ATOMIC_ACQUIRE) < n) gort_sleep(1000000);
    long long d = now_ns() - t0;
    printf("RESULT spawn1m gort-p%d goroutine=%.1f ns\n", gort_gomaxprocs(0),
           (double)d / (double)n);
    return 0;
}

int main(int argc, char **argv) {
    return gort_main(bench, argc, argv);
}
