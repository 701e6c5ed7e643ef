/* An HTTP/1.1 "Hello, World!" server: one goroutine per connection, plain
 * blocking code, keep-alive and pipelining (every complete request in a
 * read is answered, and the answers go out in one write). No allocation
 * per request. bench/run.sh http drives it with wrk beside Go's net/http.
 *
 *   http_hello [host:port [max_seconds]]   default 127.0.0.1:0, no limit;
 *                                          prints "LISTENING 127.0.0.1:PORT" */
#define _GNU_SOURCE
#include <gort.h>

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define BODY "Hello, World!\n"

/* A connection's answer, formatted when its second (the Date header) or
 * its kind changes, and copied for every request in between. */
typedef struct {
    time_t sec;
    bool http11, keep;
    size_t len;
    char text[256];
} answer;

/* Appends the answer to one request at out; returns its length. */
static size_t respond(char *out, answer *a, bool http11, bool keep) {
    time_t now = time(NULL);
    if (now != a->sec || http11 != a->http11 || keep != a->keep) {
        char date[32];
        struct tm tm;
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
        const char *conn = !keep    ? "Connection: close\r\n"
                           : http11 ? ""
                                    : "Connection: keep-alive\r\n";
        a->len = (size_t)snprintf(a->text, sizeof a->text,
                                  "HTTP/1.%d 200 OK\r\nContent-Type: text/plain\r\nDate: %s\r\n"
                                  "Content-Length: %zu\r\n%s\r\n" BODY,
                                  http11, date, sizeof BODY - 1, conn);
        a->sec = now, a->http11 = http11, a->keep = keep;
    }
    memcpy(out, a->text, a->len);
    return a->len;
}

/* The value of header name in head (its lines after the request line), or NULL. */
static const char *header(const char *head, const char *end, const char *name, size_t nlen) {
    for (const char *l = memchr(head, '\n', (size_t)(end - head)); l && l < end;
         l = memchr(l, '\n', (size_t)(end - l))) {
        l++;
        if (end - l > (long)nlen && strncasecmp(l, name, nlen) == 0) return l + nlen;
    }
    return NULL;
}

static void serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    char in[8192], out[32768];
    answer a = {0};
    size_t have = 0, skip = 0; /* bytes read and not yet parsed; body bytes still to skip */
    bool open = true;
    while (open) {
        ssize_t n = gort_read(fd, in + have, sizeof in - have);
        if (n <= 0) break; /* the client closed, or an error */
        have += (size_t)n;
        size_t used = skip < have ? skip : have, outn = 0;
        skip -= used;
        char *end;
        while (open && (end = memmem(in + used, have - used, "\r\n\r\n", 4)) != NULL) {
            char *req = in + used;
            char *eol = memchr(req, '\r', (size_t)(end - req) + 1);
            bool http11 = eol - req >= 8 && memcmp(eol - 8, "HTTP/1.1", 8) == 0;
            if (!http11 && (eol - req < 8 || memcmp(eol - 8, "HTTP/1.0", 8) != 0)) {
                gort_write(fd, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n", 47);
                open = false;
                break;
            }
            bool keep = http11; /* HTTP/1.1 keeps the connection unless told otherwise */
            const char *conn = header(req, end, "Connection:", 11);
            if (conn) {
                conn += strspn(conn, " \t");
                if (strncasecmp(conn, "close", 5) == 0) keep = false;
                if (strncasecmp(conn, "keep-alive", 10) == 0) keep = true;
            }
            const char *cl = header(req, end, "Content-Length:", 15);
            used = (size_t)(end + 4 - in);
            if (cl) { /* a body we ignore: skip it */
                size_t body = strtoul(cl, NULL, 10), now = body < have - used ? body : have - used;
                used += now;
                skip = body - now;
            }
            if (outn + 512 > sizeof out) { /* a long pipeline: flush what we have */
                if (gort_write(fd, out, outn) < 0) open = false;
                outn = 0;
            }
            outn += respond(out + outn, &a, http11, keep);
            open = open && keep;
        }
        if (outn && gort_write(fd, out, outn) < 0) break; /* all the answers, one write */
        memmove(in, in + used, have - used);
        have -= used;
        if (have == sizeof in) { /* a request head larger than our buffer */
            gort_write(fd, "HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n", 48);
            break;
        }
    }
    gort_close(fd);
}

static void stop_after(void *arg) {
    gort_sleep((int64_t)(intptr_t)arg * 1000000000);
    exit(0); /* a safety bound for benchmarks, as the Go peer's */
}

static int http_main(int argc, char **argv) {
    int lfd = gort_listen_tcp(argc > 1 ? argv[1] : "127.0.0.1:0", 0);
    if (lfd < 0) {
        fprintf(stderr, "http_hello: listen: %s\n", strerror(-lfd));
        return 1;
    }
    if (argc > 2) gort_go(stop_after, (void *)(intptr_t)atoi(argv[2]));
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
            gort_go(serve, (void *)(intptr_t)fd);
        else
            gort_sleep(10 * 1000 * 1000);
    }
}

int main(int argc, char **argv) {
    return gort_main(http_main, argc, argv);
}
