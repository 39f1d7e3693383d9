"""The Client: URLs and headers in, Responses out, over the pool; redirects and retries."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json as _json
import ssl
from typing import Any, AsyncIterator, Iterable, Mapping
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit

from .connection import HTTPConnection, _Closed, open_connection
from .decoder import Decoder
from .deadline import Deadline
from .errors import (
    ConnectError, ConnectTimeout, InvalidURL, RemoteProtocolError, StreamConsumed,
    TooManyRedirects,
)
from .exchange import (
    LAST_CHUNK, ConnectionClosedEarly, encode_chunk, encode_header_lines, encode_request_line,
)
from .headers import Headers, HeaderTypes
from .limits import DEFAULT_LIMITS, Limits
from .models import Request, Response
from .pool import Origin, Pool
from .resolve import resolve_host
from .timeout import Timeout

USER_AGENT = "corenet-https/0.1"
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"https": 443, "http": 80}
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_WRITE_PIECE = 256 * 1024
_URL_CACHE_SIZE = 512


def make_ssl_context(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext:
    """One context per Client: building one loads the CA store (milliseconds), and sharing
    it is what lets sessions resume across connections."""
    if isinstance(verify, ssl.SSLContext):
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
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class _URL:
    __slots__ = ("scheme", "host", "port", "target", "origin", "host_header", "text",
                 "host_line", "auth")

    def __init__(self, url: str, params: Any = None) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidURL(f"invalid URL {url!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise InvalidURL(f"unsupported URL scheme {parts.scheme!r} in {url!r} "
                             "(only https and http)")
        host = parts.hostname
        if not host:
            raise InvalidURL(f"no host in URL {url!r}")
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise InvalidURL(f"invalid host name in {url!r}: {exc}") from None
        self.scheme = scheme
        self.host = host
        self.port = port or _DEFAULT_PORTS[scheme]
        path = quote(parts.path or "/", safe=_PATH_SAFE)
        query = quote(parts.query, safe=_QUERY_SAFE)
        if params:
            extra = urlencode(params, doseq=True)
            query = f"{query}&{extra}" if query else extra
        self.target = f"{path}?{query}" if query else path
        hh = f"[{host}]" if ":" in host else host
        self.host_header = hh if port is None else f"{hh}:{port}"
        self.host_line = encode_header_lines((("Host", self.host_header),))
        self.origin: Origin = (scheme, host, self.port)
        self.text = f"{scheme}://{self.host_header}{self.target}"
        self.auth: str | None = None
        if parts.username is not None:
            # user:password@ in the URL means Basic auth (and never goes on the wire as is)
            cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.auth = "Basic " + base64.b64encode(cred.encode()).decode("ascii")


class Client:
    """An HTTP/1.1 client over TLS with a keep-alive pool, for any asyncio loop.

    `async with Client() as client: r = await client.get("https://example.org/")`
    """

    def __init__(
        self, *, verify: bool | str | ssl.SSLContext = True, resolver: Any = None,
        timeout: Timeout | float | None = Timeout(), max_connections: int = 100,
        max_keepalive: int = 20, keepalive_expiry: float | None = 5.0,
        follow_redirects: bool = True, max_redirects: int = 10, headers: HeaderTypes = None,
        limits: Limits = DEFAULT_LIMITS, reuse_tls_sessions: bool = True,
    ) -> None:
        self._ssl = make_ssl_context(verify)
        self.resolver = resolver
        self.timeout = Timeout.coerce(timeout)
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.headers = Headers({"User-Agent": USER_AGENT, "Accept": "*/*",
                                "Accept-Encoding": "gzip, deflate"})
        if headers:
            self.headers.update(headers)
        self.limits = limits
        self.pool = Pool(max_connections, max_keepalive, keepalive_expiry, reuse_tls_sessions)
        self._addr_cache: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._url_cache: dict[str, _URL] = {}
        self._block_cache: dict[tuple, bytes] = {}
        # Shared by this client's connections: each is filled and fully parsed inside one
        # loop callback, so no two connections ever hold them at once.
        self._read_buffer = bytearray(256 * 1024)
        self._recv_buffer = bytearray(256 * 1024)

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return self._ssl

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.pool.aclose()

    # ---- the verbs ----
    async def get(self, url: str, **kw: Any) -> Response:
        return await self.request("GET", url, **kw)

    async def head(self, url: str, **kw: Any) -> Response:
        return await self.request("HEAD", url, **kw)

    async def options(self, url: str, **kw: Any) -> Response:
        return await self.request("OPTIONS", url, **kw)

    async def delete(self, url: str, **kw: Any) -> Response:
        return await self.request("DELETE", url, **kw)

    async def post(self, url: str, **kw: Any) -> Response:
        return await self.request("POST", url, **kw)

    async def put(self, url: str, **kw: Any) -> Response:
        return await self.request("PUT", url, **kw)

    async def patch(self, url: str, **kw: Any) -> Response:
        return await self.request("PATCH", url, **kw)

    async def request(
        self, method: str, url: str, *, params: Any = None, headers: HeaderTypes = None,
        content: bytes | str | AsyncIterator[bytes] | Iterable[bytes] | None = None,
        data: Mapping[str, Any] | None = None, json: Any = None,
        timeout: Timeout | float | None | object = ..., follow_redirects: bool | None = None,
    ) -> Response:
        """Send a request and read the whole response body."""
        return await self._request(method, url, params, headers, content, data, json,
                                   timeout, follow_redirects, stream=False)

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str, **kw: Any) -> AsyncIterator[Response]:
        """`async with client.stream("GET", url) as r: async for chunk in r.aiter_bytes()`."""
        fr = kw.pop("follow_redirects", None)
        to = kw.pop("timeout", ...)
        r = await self._request(method, url, kw.pop("params", None), kw.pop("headers", None),
                                kw.pop("content", None), kw.pop("data", None),
                                kw.pop("json", None), to, fr, stream=True, **kw)
        try:
            yield r
        finally:
            await r.aclose()

    # ---- internals ----
    async def _request(self, method: str, url: str, params: Any, headers: HeaderTypes,
                       content: Any, data: Any, json: Any, timeout: Any,
                       follow_redirects: bool | None, stream: bool) -> Response:
        method = method.upper()
        loop = asyncio.get_running_loop()
        deadline = Deadline(loop, self.timeout if timeout is ... else Timeout.coerce(timeout))
        follow = self.follow_redirects if follow_redirects is None else follow_redirects
        body, body_headers = _encode_body(content, data, json)
        if headers or body_headers:
            merged = self.headers.copy()
            if headers:
                given = Headers(headers)
                for k in given.keys():
                    if k in merged:
                        del merged[k]
                for k, v in given.multi_items():
                    merged.add(k, v)
            for k, v in body_headers:
                if k not in merged:
                    merged[k] = v
        else:
            merged = self.headers  # read-only below; copied before any change
        if params:
            u = _URL(url, params)
        else:
            u = self._url_cache.get(url)  # type: ignore[assignment]
            if u is None:
                u = _URL(url)
                if len(self._url_cache) >= _URL_CACHE_SIZE:
                    self._url_cache.clear()
                self._url_cache[url] = u
        history: list[Response] = []
        while True:
            if u.auth is not None and "authorization" not in merged:
                merged = merged.copy()
                merged["Authorization"] = u.auth
            req = Request(method, u.text, merged, body)
            resp = await self._send(req, u, deadline, stream)
            if not (follow and resp.status_code in _REDIRECTS and "location" in resp.headers):
                if not stream and resp._content is None:
                    await resp.aread()
                resp.history = history
                return resp
            await resp.aread()  # small; frees the connection for the next hop
            history.append(resp)
            if len(history) > self.max_redirects:
                raise TooManyRedirects(
                    f"more than {self.max_redirects} redirects starting from {url!r} "
                    f"(last: {resp.url} -> {resp.headers['location']})")
            next_url = urljoin(u.text, resp.headers["location"])
            nu = _URL(next_url)
            code = resp.status_code
            if code == 303 and method != "HEAD" or code in (301, 302) and method == "POST":
                method = "GET"
                body = None
                merged = merged.copy()
                for h in ("content-length", "content-type", "transfer-encoding"):
                    merged.pop(h)
            elif body is not None and not isinstance(body, bytes):
                raise StreamConsumed(
                    f"{code} redirect needs the request body again, but it was a stream")
            if nu.origin != u.origin and "authorization" in merged:
                merged = merged.copy()
                del merged["authorization"]
            u = nu

    async def _connect(self, u: _URL, deadline: Deadline) -> HTTPConnection:
        loop = asyncio.get_running_loop()
        t, by_total = deadline.budget(deadline.timeout.connect)
        msg = deadline.message(f"connecting to {u.host} port {u.port}", t, by_total)
        key = (u.host, u.port)

        async def go() -> HTTPConnection:
            cached = self._addr_cache.get(key)
            if cached is not None and cached[0] > loop.time():
                addrs = cached[1]
            else:
                addrs, ttl = await resolve_host(u.host, u.port, self.resolver)
                if ttl > 0:
                    if len(self._addr_cache) >= _URL_CACHE_SIZE:
                        self._addr_cache.clear()
                    self._addr_cache[key] = (loop.time() + ttl, addrs)
            try:
                return await open_connection(
                    loop, u.origin, addrs, self._ssl if u.scheme == "https" else None,
                    self.pool.session_for(u.origin), self.limits, None, msg,
                    self._read_buffer, self._recv_buffer)
            except ConnectError:
                self._addr_cache.pop(key, None)  # look the name up afresh next time
                raise

        if t is None:
            return await go()
        try:
            async with asyncio.timeout(t):
                return await go()
        except TimeoutError:
            raise ConnectTimeout(msg) from None

    async def _send(self, req: Request, u: _URL, deadline: Deadline, stream: bool) -> Response:
        loop = asyncio.get_running_loop()
        started = loop.time()
        head = self._encode_head(req.method, u, req.headers)
        body = req.content
        retry_ok = req.method in _IDEMPOTENT and (body is None or isinstance(body, bytes))
        pool = self.pool
        fresh = False
        for attempt in (0, 1):
            t, by_total = deadline.budget(deadline.timeout.pool)
            conn, reused = await pool.acquire(
                u.origin, lambda: self._connect(u, deadline), t,
                lambda: deadline.message(f"waiting for a free connection to {u.host}", t,
                                         by_total),
                fresh=fresh)
            conn.start(req.method)
            try:
                await self._write_request(conn, head, body, deadline)
                rhead = await conn.read_head(deadline)
            except (ConnectionClosedEarly, _Closed) as exc:
                pool.release(conn, False)
                if attempt == 0 and reused and retry_ok and not conn.response_started:
                    fresh = True
                    continue
                if isinstance(exc, _Closed):
                    raise RemoteProtocolError(
                        f"{u.host} closed the connection before the request was sent") from None
                raise
            except BaseException:
                pool.release(conn, False)
                raise
            break
        resp = Response(rhead.status_code, reason=rhead.reason,
                        http_version=rhead.http_version, raw_headers=rhead.headers,
                        request=req)
        resp._started_at = started
        resp.extensions = {"ssl_object": conn.ssl_object, "connection_reused": reused}
        resp._clock = loop.time
        ce = rhead.content_encoding
        if ce:
            dec = Decoder(ce.decode("latin-1"), self.limits.max_body_bytes)
            resp._decoder = dec if dec else None

        async def chunks(streaming: bool = True) -> list[bytes]:
            return await conn.read_body(deadline, streaming)

        def on_close(complete: bool) -> None:
            pool.release(conn, complete and conn.finish())

        resp._chunks = chunks
        resp._on_close = on_close
        if not stream and conn._complete:
            await resp.aread()  # the common small response: already all here
        return resp

    def _encode_head(self, method: str, u: _URL, headers: Headers) -> bytes:
        """Request line + Host + headers. The header block is validated and encoded once
        per distinct set of headers (the client's defaults, usually) and then reused."""
        key = tuple(headers._items)
        block = self._block_cache.get(key)
        if block is None:
            block = encode_header_lines(headers._items) + b"\r\n"
            if len(self._block_cache) >= 64:
                self._block_cache.clear()
            self._block_cache[key] = block
        return encode_request_line(method, u.target) + u.host_line + block

    async def _write_request(self, conn: HTTPConnection, head: bytes, body: Any,
                             deadline: Deadline) -> None:
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
            if hasattr(body, "__aiter__"):
                async for piece in body:
                    if piece:
                        conn.writelines(encode_chunk(bytes(piece)))
                        await self._drain(conn, deadline, wt)
            else:
                for piece in body:
                    if piece:
                        conn.writelines(encode_chunk(bytes(piece)))
                        await self._drain(conn, deadline, wt)
            conn.write(LAST_CHUNK)
        await self._drain(conn, deadline, wt)

    @staticmethod
    async def _drain(conn: HTTPConnection, deadline: Deadline, wt: float | None) -> None:
        if conn._write_paused:
            t, by_total = deadline.budget(wt)
            await conn.drain(t, deadline.message(
                f"sending the request to {conn.origin[1]}", t, by_total))


def _encode_body(content: Any, data: Any, json: Any) -> tuple[Any, list[tuple[str, str]]]:
    if json is not None:
        raw = _json.dumps(json, separators=(",", ":"), ensure_ascii=False).encode()
        return raw, [("Content-Length", str(len(raw))), ("Content-Type", "application/json")]
    if data is not None:
        raw = urlencode(data, doseq=True).encode()
        return raw, [("Content-Length", str(len(raw))),
                     ("Content-Type", "application/x-www-form-urlencoded")]
    if content is None:
        return None, []
    if isinstance(content, str):
        content = content.encode()
    if isinstance(content, (bytes, bytearray, memoryview)):
        raw = bytes(content)
        return raw, [("Content-Length", str(len(raw)))]
    if hasattr(content, "__aiter__") or hasattr(content, "__iter__"):
        return content, [("Transfer-Encoding", "chunked")]
    raise TypeError(f"content must be bytes, str or an (async) iterable of bytes, "
                    f"not {type(content).__name__}")
