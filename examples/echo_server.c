/* A TCP echo server: one goroutine per connection, written as plain
 * blocking code. gort's netpoller runs it on an edge-triggered epoll
 * underneath, on every core (GORT_GOMAXPROCS).
 *
 *   echo_server [host:port]    default 127.0.0.1:0 (a free port); prints
 *                              "LISTENING 127.0.0.1:PORT"; try nc 127.0.0.1 PORT */
#include <gort.h>

#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    ssize_t n;
    while ((n = gort_read(fd, buf, sizeof buf)) > 0) /* parks this goroutine, not the thread */
        if (gort_write(fd, buf, (size_t)n) < 0) break;
    gort_close(fd);
}

static int echo_main(int argc, char **argv) {
    int lfd = gort_listen_tcp(argc > 1 ? argv[1] : "127.0.0.1:0", 0);
    if (lfd < 0) {
        fprintf(stderr, "echo_server: listen: %s\n", strerror(-lfd));
        return 1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[64], port[16];
    getsockname(lfd, (struct sockaddr *)&ss, &len);
    getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
    printf("LISTENING %s:%s\n", host, port);
    fflush(stdout);
    for (;;) {
        int fd = gort_accept(lfd, NULL, NULL);
        if (fd >= 0)
            gort_go(serve, (void *)(intptr_t)fd); /* go serve(conn) */
        else
            gort_sleep(10 * 1000 * 1000); /* out of fds, say: back off a little */
    }
}

int main(int argc, char **argv) {
    return gort_main(echo_main, argc, argv);
}
