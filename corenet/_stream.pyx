# cython: boundscheck=False, wraparound=False
# (indexes run over the transport's own write queue and iovec array, bounded by IOV_MAX)
"""Stream transports (TCP and Unix sockets) and the accept loop of servers.

Called straight from the epoll event array. Reads go into the protocol's buffer
(BufferedProtocol, zero-copy) or the loop's shared receive buffer (Protocol: one bytes object
per read, the one the last read filled when its protocol did not keep it: see "received
bytes" in _transport.pyx). Writes try ``send`` first, queue only what did not fit (bytes
by reference, mutable buffers copied) and flush the queue with one ``sendmsg``.
"""
cimport cython
from cpython.bytes cimport PyBytes_Check, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.buffer cimport (PyObject_GetBuffer, PyBuffer_Release, PyBuffer_IsContiguous,
                             PyBUF_WRITABLE, PyBUF_SIMPLE)
from cpython.bytearray cimport PyByteArray_Check
from cpython.exc cimport PyErr_SetFromErrno
from cpython.object cimport PyObject
from libc.errno cimport errno, EAGAIN, EINTR, EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED
from libc.stdint cimport uint32_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

from corenet._sys cimport *
from corenet._loop cimport BaseLoop, FdWatcher
from corenet._transport cimport (BaseTransport, FaceSlot, add_face, engine_at, engine_of,
                                 give_back, os_error, received)
from corenet.batch cimport sockaddr_storage, cn_addr_tuple, AF_INET, AF_INET6

import _socket
import asyncio
import socket
import sys
from asyncio import constants, format_helpers, trsock

from corenet import _transport as _transport_module

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    cdef struct iovec:
        void *iov_base
        size_t iov_len
    cdef struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    ssize_t recv(int sockfd, void *buf, size_t len, int flags)
    ssize_t send(int sockfd, const void *buf, size_t len, int flags)
    ssize_t sendmsg(int sockfd, const msghdr *msg, int flags)
    int shutdown(int sockfd, int how)
    struct sockaddr:
        pass
    int accept4(int sockfd, sockaddr *addr, socklen_t *addrlen, int flags)
    int setsockopt(int sockfd, int level, int optname, const void *optval, socklen_t optlen)
    enum:
        MSG_NOSIGNAL
        SHUT_WR
        SOCK_STREAM
        SOCK_NONBLOCK
        SOCK_CLOEXEC

cdef extern from "<netinet/in.h>" nogil:
    enum: IPPROTO_TCP

cdef extern from "<netinet/tcp.h>" nogil:
    enum: TCP_NODELAY

cdef extern from "Python.h":
    PyObject *_new_bytes "PyBytes_FromStringAndSize"(const char *, Py_ssize_t)
    char *_bytes_buf "PyBytes_AS_STRING"(PyObject *)
    int _PyBytes_Resize(PyObject **, Py_ssize_t)
    void Py_DECREF(PyObject *)
    bint PyMemoryView_Check(object)
    Py_buffer *PyMemoryView_GET_BUFFER(object)
    bint PyBytes_CheckExact(object)
    object PyContext_CopyCurrent()
    object PyContext_Copy(object)
    int PyContext_Enter(object) except -1
    int PyContext_Exit(object) except -1
    # A new reference, or NULL with the exception set (not raised here: see _deliver).
    PyObject *_call_method_one "PyObject_CallMethodOneArg"(object, object, object)

cdef object logger = asyncio.log.logger
cdef object _set_result_unless_cancelled = _transport_module.set_result_unless_cancelled
cdef object TransportSocket = trsock.TransportSocket
cdef object _object_new = object.__new__
cdef object _format_callback_source = format_helpers._format_callback_source
# asyncio's Server counts its connections up to 3.12; from 3.13 it keeps them (for
# close_clients/abort_clients), and _attach/_detach take the transport.
cdef bint _SERVER_KNOWS_TRANSPORTS = sys.version_info >= (3, 13)
# The socket's family and type as plain ints: socket.socket's properties build enums.
cdef object _raw_family = _socket.socket.family.__get__
cdef object _raw_type = _socket.socket.type.__get__
cdef object BufferedProtocol = asyncio.BufferedProtocol

DEF IOV_MAX_ = 1024
# A Protocol read takes at most this many bytes (asyncio's figure: large enough for bulk
# transfers, small enough to keep a read's bytes object cheap).
DEF MAX_READ = 262144
# Edge-triggered reads continue until EAGAIN, but one connection gets at most this many bytes
# per wake-up; the rest waits for the next loop iteration, so one flood cannot starve others.
DEF EDGE_READ_BUDGET = 1048576
# After a read of at least DIRECT_AFTER bytes, a Protocol's next read goes straight into a new
# bytes object of DIRECT_READ bytes, shrunk in place to what arrived: no copy out of the
# shared buffer. The allocation and the shrink cost about as much as copying 3-4 KiB
# into a new object (callgrind, echo server: the copy is cheaper at 3 KB reads, the direct
# read at 6 KB); a copy into a reused object (_transport.received) costs less still.
# DIRECT_READ keeps the object under glibc's 128 KiB mmap threshold, so it comes from the
# heap (no mmap, munmap or page faults per read) and shrinking it splits the chunk in place.
DEF DIRECT_AFTER = 4096
DEF DIRECT_READ = 130048
DEF LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5

cdef uint32_t IN_EVENTS = EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP
cdef uint32_t OUT_EVENTS = EPOLLOUT | EPOLLERR | EPOLLHUP

cdef char *_shared_rbuf = <char *>malloc(MAX_READ)

# The int last passed to a BufferedProtocol's buffer_updated(), and its value: reads of one
# size in a row (a full buffer, fixed-size records, an echo) pass the same int object
# instead of allocating and freeing one per read (ints from 257 up are not shared by CPython).
cdef Py_ssize_t _nbytes_value = -1
cdef object _nbytes_int = None


cdef inline object _nbytes(Py_ssize_t n):
    global _nbytes_value, _nbytes_int
    if n != _nbytes_value:
        _nbytes_int = n
        _nbytes_value = n
    return _nbytes_int


cdef inline int _raised() except -1:
    """Raises the exception a C-API call left set (its NULL result): lets a cold path catch
    it with ``try``/``except``, so that the common path needs no exception handling."""
    return -1


cdef class WriteQueue:
    """Buffers waiting to be sent: bytes or read-only memoryviews, never joined."""
    cdef list items
    cdef Py_ssize_t head        # index of the first unsent item
    cdef Py_ssize_t offset      # bytes of items[head] already sent
    cdef Py_ssize_t size        # unsent bytes in all

    def __cinit__(self):
        self.items = []

    cdef inline bint empty(self):
        return self.size == 0

    cdef int push(self, object data, Py_ssize_t skip) except -1:
        """Queues ``data`` minus its first ``skip`` bytes (already sent). What the caller may
        change once write() returns (a mutable buffer) is copied, from ``skip`` on."""
        cdef Py_ssize_t n
        if PyBytes_CheckExact(data):
            n = PyBytes_GET_SIZE(data)
        else:
            mv = memoryview(data)
            if not mv.c_contiguous:
                data = mv.tobytes()
            else:
                if mv.itemsize != 1 or mv.ndim != 1:
                    mv = mv.cast("B")
                if mv.readonly:
                    data = mv
                else:
                    data = mv[skip:].tobytes()
                    skip = 0
            n = len(data)
        if n - skip <= 0:
            return 0
        if not self.items:
            self.offset = skip
        elif skip:
            data = memoryview(data)[skip:]
            n -= skip
            skip = 0
        self.items.append(data)
        self.size += n - skip
        return 0

    cdef int clear(self) except -1:
        self.items = []
        self.head = 0
        self.offset = 0
        self.size = 0
        return 0

    cdef int consume(self, Py_ssize_t sent) except -1:
        cdef Py_ssize_t n
        self.size -= sent
        sent += self.offset
        while sent > 0:
            n = _buf_len(self.items[self.head])
            if sent < n:
                break
            sent -= n
            self.items[self.head] = None
            self.head += 1
        self.offset = sent
        if self.head == len(self.items):
            self.items = []
            self.head = 0
            self.offset = 0
        elif self.head > 64 and self.head * 2 > len(self.items):
            del self.items[:self.head]
            self.head = 0
        return 0

    cdef Py_ssize_t flush(self, int fd) except -2:
        """One ``sendmsg`` of up to IOV_MAX queued buffers. Returns bytes sent, or -1 on
        EAGAIN; raises OSError on other errors."""
        cdef iovec iov[IOV_MAX_]
        cdef msghdr msg
        cdef Py_ssize_t i, k = 0, n = len(self.items)
        cdef ssize_t sent
        cdef char *p
        cdef Py_ssize_t ln
        for i in range(self.head, n):
            if k == IOV_MAX_:
                break
            _buf_ptr(self.items[i], &p, &ln)
            if i == self.head:
                p += self.offset
                ln -= self.offset
            iov[k].iov_base = p
            iov[k].iov_len = ln
            k += 1
        msg.msg_name = NULL
        msg.msg_namelen = 0
        msg.msg_iov = iov
        msg.msg_iovlen = k
        msg.msg_control = NULL
        msg.msg_controllen = 0
        msg.msg_flags = 0
        while True:
            sent = sendmsg(fd, &msg, MSG_NOSIGNAL)
            if sent >= 0:
                break
            if errno == EINTR:
                continue
            if errno == EAGAIN:
                return -1
            PyErr_SetFromErrno(OSError)
        self.consume(sent)
        return sent

    cdef Py_ssize_t flush_through(self, sock) except -2:
        """``flush`` through the socket's own ``send`` (a socket whose class overrides its
        I/O methods), the first queued buffer at a time. Returns bytes sent, or -1 when
        it would block; raises OSError on other errors."""
        data = self.items[self.head]
        if self.offset:
            data = memoryview(data)[self.offset:]
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            return -1
        self.consume(sent)
        return sent


cdef inline Py_ssize_t _buf_len(object obj):
    if PyBytes_CheckExact(obj):
        return PyBytes_GET_SIZE(obj)
    return PyMemoryView_GET_BUFFER(obj).len


cdef inline void _buf_ptr(object obj, char **p, Py_ssize_t *n):
    cdef Py_buffer *b
    if PyBytes_CheckExact(obj):
        p[0] = PyBytes_AS_STRING(obj)
        n[0] = PyBytes_GET_SIZE(obj)
    else:
        b = PyMemoryView_GET_BUFFER(obj)
        p[0] = <char *>b.buf
        n[0] = b.len


# What asyncio's socket transport reads and writes with (see BaseTransport._io_methods).
cdef tuple _STREAM_IO = ("recv", "recv_into", "send", "sendmsg")


cdef class StreamTransport(BaseTransport):
    """The engine of a stream transport; users see its ``SocketTransport`` face, an instance
    of ``asyncio.Transport`` (see ``corenet.transports``)."""
    cdef object server
    cdef bint buffered
    cdef bint eof_written
    cdef bint reading_paused
    cdef bint eof_received
    cdef bint short_read
    cdef bint readable   # edge mode: data may be waiting (an edge came, no drain seen since)
    cdef bint peer_closing
    cdef Py_ssize_t last_read
    cdef WriteQueue wq
    cdef object empty_waiter
    cdef object write_waiter

    def __cinit__(self, int fd):
        self.wq = WriteQueue()
        self.readable = True

    # ------------------------------------------------------------ setup

    cdef tuple _io_methods(self):
        return _STREAM_IO

    def _start(self, BaseLoop loop, sock, protocol, face, waiter, extra, server, context=None,
               bint accepted=False):
        """``accepted``: a connection a server has just accepted (see ``_begin``)."""
        self._attach(loop, sock, protocol, face, extra, context)
        self._begin(loop, protocol, waiter, server,
                    _raw_family(sock) in (AF_INET, AF_INET6) and _raw_type(sock) == SOCK_STREAM,
                    accepted)

    cdef int _start_accepted(self, BaseLoop loop, int family, int proto, protocol, face,
                             extra, server, context, bint nodelay) except -1:
        """A TCP connection accepted here, as a bare descriptor (see ``BaseTransport._attach``);
        ``nodelay``: it has TCP_NODELAY already (from its listener), else it is set here."""
        self.sfamily = family
        self.stype = SOCK_STREAM | SOCK_NONBLOCK
        self.sproto = proto
        self._attach(loop, None, protocol, face, extra, context)
        self._begin(loop, protocol, None, server, not nodelay, True)
        return 0

    cdef int _begin(self, BaseLoop loop, protocol, waiter, server, bint tcp,
                    bint accepted) except -1:
        """``tcp``: the connection is TCP without TCP_NODELAY, which is set here.

        The protocol's ``connection_made`` is a callback of the next loop iteration, as in
        asyncio, except for a connection a server has just ``accepted``: the acceptor runs it
        in its own callback, in the connection's context (where the protocol factory ran),
        right after making the protocol. Either way the transport enters epoll only then,
        so its first data reaches the protocol through a later poll, after the callbacks
        that ``connection_made`` scheduled. For an accepted connection that is the first poll
        after the accept, which finds the client's first bytes (a ClientHello, a query)
        when they are already waiting."""
        cdef int one = 1
        self._set_protocol(protocol)
        self.server = server
        if server is not None:
            if _SERVER_KNOWS_TRANSPORTS:
                server._attach(self.face)
            else:
                server._attach()
        if tcp:
            setsockopt(self.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))  # failure: ignored
        if accepted:
            self._connection_made_now()
        else:
            loop.call_soon(self._connection_made, context=self.context)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)
        return 0

    cdef int _connection_made_now(self) except -1:
        """``_connection_made`` called directly: an exception goes to the loop's exception
        handler, as it would from the callback (the transport stays, not reading)."""
        try:
            self._connection_made()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.loop.call_exception_handler({
                "message": "Exception in callback "
                           + _format_callback_source(self._connection_made, ()),
                "exception": exc, "transport": self.face, "protocol": self.protocol})
        return 0

    def _connection_made(self):
        if self.closing:
            return
        self._enter_epoll(EPOLLIN | EPOLLRDHUP | EPOLLET)
        self.protocol_connected = True
        self.protocol.connection_made(self.face)
        self.started = True
        if not self.closing:
            self._update_interest()

    cdef int _set_protocol(self, protocol) except -1:
        # Protocol methods are looked up at each call, as asyncio does, so a protocol whose
        # methods change (or are patched) after connection_made still gets its calls.
        self.protocol = protocol
        self.buffered = isinstance(protocol, BufferedProtocol)
        return 0

    # ------------------------------------------------------------ epoll interest

    cdef uint32_t _wanted(self):
        cdef uint32_t want = 0
        if self.started and not self.reading_paused and not self.closing and not self.eof_received:
            want |= EPOLLIN
        if not self.wq.empty() or self.write_waiter is not None:
            want |= EPOLLOUT
        return want

    cdef int _update_interest(self) except -1:
        """Edge mode registers for reading once (``_connection_made``) and adds EPOLLOUT the
        first time a write has to wait for room in the socket (or a sendfile waits for it),
        keeping it from then on. A socket is writable as soon as it is connected: registered
        for EPOLLOUT from the start, every new connection would wake the loop once for
        nothing, before its first bytes arrive."""
        if not self.edge:
            return BaseTransport._update_interest(self)
        if (self.registered and not (self.registered & EPOLLOUT) and self.fd >= 0
                and self.loop is not None
                and (not self.wq.empty() or self.write_waiter is not None)):
            self.loop._epoll_ctl(EPOLL_CTL_MOD, self.fd, self.registered | EPOLLOUT)
            self.registered |= EPOLLOUT
        return 0

    cdef Py_ssize_t _buffered(self):
        return self.wq.size

    cdef int _drop_buffer(self) except -1:
        if not self.wq.empty():
            self.wq.clear()
        return 0

    cdef int on_events(self, BaseLoop loop, uint32_t events) except -1:
        cdef PyObject *ctx
        if events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR):
            self.peer_closing = True
        if events & IN_EVENTS:
            self.readable = True
        elif self.wq.empty() and self.write_waiter is None:
            return 0    # writable, and nothing waits for it (edge mode, once registered for it)
        # The protocol's callbacks run in the transport's context (see BaseTransport). It
        # is set once, before the transport reaches epoll, and kept: borrowed here.
        ctx = <PyObject *>self.context
        PyContext_Enter(<object>ctx)
        try:
            if events & OUT_EVENTS:
                if self.write_waiter is not None:
                    waiter = self.write_waiter
                    self.write_waiter = None
                    self._update_interest()
                    if not waiter.done():
                        waiter.set_result(None)
                if not self.wq.empty():
                    self._write_ready()
            if (events & IN_EVENTS and self.started and not self.reading_paused
                    and not self.closing and not self.eof_received):
                self._read_ready(events)
        finally:
            PyContext_Exit(<object>ctx)
        return 0

    # ------------------------------------------------------------ reading

    cdef int _read_ready(self, uint32_t events) except -1:
        """Level mode: one read per wake-up, as asyncio. Edge mode: read until EAGAIN, or a
        short read (every later arrival raises a new edge, so the recv() that would only say
        EAGAIN is skipped), or the per-wake-up budget; a closing peer is read one read per
        iteration. ``events`` is 0 when called outside an epoll event."""
        cdef Py_ssize_t budget = EDGE_READ_BUDGET
        cdef Py_ssize_t n
        while True:
            if self.buffered:
                n = self._read_buffered()
            else:
                n = self._read_plain()
            if n <= 0 or not self.edge:
                if n == 0:
                    self.readable = False     # EAGAIN
                return 0
            if self.short_read and not self.peer_closing:
                self.readable = False         # drained: the next arrival raises an edge
                if events:
                    return 0
            if self.reading_paused or self.closing or self.fd < 0 or self.eof_received:
                return 0
            if self.peer_closing:
                # The peer is closing: deliver the rest one read per iteration, as asyncio
                # does, so the EOF never overtakes callbacks that the data made ready.
                if not self.read_scheduled:
                    self.read_scheduled = True
                    self.loop._call_soon(self._continue_reading, (), self.context)
                return 0
            budget -= n
            if budget <= 0:
                # Still readable, but others get their turn: continue in the next iteration.
                if not self.read_scheduled:
                    self.read_scheduled = True
                    self.loop._call_soon(self._continue_reading, (), self.context)
                return 0

    def _continue_reading(self):
        self.read_scheduled = False
        if (self.started and not self.reading_paused and not self.closing and self.fd >= 0
                and not self.eof_received):
            self._read_ready(0)

    cdef Py_ssize_t _read_plain(self) except -2:
        cdef ssize_t n
        cdef Py_ssize_t outcome, room
        if self.sockio is not None:
            return self._read_through_socket(False)
        if self.last_read >= DIRECT_AFTER:
            data = self._recv_direct(&outcome)
            if data is None:
                return outcome
            return self._deliver(data, outcome)
        while True:
            n = recv(self.fd, _shared_rbuf, MAX_READ, 0)
            if n >= 0 or errno != EINTR:
                break
        n = self._recv_outcome(n, errno)
        if n <= 0:
            return n
        self.short_read = n < MAX_READ
        self.last_read = n
        data = received(_shared_rbuf, n, &room)
        outcome = self._deliver(data, n)
        give_back(data, room)
        return outcome

    cdef object _recv_direct(self, Py_ssize_t *outcome):
        """Receives into a fresh bytes object and returns it, or None when nothing arrived
        (``outcome`` is what ``_recv_outcome`` made of the recv() result)."""
        cdef ssize_t n
        cdef int err
        cdef PyObject *raw = _new_bytes(NULL, DIRECT_READ)
        if raw == NULL:
            raise MemoryError()
        while True:
            n = recv(self.fd, _bytes_buf(raw), DIRECT_READ, 0)
            if n >= 0 or errno != EINTR:
                break
        err = errno
        if n <= 0:
            Py_DECREF(raw)
            outcome[0] = self._recv_outcome(n, err)
            return None
        outcome[0] = n
        self.short_read = n < DIRECT_READ
        self.last_read = n
        if n < DIRECT_READ and _PyBytes_Resize(&raw, n) < 0:
            raise MemoryError()  # raw was freed by the failed resize
        data = <object>raw
        Py_DECREF(raw)
        return data

    cdef Py_ssize_t _read_through_socket(self, bint buffered) except -2:
        """A read through the socket's own ``recv`` or ``recv_into`` (``sockio``: its class
        overrides them), with what they raise or return meaning what recv()'s result does."""
        cdef Py_buffer view
        cdef Py_ssize_t n
        cdef Py_ssize_t size = MAX_READ
        buf = data = None
        if buffered:
            buf = self._get_buffer(&view)
            if buf is None:
                return -1
            size = view.len
            PyBuffer_Release(&view)
        try:
            if buffered:
                n = self.sockio.recv_into(buf)
            else:
                data = self.sockio.recv(MAX_READ)
                n = len(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return -1
        if n == 0:
            self._eof()
            return -1
        self.short_read = n < size
        self.last_read = n
        return self._deliver(data, n)

    cdef Py_ssize_t _read_buffered(self) except -2:
        cdef Py_buffer pybuf
        cdef ssize_t n
        cdef int err
        if self.sockio is not None:
            return self._read_through_socket(True)
        if self._get_buffer(&pybuf) is None:
            return -1
        while True:
            n = recv(self.fd, pybuf.buf, pybuf.len, 0)
            if n >= 0 or errno != EINTR:
                break
        err = errno
        self.short_read = n < pybuf.len
        PyBuffer_Release(&pybuf)
        n = self._recv_outcome(n, err)
        if n <= 0:
            return n
        return self._deliver(None, n)

    @cython.final
    cdef object _get_buffer(self, Py_buffer *view):
        """The protocol's buffer for the next read, with a writable view of it held in
        ``view``; None when get_buffer() failed or gave no writable buffer or an empty one
        (the transport is then closed with asyncio's message, and no view is held)."""
        try:
            buf = self.protocol.get_buffer(-1)
            PyObject_GetBuffer(buf, view, PyBUF_WRITABLE)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return None
        if view.len == 0:
            PyBuffer_Release(view)
            self._fatal_error(RuntimeError("get_buffer() returned an empty buffer"),
                              "Fatal error: protocol.get_buffer() call failed.")
            return None
        return buf

    @cython.final
    cdef inline Py_ssize_t _deliver(self, object data, Py_ssize_t n) except -2:
        """Hands a read of ``n`` bytes to the protocol: ``data`` to data_received, or (None:
        they are in the protocol's buffer) ``n`` to buffer_updated. ``n``, or -1 when the
        callback failed (the transport is then closed with asyncio's message). Small enough
        to be compiled into each reader: the failure is handled apart (_delivery_failed)."""
        cdef PyObject *r
        if data is None:
            r = _call_method_one(self.protocol, "buffer_updated", _nbytes(n))
        else:
            r = _call_method_one(self.protocol, "data_received", data)
        if r == NULL:
            return self._delivery_failed(data is None)
        Py_DECREF(r)
        return n

    cdef Py_ssize_t _delivery_failed(self, bint buffered) except -2:
        try:
            _raised()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed."
                              if buffered else
                              "Fatal error: protocol.data_received() call failed.")
        return -1

    cdef Py_ssize_t _recv_outcome(self, ssize_t n, int err) except -2:
        """What a recv() result means: n > 0 bytes read, 0 nothing to read now, -1 the
        connection is done with (EOF delivered, or a read error reported)."""
        if n < 0:
            if err == EAGAIN:
                return 0
            self._fatal_error(os_error(err), "Fatal read error on socket transport")
            return -1
        if n == 0:
            self._eof()
            return -1
        return n

    cdef int _eof(self) except -1:
        self.eof_received = True
        if self.loop._debug:
            logger.debug("%r received EOF", self.face)
        try:
            keep_open = self.protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return 0
        if keep_open:
            self._update_interest()
        else:
            self.close()
        return 0

    def pause_reading(self):
        if self.closing or self.reading_paused:
            return
        self.reading_paused = True
        self._update_interest()
        if self.loop._debug:
            logger.debug("%r pauses reading", self.face)

    def resume_reading(self):
        if self.closing or not self.reading_paused:
            return
        self.reading_paused = False
        if self.edge:
            # No new edge will come for data already waiting: look for it ourselves, unless
            # the socket was drained and no edge came since (then there is nothing to read).
            if self.started and self.readable and not self.read_scheduled:
                self.read_scheduled = True
                self.loop._call_soon(self._continue_reading, (), self.context)
        else:
            self._update_interest()
        if self.loop._debug:
            logger.debug("%r resumes reading", self.face)

    def is_reading(self):
        return not self.reading_paused and not self.closing

    # ------------------------------------------------------------ writing

    def write(self, data):
        self._write(data)

    cdef int _write(self, data) except -1:
        cdef Py_buffer pybuf
        cdef bint queued
        if not PyBytes_CheckExact(data) and not (PyMemoryView_Check(data) or PyByteArray_Check(data)
                                                 or PyBytes_Check(data)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self.eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self.empty_waiter is not None:
            raise RuntimeError("unable to write; sendfile is in progress")
        if PyBytes_CheckExact(data):
            queued = self._send(data, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        else:
            if PyMemoryView_Check(data) and not PyBuffer_IsContiguous(PyMemoryView_GET_BUFFER(data), b'C'):
                data = data.tobytes()
            # A released memoryview raises here, as asyncio's len() of it does.
            PyObject_GetBuffer(data, &pybuf, PyBUF_SIMPLE)
            try:
                queued = self._send(data, <char *>pybuf.buf, pybuf.len)
            finally:
                PyBuffer_Release(&pybuf)
        if queued:
            self._maybe_pause_protocol()
        return 0

    @cython.final
    cdef inline bint _send(self, object data, char *p, Py_ssize_t ln) except -1:
        """Sends what fits of ``data`` (its ``ln`` bytes at ``p``) and queues the rest, or
        queues it all behind what already waits. True when something was queued. (Small
        enough to be compiled into both of _write's calls: the send through an overriding
        socket's method is apart.)"""
        cdef ssize_t n
        cdef int err
        if ln == 0:
            return False
        if self.conn_lost:
            if self.conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self.conn_lost += 1
            return False
        if not self.wq.empty():
            self.wq.push(data, 0)
            return True
        if self.sockio is not None:
            n = self._send_through(data)
        else:
            n = send(self.fd, p, ln, MSG_NOSIGNAL)
            if n < 0:
                err = errno
                if err != EAGAIN and err != EINTR:
                    self._fatal_error(os_error(err), "Fatal write error on socket transport")
                    return False
                n = 0
        if n < 0 or n == ln:
            return False
        self.wq.push(data, n)
        self._update_interest()
        return True

    cdef Py_ssize_t _send_through(self, object data) except -2:
        """``data`` sent through the socket's own ``send`` (``sockio``): the bytes it took
        (0 when it would block), or -1 when it failed (the transport is then closed)."""
        try:
            return self.sockio.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on socket transport")
            return -1

    def writelines(self, list_of_data):
        cdef Py_ssize_t sent
        if self.eof_written:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        if self.empty_waiter is not None:
            raise RuntimeError("unable to writelines; sendfile is in progress")
        if self.conn_lost:
            if self.conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self.conn_lost += 1
            return
        items = list(list_of_data)
        for data in items:   # all checked before any is queued: a bad item sends nothing
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        was_empty = self.wq.empty()
        for data in items:
            self.wq.push(data, 0)
        if was_empty and not self.wq.empty():
            # One scatter-gather call for the lot; what does not fit stays queued.
            self._write_ready()
            if self.conn_lost:
                return
        self._update_interest()
        self._maybe_pause_protocol()

    cdef int _write_ready(self) except -1:
        cdef Py_ssize_t sent
        if self.fd < 0 or self.conn_lost:
            return 0
        while not self.wq.empty():
            try:
                sent = (self.wq.flush(self.fd) if self.sockio is None
                        else self.wq.flush_through(self.sockio))
            except OSError as exc:
                self.wq.clear()
                self._update_interest()
                if self.empty_waiter is not None:
                    self.empty_waiter.set_exception(exc)
                self._fatal_error(exc, "Fatal write error on socket transport")
                return 0
            if sent < 0:
                break
        self._update_interest()
        self._maybe_resume_protocol()
        if self.wq.empty():
            if self.empty_waiter is not None:
                self.empty_waiter.set_result(None)
            if self.closing:
                self._call_connection_lost(None)
            elif self.eof_written:
                shutdown(self.fd, SHUT_WR)
        return 0

    def write_eof(self):
        if self.closing or self.eof_written:
            return
        self.eof_written = True
        if self.wq.empty():
            shutdown(self.fd, SHUT_WR)

    def can_write_eof(self):
        return True

    def _make_empty_waiter(self):
        if self.empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        self.empty_waiter = self.loop.create_future()
        if self.wq.empty():
            self.empty_waiter.set_result(None)
        return self.empty_waiter

    def _wait_writable(self):
        """A future set when the socket is writable again (for os.sendfile on EAGAIN)."""
        self.write_waiter = self.loop.create_future()
        self._update_interest()
        return self.write_waiter

    def _reset_empty_waiter(self):
        self.empty_waiter = None

    # ------------------------------------------------------------ closing

    cdef int _release(self) except -1:
        face = self.face
        BaseTransport._release(self)
        server = self.server
        if server is not None:
            self.server = None
            if _SERVER_KNOWS_TRANSPORTS:
                server._detach(face)
            else:
                server._detach()
        return 0

    # ------------------------------------------------------------ the rest of the API

    def set_protocol(self, protocol):
        self._set_protocol(protocol)
        if self.protocol_connected is False and self.started:
            self.protocol_connected = True

    @property
    def _closing(self):
        return self.closing

    @property
    def _reading_paused(self):
        return self.reading_paused


cdef int _close_conn(conn) except -1:
    """Closes what ``Acceptor._accept`` gave: a bare descriptor or a socket object."""
    if type(conn) is int:
        close(conn)
    else:
        conn.close()
    return 0


# The face's hot stream methods (see "the faces' methods" in _transport.pyx).

cdef FaceSlot* _face = NULL


def register_face(type cls):
    global _face
    _face = add_face(cls, StreamTransport)


cdef inline StreamTransport _engine(face):
    cdef PyObject* engine = engine_at(face, _face)
    if engine != NULL:
        return <StreamTransport>engine
    return <StreamTransport?>engine_of(face)


def face_write(face, data):
    _engine(face)._write(data)


def face_writelines(face, list_of_data):
    _engine(face).writelines(list_of_data)


def face_pause_reading(face):
    _engine(face).pause_reading()


def face_resume_reading(face):
    _engine(face).resume_reading()


def face_is_reading(face):
    cdef StreamTransport engine = _engine(face)
    return not engine.reading_paused and not engine.closing


cdef class Acceptor(FdWatcher):
    """A listening socket: accepts a bounded number of connections per wake-up and backs off
    for a second when the process is out of descriptors instead of spinning."""
    cdef BaseLoop loop
    cdef object sock
    cdef object protocol_factory
    cdef object sslcontext
    cdef object server
    cdef int backlog
    cdef object ssl_handshake_timeout
    cdef object ssl_shutdown_timeout
    cdef object face_type      # transports.SocketTransport
    cdef object context        # where the server was started: each connection gets a copy
    cdef object retry_handle
    cdef int family        # AF_INET or AF_INET6: accepted here with accept4; 0: by the socket
    cdef object local      # the listener's address when bound to one (not a wildcard), else None
    cdef int proto
    cdef bint drain        # connections are queueing: accept until EAGAIN
    cdef bint nodelay      # the listener has TCP_NODELAY, which accepted connections inherit
    cdef unsigned long long single_at   # the loop's poll count when one was taken alone

    def _start(self, BaseLoop loop, sock, protocol_factory, sslcontext, server, int backlog,
               ssl_handshake_timeout, ssl_shutdown_timeout, face_type):
        cdef int one = 1
        self.loop = loop
        self.sock = sock
        self.protocol_factory = protocol_factory
        self.sslcontext = sslcontext
        self.server = server
        self.backlog = backlog if backlog > 0 else 100
        self.ssl_handshake_timeout = ssl_handshake_timeout
        self.ssl_shutdown_timeout = ssl_shutdown_timeout
        self.face_type = face_type
        self.context = PyContext_CopyCurrent()
        family = _raw_family(sock)
        self.family = family if family in (AF_INET, AF_INET6) else 0
        self.proto = sock.proto
        self.local = None
        if self.family:
            # A connection accepted on a listener bound to one address has that address
            # and port for its own: given as its sockname, with no getsockname() per
            # connection. On a wildcard the connection's address is its own to ask for.
            local = sock.getsockname()
            if local[0] not in ("0.0.0.0", "::"):
                self.local = local
            # Set once here rather than on every connection: Linux copies a listener's
            # TCP_NODELAY to the connections it accepts.
            self.nodelay = (self.proto in (0, IPPROTO_TCP) and
                            setsockopt(self.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0)
        loop.register_watcher(self, EPOLLIN)

    def _stop(self):
        if self.retry_handle is not None:
            self.retry_handle.cancel()
            self.retry_handle = None
        if self.loop is not None and not self.loop._closed:
            self.loop.unregister_watcher(self)
        self.loop = None

    cdef int on_events(self, BaseLoop loop, uint32_t events) except -1:
        """Accepts up to ``backlog`` connections. When they come one at a time, it takes one
        and returns, skipping the accept() that would only say EAGAIN: the listener is
        level-triggered, so one still queued wakes the very next poll, which then drains."""
        cdef int i
        if not self.drain and loop._polls - self.single_at <= 1:
            self.drain = True
        for i in range(self.backlog):
            try:
                accepted = self._accept()
            except OSError as exc:
                if exc.errno in (EMFILE, ENFILE, ENOBUFS, ENOMEM):
                    loop.call_exception_handler({
                        "message": "socket.accept() out of system resource",
                        "exception": exc, "socket": TransportSocket(self.sock)})
                    loop.unregister_watcher(self)
                    self.retry_handle = loop.call_later(constants.ACCEPT_RETRY_DELAY, self._resume)
                    return 0
                raise
            if accepted is None:
                if i == 1:
                    self.drain = False   # drained after one: back to one at a time
                return 0
            conn, addr = accepted
            self._serve(loop, conn, addr)
            if i == 0 and not self.drain:
                self.single_at = loop._polls
                return 0
        return 0

    cdef object _accept(self):
        """(socket, address) of a new connection, or None when there is none now. A TCP
        listener gives the bare descriptor (an int) instead of a socket object."""
        cdef sockaddr_storage sa
        cdef socklen_t salen = sizeof(sa)
        cdef int fd, err
        if self.family == 0:
            try:
                conn, addr = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return None
            conn.setblocking(False)
            return conn, addr
        # accept4 makes it non-blocking at once (the socket module's accept() takes an ioctl
        # more), and the numeric address is built here.
        fd = accept4(self.fd, <sockaddr*>&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC)
        if fd < 0:
            err = errno
            if err == EAGAIN or err == EINTR or err == ECONNABORTED:
                return None
            raise os_error(err)
        try:
            addr = cn_addr_tuple(&sa)
        except BaseException:
            close(fd)
            raise
        return fd, addr

    cdef int _serve(self, BaseLoop loop, conn, addr) except -1:
        """Makes the connection's protocol and transport in a copy of the server's context,
        which its callbacks then run in (asyncio makes each in a task of its own)."""
        cdef object ctx = PyContext_Copy(self.context)
        PyContext_Enter(ctx)
        try:
            self._serve_in(loop, conn, addr, ctx)
        finally:
            PyContext_Exit(ctx)
        return 0

    cdef int _serve_in(self, BaseLoop loop, conn, addr, ctx) except -1:
        cdef StreamTransport engine
        extra = {"peername": addr}
        if self.local is not None:
            extra["sockname"] = self.local
        try:
            protocol = self.protocol_factory()
            if self.sslcontext:
                # TLS is a protocol between the transport and the application's: the same
                # path as plain TCP, with the handshake begun by its connection_made.
                protocol = loop._tls_server_protocol(protocol, self.sslcontext,
                                                     self.ssl_handshake_timeout,
                                                     self.ssl_shutdown_timeout)
        except (SystemExit, KeyboardInterrupt):
            _close_conn(conn)
            raise
        except BaseException as exc:
            _close_conn(conn)
            loop.call_exception_handler({
                "message": "Error on transport creation for incoming connection",
                "exception": exc})
            return 0
        # What transports.make_stream does, without Python frames: the face's __init__ only
        # stores the engine.
        engine = StreamTransport(conn if type(conn) is int else conn.fileno())
        face = _object_new(self.face_type)
        face._engine = engine
        if type(conn) is int:
            engine._start_accepted(loop, self.family, self.proto, protocol, face, extra,
                                   self.server, ctx, self.nodelay)
        else:
            engine._start(loop, conn, protocol, face, None, extra, self.server, ctx, True)
        return 0

    def _resume(self):
        self.retry_handle = None
        if self.loop is not None and not self.loop._closed and self.server is not None \
                and self.server.is_serving():
            self.loop.register_watcher(self, EPOLLIN)
