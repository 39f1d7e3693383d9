/* The floor for benchmarks/test_echo.py: a TCP echo server in plain C on epoll, doing what
 * the loops' servers do (read what came, write it back) with nothing else around it.
 *
 * usage: echo_server MODE SOCKBUF SIZE
 *   MODE     "close": after echoing SIZE bytes of a connection, close it (a connection per
 *            request); any other mode echoes until the client closes.
 *   SOCKBUF  SO_SNDBUF and SO_RCVBUF of the listening socket (accepted ones inherit them).
 * Listens on 127.0.0.1 on a free port and prints that port on a line; exits when its
 * standard input reaches end of file (as the Python servers of the benchmark do).
 *
 * One thread, level-triggered epoll, non-blocking sockets. A read of up to 256 KiB into one
 * shared buffer is written back at once; what the socket does not take is copied to the
 * connection's own buffer and reading from that connection stops until it has gone out
 * (EPOLLOUT), as a transport keeps unsent data and its protocol pauses reading.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (256 * 1024)
#define MAX_EVENTS 64

struct conn {
    int fd;
    size_t echoed;      /* bytes read so far (for "close") */
    size_t pending;     /* bytes of buf not yet written */
    size_t off;         /* where they start */
    unsigned char *buf; /* unsent bytes; allocated the first time a write falls short */
};

static int epfd;
static unsigned char rbuf[BUF];

static void die(const char *what) {
    fprintf(stderr, "echo_server: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void drop(struct conn *c) {
    close(c->fd);   /* also removes it from the epoll set */
    free(c->buf);
    free(c);
}

static void watch(struct conn *c, int op, unsigned events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, op, c->fd, &ev) != 0) die("epoll_ctl");
}

/* Writes len bytes from data; returns how many were written, or -1 if the connection failed. */
static ssize_t send_some(int fd, const unsigned char *data, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(fd, data + done, len - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) break;
            if (errno == EINTR) continue;
            return -1;
        }
        done += (size_t)n;
    }
    return (ssize_t)done;
}

/* One readiness event of a connection; returns 0 when it is to be closed. */
static int serve(struct conn *c, unsigned events, int close_mode, size_t size) {
    if (c->pending) {   /* waiting for EPOLLOUT */
        ssize_t w = send_some(c->fd, c->buf + c->off, c->pending);
        if (w < 0) return 0;
        c->off += (size_t)w;
        c->pending -= (size_t)w;
        if (c->pending) return 1;
        if (close_mode && c->echoed >= size) return 0;
        watch(c, EPOLL_CTL_MOD, EPOLLIN);
        return 1;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return 1;
    ssize_t n = recv(c->fd, rbuf, BUF, 0);
    if (n == 0) return 0;
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    c->echoed += (size_t)n;
    ssize_t w = send_some(c->fd, rbuf, (size_t)n);
    if (w < 0) return 0;
    if (w < n) {
        if (c->buf == NULL && (c->buf = malloc(BUF)) == NULL) return 0;
        c->off = 0;
        c->pending = (size_t)(n - w);
        memcpy(c->buf, rbuf + w, c->pending);
        watch(c, EPOLL_CTL_MOD, EPOLLOUT);
        return 1;
    }
    return !(close_mode && c->echoed >= size);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: echo_server MODE SOCKBUF SIZE\n");
        return 2;
    }
    int close_mode = strcmp(argv[1], "close") == 0;
    int sockbuf = atoi(argv[2]);
    size_t size = (size_t)strtoull(argv[3], NULL, 10);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (lfd < 0) die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(lfd, SOL_SOCKET, SO_SNDBUF, &sockbuf, sizeof sockbuf) != 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &sockbuf, sizeof sockbuf) != 0)
        die("setsockopt");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 1024) != 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0)
        die("listen");

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    /* data.ptr NULL: the listening socket; &lfd: standard input */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) != 0) die("epoll_ctl");
    ev.data.ptr = &lfd;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) != 0) die("epoll_ctl stdin");
    printf("%d\n", ntohs(addr.sin_port));
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            void *p = events[i].data.ptr;
            if (p == &lfd) return 0;    /* standard input readable: end of file */
            if (p == NULL) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct conn *c = malloc(sizeof *c);
                    if (c == NULL) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    c->echoed = c->pending = c->off = 0;
                    c->buf = NULL;
                    watch(c, EPOLL_CTL_ADD, EPOLLIN);
                }
                continue;
            }
            if (!serve(p, events[i].events, close_mode, size)) drop(p);
        }
    }
}
