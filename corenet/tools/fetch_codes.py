"""corenet-fetch's exit codes, curl's: the error that ends a command (``CommandError``)
and the code of each error of corenet.https (``EXIT_CODES``, ``exit_code``)."""
from __future__ import annotations

from typing import Any, Callable

from corenet.https.errors import (ConnectError, DecodingError, InvalidURL, ProxyError,
                                  ReadError, RemoteProtocolError, TimeoutException, TLSError,
                                  TooManyRedirects, UnsupportedProtocol, WriteError)


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
    (UnsupportedProtocol, lambda e: str(e).startswith(("Request URL has no host",
                                                        "Request URL is missing")), 3),
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
    (RemoteProtocolError, None, 8),       # CURLE_WEIRD_SERVER_REPLY
    (WriteError, None, 55),               # CURLE_SEND_ERROR
    (ReadError, None, 56),                # CURLE_RECV_ERROR
]
FAILED_INIT = 2          # CURLE_FAILED_INIT: a bad command line
HTTP_RETURNED_ERROR = 22
WRITE_ERROR = 23
READ_ERROR = 26
SSL_CERTPROBLEM = 58     # a client certificate or CA files that cannot be loaded


def exit_code(exc: BaseException) -> int:
    """curl's exit code for an error of the transfer (1 when curl has none closer)."""
    for cls, test, code in EXIT_CODES:
        if isinstance(exc, cls) and (test is None or test(exc)):
            return code
    return 1
