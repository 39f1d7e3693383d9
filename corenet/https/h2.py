"""HTTP/2 connections: many requests at once on one TLS connection (ALPN "h2"), or on one
TCP connection with prior knowledge (h2c).

`H2Connection` is the sibling of `connection.HTTPConnection` over the same network stream
(`network.NetworkStream`: TCP, Happy Eyeballs, proxies' CONNECT, the TLS handshake, session
resumption), which it takes over when the server chose h2 in ALPN, or at once for h2c
(`pool.connection_over` decides). It carries an `H2Session` (the sans-IO protocol on
nghttp2, `_h2.pyx`). Each request is an `H2Stream`, which the transport drives as it
drives an HTTP/1.1 connection: `read_head`, `read_body`, `finish`.

Every stream waits with the request's deadline (a stalled stream is a ReadTimeout, a server
that does not open its window a WriteTimeout); a stream the server did not process (above
a GOAWAY's last stream id, or reset with REFUSED_STREAM) fails with `StreamRefused`, which
the transport retries on a new connection.
"""
from __future__ import annotations

import asyncio
import ssl
from typing import Any, Callable

from ._h2 import (
    CLOSED, COALESCE, DATA, END, ENHANCE_YOUR_CALM, GOAWAY, HEAD, PING_ACK, REFUSED_STREAM,
    SMALL_PIECE, TRAILERS, H2Error, H2Session, error_name,
)
from .connection import IDEMPOTENT, WRITE_PIECE, Resendable, body_pieces, request_version
from .errors import LocalProtocolError, ReadError, ReadTimeout, RemoteProtocolError, WriteTimeout
from .exchange import BODY_METHODS, ResponseHead, body_length
from .network import NetworkStream, within

# Request body bytes queued in nghttp2 beyond which a sender waits for the server's window.
_SEND_HIGH = 256 * 1024
# Headers that belong to an HTTP/1.1 connection and are malformed in HTTP/2 (RFC 9113 8.2.2).
_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                  b"upgrade", b"host"})


class StreamRefused(RemoteProtocolError):
    """The server did not process this request (GOAWAY above it, REFUSED_STREAM): it may be
    sent again on another connection."""


class StreamUnanswered(RemoteProtocolError):
    """The server ended the stream without an error (NO_ERROR) and without a response, as
    a server shutting down does to the streams it will not serve: it may not have
    processed the request, so an idempotent one may be sent again."""


class H2Stream:
    """One request and its response on an H2Connection."""

    __slots__ = ("conn", "session", "sid", "method", "head", "_body", "complete",
                 "error", "_waiter", "_writable", "_write_mark", "streaming", "_limits",
                 "_received", "_promised", "_unconsumed", "trailers", "closed", "refused")

    def __init__(self, conn: "H2Connection", method: str, streaming: bool) -> None:
        self.conn = conn
        self.session: H2Session = conn.h2
        self.sid = 0
        self.method = method
        self.head: ResponseHead | None = None
        # The body received and not yet read, as the session gave it: bytes, and
        # bytearrays of small pieces, into which the small pieces that follow are gathered
        # too (up to COALESCE bytes): a server sending its body in tiny DATA frames costs
        # memory by the byte, not by the frame.
        self._body: list[bytes | bytearray] = []
        self.complete = False
        self.closed = False
        self.refused = False
        self.error: BaseException | None = None
        self._waiter: asyncio.Future | None = None
        self._writable: asyncio.Future | None = None
        self._write_mark = 0  # body bytes queued when the sender began to wait
        self.streaming = streaming
        self._limits = conn.limits
        self._received = 0
        self._promised = -1  # the response's Content-Length, when it has a body and one
        self._unconsumed = 0
        self.trailers: list[tuple[bytes, bytes]] | None = None

    # ---- from the connection ----
    def on_head(self, status: int, fields: list) -> None:
        head = ResponseHead(status, b"", "2", fields)
        for name, value in fields:
            if name == b"content-length":
                if value.isdigit() and self.method != "HEAD" and status not in (204, 304):
                    self._promised = int(value)
                    if self._refuse_promised():
                        return
            elif name == b"content-encoding":
                head.content_encoding = value
            elif name == b"location":
                head.location = value
            elif name == b"set-cookie":
                head.set_cookie = True
        self.head = head
        self._wake()
        self.wake_writer()

    def on_data(self, data: bytes | bytearray) -> None:
        n = len(data)
        self._received += n
        limit, name = self._body_limit()
        if limit is not None and self._received > limit:
            self.fail(RemoteProtocolError(f"response body exceeds {limit} bytes ({name})"))
            self.conn.reset_stream(self)
            return
        body = self._body
        if n < SMALL_PIECE and body and body[-1].__class__ is bytearray \
                and len(body[-1]) < COALESCE:
            body[-1] += data
        else:
            body.append(data)
        if self.streaming:
            self._unconsumed += n
        else:
            self.session.consume(self.sid, n)  # bounded by max_body_bytes instead
        self._wake()

    def on_trailers(self, fields: list) -> None:
        self.trailers = fields

    def on_end(self) -> None:
        """The server's side ended: the response is whole (this side may still send)."""
        if self.head is not None and self.error is None:
            self.complete = True
            self._wake()

    def on_closed(self, code: int, message: str | None) -> None:
        self.closed = True
        if self.complete:
            self._wake()
            self.wake_writer()
            return
        # Only END_STREAM completes a response (on_end): a reset before it, whatever its
        # code, cuts the body short, and a short body is never a success.
        if self.error is None:
            host = self.conn.origin[1]
            if message is not None:  # this side reset it: nghttp2's reason, or a limit's
                self.error = RemoteProtocolError(f"{host}: {message}")
            elif code == REFUSED_STREAM and self.head is None:
                self.refused = True
                self.error = StreamRefused(f"{host} refused the stream (REFUSED_STREAM)")
            elif code == 0 and self.head is None:
                self.error = StreamUnanswered(f"{host} ended the stream without a response")
            elif self.head is not None:
                self.error = RemoteProtocolError(
                    f"{host} reset the stream ({error_name(code)}) after "
                    f"{self._received} bytes of the response body, before its end: "
                    "the response is incomplete")
            else:
                self.error = RemoteProtocolError(
                    f"{host} reset the stream ({error_name(code)})")
        self._wake()
        self.wake_writer()

    def fail(self, exc: BaseException) -> None:
        if self.error is None and not self.complete:
            self.error = exc
        self.closed = True
        self._wake()
        self.wake_writer()

    def _refuse_promised(self) -> bool:
        """Refuse a body read whole whose Content-Length is over its limit, at the head,
        before any of it is received (a stream's reader may look at the head first): the
        stream fails and is reset. Whether it was refused."""
        limit = self._limits.max_body_bytes
        if self.streaming or self._promised <= limit or self.error is not None:
            return False
        self.fail(RemoteProtocolError(f"response body of {self._promised} bytes "
                                      f"(Content-Length) exceeds {limit} bytes (max_body_bytes)"))
        self.conn.reset_stream(self)
        return True

    def _body_limit(self) -> tuple[int | None, str]:
        if self.streaming:
            return self._limits.max_stream_bytes, "max_stream_bytes"
        return self._limits.max_body_bytes, "max_body_bytes"

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(True)

    def wake_writer(self) -> None:
        w = self._writable
        if w is not None and not w.done():
            w.set_result(True)

    def on_sent(self) -> None:
        """The connection wrote: a sender waiting for room goes on if the server took some
        of its body (its next wait has the write timeout again)."""
        if self._writable is not None and self.session.unsent(self.sid) < self._write_mark:
            self.wake_writer()

    async def _wait(self, deadline: Any, what: str) -> None:
        timeout, by_total = deadline.budget(deadline.timeout.read)
        fut = self._waiter = self.conn.loop.create_future()
        try:
            ok = await within(self.conn.loop, fut, timeout)
        finally:
            self._waiter = None
        if ok is False:
            raise ReadTimeout(deadline.message(what + self.conn.origin[1], timeout, by_total))

    # ---- from the transport ----
    async def send_body(self, data: bytes, end: bool, deadline: Any) -> None:
        conn = self.conn
        if self.head is not None:
            # Answered before the body was all sent (a 413, a redirect): the rest is not
            # sent, the answer is read, and the stream reset if the server still waits.
            return
        if self.closed or self.error is not None:
            self._raise()
        self.session.send_body(self.sid, data, end)
        conn.flush()
        # Until the body's last byte is handed on, a wait for the server is a write: the
        # write timeout bounds each wait in which the server takes none of it.
        await self._wait_writable(deadline, 0 if end else _SEND_HIGH)
        if self.error is not None and self.head is None:
            self._raise()

    async def _wait_writable(self, deadline: Any, high: int) -> None:
        """Wait while more than `high` bytes of the body are queued (or the transport
        pauses writing), unless the response begins; each wait ends as the server takes
        some, and is a WriteTimeout when it takes none within the write timeout."""
        conn = self.conn
        session = self.session
        while not self.closed and self.head is None and (
                session.unsent(self.sid) > high or conn.write_paused):
            t, by_total = deadline.budget(deadline.timeout.write)
            self._write_mark = session.unsent(self.sid)
            fut = self._writable = conn.loop.create_future()
            try:
                ok = await within(conn.loop, fut, t)
            finally:
                self._writable = None
            if ok is False:
                raise WriteTimeout(deadline.message(
                    f"sending the request to {conn.origin[1]} (the server's HTTP/2 window "
                    "stayed shut)", t, by_total))

    async def send_content(self, body: Any, length: int | None, deadline: Any) -> None:
        """The whole request body: bytes, or a sync or async iterable of bytes whose total
        must be `length` when that is given."""
        if body.__class__ is bytes:
            n = len(body)
            if n <= WRITE_PIECE:
                await self.send_body(body, True, deadline)
                return
            view = memoryview(body)
            for i in range(0, n, WRITE_PIECE):
                await self.send_body(bytes(view[i:i + WRITE_PIECE]), i + WRITE_PIECE >= n,
                                     deadline)
            return
        sent = 0
        async for piece in body_pieces(body):
            sent += len(piece)
            if length is not None and sent > length:
                raise LocalProtocolError(
                    f"the streamed body is longer than its Content-Length: {length}")
            await self.send_body(piece, False, deadline)
        if length is not None and sent != length:
            raise LocalProtocolError(f"the streamed body ended after {sent} bytes, short "
                                     f"of its Content-Length: {length}")
        await self.send_body(b"", True, deadline)

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error
        raise RemoteProtocolError(f"the connection to {self.conn.origin[1]} closed")

    async def read_head(self, deadline: Any) -> ResponseHead:
        while self.head is None:
            if self.error is not None or self.closed:
                self._raise()
            await self._wait(deadline, "waiting for the response from ")
        return self.head

    async def read_body(self, deadline: Any, streaming: bool,
                        partial: bool = False) -> list[bytes]:
        """As HTTPConnection.read_body: what has come of the body (the whole of it
        unless `streaming` or `partial`); [] at its end."""
        if streaming != self.streaming:
            self.streaming = streaming
            if not streaming and self._unconsumed:
                self.session.consume(self.sid, self._unconsumed)
                self._unconsumed = 0
                self.conn.flush()
            if not streaming and not self.complete and self._refuse_promised():
                self.conn.flush()  # the reset goes out now, not with the next write
        while True:
            if self._body and (streaming or partial or self.complete):
                return self._take_chunks(not (streaming or partial))
            if self.complete:
                return []
            if self.error is not None or self.closed:
                self._raise()
            await self._wait(deadline, "reading the response body from ")

    def take_whole(self) -> list[bytes] | None:
        """The body's chunks when the whole body has come and is being read whole (what
        `read_body(deadline, False)` would give at once), else None."""
        if not self.complete or self.streaming:
            return None
        return self._take_chunks(True)

    def _take_chunks(self, whole: bool) -> list[bytes]:
        """The body received so far, taken: joined in one chunk when `whole` (the body read
        whole), else as it came; its bytes are given back to the peer's flow-control window
        if they were held."""
        body = self._body
        self._body = []
        if whole and len(body) > 1:
            chunks = [b"".join(body)]
        else:
            chunks = [p if p.__class__ is bytes else bytes(p) for p in body]
        if self._unconsumed:
            self.session.consume(self.sid, self._unconsumed)
            self._unconsumed = 0
            self.conn.flush()
        return chunks

    @property
    def response_started(self) -> bool:
        return self.head is not None

    def response_extensions(self, reused: bool) -> dict[str, Any]:
        """The Response's extensions for this stream."""
        conn = self.conn
        return {"ssl_object": conn.ssl_object, "connection_reused": reused,
                "server_addr": conn.peername,
                "connect_times": (conn.connected_at, conn.secured_at),
                "http_version": b"HTTP/2", "stream_id": self.sid,
                "resolved_at": conn.begun_at, "network_stream": conn}

    def finish(self) -> bool:
        """End the exchange; a stream whose response was not read to its end is reset."""
        conn = self.conn
        conn.streams.pop(self.sid, None)
        if self._unconsumed:
            # Received, never read: given back to the connection's window before the
            # stream goes, or every stream abandoned would shrink it for good.
            self.session.consume(self.sid, self._unconsumed)
            self._unconsumed = 0
        if not self.closed:
            conn.reset_stream(self)
        self._body.clear()
        conn.flush()
        return self.complete


class H2Connection(NetworkStream):
    """An HTTP/2 connection over a stream that is up (TLS with h2 chosen in ALPN, or TCP
    to an http:// origin with prior knowledge, h2c: RFC 9113 3.3), which it takes over.
    The pool shares it between requests while `can_take()`."""

    # Many requests at once.
    multiplexed = True

    def __init__(self, stream: NetworkStream) -> None:
        self.take_over(stream)
        self.streams: dict[int, H2Stream] = {}
        self.active = 0  # streams checked out of the pool
        self.goaway: int | None = None  # the last stream id of the server's GOAWAY
        self._pings: list[asyncio.Future] = []
        # Called (by the pool that shares it) when the connection stops taking new
        # streams, so that requests waiting for one of its streams look elsewhere.
        self.on_unusable: Callable[[], None] | None = None
        self._tls_ended = False  # the server's close_notify came: nothing more is written
        # The code (and debug data) of the server's GOAWAY when it was an error.
        self.goaway_error: str | None = None
        self.requests = 0
        self.idle_since = 0.0
        lim = self.limits
        self.h2 = H2Session(
            max_header_bytes=lim.max_header_bytes, max_header_count=lim.max_header_count,
            max_interim=lim.max_interim_responses, max_continuations=lim.h2_max_continuations,
            max_settings=lim.h2_max_settings, max_control_frames=lim.h2_max_control_frames,
            control_frames_per_request=lim.h2_control_frames_per_request,
            header_table_size=lim.h2_header_table_size, stream_window=lim.h2_stream_window,
            connection_window=lim.h2_connection_window)
        self.flush()  # the connection preface
        early = self.take_early()
        if early is not None:
            self.data_received(early)

    # ---- input ----
    def data_received(self, data) -> None:
        h2 = self.h2
        if self.ssl_object is None:  # h2c
            try:
                self._dispatch(h2.receive(data))
            except H2Error as exc:
                self._dispatch(h2.take_events())
                self._ended(RemoteProtocolError(f"{self.origin[1]}: {exc}"))
            self.flush()
            return
        self._incoming.write(data)  # type: ignore[union-attr]
        tls = self._tls
        buf = self.read_buffer
        view = self.read_view
        incoming = self._incoming
        try:
            while incoming.pending or tls.pending():  # type: ignore[union-attr]
                n = tls.read(len(buf), buf)
                if not n:
                    self._tls_ended = True
                    self._ended(None)
                    break
                self._dispatch(h2.receive(view[:n]))  # type: ignore[index]
                if self.closed:
                    return
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            self._tls_ended = True
            self._ended(None)
        except ssl.SSLError as exc:
            self._ended(RemoteProtocolError(f"TLS error from server: {exc}"))
        except H2Error as exc:
            self._dispatch(h2.take_events())
            self._ended(RemoteProtocolError(f"{self.origin[1]}: {exc}"))
        self.flush()

    def _dispatch(self, events: list) -> None:
        streams = self.streams
        for ev in events:
            kind = ev[0]
            if kind == DATA:
                st = streams.get(ev[1])
                if st is not None:
                    st.on_data(ev[2])
            elif kind == HEAD:
                st = streams.get(ev[1])
                if st is not None:
                    st.on_head(ev[2], ev[3])
            elif kind == END:
                st = streams.get(ev[1])
                if st is not None:
                    st.on_end()
            elif kind == CLOSED:
                st = streams.get(ev[1])
                if st is not None:
                    st.on_closed(ev[2], ev[3])
            elif kind == TRAILERS:
                st = streams.get(ev[1])
                if st is not None:
                    st.on_trailers(ev[2])
            elif kind == GOAWAY:
                self._on_goaway(ev[1], ev[2], ev[3])
            elif kind == PING_ACK:
                for fut in self._pings:
                    if not fut.done():
                        fut.set_result(True)
                self._pings.clear()

    def _on_goaway(self, last: int, code: int, debug: str) -> None:
        self.goaway = last
        if code:
            self.goaway_error = f"{error_name(code)}" + (f": {debug}" if debug else "")
        for st in list(self.streams.values()):
            if st.sid > last:
                st.refused = True
                st.fail(StreamRefused(
                    f"{self.origin[1]} is closing the connection (GOAWAY) and did not "
                    "process this request"))
        self._tell_unusable()

    def _tell_unusable(self) -> None:
        cb = self.on_unusable
        if cb is not None:
            self.on_unusable = None
            cb()

    def _ended(self, exc: BaseException | None) -> None:
        """The connection can carry no more: fail the streams still open."""
        self.broken = True
        for st in list(self.streams.values()):
            if exc is not None:
                st.fail(exc)
            elif st.head is None and self.goaway is not None and st.sid > self.goaway:
                st.fail(StreamRefused(f"{self.origin[1]} closed the connection without "
                                      "processing this request"))
            else:
                why = self.goaway_error
                st.fail(RemoteProtocolError(
                    f"{self.origin[1]} closed the connection in the middle of the response"
                    + (f" (its GOAWAY: {why})" if why else "")))
        self._tell_unusable()
        if exc is not None:
            self.close()

    def eof_received(self) -> bool | None:
        self._ended(None)
        return None

    def on_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, OSError):
            self._ended(ReadError(f"the connection to {self.origin[1]} failed: "
                                  f"{exc.strerror or exc}"))
        else:
            self._ended(None)
        for fut in self._pings:
            if not fut.done():
                fut.set_result(False)

    def resume_writing(self) -> None:
        super().resume_writing()
        for st in self.streams.values():
            st.wake_writer()

    # ---- output ----
    def flush(self) -> None:
        h2 = self.h2
        if self.closed or self._tls_ended:
            return
        try:
            data = h2.data_to_send()
        except H2Error as exc:
            self._ended(RemoteProtocolError(str(exc)))
            return
        # Sending closes streams too (a reset of ours): their ends are events as well.
        events = h2.take_events()
        if events:
            self._dispatch(events)
        if data and not self.transmit(data):
            self._ended(RemoteProtocolError(
                f"{self.origin[1]} ended TLS while we were writing"))
            return
        if not self.write_paused:
            for st in self.streams.values():
                st.on_sent()
        if not h2.alive and not self.closed and not self.broken:
            if self.goaway is None:
                # nghttp2 ended the session itself: the server broke the protocol or one
                # of the bounds given to it (h2_max_settings, h2_max_continuations).
                why = h2.goaway_sent or "the connection ended"
                limit = " (past one of the Limits.h2_*)" \
                    if why.startswith(error_name(ENHANCE_YOUR_CALM)) else ""
                self._ended(RemoteProtocolError(
                    f"{self.origin[1]} broke HTTP/2{limit}: the client ended the connection "
                    f"with GOAWAY {why}"))
            else:
                self._ended(None)
            self.close()

    def reset_stream(self, st: H2Stream) -> None:
        if not self.closed and st.sid:
            self.h2.reset(st.sid)
        st.closed = True

    # ---- for the pool and the transport ----
    def can_take(self) -> bool:
        """Another request may start on this connection now."""
        h2 = self.h2
        return (not self.closed and not self.broken
                and self.goaway is None and self.active < h2.max_concurrent)

    def usable(self) -> bool:
        """This connection may carry requests (now or once a stream ends)."""
        return (not self.closed and not self.broken
                and self.goaway is None and self.h2.alive)

    def is_idle_usable(self) -> bool:
        return self.usable()

    @property
    def idle(self) -> bool:
        return not self.closed and not self.broken

    async def send(self, request: Any, fields: Any, target: Any, forward: Any,
                   deadline: Any, streaming: bool, reused: bool) -> Any:
        """`HTTPConnection.send` on a stream of its own: returns the H2Stream once the
        response head has come. A request the server did not process (GOAWAY above it,
        REFUSED_STREAM) or a protocol error is Resendable, and so is an idempotent one
        whose stream the server ended without a response (NO_ERROR: a server shutting
        down), as for HTTP/1.1; so is every request on a connection idle a while that does
        not answer a PING (nothing sent)."""
        lim = self.limits
        host = self.origin[1]
        if reused and self.active == 1 and not self.streams \
                and self.loop.time() - self.idle_since > lim.h2_ping_after_idle:
            # Idle a while: make sure the server is still there before using it.
            if not await self.ping(lim.h2_ping_timeout):
                self.broken = True
                raise Resendable(RemoteProtocolError(
                    f"no connection to {host} answered PING in time"), needs_body=False)
        ext = request._extensions
        if ext and request_version(ext) == "HTTP/1.0":
            raise LocalProtocolError(f"HTTP/1.0 was asked for, but the connection to {host} "
                                     "speaks HTTP/2 (a transport with http2=False speaks "
                                     "HTTP/1)")
        method = request.method
        body = request.body
        length = body_length(fields, body)
        fields = request_headers(method, target.scheme, target.host_header, target.target,
                                 fields.items, length, body is not None)
        st: H2Stream | None = None
        try:
            st = self.start_stream(method, fields, body is not None, streaming)
            if body is not None:
                await st.send_content(body, length, deadline)
            await st.read_head(deadline)
        except (StreamRefused, H2Error) as exc:
            if st is not None:
                st.finish()
            raise Resendable(RemoteProtocolError(f"{host}: {exc}")
                             if isinstance(exc, H2Error) else exc) from None
        except StreamUnanswered as exc:
            st.finish()  # type: ignore[union-attr]
            if method in IDEMPOTENT:
                raise Resendable(exc) from None
            raise
        except BaseException:
            if st is not None:
                st.finish()
            raise
        return st

    def start_stream(self, method: str, headers: list[tuple[bytes, bytes]], has_body: bool,
                     streaming: bool) -> H2Stream:
        st = H2Stream(self, method, streaming)
        st.sid = self.h2.request(headers, has_body)
        self.streams[st.sid] = st
        self.requests += 1
        if not has_body:
            self.flush()
        return st

    async def ping(self, timeout: float) -> bool:
        """Whether the server answers a PING within `timeout` seconds."""
        if not self.usable():
            return False
        fut = self.loop.create_future()
        self._pings.append(fut)
        self.h2.ping()
        self.flush()
        return await within(self.loop, fut, timeout) is True

    def close(self, by: str | None = None) -> None:
        h2 = self.h2
        # Our GOAWAY, unless the server's came first: it is closing the connection itself,
        # and a frame that crosses its close_notify is an error to its TLS.
        if not self.closed and self.goaway is None \
                and self.transport is not None and not self.transport.is_closing():
            self.broken = True  # ours to end: flush must not take it for the server's
            h2.close()
            try:
                self.flush()
            except Exception:
                pass
        for st in list(self.streams.values()):
            st.fail(RemoteProtocolError(f"the connection to {self.origin[1]} was closed"))
        super().close(by)


def request_headers(method: str, scheme: str, authority: str, target: str,
                    items: Any, length: int | None,
                    has_body: bool) -> list[tuple[bytes, bytes]]:
    """The HTTP/2 header list of a request: pseudo-headers, then the caller's headers
    lowercased, less those HTTP/2 forbids (RFC 9113 8.2.2), a Host becoming :authority."""
    out = [(b":method", method.encode("ascii")), (b":scheme", scheme.encode("ascii")),
           (b":authority", b""), (b":path", target.encode("ascii"))]
    host = authority
    seen_length = False
    for name, value in items:
        lname = name.lower().encode("latin-1")
        if lname in _HOP:
            if lname == b"host":
                host = value
            continue
        if lname == b"te" and value.strip().lower() != "trailers":
            continue
        if lname == b"content-length":
            seen_length = True
        out.append((lname, value.encode("latin-1")))
    out[2] = (b":authority", host.encode("latin-1"))
    if not seen_length and length is not None:
        out.append((b"content-length", b"%d" % length))
    elif not seen_length and not has_body and method in BODY_METHODS:
        out.append((b"content-length", b"0"))
    return out


