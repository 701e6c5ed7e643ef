/* The starve workload of the peers' README (section 15), exactly as its Go
 * peer (peers/starve/main.go): on GOMAXPROCS=2, 4 workers loop on gort_yield
 * (runtime.Gosched), each counting its iterations, while 3 pairs of
 * goroutines ping-pong one int64 over two unbuffered channels. After 1 s
 * the workers' counters are read, and again after 4 more seconds. Last
 * line: "RESULT starve gort-p<N> workers=<all 4 together> least=<the
 * least-served one>".
 *
 * With the argument "latency", the scheduling latency under the same load
 * instead (the Go side is bench/peers/starvelat): each worker reads
 * the clock once per iteration, and the gaps between its iterations in
 * seconds 2..5 go into a histogram (log2 buckets, 8 sub-buckets each: a
 * figure within 12.5%); "RESULT starve-latency gort-p<N> p50=.. p99=..
 * p999=.. max=.. us", max exact. A gap is what a worker waits between two
 * turns on a CPU: the time the pairs (and the other workers) run before the
 * scheduler comes back to it. */
#define _GNU_SOURCE
#include "gort/chan.h"
#include "gort/gc.h"
#include "gort/sched.h"

#include "bench.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NWORKERS 4
#define NPAIRS   3

static struct {
    long n;
    char pad[56];
} cnt[NWORKERS];

/* Latency mode: a histogram of gaps per worker. */
#define HBUCKETS (64 * 8)
static struct {
    long long last, max;
    unsigned long h[HBUCKETS];
} lat[NWORKERS];
static int measuring; /* 0 before, 1 in seconds 2..5, 2 after */

static int bucket(long long ns) {
    if (ns < 8) return (int)ns; /* (never in practice) */
    int e = 63 - __builtin_clzll((unsigned long long)ns);
    int sub = (int)((ns >> (e - 3)) & 7);
    return e * 8 + sub;
}
static double bucket_ns(int b) { /* a bucket's middle */
    if (b < 8) return b;
    int e = b / 8, sub = b % 8;
    return (double)(1LL << e) * (1.0 + (sub + 0.5) / 8.0);
}

/* Nanoseconds this process's threads have waited for a CPU so far (the
 * second field of each /proc/self/task/T/schedstat): on a shared machine,
 * a gap this bench measures may be the kernel's, not the scheduler's. */
static long long os_run_delay(void) {
    long long sum = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        long long run = 0, wait = 0;
        if (fscanf(f, "%lld %lld", &run, &wait) == 2) sum += wait;
        fclose(f);
    }
    closedir(d);
    return sum;
}

static void worker(void *arg) {
    long i = (long)(intptr_t)arg;
    for (;;) {
        __atomic_fetch_add(&cnt[i].n, 1, __ATOMIC_RELAXED);
        gort_yield();
    }
}

static void worker_latency(void *arg) {
    long i = (long)(intptr_t)arg;
    for (;;) {
        __atomic_fetch_add(&cnt[i].n, 1, __ATOMIC_RELAXED);
        gort_yield();
        long long now = now_ns();
        if (__atomic_load_n(&measuring, __ATOMIC_RELAXED) == 1 && lat[i].last) {
            long long gap = now - lat[i].last;
            lat[i].h[bucket(gap)]++;
            if (gap > lat[i].max) lat[i].max = gap;
        }
        lat[i].last = now;
    }
}

static void echo(void *arg) {
    gort_chan **c = arg;
    int64_t v;
    for (;;) {
        gort_chan_recv(c[0], &v);
        gort_chan_send(c[1], &v);
    }
}

static void pinger(void *arg) {
    gort_chan **c = arg;
    int64_t v = 0;
    for (;;) {
        gort_chan_send(c[0], &v);
        gort_chan_recv(c[1], &v);
    }
}

static int bench(int argc, char **argv) {
    bool latency = argc > 1 && strcmp(argv[1], "latency") == 0;
    int procs = gort_gomaxprocs(0);
    for (long i = 0; i < NWORKERS; i++)
        gort_go(latency ? worker_latency : worker, (void *)(intptr_t)i);
    static gort_chan *chans[NPAIRS][2];
    for (int i = 0; i < NPAIRS; i++) {
        GORT_STORE(chans[i][0], gort_chan_make(sizeof(int64_t), 0)); /* a root: a global */
        GORT_STORE(chans[i][1], gort_chan_make(sizeof(int64_t), 0));
        gort_go(echo, chans[i]);
        gort_go(pinger, chans[i]);
    }
    gort_sleep(1000 * 1000 * 1000LL);
    long start[NWORKERS];
    for (int i = 0; i < NWORKERS; i++) start[i] = __atomic_load_n(&cnt[i].n, __ATOMIC_RELAXED);
    long long delay0 = latency ? os_run_delay() : 0;
    __atomic_store_n(&measuring, 1, __ATOMIC_RELAXED);
    gort_sleep(4 * 1000 * 1000 * 1000LL);
    __atomic_store_n(&measuring, 2, __ATOMIC_RELAXED);
    long long delay = latency ? os_run_delay() - delay0 : 0;
    long total = 0, least = -1;
    for (int i = 0; i < NWORKERS; i++) {
        long d = __atomic_load_n(&cnt[i].n, __ATOMIC_RELAXED) - start[i];
        total += d;
        if (least < 0 || d < least) least = d;
    }
    if (!latency) {
        printf("RESULT starve gort-p%d workers=%ld least=%ld\n", procs, total, least);
        return 0;
    }
    unsigned long h[HBUCKETS] = {0}, n = 0;
    long long max = 0;
    for (int i = 0; i < NWORKERS; i++) {
        for (int b = 0; b < HBUCKETS; b++) h[b] += lat[i].h[b], n += lat[i].h[b];
        if (lat[i].max > max) max = lat[i].max;
    }
    double q[3] = {0.5, 0.99, 0.999}, v[3] = {0};
    for (int k = 0; k < 3; k++) {
        unsigned long want = (unsigned long)(q[k] * (double)n), seen = 0;
        for (int b = 0; b < HBUCKETS; b++) {
            seen += h[b];
            if (seen > want) {
                v[k] = bucket_ns(b);
                break;
            }
        }
    }
    printf("INFO starve-latency gort-p%d: %lu gaps, workers=%ld least=%ld; the process's threads "
           "waited %.0f ms for a CPU in those 4 s (the machine's share of the gaps)\n",
           procs, n, total, least, (double)delay / 1e6);
    printf("RESULT starve-latency gort-p%d p50=%.1f p99=%.1f p999=%.1f max=%.1f us\n", procs,
           v[0] / 1e3, v[1] / 1e3, v[2] / 1e3, (double)max / 1e3);
    return 0;
}

int main(int argc, char **argv) {
    return gort_main(bench, argc, argv);
}
