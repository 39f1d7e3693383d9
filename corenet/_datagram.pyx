# cython: boundscheck=False, wraparound=False
"""The UDP (and Unix datagram) transport: drains every readable datagram per wake-up, sends
straight away and queues only when the socket would block.

UDP sockets (AF_INET, AF_INET6) read and send with the system calls themselves: recvfrom()
into one module-level buffer, then a bytes object of the datagram's length (the socket
module's recvfrom allocates a maximum-size bytes object per datagram and shrinks it, and
ends every wake-up by building a BlockingIOError with its strerror text); the sender's
address tuple is made once per sender in a row and its socket address kept, so an answer to
it is sent with no parsing. Other families (Unix datagram sockets), and a socket whose class
overrides its I/O methods (``sockio``), go through the socket object's own recvfrom, send
and sendto, the methods asyncio's datagram transport calls."""
from collections import deque

from libc.errno cimport errno
from libc.stdint cimport uint32_t
from libc.string cimport memcmp, memcpy
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.bytes cimport PyBytes_CheckExact
from cpython.object cimport PyObject

from corenet.batch cimport sockaddr_storage, cn_addr_tuple, cn_sockaddr_of, AF_INET, AF_INET6

from corenet._sys cimport *
from corenet._loop cimport BaseLoop
from corenet._transport cimport (BaseTransport, FaceSlot, add_face, engine_at, engine_of,
                                 give_back, os_error, received)

import asyncio

from corenet import _transport as _transport_module

cdef object logger = asyncio.log.logger
cdef object _set_result_unless_cancelled = _transport_module.set_result_unless_cancelled

cdef extern from *:
    """
    #include <errno.h>
    /* No data now (EAGAIN and EWOULDBLOCK are one value on Linux, hence C, not a switch). */
    static inline int cn_again(int e) { return e == EAGAIN || e == EWOULDBLOCK; }
    /* The errnos the socket module raises as BlockingIOError. */
    static inline int cn_would_block(int e) {
        return e == EAGAIN || e == EWOULDBLOCK || e == EINPROGRESS || e == EALREADY;
    }
    """
    int EINTR
    bint cn_again(int e) nogil
    bint cn_would_block(int e) nogil

cdef extern from "Python.h":
    int PyContext_Enter(object) except -1
    int PyContext_Exit(object) except -1

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct sockaddr:
        pass
    int MSG_DONTWAIT
    ssize_t c_recvfrom "recvfrom" (int fd, void *buf, size_t n, int flags, sockaddr *addr,
                                   socklen_t *addrlen)
    ssize_t c_sendto "sendto" (int fd, const void *buf, size_t n, int flags,
                               const sockaddr *addr, socklen_t addrlen)
    ssize_t c_send "send" (int fd, const void *buf, size_t n, int flags)

DEF MAX_DATAGRAM = 262144
# Datagrams handled per wake-up before others get their turn (level mode re-polls, edge mode
# continues in the next iteration).
DEF DATAGRAMS_PER_WAKEUP = 256
DEF LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5

# Every UDP transport reads into this one buffer: recvfrom() does not block and runs with the
# GIL held, and the datagram is copied into its own bytes object before any Python code runs.
cdef char _rbuf[MAX_DATAGRAM]


cdef inline ssize_t _raw_send(int fd, const char *p, size_t n, const sockaddr *to,
                              socklen_t tolen) noexcept nogil:
    """One datagram with send() (connected: ``to`` is NULL) or sendto(), retried on EINTR;
    the byte count, or -errno."""
    cdef ssize_t r
    while True:
        if to == NULL:
            r = c_send(fd, p, n, MSG_DONTWAIT)
        else:
            r = c_sendto(fd, p, n, MSG_DONTWAIT, to, tolen)
        if r >= 0:
            return r
        if errno != EINTR:
            return -errno


# What asyncio's datagram transport reads and sends with, and the socket's other datagram
# methods a wrapper may override (see BaseTransport._io_methods).
cdef tuple _DATAGRAM_IO = ("recvfrom", "recvfrom_into", "recvmsg", "send", "sendto", "sendmsg")


cdef class DatagramTransport(BaseTransport):
    cdef object address
    cdef object queue
    cdef Py_ssize_t queued_bytes
    cdef bint connected
    # AF_INET or AF_INET6: reads and sends go through the system calls; 0: the socket
    # object's own methods (another family, or a class that overrides them: sockio).
    cdef int family
    # The last sender's socket address as the kernel gave it and the tuple made for it
    # (rsend: that address may be sent to as it is; see _peer).
    cdef sockaddr_storage rsa
    cdef socklen_t rsalen
    cdef object rtuple
    cdef bint rsend
    # The last address tuple sent to that was not rtuple, and its socket address.
    cdef sockaddr_storage ssa
    cdef socklen_t ssalen
    cdef object stuple

    def __cinit__(self, int fd):
        self.queue = deque()

    def _start(self, BaseLoop loop, sock, protocol, face, address, waiter, extra):
        self._attach(loop, sock, protocol, face, extra, None)
        self.address = address
        self.connected = self.extra["peername"] is not None
        if self.sockio is None and (sock.family == AF_INET or sock.family == AF_INET6):
            self.family = sock.family
        loop.call_soon(self._connection_made, context=self.context)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def _connection_made(self):
        if self.closing:
            return
        self._enter_epoll(EPOLLIN | EPOLLET)
        self.protocol_connected = True
        self.protocol.connection_made(self.face)
        self.started = True
        self._update_interest()

    cdef tuple _io_methods(self):
        return _DATAGRAM_IO

    cdef Py_ssize_t _buffered(self):
        return self.queued_bytes

    cdef uint32_t _wanted(self):
        cdef uint32_t want = 0
        if self.started and not self.closing:
            want |= EPOLLIN
        if self.queue:
            want |= EPOLLOUT
        return want

    cdef int _update_interest(self) except -1:
        """Edge mode too asks for EPOLLOUT only while datagrams wait in the queue: every
        datagram the kernel finishes sending frees send-buffer space, which epoll reports as a
        new EPOLLOUT edge, so a socket always registered for it would wake the loop a second
        time for each datagram sent (as many wake-ups as a UDP server's answers)."""
        cdef uint32_t want
        if not self.edge:
            return BaseTransport._update_interest(self)
        if self.loop is None or self.fd < 0 or self.registered == 0:
            return 0
        want = EPOLLIN | EPOLLET
        if self.queue:
            want |= EPOLLOUT
        if want != self.registered:
            self.loop._epoll_ctl(EPOLL_CTL_MOD, self.fd, want)
            self.registered = want
        return 0

    cdef int _drop_buffer(self) except -1:
        self.queue.clear()
        self.queued_bytes = 0
        return 0

    cdef int on_events(self, BaseLoop loop, uint32_t events) except -1:
        # The protocol's callbacks run in the transport's context (see BaseTransport).
        cdef object ctx = self.context
        PyContext_Enter(ctx)
        try:
            if events & (EPOLLOUT | EPOLLERR) and self.queue:
                self._send_ready()
            if events & (EPOLLIN | EPOLLERR | EPOLLHUP) and self.started and not self.closing:
                self._read_ready()
        finally:
            PyContext_Exit(ctx)
        return 0

    cdef int _deliver(self, data, addr) except -1:
        try:
            self.protocol.datagram_received(data, addr)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._protocol_failed(exc, "datagram_received")
        return 0

    cdef int _protocol_failed(self, exc, str callback) except -1:
        # As in asyncio, a failing protocol is reported and the endpoint keeps serving.
        self.loop.call_exception_handler({
            "message": f"Exception in protocol.{callback}()",
            "exception": exc, "transport": self.face, "protocol": self.protocol})
        return 0

    cdef int _error_received(self, exc, bint from_caller) except -1:
        """Hands ``exc`` to the protocol's error_received. ``from_caller``: a sendto() failed
        (perhaps called inside another of this transport's callbacks): it runs in a copy of
        the context, and what it raises goes to sendto's caller, as in asyncio. Otherwise
        (a read failed) what it raises is reported and the endpoint keeps serving."""
        if from_caller:
            ctx = self._fresh_context()
            PyContext_Enter(ctx)
            try:
                self.protocol.error_received(exc)
            finally:
                PyContext_Exit(ctx)
            return 0
        try:
            self.protocol.error_received(exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as err:
            self._protocol_failed(err, "error_received")
        return 0

    cdef object _peer(self, sockaddr_storage *sa, socklen_t salen):
        """The address tuple of a sender: the one made last time if it is the same sender."""
        cdef sockaddr_storage parsed
        if salen == self.rsalen and memcmp(sa, &self.rsa, salen) == 0:
            return self.rtuple
        addr = cn_addr_tuple(sa)
        if salen > sizeof(sockaddr_storage):
            salen = 0
        memcpy(&self.rsa, sa, salen)
        self.rsalen = salen
        self.rtuple = addr
        # Answering it skips the parsing only where the socket module would accept the tuple
        # and make this very address of it (a kernel flowinfo may carry the traffic class,
        # beyond the 20 bits the socket module takes).
        self.rsend = (salen > 0 and sa.ss_family == self.family
                      and cn_sockaddr_of(addr, self.family, &parsed) == <int>salen
                      and memcmp(&parsed, sa, salen) == 0)
        return addr

    cdef int _read_ready(self) except -1:
        cdef int i, err
        cdef ssize_t n
        cdef Py_ssize_t room
        cdef sockaddr_storage sa
        cdef socklen_t salen
        if self.family == 0:
            return self._read_ready_sock()
        for i in range(DATAGRAMS_PER_WAKEUP):
            if self.closing or self.fd < 0:
                return 0
            while True:
                salen = sizeof(sa)
                n = c_recvfrom(self.fd, _rbuf, MAX_DATAGRAM, MSG_DONTWAIT, <sockaddr*>&sa, &salen)
                if n >= 0:
                    break
                err = errno
                if err != EINTR:
                    break
            if n < 0:
                if cn_again(err):
                    return 0
                self._error_received(os_error(err), False)
                continue
            try:
                data = received(_rbuf, n, &room)
                addr = self._peer(&sa, salen)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return 0
            self._deliver(data, addr)
            give_back(data, room)
        return self._read_later()

    cdef int _read_ready_sock(self) except -1:
        """Other families (Unix datagram sockets) and socket subclasses that override their
        I/O methods: the socket object's own recvfrom, as asyncio reads."""
        cdef int i
        recvfrom = self.sock_obj.recvfrom
        for i in range(DATAGRAMS_PER_WAKEUP):
            if self.closing or self.fd < 0:
                return 0
            try:
                data, addr = recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return 0
            except OSError as exc:
                self._error_received(exc, False)
                continue
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return 0
            self._deliver(data, addr)
        return self._read_later()

    cdef int _read_later(self) except -1:
        """The wake-up's budget is spent: in edge mode nothing will report the rest, so
        reading goes on in the next iteration (level mode is woken again by epoll)."""
        if self.edge and not self.read_scheduled:
            self.read_scheduled = True
            self.loop._call_soon(self._continue_reading, (), self.context)
        return 0

    def _continue_reading(self):
        self.read_scheduled = False
        if self.started and not self.closing and self.fd >= 0:
            self._read_ready()

    def sendto(self, data, addr=None):
        self._sendto(data, addr)

    cdef int _sendto(self, data, addr) except -1:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if not data:
            return 0
        if self.address:
            if addr not in (None, self.address):
                raise ValueError(f"Invalid address: must be None or {self.address}")
            addr = self.address
        if self.conn_lost:
            # Closed (or lost): a counted drop, as asyncio since 3.12 (3.11 checked this only
            # for connected transports and then failed on the released protocol).
            if self.conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self.conn_lost += 1
            return 0
        if not self.queue and self._send_reported(data, addr, True) != 1:
            return 0
        data = bytes(data)   # the caller may reuse its buffer; len() is now bytes, not items
        self.queue.append((data, addr))
        self.queued_bytes += len(data)
        self._update_interest()
        self._maybe_pause_protocol()
        return 0

    cdef int _send_ready(self) except -1:
        cdef int blocked
        while self.queue:
            data, addr = self.queue.popleft()
            self.queued_bytes -= len(data)
            blocked = self._send_reported(data, addr, False)
            if blocked < 0:
                return 0
            if blocked:
                self.queue.appendleft((data, addr))
                self.queued_bytes += len(data)
                break
        self._maybe_resume_protocol()
        self._update_interest()
        if not self.queue and self.closing:
            self._call_connection_lost(None)
        return 0

    cdef int _send_reported(self, data, addr, bint from_caller) except -2:
        """``_send`` with its errors reported as asyncio's datagram transports do: 0 sent,
        1 would block, -1 failed (an OSError went to ``error_received``, anything else closed
        the transport); the datagram is not retried either way. ``from_caller``: sendto()
        sends it, not the transport's own write-ready event."""
        try:
            return self._send(data, addr)
        except (BlockingIOError, InterruptedError):
            return 1
        except OSError as exc:
            self._error_received(exc, from_caller)
            return -1
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on datagram transport")
            return -1

    cdef int _send(self, data, addr) except -1:
        """Sends one datagram: 0 when sent, 1 when the socket would block; raises what the
        socket module's send/sendto would raise. UDP sockets call send()/sendto() themselves
        for a plain numeric address (cn_sockaddr_of) and buffer-protocol data; anything else
        goes to the socket module, so its behaviour and its errors are unchanged."""
        cdef const sockaddr *to = NULL
        cdef socklen_t tolen = 0
        cdef Py_buffer view
        cdef ssize_t r
        cdef int err
        if self.family == 0:
            return self._send_sock(data, addr)
        if not self.connected:
            if addr is self.rtuple and self.rsend:
                to = <sockaddr*>&self.rsa
                tolen = self.rsalen
            elif addr is self.stuple and addr is not None:
                to = <sockaddr*>&self.ssa
                tolen = self.ssalen
            else:
                self.stuple = None
                tolen = <socklen_t>cn_sockaddr_of(addr, self.family, &self.ssa)
                if tolen == 0:
                    return self._send_sock(data, addr)
                self.stuple = addr
                self.ssalen = tolen
                to = <sockaddr*>&self.ssa
        if PyBytes_CheckExact(data):
            r = _raw_send(self.fd, PyBytes_AS_STRING(data), <size_t>PyBytes_GET_SIZE(data),
                          to, tolen)
        else:
            try:
                PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            except Exception:
                return self._send_sock(data, addr)   # the socket module's own error
            r = _raw_send(self.fd, <const char*>view.buf, <size_t>view.len, to, tolen)
            PyBuffer_Release(&view)
        if r >= 0:
            return 0
        err = <int>-r
        if cn_would_block(err):
            return 1
        raise os_error(err)

    cdef int _send_sock(self, data, addr) except -1:
        if self.connected:
            self.sock_obj.send(data)
        else:
            self.sock_obj.sendto(data, addr)
        return 0

    def set_protocol(self, protocol):
        self.protocol = protocol


# The face's sendto (see "the faces' methods" in _transport.pyx).

cdef FaceSlot* _face = NULL


def register_face(type cls):
    global _face
    _face = add_face(cls, DatagramTransport)


def face_sendto(face, data, addr=None):
    cdef PyObject* engine = engine_at(face, _face)
    if engine != NULL:
        (<DatagramTransport>engine)._sendto(data, addr)
    else:
        (<DatagramTransport?>engine_of(face))._sendto(data, addr)
