"""corenet under httpx: transports that httpx's own clients take, so that code and SDKs
built on httpx send their requests over corenet's pool, HTTP/1.1 exchange, HTTP/2 on
nghttp2, TLS and limits, keeping httpx's models, auth, redirects, cookies and hooks.

    import httpx
    from corenet.https.httpx_transport import AsyncCorenetTransport, CorenetTransport

    async with httpx.AsyncClient(transport=AsyncCorenetTransport(http2=True)) as client:
        r = await client.get("https://example.org/")
    with httpx.Client(transport=CorenetTransport()) as client:
        r = client.get("https://example.org/")

Each is an `httpx.AsyncHTTPTransport` (an `httpx.HTTPTransport`) whose connection pool is
corenet's: httpx's own `handle_async_request` turns the httpx.Request into httpcore's shape
and the answer into an httpx.Response with a streaming body, and maps httpcore's errors to
httpx's tree. So tools that intercept httpx's default transports (pytest-httpx; respx with
`using="httpx"`) intercept these too. The body is handed on as received (httpx decodes it),
and its size is left to the caller, as httpx leaves it.

httpx is an optional dependency: `pip install corenet-io[httpx]`."""
from __future__ import annotations

import dataclasses
import ssl
import weakref
from typing import Any, AsyncIterator, Iterable, Iterator

import httpcore
import httpx

from .errors import HTTPError, InvalidURL
from .limits import DEFAULT_LIMITS, Limits
from .models import Request, Response
from .proxy import Proxy
from .portal import Portal
from .transport import AsyncHTTPTransport

__all__ = ["AsyncCorenetTransport", "CorenetTransport"]


def _httpcore_error(exc: HTTPError) -> Exception:
    """corenet's error as httpcore's of the same name (the nearest in corenet's tree),
    which httpx maps to its own; its message kept."""
    for cls in type(exc).__mro__:
        mapped = getattr(httpcore, cls.__name__, None)
        if isinstance(mapped, type) and issubclass(mapped, Exception):
            return mapped(str(exc))
    if isinstance(exc, InvalidURL):
        return httpcore.LocalProtocolError(str(exc))
    return httpcore.ProtocolError(str(exc))


def _limits(limits: Any) -> Limits:
    """corenet's Limits from httpx's (the pool's three) or corenet's own (every bound)."""
    if isinstance(limits, Limits):
        return limits
    return dataclasses.replace(
        DEFAULT_LIMITS, max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry)


def _proxy(proxy: Any) -> Any:
    if isinstance(proxy, httpx.Proxy):
        return Proxy(str(proxy.url), auth=proxy.auth, headers=proxy.headers.raw)
    if isinstance(proxy, httpx.URL):
        return str(proxy)
    return proxy


def _request(request: httpcore.Request) -> Request:
    """httpcore's request as corenet's: the same target, headers (Host and framing
    included, as httpx wrote them) and body; httpx's timeout extension."""
    url = request.url
    target = url.target.decode("ascii")
    host = url.host.decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    port = "" if url.port is None else f":{url.port}"
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers]
    stream = request.stream
    if isinstance(stream, httpx.ByteStream):
        body: Any = b"".join(stream) or None  # one bytes object: joined without a copy
    else:
        body = stream
    timeout = request.extensions.get("timeout")
    return Request(request.method.decode("ascii"),
                   f"{url.scheme.decode('ascii')}://{host}{port}{target}", headers, body,
                   extensions=None if timeout is None else {"timeout": timeout})


def _response(resp: Response, content: Any) -> httpcore.Response:
    version = resp.http_version.encode("ascii")
    return httpcore.Response(resp.status_code, headers=resp.raw_headers or [],
                             content=content,
                             extensions={"http_version": version,
                                         "reason_phrase": resp.raw_reason})


class _AsyncBody:
    """A response's body as received, for httpx to read (and decode) as it streams."""

    def __init__(self, resp: Response) -> None:
        self._resp = resp

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.aiter_raw():
                yield chunk
        except HTTPError as exc:
            raise _httpcore_error(exc) from exc

    async def aclose(self) -> None:
        await self._resp.aclose()


class _SyncBody:
    """The same, read from a sync caller on the transport's loop."""

    def __init__(self, resp: Response) -> None:
        self._resp = resp

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._resp.iter_raw()
        except HTTPError as exc:
            raise _httpcore_error(exc) from exc

    def close(self) -> None:
        self._resp.close()


class _AsyncPool:
    """httpcore's connection-pool interface, which httpx's transport calls, over corenet's
    network transport."""

    def __init__(self, transport: AsyncHTTPTransport) -> None:
        self.transport = transport

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        try:
            resp = await self.transport.handle_async_request(_request(request))
        except HTTPError as exc:
            raise _httpcore_error(exc) from exc
        return _response(resp, _AsyncBody(resp))

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> "_AsyncPool":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


class _SyncPool:
    """httpcore's sync connection-pool interface: corenet's network transport on a
    private corenet loop in a thread of its own, as the sync Client runs it."""

    def __init__(self, transport: AsyncHTTPTransport) -> None:
        self.transport = transport
        self._portal = Portal(on_fork=transport.pool.forget_after_fork)
        self._closed = False
        self._finalizer = weakref.finalize(self, self._portal.stop)

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        try:
            resp = self._portal.run(self.transport.handle_async_request(_request(request)))
        except HTTPError as exc:
            raise _httpcore_error(exc) from exc
        resp.read_through(self._portal)
        return _response(resp, _SyncBody(resp))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._portal.run(self.transport.aclose())
        finally:
            self._finalizer()

    def __enter__(self) -> "_SyncPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _CorenetNetwork:
    """The arguments both transports take, and corenet's network transport made of them
    as the connection pool (`_pool`, the one attribute httpx's transports use)."""

    _pool_class: Any

    def __init__(self, verify: ssl.SSLContext | str | bool = True, cert: Any = None,
                 trust_env: bool = True, http1: bool = True, http2: bool = False,
                 limits: Any = DEFAULT_LIMITS, proxy: Any = None, uds: str | None = None,
                 local_address: str | None = None, retries: int = 0,
                 socket_options: "Iterable[tuple] | None" = None, *,
                 resolver: Any = None) -> None:
        # httpx's transports read no proxy from the environment (its clients do, and
        # mount transports of their own for it): neither does this one; trust_env is
        # taken for httpx's signature. httpx's own __init__ is not called: it would build
        # httpcore's pool.
        self.network = AsyncHTTPTransport(
            verify=verify, cert=cert, trust_env=False, http1=http1, http2=http2,
            limits=_limits(limits), proxy=_proxy(proxy), uds=uds, local_address=local_address,
            retries=retries, socket_options=socket_options, resolver=resolver)
        self._pool = self._pool_class(self.network)


class AsyncCorenetTransport(_CorenetNetwork, httpx.AsyncHTTPTransport):
    """For `httpx.AsyncClient(transport=...)`: httpx.AsyncHTTPTransport's arguments
    (`verify`, `cert`, `trust_env`, `http1`, `http2`, `limits` as an httpx.Limits or
    corenet's Limits, `proxy`, `uds`, `local_address`, `retries`, `socket_options`), and
    corenet's `resolver`. Requests run on the caller's event loop, any asyncio loop.
    `network` is corenet's transport underneath (its pool, TLS context and limits)."""

    _pool_class = _AsyncPool


class CorenetTransport(_CorenetNetwork, httpx.HTTPTransport):
    """For `httpx.Client(transport=...)`: the same arguments; requests run on a private
    corenet loop in a thread of its own (started here, ended by `close()`), as
    corenet.https.Client runs them, the calling thread blocking on each."""

    _pool_class = _SyncPool
