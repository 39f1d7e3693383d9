"""Request and Response objects (httpx-shaped)."""
from __future__ import annotations

import codecs
import datetime
import json as _json
from typing import Any, AsyncIterator, Callable

from .decoder import Decoder
from .errors import (
    HTTPStatusError, RemoteProtocolError, RequestError, ResponseNotRead, StreamClosed,
    StreamConsumed, attach_request,
)
from .headers import Headers
from .limits import DEFAULT_LIMITS, Limits
from .urls import URL

_REASONS = {}
try:
    from http import HTTPStatus

    _REASONS = {s.value: s.phrase for s in HTTPStatus}
except Exception:  # pragma: no cover
    pass


# What str.splitlines ends a line at.
_LINE_ENDS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


class Request:
    __slots__ = ("method", "url", "headers", "content")

    def __init__(self, method: str, url: URL | str, headers: Headers,
                 content: Any = None) -> None:
        self.method = method
        self.url = url if isinstance(url, URL) else URL(url)
        self.headers = headers
        self.content = content

    def __repr__(self) -> str:
        return f"<Request [{self.method}] {self.url}>"


class Response:
    """`content`, `text` and `json()` need the body read: always true for `client.get()`
    and friends, after `await r.aread()` for a streamed response."""

    def __init__(self, status_code: int, *, reason: bytes = b"", http_version: str = "1.1",
                 headers: Headers | None = None, request: Request | None = None,
                 content: bytes | None = None,
                 raw_headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.status_code = status_code
        self._reason = reason
        self.http_version = "HTTP/1.1" if http_version == "1.1" else "HTTP/" + http_version
        self._headers = headers
        self._raw_headers = raw_headers
        if headers is None and raw_headers is None:
            self._headers = Headers()
        self.request = request
        self.url = request.url if request is not None else URL()
        self.history: list[Response] = []
        # "ssl_object": the connection's SSLObject (session_reused, version, cipher);
        # "connection_reused": whether the request went on a pooled keep-alive connection.
        self.extensions: dict[str, Any] = {}
        self.elapsed = datetime.timedelta(0)
        self._content = content
        self._chunks: Callable[[], Any] | None = None  # async () -> list[bytes]; [] at end
        self._on_close: Callable[[bool], None] | None = None
        self._content_encoding = ""  # set when the body has a Content-Encoding
        self._set_cookie = False  # whether there is a Set-Cookie header to store
        self._limits: Limits = DEFAULT_LIMITS
        self._started_at = 0.0
        self._clock: Callable[[], float] | None = None
        self.is_closed = content is not None
        self.is_stream_consumed = content is not None

    @property
    def headers(self) -> Headers:
        """Decoded on first use: many callers only look at status and content."""
        h = self._headers
        if h is None:
            h = self._headers = Headers._from_raw(self._raw_headers)  # type: ignore[arg-type]
        return h

    @property
    def reason_phrase(self) -> str:
        if self._reason:
            return self._reason.decode("latin-1")
        return _REASONS.get(self.status_code, "")

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise ResponseNotRead(
                "the body of a streamed response is not read yet: call await response.aread()")
        return self._content

    @property
    def encoding(self) -> str:
        ctype = self.headers.get("content-type", "") or ""
        for param in ctype.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "charset" and value:
                charset = value.strip().strip('"\'')
                try:
                    return codecs.lookup(charset).name
                except LookupError:
                    break
        return "utf-8"

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding, errors="replace")

    def json(self, **kwargs: Any) -> Any:
        return _json.loads(self.content, **kwargs)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        return self.status_code in (301, 302, 303, 307, 308) and "location" in self.headers

    def raise_for_status(self) -> "Response":
        code = self.status_code
        if code < 400:
            return self
        kind = "Client error" if code < 500 else "Server error"
        raise HTTPStatusError(
            f"{kind} '{code} {self.reason_phrase}' for url '{self.url}'",
            request=self.request, response=self)

    def aiter_raw(self, chunk_size: int | None = None) -> AsyncIterator[Any]:
        """Body bytes as received (still compressed), chunk by chunk (of `chunk_size`
        bytes each, but the last, when given)."""
        it = self._aiter_raw()
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

    async def _aiter_raw(self) -> AsyncIterator[bytes]:
        if self._content is not None:
            if self._content:
                yield self._content
            return
        self._check_unread()
        self.is_stream_consumed = True
        ok = False
        try:
            while True:
                chunks = await self._chunks()  # type: ignore[misc]
                if not chunks:
                    break
                for c in chunks:
                    yield c
            ok = True
        except RequestError as exc:
            attach_request(exc, self.request)
            raise
        finally:
            self._close(ok)

    def _check_unread(self) -> None:
        if self.is_stream_consumed:
            raise StreamConsumed("the response body was already read")
        if self.is_closed:
            raise StreamClosed("the response was closed before its body was read")

    def _decoder(self, whole: bool) -> Decoder | None:
        if not self._content_encoding:
            return None
        lim = self._limits
        if whole:
            limit, piece = lim.max_body_bytes, max(lim.max_decoded_chunk, 1 << 20)
        else:
            limit, piece = lim.max_stream_bytes, lim.max_decoded_chunk
        dec = Decoder(self._content_encoding, limit, piece, lim.zstd_window_log_max)
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
            parts: list[bytes] = []
            while True:
                chunks = await self._chunks(False)  # type: ignore[misc]
                if not chunks:
                    break
                parts += chunks
            raw = parts[0] if len(parts) == 1 else b"".join(parts)
            dec = self._decoder(True) if self._content_encoding else None
            if dec is not None:
                out = list(dec.decode(raw))
                out += dec.flush()
                raw = out[0] if len(out) == 1 else b"".join(out)
                del out
            self._content = raw
            ok = True
        except RequestError as exc:
            attach_request(exc, self.request)
            raise
        finally:
            self._close(ok)
        return self._content

    def _close(self, complete: bool) -> None:
        if self.is_closed:
            return
        self.is_closed = True
        if self._clock is not None:
            self.elapsed = datetime.timedelta(seconds=self._clock() - self._started_at)
        cb = self._on_close
        self._on_close = None
        if cb is not None:
            cb(complete)

    async def aclose(self) -> None:
        """Close a streamed response; an unread body costs its connection (discarded)."""
        self._close(False)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason_phrase}]>"


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
