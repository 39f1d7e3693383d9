# cython: boundscheck=False, wraparound=False
"""The UDP (and Unix datagram) transport: drains every readable datagram per wake-up, sends
straight away and queues only when the socket would block."""
from collections import deque

from libc.stdint cimport uint32_t

from corenet._sys cimport *
from corenet._loop cimport BaseLoop
from corenet._transport cimport BaseTransport

import asyncio

cdef object logger = asyncio.log.logger
cdef object _set_result_unless_cancelled = asyncio.futures._set_result_unless_cancelled

DEF MAX_DATAGRAM = 262144
# Datagrams handled per wake-up before others get their turn (level mode re-polls, edge mode
# continues in the next iteration).
DEF DATAGRAMS_PER_WAKEUP = 256
DEF LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5


cdef class DatagramTransport(BaseTransport):
    cdef object address
    cdef object queue
    cdef Py_ssize_t queued_bytes
    cdef bint connected

    def __cinit__(self, int fd):
        self.queue = deque()

    def _start(self, BaseLoop loop, sock, protocol, face, address, waiter, extra):
        self._attach(loop, sock, protocol, face, extra)
        self.address = address
        self.connected = self.extra["peername"] is not None
        loop.call_soon(self._connection_made)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def _connection_made(self):
        if self.closing:
            return
        self._enter_epoll(EPOLLIN | EPOLLOUT | EPOLLET)
        self.protocol_connected = True
        self.protocol.connection_made(self.face)
        self.started = True
        self._update_interest()

    cdef Py_ssize_t _buffered(self):
        return self.queued_bytes

    cdef uint32_t _wanted(self):
        cdef uint32_t want = 0
        if self.started and not self.closing:
            want |= EPOLLIN
        if self.queue:
            want |= EPOLLOUT
        return want

    cdef int _drop_buffer(self) except -1:
        self.queue.clear()
        self.queued_bytes = 0
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

    def set_protocol(self, protocol):
        self.protocol = protocol
