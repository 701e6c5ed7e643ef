/* fork() and the allocator: a child must find a heap it can use, whatever
 * the parent's other threads were doing at the moment of the fork (mheap.c's
 * atfork handlers take every allocator lock around fork, or the child resets
 * them), and the runtime's background work (the scavenger) must go on in the
 * child.
 *
 * Each case runs in a process of its own (forked from main, which never
 * allocates from gort itself, so that each case starts its own scavenger),
 * with a time limit: a child that deadlocks must fail the case, not hang
 * the test. All cases run; the program fails if any did. Cases that depend
 * on the timing of the fork retry their window a bounded number of times;
 * GORT_TEST_SCALE lengthens the churn cases. */
#include "test.h"

#include "gort/malloc.h"
#include "gort/memstats.h"
#include "mem/mpagealloc.h"

#include <pthread.h>
#include <signal.h>

#include <sys/syscall.h>

#if TEST_ASAN
#define UNDER_ASAN 1
#endif

#define MiB ((size_t)1 << 20)

/* ---- stalls: the test's own mmap and madvise ----
 *
 * gort reaches the OS through mmap and madvise (src/base/os_linux.c); this
 * program defines both, so that a test can make the next call stall for a
 * while, and fork while some thread is inside the allocator at that point
 * with its locks held. That turns "fork at an unlucky moment" into a
 * deterministic case. The stall is bounded (STALL_MS): a fork that waits for
 * the stalled thread (as a correct atfork handler may) goes on after it. */
enum { STALL_MS = 500 };
static int stall_mmap, stall_madvise; /* 1: the next call stalls */
static int stalled;                   /* a call is stalling now */
static int stall_release;

static __thread int in_gort; /* set by the thread that is to stall, around its gort call */

static void stall(int *which) {
    /* Only calls made from inside gort by the chosen thread: a sanitizer
     * runtime, say, may map memory of its own while starting the thread. */
    if (!in_gort || !__atomic_load_n(which, __ATOMIC_RELAXED) ||
        !__atomic_exchange_n(which, 0, __ATOMIC_ACQ_REL))
        return;
    __atomic_store_n(&stalled, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < STALL_MS && !__atomic_load_n(&stall_release, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    __atomic_store_n(&stalled, 0, __ATOMIC_RELEASE);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    stall(&stall_mmap);
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int madvise(void *addr, size_t len, int advice) {
    stall(&stall_madvise);
    return (int)syscall(SYS_madvise, addr, len, advice);
}

/* Arms a stall of the next call, runs fn in a new thread, and returns once
 * that thread is stalled inside the call (or fails after 5 s). */
static pthread_t stall_in_thread(int *which, void *(*fn)(void *)) {
    __atomic_store_n(&stall_release, 0, __ATOMIC_RELAXED);
    __atomic_store_n(which, 1, __ATOMIC_RELEASE);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fn, NULL) == 0);
    int64_t deadline = test_now_ns() + 5000000000ll;
    while (!__atomic_load_n(&stalled, __ATOMIC_ACQUIRE) && test_now_ns() < deadline) usleep(100);
    CHECK(__atomic_load_n(&stalled, __ATOMIC_ACQUIRE));
    return t;
}

/* Waits at most ms for pid; kills it if it is still running. Returns its
 * wait status, or -1 if it had to be killed. */
static int wait_bounded(pid_t pid, int ms) {
    int st;
    for (int i = 0; i < ms; i++) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        CHECK(w >= 0);
        if (w == pid) return st;
        usleep(1000);
    }
    kill(pid, SIGKILL);
    CHECK(waitpid(pid, &st, 0) == pid);
    return -1;
}

static bool exited_ok(int st) {
    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static const char *describe(int st) {
    static char buf[64];
    if (st == -1) return "hung (killed)";
    if (WIFEXITED(st))
        snprintf(buf, sizeof buf, "exited with %d", WEXITSTATUS(st));
    else
        snprintf(buf, sizeof buf, "killed by signal %d", WTERMSIG(st));
    return buf;
}

static gort_memstats read_ms(void) {
    gort_memstats ms;
    gort_read_memstats(&ms);
    return ms;
}

/* ---- helpers: dirty memory ---- */

enum { MAXBLK = 1 << 16 };
static void *blocks[MAXBLK];
static size_t nblocks;

/* About total bytes in a mix of sizes, every byte written. */
static size_t alloc_dirty(size_t total) {
    size_t got = 0;
    nblocks = 0;
    for (uint64_t i = 0; got < total; i++) {
        size_t n = i % 4 == 0 ? 2 * MiB + (i % 7) * 8192 : 64 + (i * 7919) % 30000;
        CHECK(nblocks < MAXBLK);
        void *p = gort_malloc(n);
        CHECK(p != NULL);
        memset(p, 0x3c, n);
        blocks[nblocks++] = p;
        got += n;
    }
    return got;
}

static void free_dirty(void) {
    for (size_t i = 0; i < nblocks; i++) gort_free(blocks[i]);
    nblocks = 0;
}

/* ---- cases ---- */

/* The child uses what the parent's threads allocated, and allocates itself. */
enum { PER_THREAD = 2000 };
static uint8_t *tblocks[4][PER_THREAD];

static int filled, release;

static void *fill_thread(void *arg) {
    int k = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        size_t n = 1 + (size_t)(i * 37 + k) % 5000;
        if (i % 100 == 0) n = 40000 + (size_t)i * 100;
        tblocks[k][i] = gort_malloc(n);
        CHECK(tblocks[k][i] != NULL);
        memset(tblocks[k][i], (uint8_t)(k * 31 + i), n < 64 ? n : 64);
    }
    __atomic_fetch_add(&filled, 1, __ATOMIC_RELEASE);
    /* Threads 2 and 3 stay alive until after the fork: the child inherits
     * spans owned by mcaches of threads it does not have. */
    while (k >= 2 && !__atomic_load_n(&release, __ATOMIC_ACQUIRE)) usleep(1000);
    return NULL;
}

static void *alloc_free_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        void *p = gort_malloc((size_t)(i % 3000) + 1);
        CHECK(p != NULL);
        gort_free(p);
    }
    return NULL;
}

static void case_basic(void) {
    pthread_t t[4];
    for (int k = 0; k < 4; k++)
        CHECK(pthread_create(&t[k], NULL, fill_thread, (void *)(intptr_t)k) == 0);
    for (int k = 0; k < 2; k++) CHECK(pthread_join(t[k], NULL) == 0);
    int64_t deadline = test_now_ns() + 10000000000ll;
    while (__atomic_load_n(&filled, __ATOMIC_ACQUIRE) < 4 && test_now_ns() < deadline) usleep(1000);
    CHECK_EQ(filled, 4);
    gort_memstats ms0 = read_ms();
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(20);
        for (int k = 0; k < 4; k++)
            for (int i = 0; i < PER_THREAD; i++) {
                size_t n = 1 + (size_t)(i * 37 + k) % 5000;
                if (i % 100 == 0) n = 40000 + (size_t)i * 100;
                for (size_t j = 0; j < (n < 64 ? n : 64); j++)
                    CHECK(tblocks[k][i][j] == (uint8_t)(k * 31 + i));
                gort_free(tblocks[k][i]);
            }
        pthread_t c;
        CHECK(pthread_create(&c, NULL, alloc_free_thread, NULL) == 0);
        CHECK(pthread_join(c, NULL) == 0);
        void *big = gort_calloc(1, 8 * MiB);
        CHECK(big != NULL);
        gort_free(big);
        gort_memstats ms = read_ms();
        CHECK_EQ(ms.heap_objects, ms0.heap_objects - 4 * PER_THREAD);
        pagealloc_verify();
        _exit(0);
    }
    int st = wait_bounded(pid, 20000);
    __atomic_store_n(&release, 1, __ATOMIC_RELEASE);
    for (int k = 2; k < 4; k++) CHECK(pthread_join(t[k], NULL) == 0);
    if (!exited_ok(st)) {
        fprintf(stderr, "child %s\n", describe(st));
        exit(1);
    }
    /* The parent's heap is untouched by the child's frees. */
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < PER_THREAD; i++) {
            CHECK(tblocks[k][i][0] == (uint8_t)(k * 31 + i));
            gort_free(tblocks[k][i]);
        }
}

/* Forked while another thread is in gort_free_os_memory, inside madvise:
 * the child must be able to return memory itself. */
static void *free_os_memory_thread(void *arg) {
    (void)arg;
    in_gort = 1;
    gort_free_os_memory();
    in_gort = 0;
    return NULL;
}

static void case_fork_during_scavenge(void) {
    alloc_dirty(64 * MiB);
    free_dirty(); /* dirty free pages for gort_free_os_memory to release */
    pthread_t t = stall_in_thread(&stall_madvise, free_os_memory_thread);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(10);
        gort_free_os_memory();
        void *p = gort_malloc(3 * MiB);
        if (!p) _exit(3);
        memset(p, 1, 3 * MiB);
        gort_free(p);
        gort_free_os_memory();
        /* No page was lost in the fork (pages the other thread was
         * releasing at that moment must be free pages here too). */
        pagealloc_verify();
        gort_memstats ms = read_ms();
        if (ms.heap_idle != ms.heap_released) {
            fprintf(stderr, "child: heap_idle %llu, heap_released %llu after gort_free_os_memory\n",
                    (unsigned long long)ms.heap_idle, (unsigned long long)ms.heap_released);
            _exit(4);
        }
        _exit(0);
    }
    __atomic_store_n(&stall_release, 1, __ATOMIC_RELEASE);
    CHECK(pthread_join(t, NULL) == 0);
    int st = wait_bounded(pid, 5000);
    if (!exited_ok(st)) {
        fprintf(stderr,
                "a child forked while another thread was in gort_free_os_memory: child %s "
                "(hung: its own gort_free_os_memory never returned; 3: malloc failed; "
                "4: free pages lost)\n",
                describe(st));
        exit(1);
    }
}

/* Forked while another thread is creating its mcache (here: stalled in the
 * mmap for the mcache pool, the first mcache of this process): a thread of
 * the child must be able to get an mcache. */
static void *first_malloc_thread(void *arg) {
    (void)arg;
    in_gort = 1;
    void *p = gort_malloc(100);
    in_gort = 0;
    CHECK(p != NULL);
    gort_free(p);
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    void *p = gort_malloc(200);
    CHECK(p != NULL);
    gort_free(p);
    return NULL;
}

static void case_fork_during_mcache_creation(void) {
#ifdef UNDER_ASAN
    /* The fork's prepare handler waits for the stalled thread to leave
     * mcache_lock; that thread then goes on to start the scavenger, and
     * ASan's pthread_create and thread start allocate from ASan's own
     * allocator while this thread forks. GCC 12's ASan takes no lock around
     * fork, so the child inherits an ASan allocator lock held (seen: the
     * child's new thread waits forever in ASan's SizeClassAllocator64, 2 to
     * 10 runs in 20). The case runs in the plain and clang builds. */
    fprintf(stderr, "--- SKIP: fork during mcache creation: under ASan\n");
    _exit(77);
#endif
    /* This process has no mcache yet: the thread's first malloc creates the
     * first one, mapping the pool's first chunk. */
    pthread_t t = stall_in_thread(&stall_mmap, first_malloc_thread);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(10);
        pthread_t c;
        CHECK(pthread_create(&c, NULL, child_thread, NULL) == 0);
        CHECK(pthread_join(c, NULL) == 0);
        void *p = gort_malloc(300);
        CHECK(p != NULL);
        gort_free(p);
        _exit(0);
    }
    __atomic_store_n(&stall_release, 1, __ATOMIC_RELEASE);
    CHECK(pthread_join(t, NULL) == 0);
    int st = wait_bounded(pid, 5000);
    if (!exited_ok(st)) {
        fprintf(stderr, "a child forked while another thread created its mcache: child %s\n",
                describe(st));
        exit(1);
    }
}

/* The background scavenger also runs in a forked child: a long-lived child
 * (a pre-forked worker) that frees memory gets its RSS back without calling
 * gort_free_os_memory. */
static void case_scavenger_in_child(void) {
    gort_free(gort_malloc(16)); /* this process's scavenger is running */
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(20);
        gort_free_os_memory();
        size_t total = alloc_dirty(128 * MiB);
        gort_memstats ms1 = read_ms();
        free_dirty();
        int64_t deadline = test_now_ns() + 5000000000ll;
        gort_memstats ms;
        do {
            usleep(50000);
            ms = read_ms();
        } while (ms.heap_released - ms1.heap_released < total / 10 * 8 && test_now_ns() < deadline);
        if (ms.heap_released - ms1.heap_released < total / 10 * 8) {
            fprintf(stderr, "forked child: %zu MiB freed, heap_released grew by %llu MiB in 5 s\n",
                    total / MiB,
                    (unsigned long long)((ms.heap_released - ms1.heap_released) / MiB));
            _exit(1);
        }
        _exit(0);
    }
    int st = wait_bounded(pid, 15000);
    if (!exited_ok(st)) {
        fprintf(stderr, "child %s\n", describe(st));
        exit(1);
    }
}

/* Forks while other threads allocate and free every size, or come and go
 * (thread start and exit take the mcache pool's lock). Each child allocates
 * in every way, from a new thread too. Whether a fork lands inside some
 * critical section is a matter of timing: many forks make it likely. */
static int stop_churn;

static void *alloc_churn(void *arg) {
    uint64_t x = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
    void *live[64] = {0};
    while (!__atomic_load_n(&stop_churn, __ATOMIC_RELAXED)) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int i = (int)(x % 64);
        gort_free(live[i]);
        size_t n = x >> 60 == 0 ? 40000 + (x >> 20) % (2 * MiB) : (x >> 20) % 4000;
        live[i] = gort_malloc(n);
        CHECK(live[i] != NULL);
    }
    for (int i = 0; i < 64; i++) gort_free(live[i]);
    return NULL;
}

static void *short_thread(void *arg) {
    void *p = gort_malloc(100 + (size_t)(uintptr_t)arg % 1000);
    CHECK(p != NULL);
    gort_free(p);
    return NULL;
}

static void *thread_churn(void *arg) {
    (void)arg;
    uintptr_t i = 0;
    while (!__atomic_load_n(&stop_churn, __ATOMIC_RELAXED)) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, short_thread, (void *)i++) == 0);
        CHECK(pthread_join(t, NULL) == 0);
    }
    return NULL;
}

static void fork_child_work(void) {
    alarm(10);
    for (int i = 0; i < 200; i++) {
        void *p = gort_malloc((size_t)(i * 131) % 33000);
        CHECK(p != NULL);
        gort_free(p);
    }
    void *big = gort_malloc(3 * MiB);
    CHECK(big != NULL);
    gort_free(big);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, short_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    /* (gort_free_os_memory is case_fork_during_scavenge's subject.) */
    _exit(0);
}

static void fork_while(void *(*churn)(void *), int nthreads, const char *what) {
#ifdef UNDER_ASAN
    /* This toolchain's ASan (GCC 12's libsanitizer) takes no lock around
     * fork: a child forked while another thread is inside ASan's own
     * allocator (starting or ending a thread does that) deadlocks there as
     * soon as it starts a thread, whatever gort does. */
    fprintf(stderr, "--- SKIP: fork while %s: under ASan\n", what);
    _exit(77); /* the case runs in a child: run_case counts the skip */
#endif
    pthread_t t[4];
    __atomic_store_n(&stop_churn, 0, __ATOMIC_RELAXED);
    for (int i = 0; i < nthreads; i++)
        CHECK(pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i) == 0);
    int64_t deadline = test_now_ns() + 1000000000ll * test_scale();
    int forks = 0, bad = 0, st = 0;
    while (test_now_ns() < deadline && !bad) {
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) fork_child_work();
        forks++;
        st = wait_bounded(pid, 3000);
        bad = !exited_ok(st);
    }
    __atomic_store_n(&stop_churn, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < nthreads; i++) CHECK(pthread_join(t[i], NULL) == 0);
    if (bad) {
        fprintf(stderr, "fork %d while %s: child %s\n", forks, what, describe(st));
        exit(1);
    }
    fprintf(stderr, "%d forks while %s\n", forks, what);
}

static void case_fork_while_allocating(void) {
    fork_while(alloc_churn, 3, "threads allocate and free");
}

static void case_fork_while_threads_come_and_go(void) {
    fork_while(thread_churn, 3, "threads start and exit");
}

/* ---- runner ---- */

static int failed;

static void run_case(void (*fn)(void), const char *name, int limit_ms) {
    if (!test_selected(name)) return;
    test_ran_++;
    fprintf(stderr, "=== %s\n", name);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        fn();
        fflush(NULL);
        _exit(0);
    }
    int st = wait_bounded(pid, limit_ms);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        test_skipped_++;
        return;
    }
    if (!exited_ok(st)) {
        fprintf(stderr, "--- FAIL %s: %s\n", name, describe(st));
        failed++;
    }
}

#define CASE(fn, ms) run_case(fn, #fn, ms)

int main(void) {
    /* main allocates nothing from gort: each case's process starts its own
     * scavenger on its first allocation. */
    CASE(case_basic, 30000);
    CASE(case_fork_while_allocating, 30000 + 3000 * (int)test_scale());
    CASE(case_fork_during_mcache_creation, 30000);
    CASE(case_fork_during_scavenge, 30000);
    CASE(case_scavenger_in_child, 30000);
    CASE(case_fork_while_threads_come_and_go, 30000 + 3000 * (int)test_scale());
    if (failed) {
        fprintf(stderr, "%d case(s) failed\n", failed);
        return 1;
    }
    fprintf(stderr, "ok\n");
    return test_result();
}
