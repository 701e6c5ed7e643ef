/* fork(2) from a running gort program: the child works (proc.c, "fork";
 * docs/scheduler.md). The forking thread is the child's only M; goroutines
 * that were executing on other threads are gone, every other goroutine is
 * kept; the child runs goroutines, channels, timers, sync, makes new Ms,
 * and never hangs (it used to: 6 children in 200 hung in stopm, handing
 * work to Ms that did not exist).
 *
 * - Under load (ping-pong pairs, yielders, sleepers, mutex contention,
 *   malloc/free, and a goroutine in a C loop that reaches no preemption
 *   point for 5 ms at a time), 500 forks at GOMAXPROCS 2 and 500 at 4
 *   (FORK_N, times GORT_TEST_SCALE), each child doing goroutine work and
 *   exiting 42 within an alarm.
 * - fork between gort_syscall_enter and _exit (the usual way), from a plain
 *   thread, a deadlock in a child reported (not a hang), and main returning
 *   in a child. */
#include "test_gort.h"

#include "gort/chan.h"
#include "gort/gc.h"
#include "gort/malloc.h"
#include "gort/sched.h"
#include "gort/sync.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>

/* ---- what each child does ------------------------------------------------------------ */

static gort_waitgroup child_wg = GORT_WAITGROUP_INIT;
static gort_mutex child_mu = GORT_MUTEX_INIT;
static long child_sum;

static void child_echo(void *arg) {
    gort_chan **c = arg;
    int64_t v;
    while (gort_chan_recv(c[0], &v)) gort_chan_send(c[1], &v);
}

static void child_worker(void *arg) {
    gort_chan **c = arg;
    for (int64_t i = 0; i < 50; i++) {
        int64_t v = i;
        gort_chan_send(c[0], &v);
        CHECK(gort_chan_recv(c[1], &v));
        CHECK_EQ(v, i);
    }
    gort_sleep(100 * 1000);
    CHECK(gort_chan_recv(gort_after(200 * 1000), NULL));
    gort_mutex_lock(&child_mu);
    child_sum += 1;
    gort_mutex_unlock(&child_mu);
    void *p = gort_malloc(1000);
    CHECK(p != NULL);
    gort_free(p);
    gort_waitgroup_done(&child_wg);
}

/* In the child, on the forking goroutine: goroutine work, then _exit(42). */
static long load_stop;

static void child_work(void) {
    alarm(20); /* a hang fails the test (SIGALRM), it does not stall it */
    /* The load goroutines came along (the runnable ones run here too): let
     * them end, so that the child is quick. */
    __atomic_store_n(&load_stop, 1, __ATOMIC_RELEASE);
    enum { NW = 6 };
    gort_waitgroup_add(&child_wg, NW);
    for (int i = 0; i < NW; i++) {
        gort_chan **c = gort_alloc_conservative(2 * sizeof *c); /* a GC object: it keeps them */
        GORT_STORE(c[0], gort_chan_make(sizeof(int64_t), 0));
        GORT_STORE(c[1], gort_chan_make(sizeof(int64_t), 0));
        CHECK_GT(gort_go(child_echo, c), 0);
        CHECK_GT(gort_go(child_worker, c), 0);
    }
    gort_waitgroup_wait(&child_wg);
    CHECK_EQ(child_sum, NW);
    _exit(42);
}

static int64_t fork_ns_total, fork_ns_worst; /* fork() itself, in the parent */

/* fork from a goroutine; the parent waits in a syscall. Returns the
 * child's wait status. */
static int fork_and_wait(bool in_syscall) {
    if (in_syscall) gort_syscall_enter();
    int64_t t0 = test_now_ns();
    pid_t pid = fork();
    if (pid > 0) {
        int64_t d = test_now_ns() - t0;
        fork_ns_total += d;
        if (d > fork_ns_worst) fork_ns_worst = d;
    }
    if (pid == 0) {
        if (in_syscall) gort_syscall_exit();
        child_work();
    }
    if (!in_syscall) gort_syscall_enter();
    CHECK(pid > 0);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    gort_syscall_exit();
    return st;
}

/* ---- the load -------------------------------------------------------------------------- */

static long load_ops;
static gort_mutex load_mu = GORT_MUTEX_INIT;

static void load_echo(void *arg) {
    gort_chan **c = arg;
    int64_t v;
    while (gort_chan_recv(c[0], &v)) gort_chan_send(c[1], &v);
}
static void load_pinger(void *arg) {
    gort_chan **c = arg;
    int64_t v = 0;
    while (!__atomic_load_n(&load_stop, __ATOMIC_RELAXED)) {
        gort_chan_send(c[0], &v);
        gort_chan_recv(c[1], &v);
        __atomic_fetch_add(&load_ops, 1, __ATOMIC_RELAXED);
    }
}
static void load_yielder(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&load_stop, __ATOMIC_RELAXED)) gort_yield();
}
static void load_sleeper(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&load_stop, __ATOMIC_RELAXED)) gort_sleep(1000 * 1000);
}
static void load_locker(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&load_stop, __ATOMIC_RELAXED)) {
        gort_mutex_lock(&load_mu);
        for (volatile int i = 0; i < 50; i++) {
        }
        gort_mutex_unlock(&load_mu);
        gort_preempt_check(); /* uncontended, lock and unlock never yield */
    }
}
static void load_mallocer(void *arg) {
    (void)arg;
    void *keep[64] = {0};
    for (unsigned i = 0; !__atomic_load_n(&load_stop, __ATOMIC_RELAXED); i++) {
        gort_free(keep[i % 64]);
        keep[i % 64] = gort_malloc(16 + (i * 37) % 5000);
        if (i % 64 == 0) gort_yield();
    }
    for (int i = 0; i < 64; i++) gort_free(keep[i]);
}
/* In C code that reaches no preemption point for stretches of ~5 ms. */
static void load_hog(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&load_stop, __ATOMIC_RELAXED)) {
        int64_t end = test_now_ns() + 5 * 1000 * 1000;
        while (test_now_ns() < end) {
        }
        gort_preempt_check();
    }
}

static void start_load(void) {
    for (int i = 0; i < 2; i++) {
        gort_chan **c = gort_alloc_conservative(2 * sizeof *c); /* a GC object: it keeps them */
        GORT_STORE(c[0], gort_chan_make(sizeof(int64_t), 0));
        GORT_STORE(c[1], gort_chan_make(sizeof(int64_t), 0));
        gort_go(load_echo, c);
        gort_go(load_pinger, c);
    }
    for (int i = 0; i < 2; i++) gort_go(load_yielder, NULL);
    for (int i = 0; i < 4; i++) gort_go(load_sleeper, NULL);
    for (int i = 0; i < 2; i++) gort_go(load_locker, NULL);
    gort_go(load_mallocer, NULL);
    gort_go(load_hog, NULL);
}

static int load_main(int argc, char **argv) {
    (void)argc, (void)argv;
    /* Under ASan each fork copies its shadow's page tables: 300 forks took 230 s of CI */
    long n = (TEST_ASAN ? 40 : 500) * test_scale(); /* twice: p2 and p4 */
    const char *e = getenv("FORK_N");
    if (e) n = atol(e);
    start_load();
    gort_sleep(20 * 1000 * 1000);
    long ok = 0, hung = 0, bad = 0;
    int64_t worst = 0, total = 0;
    for (long i = 0; i < n; i++) {
        int64_t t0 = test_now_ns();
        int st = fork_and_wait(i % 2 == 0);
        int64_t dt = test_now_ns() - t0;
        total += dt;
        if (dt > worst) worst = dt;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 42)
            ok++;
        else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
            hung++;
        else
            bad++;
    }
    long ops = __atomic_load_n(&load_ops, __ATOMIC_RELAXED);
    __atomic_store_n(&load_stop, 1, __ATOMIC_RELEASE);
    fprintf(stderr, "    fork() in the parent: mean %.2f ms, worst %.1f ms\n",
            fork_ns_total / 1e6 / (double)n, fork_ns_worst / 1e6);
    fprintf(stderr,
            "    %ld forks under load: %ld ok, %ld hung, %ld other; fork+child+wait mean %.2f ms, "
            "worst %.1f ms; parent ping-pongs %ld\n",
            n, ok, hung, bad, total / 1e6 / (double)n, worst / 1e6, ops);
    CHECK_EQ(hung, 0);
    CHECK_EQ(bad, 0);
    CHECK_GT(ops, 0); /* the parent's goroutines kept running */
    return 0;
}

/* ---- from a plain thread ------------------------------------------------------------- */

static void *plain_forker(void *arg) {
    (void)arg;
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);
        /* No M here: the allocator and non-blocking channel use work;
         * spawning a goroutine is -EPERM, as on any plain thread. */
        void *p = gort_malloc(100);
        CHECK(p != NULL);
        gort_free(p);
        gort_chan *c = gort_chan_make(sizeof(int64_t), 1);
        int64_t v = 5;
        CHECK(gort_chan_trysend(c, &v));
        CHECK(gort_chan_tryrecv(c, &v, NULL));
        CHECK_EQ(gort_go(child_echo, NULL), -EPERM);
        _exit(42);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    return (void *)(intptr_t)(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static int plain_main(int argc, char **argv) {
    (void)argc, (void)argv;
    start_load();
    gort_sleep(10 * 1000 * 1000);
    for (int i = 0; i < 20; i++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, plain_forker, NULL) == 0);
        void *r;
        gort_syscall_enter();
        CHECK(pthread_join(t, &r) == 0);
        gort_syscall_exit();
        CHECK_EQ((intptr_t)r, 42);
    }
    __atomic_store_n(&load_stop, 1, __ATOMIC_RELEASE);
    return 0;
}

/* ---- a deadlock in a child is reported ----------------------------------------------- */

static void parked_forever(void *arg) {
    gort_chan_recv(arg, NULL);
}

static int deadlock_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_chan *never = gort_chan_make(0, 0);
    for (int i = 0; i < 3; i++) gort_go(parked_forever, never);
    gort_sleep(5 * 1000 * 1000);
    gort_syscall_enter();
    pid_t pid = fork();
    if (pid == 0) {
        gort_syscall_exit();
        alarm(20);
        int devnull = open("/dev/null", O_WRONLY); /* the dump: not this test's output */
        dup2(devnull, 2);
        gort_chan_recv(never, NULL); /* every goroutine of the child waits */
        _exit(0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    gort_syscall_exit();
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 2); /* the deadlock, not SIGALRM */
    return 0;
}

/* ---- main returns in a child ----------------------------------------------------------- */

static int main_returns_main(int argc, char **argv) {
    (void)argc, (void)argv;
    start_load();
    gort_sleep(5 * 1000 * 1000);
    for (int i = 0; i < 20; i++) {
        gort_syscall_enter();
        pid_t pid = fork();
        if (pid == 0) {
            gort_syscall_exit();
            alarm(20);
            return 7; /* the child's main returns: the child exits with 7 */
        }
        int st;
        CHECK(waitpid(pid, &st, 0) == pid);
        gort_syscall_exit();
        CHECK(WIFEXITED(st));
        CHECK_EQ(WEXITSTATUS(st), 7);
        gort_sleep(1000 * 1000); /* so that main resumes on either M */
    }
    __atomic_store_n(&load_stop, 1, __ATOMIC_RELEASE);
    return 0;
}

/* A longer alarm for the load cases: 500 forks, each with a child that
 * runs beside the parent's load, take 20-40 s on a quiet 2-core machine and
 * can take 100 s or more on a loaded one. */
#define LOAD_ALARM_S 280

int main(int argc, char **argv) {
    if (argc > 1) test_filter(argv[1]);
    in_child_for("test_fork_load_p2", load_main, 2, LOAD_ALARM_S);
    in_child_for("test_fork_load_p4", load_main, 4, LOAD_ALARM_S);
    in_child("test_fork_plain_thread", plain_main, 2);
    in_child("test_fork_deadlock", deadlock_main, 2);
    in_child("test_fork_main_returns", main_returns_main, 2);
    fprintf(stderr, "all fork tests passed\n");
    return test_result();
}
