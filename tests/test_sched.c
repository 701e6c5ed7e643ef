/* Tests for src/sched: the GMP scheduler, park/ready, timers, syscalls,
 * sysmon, deadlock detection, the private yield queue.
 *
 * Every case runs gort_main in a forked child with an alarm (a hang fails,
 * it does not stall CI), since the runtime starts once per process. Waits
 * inside the cases are bounded by deadlines. GORT_TEST_SCALE multiplies the
 * stress sizes. */
#include "test_gort.h"

#include "gort/chan.h"
#include "gort/gc.h"
#include "gort/sched.h"
#include "gort/sync.h"
#include "sched/runtime2.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

static long scale;

/* ---- basics ---------------------------------------------------------------- */

static long basic_count;
static int64_t basic_ids[10];

static void basic_fn(void *arg) {
    long i = (long)arg;
    basic_ids[i] = gort_goid();
    gort_yield();
    __atomic_fetch_add(&basic_count, 1, __ATOMIC_ACQ_REL);
}

static int basic_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(gort_goid() == 1);
    TCHECK(gort_num_goroutine() == 1);
    for (long i = 0; i < 10; i++) TCHECK(gort_go(basic_fn, (void *)i) > 1);
    TCHECK(gort_num_goroutine() >= 1);
    TCHECK(wait_for(&basic_count, 10, 10000));
    for (int i = 0; i < 10; i++) {
        TCHECK(basic_ids[i] > 1);
        for (int j = 0; j < i; j++) TCHECK(basic_ids[i] != basic_ids[j]);
    }
    int64_t end = test_now_ns() + 5000000000LL;
    while (gort_num_goroutine() != 1 && test_now_ns() < end) gort_sleep(1000000);
    TCHECK(gort_num_goroutine() == 1);
    return 0;
}

static int retval_main(int argc, char **argv) {
    (void)argc, (void)argv;
    return 7;
}

static void test_retval(void) {
    fprintf(stderr, "=== test_retval\n");
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(30);
        _exit(gort_main(retval_main, 0, NULL));
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
}

/* ---- spread and stealing ------------------------------------------------------ */

#define MAXTIDS 64
static int spread_tids[MAXTIDS];
static int spread_ntids;
static int spread_lock;
static long spread_done;

static void note_tid(void) {
    int tid = (int)syscall(SYS_gettid);
    while (__atomic_exchange_n(&spread_lock, 1, __ATOMIC_ACQUIRE)) {
    }
    bool seen = false;
    for (int i = 0; i < spread_ntids; i++) seen |= spread_tids[i] == tid;
    if (!seen && spread_ntids < MAXTIDS) spread_tids[spread_ntids++] = tid;
    __atomic_store_n(&spread_lock, 0, __ATOMIC_RELEASE);
}

static void spread_fn(void *arg) {
    (void)arg;
    int64_t end = test_now_ns() + 200000; /* 200 us of work */
    while (test_now_ns() < end) {
    }
    note_tid();
    __atomic_fetch_add(&spread_done, 1, __ATOMIC_ACQ_REL);
}

static int spread_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int procs = gort_gomaxprocs(0);
    TCHECK(procs == 4);
    /* All spawned from one goroutine: the others get work only by stealing. */
    for (int i = 0; i < 2000; i++) gort_go(spread_fn, NULL);
    TCHECK(wait_for(&spread_done, 2000, 60000));
    fprintf(stderr, "    %d distinct threads ran the goroutines\n", spread_ntids);
    TCHECK(spread_ntids >= 2);
    return 0;
}

/* ---- many goroutines ------------------------------------------------------------ */

static long many_done;

static void many_fn(void *arg) {
    (void)arg;
    __atomic_fetch_add(&many_done, 1, __ATOMIC_RELAXED);
}

static int many_main(int argc, char **argv) {
    (void)argc, (void)argv;
    long n = 200000 * scale;
    int64_t t0 = test_now_ns();
    for (long i = 0; i < n; i++) {
        TCHECK(gort_go(many_fn, NULL) > 0);
        if ((i & 1023) == 0) gort_yield();
    }
    TCHECK(wait_for(&many_done, n, 120000));
    fprintf(stderr, "    %ld goroutines in %.1f ms\n", n, (test_now_ns() - t0) / 1e6);
    return 0;
}

/* Many live at once: they all block, then all are released. */
static long live_started, live_go, live_done;

static void live_fn(void *arg) {
    (void)arg;
    __atomic_fetch_add(&live_started, 1, __ATOMIC_ACQ_REL);
    while (!__atomic_load_n(&live_go, __ATOMIC_ACQUIRE)) gort_sleep(5000000);
    __atomic_fetch_add(&live_done, 1, __ATOMIC_ACQ_REL);
}

static int live_main(int argc, char **argv) {
    (void)argc, (void)argv;
    long n = 20000 * scale;
    for (long i = 0; i < n; i++) TCHECK(gort_go(live_fn, NULL) > 0);
    TCHECK(wait_for(&live_started, n, 60000));
    TCHECK(gort_num_goroutine() == n + 1);
    __atomic_store_n(&live_go, 1, __ATOMIC_RELEASE);
    TCHECK(wait_for(&live_done, n, 60000));
    return 0;
}

/* ---- deep recursion ---------------------------------------------------------------- */

static long deep_result, deep_expect;

__attribute__((noinline)) static long recurse(int depth) {
    volatile char buf[96];
    buf[0] = (char)depth;
    if (depth == 0) return buf[0];
    return recurse(depth - 1) + buf[0] % 2;
}

static void deep_fn(void *arg) {
    /* ~80 KiB of a default 256 KiB stack (sanitizers double frame sizes) */
    __atomic_store_n(&deep_result, recurse((int)(long)arg) + 1, __ATOMIC_RELEASE);
}

static int deep_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_go(deep_fn, (void *)600L);
    TCHECK(wait_for(&deep_result, 1, 10000));
    TCHECK(deep_result == deep_expect);
    /* ~800 KiB on a stack asked for (4 MiB) */
    deep_result = 0;
    gort_go_stack(deep_fn, (void *)6000L, 4 << 20);
    TCHECK(wait_for(&deep_result, 1, 10000));
    return 0;
}

/* ---- deadlock and Goexit on main ---------------------------------------------------------- */

static int deadlock_main(int argc, char **argv) {
    (void)argc, (void)argv;
    sched_park(NULL, NULL, WAIT_REASON_CHAN_RECEIVE);
    return 0;
}

static void deadlock_child(void) {
    gort_main(deadlock_main, 0, NULL);
}

static void sleeper_fn(void *arg) {
    (void)arg;
    sched_park(NULL, NULL, WAIT_REASON_SELECT);
}

static int deadlock2_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_go(sleeper_fn, NULL);
    gort_go(sleeper_fn, NULL);
    gort_sleep(20000000); /* a pending timer is not a deadlock */
    sched_park(NULL, NULL, WAIT_REASON_CHAN_SEND);
    return 0;
}

static void deadlock2_child(void) {
    gort_main(deadlock2_main, 0, NULL);
}

static void test_deadlock(void) {
    fprintf(stderr, "=== test_deadlock\n");
    const char *out =
        expect_death(deadlock_child, 2, "fatal error: all goroutines are asleep - deadlock!");
    CHECK(strstr(out, "goroutine 1 [chan receive]:"));
    out = expect_death(deadlock2_child, 2, "fatal error: all goroutines are asleep - deadlock!");
    CHECK(strstr(out, "goroutine 1 [chan send]:"));
    CHECK(strstr(out, "[select]:"));
}

/* ---- deadlock and plain threads ---------------------------------------------------------
 * A goroutine waits on a channel, or a WaitGroup, that a plain pthread (not
 * one of gort's) completes 200 ms later: the C callback pattern. It used to
 * die with "all goroutines are asleep". The thread never touched gort
 * before. Once every such thread is gone, a real deadlock is reported. */

static gort_chan *pt_chan;
static gort_waitgroup pt_wg = GORT_WAITGROUP_INIT;

static void *pt_sender(void *arg) {
    (void)arg;
    usleep(200000);
    int64_t v = 42;
    gort_chan_send(pt_chan, &v); /* the goroutine waits: a hand-off, no blocking */
    return NULL;
}

static void *pt_done(void *arg) {
    (void)arg;
    usleep(200000);
    gort_waitgroup_done(&pt_wg);
    return NULL;
}

static int plain_thread_main(int argc, char **argv) {
    (void)argc, (void)argv;
    GORT_STORE(pt_chan, gort_chan_make(sizeof(int64_t), 0));
    pthread_t th;
    TCHECK(pthread_create(&th, NULL, pt_sender, NULL) == 0);
    int64_t v = 0;
    TCHECK(gort_chan_recv(pt_chan, &v));
    TCHECK(v == 42);
    gort_waitgroup_add(&pt_wg, 1);
    TCHECK(pthread_create(&th, NULL, pt_done, NULL) == 0);
    gort_waitgroup_wait(&pt_wg);
    return 0;
}

static void *pt_idle(void *arg) {
    (void)arg;
    usleep(300000);
    return NULL; /* leaves without waking anyone */
}

static int plain_thread_dead_main(int argc, char **argv) {
    (void)argc, (void)argv;
    pthread_t th;
    TCHECK(pthread_create(&th, NULL, pt_idle, NULL) == 0);
    TCHECK(pthread_detach(th) == 0);
    gort_chan_recv(gort_chan_make(8, 0), NULL);
    return 0;
}

static void plain_thread_dead_child(void) {
    gort_main(plain_thread_dead_main, 0, NULL);
}

static void test_deadlock_plain_thread_gone(void) {
    int64_t t0 = test_now_ns();
    const char *out = expect_death(plain_thread_dead_child, 2,
                                   "fatal error: all goroutines are asleep - deadlock!");
    CHECK_CONTAINS(out, "goroutine 1 [chan receive]:");
    CHECK_GE(test_now_ns() - t0, 250000000LL); /* not while the thread lived */
}

static void goexit_other(void *arg) {
    gort_sleep((long)arg * 1000000);
    fprintf(stderr, "other %ld done\n", (long)arg);
}

static int goexit_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_go(goexit_other, (void *)10L);
    gort_go(goexit_other, (void *)30L);
    gort_exit();
}

static void goexit_child(void) {
    gort_main(goexit_main, 0, NULL);
}

static void test_main_goexit(void) {
    fprintf(stderr, "=== test_main_goexit\n");
    const char *out = expect_death(
        goexit_child, 2, "fatal error: no goroutines (main called runtime.Goexit) - deadlock!");
    CHECK(strstr(out, "other 10 done"));
    CHECK(strstr(out, "other 30 done"));
}

/* ---- syscalls ------------------------------------------------------------------------------ */

static int sys_pipe[2];
static long sys_ticks, sys_got;

static void sys_reader(void *arg) {
    (void)arg;
    char c;
    gort_syscall_enter();
    ssize_t r = read(sys_pipe[0], &c, 1);
    gort_syscall_exit();
    TCHECK(r == 1 && c == 'x');
    __atomic_store_n(&sys_got, 1, __ATOMIC_RELEASE);
}

static void sys_sleeper(void *arg) {
    (void)arg;
    gort_syscall_enter();
    struct timespec ts = {0, 100000000}; /* 100 ms blocked in the kernel */
    nanosleep(&ts, NULL);
    gort_syscall_exit();
    __atomic_fetch_add(&sys_got, 1, __ATOMIC_ACQ_REL);
}

static void sys_ticker(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) {
        __atomic_fetch_add(&sys_ticks, 1, __ATOMIC_ACQ_REL);
        gort_yield();
    }
}

static int syscall_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(gort_gomaxprocs(0) == 1);
    TCHECK(pipe(sys_pipe) == 0);
    gort_go(sys_reader, NULL);
    gort_sleep(2000000); /* the reader is now blocked in read(2), holding no P */
    gort_go(sys_ticker, NULL);
    TCHECK(wait_for(&sys_ticks, 100, 10000));
    TCHECK(sys_got == 0);
    TCHECK(write(sys_pipe[1], "x", 1) == 1);
    TCHECK(wait_for(&sys_got, 1, 10000));
    /* the same while a goroutine sleeps in nanosleep(2) */
    sys_got = 0;
    sys_ticks = 0;
    gort_go(sys_sleeper, NULL);
    gort_yield();
    int64_t t0 = test_now_ns();
    gort_go(sys_ticker, NULL);
    TCHECK(wait_for(&sys_ticks, 100, 10000));
    TCHECK(test_now_ns() - t0 < 90000000); /* well before the sleeper is back */
    TCHECK(wait_for(&sys_got, 1, 10000));
    return 0;
}

/* ---- sleep ---------------------------------------------------------------------------------- */

static int sleep_main(int argc, char **argv) {
    (void)argc, (void)argv;
    static const int ms[] = {1, 2, 5, 10, 20};
    for (int k = 0; k < 5; k++) {
        int64_t want = ms[k] * 1000000LL;
        int64_t t0 = gort_nanotime();
        gort_sleep(want);
        int64_t got = gort_nanotime() - t0;
        fprintf(stderr, "    sleep %d ms: %.3f ms\n", ms[k], got / 1e6);
        TCHECK(got >= want);
        TCHECK(got < want + 20000000); /* tolerance: 20 ms (loaded CI, sanitizers) */
    }
    return 0;
}

#define NSLEEPERS 40
static long order_seq;
static long order_got[NSLEEPERS];
static int64_t order_base;

static int64_t order_woke[NSLEEPERS];

static void order_fn(void *arg) {
    long i = (long)arg;
    /* deadlines 2 ms apart from a common base (start-up skew does not count) */
    gort_sleep(order_base + (i + 1) * 2000000 - gort_nanotime());
    order_woke[i] = gort_nanotime();
    order_got[i] = __atomic_fetch_add(&order_seq, 1, __ATOMIC_ACQ_REL);
}

static int order_main(int argc, char **argv) {
    (void)argc, (void)argv;
    /* spawned in a scrambled order */
    order_base = gort_nanotime() + 5000000;
    for (long k = 0; k < NSLEEPERS; k++) gort_go(order_fn, (void *)((k * 17) % NSLEEPERS));
    TCHECK(wait_for(&order_seq, NSLEEPERS, 20000));
    for (long i = 0; i < NSLEEPERS; i++)
        if (order_got[i] != i) fprintf(stderr, "    sleeper %ld woke %ld-th\n", i, order_got[i]);
    /* Timers fire in deadline order, and nobody wakes early. Sleepers whose
     * timers fire in the same check (a loaded machine) may run in swapped
     * order, as in Go (the last readied takes runnext); so the order is
     * asserted between deadlines at least 10 ms apart. */
    for (long i = 0; i < NSLEEPERS; i++) {
        TCHECK(order_woke[i] >= order_base + (i + 1) * 2000000);
        for (long j = 0; j + 5 <= i; j++) TCHECK(order_got[j] < order_got[i]);
    }
    return 0;
}

/* Many concurrent sleepers with the same deadline all wake. */
static long mass_done;
static void mass_fn(void *arg) {
    (void)arg;
    gort_sleep(50000000);
    __atomic_fetch_add(&mass_done, 1, __ATOMIC_ACQ_REL);
}

static int mass_main(int argc, char **argv) {
    (void)argc, (void)argv;
    long n = 10000 * scale;
    for (long i = 0; i < n; i++) gort_go(mass_fn, NULL);
    TCHECK(wait_for(&mass_done, n, 30000));
    return 0;
}

/* ---- timers (internal API) --------------------------------------------------------------------
 */

static long tm_fired;
static void tm_cb(void *arg, uintptr_t seq) {
    (void)seq;
    __atomic_fetch_add((long *)arg, 1, __ATOMIC_ACQ_REL);
}

static int timer_main(int argc, char **argv) {
    (void)argc, (void)argv;
    static timer t1, t2, t3;
    static long f1, f2, f3;
    t1 = (timer){.when = gort_nanotime() + 5000000, .f = tm_cb, .arg = &f1};
    t2 = (timer){.when = gort_nanotime() + 5000000, .f = tm_cb, .arg = &f2};
    t3 = (timer){.when = gort_nanotime() + 2000000, .period = 2000000, .f = tm_cb, .arg = &f3};
    timer_add(&t1);
    timer_add(&t2);
    timer_add(&t3);
    TCHECK(timer_del(&t2)); /* stopped before it fired */
    TCHECK(!timer_del(&t2));
    TCHECK(wait_for(&f1, 1, 5000));
    TCHECK(!timer_del(&t1));        /* already fired */
    TCHECK(wait_for(&f3, 5, 5000)); /* periodic */
    TCHECK(timer_del(&t3));
    long v = f3;
    gort_sleep(10000000);
    TCHECK(f3 == v);
    TCHECK(f2 == 0);
    /* mod: move a far timer close */
    t2 = (timer){.when = gort_nanotime() + 10000000000LL, .f = tm_cb, .arg = &f2};
    timer_add(&t2);
    TCHECK(timer_mod(&t2, gort_nanotime() + 1000000, 0, tm_cb, &f2, 0));
    TCHECK(wait_for(&f2, 1, 5000));
    tm_fired = 1;
    return 0;
}

/* ---- park / ready -----------------------------------------------------------------------------
 */

static int pr_lock;
static g *pr_waiter;
static long pr_woken;

static bool pr_unlock(g *gp, void *lk) {
    pr_waiter = gp;
    __atomic_store_n((int *)lk, 0, __ATOMIC_RELEASE);
    return true;
}

static bool pr_cancel(g *gp, void *lk) {
    (void)gp, (void)lk;
    return false;
}

static void pr_fn(void *arg) {
    (void)arg;
    while (__atomic_exchange_n(&pr_lock, 1, __ATOMIC_ACQUIRE)) gort_yield();
    sched_park(pr_unlock, &pr_lock, WAIT_REASON_SEMACQUIRE);
    TCHECK(sched_getg()->param == (void *)0x1234);
    __atomic_store_n(&pr_woken, 1, __ATOMIC_RELEASE);
}

static int park_main(int argc, char **argv) {
    (void)argc, (void)argv;
    sched_park(pr_cancel, NULL, WAIT_REASON_SELECT); /* cancelled: returns */
    gort_go(pr_fn, NULL);
    int64_t end = test_now_ns() + 5000000000LL;
    g *w = NULL;
    while (!w && test_now_ns() < end) {
        gort_sleep(1000000);
        if (!__atomic_exchange_n(&pr_lock, 1, __ATOMIC_ACQUIRE)) {
            w = pr_waiter;
            __atomic_store_n(&pr_lock, 0, __ATOMIC_RELEASE);
        }
    }
    TCHECK(w);
    TCHECK(w->status == G_WAITING && w->waitreason == WAIT_REASON_SEMACQUIRE);
    w->param = (void *)0x1234;
    sched_ready(w);
    TCHECK(wait_for(&pr_woken, 1, 5000));
    return 0;
}

/* ---- locked threads ------------------------------------------------------------------------- */

static long lk_done, lk_other;

static void lk_fn(void *arg) {
    (void)arg;
    gort_lock_os_thread();
    int tid = (int)syscall(SYS_gettid);
    for (int i = 0; i < 1000; i++) {
        gort_yield();
        TCHECK((int)syscall(SYS_gettid) == tid);
    }
    gort_sleep(1000000);
    TCHECK((int)syscall(SYS_gettid) == tid);
    gort_unlock_os_thread();
    __atomic_store_n(&lk_done, 1, __ATOMIC_RELEASE);
}

static void lk_other_fn(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&lk_done, __ATOMIC_ACQUIRE)) {
        __atomic_fetch_add(&lk_other, 1, __ATOMIC_RELAXED);
        gort_yield();
    }
}

static int locked_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_go(lk_other_fn, NULL);
    gort_go(lk_fn, NULL);
    gort_go(lk_other_fn, NULL);
    TCHECK(wait_for(&lk_done, 1, 30000));
    TCHECK(lk_other > 0);
    return 0;
}

/* ---- gomaxprocs
 * ------------------------------------------------------------------------------------ */

static long gm_done;
static void gm_fn(void *arg) {
    (void)arg;
    gort_yield();
    __atomic_fetch_add(&gm_done, 1, __ATOMIC_ACQ_REL);
}

static int gomaxprocs_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(gort_gomaxprocs(0) == 3);
    TCHECK(gort_gomaxprocs(1) == 3);
    TCHECK(gort_gomaxprocs(0) == 1);
    for (int i = 0; i < 100; i++) gort_go(gm_fn, NULL);
    TCHECK(wait_for(&gm_done, 100, 10000));
    TCHECK(gort_gomaxprocs(4) == 1);
    TCHECK(gort_gomaxprocs(-1) == 4);
    for (int i = 0; i < 100; i++) gort_go(gm_fn, NULL);
    TCHECK(wait_for(&gm_done, 200, 10000));
    TCHECK(gort_gomaxprocs(2) == 4);
    for (int i = 0; i < 100; i++) gort_go(gm_fn, NULL);
    TCHECK(wait_for(&gm_done, 300, 10000));
    return 0;
}

/* ---- preemption ---------------------------------------------------------------------------------
 */

static long pre_flag;
static void pre_setter(void *arg) {
    (void)arg;
    __atomic_store_n(&pre_flag, 1, __ATOMIC_RELEASE);
}

static int preempt_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(gort_gomaxprocs(0) == 1);
    gort_go(pre_setter, NULL);
    /* A hog that only has preemption points: sysmon flags it after 10 ms. */
    int64_t end = test_now_ns() + 5000000000LL;
    while (!__atomic_load_n(&pre_flag, __ATOMIC_ACQUIRE) && test_now_ns() < end)
        gort_preempt_check();
    TCHECK(pre_flag == 1);
    return 0;
}

/* ---- gort_go is a preemption point ----------------------------------------------------------
 * A goroutine that only spawns (between stretches of C work) must still let
 * its P run what it spawned once sysmon asks it to yield, as a call in Go
 * does. With one P and no other scheduling point, the setter below runs
 * only if gort_go yields. */

static long spawn_flag;
static void spawn_setter(void *arg) {
    (void)arg;
    __atomic_store_n(&spawn_flag, 1, __ATOMIC_RELEASE);
}
static void spawn_noop(void *arg) {
    (void)arg;
}

static int spawn_preempt_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(gort_gomaxprocs(0) == 1);
    gort_go(spawn_setter, NULL);
    int64_t end = test_now_ns() + 5000000000LL;
    long spawned = 0;
    while (!__atomic_load_n(&spawn_flag, __ATOMIC_ACQUIRE) && test_now_ns() < end) {
        int64_t until = test_now_ns() + 100000; /* 100 us of C work */
        while (test_now_ns() < until) {
        }
        gort_go(spawn_noop, NULL);
        spawned++;
    }
    TCHECK(spawn_flag == 1);
    TCHECK(spawned < 10000); /* it yielded after sysmon's 10 ms, not at the deadline */
    return 0;
}

/* ---- sysmon's batch in flight -------------------------------------------------------------
 * sysmon takes half the queue of a P whose goroutine hogs it (preemptone) and
 * moves it to the global queue. While the batch is only on sysmon's stack, the
 * last M to go idle must not take the program for deadlocked: here sysmon is
 * held in that window (the test hook) while main, done hogging, waits for
 * goroutines that only that batch holds. Before the fix this died with "all
 * goroutines are asleep - deadlock!" (1 run in 40 of bench/sync_bench spawn). */

#include "sched/proc.h"
#include "sched/runtime2.h"
#include "gort/sync.h"

static gort_waitgroup sb_wg = GORT_WAITGROUP_INIT;
static long sb_ran, sb_hooked;

static void sb_stall(void) {
    sched_test_sysmon_hook = NULL;
    __atomic_store_n(&sb_hooked, 1, __ATOMIC_RELEASE);
    struct timespec ts = {0, 100000000}; /* 100 ms, with the batch in hand */
    nanosleep(&ts, NULL);
}

static void sb_worker(void *arg) {
    (void)arg;
    __atomic_add_fetch(&sb_ran, 1, __ATOMIC_RELAXED);
    gort_waitgroup_done(&sb_wg);
}

static int sysmon_batch_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(gort_gomaxprocs(0) == 1);
    enum { N = 200 };
    sched_test_sysmon_hook = sb_stall;
    gort_waitgroup_add(&sb_wg, N);
    for (int i = 0; i < N; i++) gort_go(sb_worker, NULL);
    /* Hog the P with no scheduling point until sysmon has taken the batch. */
    int64_t end = test_now_ns() + 5000000000LL;
    while (!__atomic_load_n(&sb_hooked, __ATOMIC_ACQUIRE) && test_now_ns() < end) {
    }
    TCHECK(sb_hooked == 1);
    gort_waitgroup_wait(&sb_wg);
    TCHECK(sb_ran == N);
    return 0;
}

/* ---- a thief inside handoffs_over ------------------------------------------------------
 * A pair handing off through runnext ends its slice after HANDOFF_MAX
 * switches while another G waits: handoffs_over puts the pair's G on the
 * ring and runs the ring's head. A thief (sysmon's preemptone, a spinning M)
 * may empty the ring in between, the pair's G included; it must then run
 * only where the thief put it. Here the hook is that thief, on the one P:
 * it moves the whole ring to the global queue, as preemptone does. Before
 * the fix handoffs_over fell back to running the G it had just queued, so
 * the G ran twice (test_fork_load_p4 died so now and then under load:
 * "sched_ready: goroutine 3 is not waiting", a SIGSEGV at pc 0, "send on
 * closed channel"); here at once. */

static long ht_steals, ht_yields, ht_stop;

static void ht_thief(p *pp) {
    g *batch[RUNQ_SIZE];
    uint32_t n;
    while ((n = runqgrab(pp, batch, 0, false)) > 0) {
        for (uint32_t i = 0; i + 1 < n; i++) batch[i]->schedlink = batch[i + 1];
        lock(&sched.lock);
        globrunqputbatch(batch[0], batch[n - 1], (int32_t)n);
        unlock(&sched.lock);
    }
    if (++ht_steals == 1000) sched_test_handoff_hook = NULL;
}

static void ht_echo(void *arg) {
    gort_chan **c = arg;
    int64_t v;
    while (gort_chan_recv(c[0], &v)) {
        v++;
        gort_chan_send(c[1], &v);
    }
}

static void ht_yielder(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&ht_stop, __ATOMIC_RELAXED)) {
        __atomic_add_fetch(&ht_yields, 1, __ATOMIC_RELAXED);
        gort_yield();
    }
}

static int handoff_thief_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(gort_gomaxprocs(0) == 1);
    gort_chan *c[2] = {gort_chan_make(sizeof(int64_t), 0), gort_chan_make(sizeof(int64_t), 0)};
    gort_go(ht_echo, c);
    gort_go(ht_yielder, NULL);
    sched_test_handoff_hook = ht_thief;
    int64_t v = 0;
    long rounds = 0;
    int64_t end = test_now_ns() + 20000000000LL;
    while (__atomic_load_n(&ht_steals, __ATOMIC_RELAXED) < 1000 && test_now_ns() < end) {
        int64_t sent = v;
        gort_chan_send(c[0], &v);
        TCHECK(gort_chan_recv(c[1], &v));
        TCHECK(v == sent + 1); /* every reply, once, in order */
        rounds++;
    }
    __atomic_store_n(&ht_stop, 1, __ATOMIC_RELAXED);
    sched_test_handoff_hook = NULL;
    gort_chan_close(c[0]);
    fprintf(stderr, "    %ld rounds, %ld thefts, %ld yields\n", rounds, ht_steals, ht_yields);
    TCHECK(ht_steals == 1000);
    TCHECK(ht_yields > 0);
    return 0;
}

/* ---- schedtrace
 * ---------------------------------------------------------------------------------- */

static int trace_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_sleep(60000000);
    return 0;
}

/* Re-executed, so that the environment is read afresh. */
static void trace_child(void) {
    setenv("GORT_GODEBUG", "schedtrace=10", 1);
    setenv("GORT_GOMAXPROCS", "2", 1);
    execl("/proc/self/exe", "test_sched", "--trace-child", (char *)NULL);
    _exit(3);
}

static void test_schedtrace(void) {
    fprintf(stderr, "=== test_schedtrace\n");
    const char *out = expect_death(trace_child, 0, "SCHED ");
    const char *l = strstr(out, "SCHED ");
    int ms, procs, idle, threads, spinning, idlethreads, rq, a, b;
    CHECK(sscanf(l,
                 "SCHED %dms: gomaxprocs=%d idleprocs=%d threads=%d spinningthreads=%d "
                 "idlethreads=%d runqueue=%d [%d %d]",
                 &ms, &procs, &idle, &threads, &spinning, &idlethreads, &rq, &a, &b) == 9);
    CHECK(procs == 2);
}

/* ---- the private yield queue (proc.c) -------------------------------------------------- */

/* The private queue of the P running the caller (white box). */
static uint32_t my_yqsize(void) {
    return __atomic_load_n(&sched_getg()->m->p->yqsize, __ATOMIC_RELAXED);
}

/* Round robin on one P is strict: with N goroutines yielding in a loop, each
 * runs once between two turns of any other, so the order of turns repeats
 * with period N. On one P nobody can steal: the private queue carries it. */
#define RR_N      8
#define RR_ROUNDS 2000
static int rr_seq[RR_N * RR_ROUNDS];
static long rr_pos, rr_ready, rr_done;
static uint32_t rr_maxyq;

static void rr_fn(void *arg) {
    int id = (int)(long)arg;
    __atomic_fetch_add(&rr_ready, 1, __ATOMIC_ACQ_REL);
    while (__atomic_load_n(&rr_ready, __ATOMIC_ACQUIRE) < RR_N) gort_yield();
    for (int r = 0; r < RR_ROUNDS; r++) {
        rr_seq[__atomic_fetch_add(&rr_pos, 1, __ATOMIC_ACQ_REL)] = id;
        uint32_t q = my_yqsize();
        if (q > rr_maxyq) rr_maxyq = q;
        gort_yield();
    }
    __atomic_fetch_add(&rr_done, 1, __ATOMIC_ACQ_REL);
}

static int yield_rr_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(gort_gomaxprocs(0) == 1);
    for (long i = 0; i < RR_N; i++) gort_go(rr_fn, (void *)i);
    TCHECK(wait_for(&rr_done, RR_N, 20000));
    TCHECK(rr_pos == RR_N * RR_ROUNDS);
    for (long i = RR_N; i < RR_N * RR_ROUNDS; i++) {
        if (rr_seq[i] != rr_seq[i - RR_N])
            fprintf(stderr, "    turn %ld: goroutine %d, %d turns before: %d\n", i, rr_seq[i], RR_N,
                    rr_seq[i - RR_N]);
        TCHECK(rr_seq[i] == rr_seq[i - RR_N]);
    }
    fprintf(stderr, "    private queue up to %u\n", rr_maxyq);
    TCHECK(rr_maxyq >= RR_N - 2); /* the others wait there, not on the ring */
    return 0;
}

/* Two Ps: the yielders share a P with a hog (no preemption point) while a
 * blocker keeps the other P busy, so they sit in the private queue; then
 * the blocker ends. The idle P cannot steal from a private queue: sysmon
 * must take it from the hog (preemptone's yq_handoff) for them to run. */
static long ho_b_running, ho_h_running, ho_y_flag, ho_stop, ho_y_done;
static int64_t ho_h_start, ho_b_end, ho_flag_at;
static uint32_t ho_yq;

static void ho_blocker(void *arg) {
    (void)arg;
    __atomic_store_n(&ho_b_running, 1, __ATOMIC_RELEASE);
    int64_t limit = test_now_ns() + 5000000000LL;
    /* until the hog has run 5 ms: no preemption point */
    for (;;) {
        int64_t now = test_now_ns();
        if (now > limit) break;
        int64_t hs = __atomic_load_n(&ho_h_start, __ATOMIC_ACQUIRE);
        if (hs && now > hs + 5000000) break;
    }
    __atomic_store_n(&ho_b_end, test_now_ns(), __ATOMIC_RELEASE);
}

static void ho_hog(void *arg) {
    (void)arg;
    __atomic_store_n(&ho_h_start, test_now_ns(), __ATOMIC_RELEASE);
    __atomic_store_n(&ho_h_running, 1, __ATOMIC_RELEASE);
    int64_t limit = test_now_ns() + 5000000000LL;
    while (!__atomic_load_n(&ho_y_flag, __ATOMIC_ACQUIRE) && test_now_ns() < limit) {
    }
    __atomic_store_n(&ho_h_running, 0, __ATOMIC_RELEASE);
}

static void ho_yielder(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&ho_stop, __ATOMIC_ACQUIRE)) {
        if (__atomic_load_n(&ho_h_running, __ATOMIC_ACQUIRE) &&
            !__atomic_exchange_n(&ho_y_flag, 1, __ATOMIC_ACQ_REL))
            __atomic_store_n(&ho_flag_at, test_now_ns(), __ATOMIC_RELEASE);
        gort_yield();
    }
    __atomic_fetch_add(&ho_y_done, 1, __ATOMIC_ACQ_REL);
}

static int yield_handoff_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(gort_gomaxprocs(0) == 2);
    gort_go(ho_blocker, NULL);
    int64_t end = test_now_ns() + 5000000000LL;
    while (!__atomic_load_n(&ho_b_running, __ATOMIC_ACQUIRE) && test_now_ns() < end) gort_yield();
    TCHECK(ho_b_running); /* the blocker holds one P, main the other */
    gort_go(ho_yielder, NULL);
    gort_go(ho_yielder, NULL);
    for (int i = 0; i < 100; i++) {
        gort_yield();
        uint32_t q = my_yqsize();
        if (q > ho_yq) ho_yq = q;
    }
    TCHECK(ho_yq >= 1); /* every P busy: the yielders went private */
    gort_go(ho_hog, NULL);
    TCHECK(wait_for(&ho_y_flag, 1, 10000)); /* main parks: the hog takes this P */
    __atomic_store_n(&ho_stop, 1, __ATOMIC_RELEASE);
    TCHECK(wait_for(&ho_y_done, 2, 10000));
    int64_t b_end = __atomic_load_n(&ho_b_end, __ATOMIC_ACQUIRE);
    fprintf(stderr, "    yielders ran %.1f ms after the other P fell idle\n",
            (ho_flag_at - b_end) / 1e6);
    TCHECK(ho_flag_at - b_end < 2000000000LL); /* sysmon: 10 ms plus its sleep */
    return 0;
}

/* Two Ps: while a hog keeps one busy, the yielders go private on the other;
 * once the hog ends and a P falls idle, they must spread over both Ps (the
 * private queue spills so that the idle P's M can steal). */
#define SP_N 4
static long sp_running, sp_maxrun, sp_stop, sp_done, sp_hog_done;
static uint32_t sp_maxyq;

static void sp_hog(void *arg) {
    (void)arg;
    int64_t end = test_now_ns() + 30000000; /* 30 ms, no preemption point */
    while (test_now_ns() < end) {
    }
    __atomic_store_n(&sp_hog_done, 1, __ATOMIC_RELEASE);
}

static void sp_yielder(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&sp_stop, __ATOMIC_ACQUIRE)) {
        uint32_t q = my_yqsize();
        if (q > sp_maxyq) sp_maxyq = q;
        if (__atomic_load_n(&sp_hog_done, __ATOMIC_ACQUIRE)) {
            long in = __atomic_add_fetch(&sp_running, 1, __ATOMIC_ACQ_REL);
            long m = __atomic_load_n(&sp_maxrun, __ATOMIC_RELAXED);
            while (in > m && !__atomic_compare_exchange_n(&sp_maxrun, &m, in, false,
                                                          __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            }
            int64_t t = test_now_ns() + 20000; /* 20 us of work */
            while (test_now_ns() < t) {
            }
            __atomic_sub_fetch(&sp_running, 1, __ATOMIC_ACQ_REL);
        }
        gort_yield();
    }
    __atomic_fetch_add(&sp_done, 1, __ATOMIC_ACQ_REL);
}

static int yield_spread_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(gort_gomaxprocs(0) == 2);
    gort_go(sp_hog, NULL);
    for (int i = 0; i < SP_N; i++) gort_go(sp_yielder, NULL);
    TCHECK(wait_for(&sp_hog_done, 1, 10000));
    int64_t end = test_now_ns() + 5000000000LL;
    while (__atomic_load_n(&sp_maxrun, __ATOMIC_ACQUIRE) < 2 && test_now_ns() < end)
        gort_sleep(1000000);
    fprintf(stderr, "    private queue up to %u; %ld yielders at once after the hog\n", sp_maxyq,
            sp_maxrun);
    TCHECK(sp_maxrun >= 2);
    __atomic_store_n(&sp_stop, 1, __ATOMIC_RELEASE);
    TCHECK(wait_for(&sp_done, SP_N, 10000));
    return 0;
}

/* No goroutine is lost or run twice while private queues spill: many
 * yielders on two Ps, while a flapper makes a P fall idle and busy again
 * every millisecond, and GOMAXPROCS goes 2 -> 1 -> 2 (a P with a private
 * queue is retired). Each yielder counts its own turns. */
#define SL_N 200
static long sl_turns[SL_N], sl_done, sl_stop;

static void sl_yielder(void *arg) {
    long id = (long)arg;
    for (long i = 0; i < 2000 * scale; i++) {
        sl_turns[id]++; /* only this goroutine writes it: a G running twice would race */
        gort_yield();
    }
    __atomic_fetch_add(&sl_done, 1, __ATOMIC_ACQ_REL);
}

static void sl_flapper(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&sl_stop, __ATOMIC_ACQUIRE)) {
        gort_sleep(1000000);
        int64_t t = test_now_ns() + 1000000;
        while (test_now_ns() < t) {
        }
    }
}

static int yield_spill_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(gort_gomaxprocs(0) == 2);
    gort_go(sl_flapper, NULL);
    for (long i = 0; i < SL_N; i++) gort_go(sl_yielder, (void *)i);
    for (int k = 0; k < 4; k++) {
        gort_sleep(2000000);
        gort_gomaxprocs(1);
        gort_sleep(2000000);
        gort_gomaxprocs(2);
    }
    TCHECK(wait_for(&sl_done, SL_N, 60000));
    __atomic_store_n(&sl_stop, 1, __ATOMIC_RELEASE);
    for (long i = 0; i < SL_N; i++) TCHECK(sl_turns[i] == 2000 * scale);
    int64_t end = test_now_ns() + 5000000000LL;
    while (gort_num_goroutine() != 1 && test_now_ns() < end) gort_sleep(1000000);
    TCHECK(gort_num_goroutine() == 1);
    return 0;
}

/* sysmon still preempts a hog whose P's other goroutines are private. */
static long yp_flag, yp_ready;

static void yp_peer(void *arg) {
    (void)arg;
    __atomic_fetch_add(&yp_ready, 1, __ATOMIC_ACQ_REL);
    while (__atomic_load_n(&yp_ready, __ATOMIC_ACQUIRE) < 3) gort_yield();
    for (int i = 0; i < 10; i++) gort_yield();
    __atomic_store_n(&yp_flag, 1, __ATOMIC_RELEASE);
}

static int yield_preempt_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(gort_gomaxprocs(0) == 1);
    gort_go(yp_peer, NULL);
    gort_go(yp_peer, NULL);
    __atomic_fetch_add(&yp_ready, 1, __ATOMIC_ACQ_REL);
    while (my_yqsize() == 0) gort_yield(); /* the peers are private now */
    int64_t end = test_now_ns() + 5000000000LL;
    while (!__atomic_load_n(&yp_flag, __ATOMIC_ACQUIRE) && test_now_ns() < end)
        gort_preempt_check();
    TCHECK(yp_flag == 1);
    return 0;
}

/* ---- fairness: handoff pairs do not starve the others ----------------------------------
 * The starve workload (docs/scheduler.md, "Fairness"): on 2 Ps, 3 pairs of
 * goroutines ping-pong over unbuffered channels while 4 workers loop on
 * gort_yield. A pair hands its P back and forth through runnext; before the
 * handoff budget and sysmon's end of slice, the workers made no progress
 * after the first second. Now every worker progresses in every stretch,
 * and every pair too. Bounds are generous (a loaded 2-core machine). */

#define FAIR_WORKERS 4
#define FAIR_PAIRS   3
static long fair_cnt[FAIR_WORKERS], fair_pair_cnt[FAIR_PAIRS];

static void fair_worker(void *arg) {
    long *c = arg;
    for (;;) {
        __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
        gort_yield();
    }
}

struct fair_pair {
    gort_chan *a, *b;
    long *cnt;
};

static void fair_echo(void *arg) {
    struct fair_pair *fp = arg;
    int64_t v;
    for (;;) {
        gort_chan_recv(fp->a, &v);
        gort_chan_send(fp->b, &v);
    }
}

static void fair_pinger(void *arg) {
    struct fair_pair *fp = arg;
    int64_t v = 0;
    for (;;) {
        gort_chan_send(fp->a, &v);
        gort_chan_recv(fp->b, &v);
        __atomic_fetch_add(fp->cnt, 1, __ATOMIC_RELAXED);
    }
}

static int fair_main(int argc, char **argv) {
    (void)argc, (void)argv;
    static struct fair_pair pairs[FAIR_PAIRS];
    for (int i = 0; i < FAIR_WORKERS; i++) gort_go(fair_worker, &fair_cnt[i]);
    for (int i = 0; i < FAIR_PAIRS; i++) {
        GORT_STORE(pairs[i].a, gort_chan_make(8, 0)); /* globals: roots, with the barrier */
        GORT_STORE(pairs[i].b, gort_chan_make(8, 0));
        pairs[i].cnt = &fair_pair_cnt[i];
        gort_go(fair_echo, &pairs[i]);
        gort_go(fair_pinger, &pairs[i]);
    }
    gort_sleep(500 * 1000000LL);
    /* Three stretches of 500 ms: in each, every worker and every pair moves. */
    for (int round = 0; round < 3; round++) {
        long w0[FAIR_WORKERS], p0[FAIR_PAIRS];
        for (int i = 0; i < FAIR_WORKERS; i++)
            w0[i] = __atomic_load_n(&fair_cnt[i], __ATOMIC_RELAXED);
        for (int i = 0; i < FAIR_PAIRS; i++)
            p0[i] = __atomic_load_n(&fair_pair_cnt[i], __ATOMIC_RELAXED);
        gort_sleep(500 * 1000000LL);
        for (int i = 0; i < FAIR_WORKERS; i++)
            CHECK_GE(__atomic_load_n(&fair_cnt[i], __ATOMIC_RELAXED) - w0[i], 5);
        for (int i = 0; i < FAIR_PAIRS; i++)
            CHECK_GE(__atomic_load_n(&fair_pair_cnt[i], __ATOMIC_RELAXED) - p0[i], 5);
    }
    return 0;
}

/* ---- exit: real_main's return ends the process --------------------------------------------
 * The main goroutine returns on another M while m0 (the thread that called
 * gort_main) runs a goroutine locked to it: one that loops on
 * gort_preempt_check must leave at its next check (it used to hang the
 * process forever); one in a C loop that never reaches a preemption point
 * is left behind, and the process exits with main's result after a grace
 * period (proc.c, exit_wait_m0). */

static long exit_hog_on_m0, exit_hog_mode, exit_hog_spin;

static void exit_hog(void *arg) {
    (void)arg;
    gort_lock_os_thread();
    if (syscall(SYS_gettid) != getpid()) return; /* not m0: main tries again */
    __atomic_store_n(&exit_hog_on_m0, 1, __ATOMIC_RELEASE);
    for (;;) {
        if (exit_hog_mode == 0)
            gort_preempt_check();
        else
            __atomic_fetch_add(&exit_hog_spin, 1, __ATOMIC_RELAXED);
    }
}

static int exit_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int64_t end = test_now_ns() + 20000000000LL;
    while (!__atomic_load_n(&exit_hog_on_m0, __ATOMIC_ACQUIRE) && test_now_ns() < end) {
        gort_go(exit_hog, NULL);
        gort_sleep(20 * 1000000LL); /* m0 runs the hog; main wakes on the other M */
    }
    TCHECK(exit_hog_on_m0);
    TCHECK(syscall(SYS_gettid) != getpid());
    if (exit_hog_mode) printf("main returns 7\n"); /* buffered (a pipe): exit flushes it */
    return 7;
}

static void exit_child(void) {
    gort_gomaxprocs(2);
    int r = gort_main(exit_main, 0, NULL);
    fprintf(stderr, "gort_main returned %d\n", r);
    fflush(NULL);
    _exit(r);
}

static void exit_spin_child(void) {
    exit_hog_mode = 1;
    exit_child();
}

static void test_exit_preempt_check(void) {
    /* expect_death's 30 s alarm bounds the hang this used to be */
    int64_t t0 = test_now_ns();
    const char *out = expect_death(exit_child, 7, "gort_main returned 7");
    (void)out;
    CHECK_LT(test_now_ns() - t0, 10000000000LL);
}

static void test_exit_c_loop(void) {
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    fflush(NULL);
    int64_t t0 = test_now_ns();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        alarm(30);
        exit_spin_child();
    }
    close(pfd[1]);
    char buf[256] = {0};
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(pfd[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    close(pfd[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 7); /* exit(main's result), not gort_main's return */
    CHECK_CONTAINS(buf, "main returns 7");
    CHECK_LT(test_now_ns() - t0, 10000000000LL);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--trace-child") == 0) return gort_main(trace_main, 0, NULL);
    if (argc > 1) test_filter(argv[1]); /* or GORT_TEST_RUN */
    scale = test_scale();
    deep_expect = recurse(600) + 1;
    in_child("test_basic", basic_main, 0);
    RUN(test_retval);
    in_child("test_spread", spread_main, 4);
    in_child("test_many", many_main, 0);
    in_child("test_live", live_main, 0);
    in_child("test_deep", deep_main, 0);
    RUN(test_deadlock);
    RUN(test_main_goexit);
    in_child("test_deadlock_plain_thread", plain_thread_main, 2);
    RUN(test_deadlock_plain_thread_gone);
    in_child("test_syscall_p1", syscall_main, 1);
    in_child("test_sleep", sleep_main, 0);
    in_child("test_sleep_order", order_main, 0);
    in_child("test_sleep_mass", mass_main, 0);
    in_child("test_timers", timer_main, 0);
    in_child("test_park_ready", park_main, 0);
    in_child("test_locked", locked_main, 0);
    in_child("test_gomaxprocs", gomaxprocs_main, 3);
    in_child("test_preempt_p1", preempt_main, 1);
    in_child("test_sysmon_batch_p1", sysmon_batch_main, 1);
    in_child("test_handoff_thief_p1", handoff_thief_main, 1);
    in_child("test_spawn_preempt_p1", spawn_preempt_main, 1);
    in_child("test_yield_rr_p1", yield_rr_main, 1);
    in_child("test_yield_preempt_p1", yield_preempt_main, 1);
    in_child("test_yield_spread_p2", yield_spread_main, 2);
    in_child("test_yield_spill_p2", yield_spill_main, 2);
    in_child("test_yield_handoff_p2", yield_handoff_main, 2);
    RUN(test_schedtrace);
    in_child("test_fair_starve_p2", fair_main, 2);
    RUN(test_exit_preempt_check);
    RUN(test_exit_c_loop);
    fprintf(stderr, "all sched tests passed\n");
    return test_result();
}
