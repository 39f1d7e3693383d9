"""Content-Encoding decoding (gzip, deflate; br and zstd when their libraries are installed),
incremental and bounded.

gzip and deflate are inflated by zlib-ng (the ``zlib-ng`` package, zlib's API over the
zlib-ng library): the same streams and errors as the standard library's zlib, about five
times as fast on a large text body.

Each coding is a stage that takes input with `push` and gives output with `pull(n)`, at
most `n` bytes at a time. The decoder pulls pieces from the last stage, refilling a stage
from the one before only when it runs dry, so however far a body inflates (gzip inside
gzip reaches gigabytes from a few kilobytes), no stage ever holds more than one piece of
output and every piece is counted against the limit before the next is made.
"""
from __future__ import annotations

from typing import Iterator

from zlib_ng import zlib_ng as zlib

from .errors import DecodingError, RemoteProtocolError

try:
    import brotli as _brotli  # type: ignore[import-untyped]
except ImportError:  # optional: pip install corenet[brotli]
    _brotli = None
if _brotli is not None and not hasattr(_brotli.Decompressor, "can_accept_more_data"):
    _brotli = None  # before 1.2 its output cannot be bounded: left undecoded, not announced

try:
    from compression import zstd as _zstd  # type: ignore[import-not-found]  # Python 3.14+
except ImportError:
    try:
        from backports import zstd as _zstd  # type: ignore[no-redef]
    except ImportError:  # optional: pip install corenet[zstd]
        _zstd = None


class _Zlib:
    """gzip (any number of members, RFC 1952) or deflate: zlib-wrapped (RFC 1950, what
    RFC 9110 means by it) or raw (RFC 1951, which some servers send and browsers accept),
    told apart by the body's first two bytes, as browsers do: a zlib stream begins with a
    header that says "deflate" and whose two bytes are a multiple of 31."""

    __slots__ = ("_d", "_kind", "_tail", "_started", "_undecided", "_full")

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._d = zlib.decompressobj(zlib.MAX_WBITS | 16 if kind == "gzip" else zlib.MAX_WBITS)
        self._tail = b""
        self._started = False  # any input at all (an empty body is not truncated)
        self._undecided = kind == "deflate"  # zlib-wrapped or raw: until two bytes came
        self._full = False  # the last pull filled its buffer: zlib may hold more output

    def push(self, data: bytes) -> None:
        if not data:
            return
        self._started = True
        if self._d.eof:
            self._after_end(data)
        else:
            self._tail = self._tail + data if self._tail else data

    def _after_end(self, data: bytes) -> None:
        if self._kind == "gzip":
            self._d = zlib.decompressobj(zlib.MAX_WBITS | 16)  # another gzip member
            self._tail = data
        else:
            raise DecodingError("data after the end of the deflate body")

    def _decide(self) -> bool:
        """Whether the deflate framing is known, choosing it when two bytes have come."""
        tail = self._tail
        if len(tail) < 2:
            return False
        cmf, flg = tail[0], tail[1]
        if not (cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0):
            self._d = zlib.decompressobj(-zlib.MAX_WBITS)
        self._undecided = False
        return True

    def pull(self, n: int) -> bytes:
        if not self._tail and not self._full:
            return b""  # nothing in, nothing held: skip a call that allocates a buffer
        if self._undecided and not self._decide():
            return b""
        while True:
            d = self._d
            try:
                out = d.decompress(self._tail, n)
            except zlib.error as exc:  # type: ignore[misc]  # zlib-ng types it as an instance
                raise DecodingError(f"invalid {self._kind} body: {exc}") from None
            self._full = len(out) == n
            self._tail = d.unconsumed_tail
            if not (d.eof and d.unused_data):
                return out
            self._after_end(d.unused_data)
            if out:
                return out
            # an empty member: nothing out yet, the next one's input is in hand

    def finish(self) -> None:
        if self._started and not self._d.eof:
            raise DecodingError(f"truncated {self._kind} body: the compressed stream "
                                "does not end")


class _Buffered:
    """A stage whose library keeps its own state and takes input when asked for output:
    input waits in `_in` until the next pull."""

    __slots__ = ("_d", "_in", "_started")
    name = ""

    def __init__(self) -> None:
        self._in = b""
        self._started = False

    def push(self, data: bytes) -> None:
        if data:
            self._started = True
            self._in = self._in + data if self._in else data

    def _ended(self) -> bool:
        raise NotImplementedError

    def finish(self) -> None:
        if self._started and not self._ended():
            raise DecodingError(f"truncated {self.name} body: the compressed stream does "
                                "not end")


class _Brotli(_Buffered):
    __slots__ = ()
    name = "br"

    def __init__(self) -> None:
        super().__init__()
        self._d = _brotli.Decompressor()

    def _ended(self) -> bool:
        return self._d.is_finished()

    def pull(self, n: int) -> bytes:
        d = self._d
        try:
            if self._in and d.can_accept_more_data():
                data, self._in = self._in, b""
                return d.process(data, output_buffer_limit=n)
            # Output still held from earlier input; empty once it needs more input.
            return d.process(b"", output_buffer_limit=n)
        except _brotli.error as exc:
            raise DecodingError(f"invalid br body: {exc}") from None


class _Zstd(_Buffered):
    __slots__ = ("_window",)
    name = "zstd"

    def __init__(self, window_log_max: int) -> None:
        super().__init__()
        self._window = window_log_max
        self._d = self._new()

    def _new(self):
        return _zstd.ZstdDecompressor(
            options={_zstd.DecompressionParameter.window_log_max: self._window})

    def _ended(self) -> bool:
        return self._d.eof

    def pull(self, n: int) -> bytes:
        try:
            while True:
                d = self._d
                if d.eof:
                    rest = d.unused_data + self._in
                    if not rest:
                        return b""
                    d = self._d = self._new()  # another frame follows (RFC 8878 3.1)
                    self._in = rest
                if self._in:
                    data, self._in = self._in, b""
                    out = d.decompress(data, n)
                elif not d.needs_input:
                    out = d.decompress(b"", n)
                else:
                    return b""
                if out or not (d.eof and d.unused_data):
                    return out
                # an empty frame: nothing out yet, the next one's input is in hand
        except _zstd.ZstdError as exc:
            raise DecodingError(f"invalid zstd body: {exc}") from None


def accept_encoding() -> str:
    """The codings this installation decodes, for the Accept-Encoding request header."""
    codings = ["gzip", "deflate"]
    if _brotli is not None:
        codings.append("br")
    if _zstd is not None:
        codings.append("zstd")
    return ", ".join(codings)


_ZLIB_KINDS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}


class Decoder:
    """Undo each Content-Encoding, last applied first. A body with a coding this
    installation cannot decode is passed through undecoded (bool(decoder) is False)."""

    __slots__ = ("_stages", "_limit", "_size", "_piece")

    def __init__(self, content_encoding: str, limit: int | None, piece: int,
                 zstd_window_log_max: int = 23) -> None:
        stages: list = []
        for c in reversed(content_encoding.split(",")):
            c = c.strip().lower()
            if not c or c == "identity":
                continue
            if c in _ZLIB_KINDS:
                stages.append(_Zlib(_ZLIB_KINDS[c]))
            elif c == "br" and _brotli is not None:
                stages.append(_Brotli())
            elif c == "zstd" and _zstd is not None:
                stages.append(_Zstd(zstd_window_log_max))
            else:
                stages = []  # unknown coding: decoding the others would give garbage
                break
        self._stages = stages
        self._limit = limit
        self._size = 0
        self._piece = piece

    def __bool__(self) -> bool:
        return bool(self._stages)

    def decode(self, data: bytes) -> Iterator[bytes]:
        """Feed `data`; yield the decoded pieces it completes (lazily: a piece is made
        only when the previous one has been taken)."""
        self._stages[0].push(data)
        return self._pump()

    def flush(self) -> Iterator[bytes]:
        """At the end of the body: yield what is left and check every coding ended."""
        yield from self._pump()
        for s in self._stages:
            s.finish()

    def _pump(self) -> Iterator[bytes]:
        stages = self._stages
        last = len(stages) - 1
        limit = self._limit
        piece = self._piece
        i = last
        while i >= 0:
            n = piece
            if limit is not None and limit - self._size < n:
                n = limit - self._size + 1  # one byte past the limit proves it exceeded
            out = stages[i].pull(n)
            if not out:
                i -= 1  # this stage needs input: refill it from the one before
                continue
            if i < last:
                stages[i + 1].push(out)
                i += 1
                continue
            self._size += len(out)
            if limit is not None and self._size > limit:
                raise RemoteProtocolError(
                    f"decoded response body exceeds {limit} bytes (the body read whole is "
                    "limited by max_body_bytes, a stream by max_stream_bytes)")
            if len(out) > piece:  # brotli may overshoot its buffer limit by a block
                for k in range(0, len(out), piece):
                    yield out[k:k + piece]
            else:
                yield out
