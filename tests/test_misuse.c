/* Misuse of the malloc family: each is a fatal error that exits with status
 * 2 and names the pointer on stderr (include/gort/malloc.h; the messages are
 * bad_pointer's in src/mem/malloc.c).
 *
 * Each case runs in a forked child (expect_death). The child records the
 * pointer it misuses, as %p prints it, in a shared page, and the parent
 * checks that stderr holds "fatal error: ", the message's words and that
 * pointer. Cases: double frees (small, large, from a second thread, both
 * frees remote, the first still in a live thread's batch of remote frees,
 * after the span emptied and was reset), frees of memory gort never returned (stack, global, libc's
 * malloc, a free page of the heap, a never-allocated slot of a span, a span's
 * tail), interior pointers (small and large), a GC object, and realloc and
 * gort_usable_size on freed or interior pointers. */
#include "test.h"
#include "gort/gc.h"

#include "gort/malloc.h"
#include "mem/arena.h"
#include "mem/malloc.h"
#include "mem/mspan.h"

#include <pthread.h>
#include <semaphore.h>
#include <sys/mman.h>

/* Written by the child, read by the parent: the pointers as %p prints them. */
static struct shared {
    char ptr[64]; /* the pointer misused */
    char obj[64]; /* the object it points into, for interior pointers */
} * sh;

static void record(const void *p) {
    snprintf(sh->ptr, sizeof sh->ptr, "%p", p);
}

/* Runs fn, expects death with status 2, and checks stderr for "fatal error: ",
 * each of the words, and the recorded pointer. */
static void expect_misuse_(const char *name, void (*fn)(void), const char *words1,
                           const char *words2) {
    if (!test_selected(name)) return;
    test_ran_++;
    memset(sh, 0, sizeof *sh);
    const char *err = expect_death(fn, 2, "fatal error: ");
    CHECK(sh->ptr[0] != 0);
    if (!strstr(err, sh->ptr) || (words1 && !strstr(err, words1)) ||
        (words2 && !strstr(err, words2)) || (sh->obj[0] && !strstr(err, sh->obj))) {
        fprintf(stderr, "want \"%s\", \"%s\", pointer %s%s%s; stderr:\n%s\n", words1 ? words1 : "",
                words2 ? words2 : "", sh->ptr, sh->obj[0] ? ", object " : "", sh->obj, err);
        test_fail();
    }
    /* One line, as Go's throw prints it. */
    const char *fe = strstr(err, "fatal error: ");
    CHECK(strchr(fe, '\n') != NULL);
    CHECK(strstr(fe, sh->ptr) < strchr(fe, '\n'));
    fprintf(stderr, "  %.*s\n", (int)(strchr(fe, '\n') - fe), fe);
}

#define expect_misuse(fn, words1, words2) expect_misuse_(#fn, fn, words1, words2)

/* ---- double frees ---- */

static void double_free_small(void) {
    void *p = gort_malloc(64);
    record(p);
    gort_free(p);
    gort_free(p);
}

/* A double free among neighbours, after a freed slot was handed out again. */
static void double_free_among_neighbours(void) {
    void *a[10];
    for (int i = 0; i < 10; i++) a[i] = gort_malloc(32);
    gort_free(a[4]);
    gort_free(a[5]);
    void *x = gort_malloc(32); /* one of the two comes back */
    void *victim = x == a[4] ? a[5] : a[4];
    record(victim);
    gort_free(victim);
}

static void *free_it(void *p) {
    gort_free(p);
    return NULL;
}

/* Allocated and freed here; freed again by a second thread. */
static void double_free_second_thread(void) {
    void *p = gort_malloc(64);
    record(p);
    gort_free(p);
    pthread_t t;
    pthread_create(&t, NULL, free_it, p);
    pthread_join(t, NULL);
}

/* The last object malloc handed out here, freed by a second thread and then
 * again here: free's shortcut for the last object must not take it for live. */
static void double_free_last_remote_first(void) {
    void *p = gort_malloc(48);
    record(p);
    pthread_t t;
    pthread_create(&t, NULL, free_it, p);
    pthread_join(t, NULL);
    gort_free(p);
}

/* The same after the owner took the remote free over and handed the slot
 * out and back many times (each time as the last object). */
static void double_free_last_reused(void) {
    void *q = gort_malloc(48);
    (void)q;
    void *p = gort_malloc(48);
    record(p);
    pthread_t t;
    pthread_create(&t, NULL, free_it, p);
    pthread_join(t, NULL);
    for (int i = 0; i < 1000; i++) gort_free(gort_malloc(48)); /* takes the remote free over */
    gort_free(p);
}

/* Allocated and freed by a thread that is still alive; freed again here. */
static sem_t go, done;
static void *owner_p;

static void *alloc_free_wait(void *arg) {
    (void)arg;
    owner_p = gort_malloc(200);
    gort_free(owner_p);
    sem_post(&done);
    sem_wait(&go); /* stay alive: our mcache keeps owning the span */
    return NULL;
}

static void double_free_owner_alive(void) {
    sem_init(&go, 0, 0);
    sem_init(&done, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, alloc_free_wait, NULL);
    sem_wait(&done);
    record(owner_p);
    gort_free(owner_p);
    sem_post(&go);
    pthread_join(t, NULL);
}

/* Allocated by a live thread; both frees come from another thread. The
 * second free may only be caught when the owner takes the remote frees
 * over; that must happen by the time the owner has exited. */
static void *alloc_wait_exit(void *arg) {
    (void)arg;
    owner_p = gort_malloc(200);
    sem_post(&done);
    sem_wait(&go);
    /* Allocate from the class until the span's remote frees are taken. */
    for (int i = 0; i < 1000; i++) gort_malloc(200);
    return NULL;
}

static void double_free_both_remote(void) {
    sem_init(&go, 0, 0);
    sem_init(&done, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, alloc_wait_exit, NULL);
    sem_wait(&done);
    record(owner_p);
    gort_free(owner_p);
    gort_free(owner_p);
    sem_post(&go);
    pthread_join(t, NULL);
    /* The owner has exited (its mcache flushed); one more allocation round
     * from here in case the span went to the central list. */
    for (int i = 0; i < 1000; i++) gort_malloc(200);
}

/* Freed by a live thread, whose batch of remote frees still holds it (not
 * yet on the span's tfree); freed again by the owner, which must find it
 * in that batch (mcache_rfree_holds). realloc alike. */
static void *free_and_wait(void *p) {
    gort_free(p);
    sem_post(&done);
    sem_wait(&go); /* stay alive, holding the batch */
    return NULL;
}

static void remote_pending_then(void (*again)(void *)) {
    sem_init(&go, 0, 0);
    sem_init(&done, 0, 0);
    void *p = gort_malloc(200);
    record(p);
    pthread_t t;
    pthread_create(&t, NULL, free_and_wait, p);
    sem_wait(&done);
    again(p);
    sem_post(&go);
    pthread_join(t, NULL);
}

static void realloc_it(void *p) {
    gort_realloc(p, 300);
}

static void double_free_remote_pending(void) {
    remote_pending_then(gort_free);
}

static void realloc_remote_pending(void) {
    remote_pending_then(realloc_it);
}

/* Freed twice after its span emptied and was reset for reuse (mcentral.h:
 * span_reset): the slot now lies past the bump pointer. */
static void double_free_reset_span(void) {
    enum { N = 1024 };
    static void *p[N];
    for (int i = 0; i < N; i++) p[i] = gort_malloc(256);
    mspan *s = span_of((uintptr_t)p[0]), *cur = span_of((uintptr_t)p[N - 1]);
    CHECK(s != cur);
    for (int i = 0; i < N; i++)
        if (span_of((uintptr_t)p[i]) == s) gort_free(p[i]);
    CHECK_EQ(s->freeindex, 0); /* empty, reset, kept */
    record(p[0]);
    gort_free(p[0]);
}

static void double_free_large_cached(void) {
    void *p = gort_malloc(64 * 1024); /* kept in the large cache once freed */
    record(p);
    gort_free(p);
    gort_free(p);
}

static void double_free_large(void) {
    void *p = gort_malloc(4 << 20); /* goes straight back to the page heap */
    record(p);
    gort_free(p);
    gort_free(p);
}

static void double_free_aligned(void) {
    void *p;
    gort_posix_memalign(&p, 1 << 20, 100000);
    record(p);
    gort_free(p);
    gort_free(p);
}

/* ---- not gort's ---- */

static char global_buf[256];

static void free_stack(void) {
    char local[64];
    volatile char *v = local;
    v[0] = 1;
    record(local + 16);
    gort_free(local + 16);
}

static void free_global(void) {
    record(global_buf + 32);
    gort_free(global_buf + 32);
}

static void free_libc(void) {
    void *p = malloc(48);
    record(p);
    gort_free(p);
}

static void free_code(void) {
    void *p = (void *)(uintptr_t)&free_code;
    record(p);
    gort_free(p);
}

/* A page of the heap that belongs to no span. */
static void free_free_page(void) {
    uint8_t *p = gort_malloc(4 << 20);
    gort_free(p);
    record(p + 64 * 1024);
    gort_free(p + 64 * 1024);
}

/* A slot of a live span that was never handed out. */
static void free_never_allocated_slot(void) {
    for (int tries = 0; tries < 100; tries++) {
        uintptr_t q = (uintptr_t)gort_malloc(256);
        mspan *s = span_of(q);
        CHECK(s != NULL && s->elemsize == 256);
        uint32_t k = s->freeindex + 1; /* beyond the next one to be handed out */
        if (k < s->nelems) {
            void *p = (void *)(s->base + (uintptr_t)k * s->elemsize);
            record(p);
            gort_free(p);
            return;
        }
    }
}

/* The tail of a span, past its last object. */
static void free_span_tail(void) {
    uintptr_t q = (uintptr_t)gort_malloc(48);
    mspan *s = span_of(q);
    CHECK(s != NULL && s->elemsize == 48);
    uintptr_t tail = s->base + (uintptr_t)s->nelems * s->elemsize;
    CHECK(tail < span_limit(s)); /* 48-byte spans have a tail */
    record((void *)tail);
    gort_free((void *)tail);
}

/* ---- interior pointers ---- */

static void interior_small(void) {
    uint8_t *p = gort_malloc(64);
    record(p + 8);
    snprintf(sh->obj, sizeof sh->obj, "%p", (void *)p);
    gort_free(p + 8);
}

static void interior_small_last_byte(void) {
    uint8_t *p = gort_malloc(1000); /* 1024-byte class */
    record(p + 1023);
    snprintf(sh->obj, sizeof sh->obj, "%p", (void *)p);
    gort_free(p + 1023);
}

static void interior_large(void) {
    uint8_t *p = gort_malloc(100000);
    record(p + 3 * 8192);
    snprintf(sh->obj, sizeof sh->obj, "%p", (void *)p);
    gort_free(p + 3 * 8192);
}

static void interior_large_first_page(void) {
    uint8_t *p = gort_malloc(1 << 20);
    record(p + 16);
    snprintf(sh->obj, sizeof sh->obj, "%p", (void *)p);
    gort_free(p + 16);
}

/* ---- GC objects ---- */

static void free_gc_object(void) {
    void *p = gort_alloc_conservative(64);
    record(p);
    gort_free(p);
}

static void free_gc_large(void) {
    void *p = gort_alloc_noscan(100000);
    record(p);
    gort_free(p);
}

/* ---- realloc and usable_size ---- */

static void realloc_freed(void) {
    void *p = gort_malloc(64);
    record(p);
    gort_free(p);
    gort_realloc(p, 128);
}

static void realloc_freed_large(void) {
    void *p = gort_malloc(100000);
    record(p);
    gort_free(p);
    gort_realloc(p, 200000);
}

static void realloc_interior(void) {
    uint8_t *p = gort_malloc(64);
    record(p + 16);
    snprintf(sh->obj, sizeof sh->obj, "%p", (void *)p);
    gort_realloc(p + 16, 10);
}

static void realloc_gc_object(void) {
    void *p = gort_alloc_noscan(200);
    record(p);
    gort_realloc(p, 300);
}

static void realloc_not_gort(void) {
    record(global_buf);
    gort_realloc(global_buf, 10);
}

static void usable_size_freed(void) {
    void *p = gort_malloc(64);
    record(p);
    gort_free(p);
    gort_usable_size(p);
}

static void usable_size_freed_large(void) {
    void *p = gort_malloc(4 << 20);
    record(p);
    gort_free(p);
    gort_usable_size(p);
}

static void usable_size_interior(void) {
    uint8_t *p = gort_malloc(5000);
    record(p + 100);
    snprintf(sh->obj, sizeof sh->obj, "%p", (void *)p);
    gort_usable_size(p + 100);
}

/* ---- the same work, done right, does not die ---- */

static void correct_use(void) {
    void *p = gort_malloc(64);
    record(p);
    gort_free(p);
    p = gort_malloc(64);
    gort_free(p);
    pthread_t t;
    p = gort_malloc(100000);
    pthread_create(&t, NULL, free_it, p);
    pthread_join(t, NULL);
}

int main(void) {
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    /* Warm the heap so that children do not all start from nothing. */
    gort_free(gort_malloc(16));

    fprintf(stderr, "=== double frees\n");
    expect_misuse(double_free_small, "gort_free: double free of ", NULL);
    expect_misuse(double_free_among_neighbours, "double free", NULL);
    expect_misuse(double_free_second_thread, "double free", NULL);
    expect_misuse(double_free_last_remote_first, "double free", NULL);
    expect_misuse(double_free_last_reused, "double free", NULL);
    expect_misuse(double_free_owner_alive, "double free", NULL);
    expect_misuse(double_free_both_remote, "double free", NULL);
    expect_misuse(double_free_remote_pending, "gort_free: double free of ", NULL);
    expect_misuse(double_free_reset_span, "gort_free: ", "double free");
    expect_misuse(double_free_large_cached, "double free", NULL);
    expect_misuse(double_free_large, "double free", NULL);
    expect_misuse(double_free_aligned, "double free", NULL);

    fprintf(stderr, "=== not allocated by gort\n");
    expect_misuse(free_stack, "gort_free: ", "was not allocated by gort");
    expect_misuse(free_global, "gort_free: ", "was not allocated by gort");
    expect_misuse(free_libc, "gort_free: ", "was not allocated by gort");
    expect_misuse(free_code, "gort_free: ", "was not allocated by gort");
    expect_misuse(free_free_page, "gort_free: ", "is not an allocated object");
    expect_misuse(free_never_allocated_slot, "gort_free: ", NULL);
    expect_misuse(free_span_tail, "gort_free: ", "is not an allocated object");

    fprintf(stderr, "=== interior pointers\n");
    expect_misuse(interior_small, "gort_free: ", "is an interior pointer");
    expect_misuse(interior_small_last_byte, "gort_free: ", "is an interior pointer");
    expect_misuse(interior_large, "gort_free: ", "is an interior pointer");
    expect_misuse(interior_large_first_page, "gort_free: ", "is an interior pointer");

    fprintf(stderr, "=== GC objects\n");
    expect_misuse(free_gc_object, "gort_free: ", "garbage-collected object");
    expect_misuse(free_gc_large, "gort_free: ", "garbage-collected object");

    fprintf(stderr, "=== realloc and usable_size\n");
    expect_misuse(realloc_freed, "gort_realloc: ", NULL);
    expect_misuse(realloc_freed_large, "gort_realloc: ", NULL);
    expect_misuse(realloc_remote_pending, "gort_realloc: ", "already freed");
    expect_misuse(realloc_interior, "gort_realloc: ", "is an interior pointer");
    expect_misuse(realloc_gc_object, "gort_realloc: ", "garbage-collected object");
    expect_misuse(realloc_not_gort, "gort_realloc: ", "was not allocated by gort");
    expect_misuse(usable_size_freed, "gort_usable_size: ", NULL);
    expect_misuse(usable_size_freed_large, "gort_usable_size: ", NULL);
    expect_misuse(usable_size_interior, "gort_usable_size: ", "is an interior pointer");

    /* The harness itself: correct use exits 0, which expect_death reports
     * as a failure; run it directly instead. */
    fprintf(stderr, "=== correct use survives\n");
    memset(sh, 0, sizeof *sh);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        correct_use();
        _exit(0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    fprintf(stderr, "ok\n");
    return test_result();
}
