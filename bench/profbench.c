/* The profiler's overheads, side by side in one run (make bench's prof
 * family; docs/profiling.md quotes it): each workload runs with the
 * profiler off and on, alternating (off, on, on, off, ...) so that a
 * shared machine's drift falls on both sides, and the verdict is the
 * median of the per-pair ratios on/off.
 *
 *   heap    binarytrees (GC heap, gort_new) with MemProfileRate 0 against
 *           the default 512 KiB: the cost of heap-profile sampling
 *   cpu     binarytrees with the CPU profile at 100 Hz against none
 *   trace   the channel workloads of chan_bench (pingpong, chanthru spsc
 *           and mpmc, sieve, skynet) with the execution trace on against off
 *
 * Usage: profbench [reps] [family]. Output: a line per rep, then
 * "RESULT prof <family> <workload> off=<median> on=<median> ratio=<median
 * of pair ratios>". GOMAXPROCS from GORT_GOMAXPROCS (default: the CPUs). */
#define _GNU_SOURCE
#include "gort/chan.h"
#include "gort/gc.h"
#include "gort/malloc.h"
#include "gort/prof.h"
#include "gort/sched.h"

#include "bench.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- binarytrees (the benchmark game's, one goroutine) ---- */

typedef struct node {
    struct node *left, *right;
} node;
GORT_TYPE(node, left, right);

static node *make_tree(int depth) {
    node *n = gort_new(&node_type);
    if (depth > 0) {
        node *l = make_tree(depth - 1), *r = make_tree(depth - 1);
        GORT_STORE(n->left, l);
        GORT_STORE(n->right, r);
    }
    return n;
}

static long check(const node *n) {
    return 1 + (n->left ? check(n->left) + check(n->right) : 0);
}

static long binarytrees(int max_depth) {
    long sum = check(make_tree(max_depth + 1));
    node *long_lived = make_tree(max_depth);
    for (int d = 4; d <= max_depth; d += 2) {
        long iters = 1L << (max_depth - d + 4);
        for (long i = 0; i < iters; i++) sum += check(make_tree(d));
    }
    sum += check(long_lived);
    gort_keep_alive(long_lived);
    return sum;
}

/* ---- the channel workloads (as chan_bench's) ---- */

static gort_chan *pp[2];
static void pp_partner(void *arg) {
    (void)arg;
    long v;
    while (gort_chan_recv(pp[0], &v)) {
        v++;
        gort_chan_send(pp[1], &v);
    }
}
static long pingpong(long n) {
    pp[0] = gort_chan_make(sizeof(long), 0);
    pp[1] = gort_chan_make(sizeof(long), 0);
    gort_go(pp_partner, NULL);
    long v, sum = 0;
    for (long i = 0; i < n; i++) {
        gort_chan_send(pp[0], &i);
        gort_chan_recv(pp[1], &v);
        sum += v;
    }
    gort_chan_close(pp[0]);
    return sum;
}

static gort_chan *ct_ch, *ct_done;
static long ct_n, ct_p;
static void ct_consumer(void *arg) {
    (void)arg;
    long v, s = 0;
    while (gort_chan_recv(ct_ch, &v)) s += v;
    gort_chan_send(ct_done, &s);
}
static void ct_producer(void *arg) {
    for (long i = (long)arg; i < ct_n; i += ct_p) gort_chan_send(ct_ch, &i);
    long z = -1;
    gort_chan_send(ct_done, &z);
}
static long chanthru(long n, int p) {
    ct_n = n;
    ct_p = p;
    ct_ch = gort_chan_make(sizeof(long), 128);
    ct_done = gort_chan_make(sizeof(long), 16);
    for (long i = 0; i < p; i++) gort_go(ct_consumer, NULL);
    for (long i = 0; i < p; i++) gort_go(ct_producer, (void *)i);
    long v, sum = 0;
    for (int i = 0; i < p; i++) gort_chan_recv(ct_done, &v); /* producers */
    gort_chan_close(ct_ch);
    for (int i = 0; i < p; i++) {
        gort_chan_recv(ct_done, &v);
        sum += v;
    }
    return sum;
}

static void sv_generate(void *arg) {
    gort_chan *ch = arg;
    for (long i = 2;; i++) gort_chan_send(ch, &i);
}
struct sv_filter {
    gort_chan *in, *out;
    long prime;
};
static void sv_filter(void *arg) {
    struct sv_filter f = *(struct sv_filter *)arg;
    gort_free(arg);
    long i;
    for (;;) {
        gort_chan_recv(f.in, &i);
        if (i % f.prime != 0) gort_chan_send(f.out, &i);
    }
}
static long sieve(long primes) { /* its goroutines stay parked for good, as chan_bench's */
    gort_chan *ch = gort_chan_make(sizeof(long), 0);
    gort_go(sv_generate, ch);
    long sum = 0, prime = 0;
    for (long k = 1; k <= primes; k++) {
        gort_chan_recv(ch, &prime);
        sum += prime;
        if (k == primes) break;
        struct sv_filter *f = gort_malloc(sizeof *f);
        *f = (struct sv_filter){ch, gort_chan_make(sizeof(long), 0), prime};
        gort_go(sv_filter, f);
        ch = f->out;
    }
    return sum;
}

struct sk_arg {
    gort_chan *c;
    long num, size;
};
static void sk_node(void *arg) {
    struct sk_arg a = *(struct sk_arg *)arg;
    gort_free(arg);
    if (a.size == 1) {
        gort_chan_send(a.c, &a.num);
        return;
    }
    gort_chan *rc = gort_chan_make(sizeof(long), 0);
    long step = a.size / 10;
    for (long i = 0; i < 10; i++) {
        struct sk_arg *ca = gort_malloc(sizeof *ca);
        *ca = (struct sk_arg){rc, a.num + i * step, step};
        gort_go(sk_node, ca);
    }
    long sum = 0, v;
    for (int i = 0; i < 10; i++) {
        gort_chan_recv(rc, &v);
        sum += v;
    }
    gort_chan_send(a.c, &sum);
}
static long skynet(long size) {
    gort_chan *c = gort_chan_make(sizeof(long), 0);
    struct sk_arg *a = gort_malloc(sizeof *a);
    *a = (struct sk_arg){c, 0, size};
    gort_go(sk_node, a);
    long sum;
    gort_chan_recv(c, &sum);
    return sum;
}

/* ---- the harness ---- */

enum { FAM_HEAP, FAM_CPU, FAM_TRACE };

typedef struct workload {
    const char *name;
    int family;
    long (*fn)(long);
    long arg;
} workload;

static long bt(long d) {
    return binarytrees((int)d);
}
static long ct1(long n) {
    return chanthru(n, 1);
}
static long ct4(long n) {
    return chanthru(n, 4);
}

static const workload workloads[] = {
    {"binarytrees", FAM_HEAP, bt, 16},          {"binarytrees", FAM_CPU, bt, 16},
    {"pingpong", FAM_TRACE, pingpong, 300000},  {"chanthru-spsc", FAM_TRACE, ct1, 2000000},
    {"chanthru-mpmc", FAM_TRACE, ct4, 2000000}, {"sieve", FAM_TRACE, sieve, 1500},
    {"skynet", FAM_TRACE, skynet, 100000},
};
static const char *const family_names[] = {"heap", "cpu", "trace"};

static int null_fd;

static void profiler(int family, bool on) {
    switch (family) {
    case FAM_HEAP:
        gort_set_memprofile_rate(on ? 512 * 1024 : 0);
        break;
    case FAM_CPU:
        if (on)
            gort_cpu_profile_start(null_fd);
        else
            gort_cpu_profile_stop();
        break;
    case FAM_TRACE:
        if (on)
            gort_trace_start(null_fd);
        else
            gort_trace_stop();
        break;
    }
}

static double run_once(const workload *w, bool on) {
    if (w->family != FAM_HEAP && on) profiler(w->family, true);
    if (w->family == FAM_HEAP) profiler(w->family, on);
    long long t0 = now_ns();
    volatile long r = w->fn(w->arg);
    (void)r;
    double ms = (double)(now_ns() - t0) / 1e6;
    if (w->family != FAM_HEAP && on) profiler(w->family, false); /* writing is not counted */
    return ms;
}

static int real_main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 9;
    const char *only = argc > 2 ? argv[2] : NULL;
    if (reps < 1 || reps > 64) reps = 9;
    null_fd = open("/dev/null", O_WRONLY);
    int procs = gort_gomaxprocs(0);
    for (size_t k = 0; k < sizeof workloads / sizeof workloads[0]; k++) {
        const workload *w = &workloads[k];
        const char *fam = family_names[w->family];
        if (only && strcmp(only, fam) != 0 && strcmp(only, w->name) != 0) continue;
        double off[64], on[64], ratio[64];
        run_once(w, false); /* warm up */
        for (int r = 0; r < reps; r++) {
            bool on_first = r % 2 == 1; /* off,on / on,off alternately */
            if (on_first) on[r] = run_once(w, true);
            off[r] = run_once(w, false);
            if (!on_first) on[r] = run_once(w, true);
            ratio[r] = on[r] / off[r];
            printf("rep %d %s %s: off %.1f ms on %.1f ms ratio %.3f\n", r, fam, w->name, off[r],
                   on[r], ratio[r]);
            fflush(stdout);
        }
        double moff = median(off, reps), mon = median(on, reps), mr = median(ratio, reps);
        printf("RESULT prof %s %s gort-p%d off=%.1f ms on=%.1f ms ratio=%.3f\n", fam, w->name,
               procs, moff, mon, mr);
        fflush(stdout);
    }
    gort_set_memprofile_rate(512 * 1024);
    return 0;
}

int main(int argc, char **argv) {
    return gort_main(real_main, argc, argv);
}
