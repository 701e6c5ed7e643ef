/* The profiling layer's internal interface (src/prof): the pprof encoder and
 * symbolizer (pprof.c), the profile buckets (mprof.c), and what the other
 * files share. The public API is include/gort/prof.h; docs/profiling.md is
 * the guide.
 *
 * The layer sits above every other (docs/HACKING.md, "Layers and hooks"):
 * the allocator, the scheduler, sync and the collector reach it only
 * through hooks it installs (mem/msample.h, sched/schedtrace.h, gc.h's
 * gc_trace_hook, base/lock.h's lock_contended_hook), so a program that
 * never calls a profiling function links none of it.
 *
 * Memory: profile output is built in gort_malloc'd buffers (this layer is
 * never in libgort-malloc.so); bucket records, which hooks create inside
 * the allocator, come from persistent_alloc. */
#ifndef GORT_PROF_PROF_H
#define GORT_PROF_PROF_H

#include "base/lock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define debug_http_parse     gort__debug_http_parse
#define debug_http_query_int gort__debug_http_query_int
#define pbuf_bytes           gort__pbuf_bytes
#define pbuf_free            gort__pbuf_free
#define pbuf_printf          gort__pbuf_printf
#define pbuf_tag             gort__pbuf_tag
#define pbuf_varint          gort__pbuf_varint
#define pbuf_write_fd        gort__pbuf_write_fd
#define pprof_add_sample     gort__pprof_add_sample
#define pprof_begin          gort__pprof_begin
#define pprof_finish         gort__pprof_finish
#define pprof_free           gort__pprof_free
#define pprof_string         gort__pprof_string
#define prof_bucket_bytes    gort__prof_bucket_bytes
#define prof_callers         gort__prof_callers
#define prof_frame_is_gort   gort__prof_frame_is_gort
#define prof_gc_event        gort__prof_gc_event
#define prof_init            gort__prof_init
#define prof_metrics_init    gort__prof_metrics_init
#define prof_trace_gc        gort__prof_trace_gc
#define prof_trace_running   gort__prof_trace_running
#define prof_nanotime        gort__prof_nanotime
#define prof_trim_stack      gort__prof_trim_stack
#define prof_unix_nanos      gort__prof_unix_nanos

/* ---- a growable byte buffer (gort_malloc'd) ---- */

typedef struct pbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom; /* an append failed: the contents are incomplete */
} pbuf;

void pbuf_bytes(pbuf *b, const void *p, size_t n);
void pbuf_printf(pbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pbuf_free(pbuf *b);
/* Writes b to fd (gzip'd when gz and zlib is there); 0 or a negative errno. */
int pbuf_write_fd(const pbuf *b, int fd, bool gz);
/* Protobuf primitives. */
void pbuf_varint(pbuf *b, uint64_t v);
void pbuf_tag(pbuf *b, unsigned field, unsigned wire);

/* ---- building a profile.proto message ---- */

typedef struct pprof_value_type {
    const char *type, *unit;
} pprof_value_type;

typedef struct pprof_label {
    const char *key;
    const char *str; /* or NULL: num */
    int64_t num;
    const char *unit; /* of num, or NULL */
} pprof_label;

struct pprof_tables; /* pprof.c: strings, locations, functions */

typedef struct pprof {
    pbuf out;
    struct pprof_tables *t;
    int nvalues;
} pprof;

/* Starts a profile with these sample types, period type and period. */
int pprof_begin(pprof *p, const pprof_value_type *types, int ntypes, pprof_value_type period_type,
                int64_t period);
/* One sample: its stack (return addresses, leaf first; the leaf is an
 * interrupted pc when leaf_is_pc), values (ntypes of them), labels. */
void pprof_add_sample(pprof *p, const uintptr_t *pcs, int npcs, bool leaf_is_pc,
                      const int64_t *values, const pprof_label *labels, int nlabels);
/* The string's index in the table (interned). */
int64_t pprof_string(pprof *p, const char *s);
/* Adds the locations, functions, mappings, times and default sample type,
 * and writes the message to fd (gzip'd). 0 or a negative errno. */
int pprof_finish(pprof *p, int fd, int64_t time_ns, int64_t duration_ns, const char *default_type);
void pprof_free(pprof *p);

/* ---- stacks ---- */

/* Whether the function at pc (a return address) is gort's own code (its
 * source is under gort's src/ tree, or, without line tables, its name
 * starts with gort_). Cached per pc. */
bool prof_frame_is_gort(uintptr_t pc);
/* How many leading frames of a recorded stack to drop: the gort-internal
 * ones; keep_api keeps the outermost public gort_ function among them
 * (gort_chan_recv in a block profile, as Go shows runtime.chanrecv1). */
int prof_trim_stack(const uintptr_t *pcs, int n, bool keep_api);

/* The calling goroutine's (or thread's) stack, from its caller's frame:
 * a frame-pointer walk bounded by its stack. */
int prof_callers(uintptr_t *pcs, int max);
/* Bytes of profile buckets (persistent memory). */
extern uint64_t prof_bucket_bytes;

/* metrics.c: installs the latency and pause hooks (from prof_init). */
void prof_metrics_init(void);
/* trace.c: a GC event for the execution trace (metrics.c's GC hook
 * forwards every event). */
void prof_trace_gc(int ev, uint64_t arg);

/* trace.c: whether a trace session is running. */
bool prof_trace_running(void);

/* ---- the /debug endpoint's request parser (debughttp.c; fuzzed by the tests) ---- */

#define DEBUG_HTTP_MAX_HEADER 8192
#define DEBUG_HTTP_MAX_BODY   65536
enum { DEBUG_HTTP_OK = 1, DEBUG_HTTP_BAD = -1, DEBUG_HTTP_TOO_LONG = -2 };

typedef struct debug_http_req {
    char method[16];
    char target[2048]; /* path?query, as sent */
    char path[2048];
    const char *query; /* into target, after '?'; "" if none */
    size_t header_len; /* the request line and headers, through CRLF CRLF */
    long long content_length;
    bool has_length;
} debug_http_req;

/* Parses the request at buf (n bytes read so far): DEBUG_HTTP_OK, 0 when
 * more bytes are needed, or DEBUG_HTTP_BAD / _TOO_LONG. Never reads past n. */
int debug_http_parse(const char *buf, size_t n, debug_http_req *r);
/* The non-negative integer query parameter key (def when absent; -1 when
 * malformed). */
long long debug_http_query_int(const char *query, const char *key, long long def);

/* Clocks. */
int64_t prof_nanotime(void);
int64_t prof_unix_nanos(void);

/* Installs the layer's hooks (idempotent; also run as a constructor). */
void prof_init(void);

#endif
