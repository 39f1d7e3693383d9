/* A DNS load generator cheaper than the servers it drives, for the daemon's --workers
 * benchmark: dnsperf spends about a core of its own at 150k queries/s, which on a 2-core
 * machine leaves one core for the servers, so two workers could never show what a second
 * core is worth. This one keeps WINDOW queries in flight on each of SOCKETS connected UDP
 * sockets (distinct source ports, so SO_REUSEPORT spreads them over the workers), batches
 * with recvmmsg/sendmmsg, and checks every reply: the ID must be one in flight on that
 * socket, QR set, the question the one asked, the rcode NOERROR or NXDOMAIN.
 *
 * usage: dns_load HOST PORT QUERIES SOCKETS WINDOW SECONDS [SOURCE [LOST_MS]]
 *   QUERIES: wire queries, each preceded by its length (2 bytes, big-endian); the ID in
 *   each is overwritten.
 *   SOURCE: an IPv4 address; socket i is bound to SOURCE + i, so each socket is a client
 *   address of its own (on loopback any address of 127.0.0.0/8 will do).
 *   LOST_MS: how long a query may go unanswered before its slot is reused (default 1000);
 *   short, the generator keeps sending at its window's pace whatever the server drops,
 *   as a flood does.
 * prints one line: completed N lost L bad B drained D seconds S qps Q cpu_s C avg_latency_us U
 * (a query unanswered after LOST_MS is lost and its slot reused; completed and qps count the
 * replies before the end, drained the ones taken after it, while waiting for the last). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64
#define MAXQ 512
static uint64_t LOST_NS = 1000000000ULL;    /* unanswered this long: lost, slot reused */

struct query { unsigned char wire[MAXQ]; int len, qlen; };  /* qlen: the question's */
struct slot { uint64_t sent; int q; };      /* sent == 0: free */
struct sock {
    int fd;
    uint16_t next_id;
    int inflight;
    int cursor;                             /* next query of the file to send */
    struct slot slots[65536];
};

static struct query *queries;
static int nqueries;
static long long completed, lost, bad;
static double latency_sum;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The length of the (uncompressed) question after the header, name and type and class. */
static int question_len(const unsigned char *w, int n) {
    int p = 12;
    while (p < n && w[p]) p += 1 + w[p];
    if (p + 5 > n) { fprintf(stderr, "bad question\n"); exit(2); }
    return p + 5 - 12;
}

static void load(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char h[2];
    int cap = 1024;
    if (!f) { perror(path); exit(2); }
    queries = malloc(sizeof *queries * cap);
    while (fread(h, 1, 2, f) == 2) {
        int n = (h[0] << 8) | h[1];
        if (n < 17 || n > MAXQ) { fprintf(stderr, "bad query length %d\n", n); exit(2); }
        if (nqueries == cap) queries = realloc(queries, sizeof *queries * (cap *= 2));
        if (fread(queries[nqueries].wire, 1, n, f) != (size_t)n) { fprintf(stderr, "short file\n"); exit(2); }
        queries[nqueries].len = n;
        queries[nqueries].qlen = question_len(queries[nqueries].wire, n);
        nqueries++;
    }
    fclose(f);
    if (!nqueries) { fprintf(stderr, "no queries\n"); exit(2); }
}

/* Sends up to `want` new queries on s (one sendmmsg), each with a free ID. */
static void send_some(struct sock *s, int want, uint64_t t) {
    static unsigned char out[BATCH][MAXQ];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    int k = 0, ids[BATCH], qs[BATCH], i, sent;
    if (want > BATCH) want = BATCH;
    while (k < want) {
        int tries = 0, q;
        while (s->slots[s->next_id].sent && tries++ < 65536) s->next_id++;
        if (s->slots[s->next_id].sent) break;        /* every ID in flight */
        q = s->cursor;
        s->cursor = (s->cursor + 1) % nqueries;
        memcpy(out[k], queries[q].wire, queries[q].len);
        out[k][0] = s->next_id >> 8;
        out[k][1] = s->next_id & 0xFF;
        iov[k].iov_base = out[k];
        iov[k].iov_len = queries[q].len;
        memset(&msgs[k], 0, sizeof msgs[k]);
        msgs[k].msg_hdr.msg_iov = &iov[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
        ids[k] = s->next_id;
        qs[k] = q;
        s->slots[s->next_id].sent = 1;               /* reserved while the batch is built */
        s->next_id++;
        k++;
    }
    sent = k ? sendmmsg(s->fd, msgs, k, 0) : 0;
    if (sent < 0) sent = 0;
    for (i = 0; i < k; i++) {
        if (i < sent) {
            s->slots[ids[i]].sent = t;
            s->slots[ids[i]].q = qs[i];
            s->inflight++;
        } else {
            s->slots[ids[i]].sent = 0;               /* not sent (buffer full): retried later */
            s->cursor = (s->cursor + nqueries - 1) % nqueries;
        }
    }
}

/* Counts a bad reply and says why on stderr, for the first few, so a failing run shows
   whether the server answered wrongly (which rcode, which query) or out of turn. */
static void count_bad(const char *why, const unsigned char *r, int n, int q) {
    if (++bad <= 5)
        fprintf(stderr, "bad reply: %s, %d bytes, rcode %d, query #%d\n", why, n,
                n >= 4 ? (r[3] & 0x0F) : -1, q);
}

/* Checks one reply; returns 1 if it completed a query in flight. */
static int take_reply(struct sock *s, const unsigned char *r, int n, uint64_t t) {
    int id, q;
    const struct query *qq;
    if (n < 12) { count_bad("short", r, n, -1); return 0; }
    id = (r[0] << 8) | r[1];
    if (!s->slots[id].sent) { count_bad("id not in flight", r, n, -1); return 0; }  /* late or unknown */
    q = s->slots[id].q;
    qq = &queries[q];
    /* QR set, rcode NOERROR or NXDOMAIN, and the question section (after the header) as asked. */
    if (!(r[2] & 0x80) || ((r[3] & 0x0F) != 0 && (r[3] & 0x0F) != 3)) {
        count_bad("not an answer or rcode", r, n, q);
    } else if (n < 12 + qq->qlen || memcmp(r + 12, qq->wire + 12, qq->qlen) != 0) {
        count_bad("question differs", r, n, q);
    } else {
        completed++;
        latency_sum += (double)(t - s->slots[id].sent);
    }
    s->slots[id].sent = 0;
    s->inflight--;
    return 1;
}

static void expire(struct sock *s, uint64_t t) {
    int id;
    for (id = 0; id < 65536; id++) {
        if (s->slots[id].sent && t - s->slots[id].sent > LOST_NS) {
            s->slots[id].sent = 0;
            s->inflight--;
            lost++;
        }
    }
}

int main(int argc, char **argv) {
    struct sockaddr_in a = {0};
    struct epoll_event ev, evs[64];
    struct sock *socks;
    int nsocks, window, e, i;
    double seconds;
    uint64_t t0, end, t, last_expire, stop = 0;
    long long done_at_end = 0;
    struct rusage ru;
    static unsigned char bufs[BATCH][4096];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];

    struct sockaddr_in src = {0};
    int have_src = 0;

    if (argc < 7 || argc > 9) {
        fprintf(stderr, "usage: dns_load HOST PORT QUERIES SOCKETS WINDOW SECONDS [SOURCE [LOST_MS]]\n");
        return 2;
    }
    if (argc == 9) {
        LOST_NS = (uint64_t)(atof(argv[8]) * 1e6);
        if (LOST_NS < 1000000ULL) return 2;
    }
    if (argc >= 8) {
        src.sin_family = AF_INET;
        if (inet_pton(AF_INET, argv[7], &src.sin_addr) != 1) return 2;
        have_src = 1;
    }
    load(argv[3]);
    nsocks = atoi(argv[4]);
    window = atoi(argv[5]);
    seconds = atof(argv[6]);
    if (nsocks < 1 || window < 1 || window > 60000 || seconds <= 0) return 2;
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) return 2;
    socks = calloc((size_t)nsocks, sizeof *socks);
    e = epoll_create1(0);
    for (i = 0; i < nsocks; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        int sz = 1 << 20;
        if (fd >= 0 && have_src) {
            struct sockaddr_in mine = src;
            mine.sin_addr.s_addr = htonl(ntohl(src.sin_addr.s_addr) + (uint32_t)i);
            if (bind(fd, (struct sockaddr *)&mine, sizeof mine) != 0) { perror("bind"); return 1; }
        }
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("socket"); return 1; }
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        socks[i].fd = fd;
        socks[i].next_id = (uint16_t)(i * 7919);
        socks[i].cursor = (int)((long long)i * nqueries / nsocks);
        ev.events = EPOLLIN;
        ev.data.u32 = (uint32_t)i;
        if (epoll_ctl(e, EPOLL_CTL_ADD, fd, &ev) != 0) { perror("epoll_ctl"); return 1; }
    }
    for (i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = sizeof bufs[i];
    }
    t0 = last_expire = now_ns();
    end = t0 + (uint64_t)(seconds * 1e9);
    for (i = 0; i < nsocks; i++)
        while (socks[i].inflight < window) {
            int before = socks[i].inflight;
            send_some(&socks[i], window - socks[i].inflight, t0);
            if (socks[i].inflight == before) break;
        }
    /* Until the end: keep every socket's window full. Then drain: send nothing more and take
       the replies still due (checked, not counted in qps) until none is in flight or they are
       lost, so no reply of this run reaches a later run that gets the same source port. */
    for (;;) {
        int n, k, draining;
        t = now_ns();
        draining = t >= end;
        if (draining && !stop) {
            stop = t;
            done_at_end = completed;
        }
        if (draining) {
            int left = 0;
            for (i = 0; i < nsocks; i++) left += socks[i].inflight;
            if (!left || t - stop > LOST_NS) break;
        }
        n = epoll_wait(e, evs, 64, 10);
        t = now_ns();
        for (k = 0; k < n; k++) {
            struct sock *s = &socks[evs[k].data.u32];
            int got, j;
            for (i = 0; i < BATCH; i++) {
                memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            got = recvmmsg(s->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
            if (got < 0) continue;
            for (j = 0; j < got; j++) take_reply(s, bufs[j], (int)msgs[j].msg_len, t);
            if (!draining && s->inflight < window) send_some(s, window - s->inflight, t);
        }
        if (t - last_expire > LOST_NS / 4) {
            for (i = 0; i < nsocks; i++) {
                expire(&socks[i], t);
                if (!draining && socks[i].inflight < window)
                    send_some(&socks[i], window - socks[i].inflight, t);
            }
            last_expire = t;
        }
    }
    for (i = 0; i < nsocks; i++) {                  /* unanswered a second after the end */
        lost += socks[i].inflight;
        socks[i].inflight = 0;
    }
    getrusage(RUSAGE_SELF, &ru);
    seconds = (double)(stop - t0) / 1e9;
    printf("completed %lld lost %lld bad %lld drained %lld seconds %.3f qps %.0f cpu_s %.3f avg_latency_us %.1f\n",
           done_at_end, lost, bad, completed - done_at_end, seconds, done_at_end / seconds,
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
           completed ? latency_sum / completed / 1000.0 : 0.0);
    return 0;
}
