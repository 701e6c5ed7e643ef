/* Soak: everything at once for GORT_SOAK_SECONDS (60 by default, as CI
 * runs it; 600 for the local soak), and nothing may starve, hang, crash or
 * grow.
 *
 * Goroutines: ping-pong pairs on unbuffered channels, yielders, loops that
 * select on a channel with a timeout (one timer, reset each round), mutex
 * contenders, malloc/free churners, and a forker whose children run
 * goroutines and exit 42. Every second the main goroutine checks that every
 * one of them moved since the last look (a second in which the main
 * goroutine itself overslept by more than half a second is not judged: the
 * machine, not the scheduler, stalled), and samples RSS, which after a
 * warm-up must stay within 64 MiB of its warm value (the soak makes no
 * channels after its start: they are not freed until the collector exists). */
#include "test_gort.h"

#include "base/os.h"
#include "gort/chan.h"
#include "gort/gc.h"
#include "gort/malloc.h"
#include "gort/sched.h"
#include "gort/sync.h"

#define NPAIR         3
#define NYIELD        4
#define NSEL          4
#define NLOCK         4
#define NALLOC        2
#define NPROG         (NPAIR + NYIELD + NSEL + NLOCK + NALLOC + 1) /* + the forker */
#define FORKER_WINDOW (TEST_ASAN ? 20 : 10)

static long prog[NPROG]; /* per goroutine: iterations so far */
static long stop;
static const char *names[NPROG];

static bool stopping(void) {
    return __atomic_load_n(&stop, __ATOMIC_RELAXED) != 0;
}
static void tick(int i) {
    __atomic_fetch_add(&prog[i], 1, __ATOMIC_RELAXED);
}

/* ---- the goroutines ----------------------------------------------------------------- */

struct pair {
    gort_chan *a, *b;
    int id;
};

static void echo(void *arg) {
    struct pair *p = arg;
    int64_t v;
    while (gort_chan_recv(p->a, &v)) gort_chan_send(p->b, &v);
}

static void pinger(void *arg) {
    struct pair *p = arg;
    for (int64_t v = 0; !stopping(); v++) {
        int64_t w = v;
        gort_chan_send(p->a, &w);
        CHECK(gort_chan_recv(p->b, &w));
        CHECK_EQ(w, v);
        tick(p->id);
    }
    gort_chan_close(p->a);
}

static void yielder(void *arg) {
    int id = (int)(intptr_t)arg;
    while (!stopping()) {
        tick(id);
        gort_yield();
    }
}

static gort_chan *sel_events;

static void selector(void *arg) {
    int id = (int)(intptr_t)arg;
    gort_timer *t = gort_timer_new(1000 * 1000);
    long events = 0, timeouts = 0;
    while (!stopping()) {
        int64_t v;
        gort_case cases[2] = {{sel_events, GORT_RECV, &v, false},
                              {gort_timer_chan(t), GORT_RECV, NULL, false}};
        int i = gort_select(cases, 2, true);
        if (i == 0)
            events++;
        else
            timeouts++;
        gort_timer_reset(t, 1000 * 1000);
        tick(id);
    }
    gort_timer_stop(t);
    (void)events, (void)timeouts;
}

static void event_source(void *arg) {
    (void)arg;
    for (int64_t v = 0; !stopping(); v++) {
        gort_chan_trysend(sel_events, &v);
        gort_sleep(300 * 1000);
    }
}

static gort_mutex mu = GORT_MUTEX_INIT;
static long guarded;

static void locker(void *arg) {
    int id = (int)(intptr_t)arg;
    for (long k = 0; !stopping(); k++) {
        gort_mutex_lock(&mu);
        long g = guarded;
        for (volatile int i = 0; i < 100; i++) {
        }
        guarded = g + 1;
        gort_mutex_unlock(&mu);
        tick(id);
        if (k % 16 == 0) gort_preempt_check();
    }
}

static void allocator(void *arg) {
    int id = (int)(intptr_t)arg;
    enum { KEEP = 512 };
    void **keep = gort_calloc(KEEP, sizeof *keep);
    CHECK(keep != NULL);
    uint64_t seed = (uint64_t)id * 0x9e3779b97f4a7c15ULL + 1;
    for (long k = 0; !stopping(); k++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned i = (unsigned)(seed >> 33) % KEEP;
        size_t n = 8 + (size_t)(seed >> 40) % (k % 100 == 0 ? 200000 : 2000);
        gort_free(keep[i]);
        keep[i] = gort_malloc(n);
        CHECK(keep[i] != NULL);
        ((char *)keep[i])[n - 1] = 1;
        if (k % 64 == 0) {
            tick(id);
            gort_yield();
        }
    }
    for (int i = 0; i < KEEP; i++) gort_free(keep[i]);
    gort_free(keep);
}

static long forks_ok, forks_bad;
static int in_fork_child; /* the monitor's copy in a child says nothing */

static void child_leg(void *arg) {
    gort_chan *c = arg;
    int64_t v = 1;
    gort_sleep(100 * 1000);
    gort_chan_send(c, &v);
}

static void forker(void *arg) {
    int id = (int)(intptr_t)arg;
    while (!stopping()) {
        gort_syscall_enter();
        pid_t pid = fork();
        if (pid == 0) {
            gort_syscall_exit();
            alarm(20);
            __atomic_store_n(&stop, 1, __ATOMIC_RELEASE); /* the soak's copies wind down */
            in_fork_child = 1;
            gort_chan *c = gort_chan_make(sizeof(int64_t), 0);
            for (int i = 0; i < 4; i++) gort_go(child_leg, c);
            for (int i = 0; i < 4; i++) gort_chan_recv(c, NULL);
            _exit(42);
        }
        int st = 0;
        bool waited = pid > 0 && waitpid(pid, &st, 0) == pid;
        gort_syscall_exit();
        if (waited && WIFEXITED(st) && WEXITSTATUS(st) == 42)
            __atomic_fetch_add(&forks_ok, 1, __ATOMIC_RELAXED);
        else
            __atomic_fetch_add(&forks_bad, 1, __ATOMIC_RELAXED);
        tick(id);
        gort_sleep(200 * 1000 * 1000);
    }
}

/* ---- the monitor (main) -------------------------------------------------------------- */

static int soak_main(int argc, char **argv) {
    (void)argc, (void)argv;
    const char *e = getenv("GORT_SOAK_SECONDS");
    long seconds = e ? atol(e) : 60;
    if (seconds < 5) seconds = 5;
    int n = 0;
    static struct pair pairs[NPAIR];
    for (int i = 0; i < NPAIR; i++, n++) {
        GORT_STORE(pairs[i].a, gort_chan_make(8, 0)); /* globals: roots, with the barrier */
        GORT_STORE(pairs[i].b, gort_chan_make(8, 0));
        pairs[i].id = n;
        names[n] = "ping-pong pair";
        gort_go(echo, &pairs[i]);
        gort_go(pinger, &pairs[i]);
    }
    for (int i = 0; i < NYIELD; i++, n++) {
        names[n] = "yielder";
        gort_go(yielder, (void *)(intptr_t)n);
    }
    GORT_STORE(sel_events, gort_chan_make(sizeof(int64_t), 0));
    gort_go(event_source, NULL);
    for (int i = 0; i < NSEL; i++, n++) {
        names[n] = "select with timeout";
        gort_go(selector, (void *)(intptr_t)n);
    }
    for (int i = 0; i < NLOCK; i++, n++) {
        names[n] = "mutex contender";
        gort_go(locker, (void *)(intptr_t)n);
    }
    for (int i = 0; i < NALLOC; i++, n++) {
        names[n] = "malloc/free";
        gort_go(allocator, (void *)(intptr_t)n);
    }
    names[n] = "forker";
    gort_go(forker, (void *)(intptr_t)n);
    n++;
    CHECK_EQ(n, NPROG);

    long last[NPROG] = {0};
    size_t rss_warm = 0, rss_max = 0;
    long judged = 0, skipped = 0;
    int64_t t = test_now_ns();
    for (long s = 1; s <= seconds; s++) {
        gort_sleep(1000 * 1000 * 1000);
        int64_t now = test_now_ns();
        bool late = now - t > 1500 * 1000 * 1000LL;
        t = now;
        long cur[NPROG];
        for (int i = 0; i < NPROG; i++) cur[i] = __atomic_load_n(&prog[i], __ATOMIC_RELAXED);
        /* The forker sleeps 200 ms between forks and waits for its child,
         * which competes with all of the above for the CPUs: it is judged
         * over FORKER_WINDOW seconds (a fork waited 5 s for its child on two
         * cores at a load average of 11; a hung child dies of its alarm and
         * counts as bad). */
        if (late) {
            skipped++;
        } else if (s > 1) {
            judged++;
            for (int i = 0; i < NPROG; i++) {
                if (cur[i] > last[i] || (i == NPROG - 1 && s % FORKER_WINDOW)) continue;
                fprintf(stderr, "second %ld: goroutine %d (%s) made no progress (%ld)\n", s, i,
                        names[i], cur[i]);
                test_fail();
            }
        }
        for (int i = 0; i < NPROG; i++)
            if (i != NPROG - 1 || s % FORKER_WINDOW == 0) last[i] = cur[i];
        size_t rss = os_rss();
        if (s == 5) rss_warm = rss;
        if (s >= 5 && rss > rss_max) rss_max = rss;
        if ((s % 10 == 0 || s == seconds) && !in_fork_child)
            fprintf(stderr, "    %lds: rss %zu MiB, forks %ld ok %ld bad, guarded %ld\n", s,
                    rss >> 20, forks_ok, forks_bad, guarded);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    gort_sleep(300 * 1000 * 1000);
    fprintf(stderr,
            "    %ld seconds judged (%ld skipped: the machine stalled), RSS warm %zu MiB, max %zu "
            "MiB\n",
            judged, skipped, rss_warm >> 20, rss_max >> 20);
    CHECK_EQ(forks_bad, 0);
    CHECK_GT(forks_ok, 0);
    CHECK_LE(rss_max, rss_warm + 64 * 1024 * 1024);
    CHECK_GT(judged, seconds / 2);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1) test_filter(argv[1]);
    if (!test_selected("test_soak")) return test_result();
    fprintf(stderr, "=== test_soak\n");
    test_current_ = "test_soak";
    test_ran_++;
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        const char *e = getenv("GORT_SOAK_SECONDS");
        alarm((unsigned)((e ? atol(e) : 60) + 120));
        int r = gort_main(soak_main, 0, NULL);
        fflush(NULL);
        _exit(r);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "test_soak: child %s %d\n", WIFEXITED(st) ? "exited" : "killed by signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        test_fail();
    }
    fprintf(stderr, "soak passed\n");
    return test_result();
}
