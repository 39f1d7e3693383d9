/* The smallest UDP echo server in C (epoll, recvfrom, sendto) on 127.0.0.1:PORT, for the
   daemon benchmark's wake-up floor: what one idle wake-up and one answer cost a C process,
   next to the same in Python on corenet's loop (udp_echo.py). Usage: udp_echo PORT */
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    struct sockaddr_in a = {0}, from;
    struct epoll_event ev = {.events = EPOLLIN};
    socklen_t flen;
    char buf[4096];
    int s, e, n;
    if (argc != 2) return 2;
    s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0) return 1;
    e = epoll_create1(0);
    if (e < 0 || epoll_ctl(e, EPOLL_CTL_ADD, s, &ev) != 0) return 1;
    for (;;) {
        if (epoll_wait(e, &ev, 1, -1) < 0) continue;
        for (;;) {
            flen = sizeof from;
            n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
            if (n < 0) break;
            sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&from, flen);
        }
    }
}
