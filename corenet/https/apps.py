"""Transports that answer in-process, as httpx's do: `MockTransport(handler)` for tests,
`ASGITransport(app)` and `WSGITransport(app)` to call a web application without a socket.
Each is an AsyncBaseTransport, so the AsyncClient and the Client both take them."""
from __future__ import annotations

import asyncio
import inspect
import io
import sys
from typing import Any, Callable
from urllib.parse import unquote

from .headers import Headers
from .models import Request, Response
from .transport import AsyncBaseTransport
from .urls import default_port

__all__ = ["MockTransport", "ASGITransport", "WSGITransport"]


class MockTransport(AsyncBaseTransport):
    """Answers every request with `handler(request)`, a function or coroutine function
    returning a Response. The request's body is read before the handler sees it
    (`request.content` is its bytes, b"" for none, as in httpx)."""

    def __init__(self, handler: Callable[[Request], Any]) -> None:
        self.handler = handler

    async def handle_async_request(self, request: Request) -> Response:
        await request.aread()
        response = self.handler(request)
        if inspect.isawaitable(response):
            response = await response
        return response

    def handle_request(self, request: Request) -> Response:
        """httpx's sync interface (a sync transport that wraps this one): a sync handler's
        response."""
        request.read()
        response = self.handler(request)
        if inspect.isawaitable(response):
            if inspect.iscoroutine(response):
                response.close()
            raise TypeError("the handler is async: it answers through handle_async_request")
        return response

    def close(self) -> None:
        pass


def _host_header(request: Request) -> str:
    url = request.url
    host = url.raw_host.decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    return host if url.port is None else f"{host}:{url.port}"


def _wire_headers(request: Request, body: bytes) -> list[tuple[str, str]]:
    """The request's headers as the server would get them: with Host, and the
    Content-Length of its body."""
    items = list(request.headers.frozen())
    names = {k.lower() for k, _ in items}
    if "host" not in names:
        items.insert(0, ("Host", _host_header(request)))
    if "content-length" not in names and "transfer-encoding" not in names and (
            body or request.method in ("POST", "PUT", "PATCH")):
        items.append(("Content-Length", str(len(body))))
    return items


class ASGITransport(AsyncBaseTransport):
    """Calls an ASGI 3 application on the client's loop, one HTTP request per call; the
    response body is collected whole. An exception the app raises is raised to the caller
    (`raise_app_exceptions=False`: answered with a 500 instead, when the app had not
    started its response). `root_path` and `client` go into the scope."""

    def __init__(self, app: Callable[..., Any], raise_app_exceptions: bool = True,
                 root_path: str = "", client: tuple[str, int] = ("127.0.0.1", 123)) -> None:
        self.app = app
        self.raise_app_exceptions = raise_app_exceptions
        self.root_path = root_path
        self.client = client

    async def handle_async_request(self, request: Request) -> Response:
        body = await request.aread()
        url = request.url
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in _wire_headers(request, body)],
            "scheme": url.scheme, "path": unquote(url.path),
            "raw_path": url.raw_path.partition(b"?")[0], "query_string": url.query,
            "server": (url.host, url.port),  # httpx's: no port unless the URL has one
            "client": self.client, "root_path": self.root_path,
        }
        sent_body = False
        done = asyncio.Event()
        status: int | None = None
        headers: list[tuple[str | bytes, str | bytes]] = []
        parts: list[bytes] = []

        async def receive() -> dict:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start" and status is None:
                status = message["status"]
                headers.extend(message.get("headers", ()))  # bytes, or str as httpx allows
            elif kind == "http.response.body" and status is not None and not done.is_set():
                if request.method != "HEAD":
                    parts.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    done.set()

        try:
            await self.app(scope, receive, send)
        except Exception:
            if self.raise_app_exceptions:
                raise
            if status is None:
                status, headers, parts = 500, [], []
        finally:
            done.set()
        if status is None:
            raise RuntimeError("the ASGI app returned without starting a response")
        return Response(status, headers=Headers(headers), content=b"".join(parts),
                        request=request)


class WSGITransport(AsyncBaseTransport):
    """Calls a WSGI application in the loop's default executor (a worker thread, so the
    loop keeps running); the response body is collected whole. An exception the app
    raises, or passes to start_response, is raised to the caller
    (`raise_app_exceptions=False`: the app's response stands). `script_name`,
    `remote_addr` and `wsgi_errors` go into the environ."""

    def __init__(self, app: Callable[..., Any], raise_app_exceptions: bool = True,
                 script_name: str = "", remote_addr: str = "127.0.0.1",
                 wsgi_errors: Any = None) -> None:
        self.app = app
        self.raise_app_exceptions = raise_app_exceptions
        self.script_name = script_name
        self.remote_addr = remote_addr
        self.wsgi_errors = wsgi_errors

    async def handle_async_request(self, request: Request) -> Response:
        body = await request.aread()
        loop = asyncio.get_running_loop()
        status, headers, content = await loop.run_in_executor(None, self._call, request, body)
        return Response(status, headers=Headers(headers), content=content, request=request)

    def handle_request(self, request: Request) -> Response:
        """httpx's sync interface: the application called in the caller's thread."""
        status, headers, content = self._call(request, request.read())
        return Response(status, headers=Headers(headers), content=content, request=request)

    def close(self) -> None:
        pass

    def _call(self, request: Request, body: bytes) -> tuple[int, list, bytes]:
        url = request.url
        port = url.port or default_port(url.scheme) or 80
        environ = {
            "wsgi.version": (1, 0), "wsgi.url_scheme": url.scheme,
            "wsgi.input": io.BytesIO(body), "wsgi.errors": self.wsgi_errors or sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
            "REQUEST_METHOD": request.method, "SCRIPT_NAME": self.script_name,
            "PATH_INFO": unquote(url.path), "QUERY_STRING": url.query.decode("ascii"),
            "SERVER_NAME": url.host, "SERVER_PORT": str(port), "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": self.remote_addr,
        }
        for key, value in _wire_headers(request, body):
            name = key.upper().replace("-", "_")
            if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[name] = value
            else:
                name = "HTTP_" + name
                environ[name] = f"{environ[name]},{value}" if name in environ else value
        started: list[Any] = []
        app_error: list[Any] = []

        def start_response(status: str, response_headers: list, exc_info: Any = None) -> Any:
            if exc_info is not None:
                app_error[:] = [exc_info]
            started[:] = [status, response_headers]
            return lambda data: None  # the legacy write(); bodies come from the iterable

        result = self.app(environ, start_response)
        try:
            content = b"".join(bytes(piece) for piece in result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if app_error and self.raise_app_exceptions:
            raise app_error[0][1]
        if not started:
            raise RuntimeError("the WSGI app returned without calling start_response")
        status, response_headers = started
        if request.method == "HEAD":
            content = b""
        return int(status.split(None, 1)[0]), list(response_headers), content
