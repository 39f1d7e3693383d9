"""corenet.https: a fast HTTP/1.1 and HTTP/2 client for any asyncio loop, with httpx's
names (`import corenet.https as httpx`).

    async with corenet.https.AsyncClient() as client:    # httpx.AsyncClient
        r = await client.get("https://example.org/")

    with corenet.https.Client() as client:               # httpx.Client
        r = client.get("https://example.org/")
"""
from corenet import __version__  # where httpx has httpx.__version__
from .apps import ASGITransport, MockTransport, WSGITransport
from .auth import Auth, BasicAuth, BearerAuth, DigestAuth, NetRCAuth
from .cache import Cache
from .diskcache import DiskCache
from .client import USE_CLIENT_DEFAULT, AsyncClient, make_ssl_context
from .cookies import Cookies
from .errors import (
    CloseError, ConnectError, ConnectTimeout, CookieConflict, DecodingError, HTTPError,
    HTTPStatusError, InsecureRedirect, InvalidURL, LocalProtocolError, NetworkError,
    PoolTimeout, ProtocolError, ProxyError, ReadError, ReadTimeout, RemoteProtocolError,
    RequestError, RequestNotRead, ResponseNotRead, StreamClosed, StreamConsumed, StreamError,
    TimeoutException, TLSError, TooManyRedirects, TransportError, UnsupportedProtocol,
    WriteError, WriteTimeout,
)
from .headers import Headers
from .limits import Limits
from .models import AsyncByteStream, ByteStream, Request, Response, SyncByteStream
from .proxy import Proxy
from .sync import Client, delete, get, head, options, patch, post, put, request, stream
from .status import codes
from .timeout import Timeout
from .transport import AsyncBaseTransport, AsyncHTTPTransport, BaseTransport, create_ssl_context
from .urls import URL, QueryParams

# httpx's sync transport, httpx.HTTPTransport, is the same AsyncHTTPTransport: the Client
# runs it on its own loop.
HTTPTransport = AsyncHTTPTransport

__all__ = [
    "Client", "AsyncClient", "make_ssl_context", "create_ssl_context", "AsyncBaseTransport",
    "AsyncHTTPTransport",
    "BaseTransport", "HTTPTransport", "codes", "USE_CLIENT_DEFAULT", "ByteStream",
    "AsyncByteStream", "SyncByteStream",
    "MockTransport", "ASGITransport", "WSGITransport", "Client", "request", "stream",
    "get", "options", "head", "post", "put", "patch", "delete",
    "Headers", "Limits", "Request", "Response", "Timeout", "URL", "QueryParams", "Proxy",
    "Auth", "BasicAuth", "BearerAuth", "DigestAuth", "NetRCAuth", "Cookies", "Cache", "DiskCache",
    "HTTPError", "RequestError", "TransportError", "TimeoutException", "ConnectTimeout",
    "ReadTimeout", "WriteTimeout", "PoolTimeout", "NetworkError", "ConnectError", "TLSError",
    "ReadError", "WriteError", "CloseError", "ProtocolError", "LocalProtocolError",
    "RemoteProtocolError", "ProxyError", "UnsupportedProtocol", "DecodingError",
    "TooManyRedirects", "InsecureRedirect", "HTTPStatusError", "InvalidURL", "StreamError",
    "StreamConsumed", "StreamClosed", "ResponseNotRead", "RequestNotRead", "CookieConflict",
]
