/* sleepmem: 100,000 goroutines each mark a counter, then sleep 2 s (peer:
 * sleepmem/main.go, GOMAXPROCS=2). After all have started and 200 ms more,
 * VmRSS growth / 100,000 is the memory an idle (sleeping) goroutine costs:
 * its G, its stack's touched pages, its timer. No WaitGroup yet: an atomic
 * counter, polled by main with gort_sleep(1 ms). */
#include "base/os.h"
#include "gort/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long started;
static void sleeper(void *arg) {
    (void)arg;
    __atomic_fetch_add(&started, 1, __ATOMIC_ACQ_REL);
    gort_sleep(2000000000LL);
}

static int bench(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    long before = (long)os_rss();
    for (long i = 0; i < n; i++) gort_go(sleeper, NULL);
    while (__atomic_load_n(&started, __ATOMIC_ACQUIRE) < n) gort_sleep(1000000);
    gort_sleep(200000000);
    long after = (long)os_rss();
    printf("RESULT sleepmem gort per_goroutine=%.0f bytes\n", (double)(after - before) / (double)n);
    return 0;
}

int main(int argc, char **argv) {
    return gort_main(bench, argc, argv);
}
