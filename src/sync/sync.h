/* The sync layer's internal interface: runtime semaphores and notify lists
 * (Go's runtime/sema.go), used by the files of src/sync and later by other layers.
 *
 * A semaphore is any uint32_t: its value counts available wake-ups. Acquire
 * takes one, parking the goroutine (sched_park) while there is none; release
 * adds one and wakes a waiter. Waiters live in a fixed hash table of roots
 * keyed by the semaphore's address, each root with its own runtime lock; the
 * waiter records (sudogs) live on the waiters' own stacks. */
#ifndef GORT_SYNC_SYNC_H
#define GORT_SYNC_SYNC_H

#include "base/lock.h"
#include "gort/sync.h"
#include "sched/runtime2.h"

#include <stdbool.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define sync_can_spin               gort__sync_can_spin
#define sync_mutex_confirms         gort__sync_mutex_confirms
#define sync_mutex_rseq             gort__sync_mutex_rseq
#define sync_mutex_test_hook        gort__sync_mutex_test_hook
#define sync_notify_list_add        gort__sync_notify_list_add
#define sync_notify_list_notify_all gort__sync_notify_list_notify_all
#define sync_notify_list_notify_one gort__sync_notify_list_notify_one
#define sync_notify_list_wait       gort__sync_notify_list_wait
#define sync_pool_gc_rotate         gort__sync_pool_gc_rotate
#define sync_semacquire             gort__sync_semacquire
#define sync_semrelease             gort__sync_semrelease
#define sync_mutex_prof_hook        gort__sync_mutex_prof_hook

/* Go's semacquire1: waits until *addr > 0, then decrements it. lifo queues
 * the caller at the head of the address's queue (a mutex waiter that has
 * already waited once). reason: the wait reason shown in the dump. */
void sync_semacquire(uint32_t *addr, bool lifo, int reason);
/* Go's semrelease1: increments *addr and wakes one waiter. handoff: give the
 * count directly to the woken waiter and yield to it (starving mutex). */
void sync_semrelease(uint32_t *addr, bool handoff);
/* The mutex profile (src/prof installs it while it is on): called by the
 * goroutine whose release ends a Mutex or RWMutex waiter's wait, with the
 * time that waiter waited since it queued or since the previous such
 * release, on the releaser's stack (Go's semrelease1 and mutexevent). */
extern void (*sync_mutex_prof_hook)(int64_t ns);

/* Go's notifyList, on gort_cond's wait/notify/lock/head/tail fields: add
 * takes a ticket (before the caller unlocks the cond's mutex), wait parks
 * until that ticket is notified, notify_one wakes the oldest unnotified
 * ticket, notify_all all of them. */
uint32_t sync_notify_list_add(gort_cond *c);
void sync_notify_list_wait(gort_cond *c, uint32_t ticket);
void sync_notify_list_notify_one(gort_cond *c);
void sync_notify_list_notify_all(gort_cond *c);

/* Called by the garbage collector at the start of each cycle (with the world
 * stopped): drops every pool's victim cache and makes its primary cache the
 * new victim (Go's poolCleanup). Objects dropped are left to the collector. */
void sync_pool_gc_rotate(void);

/* gort_mutex.state (mutex.c explains): the locked bit is alone in the low
 * byte, which the rseq unlock clears with a byte store. */
#define MUTEX_LOCKED       1u
#define MUTEX_WOKEN        (1u << 8)
#define MUTEX_STARVING     (1u << 9)
#define MUTEX_WAITER_SHIFT 10
#define MUTEX_WAITERS_MAX  (UINT32_MAX >> MUTEX_WAITER_SHIFT)

/* Whether gort_mutex_unlock releases with the rseq byte store in this
 * process (decided once, before main). */
bool sync_mutex_rseq(void);
/* How many times a first waiter has run membarrier before parking. */
extern uint64_t sync_mutex_confirms;
/* Tests only: called by a first waiter between its registration and its
 * membarrier, to play a holder's racing rseq unlock there. */
extern void (*sync_mutex_test_hook)(gort_mutex *m);

/* Whether a mutex waiter may spin rather than park: a multicore machine,
 * another P running (the holder may be), and nothing else runnable on ours
 * (Go's sync_runtime_canSpin without its iteration limit: the mutex keeps
 * its own time budget). */
bool sync_can_spin(void);

#endif
