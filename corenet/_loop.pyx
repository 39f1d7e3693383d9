# cython: boundscheck=False, wraparound=False, cdivision=True
# (indexes here run over the kernel's event array and the loop's own fd table and heap;
# nothing indexes by a value read from the network)
"""The heart of corenet's event loop: ready queue, timer heap, fd table, one epoll_wait per
iteration. The asyncio API that is not on a hot path lives in ``corenet/loop.py``."""

cimport cython
from cpython.exc cimport PyErr_SetFromErrno
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF
from libc.errno cimport errno, EINTR, EEXIST, ENOENT, EBADF, EAGAIN, ENOSYS, EPERM
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport malloc, free

from corenet._sys cimport *

import asyncio
import inspect
import os
import socket
import ssl
import sys
import threading

from asyncio import format_helpers as _format_helpers

cdef extern from "Python.h":
    object PyContext_CopyCurrent()
    int PyContext_Enter(object) except -1
    int PyContext_Exit(object) except -1
    int PyErr_CheckSignals() except -1
    PyObject* PyList_GET_ITEM(object l, Py_ssize_t i)
    void Py_SET_SIZE(object o, Py_ssize_t size)


cdef inline object _pop_keeping_room(list l):
    """``l.pop()`` for a non-empty list, keeping its memory for the next append: a timer
    heap that shrinks and grows by one every iteration would otherwise be reallocated
    twice, as ``list.pop`` gives memory back below half of it."""
    cdef Py_ssize_t n = len(l) - 1
    item = <object>PyList_GET_ITEM(l, n)     # a reference of its own ...
    Py_SET_SIZE(l, n)
    Py_DECREF(item)                          # ... the list's is given up
    return item

cdef object Future = asyncio.Future
cdef object Task = asyncio.Task
cdef object _get_running_loop = asyncio._get_running_loop
cdef object _extract_stack = _format_helpers.extract_stack
cdef object _format_callback_source = _format_helpers._format_callback_source
cdef object _iscoroutine = asyncio.iscoroutine
cdef object _iscoroutinefunction = inspect.iscoroutinefunction
cdef object logger = asyncio.log.logger
cdef object _get_ident = threading.get_ident
cdef object _getframe = sys._getframe
cdef object SSLSocket = ssl.SSLSocket

cdef int MAX_EVENTS = 1024
# Cancelled timers are removed lazily; the heap is rebuilt once they are both numerous and
# more than half of it, so mass cancellation neither leaks memory nor costs O(n) per cancel.
cdef Py_ssize_t MIN_CANCELLED_TO_COMPACT = 100
# poll_before_sleeping: the window it polls for starts here and doubles (up to the caller's
# limit) each time the I/O came after the window but within the limit; it halves when the
# I/O came later than the limit, and stops polling below SPIN_START.
cdef double SPIN_START = 10e-6
# Timers run per iteration at most: when more are due at once (thousands of timeouts set in
# one burst expire together), the rest stay on the heap, the next poll does not wait (one is
# due) and the I/O that arrived meanwhile is read between the batches. The order is kept:
# deadline, then scheduling order for equal deadlines.
cdef Py_ssize_t MAX_TIMERS_PER_ITERATION = 128

cdef uint32_t READ_EVENTS = EPOLLIN | EPOLLPRI | EPOLLERR | EPOLLHUP | EPOLLRDHUP
cdef uint32_t WRITE_EVENTS = EPOLLOUT | EPOLLERR | EPOLLHUP


cdef int check_callback(object callback, str method) except -1:
    if _iscoroutine(callback) or _iscoroutinefunction(callback):
        raise TypeError(f"coroutines cannot be used with {method}()")
    if not callable(callback):
        raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")
    return 0


@cython.freelist(256)
@cython.no_gc
cdef class Handle:
    """A callback scheduled on the loop; the object returned by ``call_soon``.

    Handles are not tracked by the cycle collector: scheduling many callbacks would otherwise
    make every collection walk them all. That is safe because a handle from the ready queue
    or the timer heap drops its references (callback, arguments, loop) as soon as it has run
    or is cancelled, and the loop drops the pending ones when it closes, so no reference
    cycle can pass through a handle that nothing else keeps alive.
    """

    def __init__(self, callback, args, loop, context=None):
        self._callback = callback
        self._args = tuple(args)
        self._loop = loop
        self._context = PyContext_CopyCurrent() if context is None else context
        if self._loop._debug:
            self._source_traceback = _extract_stack(_getframe(0))

    cpdef cancel(self):
        if not self._cancelled:
            self._cancelled = True
            if self._loop is not None and self._loop._debug:
                self._repr = self._describe()
            self._callback = None
            self._args = None
            self._loop = None

    def cancelled(self):
        return self._cancelled

    def get_context(self):
        return self._context

    def _run(self):
        self.run_c(False)

    cdef int run_c(self, bint oneshot) except -1:
        """Runs the callback in its context. A ``oneshot`` handle (ready queue, timers) lets
        go of its references first: it never runs again."""
        cdef object cb = self._callback
        cdef object args = self._args
        cdef object ctx = self._context
        cdef BaseLoop loop = self._loop
        cdef object err = None
        cdef Py_ssize_t nargs
        if cb is None:
            return 0
        if oneshot:
            self._let_go()
        PyContext_Enter(ctx)
        try:
            nargs = len(<tuple>args)
            if nargs == 0:
                cb()
            elif nargs == 1:
                cb((<tuple>args)[0])
            else:
                cb(*args)
        except BaseException as exc:
            err = exc
        PyContext_Exit(ctx)
        if err is not None:
            if isinstance(err, (SystemExit, KeyboardInterrupt)):
                raise err
            context = {
                "message": f"Exception in callback {_format_callback_source(cb, args)}",
                "exception": err,
                "handle": self,
            }
            if self._source_traceback is not None:
                context["source_traceback"] = self._source_traceback
            loop.call_exception_handler(context)
        return 0

    cdef int _let_go(self) except -1:
        # Once run, a ready or timer handle never runs again: what its callback holds (a
        # task's step, so the task) can be freed now rather than when the handle goes.
        self._callback = None
        self._args = None
        self._loop = None
        return 0

    cdef str _describe_callback(self):
        if self._callback is None:
            return "<cancelled>"
        return _format_callback_source(self._callback, self._args or ())

    def _describe(self):
        parts = [type(self).__name__]
        if self._cancelled:
            parts.append("cancelled")
        if self._callback is not None:
            parts.append(self._describe_callback())
        if self._source_traceback:
            frame = self._source_traceback[len(self._source_traceback) - 1]
            parts.append(f"created at {frame[0]}:{frame[1]}")
        return "<" + " ".join(parts) + ">"

    def __repr__(self):
        if self._repr is not None:
            return self._repr
        return self._describe()


@cython.no_gc
cdef class TimerHandle(Handle):
    """A callback scheduled for a point in time; ``call_later``/``call_at`` return it."""

    def __init__(self, when, callback, args, loop, context=None):
        Handle.__init__(self, callback, args, loop, context)
        self._at = when
        self._int_when = type(when) is int

    def when(self):
        return self._when_value()

    @property
    def _when(self):
        """The deadline, as asyncio's TimerHandle keeps it (an int if call_at was given one)."""
        return self._when_value()

    cdef object _when_value(self):
        if self._int_when:
            return int(self._at)
        return self._at

    cpdef cancel(self):
        if not self._cancelled and self._scheduled and self._loop is not None:
            self._loop._timer_cancelled_one(self)
        Handle.cancel(self)

    def _describe(self):
        text = Handle._describe(self)
        return f"{text[:len(text) - 1]} when={self._when_value()}>"

    def __lt__(self, TimerHandle other):
        return self._at < other._at

    def __le__(self, TimerHandle other):
        return self._at <= other._at

    def __gt__(self, TimerHandle other):
        return self._at > other._at

    def __ge__(self, TimerHandle other):
        return self._at >= other._at

    def __eq__(self, other):
        if isinstance(other, TimerHandle):
            return (self._at == (<TimerHandle>other)._at
                    and self._callback == (<TimerHandle>other)._callback
                    and self._args == (<TimerHandle>other)._args
                    and self._cancelled == (<TimerHandle>other)._cancelled)
        return NotImplemented

    def __hash__(self):
        return hash(self._at)


cdef class FdWatcher:
    def __cinit__(self, int fd=-1):
        self.fd = fd

    cdef int on_events(self, BaseLoop loop, uint32_t events) except -1:
        cdef Handle h
        if events & READ_EVENTS:
            if self.rop is not None:
                (<SockOp>self.rop).on_ready(loop, self)
            elif self.reader is not None:
                h = self.reader
                if h._cancelled:
                    self.reader = None
                    self.rfile = None
                else:
                    loop._run_handle(h)
        if events & WRITE_EVENTS:
            if self.wop is not None:
                (<SockOp>self.wop).on_ready(loop, self)
            elif self.writer is not None:
                h = self.writer
                if h._cancelled:
                    self.writer = None
                    self.wfile = None
                else:
                    loop._run_handle(h)
        # Events nobody waits for: stop asking for them, or level triggering would spin.
        if ((events & EPOLLIN and self.reader is None and self.rop is None)
                or (events & EPOLLOUT and self.writer is None and self.wop is None)):
            self.owner = None
            loop._sync(self, False)
        return 0


cdef class SockOp:
    """One pending ``sock_*`` call: runs straight from the epoll event (no Handle) and
    completes its future; the awaiting task is woken in the same loop iteration."""
    cdef object fut
    cdef object sock
    cdef int fd
    cdef bint write

    cdef int on_ready(self, BaseLoop loop, FdWatcher w) except -1:
        cdef bint done
        if self.fut.done():
            loop._clear_op(self.fd, self, self.write)
            return 0
        try:
            done = self.step()
        except (BlockingIOError, InterruptedError):
            return 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.fut.set_exception(exc)
            done = True
        if done:
            loop._clear_op(self.fd, self, self.write)
        return 0

    cdef bint step(self) except -1:
        return True


cdef class RecvOp(SockOp):
    cdef Py_ssize_t n

    cdef bint step(self) except -1:
        self.fut.set_result(self.sock.recv(self.n))
        return True


cdef class RecvIntoOp(SockOp):
    cdef object buf

    cdef bint step(self) except -1:
        self.fut.set_result(self.sock.recv_into(self.buf))
        return True


cdef class RecvfromOp(SockOp):
    cdef Py_ssize_t n

    cdef bint step(self) except -1:
        self.fut.set_result(self.sock.recvfrom(self.n))
        return True


cdef class RecvfromIntoOp(SockOp):
    cdef object buf
    cdef Py_ssize_t n

    cdef bint step(self) except -1:
        self.fut.set_result(self.sock.recvfrom_into(self.buf, self.n))
        return True


cdef class SendallOp(SockOp):
    cdef object view
    cdef Py_ssize_t pos
    cdef Py_ssize_t size

    cdef bint step(self) except -1:
        self.pos += self.sock.send(self.view[self.pos:])
        if self.pos >= self.size:
            self.fut.set_result(None)
            return True
        return False


cdef class SendtoOp(SockOp):
    cdef object data
    cdef object address

    cdef bint step(self) except -1:
        self.fut.set_result(self.sock.sendto(self.data, self.address))
        return True


cdef class ConnectOp(SockOp):
    cdef object address

    cdef bint step(self) except -1:
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err != 0:
            raise OSError(err, f"Connect call failed {self.address}")
        self.fut.set_result(None)
        return True


cdef class AcceptOp(SockOp):
    cdef bint step(self) except -1:
        conn, address = self.sock.accept()
        conn.setblocking(False)
        self.fut.set_result((conn, address))
        return True


cdef str _format_handle(Handle h):
    """What the slow-callback warning names: the Task whose step ran, else the handle."""
    owner = getattr(h._callback, "__self__", None)
    if isinstance(owner, Task):
        return repr(owner)
    return repr(h)


cdef int check_sock(BaseLoop loop, object sock) except -1:
    if isinstance(sock, SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")
    if loop._debug and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")
    return 0


cdef class BaseLoop:
    def __cinit__(self, *args, **kwargs):
        self._epfd = -1
        self._eventfd = -1
        self._events = NULL
        self._ready = []
        self._ready_swap = []
        self._timers = []
        self._fds = []
        self._deleted = set()
        self._before_poll = []
        self._before_poll_swap = []
        self._often = []

    def __init__(self, *, trigger=None):
        cdef epoll_event ev
        if trigger is None:
            trigger = os.environ.get("CORENET_TRIGGER") or "edge"
        if trigger not in ("edge", "level"):
            raise ValueError(f"trigger must be 'edge' or 'level', not {trigger!r}")
        self._edge = trigger == "edge"
        self._internal_context = PyContext_CopyCurrent()
        self._watch_time()
        self.slow_callback_duration = 0.1
        self._has_pwait2 = True
        self._events = <epoll_event *>malloc(sizeof(epoll_event) * MAX_EVENTS)
        if self._events == NULL:
            raise MemoryError()
        self._maxevents = MAX_EVENTS
        self._epfd = epoll_create1(EPOLL_CLOEXEC)
        if self._epfd < 0:
            PyErr_SetFromErrno(OSError)
        self._eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)
        if self._eventfd < 0:
            PyErr_SetFromErrno(OSError)
        ev.events = EPOLLIN
        ev.data.u64 = 0
        ev.data.fd = self._eventfd
        if epoll_ctl(self._epfd, EPOLL_CTL_ADD, self._eventfd, &ev) < 0:
            PyErr_SetFromErrno(OSError)

    def __dealloc__(self):
        self._close_fds()
        if self._events != NULL:
            free(self._events)
            self._events = NULL

    cdef _close_fds(self):
        if self._eventfd >= 0:
            close(self._eventfd)
            self._eventfd = -1
        if self._epfd >= 0:
            close(self._epfd)
            self._epfd = -1

    # ---------------------------------------------------------------- state

    @property
    def trigger(self):
        return "edge" if self._edge else "level"

    def is_running(self):
        return self._running

    def is_closed(self):
        return self._closed

    def get_debug(self):
        return self._debug

    def _set_debug_flag(self, bint enabled):
        self._debug = enabled

    def time(self):
        return self._clock()

    cdef double _clock(self) noexcept:
        cdef timespec ts
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9

    cdef double _now(self) except? -1.0:
        """The loop's time, as timers and the poll timeout read it: the monotonic clock,
        or, as asyncio has it, whatever ``time()`` returns where a subclass overrides it
        or it is set on the loop itself (tests that drive a fake clock)."""
        if self._time_override:
            return <double>self.time()
        return self._clock()

    def _watch_time(self):
        """Notes whether ``time`` is this class's own (``Loop.__setattr__`` and
        ``__delattr__`` call it when ``time`` is set on or removed from the loop)."""
        d = getattr(self, "__dict__", None)
        self._time_override = (type(self).time is not BaseLoop.time
                               or (d is not None and "time" in d))

    cdef int _check_closed(self) except -1:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        return 0

    cdef int _check_thread(self) except -1:
        if self._thread_id is None:
            return 0
        if _get_ident() != self._thread_id:
            raise RuntimeError(
                "Non-thread-safe operation invoked on an event loop other "
                "than the current one")
        return 0

    def _check_running_thread(self):
        self._check_thread()

    def stop(self):
        self._stopping = True

    def _close_core(self):
        """Drops every scheduled callback and closes the loop's own descriptors."""
        self._closed = True
        for h in self._ready:
            (<Handle>h).cancel()     # lets go of callbacks: handles are not GC-tracked
        self._ready.clear()
        self._ready_swap.clear()
        for h in self._timers:
            (<TimerHandle>h)._scheduled = False
            (<TimerHandle>h).cancel()
        self._timers.clear()
        self._timer_cancelled = 0
        self._held = None
        self._fds.clear()
        self._close_fds()

    # ---------------------------------------------------------------- callbacks

    def call_soon(self, callback, *args, context=None):
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            check_callback(callback, "call_soon")
        return self._call_soon(callback, args, context)

    cdef Handle _call_soon(self, object callback, object args, object context):
        cdef Handle h = Handle.__new__(Handle)
        h._callback = callback
        h._args = args
        h._context = PyContext_CopyCurrent() if context is None else context
        h._loop = self
        if self._debug:
            h._source_traceback = _extract_stack(_getframe(0))
        self._ready.append(h)
        return h

    def call_soon_threadsafe(self, callback, *args, context=None):
        cdef uint64_t one = 1
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            check_callback(callback, "call_soon_threadsafe")
        h = self._call_soon(callback, args, context)
        # A full eventfd counter (EAGAIN) still wakes the loop, so the error is harmless.
        write(self._eventfd, &one, 8)
        return h

    def _write_to_self(self):
        cdef uint64_t one = 1
        if self._eventfd >= 0:
            write(self._eventfd, &one, 8)

    def call_later(self, delay, callback, *args, context=None):
        if delay is None:
            raise TypeError("delay must not be None")
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            check_callback(callback, "call_later")
        return self._call_at(self._now() + <double>delay, callback, args, context)

    cdef TimerHandle call_later_c(self, double delay, object callback):
        """``call_later(delay, callback)`` for Cython callers: no argument tuple to build
        and no method look-up (``corenet.capi.call_later_fn``)."""
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            check_callback(callback, "call_later")
        return self._call_at(self._now() + delay, callback, (), None)

    def call_at(self, when, callback, *args, context=None):
        cdef TimerHandle h
        if when is None:
            raise TypeError("when cannot be None")
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            check_callback(callback, "call_at")
        h = self._call_at(<double>when, callback, args, context)
        h._int_when = type(when) is int
        return h

    cdef TimerHandle _call_at(self, double when, object callback, object args, object context):
        cdef TimerHandle h = TimerHandle.__new__(TimerHandle)
        h._callback = callback
        h._args = args
        h._context = PyContext_CopyCurrent() if context is None else context
        h._loop = self
        h._at = when
        if self._debug:
            h._source_traceback = _extract_stack(_getframe(0))
        self._heap_push(h)
        return h

    def _timer_handle_cancelled(self, TimerHandle h):
        if h._scheduled:
            self._timer_cancelled_one(h)

    cdef int _timer_cancelled_one(self, TimerHandle h) except -1:
        self._timer_cancelled += 1
        if (self._timer_cancelled > MIN_CANCELLED_TO_COMPACT
                and self._timer_cancelled * 2 > len(self._timers)
                and not self._running):
            # Outside a run, nothing else will purge them; while running, _run_once does.
            self._compact_timers()
        return 0

    # ---------------------------------------------------------------- timer heap

    cdef int _heap_push(self, TimerHandle h) except -1:
        cdef list heap = self._timers
        cdef Py_ssize_t i, parent
        cdef TimerHandle p
        h._seq = self._timer_seq
        self._timer_seq += 1
        h._scheduled = True
        heap.append(h)
        i = len(heap) - 1
        while i > 0:
            parent = (i - 1) >> 1
            p = <TimerHandle>heap[parent]
            if p._at < h._at or (p._at == h._at and p._seq < h._seq):
                break
            heap[i] = p
            i = parent
        heap[i] = h
        return 0

    cdef TimerHandle _heap_pop(self):
        cdef list heap = self._timers
        cdef Py_ssize_t n = len(heap), i, child, right
        cdef TimerHandle top = <TimerHandle>heap[0]
        cdef TimerHandle last = <TimerHandle>_pop_keeping_room(heap)
        cdef TimerHandle c, r
        n -= 1
        if n > 0:
            i = 0
            while True:
                child = 2 * i + 1
                if child >= n:
                    break
                c = <TimerHandle>heap[child]
                right = child + 1
                if right < n:
                    r = <TimerHandle>heap[right]
                    if r._at < c._at or (r._at == c._at and r._seq < c._seq):
                        child = right
                        c = r
                if last._at < c._at or (last._at == c._at and last._seq < c._seq):
                    break
                heap[i] = c
                i = child
            heap[i] = last
        top._scheduled = False
        return top

    cdef int _compact_timers(self) except -1:
        cdef list keep = []
        cdef TimerHandle h
        for obj in self._timers:
            h = <TimerHandle>obj
            if h._cancelled:
                h._scheduled = False
            else:
                keep.append(h)
        self._timers = []
        self._timer_cancelled = 0
        for obj in sorted(keep, key=_timer_key):
            h = <TimerHandle>obj
            h._scheduled = True
            self._timers.append(h)   # a sorted list is a valid heap
        return 0

    # ---------------------------------------------------------------- the iteration

    def _run_forever_inner(self):
        self._running = True
        self._polled_last = False   # a run's first iteration always polls
        try:
            while True:
                self._run_once()
                if self._stopping:
                    break
        finally:
            self._running = False
            self._stopping = False

    cdef int _run_once(self) except -1:
        """One iteration, in asyncio's order: the callbacks that were ready before the poll,
        then the I/O events (transports are called directly, add_reader callbacks run
        here too), then the timers that were due once the poll returned (at most
        MAX_TIMERS_PER_ITERATION: a burst of expiries is spread over iterations that each
        poll for I/O first).

        An iteration with callbacks ready right after one that polled does not poll (a
        poll that may not wait would mostly find nothing): the usual case is an I/O event
        whose callback woke a task, which runs now, as libuv runs its ready callbacks
        before it polls. Every other iteration at least still polls, so I/O waits for at
        most one more batch of callbacks; a run's first iteration and a stopping one
        poll (``stop()`` then ``run_forever()`` still processes the I/O at hand)."""
        cdef list timers = self._timers
        cdef list due
        cdef TimerHandle h
        cdef double timeout, end
        cdef int n
        if self._before_poll:
            self._run_before_poll()
        while timers and (<TimerHandle>timers[0])._cancelled:
            self._heap_pop()
            self._timer_cancelled -= 1
        if self._timer_cancelled > MIN_CANCELLED_TO_COMPACT and self._timer_cancelled * 2 > len(timers):
            self._compact_timers()
            timers = self._timers
        if self._ready or self._stopping or self._before_poll:
            # (before-poll callbacks added while they ran: due next iteration, not after a wait)
            timeout = 0.0
        elif timers:
            timeout = (<TimerHandle>timers[0])._at - self._now()
            if timeout < 0.0:
                timeout = 0.0
            elif timeout > 86400.0:
                timeout = 86400.0
        else:
            timeout = -1.0
        if timeout == 0.0 and (self._nregistered == 0 or self._polled_last
                               and self._ready and not self._stopping):
            # Nothing but our own wake-up fd is registered: there is no I/O to look for, and a
            # thread's call_soon_threadsafe has already put its callback in the ready queue.
            # Or the last iteration polled (see above).
            n = 0
            self._polled_last = False
        else:
            n = self._poll(timeout)
            self._polled_last = True
            if self._often_every > 0.0:
                # The poll has just told which watchers are readable: read_often's interval
                # is of this iteration's work, counted from here.
                self._often_next = self._clock() + self._often_every
        timers = self._timers
        due = None
        if timers and (<TimerHandle>timers[0])._at < self._now() + 1e-9:
            due = self._take_due_timers()
        try:
            try:
                self._run_ready()
            except BaseException:
                self._hold(0, n)
                raise
            if self._held is not None:
                try:
                    self._dispatch_held()
                except BaseException:
                    self._hold(0, n)
                    raise
            if n > 0:
                self._dispatch(n)
        except BaseException:
            if due:
                self._ready.extend(due)   # KeyboardInterrupt: the timers taken run next time
            raise
        if due:
            self._run_timers(due)
        return 0

    def _call_before_poll(self, callback):
        """Runs ``callback()`` once, at the end of this iteration (before the loop next waits
        for events), for code that gathers work during an iteration and does it in one go
        (answers queued by several callbacks sent with one ``sendmmsg``). An exception goes
        to the exception handler. Cython callers use ``corenet.capi.call_before_poll``."""
        self._before_poll.append(callback)

    cdef int _run_before_poll(self) except -1:
        cdef list todo = self._before_poll
        cdef Py_ssize_t i = 0, n = len(todo)
        self._before_poll = self._before_poll_swap
        try:
            while i < n:
                cb = todo[i]
                i += 1
                try:
                    cb()
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self.call_exception_handler({
                        "message": f"Exception in before-poll callback {cb!r}",
                        "exception": exc})
        except BaseException:
            self._before_poll[0:0] = todo[i:n]    # the rest runs next time
            raise
        finally:
            todo.clear()
            self._before_poll_swap = todo
        return 0

    cdef list _take_due_timers(self):
        """Takes the timers that are due now off the heap, in deadline order, at most
        MAX_TIMERS_PER_ITERATION of them (the others run in the next iterations, each
        after a poll that does not wait). Taken before the ready callbacks run, as asyncio
        does: a timer that falls due while they run (or that they set in the past) waits
        for the next iteration, after the callbacks they scheduled with call_soon."""
        cdef list timers = self._timers
        cdef list due = []
        cdef TimerHandle h
        cdef double end = self._now() + 1e-9
        while timers and len(due) < MAX_TIMERS_PER_ITERATION:
            h = <TimerHandle>timers[0]
            if h._at >= end:
                break
            self._heap_pop()
            if h._cancelled:
                self._timer_cancelled -= 1
            else:
                due.append(h)
        return due

    cdef int _run_timers(self, list due) except -1:
        """Runs timers taken by _take_due_timers, skipping those cancelled since; callbacks
        they schedule wait for the next iteration, as in asyncio."""
        cdef TimerHandle h
        cdef Py_ssize_t i = 0, n = len(due)
        try:
            while i < n:
                h = <TimerHandle>due[i]
                i += 1
                if not h._cancelled:
                    self._run_handle(h, True)
                    if self._often_every > 0.0:
                        self._read_often()
        except BaseException:
            self._ready[0:0] = due[i:n]   # KeyboardInterrupt: keep the rest for the next run
            raise
        return 0

    cdef int read_often(self, FdWatcher w, double every) except -1:
        """Besides its epoll events, ``w.on_events(loop, EPOLLIN)`` is called between two
        callbacks of an iteration (I/O events, ready callbacks, timers) once ``every``
        seconds have passed since the poll or the last such call, whichever came later (an
        iteration shorter than ``every`` reads nothing more than its poll said): a socket
        whose readers must not wait for a long iteration to end (a resolver's listener,
        whose cached answers would wait behind the replies and timers of its misses) is
        read in the middle of it. The watcher must be registered for reading, and its
        ``on_events`` must cope with an empty socket. The loop reads all such watchers
        together, at the shortest ``every`` asked. ``unregister_watcher`` (or
        ``read_often_stop``) ends it (``corenet.capi.read_often``)."""
        if every <= 0.0:
            raise ValueError("every must be positive")
        if w not in self._often:
            self._often.append(w)
        if self._often_every == 0.0 or every < self._often_every:
            self._often_every = every
        self._often_next = self._clock() + self._often_every
        return 0

    cdef int read_often_stop(self, FdWatcher w) except -1:
        if w in self._often:
            self._often.remove(w)
            if not self._often:
                self._often_every = 0.0
        return 0

    cdef int _read_often(self) except -1:
        """The watchers of ``read_often``, when their interval has passed since the last
        turn. An exception from one goes to the exception handler, as a callback's would."""
        cdef double now = self._clock()       # paced by the work done, whatever time() says
        cdef FdWatcher w
        if now < self._often_next:
            return 0
        self._often_next = now + self._often_every
        for w in tuple(self._often):
            if w.registered & EPOLLIN:
                try:
                    w.on_events(self, EPOLLIN)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self.call_exception_handler({
                        "message": f"Exception reading {w!r} between callbacks",
                        "exception": exc})
        return 0

    def poll_before_sleeping(self, double limit):
        """corenet's own, for a caller that has just sent something whose answer may come
        within ``limit`` seconds (a request to a server nearby): the loop's next wait for
        I/O polls epoll without sleeping for a while before it sleeps. Waking from sleep
        costs a process, and a virtual machine's halted CPU, tens of microseconds; the
        polling costs CPU time until the answer comes. How long it polls adapts to what
        came: it grows while the answers come within ``limit``, and falls to nothing when
        they come later (see SPIN_START). A wait with nothing to wait for but timers, or
        a limit of 0, does not poll."""
        if limit > 0.0 and limit > self._spin_limit:
            self._spin_limit = limit

    cdef int _poll(self, double timeout) except -1:
        """Waits for events; returns how many are in ``self._events``."""
        cdef int n, ms
        cdef timespec ts
        cdef int epfd = self._epfd
        cdef double limit = self._spin_limit, began = 0.0
        self._polls += 1
        if self._deleted:
            self._deleted.clear()
        if timeout != 0.0:
            # A signal that came since Python code last ran was only flagged (no bytecode
            # ran to call its handler): handled now, not slept through (the handler of
            # asyncio.Runner, for one, wakes the loop).
            PyErr_CheckSignals()
            if limit > 0.0:
                self._spin_limit = 0.0
                began = self._clock()
                n = self._spin(began, timeout, limit)
                if n != 0:
                    return self._polled(n)
                PyErr_CheckSignals()        # one that came while it polled
                if timeout > 0.0:
                    timeout -= self._clock() - began
                    if timeout <= 0.0:
                        timeout = 0.0       # the timers are due: a look, no sleep
        if timeout == 0.0:
            n = epoll_wait(epfd, self._events, self._maxevents, 0)
        elif timeout < 0.0:
            with nogil:
                n = epoll_wait(epfd, self._events, self._maxevents, -1)
        else:
            if self._has_pwait2:
                ts.tv_sec = <time_t>timeout
                ts.tv_nsec = <long>((timeout - <double>ts.tv_sec) * 1e9)
                with nogil:
                    n = corenet_epoll_pwait2(epfd, self._events, self._maxevents, &ts)
                if n < 0 and errno == ENOSYS:
                    self._has_pwait2 = False
            if not self._has_pwait2:
                ms = <int>(timeout * 1000.0)
                if <double>ms < timeout * 1000.0:
                    ms += 1
                with nogil:
                    n = epoll_wait(epfd, self._events, self._maxevents, ms)
        if began != 0.0 and n > 0:        # the wait poll_before_sleeping asked for
            self._adapt_spin(self._clock() - began, limit)
        return self._polled(n)

    cdef int _polled(self, int n) except -1:
        """What epoll_wait returned, errors raised (EINTR: none, signals handled)."""
        if n < 0:
            if errno == EINTR:
                PyErr_CheckSignals()
                return 0
            PyErr_SetFromErrno(OSError)
        return n

    cdef int _spin(self, double began, double timeout, double limit) noexcept:
        """poll_before_sleeping's polling: epoll_wait without sleeping until events come
        (their count), the window (at most ``limit``) ends or the timeout does (0), or an
        error (-1). Without the GIL, as a sleeping wait: other threads run meanwhile."""
        cdef double end = began + (limit if self._spin_window > limit else self._spin_window)
        cdef int n, epfd = self._epfd, maxevents = self._maxevents
        cdef epoll_event *events = self._events
        cdef timespec ts
        if self._spin_window <= 0.0:
            return 0
        if timeout > 0.0 and began + timeout < end:
            end = began + timeout
        with nogil:
            while True:
                n = epoll_wait(epfd, events, maxevents, 0)
                if n != 0:
                    break
                # the CPU to whatever else is ready on it: often the very peer whose
                # answer is awaited, woken by the request on this CPU
                sched_yield()
                clock_gettime(CLOCK_MONOTONIC, &ts)
                if <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9 >= end:
                    break
        if n > 0:
            self._spins_caught += 1
        return n

    cdef void _adapt_spin(self, double waited, double limit) noexcept:
        """After a wait poll_before_sleeping asked for, which ended with I/O ``waited``
        seconds after it began: a window that long would have caught it if it is within
        ``limit``."""
        cdef double w = self._spin_window
        if waited <= limit:
            w = SPIN_START if w < SPIN_START else 2.0 * w
            self._spin_window = limit if w > limit else w
        else:
            w *= 0.5
            self._spin_window = 0.0 if w < SPIN_START else w

    cdef int _dispatch(self, int n) except -1:
        cdef int i = 0, fd
        cdef uint32_t events
        cdef uint64_t counter
        cdef list fds = self._fds
        cdef object w
        try:
            while i < n:
                fd = self._events[i].data.fd
                events = self._events[i].events
                i += 1
                if fd == self._eventfd:
                    read(fd, &counter, 8)
                    continue
                w = fds[fd] if fd < len(fds) else None
                if w is None:
                    # A stale registration: stop hearing about it. One unregistered since the
                    # poll (a connection closed by an earlier callback) is out of epoll already.
                    if fd not in self._deleted:
                        epoll_ctl(self._epfd, EPOLL_CTL_DEL, fd, NULL)
                    continue
                if self._debug and type(w) is not FdWatcher:
                    self._on_events_timed(<FdWatcher>w, events)
                else:
                    (<FdWatcher>w).on_events(self, events)
                if self._often_every > 0.0:
                    self._read_often()
        except BaseException:
            self._hold(i, n)    # KeyboardInterrupt: the events after it are not lost
            raise
        return 0

    cdef int _on_events_timed(self, FdWatcher w, uint32_t events) except -1:
        """Debug mode: a transport's events (its protocol's callbacks) that take long are
        reported as a slow callback, as asyncio reports its transports' read handles.
        (A plain fd watcher's callbacks are timed as handles, in _run_handle.)"""
        cdef double t0 = self._now(), dt
        try:
            w.on_events(self, events)
        finally:
            dt = self._now() - t0
            if dt >= self.slow_callback_duration:
                logger.warning("Executing %s took %.3f seconds", f"<I/O events of {w!r}>", dt)
        return 0

    cdef int _hold(self, int start, int n) except -1:
        """Keeps the events ``start``..``n`` of the last poll, which an exception escaping
        the iteration (KeyboardInterrupt, SystemExit) left undispatched, for the next one.
        Only edge mode needs this: an edge-triggered transport hears of readiness once, and
        would stall until the next edge; level-triggered registrations are simply reported
        again by the next poll."""
        cdef int i, fd
        if not self._edge or start >= n:
            return 0
        if self._held is None:
            self._held = []
        for i in range(start, n):
            fd = self._events[i].data.fd
            if fd != self._eventfd:
                self._held.append((fd, self._events[i].events))
        return 0

    cdef int _dispatch_held(self) except -1:
        """Dispatches what ``_hold`` kept, after the callbacks left from the interrupted
        iteration (as asyncio runs the I/O callbacks queued then), to the edge-triggered
        watchers still there (a plain fd watcher is level-triggered: the poll reports it)."""
        cdef list held = self._held
        cdef Py_ssize_t i = 0, n = len(held)
        cdef list fds = self._fds
        cdef int fd
        self._held = None
        try:
            while i < n:
                fd, events = held[i]
                i += 1
                w = fds[fd] if fd < len(fds) else None
                if w is not None and type(w) is not FdWatcher:
                    (<FdWatcher>w).on_events(self, events)
        except BaseException:
            if i < n:
                self._held = held[i:n]
            raise
        return 0

    cdef int _run_handle(self, Handle h, bint oneshot=False) except -1:
        cdef double t0, dt
        if not self._debug:
            return h.run_c(oneshot)
        # Debug mode keeps the callback for the slow-callback warning's repr, then lets go
        # of it as a oneshot run does (a task that failed is reported as soon as without).
        self._current_handle = h
        t0 = self._now()
        try:
            h.run_c(False)
        finally:
            self._current_handle = None
        dt = self._now() - t0
        if dt >= self.slow_callback_duration:
            # Described now: a logging handler may format the record after the handle has
            # let go of its callback.
            logger.warning("Executing %s took %.3f seconds", _format_handle(h), dt)
        if oneshot:
            h._let_go()
        return 0

    cdef int _run_ready(self) except -1:
        cdef list todo = self._ready
        cdef Py_ssize_t i, n = len(todo)
        cdef Handle h
        if n == 0:
            return 0
        self._ready = self._ready_swap
        i = 0
        try:
            if self._debug:
                while i < n:
                    h = <Handle>todo[i]
                    i += 1
                    if not h._cancelled:
                        self._run_handle(h, True)
                        if self._often_every > 0.0:
                            self._read_often()
            else:
                while i < n:
                    h = <Handle>todo[i]
                    i += 1
                    if not h._cancelled:
                        h.run_c(True)
                        if self._often_every > 0.0:
                            self._read_often()
        except BaseException:
            # KeyboardInterrupt/SystemExit: keep the callbacks not yet run for the next run.
            self._current_handle = None
            self._ready[0:0] = todo[i:n]
            todo.clear()
            self._ready_swap = todo
            raise
        todo.clear()
        self._ready_swap = todo
        return 0

    # ---------------------------------------------------------------- fd table

    cdef FdWatcher _watcher(self, int fd):
        cdef list fds = self._fds
        cdef object w
        if fd < 0:
            raise ValueError(f"Invalid file descriptor: {fd}")
        if fd >= len(fds):
            fds.extend([None] * (fd + 1 - len(fds) + 64))
        w = fds[fd]
        if w is None:
            w = FdWatcher(fd)
            fds[fd] = w
        return <FdWatcher>w

    def _get_watcher(self, int fd):
        if 0 <= fd < len(self._fds):
            return self._fds[fd]
        return None

    cdef int _epoll_ctl(self, int op, int fd, uint32_t events) except -1:
        cdef epoll_event ev
        ev.events = events
        ev.data.u64 = 0
        ev.data.fd = fd
        self._epoll_ctl_calls += 1
        if epoll_ctl(self._epfd, op, fd, &ev) == 0:
            if op == EPOLL_CTL_ADD:
                self._nregistered += 1
            elif op == EPOLL_CTL_DEL and self._nregistered > 0:
                self._nregistered -= 1
            return 0
        if op == EPOLL_CTL_ADD and errno == EEXIST:
            if epoll_ctl(self._epfd, EPOLL_CTL_MOD, fd, &ev) == 0:
                return 0
        elif op == EPOLL_CTL_MOD and errno == ENOENT:
            if epoll_ctl(self._epfd, EPOLL_CTL_ADD, fd, &ev) == 0:
                self._nregistered += 1
                return 0
        elif op == EPOLL_CTL_DEL and (errno == ENOENT or errno == EBADF):
            # Closed while registered: the kernel dropped it; we had counted it.
            if self._nregistered > 0:
                self._nregistered -= 1
            return 0
        PyErr_SetFromErrno(OSError)
        return -1

    cdef int _sync(self, FdWatcher w, bint lazy) except -1:
        """Makes epoll's mask for ``w`` match what its callbacks wait for. With ``lazy``, a
        socket used by ``sock_*`` calls stays registered between calls (no epoll_ctl per call)."""
        cdef uint32_t want = 0
        if w.reader is not None or w.rop is not None:
            want |= EPOLLIN
        if w.writer is not None or w.wop is not None:
            want |= EPOLLOUT
        if want == w.registered:
            return 0
        if want == 0:
            if lazy and w.owner is not None:
                return 0
            self._epoll_ctl(EPOLL_CTL_DEL, w.fd, 0)
        elif w.registered == 0:
            self._epoll_ctl(EPOLL_CTL_ADD, w.fd, want)
        else:
            self._epoll_ctl(EPOLL_CTL_MOD, w.fd, want)
        w.registered = want
        return 0

    cdef int register_watcher(self, FdWatcher w, uint32_t events) except -1:
        """For transports: put ``w`` in the fd table and register it with ``events`` (0: in
        the table only, for level-triggered transports that register on demand)."""
        cdef uint32_t old_registered = 0
        self._check_closed()
        if w.fd >= len(self._fds):
            self._fds.extend([None] * (w.fd + 1 - len(self._fds) + 64))
        old = self._fds[w.fd]
        if old is not None and old is not w:
            old_registered = (<FdWatcher>old).registered
            (<FdWatcher>old).registered = 0
        self._fds[w.fd] = w
        if events == 0:
            if old_registered:
                self._epoll_ctl(EPOLL_CTL_DEL, w.fd, 0)
        elif old_registered:
            self._epoll_ctl(EPOLL_CTL_MOD, w.fd, events)
        else:
            self._epoll_ctl(EPOLL_CTL_ADD, w.fd, events)
        w.registered = events
        return 0

    cdef int unregister_watcher(self, FdWatcher w) except -1:
        if self._often_every > 0.0:
            self.read_often_stop(w)
        if w.fd < len(self._fds) and self._fds[w.fd] is w:
            self._fds[w.fd] = None
        if w.registered and self._epfd >= 0:
            self._epoll_ctl(EPOLL_CTL_DEL, w.fd, 0)
            self._deleted.add(w.fd)
        w.registered = 0
        return 0

    cdef int close_watcher(self, FdWatcher w) except -1:
        """``unregister_watcher(w)`` then ``close(w.fd)`` (``w.fd`` becomes -1), without the
        epoll_ctl: closing the last descriptor of a file takes it out of the epoll set. Only
        for a descriptor the watcher owns alone (never duplicated), such as a socket made
        for one exchange (``corenet.capi.unwatch_close``)."""
        cdef int fd = w.fd
        if fd < 0:
            return 0
        if self._often_every > 0.0:
            self.read_often_stop(w)
        if fd < len(self._fds) and self._fds[fd] is w:
            self._fds[fd] = None
        if w.registered and self._nregistered > 0:
            self._nregistered -= 1
        w.registered = 0
        w.fd = -1
        close(fd)
        return 0

    cdef int _set_op(self, int fd, object sock, object op, bint write) except -1:
        cdef FdWatcher w = self._watcher(fd)
        if type(w) is not FdWatcher:
            raise RuntimeError(f"File descriptor {fd} is used by transport {w!r}")
        if w.owner is not sock:
            # The registration may belong to a socket closed since: resynchronise it.
            if w.registered and w.reader is None and w.writer is None:
                self._epoll_ctl(EPOLL_CTL_DEL, fd, 0)
                w.registered = 0
            w.owner = sock
        if write:
            w.writer = None
            w.wfile = None
            w.wop = op
        else:
            w.reader = None
            w.rfile = None
            w.rop = op
        self._sync(w, True)
        return 0

    cdef int _clear_op(self, int fd, object op, bint write) except -1:
        cdef FdWatcher w
        if fd >= len(self._fds) or self._fds[fd] is None or self._closed:
            return 0
        w = <FdWatcher>self._fds[fd]
        if write:
            if w.wop is not op:
                return 0
            w.wop = None
        else:
            if w.rop is not op:
                return 0
            w.rop = None
        self._sync(w, True)
        return 0

    # ---------------------------------------------------------------- fd watchers

    def _ensure_fd_no_transport(self, fd):
        self._check_no_transport(_fileno_of(fd), fd)

    cdef int _check_no_transport(self, int fileno, fd) except -1:
        if 0 <= fileno < len(self._fds):
            w = self._fds[fileno]
            if w is not None and type(w) is not FdWatcher:
                raise RuntimeError(f"File descriptor {fd!r} is used by transport {w!r}")
        return 0

    def add_reader(self, fd, callback, *args):
        self._ensure_fd_no_transport(fd)
        self._add_watch(fd, callback, args, False)

    def add_writer(self, fd, callback, *args):
        self._ensure_fd_no_transport(fd)
        self._add_watch(fd, callback, args, True)

    def remove_reader(self, fd):
        self._ensure_fd_no_transport(fd)
        return self._remove_watch(fd, False)

    def remove_writer(self, fd):
        self._ensure_fd_no_transport(fd)
        return self._remove_watch(fd, True)

    def _add_reader(self, fd, callback, *args):
        self._add_watch(fd, callback, args, False)

    def _remove_reader(self, fd):
        return self._remove_watch(fd, False)

    def _add_writer(self, fd, callback, *args):
        self._add_watch(fd, callback, args, True)

    def _remove_writer(self, fd):
        return self._remove_watch(fd, True)

    cdef int add_reader_c(self, int fd, object callback) except -1:
        """``add_reader(fd, callback)`` for Cython callers (``corenet.capi.add_reader_fd``)."""
        self._check_no_transport(fd, fd)
        self._check_closed()
        return self._watch(fd, callback, (), False, None)

    def _add_watch(self, fd, callback, tuple args, bint write):
        self._check_closed()
        self._watch(_fileobj_to_fd(fd), callback, args, write,
                    None if isinstance(fd, int) else fd)

    cdef int _watch(self, int fileno, callback, tuple args, bint write, object fileobj) except -1:
        cdef Handle h
        cdef FdWatcher w
        h = Handle(callback, args, self, None)
        w = self._watcher(fileno)
        if w.owner is not None:
            # Drop the lazily kept registration of a sock_* call: it may be stale.
            w.owner = None
            if w.rop is None and w.wop is None and w.registered:
                self._epoll_ctl(EPOLL_CTL_DEL, fileno, 0)
                w.registered = 0
        if write:
            if w.writer is not None:
                w.writer.cancel()
            w.writer = h
            w.wfile = fileobj
            w.wop = None
        else:
            if w.reader is not None:
                w.reader.cancel()
            w.reader = h
            w.rfile = fileobj
            w.rop = None
        try:
            self._sync(w, False)
        except OSError:
            if write:
                w.writer = None
                w.wfile = None
            else:
                w.reader = None
                w.rfile = None
            w.registered = 0
            raise
        return 0

    def _remove_watch(self, fd, bint write):
        cdef int fileno
        cdef FdWatcher w
        if self._closed:
            return False
        fileno = _fileno_of(fd)
        if fileno < 0:
            # A file object closed since it was registered: found by identity, as
            # asyncio's selector finds it.
            return self._unwatch(self._watcher_of_closed(fd, fileno), write, True)
        if fileno >= len(self._fds) or self._fds[fileno] is None:
            return False
        return self._unwatch(<FdWatcher>self._fds[fileno], write, False)

    cdef FdWatcher _watcher_of_closed(self, object fileobj, int fileno):
        """The watcher whose add_reader or add_writer was given ``fileobj``; ValueError
        if none (asyncio's message). A search of the fd table, as asyncio's selector does:
        only for an object closed while registered. The descriptor number may have been
        reused since: a registration made for the new file names the new object, so it is
        never the one found."""
        cdef FdWatcher w
        for obj in self._fds:
            if obj is None or type(obj) is not FdWatcher:
                continue
            w = <FdWatcher>obj
            if ((w.reader is not None and w.rfile is fileobj)
                    or (w.writer is not None and w.wfile is fileobj)):
                return w
        raise ValueError(f"Invalid file descriptor: {fileno}")

    cdef object _unwatch(self, FdWatcher w, bint write, bint closed):
        if write:
            if w.writer is None:
                return False
            w.writer.cancel()
            w.writer = None
            w.wfile = None
        else:
            if w.reader is None:
                return False
            w.reader.cancel()
            w.reader = None
            w.rfile = None
        w.owner = None
        try:
            self._sync(w, False)
        except OSError as exc:
            # Closing the file took its registration out of the epoll set already.
            if not closed or exc.errno not in (EBADF, ENOENT):
                raise
            w.registered = 0
        return True

    cpdef _close_reader_fd(self, int fd):
        """``remove_reader(fd)`` then ``os.close(fd)``, without the epoll_ctl: closing the
        last descriptor of a file takes it out of the epoll set. Only for a descriptor its
        caller owns alone (never dup'ed, watched for reading only), such as a socket made
        for one exchange. Falls back to the two calls otherwise
        (``corenet.capi.close_reader_fd``)."""
        cdef FdWatcher w
        if (self._closed or fd < 0 or fd >= len(self._fds) or self._fds[fd] is None
                or type(self._fds[fd]) is not FdWatcher):
            self._remove_watch(fd, False)
            os.close(fd)
            return
        w = <FdWatcher>self._fds[fd]
        if w.writer is not None or w.rop is not None or w.wop is not None:
            self._remove_watch(fd, False)
            os.close(fd)
            return
        if w.reader is not None:
            w.reader.cancel()
            w.reader = None
            w.rfile = None
        self._fds[fd] = None
        if w.registered and self._nregistered > 0:
            self._nregistered -= 1
        w.registered = 0
        w.owner = None
        close(fd)

    # ---------------------------------------------------------------- futures and tasks

    def create_future(self):
        return Future(loop=self)

    def create_task(self, coro, *, name=None, context=None):
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._task_factory is None:
            task = Task(coro, loop=self, name=name, context=context)
            if self._debug and task._source_traceback:
                tb = task._source_traceback
                del tb[len(tb) - 1]
        else:
            if context is None:
                task = self._task_factory(self, coro)
            else:
                task = self._task_factory(self, coro, context=context)
            if name is not None:
                try:
                    set_name = task.set_name
                except AttributeError:
                    pass
                else:
                    set_name(name)
        return task

    def set_task_factory(self, factory):
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self):
        return self._task_factory

    # ---------------------------------------------------------------- socket operations

    async def sock_recv(self, sock, Py_ssize_t n):
        check_sock(self, sock)
        try:
            return sock.recv(n)
        except (BlockingIOError, InterruptedError):
            pass
        cdef RecvOp op = RecvOp.__new__(RecvOp)
        op.n = n
        return await self._wait_op(sock, op, False)

    async def sock_recv_into(self, sock, buf):
        check_sock(self, sock)
        try:
            return sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            pass
        cdef RecvIntoOp op = RecvIntoOp.__new__(RecvIntoOp)
        op.buf = buf
        return await self._wait_op(sock, op, False)

    async def sock_recvfrom(self, sock, Py_ssize_t bufsize):
        check_sock(self, sock)
        try:
            return sock.recvfrom(bufsize)
        except (BlockingIOError, InterruptedError):
            pass
        cdef RecvfromOp op = RecvfromOp.__new__(RecvfromOp)
        op.n = bufsize
        return await self._wait_op(sock, op, False)

    async def sock_recvfrom_into(self, sock, buf, Py_ssize_t nbytes=0):
        check_sock(self, sock)
        if not nbytes:
            nbytes = len(buf)
        try:
            return sock.recvfrom_into(buf, nbytes)
        except (BlockingIOError, InterruptedError):
            pass
        cdef RecvfromIntoOp op = RecvfromIntoOp.__new__(RecvfromIntoOp)
        op.buf = buf
        op.n = nbytes
        return await self._wait_op(sock, op, False)

    async def sock_sendall(self, sock, data):
        cdef Py_ssize_t n = 0
        check_sock(self, sock)
        try:
            n = sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        view = memoryview(data).cast("B")
        if n == len(view):
            return None
        cdef SendallOp op = SendallOp.__new__(SendallOp)
        op.view = view
        op.pos = n
        op.size = len(view)
        return await self._wait_op(sock, op, True)

    async def sock_sendto(self, sock, data, address):
        check_sock(self, sock)
        try:
            return sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            pass
        cdef SendtoOp op = SendtoOp.__new__(SendtoOp)
        op.data = data
        op.address = address
        return await self._wait_op(sock, op, True)

    async def sock_accept(self, sock):
        check_sock(self, sock)
        try:
            conn, address = sock.accept()
            conn.setblocking(False)
            return conn, address
        except (BlockingIOError, InterruptedError):
            pass
        cdef AcceptOp op = AcceptOp.__new__(AcceptOp)
        return await self._wait_op(sock, op, False)

    def _check_sock(self, sock):
        """asyncio's checks of a socket given to a sock_* method: not an SSLSocket, and in
        debug mode, non-blocking."""
        check_sock(self, sock)

    async def _sock_connect_resolved(self, sock, address):
        check_sock(self, sock)
        try:
            sock.connect(address)
            return None
        except (BlockingIOError, InterruptedError):
            pass
        cdef ConnectOp op = ConnectOp.__new__(ConnectOp)
        op.address = address
        return await self._wait_op(sock, op, True)

    async def _wait_op(self, sock, SockOp op, bint write):
        cdef int fd = sock.fileno()
        op.fut = fut = Future(loop=self)
        op.sock = sock
        op.fd = fd
        op.write = write
        self._set_op(fd, sock, op, write)
        try:
            return await fut
        finally:
            self._clear_op(fd, op, write)


def _timer_key(h):
    return ((<TimerHandle>h)._at, (<TimerHandle>h)._seq)


cdef int _fileno_of(object fileobj) except? -2:
    """The descriptor number of ``fileobj`` (an int or an object with ``fileno()``), as
    asyncio reads it: negative for a closed socket object."""
    if isinstance(fileobj, int):
        return fileobj
    try:
        return int(fileobj.fileno())
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"Invalid file object: {fileobj!r}") from None


cdef int _fileobj_to_fd(object fileobj) except -1:
    cdef int fd = _fileno_of(fileobj)
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd
