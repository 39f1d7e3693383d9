"""multipart/form-data bodies (RFC 7578) for `files=` with optional `data=` fields, in the
shapes httpx accepts."""
from __future__ import annotations

import mimetypes
import os
from typing import Any, Iterable, Mapping

from .errors import LocalProtocolError

# HTML's rule for names in Content-Disposition: quote, CR and LF percent-encoded, so a
# field or file name can never end its header line or its quoted string.
_ESCAPES = {ord('"'): "%22", ord("\r"): "%0D", ord("\n"): "%0A"}


def _quoted(name: str) -> bytes:
    return b'"' + name.translate(_ESCAPES).encode() + b'"'


def _content(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    read = getattr(value, "read", None)
    if read is not None:
        data = read()
        return data.encode() if isinstance(data, str) else bytes(data)
    raise TypeError(f"a file must be bytes, str or have read(), not {type(value).__name__}")


def _items(value: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> list[tuple[str, Any]]:
    if value is None:
        return []
    return list(value.items()) if isinstance(value, Mapping) else list(value)


def encode_multipart(data: Any, files: Any, boundary: bytes | None = None
                     ) -> tuple[bytes, str]:
    """(body, Content-Type). `data` fields come first (a list value gives one part per
    item), then each file: content, (filename, content), (filename, content,
    content_type) or (filename, content, content_type, headers)."""
    boundary = boundary or os.urandom(16).hex().encode()
    parts: list[bytes] = []
    for name, value in _items(data):
        for v in value if isinstance(value, (list, tuple)) else (value,):
            parts.append(b"Content-Disposition: form-data; name=" + _quoted(str(name)) +
                         b"\r\n\r\n" + (v if isinstance(v, bytes) else str(v).encode()))
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
            filename = os.path.basename(str(getattr(spec, "name", name) or name))
        head = b"Content-Disposition: form-data; name=" + _quoted(str(name))
        if filename is not None:
            head += b"; filename=" + _quoted(str(filename))
            ctype = ctype or mimetypes.guess_type(str(filename))[0] or "application/octet-stream"
        if ctype:
            head += b"\r\nContent-Type: " + _header_value(ctype)
        for k, v in extra.items():
            head += b"\r\n" + _header_value(k) + b": " + _header_value(v)
        parts.append(head + b"\r\n\r\n" + _content(content))
    dash = b"--" + boundary
    if any(dash in p for p in parts):  # a file that holds the (random) boundary: pick another
        return encode_multipart(data, files)
    body = b"".join(dash + b"\r\n" + p + b"\r\n" for p in parts) + dash + b"--\r\n"
    return body, "multipart/form-data; boundary=" + boundary.decode()


def _header_value(value: str) -> bytes:
    if any(c in value for c in "\r\n\x00"):
        raise LocalProtocolError(f"CR, LF or NUL in a multipart header: {value!r}")
    return value.encode("latin-1")
