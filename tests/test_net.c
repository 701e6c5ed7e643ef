/* The network poller: goroutine-blocking I/O, deadlines, close, listen and
 * dial, the plain-thread fallback, and the scheduler's side of it (the idle
 * M in epoll_wait, its eventfd wake-ups, the deadlock check).
 *
 * Each case runs as the main goroutine of a forked child (in_child), since
 * gort_main runs once per process; the plain-thread cases run in the parent
 * before any runtime exists. Timing bounds are generous (a shared 2-core
 * machine, sanitizer builds): a deadline must never fire early and may fire
 * at most DEADLINE_SLACK_MS late. */
#include "test_gort.h"

#include "base/os.h"
#include "gort.h"
#include "net/netpoll.h"
#include "sched/runtime2.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#define MS                (1000 * 1000LL)
#define DEADLINE_SLACK_MS 400 /* how late a deadline may fire here (it is never early) */

static long scale;

/* ---- helpers ---------------------------------------------------------------- */

/* A TCP listener on 127.0.0.1, a free port; its "127.0.0.1:PORT" in addr. */
static int listen_local(char *addr, size_t cap) {
    int lfd = gort_listen_tcp("127.0.0.1:0", 0);
    TCHECK(lfd >= 0);
    struct sockaddr_in sin;
    socklen_t l = sizeof sin;
    TCHECK(getsockname(lfd, (struct sockaddr *)&sin, &l) == 0);
    snprintf(addr, cap, "127.0.0.1:%d", ntohs(sin.sin_port));
    return lfd;
}

/* Raises RLIMIT_NOFILE's soft limit to at least want; false if the hard
 * limit is lower. */
static bool raise_nofile(rlim_t want) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
    if (rl.rlim_cur >= want) return true;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) return false;
    rl.rlim_cur = want;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

static int nthreads(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void socketpair_nb(int sv[2]) {
    TCHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
}

/* Fills sv's send buffer so that the next write would block. */
static void fill(int fd) {
    static char junk[65536];
    while (write(fd, junk, sizeof junk) > 0) {
    }
}

static int64_t ms_since(int64_t t0) {
    return (gort_nanotime() - t0) / MS;
}

static int32_t io_waiters(void) {
    return __atomic_load_n(&sched.external_waiters, __ATOMIC_ACQUIRE);
}

/* Sleeps until at least n goroutines wait in the poller (at most 10 s). */
static void wait_io_waiters(int n) {
    for (int i = 0; i < 10000 && io_waiters() < n; i++) gort_sleep(MS);
    TCHECK(io_waiters() >= n);
}

/* ---- echo: 1,000 concurrent clients over loopback, every byte checked ---------- */

static void echo_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[8192];
    for (;;) {
        ssize_t r = gort_read(fd, buf, sizeof buf);
        if (r <= 0) break;
        if (gort_write(fd, buf, (size_t)r) != r) break;
    }
    gort_close(fd);
}

static void echo_accept(void *arg) {
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int c = gort_accept(lfd, NULL, NULL);
        if (c < 0) break; /* closed: the test is over */
        gort_go(echo_conn, (void *)(intptr_t)c);
    }
}

static char echo_addr[64];
static long echo_ok, echo_bytes;
static gort_waitgroup echo_wg = GORT_WAITGROUP_INIT;

static uint8_t pattern(long client, long round, size_t i) {
    return (uint8_t)((client * 131 + round * 17 + (long)i * 7) ^ (long)(i >> 8));
}

static void echo_client(void *arg) {
    long id = (long)(intptr_t)arg;
    int fd = gort_dial_tcp(echo_addr);
    TCHECK(fd >= 0);
    uint8_t out[16384], in[16384];
    long bytes = 0;
    for (long round = 0; round < 4; round++) {
        size_t len = 1 + (size_t)((id * 7919 + round * 104729) % (long)sizeof out);
        for (size_t i = 0; i < len; i++) out[i] = pattern(id, round, i);
        TCHECK(gort_write(fd, out, len) == (ssize_t)len);
        size_t got = 0;
        while (got < len) {
            ssize_t r = gort_read(fd, in + got, len - got);
            TCHECK(r > 0);
            got += (size_t)r;
        }
        TCHECK(memcmp(in, out, len) == 0);
        bytes += (long)len;
    }
    TCHECK(gort_close(fd) == 0);
    __atomic_fetch_add(&echo_bytes, bytes, __ATOMIC_RELAXED);
    __atomic_fetch_add(&echo_ok, 1, __ATOMIC_RELAXED);
    gort_waitgroup_done(&echo_wg);
}

static int echo_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(raise_nofile(4096));
    int lfd = listen_local(echo_addr, sizeof echo_addr);
    gort_go(echo_accept, (void *)(intptr_t)lfd);
    const long n = 1000;
    int64_t t0 = gort_nanotime();
    gort_waitgroup_add(&echo_wg, (int)n);
    for (long i = 0; i < n; i++) gort_go(echo_client, (void *)(intptr_t)i);
    gort_waitgroup_wait(&echo_wg);
    CHECK_EQ(echo_ok, n);
    fprintf(stderr, "  %ld clients, %ld bytes each way, %lld ms\n", n, echo_bytes,
            (long long)ms_since(t0));
    CHECK_EQ(gort_close(lfd), 0);
    return 0;
}

/* ---- ping-pong: many small round trips, as an HTTP benchmark makes them ------------------
 * A lost wake-up anywhere (poller, sleeper, run queues) leaves a connection
 * stuck for good. (The slowest round trip is printed: on a loaded machine it
 * is the time the process waited for a CPU.) */

#define PINGPONG_CONNS    100
#define PINGPONG_STALL_MS 30000 /* (a lost wake-up is forever: the child's alarm ends it) */
static long pingpong_done, pingpong_worst_ms;
static gort_waitgroup pingpong_wg = GORT_WAITGROUP_INIT;

static void pingpong_client(void *arg) {
    (void)arg;
    int fd = gort_dial_tcp(echo_addr);
    TCHECK(fd >= 0);
    long rounds = 500 * scale, worst = 0;
    for (long i = 0; i < rounds; i++) {
        char c = (char)i, back;
        int64_t t0 = gort_nanotime();
        TCHECK(gort_write(fd, &c, 1) == 1);
        TCHECK(gort_read(fd, &back, 1) == 1);
        TCHECK(back == c);
        long ms = (long)ms_since(t0);
        if (ms > worst) worst = ms;
    }
    TCHECK(worst < PINGPONG_STALL_MS);
    long w = __atomic_load_n(&pingpong_worst_ms, __ATOMIC_RELAXED);
    while (worst > w && !__atomic_compare_exchange_n(&pingpong_worst_ms, &w, worst, false,
                                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    gort_close(fd);
    __atomic_fetch_add(&pingpong_done, 1, __ATOMIC_RELAXED);
    gort_waitgroup_done(&pingpong_wg);
}

static int pingpong_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int lfd = listen_local(echo_addr, sizeof echo_addr);
    gort_go(echo_accept, (void *)(intptr_t)lfd);
    int64_t t0 = gort_nanotime();
    gort_waitgroup_add(&pingpong_wg, PINGPONG_CONNS);
    for (int i = 0; i < PINGPONG_CONNS; i++) gort_go(pingpong_client, NULL);
    gort_waitgroup_wait(&pingpong_wg);
    CHECK_EQ(pingpong_done, PINGPONG_CONNS);
    fprintf(stderr, "  %d connections x %ld round trips in %lld ms, slowest %ld ms\n",
            PINGPONG_CONNS, 500 * scale, (long long)ms_since(t0), pingpong_worst_ms);
    CHECK_EQ(gort_close(lfd), 0);
    return 0;
}

/* ---- deadlines ---------------------------------------------------------------------- */

typedef struct {
    int fd;
    int64_t deadline; /* set by the goroutine itself if nonzero */
    ssize_t result;
    int64_t returned; /* nanotime */
    long done;
} reader;

static void read_one(void *arg) {
    reader *r = arg;
    char c;
    if (r->deadline) TCHECK(gort_set_deadline(r->fd, r->deadline, GORT_DEADLINE_KEEP) == 0);
    r->result = gort_read(r->fd, &c, 1);
    r->returned = gort_nanotime();
    __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
}

static reader readers[100];
static int rpairs[100][2];

static int deadline_fire_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int64_t t0 = gort_nanotime();
    for (int i = 0; i < 100; i++) {
        socketpair_nb(rpairs[i]);
        readers[i] = (reader){.fd = rpairs[i][0], .deadline = t0 + (50 + i) * MS};
        gort_go(read_one, &readers[i]);
    }
    int64_t worst = 0;
    for (int i = 0; i < 100; i++) {
        TCHECK(wait_for(&readers[i].done, 1, 10000));
        CHECK_EQ(readers[i].result, -ETIMEDOUT);
        int64_t late = readers[i].returned - readers[i].deadline;
        CHECK_GE(late, 0);
        CHECK_LT(late, DEADLINE_SLACK_MS * MS);
        if (late > worst) worst = late;
    }
    fprintf(stderr, "  100 read deadlines, latest %.2f ms late\n", worst / 1e6);
    /* Once passed, every read fails at once, data or not, until it moves. */
    TCHECK(write(rpairs[0][1], "x", 1) == 1);
    char c;
    CHECK_EQ(gort_read(rpairs[0][0], &c, 1), -ETIMEDOUT);
    CHECK_EQ(gort_set_deadline(rpairs[0][0], 0, 0), 0);
    CHECK_EQ(gort_read(rpairs[0][0], &c, 1), 1);
    /* A deadline in the past: immediate. */
    CHECK_EQ(gort_set_deadline(rpairs[1][0], 1, 0), 0);
    t0 = gort_nanotime();
    CHECK_EQ(gort_read(rpairs[1][0], &c, 1), -ETIMEDOUT);
    CHECK_LT(ms_since(t0), 100);
    /* A write deadline, on a full socket. */
    fill(rpairs[2][0]);
    CHECK_EQ(gort_set_deadline(rpairs[2][0], 0, gort_nanotime() + 50 * MS), 0);
    t0 = gort_nanotime();
    static char big[1 << 20];
    CHECK_EQ(gort_write(rpairs[2][0], big, sizeof big), -ETIMEDOUT);
    CHECK_GE(ms_since(t0), 49);
    CHECK_LT(ms_since(t0), 50 + DEADLINE_SLACK_MS);
    /* The read direction is untouched by the write deadline. */
    TCHECK(write(rpairs[2][1], "y", 1) == 1);
    CHECK_EQ(gort_read(rpairs[2][0], &c, 1), 1);
    for (int i = 0; i < 100; i++) {
        gort_close(rpairs[i][0]);
        close(rpairs[i][1]);
    }
    return 0;
}

static int deadline_move_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int a[2], b[2], c[2], d[2];
    socketpair_nb(a);
    socketpair_nb(b);
    socketpair_nb(c);
    socketpair_nb(d);
    /* (Deadlines a second away, so that a slow start cannot reach them
     * before they are moved.) */
    int64_t t0 = gort_nanotime();
    /* Moved earlier while it waits: 10 s -> 60 ms. */
    reader ra = {.fd = a[0], .deadline = t0 + 10000 * MS};
    /* Moved later while it waits: 1 s -> 1.3 s. */
    reader rb = {.fd = b[0], .deadline = t0 + 1000 * MS};
    /* Cleared while it waits, then data comes at 1.1 s. */
    reader rc = {.fd = c[0], .deadline = t0 + 1000 * MS};
    /* No deadline at all, then one in the past while it waits. */
    reader rd = {.fd = d[0]};
    gort_go(read_one, &ra);
    gort_go(read_one, &rb);
    gort_go(read_one, &rc);
    gort_go(read_one, &rd);
    wait_io_waiters(4);
    CHECK_EQ(gort_set_deadline(a[0], t0 + 60 * MS, GORT_DEADLINE_KEEP), 0);
    CHECK_EQ(gort_set_deadline(b[0], t0 + 1300 * MS, GORT_DEADLINE_KEEP), 0);
    CHECK_EQ(gort_set_deadline(c[0], 0, GORT_DEADLINE_KEEP), 0);
    CHECK_EQ(gort_set_deadline(d[0], 1, GORT_DEADLINE_KEEP), 0);
    TCHECK(wait_for(&rd.done, 1, 5000));
    CHECK_EQ(rd.result, -ETIMEDOUT);
    TCHECK(wait_for(&ra.done, 1, 5000));
    CHECK_EQ(ra.result, -ETIMEDOUT);
    CHECK_GE(ra.returned - t0, 60 * MS);
    CHECK_LT(ra.returned - t0, (60 + DEADLINE_SLACK_MS) * MS);
    int64_t until = t0 + 1100 * MS;
    while (gort_nanotime() < until) gort_sleep(MS);
    CHECK_EQ(__atomic_load_n(&rb.done, __ATOMIC_ACQUIRE), 0); /* its old 1 s did not fire */
    CHECK_EQ(__atomic_load_n(&rc.done, __ATOMIC_ACQUIRE), 0); /* cleared */
    TCHECK(write(c[1], "z", 1) == 1);
    TCHECK(wait_for(&rc.done, 1, 5000));
    CHECK_EQ(rc.result, 1);
    CHECK_GE(rc.returned - t0, 1100 * MS);
    TCHECK(wait_for(&rb.done, 1, 5000));
    CHECK_EQ(rb.result, -ETIMEDOUT);
    CHECK_GE(rb.returned - t0, 1300 * MS);
    CHECK_LT(rb.returned - t0, (1300 + DEADLINE_SLACK_MS) * MS);
    int *all[] = {a, b, c, d};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(gort_close(all[i][0]), 0);
        close(all[i][1]);
    }
    return 0;
}

/* An earlier timer reaches the M sleeping in epoll_wait through its eventfd:
 * a plain thread sets a 50 ms deadline while the only goroutines sleep 2 s
 * and wait on I/O (GOMAXPROCS=1: one M sleeps in the poller until 2 s). */
static int kick_fd;
static void *kick_thread(void *arg) {
    (void)arg;
    usleep(100 * 1000);
    CHECK_EQ(gort_set_deadline(kick_fd, gort_nanotime() + 50 * MS, 0), 0);
    return NULL;
}

static int timer_kick_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int sv[2];
    socketpair_nb(sv);
    kick_fd = sv[0];
    reader r = {.fd = sv[0]};
    gort_go(read_one, &r);
    wait_io_waiters(1);
    pthread_t t;
    TCHECK(pthread_create(&t, NULL, kick_thread, NULL) == 0);
    int64_t t0 = gort_nanotime();
    gort_sleep(2000 * MS); /* the sleeper polls until then, unless kicked */
    TCHECK(wait_for(&r.done, 1, 5000));
    CHECK_EQ(r.result, -ETIMEDOUT);
    CHECK_LT(r.returned - t0, (150 + DEADLINE_SLACK_MS) * MS); /* not at 2 s */
    pthread_join(t, NULL);
    /* A plain thread readies a goroutine while the only M sleeps in the
     * poller: it runs at once (an M is started for it). */
    gort_close(sv[0]);
    close(sv[1]);
    return 0;
}

/* ---- close ---------------------------------------------------------------------------- */

typedef struct {
    int fd;
    size_t n;
    ssize_t result;
    long done;
} op;

static void op_read(void *arg) {
    op *o = arg;
    char buf[16];
    o->result = gort_read(o->fd, buf, sizeof buf);
    __atomic_store_n(&o->done, 1, __ATOMIC_RELEASE);
}

static void op_write(void *arg) {
    op *o = arg;
    static char big[8 << 20];
    o->result = gort_write(o->fd, big, o->n ? o->n : sizeof big);
    __atomic_store_n(&o->done, 1, __ATOMIC_RELEASE);
}

static int close_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int sv[2];
    socketpair_nb(sv);
    fill(sv[0]);
    op r1 = {.fd = sv[0]}, r2 = {.fd = sv[0]}, w1 = {.fd = sv[0]}, w2 = {.fd = sv[0]};
    gort_go(op_read, &r1);
    gort_go(op_write, &w1);
    wait_io_waiters(2);
    gort_go(op_read, &r2);  /* queued behind r1 on the read lock */
    gort_go(op_write, &w2); /* queued behind w1 */
    gort_sleep(20 * MS);
    CHECK_EQ(r1.done + r2.done + w1.done + w2.done, 0);
    int64_t t0 = gort_nanotime();
    CHECK_EQ(gort_close(sv[0]), 0);
    op *all[] = {&r1, &r2, &w1, &w2};
    for (int i = 0; i < 4; i++) {
        TCHECK(wait_for(&all[i]->done, 1, 5000));
        CHECK_EQ(all[i]->result, -EBADF);
    }
    CHECK_LT(ms_since(t0), 1000);
    /* Closed for good: every call says so, and the fd itself is closed. */
    char c;
    CHECK_EQ(gort_read(sv[0], &c, 1), -EBADF);
    CHECK_EQ(gort_close(sv[0]), -EBADF);
    CHECK(fcntl(sv[0], F_GETFD) < 0 && errno == EBADF);
    close(sv[1]);
    return 0;
}

/* ---- half-closed connections -------------------------------------------------- */

static void half_server(void *arg) {
    int lfd = (int)(intptr_t)arg;
    int c = gort_accept(lfd, NULL, NULL);
    TCHECK(c >= 0);
    int nodelay = 0;
    socklen_t nl = sizeof nodelay;
    TCHECK(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &nodelay, &nl) == 0 && nodelay); /* inherited */
    char buf[4096];
    long total = 0;
    ssize_t r;
    while ((r = gort_read(c, buf, sizeof buf)) > 0) total += r; /* until the client's FIN */
    TCHECK(r == 0);
    char reply[64];
    int n = snprintf(reply, sizeof reply, "got %ld", total);
    TCHECK(gort_write(c, reply, (size_t)n) == n); /* our direction is still open */
    TCHECK(gort_close(c) == 0);
}

static int half_close_main(int argc, char **argv) {
    (void)argc, (void)argv;
    char addr[64];
    int lfd = listen_local(addr, sizeof addr);
    gort_go(half_server, (void *)(intptr_t)lfd);
    int fd = gort_dial_tcp(addr);
    TCHECK(fd >= 0);
    int nodelay = 0;
    socklen_t nl = sizeof nodelay;
    CHECK(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &nl) == 0 && nodelay);
    static char data[100000];
    CHECK_EQ(gort_write(fd, data, sizeof data), (ssize_t)sizeof data);
    CHECK_EQ(shutdown(fd, SHUT_WR), 0);
    char in[64] = {0};
    size_t got = 0;
    ssize_t r;
    while ((r = gort_read(fd, in + got, sizeof in - 1 - got)) > 0) got += (size_t)r;
    CHECK_EQ(r, 0);
    CHECK_CONTAINS(in, "got 100000");
    /* Writing into our own shut direction: -EPIPE, not a signal. */
    CHECK_EQ(gort_write(fd, "x", 1), -EPIPE);
    CHECK_EQ(gort_close(fd), 0);
    CHECK_EQ(gort_close(lfd), 0);
    return 0;
}

/* ---- 10,000 concurrent idle connections ----------------------------------------------- */

static long idle_accepted, idle_done;
static void idle_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    __atomic_fetch_add(&idle_accepted, 1, __ATOMIC_RELAXED);
    char c;
    ssize_t r = gort_read(fd, &c, 1); /* idles here until the end */
    if (r == 1) TCHECK(gort_write(fd, &c, 1) == 1);
    gort_close(fd);
    __atomic_fetch_add(&idle_done, 1, __ATOMIC_RELAXED);
}

static void idle_accept(void *arg) {
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int c = gort_accept(lfd, NULL, NULL);
        if (c < 0) break;
        gort_go(idle_conn, (void *)(intptr_t)c);
    }
}

#define IDLE_CONNS 10000

/* The clients, in a plain forked process (both ends of 10,000 connections
 * in one process would need more fds than CI's hard limit of 20,000): they
 * connect, say so on ready, wait for a byte on go, then each sends a byte,
 * reads it back and closes. */
static int idle_clients(const struct sockaddr_in *sin, int ready, int go) {
    static int fds[IDLE_CONNS];
    for (int i = 0; i < IDLE_CONNS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (const struct sockaddr *)sin, sizeof *sin) != 0) return 3;
    }
    char c = 'r';
    if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 1) return 4;
    for (int i = 0; i < IDLE_CONNS; i++) {
        char out = (char)i, back = 0;
        if (write(fds[i], &out, 1) != 1 || read(fds[i], &back, 1) != 1 || back != out) return 5;
        close(fds[i]);
    }
    return 0;
}

static int idle_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(raise_nofile(IDLE_CONNS + 200));
    char addr[64];
    int lfd = listen_local(addr, sizeof addr);
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    TCHECK(getsockname(lfd, (struct sockaddr *)&sin, &sl) == 0);
    int ready[2], go[2];
    TCHECK(pipe(ready) == 0 && pipe(go) == 0);
    size_t rss0 = os_rss() / 1024;
    int64_t t0 = gort_nanotime();
    fflush(NULL);
    pid_t pid = fork();
    TCHECK(pid >= 0);
    if (pid == 0) _exit(idle_clients(&sin, ready[1], go[0]));
    gort_go(idle_accept, (void *)(intptr_t)lfd);
    char c;
    TCHECK(gort_read(ready[0], &c, 1) == 1); /* a goroutine waits for the clients, too */
    TCHECK(wait_for(&idle_accepted, IDLE_CONNS, 60000));
    wait_io_waiters(IDLE_CONNS);
    int threads = nthreads();
    fprintf(stderr, "  %d idle connections in %lld ms; %d threads; RSS +%zu KiB\n", IDLE_CONNS,
            (long long)ms_since(t0), threads, os_rss() / 1024 - rss0);
    CHECK_LT(threads, 16); /* goroutines in the poller, not threads */
    TCHECK(gort_write(go[1], "g", 1) == 1);
    TCHECK(wait_for(&idle_done, IDLE_CONNS, 60000));
    int st;
    TCHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    CHECK_EQ(gort_close(lfd), 0);
    return 0;
}

static void test_idle_10k(void) {
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < IDLE_CONNS + 200)
        TEST_SKIP("RLIMIT_NOFILE's hard limit is below 10,200");
    in_child("test_idle_10k_child", idle_main, 0);
}

/* ---- GOMAXPROCS=1: a goroutine in gort_read does not hold the thread ------------------- */

#define P1_READERS 50
static int p1_pipes[P1_READERS][2];
static long p1_done;

static void p1_reader(void *arg) {
    int i = (int)(intptr_t)arg;
    char buf[8];
    TCHECK(gort_read(p1_pipes[i][0], buf, sizeof buf) == 2);
    __atomic_fetch_add(&p1_done, 1, __ATOMIC_RELAXED);
}

static int p1_main(int argc, char **argv) {
    (void)argc, (void)argv;
    CHECK_EQ(gort_gomaxprocs(0), 1);
    int before = nthreads();
    for (int i = 0; i < P1_READERS; i++) {
        TCHECK(pipe(p1_pipes[i]) == 0); /* blocking pipes: gort makes them non-blocking */
        gort_go(p1_reader, (void *)(intptr_t)i);
    }
    wait_io_waiters(P1_READERS);
    /* The one P runs this goroutine while 50 others wait on pipes. */
    long spins = 0;
    for (int64_t end = gort_nanotime() + 20 * MS; gort_nanotime() < end;) spins++;
    CHECK_GT(spins, 0);
    int during = nthreads();
    fprintf(stderr, "  threads: %d before, %d with %d goroutines blocked in gort_read\n", before,
            during, P1_READERS);
    CHECK_LE(during, before + 3);
    for (int i = 0; i < P1_READERS; i++) TCHECK(write(p1_pipes[i][1], "hi", 2) == 2);
    TCHECK(wait_for(&p1_done, P1_READERS, 10000));
    for (int i = 0; i < P1_READERS; i++) {
        gort_close(p1_pipes[i][0]);
        close(p1_pipes[i][1]);
    }
    return 0;
}

/* ---- errors come back as negative codes, never as signals -------------------------------- */

static void reset_server(void *arg) {
    int lfd = (int)(intptr_t)arg;
    int c = gort_accept(lfd, NULL, NULL);
    TCHECK(c >= 0);
    char buf[4];
    TCHECK(gort_read(c, buf, 1) == 1);
    struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close with a RST */
    TCHECK(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    TCHECK(gort_close(c) == 0);
}

static int errors_main(int argc, char **argv) {
    (void)argc, (void)argv;
    struct sigaction sa;
    CHECK_EQ(sigaction(SIGPIPE, NULL, &sa), 0);
    CHECK(sa.sa_handler == SIG_DFL); /* a SIGPIPE would kill us */
    /* Connection refused: a port nobody listens on any more. */
    char addr[64];
    int lfd = listen_local(addr, sizeof addr);
    CHECK_EQ(gort_close(lfd), 0);
    CHECK_EQ(gort_dial_tcp(addr), -ECONNREFUSED);
    /* Reset by peer: a blocked read learns it. */
    lfd = listen_local(addr, sizeof addr);
    gort_go(reset_server, (void *)(intptr_t)lfd);
    int fd = gort_dial_tcp(addr);
    TCHECK(fd >= 0);
    CHECK_EQ(gort_write(fd, "a", 1), 1);
    char c;
    CHECK_EQ(gort_read(fd, &c, 1), -ECONNRESET);
    ssize_t w = gort_write(fd, "b", 1); /* after a reset: -EPIPE */
    CHECK(w == -EPIPE || w == -ECONNRESET);
    CHECK_EQ(gort_close(fd), 0);
    CHECK_EQ(gort_close(lfd), 0);
    /* A pipe whose reader has gone: -EPIPE, and we are alive. */
    int p[2];
    TCHECK(pipe(p) == 0);
    close(p[0]);
    CHECK_EQ(gort_write(p[1], "x", 1), -EPIPE);
    CHECK_EQ(gort_write(p[1], "x", 1), -EPIPE);
    sigset_t pending;
    sigpending(&pending);
    CHECK(!sigismember(&pending, SIGPIPE));
    CHECK_EQ(gort_close(p[1]), 0);
    /* A socket whose peer closed: -EPIPE (or -ECONNRESET) on a later write. */
    int sv[2];
    socketpair_nb(sv);
    close(sv[1]);
    CHECK_EQ(gort_write(sv[0], "x", 1), -EPIPE);
    CHECK_EQ(gort_close(sv[0]), 0);
    return 0;
}

/* ---- bad inputs, everywhere ------------------------------------------------------------- */

static void bad_inputs(void) {
    char buf[8];
    int sv[2];
    socketpair_nb(sv);
    CHECK_EQ(gort_read(-1, buf, 1), -EBADF);
    CHECK_EQ(gort_read(1 << 30, buf, 1), -EBADF);
    CHECK_EQ(gort_read(1000, buf, 1), -EBADF); /* not open */
    CHECK_EQ(gort_read(1000, buf, 0), -EBADF);
    CHECK_EQ(gort_read(sv[0], NULL, 1), -EFAULT);
    CHECK_EQ(gort_read(sv[0], NULL, 0), 0);
    CHECK_EQ(gort_write(-1, buf, 1), -EBADF);
    CHECK_EQ(gort_write(sv[0], NULL, 1), -EFAULT);
    CHECK_EQ(gort_write(sv[0], buf, 0), 0);
    CHECK_EQ(gort_write(sv[0], buf, (size_t)-1), -EINVAL); /* more than ssize_t says */
    CHECK_EQ(gort_accept(-1, NULL, NULL), -EBADF);
    CHECK_EQ(gort_accept(sv[0], (struct sockaddr *)buf, NULL), -EINVAL);
    CHECK_EQ(gort_accept(sv[0], NULL, NULL), -EINVAL); /* not listening */
    int p[2];
    TCHECK(pipe(p) == 0);
    CHECK_EQ(gort_accept(p[0], NULL, NULL), -ENOTSOCK);
    CHECK_EQ(gort_connect(-1, NULL, 0), -EBADF);
    CHECK_EQ(gort_connect(sv[0], NULL, 0), -EINVAL);
    const char *bad[] = {
        NULL,     "",        "nonsense", "1.2.3.4",      "127.0.0.1:", "127.0.0.1:99999",
        "::1:80", "[::1:80", "[::1]80",  "127.0.0.1:8 0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(gort_listen_tcp(bad[i], 0), -EINVAL);
        CHECK_EQ(gort_dial_tcp(bad[i]), -EINVAL);
    }
    CHECK_LT(gort_dial_tcp("no-such-host.invalid:80"), 0);
    CHECK_EQ(gort_listen_unix(NULL, 0), -EINVAL);
    CHECK_EQ(gort_listen_unix("", 0), -EINVAL);
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = 0;
    CHECK_EQ(gort_listen_unix(longpath, 0), -ENAMETOOLONG);
    CHECK_EQ(gort_dial_unix(longpath), -ENAMETOOLONG);
    CHECK_EQ(gort_dial_unix("/nonexistent/gort.sock"), -ENOENT);
    CHECK_EQ(gort_fd_wait(-1, GORT_WAIT_READ, 0), -EBADF);
    CHECK_EQ(gort_fd_wait(sv[0], 0, 0), -EINVAL);
    CHECK_EQ(gort_fd_wait(sv[0], 3, 0), -EINVAL);
    CHECK_EQ(gort_fd_wait(sv[0], GORT_WAIT_READ, -5), -EINVAL);
    CHECK_EQ(gort_fd_wait(sv[0], GORT_WAIT_WRITE, 0), 0); /* writable */
    CHECK_EQ(gort_set_deadline(-1, 0, 0), -EBADF);
    CHECK_EQ(gort_set_deadline(1000, 0, 0), -EBADF);
    CHECK_EQ(gort_close(-1), -EBADF);
    CHECK_EQ(gort_close(1000), -EBADF);
    CHECK_EQ(gort_close(sv[0]), 0);
    CHECK_EQ(gort_close(sv[0]), -EBADF);
    CHECK_EQ(gort_read(sv[0], buf, 1), -EBADF);
    CHECK_EQ(gort_set_deadline(sv[0], 0, 0), -EBADF);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

static int bad_inputs_main(int argc, char **argv) {
    (void)argc, (void)argv;
    bad_inputs();
    return 0;
}

static void *bad_inputs_thread(void *arg) {
    (void)arg;
    bad_inputs();
    return NULL;
}

static int bad_inputs_thread_main(int argc, char **argv) {
    (void)argc, (void)argv;
    pthread_t t;
    TCHECK(pthread_create(&t, NULL, bad_inputs_thread, NULL) == 0);
    pthread_join(t, NULL);
    return 0;
}

/* ---- plain threads: before gort_main, and beside it ------------------------------------ */

static void test_plain_before_main(void) {
    char addr[64];
    int lfd = listen_local(addr, sizeof addr);
    int c = gort_dial_tcp(addr); /* completes in the backlog */
    CHECK(c >= 0);
    CHECK_EQ(gort_write(c, "ping", 4), 4);
    int s = gort_accept(lfd, NULL, NULL);
    CHECK(s >= 0);
    char buf[8] = {0};
    CHECK_EQ(gort_read(s, buf, sizeof buf), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    /* A deadline without a runtime: the thread times itself. */
    int64_t t0 = gort_nanotime();
    CHECK_EQ(gort_set_deadline(s, t0 + 50 * MS, 0), 0);
    CHECK_EQ(gort_read(s, buf, sizeof buf), -ETIMEDOUT);
    CHECK_GE(ms_since(t0), 49);
    CHECK_LT(ms_since(t0), 50 + DEADLINE_SLACK_MS);
    CHECK_EQ(gort_close(s), 0);
    CHECK_EQ(gort_close(c), 0);
    CHECK_EQ(gort_close(lfd), 0);
}

static int plain_fd;
static long plain_done;
static ssize_t plain_result;
static int64_t plain_returned;

static void *plain_reader(void *arg) {
    (void)arg;
    char buf[8];
    plain_result = gort_read(plain_fd, buf, sizeof buf);
    plain_returned = gort_nanotime();
    __atomic_store_n(&plain_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int plain_beside_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int sv[2];
    socketpair_nb(sv);
    plain_fd = sv[0];
    /* Data from a goroutine. */
    pthread_t t;
    TCHECK(pthread_create(&t, NULL, plain_reader, NULL) == 0);
    gort_sleep(30 * MS);
    CHECK_EQ(gort_write(sv[1], "abc", 3), 3);
    pthread_join(t, NULL);
    CHECK_EQ(plain_result, 3);
    /* A deadline, set by a goroutine while the thread waits. */
    plain_done = 0;
    TCHECK(pthread_create(&t, NULL, plain_reader, NULL) == 0);
    gort_sleep(20 * MS);
    int64_t dl = gort_nanotime() + 50 * MS;
    CHECK_EQ(gort_set_deadline(sv[0], dl, 0), 0);
    pthread_join(t, NULL);
    CHECK_EQ(plain_result, -ETIMEDOUT);
    CHECK_GE(plain_returned, dl);
    CHECK_LT(plain_returned - dl, DEADLINE_SLACK_MS * MS);
    CHECK_EQ(gort_set_deadline(sv[0], 0, 0), 0);
    /* A thread and a goroutine read the same fd at once: each gets a byte
     * (the thread must not disturb the goroutine parked in the poller). */
    plain_done = 0;
    reader r = {.fd = sv[0]};
    gort_go(read_one, &r);
    wait_io_waiters(1);
    TCHECK(pthread_create(&t, NULL, plain_reader, NULL) == 0);
    gort_sleep(20 * MS);
    CHECK_EQ(gort_write(sv[1], "1", 1), 1);
    gort_sleep(20 * MS);
    CHECK_EQ(gort_write(sv[1], "2", 1), 1);
    pthread_join(t, NULL);
    CHECK_EQ(plain_result, 1);
    TCHECK(wait_for(&r.done, 1, 5000));
    CHECK_EQ(r.result, 1);
    /* gort_close from a goroutine wakes the thread with -EBADF. */
    plain_done = 0;
    TCHECK(pthread_create(&t, NULL, plain_reader, NULL) == 0);
    gort_sleep(20 * MS);
    int64_t t0 = gort_nanotime();
    CHECK_EQ(gort_close(sv[0]), 0);
    pthread_join(t, NULL);
    CHECK_EQ(plain_result, -EBADF);
    CHECK_LT(plain_returned - t0, DEADLINE_SLACK_MS * MS);
    CHECK(fcntl(sv[0], F_GETFD) < 0); /* closed once the thread left */
    close(sv[1]);
    return 0;
}

/* ---- regular files: the syscall path ------------------------------------------------------ */

static int file_main(int argc, char **argv) {
    (void)argc, (void)argv;
    char path[] = "/tmp/gort-test-net-XXXXXX";
    int fd = mkstemp(path);
    TCHECK(fd >= 0);
    unlink(path);
    static char data[1 << 20], back[1 << 20];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (char)(i * 31);
    CHECK_EQ(gort_write(fd, data, sizeof data), (ssize_t)sizeof data);
    CHECK_EQ(pd_peek(fd)->kind, PD_SYSCALL);
    TCHECK(lseek(fd, 0, SEEK_SET) == 0);
    size_t got = 0;
    ssize_t r;
    while ((r = gort_read(fd, back + got, sizeof back - got)) > 0) got += (size_t)r;
    CHECK_EQ(r, 0);
    CHECK_EQ(got, sizeof data);
    CHECK(memcmp(data, back, sizeof data) == 0);
    CHECK_EQ(gort_fd_wait(fd, GORT_WAIT_READ, 0), 0); /* always ready */
    CHECK_EQ(gort_close(fd), 0);
    return 0;
}

/* ---- gort_fd_wait: another library's non-blocking fd ------------------------------------- */

static int efd;
static long efd_done;
static uint64_t efd_value;

static void efd_reader(void *arg) {
    (void)arg;
    for (;;) { /* how a library's read loop looks with gort_fd_wait */
        uint64_t v;
        if (read(efd, &v, sizeof v) == sizeof v) {
            efd_value = v;
            break;
        }
        TCHECK(errno == EAGAIN);
        TCHECK(gort_fd_wait(efd, GORT_WAIT_READ, 0) == 0);
    }
    __atomic_store_n(&efd_done, 1, __ATOMIC_RELEASE);
}

static int fd_wait_main(int argc, char **argv) {
    (void)argc, (void)argv;
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    TCHECK(efd >= 0);
    gort_go(efd_reader, NULL);
    wait_io_waiters(1);
    uint64_t one = 42;
    TCHECK(write(efd, &one, sizeof one) == sizeof one);
    TCHECK(wait_for(&efd_done, 1, 5000));
    CHECK_EQ(efd_value, 42);
    /* Its own deadline. */
    int64_t t0 = gort_nanotime();
    CHECK_EQ(gort_fd_wait(efd, GORT_WAIT_READ, t0 + 50 * MS), -ETIMEDOUT);
    CHECK_GE(ms_since(t0), 49);
    CHECK_LT(ms_since(t0), 50 + DEADLINE_SLACK_MS);
    CHECK_EQ(gort_fd_wait(efd, GORT_WAIT_READ, 1), -ETIMEDOUT); /* already passed */
    /* The fd's deadline bounds it too; the call's own one is forgotten after. */
    t0 = gort_nanotime();
    CHECK_EQ(gort_set_deadline(efd, t0 + 40 * MS, 0), 0);
    CHECK_EQ(gort_fd_wait(efd, GORT_WAIT_READ, t0 + 5000 * MS), -ETIMEDOUT);
    CHECK_LT(ms_since(t0), 40 + DEADLINE_SLACK_MS);
    CHECK_EQ(gort_set_deadline(efd, 0, 0), 0);
    /* The library closes its fd with close(2); a new one takes the number:
     * gort_fd_wait notices the registration is gone. */
    int old = efd;
    close(efd);
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK_EQ(efd, old);
    efd_done = 0;
    gort_go(efd_reader, NULL);
    wait_io_waiters(1);
    one = 7;
    TCHECK(write(efd, &one, sizeof one) == sizeof one);
    TCHECK(wait_for(&efd_done, 1, 5000));
    CHECK_EQ(efd_value, 7);
    /* gort_close wakes a waiter with -EBADF. */
    CHECK_EQ(gort_close(efd), 0);
    CHECK_EQ(gort_fd_wait(efd, GORT_WAIT_READ, 0), -EBADF);
    return 0;
}

/* ---- Unix sockets, names, several readers and acceptors --------------------------------- */

static void unix_echo_once(void *arg) {
    int lfd = (int)(intptr_t)arg;
    int c = gort_accept(lfd, NULL, NULL);
    TCHECK(c >= 0);
    echo_conn((void *)(intptr_t)c);
}

static void unix_roundtrip(const char *path) {
    int lfd = gort_listen_unix(path, 0);
    CHECK_GE(lfd, 0);
    gort_go(unix_echo_once, (void *)(intptr_t)lfd);
    int fd = gort_dial_unix(path);
    CHECK_GE(fd, 0);
    CHECK_EQ(gort_write(fd, "hello", 5), 5);
    char buf[8] = {0};
    size_t got = 0;
    while (got < 5) {
        ssize_t r = gort_read(fd, buf + got, 5 - got);
        TCHECK(r > 0);
        got += (size_t)r;
    }
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(gort_close(fd), 0);
    CHECK_EQ(gort_close(lfd), 0);
}

static int unix_main(int argc, char **argv) {
    (void)argc, (void)argv;
    char path[108];
    snprintf(path, sizeof path, "/tmp/gort-test-net-%d.sock", (int)getpid());
    unlink(path);
    unix_roundtrip(path);
    CHECK_EQ(gort_listen_unix(path, 0), -EADDRINUSE); /* the file stays, as Go's */
    unlink(path);
    snprintf(path, sizeof path, "@gort-test-net-%d", (int)getpid());
    unix_roundtrip(path);
    return 0;
}

static long multi_bytes, multi_accepted;

static void multi_reader(void *arg) {
    int fd = (int)(intptr_t)arg;
    char c;
    while (gort_read(fd, &c, 1) == 1) __atomic_fetch_add(&multi_bytes, 1, __ATOMIC_RELAXED);
}

static void multi_acceptor(void *arg) {
    int lfd = (int)(intptr_t)arg;
    int c;
    while ((c = gort_accept(lfd, NULL, NULL)) >= 0) {
        __atomic_fetch_add(&multi_accepted, 1, __ATOMIC_RELAXED);
        gort_close(c);
    }
}

static int multi_main(int argc, char **argv) {
    (void)argc, (void)argv;
    /* Four goroutines read one socket: they take turns, every byte arrives once. */
    int sv[2];
    socketpair_nb(sv);
    for (int i = 0; i < 4; i++) gort_go(multi_reader, (void *)(intptr_t)sv[0]);
    for (int i = 0; i < 400; i++) {
        CHECK_EQ(gort_write(sv[1], "x", 1), 1);
        if (i % 50 == 0) gort_sleep(MS);
    }
    TCHECK(wait_for(&multi_bytes, 400, 5000));
    gort_close(sv[1]);
    /* Four acceptors on one listener; names are resolved. */
    char addr[64];
    int lfd = listen_local(addr, sizeof addr);
    for (int i = 0; i < 4; i++) gort_go(multi_acceptor, (void *)(intptr_t)lfd);
    char name[64];
    snprintf(name, sizeof name, "localhost:%s", strrchr(addr, ':') + 1);
    for (int i = 0; i < 100; i++) {
        int fd = gort_dial_tcp(i % 2 ? addr : name);
        CHECK_GE(fd, 0);
        gort_close(fd);
    }
    TCHECK(wait_for(&multi_accepted, 100, 5000));
    CHECK_EQ(gort_close(lfd), 0);
    CHECK_EQ(multi_bytes, 400);
    gort_close(sv[0]);
    return 0;
}

/* ---- the deadlock check and exit --------------------------------------------------------- */

static int dl_pipe[2];
static void *late_writer(void *arg) {
    (void)arg;
    usleep(300 * 1000);
    TCHECK(write(dl_pipe[1], "!", 1) == 1);
    return NULL;
}

/* The only goroutine waits on I/O that a plain thread feeds 300 ms later:
 * not a deadlock (Go's rule: the network may wake it). */
static int io_not_deadlock_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(pipe(dl_pipe) == 0);
    pthread_t t;
    TCHECK(pthread_create(&t, NULL, late_writer, NULL) == 0);
    char c;
    CHECK_EQ(gort_read(dl_pipe[0], &c, 1), 1);
    pthread_join(t, NULL);
    return 0;
}

/* After the poller was used and its waiters are gone, a real deadlock is
 * still one. */
static int deadlock_after_io_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int sv[2];
    socketpair_nb(sv);
    reader r = {.fd = sv[0], .deadline = gort_nanotime() + 20 * MS};
    gort_go(read_one, &r);
    TCHECK(wait_for(&r.done, 1, 5000));
    gort_chan *c = gort_chan_make(sizeof(int), 0);
    int v;
    gort_chan_recv(c, &v); /* nobody will send */
    return 0;
}

static void deadlock_after_io_child(void) {
    gort_main(deadlock_after_io_main, 0, NULL);
    _exit(0);
}

static void test_deadlock_after_io(void) {
    expect_death(deadlock_after_io_child, 2, "all goroutines are asleep - deadlock!");
}

static void blocked_forever(void *arg) {
    int fd = (int)(intptr_t)arg;
    char c;
    gort_read(fd, &c, 1);
}

/* main returns while goroutines wait in the poller: the program exits. */
static int exit_while_polling_main(int argc, char **argv) {
    (void)argc, (void)argv;
    static int sv[2];
    socketpair_nb(sv);
    for (int i = 0; i < 10; i++) gort_go(blocked_forever, (void *)(intptr_t)sv[0]);
    gort_sleep(20 * MS);
    return 0;
}

/* A plain thread readies a goroutine while the only M sleeps in the poller. */
static gort_chan *wake_ch;
static void *chan_sender(void *arg) {
    (void)arg;
    usleep(50 * 1000);
    int v = 1;
    gort_chan_send(wake_ch, &v);
    return NULL;
}

static int wake_from_thread_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int sv[2];
    socketpair_nb(sv);
    gort_go(blocked_forever, (void *)(intptr_t)sv[0]); /* the idle M sleeps in epoll_wait */
    wait_io_waiters(1);
    wake_ch = gort_chan_make(sizeof(int), 1);
    pthread_t t;
    TCHECK(pthread_create(&t, NULL, chan_sender, NULL) == 0);
    int64_t t0 = gort_nanotime();
    int v = 0;
    TCHECK(gort_chan_recv(wake_ch, &v));
    CHECK_EQ(v, 1);
    CHECK_LT(ms_since(t0), 50 + DEADLINE_SLACK_MS);
    pthread_join(t, NULL);
    gort_close(sv[0]);
    close(sv[1]);
    return 0;
}

/* ---- stress: closes and deadlines racing blocked operations, fd numbers reused ---------- */

typedef struct {
    uint64_t rng;
    long rounds;
} stress_arg;

static long stress_done, stress_ops;
static gort_waitgroup stress_wg = GORT_WAITGROUP_INIT;

static uint32_t rnd(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

static void stress_side(void *arg) {
    op *o = arg;
    char buf[64] = {0};
    o->result = o->n ? gort_write(o->fd, buf, o->n) : gort_read(o->fd, buf, sizeof buf);
    __atomic_store_n(&o->done, 1, __ATOMIC_RELEASE);
}

static void stress_worker(void *arg) {
    stress_arg *a = arg;
    for (long i = 0; i < a->rounds; i++) {
        int sv[2];
        socketpair_nb(sv);
        op r = {.fd = sv[0]}, w = {.fd = sv[1], .n = 1};
        uint32_t what = rnd(&a->rng) % 4;
        gort_go(stress_side, &r);
        if (rnd(&a->rng) % 2) gort_yield();
        switch (what) {
        case 0: /* data */
            gort_go(stress_side, &w);
            TCHECK(wait_for(&r.done, 1, 10000));
            TCHECK(r.result == 1 || r.result == -EBADF);
            TCHECK(wait_for(&w.done, 1, 10000));
            break;
        case 1: /* a close racing the read, once the read has begun (holds a
                   reference: an fd closed before an operation begins is a
                   number that another worker's socketpair may take) */
            while (__atomic_load_n(&pd_peek(sv[0])->mu, __ATOMIC_ACQUIRE) < 32) gort_yield();
            if (rnd(&a->rng) % 2) gort_sleep((rnd(&a->rng) % 200) * 1000);
            TCHECK(gort_close(sv[0]) == 0);
            sv[0] = -1;
            TCHECK(wait_for(&r.done, 1, 10000));
            TCHECK(r.result == -EBADF);
            break;
        case 2: /* a deadline racing the read */
            gort_set_deadline(sv[0], gort_nanotime() + (rnd(&a->rng) % 300) * 1000, 0);
            TCHECK(wait_for(&r.done, 1, 10000));
            TCHECK(r.result == -ETIMEDOUT);
            break;
        case 3: /* the peer goes away */
            TCHECK(gort_close(sv[1]) == 0);
            sv[1] = -1;
            TCHECK(wait_for(&r.done, 1, 10000));
            TCHECK(r.result == 0);
            break;
        }
        if (sv[0] >= 0) TCHECK(gort_close(sv[0]) == 0);
        if (sv[1] >= 0) TCHECK(gort_close(sv[1]) == 0);
        __atomic_fetch_add(&stress_ops, 1, __ATOMIC_RELAXED);
    }
    __atomic_fetch_add(&stress_done, 1, __ATOMIC_RELAXED);
    gort_waitgroup_done(&stress_wg);
}

static int stress_main(int argc, char **argv) {
    (void)argc, (void)argv;
    static stress_arg args[16];
    gort_waitgroup_add(&stress_wg, 16);
    for (int i = 0; i < 16; i++) {
        args[i] =
            (stress_arg){.rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1), .rounds = 150 * scale};
        gort_go(stress_worker, &args[i]);
    }
    gort_waitgroup_wait(&stress_wg);
    CHECK_EQ(stress_done, 16);
    CHECK_EQ(io_waiters(), 0);
    fprintf(stderr, "  %ld rounds\n", stress_ops);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1) test_filter(argv[1]); /* or GORT_TEST_RUN */
    scale = test_scale();
    signal(SIGPIPE, SIG_DFL);
    RUN(bad_inputs);
    RUN(test_plain_before_main);
    in_child("test_bad_inputs_goroutine", bad_inputs_main, 0);
    in_child("test_bad_inputs_thread", bad_inputs_thread_main, 0);
    in_child("test_echo_1000", echo_main, 0);
    in_child("test_echo_1000_p1", echo_main, 1);
    in_child("test_pingpong_p1", pingpong_main, 1);
    in_child("test_pingpong_p2", pingpong_main, 2);
    in_child("test_pingpong_p4", pingpong_main, 4);
    in_child("test_deadline_fire", deadline_fire_main, 0);
    in_child("test_deadline_move", deadline_move_main, 0);
    in_child("test_deadline_move_p1", deadline_move_main, 1);
    in_child("test_timer_kick_p1", timer_kick_main, 1);
    in_child("test_close_wakes", close_main, 0);
    in_child("test_half_close", half_close_main, 0);
    RUN(test_idle_10k);
    in_child("test_read_p1_no_thread", p1_main, 1);
    in_child("test_errors", errors_main, 0);
    in_child("test_plain_thread", plain_beside_main, 0);
    in_child("test_regular_file", file_main, 0);
    in_child("test_fd_wait", fd_wait_main, 0);
    in_child("test_unix", unix_main, 0);
    in_child("test_multi", multi_main, 0);
    in_child("test_io_not_deadlock", io_not_deadlock_main, 0);
    RUN(test_deadlock_after_io);
    in_child("test_exit_while_polling", exit_while_polling_main, 0);
    in_child("test_wake_from_thread_p1", wake_from_thread_main, 1);
    in_child("test_stress", stress_main, 0);
    in_child("test_stress_p1", stress_main, 1);
    return test_result();
}
