"""Typed errors of corenet.https, arranged as httpx arranges its own, with messages a user
can act on (what failed, where, and the limit or reason involved).

    HTTPError
    ├── RequestError                  (.request: the request that failed)
    │   ├── TransportError
    │   │   ├── TimeoutException
    │   │   │   ├── ConnectTimeout, ReadTimeout, WriteTimeout, PoolTimeout
    │   │   ├── NetworkError
    │   │   │   ├── ConnectError
    │   │   │   │   └── TLSError                   (corenet's: the handshake failed)
    │   │   │   ├── ReadError, WriteError, CloseError
    │   │   ├── ProtocolError
    │   │   │   ├── LocalProtocolError, RemoteProtocolError
    │   │   ├── ProxyError
    │   │   └── UnsupportedProtocol                (also an InvalidURL)
    │   ├── DecodingError
    │   ├── TooManyRedirects
    │   └── InsecureRedirect                       (corenet's: https -> http refused)
    ├── HTTPStatusError                            (raise_for_status)
    ├── InvalidURL                                 (also a ValueError)
    ├── StreamError                                (also a RuntimeError)
    │   ├── StreamConsumed, StreamClosed, ResponseNotRead, RequestNotRead
    └── CookieConflict                             (also a KeyError)

Unlike httpx, InvalidURL, the StreamError family and CookieConflict are HTTPErrors too, so that
`except HTTPError` catches everything the client raises.
"""
from __future__ import annotations

from typing import Any


class HTTPError(Exception):
    """Base of every error raised by corenet.https. `request` is the request that failed
    when known (RuntimeError when not, as in httpx)."""

    def __init__(self, message: str, *, request: Any = None) -> None:
        super().__init__(message)
        self._request = request

    @property
    def request(self) -> Any:
        if self._request is None:
            raise RuntimeError("the .request property has not been set")
        return self._request

    @request.setter
    def request(self, request: Any) -> None:
        self._request = request


class RequestError(HTTPError):
    """Sending a request or receiving its response failed."""


class TransportError(RequestError):
    """The connection failed: network, TLS, timeout, a proxy or a peer breaking HTTP/1.1."""


# ---- timeouts ----
class TimeoutException(TransportError):
    """A stage of the request took longer than its timeout (or the total deadline)."""


class ConnectTimeout(TimeoutException):
    """Connecting (name lookup, TCP, proxy tunnel, TLS handshake) took too long."""


class ReadTimeout(TimeoutException):
    pass


class WriteTimeout(TimeoutException):
    pass


class PoolTimeout(TimeoutException):
    """Every connection stayed busy for longer than the pool timeout."""


# ---- the network ----
class NetworkError(TransportError):
    """The network failed while connecting, reading, writing or closing."""


class ConnectError(NetworkError):
    """No connection could be made (refused, unreachable, name not resolved)."""


class TLSError(ConnectError):
    """The TLS handshake failed; `reason` is OpenSSL's verification or alert reason
    (for example "certificate has expired", "Hostname mismatch ...",
    "unable to get local issuer certificate")."""

    def __init__(self, message: str, reason: str = "", *, request: Any = None) -> None:
        super().__init__(message, request=request)
        self.reason = reason


class ReadError(NetworkError):
    """The connection failed while the response was being received."""


class WriteError(NetworkError):
    """The connection failed while the request was being sent."""


class CloseError(NetworkError):
    """Closing the connection failed."""


# ---- the protocol ----
class ProtocolError(TransportError):
    """HTTP/1.1 was broken, by the request or by the server."""


class LocalProtocolError(ProtocolError, ValueError):
    """The request itself is invalid (for example CR/LF in a header value)."""


class RemoteProtocolError(ProtocolError):
    """The server broke HTTP/1.1: malformed response, bad framing, a limit exceeded, or the
    connection closed mid-response. The connection is discarded."""


class ProxyError(TransportError):
    """The proxy refused the tunnel or the request (407, 403, ...), or broke the protocol
    while setting it up."""


class InvalidURL(HTTPError, ValueError):
    """The URL cannot be requested (no host, bad port, malformed)."""


class UnsupportedProtocol(TransportError, InvalidURL):
    """The URL's scheme is neither https nor http (and no mounted transport takes it)."""


# ---- after the response arrived ----
class DecodingError(RequestError):
    """The body's Content-Encoding could not be decoded."""


class TooManyRedirects(RequestError):
    pass


class InsecureRedirect(RequestError):
    """A redirect from https to plain http was refused (the request, its body and any
    credentials would travel unencrypted); `response` is the redirect."""

    def __init__(self, message: str, *, response: Any, request: Any = None) -> None:
        super().__init__(message, request=request)
        self.response = response


class HTTPStatusError(HTTPError):
    """Raised by `Response.raise_for_status()` for an answer other than 2xx."""

    def __init__(self, message: str, *, request: Any, response: Any) -> None:
        super().__init__(message, request=request)
        self.response = response


# ---- using a response's body wrongly ----
class StreamError(HTTPError, RuntimeError):
    """A response body was used in a way its state does not allow."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class StreamConsumed(StreamError):
    """The body of a streamed response was already read, or a redirect or auth retry
    needs a request body that was a stream (it cannot be sent twice). Made without a
    message, it says what httpx's says."""

    def __init__(self, message: str = (
            "Attempted to read or stream some content, but the content has already been "
            "streamed. For requests, this could be due to passing a generator as request "
            "content, and then receiving a redirect response or a secondary request as part "
            "of an authentication flow.For responses, this could be due to attempting to "
            "stream the response content more than once.")) -> None:
        super().__init__(message)


class StreamClosed(StreamError):
    """The streamed response was closed before its body was read (httpx's message by
    default)."""

    def __init__(self, message: str = ("Attempted to read or stream content, but the stream "
                                       "has been closed.")) -> None:
        super().__init__(message)


class ResponseNotRead(StreamError):
    """`content`, `text` or `json()` of a streamed response whose body is not read yet
    (httpx's message by default)."""

    def __init__(self, message: str = ("Attempted to access streaming response content, "
                                       "without having called `read()`.")) -> None:
        super().__init__(message)


class RequestNotRead(StreamError):
    """`content` of a request whose body is a stream not read yet (`read()` or `aread()`
    reads it; httpx's message by default)."""

    def __init__(self, message: str = ("Attempted to access streaming request content, "
                                       "without having called `read()`.")) -> None:
        super().__init__(message)


class CookieConflict(HTTPError, KeyError):
    """`Cookies.get(name)` (or `cookies[name]`) matched several cookies: give the
    domain or path."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def attach_request(exc: HTTPError, request: Any) -> None:
    """Record the request an error belongs to, unless it already names one."""
    if exc._request is None:
        exc._request = request
