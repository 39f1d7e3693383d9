"""Request and Response objects (httpx-shaped)."""
from __future__ import annotations

import codecs
import datetime
import json as _json
import warnings
from typing import Any, AsyncIterator, Callable, Iterator

from .cookies import Cookies
from .decoder import Decoder
from .errors import (
    HTTPStatusError, ReadError, RemoteProtocolError, RequestError, RequestNotRead, ResponseNotRead,
    StreamClosed, StreamConsumed, attach_request,
)
from .headers import Headers, HeaderTypes, parse_links
from .limits import DEFAULT_LIMITS, Limits
from .multipart import FileStream, boundary_of, encode_multipart
from .status import REASONS
from .urls import URL, encode_params


_new_object = object.__new__
# raise_for_status()'s words, httpx's.
_STATUS_KINDS = {1: "Informational response", 3: "Redirect response", 4: "Client error",
                 5: "Server error"}
_STATUS_DOCS = "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/"
# What str.splitlines ends a line at.
_LINE_ENDS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _known_codec(name: str) -> bool:
    """Whether Python has a codec of that name."""
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


class Request:
    """`Request("POST", url, json={...})` as in httpx; `content` is the body's bytes, as
    httpx's (b"" for none; a stream's once `read()` or `aread()` has read it). As in httpx,
    its headers have Host, and Content-Length or Transfer-Encoding, once it is made.

    For transports, `body` is the body as it will be sent: None (no body), bytes, or an
    iterable or async iterable of bytes (a stream, sent chunked)."""

    __slots__ = ("method", "url", "headers", "body", "_extensions", "_stream")

    def __init__(self, method: str, url: URL | str, headers: HeaderTypes = None,
                 content: Any = None, *, params: Any = None, cookies: Any = None,
                 data: Any = None, files: Any = None, json: Any = None, stream: Any = None,
                 extensions: dict | None = None) -> None:
        self.method = method.upper()
        if params:
            from .urls import with_params

            url = with_params(str(url), params)
        self.url = url if isinstance(url, URL) else URL(url)
        self.headers = headers if headers.__class__ is Headers else Headers(headers)
        if cookies and "cookie" not in self.headers:
            cookie = (cookies if isinstance(cookies, Cookies) else Cookies(cookies)) \
                .header_for(str(self.url))
            if cookie:
                self.headers["Cookie"] = cookie
        self._extensions = extensions
        self._stream: _OnceStream | None = None
        if stream is not None:
            # httpx's distinction: a stream is sent as it is, no header added for it.
            self.body = stream
            return
        if data or files or json is not None or isinstance(content, str):
            content, body_headers = encode_body(content, data, json, files,
                                                self.headers.get("content-type"))
            if content.__class__ is bytes and content and \
                    "transfer-encoding" not in self.headers:
                # httpx's order: length, then type (an empty body: framed as none below)
                self.headers.setdefault("Content-Length", str(len(content)))
            for k, v in body_headers:
                self.headers.setdefault(k, v)
        elif content is not None and content.__class__ is not bytes:
            # checked, an iterator wrapped, a file's size its Content-Length
            content, body_headers = encode_body(content, None, None)
            for k, v in body_headers:
                if "transfer-encoding" not in self.headers:
                    self.headers.setdefault(k, v)
        if content.__class__ is bytes and not content:
            content = None                  # b"": no body, framed as httpx frames none
        self.body = content
        self.complete_headers()

    @classmethod
    def outgoing(cls, method: str, url: URL, headers: Headers, content: Any,
                 extensions: dict | None = None) -> "Request":
        """For a client: the request as it sends it, its headers taken as they are
        (shared, never changed here), Host and framing left to the wire."""
        req = _new_object(cls)
        req.method = method
        req.url = url
        req.headers = headers
        req.body = content
        req._extensions = extensions
        req._stream = None
        return req

    def complete_headers(self) -> None:
        """httpx's request headers: Host first (and Content-Length: 0 for a POST, PUT or
        PATCH without a body), the body's Content-Length or Transfer-Encoding last, for
        those not given. A new Headers when any is added: the given one is not changed."""
        h = self.headers
        first: list[tuple[str, str]] = []
        last: list[tuple[str, str]] = []
        if "host" not in h:
            url = self.url
            host = url.raw_host.decode("ascii")
            if host:
                host = f"[{host}]" if ":" in host else host
                first.append(("Host", host if url.port is None else f"{host}:{url.port}"))
        if "content-length" not in h and "transfer-encoding" not in h:
            body = self.body
            if body is None:
                if self.method in ("POST", "PUT", "PATCH"):
                    first.append(("Content-Length", "0"))
            elif isinstance(body, bytes):
                last.append(("Content-Length", str(len(body))))
            else:
                last.append(("Transfer-Encoding", "chunked"))
        if first or last:
            self.headers = Headers(first + list(h.frozen()) + last, h._encoding)

    @property
    def extensions(self) -> dict:
        ext = self._extensions
        if ext is None:
            ext = self._extensions = {}
        return ext

    @extensions.setter
    def extensions(self, value: dict) -> None:
        self._extensions = value

    @property
    def stream(self) -> Any:
        """httpx's: the body as a byte stream, to iterate (sync or async) for its bytes:
        a ByteStream over bytes, else the iterable given, which a generator (or any
        iterator) gives once: StreamConsumed the second time, as in httpx."""
        body = self.body
        if body is None or isinstance(body, bytes):
            return ByteStream(body or b"")
        if self._stream is None or self._stream.source is not body:
            self._stream = _OnceStream(body)
        return self._stream

    @stream.setter
    def stream(self, value: Any) -> None:
        """httpx's: the body is sent from `value`, a byte stream (sync or async), as it
        is: the headers are left as they are (their Content-Length, if any, frames it)."""
        self.body = (value._stream or None) if value.__class__ is ByteStream else value
        self._stream = None

    @property
    def content(self) -> bytes:
        """The body's bytes (b"" for none), as httpx's: a stream's once `read()` or
        `aread()` has read it, RequestNotRead before."""
        body = self.body
        if body is None:
            return b""
        if isinstance(body, bytes):
            return body
        raise RequestNotRead()

    def read(self) -> bytes:
        """The body as bytes (b"" for none); a sync iterable is read and kept."""
        body = self.body
        if body is None:
            return b""
        if isinstance(body, bytes):
            return body
        if not hasattr(body, "__iter__"):
            raise StreamConsumed("the request body is an async stream: use await aread()")
        return self._keep(b"".join(bytes(p) for p in body))

    async def aread(self) -> bytes:
        """The body as bytes (b"" for none); a stream is read and kept."""
        body = self.body
        if body is not None and hasattr(body, "__aiter__"):
            return self._keep(b"".join([bytes(p) async for p in body]))
        return self.read()

    def _keep(self, data: bytes) -> bytes:
        """The body read whole: kept, here and by a once-only stream for the requests
        sent again with it (a retry after a challenge, a redirect)."""
        if isinstance(self.body, (_SyncOnce, _AsyncOnce)):
            self.body.content = data
        self.body = data
        return data

    def __repr__(self) -> str:
        return f"<Request({self.method!r}, {str(self.url)!r})>"   # httpx's

    def __getstate__(self) -> tuple:
        """Pickled as httpx pickles a request: method, URL, headers and a body of bytes;
        a streamed body (its source stays here) is StreamClosed when the copy is read,
        the extensions left out."""
        body = self.body
        if body is not None and body.__class__ is not bytes:
            body = _Unattached()
        return self.method, self.url, self.headers, body

    def __setstate__(self, state: tuple) -> None:
        self.method, self.url, self.headers, self.body = state
        self._extensions = None
        self._stream = None


def json_bytes(value: Any) -> bytes:
    """`json=` as httpx sends it: compact, UTF-8, and a ValueError for NaN and the
    infinities, which JSON does not have."""
    return _json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                       allow_nan=False).encode()


def encode_body(content: Any, data: Any, json: Any, files: Any = None,
                content_type: str | None = None) -> tuple[Any, list[tuple[str, str]]]:
    """The body and the headers that describe it (framing is added when it is sent);
    `content_type`, the caller's own, whose multipart boundary a `files=` body takes."""
    if files:
        raw, ctype = encode_multipart(data, files, boundary_of(content_type))
        if raw.__class__ is bytes:
            return raw, [("Content-Type", ctype)]
        length = raw.length  # type: ignore[union-attr]
        return raw, ([("Content-Length", str(length))] if length is not None else []) + \
            [("Content-Type", ctype)]
    if json is not None:
        return json_bytes(json), [("Content-Type", "application/json")]
    if isinstance(data, (str, bytes)):  # httpx's old form of content=: taken, with its warning
        warnings.warn("Use 'content=<...>' to upload raw bytes/text content.",
                      DeprecationWarning, stacklevel=3)
        content, data = data, None
    if data:  # True as "true", None as "", a list as the name repeated: httpx's; {} is none
        raw = encode_params(data).encode()
        return raw, [("Content-Type", "application/x-www-form-urlencoded")]
    if content is None:
        return None, []
    if isinstance(content, str):
        content = content.encode()
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content), []
    if hasattr(content, "read") and not hasattr(content, "__aiter__"):
        # a file object: read as sent, its size the Content-Length when it can tell it
        body = FileStream([content])
        return body, [] if body.length is None else [("Content-Length", str(body.length))]
    if hasattr(content, "__anext__"):
        return _AsyncOnce(content), []
    if hasattr(content, "__next__"):
        return _SyncOnce(content), []
    if isinstance(content, dict):  # iterable, but a form (data=) or JSON (json=) meant
        raise TypeError("content must be bytes, str or an (async) iterable of bytes, not "
                        "dict: send a form with data= or JSON with json=")
    if hasattr(content, "__aiter__") or hasattr(content, "__iter__"):
        return content, []  # an iterable that gives its bytes again each time
    raise TypeError(f"Unexpected type for 'content', {type(content)!r}")


class _SyncOnce:
    """A request body from an iterator: iterated once, StreamConsumed the second time
    (an auth flow's or a redirect's retry), never sent empty; once a transport has read
    it whole (`Request.read()`, as a MockTransport does) those bytes are sent again, as
    httpx replays a body read into memory."""

    __slots__ = ("source", "used", "content")

    def __init__(self, source: Any) -> None:
        self.source, self.used = source, False
        self.content: bytes | None = None

    def __iter__(self) -> Iterator[Any]:
        if self.content is not None:
            return iter((self.content,))
        if self.used:
            raise StreamConsumed()
        self.used = True
        return iter(self.source)

    def close(self) -> None:
        """Closes the iterator (a generator's ``finally`` runs), when it can be."""
        if callable(getattr(self.source, "close", None)):
            self.source.close()


class _AsyncOnce:
    """A request body from an async iterator, as :class:`_SyncOnce`."""

    __slots__ = ("source", "used", "content")

    def __init__(self, source: Any) -> None:
        self.source, self.used = source, False
        self.content: bytes | None = None

    def __aiter__(self) -> AsyncIterator[Any]:
        if self.content is not None:
            return _one(self.content)
        if self.used:
            raise StreamConsumed()
        self.used = True
        return self.source.__aiter__()  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Closes the iterator (an async generator's ``finally`` runs), when it can be."""
        closer = getattr(self.source, "aclose", None)
        if closer is not None:
            await closer()


async def _one(content: bytes) -> AsyncIterator[bytes]:
    yield content


def body_spent(body: Any) -> bool:
    """Whether `body` (a Request's) came from a generator or iterator that was sent and
    not read into memory: sending it again is StreamConsumed."""
    return isinstance(body, (_SyncOnce, _AsyncOnce)) and body.used and body.content is None


class SyncByteStream:
    """httpx's interface of a body given as a stream to a sync caller: iterate it for
    the bytes, `close()` when done (called once it is read or its response closed)."""

    def __iter__(self) -> Iterator[bytes]:
        raise NotImplementedError("a SyncByteStream gives its bytes by __iter__")

    def close(self) -> None:
        pass


class AsyncByteStream:
    """httpx's interface of a body given as a stream on a loop: `async for` it for the
    bytes, `aclose()` when done (awaited once it is read or its response closed)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        raise NotImplementedError("an AsyncByteStream gives its bytes by __aiter__")
        yield b""  # pragma: no cover  (makes this an async generator)

    async def aclose(self) -> None:
        pass


class ByteStream(AsyncByteStream, SyncByteStream):
    """A body of bytes as a stream of one piece, for either kind of caller."""

    def __init__(self, stream: bytes) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        yield self._stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._stream


class Response:
    """`content`, `text` and `json()` need the body read: always true for `client.get()`
    and friends, after `await r.aread()` for a streamed response.

    Made by hand (a MockTransport's handler, a test) it takes httpx's arguments:
    `Response(200, json={...})`, `text=`, `html=`, `content=` (bytes, str, or an
    iterable or async iterable of bytes for a streamed body), `headers=` (any form),
    `request=`, `extensions=`, `history=`, `default_encoding=`."""

    # A hand-made response's streamed body (what `stream=` or an iterable `content=`
    # gave): closed, through httpx's byte-stream interface (`aclose()`, else `close()`),
    # once it is read or the response is closed.
    _source: Any = None
    # Set once a streamed body is read whole: only its decoded bytes are kept, and
    # `aiter_raw()` is StreamConsumed.
    _raw_gone = False
    # httpx's: the request a redirect not followed asks for (None otherwise).
    next_request: Request | None = None
    num_bytes_downloaded = 0  # of the body as received (before decoding)
    _elapsed: datetime.timedelta | float = 0.0  # set when closed
    _encoding: str | None = None  # assigned, or found once asked
    _limits: Limits = DEFAULT_LIMITS  # what bounds the decoding of an encoded body
    _cookies: Any = None  # the jar of what it sets, made once asked
    _portal: Any = None  # runs a coroutine to its end, for a sync client's stream
    _text_read = False  # `text` was read: the encoding may no longer change (httpx's rule)

    def __init__(self, status_code: int, *, headers: HeaderTypes = None,
                 content: Any = None, text: str | None = None, html: str | None = None,
                 json: Any = None, stream: Any = None, request: Request | None = None,
                 extensions: dict | None = None, history: list | None = None,
                 default_encoding: "str | Callable[[bytes], str | None]" = "utf-8",
                 reason: bytes = b"", http_version: str = "1.1",
                 raw_headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.status_code = status_code
        self._reason = reason
        self.http_version = "HTTP/1.1" if http_version == "1.1" else "HTTP/" + http_version
        self._raw_headers = raw_headers
        self._request = request
        self.url = request.url if request is not None else URL()
        self.history: list[Response] = history if history is not None else []
        # "ssl_object": the connection's SSLObject (session_reused, version, cipher);
        # "connection_reused": whether the request went on a pooled keep-alive connection;
        # "server_addr": the (address, port, ...) connected to (the proxy's, through one).
        # "resolved_at": when (the loop's time) the connection's name had been resolved.
        self.extensions: dict[str, Any] = extensions if extensions is not None else {}
        self.default_encoding = default_encoding
        # async (streaming, partial) -> list[bytes]; [] at the end (attach_stream)
        self._chunks: Callable[..., Any] | None = None
        self._on_close: Callable[[bool], None] | None = None
        self._content_encoding = ""  # set when the body has a Content-Encoding
        # Whether the headers hold a Set-Cookie, to store (known without decoding them).
        self.has_set_cookie = False
        self._started_at = 0.0
        self._clock: Callable[[], float] | None = None
        if raw_headers is not None:  # from the network or the cache: Headers already
            self._headers: Headers = headers  # type: ignore[assignment]
            self._content = content
        else:
            self._headers = headers if headers.__class__ is Headers else Headers(headers)
            self._content = None
            self._set_body(content if stream is None else stream, text, html, json)
        self.is_closed = self._content is not None
        self.is_stream_consumed = self._content is not None

    def _set_body(self, content: Any, text: str | None, html: str | None, json: Any) -> None:
        """A hand-made response's body, and the headers httpx adds for it."""
        h = self._headers
        ctype = None
        if json is not None:
            content = json_bytes(json)
            ctype = "application/json"
        elif html is not None:
            content, ctype = html.encode(), "text/html; charset=utf-8"
        elif text is not None:
            content, ctype = text.encode(), "text/plain; charset=utf-8"
        elif content is None:
            content = b""
        elif isinstance(content, str):
            content = content.encode()
        if isinstance(content, (bytes, bytearray, memoryview)):
            content = bytes(content)
            self.num_bytes_downloaded = len(content)
            if content and "content-length" not in h and "transfer-encoding" not in h:
                h["Content-Length"] = str(len(content))
            if ctype is not None and "content-type" not in h:
                h["Content-Type"] = ctype  # after the length, as httpx orders them
            self.has_set_cookie = "set-cookie" in h
            coding = h.get("content-encoding")
            if coding:
                self._content_encoding = coding
                dec = self._decoder(True)
                if dec is not None:
                    out = list(dec.decode(content))
                    content = b"".join(out + list(dec.flush()))
            self._content = content
            return
        if not (hasattr(content, "__aiter__") or hasattr(content, "__iter__")):
            raise TypeError(f"Unexpected type for 'content', {type(content)!r}")
        if "content-length" not in h and "transfer-encoding" not in h:
            h["Transfer-Encoding"] = "chunked"  # as httpx heads a streamed body
        self.has_set_cookie = "set-cookie" in h
        self._content_encoding = h.get("content-encoding") or ""
        if hasattr(content, "__anext__"):  # an iterator (a generator): read once, then
            content = _AsyncOnce(content)  # StreamConsumed, as httpx's stream of one
        elif hasattr(content, "__next__"):
            content = _SyncOnce(content)
        self._chunks = _chunk_source(content)
        self._source = content

    @classmethod
    def from_head(cls, head: Any, request: Request, extensions: dict[str, Any],
                  started_at: float, clock: Callable[[], float],
                  limits: Limits) -> "Response":
        """For a transport: the response whose `head` (an exchange.ResponseHead: status,
        reason, version, raw headers, and whether they hold a Set-Cookie or a
        Content-Encoding) has come for `request`; `started_at` on `clock` is when the
        request began (elapsed); an encoded body is decoded within `limits`. Its body
        comes whole (`take_body`) or as a stream (`attach_stream`)."""
        resp = _new_object(cls)
        resp.status_code = head.status_code
        resp._reason = head.reason
        version = head.http_version
        resp.http_version = "HTTP/1.1" if version == "1.1" else "HTTP/" + version
        resp._raw_headers = head.headers
        resp._request = request
        resp.url = request.url
        resp.history = []
        resp.extensions = extensions
        resp.default_encoding = "utf-8"
        resp._chunks = None
        resp._on_close = None
        coding = head.content_encoding
        if coding:
            resp._content_encoding = coding.decode("latin-1")
            resp._limits = limits
        else:
            resp._content_encoding = ""
        resp.has_set_cookie = head.set_cookie
        resp._started_at = started_at
        resp._clock = clock
        resp._headers = None  # type: ignore[assignment]  # decoded when first asked
        resp._content = None
        resp.is_closed = False
        resp.is_stream_consumed = False
        return resp

    def attach_stream(self, chunks: Callable[..., Any],
                      on_close: Callable[[bool], None]) -> None:
        """For a transport: the body is read through `chunks` (async, `(streaming,
        partial)` -> list[bytes], [] at the end: the read_body of HTTPConnection) and
        `on_close(complete)` is called once it is read or the response closed."""
        self._chunks = chunks
        self._on_close = on_close

    @property
    def stream(self) -> "AsyncByteStream | SyncByteStream":
        """httpx's: the body as received, as a byte stream (the one given, for a
        hand-made response): iterate it, sync or async, then close it."""
        if self._source is not None:
            return self._source  # type: ignore[no-any-return]
        return _BodyStream(self, self._chunks)

    @stream.setter
    def stream(self, value: Any) -> None:
        """httpx's: the body is read from `value` from now on, a byte stream (sync or
        async), such as one wrapping the stream read from this property before, which
        still reads the body as received. A sync stream is read on the caller's thread."""
        self._source = value
        self._chunks = _chunk_source(value)

    def read_through(self, portal: Any) -> None:
        """For a sync client: the body's coroutines run to their end through `portal`
        (its `run(awaitable)`), so the sync read and iteration methods work."""
        self._portal = portal

    @property
    def limits(self) -> Limits:
        """What bounds the decoding of the body (max_body_bytes, decompression)."""
        return self._limits

    @limits.setter
    def limits(self, value: Limits) -> None:
        self._limits = value

    @property
    def is_read(self) -> bool:
        """The whole body is in `content`."""
        return self._content is not None

    @property
    def raw_reason(self) -> bytes:
        """The reason phrase as the server sent it (b"" for HTTP/2 and hand-made ones)."""
        return self._reason

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]] | None:
        """The headers as received, (name, value) bytes pairs; None when made by hand."""
        return self._raw_headers

    @property
    def headers(self) -> Headers:
        """Decoded on first use: many callers only look at status and content."""
        h = self._headers
        if h is None:
            h = self._headers = Headers.from_raw(self._raw_headers)  # type: ignore[arg-type]
        return h

    @headers.setter
    def headers(self, value: HeaderTypes) -> None:
        self._headers = value if value.__class__ is Headers else Headers(value)

    @property
    def reason_phrase(self) -> str:
        """As httpx's: the phrase of the status line as sent (empty when the line has
        none), or the code's standard phrase when there was no status line (HTTP/2, a
        response made by hand)."""
        phrase = self.extensions.get("reason_phrase", self._reason)
        if phrase or "reason_phrase" in self.extensions:
            return phrase.decode("latin-1")  # type: ignore[no-any-return]
        return REASONS.get(self.status_code, "")

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise ResponseNotRead()
        return self._content

    @property
    def charset_encoding(self) -> str | None:
        """The charset the Content-Type names, lower-cased, as httpx has it (whether Python
        knows it or not: `encoding` passes over one it does not)."""
        ctype = self.headers.get("content-type", "") or ""
        for param in ctype.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "charset" and value:
                return value.strip().strip('"\'').lower() or None
        return None

    @property
    def encoding(self) -> str:
        """The charset of the Content-Type; without one, `default_encoding` (a name, or a
        callable given the body that returns one or None); "utf-8" when neither says.
        Assignable, as in httpx, before `text` is first read."""
        enc = self._encoding
        if enc is None:
            enc = self.charset_encoding
            if enc is not None and not _known_codec(enc):
                enc = None
            if enc is None:
                default = self.default_encoding
                if isinstance(default, str):
                    enc = default
                elif self._content is not None:
                    enc = default(self._content)
                else:
                    return "utf-8"  # not cached: the body may yet tell the callable
            self._encoding = enc = enc or "utf-8"
        return enc

    @encoding.setter
    def encoding(self, value: str) -> None:
        if self._text_read:
            raise ValueError("Setting encoding after `text` has been accessed is not allowed.")
        self._encoding = value

    @property
    def request(self) -> Request:
        """The request this response answers (RuntimeError on a hand-made response that
        was given none, as in httpx), with the headers it was sent with: Host and the
        body's framing, which the client's own requests leave to the wire, are added on
        first look."""
        request = self._request
        if request is None:
            raise RuntimeError("The request instance has not been set on this response.")
        if "host" not in request.headers:
            request.complete_headers()
        return request

    @request.setter
    def request(self, value: Request) -> None:
        self._request = value

    @property
    def cookies(self) -> Any:
        """The cookies this response sets (its Set-Cookie headers, under its URL's rules),
        as a Cookies jar."""
        jar = self._cookies
        if jar is None:
            from .cookies import Cookies

            jar = self._cookies = Cookies()
            set_cookie = self.headers.get_list("set-cookie")
            if set_cookie:
                jar.extract(str(self.url), set_cookie)
        return jar

    @property
    def links(self) -> dict[str | None, dict[str, str]]:
        """The Link header's links (RFC 8288) by their rel, else by URL, as httpx has them:
        `r.links["next"]["url"]` for the next page of a paginated API."""
        return {link.get("rel") or link.get("url"): link
                for link in parse_links(self.headers.get_list("link"))}

    @property
    def text(self) -> str:
        self._text_read = True
        return self.content.decode(self.encoding, errors="replace")

    def json(self, **kwargs: Any) -> Any:
        return _json.loads(self.content, **kwargs)

    @property
    def is_informational(self) -> bool:
        return 100 <= self.status_code < 200

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        """A 3xx status, as httpx's: not every one is a redirect to follow
        (``has_redirect_location`` says which)."""
        return 300 <= self.status_code < 400

    @property
    def is_client_error(self) -> bool:
        return 400 <= self.status_code < 500

    @property
    def is_server_error(self) -> bool:
        return 500 <= self.status_code < 600

    @property
    def is_error(self) -> bool:
        return 400 <= self.status_code < 600

    @property
    def has_redirect_location(self) -> bool:
        """A redirect status (301, 302, 303, 307, 308) with a Location to follow."""
        return self.status_code in (301, 302, 303, 307, 308) and "location" in self.headers

    def raise_for_status(self) -> "Response":
        """HTTPStatusError for any status but 2xx (1xx and 3xx too, as in httpx);
        otherwise the response itself, so that `r = (await c.get(u)).raise_for_status()`
        chains."""
        if self._request is None:
            raise RuntimeError("Cannot call `raise_for_status` as the request instance has "
                               "not been set on this response.")
        code = self.status_code
        if 200 <= code < 300:
            return self
        message = (f"{_STATUS_KINDS.get(code // 100, 'Invalid status code')} "
                   f"'{code} {self.reason_phrase}' for url '{self.url}'\n")
        if self.has_redirect_location:
            message += f"Redirect location: '{self.headers['location']}'\n"
        message += f"For more information check: {_STATUS_DOCS}{code}"
        raise HTTPStatusError(message, request=self._request, response=self)

    def aiter_raw(self, chunk_size: int | None = None) -> AsyncIterator[Any]:
        """Body bytes as received (still compressed), chunk by chunk (of `chunk_size`
        bytes each, but the last, when given). Once a streamed body is read (`read()`,
        a Client's `get()`) its raw bytes are gone: StreamConsumed, as in httpx. A body
        given whole (bytes content, a cached response, an app's) is given again."""
        it = _consumed() if self._raw_gone else self._aiter_raw()
        return it if chunk_size is None else _sized(it, chunk_size)

    def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[Any]:
        """Body bytes decoded (gzip, deflate, br, zstd undone), piece by piece; a decoded
        piece is at most `Limits.max_decoded_chunk` bytes, however far the body inflates
        (exactly `chunk_size` bytes, but the last, when given)."""
        it = self._aiter_decoded()
        return it if chunk_size is None else _sized(it, chunk_size)

    def aiter_text(self, chunk_size: int | None = None) -> AsyncIterator[Any]:
        """The decoded body as text (in `encoding`, undecodable bytes replaced), piece by
        piece; a character split between pieces comes out whole (`chunk_size`: pieces
        of that many characters, but the last)."""
        it = self._aiter_text()
        return it if chunk_size is None else _sized(it, chunk_size)

    async def _aiter_raw(self, chunks: Callable[..., Any] | None = None
                         ) -> AsyncIterator[bytes]:
        if chunks is not None and chunks is not self._chunks:
            # The body as received, read through the stream set in its place, which
            # does the reading's bookkeeping (see the `stream` setter).
            while True:
                pieces = await chunks()
                if not pieces:
                    return
                for c in pieces:
                    yield c
        if self._content is not None:
            if self._content:
                yield self._content
            return
        self._check_unread()
        self.is_stream_consumed = True
        ok = False
        try:
            while True:
                pieces = await self._chunks()  # type: ignore[misc]
                if not pieces:
                    break
                for c in pieces:
                    self.num_bytes_downloaded += len(c)
                    yield c
            ok = True
        except RequestError as exc:
            attach_request(exc, self._request)
            raise
        finally:
            self._close(ok)
            if self._source is not None:
                await self._close_source()

    def _check_unread(self) -> None:
        if self.is_stream_consumed:
            raise StreamConsumed()
        if self.is_closed:
            raise StreamClosed()

    def _decoder(self, whole: bool) -> Decoder | None:
        if not self._content_encoding:
            return None
        lim = self._limits
        # A body read whole is decoded in pieces of max_decoded_chunk too: pieces that
        # small come from (and go back to) the heap, where pieces of megabytes would be
        # fresh pages to fault in on every response.
        dec = Decoder(self._content_encoding, lim.max_body_bytes if whole else
                      lim.max_stream_bytes, lim.max_decoded_chunk, lim.zstd_window_log_max)
        return dec if dec else None

    async def _aiter_decoded(self) -> AsyncIterator[bytes]:
        if self._content is not None:
            if self._content:
                yield self._content
            return
        dec = self._decoder(False)
        if dec is None:
            async for raw in self._aiter_raw():
                yield raw
            return
        async for raw in self._aiter_raw():
            for out in dec.decode(raw):
                yield out
        for out in dec.flush():
            yield out

    async def _aiter_text(self) -> AsyncIterator[str]:
        if self._content is not None:
            if self._content:
                yield self.text
            return
        dec = codecs.getincrementaldecoder(self.encoding)(errors="replace")
        async for piece in self._aiter_decoded():
            text = dec.decode(piece)
            if text:
                yield text
        text = dec.decode(b"", True)
        if text:
            yield text

    async def aiter_lines(self) -> AsyncIterator[str]:
        """The body as text lines without their line ends (str.splitlines' rules); a line
        longer than `Limits.max_line_length` raises RemoteProtocolError."""
        pending = ""
        limit = self._limits.max_line_length
        async for text in self._aiter_text():
            lines = (pending + text if pending else text).splitlines(True)
            last = lines[-1]
            # The last line goes on in the next piece unless it ended (and a "\r" may
            # still be the first half of "\r\n").
            if last[-1] == "\r" or last[-1] not in _LINE_ENDS:
                pending = lines.pop()
                if len(pending) > limit:
                    raise RemoteProtocolError(f"a line of the response body is longer than "
                                              f"{limit} characters (max_line_length)")
            else:
                pending = ""
            for line in lines:
                yield line[:-2] if line[-2:] == "\r\n" else line[:-1]
        if pending:
            yield pending[:-1] if pending[-1] == "\r" else pending

    async def aread(self) -> bytes:
        if self._content is not None:
            return self._content
        self._check_unread()
        self.is_stream_consumed = True
        ok = False
        try:
            # An encoded body is decoded as it comes, while the server is still sending
            # (or compressing) the rest, rather than all at once after the last byte.
            dec = self._decoder(True)
            parts: list[bytes] = []
            while True:
                chunks = await self._chunks(False, dec is not None)  # type: ignore[misc]
                if not chunks:
                    break
                self.num_bytes_downloaded += sum(map(len, chunks))
                parts += chunks if dec is None else _decode(dec, chunks)
            if dec is not None:
                parts += dec.flush()
            self._content = _joined(parts)
            self._raw_gone = ok = True
        except RequestError as exc:
            attach_request(exc, self._request)
            raise
        finally:
            self._close(ok)
            if self._source is not None:
                await self._close_source()
        return self._content

    def take_body(self, parts: list[bytes]) -> None:
        """For a transport: the whole body has come already (`parts`, as the stream's
        chunks would have given it); the response is read and closed without waiting,
        as `aread()` would have left it."""
        if self.is_stream_consumed or self.is_closed:
            self._check_unread()
        self.is_stream_consumed = True
        self.num_bytes_downloaded = sum(map(len, parts))
        ok = False
        try:
            dec = self._decoder(True) if self._content_encoding else None
            if dec is not None:
                parts = _decode(dec, parts)
                parts += dec.flush()
            self._content = parts[0] if len(parts) == 1 else b"".join(parts)
            self._raw_gone = ok = True
        except RequestError as exc:
            attach_request(exc, self._request)
            raise
        finally:
            self._close(ok)

    def _close(self, complete: bool) -> None:
        if self.is_closed:
            return
        self.is_closed = True
        if self._clock is not None:
            self._elapsed = self._clock() - self._started_at
        cb = self._on_close
        self._on_close = None
        if cb is not None:
            cb(complete)

    @property
    def elapsed(self) -> datetime.timedelta:
        """From the request's start to the response's close; kept as seconds and made a
        timedelta only when asked. Before the body is read or the response closed it is not
        known yet: RuntimeError, as in httpx (a response made by hand with its content is
        closed, its elapsed zero)."""
        if not self.is_closed:
            raise RuntimeError("'.elapsed' may only be accessed after the response has been "
                               "read or closed")
        e = self._elapsed
        if isinstance(e, datetime.timedelta):
            return e
        return datetime.timedelta(seconds=e)

    @elapsed.setter
    def elapsed(self, value: datetime.timedelta) -> None:
        self._elapsed = value

    async def aclose(self) -> None:
        """Close a streamed response; an unread body costs its connection (discarded)."""
        self._close(False)
        if self._source is not None:
            await self._close_source()

    async def _close_source(self) -> None:
        source, self._source = self._source, None
        closer = getattr(source, "aclose", None)
        if closer is not None:
            await closer()
        elif callable(getattr(source, "close", None)):
            source.close()

    # ---- the sync face (a Client's responses) ----
    def read(self) -> bytes:
        """The whole body (`aread()` for a sync caller)."""
        if self._content is not None:
            return self._content
        return self._driver()(self.aread())[1]

    def iter_raw(self, chunk_size: int | None = None) -> Iterator[bytes]:
        return self._iterate(self.aiter_raw(chunk_size))

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        return self._iterate(self.aiter_bytes(chunk_size))

    def iter_text(self, chunk_size: int | None = None) -> Iterator[str]:
        return self._iterate(self.aiter_text(chunk_size))

    def iter_lines(self) -> Iterator[str]:
        return self._iterate(self.aiter_lines())

    def close(self) -> None:
        """Close a streamed response (`aclose()` for a sync caller)."""
        if self.is_closed:
            return
        portal = self._portal
        if portal is None:
            self._close(False)
            source, self._source = self._source, None
            if callable(getattr(source, "close", None)):
                source.close()  # a sync stream; an async one needs its loop (aclose())
        else:
            try:
                portal(self.aclose())  # the connection is the loop's to release
            except ReadError:  # the client is closed, and its connections with it
                self._close(False)

    def _driver(self) -> Callable[[Any], tuple[bool, Any]]:
        """What runs this response's awaitables for a sync caller: its Client's loop
        while the body is still to read, no loop at all once it is."""
        if self._content is not None:
            return _without_loop
        source = self._source
        if source is not None and not hasattr(source, "__aiter__"):
            self._check_unread()
            return _without_loop  # a sync byte stream (hand-made or set): read here
        portal = self._portal
        if portal is None:
            self._check_unread()  # a hand-made stream read, or closed, already
            raise RuntimeError("this response came from an async client and its body is not "
                               "read: use await response.aread() or async for ... in "
                               "response.aiter_bytes()")
        return portal

    def _iterate(self, agen: Any) -> Iterator[Any]:
        """The async iterator `agen` driven from a sync caller: on the Client's loop,
        or without any loop when the body is already read."""
        try:
            portal = self._driver()
        except RuntimeError:
            agen.aclose().close()  # never started: nothing to run
            raise
        return self._drive(agen, portal)

    @staticmethod
    def _drive(agen: Any, portal: Callable[[Any], tuple[bool, Any]]) -> Iterator[Any]:
        try:
            while True:
                more, item = portal(agen.__anext__())
                if not more:
                    return
                yield item
        finally:
            portal(agen.aclose())

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason_phrase}]>"

    def __getstate__(self) -> dict:
        """Pickled as httpx pickles a response: all but what ties it to its connection and
        loop (the body's source, the callbacks, the clock) and the extensions; the copy
        is closed: its content when the body had been read, StreamClosed otherwise."""
        return {k: v for k, v in self.__dict__.items() if k not in _UNPICKLED}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.extensions = {}
        self._chunks = self._on_close = self._clock = None
        self.is_closed = True


#: What a pickled Response leaves out (see ``Response.__getstate__``).
_UNPICKLED = frozenset({"extensions", "_chunks", "_on_close", "_clock", "_source", "_portal",
                        "_cookies"})


class _Unattached(AsyncByteStream, SyncByteStream):
    """The body of an unpickled request whose original was a stream: nothing to read."""

    def _closed(self) -> StreamClosed:
        return StreamClosed()

    def __iter__(self) -> Iterator[bytes]:
        raise self._closed()

    def __aiter__(self) -> AsyncIterator[bytes]:  # type: ignore[override]
        raise self._closed()


class _OnceStream(AsyncByteStream, SyncByteStream):
    """A request body given as an iterable: an iterator (a generator) is read once."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self._once = hasattr(source, "__anext__") or hasattr(source, "__next__")
        self._read = False

    def _start(self) -> None:
        if self._once and self._read:
            raise StreamConsumed()
        self._read = True

    def __iter__(self) -> Iterator[bytes]:
        if not hasattr(self.source, "__iter__"):  # httpx's words
            raise RuntimeError("Attempted to call a sync iterator on an async stream.")
        self._start()
        return iter(self.source)

    def __aiter__(self) -> AsyncIterator[bytes]:  # type: ignore[override]
        self._start()
        if hasattr(self.source, "__aiter__"):
            return self.source.__aiter__()  # type: ignore[no-any-return]
        return _pieces_of(self.source)  # a sync iterable, read on the loop (either client)


async def _consumed() -> AsyncIterator[bytes]:
    raise StreamConsumed()
    yield b""  # an async generator: the error comes at the first step, as httpx's


async def _pieces_of(source: Any) -> AsyncIterator[bytes]:
    for piece in source:
        yield piece


class _BodyStream(AsyncByteStream, SyncByteStream):
    """A response's body as httpx's byte-stream interface (its raw bytes), read from
    `chunks`, the body's source when it was made (see `Response.stream`)."""

    def __init__(self, response: Response, chunks: Callable[..., Any] | None) -> None:
        self._response = response
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        r = self._response
        if self._chunks is r._chunks:
            return r.iter_raw()
        return r._drive(r._aiter_raw(self._chunks), r._portal or _without_loop)

    def __aiter__(self) -> AsyncIterator[bytes]:  # type: ignore[override]
        return self._response._aiter_raw(self._chunks)

    def close(self) -> None:
        self._response.close()

    async def aclose(self) -> None:
        await self._response.aclose()


async def await_step(aw: Any) -> tuple[bool, Any]:
    """(True, result) of an awaitable, or (False, None) at an async iterator's end
    (StopAsyncIteration cannot cross a Future)."""
    try:
        return True, await aw
    except StopAsyncIteration:
        return False, None


def _without_loop(aw: Any) -> tuple[bool, Any]:
    """Run an awaitable that needs no loop (a body already read, a close) to its end."""
    coro = await_step(aw)
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("reading this response's body needs its loop")


def _joined(parts: list[bytes]) -> bytes:
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _decode(dec: Decoder, chunks: list[bytes]) -> list[bytes]:
    """The decoded pieces of received `chunks`."""
    out: list[bytes] = []
    for c in chunks:
        out += dec.decode(c)
    return out


def _chunk_source(content: Any) -> Callable[..., Any]:
    """The `_chunks` of a hand-made streamed response: pieces of `content`, a sync or
    async iterable of bytes."""
    it: Any = None  # taken at the first read: a stream read once counts as read from then

    if hasattr(content, "__aiter__"):
        async def next_chunks(streaming: bool = True, partial: bool = False) -> list[bytes]:
            nonlocal it
            if it is None:
                it = content.__aiter__()
            async for piece in it:
                if piece:
                    return [bytes(piece)]
            return []
    else:
        async def next_chunks(streaming: bool = True, partial: bool = False) -> list[bytes]:
            nonlocal it
            if it is None:
                it = iter(content)
            for piece in it:
                if piece:
                    return [bytes(piece)]
            return []
    return next_chunks


async def _sized(pieces: AsyncIterator[Any], size: int) -> AsyncIterator[Any]:
    """`pieces` (bytes or str) regrouped into pieces of exactly `size` (but the last)."""
    if size < 1:
        raise ValueError("chunk_size must be at least 1")
    held: Any = None
    async for piece in pieces:
        held = piece if held is None else held + piece
        while len(held) >= size:
            yield held[:size]
            held = held[size:]
    if held:
        yield held
