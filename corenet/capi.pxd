# corenet's C-level API for other Cython extensions.
#
# A Cython module reaches corenet's loop below asyncio's Python API through this file only:
#
#     from corenet.capi cimport Loop, FdWatcher, fast_loop, call_before_poll, ...
#
# What it offers, and the contract of each piece:
#
# ``Loop``
#     corenet's event loop type (the C base class of ``corenet.Loop``). ``fast_loop(loop)``
#     returns the loop as a ``Loop`` when it is one and ``None`` otherwise: the one test a
#     library needs to choose between this API and asyncio's public API, which works on any
#     loop. Everything below takes a ``Loop`` and runs on the loop's own thread.
#
# Before-poll callbacks
#     ``call_before_poll(loop, callback)`` runs ``callback()`` once, after the callbacks of the
#     current iteration and before the loop next waits for events, in the order they were
#     added. It is for work gathered during an iteration and done in one go (answers queued by
#     several callbacks sent with one ``sendmmsg``; descriptors closed after the replies that
#     made them useless have gone out). An exception goes to the loop's exception handler; the
#     other callbacks still run. A callback added while they run goes to the next iteration.
#
# Descriptor watchers without Python handles
#     ``FdWatcher`` is what the loop keeps for one descriptor. Subclass it in Cython, construct
#     it as ``Watcher(fd)`` (or ``Watcher.__new__(Watcher)`` with ``watcher.fd`` set before
#     it is watched, which builds no argument tuple) and override
#         ``cdef int on_events(self, Loop loop, uint32_t events) except -1``;
#     ``watch(loop, watcher, events)`` registers it with epoll (``EPOLLIN``, ``EPOLLOUT``...,
#     cimported from here too) and the loop calls ``on_events`` straight from its epoll array: no
#     Handle, no ready queue, no argument tuple. ``watcher.fd`` is its descriptor and
#     ``watcher.registered`` the mask epoll has for it (0: none). ``unwatch(loop, watcher)``
#     takes it out. The descriptor stays the caller's: close it after ``unwatch``, or let
#     ``unwatch_close(loop, watcher)`` do both (``watcher.fd`` becomes -1) without the
#     ``epoll_ctl`` that closing the last reference to a file makes needless, for a
#     descriptor the watcher owns alone (never duplicated), such as a socket made for one
#     exchange. One watcher per descriptor: watching replaces what the loop held for it, and ``add_reader``
#     on it is refused while it is watched.
#
# Sockets read in the middle of long iterations
#     ``read_often(loop, watcher, every)``: a watched descriptor whose waiting readers must not
#     wait for a long iteration to end. Besides its epoll events, the loop calls
#     ``watcher.on_events(loop, EPOLLIN)`` between two of an iteration's callbacks (I/O
#     events, ready callbacks, timers) once ``every`` seconds have passed since the poll or
#     the last such call, whichever came later (an iteration shorter than ``every`` reads
#     nothing its poll did not report), so ``on_events`` must cope with a socket that has
#     nothing to read. All such watchers are read together, at the shortest ``every``
#     asked. ``read_often_stop(loop, watcher)`` ends it; so does ``unwatch``. A resolver's
#     listener uses it: its cached answers would otherwise wait behind every reply and
#     timer of the misses it started.
#
# Readers and timers without argument tuples
#     ``add_reader_fd(loop, fd, callback)`` is ``loop.add_reader(fd, callback)``;
#     ``close_reader_fd(loop, fd)`` is ``loop.remove_reader(fd)`` followed by ``close(fd)``,
#     without the ``epoll_ctl`` that closing the last reference to a file makes needless. It
#     is only for a descriptor the caller owns alone (never duplicated, watched for reading
#     only); in any other case it makes both calls. ``call_later_fn(loop, delay, callback)``
#     is ``loop.call_later(delay, callback)`` and returns the ``TimerHandle`` (``cancel()``).
#
# Frames read in place
#     ``FrameReceiver`` is the length-prefixed framer's core (``corenet.framing``), sans-IO:
#     ``get_buffer``/``buffer_updated`` in, frames out. Made as
#     ``Receiver(None, header_size, byteorder, max_frame_size, buffer_size)``, a Cython
#     subclass overrides
#         ``cdef int handle_frame(self, char* data, Py_ssize_t length) except -1``
#     to read each frame straight from the receive buffer (valid only during the call), and
#         ``cdef int handle_big_frame(self, bytearray frame) except -1``
#     for a frame larger than the buffer; ``header_for(payload)`` gives the header to send.
#     A protocol owns one and hands its ``get_buffer``/``buffer_updated`` to the transport;
#     a length above ``max_frame_size`` raises ``FrameTooLarge`` from ``buffer_updated``.
#
# Batch send and receive
#     ``corenet/batch.pxd`` (C in ``corenet/include/batch.h``) holds the socket-address helpers
#     and the ``recvmmsg``/``sendmmsg`` batches that a datagram watcher drains and answers with.
#
# The functions are inline: a call costs what the loop's own method call costs.

from libc.stdint cimport uint32_t

from corenet._loop cimport BaseLoop as Loop, FdWatcher, TimerHandle
from corenet.framing._receiver cimport FrameReceiver
from corenet._sys cimport EPOLLERR, EPOLLET, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP


cdef inline Loop fast_loop(object loop):
    """``loop`` as corenet's ``Loop``, or ``None`` for any other asyncio loop."""
    if isinstance(loop, Loop):
        return <Loop>loop
    return None


cdef inline int call_before_poll(Loop loop, object callback) except -1:
    loop._before_poll.append(callback)
    return 0


cdef inline int watch(Loop loop, FdWatcher watcher, uint32_t events) except -1:
    return loop.register_watcher(watcher, events)


cdef inline int unwatch(Loop loop, FdWatcher watcher) except -1:
    return loop.unregister_watcher(watcher)


cdef inline int unwatch_close(Loop loop, FdWatcher watcher) except -1:
    return loop.close_watcher(watcher)


cdef inline int read_often(Loop loop, FdWatcher watcher, double every) except -1:
    return loop.read_often(watcher, every)


cdef inline int read_often_stop(Loop loop, FdWatcher watcher) except -1:
    return loop.read_often_stop(watcher)


cdef inline int add_reader_fd(Loop loop, int fd, object callback) except -1:
    return loop.add_reader_c(fd, callback)


cdef inline int close_reader_fd(Loop loop, int fd) except -1:
    loop._close_reader_fd(fd)
    return 0


cdef inline TimerHandle call_later_fn(Loop loop, double delay, object callback):
    return loop.call_later_c(delay, callback)
