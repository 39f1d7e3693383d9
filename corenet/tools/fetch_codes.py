"""corenet-fetch's exit codes, curl's: the error that ends a command (``CommandError``),
the code of each error of corenet.https (``EXIT_CODES``, ``exit_code``) and curl's words
for it (``curl_words``)."""
from __future__ import annotations

import re
from typing import Any, Callable

from corenet.https.errors import (ConnectError, ConnectTimeout, DecodingError, InvalidURL,
                                  ProxyError, ReadError, RemoteProtocolError, TimeoutException,
                                  TLSError, TooManyRedirects, UnsupportedProtocol, WriteError)


class CommandError(Exception):
    """The command ends with curl's exit code `code` (2, "failed to initialize", by
    default: a bad command line or environment) and this message."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# curl's exit code for each error of corenet.https: the first row whose class matches (and
# whose test, if any, accepts the error) wins. Subclasses come before their bases.
EXIT_CODES: list[tuple[type[BaseException], Callable[[Any], bool] | None, int]] = [
    # a URL without a host or a scheme (httpx's UnsupportedProtocol) is malformed to curl
    (UnsupportedProtocol, lambda e: str(e).startswith("Request URL is missing"), 3),
    (UnsupportedProtocol, None, 1),       # CURLE_UNSUPPORTED_PROTOCOL
    (InvalidURL, None, 3),                # CURLE_URL_MALFORMAT
    (TimeoutException, None, 28),         # CURLE_OPERATION_TIMEDOUT
    (TLSError, lambda e: "certificate verification failed" in str(e), 60),  # CURLE_PEER_FAILED_VERIFICATION
    (TLSError, None, 35),                 # CURLE_SSL_CONNECT_ERROR
    (ConnectError, lambda e: str(e).startswith("cannot resolve"), 6),  # CURLE_COULDNT_RESOLVE_HOST
    (ConnectError, None, 7),              # CURLE_COULDNT_CONNECT
    (ProxyError, None, 97),               # CURLE_PROXY
    (TooManyRedirects, None, 47),         # CURLE_TOO_MANY_REDIRECTS
    (DecodingError, None, 61),            # CURLE_BAD_CONTENT_ENCODING
    (RemoteProtocolError, lambda e: str(e).startswith(
        ("server closed the connection after", "server closed the connection in the middle "
         "of a chunked")), 18),           # CURLE_PARTIAL_FILE
    (RemoteProtocolError, lambda e: str(e).startswith("malformed response")
     and "chunk" in str(e), 56),          # a bad chunk: CURLE_RECV_ERROR, as curl's
    (RemoteProtocolError, None, 8),       # CURLE_WEIRD_SERVER_REPLY
    (WriteError, None, 55),               # CURLE_SEND_ERROR
    (ReadError, None, 56),                # CURLE_RECV_ERROR
]
FAILED_INIT = 2          # CURLE_FAILED_INIT: a bad command line
HTTP_RETURNED_ERROR = 22
WRITE_ERROR = 23
READ_ERROR = 26
RANGE_ERROR = 33         # -C: the server does not take a range
SSL_CERTPROBLEM = 58     # a client certificate or CA files that cannot be loaded
SSL_CIPHER = 59          # --ciphers that OpenSSL does not know
FILESIZE_EXCEEDED = 63   # a body larger than --max-filesize


def exit_code(exc: BaseException) -> int:
    """curl's exit code for an error of the transfer (1 when curl has none closer)."""
    for cls, test, code in EXIT_CODES:
        if isinstance(exc, cls) and (test is None or test(exc)):
            return code
    return 1


def curl_words(exc: BaseException, code: int, url: str, ms: int, received: int,
               expected: int | None, max_redirs: int,
               connect_to: Callable[[str, int], tuple[str, int]] | None = None) -> str:
    """The message curl gives for an error of the transfer, where scripts look for its
    words (`Failed to connect to HOST port N`, `Could not resolve host: HOST`, ...); the
    error's own for the others. `ms` is how long the transfer took, `received` the body
    bytes so far (of `expected`, when the length was said); `connect_to`, --connect-to's
    (host, port) for the URL's, which curl names where it connects."""
    from urllib.parse import urlsplit

    try:
        url = str(exc.request.url)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        pass
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    if connect_to is not None and code in (6, 7):
        host, port = connect_to(host, port)
    if code == 7 and re.match(r"cannot connect to .* port \d+\): ", str(exc)):  # refused
        return (f"Failed to connect to {host} port {port} after {ms} ms: "
                "Couldn't connect to server")
    if code == 6:
        return f"Could not resolve host: {host}"
    if code == 28:
        if isinstance(exc, ConnectTimeout):
            return f"Connection timed out after {ms} milliseconds"
        of = f" out of {expected}" if expected is not None else ""
        return f"Operation timed out after {ms} milliseconds with {received}{of} bytes received"
    if code == 47:
        return f"Maximum ({max_redirs}) redirects followed"
    if code == 60 and isinstance(exc, TLSError):
        return f"SSL certificate problem: {exc.reason or exc}"
    if code == 1 and isinstance(exc, UnsupportedProtocol) and parts.scheme:
        why = " (--proto-redir)" if "(--proto-redir)" in str(exc) else ""
        return f'Protocol "{parts.scheme}" not supported or disabled{why}'
    if code == 3:
        return "URL using bad/illegal format or missing URL"
    if code == 18:
        m = re.search(r"after (\d+) of (\d+) body bytes", str(exc))
        return (f"transfer closed with {int(m[2]) - int(m[1])} bytes remaining to read" if m
                else "transfer closed with outstanding read data remaining")
    if code == 56 and "chunk size" in str(exc):
        return "Illegal or missing hexadecimal sequence in chunked-encoding"
    if code == 61:
        return f"Error while processing content unencoding: {str(exc).rsplit(': ', 1)[-1]}"
    return f"{type(exc).__name__}: {exc}"
