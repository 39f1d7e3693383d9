# Declarations of the Linux calls the loop and the epoll binding use directly.
from libc.stdint cimport uint32_t, uint64_t

cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void *ptr
        int fd
        uint32_t u32
        uint64_t u64

    cdef struct epoll_event:
        uint32_t events
        epoll_data_t data

    enum:
        EPOLLIN
        EPOLLPRI
        EPOLLOUT
        EPOLLERR
        EPOLLHUP
        EPOLLRDNORM
        EPOLLRDBAND
        EPOLLWRNORM
        EPOLLWRBAND
        EPOLLMSG
        EPOLLRDHUP
        EPOLLEXCLUSIVE
        EPOLLWAKEUP
        EPOLLONESHOT
        EPOLLET
        EPOLL_CLOEXEC
        EPOLL_CTL_ADD
        EPOLL_CTL_MOD
        EPOLL_CTL_DEL

    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)

cdef extern from "<signal.h>" nogil:
    ctypedef struct sigset_t:
        pass

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    cdef struct timespec:
        time_t tv_sec
        long tv_nsec
    enum:
        CLOCK_MONOTONIC
    int clock_gettime(int clk_id, timespec *tp)

cdef extern from *:
    """
    #include <sys/epoll.h>
    #include <sys/syscall.h>
    #include <unistd.h>
    #include <errno.h>
    /* epoll_pwait2 takes a timespec, so timers fire to the nanosecond instead of being
       rounded up to the next millisecond. Older kernels answer ENOSYS; the caller falls back. */
    static int corenet_epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
                                    const struct timespec *timeout) {
    #ifdef SYS_epoll_pwait2
        return (int)syscall(SYS_epoll_pwait2, epfd, events, maxevents, timeout, NULL, 8);
    #else
        errno = ENOSYS;
        return -1;
    #endif
    }
    """
    int corenet_epoll_pwait2(int epfd, epoll_event *events, int maxevents, const timespec *timeout) nogil

cdef extern from "<sched.h>" nogil:
    int sched_yield()

cdef extern from "<sys/eventfd.h>" nogil:
    enum:
        EFD_CLOEXEC
        EFD_NONBLOCK
    int eventfd(unsigned int initval, int flags)

cdef extern from "<unistd.h>" nogil:
    ssize_t read(int fd, void *buf, size_t count)
    ssize_t write(int fd, const void *buf, size_t count)
    int close(int fd)
