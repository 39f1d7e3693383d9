"""Transports: what turns a Request into a Response. `AsyncBaseTransport` is the interface
(httpx's): `handle_async_request(request) -> Response`, `aclose()`. `AsyncHTTPTransport` is
the network: HTTP/1.1 over TCP or TLS, HTTP/2 over TLS when asked (`http2=True`) and the
server takes it, a keep-alive pool, proxies. The client calls its
`_send` directly (the URL already parsed, the deadline running); `handle_async_request` is
the same path for a caller holding only a Request."""
from __future__ import annotations

import asyncio
import re
import ssl
from typing import Any, AsyncIterator
from urllib.parse import quote

from .connection import EarlyResponse, HTTPConnection, _Closed, open_connection
from .deadline import Deadline
from .errors import (
    ConnectError, ConnectTimeout, InvalidURL, LocalProtocolError, RemoteProtocolError,
    ReadError, UnsupportedProtocol, WriteError,
)
from ._h2 import H2Error
from .h2 import H2Connection, H2Stream, StreamRefused, request_headers
from .exchange import (
    LAST_CHUNK, ConnectionClosedEarly, encode_chunk, encode_header_lines, encode_request_line,
)
from .headers import Headers
from .limits import DEFAULT_LIMITS, Limits
from .models import Request, Response
from .pool import Origin, Pool
from .proxy import Mount, Proxy, env_proxies, proxy_from_env
from .resolve import resolve_host
from .timeout import Timeout
from .urls import URL, encode_host, encode_params, split_url, userinfo_auth

_UNSET: Any = object()
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_DEFAULT_PORTS = {"https": 443, "http": 80}
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_WRITE_PIECE = 256 * 1024
_CACHE_SIZE = 512
# Methods whose request has a meaning for content: without a body they still say
# "Content-Length: 0" (RFC 9110 8.6), as httpx does, or servers answer 411.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Headers that say where the message is and how long it is: the client's to write.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding"})
_DIGITS = re.compile(r"[0-9]+")


def make_ssl_context(verify: bool | str | ssl.SSLContext = True,
                     cert: Any = None, http2: bool = False) -> ssl.SSLContext:
    """One context per transport: building one loads the CA store (milliseconds), and
    sharing it is what lets sessions resume across connections. `verify`: True (the
    system's CAs), False (no verification), a CA file path, or your own SSLContext, used
    as is. `cert`, a client certificate as httpx takes it: a path to a PEM file holding
    the certificate and its key, or (certificate, key) or (certificate, key, password).
    `http2`: offer h2 before http/1.1 in ALPN."""
    if isinstance(verify, ssl.SSLContext):
        if cert is not None:
            raise ValueError("cert= cannot be added to an SSLContext given as verify=: "
                             "load it there (context.load_cert_chain)")
        return verify  # the caller's settings are theirs; we do not mutate them
    if verify is True:
        ctx = ssl.create_default_context()
    elif verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str):
        ctx = ssl.create_default_context(cafile=verify)
    else:
        raise TypeError("verify must be True, False, a CA file path or an ssl.SSLContext")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
    if cert is not None:
        if isinstance(cert, (str, bytes)) or hasattr(cert, "__fspath__"):
            ctx.load_cert_chain(cert)
        elif isinstance(cert, tuple) and len(cert) in (2, 3):
            ctx.load_cert_chain(cert[0], cert[1], *(cert[2:]))
        else:
            raise TypeError("cert must be a path, (certificate, key) or "
                            "(certificate, key, password)")
    return ctx


class _URL:
    __slots__ = ("scheme", "host", "port", "target", "origin", "host_header", "text",
                 "host_line", "auth", "url", "request_lines")

    def __init__(self, url: str, params: Any = None) -> None:
        parts, port = split_url(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise UnsupportedProtocol(f"unsupported URL scheme {parts.scheme!r} in {url!r} "
                                      "(only https and http)")
        host = parts.hostname
        if not host:
            raise InvalidURL(f"no host in URL {url!r}")
        host = encode_host(host)
        self.scheme = scheme
        self.host = host
        self.port = port or _DEFAULT_PORTS[scheme]
        path = quote(parts.path or "/", safe=_PATH_SAFE)
        query = quote(parts.query, safe=_QUERY_SAFE)
        if params:
            extra = encode_params(params)
            query = f"{query}&{extra}" if query else extra
        self.target = f"{path}?{query}" if query else path
        hh = f"[{host}]" if ":" in host else host
        self.host_header = hh if port is None else f"{hh}:{port}"
        self.host_line = encode_header_lines((("Host", self.host_header),))
        self.origin: Origin = (scheme, host, self.port)
        self.text = f"{scheme}://{self.host_header}{self.target}"
        self.url = URL(self.text)
        self.request_lines: dict[str, bytes] = {}  # by method, validated once
        self.auth = userinfo_auth(parts)


class AsyncBaseTransport:
    """What a client sends its requests through (httpx's interface). Subclasses implement
    `handle_async_request`, returning a Response whose body may be left to read (a
    stream); `aclose` releases what the transport holds."""

    async def handle_async_request(self, request: Request) -> Response:
        raise NotImplementedError("a transport implements handle_async_request()")

    async def aclose(self) -> None:
        pass

    async def __aenter__(self) -> "AsyncBaseTransport":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


class BaseTransport:
    """httpx's sync transport interface, for transports written for httpx.Client:
    `handle_request(request) -> Response` and `close()`. Either client takes one; it is
    called in the loop's default executor (a worker thread), after the request's body is
    read into bytes."""

    def handle_request(self, request: Request) -> Response:
        raise NotImplementedError("a transport implements handle_request()")

    def close(self) -> None:
        pass

    def __enter__(self) -> "BaseTransport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


async def send_through(transport: Any, request: Request) -> Response:
    """`request` sent through any transport: its handle_async_request, or a sync
    handle_request (BaseTransport) in the loop's executor."""
    handle = getattr(transport, "handle_async_request", None)
    if handle is not None:
        return await handle(request)
    await request.aread()
    return await asyncio.get_running_loop().run_in_executor(
        None, transport.handle_request, request)


async def close_transport(transport: Any) -> None:
    aclose = getattr(transport, "aclose", None)
    if aclose is not None:
        await aclose()
    else:
        await asyncio.get_running_loop().run_in_executor(None, transport.close)


class AsyncHTTPTransport(AsyncBaseTransport):
    """HTTP/1.1 over TLS (or plain TCP for http://) with a keep-alive pool, as the client
    uses by default; with `http2=True`, HTTP/2 to https origins that take it in ALPN. `verify` and `cert` make the TLS context (see make_ssl_context);
    `proxy` sends every request through that proxy, else `trust_env` takes it from the
    environment; `proxy_mounts` (corenet's) picks a proxy, or none, per URL pattern
    within this one pool. `limits` bounds the pool and what a server can push."""

    def __init__(
        self, *, verify: bool | str | ssl.SSLContext = True, cert: Any = None,
        limits: Limits = DEFAULT_LIMITS, proxy: URL | str | Proxy | None = None,
        trust_env: bool = True, resolver: Any = None, reuse_tls_sessions: bool = True,
        max_connections: int | None = None, max_keepalive: int | None = None,
        keepalive_expiry: float | None | object = _UNSET,
        proxy_mounts: "list[Mount] | None" = None, http2: bool = False,
    ) -> None:
        self._ssl = make_ssl_context(verify, cert, http2)
        self.http2 = http2
        self.resolver = resolver
        self.limits = limits
        self._proxy = proxy if proxy is None or isinstance(proxy, Proxy) else Proxy(proxy)
        self._env_proxies = env_proxies() if trust_env and proxy is None else {}
        self._mounts = [m for m in proxy_mounts or () if m.transport is None]
        self._env_proxy_cache: dict[Origin, Proxy | None] = {}
        # The pool's limits come from `limits` (httpx's names) unless given here.
        if max_connections is None:
            max_connections = limits.max_connections
        if max_keepalive is None:
            max_keepalive = limits.max_keepalive_connections
        if keepalive_expiry is _UNSET:
            keepalive_expiry = limits.keepalive_expiry
        self.pool = Pool(1 << 30 if max_connections is None else max_connections,
                         1 << 30 if max_keepalive is None else max_keepalive,
                         keepalive_expiry, reuse_tls_sessions)  # type: ignore[arg-type]
        self.pool.http2 = http2
        self._addr_cache: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._block_cache: dict[tuple, tuple[bytes, bytes | None, int | None, bool]] = {}
        # Shared by this transport's connections: each is filled and fully parsed inside
        # one loop callback, so no two connections ever hold them at once.
        self._read_buffer = bytearray(256 * 1024)
        self._recv_buffer = bytearray(256 * 1024)

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return self._ssl

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def handle_async_request(self, request: Request) -> Response:
        """Send `request`, return the response with its body left to read. The timeout is
        `request.extensions["timeout"]` (a Timeout, or httpx's dict of connect, read,
        write and pool), else Timeout()'s defaults."""
        t = request.extensions.get("timeout")
        if isinstance(t, dict):
            t = Timeout(None, **{k: t[k] for k in ("connect", "read", "write", "pool", "total")
                                 if k in t})
        deadline = Deadline(asyncio.get_running_loop(),
                            Timeout() if t is None else Timeout.coerce(t))
        return await self._send(request, _URL(str(request.url)), deadline, True)

    def _proxy_for(self, u: _URL) -> Proxy | None:
        """The proxy for `u`'s origin: the most specific matching mount, else `proxy=`,
        else the environment's."""
        if not self._mounts and (self._proxy is not None or not self._env_proxies):
            return self._proxy
        try:
            return self._env_proxy_cache[u.origin]
        except KeyError:
            pass
        if len(self._env_proxy_cache) >= _CACHE_SIZE:
            self._env_proxy_cache.clear()
        for mount in self._mounts:
            if mount.matches(u.scheme, u.host, u.port):
                proxy = mount.proxy
                break
        else:
            proxy = self._proxy
            if proxy is None and self._env_proxies:
                proxy = proxy_from_env(self._env_proxies, u.scheme, f"{u.host}:{u.port}")
        self._env_proxy_cache[u.origin] = proxy
        return proxy

    async def _connect(self, u: _URL, deadline: Deadline,
                       proxy: Proxy | None) -> HTTPConnection:
        loop = asyncio.get_running_loop()
        t, by_total = deadline.budget(deadline.timeout.connect)
        key = (u.host, u.port) if proxy is None else (proxy.host, proxy.port)

        async def go() -> HTTPConnection:
            cached = self._addr_cache.get(key)
            if cached is not None and cached[0] > loop.time():
                addrs = cached[1]
            else:
                addrs, ttl = await resolve_host(key[0], key[1], self.resolver)
                if ttl > 0:
                    if len(self._addr_cache) >= _CACHE_SIZE:
                        self._addr_cache.clear()
                    self._addr_cache[key] = (loop.time() + ttl, addrs)
            try:
                return await open_connection(
                    loop, u.origin, addrs, self._ssl if u.scheme == "https" else None,
                    self.pool.session_for(u.origin), self.limits, None, "",
                    self._read_buffer, self._recv_buffer, proxy,
                    self._ssl if proxy is not None and proxy.scheme == "https" else None,
                    H2Connection if self.http2 and u.scheme == "https" else HTTPConnection)
            except ConnectError:
                self._addr_cache.pop(key, None)  # look the name up afresh next time
                raise

        if t is None:
            return await go()
        try:
            async with asyncio.timeout(t):
                return await go()
        except TimeoutError:
            via = "" if proxy is None else f" through the proxy {proxy.host} port {proxy.port}"
            raise ConnectTimeout(deadline.message(
                f"connecting to {u.host} port {u.port}{via}", t, by_total)) from None

    async def _send(self, req: Request, u: _URL, deadline: Deadline, stream: bool) -> Response:
        loop = asyncio.get_running_loop()
        started = loop.time()
        body = req.content
        proxy = self._proxy
        if self._mounts or proxy is None and self._env_proxies:
            proxy = self._proxy_for(u)
        forward = proxy if proxy is not None and u.scheme == "http" else None
        head, length = self._encode_head(req.method, u, req.headers, body, forward)
        retry_ok = req.method in _IDEMPOTENT and (body is None or isinstance(body, bytes))
        pool = self.pool
        fresh = False
        for attempt in (0, 1):
            t, by_total = deadline.budget(deadline.timeout.pool)
            conn, reused = await pool.acquire(
                u.origin, lambda: self._connect(u, deadline, proxy), t,
                lambda: deadline.message(f"waiting for a free connection to {u.host}", t,
                                         by_total),
                fresh=fresh)
            if conn.multiplexed:
                return await self._send_h2(req, u, deadline, stream, conn, reused, proxy,
                                           started)
            conn.start(req.method, stream)
            try:
                try:
                    await self._write_request(conn, head, body, length, deadline)
                except EarlyResponse:
                    conn.broken = True  # the body was cut short: never reuse
                except _Closed:
                    if conn.head is None:
                        raise
                rhead = await conn.read_head(deadline)
            except (ConnectionClosedEarly, _Closed) as exc:
                pool.release(conn, False)
                if attempt == 0 and reused and retry_ok and not conn.response_started:
                    fresh = True
                    continue
                if isinstance(exc, _Closed):
                    if pool.closed:
                        raise RemoteProtocolError(
                            "the client was closed while the request was being sent") from None
                    if conn.lost_by is not None:
                        raise WriteError(f"sending the request to {u.host} failed: "
                                         f"{conn.lost_by.strerror or conn.lost_by}") from None
                    error = conn.error
                    if error is not None and not isinstance(error, ConnectionClosedEarly):
                        raise error from None  # what the server said (a TLS alert)
                    raise RemoteProtocolError(
                        f"{u.host} closed the connection before the request was sent") from None
                if conn.lost_by is not None:
                    raise ReadError(f"the connection to {u.host} failed before the response "
                                    f"came: {conn.lost_by.strerror or conn.lost_by}") from None
                raise
            except BaseException:
                pool.release(conn, False)
                raise
            break
        resp = Response(rhead.status_code, reason=rhead.reason,
                        http_version=rhead.http_version, raw_headers=rhead.headers,
                        request=req)
        resp._started_at = started
        resp._set_cookie = rhead.set_cookie
        resp.extensions = {"ssl_object": conn.ssl_object, "connection_reused": reused,
                           "server_addr": conn.peername,
                           "connect_times": (conn.connected_at, conn.secured_at)}
        resp._clock = loop.time
        ce = rhead.content_encoding
        if ce:
            resp._content_encoding = ce.decode("latin-1")
            resp._limits = self.limits

        async def chunks(streaming: bool = True) -> list[bytes]:
            return await conn.read_body(deadline, streaming)

        def on_close(complete: bool) -> None:
            pool.release(conn, complete and conn.finish())

        resp._chunks = chunks
        resp._on_close = on_close
        if not stream and conn.complete:
            await resp.aread()  # the common small response: already all here
        return resp

    async def _send_h2(self, req: Request, u: _URL, deadline: Deadline, stream: bool,
                       conn: Any, reused: bool, proxy: Proxy | None,
                       started: float) -> Response:
        """`_send` on a multiplexed connection: one stream per request; a request the server
        did not process (GOAWAY, REFUSED_STREAM) is sent again on a new connection when its
        body can be sent again."""
        loop = asyncio.get_running_loop()
        pool = self.pool
        lim = self.limits
        body = req.content
        _, _, length, _ = self._header_entry(req.headers)
        if body is None:
            if length:
                raise LocalProtocolError(f"Content-Length: {length} was given for a request "
                                         "without a body")
            length = None
        elif body.__class__ is bytes:
            if length is not None and length != len(body):
                raise LocalProtocolError(
                    f"Content-Length: {length} was given, but the body is {len(body)} bytes")
            length = len(body)
        replayable = body is None or isinstance(body, bytes)
        fields = request_headers(req.method, u.scheme, u.host_header, u.target,
                                 req.headers._items, length, body is not None)
        for attempt in range(4):
            if attempt:
                t, by_total = deadline.budget(deadline.timeout.pool)
                conn, reused = await pool.acquire(
                    u.origin, lambda: self._connect(u, deadline, proxy), t,
                    lambda: deadline.message(f"waiting for a free connection to {u.host}",
                                             t, by_total),
                    fresh=attempt > 1)
                if not conn.multiplexed:
                    pool.release(conn, False)
                    raise RemoteProtocolError(f"{u.host} no longer offers HTTP/2")
            if reused and conn.active == 1 and conn.streams == {} \
                    and loop.time() - conn.idle_since > lim.h2_ping_after_idle:
                # Idle a while: make sure the server is still there before using it.
                if not await conn.ping(lim.h2_ping_timeout):
                    conn.broken = True
                    pool.release(conn, False)
                    continue
            st: H2Stream | None = None
            try:
                st = conn.start_stream(req.method, fields, body is not None, stream)
                if body is not None:
                    await self._write_h2_body(st, body, length, deadline)
                rhead = await st.read_head(deadline)
            except (StreamRefused, H2Error) as exc:
                if st is not None:
                    st.finish()
                pool.release(conn, False)
                if replayable and attempt < 3:
                    continue
                if isinstance(exc, H2Error):
                    raise RemoteProtocolError(f"{u.host}: {exc}") from None
                raise
            except BaseException:
                if st is not None:
                    st.finish()
                pool.release(conn, False)
                raise
            break
        else:
            raise RemoteProtocolError(f"no connection to {u.host} answered PING in time")
        assert st is not None
        resp = Response(rhead.status_code, reason=b"", http_version="2",
                        raw_headers=rhead.headers, request=req)
        resp._started_at = started
        resp._set_cookie = rhead.set_cookie
        resp.extensions = {"ssl_object": conn.ssl_object, "connection_reused": reused,
                           "server_addr": conn.peername,
                           "connect_times": (conn.connected_at, conn.secured_at), "http_version": b"HTTP/2",
                           "stream_id": st.sid}
        resp._clock = loop.time
        ce = rhead.content_encoding
        if ce:
            resp._content_encoding = ce.decode("latin-1")
            resp._limits = self.limits

        async def chunks(streaming: bool = True) -> list[bytes]:
            return await st.read_body(deadline, streaming)

        def on_close(complete: bool) -> None:
            ended = st.finish()
            if ended and st.trailers is not None:
                resp.extensions["trailers"] = Headers._from_raw(st.trailers)
            pool.release(conn, True)

        resp._chunks = chunks
        resp._on_close = on_close
        if not stream and st.complete:
            await resp.aread()
        return resp

    @staticmethod
    async def _write_h2_body(st: Any, body: Any, length: int | None,
                             deadline: Deadline) -> None:
        if isinstance(body, bytes):
            n = len(body)
            if n <= _WRITE_PIECE:
                await st.send_body(body, True, deadline)
                return
            view = memoryview(body)
            for i in range(0, n, _WRITE_PIECE):
                await st.send_body(bytes(view[i:i + _WRITE_PIECE]), i + _WRITE_PIECE >= n,
                                   deadline)
            return
        sent = 0
        async for piece in _pieces(body):
            sent += len(piece)
            if length is not None and sent > length:
                raise LocalProtocolError(
                    f"the streamed body is longer than its Content-Length: {length}")
            await st.send_body(piece, False, deadline)
        if length is not None and sent != length:
            raise LocalProtocolError(f"the streamed body ended after {sent} bytes, short "
                                     f"of its Content-Length: {length}")
        await st.send_body(b"", True, deadline)

    def _header_entry(self, headers: Headers) -> tuple[bytes, bytes | None, int | None, bool]:
        key = tuple(headers._items)
        entry = self._block_cache.get(key)
        if entry is None:
            entry = _header_block(headers._items)
            if len(self._block_cache) >= 64:
                self._block_cache.clear()
            self._block_cache[key] = entry
        return entry

    def _encode_head(self, method: str, u: _URL, headers: Headers, body: Any,
                     forward: Proxy | None = None) -> tuple[bytes, int | None]:
        """Request line, Host, headers and the framing header; returns it with the exact
        length a streamed body must have (None: chunked, or not a stream). The caller's
        header block is validated and encoded once per distinct set of headers (the
        client's defaults, usually) and then reused."""
        block, host_line, length, chunked = self._header_entry(headers)
        if body is None:
            if chunked or length:
                raise LocalProtocolError(
                    f"{'Transfer-Encoding: chunked' if chunked else f'Content-Length: {length}'}"
                    " was given for a request without a body")
            framing = b"Content-Length: 0\r\n" if length == 0 or method in _BODY_METHODS \
                else b""
            length = None
        elif body.__class__ is bytes:
            if chunked:
                raise LocalProtocolError(
                    "Transfer-Encoding: chunked was given with a bytes body, which the "
                    "client sends with its Content-Length (pass an iterable to stream it)")
            if length is not None and length != len(body):
                raise LocalProtocolError(
                    f"Content-Length: {length} was given, but the body is {len(body)} bytes")
            framing = b"Content-Length: %d\r\n" % len(body)
            length = None
        elif length is not None:
            framing = b"Content-Length: %d\r\n" % length
        else:
            framing = b"Transfer-Encoding: chunked\r\n"
        if forward is not None:
            # To a forwarding proxy: the absolute URL, and the proxy's own credentials.
            line = encode_request_line(method, u.text)
            if forward.auth:
                framing += b"Proxy-Authorization: %s\r\n" % forward.auth.encode("ascii")
        else:
            line = u.request_lines.get(method)
            if line is None:
                line = u.request_lines[method] = encode_request_line(method, u.target)
        return line + (host_line or u.host_line) + block + framing + b"\r\n", length

    async def _write_request(self, conn: HTTPConnection, head: bytes, body: Any,
                             length: int | None, deadline: Deadline) -> None:
        wt = deadline.timeout.write
        if body is None:
            conn.write(head)
        elif isinstance(body, bytes):
            if len(body) <= _WRITE_PIECE:
                conn.writelines([head, body])
            else:
                conn.write(head)
                view = memoryview(body)
                for i in range(0, len(body), _WRITE_PIECE):
                    conn.write(view[i:i + _WRITE_PIECE])  # type: ignore[arg-type]
                    await self._drain(conn, deadline, wt)
        else:
            conn.write(head)
            sent = 0
            async for piece in _pieces(body):
                if length is None:
                    conn.writelines(encode_chunk(piece))
                else:
                    sent += len(piece)
                    if sent > length:
                        raise LocalProtocolError(
                            f"the streamed body is longer than its Content-Length: {length}")
                    conn.write(piece)
                await self._drain(conn, deadline, wt)
            if length is None:
                conn.write(LAST_CHUNK)
            elif sent != length:
                raise LocalProtocolError(f"the streamed body ended after {sent} bytes, short "
                                         f"of its Content-Length: {length}")
        await self._drain(conn, deadline, wt)

    @staticmethod
    async def _drain(conn: HTTPConnection, deadline: Deadline, wt: float | None) -> None:
        if conn.write_paused:
            t, by_total = deadline.budget(wt)
            await conn.drain(t, lambda: deadline.message(
                f"sending the request to {conn.origin[1]}", t, by_total))


async def _pieces(body: Any) -> AsyncIterator[bytes]:
    """The non-empty pieces of a streamed request body, sync or async iterable."""
    if hasattr(body, "__aiter__"):
        async for piece in body:
            if piece:
                yield bytes(piece)
    else:
        for piece in body:
            if piece:
                yield bytes(piece)


def _header_block(items: list[tuple[str, str]]) -> tuple[bytes, bytes | None, int | None, bool]:
    """Encode the caller's headers, less the framing ones, which are checked and returned
    apart: (header lines, the caller's Host line or None, its Content-Length or None,
    whether it asked for chunked). Refuses what no body could agree with."""
    hosts: list[str] = []
    lengths: set[str] = set()
    codings: list[str] = []
    rest: list[tuple[str, str]] = []
    for name, value in items:
        lname = name.lower()
        if lname not in _FRAMING:
            rest.append((name, value))
        elif lname == "host":
            hosts.append(value)
        elif lname == "content-length":
            lengths.update(v.strip() for v in value.split(","))
        else:
            codings += (c.strip().lower() for c in value.split(",") if c.strip())
    block = encode_header_lines(rest)
    if len(hosts) > 1:
        raise LocalProtocolError(f"more than one Host header given: {hosts!r}")
    host_line = encode_header_lines((("Host", hosts[0]),)) if hosts else None
    length = None
    if lengths:
        if len(lengths) > 1 or not all(_DIGITS.fullmatch(v) for v in lengths):
            raise LocalProtocolError(f"invalid Content-Length given: {sorted(lengths)!r}")
        length = int(lengths.pop())
    if codings and codings != ["chunked"]:
        raise LocalProtocolError(
            f"Transfer-Encoding {', '.join(codings)!r} cannot be sent: the client frames "
            "the body itself (chunked for an iterable body)")
    if codings and length is not None:
        raise LocalProtocolError("both Content-Length and Transfer-Encoding were given; "
                                 "a request has one or the other")
    return block, host_line, length, bool(codings)

