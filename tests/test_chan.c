/* Tests for src/chan: channels, select, timer channels.
 *
 * Every case runs gort_main in a forked child with an alarm (the runtime
 * starts once per process). Bounds used: select fairness allows 6 standard
 * deviations of the binomial (p = 1/k) around the mean; timers must fire no
 * earlier than asked and at most 250 ms late (loaded CI machines).
 * GORT_TEST_SCALE multiplies the stress sizes. */
#include "test_gort.h"

#include "gort/chan.h"
#include "gort/sched.h"

#include <math.h>

static long scale;

/* A tiny WaitGroup: an atomic counter and a channel the last done closes. */
typedef struct {
    long n;
    gort_chan *c;
} wg_t;
static void wg_init(wg_t *w, long n) {
    w->n = n;
    w->c = gort_chan_make(0, 0);
}
static void wg_done(wg_t *w) {
    if (__atomic_sub_fetch(&w->n, 1, __ATOMIC_ACQ_REL) == 0) gort_chan_close(w->c);
}
static void wg_wait(wg_t *w) {
    gort_chan_recv(w->c, NULL);
}

/* ---- basics ------------------------------------------------------------------ */

static void echo_fn(void *arg) {
    gort_chan **cs = arg;
    long v;
    while (gort_chan_recv(cs[0], &v)) gort_chan_send(cs[1], &(long){v * 2});
    gort_chan_close(cs[1]);
}

static int basic_main(int argc, char **argv) {
    (void)argc, (void)argv;
    TCHECK(gort_chan_len(NULL) == 0 && gort_chan_cap(NULL) == 0);
    gort_chan *in = gort_chan_make(sizeof(long), 0), *out = gort_chan_make(sizeof(long), 0);
    TCHECK(gort_chan_cap(in) == 0);
    gort_chan *cs[2] = {in, out};
    gort_go(echo_fn, cs);
    for (long i = 0; i < 1000; i++) {
        long r = -1;
        gort_chan_send(in, &i);
        TCHECK(gort_chan_recv(out, &r) && r == 2 * i);
    }
    gort_chan_close(in);
    long r = 7;
    TCHECK(!gort_chan_recv(out, &r) && r == 0);
    TCHECK(!gort_chan_recv(out, NULL));

    /* Buffered: FIFO, len/cap, values drained before closed shows. */
    gort_chan *b = gort_chan_make(sizeof(long), 5);
    for (long i = 0; i < 5; i++) gort_chan_send(b, &i);
    TCHECK(gort_chan_len(b) == 5 && gort_chan_cap(b) == 5);
    TCHECK(!gort_chan_trysend(b, &r));
    gort_chan_close(b);
    for (long i = 0; i < 5; i++) TCHECK(gort_chan_recv(b, &r) && r == i);
    r = 9;
    TCHECK(!gort_chan_recv(b, &r) && r == 0);
    bool ok = true;
    TCHECK(gort_chan_tryrecv(b, &r, &ok) && !ok);

    /* Zero-size elements, any capacity. */
    gort_chan *z = gort_chan_make(0, (size_t)1 << 60);
    for (int i = 0; i < 100; i++) gort_chan_send(z, NULL);
    TCHECK(gort_chan_len(z) == 100);
    TCHECK(gort_chan_recv(z, NULL));

    /* A wrapped ring with a parked sender: FIFO across the hand-off. */
    gort_chan *w = gort_chan_make(sizeof(long), 3);
    long seq = 0, got = 0;
    for (int round = 0; round < 10; round++) {
        while (gort_chan_trysend(w, &seq)) seq++;
        while (gort_chan_tryrecv(w, &r, &ok)) TCHECK(ok && r == got++);
    }
    TCHECK(got == seq);
    return 0;
}

/* ---- nonblocking ops (Go's test/chan/nonblock.go) ------------------------------ */

static gort_chan *nb_c;
static void nb_recv1(void *arg) {
    (void)arg;
    long v;
    TCHECK(gort_chan_recv(nb_c, &v) && v == 123);
}
static void nb_send1(void *arg) {
    (void)arg;
    gort_chan_send(nb_c, &(long){456});
}

/* ---- typed channels: the element's type descriptor --------------------------------------- */

#include "chan/chan.h"

struct tnode {
    int key;
    struct tnode *left, *right;
    void *kids[3];
    double weight;
};
GORT_TYPE(tnode, left, right, kids);
struct tplain {
    long a;
    double b;
};
GORT_TYPE(tplain);

static int typed_main(int argc, char **argv) {
    (void)argc, (void)argv;
    /* The descriptor: size, the pointer words (an array field counts in
     * full), ptrdata up to the last of them. */
    TCHECK(tnode_type.size == sizeof(struct tnode));
    TCHECK(tnode_type.nfields == 3 && tplain_type.nfields == 0);
    TCHECK(tnode_type.ptrdata == offsetof(struct tnode, weight));
    TCHECK(tplain_type.ptrdata == 0 && tplain_type.size == sizeof(struct tplain));
    TCHECK(strcmp(tnode_type.name, "tnode") == 0);
    const char want[] = "0111110"; /* key+pad, left, right, kids[0..2], weight */
    for (size_t i = 0; i < sizeof(struct tnode) / sizeof(void *); i++)
        TCHECK(gort_type_is_pointer(&tnode_type, i) == (want[i] == '1'));

    /* The channel carries whole elements and records how the GC is to scan
     * its buffer after the make variant. */
    gort_chan *c = gort_chan_make_typed(&tnode_type, 4);
    TCHECK(c->elemsize == sizeof(struct tnode) && c->elemtype == &tnode_type);
    TCHECK(c->scan == CHAN_SCAN_TYPED && gort_chan_cap(c) == 4);
    struct tnode a = {7, &a, NULL, {&a, NULL, &a}, 2.5}, b;
    gort_chan_send(c, &a);
    TCHECK(gort_chan_len(c) == 1);
    TCHECK(gort_chan_recv(c, &b));
    /* Field by field: the padding after key is indeterminate (valgrind
     * rightly flags a memcmp of it). */
    TCHECK(b.key == a.key && b.left == a.left && b.right == a.right && b.weight == a.weight);
    TCHECK(memcmp(a.kids, b.kids, sizeof a.kids) == 0);
    gort_chan *p = gort_chan_make_typed(&tplain_type, 0);
    TCHECK(p->scan == CHAN_SCAN_NONE && p->elemsize == sizeof(struct tplain));
    TCHECK(gort_chan_make(8, 1)->scan == CHAN_SCAN_CONSERVATIVE);
    TCHECK(gort_chan_make_noscan(8, 1)->scan == CHAN_SCAN_NONE);
    return 0;
}

static int nonblock_main(int argc, char **argv) {
    (void)argc, (void)argv;
    for (size_t cap = 0; cap <= 16; cap += 16) {
        nb_c = gort_chan_make(sizeof(long), cap);
        long v;
        bool ok;
        TCHECK(!gort_chan_tryrecv(nb_c, &v, &ok));          /* empty */
        if (cap == 0) TCHECK(!gort_chan_trysend(nb_c, &v)); /* nobody receiving */
        /* A receiver appears: a non-blocking send eventually succeeds. */
        gort_go(nb_recv1, NULL);
        int tries = 0;
        while (!gort_chan_trysend(nb_c, &(long){123})) {
            gort_yield();
            TCHECK(++tries < 10000000);
        }
        while (gort_chan_len(nb_c) > 0) gort_yield(); /* buffered: let nb_recv1 take it */
        /* A sender appears: a non-blocking receive eventually succeeds. */
        gort_go(nb_send1, NULL);
        tries = 0;
        while (!gort_chan_tryrecv(nb_c, &v, &ok)) {
            gort_yield();
            TCHECK(++tries < 10000000);
        }
        TCHECK(ok && v == 456);
        gort_sleep(1000000);
        gort_chan_close(nb_c);
        v = 5;
        TCHECK(gort_chan_tryrecv(nb_c, &v, &ok) && !ok && v == 0);
        /* select with default on nil channels: -1, never chosen */
        gort_case cs[2] = {{NULL, GORT_RECV, &v, false}, {NULL, GORT_SEND, &v, false}};
        TCHECK(gort_select(cs, 2, false) == -1);
        TCHECK(gort_select(NULL, 0, false) == -1);
        TCHECK(!gort_chan_trysend(NULL, &v) && !gort_chan_tryrecv(NULL, &v, &ok));
    }
    return 0;
}

/* ---- stress: 8 producers, 8 consumers, mixed channels, select, close ------------- */

#define NPROD 8
#define NCONS 8
#define NCH   3
static gort_chan *st_ch[NCH];
static long st_per;
static unsigned char *st_seen;
static wg_t st_prod, st_cons;
static long st_total;

static void st_producer(void *arg) {
    long p = (long)arg;
    long last[NCH] = {0};
    (void)last;
    for (long i = 0; i < st_per; i++) {
        long v = p * st_per + i;
        if (i % 4 == 0) { /* plain send on one channel */
            gort_chan_send(st_ch[i % NCH], &v);
        } else { /* select over all three */
            gort_case cs[NCH];
            for (int k = 0; k < NCH; k++) cs[k] = (gort_case){st_ch[k], GORT_SEND, &v, false};
            int r = gort_select(cs, NCH, true);
            TCHECK(r >= 0 && r < NCH);
        }
    }
    wg_done(&st_prod);
}

static void st_consumer(void *arg) {
    (void)arg;
    gort_case cs[NCH];
    long v;
    long lastseq[NPROD][NCH];
    for (int p = 0; p < NPROD; p++)
        for (int k = 0; k < NCH; k++) lastseq[p][k] = -1;
    for (int k = 0; k < NCH; k++) cs[k] = (gort_case){st_ch[k], GORT_RECV, &v, false};
    int open = NCH;
    long n = 0;
    while (open > 0) {
        int r = gort_select(cs, NCH, true);
        TCHECK(r >= 0 && r < NCH && cs[r].c != NULL);
        if (!cs[r].ok) { /* closed: a nil channel is never chosen again */
            cs[r].c = NULL;
            open--;
            continue;
        }
        TCHECK(v >= 0 && v < NPROD * st_per);
        /* FIFO per sender per channel, as this consumer observes it */
        long p = v / st_per, i = v % st_per;
        TCHECK(i > lastseq[p][r]);
        lastseq[p][r] = i;
        TCHECK(__atomic_fetch_add(&st_seen[v], 1, __ATOMIC_RELAXED) == 0);
        n++;
    }
    __atomic_fetch_add(&st_total, n, __ATOMIC_RELAXED);
    wg_done(&st_cons);
}

static int stress_main(int argc, char **argv) {
    (void)argc, (void)argv;
    st_per = 20000 * scale;
    st_seen = calloc((size_t)(NPROD * st_per), 1);
    st_ch[0] = gort_chan_make(sizeof(long), 0);
    st_ch[1] = gort_chan_make(sizeof(long), 1);
    st_ch[2] = gort_chan_make(sizeof(long), 16);
    wg_init(&st_prod, NPROD);
    wg_init(&st_cons, NCONS);
    for (long i = 0; i < NCONS; i++) gort_go(st_consumer, (void *)i);
    for (long i = 0; i < NPROD; i++) gort_go(st_producer, (void *)i);
    wg_wait(&st_prod);
    for (int k = 0; k < NCH; k++) gort_chan_close(st_ch[k]);
    wg_wait(&st_cons);
    TCHECK(st_total == NPROD * st_per);
    for (long i = 0; i < NPROD * st_per; i++) TCHECK(st_seen[i] == 1);
    return 0;
}

/* FIFO per sender through one channel with several senders, one receiver. */
static gort_chan *fifo_c;
static void fifo_sender(void *arg) {
    long p = (long)arg;
    for (long i = 0; i < 10000; i++) gort_chan_send(fifo_c, &(long){p << 32 | i});
}
static int fifo_main(int argc, char **argv) {
    (void)argc, (void)argv;
    for (size_t cap = 0; cap <= 7; cap += 7) {
        fifo_c = gort_chan_make(sizeof(long), cap);
        long next[4] = {0};
        for (long p = 0; p < 4; p++) gort_go(fifo_sender, (void *)p);
        for (long n = 0; n < 40000; n++) {
            long v;
            TCHECK(gort_chan_recv(fifo_c, &v));
            long p = v >> 32, i = v & 0xffffffff;
            TCHECK(p >= 0 && p < 4 && i == next[p]);
            next[p]++;
        }
    }
    return 0;
}

/* ---- select fairness and nil cases ----------------------------------------------- */

static int fair_main(int argc, char **argv) {
    (void)argc, (void)argv;
    enum { K = 4 };
    long N = 40000 * scale;
    gort_chan *cs[K];
    for (int k = 0; k < K; k++) {
        cs[k] = gort_chan_make(sizeof(long), 1);
        gort_chan_send(cs[k], &(long){k});
    }
    long counts[K] = {0};
    long v;
    gort_case sc[K + 1];
    for (long n = 0; n < N; n++) {
        for (int k = 0; k < K; k++) sc[k] = (gort_case){cs[k], GORT_RECV, &v, false};
        sc[K] = (gort_case){NULL, GORT_RECV, &v, false}; /* nil: never chosen */
        int r = gort_select(sc, K + 1, true);
        TCHECK(r >= 0 && r < K && sc[r].ok && v == r);
        counts[r]++;
        gort_chan_send(cs[r], &v);
    }
    double mean = (double)N / K, sd = sqrt((double)N * (1.0 / K) * (1.0 - 1.0 / K));
    for (int k = 0; k < K; k++) {
        if (fabs((double)counts[k] - mean) > 6 * sd) {
            fprintf(stderr, "case %d chosen %ld times; mean %.0f sd %.1f\n", k, counts[k], mean,
                    sd);
            _exit(1);
        }
    }
    /* Sends too: ready send cases chosen fairly. */
    gort_chan *sb[2] = {gort_chan_make(sizeof(long), 1), gort_chan_make(sizeof(long), 1)};
    long sc2[2] = {0};
    for (long n = 0; n < N; n++) {
        gort_case s2[3] = {{sb[0], GORT_SEND, &n, false},
                           {NULL, GORT_SEND, &n, false},
                           {sb[1], GORT_SEND, &n, false}};
        int r = gort_select(s2, 3, true);
        TCHECK(r == 0 || r == 2);
        sc2[r / 2]++;
        TCHECK(gort_chan_recv(sb[r / 2], &v) && v == n);
    }
    sd = sqrt((double)N * 0.25);
    TCHECK(fabs((double)sc2[0] - N / 2.0) <= 6 * sd);
    return 0;
}

/* A blocked select woken by close: the receive case reports !ok. */
static gort_chan *sc_a, *sc_b;
static void closer_fn(void *arg) {
    (void)arg;
    gort_sleep(2000000);
    gort_chan_close(sc_b);
}
static int select_close_main(int argc, char **argv) {
    (void)argc, (void)argv;
    sc_a = gort_chan_make(sizeof(long), 0);
    sc_b = gort_chan_make(sizeof(long), 0);
    gort_go(closer_fn, NULL);
    long v = 3;
    gort_case cs[3] = {
        {sc_a, GORT_RECV, &v, true}, {NULL, GORT_SEND, &v, false}, {sc_b, GORT_RECV, &v, true}};
    TCHECK(gort_select(cs, 3, true) == 2 && !cs[2].ok && v == 0);
    /* sc_a's queue was cleaned: a send with nobody waiting does not go through */
    TCHECK(!gort_chan_trysend(sc_a, &v));
    return 0;
}

/* ---- prime sieve ------------------------------------------------------------------ */

static void generate(void *arg) {
    gort_chan *ch = arg;
    for (long i = 2;; i++) gort_chan_send(ch, &i);
}
struct filt {
    gort_chan *in, *out;
    long prime;
};
static void filter(void *arg) {
    struct filt *f = arg;
    long i;
    for (;;) {
        gort_chan_recv(f->in, &i);
        if (i % f->prime != 0) gort_chan_send(f->out, &i);
    }
}
static int sieve_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_chan *ch = gort_chan_make(sizeof(long), 0);
    gort_go(generate, ch);
    long sum = 0, prime = 0;
    for (int k = 1; k <= 100; k++) {
        gort_chan_recv(ch, &prime);
        sum += prime;
        if (k == 100) break;
        struct filt *f = malloc(sizeof *f);
        *f = (struct filt){ch, gort_chan_make(sizeof(long), 0), prime};
        gort_go(filter, f);
        ch = f->out;
    }
    TCHECK(prime == 541 && sum == 24133);
    return 0;
}

/* ---- timers ------------------------------------------------------------------------ */

#define MS   1000000LL
#define LATE (250 * MS)

static int timer_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int64_t t0 = gort_nanotime(), v = 0;
    TCHECK(gort_chan_recv(gort_after(20 * MS), &v));
    int64_t t1 = gort_nanotime();
    TCHECK(t1 - t0 >= 20 * MS && t1 - t0 < 20 * MS + LATE);
    TCHECK(v >= t0 + 20 * MS && v <= t1);

    /* Timeout in a select. */
    gort_chan *never = gort_chan_make(sizeof(long), 0);
    t0 = gort_nanotime();
    gort_case cs[2] = {{never, GORT_RECV, &v, false}, {gort_after(10 * MS), GORT_RECV, &v, false}};
    TCHECK(gort_select(cs, 2, true) == 1 && cs[1].ok);
    TCHECK(gort_nanotime() - t0 >= 10 * MS);

    /* Stop before firing: true, and nothing arrives. */
    gort_timer *t = gort_timer_new(30 * MS);
    TCHECK(gort_timer_stop(t));
    TCHECK(!gort_timer_stop(t));
    gort_sleep(50 * MS);
    bool ok;
    TCHECK(!gort_chan_tryrecv(gort_timer_chan(t), &v, &ok));
    /* Reset a stopped timer: false; it fires. */
    t0 = gort_nanotime();
    TCHECK(!gort_timer_reset(t, 5 * MS));
    TCHECK(gort_chan_recv(gort_timer_chan(t), &v));
    TCHECK(gort_nanotime() - t0 >= 5 * MS);
    TCHECK(!gort_timer_stop(t)); /* fired */

    /* Ticker: 5 ticks of 10 ms; reset to 2 ms; stop. */
    gort_timer *tk = gort_ticker_new(10 * MS);
    t0 = gort_nanotime();
    int64_t prev = t0;
    for (int i = 0; i < 5; i++) {
        TCHECK(gort_chan_recv(gort_timer_chan(tk), &v));
        TCHECK(v > prev);
        prev = v;
    }
    t1 = gort_nanotime();
    TCHECK(t1 - t0 >= 50 * MS - 1 && t1 - t0 < 50 * MS + LATE);
    TCHECK(gort_timer_reset(tk, 2 * MS));
    gort_chan_tryrecv(gort_timer_chan(tk), &v, &ok); /* drop a tick already sent */
    t0 = gort_nanotime();
    for (int i = 0; i < 10; i++) TCHECK(gort_chan_recv(gort_timer_chan(tk), &v));
    t1 = gort_nanotime();
    TCHECK(t1 - t0 >= 18 * MS && t1 - t0 < 20 * MS + LATE);
    TCHECK(gort_timer_stop(tk));
    TCHECK(!gort_timer_stop(tk));
    gort_chan_tryrecv(gort_timer_chan(tk), &v, &ok);
    gort_sleep(10 * MS);
    TCHECK(!gort_chan_tryrecv(gort_timer_chan(tk), &v, &ok));
    return 0;
}

/* ---- panics and deadlocks ----------------------------------------------------------- */

static int p_send_closed(int a, char **b) {
    (void)a, (void)b;
    gort_chan *c = gort_chan_make(sizeof(long), 1);
    gort_chan_close(c);
    gort_chan_send(c, &(long){1});
    return 0;
}
static int p_trysend_closed(int a, char **b) {
    (void)a, (void)b;
    gort_chan *c = gort_chan_make(sizeof(long), 0);
    gort_chan_close(c);
    gort_chan_trysend(c, &(long){1});
    return 0;
}
static int p_select_send_closed(int a, char **b) {
    (void)a, (void)b;
    gort_chan *c = gort_chan_make(sizeof(long), 0);
    gort_chan_close(c);
    long v = 1;
    gort_case cs[1] = {{c, GORT_SEND, &v, false}};
    gort_select(cs, 1, false);
    return 0;
}
static gort_chan *pc;
static void close_later(void *arg) {
    (void)arg;
    gort_sleep(2 * MS);
    gort_chan_close(pc);
}
static int p_blocked_sender_closed(int a, char **b) {
    (void)a, (void)b;
    pc = gort_chan_make(sizeof(long), 0);
    gort_go(close_later, NULL);
    gort_chan_send(pc, &(long){1});
    return 0;
}
static int p_blocked_select_send_closed(int a, char **b) {
    (void)a, (void)b;
    pc = gort_chan_make(sizeof(long), 0);
    gort_go(close_later, NULL);
    long v = 1;
    gort_case cs[2] = {{pc, GORT_SEND, &v, false}, {NULL, GORT_RECV, &v, false}};
    gort_select(cs, 2, true);
    return 0;
}
static int p_close_closed(int a, char **b) {
    (void)a, (void)b;
    gort_chan *c = gort_chan_make(sizeof(long), 0);
    gort_chan_close(c);
    gort_chan_close(c);
    return 0;
}
static int p_close_nil(int a, char **b) {
    (void)a, (void)b;
    gort_chan_close(NULL);
    return 0;
}
static int p_makechan(int a, char **b) {
    (void)a, (void)b;
    gort_chan_make(8, (size_t)1 << 62);
    return 0;
}
static int d_recv(int a, char **b) {
    (void)a, (void)b;
    gort_chan *c = gort_chan_make(sizeof(long), 0);
    gort_chan_recv(c, NULL);
    return 0;
}
static void blocked_sender(void *arg) {
    gort_chan_send(arg, &(long){1});
}
static int d_send(int a, char **b) {
    (void)a, (void)b;
    gort_chan *c = gort_chan_make(sizeof(long), 0);
    gort_go(blocked_sender, c);
    gort_chan *c2 = gort_chan_make(sizeof(long), 0);
    gort_chan_recv(c2, NULL);
    return 0;
}
static int d_nil_recv(int a, char **b) {
    (void)a, (void)b;
    gort_chan_recv(NULL, NULL);
    return 0;
}
static int d_nil_send(int a, char **b) {
    (void)a, (void)b;
    gort_chan_send(NULL, NULL);
    return 0;
}
static int d_select_empty(int a, char **b) {
    (void)a, (void)b;
    gort_select(NULL, 0, true);
    return 0;
}
static int d_select(int a, char **b) {
    (void)a, (void)b;
    long v;
    gort_case cs[2] = {{gort_chan_make(8, 0), GORT_RECV, &v, false}, {NULL, GORT_SEND, &v, false}};
    gort_select(cs, 2, true);
    return 0;
}

static int p_typed_null(int a, char **b) {
    (void)a, (void)b;
    gort_chan_make_typed(NULL, 1);
    return 0;
}

static int (*death_fn)(int, char **);
static void run_death(void) {
    gort_gomaxprocs(2);
    exit(gort_main(death_fn, 0, NULL));
}
static void death(const char *name, int (*fn)(int, char **), const char *msg, const char *msg2) {
    if (!test_selected(name)) return;
    fprintf(stderr, "=== death %s\n", name);
    test_ran_++;
    death_fn = fn;
    const char *out = expect_death(run_death, 2, msg);
    if (msg2 && !strstr(out, msg2)) {
        fprintf(stderr, "%s: want \"%s\" in:\n%s\n", name, msg2, out);
        exit(1);
    }
}

int main(void) {
    scale = test_scale();
    in_child("basic", basic_main, 0);
    in_child("basic_p1", basic_main, 1);
    in_child("nonblock", nonblock_main, 4);
    in_child("typed", typed_main, 1);
    in_child("fifo", fifo_main, 4);
    in_child("stress_p4", stress_main, 4);
    in_child("stress_p1", stress_main, 1);
    in_child("fair", fair_main, 2);
    in_child("select_close", select_close_main, 2);
    in_child("sieve", sieve_main, 2);
    in_child("timer", timer_main, 2);
    death("send_closed", p_send_closed, "panic: send on closed channel", NULL);
    death("trysend_closed", p_trysend_closed, "panic: send on closed channel", NULL);
    death("select_send_closed", p_select_send_closed, "panic: send on closed channel", NULL);
    death("blocked_sender_closed", p_blocked_sender_closed, "panic: send on closed channel", NULL);
    death("blocked_select_send_closed", p_blocked_select_send_closed,
          "panic: send on closed channel", NULL);
    death("close_closed", p_close_closed, "panic: close of closed channel", NULL);
    death("close_nil", p_close_nil, "panic: close of nil channel", NULL);
    death("makechan", p_makechan, "panic: makechan: size out of range", NULL);
    death("makechan_typed_null", p_typed_null, "fatal error: makechan: NULL element type", NULL);
    const char *dl = "fatal error: all goroutines are asleep - deadlock!";
    death("deadlock_recv", d_recv, dl, "chan receive");
    death("deadlock_send", d_send, dl, "chan send");
    death("deadlock_nil_recv", d_nil_recv, dl, "chan receive (nil chan)");
    death("deadlock_nil_send", d_nil_send, dl, "chan send (nil chan)");
    death("deadlock_select_empty", d_select_empty, dl, "select (no cases)");
    death("deadlock_select", d_select, dl, "[select]");
    fprintf(stderr, "test_chan: all passed\n");
    return test_result();
}
