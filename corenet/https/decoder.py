"""Content-Encoding decoding (gzip, deflate), bounded by the body size limit."""
from __future__ import annotations

import zlib

from .errors import DecodingError, RemoteProtocolError


class _Zlib:
    __slots__ = ("_d", "_deflate", "_first")

    def __init__(self, kind: str) -> None:
        self._deflate = kind == "deflate"
        self._first = True
        self._d = zlib.decompressobj(zlib.MAX_WBITS | 16 if kind == "gzip" else zlib.MAX_WBITS)

    def decode(self, data: bytes) -> bytes:
        try:
            out = self._d.decompress(data)
        except zlib.error as exc:
            if self._deflate and self._first:
                # "deflate" is often sent raw (no zlib header), as browsers tolerate.
                self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                self._first = False
                return self.decode(data)
            raise DecodingError(f"invalid {'deflate' if self._deflate else 'gzip'} body: {exc}")
        self._first = False
        return out

    def flush(self) -> bytes:
        try:
            return self._d.flush()
        except zlib.error as exc:
            raise DecodingError(f"truncated compressed body: {exc}") from None


class Decoder:
    """Undo each Content-Encoding in reverse order; unknown codings pass through raw."""

    __slots__ = ("_stages", "_limit", "_size")

    def __init__(self, content_encoding: str, limit: int) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
        kinds = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
        self._stages = [_Zlib(kinds[c]) for c in reversed(codings) if c in kinds]
        self._limit = limit
        self._size = 0

    def __bool__(self) -> bool:
        return bool(self._stages)

    def _count(self, out: bytes) -> bytes:
        self._size += len(out)
        if self._size > self._limit:
            raise RemoteProtocolError(
                f"decoded response body exceeds {self._limit} bytes (max_body_bytes)")
        return out

    def decode(self, data: bytes) -> bytes:
        for s in self._stages:
            data = s.decode(data)
        return self._count(data)

    def flush(self) -> bytes:
        data = b""
        for s in self._stages:
            data = s.decode(data) + s.flush()
        return self._count(data)
