/* The programs of docs/profiling.md's walk-through, and what
 * tests/prof.sh reads with `go tool pprof`, curl and a JSON schema check.
 *
 *   profiling leak OUT      a request cache that never forgets: heap profile to OUT
 *   profiling cpu OUT       two functions burning CPU 3:1: CPU profile to OUT
 *   profiling trace OUT     a channel pipeline with a stall: execution trace to OUT
 *   profiling block OUT     goroutines waiting on channels: block profile to OUT
 *   profiling mutex OUT     goroutines fighting over a mutex: mutex profile to OUT
 *   profiling goroutine D   the goroutine profile with debug=D on stdout
 *   profiling hang          a pipeline that hangs: send it SIGQUIT
 *   profiling serve         the /debug endpoint on a free loopback port (prints
 *                           "LISTENING 127.0.0.1:PORT"), with traffic, until killed
 *   profiling bench [flags] testing.B-style benchmarks (Go's output format)
 *
 * Build: cc profiling.c $(pkg-config --cflags --libs gort); keep frame
 * pointers (-fno-omit-frame-pointer) and -g for file:line in profiles. */
#include <gort.h>
#include <gort/gc.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- leak: a cache of responses keyed by request id, never evicted ---- */

typedef struct entry {
    struct entry *next;
    char *body; /* gort_malloc'd: the response */
    long id;
} entry;
GORT_TYPE(entry, next);

static entry *cache; /* a GC root (a global) */

static __attribute__((noinline)) char *render(long id) {
    char *body = gort_malloc(2048); /* explicit memory: never freed by the cache */
    snprintf(body, 2048, "response %ld", id);
    return body;
}

static __attribute__((noinline)) void remember(long id, char *body) {
    entry *e = gort_new(&entry_type); /* GC memory: reachable from the cache forever */
    e->id = id;
    e->body = body;
    GORT_STORE(e->next, cache);
    GORT_STORE(cache, e);
}

static __attribute__((noinline)) void handle_request(long id) {
    char *scratch = gort_malloc(512); /* freed: not a leak */
    memset(scratch, 0, 512);
    remember(id, render(id));
    gort_free(scratch);
}

static int write_to(const char *path, int (*fn)(int)) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    int rc = fn(fd);
    close(fd);
    return rc;
}

static int leak(const char *out) {
    gort_memstats before, after;
    gort_read_memstats(&before);
    for (long i = 0; i < 20000; i++) handle_request(i);
    gort_read_memstats(&after);
    printf("heap_alloc grew by %llu bytes\n",
           (unsigned long long)(after.heap_alloc - before.heap_alloc));
    return write_to(out, gort_write_heap_profile) < 0;
}

/* ---- cpu: 3:1 ---- */

static volatile unsigned long sink;

static __attribute__((noinline)) unsigned long spin(long n) {
    unsigned long x = sink;
    for (long i = 0; i < n; i++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x;
}

/* The additions keep these frames on the stack (no tail call). */
static __attribute__((noinline)) void burn3(long n) {
    sink += spin(3 * n) + 1;
}

static __attribute__((noinline)) void burn1(long n) {
    sink += spin(n) + 1;
}

static int cpu(const char *out) {
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || gort_cpu_profile_start(fd) < 0) return 1;
    /* Fixed work (about 3 s of CPU) in chunks longer than the sampling
     * interval, of varying lengths (so that no chunk's share of samples is
     * locked to the timer's phase): each gets its share to within one. */
    unsigned long r = 12345;
    for (int i = 0; i < 16; i++) {
        r = r * 6364136223846793005UL + 1442695040888963407UL;
        long n = 15000000 + (long)(r >> 33) % 30000000; /* 20 to 60 ms of burn1 */
        burn3(n);
        burn1(n);
    }
    int rc = gort_cpu_profile_stop();
    close(fd);
    return rc < 0;
}

/* ---- trace: a pipeline with a stall ---- */

static gort_chan *stage1, *stage2;

static void producer(void *arg) {
    (void)arg;
    for (long i = 0; i < 20000; i++) gort_chan_send(stage1, &i);
    gort_chan_close(stage1);
}

static __attribute__((noinline)) void slow_step(void) {
    /* 30 ms of computation without a scheduling point: the stall. */
    int64_t t0 = gort_nanotime();
    while (gort_nanotime() - t0 < 30000000) sink++;
}

static void worker(void *arg) {
    (void)arg;
    long v;
    while (gort_chan_recv(stage1, &v)) {
        if (v == 10000) slow_step();
        v *= 2;
        gort_chan_send(stage2, &v);
    }
}

static int trace(const char *out) {
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || gort_trace_start(fd) < 0) return 1;
    stage1 = gort_chan_make(sizeof(long), 16);
    stage2 = gort_chan_make(sizeof(long), 16);
    gort_go(producer, NULL);
    gort_go(worker, NULL);
    long v, sum = 0;
    for (long i = 0; i < 20000; i++) {
        gort_chan_recv(stage2, &v);
        sum += v;
        if (i % 1000 == 0) gort_new_array(&entry_type, 64); /* some garbage for the GC */
    }
    gort_gc();
    int rc = gort_trace_stop();
    close(fd);
    printf("sum %ld\n", sum);
    return rc < 0;
}

/* ---- block and mutex ---- */

static gort_chan *jobs;
static gort_mutex mu = GORT_MUTEX_INIT;
static long counter;
static volatile int after; /* a statement after each blocking call: no tail call hides the caller */

static __attribute__((noinline)) void consumer(void *arg) {
    gort_waitgroup *wg = arg;
    long v;
    while (gort_chan_recv(jobs, &v)) after++;
    gort_waitgroup_done(wg);
}

static int block(const char *out) {
    gort_set_block_profile_rate(1);
    jobs = gort_chan_make(sizeof(long), 0);
    gort_waitgroup wg = GORT_WAITGROUP_INIT;
    gort_waitgroup_add(&wg, 4);
    for (int i = 0; i < 4; i++) gort_go(consumer, &wg);
    for (long i = 0; i < 200; i++) {
        gort_sleep(100000);
        gort_chan_send(jobs, &i);
    }
    gort_chan_close(jobs);
    gort_waitgroup_wait(&wg);
    return write_to(out, gort_write_block_profile) < 0;
}

/* 1 ms inside the lock: longer than a waiter spins (500 us), so waiters
 * park and the mutex profile sees their waits. */
static __attribute__((noinline)) void hold_lock(void) {
    gort_mutex_lock(&mu);
    int64_t t0 = gort_nanotime();
    while (gort_nanotime() - t0 < 1000000) counter++;
    gort_mutex_unlock(&mu);
    after++;
}

static void contender(void *arg) {
    gort_waitgroup *wg = arg;
    for (int i = 0; i < 100; i++) hold_lock();
    gort_waitgroup_done(wg);
}

static int mutex(const char *out) {
    gort_set_mutex_profile_fraction(1);
    gort_waitgroup wg = GORT_WAITGROUP_INIT;
    gort_waitgroup_add(&wg, 4);
    for (int i = 0; i < 4; i++) gort_go(contender, &wg);
    gort_waitgroup_wait(&wg);
    return write_to(out, gort_write_mutex_profile) < 0;
}

/* ---- goroutines and the hang ---- */

static gort_chan *never;

static void stuck_recv(void *arg) {
    (void)arg;
    gort_chan_recv(never, NULL);
    after++;
}

static void stuck_lock(void *arg) {
    (void)arg;
    gort_mutex_lock(&mu); /* main holds it */
    after++;
}

static void stuck_select(void *arg) {
    (void)arg;
    gort_case c[1] = {{never, GORT_RECV, NULL, false}};
    gort_select(c, 1, true);
    after++;
}

static void start_stuck(void) {
    never = gort_chan_make(0, 0);
    gort_mutex_lock(&mu);
    gort_go(stuck_recv, NULL);
    gort_go(stuck_recv, NULL);
    gort_go(stuck_lock, NULL);
    gort_go(stuck_select, NULL);
    gort_sleep(20000000);
}

static int goroutines(int debug) {
    start_stuck();
    return gort_write_goroutine_profile(1, debug) < 0;
}

static void heartbeat(void *arg) { /* a timer armed: a hang, not a deadlock Go would report */
    (void)arg;
    for (;;) gort_sleep(100 * 1000 * 1000);
}

static int hang(void) {
    gort_go(heartbeat, NULL);
    start_stuck();
    printf("READY %d\n", (int)getpid());
    fflush(stdout);
    gort_chan_recv(never, NULL); /* the hang: SIGQUIT shows where everyone waits */
    after++;
    return 0;
}

/* ---- serve ---- */

static int64_t requests;

static int uptime_json(char *json, size_t cap, void *arg) {
    (void)arg;
    return snprintf(json, cap, "{\"seconds\":%lld}", (long long)(gort_nanotime() / 1000000000));
}

static void traffic(void *arg) {
    (void)arg;
    for (long i = 0;; i++) {
        handle_request(i);
        __atomic_add_fetch(&requests, 1, __ATOMIC_RELAXED);
        if (i % 64 == 0) gort_sleep(1000000);
        if (i % 4096 == 4095) cache = NULL; /* the fix: let the GC take the old entries */
    }
}

static int serve(void) {
    gort_expvar_int("requests", &requests);
    gort_expvar_func("uptime", uptime_json, NULL);
    gort_set_block_profile_rate(1000);
    gort_set_mutex_profile_fraction(5);
    int port = gort_debug_serve("127.0.0.1:0");
    if (port < 0) return 1;
    printf("LISTENING 127.0.0.1:%d\n", port);
    fflush(stdout);
    gort_go(traffic, NULL);
    start_stuck();
    for (;;) gort_sleep(1000000000);
}

/* ---- benchmarks ---- */

static void bench_malloc_free(gort_b *b) {
    for (int64_t i = 0; i < b->n; i++) gort_free(gort_malloc(64));
}

static void bench_new(gort_b *b) {
    gort_b_report_allocs(b);
    for (int64_t i = 0; i < b->n; i++) gort_new(&entry_type);
}

static void bench_chan(gort_b *b) {
    gort_chan *c = gort_chan_make(sizeof(long), 128);
    for (int64_t i = 0; i < b->n; i++) {
        long v = i;
        gort_chan_send(c, &v);
        gort_chan_recv(c, &v);
    }
}

static const gort_benchmark benchmarks[] = {
    {"MallocFree", bench_malloc_free},
    {"New", bench_new},
    {"ChanBuffered", bench_chan},
};

static int real_main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    const char *arg = argc > 2 ? argv[2] : "/dev/null";
    if (strcmp(cmd, "leak") == 0) return leak(arg);
    if (strcmp(cmd, "cpu") == 0) return cpu(arg);
    if (strcmp(cmd, "trace") == 0) return trace(arg);
    if (strcmp(cmd, "block") == 0) return block(arg);
    if (strcmp(cmd, "mutex") == 0) return mutex(arg);
    if (strcmp(cmd, "goroutine") == 0) return goroutines(atoi(arg));
    if (strcmp(cmd, "hang") == 0) return hang();
    if (strcmp(cmd, "serve") == 0) return serve();
    if (strcmp(cmd, "bench") == 0)
        return gort_bench_main(argc - 1, argv + 1, benchmarks,
                               sizeof benchmarks / sizeof benchmarks[0]);
    fprintf(stderr,
            "usage: %s leak|cpu|trace|block|mutex OUT, goroutine 0|1|2, hang, serve, bench\n",
            argv[0]);
    return 2;
}

int main(int argc, char **argv) {
    return gort_main(real_main, argc, argv);
}
