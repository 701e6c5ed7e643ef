/* Stack pages are given back (docs/design.md, "Stacks": our stack shrinking):
 * a goroutine that once ran deep and is now parked a long time keeps only
 * the pages above its stack pointer; it resumes and runs deep again without
 * harm. Checked with mincore on the goroutine's own stack. */
#include "test.h"

#include "gort.h"
#include "sched/runtime2.h"

#include <sys/mman.h>

static volatile char *deep_lo; /* the deepest byte the goroutine touched */
static volatile uintptr_t top; /* an address near the top of its stack */
static volatile int parked, resumed, done;
static g *volatile parked_g;

static int __attribute__((noinline)) dig(int depth) {
    volatile char pad[4096];
    pad[0] = (char)depth;
    pad[4095] = (char)depth;
    if (depth == 0) {
        deep_lo = pad;
        return pad[0];
    }
    return dig(depth - 1) + pad[4095];
}

static size_t resident_between(uintptr_t lo, uintptr_t hi) {
    long ps = sysconf(_SC_PAGESIZE);
    lo &= ~(uintptr_t)(ps - 1);
    size_t n = (hi - lo) / (size_t)ps;
    static unsigned char vec[1 << 16];
    CHECK(n < sizeof vec);
    CHECK(mincore((void *)lo, hi - lo, vec) == 0);
    size_t r = 0;
    for (size_t i = 0; i < n; i++) r += vec[i] & 1;
    return r;
}

static bool no_unlock(g *gp, void *lock) {
    (void)gp, (void)lock;
    return true;
}

static void digger(void *arg) {
    (void)arg;
    volatile int here;
    top = (uintptr_t)&here;
    dig(40); /* ~170 KiB deep */
    parked_g = sched_getg();
    __atomic_store_n(&parked, 1, __ATOMIC_RELEASE);
    sched_park(no_unlock, NULL, WAIT_REASON_SLEEP);
    resumed = 1;
    dig(40); /* deep again: the given-back pages come back as zero pages */
    done = 1;
}

static int main_fn(int argc, char **argv) {
    (void)argc, (void)argv;
    sched_shrink_period_ns = 100 * 1000 * 1000;
    gort_go(digger, NULL);
    for (int i = 0; i < 5000 && !__atomic_load_n(&parked, __ATOMIC_ACQUIRE); i++)
        gort_sleep(1000000);
    CHECK(parked);
    gort_sleep(5000000);
    uintptr_t lo = (uintptr_t)deep_lo, hi = top - 16384;
    size_t before = resident_between(lo, hi);
    fprintf(stderr, "parked goroutine: %zu pages resident below its recent depth\n", before);
    CHECK(before >= 30);
    size_t after = before;
    for (int i = 0; i < 300 && after > 2; i++) { /* two sysmon looks: >= 200 ms */
        gort_sleep(10000000);
        after = resident_between(lo, hi);
    }
    fprintf(stderr, "after it stayed parked: %zu pages\n", after);
    CHECK(after <= 2);
    sched_ready(parked_g);
    for (int i = 0; i < 5000 && !done; i++) gort_sleep(1000000);
    CHECK(resumed && done);
    return 0;
}

int main(int argc, char **argv) {
    return gort_main(main_fn, argc, argv);
}
