# cython: language_level=3
"""One upstream UDP query in flight, in C, without a Python socket object.

A fresh non-blocking socket per query, connected to the server (so the kernel picks a fresh
random source port and drops datagrams from any other address), the query sent, and the
socket watched on the running loop (on corenet's, an ``FdWatcher`` of its C API called
straight from epoll; on another loop, ``add_reader``). A datagram is accepted only with the
query's ID, QR set, one question and that question byte for byte (case-sensitive); anything
else is counted (``stats.dropped_mismatched`` / ``dropped_malformed``) and the query keeps
waiting. A query whose name went out in random case (``use-caps-for-id``: ``mixed_case``,
the question as the caller asked it in ``asked``) ends with ``CapsMismatch`` on a reply that
echoes the question in another case, and a reply that echoes it exactly gets the question
back as asked before it is parsed. ``fut`` gets (reply wire, wire.Parsed),
``UpstreamTimeout`` at the timeout or ``UpstreamFailure`` on an ICMP error
(``UpstreamUnreachable`` when the host has no way to the address); ``close()`` must follow,
also on cancellation.

With ``on_done`` there is no future: ``on_done(query)`` is called once (in C when it is a
``QueryDone``), straight from the readiness or timer callback, with the outcome in
``reply``/``parsed`` or ``error`` (the daemon's miss driver, ``resolver.resolution``, saves a
Future and a callback hop per upstream query).

``defer=True`` (with ``on_done``, on corenet's loop) sends the query at the end of the loop's
iteration rather than at once: the queries a burst of client queries starts leave together, so
the server is woken once for them, not once each. A send that fails then ends the query
through ``on_done`` with ``UpstreamFailure``.

Addresses must be numeric (``inet_pton``): the root hints are checked when they are read, and
glue and A/AAAA data are numeric by construction. Anything else raises ``UpstreamFailure``.
"""
cimport cython
from libc.errno cimport errno, EAGAIN, EINTR
from libc.string cimport memcmp, memcpy
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8

cdef extern from "Python.h":
    object PyMethod_New(object func, object self)     # Python 3's two arguments

import os

from libc.stdint cimport uint32_t

from corenet.capi cimport (EPOLLIN, FdWatcher, Loop, TimerHandle, call_before_poll,
                          call_later_fn, fast_loop, unwatch_close, watch)
from corenet.batch cimport cn_sockaddr, sockaddr_storage
from resolver.state cimport LimitValues, limit_values
from resolver.cache.answer cimport monotonic
from resolver.upstream.errors import (OUT_OF_DESCRIPTORS, UNREACHABLE_ERRNOS, CapsMismatch,
                                      NoDescriptors, SocketCap,
                                      UpstreamFailure, UpstreamTimeout, UpstreamUnreachable)
from resolver.wire.codec cimport parse_response
from resolver.wire.codec import WireError

cdef unsigned short _ids[256]
cdef int _ids_left = 0


cpdef int fresh_id() except -1:
    """A query ID from the kernel's CSPRNG, drawn 256 at a time (one getrandom call per 256
    queries instead of one per query; each ID is still used once)."""
    global _ids_left
    cdef bytes raw
    cdef const unsigned char* p
    cdef int i
    if _ids_left == 0:
        raw = os.urandom(512)
        p = raw
        for i in range(256):
            _ids[i] = (p[2 * i] << 8) | p[2 * i + 1]
        _ids_left = 256
    _ids_left -= 1
    return _ids[_ids_left]


cdef unsigned char _bits[256]
cdef int _bits_left = 0


cpdef bytes mixed_case(bytes name):
    """``name`` (wire format) with the case of each letter drawn at random from the
    kernel's CSPRNG, a bit per letter (``use-caps-for-id``, "0x20"): what a forged reply
    must guess on top of the ID and the port. Label lengths (at most 63) are never
    letters."""
    global _bits_left
    cdef Py_ssize_t n = PyBytes_GET_SIZE(name), i
    if n < 2:                     # the root (and CPython's shared one-byte objects)
        return name
    cdef bytes out = PyBytes_FromStringAndSize(PyBytes_AS_STRING(name), n)
    cdef unsigned char *p = <unsigned char *>PyBytes_AS_STRING(out)
    cdef unsigned char c, pool = 0
    cdef int left = 0
    cdef bytes raw
    for i in range(n):
        c = p[i] | 0x20
        if c < 97 or c > 122:
            continue
        if left == 0:
            if _bits_left == 0:
                raw = os.urandom(256)
                memcpy(_bits, PyBytes_AS_STRING(raw), 256)
                _bits_left = 256
            _bits_left -= 1
            pool, left = _bits[_bits_left], 8
        if pool & 1:
            p[i] ^= 0x20
        pool >>= 1
        left -= 1
    return out


cpdef str source_for(object source, str addr):
    """The address an upstream socket to ``addr`` is bound to, from ``source``: None, one
    numeric address or a tuple of them (the resolver's ``source``). Of those of ``addr``'s
    family, the one, or one drawn at random from the kernel's CSPRNG (as Unbound picks one
    of its ``outgoing-interface`` addresses per query); None when none is of that family:
    the kernel chooses."""
    if source is None:
        return None
    cdef bint v6 = ":" in addr
    if type(source) is str:
        return <str>source if (":" in <str>source) == v6 else None
    cdef list fits = [a for a in <tuple>source if (":" in <str>a) == v6]
    if not fits:
        return None
    if len(fits) == 1:
        return fits[0]
    return fits[fresh_id() % len(fits)]


cpdef bint needs_retry(bytes reply, bint edns):
    """FORMERR to an EDNS query, or a truncated reply: ``retry`` finishes the exchange."""
    return (reply[2] & 0x02) != 0 or (edns and (reply[3] & 0x0F) == 1)

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct sockaddr:
        pass
    int socket(int domain, int type, int protocol)
    int connect(int fd, const sockaddr* addr, socklen_t len)
    int bind(int fd, const sockaddr* addr, socklen_t len)
    ssize_t send(int fd, const void* buf, size_t n, int flags)
    ssize_t recv(int fd, void* buf, size_t n, int flags)
    int SOCK_DGRAM, SOCK_NONBLOCK, SOCK_CLOEXEC

cdef extern from "<errno.h>" nogil:
    int EWOULDBLOCK, EINVAL

cdef extern from "<unistd.h>" nogil:
    int c_close "close"(int fd)

cdef object _Failure = UpstreamFailure
cdef object _Timeout = UpstreamTimeout
cdef object _Unreachable = UpstreamUnreachable
cdef object _CapsMismatch = CapsMismatch
cdef frozenset _unreachable_errnos = UNREACHABLE_ERRNOS
cdef frozenset _out_of_descriptors = OUT_OF_DESCRIPTORS

# One receive buffer: callbacks run one at a time on the loop's thread, with the GIL held.
cdef unsigned char _buf[65536]


cdef object _failure(str addr, int err):
    """``resolver.upstream.errors.failure``: the exception for OS error ``err`` asking
    ``addr``."""
    kind = _Unreachable if err in _unreachable_errnos else _Failure
    return kind(f"{addr}: {OSError(err, os.strerror(err))}")


cdef Py_ssize_t _sockets = 0     # queries' sockets open in this process (max_upstream_sockets)


cpdef Py_ssize_t sockets_in_flight():
    """The upstream UDP queries' sockets open now."""
    return _sockets


cdef class QueryDone:
    # declared in udp.pxd

    cdef int done(self, UDPQuery q) except -1:
        raise NotImplementedError

    cdef int unwanted(self, UDPQuery q) except -1:
        return 0


cdef class _Watch(FdWatcher):
    """What corenet's loop holds for a query: its socket's readiness goes straight to the
    query, with no Handle and no bound method in between, and it is the query's timer
    callback. The query and its watch hold each other until ``UDPQuery.close``."""
    cdef UDPQuery q

    def __call__(self):
        """The query's time is up."""
        q = self.q
        if q is not None and not q.finished:
            q._finish(None, None, _Timeout(q.addr))

    cdef int on_events(self, Loop loop, uint32_t events) except -1:
        q = self.q
        if q is None:
            return 0
        try:
            q._read()
        except Exception as exc:       # a bug: reported as a failing callback would be
            loop.call_exception_handler({"message": f"upstream UDP query to {q.addr} failed",
                                         "exception": exc})
        return 0


cdef inline bint _answers(Py_ssize_t n, unsigned int qid, Py_ssize_t ql) noexcept:
    """The datagram of ``n`` bytes in ``_buf`` is a response with ID ``qid`` and one
    question, long enough to hold a question of ``ql`` bytes."""
    return (n >= 12 + ql and _buf[0] == (qid >> 8) and _buf[1] == (qid & 0xFF)
            and (_buf[2] & 0x80) != 0 and _buf[4] == 0 and _buf[5] == 1)


@cython.freelist(64)
cdef class UDPQuery:
    # fields: udp.pxd (the Drive reads the outcome as C fields)

    def __cinit__(self):
        self.fd = -1

    def __init__(self, loop, str addr, int port, bytes wire, unsigned int qid, bytes question,
                 double timeout, stats, limits, on_done=None, bint defer=False, source=None):
        self.open(loop, addr, port, wire, qid, question, timeout, stats, limits, on_done, defer,
                  source)

    cdef int open(self, loop, str addr, int port, bytes wire, unsigned int qid, bytes question,
                  double timeout, stats, limits, on_done, bint defer,
                  object source=None) except -1:
        """``__init__``, for the driver (resolver.resolution), which makes its queries
        without a Python call: ``UDPQuery.__new__(UDPQuery)`` then ``open``. ``source``: the
        address or addresses the socket may be bound to (its port picked by the kernel), as
        :func:`source_for` chooses, or None."""
        cdef sockaddr_storage sa, src
        cdef socklen_t srclen
        cdef str bound
        cdef int family, fd, err
        cdef Loop cl = fast_loop(loop)
        global _sockets
        cdef LimitValues lv = limit_values(limits)
        if lv.max_upstream_sockets > 0 and _sockets >= lv.max_upstream_sockets:
            raise SocketCap(f"asking {addr}: {_sockets} upstream sockets in flight "
                            f"(max-upstream-sockets)")
        cdef socklen_t salen = cn_sockaddr(PyUnicode_AsUTF8(addr), <unsigned short>port, 0, 0, &sa)
        if salen == 0:
            raise _Failure(f"not a numeric IPv{6 if ':' in addr else 4} address: {addr!r}")
        family = sa.ss_family
        fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
        if fd < 0:
            err = errno
            if err in _out_of_descriptors:
                raise NoDescriptors(f"asking {addr}: {OSError(err, os.strerror(err))}")
            raise _failure(addr, err)
        bound = source_for(source, addr) if source is not None else None
        if bound is not None:
            srclen = cn_sockaddr(PyUnicode_AsUTF8(bound), 0, 0, 0, &src)
            if srclen == 0 or bind(fd, <const sockaddr*>&src, srclen) != 0:
                err = errno if srclen else EINVAL
                c_close(fd)
                raise _Failure(f"asking {addr}: cannot bind the source address {bound}: "
                               f"{os.strerror(err)}")
        self.corenet = cl is not None
        defer = defer and self.corenet and on_done is not None
        if (connect(fd, <const sockaddr*>&sa, salen) != 0 or (not defer and send(
                fd, PyBytes_AS_STRING(wire), PyBytes_GET_SIZE(wire), 0) < 0)):
            err = errno
            c_close(fd)
            raise _failure(addr, err)
        self.fd = fd
        _sockets += 1
        if not defer:
            self.sent_at = monotonic()
        self.loop, self.addr, self.qid, self.question, self.wire = loop, addr, qid, question, wire
        self.stats = stats
        self.max_jumps = lv.max_pointer_jumps
        self.max_records = lv.max_records_per_section
        if on_done is None:
            self.fut = loop.create_future()
        else:
            self.on_done = on_done
        cdef _Watch w = None
        try:
            if self.corenet:
                w = _Watch.__new__(_Watch)
                w.fd, w.q = fd, self
                self.watcher = w
                if not defer:               # else _send watches it, after the send
                    watch(cl, w, EPOLLIN)
            else:
                loop.add_reader(fd, self._readable)
        except BaseException:
            self.fd = -1
            _sockets -= 1
            if w is not None:               # out of the loop's table, and closed
                self.watcher = None
                w.q = None
                unwatch_close(cl, w)
            else:
                c_close(fd)
            raise
        if self.corenet:
            self.timer = call_later_fn(cl, timeout, self.watcher)
            if defer:
                call_before_poll(cl, PyMethod_New(_send, self))
        else:
            self.timer = loop.call_later(timeout, self._expire)
        return 0

    def _send(self):
        """The deferred send (``defer=True``), then the readiness callback: the epoll_ctl
        is not on the way to the server, and no reply is read before the loop next polls,
        which sees a datagram that arrived before the registration."""
        if self.finished or self.fd < 0:
            return
        if send(self.fd, PyBytes_AS_STRING(self.wire), PyBytes_GET_SIZE(self.wire), 0) < 0:
            self._finish(None, None, _failure(self.addr, errno))
            return
        self.sent_at = monotonic()
        try:
            watch(<Loop>self.loop, <_Watch>self.watcher, EPOLLIN)
        except Exception as exc:          # e.g. the loop was closed meanwhile
            self._finish(None, None, _Failure(f"{self.addr}: {exc!r}"))

    def __dealloc__(self):
        global _sockets
        if self.fd >= 0:          # close() was skipped: at least the descriptor goes
            c_close(self.fd)
            _sockets -= 1

    def _expire(self):
        if not self.finished:
            self._finish(None, None, _Timeout(self.addr))

    cdef _finish(self, bytes reply, parsed, error):
        self.finished = True
        fut = self.fut
        if fut is None:
            self.reply, self.parsed, self.error = reply, parsed, error
            if isinstance(self.on_done, QueryDone):
                (<QueryDone>self.on_done).done(self)
            else:
                self.on_done(self)
        elif not fut.done():
            if error is None:
                fut.set_result((reply, parsed))
            else:
                fut.set_exception(error)

    cdef bint _matches(self, Py_ssize_t n) noexcept:
        return _answers(n, self.qid, PyBytes_GET_SIZE(self.question)) and memcmp(
            _buf + 12, PyBytes_AS_STRING(self.question), PyBytes_GET_SIZE(self.question)) == 0

    cdef bint _case_differs(self, Py_ssize_t n) noexcept:
        """The datagram has the query's ID, QR and one question, and the question is the
        query's but for the case of letters in its name."""
        cdef Py_ssize_t ql = PyBytes_GET_SIZE(self.question), i
        cdef const unsigned char *q = <const unsigned char *>PyBytes_AS_STRING(self.question)
        cdef unsigned char a, b
        if not _answers(n, self.qid, ql) or memcmp(_buf + 12 + ql - 4, q + ql - 4, 4) != 0:
            return False
        for i in range(ql - 4):
            a, b = _buf[12 + i], q[i]
            if a != b and ((a | 0x20) != (b | 0x20) or (a | 0x20) < 97 or (a | 0x20) > 122):
                return False
        return True

    def _readable(self):
        """The readiness callback on other asyncio loops."""
        self._read()

    cdef int _read(self) except -1:
        """Reads what the socket holds until a datagram answers the query."""
        cdef ssize_t n
        cdef int err
        while self.fd >= 0 and not self.finished:
            if self.fut is not None and self.fut.done():     # cancelled by its awaiter
                return 0
            n = recv(self.fd, _buf, sizeof(_buf), 0)
            if n < 0:
                err = errno
                if err == EINTR:
                    continue
                if err == EAGAIN or err == EWOULDBLOCK:
                    return 0
                # ICMP unreachable on the connected socket
                self._finish(None, None, _failure(self.addr, err))
                return 0
            if not self._matches(n):
                if self.asked is not None and self._case_differs(n):
                    self._finish(None, None, _CapsMismatch(
                        f"{self.addr}: the reply's question is not in the query's case "
                        f"(use-caps-for-id)"))
                    return 0
                if self.stats is not None:
                    self.stats.dropped_mismatched += 1
                if isinstance(self.on_done, QueryDone):
                    (<QueryDone>self.on_done).unwanted(self)
                continue
            if self.asked is not None:      # the question back as the caller asked it
                memcpy(_buf + 12, PyBytes_AS_STRING(self.asked), PyBytes_GET_SIZE(self.asked))
            data = PyBytes_FromStringAndSize(<char*>_buf, n)
            # Parsed here so that a malformed datagram (an off-path forgery that guessed the
            # ID, or a broken server) is dropped and the real answer still awaited.
            try:
                parsed = parse_response(data, self.max_jumps, self.max_records)
            except WireError:
                if self.stats is not None:
                    self.stats.dropped_malformed += 1
                continue
            self._finish(data, parsed, None)
        return 0

    cpdef close(self):
        global _sockets
        cdef int fd = self.fd
        cdef _Watch w
        self.finished = True
        if fd >= 0:
            self.fd = -1
            _sockets -= 1
            if self.corenet:
                (<TimerHandle>self.timer).cancel()
                w = <_Watch>self.watcher
                self.watcher = None
                w.q = None
                unwatch_close(<Loop>self.loop, w)      # never watched: closed all the same
                return
            self.timer.cancel()
            try:
                self.loop.remove_reader(fd)
            finally:
                c_close(fd)


# The deferred send a query hands corenet's loop, bound to it with PyMethod_New from the
# class's function: no attribute look-up per query.
cdef object _send = UDPQuery._send
