# cython: language_level=3
"""The TLS protocol of corenet's stream transports (see ``corenet.tls`` for what it adds to
asyncio's TLS semantics): a ``BufferedProtocol`` that runs OpenSSL over two MemoryBIOs.

The per-connection steps (handshake, reads, writes, flow control, half-close, shutdown)
are C functions of ``TLSProtocol``; OpenSSL is reached through CPython's C SSL object
(``SSLObject._sslobj``) when the context makes plain ``ssl.SSLObject`` wrappers, and through
the wrapper otherwise (an ``sslobject_class`` of the application's own is honoured).
"""
import collections
import ssl
import threading
import warnings

from asyncio import constants, exceptions, protocols, transports
from asyncio.log import logger

from corenet.capi cimport Loop, fast_loop, call_later_fn

# The protocol's states (asyncio's SSLProtocolState, as C integers).
cdef enum:
    UNWRAPPED = 0
    DO_HANDSHAKE = 1
    WRAPPED = 2
    FLUSHING = 3
    SHUTDOWN = 4

# Where the application protocol is (asyncio's AppProtocolState).
cdef enum:
    APP_INIT = 0
    APP_CON_MADE = 1
    APP_EOF = 2
    APP_CON_LOST = 3

STATE_NAMES = ("UNWRAPPED", "DO_HANDSHAKE", "WRAPPED", "FLUSHING", "SHUTDOWN")

#: Bytes the transport may put in the receive buffer at once (asyncio's read size).
RECEIVE_BUFFER = 256 * 1024
# What one SSLObject.read may return: a record's plaintext is at most 16 KiB and a read
# returns one record at most. A read makes a bytes object of the size asked for and shrinks
# it to what came; asked for more, the allocation is large enough for malloc to map and
# unmap pages on every record.
cdef Py_ssize_t RECORD_READ = 16 * 1024

cdef object SSLObject = ssl.SSLObject
cdef object MemoryBIO = ssl.MemoryBIO
cdef object SSLError = ssl.SSLError
cdef object SSLZeroReturnError = ssl.SSLZeroReturnError
cdef object CertificateError = ssl.CertificateError
# "Not yet", as asyncio takes it: OpenSSL needs more bytes from the peer (over a MemoryBIO
# the syscall error says the same), so the step is tried again when they arrive.
cdef tuple AGAIN = (ssl.SSLWantReadError, ssl.SSLSyscallError)
cdef tuple NOTHING_MORE = (ssl.SSLWantReadError, ssl.SSLWantWriteError, SSLZeroReturnError)
cdef object deque = collections.deque
cdef object _warn = warnings.warn
cdef object BufferedProtocol = protocols.BufferedProtocol
cdef object CancelledError = exceptions.CancelledError
cdef object LOG_THRESHOLD = constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES


def flow_control_limits(high, low, Py_ssize_t kb):
    """(high, low) water marks from what a caller gave (None: the default of ``kb`` KiB,
    low a quarter of high), checked as asyncio checks them."""
    if high is None:
        high = kb * 1024 if low is None else 4 * low
    if low is None:
        low = high // 4
    if not high >= low >= 0:
        raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
    return high, low


cdef Py_ssize_t READ_HIGH = constants.FLOW_CONTROL_HIGH_WATER_SSL_READ * 1024
cdef Py_ssize_t WRITE_HIGH = constants.FLOW_CONTROL_HIGH_WATER_SSL_WRITE * 1024


class _ReceiveBuffer(threading.local):
    """The buffer the transports of one thread receive TLS records into. A record is
    copied into its connection's incoming MemoryBIO at once (``buffer_updated``), so one
    buffer serves every connection of the thread, and a connection costs no buffer of its
    own to allocate and clear."""

    def __init__(self):
        self.view = memoryview(bytearray(RECEIVE_BUFFER))


cdef object _receive = _ReceiveBuffer()


cdef object context_of(transport):
    """The context a transport runs its protocol's callbacks in: a corenet transport's own,
    or for TLS over TLS, the one of the TLS connection underneath."""
    engine = getattr(transport, "_engine", None)
    if engine is not None:
        return engine._context
    below = getattr(transport, "_ssl_protocol", None)
    if isinstance(below, TLSProtocol):
        return (<TLSProtocol>below)._context
    return None


cdef class TLSProtocol:
    """One TLS connection over a stream transport (``corenet.tls.SSLProtocol`` is this with
    ``asyncio.BufferedProtocol`` mixed in)."""

    cdef public object _loop
    cdef public object _transport          # the stream underneath
    cdef public object _app_transport      # the application's SSLTransport
    cdef public object _app_protocol
    cdef public object _sslcontext
    cdef public object _incoming, _outgoing
    cdef public object _waiter
    cdef public dict _extra
    cdef public object _context            # the callbacks' contextvars context
    cdef public object _handshake_timeout_handle
    cdef public object _shutdown_timeout_handle
    cdef public object _handshake_start_time
    cdef public object _server_hostname
    cdef public bint _server_side
    cdef public double _ssl_handshake_timeout
    cdef public double _ssl_shutdown_timeout
    cdef object _wrapper                   # the ssl.SSLObject (or the context's class)
    cdef object _obj                       # what OpenSSL is called through
    cdef bint _direct                      # _obj is CPython's C SSL object
    cdef object _write_backlog
    cdef object _view                      # the receive buffer get_buffer gave
    cdef object _app_get_buffer, _app_buffer_updated
    cdef public bint _app_protocol_is_buffer
    cdef readonly int _state
    cdef int _app_state
    cdef public bint _app_transport_created
    cdef public int _conn_lost
    cdef public bint _eof_received         # the TCP stream's end
    cdef public Py_ssize_t _write_buffer_size
    cdef public bint _ssl_writing_paused, _app_reading_paused
    cdef public bint _ssl_reading_paused, _app_writing_paused
    cdef public Py_ssize_t _incoming_high_water, _incoming_low_water
    cdef public Py_ssize_t _outgoing_high_water, _outgoing_low_water
    cdef public bint _eof_asked            # write_eof() was called
    cdef public bint _eof_sent             # our close_notify is out
    cdef public bint _kept_open            # the peer's close_notify came; we keep writing
    cdef readonly Py_ssize_t dropped_after_close_notify   # bytes the peer sent after it

    def __init__(self, loop, app_protocol, sslcontext, waiter, server_side=False,
                 server_hostname=None, call_connection_made=True, ssl_handshake_timeout=None,
                 ssl_shutdown_timeout=None):
        if ssl_handshake_timeout is None:
            ssl_handshake_timeout = constants.SSL_HANDSHAKE_TIMEOUT
        elif ssl_handshake_timeout <= 0:
            raise ValueError(f"ssl_handshake_timeout should be a positive number, "
                             f"got {ssl_handshake_timeout}")
        if ssl_shutdown_timeout is None:
            ssl_shutdown_timeout = constants.SSL_SHUTDOWN_TIMEOUT
        elif ssl_shutdown_timeout <= 0:
            raise ValueError(f"ssl_shutdown_timeout should be a positive number, "
                             f"got {ssl_shutdown_timeout}")
        if not sslcontext:
            if server_side:
                raise ValueError("Server side SSL needs a valid SSLContext")
            sslcontext = ssl.create_default_context()
            if not server_hostname:
                sslcontext.check_hostname = False
        self._server_side = server_side
        self._server_hostname = server_hostname if server_hostname and not server_side else None
        self._sslcontext = sslcontext
        self._extra = {"sslcontext": sslcontext}       # the rest once the handshake is done
        self._write_backlog = deque()
        self._waiter = waiter
        self._loop = loop
        self.set_app_protocol(app_protocol)
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        self._state = UNWRAPPED
        self._app_state = APP_INIT if call_connection_made else APP_CON_MADE
        self._incoming_high_water = READ_HIGH
        self._incoming_low_water = READ_HIGH // 4
        self._outgoing_high_water = WRITE_HIGH
        self._outgoing_low_water = WRITE_HIGH // 4
        self._incoming = MemoryBIO()
        self._outgoing = MemoryBIO()
        self._sslobj = sslcontext.wrap_bio(self._incoming, self._outgoing,
                                           server_side=server_side,
                                           server_hostname=self._server_hostname)
        self._app_transport = SSLTransport(loop, self)
        self._app_transport_created = True

    # -- what tests and subclasses see

    @property
    def _sslobj(self):
        return self._wrapper

    @_sslobj.setter
    def _sslobj(self, value):
        self._wrapper = value
        self._direct = type(value) is SSLObject
        self._obj = value._sslobj if self._direct else value

    @property
    def session_reused(self):
        """Whether the handshake resumed a session (False until it is done)."""
        return self._obj.session_reused

    @property
    def state_name(self):
        """The protocol's state, named as asyncio names it."""
        return STATE_NAMES[self._state]

    def set_app_protocol(self, app_protocol):
        """Sets the application protocol: the one whose ``connection_made`` follows the
        handshake and that receives the decrypted stream."""
        self._app_protocol = app_protocol
        if hasattr(app_protocol, "get_buffer") and isinstance(app_protocol, BufferedProtocol):
            self._app_get_buffer = app_protocol.get_buffer
            self._app_buffer_updated = app_protocol.buffer_updated
            self._app_protocol_is_buffer = True
        else:
            self._app_protocol_is_buffer = False

    def _set_app_protocol(self, app_protocol):
        # asyncio's name for it, which CPython's tests call
        self.set_app_protocol(app_protocol)

    cdef int _set_state(self, int new) except -1:
        cdef int old = self._state
        if (new == UNWRAPPED or (old == UNWRAPPED and new == DO_HANDSHAKE)
                or (old == DO_HANDSHAKE and new == WRAPPED)
                or (old == WRAPPED and new == FLUSHING)
                or (old == FLUSHING and new == SHUTDOWN)):
            self._state = new
            return 0
        raise RuntimeError(f"cannot switch state from {STATE_NAMES[old]} to {STATE_NAMES[new]}")

    cdef int _wakeup_waiter(self, exc) except -1:
        waiter = self._waiter
        if waiter is None:
            return 0
        self._waiter = None
        if not waiter.cancelled():
            if exc is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(None)
        return 0

    def _get_app_transport(self):
        if self._app_transport is None:
            if self._app_transport_created:
                raise RuntimeError("the TLS application transport exists already")
            self._app_transport = SSLTransport(self._loop, self)
            self._app_transport_created = True
        return self._app_transport

    # -- the stream underneath

    def connection_made(self, transport):
        self._context = context_of(transport)
        self._transport = transport
        self._start_handshake()

    def connection_lost(self, exc):
        self._write_backlog.clear()
        self._outgoing.read()
        self._conn_lost += 1
        if self._app_transport is not None:
            self._app_transport._closed = True
        if self._state != DO_HANDSHAKE and (self._app_state == APP_CON_MADE
                                            or self._app_state == APP_EOF):
            self._app_state = APP_CON_LOST
            self._loop.call_soon(self._app_protocol.connection_lost, exc)
        self._state = UNWRAPPED
        self._transport = None
        self._app_transport = None
        self._app_protocol = None
        # The application's buffer methods point back at it, and through it at this
        # protocol: let go of them, so that the connection (and OpenSSL's state for it) is
        # freed by reference counting rather than by the cyclic garbage collector.
        self._app_get_buffer = self._app_buffer_updated = None
        self._wakeup_waiter(exc)
        if self._shutdown_timeout_handle is not None:
            self._shutdown_timeout_handle.cancel()
            self._shutdown_timeout_handle = None
        if self._handshake_timeout_handle is not None:
            self._handshake_timeout_handle.cancel()
            self._handshake_timeout_handle = None

    def get_buffer(self, n):
        self._view = view = _receive.view
        return view

    def buffer_updated(self, Py_ssize_t nbytes):
        cdef int state
        view = self._view
        if view is None:
            view = _receive.view
        self._incoming.write(view[:nbytes])
        state = self._state
        if state == WRAPPED:
            self._do_read()
        elif state == DO_HANDSHAKE:
            self._do_handshake()
        elif state == FLUSHING:
            self._do_flush()
        elif state == SHUTDOWN:
            self._do_shutdown()

    def eof_received(self):
        """The stream's end (TCP FIN). Behind a close_notify the application kept open, the
        connection stays for writing; otherwise asyncio's steps."""
        if self._kept_open:
            return True
        self._eof_received = True
        try:
            if self._loop.get_debug():
                logger.debug("%r received EOF", self)
            if self._state == DO_HANDSHAKE:
                self._on_handshake_complete(ConnectionResetError())
            elif self._state == WRAPPED:
                self._set_state(FLUSHING)
                if self._app_reading_paused:
                    return True
                self._do_flush()
            elif self._state == FLUSHING:
                self._do_write()
                self._set_state(SHUTDOWN)
                self._do_shutdown()
            elif self._state == SHUTDOWN:
                self._do_shutdown()
        except Exception:
            self._transport.close()
            raise

    def pause_writing(self):
        """The stream's buffer is full: what OpenSSL writes waits in the outgoing BIO."""
        assert not self._ssl_writing_paused
        self._ssl_writing_paused = True

    def resume_writing(self):
        assert self._ssl_writing_paused
        self._ssl_writing_paused = False
        self._process_outgoing()

    # -- extra info

    def _get_extra_info(self, name, default=None):
        """The SSL context, and once the handshake is done the SSL object; the peer's
        certificate, the cipher and the compression are read from the SSL object when first
        asked for; the rest is the stream's."""
        extra = self._extra
        if name in extra:
            return extra[name]
        if "ssl_object" in extra:
            obj = extra["ssl_object"]
            if name == "peercert":
                value = extra[name] = obj.getpeercert()
                return value
            if name == "cipher":
                value = extra[name] = obj.cipher()
                return value
            if name == "compression":
                value = extra[name] = obj.compression()
                return value
        if self._transport is not None:
            return self._transport.get_extra_info(name, default)
        return default

    # -- the handshake

    cdef int _start_handshake(self) except -1:
        """A server whose peer has sent nothing yet does not ask OpenSSL: it could only say
        that it waits for the ClientHello. The first bytes to arrive take the first step."""
        cdef Loop fast
        if self._loop.get_debug():
            logger.debug("%r starts SSL handshake", self)
            self._handshake_start_time = self._loop.time()
        else:
            self._handshake_start_time = None
        self._set_state(DO_HANDSHAKE)
        fast = fast_loop(self._loop)
        if fast is not None:
            self._handshake_timeout_handle = call_later_fn(
                fast, self._ssl_handshake_timeout, self._check_handshake_timeout)
        else:
            self._handshake_timeout_handle = self._loop.call_later(
                self._ssl_handshake_timeout, self._check_handshake_timeout)
        if not self._server_side or self._incoming.pending:
            self._do_handshake()
        return 0

    def _check_handshake_timeout(self):
        if self._state == DO_HANDSHAKE:
            self._fatal_error(ConnectionAbortedError(
                f"SSL handshake is taking longer than {self._ssl_handshake_timeout} "
                f"seconds: aborting the connection"))

    cdef int _do_handshake(self) except -1:
        try:
            self._obj.do_handshake()
        except AGAIN:
            self._process_outgoing()
        except SSLError as exc:
            self._on_handshake_complete(exc)
        else:
            self._on_handshake_complete(None)
        return 0

    cpdef _on_handshake_complete(self, handshake_exc):
        """The handshake's end: on success the application's connection_made and the first
        read (records that came with the peer's Finished); on failure the connection's
        fatal error and the waiter's exception."""
        if self._handshake_timeout_handle is not None:
            self._handshake_timeout_handle.cancel()
            self._handshake_timeout_handle = None
        if handshake_exc is None and self._state != DO_HANDSHAKE:
            handshake_exc = RuntimeError(
                f"cannot switch state from {STATE_NAMES[self._state]} to WRAPPED")
        if handshake_exc is not None:
            if isinstance(handshake_exc, type):
                handshake_exc = handshake_exc()
            self._state = UNWRAPPED
            if isinstance(handshake_exc, CertificateError):
                msg = "SSL handshake failed on verifying the certificate"
            else:
                msg = "SSL handshake failed"
            self._fatal(handshake_exc, msg)
            self._wakeup_waiter(handshake_exc)
            return
        self._state = WRAPPED
        if self._handshake_start_time is not None:
            logger.debug("%r: SSL handshake took %.1f ms", self,
                         (self._loop.time() - self._handshake_start_time) * 1e3)
        self._extra["ssl_object"] = self._wrapper
        if self._app_state == APP_INIT:
            self._app_state = APP_CON_MADE
            self._app_protocol.connection_made(self._get_app_transport())
        self._wakeup_waiter(None)
        self._do_read()

    # -- shutting down

    def _start_shutdown(self):
        """The connection's close: a flush of what is left to read and write, then
        close_notify. The read path ending on the peer's close_notify does not close a
        connection the application keeps open."""
        cdef int state = self._state
        if state == FLUSHING or state == SHUTDOWN or state == UNWRAPPED:
            return           # under way or over already
        if self._kept_open and not self._app_transport._closed:
            return           # the application closes when it is done
        # close() may call it: the reads of the flush that begins here run in the context.
        if self._context is None:
            self._start_shutdown_now()
        else:
            self._context.copy().run(self._start_shutdown_now)

    def _start_shutdown_now(self):
        if self._app_transport is not None:
            self._app_transport._closed = True
        if self._state == DO_HANDSHAKE:
            self._abort()
        else:
            self._set_state(FLUSHING)
            self._shutdown_timeout_handle = self._loop.call_later(
                self._ssl_shutdown_timeout, self._check_shutdown_timeout)
            self._do_flush()

    def _check_shutdown_timeout(self):
        if self._state == FLUSHING or self._state == SHUTDOWN:
            self._transport._force_close(exceptions.TimeoutError("SSL shutdown timed out"))

    cdef int _do_flush(self) except -1:
        self._do_read()
        self._set_state(SHUTDOWN)
        self._do_shutdown()
        return 0

    cdef object _unwrap(self):
        if self._direct:
            return self._obj.shutdown()
        return self._obj.unwrap()

    cdef int _do_shutdown(self) except -1:
        """After ``close()`` the application takes no more data, but the peer may have sent
        some before our close_notify reached it. OpenSSL's shutdown fails on application
        records (APPLICATION_DATA_AFTER_CLOSE_NOTIFY): they are read and dropped first, so
        that the close ends cleanly."""
        if not self._eof_received:
            try:
                while (self._incoming.pending or self._obj.pending()) and self._obj.read(65536):
                    pass
            except NOTHING_MORE:
                pass     # nothing more yet, or the peer's close_notify: the shutdown goes on
            except SSLError as exc:
                self._on_shutdown_complete(exc)
                return 0
            try:
                self._unwrap()
            except AGAIN:
                self._process_outgoing()
                return 0
            except SSLError as exc:
                self._on_shutdown_complete(exc)
                return 0
        self._process_outgoing()
        self._call_eof_received()
        self._on_shutdown_complete(None)
        return 0

    cdef int _on_shutdown_complete(self, shutdown_exc) except -1:
        if self._shutdown_timeout_handle is not None:
            self._shutdown_timeout_handle.cancel()
            self._shutdown_timeout_handle = None
        if shutdown_exc:
            self._fatal(shutdown_exc, "Fatal error on transport")
        else:
            self._loop.call_soon(self._transport.close)
        return 0

    def _abort(self, exc=None):
        self._state = UNWRAPPED
        transport = self._transport
        if transport is not None:
            if exc is None:
                transport.abort()
            else:
                transport._force_close(exc)

    # -- writing

    def _write_appdata(self, list_of_data):
        if self._refuse_write():
            return
        for data in list_of_data:
            self._write_backlog.append(data)
            self._write_buffer_size += len(data)
        self._write_queued()

    cdef int _write_one(self, data) except -1:
        if self._refuse_write():
            return 0
        self._write_backlog.append(data)
        self._write_buffer_size += len(data)
        self._write_queued()
        return 0

    cdef bint _refuse_write(self) except -1:
        cdef int state = self._state
        if state == FLUSHING or state == SHUTDOWN or state == UNWRAPPED:
            if self._conn_lost >= LOG_THRESHOLD:
                logger.warning("SSL connection is closed")
            self._conn_lost += 1
            return True
        return False

    cdef int _write_queued(self) except -1:
        try:
            if self._state == WRAPPED:
                self._do_write()
        except Exception as ex:
            self._fatal(ex, "Fatal error on SSL protocol")
        return 0

    cdef int _do_write(self) except -1:
        cdef Py_ssize_t count, size
        backlog = self._write_backlog
        obj = self._obj
        try:
            while backlog:
                data = backlog[0]
                count = obj.write(data)
                size = len(data)
                if count < size:
                    backlog[0] = data[count:]
                    self._write_buffer_size -= count
                else:
                    backlog.popleft()
                    self._write_buffer_size -= size
        except AGAIN:
            pass
        self._process_outgoing()
        if self._eof_asked and not self._eof_sent:
            self._send_close_notify()
        return 0

    cdef int _process_outgoing(self) except -1:
        """Sends what OpenSSL has written, then checks the application's write limits."""
        cdef Py_ssize_t size
        outgoing = self._outgoing
        size = outgoing.pending
        if size and not self._ssl_writing_paused:
            self._transport.write(outgoing.read())
            size = 0
        size += self._write_buffer_size
        if ((size >= self._outgoing_high_water and not self._app_writing_paused)
                or (size <= self._outgoing_low_water and self._app_writing_paused)):
            # pause_writing or resume_writing is due: in a copy of the callbacks' context,
            # since write() may be called inside another callback, in the context itself.
            if self._context is None:
                self._control_app_writing()
            else:
                self._context.copy().run(self._control_app_writing)
        return 0

    def _control_app_writing(self):
        cdef Py_ssize_t size = self._outgoing.pending + self._write_buffer_size
        if size >= self._outgoing_high_water and not self._app_writing_paused:
            self._app_writing_paused = True
            self._call_flow_hook("pause_writing")
        elif size <= self._outgoing_low_water and self._app_writing_paused:
            self._app_writing_paused = False
            self._call_flow_hook("resume_writing")

    cdef int _call_flow_hook(self, str name) except -1:
        try:
            getattr(self._app_protocol, name)()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": f"protocol.{name}() failed",
                "exception": exc,
                "transport": self._app_transport,
                "protocol": self,
            })
        return 0

    def _get_write_buffer_size(self):
        return self._outgoing.pending + self._write_buffer_size

    def _set_write_buffer_limits(self, high=None, low=None):
        self._outgoing_high_water, self._outgoing_low_water = flow_control_limits(
            high, low, constants.FLOW_CONTROL_HIGH_WATER_SSL_WRITE)

    # -- reading

    cdef int _do_read(self) except -1:
        """Decrypted records to the application, then what OpenSSL has to send, then the
        read side's flow control. With no record received and nothing decrypted left over
        (just after the handshake, or reading resumed with nothing waiting) OpenSSL is not
        asked: it could only say that it waits for more."""
        cdef int state = self._state
        cdef Py_ssize_t size
        if state != WRAPPED and state != FLUSHING:
            return 0
        if self._kept_open:
            # The peer's stream ended with its close_notify: whatever comes after it is
            # not TLS the peer may send, and is dropped rather than kept.
            if self._incoming.pending:
                self.dropped_after_close_notify += len(self._incoming.read())
            return 0
        try:
            if not self._app_reading_paused:
                if not self._incoming.pending and not self._obj.pending():
                    pass
                elif self._app_protocol_is_buffer:
                    self._do_read_buffered()
                else:
                    self._do_read_copied()
                if self._write_backlog:
                    self._do_write()
                else:
                    self._process_outgoing()
            size = self._incoming.pending
            if size >= self._incoming_high_water:
                if not self._ssl_reading_paused:
                    self._ssl_reading_paused = True
                    self._transport.pause_reading()
            elif size <= self._incoming_low_water and self._ssl_reading_paused:
                self._ssl_reading_paused = False
                self._transport.resume_reading()
        except Exception as ex:
            self._fatal(ex, "Fatal error on SSL protocol")
        if self._eof_asked and not self._eof_sent:
            self._send_close_notify()
        return 0

    def _do_read_later(self):
        self._do_read()

    cdef int _do_read_buffered(self) except -1:
        cdef Py_ssize_t offset = 0, count = 1, wants
        obj = self._obj
        incoming = self._incoming
        buf = self._app_get_buffer(incoming.pending)
        wants = len(buf)
        try:
            count = self._read_into(obj, wants, buf)
            if count > 0:
                offset = count
                while offset < wants:
                    if not incoming.pending and not obj.pending():
                        break    # nothing left: a read could only raise SSLWantReadError
                    count = self._read_into(obj, wants - offset, buf[offset:])
                    if count > 0:
                        offset += count
                    else:
                        break
                else:
                    self._loop.call_soon(self._do_read_later)
        except AGAIN:
            pass
        if offset > 0:
            self._app_buffer_updated(offset)
        if not count:
            self._peer_closed()
        return 0

    cdef Py_ssize_t _read_into(self, obj, Py_ssize_t size, buf) except -1:
        # Once our close_notify is out, OpenSSL reports the peer's by raising
        # SSLZeroReturnError where it otherwise returns an empty read.
        try:
            return obj.read(size, buf)
        except SSLZeroReturnError:
            if self._eof_sent:
                return 0
            raise

    cdef int _do_read_copied(self) except -1:
        cdef list chunks = None
        first = None
        chunk = b"1"
        obj = self._obj
        incoming = self._incoming
        try:
            while True:
                try:
                    chunk = obj.read(RECORD_READ)
                except SSLZeroReturnError:
                    if not self._eof_sent:
                        raise
                    chunk = b""
                if not chunk:
                    break
                if first is None:
                    first = chunk
                elif chunks is None:
                    chunks = [first, chunk]
                else:
                    chunks.append(chunk)
                if not incoming.pending and not obj.pending():
                    break        # nothing left: a read could only raise SSLWantReadError
        except AGAIN:
            pass
        if chunks is not None:
            self._app_protocol.data_received(b"".join(chunks))
        elif first is not None:
            self._app_protocol.data_received(first)
        if not chunk:
            self._peer_closed()
        return 0

    cdef int _peer_closed(self) except -1:
        """The peer's close_notify."""
        self._call_eof_received()
        self._start_shutdown()
        return 0

    cdef int _call_eof_received(self) except -1:
        if self._app_state != APP_CON_MADE:
            return 0
        self._app_state = APP_EOF
        try:
            keep_open = self._app_protocol.eof_received()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._fatal(exc, "Error calling eof_received()")
            return 0
        # Half-open is only worth keeping while we can still write.
        if keep_open and not self._eof_asked and self._state == WRAPPED:
            self._kept_open = True
        return 0

    def _pause_reading(self):
        self._app_reading_paused = True

    def _resume_reading(self):
        if self._app_reading_paused:
            self._app_reading_paused = False
            # Scheduled in a copy of the callbacks' context: resume_reading() may be called
            # inside another callback, in the context itself.
            if self._context is None:
                self._loop.call_soon(self._resume)
            else:
                self._loop.call_soon(self._resume, context=self._context.copy())

    def _resume(self):
        cdef int state = self._state
        if state == WRAPPED:
            self._do_read()
        elif state == FLUSHING:
            self._do_flush()
        elif state == SHUTDOWN:
            self._do_shutdown()

    def _control_ssl_reading(self):
        cdef Py_ssize_t size = self._incoming.pending
        if size >= self._incoming_high_water and not self._ssl_reading_paused:
            self._ssl_reading_paused = True
            self._transport.pause_reading()
        elif size <= self._incoming_low_water and self._ssl_reading_paused:
            self._ssl_reading_paused = False
            self._transport.resume_reading()

    def _set_read_buffer_limits(self, high=None, low=None):
        self._incoming_high_water, self._incoming_low_water = flow_control_limits(
            high, low, constants.FLOW_CONTROL_HIGH_WATER_SSL_READ)

    def _get_read_buffer_size(self):
        return self._incoming.pending

    # -- our direction

    def _write_eof(self):
        if self._eof_asked:
            return
        self._eof_asked = True
        self._send_close_notify()   # or after a later read or write, when it can go

    cdef int _send_close_notify(self) except -1:
        """Sends close_notify when it can go now: after the handshake, behind every byte
        written before, and with nothing unread in the TLS layer (OpenSSL's shutdown reads
        pending records and fails on application data among them). Otherwise the next
        read or write calls again."""
        if (self._eof_sent or self._state != WRAPPED or self._write_backlog
                or self._incoming.pending or self._obj.pending()):
            return 0
        try:
            self._unwrap()
        except AGAIN:
            pass             # sent; the peer's close_notify is still to come
        except SSLError as exc:
            self._fatal(exc, "Fatal error sending TLS close_notify")
            return 0
        self._eof_sent = True
        self._process_outgoing()
        transport = self._transport
        if transport is not None and transport.can_write_eof():
            transport.write_eof()
        return 0

    # -- errors

    def _fatal_error(self, exc, message="Fatal error on transport"):
        self._fatal(exc, message)

    cdef int _fatal(self, exc, message) except -1:
        transport = self._transport
        if transport is not None:
            transport._force_close(exc)
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        elif not isinstance(exc, CancelledError):
            self._loop.call_exception_handler({
                "message": message,
                "exception": exc,
                "transport": transport,
                "protocol": self,
            })
        return 0


class SSLTransport(transports._FlowControlMixin, transports.Transport):
    """The application's side of a TLS connection (named like asyncio's, which code and
    CPython's tests recognise by "ssl" in the name); ``write_eof`` ends our direction."""

    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.FALLBACK

    def __init__(self, loop, ssl_protocol):
        self._loop = loop
        self._ssl_protocol = ssl_protocol
        self._closed = False

    def get_extra_info(self, name, default=None):
        return self._ssl_protocol._get_extra_info(name, default)

    def set_protocol(self, protocol):
        self._ssl_protocol.set_app_protocol(protocol)

    def get_protocol(self):
        return self._ssl_protocol._app_protocol

    def is_closing(self):
        return self._closed

    def close(self):
        """Flushes what is buffered, sends close_notify and closes the stream; the
        protocol's connection_lost(None) follows."""
        if not self._closed:
            self._closed = True
            self._ssl_protocol._start_shutdown()
        else:
            self._ssl_protocol = None

    def __del__(self):
        if not self._closed:
            self._closed = True
            _warn("unclosed transport <corenet.tls.SSLTransport object>", ResourceWarning)

    def is_reading(self):
        return not self._ssl_protocol._app_reading_paused

    def pause_reading(self):
        self._ssl_protocol._pause_reading()

    def resume_reading(self):
        self._ssl_protocol._resume_reading()

    def set_write_buffer_limits(self, high=None, low=None):
        self._ssl_protocol._set_write_buffer_limits(high, low)
        self._ssl_protocol._control_app_writing()

    def get_write_buffer_limits(self):
        return (self._ssl_protocol._outgoing_low_water, self._ssl_protocol._outgoing_high_water)

    def get_write_buffer_size(self):
        return self._ssl_protocol._get_write_buffer_size()

    def set_read_buffer_limits(self, high=None, low=None):
        self._ssl_protocol._set_read_buffer_limits(high, low)
        self._ssl_protocol._control_ssl_reading()

    def get_read_buffer_limits(self):
        return (self._ssl_protocol._incoming_low_water, self._ssl_protocol._incoming_high_water)

    def get_read_buffer_size(self):
        return self._ssl_protocol._get_read_buffer_size()

    @property
    def _protocol_paused(self):
        # What the sendfile fallback looks at.
        return self._ssl_protocol._app_writing_paused

    def write(self, data):
        cdef TLSProtocol protocol
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data: expecting a bytes-like instance, got {type(data).__name__}")
        protocol = self._ssl_protocol
        if protocol is not None and protocol._eof_asked:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        if protocol is not None:
            protocol._write_one(data)

    def writelines(self, list_of_data):
        protocol = self._ssl_protocol
        if protocol is not None and protocol._eof_asked:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        protocol._write_appdata(list_of_data)

    def can_write_eof(self):
        return True

    def write_eof(self):
        if self._closed or self._ssl_protocol is None:
            return
        self._ssl_protocol._write_eof()

    def abort(self):
        """Closes at once: what is buffered is dropped, connection_lost(None) follows."""
        self._closed = True
        if self._ssl_protocol is not None:
            self._ssl_protocol._abort()

    def _force_close(self, exc):
        self._closed = True
        if self._ssl_protocol is not None:
            self._ssl_protocol._abort(exc)

    def _test__append_write_backlog(self, data):
        # for CPython's tests
        cdef TLSProtocol protocol = self._ssl_protocol
        protocol._write_backlog.append(data)
        protocol._write_buffer_size += len(data)

