"""One HTTP/1.1 connection over a network stream (`network.NetworkStream`: TCP, the
proxy's tunnel, TLS): the request written, and the exchange in flight read in the same
callback that decrypts it (into the body's own `bytes` inside a Content-Length body)."""
from __future__ import annotations

import asyncio
import select
import ssl
from collections import deque
from typing import Any, AsyncIterator, Callable

from ._sink import BodySink
from .errors import (
    LocalProtocolError, ReadError, ReadTimeout, RemoteProtocolError, WriteError,
)
from .exchange import (
    END, LAST_CHUNK, ConnectionClosedEarly, ResponseExchange, ResponseHead, encode_chunk,
    encode_request_head, encode_request_line,
)
from .network import NetworkStream, expire

# One TLS record carries at most 16 KiB of plaintext, and SSLObject.read returns at most
# one record: a bytes object of this size is shrunk in place, never copied.
_RECORD_READ = 16 * 1024
# A whole body read at once (not streamed) of a known length at least this big goes straight
# into its final bytes object (BodySink) instead of a list of chunks joined at the end. The
# cap bounds what a server's Content-Length alone makes us reserve (address space only:
# pages are touched as data arrives).
_SINK_MIN = 32 * 1024
_SINK_MAX = 256 * 1024 * 1024
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
# A response's extensions["http_version"] (httpx's), by the head's version.
_VERSIONS = {"1.1": b"HTTP/1.1", "1.0": b"HTTP/1.0"}
_WantRead = ssl.SSLWantReadError
_ZeroReturn = ssl.SSLZeroReturnError


def request_version(extensions: dict) -> str | None:
    """The HTTP version a request's extensions ask for (`"http_version"`: b"HTTP/1.0" or
    b"HTTP/1.1", as a response's extension says it; str too), None when they name none."""
    version = extensions.get("http_version")
    if version is None:
        return None
    if isinstance(version, bytes):
        version = version.decode("ascii", "replace")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise LocalProtocolError(f"HTTP version {version!r} cannot be sent over HTTP/1 "
                                 "(HTTP/1.1 or HTTP/1.0)")
    return version


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


class HTTPConnection(NetworkStream):
    """Carries one request/response at a time over a stream that is up, which it takes
    over (made by `pool.connection_over`, owned by the pool). `send` writes a request and
    returns its response stream once the head has come: the connection itself (`head`,
    `complete`, `read_body`, `finish`, `trailers`, `response_extensions`), as its sibling
    h2.H2Connection returns one H2Stream."""

    # One request at a time (its sibling h2.H2Connection carries many).
    multiplexed = False
    # Trailer fields of the response (HTTP/1.1 chunked trailers are not kept).
    trailers: list[tuple[bytes, bytes]] | None = None
    # An HTTP/1.0 request went out without asking for keep-alive: no other follows it.
    last_request = False

    def __init__(self, stream: NetworkStream) -> None:
        self.take_over(stream)
        self._waiter: asyncio.Future | None = None
        self._exchange: ResponseExchange | None = None
        # The last exchange, when it left the connection reusable: the next one takes its
        # parser (see ResponseExchange).
        self._previous: ResponseExchange | None = None
        # The response head of the exchange in progress, once it has come.
        self.head: ResponseHead | None = None
        self._body: deque = deque()
        self._body_size = 0
        self._sink: BodySink | None = None
        self._complete = False
        self._streaming = False
        self._partial = False  # a whole body taken piece by piece as it comes
        self._reading_paused = False
        self._error: BaseException | None = None
        self.requests = 0
        self.idle_since = 0.0
        self.expires_at: float | None = None
        # corenet's loop polls a while before it sleeps when told a response is near.
        poll = getattr(self.loop, "poll_before_sleeping", None)
        self._poll: Callable[[float], None] | None = \
            poll if self.limits.response_poll > 0 else None
        early = self.take_early()
        if early is not None:
            self.data_received(early)  # the server spoke first: not ours to trust

    # ---- asyncio protocol callbacks ----
    def data_received(self, data) -> None:
        tls = self._tls
        if tls is None:
            self._on_plain(data)
            return
        self._incoming.write(data)  # type: ignore[union-attr]
        buf = self.read_buffer
        view = self.read_view
        incoming = self._incoming
        try:
            # Until the received bytes are all taken in (a read with none left would
            # only raise SSLWantReadError, which costs more than asking).
            while incoming.pending or tls.pending():  # type: ignore[union-attr]
                ex = self._exchange
                if ex is not None and ex.body_left > 0:
                    sink = self._sink
                    if sink is not None:
                        # The whole body is wanted: decrypt into its final bytes object.
                        n, ended = sink.fill(tls)
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
                    chunk = tls.read(left if left < _RECORD_READ else _RECORD_READ)
                    if not chunk:
                        self._on_eof(True)
                        break
                    self._on_plain(chunk)
                    continue
                n = tls.read(len(buf), buf)  # an int
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

    def on_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, OSError):
            ex = self._exchange
            if ex is not None and ex.started and not ex.done and self._error is None:
                # A reset in the middle of the response: the network failed, not HTTP.
                self._on_error(ReadError(f"the connection to {self.origin[1]} failed while "
                                         f"reading the response: {exc.strerror or exc}"))
        self._on_eof(self.ssl_object is None)
        self._wake()

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
                self.head = ev
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
        body = request.body
        ext = request._extensions
        version = request_version(ext) if ext else None
        if version is not None:  # HTTP/1.0: asked for by the request, the connection's last
            line = encode_request_line(method, target.text if forward else target.target,
                                       version)
            if version == "HTTP/1.0":
                if body is not None and body.__class__ is not bytes and fields.length is None:
                    raise LocalProtocolError("an HTTP/1.0 request cannot carry a body of "
                                             "unknown length (chunked is HTTP/1.1's)")
                self.last_request = True
            proxy_lines = forward.lines if forward else None
        elif forward is not None:
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
        # A new exchange on this (idle) connection. A streamed response gets back-pressure
        # from its first byte, a whole one the body limit.
        self._exchange = ResponseExchange(method, self.limits, streaming, self._previous)
        self._previous = None
        self.head = None
        self._body.clear()
        self._body_size = 0
        self._sink = None
        self._complete = False
        self._streaming = streaming
        self._partial = False
        self._error = None
        self.requests += 1
        try:
            try:
                if body is None:
                    self.write(head)
                elif body.__class__ is bytes and len(body) <= WRITE_PIECE:
                    self.write([head, body])
                else:
                    await self._write_body(head, body, length, deadline)
                if self._write_paused:
                    await self._drain_for(deadline)
            except EarlyResponse:
                self.broken = True  # the body was cut short: never reuse
            except _Closed:
                if self.head is None:
                    raise
            if self._poll is not None and self.head is None:
                self._poll(self.limits.response_poll)
            while self.head is None:
                if self._error is not None:
                    raise self._error
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
                self.write(encode_chunk(piece))
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
        if self.head is not None:
            raise EarlyResponse()

    @property
    def idle(self) -> bool:
        """No exchange is in progress (a request refused before anything was written
        leaves the connection so, fit for the next one)."""
        return self._exchange is None and not self.closed and not self.broken

    def response_extensions(self, reused: bool) -> dict[str, Any]:
        """The Response's extensions for the exchange in progress (its head has come)."""
        head = self.head
        version = head.http_version  # type: ignore[union-attr]
        return {"ssl_object": self.ssl_object, "connection_reused": reused,
                "server_addr": self.peername,
                "connect_times": (self.connected_at, self.secured_at),
                "resolved_at": self.begun_at,
                "http_version": _VERSIONS.get(version) or f"HTTP/{version}".encode("ascii"),
                "reason_phrase": head.reason,  # type: ignore[union-attr]
                "network_stream": self}

    def write(self, data: Any) -> None:
        """Send `data` (bytes, or a list of bytes) of the request, unless the response
        has begun or the connection has ended."""
        if self.head is not None:
            raise EarlyResponse()
        if self.closed:
            raise _Closed()
        if not self.transmit(data):
            # The server ended TLS before the request went out: the connection is done;
            # the alert, when one came, is already the connection's error.
            self.broken = True
            self.close()
            raise _Closed()

    async def _wait(self, timeout: float | None, deadline: Any, what: str,
                    by_total: bool) -> None:
        # within() written out: one coroutine frame less to resume per wake-up.
        loop = self.loop
        fut = self._waiter = loop.create_future()
        h = loop.call_later(timeout, expire, fut) if timeout is not None else None
        try:
            ok = await fut
        finally:
            self._waiter = None
            if h is not None:
                h.cancel()
        if ok is False:
            raise ReadTimeout(deadline.message(what + self.origin[1], timeout, by_total))

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
            if self._error is not None:
                raise self._error
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
    def complete(self) -> bool:
        """The whole response of the exchange in progress has come."""
        return self._complete

    @property
    def error(self) -> BaseException | None:
        """What ended the exchange in progress, if something did."""
        return self._error

    def finish(self) -> bool:
        """End the exchange; return whether the connection may carry another request."""
        ex = self._exchange
        self._exchange = None
        reusable = (ex is not None and ex.done and ex.reusable and not self.broken
                    and not self.closed and self._error is None and not self.last_request)
        self._previous = ex if reusable else None
        head = self.head
        self.head = None
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
    def close(self, by: str | None = None) -> None:
        if self.closed:
            return
        super().close(by)
        self._wake()


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
