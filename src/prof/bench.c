/* Benchmarks as Go's testing.B (benchmark.go): each function runs with
 * b->n = 1, then with n predicted from the time per op (at most 100x the
 * last n, 20% over the prediction, at least n + 1) until one run lasts the
 * benchtime; the last run is reported in Go's format, which benchstat
 * reads:
 *
 *     BenchmarkFoo-2   	 1000000	      1041 ns/op	      64 B/op	       1
 * allocs/op
 *
 * (the -P suffix is GOMAXPROCS when above 1; B/op and allocs/op with
 * -benchmem or gort_b_report_allocs, from MemStats' total_alloc and
 * mallocs, GC heap and gort_malloc alike), after Go's goos/goarch/cpu
 * header, and followed by PASS or FAIL. */
#define _GNU_SOURCE
#include "prof/prof.h"

#include "gort/memstats.h"
#include "gort/prof.h"
#include "gort/sched.h"
#include "sched/runtime2.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void read_alloc(uint64_t *allocs, uint64_t *bytes) {
    gort_memstats ms;
    gort_read_memstats(&ms);
    *allocs = ms.mallocs;
    *bytes = ms.total_alloc;
}

GORT_API void gort_b_start_timer(gort_b *b) {
    if (b->timer_on) return;
    read_alloc(&b->start_allocs, &b->start_bytes);
    b->start_ns = prof_nanotime();
    b->timer_on = true;
}

GORT_API void gort_b_stop_timer(gort_b *b) {
    if (!b->timer_on) return;
    b->elapsed_ns += prof_nanotime() - b->start_ns;
    uint64_t a, by;
    read_alloc(&a, &by);
    b->allocs += a - b->start_allocs;
    b->bytes += by - b->start_bytes;
    b->timer_on = false;
}

GORT_API void gort_b_reset_timer(gort_b *b) {
    if (b->timer_on) {
        read_alloc(&b->start_allocs, &b->start_bytes);
        b->start_ns = prof_nanotime();
    }
    b->elapsed_ns = 0;
    b->allocs = b->bytes = 0;
}

GORT_API void gort_b_report_allocs(gort_b *b) {
    b->report_allocs = true;
}

GORT_API void gort_b_set_bytes(gort_b *b, int64_t n) {
    b->set_bytes = n;
}

static void run_n(gort_b *b, const gort_benchmark *bm, int64_t n) {
    bool report = b->report_allocs;
    int64_t bytes = b->set_bytes;
    memset(b, 0, sizeof *b);
    b->report_allocs = report;
    b->set_bytes = bytes;
    b->n = n;
    gort_b_start_timer(b);
    bm->fn(b);
    gort_b_stop_timer(b);
}

/* Go's prettyPrint. */
static void pretty(char *out, size_t cap, double x, const char *unit) {
    double y = x < 0 ? -x : x;
    const char *f = y == 0 || y >= 999.95 ? "%10.0f %s"
                    : y >= 99.995         ? "%12.1f %s"
                    : y >= 9.9995         ? "%13.2f %s"
                    : y >= 0.99995        ? "%14.3f %s"
                    : y >= 0.099995       ? "%15.4f %s"
                    : y >= 0.0099995      ? "%16.5f %s"
                    : y >= 0.00099995     ? "%17.6f %s"
                                          : "%18.7f %s";
    snprintf(out, cap, f, x, unit);
}

static struct {
    int argc;
    char **argv;
    const gort_benchmark *list;
    size_t n;
    int result;
} bm_args;

static const char *flag_value(int argc, char **argv, int *i, const char *name) {
    const char *a = argv[*i];
    if (a[0] != '-') return NULL;
    a++;
    if (a[0] == '-') a++;
    if (strncmp(a, "test.", 5) == 0) a += 5;
    size_t l = strlen(name);
    if (strncmp(a, name, l) != 0) return NULL;
    if (a[l] == '=') return a + l + 1;
    if (a[l] == 0 && *i + 1 < argc) return argv[++*i];
    return NULL;
}

static bool flag_bool(const char *arg, const char *name) {
    const char *a = arg;
    if (a[0] != '-') return false;
    a++;
    if (a[0] == '-') a++;
    if (strncmp(a, "test.", 5) == 0) a += 5;
    return strcmp(a, name) == 0 ||
           (strncmp(a, name, strlen(name)) == 0 && strcmp(a + strlen(name), "=true") == 0);
}

static void cpu_model(char *out, size_t cap) {
    out[0] = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *c = strchr(line, ':');
        if (!c) break;
        c++;
        while (*c == ' ' || *c == '\t') c++;
        size_t l = strcspn(c, "\n");
        if (l >= cap) l = cap - 1;
        memcpy(out, c, l);
        out[l] = 0;
        break;
    }
    fclose(f);
}

static int bench_run(int argc, char **argv) {
    const char *pattern = ".";
    int64_t benchtime_ns = 1000000000, benchtime_n = 0;
    int count = 1, cpus = 0;
    bool benchmem = false;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = flag_value(argc, argv, &i, "bench"))) {
            pattern = v;
        } else if ((v = flag_value(argc, argv, &i, "benchtime"))) {
            size_t l = strlen(v);
            if (l > 1 && v[l - 1] == 'x') {
                benchtime_n = atoll(v);
            } else {
                double x = atof(v);
                double mult = strstr(v, "ms")   ? 1e6
                              : strstr(v, "us") ? 1e3
                              : strstr(v, "ns") ? 1
                              : strchr(v, 'm')  ? 60e9
                                                : 1e9;
                benchtime_ns = (int64_t)(x * mult);
            }
        } else if ((v = flag_value(argc, argv, &i, "count"))) {
            count = atoi(v);
            if (count < 1) count = 1;
        } else if ((v = flag_value(argc, argv, &i, "cpu"))) {
            cpus = atoi(v);
        } else if (flag_bool(argv[i], "benchmem")) {
            benchmem = true;
        }
    }
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
        fprintf(stderr, "invalid regexp for -bench: %s\n", pattern);
        return 1;
    }
    if (cpus > 0) gort_gomaxprocs(cpus);
    int procs = gort_gomaxprocs(0);
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    printf("goos: linux\ngoarch: amd64\npkg: %s\n", argc > 0 ? argv[0] : "gort");
    if (cpu[0]) printf("cpu: %s\n", cpu);
    fflush(stdout);
    int64_t t_start = prof_nanotime();
    bool failed = false;
    for (size_t k = 0; k < bm_args.n; k++) {
        const gort_benchmark *bm = &bm_args.list[k];
        char name[256];
        snprintf(name, sizeof name, "Benchmark%s", bm->name ? bm->name : "?");
        if (regexec(&re, name, 0, NULL, 0) != 0) continue;
        if (procs > 1) snprintf(name + strlen(name), sizeof name - strlen(name), "-%d", procs);
        for (int c = 0; c < count; c++) {
            gort_b b;
            memset(&b, 0, sizeof b);
            b.report_allocs = benchmem;
            int64_t n = 1;
            run_n(&b, bm, n);
            if (benchtime_n > 0) {
                if (benchtime_n > 1) run_n(&b, bm, benchtime_n);
            } else {
                while (!b.failed && b.elapsed_ns < benchtime_ns && n < 1000000000) {
                    int64_t last = n;
                    int64_t prev_ns = b.elapsed_ns > 0 ? b.elapsed_ns : 1;
                    double goal = (double)benchtime_ns * 1.2 * (double)last / (double)prev_ns;
                    int64_t next = goal > 1e9 ? 1000000000 : (int64_t)goal;
                    if (next > 100 * last) next = 100 * last;
                    if (next < last + 1) next = last + 1;
                    n = next;
                    run_n(&b, bm, n);
                }
            }
            if (b.failed) {
                printf("--- FAIL: %s\n", name);
                failed = true;
                continue;
            }
            char line[512], tmp[64];
            size_t l = (size_t)snprintf(line, sizeof line, "%-24s\t%8lld", name, (long long)b.n);
            double ns = (double)b.elapsed_ns / (double)b.n;
            if (ns != 0) {
                pretty(tmp, sizeof tmp, ns, "ns/op");
                l += (size_t)snprintf(line + l, sizeof line - l, "\t%s", tmp);
            }
            if (b.set_bytes > 0 && b.elapsed_ns > 0) {
                double mbs = (double)b.set_bytes * (double)b.n / 1e6 / ((double)b.elapsed_ns / 1e9);
                l += (size_t)snprintf(line + l, sizeof line - l, "\t%7.2f MB/s", mbs);
            }
            if (b.report_allocs)
                l += (size_t)snprintf(line + l, sizeof line - l, "\t%8llu B/op\t%8llu allocs/op",
                                      (unsigned long long)(b.bytes / (uint64_t)b.n),
                                      (unsigned long long)(b.allocs / (uint64_t)b.n));
            printf("%s\n", line);
            fflush(stdout);
        }
    }
    regfree(&re);
    int64_t took = prof_nanotime() - t_start;
    printf("%s\nok  \t%s\t%lld.%03llds\n", failed ? "FAIL" : "PASS", argc > 0 ? argv[0] : "gort",
           (long long)(took / 1000000000), (long long)(took / 1000000 % 1000));
    fflush(stdout);
    return failed ? 1 : 0;
}

static int bench_main_g(int argc, char **argv) {
    return bench_run(argc, argv);
}

GORT_API int gort_bench_main(int argc, char **argv, const gort_benchmark *benchmarks, size_t n) {
    prof_init();
    bm_args.argc = argc;
    bm_args.argv = argv;
    bm_args.list = benchmarks;
    bm_args.n = benchmarks ? n : 0;
    if (sched_getg()) return bench_run(argc, argv);
    return gort_main(bench_main_g, argc, argv);
}
