/* yield: two goroutines on one P alternate gort_yield (peer: yield/main.go,
 * GOMAXPROCS=1). Main yields 10,000,000 times; the figure is ns per
 * main-side yield (a trip to the partner and back). */
#include "gort/sched.h"

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int done;

static void partner(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) gort_yield();
}

static int bench(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    gort_go(partner, NULL);
    gort_yield(); /* let it start */
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) gort_yield();
    long long d = now_ns() - t0;
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    printf("RESULT yield gort-p%d switch=%.1f ns\n", gort_gomaxprocs(0), (double)d / (double)n);
    return 0;
}

int main(int argc, char **argv) {
    if (!getenv("GORT_GOMAXPROCS")) gort_gomaxprocs(1);
    return gort_main(bench, argc, argv);
}
