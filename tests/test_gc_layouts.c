/* Objects of different layouts sharing spans, under gccheckmark and
 * clobberfree (the test re-executes itself with them in GORT_GODEBUG).
 *
 * A span whose objects all have one layout keeps their pointer mask once
 * (span.umask, mbitmap.c) and writes no per-object heap bits; the first
 * object of another layout makes the span write the mask into every slot's
 * bits and use per-object bits from then on. This test makes that switch
 * happen all the time while the collector runs: four goroutines build and
 * walk chains of nodes of seven layouts in the 16, 32 and 48-byte classes
 * (pointers in the first word, the second, both, arrays, a tag word
 * between) and three in the 640-byte class, whose types are kept per slot
 * in the span (a struct with its pointer first, one with it last, an
 * array), conservative and noscan objects of the same sizes in between,
 * and replace chains through GORT_STORE. Every node carries a tag in a
 * non-pointer word, checked on every visit: a pointer missed because a
 * slot was scanned with another layout's mask is a freed node (clobberfree
 * overwrites its tag), and gccheckmark dies naming a reachable object left
 * white; a tag scanned as a pointer would only keep garbage.
 * Without the bitmap write at the switch the program dies (checked).
 * GORT_TEST_SCALE multiplies the rounds. */
#include "test_gort.h"

#include "gort/chan.h"
#include "gort/gc.h"
#include "gort/memstats.h"
#include "gort/sched.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pp { /* 16: both words pointers */
    void *a, *b;
};
GORT_TYPE(pp, a, b);
struct pi { /* 16: the first */
    void *a;
    uintptr_t tag;
};
GORT_TYPE(pi, a);
struct ip { /* 16: the second */
    uintptr_t tag;
    void *b;
};
GORT_TYPE(ip, b);
struct q1 { /* 32 */
    uintptr_t tag;
    void *a;
    uintptr_t x;
    void *b;
};
GORT_TYPE(q1, a, b);
struct q2 { /* 32 */
    void *a, *b, *c;
    uintptr_t tag;
};
GORT_TYPE(q2, a, b, c);
struct h1 { /* 48 */
    uintptr_t tag;
    void *a, *b;
    uintptr_t y[3];
};
GORT_TYPE(h1, a, b);
struct m1 { /* 640: over the heap-bits limit, the type kept per slot */
    void *a;
    uintptr_t tag;
    uintptr_t y[78];
};
GORT_TYPE(m1, a);
struct m2 { /* 640, the pointer at the end */
    uintptr_t tag;
    uintptr_t y[78];
    void *b;
};
GORT_TYPE(m2, b);

enum { T_PP, T_PI, T_IP, T_Q1, T_Q2, T_H1, T_M1, T_M2, T_MARR, T_ARR, NT };
#define TAG(k) ((uintptr_t)0x7a60000000000000ull | (uintptr_t)(k))

/* The kinds that are a tag and a next pointer in one object: where they
 * sit (the others have cases of their own in mk and nextof). */
#define PLAIN(k, type, tagf, nextf)                                                                \
    [k] = {&type##_type, offsetof(struct type, tagf), offsetof(struct type, nextf)}
static const struct plain {
    const gort_type *t;
    size_t tag, next;
} plain[NT] = {
    PLAIN(T_PI, pi, tag, a), PLAIN(T_IP, ip, tag, b), PLAIN(T_Q2, q2, tag, c),
    PLAIN(T_H1, h1, tag, b), PLAIN(T_M1, m1, tag, a), PLAIN(T_M2, m2, tag, b),
};

static uint64_t rng(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A node of kind k whose "next" pointer is next. */
static void *mk(int k, void *next) {
    if (plain[k].t) {
        char *o = gort_new(plain[k].t);
        *(uintptr_t *)(o + plain[k].tag) = TAG(k);
        GORT_STORE(*(void **)(o + plain[k].next), next);
        return o;
    }
    switch (k) {
    case T_PP: {
        struct pp *o = gort_new(&pp_type);
        GORT_STORE(o->a, next);
        struct pi *t = gort_new(&pi_type);
        t->tag = TAG(T_PI);
        GORT_STORE(o->b, t);
        return o;
    }
    case T_Q1: {
        struct q1 *o = gort_new(&q1_type);
        o->tag = TAG(k);
        o->x = 5;
        GORT_STORE(o->b, next);
        struct ip *t = gort_new(&ip_type);
        t->tag = TAG(T_IP);
        GORT_STORE(o->a, t);
        return o;
    }
    case T_MARR: { /* 40 of pi: 640 bytes, in m1's and m2's class */
        struct pi *o = gort_new_array(&pi_type, 40);
        o[0].tag = TAG(k);
        o[39].tag = TAG(k);
        GORT_STORE(o[39].a, next);
        return o;
    }
    default: {
        struct pi *o = gort_new_array(&pi_type, 2);
        o[0].tag = TAG(T_ARR);
        o[1].tag = TAG(T_ARR);
        GORT_STORE(o[1].a, next);
        return o;
    }
    }
}

/* The node after p (of kind k), counting a bad tag in *bad. */
static void *nextof(int k, void *p, long *bad) {
    if (plain[k].t) {
        char *o = p;
        if (*(uintptr_t *)(o + plain[k].tag) != TAG(k)) (*bad)++;
        return *(void **)(o + plain[k].next);
    }
    switch (k) {
    case T_PP: {
        struct pp *o = p;
        if (((struct pi *)o->b)->tag != TAG(T_PI)) (*bad)++;
        return o->a;
    }
    case T_Q1: {
        struct q1 *o = p;
        if (o->tag != TAG(k) || ((struct ip *)o->a)->tag != TAG(T_IP)) (*bad)++;
        return o->b;
    }
    case T_MARR: {
        struct pi *o = p;
        if (o[0].tag != TAG(k) || o[39].tag != TAG(k)) (*bad)++;
        return o[39].a;
    }
    default: {
        struct pi *o = p;
        if (o[0].tag != TAG(T_ARR) || o[1].tag != TAG(T_ARR)) (*bad)++;
        return o[1].a;
    }
    }
}

#define NCH 64
#define LEN 200
#define NW  4

struct worker {
    void **chains; /* a conservative array of NCH chains */
    uint64_t seeds[NCH];
    long bad, walks;
    int id;
    gort_chan *done;
};

/* The kind of a chain's i-th node, from its seed (the walker recomputes it). */
static int kind_at(uint64_t seed, int i) {
    uint64_t s = seed + (uint64_t)i * 0x9e3779b97f4a7c15ull;
    s ^= s >> 29;
    s *= 0xbf58476d1ce4e5b9ull;
    s ^= s >> 32;
    return (int)(s % NT);
}

static void *build(uint64_t seed) {
    void *next = NULL;
    for (int i = LEN - 1; i >= 0; i--) next = mk(kind_at(seed, i), next);
    return next;
}

static void walk(struct worker *w, int c) {
    void *p = w->chains[c];
    int n = 0;
    while (p && n <= LEN) p = nextof(kind_at(w->seeds[c], n++), p, &w->bad);
    if (n != LEN) w->bad++;
    w->walks++;
}

static long rounds;
static struct worker ws[NW];

static void work(void *arg) {
    struct worker *w = arg;
    uint64_t s = 0x1234567ull + (uint64_t)w->id * 77;
    for (long r = 0; r < rounds; r++) {
        int c = (int)(rng(&s) % NCH);
        walk(w, c);
        w->seeds[c] = rng(&s);
        GORT_STORE(w->chains[c], build(w->seeds[c]));
        for (int g = 0; g < 50; g++) { /* garbage of every layout, and noscan */
            (void)mk((int)(rng(&s) % NT), NULL);
            (void)gort_alloc_noscan(16 + (rng(&s) % 3) * 16);
            if (g % 8 == 0) (void)gort_alloc_conservative(16 + (rng(&s) % 3) * 16);
        }
    }
    for (int c = 0; c < NCH; c++) walk(w, c);
    int64_t one = 1;
    gort_chan_send(w->done, &one);
}

static int layouts_main(int argc, char **argv) {
    (void)argc, (void)argv;
    rounds = (TEST_ASAN ? 3000 : 20000) * test_scale();
    gort_chan *done = gort_chan_make_noscan(sizeof(int64_t), NW);
    for (int i = 0; i < NW; i++) {
        ws[i].id = i;
        GORT_STORE(ws[i].done, done);
        void **ch = gort_alloc_conservative(NCH * sizeof(void *));
        GORT_STORE(ws[i].chains, ch);
        for (int c = 0; c < NCH; c++) {
            ws[i].seeds[c] = (uint64_t)(i * 1000 + c + 1);
            GORT_STORE(ch[c], build(ws[i].seeds[c]));
        }
        CHECK_GT(gort_go(work, &ws[i]), 0); /* the goroutine id */
    }
    for (int i = 0; i < NW; i++) CHECK(gort_chan_recv(done, NULL));
    long bad = 0, walks = 0;
    for (int i = 0; i < NW; i++) bad += ws[i].bad, walks += ws[i].walks;
    gort_memstats ms;
    gort_read_memstats(&ms);
    fprintf(stderr, "    %ld walks of %d nodes, %ld bad, %u cycles\n", walks, LEN, bad, ms.num_gc);
    CHECK_EQ(bad, 0);
    CHECK_EQ(walks, NW * (rounds + NCH));
    CHECK_GT(ms.num_gc, 3);
    return 0;
}

int main(int argc, char **argv) {
    rerun_with_godebug(argv, "gccheckmark=1", "gccheckmark=1,clobberfree=1");
    if (argc > 1) test_filter(argv[1]);
    in_child("test_gc_layouts", layouts_main, 2);
    return test_result();
}
