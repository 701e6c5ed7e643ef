/* Channels, select and timer channels: docs/api.md "Channels and select" and
 * the channel half of "Time". Semantics are Go's, corners included: a NULL
 * channel is Go's nil channel (send and receive block forever, never chosen
 * by select, len and cap 0); misuse panics with Go's message and exit 2. */
#ifndef GORT_CHAN_H
#define GORT_CHAN_H

#include "gort/config.h"
#include "gort/type.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

GORT_EXTERN_C_BEGIN

typedef struct gort_chan gort_chan; /* a GC object (once the GC layer lands) */

/* A channel of cap elements of elem_size bytes (cap 0: unbuffered). Elements
 * may hold GC pointers (scanned conservatively). A capacity too large to
 * allocate panics "makechan: size out of range"; elem_size 0 allows any cap. */
GORT_API gort_chan *gort_chan_make(size_t elem_size, size_t cap);
/* A channel of elements of type *elem (GORT_TYPE), whose buffer the GC will
 * scan precisely: only elem's pointer words. elem must outlive the channel
 * (GORT_TYPE's descriptors are static). */
GORT_API gort_chan *gort_chan_make_typed(const gort_type *elem, size_t cap);
/* The same as gort_chan_make, for elements that never hold GC pointers. */
GORT_API gort_chan *gort_chan_make_noscan(size_t elem_size, size_t cap);
/* Blocks until the value at elem (elem_size bytes) is sent. Panics "send on
 * closed channel". */
GORT_API void gort_chan_send(gort_chan *c, const void *elem);
/* Blocks until a value arrives (copied to elem unless elem is NULL): true; or
 * the channel is closed and drained: false, elem zeroed. */
GORT_API bool gort_chan_recv(gort_chan *c, void *elem);
/* Sends if it can without blocking (Go's select with default): true if sent.
 * Panics "send on closed channel" on a closed channel. */
GORT_API bool gort_chan_trysend(gort_chan *c, const void *elem);
/* Receives if it can without blocking: true if a receive happened, with *ok
 * (may be NULL) false when it was the zero value of a closed channel. */
GORT_API bool gort_chan_tryrecv(gort_chan *c, void *elem, bool *ok);
/* Closes c: waiting receivers get the zero value (false), waiting senders
 * panic. Panics "close of nil channel", "close of closed channel". */
GORT_API void gort_chan_close(gort_chan *c);
GORT_API size_t gort_chan_len(gort_chan *c);
GORT_API size_t gort_chan_cap(gort_chan *c);

enum { GORT_SEND = 1, GORT_RECV = 2 };
typedef struct {
    gort_chan *c; /* NULL: the case is never chosen */
    int dir;      /* GORT_SEND or GORT_RECV */
    void *elem;   /* the value to send, or where to receive (may be NULL) */
    bool ok;      /* set on the chosen receive case: false = closed and drained */
} gort_case;
/* Go's select: the index of the case that proceeded, chosen uniformly among
 * the ready ones; with block false, -1 when none is ready. n == 0 with block
 * blocks forever (select {}). */
GORT_API int gort_select(gort_case *cases, int n, bool block);

/* Timer channels (package time), with Go 1.23's semantics (docs/channels.md).
 * Each carries the int64 gort_nanotime() of the firing, sent without
 * blocking (a tick is dropped when the previous one was not received); len
 * and cap report 0; once gort_timer_stop or gort_timer_reset returns, no
 * value from before the call is received. Durations saturate: INT64_MAX
 * never fires, ns <= 0 fires at once. Any number of goroutines and threads
 * may use one timer at once. They need gort_main (before: a fatal error). */
typedef struct gort_timer gort_timer;
/* time.After: a channel that receives one value after ns nanoseconds. */
GORT_API gort_chan *gort_after(int64_t ns);
/* time.NewTimer. */
GORT_API gort_timer *gort_timer_new(int64_t ns);
GORT_API gort_chan *gort_timer_chan(gort_timer *t);
/* Stops the timer or ticker: true if the call kept a value from being
 * received (it was armed, or its value was not received yet; a ticker: it
 * was ticking). */
GORT_API bool gort_timer_stop(gort_timer *t);
/* Re-arms a timer to fire ns from now; on a ticker, sets the period to ns
 * (Ticker.Reset). True as gort_timer_stop's. */
GORT_API bool gort_timer_reset(gort_timer *t, int64_t ns);
/* time.NewTicker: ticks every period_ns (> 0) on gort_timer_chan. */
GORT_API gort_timer *gort_ticker_new(int64_t period_ns);

GORT_EXTERN_C_END

#endif
