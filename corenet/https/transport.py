"""Transports: what turns a Request into a Response. `AsyncBaseTransport` is the interface
(httpx's): `handle_async_request(request) -> Response`, `aclose()`. `AsyncHTTPTransport` is
the network: HTTP/1.1 over TCP or TLS, HTTP/2 over TLS when asked (`http2=True`) and the
server takes it, a keep-alive pool, proxies. The client calls its `send_request` directly
(the URL already parsed, the deadline running); `handle_async_request` is the same path for
a caller holding only a Request. The transport never looks at the protocol: every
connection's `send` writes the request its own way and returns a response stream."""
from __future__ import annotations

import asyncio
import copy
import os
import ssl
import weakref
from functools import partial
from typing import Any, Awaitable, Callable, Iterable

from .connection import HTTPConnection, Resendable
from .deadline import Deadline
from .errors import (ConnectError, ConnectTimeout, LocalProtocolError, TLSError,
                     UnsupportedProtocol)
from .exchange import check_request, encode_header_lines
from .headers import Headers
from .limits import DEFAULT_LIMITS, Limits
from .models import Request, Response
from .pool import Origin, Pool, connection_over
from .portal import Portal
from .proxy import Mount, Proxy, environment_mounts
from .resolve import resolve_host
from .network import open_stream
from .timeout import DEFAULT_TIMEOUT, Timeout
from .urls import URL, basic_auth, default_port, encode_params

UNSET: Any = object()
#: The URL schemes the transport sends requests to
SCHEMES = ("http", "https")
_CACHE_SIZE = 512
# Sends of one request at most: a connection may report it Resendable (HTTP/1.1: a kept-alive
# connection closed under an idempotent request; HTTP/2: a GOAWAY or REFUSED_STREAM, or no
# answer to a PING) and it goes again on another.
_ATTEMPTS = 4
# The pause before the second connection attempt of `retries=`, doubled for each next one
# (httpx's, through httpcore).
RETRY_BACKOFF = 0.5


def make_ssl_context(verify: bool | str | ssl.SSLContext = True,
                     cert: Any = None, http2: bool = False,
                     http1: bool = True) -> ssl.SSLContext:
    """One context per transport: building one loads the CA store (milliseconds), and
    sharing it is what lets sessions resume across connections. `verify`: True (the
    system's CAs), False (no verification), a CA file path, or your own SSLContext, used
    as is but for its ALPN protocols, which are set from `http2` and `http1` as httpx
    sets them on a context it is given. `cert`, a client certificate as httpx takes it: a path to a PEM file holding
    the certificate and its key, or (certificate, key) or (certificate, key, password).
    `http2`: offer h2 before http/1.1 in ALPN; `http1=False`: offer h2 alone."""
    alpn = (["h2"] if http2 else []) + (["http/1.1"] if http1 else [])
    if isinstance(verify, ssl.SSLContext):
        if cert is not None:
            raise ValueError("cert= cannot be added to an SSLContext given as verify=: "
                             "load it there (context.load_cert_chain)")
        try:
            verify.set_alpn_protocols(alpn)
        except NotImplementedError:
            if http2:
                raise ValueError("http2=True needs ALPN, which this SSLContext's OpenSSL "
                                 "does not offer") from None
        return verify  # its other settings are the caller's
    if verify is True:
        ctx = ssl.create_default_context()
    elif verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str) and os.path.isdir(verify):  # hashed CA files (capath)
        ctx = ssl.create_default_context(capath=verify)
    elif isinstance(verify, str):
        ctx = ssl.create_default_context(cafile=verify)
    else:
        raise TypeError("verify must be True, False, a CA file path or an ssl.SSLContext")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(alpn)
    if cert is not None:
        if isinstance(cert, (str, bytes)) or hasattr(cert, "__fspath__"):
            ctx.load_cert_chain(cert)
        elif isinstance(cert, tuple) and len(cert) in (2, 3):
            ctx.load_cert_chain(cert[0], cert[1], *(cert[2:]))
        else:
            raise TypeError("cert must be a path, (certificate, key) or "
                            "(certificate, key, password)")
    return ctx


def create_ssl_context(verify: bool | str | ssl.SSLContext = True, cert: Any = None,
                       trust_env: bool = True) -> ssl.SSLContext:
    """httpx's `create_ssl_context`: :func:`make_ssl_context` for `verify` and `cert`.
    `trust_env` is taken for httpx's signature: the system's store is read through
    OpenSSL, which honours SSL_CERT_FILE and SSL_CERT_DIR either way."""
    return make_ssl_context(verify, cert)


class ParsedURL:
    """A request URL taken apart once: its origin, target, Host header and request lines
    (by method), kept by the client for URLs it sees again. Any scheme (a transport mounted
    for ``custom://`` takes its own); the network transport speaks http and https only."""

    __slots__ = ("scheme", "host", "port", "target", "origin", "host_header", "text",
                 "host_line", "auth", "url", "request_lines", "fragment")

    def __init__(self, url: "URL | str", params: Any = None) -> None:
        given = url if isinstance(url, URL) else URL(url)
        scheme, host, port = given.scheme, given.raw_host.decode("ascii"), given.port
        if not scheme:  # httpx's words and exception
            raise UnsupportedProtocol("Request URL is missing an 'http://' or 'https://' "
                                      "protocol.")
        if not host:  # httpcore's words for a URL without a host as well
            raise UnsupportedProtocol("Request URL is missing an 'http://' or 'https://' "
                                      "protocol.")
        self.scheme = scheme
        self.host = host
        self.port = port or default_port(scheme) or 0
        extra = encode_params(params) if params else ""
        if extra:  # after the URL's own query, as requests and httpx before 0.28 add them
            query = given.query.decode("ascii")
            given = URL(given, query=(f"{query}&{extra}" if query else extra).encode("ascii"))
        self.target = target = given.raw_path.decode("ascii")
        self.host_header = given.netloc.decode("ascii")
        self.host_line = encode_header_lines((("Host", self.host_header),))
        self.origin: Origin = (scheme, host, self.port)
        self.text = f"{scheme}://{self.host_header}{target}"
        # The fragment is never sent; the request's URL keeps it, as httpx's does.
        self.fragment = given.fragment
        self.url = given
        self.request_lines: dict[str, bytes] = {}  # by method, validated once
        self.auth = basic_auth(given.username, given.password) if given.userinfo else None

    def with_target(self, target: "str | bytes") -> "ParsedURL":
        """This URL with another request target (path and query), sent as it is: a
        request's ``extensions["target"]`` (httpcore's), such as a path whose dot segments
        are kept. ASCII, without controls or spaces (LocalProtocolError)."""
        text = target.decode("ascii", "replace") if isinstance(target, bytes) else target
        if not text or not text.isascii() or any(c <= " " or c == "\x7f" for c in text):
            raise LocalProtocolError(f"invalid request target {target!r}")
        u = copy.copy(self)
        u.target = text
        u.text = f"{self.scheme}://{self.host_header}{text}"
        u.request_lines = {}
        return u


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


async def _read_whole(sending: Awaitable[Response]) -> Response:
    """The response, its body read (so that it can leave the loop it came on)."""
    resp = await sending
    await resp.aread()
    return resp


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
    uses by default; with `http2=True`, HTTP/2 to https origins that take it in ALPN; with
    `http2=True, http1=False` (as httpx), HTTP/2 only: h2 alone in ALPN (and spoken even
    to a server that chooses no protocol), and for http:// with prior knowledge (h2c,
    RFC 9113 3.3). `verify` and `cert` make the TLS context (see make_ssl_context);
    `proxy` sends every request through that proxy, else `trust_env` takes it from the
    environment; `proxy_mounts` (corenet's) picks a proxy, or none, per URL pattern
    within this one pool; `connect_to` maps a URL's (host, port) to the (host, port) to
    connect to instead (curl's --connect-to), the URL's host still named in TLS and Host.
    `limits` bounds the pool and what a server can push. A request's extensions may ask
    for an HTTP/1.0 request (``"http_version": b"HTTP/1.0"``, over HTTP/1 only, the
    connection closed after it) or name its target as sent (``"target"``, httpcore's).""" 

    def __init__(
        self, *, verify: bool | str | ssl.SSLContext = True, cert: Any = None,
        limits: Limits = DEFAULT_LIMITS, proxy: URL | str | Proxy | None = None,
        trust_env: bool = True, resolver: Any = None, reuse_tls_sessions: bool = True,
        max_connections: int | None = None, max_keepalive: int | None = None,
        keepalive_expiry: float | None | object = UNSET,
        proxy_mounts: "list[Mount] | None" = None, http2: bool = False, http1: bool = True,
        retries: int = 0, uds: str | None = None, local_address: str | None = None,
        socket_options: "Iterable[tuple] | None" = None,
        connect_to: "Callable[[str, int], tuple[str, int]] | None" = None,
    ) -> None:
        if not (http1 or http2):
            raise ValueError("http1=False leaves no protocol unless http2=True")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, not {retries}")
        # Connection attempts made again after a ConnectError or ConnectTimeout, as httpx's
        # transports make them: the first at once, then after 0.5 s, 1 s, 2 s...
        self.retries = retries
        # httpx's: every connection goes to this Unix socket (a Docker or systemd API, say),
        # the URL still naming the host for Host and TLS; or is made from this address.
        self.uds = uds
        self.local_address = local_address
        # curl's --connect-to: (host, port) of a URL -> the (host, port) looked up and
        # connected to instead, the URL's host still the one TLS and Host name (no proxy).
        self.connect_to = connect_to
        # setsockopt arguments, (level, option, value) or (level, option, None, length),
        # applied to each socket before it connects.
        self.socket_options = None if socket_options is None else [tuple(o) for o in
                                                                   socket_options]
        for option in self.socket_options or ():
            if len(option) not in (3, 4):
                raise ValueError(f"a socket option is (level, option, value), not {option!r}")
        self._ssl = make_ssl_context(verify, cert, http2, http1)
        self.http2 = http2
        self.http1 = http1
        # The connection kind a stream becomes once it is up (by ALPN).
        self._connection_over = partial(connection_over, http1=http1, http2=http2)
        self.resolver = resolver
        self.limits = limits
        self._proxy = proxy if proxy is None or isinstance(proxy, Proxy) else Proxy(proxy)
        # The proxy, or none, per URL pattern: the client's mounts of proxies, and where no
        # proxy= is given, the environment's (those of a pattern a mount names left out),
        # the more specific first; proxy= where none matches.
        mounts = [m for m in proxy_mounts or () if m.transport is None]
        if trust_env and proxy is None:
            named = {m.pattern for m in proxy_mounts or ()}
            mounts = sorted(mounts + [m for m in environment_mounts()
                                      if m.pattern not in named],
                            key=lambda m: m.pattern.priority)
        self._mounts = mounts
        self._proxy_cache: dict[Origin, Proxy | None] = {}
        # The pool's limits come from `limits` (httpx's names) unless given here.
        if max_connections is None:
            max_connections = limits.max_connections
        if max_keepalive is None:
            max_keepalive = limits.max_keepalive_connections
        if keepalive_expiry is UNSET:
            keepalive_expiry = limits.keepalive_expiry
        self.pool = Pool(1 << 30 if max_connections is None else max_connections,
                         1 << 30 if max_keepalive is None else max_keepalive,
                         keepalive_expiry, reuse_tls_sessions)  # type: ignore[arg-type]
        self.pool.http2 = http2
        self._addr_cache: dict[tuple[str, int], tuple[float, list[str]]] = {}
        # Shared by this transport's connections: each is filled and fully parsed inside
        # one loop callback, so no two connections ever hold them at once.
        self._read_buffer = bytearray(256 * 1024)
        self._recv_buffer = bytearray(256 * 1024)
        self._portal: Portal | None = None  # the private loop of sync calls, once made

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return self._ssl

    async def aclose(self) -> None:
        portal = self._portal
        if portal is not None and asyncio.get_running_loop() is not portal.loop:
            # Made for sync calls, closed by an async caller: the pool is the private loop's.
            await asyncio.get_running_loop().run_in_executor(None, self.close)
            return
        await self.pool.aclose()

    # ---- httpx's sync HTTPTransport: this class is also https.HTTPTransport ----
    def handle_request(self, request: Request) -> Response:
        """Send `request` from a thread that runs no event loop (a sync transport of
        httpx's kind that wraps this one), on a private loop of the transport's own in a
        thread; the response comes with its body read, within the limits. A transport
        called so is for sync calls only: its connections live on that private loop."""
        portal = self._portal
        if portal is None:
            if self.pool.open_count:
                raise RuntimeError("this transport already serves an event loop: give the "
                                   "sync caller a transport of its own")
            portal = self._portal = Portal(on_fork=self.pool.forget_after_fork)
            self._portal_finalizer = weakref.finalize(self, portal.stop)
        elif not self._portal_finalizer.alive:
            raise RuntimeError("the transport is closed")
        return portal.run(_read_whole(self.handle_async_request(request)))

    def close(self) -> None:
        """httpx's HTTPTransport.close(): the connections that sync calls made, and their
        private loop."""
        portal = self._portal
        if portal is None or not self._portal_finalizer.alive:
            return
        try:
            portal.run(self.aclose())
        finally:
            self._portal_finalizer()

    def __enter__(self) -> "AsyncHTTPTransport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def handle_async_request(self, request: Request) -> Response:
        """Send `request`, return the response with its body left to read. The timeout is
        `request.extensions["timeout"]` (a Timeout, or httpx's dict of connect, read,
        write and pool), else DEFAULT_TIMEOUT."""
        t = request.extensions.get("timeout")
        deadline = Deadline(asyncio.get_running_loop(),
                            DEFAULT_TIMEOUT if t is None else Timeout.coerce(t))
        return await self.send_request(request, ParsedURL(request.url), deadline, True)

    def _proxy_for(self, u: ParsedURL) -> Proxy | None:
        """The proxy for `u`'s origin: the most specific matching mount, else `proxy=`,
        else the environment's."""
        try:
            return self._proxy_cache[u.origin]
        except KeyError:
            pass
        if len(self._proxy_cache) >= _CACHE_SIZE:
            self._proxy_cache.clear()
        for mount in self._mounts:
            if mount.matches(u.scheme, u.host, u.port):
                proxy = mount.proxy
                break
        else:
            proxy = self._proxy
        self._proxy_cache[u.origin] = proxy
        return proxy

    async def _connect(self, u: ParsedURL, deadline: Deadline,
                       proxy: Proxy | None) -> HTTPConnection:
        loop = asyncio.get_running_loop()
        t, by_total = deadline.budget(deadline.timeout.connect)
        if proxy is not None:
            key = (proxy.host, proxy.port)
        elif self.connect_to is not None:
            key = self.connect_to(u.host, u.port)
        else:
            key = (u.host, u.port)

        async def go() -> HTTPConnection:
            cached = self._addr_cache.get(key)
            if self.uds is not None:
                addrs: list[str] = []
            elif cached is not None and cached[0] > loop.time():
                addrs = cached[1]
            else:
                addrs, ttl = await resolve_host(key[0], key[1], self.resolver)
                if ttl > 0:
                    if len(self._addr_cache) >= _CACHE_SIZE:
                        self._addr_cache.clear()
                    self._addr_cache[key] = (loop.time() + ttl, addrs)
            try:
                return await open_stream(
                    loop, u.origin, addrs, self._ssl if u.scheme == "https" else None,
                    self.pool.session_for(u.origin), self.limits, None, "",
                    self._read_buffer, self._recv_buffer, proxy,
                    self._ssl if proxy is not None and proxy.scheme == "https" else None,
                    self._connection_over,
                    self.uds, self.local_address, self.socket_options,
                    key[1] if proxy is None else None)
            except ConnectError:
                self._addr_cache.pop(key, None)  # look the name up afresh next time
                raise

        retries = self.retries
        pause = 0.0
        while True:
            try:
                if t is None:
                    return await go()
                try:
                    async with asyncio.timeout(t):
                        return await go()
                except TimeoutError:
                    via = ("" if proxy is None else
                           f" through the proxy {proxy.host} port {proxy.port}")
                    raise ConnectTimeout(deadline.message(
                        f"connecting to {u.host} port {u.port}{via}", t, by_total)) from None
            except TLSError:
                raise  # a handshake that failed, or a certificate refused, would again
            except (ConnectError, ConnectTimeout):
                if retries <= 0:
                    raise
                wait, ends = deadline.budget(pause)
                if ends and not wait:
                    raise  # nothing left of the total timeout to try again in
                retries -= 1
                if wait:
                    await asyncio.sleep(wait)
                pause = pause * 2 if pause else RETRY_BACKOFF
                t, by_total = deadline.budget(deadline.timeout.connect)

    def _acquire(self, u: ParsedURL, deadline: Deadline, proxy: Proxy | None,
                 fresh: bool) -> Awaitable[tuple[Any, bool]]:
        """(connection, reused) from the pool once it has one for `u` (`fresh`: a new one
        only), within the deadline's pool timeout."""
        t, by_total = deadline.budget(deadline.timeout.pool)
        return self.pool.acquire(
            u.origin, lambda: self._connect(u, deadline, proxy), t,
            lambda: deadline.message(f"waiting for a free connection to {u.host}", t,
                                     by_total),
            fresh=fresh)

    async def send_request(self, req: Request, u: ParsedURL, deadline: Deadline,
                           stream: bool) -> Response:
        """Send `req` to `u` (its URL, already parsed) within `deadline`; the response
        comes back once its head has (its body too when not `stream` and it is all here).
        The pool hands out a connection, HTTP/1.1 or HTTP/2 alike, whose `send` returns
        the response stream; a request the connection reports Resendable goes again on
        another connection, as long as its body can be sent again."""
        if u.scheme not in SCHEMES:
            raise UnsupportedProtocol(f"Request URL has an unsupported protocol "
                                      f"'{u.scheme}://'.")
        loop = deadline.loop
        ext = req._extensions
        if ext and "target" in ext:  # httpcore's: the request target as given
            u = u.with_target(ext["target"])
        portal = self._portal
        if portal is not None and loop is not portal.loop:
            raise RuntimeError("this transport serves sync calls (handle_request) on a loop "
                               "of its own: give the async caller a transport of its own")
        started = loop.time()
        body = req.body
        proxy = self._proxy
        if self._mounts:
            proxy = self._proxy_for(u)
        forward = proxy if proxy is not None and u.scheme == "http" and not proxy.socks \
            else None
        if forward is not None and not self.http1:
            raise UnsupportedProtocol(
                f"{u.text}: with http1=False an http:// URL is spoken HTTP/2 with prior "
                f"knowledge, which a forwarding proxy ({forward.host}) does not carry")
        # Checked before any connection is made for it.
        fields = check_request(req.method, req.headers.frozen(), body)
        replayable = body is None or body.__class__ is bytes
        pool = self.pool
        fresh = False
        for attempt in range(_ATTEMPTS):
            pooled = None if fresh else pool.take(u.origin)
            if pooled is not None:
                conn, reused = pooled, True
            else:
                conn, reused = await self._acquire(u, deadline, proxy, fresh)
            try:
                rs = await conn.send(req, fields, u, forward, deadline, stream, reused)
            except Resendable as exc:
                pool.release(conn, False)
                if attempt + 1 < _ATTEMPTS and (replayable or not exc.needs_body):
                    fresh = exc.fresh or attempt > 0
                    continue
                raise exc.error from None
            except BaseException:
                pool.release(conn, conn.idle)
                raise
            break
        rhead = rs.head
        assert rhead is not None  # send returns once the head has come
        resp = Response.from_head(rhead, req, rs.response_extensions(reused), started,
                                  loop.time, self.limits)
        if not stream:
            whole = rs.take_whole()
            if whole is not None:
                # The common small response: already all here, read and closed now.
                complete = False
                try:
                    resp.take_body(whole)
                    complete = True
                finally:
                    _exchange_over(rs, resp, pool, conn, complete)
                return resp
        _attach_body(resp, rs, deadline, pool, conn)
        return resp


def _attach_body(resp: Response, rs: Any, deadline: Deadline, pool: Pool, conn: Any) -> None:
    """The body of `resp` (the response of the stream `rs`, on `conn`) read as it comes."""
    async def chunks(streaming: bool = True, partial: bool = False) -> list[bytes]:
        return await rs.read_body(deadline, streaming, partial)

    def on_close(complete: bool) -> None:
        _exchange_over(rs, resp, pool, conn, complete)

    resp.attach_stream(chunks, on_close)


def _exchange_over(rs: Any, resp: Response, pool: Pool, conn: Any, complete: bool) -> None:
    """The response is closed (`complete`: its body was read to the end): end the
    exchange and give the connection back, to be kept when it may carry another."""
    ended = rs.finish()
    if ended and rs.trailers is not None:
        resp.extensions["trailers"] = Headers.from_raw(rs.trailers)
    pool.release(conn, complete and ended)
