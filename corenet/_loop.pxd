from libc.stdint cimport uint32_t, uint64_t
from corenet._sys cimport epoll_event


cdef class Handle:
    cdef object _callback
    cdef object _args
    cdef object _context
    cdef BaseLoop _loop
    cdef bint _cancelled
    cdef public object _source_traceback
    cdef object _repr
    cdef object __weakref__

    cdef int run_c(self, bint oneshot) except -1
    cdef int _let_go(self) except -1
    cdef str _describe_callback(self)
    cpdef cancel(self)


cdef class TimerHandle(Handle):
    cdef double _at                # the deadline (``_when``, ``when()``: as it was given)
    cdef bint _int_when            # call_at was given an int
    cdef uint64_t _seq
    cdef bint _scheduled
    cpdef cancel(self)
    cdef object _when_value(self)


cdef class FdWatcher:
    """What the loop knows of one descriptor. Subclasses (the transports) override
    ``on_events`` to be called straight from the epoll array, with no Handle in between."""
    cdef int fd
    cdef uint32_t registered      # the mask epoll has now (0: not registered)
    cdef Handle reader            # add_reader / add_writer callbacks (asyncio semantics)
    cdef Handle writer
    cdef object rop               # internal one-shot socket operations, run directly
    cdef object wop
    cdef object owner             # socket kept registered lazily between sock_* calls
    cdef object rfile             # the object given to add_reader / add_writer (None for
    cdef object wfile             # an int): found again by identity once it is closed

    cdef int on_events(self, BaseLoop loop, uint32_t events) except -1


cdef class BaseLoop:
    cdef int _epfd
    cdef int _eventfd
    cdef epoll_event *_events
    cdef int _maxevents
    cdef bint _has_pwait2

    cdef list _ready
    cdef list _ready_swap
    cdef list _timers
    cdef uint64_t _timer_seq
    cdef public uint64_t _epoll_ctl_calls   # every epoll_ctl the loop made, for tests and benchmarks
    cdef readonly unsigned long long _polls   # epoll waits so far (how soon a watcher was woken again)
    cdef Py_ssize_t _timer_cancelled
    cdef Py_ssize_t _nregistered      # descriptors in epoll besides the loop's eventfd
    cdef bint _polled_last      # the iteration before this one polled (see _run_once)
    cdef list _fds
    cdef set _deleted           # fds taken out of epoll since the last poll (see _dispatch)
    cdef list _held             # edge mode: (fd, events) an interrupted iteration left undone
    cdef list _before_poll      # one-shot callables run before the next poll (flushes)
    cdef list _before_poll_swap
    cdef list _often            # watchers also read between pieces of long iterations
    cdef double _often_every    # ... once this many seconds of work have passed
    cdef double _often_next
    cdef double _spin_limit     # poll_before_sleeping: how long the next wait may poll
    cdef readonly double _spin_window  # how long a wait it asked for polls now (adapted)
    cdef readonly unsigned long long _spins_caught  # waits whose I/O came while polling

    cdef bint _stopping
    cdef public bint _closed
    cdef public bint _debug
    cdef bint _running
    cdef public bint _edge
    cdef public object _thread_id
    cdef public double slow_callback_duration
    cdef public object _current_handle
    cdef public object _exception_handler
    cdef public object _task_factory
    cdef object _internal_context
    cdef bint _time_override    # time() overridden by a subclass or set on the instance

    cdef double _now(self) except? -1.0
    cdef double _clock(self) noexcept
    cdef _close_fds(self)
    cdef int _check_closed(self) except -1
    cdef int _check_thread(self) except -1
    cdef Handle _call_soon(self, object callback, object args, object context)
    cdef TimerHandle _call_at(self, double when, object callback, object args, object context)
    cdef int _timer_cancelled_one(self, TimerHandle h) except -1
    cdef int _heap_push(self, TimerHandle h) except -1
    cdef TimerHandle _heap_pop(self)
    cdef int _compact_timers(self) except -1
    cdef int _run_once(self) except -1
    cdef int _poll(self, double timeout) except -1
    cdef int _polled(self, int n) except -1
    cdef int _spin(self, double began, double timeout, double limit) noexcept
    cdef void _adapt_spin(self, double waited, double limit) noexcept
    cdef int _run_ready(self) except -1
    cdef int _run_before_poll(self) except -1
    cdef int _run_handle(self, Handle h, bint oneshot=*) except -1
    cdef int _dispatch(self, int n) except -1
    cdef int _on_events_timed(self, FdWatcher w, uint32_t events) except -1
    cdef int _hold(self, int start, int n) except -1
    cdef int _dispatch_held(self) except -1
    cdef list _take_due_timers(self)
    cdef int _run_timers(self, list due) except -1
    cdef int _read_often(self) except -1
    cdef int read_often(self, FdWatcher w, double every) except -1
    cdef int read_often_stop(self, FdWatcher w) except -1

    cdef FdWatcher _watcher(self, int fd)
    cdef int _sync(self, FdWatcher w, bint lazy) except -1
    cdef int _epoll_ctl(self, int op, int fd, uint32_t events) except -1
    cdef int register_watcher(self, FdWatcher w, uint32_t events) except -1
    cdef int _watch(self, int fileno, callback, tuple args, bint write, object fileobj) except -1
    cdef FdWatcher _watcher_of_closed(self, object fileobj, int fileno)
    cdef object _unwatch(self, FdWatcher w, bint write, bint closed)
    cdef int _check_no_transport(self, int fileno, fd) except -1
    # for Cython callers, published through corenet/capi.pxd: add_reader, call_later and
    # close-without-epoll_ctl
    cdef int add_reader_c(self, int fd, object callback) except -1
    cdef TimerHandle call_later_c(self, double delay, object callback)
    cpdef _close_reader_fd(self, int fd)
    cdef int unregister_watcher(self, FdWatcher w) except -1
    cdef int close_watcher(self, FdWatcher w) except -1
    cdef int _set_op(self, int fd, object sock, object op, bint write) except -1
    cdef int _clear_op(self, int fd, object op, bint write) except -1
