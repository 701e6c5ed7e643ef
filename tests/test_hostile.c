/* Hostile use of the scheduler, channel, sync and timer API: every misuse
 * is a fatal error with Go's message where Go has one, and exit status 2,
 * never a SIGSEGV without a word (docs/misuse.md lists each case with its
 * message and the case here that covers it).
 *
 * Each case runs in a forked child (expect_death) under gort_main; its
 * stderr must hold the message. Cases that are not misuse (a nil func given
 * to a Once that already ran, a stdout flushed before a panic) check that
 * the program goes on, or what it printed. */
#include "test_gort.h"

#include "gort/chan.h"
#include "gort/sched.h"
#include "gort/sync.h"

#include <fcntl.h>

#define NIL_MSG  "panic: runtime error: invalid memory address or nil pointer dereference"
#define SEGV_MSG "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x"

static int (*case_fn)(int, char **);
static void run_case(void) {
    exit(gort_main(case_fn, 0, NULL));
}

/* The case fn must die with status 2 and msg (and msg2, if any) on stderr. */
static void death(const char *name, int (*fn)(int, char **), const char *msg, const char *msg2) {
    if (!test_selected(name)) return;
    fprintf(stderr, "=== %s\n", name);
    test_current_ = name;
    test_ran_++;
    case_fn = fn;
    const char *out = expect_death(run_case, 2, msg);
    if (msg2) CHECK_CONTAINS(out, msg2);
    fprintf(stderr, "    %.*s\n", (int)strcspn(strstr(out, msg), "\n"), strstr(out, msg));
}

/* ---- goroutines ---------------------------------------------------------------------- */

static int go_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_go(NULL, NULL);
    return 0;
}

static int go_stack_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_go_stack(NULL, NULL, 1 << 20);
    return 0;
}

/* ---- syscalls ------------------------------------------------------------------------ */

static int syscall_nested(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_syscall_enter();
    gort_syscall_enter();
    return 0;
}

static int syscall_exit_alone(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_syscall_exit();
    return 0;
}

static int syscall_sleep(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_syscall_enter();
    gort_sleep(1000000);
    gort_syscall_exit();
    return 0;
}

static int syscall_yield(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_syscall_enter();
    gort_yield();
    gort_syscall_exit();
    return 0;
}

static int syscall_recv(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_chan *c = gort_chan_make(8, 0);
    gort_syscall_enter();
    gort_chan_recv(c, NULL);
    gort_syscall_exit();
    return 0;
}

/* ---- timers ----------------------------------------------------------------------------- */

static int timer_stop_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_timer_stop(NULL);
    return 0;
}

static int timer_reset_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_timer_reset(NULL, 1000);
    return 0;
}

static int timer_chan_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_timer_chan(NULL);
    return 0;
}

/* ---- select ----------------------------------------------------------------------------- */

static int select_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_select(NULL, 3, true);
    return 0;
}

static int select_negative(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_case c[1] = {{NULL, GORT_RECV, NULL, false}};
    gort_select(c, -1, false);
    return 0;
}

static int select_too_many(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_case c[1] = {{NULL, GORT_RECV, NULL, false}};
    gort_select(c, 70000, false);
    return 0;
}

/* ---- sync ------------------------------------------------------------------------------- */

static int mutex_lock_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_mutex_lock(NULL);
    return 0;
}
static int mutex_unlock_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_mutex_unlock(NULL);
    return 0;
}
static int mutex_trylock_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_mutex_trylock(NULL);
    return 0;
}
static int rwmutex_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_rwmutex_rlock(NULL);
    return 0;
}
static int rwmutex_lock_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_rwmutex_lock(NULL);
    return 0;
}
static int waitgroup_add_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_waitgroup_add(NULL, 1);
    return 0;
}
static int waitgroup_done_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_waitgroup_done(NULL);
    return 0;
}
static int waitgroup_wait_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_waitgroup_wait(NULL);
    return 0;
}
static int cond_init_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_mutex m = GORT_MUTEX_INIT;
    gort_cond_init(NULL, &m);
    return 0;
}
static int cond_signal_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_cond_signal(NULL);
    return 0;
}
static int cond_broadcast_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_cond_broadcast(NULL);
    return 0;
}
static int cond_wait_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_cond_wait(NULL);
    return 0;
}
static int cond_wait_nil_mutex(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_cond c;
    gort_cond_init(&c, NULL);
    gort_cond_wait(&c);
    return 0;
}
static int once_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_once_do(NULL, NULL, NULL);
    return 0;
}
static int once_nil_fn(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_once o = GORT_ONCE_INIT;
    gort_once_do(&o, NULL, NULL);
    return 0;
}
static int pool_get_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_pool_get(NULL);
    return 0;
}
static int pool_put_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_pool_put(NULL, &argc);
    return 0;
}
static int pool_init_nil(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_pool_init(NULL, NULL);
    return 0;
}

/* Not misuse: Go's Once.Do(nil) after the first call does nothing. */
static void once_noop(void *arg) {
    (void)arg;
}
static int once_nil_after_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_once o = GORT_ONCE_INIT;
    gort_once_do(&o, once_noop, NULL);
    gort_once_do(&o, NULL, NULL);
    return 0;
}

/* ---- the rest of the misuse table (docs/misuse.md) ------------------------------------- */

static int ticker_zero(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_ticker_new(0);
    return 0;
}
static int ticker_reset_zero(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_timer_reset(gort_ticker_new(1000000), -1);
    return 0;
}
static int send_null_elem(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_chan_send(gort_chan_make(8, 1), NULL);
    return 0;
}
static int select_bad_dir(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_case c[1] = {{gort_chan_make(8, 1), 7, NULL, false}};
    gort_select(c, 1, false);
    return 0;
}
static int typed_bad(int argc, char **argv) {
    (void)argc, (void)argv;
    static const gort_type bad = {8, 16, 0, NULL, "bad", 0, 0}; /* ptrdata past its size */
    gort_chan_make_typed(&bad, 1);
    return 0;
}
static int main_twice(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_main(main_twice, 0, NULL);
    return 0;
}
static int rwmutex_unlock_unlocked(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_rwmutex rw = GORT_RWMUTEX_INIT;
    gort_rwmutex_unlock(&rw);
    return 0;
}

/* Outside a goroutine (a plain thread, or before gort_main). */
static void exit_outside(void) {
    gort_exit();
}
static void recv_outside(void) {
    gort_chan_recv(gort_chan_make(8, 0), NULL);
}
static void send_outside(void) {
    int64_t v = 1;
    gort_chan_send(gort_chan_make(8, 0), &v);
}
static void select_outside(void) {
    gort_case c[1] = {{gort_chan_make(8, 0), GORT_RECV, NULL, false}};
    gort_select(c, 1, true);
}
static void nil_recv_outside(void) {
    gort_chan_recv(NULL, NULL);
}

static void outside(const char *name, void (*fn)(void), const char *msg) {
    if (!test_selected(name)) return;
    fprintf(stderr, "=== %s\n", name);
    test_current_ = name;
    test_ran_++;
    expect_death(fn, 2, msg);
}

/* ---- stdout is flushed before a fatal error ------------------------------------------- */

static int flush_main(int argc, char **argv) {
    (void)argc, (void)argv;
    printf("buffered before the panic\n"); /* stdout is a pipe: fully buffered */
    gort_chan_close(NULL);
    return 0;
}

static void flush_child(void) {
    exit(gort_main(flush_main, 0, NULL));
}

static void test_fatal_flushes_stdout(void) {
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        close(pfd[0]);
        alarm(30);
        flush_child();
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
    CHECK_EQ(WEXITSTATUS(st), 2);
    CHECK_CONTAINS(buf, "buffered before the panic");
}

int main(int argc, char **argv) {
    if (argc > 1) test_filter(argv[1]);
    death("go_nil", go_nil, "fatal error: go of nil func value", NULL);
    death("go_stack_nil", go_stack_nil, "fatal error: go of nil func value", NULL);
    death("syscall_nested", syscall_nested, "fatal error: gort_syscall_enter: already in a syscall",
          NULL);
    death("syscall_exit_alone", syscall_exit_alone,
          "fatal error: gort_syscall_exit without gort_syscall_enter", NULL);
    death("syscall_sleep", syscall_sleep,
          "fatal error: gort_sleep between gort_syscall_enter and gort_syscall_exit", NULL);
    death("syscall_yield", syscall_yield,
          "fatal error: gort_yield between gort_syscall_enter and gort_syscall_exit", NULL);
    death("syscall_recv", syscall_recv,
          "fatal error: goroutine blocks between gort_syscall_enter and gort_syscall_exit", NULL);
    death("timer_stop_nil", timer_stop_nil, NIL_MSG, SEGV_MSG);
    death("timer_reset_nil", timer_reset_nil, NIL_MSG, SEGV_MSG);
    death("timer_chan_nil", timer_chan_nil, NIL_MSG, SEGV_MSG);
    death("select_nil", select_nil, NIL_MSG, SEGV_MSG);
    death("select_negative", select_negative, "fatal error: select: negative number of cases",
          NULL);
    death("select_too_many", select_too_many, "fatal error: select: too many cases", NULL);
    death("mutex_lock_nil", mutex_lock_nil, NIL_MSG, SEGV_MSG);
    death("mutex_unlock_nil", mutex_unlock_nil, NIL_MSG, SEGV_MSG);
    death("mutex_trylock_nil", mutex_trylock_nil, NIL_MSG, SEGV_MSG);
    death("rwmutex_rlock_nil", rwmutex_nil, NIL_MSG, SEGV_MSG);
    death("rwmutex_lock_nil", rwmutex_lock_nil, NIL_MSG, SEGV_MSG);
    death("waitgroup_add_nil", waitgroup_add_nil, NIL_MSG, SEGV_MSG);
    death("waitgroup_done_nil", waitgroup_done_nil, NIL_MSG, SEGV_MSG);
    death("waitgroup_wait_nil", waitgroup_wait_nil, NIL_MSG, SEGV_MSG);
    death("cond_init_nil", cond_init_nil, NIL_MSG, SEGV_MSG);
    death("cond_signal_nil", cond_signal_nil, NIL_MSG, SEGV_MSG);
    death("cond_broadcast_nil", cond_broadcast_nil, NIL_MSG, SEGV_MSG);
    death("cond_wait_nil", cond_wait_nil, NIL_MSG, SEGV_MSG);
    death("cond_wait_nil_mutex", cond_wait_nil_mutex, NIL_MSG, SEGV_MSG);
    death("once_nil", once_nil, NIL_MSG, SEGV_MSG);
    death("once_nil_fn", once_nil_fn, NIL_MSG, SEGV_MSG);
    death("pool_get_nil", pool_get_nil, NIL_MSG, SEGV_MSG);
    death("pool_put_nil", pool_put_nil, NIL_MSG, SEGV_MSG);
    death("pool_init_nil", pool_init_nil, NIL_MSG, SEGV_MSG);
    death("ticker_zero", ticker_zero, "panic: non-positive interval for NewTicker", NULL);
    death("ticker_reset_zero", ticker_reset_zero, "panic: non-positive interval for Ticker.Reset",
          NULL);
    death("send_null_elem", send_null_elem,
          "fatal error: chan send: NULL elem with a non-zero element size", NULL);
    death("select_bad_dir", select_bad_dir, "fatal error: select: bad case direction", NULL);
    death("makechan_bad_type", typed_bad, "fatal error: makechan: bad element type", NULL);
    death("main_twice", main_twice, "fatal error: gort_main called twice", NULL);
    death("rwmutex_unlock_unlocked", rwmutex_unlock_unlocked,
          "fatal error: sync: Unlock of unlocked RWMutex", NULL);
    outside("exit_outside", exit_outside, "fatal error: gort_exit called outside a goroutine");
    outside("recv_outside", recv_outside,
            "fatal error: chan receive would block outside a goroutine");
    outside("send_outside", send_outside, "fatal error: chan send would block outside a goroutine");
    outside("select_outside", select_outside,
            "fatal error: select would block outside a goroutine");
    outside("nil_recv_outside", nil_recv_outside,
            "fatal error: channel operation blocks forever outside a goroutine");
    in_child("once_nil_after_first_call", once_nil_after_main, 0);
    RUN(test_fatal_flushes_stdout);
    fprintf(stderr, "all hostile tests passed\n");
    return test_result();
}
