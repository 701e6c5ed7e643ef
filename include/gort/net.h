/* Goroutine-blocking I/O on file descriptors: gort's netpoller (Go's
 * runtime netpoll and internal/poll), docs/api.md "Net"; docs/net.md is the guide.
 *
 * In a goroutine, a call that would block parks the goroutine, not its
 * thread: the fd is made non-blocking and registered with an edge-triggered
 * epoll on first need, and the scheduler wakes the goroutine when the fd is
 * ready, its deadline passes or it is closed. Sockets, pipes and FIFOs go
 * through the poller; regular files (which epoll cannot poll) and blocking
 * terminals go through the syscall path (gort_syscall_enter/exit), so they
 * never stop other goroutines either.
 *
 * Outside a goroutine (a plain thread, before gort_main, or between
 * gort_syscall_enter and _exit) every call works too, blocking its thread,
 * with the same deadlines and close semantics.
 *
 * Errors are negative errno values, never errno: -EBADF (bad or closed fd,
 * or closed while waiting), -ETIMEDOUT (a deadline passed), -EFAULT (NULL
 * buffer with n > 0), -EINVAL (bad argument or address string), and what the
 * system call said (-ECONNREFUSED, -ECONNRESET, -EPIPE, ...). A write to a
 * peer that has gone is -EPIPE, never SIGPIPE.
 *
 * An fd that these calls have used must be closed with gort_close (as Go's
 * os.File must be closed by its Close): close(2) behind gort's back leaves a
 * registration that a later fd with the same number could inherit. */
#ifndef GORT_NET_H
#define GORT_NET_H

#include "gort/config.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

GORT_EXTERN_C_BEGIN

/* Reads up to n bytes (read(2)); parks until some are available. 0 at end
 * of file (and for n == 0). */
GORT_API ssize_t gort_read(int fd, void *buf, size_t n);
/* Writes all n bytes (as Go's Write), parking while the fd is full; returns
 * n, or the error that stopped it (bytes before it were written). */
GORT_API ssize_t gort_write(int fd, const void *buf, size_t n);
/* accept(2), parking until a connection comes; the new fd is non-blocking
 * and close-on-exec. sa and len may be NULL. */
GORT_API int gort_accept(int listen_fd, struct sockaddr *sa, socklen_t *len);
/* connect(2), parking until the connection is made or refused (bounded by
 * the write deadline). fd becomes non-blocking. */
GORT_API int gort_connect(int fd, const struct sockaddr *sa, socklen_t len);
/* A TCP listener on "host:port" ("127.0.0.1:8080", "[::1]:0", ":80" for
 * every address, "localhost:0"); port 0 picks a free one (getsockname tells
 * which). backlog <= 0: the system's maximum. Returns the fd. */
GORT_API int gort_listen_tcp(const char *host_port, int backlog);
/* A TCP connection to "host:port", the host a name or an address (names are
 * resolved without holding the goroutine's P); TCP_NODELAY set, as Go does.
 * Tries each address in turn; returns the fd or the last error. */
GORT_API int gort_dial_tcp(const char *host_port);
/* A Unix stream socket listening at path ("@name": the abstract namespace).
 * The socket file is not removed at close. */
GORT_API int gort_listen_unix(const char *path, int backlog);
GORT_API int gort_dial_unix(const char *path);

/* Keeps a direction's deadline as it is (any negative value). */
#define GORT_DEADLINE_KEEP (-1)
/* Sets the read and write deadlines of fd: absolute gort_nanotime() values,
 * 0 for none, GORT_DEADLINE_KEEP to leave one alone. Once a deadline has
 * passed, every operation in that direction fails with -ETIMEDOUT, those
 * waiting now included, until the deadline is moved; it may be moved (or
 * cleared) while goroutines wait. */
GORT_API int gort_set_deadline(int fd, int64_t read_deadline_ns, int64_t write_deadline_ns);
/* Closes fd (Go's Close): goroutines blocked on it wake with -EBADF, and
 * later calls on it fail with -EBADF; the fd itself is closed when the last
 * operation in progress on it has returned. A second close is -EBADF. */
GORT_API int gort_close(int fd);

enum { GORT_WAIT_READ = 1, GORT_WAIT_WRITE = 2 };
/* Parks until fd, a non-blocking fd that other code reads and writes (a
 * database client's, a TLS library's), is ready in mode (GORT_WAIT_READ or
 * GORT_WAIT_WRITE), at most until deadline_ns (absolute; 0: none) and fd's
 * own deadline. 0 (ready: retry the operation; a wake-up may be spurious),
 * -ETIMEDOUT, -EBADF (gort_close), -EINVAL (bad mode or deadline). The fd's
 * owner may close it with close(2): each wait checks its registration. */
GORT_API int gort_fd_wait(int fd, int mode, int64_t deadline_ns);

GORT_EXTERN_C_END

#endif
