"""multipart/form-data bodies (RFC 7578) for `files=` with optional `data=` fields, in the
shapes httpx accepts."""
from __future__ import annotations

import io
import mimetypes
import os
import stat
from typing import Any, AsyncIterator, Iterable, Iterator, Mapping

from .errors import LocalProtocolError, StreamConsumed

#: How much of a file a multipart body reads at a time: a file goes out as it is read, never
#: held whole in memory (httpx's chunk size).
FILE_CHUNK = 64 * 1024

# HTML's rule for names in Content-Disposition (as httpx has it): the quote and the C0
# controls but ESC percent-encoded, a backslash doubled, so a field or file name can never
# end its header line or its quoted string.
_ESCAPES = {ord('"'): "%22", ord("\\"): "\\\\",
            **{c: f"%{c:02X}" for c in range(0x20) if c != 0x1B}}


def _quoted(name: str) -> bytes:
    return b'"' + name.translate(_ESCAPES).encode() + b'"'


def _content(value: Any) -> bytes | Any:
    """A file's bytes, or the file object itself, read as the body is sent."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if getattr(value, "read", None) is not None:
        return value
    raise TypeError(f"a file must be bytes, str or have read(), not {type(value).__name__}")


def _rewind(f: Any) -> bool:
    """Seeks the file object to its start, as httpx does (a file just written is not sent
    empty); False for one that cannot seek (a pipe, a socket), read from where it is."""
    seek = getattr(f, "seek", None)
    if seek is None:
        return False
    try:
        seek(0)
    except (io.UnsupportedOperation, OSError):
        return False
    return True


def _size(f: Any) -> int | None:
    """A file object's size from its start: a regular file's from the system, any other
    that seeks by seeking to its end; None for one that cannot tell (a pipe)."""
    try:
        st = os.fstat(f.fileno())
        if stat.S_ISREG(st.st_mode):
            return st.st_size
    except (AttributeError, OSError, ValueError):
        pass
    try:
        at = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(at)
        return end
    except (AttributeError, OSError, ValueError):
        return None


class FileStream:
    """A body of bytes and file objects (a multipart body with files in it, or a file given
    as ``content=``): the files' bytes are read as the body is sent,
    ``FILE_CHUNK`` at a time, so an upload costs no memory of its size. It can be sent again
    (an auth retry, a 307 redirect) when its files can seek, each from its start; one that
    cannot (a pipe) is read once, and a second sending is StreamConsumed. ``length``: the
    body's size when every file's is known (a regular file, anything that seeks), else None
    and it goes chunked."""

    def __init__(self, pieces: list[Any]) -> None:
        self.pieces = pieces            # bytes, or a file object
        sizes = [len(p) if isinstance(p, bytes) else _size(p) for p in pieces]
        known = [size for size in sizes if size is not None]
        self.replayable = len(known) == len(sizes)
        self.length: int | None = sum(known) if self.replayable else None
        self.sent = False

    def __iter__(self) -> Iterator[bytes]:
        if self.sent and not self.replayable:
            raise StreamConsumed("the multipart body holds a file that cannot seek (a pipe), "
                                 "and it has been sent: it cannot be sent again")
        self.sent = True
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        for piece in self.pieces:
            if piece.__class__ is bytes:
                yield piece
                continue
            _rewind(piece)
            while True:
                chunk = piece.read(FILE_CHUNK)
                if not chunk:
                    break
                if isinstance(chunk, str):
                    raise TypeError("Multipart file uploads must be opened in binary mode, "
                                    "not text mode.")
                yield bytes(chunk)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self:
            yield chunk


def _refuse_text_mode(value: Any) -> None:
    """httpx's checks, in its words."""
    if isinstance(value, io.StringIO):
        raise TypeError("Multipart file uploads require 'io.BytesIO', not 'io.StringIO'.")
    if isinstance(value, io.TextIOBase):
        raise TypeError("Multipart file uploads must be opened in binary mode, not text mode.")


def boundary_of(content_type: str | None) -> bytes | None:
    """The boundary a caller's own `Content-Type: multipart/form-data; boundary=...`
    names (RFC 2046 5.1.1), which the body then uses, as httpx's does."""
    if not content_type or not content_type.startswith("multipart/form-data"):
        return None
    for section in content_type.split(";")[1:]:
        section = section.strip()
        if section.lower().startswith("boundary="):
            return section[len("boundary="):].strip('"').encode("latin-1")
    return None


def _items(value: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> list[tuple[str, Any]]:
    if value is None:
        return []
    return list(value.items()) if isinstance(value, Mapping) else list(value)


def encode_multipart(data: Any, files: Any, boundary: bytes | None = None
                     ) -> tuple[bytes | FileStream, str]:
    """(body, Content-Type): bytes, or a FileStream when a file is a file object (read
    as it is sent). `data` fields come first (a list value gives one part per item), then
    each file: content, (filename, content), (filename, content, content_type) or
    (filename, content, content_type, headers); a file object opened in text mode is
    refused (TypeError), as httpx refuses it. A file given alone is named by its `name`,
    else "upload". `boundary`: the caller's (see boundary_of), else a random one."""
    chosen = boundary
    boundary = boundary or os.urandom(16).hex().encode()
    parts: list[bytes | tuple[bytes, Any]] = []
    for name, value in _items(data):
        if not isinstance(name, str):
            raise TypeError(f"Invalid type for name. Expected str, got {type(name)}: {name!r}")
        for v in value if isinstance(value, (list, tuple)) else (value,):
            parts.append(b"Content-Disposition: form-data; name=" + _quoted(name) +
                         b"\r\n\r\n" + _field_value(v))
    for name, spec in _items(files):
        extra: Mapping[str, str] = {}
        ctype = None
        if isinstance(spec, tuple):
            filename, content, *rest = spec
            if rest:
                ctype = rest[0]
            if len(rest) > 1:
                extra = rest[1]
        else:
            content = spec
            filename = os.path.basename(str(getattr(spec, "name", "upload")))
        _refuse_text_mode(content)
        head = b"Content-Disposition: form-data; name=" + _quoted(str(name))
        if filename is not None:
            head += b"; filename=" + _quoted(str(filename))
            ctype = ctype or mimetypes.guess_type(str(filename))[0] or "application/octet-stream"
        for k, v in extra.items():
            head += b"\r\n" + _header_value(k) + b": " + _header_value(v)
        if ctype and not any(k.lower() == "content-type" for k in extra):
            head += b"\r\nContent-Type: " + _header_value(ctype)  # after the caller's
        value = _content(content)
        parts.append(head + b"\r\n\r\n" + value if value.__class__ is bytes
                     else (head + b"\r\n\r\n", value))
    dash = b"--" + boundary
    ctype = "multipart/form-data; boundary=" + boundary.decode()
    whole = [p for p in parts if isinstance(p, bytes)]
    if len(whole) == len(parts):
        if chosen is None and any(dash in p for p in whole):
            return encode_multipart(data, files)  # a part holds the random boundary: another
        return b"".join(dash + b"\r\n" + p + b"\r\n" for p in whole) + dash + b"--\r\n", ctype
    pieces: list[Any] = []
    for p in parts:
        if isinstance(p, bytes):
            pieces.append(dash + b"\r\n" + p + b"\r\n")
        else:
            pieces += [dash + b"\r\n" + p[0], p[1], b"\r\n"]
    pieces.append(dash + b"--\r\n")
    return FileStream(pieces), ctype


def _field_value(value: Any) -> bytes:
    """A form field's value as httpx writes it: bytes as given, True as "true", None as
    empty; anything but a str, bytes or number is a TypeError."""
    if isinstance(value, bytes):
        return value
    if value is not None and not isinstance(value, (str, int, float)):
        raise TypeError(f"Invalid type for value. Expected primitive type, got "
                        f"{type(value)}: {value!r}")
    if value is True or value is False:
        return b"true" if value else b"false"
    return b"" if value is None else str(value).encode()


def _header_value(value: str) -> bytes:
    if any(c in value for c in "\r\n\x00"):
        raise LocalProtocolError(f"CR, LF or NUL in a multipart header: {value!r}")
    return value.encode("latin-1")
