/* Echo load generator for benchmarks/test_echo.py.
 *
 * N connections, each in a closed loop: send one message, wait for all of it to come back,
 * check every byte, send the next. One thread, epoll (level-triggered), non-blocking
 * sockets with SO_SNDBUF/SO_RCVBUF fixed (kernel autotuning makes large messages swing).
 * Written in C so that the generator costs less than the server it measures.
 *
 * usage: echo_client HOST PORT CONNS SIZE [-d SECONDS] [-w WARMUP] [-n REQUESTS] [-b SOCKBUF]
 *                                       [-c 1]
 *   -d  measure for this long (default 2 s), after -w seconds of warm-up (default 0.3 s)
 *   -n  stop after this many measured round trips instead (no warm-up unless -w is given)
 *   -c  a connection per request: the server closes once it has echoed the message, the
 *       round trip ends at that EOF, and the client connects again (as HTTP/1.0 does)
 * Prints "START" when the measured window opens, "END" when it closes (so the caller can
 * read the server's CPU time at both), then one line of key=value results.
 * Exit status 0 on success, 2 if an echoed byte differed, 1 on any other error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    uint64_t seq;
    size_t sent;        /* bytes of the current message sent */
    size_t received;    /* bytes of the current echo received */
    uint64_t started;   /* ns, when the current message was first sent */
    unsigned char *msg; /* the message being sent (and expected back) */
    int want_out;       /* EPOLLOUT registered */
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "echo_client: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint64_t *lat;
static size_t nlat, caplat;

static void record(uint64_t ns) {
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 1 << 16;
        lat = realloc(lat, caplat * sizeof *lat);
        if (!lat) die("realloc");
    }
    lat[nlat++] = ns;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A per-connection pattern, written once; each message then differs from the previous one
 * on the same connection by its sequence number (first 8 bytes), so a stale or shifted echo
 * fails the check. */
static void fill_pattern(struct conn *c, size_t size, int index) {
    for (size_t i = 0; i < size; i++)
        c->msg[i] = (unsigned char)(index * 31 + i * 7 + (i >> 8));
}

static void stamp(struct conn *c, size_t size) {
    memcpy(c->msg, &c->seq, size < 8 ? size : 8);
}

static void set_interest(int ep, struct conn *c, int out) {
    struct epoll_event ev;
    if (c->want_out == out)
        return;
    ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
    c->want_out = out;
}

static void try_send(int ep, struct conn *c, size_t size) {
    while (c->sent < size) {
        ssize_t n = send(c->fd, c->msg + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) { set_interest(ep, c, 1); return; }
            if (errno == EINTR) continue;
            die("send");
        }
        c->sent += (size_t)n;
    }
    set_interest(ep, c, 0);
}

static struct addrinfo *ai;
static int sockbuf, per_request;

/* Opens c's connection (blocking connect: on loopback the handshake completes within the
 * call) and adds it to the epoll set, non-blocking. */
static void open_conn(int ep, struct conn *c) {
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (sockbuf > 0) {
        setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sockbuf, sizeof sockbuf);
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &sockbuf, sizeof sockbuf);
    }
    if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0) die("connect");
    int fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) die("fcntl");
    c->want_out = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl add");
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s HOST PORT CONNS SIZE [-d S] [-w S] [-n N] [-b BYTES]\n", argv[0]);
        return 1;
    }
    const char *host = argv[1], *port = argv[2];
    int nconns = atoi(argv[3]);
    size_t size = (size_t)atol(argv[4]);
    double duration = 2.0, warmup = -1;
    long limit = 0;
    for (int i = 5; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-d")) duration = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-w")) warmup = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-n")) limit = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "-b")) sockbuf = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-c")) per_request = atoi(argv[i + 1]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 1; }
    }
    if (warmup < 0) warmup = limit ? 0 : 0.3;
    if (nconns <= 0 || size == 0) { fprintf(stderr, "bad CONNS or SIZE\n"); return 1; }

    struct addrinfo hints = {0};
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0) { fprintf(stderr, "getaddrinfo failed\n"); return 1; }

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    unsigned char *rbuf = malloc(size < 65536 ? 65536 : size);
    if (!conns || !rbuf) die("calloc");
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        open_conn(ep, c);
        c->msg = malloc(size);
        if (!c->msg) die("malloc");
    }

    uint64_t t0 = now_ns();
    uint64_t measure_from = t0 + (uint64_t)(warmup * 1e9);
    uint64_t measure_to = limit ? UINT64_MAX : measure_from + (uint64_t)(duration * 1e9);
    int measuring = warmup <= 0;
    uint64_t started_at = measuring ? t0 : 0, ended_at = 0;
    long done = 0, mismatches = 0;
    if (measuring) { printf("START\n"); fflush(stdout); }

    for (int i = 0; i < nconns; i++) {
        fill_pattern(&conns[i], size, i);
        stamp(&conns[i], size);
        conns[i].started = now_ns();
        try_send(ep, &conns[i], size);
    }

    struct epoll_event events[256];
    int running = 1;
    while (running) {
        int n = epoll_wait(ep, events, 256, 10000);
        if (n < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
        if (n == 0) { fprintf(stderr, "echo_client: no progress for 10 s\n"); return 1; }
        for (int k = 0; k < n && running; k++) {
            struct conn *c = events[k].data.ptr;
            if (events[k].events & EPOLLOUT)
                try_send(ep, c, size);
            if (!(events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            for (;;) {
                /* per request: one byte of room once the echo is in, to see the EOF (or a
                 * byte too many, which fails the check below) */
                size_t room = c->received < size ? size - c->received : 1;
                ssize_t r = recv(c->fd, rbuf, room, 0);
                if (r < 0) {
                    if (errno == EAGAIN) break;
                    if (errno == EINTR) continue;
                    die("recv");
                }
                if (r == 0 && !(per_request && c->received == size)) {
                    fprintf(stderr, "echo_client: server closed a connection\n");
                    return 1;
                }
                if (r > 0 && c->received == size) {
                    fprintf(stderr, "echo_client: more bytes echoed than sent\n");
                    return 2;
                }
                if (r > 0 && memcmp(rbuf, c->msg + c->received, (size_t)r) != 0) {
                    mismatches++;
                    fprintf(stderr, "echo_client: echoed bytes differ (conn %ld, seq %llu, offset %zu)\n",
                            (long)(c - conns), (unsigned long long)c->seq, c->received);
                    return 2;
                }
                c->received += (size_t)r;
                if (c->received < size || (per_request && r > 0))
                    continue;
                /* A full round trip. */
                uint64_t t = now_ns();
                if (!measuring && t >= measure_from) {
                    measuring = 1;
                    started_at = t;
                    printf("START\n");
                    fflush(stdout);
                }
                if (measuring) {
                    if (t >= measure_to || (limit && done >= limit)) {
                        running = 0;
                        ended_at = t;
                        break;
                    }
                    record(t - c->started);
                    done++;
                    if (limit && done >= limit) {
                        running = 0;
                        ended_at = t;
                        break;
                    }
                }
                c->seq++;
                c->received = 0;
                c->sent = 0;
                if (per_request) {
                    close(c->fd);     /* also takes it out of the epoll set */
                    open_conn(ep, c);
                }
                stamp(c, size);
                c->started = now_ns();
                try_send(ep, c, size);
                break;
            }
        }
    }
    printf("END\n");
    fflush(stdout);
    double secs = (double)(ended_at - started_at) / 1e9;
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    double p50 = nlat ? lat[nlat / 2] / 1e3 : 0, p99 = nlat ? lat[(nlat * 99) / 100] / 1e3 : 0;
    printf("requests=%ld seconds=%.4f rps=%.1f p50_us=%.1f p99_us=%.1f mismatches=%ld\n",
           done, secs, secs > 0 ? done / secs : 0, p50, p99, mismatches);
    fflush(stdout);
    for (int i = 0; i < nconns; i++)
        close(conns[i].fd);
    freeaddrinfo(ai);
    return 0;
}
