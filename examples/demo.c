/* The gort tour. Build and run it with `make demo`.
 *
 * gort is Go's runtime as a C library. This tour grows as the runtime does:
 * Go's memory allocator (size classes, per-thread caches, a page heap, a
 * scavenger) used as a malloc, with Go's MemStats to watch it; then
 * goroutines on Go's M:N scheduler, channels, the netpoller, the
 * garbage collector, and Go's profiles. */
#include <gort.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)

static void show(const char *when) {
    gort_memstats ms;
    gort_read_memstats(&ms);
    printf(
        "  %-34s HeapAlloc %7.2f MiB  HeapInuse %7.2f MiB  HeapReleased %7.2f MiB  objects %llu\n",
        when, ms.heap_alloc / MIB, ms.heap_inuse / MIB, ms.heap_released / MIB,
        (unsigned long long)ms.heap_objects);
}

/* A second thread frees what the first allocated: gort's spans take frees
 * from any thread. */
static void *free_them(void *arg) {
    void **blocks = arg;
    for (int i = 0; i < 100000; i++) gort_free(blocks[i]);
    return NULL;
}

/* ---- goroutines ---- */

static long done_count;
static long on_thread[64];

static volatile double work_sink;

static void worker(void *arg) {
    long id = (long)arg;
    double x = 0;
    for (int i = 0; i < 20000; i++) x += i * 0.5; /* some work */
    work_sink = x;
    gort_sleep(1000000); /* parks the goroutine, not the thread */
    __atomic_fetch_add(&on_thread[id % 64], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&done_count, 1, __ATOMIC_RELEASE);
}

static void goroutines(void) {
    printf("\n5. Goroutines: Go's M:N scheduler (GOMAXPROCS=%d)\n", gort_gomaxprocs(0));
    int64_t t0 = gort_nanotime();
    for (long i = 0; i < 10000; i++) gort_go(worker, (void *)i);
    printf("  started 10,000 goroutines; %d alive\n", gort_num_goroutine());
    while (__atomic_load_n(&done_count, __ATOMIC_ACQUIRE) < 10000) gort_sleep(1000000);
    printf("  all finished in %.1f ms (each did some work and slept 1 ms)\n",
           (gort_nanotime() - t0) / 1e6);
    printf("  goroutine stacks are reserved, not committed: an idle one costs about a page\n");
}

/* ---- channels ---- */

/* A type the garbage collector will scan precisely: only `next` holds a pointer. */
struct pt {
    int64_t x;
    struct pt *next;
};
GORT_TYPE(pt, next);

static gort_waitgroup wg = GORT_WAITGROUP_INIT;

static void squarer(void *arg) {
    gort_chan **chans = arg; /* in, out */
    int64_t v;
    while (gort_chan_recv(chans[0], &v)) {
        int64_t sq = v * v;
        gort_chan_send(chans[1], &sq);
    }
    gort_waitgroup_done(&wg);
}

static void channels(void) {
    printf("\n6. Channels, select and a WaitGroup, as in Go\n");
    static gort_chan *chans[2];
    chans[0] = gort_chan_make(sizeof(int64_t), 0);  /* unbuffered */
    chans[1] = gort_chan_make(sizeof(int64_t), 16); /* buffered */
    gort_waitgroup_add(&wg, 4);
    for (int i = 0; i < 4; i++) gort_go(squarer, chans);
    int64_t sum = 0, got = 0;
    for (int64_t i = 1; i <= 100; i++) {
        gort_chan_send(chans[0], &i); /* handed straight to a waiting squarer */
        int64_t sq;
        while (gort_chan_tryrecv(chans[1], &sq, NULL)) sum += sq, got++;
    }
    gort_chan_close(chans[0]); /* the squarers' loops end */
    gort_waitgroup_wait(&wg);
    int64_t sq;
    while (got < 100 && gort_chan_recv(chans[1], &sq)) sum += sq, got++;
    printf("  sum of the squares of 1..100 computed by 4 goroutines: %lld (want 338350)\n",
           (long long)sum);
    gort_chan *never = gort_chan_make(sizeof(int64_t), 0);
    int64_t v;
    gort_case cases[] = {{never, GORT_RECV, &v, false},
                         {gort_after(5000000), GORT_RECV, &v, false}};
    int chosen = gort_select(cases, 2, true);
    printf("  select with a 5 ms timeout chose case %d (the timer)\n", chosen);
    gort_chan *typed = gort_chan_make_typed(&pt_type, 1);
    struct pt a = {42, NULL}, b;
    gort_chan_send(typed, &a);
    gort_chan_recv(typed, &b);
    printf("  a typed channel of struct %s (%zu bytes; the GC scans only word 1, its pointer) "
           "carried x = %lld\n",
           pt_type.name, pt_type.size, (long long)b.x);
}

/* ---- the netpoller ---- */

static void echo_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = gort_read(fd, buf, sizeof buf)) > 0) /* parks the goroutine until data comes */
        gort_write(fd, buf, (size_t)n);
    gort_close(fd);
}

static void echo_server(void *arg) {
    int lfd = (int)(intptr_t)arg, fd;
    while ((fd = gort_accept(lfd, NULL, NULL)) >= 0) gort_go(echo_conn, (void *)(intptr_t)fd);
}

static char echo_addr[64];
static long echoed;
static gort_waitgroup clients = GORT_WAITGROUP_INIT;

static void echo_client(void *arg) {
    char msg[64], back[64] = {0};
    int n = snprintf(msg, sizeof msg, "hello from client %ld", (long)(intptr_t)arg);
    int fd = gort_dial_tcp(echo_addr);
    if (fd >= 0 && gort_write(fd, msg, (size_t)n) == n) {
        ssize_t got = 0, r = 1;
        while (got < n && (r = gort_read(fd, back + got, (size_t)(n - got))) > 0) got += r;
        if (got == n && memcmp(msg, back, (size_t)n) == 0) __atomic_fetch_add(&echoed, 1, 0);
    }
    gort_close(fd);
    gort_waitgroup_done(&clients);
}

static void netpoll(void) {
    printf("\n7. The netpoller: a TCP echo server, one goroutine per connection\n");
    int lfd = gort_listen_tcp("127.0.0.1:0", 0);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    getsockname(lfd, (struct sockaddr *)&sin, &len);
    snprintf(echo_addr, sizeof echo_addr, "127.0.0.1:%d", ntohs(sin.sin_port));
    gort_go(echo_server, (void *)(intptr_t)lfd);
    int64_t t0 = gort_nanotime();
    gort_waitgroup_add(&clients, 200);
    for (long i = 0; i < 200; i++) gort_go(echo_client, (void *)(intptr_t)i);
    gort_waitgroup_wait(&clients);
    printf("  200 client goroutines dialed %s; %ld got their message back, in %.1f ms\n", echo_addr,
           echoed, (gort_nanotime() - t0) / 1e6);
    int fd = gort_dial_tcp(echo_addr);
    t0 = gort_nanotime();
    gort_set_deadline(fd, t0 + 20000000, 0); /* nobody will send: time out in 20 ms */
    char c;
    ssize_t r = gort_read(fd, &c, 1);
    printf("  a read with a 20 ms deadline returned %zd (-ETIMEDOUT) after %.1f ms\n", r,
           (gort_nanotime() - t0) / 1e6);
    gort_close(fd);
    gort_close(lfd); /* the accept loop wakes with -EBADF and ends */
}

/* 8. The garbage collector. A binary tree of GC objects: its pointer
 * fields are declared once (GORT_TYPE), every pointer store goes through
 * GORT_STORE, and nothing is ever freed by hand. */
struct node {
    struct node *left, *right;
    long depth;
};
GORT_TYPE(node, left, right);

static struct node *tree(int depth) {
    struct node *n = gort_new(&node_type);
    n->depth = depth;
    if (depth > 0) {
        GORT_STORE(n->left, tree(depth - 1));
        GORT_STORE(n->right, tree(depth - 1));
    }
    return n;
}

static long count(const struct node *n) {
    return n ? 1 + count(n->left) + count(n->right) : 0;
}

static struct node *kept; /* a global: a root */

static void gc_show(const char *when) {
    gort_memstats ms;
    gort_read_memstats(&ms);
    printf("  %-40s HeapAlloc %7.2f MiB  cycles %u  last pause %.3f ms\n", when,
           ms.heap_alloc / MIB, ms.num_gc, ms.pause_ns[(ms.num_gc + 255) % 256] / 1e6);
}

/* Builds and drops trees (a function of its own: no stale pointer to them
 * stays in this frame, which is scanned conservatively). */
static __attribute__((noinline)) long churn(int n, int depth) {
    long nodes = 0;
    for (int i = 0; i < n; i++) nodes += count(tree(depth));
    return nodes;
}

static void collector(void) {
    printf("\n8. The garbage collector: concurrent mark-sweep, as Go's (docs/gc.md)\n");
    gort_gc();
    gc_show("start");
    GORT_STORE(kept, tree(16)); /* 131,071 nodes kept alive by a global */
    gc_show("a tree of 131,071 nodes in a global");
    long nodes = churn(100, 12);
    gc_show("after 100 trees of 8,191 nodes dropped");
    gort_gc();
    gc_show("after gort_gc(): only the kept tree");
    printf("  kept tree still whole: %ld nodes; %ld built and collected\n", count(kept), nodes);
    printf("  (GORT_GODEBUG=gctrace=1 make demo prints Go's line for each cycle)\n");
}

/* ---- profiles ---- */

/* Two functions burning CPU 3:1: the CPU profile shows them so. (Each
 * does something after its call, so that it keeps its frame: a tail call
 * would leave it out of the stacks.) */
static volatile unsigned long burn_sink;
static __attribute__((noinline)) unsigned long spin(long n) {
    unsigned long x = burn_sink;
    for (long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1;
    return x;
}
static __attribute__((noinline)) void hot_function(void) {
    burn_sink += spin(3000000) + 1;
}
static __attribute__((noinline)) void cool_function(void) {
    burn_sink += spin(1000000) + 1;
}

static gort_chan *parked;
static long parked_woken;
static void parked_goroutine(void *arg) {
    (void)arg;
    gort_chan_recv(parked, NULL); /* blocked until the tour closes the channel */
    __atomic_fetch_add(&parked_woken, 1, __ATOMIC_RELAXED);
}

static void profiles(void) {
    printf("\n9. Profiles, as Go's runtime/pprof and runtime/trace (docs/profiling.md)\n");
    const char *cpu_path = "/tmp/gort-demo-cpu.pprof", *trace_path = "/tmp/gort-demo-trace.json";
    int cpu = open(cpu_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int trace = open(trace_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (cpu < 0 || trace < 0 || gort_cpu_profile_start(cpu) < 0 || gort_trace_start(trace) < 0) {
        printf("  (could not write to /tmp: skipped)\n");
        return;
    }
    parked = gort_chan_make(0, 0);
    for (int i = 0; i < 3; i++) gort_go(parked_goroutine, NULL);
    for (int i = 0; i < 100; i++) { /* about half a second of CPU */
        hot_function();
        cool_function();
    }
    gort_trace_stop();
    gort_cpu_profile_stop();
    close(cpu);
    close(trace);
    printf("  CPU profile (100 Hz; hot_function burns 3x what cool_function does) -> %s\n",
           cpu_path);
    printf("      go tool pprof -top build/examples/demo %s\n", cpu_path);
    printf("  execution trace of the same half second -> %s\n", trace_path);
    printf("      open it in ui.perfetto.dev\n");
    /* The goroutine profile, as text: every stack with its count. */
    FILE *f = tmpfile();
    if (f && gort_write_goroutine_profile(fileno(f), 1) == 0) {
        rewind(f);
        char line[256];
        printf("  the goroutine profile (debug=1), its first lines:\n");
        for (int n = 0; n < 8 && fgets(line, sizeof line, f); n++) printf("      %s", line);
    }
    if (f) fclose(f);
    gort_chan_close(parked);
    printf("  live: gort_debug_serve(\"127.0.0.1:6060\") serves /debug/pprof/ and /debug/vars\n");
}

static int tour(int argc, char **argv) {
    (void)argc;
    (void)argv;
    printf("1. Go's size classes: a request is rounded up to one of 67 classes\n");
    size_t sizes[] = {1, 17, 100, 1000, 5000, 40000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = gort_malloc(sizes[i]);
        printf("  gort_malloc(%5zu) -> %p, usable %zu bytes\n", sizes[i], p, gort_usable_size(p));
        gort_free(p);
    }

    printf("\n2. Allocate 100,000 blocks here, free them on another thread\n");
    static void *blocks[100000];
    show("start");
    for (int i = 0; i < 100000; i++) {
        blocks[i] = gort_malloc(64 + (size_t)(i % 8) * 64);
        memset(blocks[i], 0xab, 64);
    }
    show("after 100,000 mallocs");
    pthread_t t;
    pthread_create(&t, NULL, free_them, blocks);
    pthread_join(t, NULL);
    show("after the other thread freed them");
    /* Freed: clear the pointers. A global array is a GC root, scanned
     * conservatively, and a stale pointer into memory that later holds GC
     * objects would keep them alive (docs/gc.md, rule 7). */
    memset(blocks, 0, sizeof blocks);

    printf("\n3. Return free memory to the OS (Go's debug.FreeOSMemory)\n");
    void *big = gort_malloc(64 << 20);
    memset(big, 1, 64 << 20);
    show("with a 64 MiB block in use");
    gort_free(big);
    gort_free_os_memory();
    show("after free + gort_free_os_memory");

    printf("\n4. Misuse is caught: gort_free of a pointer twice, or of an interior\n"
           "   pointer, is a fatal error naming the pointer (exit code 2), as Go's\n"
           "   runtime errors are. (Try it: tests/test_misuse.c shows each case.)\n");
    goroutines();
    channels();
    netpoll();
    collector();
    profiles();
    return 0;
}

int main(int argc, char **argv) {
    return gort_main(tour, argc, argv); /* runs tour as the main goroutine */
}
