/* Channel benchmarks: the workloads of bench/peers/README.md,
 * exactly as their Go peers do them (same counts, capacities, values and
 * checksums): pingpong, chanthru-spsc, chanthru-mpmc, sieve, skynet, idlemem.
 *
 * Usage: chan_bench WORKLOAD [reps]. The scheduler width comes from
 * GORT_GOMAXPROCS (the peers' GOMAXPROCS); the peer label is gort-p<N>.
 * Output follows the peers' conventions: BAD lines on a wrong checksum, the
 * last line "RESULT <workload> gort-p<N> <metric>=<value> <unit>".
 *
 * The WaitGroups of chanthru and idlemem are a tiny private one (an atomic
 * counter and a channel closed by the last Done), not sync's gort_waitgroup,
 * so that this file measures channels only. */
#define _GNU_SOURCE
#include "base/os.h"
#include "gort/chan.h"
#include "gort/malloc.h"
#include "gort/sched.h"

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    long n;
    gort_chan *c;
} waitgroup;
static void wg_init(waitgroup *w, long n) {
    w->n = n;
    w->c = gort_chan_make(0, 0);
}
static void wg_done(waitgroup *w) {
    if (__atomic_sub_fetch(&w->n, 1, __ATOMIC_ACQ_REL) == 0) gort_chan_close(w->c);
}
static void wg_wait(waitgroup *w) {
    gort_chan_recv(w->c, NULL);
}

static int reps;
static int procs;

/* ---- pingpong ---------------------------------------------------------------- */

#define PP_N 2000000L
static void pp_partner(void *arg) {
    gort_chan **c = arg;
    long v;
    while (gort_chan_recv(c[0], &v)) {
        v++;
        gort_chan_send(c[1], &v);
    }
}
static int pingpong(void) {
    double ns[32];
    long want = PP_N * (PP_N + 1) / 2;
    for (int r = 0; r < reps; r++) {
        gort_chan *c[2] = {gort_chan_make(sizeof(long), 0), gort_chan_make(sizeof(long), 0)};
        gort_go(pp_partner, c);
        long sum = 0, v;
        long long t0 = now_ns();
        for (long i = 0; i < PP_N; i++) {
            gort_chan_send(c[0], &i);
            gort_chan_recv(c[1], &v);
            sum += v;
        }
        long long d = now_ns() - t0;
        gort_chan_close(c[0]);
        ns[r] = (double)d / PP_N;
        printf("rep %d: sum=%ld %.1f ns/roundtrip\n", r, sum, ns[r]);
        if (sum != want) {
            printf("BAD sum %ld want %ld\n", sum, want);
            return 1;
        }
    }
    printf("OK sum=%ld\n", want);
    printf("RESULT pingpong gort-p%d roundtrip=%.1f ns\n", procs, median(ns, reps));
    return 0;
}

/* ---- chanthru ------------------------------------------------------------------ */

#define CT_N   20000000L
#define CT_CAP 128
static gort_chan *ct_ch;
static long ct_sums[8];
static long ct_P;
static waitgroup ct_pw, ct_cw;
static void ct_consumer(void *arg) {
    long c = (long)arg, s = 0, v;
    while (gort_chan_recv(ct_ch, &v)) s += v;
    ct_sums[c] = s;
    wg_done(&ct_cw);
}
static void ct_producer(void *arg) {
    for (long i = (long)arg; i < CT_N; i += ct_P) gort_chan_send(ct_ch, &i);
    wg_done(&ct_pw);
}
static int chanthru(const char *mode) {
    int P = strcmp(mode, "mpmc") == 0 ? 4 : 1, C = P;
    ct_P = P;
    double ns[32];
    long want = CT_N * (CT_N - 1) / 2;
    for (int r = 0; r < reps; r++) {
        long long t0 = now_ns();
        ct_ch = gort_chan_make(sizeof(long), CT_CAP);
        wg_init(&ct_pw, P);
        wg_init(&ct_cw, C);
        for (long c = 0; c < C; c++) gort_go(ct_consumer, (void *)c);
        for (long p = 0; p < P; p++) gort_go(ct_producer, (void *)p);
        wg_wait(&ct_pw);
        gort_chan_close(ct_ch);
        wg_wait(&ct_cw);
        long long d = now_ns() - t0;
        long total = 0;
        for (int c = 0; c < C; c++) total += ct_sums[c];
        ns[r] = (double)d / CT_N;
        printf("rep %d: total=%ld %.1f ns/msg\n", r, total, ns[r]);
        if (total != want) {
            printf("BAD total %ld want %ld\n", total, want);
            return 1;
        }
    }
    printf("OK total=%ld\n", want);
    printf("RESULT chanthru-%s gort-p%d msg=%.1f ns\n", mode, procs, median(ns, reps));
    return 0;
}

/* ---- sieve ---------------------------------------------------------------------- */

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
static int sieve(void) {
    long long t0 = now_ns();
    gort_chan *ch = gort_chan_make(sizeof(long), 0);
    gort_go(sv_generate, ch);
    long sum = 0, prime = 0;
    for (int k = 1; k <= 10000; k++) {
        gort_chan_recv(ch, &prime);
        sum += prime;
        if (k == 10000) break;
        struct sv_filter *f = gort_malloc(sizeof *f);
        *f = (struct sv_filter){ch, gort_chan_make(sizeof(long), 0), prime};
        gort_go(sv_filter, f);
        ch = f->out;
    }
    double ms = (double)(now_ns() - t0) / 1e6;
    printf("prime=%ld sum=%ld\n", prime, sum);
    if (prime != 104729 || sum != 496165411) {
        printf("BAD prime %ld sum %ld\n", prime, sum);
        return 1;
    }
    printf("RESULT sieve gort-p%d total=%.1f ms\n", procs, ms);
    return 0;
}

/* ---- skynet ---------------------------------------------------------------------- */

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
    /* TODO(gc): channels become GC objects; until then rc leaks (its last
     * sender may still be inside gort_chan_send when we get here). */
}
static int skynet(void) {
    double ms[32];
    for (int r = 0; r < reps; r++) {
        long long t0 = now_ns();
        gort_chan *c = gort_chan_make(sizeof(long), 0);
        struct sk_arg *a = gort_malloc(sizeof *a);
        *a = (struct sk_arg){c, 0, 1000000};
        gort_go(sk_node, a);
        long sum;
        gort_chan_recv(c, &sum);
        ms[r] = (double)(now_ns() - t0) / 1e6;
        printf("rep %d: sum=%ld time=%.1f ms\n", r, sum, ms[r]);
        if (sum != 499999500000L) {
            printf("BAD sum %ld want 499999500000\n", sum);
            return 1;
        }
    }
    printf("OK sum=499999500000\n");
    printf("RESULT skynet gort-p%d total=%.1f ms\n", procs, median(ms, reps));
    return 0;
}

/* ---- idlemem ---------------------------------------------------------------------- */

static waitgroup im_started, im_finished;
static long im_sum;
static void im_fn(void *arg) {
    gort_chan *ch = arg;
    long v;
    wg_done(&im_started);
    gort_chan_recv(ch, &v);
    __atomic_fetch_add(&im_sum, v, __ATOMIC_RELAXED);
    wg_done(&im_finished);
}
static int idlemem(long n) {
    gort_chan **chans = gort_malloc((size_t)n * sizeof *chans);
    memset(chans, 0, (size_t)n * sizeof *chans);
    long before = (long)os_rss();
    wg_init(&im_started, n);
    wg_init(&im_finished, n);
    for (long i = 0; i < n; i++) {
        chans[i] = gort_chan_make(sizeof(long), 0);
        gort_go(im_fn, chans[i]);
    }
    wg_wait(&im_started);
    gort_sleep(200000000);
    long after = (long)os_rss();
    printf("INFO rss_before=%ld KiB rss_after=%ld KiB goroutines=%d\n", before >> 10, after >> 10,
           gort_num_goroutine());
    for (long i = 0; i < n; i++) gort_chan_send(chans[i], &i);
    wg_wait(&im_finished);
    long want = n * (n - 1) / 2;
    printf("sum=%ld want=%ld\n", im_sum, want);
    if (im_sum != want) {
        printf("BAD sum\n");
        return 1;
    }
    printf("RESULT idlemem gort-p%d per_goroutine=%.0f bytes\n", procs,
           (double)(after - before) / (double)n);
    return 0;
}

static int bench(int argc, char **argv) {
    procs = gort_gomaxprocs(0);
    const char *w = argv[1];
    int def = 3;
    if (!strcmp(w, "skynet")) def = 5;
    reps = argc > 2 ? atoi(argv[2]) : def;
    if (reps < 1 || reps > 32) reps = def;
    int r;
    if (!strcmp(w, "pingpong"))
        r = pingpong();
    else if (!strcmp(w, "chanthru-spsc") || !strcmp(w, "chanthru-mpmc"))
        r = chanthru(w + 9);
    else if (!strcmp(w, "sieve"))
        r = sieve();
    else if (!strcmp(w, "skynet"))
        r = skynet();
    else if (!strcmp(w, "idlemem"))
        r = idlemem(argc > 2 ? atol(argv[2]) : 100000);
    else {
        fprintf(stderr, "unknown workload %s\n", w);
        r = 2;
    }
    fflush(stdout);
    return r;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: chan_bench pingpong|chanthru-spsc|chanthru-mpmc|sieve|skynet|"
                        "idlemem [reps|n]\n");
        return 2;
    }
    return gort_main(bench, argc, argv);
}
