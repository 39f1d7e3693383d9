/* CPU time of the kernel's copies for 100 KiB over loopback TCP, by buffer offset (a measuring
 * tool, not a CI benchmark). One process sends 100 KiB on one end of a loopback connection and
 * reads it back on the other, from (mode 1) or into (mode 0) a buffer at each page offset in
 * steps of STEP bytes; it prints the mean process CPU per exchange for each offset.
 *
 *     gcc -O2 -o /tmp/copy_alignment benchmarks/copy_alignment.c
 *     taskset -c 1 /tmp/copy_alignment ROUNDS MODE STEP      (e.g. 300 0 8)
 *
 * What it showed here (BENCHMARKS.md, echo server): a copy whose destination lies 1-15 bytes
 * after its source modulo 4 KiB runs 2.7x slower. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define SIZE (100 * 1024)
#define MAX_OFFSETS 4096

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s ROUNDS MODE(0 receive offset, 1 send offset) STEP\n", argv[0]);
        return 2;
    }
    int rounds = atoi(argv[1]), send_side = atoi(argv[2]), step = atoi(argv[3]);
    if (rounds < 1 || step < 1) {
        fprintf(stderr, "ROUNDS and STEP must be positive\n");
        return 2;
    }
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    int bufsize = 256 * 1024;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (void *)&a, sizeof a) || listen(l, 1) || getsockname(l, (void *)&a, &alen)) {
        perror("listen");
        return 1;
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(c, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
    setsockopt(c, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
    if (connect(c, (void *)&a, sizeof a)) {
        perror("connect");
        return 1;
    }
    int s = accept(l, NULL, NULL);
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
    char *src = aligned_alloc(1 << 21, 1 << 21), *dst = aligned_alloc(1 << 21, 1 << 21);
    memset(src, 1, 1 << 21);
    memset(dst, 0, 1 << 21);
    static int offsets[MAX_OFFSETS];
    static double total[MAX_OFFSETS];
    int n = 0;
    for (int off = 0; off < 4096 && n < MAX_OFFSETS; off += step)
        offsets[n++] = off;
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < n; k++) {     /* interleaved, so drift hits every offset alike */
            int soff = send_side ? offsets[k] : 0, doff = send_side ? 0 : offsets[k];
            double t0 = cpu_now();
            ssize_t sent = send(c, src + soff, SIZE, 0);
            if (sent != SIZE) {
                fprintf(stderr, "short send: %zd\n", sent);
                return 1;
            }
            for (ssize_t got = 0; got < SIZE;) {
                ssize_t m = recv(s, dst + doff + got, SIZE - got, 0);
                if (m <= 0) {
                    perror("recv");
                    return 1;
                }
                got += m;
            }
            total[k] += cpu_now() - t0;
        }
    }
    for (int k = 0; k < n; k++)
        printf("%s offset %4d: %.2f us\n", send_side ? "send" : "receive", offsets[k],
               total[k] / rounds * 1e6);
    return 0;
}
