/* 1,000,000 live goroutines on a default kernel (docs/design.md, "Stacks"): all
 * spawned, all parked at once, then all released and joined.
 *
 * Each goroutine parks on its own wait slot (sched_park, whose unlockf
 * publishes the goroutine in its slot once its context is saved), so that
 * nothing but the goroutines themselves is live: no timers, no channels.
 * Main checks that all of them were parked at the same time
 * (gort_num_goroutine), readies every slot, and waits for all to finish.
 * Every wait is bounded; the figures printed (time per phase, peak RSS,
 * mappings) are for reading, not checked against a clock (performance is
 * checked by bench/run.sh). The check that does matter for a default
 * kernel: the mappings stay far below vm.max_map_count (65530), since
 * stacks are carved from pooled mappings.
 *
 * Under ASan the count is 50,000: a goroutine there costs ~38 KB (the
 * shadow of its whole unpoisoned stack), 38 GB for a million.
 * GORT_1M_N overrides the count. */
#include "test_gort.h"

#include "gort/sched.h"
#include "sched/runtime2.h"

#include <sys/mman.h>

#if defined(GORT_ASAN) || defined(__SANITIZE_ADDRESS__)
#define N_DEFAULT 50000L
#else
#define N_DEFAULT 1000000L
#endif

static long n;
static g **slots;
static long parked, finished;

/* A line of /proc/self/status, in kB (-1 if absent). */
static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') v = atol(line + kl + 1);
    fclose(f);
    return v;
}

static long count_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    long lines = 0;
    int c;
    while ((c = fgetc(f)) != EOF) lines += c == '\n';
    fclose(f);
    return lines;
}

/* sched_park's unlockf: runs once the goroutine's context is saved, so that
 * main may ready it as soon as it sees the slot filled. */
static bool publish(g *gp, void *slot) {
    __atomic_store_n((g **)slot, gp, __ATOMIC_RELEASE);
    __atomic_fetch_add(&parked, 1, __ATOMIC_ACQ_REL);
    return true;
}

static void sleeper(void *arg) {
    long i = (long)arg;
    sched_park(publish, &slots[i], WAIT_REASON_SEMACQUIRE);
    TCHECK(sched_getg()->param == (void *)(i + 1)); /* woken by its own slot */
    __atomic_fetch_add(&finished, 1, __ATOMIC_ACQ_REL);
}

static int main_1m(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "=== %ld goroutines, GOMAXPROCS=%d\n", n, gort_gomaxprocs(0));
    long rss0 = status_kb("VmRSS");
    int64_t t0 = test_now_ns();
    for (long i = 0; i < n; i++) TCHECK(gort_go(sleeper, (void *)i) > 0);
    int64_t t1 = test_now_ns();
    TCHECK(wait_for(&parked, n, 60000));
    int64_t t2 = test_now_ns();
    TCHECK(gort_num_goroutine() == n + 1); /* all live at once */
    long rss = status_kb("VmRSS"), pte = status_kb("VmPTE"), maps = count_maps();
    fprintf(stderr,
            "    spawned in %.0f ms, all parked %.0f ms later; RSS %.2f GB (%.0f bytes per "
            "goroutine), page tables %.0f MB, %ld mappings\n",
            (t1 - t0) / 1e6, (t2 - t1) / 1e6, rss / 1048576.0, (rss - rss0) * 1024.0 / (double)n,
            pte / 1024.0, maps);
    TCHECK(maps >= 0 && maps < 30000); /* half of a default vm.max_map_count */

    for (long i = 0; i < n; i++) {
        g *gp = __atomic_load_n(&slots[i], __ATOMIC_ACQUIRE);
        TCHECK(gp != NULL && gp->status == G_WAITING);
        gp->param = (void *)(i + 1);
        sched_ready(gp);
    }
    int64_t t3 = test_now_ns();
    TCHECK(wait_for(&finished, n, 60000));
    int64_t end = test_now_ns() + 10000000000LL;
    while (gort_num_goroutine() != 1 && test_now_ns() < end) gort_sleep(1000000);
    TCHECK(gort_num_goroutine() == 1);
    int64_t t4 = test_now_ns();
    fprintf(stderr,
            "    readied in %.0f ms, all finished %.0f ms later; %.1f s in all; peak RSS %.2f GB\n",
            (t3 - t2) / 1e6, (t4 - t3) / 1e6, (t4 - t0) / 1e9, status_kb("VmHWM") / 1048576.0);
    return 0;
}

int main(void) {
    const char *e = getenv("GORT_1M_N");
    n = e ? atol(e) : N_DEFAULT;
    CHECK(n > 0);
    slots = mmap(NULL, (size_t)n * sizeof *slots, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(slots != MAP_FAILED);
    alarm(200); /* a hang fails; ctest's own limit is 240 s */
    CHECK(gort_main(main_1m, 0, NULL) == 0);
    fprintf(stderr, "test_sched_1m: ok\n");
    return test_result();
}
