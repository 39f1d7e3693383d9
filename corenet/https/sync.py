"""The sync client, httpx's `Client`: it runs the AsyncClient on a
private corenet loop in a thread of its own, so both share one implementation (models,
errors, limits, auth, cookies, cache, transports). The calling thread blocks on each call;
it needs no loop of its own. Calling from the private loop's own thread (from an event
hook, a transport's handler or an auth flow of the same client) would wait for itself:
that raises RuntimeError instead.

`get`, `post`, ... and `stream` at module level make a Client for the one request."""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import weakref
from typing import Any, Awaitable, Iterator

from .client import AsyncClient, send_arguments, through_send
from .models import Request, Response
from .portal import Portal

__all__ = ["Client", "request", "stream", "get", "options", "head", "post", "put",
           "patch", "delete"]


class _Shared:
    """An attribute of the async client, read and set through the Client."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        return getattr(obj._client, self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj._client, self.name, value)


class Client:
    """httpx's sync `Client`: `with Client() as c: r = c.get(url)`. Takes the
    AsyncClient's arguments (transport=, mounts=, event_hooks= with sync or async hooks, ...).
    Its responses are the same Response class; a streamed one reads with `read()`,
    `iter_bytes()`, `iter_text()`, `iter_lines()`, `iter_raw()` and `close()`."""

    cookies = _Shared()
    headers = _Shared()
    params = _Shared()
    auth = _Shared()
    timeout = _Shared()
    event_hooks = _Shared()
    follow_redirects = _Shared()
    max_redirects = _Shared()
    base_url = _Shared()
    cache = _Shared()
    trust_env = _Shared()

    def __init__(self, **kwargs: Any) -> None:
        self._client = AsyncClient(**kwargs)
        self._client._sync_caller = True
        self._portal = Portal(on_fork=self._client.forget_connections)
        self._closed = False
        self._finalizer = weakref.finalize(self, self._portal.stop)

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def async_client(self) -> AsyncClient:
        """The AsyncClient underneath (its methods run on the private loop only)."""
        return self._client

    @property
    def pool(self) -> Any:
        return self._client.pool

    @property
    def transport(self) -> Any:
        return self._client.transport

    def __enter__(self) -> "Client":
        if self._closed:  # httpx's words
            raise RuntimeError("Cannot reopen a client instance, once it has been closed.")
        self._run(self._client.__aenter__())  # enters the transports, as httpx's
        return self

    def __exit__(self, *exc: Any) -> None:
        self._end(self._client.__aexit__(*exc))  # leaves the transports as entered

    def close(self) -> None:
        """Close the connections, then stop the private loop and its thread."""
        self._end(self._client.aclose())

    def _end(self, closing: Awaitable[Any]) -> None:
        if self._closed:
            if asyncio.iscoroutine(closing):
                closing.close()
            return
        self._closed = True
        try:
            self._portal.run(closing)
        finally:
            self._finalizer()

    def _run(self, aw: Awaitable[Any]) -> Any:
        if self._closed:
            if asyncio.iscoroutine(aw):
                aw.close()
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        return self._portal.run(aw)

    def _adopt(self, resp: Response) -> Response:
        resp.read_through(self._portal)
        return resp

    # ---- the verbs ----
    def request(self, method: str, url: Any, **kw: Any) -> Response:
        if through_send(self, Client):
            build, auth, follow = send_arguments(kw)
            return self.send(self.build_request(method=method, url=url, **build), auth=auth,
                             follow_redirects=follow)
        return self._adopt(self._run(self._client.request(method, url, **kw)))

    def get(self, url: Any, **kw: Any) -> Response:
        return self.request("GET", url, **kw)

    def head(self, url: Any, **kw: Any) -> Response:
        return self.request("HEAD", url, **kw)

    def options(self, url: Any, **kw: Any) -> Response:
        return self.request("OPTIONS", url, **kw)

    def delete(self, url: Any, **kw: Any) -> Response:
        return self.request("DELETE", url, **kw)

    def post(self, url: Any, **kw: Any) -> Response:
        return self.request("POST", url, **kw)

    def put(self, url: Any, **kw: Any) -> Response:
        return self.request("PUT", url, **kw)

    def patch(self, url: Any, **kw: Any) -> Response:
        return self.request("PATCH", url, **kw)

    @contextlib.contextmanager
    def stream(self, method: str, url: Any, **kw: Any) -> Iterator[Response]:
        """`with c.stream("GET", url) as r: for chunk in r.iter_bytes(): ...`"""
        if through_send(self, Client):
            build, auth, follow = send_arguments(kw)
            resp = self.send(request=self.build_request(method=method, url=url, **build),
                             auth=auth, follow_redirects=follow, stream=True)
            try:
                yield resp
            finally:
                resp.close()
            return
        cm = self._client.stream(method, url, **kw)
        resp = self._adopt(self._run(cm.__aenter__()))
        try:
            yield resp
        finally:
            if self._closed:  # closed inside the block: its connections are gone
                resp.close()
            else:
                self._run(cm.__aexit__(None, None, None))

    def build_request(self, method: str, url: Any, **kw: Any) -> Request:
        return self._client.build_request(method, url, **kw)

    def send(self, request: Request, **kw: Any) -> Response:
        """Send a Request (from `build_request`); with `stream=True` the body is left to
        read, and the response must be closed (`response.close()`)."""
        return self._adopt(self._run(self._client.send(request, **kw)))


# help() and editors show the AsyncClient's arguments, which Client takes.
Client.__init__.__signature__ = inspect.signature(AsyncClient.__init__)  # type: ignore[attr-defined]

_CLIENT_ARGS = ("verify", "cert", "proxy", "trust_env", "timeout", "cookies", "auth",
                "follow_redirects", "transport", "mounts", "limits", "default_encoding")


def _split(kw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    client = {k: kw.pop(k) for k in _CLIENT_ARGS if k in kw}
    return client, kw


def request(method: str, url: Any, **kw: Any) -> Response:
    """One request on a Client of its own (httpx's `httpx.request`): the client's
    arguments (verify, cert, proxy, timeout, auth, cookies, follow_redirects, ...) and
    the request's (params, headers, content, data, files, json) together."""
    client_kw, request_kw = _split(kw)
    with Client(**client_kw) as c:
        return c.request(method, url, **request_kw)


@contextlib.contextmanager
def stream(method: str, url: Any, **kw: Any) -> Iterator[Response]:
    """`with corenet.https.stream("GET", url) as r: for chunk in r.iter_bytes(): ...`"""
    client_kw, request_kw = _split(kw)
    with Client(**client_kw) as c:
        with c.stream(method, url, **request_kw) as r:
            yield r


def get(url: Any, **kw: Any) -> Response:
    return request("GET", url, **kw)


def options(url: Any, **kw: Any) -> Response:
    return request("OPTIONS", url, **kw)


def head(url: Any, **kw: Any) -> Response:
    return request("HEAD", url, **kw)


def post(url: Any, **kw: Any) -> Response:
    return request("POST", url, **kw)


def put(url: Any, **kw: Any) -> Response:
    return request("PUT", url, **kw)


def patch(url: Any, **kw: Any) -> Response:
    return request("PATCH", url, **kw)


def delete(url: Any, **kw: Any) -> Response:
    return request("DELETE", url, **kw)
