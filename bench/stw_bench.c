/* Stop-the-world latency: goroutines spinning in tight C loops (no gort
 * call, so only the signal can stop them) are stopped and started 1000
 * times; prints the median, 99th percentile and maximum time from
 * stop_the_world's call to its return. Target: median well under 1 ms.
 * Usage: stw_bench [spinners] (GORT_GOMAXPROCS should leave a P for main). */
#include "base/nanotime.h"
#include "gort.h"
#include "sched/stw.h"

#include <stdio.h>
#include <stdlib.h>

static volatile int stop;
static volatile long spins;

static void spinner(void *arg) {
    (void)arg;
    while (!stop) spins++;
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int nspin = 2;

static int bench(int argc, char **argv) {
    (void)argc, (void)argv;
    for (int i = 0; i < nspin; i++) gort_go(spinner, NULL);
    while (spins < 1000000) gort_sleep(1000000);
    enum { N = 1000 };
    static int64_t lat[N];
    for (int k = 0; k < N; k++) {
        int64_t t0 = nanotime();
        stop_the_world("bench");
        lat[k] = nanotime() - t0;
        start_the_world();
        int64_t until = nanotime() + 100000; /* let them run a little */
        while (nanotime() < until) {
        }
    }
    stop = 1;
    qsort(lat, N, sizeof lat[0], cmp64);
    printf("INFO stw: %d spinning goroutines, %d stops: median %.1f us, p99 %.1f us, max %.1f us\n",
           nspin, N, lat[N / 2] / 1e3, lat[N * 99 / 100] / 1e3, lat[N - 1] / 1e3);
    printf("RESULT stw gort p99=%.1f us\n", lat[N * 99 / 100] / 1e3);
    printf("RESULT stw gort median=%.1f us\n", lat[N / 2] / 1e3);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1) nspin = atoi(argv[1]);
    return gort_main(bench, argc, argv);
}
