# cython: boundscheck=False, wraparound=False
"""The UDP (and Unix datagram) transport: drains every readable datagram per wake-up, sends
straight away and queues only when the socket would block."""
from collections import deque

from libc.stdint cimport uint32_t

from corenet._sys cimport *
from corenet._loop cimport BaseLoop, FdWatcher

import asyncio
from asyncio import trsock

cdef object logger = asyncio.log.logger
cdef object _set_result_unless_cancelled = asyncio.futures._set_result_unless_cancelled
cdef object TransportSocket = trsock.TransportSocket

DEF MAX_DATAGRAM = 262144
# Datagrams handled per wake-up before others get their turn (level mode re-polls, edge mode
# continues in the next iteration).
DEF DATAGRAMS_PER_WAKEUP = 256
DEF LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5


cdef class DatagramTransport(FdWatcher):
    cdef BaseLoop loop
    cdef public object _sock
    cdef object protocol
    cdef object face
    cdef dict extra
    cdef object address
    cdef object queue
    cdef Py_ssize_t queued_bytes
    cdef bint edge
    cdef bint closing
    cdef bint started
    cdef bint connected
    cdef bint read_scheduled
    cdef bint protocol_paused
    cdef int conn_lost
    cdef Py_ssize_t high_water
    cdef Py_ssize_t low_water

    def __cinit__(self, int fd):
        self.queue = deque()
        self.high_water = 65536
        self.low_water = 16384

    def _start(self, BaseLoop loop, sock, protocol, face, address, waiter, extra):
        self.loop = loop
        self._sock = sock
        self.face = face
        self.address = address
        self.edge = loop._edge
        self.extra = extra if extra is not None else {}
        self.extra["socket"] = TransportSocket(sock)
        try:
            self.extra["sockname"] = sock.getsockname()
        except OSError:
            self.extra["sockname"] = None
        if "peername" not in self.extra:
            try:
                self.extra["peername"] = sock.getpeername()
            except OSError:
                self.extra["peername"] = None
        self.connected = self.extra["peername"] is not None
        self.protocol = protocol
        loop.register_watcher(self, 0)   # into epoll once connected, as streams do
        loop.call_soon(self._connection_made)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def _connection_made(self):
        if self.closing:
            return
        if self.edge:
            self.loop._epoll_ctl(EPOLL_CTL_ADD, self.fd, EPOLLIN | EPOLLOUT | EPOLLET)
            self.registered = EPOLLIN | EPOLLOUT | EPOLLET
        self.protocol.connection_made(self.face)
        self.started = True
        self._update_interest()

    cdef int _update_interest(self) except -1:
        cdef uint32_t want = 0
        if self.edge or self.fd < 0:
            return 0
        if self.started and not self.closing:
            want |= EPOLLIN
        if self.queue:
            want |= EPOLLOUT
        if want == self.registered:
            return 0
        if want == 0:
            self.loop._epoll_ctl(EPOLL_CTL_DEL, self.fd, 0)
        elif self.registered == 0:
            self.loop._epoll_ctl(EPOLL_CTL_ADD, self.fd, want)
        else:
            self.loop._epoll_ctl(EPOLL_CTL_MOD, self.fd, want)
        self.registered = want
        return 0

    cdef int on_events(self, BaseLoop loop, uint32_t events) except -1:
        if events & (EPOLLOUT | EPOLLERR) and self.queue:
            self._send_ready()
        if events & (EPOLLIN | EPOLLERR | EPOLLHUP) and self.started and not self.closing:
            self._read_ready()
        return 0

    cdef int _read_ready(self) except -1:
        cdef int i
        recvfrom = self._sock.recvfrom
        for i in range(DATAGRAMS_PER_WAKEUP):
            if self.closing or self.fd < 0:
                return 0
            try:
                data, addr = recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return 0
            except OSError as exc:
                self.protocol.error_received(exc)
                continue
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return 0
            try:
                self.protocol.datagram_received(data, addr)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                # As in asyncio, a failing protocol is reported and the endpoint keeps serving.
                self.loop.call_exception_handler({
                    "message": "Exception in protocol.datagram_received()",
                    "exception": exc, "transport": self.face, "protocol": self.protocol})
        if self.edge and not self.read_scheduled:
            self.read_scheduled = True
            self.loop.call_soon(self._continue_reading)
        return 0

    def _continue_reading(self):
        self.read_scheduled = False
        if self.started and not self.closing and self.fd >= 0:
            self._read_ready()

    def sendto(self, data, addr=None):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if not data:
            return
        if self.address:
            if addr not in (None, self.address):
                raise ValueError(f"Invalid address: must be None or {self.address}")
            addr = self.address
        if self.conn_lost and self.address:
            if self.conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self.conn_lost += 1
            return
        if not self.queue:
            try:
                if self.connected:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self.protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        self.queue.append((bytes(data), addr))
        self.queued_bytes += len(data)
        self._update_interest()
        self._maybe_pause_protocol()

    cdef int _send_ready(self) except -1:
        while self.queue:
            data, addr = self.queue.popleft()
            self.queued_bytes -= len(data)
            try:
                if self.connected:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                self.queue.appendleft((data, addr))
                self.queued_bytes += len(data)
                break
            except OSError as exc:
                self.protocol.error_received(exc)
                return 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return 0
        self._maybe_resume_protocol()
        self._update_interest()
        if not self.queue and self.closing:
            self._call_connection_lost(None)
        return 0

    cdef int _maybe_pause_protocol(self) except -1:
        if self.queued_bytes > self.high_water and not self.protocol_paused:
            self.protocol_paused = True
            try:
                self.protocol.pause_writing()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self.loop.call_exception_handler({
                    "message": "protocol.pause_writing() failed", "exception": exc,
                    "transport": self.face, "protocol": self.protocol})
        return 0

    cdef int _maybe_resume_protocol(self) except -1:
        if self.protocol_paused and self.queued_bytes <= self.low_water:
            self.protocol_paused = False
            try:
                self.protocol.resume_writing()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self.loop.call_exception_handler({
                    "message": "protocol.resume_writing() failed", "exception": exc,
                    "transport": self.face, "protocol": self.protocol})
        return 0

    def get_write_buffer_size(self):
        return self.queued_bytes

    def get_write_buffer_limits(self):
        return (self.low_water, self.high_water)

    def set_write_buffer_limits(self, high=None, low=None):
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self.high_water = high
        self.low_water = low
        self._maybe_pause_protocol()

    def is_closing(self):
        return self.closing

    def close(self):
        if self.closing:
            return
        self.closing = True
        self._update_interest()
        if not self.queue:
            self.conn_lost += 1
            self.loop.call_soon(self._call_connection_lost_py, None)

    def abort(self):
        self._force_close(None)

    cdef int _fatal_error(self, exc, str message) except -1:
        if isinstance(exc, OSError):
            if self.loop._debug:
                logger.debug("%r: %s", self.face, message, exc_info=True)
        else:
            self.loop.call_exception_handler({
                "message": message, "exception": exc,
                "transport": self.face, "protocol": self.protocol})
        self._force_close(exc)
        return 0

    def _force_close(self, exc):
        if self.conn_lost:
            return
        self.queue.clear()
        self.queued_bytes = 0
        self.closing = True
        self.conn_lost += 1
        if self.loop._closed:
            self.fd = -1
            self._sock.close()
            return
        self._update_interest()
        self.loop.call_soon(self._call_connection_lost_py, exc)

    def _call_connection_lost_py(self, exc):
        self._call_connection_lost(exc)

    cdef int _call_connection_lost(self, exc) except -1:
        if self.fd < 0:
            return 0
        try:
            if self.started:
                self.protocol.connection_lost(exc)
        finally:
            self.loop.unregister_watcher(self)
            self.fd = -1
            self._sock.close()
            self.protocol = None
        return 0

    def get_extra_info(self, name, default=None):
        return self.extra.get(name, default)

    def set_protocol(self, protocol):
        self.protocol = protocol

    def get_protocol(self):
        return self.protocol
