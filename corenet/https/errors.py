"""Typed errors of corenet.https: one base (`HTTPError`), httpx-like names, messages a user
can act on (what failed, where, and the limit or reason involved)."""
from __future__ import annotations

from typing import Any


class HTTPError(Exception):
    """Base of every error raised by corenet.https."""


class TransportError(HTTPError):
    """The connection failed: network, TLS, timeout or a peer breaking HTTP/1.1."""


class ConnectError(TransportError):
    """No connection could be made (refused, unreachable, name not resolved)."""


class TLSError(ConnectError):
    """The TLS handshake failed; `reason` is OpenSSL's verification or alert reason
    (for example "certificate has expired", "Hostname mismatch ...",
    "unable to get local issuer certificate")."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class ProxyError(ConnectError):
    """The proxy refused the tunnel or the request (407, 403, ...), or broke the protocol
    while setting it up."""


class TimeoutException(TransportError):
    """A stage of the request took longer than its timeout (or the total deadline)."""


class ConnectTimeout(TimeoutException, ConnectError):
    pass


class ReadTimeout(TimeoutException):
    pass


class WriteTimeout(TimeoutException):
    pass


class PoolTimeout(TimeoutException):
    """Every connection stayed busy for longer than the pool timeout."""


class RemoteProtocolError(TransportError):
    """The server broke HTTP/1.1: malformed response, bad framing, a limit exceeded, or the
    connection closed mid-response. The connection is discarded."""


class LocalProtocolError(HTTPError, ValueError):
    """The request itself is invalid (for example CR/LF in a header value)."""


class InvalidURL(HTTPError, ValueError):
    """The URL cannot be requested (unsupported scheme, no host, bad port)."""


class DecodingError(HTTPError):
    """The body's Content-Encoding could not be decoded."""


class TooManyRedirects(HTTPError):
    pass


class InsecureRedirect(HTTPError):
    """A redirect from https to plain http was refused (the request, its body and any
    credentials would travel unencrypted); `response` is the redirect."""

    def __init__(self, message: str, *, response: Any) -> None:
        super().__init__(message)
        self.response = response


class StreamConsumed(HTTPError):
    """The body of a streamed response was already read or closed."""


class HTTPStatusError(HTTPError):
    """Raised by `Response.raise_for_status()` for 4xx and 5xx answers."""

    def __init__(self, message: str, *, request: Any, response: Any) -> None:
        super().__init__(message)
        self.request = request
        self.response = response
