/* gort_cond: Go's sync.Cond on a ticket-based notify list (sema.c).
 *
 * wait takes a ticket *before* unlocking the mutex, so a signal sent after
 * the unlock is never lost: signal notifies the oldest ticket not yet
 * notified, and a waiter whose ticket is already notified does not park.
 * Tickets wrap around (compared modulo 2^32). */
#include "sync/sync.h"

#include "base/fatal.h"

void gort_cond_init(gort_cond *c, gort_mutex *m) {
    PANIC_IF_NIL(c);
    c->L = m;
    c->wait = c->notify = 0;
    c->lock = 0;
    c->head = c->tail = NULL;
}

void gort_cond_wait(gort_cond *c) {
    PANIC_IF_NIL(c);
    PANIC_IF_NIL(c->L); /* Go: c.L.Unlock() on a nil L */
    uint32_t t = sync_notify_list_add(c);
    gort_mutex_unlock(c->L);
    sync_notify_list_wait(c, t);
    gort_mutex_lock(c->L);
}

void gort_cond_signal(gort_cond *c) {
    PANIC_IF_NIL(c);
    sync_notify_list_notify_one(c);
}

void gort_cond_broadcast(gort_cond *c) {
    PANIC_IF_NIL(c);
    sync_notify_list_notify_all(c);
}
