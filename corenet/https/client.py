"""The Client: URLs and headers in, Responses out, over the pool; redirects and retries."""
from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from urllib.parse import quote, urljoin

from .auth import Auth, coerce_auth
from .cache import Cache, coerce_cache, directives
from .cache import now as cache_now
from .connection import EarlyResponse, HTTPConnection, _Closed, open_connection
from .cookies import Cookies
from .deadline import Deadline
from .decoder import accept_encoding
from .errors import (
    ConnectError, ConnectTimeout, InsecureRedirect, InvalidURL, LocalProtocolError,
    RemoteProtocolError, RequestError, StreamConsumed, TooManyRedirects, UnsupportedProtocol,
    attach_request,
)
from .exchange import (
    LAST_CHUNK, ConnectionClosedEarly, encode_chunk, encode_header_lines, encode_request_line,
)
from .headers import Headers, HeaderTypes
from .limits import DEFAULT_LIMITS, Limits
from .models import Request, Response, encode_body
from .pool import Origin, Pool
from .proxy import Proxy, env_proxies, parse_mounts, proxy_from_env
from .resolve import resolve_host
from .timeout import Timeout
from .urls import (
    URL, encode_host, encode_params, merge_params, param_pairs, split_url, userinfo_auth,
)

USER_AGENT = "corenet-https/0.1"
_UNSET: Any = object()
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_UNSAFE = frozenset({"POST", "PUT", "DELETE", "PATCH"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"https": 443, "http": 80}
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_WRITE_PIECE = 256 * 1024
_URL_CACHE_SIZE = 512
# Methods whose request has a meaning for content: without a body they still say
# "Content-Length: 0" (RFC 9110 8.6), as httpx does, or servers answer 411.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Headers that say where the message is and how long it is: the client's to write.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding"})
# Credentials that must not follow a redirect to another origin.
_CREDENTIALS = ("authorization", "proxy-authorization", "cookie")
_DIGITS = re.compile(r"[0-9]+")
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


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


class Client:
    """An HTTP/1.1 client over TLS with a keep-alive pool, for any asyncio loop.

    `async with Client() as client: r = await client.get("https://example.org/")`

    Redirects are not followed unless asked (`follow_redirects=True` here or per request),
    as in httpx. When followed, Authorization, Proxy-Authorization and Cookie are dropped
    as soon as a hop leaves the origin (scheme, host, port), and a hop from https to plain
    http raises InsecureRedirect unless `allow_insecure_redirects=True`.

    `proxy="http://user:pw@host:port"` (or https:// for TLS to the proxy) sends every
    request through that proxy: a CONNECT tunnel for https URLs, forwarding for http ones.
    Without it, `trust_env` (on by default, as in httpx) takes the proxy from HTTPS_PROXY,
    HTTP_PROXY or ALL_PROXY, honouring NO_PROXY.
    """

    def __init__(
        self, *, verify: bool | str | ssl.SSLContext = True, resolver: Any = None,
        timeout: Timeout | float | None = Timeout(), max_connections: int | None = None,
        max_keepalive: int | None = None, keepalive_expiry: float | None | object = _UNSET,
        follow_redirects: bool = False, max_redirects: int = 10, headers: HeaderTypes = None,
        limits: Limits = DEFAULT_LIMITS, reuse_tls_sessions: bool = True,
        allow_insecure_redirects: bool = False, base_url: URL | str = "",
        auth: Any = None, cookies: Any = None, proxy: URL | str | None = None,
        trust_env: bool = True, cache: "bool | Cache" = False,
        mounts: "dict[str, URL | str | Proxy | None] | None" = None, params: Any = None,
        default_encoding: "str | Callable[[bytes], str | None]" = "utf-8",
    ) -> None:
        self._ssl = make_ssl_context(verify)
        self.resolver = resolver
        self.timeout = Timeout.coerce(timeout)
        self.follow_redirects = follow_redirects
        self.allow_insecure_redirects = allow_insecure_redirects
        base = str(base_url)
        if base:
            _URL(base)  # refuse a bad base now rather than at the first request
            if not base.endswith("/"):
                base += "/"
        self.base_url = URL(base)
        self.auth: Auth | None = coerce_auth(auth)
        self._cookies = Cookies(cookies)
        self.cache: Cache | None = coerce_cache(cache)
        self._proxy = Proxy(proxy) if proxy else None
        self._env_proxies = env_proxies() if trust_env and proxy is None else {}
        self._mounts = parse_mounts(mounts)
        self._env_proxy_cache: dict[Origin, Proxy | None] = {}
        self.max_redirects = max_redirects
        # Sent with every request; a request's own parameter of the same name replaces it.
        self.params = param_pairs(params)
        # The text encoding of a response without a charset: a name, or a callable given
        # the body that returns one (or None for utf-8).
        self.default_encoding = default_encoding
        self.headers = Headers({"User-Agent": USER_AGENT, "Accept": "*/*",
                                "Accept-Encoding": accept_encoding()})
        if headers:
            self.headers.update(headers)
        self.limits = limits
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
        self._addr_cache: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._url_cache: dict[str, _URL] = {}
        self._block_cache: dict[tuple, tuple[bytes, bytes | None, int | None, bool]] = {}
        # Shared by this client's connections: each is filled and fully parsed inside one
        # loop callback, so no two connections ever hold them at once.
        self._read_buffer = bytearray(256 * 1024)
        self._recv_buffer = bytearray(256 * 1024)

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return self._ssl

    @property
    def cookies(self) -> Cookies:
        """The client's cookie jar; assigning a dict, a CookieJar or Cookies replaces it."""
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._cookies = cookies if isinstance(cookies, Cookies) else Cookies(cookies)

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
        auth: Any = _UNSET, cookies: Any = None, files: Any = None,
    ) -> Response:
        """Send a request and read the whole response body.

        The client frames the body: Content-Length for bytes, str, `data=` and `json=`,
        chunked Transfer-Encoding for an iterable. A Content-Length or Transfer-Encoding
        header in `headers` is accepted only when it says the same (a Content-Length
        with an iterable makes it a stream of that exact length); one that contradicts
        the body raises LocalProtocolError before anything is sent. A Host header in
        `headers` replaces the URL's (one only)."""
        return await self._request(method, url, params, headers, content, data, json,
                                   timeout, follow_redirects, False, auth, cookies, files)

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str, **kw: Any) -> AsyncIterator[Response]:
        """`async with client.stream("GET", url) as r: async for chunk in r.aiter_bytes()`."""
        fr = kw.pop("follow_redirects", None)
        to = kw.pop("timeout", ...)
        r = await self._request(method, url, kw.pop("params", None), kw.pop("headers", None),
                                kw.pop("content", None), kw.pop("data", None),
                                kw.pop("json", None), to, fr, True, kw.pop("auth", _UNSET),
                                kw.pop("cookies", None), kw.pop("files", None), **kw)
        try:
            yield r
        finally:
            await r.aclose()

    # ---- internals ----
    def build_request(self, method: str, url: URL | str, *, params: Any = None,
                      headers: HeaderTypes = None, content: Any = None, data: Any = None,
                      json: Any = None, files: Any = None) -> Request:
        """A Request to inspect or change before `send()`, as in httpx."""
        u, merged, body = self._prepare(url, params, headers, content, data, json, files)
        return Request(method.upper(), u.url, merged.copy(), body)

    async def send(self, request: Request, *, stream: bool = False, auth: Any = _UNSET,
                   follow_redirects: bool | None = None,
                   timeout: Timeout | float | None | object = ...) -> Response:
        """Send a Request (from `build_request`); with `stream=True` the body is left to
        read, and the response must be closed (`await response.aclose()`)."""
        return await self._dispatch(request.method, _URL(str(request.url)), request.headers,
                                    request.content, timeout, follow_redirects, stream, auth,
                                    None)

    def _prepare(self, url: URL | str, params: Any, headers: HeaderTypes, content: Any,
                 data: Any, json: Any, files: Any) -> tuple["_URL", Headers, Any]:
        """(URL, headers, body) of a request: the client's headers under the caller's,
        the body encoded, the URL joined to base_url and parsed (cached)."""
        url = str(url)
        if self.base_url._text and not _ABSOLUTE.match(url):
            # httpx's rule: the path is appended to the base's, never replaces it
            url = self.base_url._text + url.lstrip("/")
        body, body_headers = encode_body(content, data, json, files)
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
        if self.params:
            params = merge_params(self.params, params)
        if params:
            u = _URL(url, params)
        else:
            u = self._url_cache.get(url)  # type: ignore[assignment]
            if u is None:
                u = _URL(url)
                if len(self._url_cache) >= _URL_CACHE_SIZE:
                    self._url_cache.clear()
                self._url_cache[url] = u
        return u, merged, body

    def _request(self, method: str, url: URL | str, params: Any, headers: HeaderTypes,
                 content: Any, data: Any, json: Any, timeout: Any,
                 follow_redirects: bool | None, stream: bool, auth: Any = _UNSET,
                 cookies: Any = None, files: Any = None) -> Awaitable[Response]:
        u, merged, body = self._prepare(url, params, headers, content, data, json, files)
        return self._dispatch(method.upper(), u, merged, body, timeout, follow_redirects,
                              stream, auth, cookies)

    def _dispatch(self, method: str, u: "_URL", merged: Headers, body: Any, timeout: Any,
                  follow_redirects: bool | None, stream: bool, auth: Any,
                  cookies: Any) -> Awaitable[Response]:
        """Everything that needs no waiting, then the coroutine that sends (one coroutine
        frame less per request than awaiting it here)."""
        loop = asyncio.get_running_loop()
        deadline = Deadline(loop, self.timeout if timeout is ... else Timeout.coerce(timeout))
        follow = self.follow_redirects if follow_redirects is None else follow_redirects
        jar = self._cookies
        if cookies:
            # This request's cookies on top of a copy of the client's; what responses set
            # still goes into the client's jar.
            jar = Cookies(jar)
            for c in (cookies if isinstance(cookies, Cookies) else Cookies(cookies)).jar:
                jar.jar.set_cookie(c)
        flow_auth = self.auth if auth is _UNSET else coerce_auth(auth)
        if flow_auth is None:
            return self._follow(method, u, merged, body, deadline, follow, stream, jar, None)
        return self._send_with_auth(flow_auth, method, u, merged, body, deadline, follow,
                                    stream, jar)

    async def _send_with_auth(self, flow_auth: Auth, method: str, u: "_URL", merged: Headers,
                              body: Any, deadline: Deadline, follow: bool, stream: bool,
                              jar: Cookies) -> Response:
        """The auth flow may answer a challenge with another request; each of them follows
        its redirects, and every response it consumed goes into the history."""
        history: list[Response] = []
        flow = flow_auth.auth_flow(Request(method, u.url, merged.copy(), body))
        req = next(flow)
        while True:
            ru = u if req.url is u.url else _URL(str(req.url))
            resp = await self._follow(req.method, ru, req.headers, req.content, deadline,
                                      follow, stream, jar, history)
            if flow_auth.requires_response_body and resp._content is None:
                await resp.aread()
            try:
                req = flow.send(resp)
            except StopIteration:
                return resp
            await resp.aread()
            history = resp.history + [resp]

    async def _follow(self, method: str, u: "_URL", merged: Headers, body: Any,
                      deadline: Deadline, follow: bool, stream: bool, jar: Cookies,
                      history: list[Response] | None) -> Response:
        """Send the request; follow its redirects when asked."""
        hist = list(history) if history else None  # made only when there is one
        start = u
        while True:
            if u.auth is not None and "authorization" not in merged:
                # user:password@ in the URL: kept for the hops that stay on its origin
                merged = merged.copy()
                merged["Authorization"] = u.auth
            hop = merged
            if jar.jar._cookies and "cookie" not in hop:  # a dict: no Python call when empty
                cookie = jar.header_for(u.text)
                if cookie:
                    hop = hop.copy()
                    hop["Cookie"] = cookie
            req = Request(method, u.url, hop, body)
            try:
                if self.cache is None:
                    resp = await self._send(req, u, deadline, stream)
                else:
                    resp = await self._send_cached(req, u, deadline, stream)
            except RequestError as exc:
                attach_request(exc, req)
                raise
            resp.default_encoding = self.default_encoding
            if resp._set_cookie:
                self._cookies.extract(u.text, resp.headers.get_list("set-cookie"))
            if not (follow and resp.status_code in _REDIRECTS and "location" in resp.headers):
                if not stream and resp._content is None:
                    await resp.aread()
                if hist:
                    resp.history = hist
                return resp
            await resp.aread()  # small; frees the connection for the next hop
            if hist is None:
                hist = []
            hist.append(resp)
            if len(hist) > self.max_redirects:
                raise TooManyRedirects(
                    f"more than {self.max_redirects} redirects starting from {start.text!r} "
                    f"(last: {resp.url} -> {resp.headers['location']})", request=req)
            next_url = urljoin(u.text, resp.headers["location"])
            nu = _URL(next_url)
            if u.scheme == "https" and nu.scheme == "http" and not self.allow_insecure_redirects:
                raise InsecureRedirect(
                    f"refused a {resp.status_code} redirect from {u.text} to {nu.text}: it "
                    "would send the request unencrypted (allow_insecure_redirects=True "
                    "follows it)", response=resp, request=req)
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
            if nu.origin != u.origin and any(h in merged for h in _CREDENTIALS):
                # The cookie jar still gives the new origin the cookies its rules allow.
                merged = merged.copy()
                for h in _CREDENTIALS:
                    merged.pop(h)
            u = nu

    def _proxy_for(self, u: _URL) -> Proxy | None:
        """The proxy for `u`'s origin: the most specific matching mount, else `proxy=`,
        else the environment's."""
        if not self._mounts and (self._proxy is not None or not self._env_proxies):
            return self._proxy
        try:
            return self._env_proxy_cache[u.origin]
        except KeyError:
            pass
        if len(self._env_proxy_cache) >= _URL_CACHE_SIZE:
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

    async def _send_cached(self, req: Request, u: "_URL", deadline: Deadline,
                           stream: bool) -> Response:
        """`_send` through the cache: a fresh stored response without a request, a stale
        one revalidated, a cacheable answer stored (GET read whole only)."""
        cache = self.cache
        assert cache is not None
        if req.method in _UNSAFE:
            resp = await self._send(req, u, deadline, stream)
            if resp.status_code < 400:
                cache.invalidate(u.text)
            return resp
        if req.method != "GET" or req.content is not None or stream:
            return await self._send(req, u, deadline, stream)
        sent = req.headers
        if "no-store" in directives(sent.get("cache-control")):
            return await self._send(req, u, deadline, stream)
        asked = cache_now()
        entry = cache.lookup(u.text, sent)
        if entry is not None:
            if "no-cache" not in directives(sent.get("cache-control")) \
                    and entry.age(asked) < entry.lifetime():
                cache.hits += 1
                return entry.response(req, asked, False)
            etag, modified = entry.header(b"etag"), entry.header(b"last-modified")
            if (etag or modified) and "if-none-match" not in sent \
                    and "if-modified-since" not in sent:
                conditional = sent.copy()
                if etag:
                    conditional["If-None-Match"] = etag
                if modified:
                    conditional["If-Modified-Since"] = modified
                req = Request(req.method, req.url, conditional, None)
            else:
                entry = None
        resp = await self._send(req, u, deadline, stream)
        await resp.aread()
        if resp.status_code == 304 and entry is not None:
            entry.update(resp, asked, cache_now())
            cache.updated(u.text, entry)
            cache.revalidated += 1
            return entry.response(req, cache_now(), True)
        cache.store(u.text, sent, resp, asked, cache_now())
        return resp

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
                    if len(self._addr_cache) >= _URL_CACHE_SIZE:
                        self._addr_cache.clear()
                    self._addr_cache[key] = (loop.time() + ttl, addrs)
            try:
                return await open_connection(
                    loop, u.origin, addrs, self._ssl if u.scheme == "https" else None,
                    self.pool.session_for(u.origin), self.limits, None, "",
                    self._read_buffer, self._recv_buffer, proxy,
                    self._ssl if proxy is not None and proxy.scheme == "https" else None)
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
            conn.start(req.method, stream)
            try:
                try:
                    await self._write_request(conn, head, body, length, deadline)
                except EarlyResponse:
                    conn.broken = True  # the body was cut short: never reuse
                except _Closed:
                    if conn._head is None:
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
        resp._set_cookie = rhead.set_cookie
        resp.extensions = {"ssl_object": conn.ssl_object, "connection_reused": reused}
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
        if not stream and conn._complete:
            await resp.aread()  # the common small response: already all here
        return resp

    def _encode_head(self, method: str, u: _URL, headers: Headers, body: Any,
                     forward: Proxy | None = None) -> tuple[bytes, int | None]:
        """Request line, Host, headers and the framing header; returns it with the exact
        length a streamed body must have (None: chunked, or not a stream). The caller's
        header block is validated and encoded once per distinct set of headers (the
        client's defaults, usually) and then reused."""
        key = tuple(headers._items)
        entry = self._block_cache.get(key)
        if entry is None:
            entry = _header_block(headers._items)
            if len(self._block_cache) >= 64:
                self._block_cache.clear()
            self._block_cache[key] = entry
        block, host_line, length, chunked = entry
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
        if conn._write_paused:
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
