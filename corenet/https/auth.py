"""Authentication, httpx-shaped: `auth=(user, password)`, `auth=callable(request) ->
request`, or an `Auth` whose `auth_flow` generator yields requests and is sent the
responses (what a challenge-response scheme needs)."""
from __future__ import annotations

import hashlib
import os
import re
from typing import Any, AsyncGenerator, Callable, Generator

from .errors import ProtocolError
from .models import Request, Response
from .urls import basic_auth

__all__ = ["Auth", "BasicAuth", "BearerAuth", "DigestAuth", "FunctionAuth", "NetRCAuth",
           "coerce_auth"]


class Auth:
    """Override `auth_flow`: change the request and `yield` it; the response is sent back
    into the generator, which may yield another request (after a 401, say) or return.
    Set `requires_response_body` when the flow reads the body of the responses it gets,
    `requires_request_body` when it reads the request's. As httpx, the clients run
    `async_auth_flow` (the AsyncClient) and `sync_auth_flow` (the Client), which run
    `auth_flow` and may be overridden instead (to await a token, say)."""

    requires_request_body = False
    requires_response_body = False

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        yield request

    def sync_auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        if self.requires_request_body:
            request.read()
        flow = self.auth_flow(request)
        request = next(flow)
        while True:
            response = yield request
            if self.requires_response_body:
                response.read()
            try:
                request = flow.send(response)
            except StopIteration:
                return

    async def async_auth_flow(self, request: Request) -> AsyncGenerator[Request, Response]:
        if self.requires_request_body:
            await request.aread()
        flow = self.auth_flow(request)
        request = next(flow)
        while True:
            response = yield request
            if self.requires_response_body:
                await response.aread()
            try:
                request = flow.send(response)
            except StopIteration:
                return


class BasicAuth(Auth):
    """RFC 7617: `Authorization: Basic base64(user:password)`, UTF-8."""

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        self._header = basic_auth(username, password)

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class NetRCAuth(Auth):
    """httpx's: Basic credentials for the request's host from a netrc file (`file`, else
    the NETRC variable's or ~/.netrc, as the netrc module finds it); a host it does not
    name goes without."""

    def __init__(self, file: str | os.PathLike | None = None) -> None:
        import netrc

        self._netrc = netrc.netrc(None if file is None else os.fspath(file))

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        found = self._netrc.authenticators(request.url.host)
        if found is not None and (found[0] or found[2]):
            request.headers["Authorization"] = basic_auth(found[0] or "", found[2] or "")
        yield request


class BearerAuth(Auth):
    """RFC 6750: `Authorization: Bearer TOKEN`."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        request.headers["Authorization"] = self._header
        yield request


_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_HASHES = {"MD5": hashlib.md5, "SHA": hashlib.sha1, "SHA-256": hashlib.sha256,
           "SHA-512": hashlib.sha512, "SHA-512-256": lambda b: hashlib.new("sha512_256", b)}


class DigestAuth(Auth):
    """RFC 7616 Digest, as httpx's: the first request goes without credentials; a 401 with
    a Digest challenge is answered once (qop=auth; MD5, SHA, SHA-256, SHA-512, SHA-512-256
    and their -sess), and later requests to the same origin answer the last challenge at
    once, counting its nonce's uses (nc) until a 401 brings a new one, whose count starts
    again at 1 (httpx answers it for any origin; here no credential goes to another). A
    challenge without realm or nonce, or whose qop has no "auth", is a ProtocolError
    (NotImplementedError for "auth-int" alone), as in httpx."""

    def __init__(self, username: str, password: str) -> None:
        self._user = username
        self._password = password
        self._nc = 0
        self._last_challenge: dict[str, str] | None = None
        self._challenged_by: tuple | None = None    # the origin the challenge came from

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        uri = request.url.raw_path.decode()
        url = request.url
        origin = (url.scheme, url.host, url.port)
        if self._last_challenge is not None and origin == self._challenged_by:
            header = self.authorization(request.method, uri, self._last_challenge)
            if header is not None:
                request.headers["Authorization"] = header
        response = yield request
        if response.status_code != 401:
            return
        for challenge in response.headers.get_list("www-authenticate"):
            at = challenge.lower().find("digest ")
            if at >= 0:
                params = {k.lower(): v or re.sub(r"\\(.)", r"\1", q)
                          for k, q, v in _PARAM.findall(challenge[at + 7:])}
                if "realm" not in params or "nonce" not in params:
                    raise ProtocolError("Malformed Digest WWW-Authenticate header",
                                        request=request)
                qops = _qops(params)
                if qops and "auth" not in qops:     # as httpx: an error, not the 401
                    if qops == ["auth-int"]:
                        raise NotImplementedError("Digest qop=auth-int (a hash of the "
                                                  "request body) is not supported")
                    raise ProtocolError(f"Unexpected qop value {params['qop']!r} in a "
                                        "Digest challenge", request=request)
                self._last_challenge, self._nc = params, 0   # a new nonce: counted afresh
                self._challenged_by = origin
                header = self.authorization(request.method, uri, params)
                if header is not None:
                    request.headers["Authorization"] = header
                    if response.cookies:  # what the challenge set goes back, as httpx's
                        response.cookies.set_cookie_header(request)
                    yield request
                return

    def authorization(self, method: str, uri: str, params: dict[str, str]) -> str | None:
        """The Authorization header answering `params` (a parsed challenge), or None
        for an algorithm or qop this does not speak."""
        algorithm = params.get("algorithm", "MD5")
        base, sess = algorithm.upper().removesuffix("-SESS"), algorithm.upper().endswith("-SESS")
        hash_ = _HASHES.get(base)
        qops = _qops(params)
        if hash_ is None or (qops and "auth" not in qops):
            return None

        def h(text: str) -> str:
            return hash_(text.encode()).hexdigest()

        realm, nonce = params.get("realm", ""), params.get("nonce", "")
        self._nc += 1
        nc = f"{self._nc:08x}"
        cnonce = self._get_client_nonce(self._nc, nonce.encode()).decode()
        ha1 = h(f"{self._user}:{realm}:{self._password}")
        if sess:
            ha1 = h(f"{ha1}:{nonce}:{cnonce}")
        ha2 = h(f"{method}:{uri}")
        if qops:
            digest = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        else:
            digest = h(f"{ha1}:{nonce}:{ha2}")
        fields = [f'username="{_quote(self._user)}"', f'realm="{_quote(realm)}"',
                  f'nonce="{_quote(nonce)}"', f'uri="{_quote(uri)}"',
                  f'response="{digest}"', f"algorithm={algorithm}"]
        if qops:
            fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        if "opaque" in params:
            fields.append(f'opaque="{_quote(params["opaque"])}"')
        return "Digest " + ", ".join(fields)

    def _get_client_nonce(self, nonce_count: int, nonce: bytes) -> bytes:
        """The client nonce (cnonce) of the answer counted ``nonce_count`` to ``nonce``:
        16 random hex digits, as httpx's, under httpx's name (its tests and code replace
        it to reproduce RFC 7616's examples)."""
        return os.urandom(8).hex().encode()


def _qops(params: dict[str, str]) -> list[str]:
    """The qop values a parsed Digest challenge offers."""
    return [q.strip() for q in params.get("qop", "").split(",") if q.strip()]


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


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
    raise TypeError(f'Invalid "auth" argument: {auth!r}')
