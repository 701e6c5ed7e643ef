/* memlimit with gort's collector (bench/peers/README.md, workload 14; peer:
 * memlimit/main.go, run with GOGC=off GOMEMLIMIT=400MiB and with the
 * defaults).
 *
 * A live list of LIVE MiB of 4 KiB objects (struct big: the first word
 * points to the next, GORT_TYPE with next as its pointer field), then
 * GARBAGE MiB of 1 KiB objects (struct small, the same shape), each linked
 * to the one before with GORT_STORE through a global sink that is dropped
 * every 64 objects. At the end the live list is walked and counted.
 *
 * Usage: memlimit_gort [live_MiB] [garbage_MiB]   (defaults 256, 4096)
 * One goroutine under gort_main, GOMAXPROCS 2 unless GORT_GOMAXPROCS says
 * otherwise (peer name gort-p<N>). Run it with GORT_GOGC=off
 * GORT_GOMEMLIMIT=400MiB, and with neither.
 * Figures, on one RESULT line as the Go peer's: wall (ms, from before the
 * live list is built to the end of the allocation loop), peak_rss (MiB,
 * VmHWM) and num_gc; an INFO line adds the GC CPU fraction, the limiter's
 * figures and the heap at the end. */
#include "gort/gc.h"
#include "gort/memstats.h"
#include "gort/sched.h"

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct big {
    struct big *next;
    char pad[4096 - 8];
};
GORT_TYPE(big, next);

struct small {
    struct small *next;
    char pad[1024 - 8];
};
GORT_TYPE(small, next);

static struct big *live; /* globals: scanned as roots */
static struct small *sink;

static long hwm_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) v = atol(line + 6) / 1024;
    fclose(f);
    return v;
}

static void oom(void) {
    printf("BAD out of memory\n");
    exit(1);
}

static int run(int argc, char **argv) {
    long live_mib = 256, garbage_mib = 4096;
    if (argc > 2) {
        live_mib = atol(argv[1]);
        garbage_mib = atol(argv[2]);
    }
    long long t0 = now_ns();
    for (long i = 0; i < live_mib * 256; i++) {
        struct big *b = gort_new(&big_type);
        if (!b) oom();
        GORT_STORE(b->next, live);
        GORT_STORE(live, b);
    }
    for (long i = 0; i < garbage_mib * 1024; i++) {
        struct small *s = gort_new(&small_type);
        if (!s) oom();
        GORT_STORE(s->next, sink);
        if (i % 64 == 0)
            GORT_STORE(sink, NULL);
        else
            GORT_STORE(sink, s);
    }
    double wall = (now_ns() - t0) / 1e6;
    gort_memstats ms;
    gort_read_memstats(&ms);
    long n = 0;
    for (struct big *p = live; p; p = p->next) n++;
    if (n != live_mib * 256) {
        printf("BAD live list length %ld\n", n);
        return 1;
    }
    printf("INFO gc_cpu_fraction=%.3f heap_inuse=%llu MiB heap_sys=%llu MiB sys=%llu MiB"
           " heap_released=%llu MiB next_gc=%llu MiB\n",
           ms.gc_cpu_fraction, (unsigned long long)(ms.heap_inuse >> 20),
           (unsigned long long)(ms.heap_sys >> 20), (unsigned long long)(ms.sys >> 20),
           (unsigned long long)(ms.heap_released >> 20), (unsigned long long)(ms.next_gc >> 20));
    printf("RESULT memlimit gort-p%d wall=%.1f ms peak_rss=%ld MiB num_gc=%u\n", gort_gomaxprocs(0),
           wall, hwm_mib(), ms.num_gc);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (!getenv("GORT_GOMAXPROCS")) gort_gomaxprocs(2);
    return gort_main(run, argc, argv);
}
