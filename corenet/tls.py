"""TLS on corenet's stream transports: a MemoryBIO protocol with asyncio's semantics, and half-close.

asyncio's TLS transport has no ``write_eof`` and ignores an ``eof_received`` that asks to
stay open, so a TLS connection can only be closed whole. TLS 1.3 (and 1.2 in practice) lets
each side end its own direction with close_notify while the other keeps sending, as TCP
does with FIN, and request/response protocols rely on that. corenet's TLS protocol (the
compiled ``corenet._tls``) does what asyncio's ``SSLProtocol`` does (handshake, reads and
writes through two MemoryBIOs, flow control both ways, shutdown with its timeouts, the same
errors and aborts) and adds both halves:

- ``transport.write_eof()`` sends close_notify once everything written before it has been
  encrypted, then half-closes the TCP stream; reading goes on until the peer ends too.
- When the peer's close_notify arrives and the protocol's ``eof_received()`` returns a true
  value, the connection stays open for writing until the protocol closes it (which then
  sends our close_notify), as for plain TCP.
- ``close()`` while the peer is still sending drops what arrives after it instead of failing
  the shutdown on it.

Per connection, OpenSSL is asked only when it can make progress: a server's first handshake
step waits for the ClientHello, and no read is tried with nothing received. The peer's
certificate, the cipher and the compression are read from the SSL object when first asked
for, and ``connection_lost`` lets go of what points back at the application, so an ended
connection is freed by reference counting. The connections of a thread share one receive
buffer: a record is copied into its connection's incoming MemoryBIO as soon as it arrives.

The application protocol's callbacks run in the contextvars context of the TCP transport
underneath (the one current when it was made), as its own would: those that come from the
network do already, since the TLS protocol is that transport's protocol; the two that a
caller's call sets off (pause/resume_writing from write(), reading resumed by
resume_reading(), the last reads of a close()) are run in a copy of it here.

``session_of(sslobject)`` and ``resume(sslobject, session)`` take a finished handshake's
session and offer it to a later connection's (any ``ssl.SSLObject``, of the same context)
by reference to OpenSSL's own, where CPython's ``SSLObject.session`` decodes a copy of it,
the server's certificates included, each time (``corenet._tlssession`` says how).
"""
from __future__ import annotations

import asyncio
import ssl

from corenet._tls import RECEIVE_BUFFER, SSLTransport, TLSProtocol, flow_control_limits
from corenet._tlssession import TLSSession, resume, session_of

__all__ = ["RECEIVE_BUFFER", "SSLProtocol", "SSLTransport", "TLSSession", "flow_control_limits",
           "resume", "session_of", "start_tls"]


class SSLProtocol(TLSProtocol, asyncio.BufferedProtocol):
    """corenet's TLS protocol (see the module): what a stream transport runs under the
    application's protocol. Made as asyncio's ``SSLProtocol`` is, ``(loop, app_protocol,
    sslcontext, waiter, server_side=False, server_hostname=None, call_connection_made=True,
    ssl_handshake_timeout=None, ssl_shutdown_timeout=None)``; the application's side is
    its ``_app_transport``, an :class:`SSLTransport`."""


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
