"""The async client (httpx's AsyncClient): URLs and headers in, Responses out, over the
pool; redirects and retries."""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import ssl
import warnings
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from urllib.parse import urljoin, urlsplit, urlunsplit

from .auth import Auth, coerce_auth
from .cache import Cache, coerce_cache, directives
from .cache import now as cache_now
from .cookies import Cookies
from .deadline import Deadline
from .decoder import accept_encoding
from .errors import (
    HTTPError, InsecureRedirect, RemoteProtocolError, RequestError, StreamConsumed,
    TooManyRedirects, attach_request,
)
from .headers import Headers, HeaderTypes
from .limits import DEFAULT_LIMITS, Limits
from .models import Request, Response, body_spent, encode_body
from .pool import Origin, Pool
from .proxy import Proxy, parse_mounts
from .timeout import DEFAULT_TIMEOUT, Timeout
from .transport import (  # noqa: F401  (ParsedURL, make_ssl_context: public through here too)
    UNSET, ParsedURL, AsyncBaseTransport, AsyncHTTPTransport, BaseTransport, close_transport,
    make_ssl_context, send_through,
)
from .urls import URL, QueryParams, masked, merge_params, param_pairs

USER_AGENT = "corenet-https/0.1"
_UNSAFE = frozenset({"POST", "PUT", "DELETE", "PATCH"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_URL_CACHE_SIZE = 512
# Credentials that must not follow a redirect to another origin.
_CREDENTIALS = ("authorization", "proxy-authorization", "cookie")
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_HOOK_KINDS = ("request", "response")
#: httpx's logger, under httpx's name, so that logging set up for httpx (its request
#: lines shown at INFO, or silenced with ``logging.getLogger("httpx").setLevel(...)``)
#: holds for this client unchanged.
logger = logging.getLogger("httpx")
#: The warning on `cookies=` given to one request: whether they should stay in the
#: client's jar is ambiguous (here, as in httpx, they go with that request only). Its text
#: is httpx's word for word, so that a warnings filter written for httpx matches it.
PER_REQUEST_COOKIES = ("Setting per-request cookies=<...> is being deprecated, because the "
                       "expected behaviour on cookie persistence is ambiguous. Set cookies "
                       "directly on the client instance instead.")


class UseClientDefault:
    """What a request's `timeout=`, `follow_redirects=` or `auth=` is when it means the
    client's own setting: httpx's USE_CLIENT_DEFAULT, for code that passes it through."""

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT: Any = UseClientDefault()


def through_send(client: Any, base: Any) -> bool:
    """Whether `client.request()` and `client.stream()` go through its `build_request()`
    and `send()`, as httpx's do: when either is not `base`'s own (a subclass overrides it,
    or a test set it on the client with `mock.patch.object`). Otherwise the request is
    sent without the Request object and the two calls in between. (Asked of the bound
    methods: reading the instance's `__dict__` would make CPython give up its fast
    attribute access for the client.)"""
    return (getattr(client.send, "__func__", None) is not base.send
            or getattr(client.build_request, "__func__", None) is not base.build_request)


# What httpx's request() and stream() give build_request() for an argument not given.
_BUILD_DEFAULTS = {"content": None, "data": None, "files": None, "json": None, "params": None,
                   "headers": None, "cookies": None, "timeout": USE_CLIENT_DEFAULT,
                   "extensions": None}


def send_arguments(kw: dict[str, Any]) -> tuple[dict[str, Any], Any, Any]:
    """A verb's keyword arguments as httpx's request() hands them on when they go through
    build_request() and send(): every argument of build_request() (its default where not
    given), then send()'s auth and follow_redirects."""
    auth = kw.pop("auth", USE_CLIENT_DEFAULT)
    follow = kw.pop("follow_redirects", USE_CLIENT_DEFAULT)
    return {**_BUILD_DEFAULTS, **kw}, auth, follow


class AsyncClient:
    """An HTTP/1.1 client over TLS with a keep-alive pool, for any asyncio loop.

    `async with AsyncClient() as client: r = await client.get("https://example.org/")`

    Redirects are not followed unless asked (`follow_redirects=True` here or per request),
    as in httpx. When followed, Authorization, Proxy-Authorization and Cookie are dropped
    as soon as a hop leaves the origin (scheme, host, port), and a hop from https to plain
    http raises InsecureRedirect unless `allow_insecure_redirects=True`.

    `resolver=` finds hosts' addresses: None (the default) is the loop's getaddrinfo, the
    system's configuration (/etc/hosts, /etc/resolv.conf's nameservers), as httpx; or an
    object with dnspython's `async resolve(qname, rdtype)`, in its own mode (a
    `resolver.Resolver()` recurses from the root, `resolver.Resolver(forward=...)` asks the
    resolvers given).

    `proxy="http://user:pw@host:port"` (or https:// for TLS to the proxy) sends every
    request through that proxy: a CONNECT tunnel for https URLs, forwarding for http ones.
    Without it, `trust_env` (on by default, as in httpx) takes the proxy from HTTPS_PROXY,
    HTTP_PROXY or ALL_PROXY, honouring NO_PROXY (read as httpx reads the variables:
    `httpx._utils.get_environment_proxies`; a NO_PROXY network, 10.0.0.0/8, also covers
    its addresses).

    `transport=` replaces the network (an AsyncBaseTransport: MockTransport,
    ASGITransport, an AsyncHTTPTransport of your own; or httpx's sync BaseTransport, run
    in the loop's executor); `mounts=` maps URL patterns
    ("all://", "https://", "https://example.org", "all://*.example.org") to a
    transport, or to a proxy URL (or None: no proxy) used by the client's own network
    transport, the most specific pattern first. `verify`, `cert`, `proxy`, `trust_env`,
    `limits` and the pool arguments configure that network transport, and are not used
    when `transport=` is given. `event_hooks={"request": [...], "response": [...]}`
    are called with each request before it is sent and each response as it arrives
    (every redirect hop and auth retry); a hook may be a coroutine function.
    `http2=True` offers HTTP/2 in ALPN to https origins: a server that takes it gets one
    connection carrying every request to it at once; others are spoken HTTP/1.1 to.
    `http2=True, http1=False` speaks HTTP/2 only, as httpx: h2 alone in ALPN, and to
    http:// origins with prior knowledge (h2c).
    """

    def __init__(
        self, *, verify: bool | str | ssl.SSLContext = True, resolver: Any = None,
        timeout: Timeout | float | None = DEFAULT_TIMEOUT, max_connections: int | None = None,
        max_keepalive: int | None = None, keepalive_expiry: float | None | object = UNSET,
        follow_redirects: bool = False, max_redirects: int = 20, headers: HeaderTypes = None,
        limits: Limits = DEFAULT_LIMITS, reuse_tls_sessions: bool = True,
        allow_insecure_redirects: bool = False, base_url: URL | str = "",
        auth: Any = None, cookies: Any = None, proxy: URL | str | None = None,
        trust_env: bool = True, cache: "bool | Cache" = False,
        mounts: "dict[str, URL | str | Proxy | None] | None" = None, params: Any = None,
        default_encoding: "str | Callable[[bytes], str | None]" = "utf-8",
        transport: AsyncBaseTransport | BaseTransport | None = None, cert: Any = None,
        event_hooks: "Mapping[str, list[Callable[..., Any]]] | None" = None,
        http2: bool = False, http1: bool = True,
    ) -> None:
        self.timeout = Timeout.coerce(timeout)
        self.follow_redirects = follow_redirects
        self.trust_env = trust_env  # read once, by the network transport made here
        self.is_closed = False
        self._opened = False
        self.allow_insecure_redirects = allow_insecure_redirects
        self.base_url = base_url  # type: ignore[assignment]
        self.auth = auth
        self._cookies = Cookies(cookies)
        self.cache: Cache | None = coerce_cache(cache)
        mount_list = parse_mounts(mounts)
        if transport is None:
            transport = AsyncHTTPTransport(
                verify=verify, cert=cert, limits=limits, proxy=proxy, trust_env=trust_env,
                resolver=resolver, reuse_tls_sessions=reuse_tls_sessions,
                max_connections=max_connections, max_keepalive=max_keepalive,
                keepalive_expiry=keepalive_expiry, proxy_mounts=mount_list, http2=http2,
                http1=http1)
        elif any(m.transport is None for m in mount_list):
            raise ValueError("mounts= with proxy URLs (or None) route through the client's "
                             "own network transport, which transport= replaces: mount "
                             "AsyncHTTPTransport(proxy=...) instead")
        self._transport = transport
        # The mounts that name a transport; the others are the network transport's.
        self._mounts = mount_list if any(m.transport for m in mount_list) else []
        self._route_cache: dict[Origin, AsyncBaseTransport | BaseTransport] = {}
        # The one call every request goes through: the network transport's own send when
        # nothing else can take a request, else the router.
        if self._mounts or transport.__class__ is not AsyncHTTPTransport:
            self._net = self._send_routed
        else:
            self._net = transport.send_request
        self.event_hooks = event_hooks  # type: ignore[assignment]
        self.max_redirects = max_redirects
        # Set by the sync Client that runs this one: auth runs sync_auth_flow, as httpx's.
        self._sync_caller = False
        # Sent with every request; a request's own parameter of the same name replaces it.
        self._params = param_pairs(params)
        # The text encoding of a response without a charset: a name, or a callable given
        # the body that returns one (or None for utf-8).
        self.default_encoding = default_encoding
        self.headers = headers  # type: ignore[assignment]
        self.limits = limits
        self._url_cache: dict[str, ParsedURL] = {}
        # The last request's Deadline, when it had no total: nothing in it changes with
        # time, so the next request with the same timeout on the same loop takes it too.
        self._deadline: Deadline | None = None

    @property
    def event_hooks(self) -> dict[str, list[Callable[..., Any]]]:
        return self._event_hooks

    @event_hooks.setter
    def event_hooks(self, hooks: "Mapping[str, list[Callable[..., Any]]] | None") -> None:
        hooks = dict(hooks or {})
        unknown = set(hooks) - set(_HOOK_KINDS)
        if unknown:
            raise ValueError(f"event_hooks takes 'request' and 'response', not "
                             f"{sorted(unknown)!r}")
        self._event_hooks = {k: list(hooks.get(k, ())) for k in _HOOK_KINDS}

    # Assigned attributes are converted as httpx converts them.
    @property
    def timeout(self) -> Timeout:
        return self._timeout

    @timeout.setter
    def timeout(self, timeout: Any) -> None:
        self._timeout = Timeout.coerce(timeout)

    @property
    def auth(self) -> Auth | None:
        return self._auth

    @auth.setter
    def auth(self, auth: Any) -> None:
        self._auth = coerce_auth(auth)  # TypeError for what is no auth

    @property
    def params(self) -> QueryParams:
        """Sent with every request (a request's parameter of the same name replaces the
        client's), as httpx's: a QueryParams; assigning takes any form params= takes."""
        return QueryParams(self._params)

    @params.setter
    def params(self, params: Any) -> None:
        self._params = param_pairs(params)

    @property
    def headers(self) -> Headers:
        """Sent with every request; assigning replaces the caller's, the defaults
        (User-Agent, Accept, Accept-Encoding) staying under them, as in httpx."""
        return self._headers

    @headers.setter
    def headers(self, headers: HeaderTypes) -> None:
        merged = Headers({"User-Agent": USER_AGENT, "Accept": "*/*",
                          "Accept-Encoding": accept_encoding()})
        if headers:
            merged.update(headers)
        self._headers = merged

    @property
    def base_url(self) -> URL:
        return self._base_url

    @base_url.setter
    def base_url(self, base_url: "URL | str") -> None:
        base = str(base_url)
        if base:
            ParsedURL(base)  # refuse a bad base now rather than at the first request
            if not base.endswith("/"):
                base += "/"
        self._base_url = URL(base)
        self._base = str(self._base_url)  # joined to each relative URL

    @property
    def transport(self) -> AsyncBaseTransport | BaseTransport:
        """The transport requests go through when no mount matches."""
        return self._transport

    @property
    def pool(self) -> Pool:
        """The network transport's connection pool."""
        return self._network().pool

    @property
    def resolver(self) -> Any:
        """The name resolver of the network transport (None: the loop's getaddrinfo)."""
        return self._network().resolver

    @resolver.setter
    def resolver(self, resolver: Any) -> None:
        self._network().resolver = resolver

    def _network(self) -> AsyncHTTPTransport:
        t = self._transport
        if not isinstance(t, AsyncHTTPTransport):
            raise AttributeError(f"this client sends through {type(t).__name__}, which has "
                                 "no connection pool or TLS context")
        return t

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return self._network().ssl_context

    @property
    def cookies(self) -> Cookies:
        """The client's cookie jar; assigning a dict, a CookieJar or Cookies replaces it."""
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._cookies = cookies if isinstance(cookies, Cookies) else Cookies(cookies)

    async def __aenter__(self) -> "AsyncClient":
        """As httpx's: enters the transport and every mounted one; a client is opened
        once, and not again once closed (RuntimeError)."""
        if self.is_closed:
            raise RuntimeError("Cannot reopen a client instance, once it has been closed.")
        if self._opened:
            raise RuntimeError("Cannot open a client instance more than once.")
        self._opened = True
        for t in self._transports():
            enter = getattr(t, "__aenter__", None)
            if enter is not None:
                await enter()
            elif hasattr(t, "__enter__"):
                t.__enter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        """Leaves each transport as it was entered (its __aexit__), as httpx's."""
        self.is_closed = True
        for t in self._transports():
            leave = getattr(t, "__aexit__", None)
            if leave is not None:
                await leave(*exc)
            elif hasattr(t, "__exit__"):
                t.__exit__(*exc)
            else:
                await close_transport(t)

    def _transports(self) -> list[Any]:
        """The transport and every mounted one, each once."""
        found = [self._transport]
        for m in self._mounts:
            if m.transport is not None and all(m.transport is not t for t in found):
                found.append(m.transport)
        return found

    def forget_connections(self) -> None:
        """In a child after ``fork``: the pools of the transport and the mounted ones forget
        the parent's connections (:meth:`Pool.forget_after_fork`)."""
        for t in self._transports():
            pool = getattr(t, "pool", None)
            if pool is not None:
                pool.forget_after_fork()

    async def aclose(self) -> None:
        """Close the transport and every mounted one (each once)."""
        self.is_closed = True
        for t in self._transports():
            await close_transport(t)

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
        auth: Any = UNSET, cookies: Any = None, files: Any = None,
        extensions: dict | None = None,
    ) -> Response:
        """Send a request and read the whole response body.

        The client frames the body: Content-Length for bytes, str, `data=` and `json=`,
        chunked Transfer-Encoding for an iterable. A Content-Length or Transfer-Encoding
        header in `headers` is accepted only when it says the same (a Content-Length
        with an iterable makes it a stream of that exact length); one that contradicts
        the body raises LocalProtocolError before anything is sent. A Host header in
        `headers` replaces the URL's (one only). `extensions` (httpx's) go with the Request
        to transports and hooks; its "timeout" (a dict of connect, read, write, pool)
        stands for `timeout` when that is not given. Per-request `cookies` warn
        (DeprecationWarning), as httpx's do: set them on the client."""
        if cookies is not None:
            warnings.warn(PER_REQUEST_COOKIES, DeprecationWarning, stacklevel=2)
        if through_send(self, AsyncClient):
            build, auth, follow = send_arguments({
                "content": content, "data": data, "files": files, "json": json,
                "params": params, "headers": headers, "cookies": cookies,
                "timeout": USE_CLIENT_DEFAULT if timeout is ... else timeout,
                "extensions": extensions,
                "auth": USE_CLIENT_DEFAULT if auth is UNSET else auth,
                "follow_redirects": (USE_CLIENT_DEFAULT if follow_redirects is None
                                     else follow_redirects)})
            request = self.build_request(method=method, url=url, **build)
            return await self.send(request, auth=auth, follow_redirects=follow)
        return await self._request(method, url, False, params, headers, content, data, json,
                                   timeout, follow_redirects, auth, cookies, files, extensions)

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str, **kw: Any) -> AsyncIterator[Response]:
        """`async with client.stream("GET", url) as r: async for chunk in r.aiter_bytes()`."""
        if through_send(self, AsyncClient):
            build, auth, follow = send_arguments(kw)
            request = self.build_request(method=method, url=url, **build)
            r = await self.send(request=request, auth=auth, follow_redirects=follow,
                                stream=True)
        else:
            r = await self._request(method, url, True, **kw)
        try:
            yield r
        finally:
            await r.aclose()

    # ---- internals ----
    def build_request(self, method: str, url: URL | str, *, params: Any = None,
                      headers: HeaderTypes = None, content: Any = None, data: Any = None,
                      json: Any = None, files: Any = None, cookies: Any = None,
                      timeout: Any = ..., extensions: dict | None = None) -> Request:
        """A Request to inspect or change before `send()`, as in httpx: `cookies` go into
        its Cookie header, `timeout` (the client's unless given) into its extensions,
        where `send()` finds it."""
        u, merged, body = self._prepare(url, params, headers, content, data, json, files)
        merged = merged.copy()
        if cookies and "cookie" not in merged:
            jar = cookies if isinstance(cookies, Cookies) else Cookies(cookies)
            cookie = jar.header_for(u.text)
            if cookie:
                merged["Cookie"] = cookie
        ext = dict(extensions or {})
        if "timeout" not in ext:
            given = timeout is not ... and timeout is not USE_CLIENT_DEFAULT
            ext["timeout"] = (Timeout.coerce(timeout) if given else self._timeout).as_dict()
        return Request(method.upper(), u.url, merged, body, extensions=ext)

    async def send(self, request: Request, *, stream: bool = False, auth: Any = UNSET,
                   follow_redirects: bool | None = None,
                   timeout: Timeout | float | None | object = ...) -> Response:
        """Send a Request (from `build_request`); with `stream=True` the body is left to
        read, and the response must be closed (`await response.aclose()`)."""
        return await self._dispatch(request.method, ParsedURL(request.url), request.headers,
                                    request.body, timeout, follow_redirects, stream, auth,
                                    None, request.extensions or None, request)

    def _prepare(self, url: URL | str, params: Any, headers: HeaderTypes, content: Any,
                 data: Any, json: Any, files: Any) -> tuple["ParsedURL", Headers, Any]:
        """(URL, headers, body) of a request: the client's headers under the caller's,
        the body encoded, the URL joined to base_url and parsed (cached)."""
        url = str(url)
        base = self._base
        if base and not _ABSOLUTE.match(url):
            # httpx's rule: the path is appended to the base's, never replaces it; a
            # network-path reference ("//host/path") is relative to httpx too: its path
            if url.startswith("//"):
                sp = urlsplit(url)
                url = urlunsplit(("", "", sp.path or "/", sp.query, ""))
            url = base + url.lstrip("/")
        ctype = None
        if files:
            ctype = (Headers(headers).get("content-type") if headers else None) or \
                self._headers.get("content-type")
        body_headers: Sequence[tuple[str, str]]
        if content is None and data is None and json is None and not files:
            body, body_headers = None, ()
        else:
            body, body_headers = encode_body(content, data, json, files, ctype)
        if headers or body_headers:
            merged = self._headers.copy()
            if headers:
                given = Headers(headers)
                for k in given.keys():
                    if k in merged:
                        del merged[k]
                for k, v in given.frozen():
                    merged.add(k, v)
            for k, v in body_headers:
                if k not in merged:
                    merged[k] = v
        else:
            merged = self._headers  # read-only below; copied before any change
        if self._params:
            params = merge_params(self._params, params)
        if params:
            u = ParsedURL(url, params)
        else:
            u = self._url_cache.get(url)  # type: ignore[assignment]
            if u is None:
                u = ParsedURL(url)
                if len(self._url_cache) >= _URL_CACHE_SIZE:
                    self._url_cache.clear()
                self._url_cache[url] = u
        return u, merged, body

    def _request(self, method: str, url: URL | str, stream: bool, /, params: Any = None,
                 headers: HeaderTypes = None, content: Any = None, data: Any = None,
                 json: Any = None, timeout: Any = ..., follow_redirects: bool | None = None,
                 auth: Any = UNSET, cookies: Any = None, files: Any = None,
                 extensions: dict | None = None) -> Awaitable[Response]:
        """`request()`'s and `stream()`'s arguments to the coroutine that sends. (Not
        keyword-only: those defaults would be looked up in a dict on every call.)"""
        u, merged, body = self._prepare(url, params, headers, content, data, json, files)
        return self._dispatch(method.upper(), u, merged, body, timeout, follow_redirects,
                              stream, auth, cookies, extensions)

    def _dispatch(self, method: str, u: "ParsedURL", merged: Headers, body: Any, timeout: Any,
                  follow_redirects: bool | None, stream: bool, auth: Any,
                  cookies: Any, extensions: dict | None = None,
                  given: Request | None = None) -> Awaitable[Response]:
        """Everything that needs no waiting, then the coroutine that sends (one coroutine
        frame less per request than awaiting it here). ``given``: the Request `send()` was
        given, sent as it is (see `_follow`)."""
        if self.is_closed:  # httpx's words
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        self._opened = True  # httpx's rule: a client that has sent cannot be entered
        loop = asyncio.get_running_loop()
        if timeout is not ... and timeout is not USE_CLIENT_DEFAULT:
            timeout = Timeout.coerce(timeout)
        elif extensions and "timeout" in extensions:
            timeout = Timeout.coerce(extensions["timeout"])
        else:
            timeout = self._timeout
        deadline = self._deadline
        if deadline is None or deadline.timeout is not timeout or deadline.loop is not loop \
                or timeout.total is not None:
            deadline = Deadline(loop, timeout)
            if timeout.total is None:
                self._deadline = deadline
        follow = (self.follow_redirects if follow_redirects is None
                  or follow_redirects is USE_CLIENT_DEFAULT else follow_redirects)
        jar = self._cookies
        if cookies:
            # This request's cookies on top of a copy of the client's; what responses set
            # still goes into the client's jar.
            jar = Cookies(jar)
            for c in (cookies if isinstance(cookies, Cookies) else Cookies(cookies)).jar:
                jar.jar.set_cookie(c)
        flow_auth = self._auth if auth is UNSET or auth is USE_CLIENT_DEFAULT else \
            coerce_auth(auth)
        if flow_auth is None:
            return self._follow(method, u, merged, body, deadline, follow, stream, jar, None,
                                extensions, given)
        return self._send_with_auth(flow_auth, method, u, merged, body, deadline, follow,
                                    stream, jar, extensions, given)

    async def _send_with_auth(self, flow_auth: Auth, method: str, u: "ParsedURL", merged: Headers,
                              body: Any, deadline: Deadline, follow: bool, stream: bool,
                              jar: Cookies, extensions: dict | None = None,
                              given: Request | None = None) -> Response:
        """The auth flow may answer a challenge with another request; each of them follows
        its redirects, and every response it consumed goes into the history. The flow
        gets ``given`` (httpx's: the Request `send()` was given) and sets its headers."""
        history: list[Response] = []
        first = given if given is not None else Request(method, u.url, merged.copy(), body,
                                                        extensions=extensions)
        if self._sync_caller:  # the Client's: a flow of its own thread's kind, httpx's
            sync_flow = flow_auth.sync_auth_flow(first)
            req = next(sync_flow)
        else:
            flow = flow_auth.async_auth_flow(first)
            req = await flow.__anext__()
        while True:
            ru = u if req.url is u.url else ParsedURL(req.url)
            resp = await self._follow(req.method, ru, req.headers, req.body, deadline,
                                      follow, stream, jar, history, req.extensions or None,
                                      req if given is not None else None)
            try:
                if self._sync_caller:
                    if flow_auth.requires_response_body and not resp.is_read:
                        await resp.aread()  # read here: the flow's read() needs no loop
                    req = sync_flow.send(resp)
                else:
                    req = await flow.asend(resp)
            except (StopIteration, StopAsyncIteration):
                return resp
            await resp.aread()
            history = resp.history + [resp]

    async def _follow(self, method: str, u: "ParsedURL", merged: Headers, body: Any,
                      deadline: Deadline, follow: bool, stream: bool, jar: Cookies,
                      history: list[Response] | None,
                      extensions: dict | None = None,
                      given: Request | None = None) -> Response:
        """Send the request; follow its redirects when asked. ``given``, a Request made by
        the caller (`send()`), goes as it is, as httpx's does: its hooks see it, its
        response's `request` is it, and the jar adds no cookie it was built without."""
        hist = list(history) if history else None  # made only when there is one
        # Read per request: a list assigned into event_hooks (httpx's mutable dict) counts.
        request_hooks = self._event_hooks.get("request")
        response_hooks = self._event_hooks.get("response")
        while True:
            if u.auth is not None and "authorization" not in merged:
                # user:password@ in the URL: kept for the hops that stay on its origin
                merged = merged.copy()
                merged["Authorization"] = u.auth
            hop = merged
            if given is not None and hop is given.headers:
                req, given = given, None
            else:
                given = None
                if jar.has_any() and "cookie" not in hop:
                    cookie = jar.header_for(u.text)
                    if cookie:
                        hop = hop.copy()
                        hop["Cookie"] = cookie
                req = Request.outgoing(method, u.url, hop, body,
                                       None if extensions is None else dict(extensions))
            try:
                if request_hooks:
                    req.complete_headers()  # a hook sees what httpx's would
                    await _call_hooks(request_hooks, req)
                if self.cache is None:
                    resp = await self._net(req, u, deadline, stream)
                else:
                    resp = await self._send_cached(req, u, deadline, stream)
            except RequestError as exc:
                attach_request(exc, req)
                raise
            if logger.isEnabledFor(logging.INFO):  # httpx's line, each hop's, at its headers
                logger.info('HTTP Request: %s %s "%s %d %s"', req.method, masked(req.url),
                            resp.http_version, resp.status_code, resp.reason_phrase)
            if response_hooks:
                try:
                    await _call_hooks(response_hooks, resp)
                except BaseException:
                    await resp.aclose()
                    raise
            resp.default_encoding = self.default_encoding
            if resp.has_set_cookie:
                self._cookies.extract(u.text, resp.headers.get_list("set-cookie"))
            redirect = resp.status_code in _REDIRECTS and "location" in resp.headers
            if not (follow and redirect):
                if redirect:  # httpx's next_request: the redirect, to send when wanted
                    try:
                        m, nu, h, b = self._redirected(resp, u, method, merged, body)
                        resp.next_request = Request(m, nu.url, h, b)
                    except (ValueError, HTTPError):
                        pass  # a Location that names no URL: no next request, no error
                if not stream and not resp.is_read:
                    await resp.aread()
                if hist:
                    resp.history = hist
                return resp
            await resp.aread()  # small; frees the connection for the next hop
            if hist is None:
                hist = []
            resp.history = list(hist)  # each redirect's own: those before it, as httpx's
            hist.append(resp)
            if len(hist) > self.max_redirects:
                raise TooManyRedirects("Exceeded maximum allowed redirects.", request=req)
            code = resp.status_code
            sent = body
            try:
                method, nu, merged, body = self._redirected(resp, u, method, merged, body)
            except RemoteProtocolError as exc:
                attach_request(exc, req)
                raise
            if u.scheme == "https" and nu.scheme == "http" and not self.allow_insecure_redirects:
                raise InsecureRedirect(
                    f"refused a {code} redirect from {u.text} to {nu.text}: it "
                    "would send the request unencrypted (allow_insecure_redirects=True "
                    "follows it)", response=resp, request=req)
            if body is not None and body is sent and body_spent(body):
                raise StreamConsumed()
            u = nu

    @staticmethod
    def _redirected(resp: Response, u: "ParsedURL", method: str, merged: Headers,
                    body: Any) -> tuple[str, "ParsedURL", Headers, Any]:
        """(method, URL, headers, body) of the request a redirect asks for, as httpx
        makes it: the Location's URL (``_location``); GET after a 302 or 303 (but for
        HEAD) or a POST's 301, then without the body and its Content-Length and
        Transfer-Encoding; a Cookie header given by hand dropped (the jar gives the next
        request its cookies); the other credentials dropped for another origin (an upgrade
        from http to https on the same host too, where httpx keeps Authorization)."""
        nu = _location(u, resp.headers["location"])
        code = resp.status_code
        if nu.origin != u.origin and "host" in merged:  # the next origin's own, as httpx
            merged = merged.copy()
            merged.pop("host", None)
        if (code in (302, 303) and method != "HEAD" or code == 301 and method == "POST") \
                and method != "GET":
            method = "GET"
            body = None
            merged = merged.copy()
            for h in ("content-length", "transfer-encoding"):
                merged.pop(h, None)
        if "cookie" in merged:
            merged = merged.copy()
            merged.pop("cookie", None)
        if nu.origin != u.origin and any(h in merged for h in _CREDENTIALS):
            # The cookie jar still gives the new origin the cookies its rules allow.
            merged = merged.copy()
            for h in _CREDENTIALS:
                merged.pop(h, None)
        return method, nu, merged, body

    async def _send_cached(self, req: Request, u: "ParsedURL", deadline: Deadline,
                           stream: bool) -> Response:
        """`_send` through the cache: a fresh stored response without a request, a stale
        one revalidated, a cacheable answer stored (GET read whole only)."""
        cache = self.cache
        assert cache is not None
        if req.method in _UNSAFE:
            resp = await self._net(req, u, deadline, stream)
            if resp.status_code < 400:
                cache.invalidate(u.text)
            return resp
        if req.method != "GET" or req.body is not None or stream:
            return await self._net(req, u, deadline, stream)
        sent = req.headers
        if "no-store" in directives(sent.get("cache-control")):
            return await self._net(req, u, deadline, stream)
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
                req = Request.outgoing(req.method, req.url, conditional, None)
            else:
                entry = None
        resp = await self._net(req, u, deadline, stream)
        await resp.aread()
        if resp.status_code == 304 and entry is not None:
            entry.update(resp, asked, cache_now())
            cache.updated(u.text, entry)
            cache.revalidated += 1
            return entry.response(req, cache_now(), True)
        cache.store(u.text, sent, resp, asked, cache_now())
        return resp

    async def _send_routed(self, req: Request, u: "ParsedURL", deadline: Deadline,
                           stream: bool) -> Response:
        """Send through the transport of the most specific matching mount, else the
        client's transport."""
        t = self._transport_for(u)
        if t.__class__ is AsyncHTTPTransport:
            return await t.send_request(req, u, deadline, stream)
        req.complete_headers()  # another transport sees the request as httpx's would
        req.extensions["timeout"] = deadline.timeout.as_dict()  # httpx's form
        resp = await send_through(t, req)
        if not isinstance(resp, Response):
            raise TypeError(f"the transport {type(t).__name__} returned "
                            f"{type(resp).__name__}, not a Response")
        resp.request = req
        resp.url = req.url
        resp.limits = self.limits
        return resp

    def _transport_for(self, u: "ParsedURL") -> AsyncBaseTransport | BaseTransport:
        try:
            return self._route_cache[u.origin]
        except KeyError:
            pass
        t = self._transport
        for mount in self._mounts:
            if mount.matches(u.scheme, u.host, u.port):
                if mount.transport is not None:
                    t = mount.transport
                break
        if len(self._route_cache) >= _URL_CACHE_SIZE:
            self._route_cache.clear()
        self._route_cache[u.origin] = t
        return t


def _location(u: ParsedURL, location: str) -> ParsedURL:
    """The URL a redirect's Location names, joined to the request's URL ``u`` (whose
    fragment it keeps when it has none). An absolute one without a host (``https://:443/``,
    which some servers send) means the request's host, as httpx takes it; one that is no
    URL is the server's error: RemoteProtocolError, as in httpx."""
    try:
        next_url = urljoin(u.text, location)
        parts = urlsplit(next_url)
        if parts.scheme.lower() in ("http", "https") and not parts.hostname:
            host = f"[{u.host}]" if ":" in u.host else u.host
            port = parts.port
            next_url = urlunsplit(parts._replace(
                netloc=host if port is None else f"{host}:{port}"))
        if u.fragment and "#" not in next_url:
            next_url += "#" + u.fragment
        return ParsedURL(next_url)
    except ValueError as exc:           # InvalidURL is one too
        raise RemoteProtocolError(f"Invalid URL in location header: {exc}.") from None


async def _call_hooks(hooks: list[Callable[..., Any]], arg: Any) -> None:
    for hook in hooks:
        result = hook(arg)
        if inspect.isawaitable(result):
            await result
