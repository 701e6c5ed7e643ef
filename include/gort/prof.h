/* Profiling and debugging, as Go's runtime/pprof, runtime/trace,
 * runtime/metrics, net/http/pprof, expvar and testing.B (docs/profiling.md
 * is the guide).
 *
 * Profiles are written in pprof's protobuf format, gzip'd when gort was
 * built with zlib, symbolized (function, file and line) and with mappings
 * and build IDs, so that `go tool pprof` and `pprof` read them as they are.
 * Every call returns 0 (or a count) or a negative errno; fd may be any
 * descriptor (a file, a pipe, a socket gort polls), from a goroutine or a
 * plain thread. */
#ifndef GORT_PROF_H
#define GORT_PROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gort/config.h"

GORT_EXTERN_C_BEGIN

/* ---- profiles (Go's runtime/pprof) ---- */

/* runtime.MemProfileRate: on average one allocation sampled per rate bytes
 * (default 512 KiB, GORT_MEMPROFILERATE); 0 turns sampling off, 1 samples
 * every allocation. Returns the previous rate (negative: -EINVAL). */
GORT_API int gort_set_memprofile_rate(int bytes);
/* The heap profile (inuse_space by default) and the allocs profile
 * (alloc_space by default): the same samples, of the GC heap and of
 * gort_malloc alike. */
GORT_API int gort_write_heap_profile(int fd);
GORT_API int gort_write_allocs_profile(int fd);
/* debug 0: pprof protobuf; 1: the stacks with their counts, as text; 2:
 * every goroutine's stack, as the fatal-error dump prints it. */
GORT_API int gort_write_goroutine_profile(int fd, int debug);
/* Contention on gort mutexes and runtime locks (the unlocker's stack, as
 * Go's mutex profile), and goroutines blocked on channels, select, sync and
 * I/O (the blocked goroutine's stack). */
GORT_API int gort_write_mutex_profile(int fd);
GORT_API int gort_write_block_profile(int fd);
/* runtime.SetMutexProfileFraction: on average 1/rate contention events are
 * reported (0 off, the default; < 0 only queries). Returns the previous. */
GORT_API int gort_set_mutex_profile_fraction(int rate);
/* runtime.SetBlockProfileRate: one blocking event sampled per rate
 * nanoseconds spent blocked (1 every event, <= 0 off). */
GORT_API void gort_set_block_profile_rate(int rate);

/* The CPU profile: SIGPROF from per-thread CPU timers, 100 Hz (or
 * GORT_CPUPROFILERATE, 1 to 1000, read at each start), every thread of the process; samples
 * attributed to the goroutine that was running (a "goroutine" label). Written to fd by stop. -EBUSY
 * if one is running. */
GORT_API int gort_cpu_profile_start(int fd);
GORT_API int gort_cpu_profile_stop(void);

/* The execution trace: goroutine, processor, syscall and GC events as
 * Chrome trace-event JSON (Perfetto and chrome://tracing open it), written
 * to fd as it runs and finished by stop. -EBUSY if one is running. */
GORT_API int gort_trace_start(int fd);
GORT_API int gort_trace_stop(void);

/* ---- runtime/metrics ---- */

typedef enum gort_metric_kind {
    GORT_METRIC_BAD = 0, /* unknown name */
    GORT_METRIC_UINT64 = 1,
    GORT_METRIC_FLOAT64 = 2,
    GORT_METRIC_HISTOGRAM = 3,
} gort_metric_kind;

/* metrics.Float64Histogram: counts[i] samples fell in [buckets[i],
 * buckets[i + 1]); buckets has ncounts + 1 boundaries (the first may be
 * -INFINITY, the last +INFINITY) and points at constant data. counts is the
 * caller's if it has room (cap), else gort_read_metrics allocates it with
 * gort_malloc (free it with gort_free) and sets cap. */
typedef struct gort_metric_histogram {
    uint64_t *counts;
    size_t ncounts;
    size_t cap;
    const double *buckets;
} gort_metric_histogram;

typedef struct gort_metric {
    const char *name; /* set by the caller: "/gc/pauses:seconds", ... */
    gort_metric_kind kind;
    union {
        uint64_t u64;
        double f64;
        gort_metric_histogram hist;
    } value;
} gort_metric;

typedef struct gort_metric_desc {
    const char *name;
    const char *description;
    gort_metric_kind kind;
    bool cumulative;
} gort_metric_desc;

/* metrics.Read: fills each sample whose name is known (kind and value);
 * others get GORT_METRIC_BAD. Returns how many were known. */
GORT_API int gort_read_metrics(gort_metric *samples, size_t n);
/* metrics.All: every metric, sorted by name, ended by an entry whose name
 * is NULL. */
GORT_API const gort_metric_desc *gort_all_metrics(void);

/* ---- the /debug endpoint (net/http/pprof and expvar) ---- */

/* Serves /debug/vars and /debug/pprof/ on gort's goroutines and netpoller.
 * host_port: "127.0.0.1:6060"; a missing host (":6060", NULL or "" for
 * port 6060) means loopback: another interface only when asked by name
 * ("0.0.0.0:6060"). Port 0 picks a free one. Returns the port it listens
 * on, or a negative errno (-EPERM outside a goroutine). */
GORT_API int gort_debug_serve(const char *host_port);
/* Publishes *value (read at each request) in /debug/vars under name. */
GORT_API void gort_expvar_int(const char *name, const int64_t *value);
/* Publishes what fn writes: one JSON value into json (at most cap bytes);
 * fn returns its length, or a negative number to publish null. */
GORT_API void gort_expvar_func(const char *name, int (*fn)(char *json, size_t cap, void *arg),
                               void *arg);

/* ---- benchmarks (testing.B) ---- */

typedef struct gort_b {
    int64_t n; /* iterations to run: loop for (i = 0; i < b->n; i++) */
    /* Private. */
    int64_t start_ns, elapsed_ns;
    uint64_t start_allocs, start_bytes, allocs, bytes;
    bool timer_on, report_allocs, failed;
    int64_t set_bytes;
} gort_b;

typedef struct gort_benchmark {
    const char *name; /* "Foo": printed as BenchmarkFoo-P */
    void (*fn)(gort_b *b);
} gort_benchmark;

GORT_API void gort_b_reset_timer(gort_b *b);
GORT_API void gort_b_start_timer(gort_b *b);
GORT_API void gort_b_stop_timer(gort_b *b);
GORT_API void gort_b_report_allocs(gort_b *b);
GORT_API void gort_b_set_bytes(gort_b *b, int64_t n); /* bytes per op: adds MB/s */

/* Runs the benchmarks as `go test -bench` does, each to its benchtime, and
 * prints Go's lines ("BenchmarkX-2   1000000   1041 ns/op   64 B/op   1
 * allocs/op") on stdout, which benchstat reads. Flags (also with a -test.
 * prefix): -bench REGEXP (default "."), -benchtime 1s|100x, -count N,
 * -benchmem, -cpu N (GOMAXPROCS). Starts the runtime (gort_main) unless a
 * goroutine calls it. Returns 0, or 1 if a benchmark failed. */
GORT_API int gort_bench_main(int argc, char **argv, const gort_benchmark *benchmarks, size_t n);

GORT_EXTERN_C_END

#endif
