"""The base of corenet's transport engines (``_stream.StreamTransport``,
``_datagram.DatagramTransport``): the parts that do not depend on how bytes move."""
from libc.stdint cimport uint32_t

from corenet._sys cimport EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD
from corenet._loop cimport BaseLoop, FdWatcher

import asyncio
from asyncio import trsock

cdef object logger = asyncio.log.logger
cdef object TransportSocket = trsock.TransportSocket


cdef class BaseTransport(FdWatcher):

    def __cinit__(self, int fd):
        self.high_water = 65536
        self.low_water = 16384

    cdef int _attach(self, BaseLoop loop, object sock, object protocol, object face,
                     object extra) except -1:
        """Takes the socket; into the fd table now, into epoll when connected (see
        ``_enter_epoll``), so readiness reaches the protocol through the next poll, after
        the callbacks already queued, as in asyncio."""
        self.loop = loop
        self._sock = sock
        self.face = face
        self.protocol = protocol
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
        loop.register_watcher(self, 0)
        return 0

    cdef int _enter_epoll(self, uint32_t edge_events) except -1:
        """Edge mode registers once, here, for the transport's whole life; level mode asks
        for what it waits for (``_update_interest``)."""
        if self.edge:
            self.loop._epoll_ctl(EPOLL_CTL_ADD, self.fd, edge_events)
            self.registered = edge_events
        else:
            self._update_interest()
        return 0

    cdef Py_ssize_t _buffered(self):
        return 0

    cdef uint32_t _wanted(self):
        return 0

    cdef int _drop_buffer(self) except -1:
        return 0

    cdef int _update_interest(self) except -1:
        """Level-triggered mode: ask epoll for what we wait for, and nothing else."""
        cdef uint32_t want
        if self.edge or self.loop is None or self.fd < 0:
            return 0
        want = self._wanted()
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

    # ------------------------------------------------------------ flow control

    cdef int _maybe_pause_protocol(self) except -1:
        if self._buffered() <= self.high_water or self._protocol_paused:
            return 0
        self._protocol_paused = True
        self._flow_hook("pause_writing")
        return 0

    cdef int _maybe_resume_protocol(self) except -1:
        if self._protocol_paused and self._buffered() <= self.low_water:
            self._protocol_paused = False
            self._flow_hook("resume_writing")
        return 0

    cdef int _flow_hook(self, str name) except -1:
        """Calls the protocol's pause_writing/resume_writing: a failure goes to the loop's
        exception handler, as in asyncio, and the transport carries on."""
        try:
            getattr(self.protocol, name)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.loop.call_exception_handler({
                "message": f"protocol.{name}() failed",
                "exception": exc, "transport": self.face, "protocol": self.protocol})
        return 0

    def get_write_buffer_size(self):
        return self._buffered()

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

    # ------------------------------------------------------------ closing

    def is_closing(self):
        return self.closing

    def close(self):
        """Stops reading; connection_lost follows once the write buffer has drained."""
        if self.closing:
            return
        self.closing = True
        self._update_interest()
        if self._buffered() == 0:
            self.conn_lost += 1
            self.loop.call_soon(self._call_connection_lost_py, None)

    def abort(self):
        self._force_close(None)

    cdef int _fatal_error(self, exc, str message) except -1:
        # An OSError is the peer's doing: logged only in debug mode, as asyncio does.
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
        self._drop_buffer()
        self.closing = True
        self.conn_lost += 1
        if self.loop._closed:
            # Nothing will run connection_lost any more: release the socket now.
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
        if not self.conn_lost:
            self.conn_lost = 1   # closed after draining: later writes are counted drops
        try:
            if self.protocol_connected:
                self.protocol.connection_lost(exc)
        finally:
            self._release()
        return 0

    cdef int _release(self) except -1:
        self.loop.unregister_watcher(self)
        self.fd = -1
        self._sock.close()
        self.protocol = None
        return 0

    # ------------------------------------------------------------ the rest of the API

    def get_extra_info(self, name, default=None):
        return self.extra.get(name, default)

    def get_protocol(self):
        return self.protocol

    @property
    def _loop(self):
        return self.loop
