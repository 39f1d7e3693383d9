"""corenet.https: a minimal, fast HTTP/1.1-over-TLS client for any asyncio loop.

    async with corenet.https.Client() as client:
        r = await client.get("https://example.org/")
"""
from .auth import Auth, BasicAuth, BearerAuth, DigestAuth
from .cache import Cache
from .diskcache import DiskCache
from .client import Client, make_ssl_context
from .cookies import Cookies
from .errors import (
    ConnectError, ConnectTimeout, DecodingError, HTTPError, HTTPStatusError, InsecureRedirect,
    InvalidURL, LocalProtocolError, PoolTimeout, ProxyError, ReadTimeout, RemoteProtocolError,
    StreamConsumed, TimeoutException, TLSError, TooManyRedirects, TransportError, WriteTimeout,
)
from .headers import Headers
from .limits import Limits
from .models import Request, Response
from .timeout import Timeout
from .urls import URL

__all__ = [
    "Client", "make_ssl_context", "Headers", "Limits", "Request", "Response", "Timeout", "URL",
    "Auth", "BasicAuth", "BearerAuth", "DigestAuth", "Cookies", "Cache", "DiskCache",
    "HTTPError", "TransportError", "ConnectError", "TLSError", "TimeoutException",
    "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout", "RemoteProtocolError",
    "LocalProtocolError", "InvalidURL", "DecodingError", "TooManyRedirects",
    "HTTPStatusError", "StreamConsumed", "InsecureRedirect", "ProxyError",
]
