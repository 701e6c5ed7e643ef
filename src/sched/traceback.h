/* Goroutine stacks and their printing in Go's format (traceback.c), for the
 * fatal-error dump, SIGQUIT and the goroutine profile (src/prof).
 *
 * A stack is an array of pcs found by a frame-pointer walk: the first is
 * where the goroutine stands (for a parked one, inside the scheduler; the
 * printers trim the scheduler's own frames), the rest are return
 * addresses. Frames are printed as Go prints them:
 *
 *     function(...)
 *             /path/file.c:123 +0x1d
 *
 * with the file and line from the DWARF line table (base/symtab.h), or the
 * object's path and the offset from its load base when there is none.
 * Nothing here allocates: output goes through a tb_writer, a buffer that a
 * callback drains (write(2) on the fatal path, memory for a profile). */
#ifndef GORT_SCHED_TRACEBACK_H
#define GORT_SCHED_TRACEBACK_H

#include "sched/runtime2.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define tb_flush           gort__tb_flush
#define tb_fd_writer       gort__tb_fd_writer
#define tb_goroutine_dump  gort__tb_goroutine_dump
#define tb_leaf_return     gort__tb_leaf_return
#define tb_print_creator   gort__tb_print_creator
#define tb_print_header    gort__tb_print_header
#define tb_print_pcs       gort__tb_print_pcs
#define tb_printf          gort__tb_printf
#define tb_sigquit_install gort__tb_sigquit_install
#define tb_trim            gort__tb_trim
#define tb_trim_bottom     gort__tb_trim_bottom
#define tb_walk            gort__tb_walk
#define sched_g_stack      gort__sched_g_stack

#define TB_MAX_FRAMES 64

typedef struct tb_writer {
    void (*write)(void *arg, const char *p, size_t n);
    void *arg;
    size_t n;
    char buf[2048];
} tb_writer;

/* A writer to fd (write(2), retried on EINTR). */
void tb_fd_writer(tb_writer *w, int fd);
void tb_printf(tb_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tb_flush(tb_writer *w);

/* Walks the frame records from fp, each inside [lo, hi) (hi 0: no bound but
 * increasing addresses), into pcs (return addresses); returns how many. */
int tb_walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max);
/* How many leading pcs of a goroutine's stack are the scheduler's own
 * (the switch, the park): the printers start after them. */
int tb_trim(const uintptr_t *pcs, int n);
/* Whether ret, the word at sp where the function at start was interrupted
 * at pc, is the return address of a call into it (a direct call of start,
 * or an indirect call) while it has no frame of its own (no push %rbp at
 * its entry, or pc not past it): then ret is its caller's frame, which a
 * frame-pointer walk skips. Reads the code at start and before ret: the
 * caller checks that both are mapped. */
bool tb_leaf_return(uintptr_t start, uintptr_t pc, uintptr_t ret);
/* How many pcs to keep of a stack: the goroutine entry's own frames at its
 * bottom (gentry, main_entry, arch_ctx_start) go, as Go's goexit. */
int tb_trim_bottom(const uintptr_t *pcs, int n);
/* Prints n frames; pcs[0] is a return address too unless leaf_is_pc. */
void tb_print_pcs(tb_writer *w, const uintptr_t *pcs, int n, bool leaf_is_pc);
/* "created by f in goroutine N" and its file line; nothing when gopc is 0. */
void tb_print_creator(tb_writer *w, uintptr_t gopc, int64_t parent);
/* "goroutine N [status, M minutes, locked to thread]:" */
void tb_print_header(tb_writer *w, g *gp, int64_t now);
/* gp's stack into pcs (at most max); 0 when it cannot be walked (running on
 * another thread outside a stop-the-world). *leaf_is_pc: pcs[0] is an
 * interrupted pc, not a return address. The caller makes sure gp does not
 * run meanwhile (the world stopped, or gp parked and known to stay so). */
int sched_g_stack(g *gp, uintptr_t *pcs, int max, bool *leaf_is_pc);
/* The whole dump: every goroutine, the calling one first, then by id. */
void tb_goroutine_dump(tb_writer *w);
/* Installs the SIGQUIT handler (gort_main): the dump, then exit 2, as Go. */
void tb_sigquit_install(void);

#endif
