/* mallocbench: malloc/free workloads, one pattern per process.
 *
 * Usage: mallocbench PATTERN [iterations]
 *
 * The program calls plain malloc/free; the allocator under test is chosen
 * with LD_PRELOAD (libgort-malloc.so, libmimalloc.so.2, libjemalloc.so.2, or
 * none for glibc), exactly like the C malloc peers of bench/peers
 * (allocfree). Each pattern runs in its own process so that the
 * peak RSS (getrusage ru_maxrss) belongs to that pattern alone.
 *
 * Every random number comes from splitmix64 with the fixed seed SEED below, so
 * every allocator sees the same sequence of sizes and slots. A random integer
 * in [lo, hi] is lo + ((r >> 32) * (hi - lo + 1) >> 32) for a fresh 64-bit
 * draw r (no division). "Block k" is the k-th block allocated in the pattern
 * (k = 0, 1, ...); its first byte is written with k & 0xff right after the
 * malloc, and read back into a checksum right before its free, so the
 * expected checksum is the sum over all blocks of (k & 0xff).
 *
 * Patterns (the iteration count N is the optional argument; defaults below):
 *
 *   hot-16, hot-64, hot-256, hot-4096, hot-65536  (S = the size in bytes)
 *       The peers' allocfree loop: for i in [0, N): p = malloc(S);
 *       p[0] = i & 0xff; store p in a global volatile sink; add sink[0] to the
 *       checksum; free(sink). Default N: 50,000,000 (hot-16/64/256),
 *       20,000,000 (hot-4096, hot-65536).
 *       Figure: timed loop / N.
 *
 *   fifo
 *       A FIFO ring of 10,000 live blocks of random sizes in [16, 512] bytes.
 *       Prefill (untimed): blocks 0..9,999 in ring slots 0..9,999. Then for
 *       i in [0, N) (timed): the oldest block (block i, in slot i % 10,000)
 *       is checked and freed, and block 10,000 + i, of a fresh random size, is
 *       allocated into the same slot. Afterwards (untimed) the 10,000 blocks
 *       left are checked and freed. Default N: 20,000,000.
 *       Figure: timed loop / N.
 *
 *   random
 *       Random replacement in 100,000 slots of random sizes in [8, 4096]
 *       bytes. Prefill (untimed): blocks 0..99,999 in slots 0..99,999, each of
 *       a random size. Then for i in [0, N) (timed): draw r; the slot is
 *       (r >> 32) * 100,000 >> 32 and the new size 8 + ((r & 0xffffffff) *
 *       4,089 >> 32); the slot's block is checked and freed and block
 *       100,000 + i is allocated into it. Afterwards (untimed) all slots are
 *       checked and freed. Default N: 4,000,000.
 *       Figure: timed loop / N.
 *
 *   xthread
 *       Cross-thread frees. The main thread (producer) allocates blocks
 *       0..N-1 of random sizes in [64, 256] bytes and hands each pointer to a
 *       consumer thread through a bounded single-producer/single-consumer ring
 *       of 1,024 pointers; the consumer checks each block and frees it. The
 *       ring is lock-free and built to cost little next to malloc/free: each
 *       side publishes its index (release store) only once per 64 items, the
 *       indices live on separate 64-byte cache lines, and each side re-reads
 *       the other side's index (acquire load) only when its cached copy says
 *       the ring is full/empty; a waiting side spins with the pause
 *       instruction (sched_yield after a while). At most 1,024 blocks are in
 *       flight. Default N: 4,000,000.
 *       Figure: elapsed time from the producer's first malloc (the consumer
 *       thread is already running and waiting) until the consumer has freed
 *       the last block (thread joined), divided by N.
 *
 *   xbatch
 *       Cross-thread frees in batches, as mimalloc-bench's xmalloc-test: two
 *       producer threads each allocate N / 2 blocks of random sizes in
 *       [16, 256] bytes, in batches of 4,096 (a batch is an array of
 *       pointers in the benchmark's own memory, not malloc's); each full
 *       batch goes on a shared queue (a mutex and two condition variables,
 *       at most 32 batches queued), and two consumer threads take batches
 *       off it, check each block and free it. Any consumer may free any
 *       producer's blocks; blocks of one batch come from few spans/pages of
 *       one thread, as in a real pipeline. At most 32 + 4 batches (about
 *       20 MiB) are live. Producer p draws its sizes from its own
 *       splitmix64 stream (seed SEED + p) and numbers its blocks k = 0, 1,
 *       ... Default N: 16,777,216 (4,096 batches).
 *       Figure: elapsed time from the start of the threads until all have
 *       joined, divided by N (four threads on the machine's cores: a
 *       throughput, not a latency).
 *
 * Each pattern checks its checksum (and, for xthread and xbatch, the count
 * of blocks freed); on a mismatch it prints a line starting with BAD and
 * exits 1. Output (the last line is the key figure):
 *
 *   INFO ...
 *   RESULT malloc-<pattern> <peer> peak_rss=<KiB> KiB
 *   RESULT malloc-<pattern> <peer> pair=<ns per malloc/free pair> ns
 *
 * Peer label: the PEER environment variable wins; otherwise from LD_PRELOAD:
 * containing "gort" -> gort, "mimalloc" -> c-mimalloc, "jemalloc" ->
 * c-jemalloc, "tcmalloc" -> c-tcmalloc, another library -> c-preload, unset
 * -> c-glibc.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define SEED 0x9e3779b97f4a7c15ULL

void *volatile sink; /* the pointer escapes: the compiler cannot drop malloc/free */

static const char *peer_label(void) {
    const char *p = getenv("PEER");
    if (p && *p) return p;
    const char *pre = getenv("LD_PRELOAD");
    if (!pre || !*pre) return "c-glibc";
    if (strstr(pre, "gort")) return "gort";
    if (strstr(pre, "mimalloc")) return "c-mimalloc";
    if (strstr(pre, "jemalloc")) return "c-jemalloc";
    if (strstr(pre, "tcmalloc")) return "c-tcmalloc";
    return "c-preload";
}

static inline uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* lo + a number in [0, span) taken from the top 32 bits of r. */
static inline size_t pick(uint64_t r, uint64_t lo, uint64_t span) {
    return (size_t)(lo + (((r >> 32) * span) >> 32));
}

/* Sum of (k & 0xff) for k in [0, n). */
static uint64_t byte_sum(uint64_t n) {
    return (n / 256) * (255 * 256 / 2) + (n % 256) * (n % 256 - 1) / 2;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        printf("BAD malloc(%zu) returned NULL\n", n);
        exit(1);
    }
    return p;
}

/* ---- hot-S ---------------------------------------------------------------- */

static uint64_t run_hot(size_t size, long n, long long *ns) {
    uint64_t ck = 0;
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) {
        unsigned char *p = malloc(size);
        p[0] = (unsigned char)i;
        sink = p;
        ck += ((unsigned char *)sink)[0];
        free(sink);
    }
    *ns = now_ns() - t0;
    return ck;
}

/* ---- fifo ----------------------------------------------------------------- */

#define FIFO_LIVE 10000
#define FIFO_MIN  16
#define FIFO_MAX  512

static unsigned char *fifo_ring[FIFO_LIVE];

static uint64_t run_fifo(long n, long long *ns) {
    uint64_t rng = SEED, ck = 0, k = 0;
    for (int s = 0; s < FIFO_LIVE; s++, k++) {
        fifo_ring[s] = xmalloc(pick(splitmix64(&rng), FIFO_MIN, FIFO_MAX - FIFO_MIN + 1));
        fifo_ring[s][0] = (unsigned char)k;
    }
    long long t0 = now_ns();
    int s = 0;
    for (long i = 0; i < n; i++, k++) {
        unsigned char *old = fifo_ring[s];
        ck += old[0];
        free(old);
        unsigned char *p = malloc(pick(splitmix64(&rng), FIFO_MIN, FIFO_MAX - FIFO_MIN + 1));
        p[0] = (unsigned char)k;
        fifo_ring[s] = p;
        if (++s == FIFO_LIVE) s = 0;
    }
    *ns = now_ns() - t0;
    for (int j = 0; j < FIFO_LIVE; j++) { /* oldest first */
        ck += fifo_ring[s][0];
        free(fifo_ring[s]);
        if (++s == FIFO_LIVE) s = 0;
    }
    return ck;
}

/* ---- random --------------------------------------------------------------- */

#define RAND_SLOTS 100000
#define SLOT_MINSZ 8
#define SLOT_MAXSZ 4096

static unsigned char *rand_slot[RAND_SLOTS];

static uint64_t run_random(long n, long long *ns) {
    uint64_t rng = SEED, ck = 0, k = 0;
    for (int s = 0; s < RAND_SLOTS; s++, k++) {
        rand_slot[s] = xmalloc(pick(splitmix64(&rng), SLOT_MINSZ, SLOT_MAXSZ - SLOT_MINSZ + 1));
        rand_slot[s][0] = (unsigned char)k;
    }
    long long t0 = now_ns();
    for (long i = 0; i < n; i++, k++) {
        uint64_t r = splitmix64(&rng);
        size_t s = pick(r, 0, RAND_SLOTS);
        size_t size = pick(r << 32, SLOT_MINSZ, SLOT_MAXSZ - SLOT_MINSZ + 1);
        unsigned char *old = rand_slot[s];
        ck += old[0];
        free(old);
        unsigned char *p = malloc(size);
        p[0] = (unsigned char)k;
        rand_slot[s] = p;
    }
    *ns = now_ns() - t0;
    for (int s = 0; s < RAND_SLOTS; s++) {
        ck += rand_slot[s][0];
        free(rand_slot[s]);
    }
    return ck;
}

/* ---- xthread -------------------------------------------------------------- */

#define Q_CAP   1024 /* power of two, multiple of Q_BATCH */
#define Q_BATCH 64
#define XT_MIN  64
#define XT_MAX  256

static struct {
    _Alignas(64) _Atomic uint64_t head; /* written by the producer */
    _Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
    _Alignas(64) _Atomic int ready;
    _Alignas(64) unsigned char *slot[Q_CAP];
} q;

static inline void cpu_relax(unsigned *spins) {
    if (++*spins < 4096) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        sched_yield();
    }
}

struct consumer_arg {
    long n;
    uint64_t ck, count;
};

/* The producer publishes head after every Q_BATCH items and at the end, and
 * Q_CAP is a multiple of Q_BATCH, so every published head below the end is a
 * multiple of Q_BATCH: the consumer, publishing its tail every Q_BATCH items,
 * always publishes when it catches up with head, and neither side can wait
 * for the other forever. */
static void *consumer(void *argp) {
    struct consumer_arg *a = argp;
    uint64_t tail = 0, head = 0, ck = 0;
    atomic_store_explicit(&q.ready, 1, memory_order_release);
    while (tail < (uint64_t)a->n) {
        if (tail == head) {
            unsigned spins = 0;
            while ((head = atomic_load_explicit(&q.head, memory_order_acquire)) == tail)
                cpu_relax(&spins);
        }
        unsigned char *p = q.slot[tail & (Q_CAP - 1)];
        ck += p[0];
        free(p);
        if (++tail % Q_BATCH == 0) atomic_store_explicit(&q.tail, tail, memory_order_release);
    }
    a->ck = ck;
    a->count = tail;
    return NULL;
}

static uint64_t run_xthread(long n, long long *ns) {
    struct consumer_arg a = {.n = n};
    pthread_t th;
    if (pthread_create(&th, NULL, consumer, &a) != 0) {
        printf("BAD pthread_create\n");
        exit(1);
    }
    while (!atomic_load_explicit(&q.ready, memory_order_acquire)) sched_yield();
    uint64_t rng = SEED, head = 0, tail = 0;
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (head - tail == Q_CAP) {
            unsigned spins = 0;
            while (head - (tail = atomic_load_explicit(&q.tail, memory_order_acquire)) == Q_CAP)
                cpu_relax(&spins);
        }
        unsigned char *p = malloc(pick(splitmix64(&rng), XT_MIN, XT_MAX - XT_MIN + 1));
        p[0] = (unsigned char)i;
        q.slot[head & (Q_CAP - 1)] = p;
        if (++head % Q_BATCH == 0) atomic_store_explicit(&q.head, head, memory_order_release);
    }
    atomic_store_explicit(&q.head, head, memory_order_release);
    pthread_join(th, NULL);
    *ns = now_ns() - t0;
    if (a.count != (uint64_t)n) {
        printf("BAD xthread consumer freed %" PRIu64 " blocks, want %ld\n", a.count, n);
        exit(1);
    }
    return a.ck;
}

/* ---- xbatch -------------------------------------------------------------- */

#define XB_BATCH   4096
#define XB_QUEUE   32 /* batches queued at most */
#define XB_THREADS 2  /* producers, and as many consumers */
#define XB_MIN     16
#define XB_MAX     256

struct xb_batch {
    struct xb_batch *next;
    unsigned char *obj[XB_BATCH];
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t nonempty, nonfull;
    struct xb_batch *head, *tail; /* FIFO of full batches */
    struct xb_batch *spare;       /* emptied batches, for the producers */
    int queued, producers_left;
} xb = {.lock = PTHREAD_MUTEX_INITIALIZER,
        .nonempty = PTHREAD_COND_INITIALIZER,
        .nonfull = PTHREAD_COND_INITIALIZER};

static struct xb_batch xb_pool[XB_QUEUE + 2 * XB_THREADS + 1];

struct xb_arg {
    long blocks; /* producer: blocks to allocate */
    int id;
    uint64_t ck, count; /* consumer: checksum and blocks freed */
};

static void *xb_producer(void *argp) {
    struct xb_arg *a = argp;
    uint64_t rng = SEED + (uint64_t)a->id;
    for (long k = 0; k < a->blocks;) {
        pthread_mutex_lock(&xb.lock);
        while (xb.queued >= XB_QUEUE || !xb.spare) pthread_cond_wait(&xb.nonfull, &xb.lock);
        struct xb_batch *b = xb.spare;
        xb.spare = b->next;
        pthread_mutex_unlock(&xb.lock);
        long n = a->blocks - k < XB_BATCH ? a->blocks - k : XB_BATCH;
        for (long i = 0; i < n; i++, k++) {
            b->obj[i] = xmalloc(pick(splitmix64(&rng), XB_MIN, XB_MAX - XB_MIN + 1));
            b->obj[i][0] = (unsigned char)k;
        }
        for (long i = n; i < XB_BATCH; i++) b->obj[i] = NULL;
        pthread_mutex_lock(&xb.lock);
        b->next = NULL;
        if (xb.tail)
            xb.tail->next = b;
        else
            xb.head = b;
        xb.tail = b;
        xb.queued++;
        pthread_cond_signal(&xb.nonempty);
        pthread_mutex_unlock(&xb.lock);
    }
    pthread_mutex_lock(&xb.lock);
    xb.producers_left--;
    pthread_cond_broadcast(&xb.nonempty);
    pthread_mutex_unlock(&xb.lock);
    return NULL;
}

static void *xb_consumer(void *argp) {
    struct xb_arg *a = argp;
    for (;;) {
        pthread_mutex_lock(&xb.lock);
        while (!xb.head && xb.producers_left) pthread_cond_wait(&xb.nonempty, &xb.lock);
        struct xb_batch *b = xb.head;
        if (b) {
            xb.head = b->next;
            if (!xb.head) xb.tail = NULL;
            xb.queued--;
        }
        pthread_mutex_unlock(&xb.lock);
        if (!b) break;
        for (int i = 0; i < XB_BATCH && b->obj[i]; i++) {
            a->ck += b->obj[i][0];
            free(b->obj[i]);
            a->count++;
        }
        pthread_mutex_lock(&xb.lock);
        b->next = xb.spare;
        xb.spare = b;
        pthread_cond_signal(&xb.nonfull);
        pthread_mutex_unlock(&xb.lock);
    }
    return NULL;
}

static uint64_t run_xbatch(long n, long long *ns) {
    for (size_t i = 0; i < sizeof xb_pool / sizeof xb_pool[0]; i++) {
        xb_pool[i].next = xb.spare;
        xb.spare = &xb_pool[i];
    }
    xb.producers_left = XB_THREADS;
    struct xb_arg prod[XB_THREADS], cons[XB_THREADS];
    pthread_t th[2 * XB_THREADS];
    long long t0 = now_ns();
    for (int t = 0; t < XB_THREADS; t++) {
        prod[t] = (struct xb_arg){.blocks = n / XB_THREADS + (t < n % XB_THREADS), .id = t};
        cons[t] = (struct xb_arg){.id = t};
        if (pthread_create(&th[2 * t], NULL, xb_consumer, &cons[t]) != 0 ||
            pthread_create(&th[2 * t + 1], NULL, xb_producer, &prod[t]) != 0) {
            printf("BAD pthread_create\n");
            exit(1);
        }
    }
    for (int t = 0; t < 2 * XB_THREADS; t++) pthread_join(th[t], NULL);
    *ns = now_ns() - t0;
    uint64_t ck = 0, count = 0;
    for (int t = 0; t < XB_THREADS; t++) {
        ck += cons[t].ck;
        count += cons[t].count;
    }
    if (count != (uint64_t)n) {
        printf("BAD xbatch consumers freed %" PRIu64 " blocks, want %ld\n", count, n);
        exit(1);
    }
    return ck;
}

/* ---- main ----------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size; /* hot-S only */
    long n;
} patterns[] = {
    {"hot-16", 16, 50000000L},     {"hot-64", 64, 50000000L},       {"hot-256", 256, 50000000L},
    {"hot-4096", 4096, 20000000L}, {"hot-65536", 65536, 20000000L}, {"fifo", 0, 20000000L},
    {"random", 0, 4000000L},       {"xthread", 0, 4000000L},        {"xbatch", 0, 16777216L},
};

int main(int argc, char **argv) {
    int np = (int)(sizeof patterns / sizeof patterns[0]);
    int pi = -1;
    if (argc >= 2)
        for (int i = 0; i < np; i++)
            if (strcmp(argv[1], patterns[i].name) == 0) pi = i;
    if (pi < 0) {
        fprintf(stderr, "usage: mallocbench PATTERN [iterations]\npatterns:");
        for (int i = 0; i < np; i++) fprintf(stderr, " %s", patterns[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    long n = patterns[pi].n;
    if (argc >= 3) {
        char *end;
        n = strtol(argv[2], &end, 10);
        if (*end || n <= 0) {
            fprintf(stderr, "mallocbench: bad iteration count '%s'\n", argv[2]);
            return 2;
        }
    }
    const char *name = patterns[pi].name;
    const char *peer = peer_label();
    long long ns = 0;
    uint64_t ck, want;
    if (strncmp(name, "hot-", 4) == 0) {
        ck = run_hot(patterns[pi].size, n, &ns);
        want = byte_sum((uint64_t)n);
    } else if (strcmp(name, "fifo") == 0) {
        ck = run_fifo(n, &ns);
        want = byte_sum((uint64_t)n + FIFO_LIVE);
    } else if (strcmp(name, "random") == 0) {
        ck = run_random(n, &ns);
        want = byte_sum((uint64_t)n + RAND_SLOTS);
    } else if (strcmp(name, "xthread") == 0) {
        ck = run_xthread(n, &ns);
        want = byte_sum((uint64_t)n);
    } else {
        ck = run_xbatch(n, &ns);
        want = 0;
        for (long t = 0; t < XB_THREADS; t++)
            want += byte_sum((uint64_t)(n / XB_THREADS + (t < n % XB_THREADS)));
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("INFO pattern=%s iterations=%ld checksum=%" PRIu64 " elapsed=%.3f s\n", name, n, ck,
           (double)ns / 1e9);
    if (ck != want) {
        printf("BAD checksum %" PRIu64 ", want %" PRIu64 "\n", ck, want);
        return 1;
    }
    printf("RESULT malloc-%s %s peak_rss=%ld KiB\n", name, peer, ru.ru_maxrss);
    printf("RESULT malloc-%s %s pair=%.2f ns\n", name, peer, (double)ns / (double)n);
    return 0;
}
