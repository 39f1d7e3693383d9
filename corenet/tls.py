"""TLS on corenet's stream transports: asyncio's MemoryBIO protocol, with half-close.

asyncio's TLS transport has no ``write_eof`` and ignores an ``eof_received`` that asks to
stay open, so a TLS connection can only be closed whole. TLS 1.3 (and 1.2 in practice) lets
each side end its own direction with close_notify while the other keeps sending, as TCP
does with FIN, and request/response protocols rely on that. This module adds both halves on
top of asyncio's ``SSLProtocol``, which does everything else, with fewer steps per connection
where they could only fail or wait (see ``SSLProtocol``):

- ``transport.write_eof()`` sends close_notify once everything written before it has been
  encrypted, then half-closes the TCP stream; reading goes on until the peer ends too.
- When the peer's close_notify arrives and the protocol's ``eof_received()`` returns a true
  value, the connection stays open for writing until the protocol closes it (which then
  sends our close_notify), as for plain TCP.
- ``close()`` while the peer is still sending drops what arrives after it instead of failing
  the shutdown on it.

The application protocol's callbacks run in the contextvars context of the TCP transport
underneath (the one current when it was made), as its own would: those that come from the
network do already, since the TLS protocol is that transport's protocol; the two that a
caller's call sets off (pause/resume_writing from write(), reading resumed by
resume_reading(), the last reads of a close()) are run in a copy of it here.
"""
from __future__ import annotations

import collections
import contextvars
import ssl
import threading
from asyncio import constants, sslproto

__all__ = ["SSLProtocol", "SSLTransport", "start_tls"]

_UNWRAPPED = sslproto.SSLProtocolState.UNWRAPPED
_DO_HANDSHAKE = sslproto.SSLProtocolState.DO_HANDSHAKE
_WRAPPED = sslproto.SSLProtocolState.WRAPPED
_FLUSHING = sslproto.SSLProtocolState.FLUSHING
_SHUTDOWN = sslproto.SSLProtocolState.SHUTDOWN
_STATE_INIT = sslproto.AppProtocolState.STATE_INIT
_STATE_CON_MADE = sslproto.AppProtocolState.STATE_CON_MADE

#: Bytes the transport may put in the receive buffer at once (asyncio's read size).
RECEIVE_BUFFER = 256 * 1024


class _ReceiveBuffer(threading.local):
    """The buffer the transports of one thread receive TLS records into. A record is
    copied into its connection's incoming MemoryBIO at once (``buffer_updated``), so one
    buffer serves every connection of the thread, and a connection costs no buffer of its
    own to allocate and clear."""

    def __init__(self) -> None:
        self.view = memoryview(bytearray(RECEIVE_BUFFER))


_receive = _ReceiveBuffer()


class SSLTransport(sslproto._SSLProtocolTransport):
    """The application's side of a TLS connection (named like asyncio's, which code and
    CPython's tests recognise by "ssl" in the name); ``write_eof`` ends our direction."""

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closed or self._ssl_protocol is None:
            return
        self._ssl_protocol._write_eof()

    def write(self, data) -> None:
        self._refuse_after_eof("write")
        super().write(data)

    def writelines(self, list_of_data) -> None:
        self._refuse_after_eof("writelines")
        super().writelines(list_of_data)

    def _refuse_after_eof(self, call: str) -> None:
        if self._ssl_protocol is not None and self._ssl_protocol._eof_asked:
            raise RuntimeError(f"Cannot call {call}() after write_eof()")


class _AfterCloseNotify:
    """The SSL object once our close_notify is out. OpenSSL then reports the peer's
    close_notify by raising SSLZeroReturnError from read(), where asyncio's read path expects
    an empty read; this wrapper turns one into the other and passes everything else on."""

    __slots__ = ("_obj",)

    def __init__(self, obj) -> None:
        self._obj = obj

    def read(self, size=1024, buffer=None):
        try:
            return self._obj.read(size) if buffer is None else self._obj.read(size, buffer)
        except ssl.SSLZeroReturnError:
            return b"" if buffer is None else 0

    def __getattr__(self, name):
        return getattr(self._obj, name)


def _nothing() -> None:
    pass


def _context_of(transport) -> contextvars.Context | None:
    """The context a transport runs its protocol's callbacks in: a corenet transport's own,
    or for TLS over TLS, the one of the TLS connection underneath."""
    engine = getattr(transport, "_engine", None)
    if engine is not None:
        return engine._context
    ssl_protocol = getattr(transport, "_ssl_protocol", None)
    if isinstance(ssl_protocol, SSLProtocol):
        return ssl_protocol._context
    return None


#: The extra info read from the SSL object once the handshake is done, when first asked for.
_FROM_SSL_OBJECT = {
    "peercert": lambda obj: obj.getpeercert(),
    "cipher": lambda obj: obj.cipher(),
    "compression": lambda obj: obj.compression(),
}


def _flow_control_defaults(kb: int) -> tuple[int, int]:
    return sslproto.add_flowcontrol_defaults(None, None, kb)


class SSLProtocol(sslproto.SSLProtocol):
    """asyncio's ``SSLProtocol`` with half-close in both directions (see the module).

    What is the same for every connection is set once, on the class: the starting state and
    flow-control limits (a connection that sets its own limits gets its own attributes),
    and the receive buffer, which the connections of a thread share (``_ReceiveBuffer``).
    A connection makes only its own objects: the two MemoryBIOs, the SSL object, the
    application's transport, its write queue and extra-info dict.

    Per connection, OpenSSL is asked only when it can make progress: a server's first
    handshake step waits for the ClientHello, and no read is tried with nothing received.
    The peer's certificate, the cipher and the compression are read from the SSL object
    when first asked for, and ``connection_lost`` lets go of what points back at the
    application, so an ended connection is freed by reference counting."""

    _eof_asked = False   # write_eof() was called
    _eof_sent = False    # our close_notify is out
    _kept_open = False   # the peer's close_notify came; the application keeps writing
    _context = None      # the callbacks' contextvars context (see the module)

    # Each connection's starting state, as asyncio's __init__ sets it.
    _state = _UNWRAPPED
    _app_transport = None
    _app_transport_created = False
    _transport = None
    _conn_lost = 0
    _eof_received = False
    _write_buffer_size = 0
    _ssl_writing_paused = False
    _app_reading_paused = False
    _ssl_reading_paused = False
    _app_writing_paused = False
    _incoming_high_water, _incoming_low_water = _flow_control_defaults(
        constants.FLOW_CONTROL_HIGH_WATER_SSL_READ)
    _outgoing_high_water, _outgoing_low_water = _flow_control_defaults(
        constants.FLOW_CONTROL_HIGH_WATER_SSL_WRITE)

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
            sslcontext = sslproto._create_transport_context(server_side, server_hostname)
        self._server_side = server_side
        self._server_hostname = server_hostname if server_hostname and not server_side else None
        self._sslcontext = sslcontext
        self._extra = {"sslcontext": sslcontext}       # the rest once the handshake is done
        self._write_backlog = collections.deque()
        self._waiter = waiter
        self._loop = loop
        self._set_app_protocol(app_protocol)
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        self._app_state = _STATE_INIT if call_connection_made else _STATE_CON_MADE
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._sslobj = sslcontext.wrap_bio(self._incoming, self._outgoing,
                                           server_side=server_side,
                                           server_hostname=self._server_hostname)
        self._app_transport = SSLTransport(loop, self)
        self._app_transport_created = True

    # -- receiving

    def get_buffer(self, n):
        return _receive.view

    def buffer_updated(self, nbytes):
        self._incoming.write(_receive.view[:nbytes])
        state = self._state
        if state is _WRAPPED:
            self._do_read()
        elif state is _DO_HANDSHAKE:
            self._do_handshake()
        elif state is _FLUSHING:
            self._do_flush()
        elif state is _SHUTDOWN:
            self._do_shutdown()

    def _do_read(self):
        """Decrypted records to the application, then what OpenSSL has to send, then the
        read side's flow control (asyncio's steps, with the two size checks inline). With
        no record received and nothing decrypted left over (just after the handshake, or
        reading resumed with nothing waiting) OpenSSL is not asked: it could only say that
        it waits for more."""
        state = self._state
        if state is not _WRAPPED and state is not _FLUSHING:
            return
        try:
            if not self._app_reading_paused:
                if not self._incoming.pending and not self._sslobj.pending():
                    pass
                elif self._app_protocol_is_buffer:
                    self._do_read__buffered()
                else:
                    self._do_read__copied()
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
            self._fatal_error(ex, "Fatal error on SSL protocol")

    # -- sending

    def _process_outgoing(self):
        """Sends what OpenSSL has written, then checks the application's write limits."""
        outgoing = self._outgoing
        if not self._ssl_writing_paused:
            data = outgoing.read()
            if data:
                self._transport.write(data)
        size = outgoing.pending + self._write_buffer_size
        if ((size >= self._outgoing_high_water and not self._app_writing_paused)
                or (size <= self._outgoing_low_water and self._app_writing_paused)):
            # pause_writing or resume_writing is due: in a copy of the callbacks' context,
            # since write() may be called inside another callback, in the context itself.
            self._in_context_copy(sslproto.SSLProtocol._control_app_writing)

    def _get_app_transport(self):
        if self._app_transport is None:
            if self._app_transport_created:
                raise RuntimeError("the TLS application transport exists already")
            self._app_transport = SSLTransport(self._loop, self)
            self._app_transport_created = True
        return self._app_transport

    def connection_made(self, transport):
        self._context = _context_of(transport)
        self._transport = transport
        self._start_handshake()

    def connection_lost(self, exc):
        super().connection_lost(exc)
        # asyncio keeps the application's buffer methods, which point at the application
        # protocol, which holds the transport that holds this protocol: let go of them, so
        # that the connection (and OpenSSL's state for it) is freed by reference counting
        # rather than by the cyclic garbage collector.
        self._app_protocol_get_buffer = self._app_protocol_buffer_updated = None

    # -- the handshake

    def _start_handshake(self):
        """asyncio's step, except that a server whose peer has sent nothing yet does not
        ask OpenSSL: it could only say that it waits for the ClientHello (an exception
        raised and caught). The first bytes to arrive take the handshake's first step."""
        if self._loop.get_debug():
            sslproto.logger.debug("%r starts SSL handshake", self)
            self._handshake_start_time = self._loop.time()
        else:
            self._handshake_start_time = None
        self._state = _DO_HANDSHAKE
        self._handshake_timeout_handle = self._loop.call_later(
            self._ssl_handshake_timeout, self._check_handshake_timeout)
        if not self._server_side or self._incoming.pending:
            self._do_handshake()

    def _on_handshake_complete(self, handshake_exc):
        """asyncio's step for a handshake that succeeded, without reading the peer's
        certificate, the cipher and the compression into the extra info at once: they
        are read from the SSL object when first asked for (``_get_extra_info``). A failed
        handshake takes asyncio's path."""
        if handshake_exc is not None or self._state is not _DO_HANDSHAKE:
            super()._on_handshake_complete(handshake_exc)
            return
        if self._handshake_timeout_handle is not None:
            self._handshake_timeout_handle.cancel()
            self._handshake_timeout_handle = None
        self._state = _WRAPPED
        if self._handshake_start_time is not None:
            sslproto.logger.debug("%r: SSL handshake took %.1f ms", self,
                                  (self._loop.time() - self._handshake_start_time) * 1e3)
        self._extra["ssl_object"] = self._sslobj
        if self._app_state is _STATE_INIT:
            self._app_state = _STATE_CON_MADE
            self._app_protocol.connection_made(self._get_app_transport())
        if self._waiter is not None:
            self._wakeup_waiter()
        self._do_read()

    def _get_extra_info(self, name, default=None):
        extra = self._extra
        if name in extra:
            return extra[name]
        if name in _FROM_SSL_OBJECT and "ssl_object" in extra:
            value = extra[name] = _FROM_SSL_OBJECT[name](extra["ssl_object"])
            return value
        if self._transport is not None:
            return self._transport.get_extra_info(name, default)
        return default

    # -- the callbacks' context

    def _resume_reading(self):
        self._in_context_copy(sslproto.SSLProtocol._resume_reading)

    def _in_context_copy(self, method) -> None:
        """``method(self)`` in a copy of the callbacks' context: what it schedules with
        call_soon runs there too."""
        ctx = self._context
        if ctx is None:
            method(self)
        else:
            ctx.copy().run(method, self)

    # -- our direction

    def _write_eof(self) -> None:
        if self._eof_asked:
            return
        self._eof_asked = True
        self._send_close_notify()
        if not self._eof_sent:
            # Not possible yet: try again after each read and write. The hooks go on this
            # connection only, so connections that never half-close keep asyncio's read
            # and write paths without a detour.
            self._do_read = self._read_then_close_notify
            self._do_write = self._write_then_close_notify

    def _read_then_close_notify(self):
        SSLProtocol._do_read(self)
        self._send_close_notify()

    def _write_then_close_notify(self):
        sslproto.SSLProtocol._do_write(self)
        self._send_close_notify()

    def _send_close_notify(self) -> None:
        """Sends close_notify when it can go now: after the handshake, behind every byte
        written before, and with nothing unread in the TLS layer (OpenSSL's shutdown reads
        pending records and fails on application data among them). Otherwise the hooks
        ``_write_eof`` installs call again once that holds."""
        if (self._eof_sent or self._state is not _WRAPPED or self._write_backlog
                or self._incoming.pending or self._sslobj.pending()):
            return
        try:
            self._sslobj.unwrap()
        except sslproto.SSLAgainErrors:
            pass             # sent; the peer's close_notify is still to come
        except ssl.SSLError as exc:
            self._fatal_error(exc, "Fatal error sending TLS close_notify")
            return
        self._eof_sent = True
        self._sslobj = _AfterCloseNotify(self._sslobj)
        self._process_outgoing()
        if self._transport is not None and self._transport.can_write_eof():
            self._transport.write_eof()

    # -- closing while the peer still sends

    def _do_shutdown(self):
        """After ``close()`` the application takes no more data, but the peer may have sent
        some before our close_notify reached it. OpenSSL's shutdown fails on application
        records (APPLICATION_DATA_AFTER_CLOSE_NOTIFY, which asyncio reports as the
        connection's error): they are read and dropped first, so the close ends cleanly."""
        if not self._eof_received:
            try:
                while self._sslobj.read(65536):
                    pass
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, ssl.SSLZeroReturnError):
                pass     # nothing more yet, or the peer's close_notify: unwrap() goes on
            except ssl.SSLError as exc:
                self._on_shutdown_complete(exc)
                return
        super()._do_shutdown()

    # -- the peer's direction

    def _call_eof_received(self):
        if self._app_state is not sslproto.AppProtocolState.STATE_CON_MADE:
            return
        self._app_state = sslproto.AppProtocolState.STATE_EOF
        try:
            keep_open = self._app_protocol.eof_received()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Error calling eof_received()")
            return
        # Half-open is only worth keeping while we can still write.
        if keep_open and not self._eof_asked and self._state is _WRAPPED:
            self._kept_open = True
            self._do_read = _nothing     # the peer's stream has ended: nothing more to read

    def _start_shutdown(self):
        if self._state is _FLUSHING or self._state is _SHUTDOWN or self._state is _UNWRAPPED:
            return           # under way or over already
        if self._kept_open and not self._app_transport._closed:
            return           # the read path ending: the application closes when it is done
        # close() may call it: the reads of the flush that begins here run in the context.
        self._in_context_copy(sslproto.SSLProtocol._start_shutdown)

    def eof_received(self):
        if self._kept_open:
            return True      # the TCP FIN behind the peer's close_notify: keep writing
        return super().eof_received()


async def start_tls(loop, transport, protocol, sslcontext, *, server_side=False,
                    server_hostname=None, ssl_handshake_timeout=None,
                    ssl_shutdown_timeout=None) -> SSLTransport:
    """``loop.start_tls`` with ``SSLProtocol`` (the loop's method: ``loop`` is its self),
    with the same checks and hand-over as asyncio's."""
    if not isinstance(sslcontext, ssl.SSLContext):
        raise TypeError(f"sslcontext is expected to be an instance of ssl.SSLContext, "
                        f"got {sslcontext!r}")
    if not getattr(transport, "_start_tls_compatible", False):
        raise TypeError(f"transport {transport!r} is not supported by start_tls()")
    waiter = loop.create_future()
    tls = SSLProtocol(loop, protocol, sslcontext, waiter, server_side, server_hostname,
                      ssl_handshake_timeout=ssl_handshake_timeout,
                      ssl_shutdown_timeout=ssl_shutdown_timeout, call_connection_made=False)
    # Nothing may reach the TLS protocol before its connection_made: hold reading across
    # the swap and resume it in the callback after.
    transport.pause_reading()
    transport.set_protocol(tls)
    made = loop.call_soon(tls.connection_made, transport)
    resumed = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        made.cancel()
        resumed.cancel()
        raise
    return tls._app_transport
