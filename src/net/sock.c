/* Listening and dialing: gort_listen_tcp, gort_dial_tcp, gort_listen_unix,
 * gort_dial_unix (Go's net.Listen and net.Dial for "tcp" and "unix").
 *
 * Addresses are "host:port": host an IPv4 address, a bracketed IPv6 one, a
 * name, or empty (listen: every address, IPv6 and IPv4 on one dual-stack
 * socket where the system has IPv6; dial: this machine); port a number or a
 * service name. Literal addresses are parsed here; names go to
 * getaddrinfo, which may block on DNS, so a goroutine calls it between
 * gort_syscall_enter and _exit: its P runs other goroutines meanwhile.
 * getaddrinfo's failures map to negative errno values: no such host or
 * service -ENOENT, try again -EAGAIN, out of memory -ENOMEM, other -EIO.
 *
 * Every socket is made non-blocking and close-on-exec, and starts a new
 * life of its descriptor (fd_born). TCP listeners set SO_REUSEADDR (as Go)
 * and TCP_NODELAY, which Linux passes on to accepted connections; dialed
 * connections set TCP_NODELAY (Go's default). */
#define _GNU_SOURCE
#include "gort/net.h"

#include "gort/sched.h"
#include "net/netpoll.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_ADDRS 8

typedef struct {
    struct sockaddr_storage ss;
    socklen_t len;
} addr;

/* Splits s into host and port (host may be empty). */
static int split_host_port(const char *s, char *host, size_t hcap, char *port, size_t pcap) {
    if (!s) return -EINVAL;
    const char *h, *he, *colon;
    if (s[0] == '[') {
        h = s + 1;
        he = strchr(h, ']');
        if (!he || he[1] != ':') return -EINVAL;
        colon = he + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) return -EINVAL;
        h = s;
        he = colon;
        if (memchr(h, ':', (size_t)(he - h))) return -EINVAL; /* IPv6 needs brackets */
    }
    size_t hl = (size_t)(he - h), pl = strlen(colon + 1);
    if (hl >= hcap || pl == 0 || pl >= pcap) return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = 0;
    memcpy(port, colon + 1, pl + 1);
    for (const char *c = port; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              *c == '-'))
            return -EINVAL;
    return 0;
}

static int resolve_error(int e) {
    switch (e) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
    case EAI_SERVICE:
        return -ENOENT;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_FAMILY:
        return -EAFNOSUPPORT;
    default:
        return -EIO;
    }
}

/* Resolves host:port into at most MAX_ADDRS addresses; returns how many or
 * a negative errno. passive: an empty host means "every address". */
static int resolve(const char *host_port, bool passive, addr *out) {
    char host[NI_MAXHOST], port[64];
    int err = split_host_port(host_port, host, sizeof host, port, sizeof port);
    if (err) return err;
    char *end;
    long pn = strtol(port, &end, 10);
    bool numeric_port = *end == 0;
    if (numeric_port && (pn < 0 || pn > 65535)) return -EINVAL;
    if (!host[0] && !passive) strcpy(host, "127.0.0.1"); /* dial ":port": this machine */
    if (numeric_port) {                                  /* literals need no resolver */
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out[0].ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out[0].ss;
        memset(&out[0], 0, sizeof out[0]);
        if (!host[0]) { /* listen ":port": dual-stack [::] (gort_listen_tcp falls back) */
            s6->sin6_family = AF_INET6;
            s6->sin6_addr = in6addr_any;
            s6->sin6_port = htons((uint16_t)pn);
            out[0].len = sizeof *s6;
            return 1;
        }
        if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            s4->sin_port = htons((uint16_t)pn);
            out[0].len = sizeof *s4;
            return 1;
        }
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons((uint16_t)pn);
            out[0].len = sizeof *s6;
            return 1;
        }
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = (passive ? AI_PASSIVE : 0) | (numeric_port ? AI_NUMERICSERV : 0);
    bool park = net_can_park();
    if (park) gort_syscall_enter(); /* DNS may take long: no P held meanwhile */
    int e = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    int n = 0;
    if (e == 0) {
        /* IPv4 first, as Go's resolver orders "localhost" for a listener. */
        for (int pass = 0; pass < 2; pass++)
            for (struct addrinfo *ai = res; ai && n < MAX_ADDRS; ai = ai->ai_next) {
                if ((ai->ai_family == AF_INET) != (pass == 0)) continue;
                if (ai->ai_addrlen > sizeof out[n].ss) continue;
                memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
                out[n].len = ai->ai_addrlen;
                n++;
            }
        freeaddrinfo(res);
    }
    int se = e == EAI_SYSTEM ? errno : 0;
    if (park) gort_syscall_exit();
    if (e == EAI_SYSTEM) return se ? -se : -EIO;
    if (e) return resolve_error(e);
    return n ? n : -ENOENT;
}

static int new_socket(int family) {
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    fd_born(fd, true);
    return fd;
}

static void set_opt(int fd, int level, int name) {
    int one = 1;
    setsockopt(fd, level, name, &one, sizeof one);
}

static int listen_on(int fd, const struct sockaddr *sa, socklen_t len, int backlog) {
    if (bind(fd, sa, len) < 0 || listen(fd, backlog > 0 ? backlog : 65535) < 0) {
        int e = -errno;
        gort_close(fd);
        return e;
    }
    return fd;
}

int gort_listen_tcp(const char *host_port, int backlog) {
    addr a[MAX_ADDRS];
    int n = resolve(host_port, true, a);
    if (n < 0) return n;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a[0].ss;
    bool any6 = a[0].ss.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
    int fd = new_socket(a[0].ss.ss_family);
    if (fd == -EAFNOSUPPORT && any6) { /* no IPv6 here: 0.0.0.0 */
        struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = s6->sin6_port};
        s4.sin_addr.s_addr = htonl(INADDR_ANY);
        memcpy(&a[0].ss, &s4, sizeof s4);
        a[0].len = sizeof s4;
        fd = new_socket(AF_INET);
        any6 = false;
    }
    if (fd < 0) return fd;
    if (any6) { /* both families on one socket, as Go listens on ":port" */
        int zero = 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    set_opt(fd, SOL_SOCKET, SO_REUSEADDR);
    set_opt(fd, IPPROTO_TCP, TCP_NODELAY);
    return listen_on(fd, (struct sockaddr *)&a[0].ss, a[0].len, backlog);
}

int gort_dial_tcp(const char *host_port) {
    addr a[MAX_ADDRS];
    int n = resolve(host_port, false, a);
    if (n < 0) return n;
    int err = -ECONNREFUSED;
    for (int i = 0; i < n; i++) {
        int fd = new_socket(a[i].ss.ss_family);
        if (fd < 0) {
            err = fd;
            continue;
        }
        set_opt(fd, IPPROTO_TCP, TCP_NODELAY);
        err = gort_connect(fd, (struct sockaddr *)&a[i].ss, a[i].len);
        if (err == 0) return fd;
        gort_close(fd);
    }
    return err;
}

/* path -> a Unix address ("@name": abstract). */
static int unix_addr(const char *path, struct sockaddr_un *su, socklen_t *len) {
    if (!path || !path[0]) return -EINVAL;
    size_t l = strlen(path);
    if (l >= sizeof su->sun_path) return -ENAMETOOLONG;
    memset(su, 0, sizeof *su);
    su->sun_family = AF_UNIX;
    memcpy(su->sun_path, path, l);
    if (path[0] == '@') su->sun_path[0] = 0; /* abstract: no file, no terminating NUL */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l + (path[0] == '@' ? 0 : 1));
    return 0;
}

int gort_listen_unix(const char *path, int backlog) {
    struct sockaddr_un su;
    socklen_t len;
    int err = unix_addr(path, &su, &len);
    if (err) return err;
    int fd = new_socket(AF_UNIX);
    if (fd < 0) return fd;
    return listen_on(fd, (struct sockaddr *)&su, len, backlog);
}

int gort_dial_unix(const char *path) {
    struct sockaddr_un su;
    socklen_t len;
    int err = unix_addr(path, &su, &len);
    if (err) return err;
    int fd = new_socket(AF_UNIX);
    if (fd < 0) return fd;
    err = gort_connect(fd, (struct sockaddr *)&su, len);
    if (err == 0) return fd;
    gort_close(fd);
    return err;
}
