"""One HTTP/1.1 connection: TCP, TLS through `ssl.MemoryBIO`, and the exchange in flight.

Why our own TLS over a plain transport rather than `loop.create_connection(ssl=ctx)`:

- Correctness: `create_connection` has no way to pass a TLS session, so a second
  connection could never resume the first one's session. Owning the `SSLObject` lets us
  offer one before the handshake (`corenet.tls.resume`, visible as
  `ssl_object.session_reused`), and send close_notify before closing, without which
  OpenSSL marks the session not resumable.
- Speed: one protocol object sits between the socket and llhttp. The loop receives into a
  reused buffer (`BufferedProtocol`), `SSLObject.read` decrypts into another (or, inside a
  Content-Length body, into the body's own `bytes`), and the parser runs in the same
  callback: no second transport, no per-chunk hand-off into an application protocol, no
  StreamReader. Measured on a 4 MiB body: 4.2 ms of CPU against 9.7 ms for aiohttp on the
  same stock-asyncio SSL transport (BENCHMARKS.md).

It needs only a plain TCP transport, so it runs on any asyncio loop.
"""
from __future__ import annotations

import asyncio
import select
import socket
import ssl
from collections import deque
from typing import Any, AsyncIterator, Callable

import aiohappyeyeballs

from corenet.tls import TLSSession, resume, session_of

from ._sink import BodySink
from .errors import (
    ConnectError, ConnectTimeout, LocalProtocolError, ProxyError, ReadError, ReadTimeout,
    RemoteProtocolError, TLSError, WriteError, WriteTimeout,
)
from .exchange import (
    END, LAST_CHUNK, ConnectionClosedEarly, ResponseExchange, ResponseHead, encode_chunk,
    encode_request_head, encode_request_line,
)
from .limits import Limits

_READ_SIZE = 256 * 1024
# One TLS record carries at most 16 KiB of plaintext, and SSLObject.read returns at most
# one record: a bytes object of this size is shrunk in place, never copied.
_RECORD_READ = 16 * 1024
# A whole body read at once (not streamed) of a known length at least this big goes straight
# into its final bytes object (BodySink) instead of a list of chunks joined at the end. The
# cap bounds what a server's Content-Length alone makes us reserve (address space only:
# pages are touched as data arrives).
_SINK_MIN = 32 * 1024
_SINK_MAX = 256 * 1024 * 1024
# RFC 8305's recommended delay before racing the next address (of the other family first).
HAPPY_EYEBALLS_DELAY = 0.25
# A request body given as bytes is written in pieces of this size, each drained before the
# next (the whole of a small one goes out with the head).
WRITE_PIECE = 256 * 1024
# An idle connection is probed for readiness before reuse (see is_idle_usable) once it has
# been idle this long. A server ends an idle connection after a timeout of seconds, and one
# that ends it with its answer says so (Connection: close); a connection taken again at once,
# as by a caller sending requests one after another, is spared the system call.
PROBE_AFTER_IDLE = 0.001
# Methods a client may send again when it cannot tell whether the server processed them
# (RFC 9110 9.2.2).
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_WantRead = ssl.SSLWantReadError
_ZeroReturn = ssl.SSLZeroReturnError


class _Closed(Exception):
    pass


class Resendable(Exception):
    """Raised by a connection's `send`: the request may be sent again on another
    connection. `error` is what to raise when it is not; `fresh`: the next attempt must
    open a new connection rather than take a pooled one; `needs_body`: some of the request
    went out, so only a request whose body can be sent again (none, or bytes) may be."""

    def __init__(self, error: BaseException, fresh: bool = False,
                 needs_body: bool = True) -> None:
        super().__init__(str(error))
        self.error = error
        self.fresh = fresh
        self.needs_body = needs_body


class EarlyResponse(Exception):
    """The server answered before the request body was all sent (a 413, a redirect, an
    auth challenge): stop sending and read that response."""


class HTTPConnection(asyncio.BufferedProtocol):
    """Carries one request/response at a time. Created by `open_connection`, owned by the
    pool. `send` writes a request and returns its response stream once the head has come:
    for HTTP/1.1 the connection itself (`head`, `complete`, `read_body`, `finish`,
    `trailers`, `response_extensions`), for HTTP/2 (h2.H2Connection) one H2Stream."""

    # One request at a time (an HTTP/2 connection, h2.H2Connection, carries many).
    multiplexed = False
    # Trailer fields of the response (HTTP/1.1 chunked trailers are not kept).
    trailers: list[tuple[bytes, bytes]] | None = None

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: tuple[str, str, int],
                 limits: Limits, read_buffer: bytearray | None = None,
                 recv_buffer: bytearray | None = None) -> None:
        self.loop = loop
        self.origin = origin
        self.limits = limits
        self.transport: asyncio.Transport | None = None
        self.peername: tuple | None = None  # the address connected to (a proxy's, via one)
        #: when (``loop.time()``) the connection was begun, its addresses known (the name
        #: resolved), and when the TCP connection (with a proxy's tunnel) and the TLS
        #: handshake were done; 0.0 until then
        self.begun_at = loop.time()
        self.connected_at = 0.0
        self.secured_at = 0.0
        self.ssl_object: ssl.SSLObject | None = None
        self._incoming: ssl.MemoryBIO | None = None
        self._outgoing: ssl.MemoryBIO | None = None
        self._handshake: asyncio.Future | None = None
        # Decrypted bytes land here and are parsed before data_received returns (the
        # parser copies what it keeps), so one buffer can serve every connection of a
        # client on its loop.
        self.read_buffer = read_buffer if read_buffer is not None else bytearray(_READ_SIZE)
        self.read_view = memoryview(self.read_buffer)
        # The loop receives into this buffer (BufferedProtocol): no bytes object per recv.
        self._rview = memoryview(recv_buffer if recv_buffer is not None
                                 else bytearray(_READ_SIZE))
        self._fd = -1
        self._waiter: asyncio.Future | None = None
        self._drain: asyncio.Future | None = None
        self._exchange: ResponseExchange | None = None
        self._head: ResponseHead | None = None
        self._body: deque = deque()
        self._body_size = 0
        self._sink: BodySink | None = None
        self._complete = False
        self._streaming = False
        self._partial = False  # a whole body taken piece by piece as it comes
        self._reading_paused = False
        self._write_paused = False
        self._error: BaseException | None = None
        self._lost: asyncio.Future | None = None  # set by connection_lost
        self._tunnel: bytearray | None = None  # the proxy's answer to CONNECT, so far
        self._tunnel_done: asyncio.Future | None = None
        self.closed = False
        self.closed_by: str | None = None  # who closed it on this side, when it was said
        self.lost_by: OSError | None = None  # the socket error that ended the connection
        self.broken = False  # unsolicited bytes or EOF while idle: never reuse
        self.requests = 0
        self.idle_since = 0.0
        self.expires_at: float | None = None

    # ---- asyncio protocol callbacks ----
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._lost = self.loop.create_future()
        sock = transport.get_extra_info("socket")
        self.peername = transport.get_extra_info("peername")
        if sock is not None:
            self._fd = sock.fileno()
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._rview

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._rview[:nbytes])

    def data_received(self, data) -> None:
        if self._tunnel is not None:
            self._tunnel_data(data)
            return
        sslobj = self.ssl_object
        if sslobj is None:
            self._on_plain(data)
            return
        self._incoming.write(data)  # type: ignore[union-attr]
        if self._handshake is not None:
            self._handshake_step()
            if self._handshake is not None:
                return
        buf = self.read_buffer
        view = self.read_view
        incoming = self._incoming
        try:
            # Until the received bytes are all taken in (a read with none left would
            # only raise SSLWantReadError, which costs more than asking).
            while incoming.pending or sslobj.pending():  # type: ignore[union-attr]
                ex = self._exchange
                if ex is not None and ex.body_left > 0:
                    sink = self._sink
                    if sink is not None:
                        # The whole body is wanted: decrypt into its final bytes object.
                        n, ended = sink.fill(sslobj)
                        if n and ex.count(n):
                            self._sink_complete()
                        if ended:
                            self._on_eof(True)
                            break
                        if ex.body_left:
                            break  # no whole record left in the BIO: wait for more
                        continue
                    # Inside a Content-Length body: decrypt into a new bytes object of
                    # its own, which the exchange passes on without copying again.
                    left = ex.body_left
                    chunk = sslobj.read(left if left < _RECORD_READ else _RECORD_READ)
                    if not chunk:
                        self._on_eof(True)
                        break
                    self._on_plain(chunk)
                    continue
                n = sslobj.read(len(buf), buf)  # type: ignore[assignment]  # an int
                if not n:
                    self._on_eof(True)  # close_notify: the server's own end of the stream
                    break
                self._on_plain(view[:n])
                if self.closed:
                    return
        except _WantRead:
            pass
        except _ZeroReturn:
            self._on_eof(True)
        except ssl.SSLError as exc:
            self._on_error(RemoteProtocolError(f"TLS error from server: {exc}"))
        except RemoteProtocolError as exc:
            self._on_error(exc)
        if self._outgoing.pending:  # type: ignore[union-attr]
            self.transport.write(self._outgoing.read())  # type: ignore[union-attr]

    def eof_received(self) -> bool | None:
        # A TCP FIN: for TLS, an end of stream nobody authenticated (no close_notify).
        self._on_eof(self.ssl_object is None)
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if isinstance(exc, OSError):
            self.lost_by = exc
            ex = self._exchange
            if ex is not None and ex.started and not ex.done and self._error is None:
                # A reset in the middle of the response: the network failed, not HTTP.
                self._on_error(ReadError(f"the connection to {self.origin[1]} failed while "
                                         f"reading the response: {exc.strerror or exc}"))
        t = self._tunnel_done
        if t is not None and not t.done():
            t.set_exception(ProxyError(
                f"the proxy closed the connection before the tunnel to {self.origin[1]} "
                "was set up"))
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(TLSError(
                f"connection to {self.origin[1]} closed during the TLS handshake",
                "connection closed"))
            self._handshake = None
        self._on_eof(self.ssl_object is None)
        self._wake()
        d = self._drain
        if d is not None and not d.done():
            d.set_result(None)
        lost = self._lost
        if lost is not None and not lost.done():
            lost.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        d = self._drain
        if d is not None and not d.done():
            d.set_result(None)

    # ---- input handling ----
    def _on_plain(self, data) -> None:
        ex = self._exchange
        if ex is None:
            self.close()  # the server spoke while we were idle: not ours to trust
            return
        try:
            sink = self._sink
            if sink is not None and ex.body_left > 0:
                n = len(data)
                take = ex.body_left if n > ex.body_left else n
                sink.write(data if take == n else data[:take])
                if ex.count(take):
                    self._sink_complete()
                if take == n:
                    return
                data = data[take:]  # past the body: feed() marks the connection unusable
            events = ex.feed(data)
        except RemoteProtocolError as exc:
            self._on_error(exc)
            return
        self._take(events)

    def _take(self, events: list) -> None:
        wake = False
        for ev in events:
            if ev.__class__ is bytes:
                self._body.append(ev)
                self._body_size += len(ev)
                if self._streaming or self._partial:
                    wake = True
            elif ev is END:
                self._complete = True
                wake = True
            else:
                self._head = ev
                wake = True
                d = self._drain
                if d is not None and not d.done():
                    d.set_result(None)  # a writer blocked on the body: the answer is here
        if self._streaming and self._body_size > self.limits.read_buffer_high \
                and not self._reading_paused and not self.closed:
            self._reading_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]
        if wake:
            self._wake()

    def _sink_complete(self) -> None:
        self._body.append(self._sink.take())  # type: ignore[union-attr]
        self._sink = None
        self._complete = True
        self._wake()

    def _start_sink(self) -> None:
        """Called when the caller wants the whole body: if its length is known and large,
        let the rest of it land in its final bytes object."""
        ex = self._exchange
        if ex is None or ex.body_left < _SINK_MIN or self._error is not None or self.closed:
            return
        total = self._body_size + ex.body_left
        if total > _SINK_MAX or total > self.limits.max_body_bytes:
            return
        sink = BodySink(total)
        for chunk in self._body:
            sink.write(chunk)
        self._body.clear()
        self._body_size = 0
        self._sink = sink

    def _on_eof(self, clean: bool) -> None:
        ex = self._exchange
        if ex is None:
            self.broken = True
            return
        if ex.done or self._error is not None:
            return
        try:
            events = ex.feed_eof(clean)
        except RemoteProtocolError as exc:
            self._on_error(exc)
            return
        self._take(events)

    def _on_error(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self.broken = True
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(True)

    # ---- CONNECT through a proxy ----
    async def tunnel(self, authority: str, proxy_lines: str) -> None:
        """Ask the proxy for a tunnel to `authority` (host:port), with `proxy_lines` (its
        credentials and headers, each line ending in CRLF); returns once it answered 2xx,
        after which the bytes on this transport are the origin's."""
        head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{proxy_lines}"
        self._tunnel = bytearray()
        fut = self._tunnel_done = self.loop.create_future()
        self.transport.write((head + "\r\n").encode("latin-1"))  # type: ignore[union-attr]
        try:
            await fut
        finally:
            self._tunnel = None
            self._tunnel_done = None

    def _tunnel_data(self, data) -> None:
        buf = self._tunnel
        buf += data  # type: ignore[operator]
        fut = self._tunnel_done
        if fut is None or fut.done():
            return
        end = buf.find(b"\r\n\r\n")  # type: ignore[union-attr]
        if end < 0:
            limit = self.limits.max_header_bytes  # a response head like any other
            if len(buf) > limit:  # type: ignore[arg-type]
                fut.set_exception(ProxyError(
                    f"the proxy's answer to CONNECT exceeds {limit} bytes (max_header_bytes)"))
            return
        status = bytes(buf[:buf.find(b"\r\n")])  # type: ignore[index, union-attr]
        parts = status.split(b" ", 2)
        code = parts[1] if len(parts) > 1 else b""
        if not (parts[0] in (b"HTTP/1.1", b"HTTP/1.0") and len(code) == 3
                and code.isdigit()):
            fut.set_exception(ProxyError(f"malformed answer from the proxy to CONNECT: "
                                         f"{status[:80]!r}"))
        elif code[:1] != b"2":
            fut.set_exception(ProxyError(
                f"the proxy refused the tunnel to {self.origin[1]}: "
                f"{status.decode('latin-1')[9:]}"))
        elif len(buf) > end + 4:  # type: ignore[arg-type]
            fut.set_exception(ProxyError("the proxy sent bytes after its answer to CONNECT, "
                                         "before the TLS handshake"))
        else:
            fut.set_result(None)

    # ---- TLS handshake ----
    def start_tls(self, ctx: ssl.SSLContext, server_hostname: str,
                  session: TLSSession | ssl.SSLSession | None) -> asyncio.Future:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.ssl_object = ctx.wrap_bio(self._incoming, self._outgoing,
                                       server_hostname=server_hostname)
        if session is not None:
            resume(self.ssl_object, session)  # not offered if from another context
        self._handshake = self.loop.create_future()
        fut = self._handshake
        self._handshake_step()
        return fut

    def _handshake_step(self) -> None:
        fut = self._handshake
        sslobj = self.ssl_object
        try:
            sslobj.do_handshake()  # type: ignore[union-attr]
        except _WantRead:
            pass
        except ssl.SSLCertVerificationError as exc:
            self._handshake = None
            reason = exc.verify_message or str(exc)
            failed = TLSError(f"TLS certificate verification failed for {self.origin[1]}: "
                              f"{reason}", reason)
            failed.__cause__ = exc          # its verify_code, for who needs it
            fut.set_exception(failed)  # type: ignore[union-attr]
        except ssl.SSLError as exc:
            self._handshake = None
            reason = exc.reason or str(exc)
            fut.set_exception(TLSError(  # type: ignore[union-attr]
                f"TLS handshake with {self.origin[1]} failed: {reason}", reason))
        else:
            self._handshake = None
            fut.set_result(None)  # type: ignore[union-attr]
            if self._outgoing.pending and not self.closed:  # type: ignore[union-attr]
                self.transport.write(self._outgoing.read())  # type: ignore[union-attr]
            if not self.closed:
                self.on_secured()
            return
        if self._outgoing.pending and not self.closed:  # type: ignore[union-attr]
            self.transport.write(self._outgoing.read())  # type: ignore[union-attr]

    # ---- for a connection kind built on this one (h2.H2Connection) ----
    def on_secured(self) -> None:
        """Called once the TLS handshake is done (the ALPN protocol is known)."""

    @property
    def handshaking(self) -> bool:
        """The TLS handshake has begun and is not done."""
        return self._handshake is not None

    def feed_tls(self, data: Any) -> None:
        """Received bytes into TLS; while the handshake runs, its next step."""
        self._incoming.write(data)  # type: ignore[union-attr]
        if self._handshake is not None:
            self._handshake_step()

    def tls_output(self) -> bytes:
        """What TLS has encrypted to send since last asked."""
        return self._outgoing.read()  # type: ignore[union-attr]

    # ---- used by the transport ----
    async def send(self, request: Any, fields: Any, target: Any, forward: Any,
                   deadline: Any, streaming: bool, reused: bool) -> "HTTPConnection":
        """Write `request` (a Request that passed exchange.check_request; `fields`, the
        HeaderFields it returned) for `target` (the transport's ParsedURL) and wait
        for the response head; returns the response stream (this connection). `forward`:
        the forwarding proxy a plain-http request goes through (the absolute URL in the
        request line, its credentials), else None. `reused`: the connection served an
        earlier request, so its closing before the response is Resendable for an
        idempotent request. A response that comes before the body was all sent stops the
        sending and is returned."""
        method = request.method
        body = request.content
        if forward is not None:
            line = encode_request_line(method, target.text)
            proxy_lines = forward.lines
        else:
            line = target.request_lines.get(method)
            if line is None:
                line = target.request_lines[method] = encode_request_line(method,
                                                                          target.target)
            proxy_lines = None
        head, length = encode_request_head(method, line, target.host_line, fields, body,
                                           proxy_lines)
        self.start(method, streaming)
        try:
            try:
                if body is None:
                    self.write(head)
                elif body.__class__ is bytes and len(body) <= WRITE_PIECE:
                    self.writelines([head, body])
                else:
                    await self._write_body(head, body, length, deadline)
                if self._write_paused:
                    await self._drain_for(deadline)
            except EarlyResponse:
                self.broken = True  # the body was cut short: never reuse
            except _Closed:
                if self._head is None:
                    raise
            # Wait for the response head (here rather than in a method of its own: one
            # coroutine frame less to resume when it comes).
            while self._head is None:
                self._raise_error()
                if self.closed:
                    raise RemoteProtocolError("connection closed before the response arrived")
                timeout, by_total = deadline.budget(deadline.timeout.read)
                await self._wait(timeout, deadline, "waiting for the response from ", by_total)
            return self
        except (ConnectionClosedEarly, _Closed) as exc:
            error = self._send_error(exc)
            if reused and method in IDEMPOTENT and not self.response_started:
                raise Resendable(error, fresh=True) from None
            raise error from None

    def _send_error(self, exc: BaseException) -> BaseException:
        """What to raise for a connection that ended before its response came."""
        host = self.origin[1]
        if isinstance(exc, _Closed):
            if self.closed_by is not None:
                return RemoteProtocolError(
                    f"{self.closed_by} while the request was being sent")
            if self.lost_by is not None:
                return WriteError(f"sending the request to {host} failed: "
                                  f"{self.lost_by.strerror or self.lost_by}")
            error = self._error
            if error is not None and not isinstance(error, ConnectionClosedEarly):
                return error  # what the server said (a TLS alert)
            return RemoteProtocolError(
                f"{host} closed the connection before the request was sent")
        if self.lost_by is not None:
            return ReadError(f"the connection to {host} failed before the response "
                             f"came: {self.lost_by.strerror or self.lost_by}")
        return exc

    async def _write_body(self, head: bytes, body: Any, length: int | None,
                          deadline: Any) -> None:
        """The head, then a large bytes body or a streamed one, draining as it goes."""
        self.write(head)
        if body.__class__ is bytes:
            view = memoryview(body)
            for i in range(0, len(body), WRITE_PIECE):
                self.write(view[i:i + WRITE_PIECE])  # type: ignore[arg-type]
                if self._write_paused:
                    await self._drain_for(deadline)
            return
        sent = 0
        async for piece in body_pieces(body):
            if length is None:
                self.writelines(encode_chunk(piece))
            else:
                sent += len(piece)
                if sent > length:
                    raise LocalProtocolError(
                        f"the streamed body is longer than its Content-Length: {length}")
                self.write(piece)
            if self._write_paused:
                await self._drain_for(deadline)
        if length is None:
            self.write(LAST_CHUNK)
        elif sent != length:
            raise LocalProtocolError(f"the streamed body ended after {sent} bytes, short "
                                     f"of its Content-Length: {length}")

    async def _drain_for(self, deadline: Any) -> None:
        t, by_total = deadline.budget(deadline.timeout.write)
        await self.drain(t, lambda: deadline.message(
            f"sending the request to {self.origin[1]}", t, by_total))

    @property
    def idle(self) -> bool:
        """No exchange is in progress (a request refused before anything was written
        leaves the connection so, fit for the next one)."""
        return self._exchange is None and not self.closed and not self.broken

    def response_extensions(self, reused: bool) -> dict[str, Any]:
        """The Response's extensions for the exchange in progress."""
        return {"ssl_object": self.ssl_object, "connection_reused": reused,
                "server_addr": self.peername,
                "connect_times": (self.connected_at, self.secured_at)}

    def start(self, method: str, streaming: bool = False) -> None:
        """Begin a new exchange on this (idle) connection. A streamed response gets
        back-pressure from its first byte, a whole one the body limit."""
        self._exchange = ResponseExchange(method, self.limits, streaming)
        self._head = None
        self._body.clear()
        self._body_size = 0
        self._sink = None
        self._complete = False
        self._streaming = streaming
        self._partial = False
        self._error = None
        self.requests += 1

    def write(self, data: bytes) -> None:
        if self._head is not None:
            raise EarlyResponse()
        if self.closed:
            raise _Closed()
        sslobj = self.ssl_object
        if sslobj is None:
            self.transport.write(data)  # type: ignore[union-attr]
        else:
            try:
                sslobj.write(data)
            except ssl.SSLError:
                self._tls_write_failed()
            self.transport.write(self._outgoing.read())  # type: ignore[union-attr]

    def writelines(self, parts: list[bytes]) -> None:
        if self._head is not None:
            raise EarlyResponse()
        if self.closed:
            raise _Closed()
        sslobj = self.ssl_object
        if sslobj is None:
            self.transport.writelines(parts)  # type: ignore[union-attr]
        else:
            try:
                for p in parts:
                    if p:
                        sslobj.write(p)
            except ssl.SSLError:
                self._tls_write_failed()
            self.transport.write(self._outgoing.read())  # type: ignore[union-attr]

    def _tls_write_failed(self) -> None:
        """The server ended TLS (close_notify, or an alert such as "certificate required"
        after a TLS 1.3 handshake) before the request went out: the connection is done;
        the alert, when one came, is already the connection's error."""
        self.broken = True
        self.close()
        raise _Closed()

    async def drain(self, timeout: float | None, message: Callable[[], str]) -> None:
        """Wait until the transport's write buffer is below its high-water mark;
        `message` is called only when the timeout fires."""
        if not self._write_paused or self.closed:
            return
        fut = self._drain = self.loop.create_future()
        try:
            ok = await within(self.loop, fut, timeout)
        finally:
            self._drain = None
        if ok is False:
            raise WriteTimeout(message())
        if self._head is not None:
            raise EarlyResponse()

    async def _wait(self, timeout: float | None, deadline: Any, what: str,
                    by_total: bool) -> None:
        # within() written out: one coroutine frame less to resume per wake-up.
        loop = self.loop
        fut = self._waiter = loop.create_future()
        h = loop.call_later(timeout, _expire, fut) if timeout is not None else None
        try:
            ok = await fut
        finally:
            self._waiter = None
            if h is not None:
                h.cancel()
        if ok is False:
            raise ReadTimeout(deadline.message(what + self.origin[1], timeout, by_total))

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    async def read_body(self, deadline: Any, streaming: bool,
                        partial: bool = False) -> list[bytes]:
        """Body chunks received so far; waits for at least one, or for the whole body
        when not streaming. An empty list means the body is complete. `partial`: the body
        is read whole (its limit, no back-pressure) but taken as it comes, for a reader
        that decodes it on the way."""
        if streaming != self._streaming:
            self._streaming = streaming
            ex = self._exchange
            if ex is not None and not ex.done and self._error is None:
                try:
                    ex.set_streaming(streaming)
                except RemoteProtocolError as exc:
                    self._on_error(exc)
        self._partial = partial
        if not (streaming or partial or self._sink is not None or self._complete):
            self._start_sink()
        while True:
            if self._complete and self._error is not None:
                # An error wins over a body that looked complete: bytes past its
                # Content-Length came with it.
                raise self._error
            if self._body and (streaming or partial or self._complete):
                return self._take_chunks()
            if self._complete:
                return []
            self._raise_error()
            if self.closed:
                raise RemoteProtocolError("connection closed in the middle of the body")
            timeout, by_total = deadline.budget(deadline.timeout.read)
            await self._wait(timeout, deadline, "reading the response body from ", by_total)

    def take_whole(self) -> list[bytes] | None:
        """The body's chunks when the whole body has come and is being read whole (what
        `read_body(deadline, False)` would give at once, [] for no body), else None."""
        if not self._complete or self._streaming or self._error is not None:
            return None
        return self._take_chunks()

    def _take_chunks(self) -> list[bytes]:
        """The body's chunks received so far, taken; reading resumes if it was paused for
        them."""
        chunks = list(self._body)
        self._body.clear()
        self._body_size = 0
        if self._reading_paused and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]
        return chunks

    @property
    def response_started(self) -> bool:
        ex = self._exchange
        return ex is not None and ex.started

    @property
    def head(self) -> ResponseHead | None:
        """The response head of the exchange in progress, once it has come."""
        return self._head

    @property
    def complete(self) -> bool:
        """The whole response of the exchange in progress has come."""
        return self._complete

    @property
    def error(self) -> BaseException | None:
        """What ended the exchange in progress, if something did."""
        return self._error

    @property
    def write_paused(self) -> bool:
        """The transport's write buffer is above its high-water mark."""
        return self._write_paused

    def finish(self) -> bool:
        """End the exchange; return whether the connection may carry another request."""
        ex = self._exchange
        self._exchange = None
        reusable = (ex is not None and ex.done and ex.reusable and not self.broken
                    and not self.closed and self._error is None)
        head = self._head
        self._head = None
        self._body.clear()
        self._sink = None
        if reusable and head is not None:
            kat = head.keep_alive_timeout
            if kat is not None:
                # Keep-Alive: timeout=N is when the server will drop us; leave a margin.
                self.expires_at = self.loop.time() + max(0.0, kat - 0.5)
        return reusable

    def is_idle_usable(self) -> bool:
        """Check an idle connection before reuse: any readiness on the socket (FIN, RST or
        stray bytes) means the server is done with it, even if the loop has not yet run
        the callback that would tell us (asked of the kernel once the connection has been
        idle for PROBE_AFTER_IDLE)."""
        if self.closed or self.broken:
            return False
        now = self.loop.time()
        if self.expires_at is not None and now >= self.expires_at:
            return False
        if self._fd >= 0 and now - self.idle_since >= PROBE_AFTER_IDLE:
            try:
                r, _, _ = select.select((self._fd,), (), (), 0)
            except (OSError, ValueError):
                return False
            if r:
                return False
        return True

    def session(self) -> TLSSession | ssl.SSLSession | None:
        s = self.ssl_object
        if s is None:
            return None
        try:
            return session_of(s)
        except Exception:
            return None

    def close(self, by: str | None = None) -> None:
        """Close now. For TLS a close_notify goes first: OpenSSL marks the session of an
        SSL that never sent one as not resumable. `by` says who closed it ("the client was
        closed"), for the error of a request still in progress."""
        if self.closed:
            return
        self.closed = True
        self.closed_by = by
        self.broken = True
        sslobj = self.ssl_object
        t = self.transport
        if t is None:
            self._wake()
            return
        if sslobj is not None and self._handshake is None and not t.is_closing() \
                and not t.get_write_buffer_size():
            try:
                sslobj.unwrap()
            except (ssl.SSLError, ValueError):
                pass
            try:
                pending = self._outgoing.read()  # type: ignore[union-attr]
                if pending:
                    t.write(pending)
            except Exception:
                pass
        if t.get_write_buffer_size():
            # The server is not reading (a body it refused, a stalled peer): a graceful
            # close would wait for a drain that may never come, holding the descriptor.
            t.abort()
        else:
            t.close()
        self._wake()

    async def wait_closed(self, timeout: float) -> None:
        """Wait (at most `timeout` s) until the transport has let go of its socket."""
        lost = self._lost
        if lost is not None and not lost.done():
            try:
                await asyncio.wait_for(asyncio.shield(lost), timeout)
            except TimeoutError:
                pass


async def body_pieces(body: Any) -> AsyncIterator[bytes]:
    """The non-empty pieces of a streamed request body, sync or async iterable."""
    if hasattr(body, "__aiter__"):
        async for piece in body:
            if piece:
                yield bytes(piece)
    else:
        for piece in body:
            if piece:
                yield bytes(piece)


def _addr_info(address: str, port: int) -> tuple:
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


def _socket_with(options: list[tuple]) -> Callable[[tuple], socket.socket]:
    """A socket factory (aiohappyeyeballs's) that sets `options` before connecting, as
    httpx's socket_options= are set."""
    def make(addr_info: tuple) -> socket.socket:
        family, type_, proto = addr_info[:3]
        sock = socket.socket(family, type_, proto)
        try:
            for option in options:
                sock.setsockopt(*option)
        except BaseException:
            sock.close()
            raise
        return sock
    return make


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(False)


async def within(loop: asyncio.AbstractEventLoop, fut: asyncio.Future,
                  timeout: float | None) -> Any:
    """`fut`'s result, or False when `timeout` seconds pass first (None: no limit)."""
    h = loop.call_later(timeout, _expire, fut) if timeout is not None else None
    try:
        return await fut
    finally:
        if h is not None:
            h.cancel()


async def open_connection(
    loop: asyncio.AbstractEventLoop, origin: tuple[str, str, int], addresses: list[str],
    ssl_context: ssl.SSLContext | None, session: TLSSession | ssl.SSLSession | None,
    limits: Limits,
    timeout: float | None, timeout_message: str, read_buffer: bytearray | None = None,
    recv_buffer: bytearray | None = None, proxy: Any = None,
    proxy_ssl: ssl.SSLContext | None = None, factory: Any = HTTPConnection,
    uds: str | None = None, local_address: str | None = None,
    socket_options: list[tuple] | None = None,
) -> HTTPConnection:
    """Connect to the address that answers first (Happy Eyeballs when there are several;
    the proxy's, when there is one, over TLS when `proxy_ssl` is given, then a CONNECT
    tunnel for an https origin), then do the TLS handshake with the origin; `timeout`
    covers all of it (ConnectTimeout). `factory` makes the connection (h2.H2Connection
    when HTTP/2 is offered in ALPN). `uds`: the Unix socket to connect to instead of any
    address; `local_address`: the address to connect from (and so its family only);
    `socket_options`: `setsockopt` arguments for each socket, before it connects."""
    scheme, host, port = origin
    to_port = port if proxy is None else proxy.port
    what = host if proxy is None else f"the proxy {proxy.host}"
    if uds is None and local_address is not None:
        v6 = ":" in local_address
        addresses = [a for a in addresses if (":" in a) == v6]
        if not addresses:
            raise ConnectError(f"cannot connect to {what} from {local_address}: it has no "
                               f"IPv{6 if v6 else 4} address")
    where = uds if uds is not None else f"{', '.join(addresses)} port {to_port}"

    async def attempt() -> HTTPConnection:
        conn = factory(loop, origin, limits, read_buffer, recv_buffer)
        tls = {} if proxy_ssl is None else {"ssl": proxy_ssl, "server_hostname": proxy.host}
        try:
            if uds is not None and socket_options:
                sock = _socket_with(socket_options)((socket.AF_UNIX, socket.SOCK_STREAM, 0))
                try:
                    sock.setblocking(False)
                    await loop.sock_connect(sock, uds)
                    await loop.create_unix_connection(lambda: conn, sock=sock, **tls)
                except BaseException:
                    sock.close()
                    raise
            elif uds is not None:
                await loop.create_unix_connection(lambda: conn, uds, **tls)
            elif len(addresses) == 1 and not socket_options:
                await loop.create_connection(
                    lambda: conn, addresses[0], to_port, **tls,
                    local_addr=None if local_address is None else (local_address, 0))
            else:
                # Happy Eyeballs (RFC 8305): families interleaved, the next address tried
                # 250 ms after the previous one (at once if it fails), the first to answer
                # wins and the others are closed.
                sock = await aiohappyeyeballs.start_connection(
                    [_addr_info(a, to_port) for a in addresses],
                    local_addr_infos=None if local_address is None else
                    [_addr_info(local_address, 0)],
                    happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, interleave=1,
                    socket_factory=_socket_with(socket_options) if socket_options else None)
                try:
                    await loop.create_connection(lambda: conn, sock=sock, **tls)
                except BaseException:
                    sock.close()
                    raise
        except ssl.SSLError as exc:
            reason = getattr(exc, "verify_message", None) or exc.reason or str(exc)
            raise TLSError(f"TLS with {what} failed: {reason}", reason) from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {what} ({where}): "
                               f"{exc.strerror or exc}") from None
        if proxy is not None and scheme == "https":
            try:
                await conn.tunnel(f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                                  proxy.lines)
            except BaseException:
                conn.close()
                raise
        conn.connected_at = loop.time()
        if ssl_context is not None:
            try:
                await conn.start_tls(ssl_context, host, session)
            except BaseException:
                conn.close()
                raise
            conn.secured_at = loop.time()
            proto = conn.ssl_object.selected_alpn_protocol()  # type: ignore[union-attr]
            if proto not in (None, "http/1.1") and not conn.multiplexed:
                conn.close()
                raise ConnectError(f"{host} negotiated ALPN {proto!r}, not http/1.1")
        return conn

    if timeout is None:
        return await attempt()
    try:
        async with asyncio.timeout(timeout):
            return await attempt()
    except TimeoutError:
        raise ConnectTimeout(timeout_message) from None
