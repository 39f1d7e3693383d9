"""multipart/form-data bodies (RFC 7578) for `files=` with optional `data=` fields, in the
shapes httpx accepts."""
from __future__ import annotations

import io
import mimetypes
import os
from typing import Any, Iterable, Mapping

from .errors import LocalProtocolError

# HTML's rule for names in Content-Disposition (as httpx has it): the quote and the C0
# controls but ESC percent-encoded, a backslash doubled, so a field or file name can never
# end its header line or its quoted string.
_ESCAPES = {ord('"'): "%22", ord("\\"): "\\\\",
            **{c: f"%{c:02X}" for c in range(0x20) if c != 0x1B}}


def _quoted(name: str) -> bytes:
    return b'"' + name.translate(_ESCAPES).encode() + b'"'


def _content(value: Any) -> bytes:
    """A file's bytes: a file object read from its start (rewound first, as httpx does,
    so that a file just written is not sent empty)."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    read = getattr(value, "read", None)
    if read is not None:
        seek = getattr(value, "seek", None)
        if seek is not None:
            try:
                seek(0)
            except (io.UnsupportedOperation, OSError):
                pass  # a pipe or a socket: read from where it is
        return bytes(read())
    raise TypeError(f"a file must be bytes, str or have read(), not {type(value).__name__}")


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
                     ) -> tuple[bytes, str]:
    """(body, Content-Type). `data` fields come first (a list value gives one part per
    item), then each file: content, (filename, content), (filename, content,
    content_type) or (filename, content, content_type, headers); a file object opened
    in text mode is refused (TypeError), as httpx refuses it. A file given alone is named
    by its `name`, else "upload". `boundary`: the caller's (see boundary_of), else a
    random one."""
    chosen = boundary
    boundary = boundary or os.urandom(16).hex().encode()
    parts: list[bytes] = []
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
        parts.append(head + b"\r\n\r\n" + _content(content))
    dash = b"--" + boundary
    if chosen is None and any(dash in p for p in parts):
        return encode_multipart(data, files)  # a file holds the random boundary: another
    body = b"".join(dash + b"\r\n" + p + b"\r\n" for p in parts) + dash + b"--\r\n"
    return body, "multipart/form-data; boundary=" + boundary.decode()


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
