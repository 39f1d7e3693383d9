# cython: boundscheck=False, wraparound=False
# (indexes here run over the kernel's own event array, never over network data)
"""A thin, complete binding of Linux epoll, usable on its own.

The loop does not go through this class (it calls epoll directly, with no Python object per
event); this is for programs that want epoll's edge/level/oneshot/exclusive modes themselves.
"""
from cpython.exc cimport PyErr_SetFromErrno, PyErr_CheckSignals
from libc.errno cimport errno, EINTR
from libc.stdlib cimport malloc, free
from libc.stdint cimport uint32_t

from corenet._sys cimport *

import math

# Python-level names for the constants (a cimported C name cannot be rebound directly).
globals().update(
    EPOLLIN=EPOLLIN, EPOLLPRI=EPOLLPRI, EPOLLOUT=EPOLLOUT, EPOLLERR=EPOLLERR, EPOLLHUP=EPOLLHUP,
    EPOLLRDNORM=EPOLLRDNORM, EPOLLRDBAND=EPOLLRDBAND, EPOLLWRNORM=EPOLLWRNORM,
    EPOLLWRBAND=EPOLLWRBAND, EPOLLMSG=EPOLLMSG, EPOLLRDHUP=EPOLLRDHUP,
    EPOLLEXCLUSIVE=EPOLLEXCLUSIVE, EPOLLWAKEUP=EPOLLWAKEUP, EPOLLONESHOT=EPOLLONESHOT,
    EPOLLET=<uint32_t>EPOLLET,
)

cdef int _fileno(object fd) except -1:
    if isinstance(fd, int):
        value = fd
    else:
        value = fd.fileno()
        if not isinstance(value, int):
            raise TypeError("fileno() must return an int")
    if value < 0:
        raise ValueError(f"invalid file descriptor: {value}")
    return value


cdef class Epoll:
    """epoll(7): ``register(fd, events, edge=, oneshot=, exclusive=)``, ``poll()`` returning
    ``(fd, events)`` pairs. Errors are ``OSError`` with the errno; use after close is
    ``ValueError``, as with ``select.epoll``."""

    cdef int _epfd
    cdef epoll_event *_events
    cdef int _capacity

    def __cinit__(self, int sizehint=-1):
        self._epfd = -1
        self._events = NULL
        self._capacity = 0

    def __init__(self, int sizehint=-1):
        fd = epoll_create1(EPOLL_CLOEXEC)
        if fd < 0:
            PyErr_SetFromErrno(OSError)
        self._epfd = fd

    def __dealloc__(self):
        if self._epfd >= 0:
            close(self._epfd)
            self._epfd = -1
        if self._events != NULL:
            free(self._events)
            self._events = NULL

    cdef int _check(self) except -1:
        if self._epfd < 0:
            raise ValueError("I/O operation on closed epoll object")
        return 0

    @property
    def closed(self) -> bool:
        return self._epfd < 0

    def fileno(self) -> int:
        self._check()
        return self._epfd

    def close(self) -> None:
        if self._epfd >= 0:
            fd = self._epfd
            self._epfd = -1
            if close(fd) < 0:
                PyErr_SetFromErrno(OSError)

    def __enter__(self):
        self._check()
        return self

    def __exit__(self, *exc):
        self.close()

    cdef int _ctl(self, int op, object fd, uint32_t events) except -1:
        cdef epoll_event ev
        cdef int rc
        self._check()
        cdef int fdn = _fileno(fd)
        ev.events = events
        ev.data.u64 = 0
        ev.data.fd = fdn
        rc = epoll_ctl(self._epfd, op, fdn, &ev)
        if rc < 0:
            PyErr_SetFromErrno(OSError)
        return 0

    def register(self, fd, unsigned int events=EPOLLIN | EPOLLPRI | EPOLLOUT, *,
                 bint edge=False, bint oneshot=False, bint exclusive=False) -> None:
        """Start watching ``fd``. ``edge`` adds EPOLLET, ``oneshot`` EPOLLONESHOT (re-arm with
        ``modify``), ``exclusive`` EPOLLEXCLUSIVE (wake one of several epolls sharing a fd)."""
        cdef uint32_t ev = events
        if edge:
            ev |= EPOLLET
        if oneshot:
            ev |= EPOLLONESHOT
        if exclusive:
            ev |= EPOLLEXCLUSIVE
        self._ctl(EPOLL_CTL_ADD, fd, ev)

    def modify(self, fd, unsigned int events, *, bint edge=False, bint oneshot=False) -> None:
        cdef uint32_t ev = events
        if edge:
            ev |= EPOLLET
        if oneshot:
            ev |= EPOLLONESHOT
        self._ctl(EPOLL_CTL_MOD, fd, ev)

    def unregister(self, fd) -> None:
        self._ctl(EPOLL_CTL_DEL, fd, 0)

    def poll(self, timeout=None, int maxevents=-1) -> list:
        """Wait for events; ``timeout`` in seconds (None or negative: forever). Returns a list
        of ``(fd, events)``."""
        cdef int ms, n, i
        cdef epoll_event *evs
        self._check()
        if timeout is None or timeout < 0:
            ms = -1
        else:
            t = math.ceil(float(timeout) * 1000.0)
            ms = 2147483647 if t > 2147483647 else <int>t
        if maxevents == -1:
            maxevents = 1024
        elif maxevents <= 0:
            raise ValueError(f"maxevents must be greater than 0, got {maxevents}")
        if maxevents > self._capacity:
            evs = <epoll_event *>malloc(sizeof(epoll_event) * maxevents)
            if evs == NULL:
                raise MemoryError()
            free(self._events)
            self._events = evs
            self._capacity = maxevents
        while True:
            with nogil:
                n = epoll_wait(self._epfd, self._events, maxevents, ms)
            if n >= 0:
                break
            if errno != EINTR:
                PyErr_SetFromErrno(OSError)
            PyErr_CheckSignals()
            # PEP 475: retry after a signal; the timeout is not recomputed, as epoll's own
            # restart semantics would not either, but a signal handler may raise above.
        result = []
        for i in range(n):
            result.append((self._events[i].data.fd, self._events[i].events))
        return result
