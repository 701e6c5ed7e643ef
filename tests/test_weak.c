/* Weak pointers and cleanups (gort_weak_make, gort_weak_get,
 * gort_add_cleanup; src/gc/mweak.c, src/gc/mfinal.c).
 *
 * - a handle reads its object while the object is reachable, across
 *   collections, and NULL once a collection found it unreachable; one
 *   address has one handle, different fields different ones;
 * - many objects, half kept: exactly the dropped ones read NULL;
 * - an object with a finalizer: its handle reads NULL from the cycle that
 *   found it unreachable, though the finalizer resurrects it, and a handle
 *   made after that is a new one;
 * - cleanups run once each, several per object, without the object (a
 *   handle to it reads NULL by then); with a finalizer too, the finalizer
 *   runs first and the cleanups only after the next collection finds the
 *   object unreachable again (Go 1.24's order);
 * - gort_weak_get racing with the mark phase: getters take objects that
 *   the mutator is dropping and keep them only on their stacks while cycles
 *   run back to back, under GORT_GODEBUG=gccheckmark=1,clobberfree=1 (a
 *   get that did not shade its result would be caught by the check mark, a
 *   freed object by its clobbered contents);
 * - misuse: Go's fatal messages.
 * Collections are forced with gort_gc; stacks are scanned conservatively,
 * so objects meant to die are made in helper frames that have returned, and
 * the test counts what survived exactly. */
#include "test_gort.h"

#include "gort/gc.h"
#include "gort/memstats.h"
#include "gort/sched.h"
#include "gort/sync.h"

#include <errno.h>
#include <stdatomic.h>

struct obj {
    struct obj *next;
    long magic;
    long pad[2];
};
GORT_TYPE(obj, next);

/* An array of object pointers, scanned precisely (a GC object). */
struct slot {
    struct obj *p;
};
GORT_TYPE(slot, p);
struct wslot {
    gort_weak *w;
};
GORT_TYPE(wslot, w);

static struct obj *keep;   /* a global: scanned as a root */
static struct obj *revive; /* set by a finalizer */

/* Caller-saved registers are gone after a call; the callee-saved ones a
 * helper used are restored; this drops whatever the compiler left in the
 * others of the caller. */
#define CLOBBER() __asm__ __volatile__("" ::: "rbx", "r12", "r13", "r14", "r15", "memory")

static __attribute__((noinline)) struct obj *new_obj(long magic) {
    struct obj *o = gort_new(&obj_type);
    CHECK(o != NULL);
    o->magic = magic;
    return o;
}

/* A handle to an object that nothing keeps. */
static __attribute__((noinline)) gort_weak *weak_to_garbage(long magic) {
    struct obj *o = new_obj(magic);
    gort_weak *w = gort_weak_make(o);
    CHECK(w != NULL);
    CHECK(gort_weak_get(w) == o);
    CHECK(gort_weak_make(o) == w); /* one address, one handle */
    CLOBBER();
    return w;
}

/* The heap's first object, kept: under ASan something in libasan's data
 * (scanned as a root, as every loaded object's) holds the heap's first
 * address, which would keep whatever a case allocated first. */
static struct obj *first;
static void keep_first(void) {
    if (!first) GORT_STORE(first, new_obj(-2));
}

static __attribute__((noinline)) void collect(void) {
    CLOBBER();
    gort_gc();
    CLOBBER();
}

/* ---- basic ---- */

/* A handle into a large object, which survives a collection while this
 * frame keeps it. */
static __attribute__((noinline)) gort_weak *weak_to_large(void) {
    struct obj *big = gort_new_array(&obj_type, 10000);
    gort_weak *wb = gort_weak_make(&big[5000]);
    CHECK(gort_weak_get(wb) == &big[5000]);
    collect();
    CHECK(gort_weak_get(wb) == &big[5000]);
    gort_keep_alive(big);
    CLOBBER();
    return wb;
}

/* A kept object (a global holds it), its handle and a field's: each
 * reads its address across collections; then the global is cleared. Done
 * in a frame of its own so that no copy of the pointer outlives it. */
static __attribute__((noinline)) void weak_to_kept(gort_weak **wk, gort_weak **wf) {
    GORT_STORE(keep, new_obj(2));
    *wk = gort_weak_make(keep);
    *wf = gort_weak_make(&keep->magic); /* another address: another handle */
    CHECK(*wf != *wk);
    CHECK(gort_weak_get(*wf) == (void *)&keep->magic);
    for (int i = 0; i < 3; i++) {
        collect();
        CHECK(gort_weak_get(*wk) == keep); /* not before */
        CHECK(gort_weak_get(*wf) == (void *)&keep->magic);
        CHECK(gort_weak_make(keep) == *wk);
        CHECK(keep->magic == 2);
    }
    GORT_STORE(keep, NULL);
    CLOBBER();
}

static gort_weak *large_w; /* a GC object: stored with GORT_STORE */
static gort_waitgroup large_wg = GORT_WAITGROUP_INIT;
static void large_goroutine(void *arg) {
    (void)arg;
    GORT_STORE(large_w, weak_to_large());
    gort_waitgroup_done(&large_wg);
}

/* argc 1: on a plain thread (plain_child). */
static int basic_main(int argc, char **argv) {
    (void)argv;
    keep_first();
    /* Under ASan a plain thread's frames (ASan's, on the thread's own stack,
     * scanned conservatively) keep a stale copy of the kept object: the
     * checks that it went are made in goroutines only there. */
    bool strict = !(argc == 1 && TEST_ASAN);
    CHECK(gort_weak_make(NULL) == NULL);
    CHECK(gort_weak_get(NULL) == NULL);
    gort_weak *w = weak_to_garbage(1);
    gort_weak *wk, *wf;
    weak_to_kept(&wk, &wf);
    collect();
    CHECK(gort_weak_get(w) == NULL); /* after */
    if (strict) CHECK(gort_weak_get(wk) == NULL);
    if (strict) CHECK(gort_weak_get(wf) == NULL);
    /* A large object too: in a goroutine of its own when there is a
     * scheduler, so that no frame of this one can keep a copy of it (under
     * ASan one did, in about every run, once gort_gc's frame changed). */
    gort_weak *wb;
    if (argc == 1) {
        wb = weak_to_large();
    } else {
        gort_waitgroup_add(&large_wg, 1);
        CHECK_GT(gort_go(large_goroutine, NULL), 0);
        gort_waitgroup_wait(&large_wg);
        wb = large_w;
    }
    collect();
    if (strict) CHECK(gort_weak_get(wb) == NULL);
    return 0;
}

/* The same outside gort_main, on a plain thread (of a forked child: the
 * collector's threads must not be started in the parent that forks the
 * other cases). */
static void plain_child(void) {
    _exit(basic_main(1, NULL));
}

static void test_weak_plain_thread(void) {
    expect_death(plain_child, 0, "");
}

/* ---- many ---- */

#define NMANY 20000

static struct slot *kept;   /* the even ones */
static struct wslot *weaks; /* a handle to each */

static __attribute__((noinline)) void fill_many(void) {
    for (long i = 0; i < NMANY; i++) {
        struct obj *o = new_obj(i);
        GORT_STORE(weaks[i].w, gort_weak_make(o));
        if (i % 2 == 0) GORT_STORE(kept[i].p, o);
    }
    CLOBBER();
}

static int many_main(int argc, char **argv) {
    (void)argc, (void)argv;
    keep_first();
    GORT_STORE(kept, gort_new_array(&slot_type, NMANY));
    GORT_STORE(weaks, gort_new_array(&wslot_type, NMANY));
    fill_many();
    collect();
    long alive = 0, wrong = 0;
    for (long i = 0; i < NMANY; i++) {
        struct obj *o = gort_weak_get(weaks[i].w);
        if (i % 2 == 0) {
            if (o != kept[i].p || o->magic != i) wrong++;
        } else if (o) {
            alive++;
        }
    }
    fprintf(stderr, "dropped objects still alive after a collection: %ld of %d\n", alive,
            NMANY / 2);
    CHECK_EQ(wrong, 0);
    /* Conservative stacks may keep the last one or two made. */
    CHECK_LE(alive, 2);
    /* Now drop the rest. */
    GORT_STORE(kept, NULL);
    collect();
    alive = 0;
    for (long i = 0; i < NMANY; i++)
        if (gort_weak_get(weaks[i].w)) alive++;
    CHECK_LE(alive, 2);
    return 0;
}

/* ---- finalizers ---- */

static long fin_ran;
static gort_weak *fin_w1;

static void fin_revive(void *o, void *arg) {
    (void)arg;
    /* Resurrected: but its handle was cleared before this ran. */
    CHECK(gort_weak_get(fin_w1) == NULL);
    GORT_STORE(revive, (struct obj *)o);
    __atomic_fetch_add(&fin_ran, 1, __ATOMIC_ACQ_REL);
}

static __attribute__((noinline)) void make_finalizable(void) {
    struct obj *o = new_obj(77);
    gort_set_finalizer(o, fin_revive, NULL);
    fin_w1 = gort_weak_make(o);
    CHECK(gort_weak_get(fin_w1) == o);
    CLOBBER();
}

/* After the finalizer ran: a new handle to the resurrected object, which
 * reads it while the global keeps it; then the global is cleared. */
static __attribute__((noinline)) gort_weak *weak_to_revived(void) {
    CHECK(gort_weak_get(fin_w1) == NULL);
    CHECK(revive != NULL && revive->magic == 77);
    gort_weak *w2 = gort_weak_make(revive); /* after resurrection: a new handle */
    CHECK(w2 != fin_w1);
    CHECK(gort_weak_get(w2) == revive);
    collect();
    CHECK(gort_weak_get(w2) == revive); /* kept by the global now */
    GORT_STORE(revive, NULL);
    CLOBBER();
    return w2;
}

static int finalizer_main(int argc, char **argv) {
    (void)argc, (void)argv;
    keep_first();
    make_finalizable();
    collect();
    CHECK(wait_for(&fin_ran, 1, 10000));
    gort_weak *w2 = weak_to_revived();
    collect();
    /* Under ASan, spill slots of the goroutines' instrumented frames keep
     * stale copies of the object (found on the finalizer goroutine's stack
     * and others), which conservative scanning honours. */
    if (!TEST_ASAN) CHECK(gort_weak_get(w2) == NULL);
    CHECK_EQ(fin_ran, 1);
    return 0;
}

/* ---- cleanups ---- */

#define NCLEAN 1000
static long cleanup_count[NCLEAN];
static long cleanups_total;

static void on_cleanup(void *arg) {
    long i = (long)arg;
    __atomic_fetch_add(&cleanup_count[i], 1, __ATOMIC_ACQ_REL);
    __atomic_fetch_add(&cleanups_total, 1, __ATOMIC_ACQ_REL);
}

static struct wslot *cweaks;

/* NCLEAN objects with 3 cleanups each (arg: the object's number). */
static __attribute__((noinline)) void make_cleanups(void) {
    for (long i = 0; i < NCLEAN; i++) {
        struct obj *o = new_obj(i);
        for (int k = 0; k < 3; k++) CHECK_EQ(gort_add_cleanup(o, on_cleanup, (void *)i), 0);
        GORT_STORE(cweaks[i].w, gort_weak_make(o));
    }
    CLOBBER();
}

/* Collects until total reaches want (cleanups run on the finalizer
 * goroutine, after the sweep that queued them). */
static bool collect_until(long *total, long want) {
    for (int i = 0; i < 50 && __atomic_load_n(total, __ATOMIC_ACQUIRE) < want; i++) {
        collect();
        wait_for(total, want, 100);
    }
    return __atomic_load_n(total, __ATOMIC_ACQUIRE) >= want;
}

static int cleanup_main(int argc, char **argv) {
    (void)argc, (void)argv;
    keep_first();
    GORT_STORE(cweaks, gort_new_array(&wslot_type, NCLEAN));
    make_cleanups();
    CHECK(gort_add_cleanup(cweaks, NULL, NULL) == -EINVAL);
    collect_until(&cleanups_total, 3 * NCLEAN - 6);
    gort_sleep(100 * 1000 * 1000);
    long once = 0, none = 0;
    for (long i = 0; i < NCLEAN; i++) {
        long c = __atomic_load_n(&cleanup_count[i], __ATOMIC_ACQUIRE);
        CHECK_LE(c, 3); /* never more than once each */
        if (c == 3) once++;
        if (c == 0) {
            none++;
            continue;
        }
        CHECK_EQ(c, 3); /* an object's cleanups run together */
        /* Not resurrected: its handle reads NULL. */
        CHECK(gort_weak_get(cweaks[i].w) == NULL);
    }
    fprintf(stderr, "objects whose cleanups ran: %ld of %d\n", once, NCLEAN);
    CHECK_LE(none, 2); /* conservative stacks may keep the last one or two */
    /* Never again. */
    collect();
    gort_sleep(50 * 1000 * 1000);
    for (long i = 0; i < NCLEAN; i++) CHECK_LE(cleanup_count[i], 3);
    return 0;
}

/* A finalizer and cleanups on one object: the finalizer first; the
 * cleanups once the object is unreachable again, without its finalizer. */
static long order_fin, order_clean, order_clean_at_fin;

static void order_finalizer(void *o, void *arg) {
    (void)o, (void)arg;
    order_clean_at_fin = __atomic_load_n(&order_clean, __ATOMIC_ACQUIRE);
    __atomic_fetch_add(&order_fin, 1, __ATOMIC_ACQ_REL);
}

static void order_cleanup(void *arg) {
    (void)arg;
    __atomic_fetch_add(&order_clean, 1, __ATOMIC_ACQ_REL);
}

static __attribute__((noinline)) void make_ordered(void) {
    struct obj *o = new_obj(5);
    CHECK_EQ(gort_add_cleanup(o, order_cleanup, NULL), 0);
    gort_set_finalizer(o, order_finalizer, NULL);
    CHECK_EQ(gort_add_cleanup(o, order_cleanup, NULL), 0);
    CLOBBER();
}

static int order_main(int argc, char **argv) {
    (void)argc, (void)argv;
    keep_first();
    make_ordered();
    CHECK(collect_until(&order_fin, 1));
    CHECK_EQ(order_clean_at_fin, 0);
    CHECK_EQ(order_clean, 0); /* the object was resurrected for its finalizer */
    CHECK(collect_until(&order_clean, 2));
    CHECK_EQ(order_fin, 1);
    gort_sleep(50 * 1000 * 1000);
    CHECK_EQ(order_clean, 2);
    return 0;
}

/* ---- gort_weak_get against the mark phase ---- */

#define NRACE 4096
static struct slot *race_objs;
static struct wslot *race_weaks;
static struct wslot *race_old; /* handles to the objects replaced last */
static atomic_long race_stop;
static long race_gets, race_hits, race_bad;
static gort_waitgroup race_wg = GORT_WAITGROUP_INIT;

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Takes objects the mutator is dropping and keeps them only on its stack
 * while it allocates (cycles run meanwhile), then checks them. */
static void race_getter(void *arg) {
    uint64_t seed = (uint64_t)(long)arg * 0x9e3779b97f4a7c15ull + 1;
    struct obj *held[8] = {0};
    long idx[8];
    long gets = 0, hits = 0, bad = 0;
    while (!atomic_load(&race_stop)) {
        for (int k = 0; k < 8; k++) {
            uint64_t r = rnd(&seed);
            long i = (long)(r % NRACE);
            gort_weak *w = (r >> 32) & 1 ? race_old[i].w : race_weaks[i].w;
            struct obj *o = w ? gort_weak_get(w) : NULL;
            gets++;
            if (o) {
                hits++;
                if (o->magic < 0 || o->magic % NRACE != i) bad++;
            }
            held[k] = o;
            idx[k] = i;
        }
        /* Held across yields (parked, so mark termination does not rescan
         * this stack) and allocation (which paces the cycles). */
        gort_yield();
        for (int j = 0; j < 64; j++) (void)new_obj(-1);
        gort_yield();
        /* Still intact (a freed object reads 0xdeadbeef... here). */
        for (int k = 0; k < 8; k++) {
            if (held[k] && (held[k]->magic < 0 || held[k]->magic % NRACE != idx[k])) bad++;
            held[k] = NULL;
        }
    }
    __atomic_fetch_add(&race_gets, gets, __ATOMIC_ACQ_REL);
    __atomic_fetch_add(&race_hits, hits, __ATOMIC_ACQ_REL);
    __atomic_fetch_add(&race_bad, bad, __ATOMIC_ACQ_REL);
    gort_waitgroup_done(&race_wg);
}

static int race_main(int argc, char **argv) {
    (void)argc, (void)argv;
    keep_first();
    GORT_STORE(race_objs, gort_new_array(&slot_type, NRACE));
    GORT_STORE(race_weaks, gort_new_array(&wslot_type, NRACE));
    GORT_STORE(race_old, gort_new_array(&wslot_type, NRACE));
    for (long i = 0; i < NRACE; i++) {
        struct obj *o = new_obj(i);
        GORT_STORE(race_objs[i].p, o);
        GORT_STORE(race_weaks[i].w, gort_weak_make(o));
    }
    gort_waitgroup_add(&race_wg, 2);
    gort_go(race_getter, (void *)1);
    gort_go(race_getter, (void *)2);
    gort_memstats ms0, ms1;
    gort_read_memstats(&ms0);
    uint64_t seed = 42;
    int64_t end = test_now_ns() + 2000000000ll;
    long round = 1;
    while (test_now_ns() < end) {
        /* Replace objects: the old ones become garbage, reachable only
         * through their (old) handles. */
        for (int k = 0; k < 256; k++) {
            long i = (long)(rnd(&seed) % NRACE);
            struct obj *o = new_obj(i + round * NRACE);
            GORT_STORE(race_objs[i].p, o);
            GORT_STORE(race_old[i].w, race_weaks[i].w);
            GORT_STORE(race_weaks[i].w, gort_weak_make(o));
        }
        round++;
        gort_yield();
    }
    atomic_store(&race_stop, 1);
    gort_waitgroup_wait(&race_wg);
    gort_read_memstats(&ms1);
    fprintf(stderr, "gets %ld, hits %ld, bad %ld, cycles %u\n", race_gets, race_hits, race_bad,
            ms1.num_gc - ms0.num_gc);
    CHECK_EQ(race_bad, 0);
    CHECK_GT(race_hits, 0);
    CHECK_LT(race_hits, race_gets); /* some old ones were collected */
    CHECK_GE(ms1.num_gc - ms0.num_gc, 3);
    return 0;
}

/* Re-executed with the check mark and clobbering on, and a small GOGC. */
static void race_child(void) {
    setenv("GORT_GODEBUG", "gccheckmark=1,clobberfree=1", 1);
    setenv("GORT_GOGC", "20", 1);
    execl("/proc/self/exe", "test_weak", "--race-child", (char *)NULL);
    _exit(3);
}

static void test_weak_get_during_mark(void) {
    expect_death(race_child, 0, "gets ");
}

/* ---- misuse ---- */

static long not_gc[4];

static void cleanup_nil(void) {
    gort_add_cleanup(NULL, on_cleanup, NULL);
}
static void cleanup_self(void) {
    struct obj *o = new_obj(1);
    gort_add_cleanup(o, on_cleanup, o);
}
static void cleanup_inside(void) {
    struct obj *o = new_obj(1);
    gort_add_cleanup(o, on_cleanup, &o->magic);
}
static void cleanup_not_gc(void) {
    gort_add_cleanup(not_gc, on_cleanup, NULL);
}
static void weak_not_gc(void) {
    gort_weak_make(not_gc);
}

static void test_weak_misuse(void) {
    expect_death(cleanup_nil, 2, "runtime.AddCleanup: ptr is nil");
    expect_death(cleanup_self, 2,
                 "runtime.AddCleanup: ptr is equal to arg, cleanup will never run");
    expect_death(cleanup_inside, 2, "cleanup will never run");
    expect_death(cleanup_not_gc, 2, "runtime.AddCleanup: ptr");
    expect_death(cleanup_not_gc, 2, "not in allocated block");
    expect_death(weak_not_gc, 2, "gort_weak_make: pointer");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--race-child") == 0) {
        gort_gomaxprocs(2);
        return gort_main(race_main, 0, NULL);
    }
    if (argc > 1) test_filter(argv[1]);
    in_child("test_weak_basic", basic_main, 2);
    RUN(test_weak_plain_thread);
    in_child("test_weak_many", many_main, 2);
    in_child("test_weak_finalizer", finalizer_main, 2);
    in_child("test_cleanup_once", cleanup_main, 2);
    in_child("test_cleanup_after_finalizer", order_main, 2);
    RUN(test_weak_get_during_mark);
    RUN(test_weak_misuse);
    fprintf(stderr, "all weak tests passed\n");
    return test_result();
}
