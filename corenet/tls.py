"""TLS on corenet's stream transports: asyncio's MemoryBIO protocol, with half-close.

asyncio's TLS transport has no ``write_eof`` and ignores an ``eof_received`` that asks to
stay open, so a TLS connection can only be closed whole. TLS 1.3 (and 1.2 in practice) lets
each side end its own direction with close_notify while the other keeps sending, as TCP
does with FIN, and request/response protocols rely on that. This module adds both halves on
top of asyncio's ``SSLProtocol``, which does everything else unchanged:

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

import contextvars
import ssl
from asyncio import sslproto

__all__ = ["SSLProtocol", "SSLTransport", "start_tls"]

_WRAPPED = sslproto.SSLProtocolState.WRAPPED


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


class SSLProtocol(sslproto.SSLProtocol):
    """asyncio's ``SSLProtocol`` with half-close in both directions (see the module)."""

    _eof_asked = False   # write_eof() was called
    _eof_sent = False    # our close_notify is out
    _kept_open = False   # the peer's close_notify came; the application keeps writing
    _context = None      # the callbacks' contextvars context (see the module)

    def _get_app_transport(self):
        if self._app_transport is None:
            if self._app_transport_created:
                raise RuntimeError("the TLS application transport exists already")
            self._app_transport = SSLTransport(self._loop, self)
            self._app_transport_created = True
        return self._app_transport

    def connection_made(self, transport):
        self._context = _context_of(transport)
        super().connection_made(transport)

    # -- the callbacks' context

    def _control_app_writing(self):
        size = self._get_write_buffer_size()
        if ((size >= self._outgoing_high_water and not self._app_writing_paused)
                or (size <= self._outgoing_low_water and self._app_writing_paused)):
            # pause_writing or resume_writing is due: in a copy, since write() may be
            # called inside another callback, in the context itself.
            self._in_context_copy(sslproto.SSLProtocol._control_app_writing)

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
        sslproto.SSLProtocol._do_read(self)
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
