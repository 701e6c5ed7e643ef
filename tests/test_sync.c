/* Tests for src/sync: semaphores, Mutex, RWMutex, WaitGroup, Once, Cond,
 * Pool.
 *
 * Every case runs gort_main in a forked child with an alarm, once with
 * GOMAXPROCS 1 and once with 4 (the runtime starts once per process).
 * Waits are bounded by deadlines; GORT_TEST_SCALE multiplies stress sizes. */
#include "test_gort.h"

#include "gort/sched.h"
#include "gort/sync.h"
#include "sched/runtime2.h"
#include "sync/sync.h"

#include <dirent.h>

static long scale;

/* OS threads in this process. */
static int count_threads(void) {
    DIR *d = opendir("/proc/self/task");
    CHECK(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void both(const char *name, int (*fn)(int, char **)) {
    in_child(name, fn, 1);
    in_child(name, fn, 4);
}

/* ---- mutex: mutual exclusion under contention ---------------------------------------- */

static gort_mutex mu = GORT_MUTEX_INIT;
static long counter, inside, finished;
static long iters;

static void mutex_worker(void *arg) {
    (void)arg;
    for (long i = 0; i < iters; i++) {
        gort_mutex_lock(&mu);
        CHECK(__atomic_add_fetch(&inside, 1, __ATOMIC_RELAXED) == 1);
        counter++;                       /* plain: the mutex protects it */
        if ((i & 63) == 0) gort_yield(); /* park others while holding it */
        __atomic_sub_fetch(&inside, 1, __ATOMIC_RELAXED);
        gort_mutex_unlock(&mu);
    }
    __atomic_add_fetch(&finished, 1, __ATOMIC_RELEASE);
}

static int mutex_main(int argc, char **argv) {
    (void)argc, (void)argv;
    iters = 20000 * scale;
    for (int i = 0; i < 8; i++) gort_go(mutex_worker, NULL);
    CHECK(wait_for(&finished, 8, 60000));
    gort_mutex_lock(&mu);
    CHECK_EQ(counter, 8 * iters);
    gort_mutex_unlock(&mu);
    return 0;
}

/* ---- mutex: the first waiter and the rseq unlock ------------------------------------- */

/* Two lockers take turns on fmu while yielders keep every P's run queue
 * busy, so a locker that finds fmu held cannot spin and parks at once,
 * usually as its first waiter while the holder is releasing it with the
 * rseq byte store: the race first_waiter_confirm closes. A wake-up lost
 * there leaves a locker parked for ever, and the deadline fails. Run also
 * without rseq (ctest test_sync_norseq), where unlock is Go's XADD. */
static gort_mutex fmu = GORT_MUTEX_INIT;
static long fcount, flockers_done, fstop;
#define FLOCKERS 2

static void first_locker(void *arg) {
    (void)arg;
    for (long i = 0; i < iters; i++) {
        gort_mutex_lock(&fmu);
        fcount++;
        gort_yield(); /* let another find it held */
        gort_mutex_unlock(&fmu);
        gort_yield(); /* and let it take the mutex: its queue empties */
    }
    __atomic_add_fetch(&flockers_done, 1, __ATOMIC_RELEASE);
}

static void yielder(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&fstop, __ATOMIC_ACQUIRE)) gort_yield();
}

static int first_waiter_main(int argc, char **argv) {
    (void)argc, (void)argv;
    const char *want = getenv("GORT_TEST_EXPECT_RSEQ");
    if (want) CHECK_EQ(sync_mutex_rseq(), *want == '1');
    iters = 20000 * scale;
    uint64_t confirms0 = __atomic_load_n(&sync_mutex_confirms, __ATOMIC_RELAXED);
    int procs = gort_gomaxprocs(0);
    for (int i = 0; i < procs; i++) gort_go(yielder, NULL);
    for (int i = 0; i < FLOCKERS; i++) gort_go(first_locker, NULL);
    bool ok = wait_for(&flockers_done, FLOCKERS, 60000);
    __atomic_store_n(&fstop, 1, __ATOMIC_RELEASE);
    CHECK(ok);
    CHECK_EQ(fcount, FLOCKERS * iters);
    CHECK_EQ(fmu.state, 0);
    uint64_t confirms = __atomic_load_n(&sync_mutex_confirms, __ATOMIC_RELAXED) - confirms0;
    fprintf(stderr, "  rseq unlock %s, %llu first-waiter confirmations\n",
            sync_mutex_rseq() ? "on" : "off", (unsigned long long)confirms);
    if (!sync_mutex_rseq()) CHECK_EQ(confirms, 0);
    return 0;
}

/* The race itself, played deterministically: the holder's rseq unlock
 * loaded the state before the first waiter registered and stores the
 * released low byte after it (the hook runs at exactly that point). The
 * holder then wakes nobody; the waiter must see the release after its
 * membarrier and do the wake-up itself, or it parks for ever. */
static gort_mutex rmu = GORT_MUTEX_INIT;
static long raced_done;

static void stale_unlock(gort_mutex *m) {
    if (m != &rmu) return;
    sync_mutex_test_hook = NULL;
    __atomic_store_n((uint8_t *)&m->state, 0, __ATOMIC_RELEASE); /* x86: the low byte */
}

static void raced_waiter(void *arg) {
    (void)arg;
    gort_mutex_lock(&rmu);
    gort_mutex_unlock(&rmu);
    __atomic_store_n(&raced_done, 1, __ATOMIC_RELEASE);
}

static int raced_main(int argc, char **argv) {
    (void)argc, (void)argv;
    if (!sync_mutex_rseq()) return 0; /* no rseq unlock: no such race */
    gort_mutex_lock(&rmu);
    sync_mutex_test_hook = stale_unlock;
    gort_go(raced_waiter, NULL);
    CHECK(wait_for(&raced_done, 1, 10000));
    CHECK(sync_mutex_test_hook == NULL); /* the waiter did register first */
    CHECK_EQ(rmu.state, 0);
    return 0;
}

/* A holder that sleeps with the mutex held: every waiter parks, and the
 * holder's unlocks (rseq or not) must wake them all in turn. */
static gort_mutex smu2 = GORT_MUTEX_INIT;
static long sleepers_done;

static void sleepy_locker(void *arg) {
    (void)arg;
    for (int i = 0; i < 5; i++) {
        gort_mutex_lock(&smu2);
        gort_sleep(200000); /* 0.2 ms held */
        gort_mutex_unlock(&smu2);
    }
    __atomic_add_fetch(&sleepers_done, 1, __ATOMIC_RELEASE);
}

static int sleepy_main(int argc, char **argv) {
    (void)argc, (void)argv;
    for (int i = 0; i < 10; i++) gort_go(sleepy_locker, NULL);
    CHECK(wait_for(&sleepers_done, 10, 30000));
    CHECK_EQ(smu2.state, 0);
    return 0;
}

/* ---- trylock ------------------------------------------------------------------------- */

static int trylock_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_mutex m = GORT_MUTEX_INIT;
    CHECK(gort_mutex_trylock(&m));
    CHECK(!gort_mutex_trylock(&m));
    gort_mutex_unlock(&m);
    CHECK(gort_mutex_trylock(&m));
    gort_mutex_unlock(&m);
    CHECK_EQ(m.state, 0);
    return 0;
}

/* ---- unlock of an unlocked mutex ----------------------------------------------------- */

static int unlock_unlocked_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_mutex m = GORT_MUTEX_INIT;
    gort_mutex_unlock(&m);
    return 0;
}
static void unlock_unlocked(void) {
    gort_main(unlock_unlocked_main, 0, NULL);
}

/* ---- starvation: a latecomer gets a mutex hammered by others ------------------------- */

static gort_mutex smu = GORT_MUTEX_INIT;
static long stop_hammer, hammers_done, got_it;

static void hammer(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&stop_hammer, __ATOMIC_ACQUIRE)) {
        gort_mutex_lock(&smu);
        for (volatile int i = 0; i < 100; i++) {
        }
        gort_mutex_unlock(&smu);
        gort_preempt_check();
    }
    __atomic_add_fetch(&hammers_done, 1, __ATOMIC_RELEASE);
}

static void latecomer(void *arg) {
    int64_t *took = arg;
    int64_t t0 = gort_nanotime();
    for (int k = 0; k < 20; k++) { /* several times: each must be bounded */
        gort_mutex_lock(&smu);
        gort_mutex_unlock(&smu);
        gort_sleep(100000);
    }
    *took = gort_nanotime() - t0;
    __atomic_store_n(&got_it, 1, __ATOMIC_RELEASE);
}

static int starve_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int nh = 4;
    for (int i = 0; i < nh; i++) gort_go(hammer, NULL);
    gort_sleep(10000000);
    static int64_t took;
    gort_go(latecomer, &took);
    bool ok = wait_for(&got_it, 1, 10000);
    __atomic_store_n(&stop_hammer, 1, __ATOMIC_RELEASE);
    CHECK(ok);
    CHECK(took < 5000000000LL);
    CHECK(wait_for(&hammers_done, nh, 10000));
    return 0;
}

/* ---- semaphores park goroutines, not threads ----------------------------------------- */

static gort_mutex pmu = GORT_MUTEX_INIT;
static long blocked_started, blocked_done, progress;

static void blocked_worker(void *arg) {
    (void)arg;
    __atomic_add_fetch(&blocked_started, 1, __ATOMIC_RELEASE);
    gort_mutex_lock(&pmu);
    gort_mutex_unlock(&pmu);
    __atomic_add_fetch(&blocked_done, 1, __ATOMIC_RELEASE);
}

static void progress_worker(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) {
        __atomic_add_fetch(&progress, 1, __ATOMIC_RELEASE);
        gort_yield();
    }
}

static int park_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int n = 1000;
    gort_mutex_lock(&pmu);
    for (int i = 0; i < n; i++) gort_go(blocked_worker, NULL);
    CHECK(wait_for(&blocked_started, n, 10000));
    gort_go(progress_worker, NULL);
    CHECK(wait_for(&progress, 100, 10000)); /* one P, 1000 blocked: still progress */
    int waiters = (int)(__atomic_load_n(&pmu.state, __ATOMIC_RELAXED) >> MUTEX_WAITER_SHIFT);
    CHECK(waiters > 0);
    CHECK(count_threads() < 32); /* goroutines park; threads do not */
    gort_mutex_unlock(&pmu);
    CHECK(wait_for(&blocked_done, n, 10000));
    CHECK_EQ(pmu.state, 0);
    return 0;
}

/* ---- raw semaphores: FIFO order ------------------------------------------------------ */

static uint32_t sem;
static long order[16], norder, sem_started;

static void sem_waiter(void *arg) {
    __atomic_add_fetch(&sem_started, 1, __ATOMIC_RELEASE);
    sync_semacquire(&sem, false, WAIT_REASON_SEMACQUIRE);
    order[__atomic_fetch_add(&norder, 1, __ATOMIC_ACQ_REL)] = (long)(intptr_t)arg;
}

static int sema_main(int argc, char **argv) {
    (void)argc, (void)argv;
    for (long i = 0; i < 8; i++) {
        gort_go(sem_waiter, (void *)(intptr_t)i);
        CHECK(wait_for(&sem_started, i + 1, 10000));
        gort_sleep(2000000); /* let it park */
    }
    for (int i = 0; i < 8; i++) {
        sync_semrelease(&sem, false);
        CHECK(wait_for(&norder, i + 1, 10000));
    }
    for (int i = 0; i < 8; i++) CHECK_EQ(order[i], i);
    CHECK_EQ(sem, 0);
    return 0;
}

/* ---- waitgroup ----------------------------------------------------------------------- */

static gort_waitgroup wg = GORT_WAITGROUP_INIT;
static long wg_count;

static void wg_worker(void *arg) {
    (void)arg;
    __atomic_add_fetch(&wg_count, 1, __ATOMIC_RELAXED);
    gort_waitgroup_done(&wg);
}

static void wg_waiter(void *arg) {
    gort_waitgroup_wait(&wg);
    CHECK_EQ(__atomic_load_n(&wg_count, __ATOMIC_RELAXED), 1000 * 5);
    __atomic_add_fetch((long *)arg, 1, __ATOMIC_RELEASE);
}

static int wg_main(int argc, char **argv) {
    (void)argc, (void)argv;
    for (int rep = 0; rep < 5; rep++) {
        gort_waitgroup_add(&wg, 1000);
        for (int i = 0; i < 1000; i++) gort_go(wg_worker, NULL);
        gort_waitgroup_wait(&wg);
        CHECK_EQ(__atomic_load_n(&wg_count, __ATOMIC_RELAXED), 1000 * (rep + 1));
    }
    /* several waiters */
    static long woke;
    gort_waitgroup_add(&wg, 1);
    for (int i = 0; i < 10; i++) gort_go(wg_waiter, &woke);
    gort_sleep(5000000);
    CHECK_EQ(woke, 0);
    gort_waitgroup_done(&wg);
    CHECK(wait_for(&woke, 10, 10000));
    gort_waitgroup_wait(&wg); /* counter 0: returns at once */
    return 0;
}

static int wg_negative_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_waitgroup w = GORT_WAITGROUP_INIT;
    gort_waitgroup_add(&w, 1);
    gort_waitgroup_done(&w);
    gort_waitgroup_done(&w);
    return 0;
}
static void wg_negative(void) {
    gort_main(wg_negative_main, 0, NULL);
}

/* ---- once ---------------------------------------------------------------------------- */

static gort_once once = GORT_ONCE_INIT;
static long once_calls, once_seen_ok, once_done;

static void once_fn(void *arg) {
    (void)arg;
    gort_sleep(2000000); /* others arrive meanwhile and must wait */
    __atomic_add_fetch(&once_calls, 1, __ATOMIC_RELAXED);
}

static void once_worker(void *arg) {
    (void)arg;
    gort_once_do(&once, once_fn, NULL);
    if (__atomic_load_n(&once_calls, __ATOMIC_RELAXED) == 1)
        __atomic_add_fetch(&once_seen_ok, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&once_done, 1, __ATOMIC_RELEASE);
}

static int once_main(int argc, char **argv) {
    (void)argc, (void)argv;
    for (int i = 0; i < 100; i++) gort_go(once_worker, NULL);
    CHECK(wait_for(&once_done, 100, 10000));
    CHECK_EQ(once_calls, 1);
    CHECK_EQ(once_seen_ok, 100);
    return 0;
}

/* ---- rwmutex ------------------------------------------------------------------------- */

static gort_rwmutex rw = GORT_RWMUTEX_INIT;
static long readers_in, max_readers, writers_in, rw_done, rw_bad, rw_value;

static void rw_reader(void *arg) {
    (void)arg;
    for (int i = 0; i < 200; i++) {
        gort_rwmutex_rlock(&rw);
        long r = __atomic_add_fetch(&readers_in, 1, __ATOMIC_ACQ_REL);
        long mx = __atomic_load_n(&max_readers, __ATOMIC_RELAXED);
        while (r > mx && !__atomic_compare_exchange_n(&max_readers, &mx, r, false, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED)) {
        }
        if (__atomic_load_n(&writers_in, __ATOMIC_ACQUIRE) != 0) __atomic_store_n(&rw_bad, 1, 0);
        gort_sleep(10000);
        __atomic_sub_fetch(&readers_in, 1, __ATOMIC_ACQ_REL);
        gort_rwmutex_runlock(&rw);
    }
    __atomic_add_fetch(&rw_done, 1, __ATOMIC_RELEASE);
}

static void rw_writer(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) {
        gort_rwmutex_lock(&rw);
        if (__atomic_add_fetch(&writers_in, 1, __ATOMIC_ACQ_REL) != 1 ||
            __atomic_load_n(&readers_in, __ATOMIC_ACQUIRE) != 0)
            __atomic_store_n(&rw_bad, 1, 0);
        rw_value++;
        gort_yield();
        __atomic_sub_fetch(&writers_in, 1, __ATOMIC_ACQ_REL);
        gort_rwmutex_unlock(&rw);
    }
    __atomic_add_fetch(&rw_done, 1, __ATOMIC_RELEASE);
}

static int rw_main(int argc, char **argv) {
    (void)argc, (void)argv;
    for (int i = 0; i < 8; i++) gort_go(rw_reader, NULL);
    for (int i = 0; i < 3; i++) gort_go(rw_writer, NULL);
    CHECK(wait_for(&rw_done, 11, 60000));
    CHECK_EQ(rw_bad, 0);
    CHECK(max_readers > 1); /* readers overlapped (they sleep holding it) */
    CHECK_EQ(rw_value, 300);
    CHECK_EQ(rw.reader_count, 0);
    return 0;
}

/* ---- cond ---------------------------------------------------------------------------- */

static gort_mutex cmu = GORT_MUTEX_INIT;
static gort_cond cond;
static long cwaiting, cwoken, cgen;

static void cond_waiter(void *arg) {
    (void)arg;
    gort_mutex_lock(&cmu);
    long gen = cgen;
    cwaiting++;
    while (cgen == gen) gort_cond_wait(&cond);
    cwaiting--;
    __atomic_add_fetch(&cwoken, 1, __ATOMIC_RELEASE);
    gort_mutex_unlock(&cmu);
}

static void wait_waiting(long want) {
    for (int i = 0; i < 10000; i++) {
        gort_mutex_lock(&cmu);
        long w = cwaiting;
        gort_mutex_unlock(&cmu);
        if (w == want) return;
        gort_sleep(1000000);
    }
    CHECK(!"waiters never arrived");
}

static int cond_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_cond_init(&cond, &cmu);
    for (int i = 0; i < 10; i++) gort_go(cond_waiter, NULL);
    wait_waiting(10);
    gort_sleep(2000000);
    /* signal wakes exactly one at a time */
    for (int k = 1; k <= 3; k++) {
        gort_mutex_lock(&cmu);
        cgen++;
        gort_mutex_unlock(&cmu);
        gort_cond_signal(&cond);
        CHECK(wait_for(&cwoken, k, 10000));
        gort_sleep(5000000);
        CHECK_EQ(__atomic_load_n(&cwoken, __ATOMIC_ACQUIRE), k);
        /* the others re-wait with the new generation: every waiter saw gen change,
           but only signalled ones return; the rest wait on. */
    }
    gort_cond_broadcast(&cond); /* gen changed: all of the rest leave */
    CHECK(wait_for(&cwoken, 10, 10000));
    gort_cond_signal(&cond); /* nobody waits: no effect */
    gort_cond_broadcast(&cond);
    return 0;
}

/* ---- pool ---------------------------------------------------------------------------- */

static long news;
static long objs[4096];

static void *pool_new(void) {
    long i = __atomic_fetch_add(&news, 1, __ATOMIC_RELAXED);
    CHECK(i < 4096);
    return &objs[i];
}

static gort_pool pool2;
static long pool_done;

static void pool_worker(void *arg) {
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        void *x = gort_pool_get(&pool2);
        CHECK(x);
        long *o = x;
        CHECK_EQ(__atomic_add_fetch(o, 1, __ATOMIC_ACQ_REL), 1); /* exclusively ours */
        if (i % 7 == 0) gort_yield();
        __atomic_sub_fetch(o, 1, __ATOMIC_ACQ_REL);
        gort_pool_put(&pool2, x);
    }
    __atomic_add_fetch(&pool_done, 1, __ATOMIC_RELEASE);
}

static int pool_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_pool pool;
    gort_pool_init(&pool, pool_new);
    void *a = gort_pool_get(&pool);
    CHECK_EQ(news, 1);
    gort_pool_put(&pool, a);
    CHECK(gort_pool_get(&pool) == a); /* same P, private slot */
    CHECK_EQ(news, 1);
    gort_pool_put(&pool, a);
    /* many: private + shared, LIFO on the own P */
    void *v[100];
    for (int i = 0; i < 100; i++) v[i] = gort_pool_get(&pool);
    CHECK_EQ(news, 100);
    for (int i = 0; i < 100; i++) gort_pool_put(&pool, v[i]);
    bool seen[100] = {0};
    for (int i = 0; i < 100; i++) {
        long *x = gort_pool_get(&pool);
        long k = x - objs;
        CHECK(k >= 0 && k < 100 && !seen[k]);
        seen[k] = true;
    }
    CHECK_EQ(news, 100);
    CHECK(gort_pool_get(&pool) == &objs[100]); /* empty: new_fn */
    gort_pool_put(&pool, NULL);                /* ignored */
    /* victim cache: one rotation keeps objects, two drop them */
    gort_pool_put(&pool, &objs[5]);
    gort_pool_put(&pool, &objs[6]);
    sync_pool_gc_rotate();
    void *x1 = gort_pool_get(&pool), *x2 = gort_pool_get(&pool);
    CHECK((x1 == &objs[5] && x2 == &objs[6]) || (x1 == &objs[6] && x2 == &objs[5]));
    gort_pool_put(&pool, x1);
    sync_pool_gc_rotate();
    sync_pool_gc_rotate();
    long before = news;
    void *y = gort_pool_get(&pool);
    CHECK_EQ(news, before + 1); /* dropped: new */
    CHECK(y == &objs[before]);
    /* no new_fn: NULL when empty */
    gort_pool p0;
    gort_pool_init(&p0, NULL);
    CHECK(gort_pool_get(&p0) == NULL);
    /* concurrent use: every object used by one goroutine at a time */
    gort_pool_init(&pool2, pool_new);
    for (int i = 0; i < 16; i++) gort_go(pool_worker, NULL);
    CHECK(wait_for(&pool_done, 16, 60000));
    CHECK(news < 4096);
    return 0;
}

static int runlock_unlocked_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_rwmutex r = GORT_RWMUTEX_INIT;
    gort_rwmutex_rlock(&r);
    gort_rwmutex_runlock(&r);
    gort_rwmutex_runlock(&r);
    return 0;
}
static void runlock_unlocked(void) {
    gort_main(runlock_unlocked_main, 0, NULL);
}
static void runlock_unlocked_death(void) {
    expect_death(runlock_unlocked, 2, "fatal error: sync: RUnlock of unlocked RWMutex");
}

static void unlock_unlocked_death(void) {
    expect_death(unlock_unlocked, 2, "fatal error: sync: unlock of unlocked mutex");
}
static void wg_negative_death(void) {
    expect_death(wg_negative, 2, "panic: sync: negative WaitGroup counter");
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    scale = test_scale();
    both("test_trylock", trylock_main);
    both("test_mutex_contention", mutex_main);
    both("test_mutex_starvation", starve_main);
    both("test_mutex_first_waiter", first_waiter_main);
    in_child("test_mutex_first_waiter", first_waiter_main, 2);
    both("test_mutex_sleeping_holder", sleepy_main);
    both("test_mutex_raced_unlock", raced_main);
    in_child("test_sema_parks_goroutines", park_main, 1);
    in_child("test_sema_parks_goroutines", park_main, 2);
    both("test_sema_fifo", sema_main);
    both("test_waitgroup", wg_main);
    both("test_once", once_main);
    both("test_rwmutex", rw_main);
    both("test_cond", cond_main);
    both("test_pool", pool_main);
    RUN(unlock_unlocked_death);
    RUN(wg_negative_death);
    RUN(runlock_unlocked_death);
    fprintf(stderr, "PASS\n");
    return test_result();
}
