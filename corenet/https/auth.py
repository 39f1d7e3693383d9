"""Authentication, httpx-shaped: `auth=(user, password)`, `auth=callable(request) ->
request`, or an `Auth` whose `auth_flow` generator yields requests and is sent the
responses (what a challenge-response scheme needs)."""
from __future__ import annotations

import base64
from typing import Any, Callable, Generator

from .models import Request, Response


class Auth:
    """Override `auth_flow`: change the request and `yield` it; the response is sent back
    into the generator, which may yield another request (after a 401, say) or return.
    Set `requires_response_body` when the flow reads the body of the responses it gets."""

    requires_response_body = False

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        yield request


class BasicAuth(Auth):
    """RFC 7617: `Authorization: Basic base64(user:password)`, UTF-8."""

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        user = username.encode() if isinstance(username, str) else username
        pw = password.encode() if isinstance(password, str) else password
        self._header = "Basic " + base64.b64encode(user + b":" + pw).decode("ascii")

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class BearerAuth(Auth):
    """RFC 6750: `Authorization: Bearer TOKEN`."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class FunctionAuth(Auth):
    """A callable that takes the request and returns it (changed), as httpx accepts."""

    def __init__(self, func: Callable[[Request], Request]) -> None:
        self._func = func

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        yield self._func(request)


def coerce_auth(auth: Any) -> Auth | None:
    if auth is None or isinstance(auth, Auth):
        return auth
    if isinstance(auth, tuple) and len(auth) == 2:
        return BasicAuth(*auth)
    if callable(auth):
        return FunctionAuth(auth)
    raise TypeError("auth must be a (username, password) tuple, a callable taking and "
                    f"returning the request, or an Auth object, not {type(auth).__name__}")
