# cython: language_level=3
"""An extension outside corenet that uses only corenet/capi.pxd, as a third party would."""
from libc.stdint cimport uint32_t
from posix.unistd cimport read

from corenet.capi cimport (EPOLLIN, FdWatcher, FrameReceiver, Loop, TimerHandle, add_reader_fd,
                           call_before_poll, call_later_fn, close_reader_fd, fast_loop,
                           read_often, read_often_stop, unwatch, unwatch_close, watch)


def is_fast(loop):
    return fast_loop(loop) is not None


def before_poll(loop, callback):
    call_before_poll(<Loop?>loop, callback)


def reader(loop, int fd, callback):
    add_reader_fd(<Loop?>loop, fd, callback)


def close_reader(loop, int fd):
    close_reader_fd(<Loop?>loop, fd)


def later(loop, double delay, callback):
    cdef TimerHandle h = call_later_fn(<Loop?>loop, delay, callback)
    return h


cdef class Drain(FdWatcher):
    """Reads its descriptor dry on every event and records what it got."""
    cdef public list events
    cdef public bytes data
    cdef public object loop_seen

    def __init__(self, int fd):
        self.events = []
        self.data = b""

    cdef int on_events(self, Loop loop, uint32_t events) except -1:
        cdef char buf[256]
        cdef ssize_t n
        self.events.append(events)
        self.loop_seen = loop
        while True:
            n = read(self.fd, buf, sizeof(buf))
            if n <= 0:
                break
            self.data += buf[:n]
        return 0

    def start(self, loop):
        watch(<Loop?>loop, self, EPOLLIN)

    def stop(self, loop):
        unwatch(<Loop?>loop, self)

    def often(self, loop, double every):
        read_often(<Loop?>loop, self, every)

    def often_stop(self, loop):
        read_often_stop(<Loop?>loop, self)

    def close(self, loop):
        unwatch_close(<Loop?>loop, self)

    @property
    def fileno(self):
        return self.fd

    @property
    def mask(self):
        return self.registered


def bare_drain(int fd):
    """A Drain made without a constructor call, its descriptor set afterwards."""
    cdef Drain d = Drain.__new__(Drain)
    d.fd = fd
    d.events = []
    d.data = b""
    return d


cdef class Frames(FrameReceiver):
    """Records each frame as read in place, and large ones as handed over."""
    cdef public list seen

    def setup(self):
        self.seen = []

    cdef int handle_frame(self, char* data, Py_ssize_t length) except -1:
        self.seen.append(("small", data[:length]))
        return 0

    cdef int handle_big_frame(self, bytearray frame) except -1:
        self.seen.append(("big", bytes(frame)))
        return 0
