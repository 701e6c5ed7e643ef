/* Tests for timers as channels (src/chan/time_chan.c): Go 1.23's semantics
 * and hostile use.
 *
 * - Durations saturate: INT64_MAX ("never") does not fire, for gort_after,
 *   gort_timer_new, gort_timer_reset and tickers (the deadline used to
 *   overflow and fire at once).
 * - Go 1.23: after gort_timer_stop or gort_timer_reset returns, no value
 *   from before the call is received, not even one whose firing was in
 *   flight; len and cap of a timer channel are 0; the return value says
 *   whether the call kept a value from being received.
 * - Every operation is safe from many goroutines and plain threads at once
 *   (two resets used to kill the process: "timer_add: timer already armed").
 * - Timers used before gort_main are a fatal error with a message. */
#include "test_gort.h"

#include "gort/chan.h"
#include "gort/gc.h"
#include "gort/sched.h"

#include <pthread.h>
#include <stdint.h>

#define MS 1000000LL

/* Receives from c within ms milliseconds: true if a value came. */
static bool fires_within(gort_chan *c, int64_t ms) {
    gort_chan *limit = gort_after(ms * MS);
    int64_t v;
    gort_case cases[2] = {{c, GORT_RECV, &v, false}, {limit, GORT_RECV, NULL, false}};
    return gort_select(cases, 2, true) == 0;
}

/* ---- saturation ---------------------------------------------------------------- */

static int never_main(int argc, char **argv) {
    (void)argc, (void)argv;
    CHECK(!fires_within(gort_after(INT64_MAX), 100));
    CHECK(!fires_within(gort_after(INT64_MAX - 1), 20));
    gort_timer *t = gort_timer_new(INT64_MAX);
    CHECK(!fires_within(gort_timer_chan(t), 50));
    CHECK(gort_timer_reset(t, 1 * MS)); /* it was armed */
    CHECK(fires_within(gort_timer_chan(t), 5000));
    CHECK(!gort_timer_reset(t, INT64_MAX)); /* fired and received */
    CHECK(!fires_within(gort_timer_chan(t), 50));
    CHECK(gort_timer_stop(t));
    gort_timer *tk = gort_ticker_new(INT64_MAX);
    CHECK(!fires_within(gort_timer_chan(tk), 50));
    CHECK(gort_timer_reset(tk, 1 * MS)); /* ticks again */
    CHECK(fires_within(gort_timer_chan(tk), 5000));
    CHECK(fires_within(gort_timer_chan(tk), 5000));
    CHECK(gort_timer_reset(tk, INT64_MAX)); /* a huge period: one tick at most, never */
    CHECK(!fires_within(gort_timer_chan(tk), 50));
    CHECK(gort_timer_stop(tk));
    /* A sleep of "forever" is not a timer that fires at once either. */
    CHECK(!fires_within(gort_after(INT64_MAX / 2 + 12345), 20));
    /* Negative: at once. */
    CHECK(fires_within(gort_after(-5), 5000));
    return 0;
}

/* ---- Go 1.23: no stale values ------------------------------------------------------ */

static int stale_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int64_t v;
    bool ok;
    gort_timer *t = gort_timer_new(1 * MS);
    gort_chan *c = gort_timer_chan(t);
    CHECK_EQ(gort_chan_len(c), 0);
    CHECK_EQ(gort_chan_cap(c), 0);
    gort_sleep(20 * MS);           /* fired; nobody received */
    CHECK_EQ(gort_chan_len(c), 0); /* looks unbuffered */
    CHECK(gort_timer_stop(t));     /* it kept the value from being received */
    CHECK(!gort_chan_tryrecv(c, &v, &ok));
    CHECK(!gort_timer_stop(t));
    /* Reset after firing drops the old value too. */
    CHECK(!gort_timer_reset(t, 1 * MS));
    gort_sleep(20 * MS);
    CHECK(gort_timer_reset(t, 3600 * 1000 * MS));
    CHECK(!gort_chan_tryrecv(c, &v, &ok));
    CHECK(gort_timer_stop(t));
    /* A firing in flight when stop or reset comes sends nothing: many short
     * timers stopped right around their deadline; none may deliver. */
    long delivered = 0, stopped = 0;
    for (int i = 0; i < 20000; i++) {
        gort_timer_reset(t, (i % 7) * 1000);
        for (volatile int k = 0; k < (i % 13) * 50; k++) {
        }
        if (i % 3 == 0) gort_yield();
        if (gort_timer_stop(t)) stopped++;
        if (gort_chan_tryrecv(c, &v, &ok)) delivered++;
    }
    gort_sleep(5 * MS);
    if (gort_chan_tryrecv(c, &v, &ok)) delivered++;
    CHECK_EQ(delivered, 0);
    CHECK_GT(stopped, 0);
    /* And a value that was received is not reported as stopped. */
    CHECK(!gort_timer_reset(t, 1 * MS));
    CHECK(gort_chan_recv(c, &v));
    CHECK(!gort_timer_stop(t));
    return 0;
}

/* ---- concurrency: goroutines and plain threads on one timer ------------------------ */

static gort_timer *shared_t, *shared_tk;
static long conc_stop, conc_done, conc_ops;

static void hammer_once(unsigned *seed) {
    *seed = *seed * 1103515245 + 12345;
    unsigned r = *seed >> 16;
    gort_timer *t = (r & 1) ? shared_t : shared_tk;
    switch ((r >> 1) % 4) {
    case 0:
        gort_timer_reset(t, (int64_t)(r % 50) * 1000 + 1);
        break;
    case 1:
        gort_timer_stop(t);
        break;
    case 2:
        gort_timer_reset(t, INT64_MAX);
        break;
    default:
        gort_chan_tryrecv(gort_timer_chan(t), NULL, NULL);
        break;
    }
    __atomic_fetch_add(&conc_ops, 1, __ATOMIC_RELAXED);
}

static void conc_goroutine(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!__atomic_load_n(&conc_stop, __ATOMIC_ACQUIRE)) {
        hammer_once(&seed);
        if ((seed & 15) == 0) gort_yield();
    }
    __atomic_fetch_add(&conc_done, 1, __ATOMIC_RELEASE);
}

static void *conc_thread(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!__atomic_load_n(&conc_stop, __ATOMIC_ACQUIRE)) hammer_once(&seed);
    __atomic_fetch_add(&conc_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int concurrent_main(int argc, char **argv) {
    (void)argc, (void)argv;
    GORT_STORE(shared_t, gort_timer_new(1 * MS)); /* globals: roots, with the barrier */
    GORT_STORE(shared_tk, gort_ticker_new(1 * MS));
    enum { NG = 8, NT = 2 };
    for (int i = 0; i < NG; i++) gort_go(conc_goroutine, (void *)(uintptr_t)(i + 1));
    pthread_t th[NT];
    for (int i = 0; i < NT; i++)
        CHECK(pthread_create(&th[i], NULL, conc_thread, (void *)(uintptr_t)(100 + i)) == 0);
    gort_sleep(1000 * MS);
    __atomic_store_n(&conc_stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < NT; i++) CHECK(pthread_join(th[i], NULL) == 0);
    CHECK(wait_for(&conc_done, NG + NT, 10000));
    CHECK_GT(conc_ops, 1000);
    /* Both still work. */
    gort_timer_stop(shared_t);
    gort_chan_tryrecv(gort_timer_chan(shared_t), NULL, NULL);
    CHECK(!gort_timer_reset(shared_t, 1 * MS));
    CHECK(fires_within(gort_timer_chan(shared_t), 5000));
    gort_timer_reset(shared_tk, 1 * MS);
    CHECK(fires_within(gort_timer_chan(shared_tk), 5000));
    CHECK(fires_within(gort_timer_chan(shared_tk), 5000));
    CHECK(gort_timer_stop(shared_tk));
    return 0;
}

/* ---- a plain thread arms timers a goroutine waits on ------------------------------- */

static gort_chan *pt_chan;
static void *pt_thread(void *arg) {
    (void)arg;
    gort_chan *c = gort_after(2 * MS);
    gort_chan_send(pt_chan, &c);
    return NULL;
}

static int plain_thread_main(int argc, char **argv) {
    (void)argc, (void)argv;
    GORT_STORE(pt_chan, gort_chan_make(sizeof(gort_chan *), 1));
    pthread_t th;
    CHECK(pthread_create(&th, NULL, pt_thread, NULL) == 0);
    gort_chan *c;
    CHECK(gort_chan_recv(pt_chan, &c));
    CHECK(fires_within(c, 5000));
    CHECK(pthread_join(th, NULL) == 0);
    return 0;
}

/* ---- before gort_main -------------------------------------------------------------- */

static void after_before_main(void) {
    gort_after(MS);
}
static void timer_before_main(void) {
    gort_timer_new(MS);
}
static void ticker_before_main(void) {
    gort_ticker_new(MS);
}
static void test_before_main(void) {
    expect_death(after_before_main, 2, "fatal error: gort_after: timers need the scheduler");
    expect_death(timer_before_main, 2, "fatal error: gort_timer_new: timers need the scheduler");
    expect_death(ticker_before_main, 2, "fatal error: gort_ticker_new: timers need the scheduler");
}

int main(int argc, char **argv) {
    if (argc > 1) test_filter(argv[1]);
    in_child("test_timer_never", never_main, 2);
    in_child("test_timer_stale_p1", stale_main, 1);
    in_child("test_timer_stale_p2", stale_main, 2);
    in_child("test_timer_concurrent", concurrent_main, 2);
    in_child("test_timer_plain_thread", plain_thread_main, 2);
    RUN(test_before_main);
    fprintf(stderr, "all timer tests passed\n");
    return test_result();
}
