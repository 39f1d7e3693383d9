# cython: language_level=3, annotation_typing=False
"""The HTTP/1.1 exchange, sans-IO: request bytes out, response bytes in, events out.

No sockets and no clock here, so every framing rule (Content-Length, chunked,
close-delimited, HEAD, 1xx/204/304, limits, garbage) is tested by feeding bytes.
Parsing is llhttp's (through httptools); this module adds what llhttp leaves to its
caller: the head's fields, read from the bytes once llhttp has accepted the whole head (no
callback per field), HEAD responses, the end of a close-delimited body at EOF (and whether
TLS said it was the end), limits on the head (its bytes are kept until it is whole) and
whether the connection may be reused. Bodies framed by Content-Length are counted here
rather than parsed. In a chunked body, llhttp reports neither chunk extensions nor trailer
lines, so the bytes that are not body are counted here, feed by feed, against the limits
on both.
"""

import re
from typing import Iterable

import httptools

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_Append
from libc.string cimport memchr

from .errors import LocalProtocolError, RemoteProtocolError
from .limits import DEFAULT_LIMITS, Limits

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

_BAD_VALUE = re.compile(r"[\r\n\x00]")
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")


def encode_request_line(method: str, target: str, version: str = "HTTP/1.1") -> bytes:
    """`METHOD TARGET VERSION` and its CRLF; `version` is HTTP/1.1 or HTTP/1.0."""
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise LocalProtocolError(f"HTTP version {version!r} cannot be sent (HTTP/1.1 or "
                                 "HTTP/1.0)")
    if not _TOKEN.fullmatch(method):
        raise LocalProtocolError(f"invalid HTTP method {method!r}")
    if not target or _BAD_TARGET.search(target):
        raise LocalProtocolError(f"invalid request target {target!r}")
    try:
        return f"{method} {target} {version}\r\n".encode("ascii")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"request target must be ASCII: {target!r}") from None


def encode_header_lines(headers: Iterable[tuple[str, str]]) -> bytes:
    """Header lines (without the blank line that ends them); CR, LF or NUL in any part is
    refused, so a user-given value can never smuggle a second header or request."""
    lines: list[str] = []
    for name, value in headers:
        if not _TOKEN.fullmatch(name):
            raise LocalProtocolError(f"invalid header name {name!r}")
        if _BAD_VALUE.search(value):
            raise LocalProtocolError(
                f"header {name!r} has a CR, LF or NUL in its value {value!r}; refused"
            )
        lines += (name, ": ", value, "\r\n")
    try:
        return "".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(
            f"header text must be latin-1 (encode other text yourself): {exc}"
        ) from None


def encode_chunk(data: bytes) -> list[bytes]:
    """One chunk of a chunked request body, as buffers to write in order."""
    return [b"%x\r\n" % len(data), data, b"\r\n"]


LAST_CHUNK = b"0\r\n\r\n"

# Methods whose request has a meaning for content: without a body they still say
# "Content-Length: 0" (RFC 9110 8.6), as httpx does, or servers answer 411.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Headers that say where the message is and how long it is: the client's to write.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding"})
_DIGITS = re.compile(r"[0-9]+")


class HeaderFields:
    """A request's headers checked and encoded once: `block`, the header lines less the
    framing ones (but a caller's one plain Content-Length, kept where it was given, as
    httpx sends it: `length_in_block`); `host_line`, the caller's Host line or None;
    `length`, its Content-Length or None; `chunked`, whether it asked for chunked;
    `items`, the (name, value) pairs themselves."""

    __slots__ = ("block", "host_line", "length", "length_in_block", "chunked", "items")

    def __init__(self, items: tuple[tuple[str, str], ...]) -> None:
        hosts: list[str] = []
        lengths: set[str] = set()
        length_lines: list[tuple[int, tuple[str, str]]] = []
        codings: list[str] = []
        rest: list[tuple[str, str]] = []
        for name, value in items:
            lname = name.lower()
            if lname not in _FRAMING:
                rest.append((name, value))
            elif lname == "host":
                hosts.append(value)
            elif lname == "content-length":
                lengths.update(v.strip() for v in value.split(","))
                length_lines.append((len(rest), (name, value)))
            else:
                codings += (c.strip().lower() for c in value.split(",") if c.strip())
        # One Content-Length of plain digits is written as given, in its place; any other
        # (repeated, a list) is checked below and written by the client as one number.
        self.length_in_block = (len(length_lines) == 1
                                and _DIGITS.fullmatch(length_lines[0][1][1]) is not None)
        if self.length_in_block:
            rest.insert(*length_lines[0])
        self.block = encode_header_lines(rest)
        if len(hosts) > 1:
            raise LocalProtocolError(f"more than one Host header given: {hosts!r}")
        self.host_line = encode_header_lines((("Host", hosts[0]),)) if hosts else None
        length = None
        if lengths:
            if len(lengths) > 1 or not all(_DIGITS.fullmatch(v) for v in lengths):
                raise LocalProtocolError(
                    f"invalid Content-Length given: {sorted(lengths)!r}")
            length = int(lengths.pop())
        if codings and codings != ["chunked"]:
            raise LocalProtocolError(
                f"Transfer-Encoding {', '.join(codings)!r} cannot be sent: the client "
                "frames the body itself (chunked for an iterable body)")
        if codings and length is not None:
            raise LocalProtocolError("both Content-Length and Transfer-Encoding were given; "
                                     "a request has one or the other")
        self.length = length
        self.chunked = bool(codings)
        self.items = items


# The HeaderFields of the last distinct header lists (a client's defaults, usually): a
# request with the same headers as an earlier one is not checked or encoded again.
_FIELDS: dict[tuple[tuple[str, str], ...], HeaderFields] = {}
_FIELDS_KEPT = 64
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


def check_request(method: str, items: tuple[tuple[str, str], ...],
                  body: object) -> HeaderFields:
    """Refuse, before any connection is chosen, a request no connection could send: a
    method that is not a token, headers that could smuggle another header or request, and
    framing headers the body contradicts (a Content-Length or chunked without a body, a
    Content-Length that is not the body's size, chunked with a bytes body, which is sent
    with its Content-Length). Returns its headers' HeaderFields, for the connection."""
    if method not in _METHODS and not _TOKEN.fullmatch(method):
        raise LocalProtocolError(f"invalid HTTP method {method!r}")
    fields = _FIELDS.get(items)
    if fields is None:
        fields = HeaderFields(items)
        if len(_FIELDS) >= _FIELDS_KEPT:
            _FIELDS.clear()
        _FIELDS[items] = fields
    if body is None:
        if fields.chunked or fields.length:
            raise LocalProtocolError(
                f"{'Transfer-Encoding: chunked' if fields.chunked else f'Content-Length: {fields.length}'}"
                " was given for a request without a body")
    elif body.__class__ is bytes:
        if fields.chunked:
            raise LocalProtocolError(
                "Transfer-Encoding: chunked was given with a bytes body, which the "
                "client sends with its Content-Length (pass an iterable to stream it)")
        length = fields.length
        if length is not None and length != len(body):  # type: ignore[arg-type]
            raise LocalProtocolError(
                f"Content-Length: {length} was given, but the body is "
                f"{len(body)} bytes")  # type: ignore[arg-type]
    return fields


def body_length(fields: HeaderFields, body: object) -> int | None:
    """The length of a request body that passed check_request: its size for bytes, the
    Content-Length given for a stream (None: unknown), None without a body."""
    if body is None:
        return None
    if body.__class__ is bytes:
        return len(body)  # type: ignore[arg-type]
    return fields.length


def encode_request_head(method: str, line: bytes, host_line: bytes, fields: HeaderFields,
                        body: object, proxy_lines: str | None = None
                        ) -> tuple[bytes, int | None]:
    """An HTTP/1.1 request head for a request that passed check_request: `line` (the
    request line), the caller's Host line else `host_line`, the caller's headers and the
    framing header the body needs (Content-Length, or chunked for a stream of unknown
    length), then `proxy_lines` (a forwarding proxy's credentials and headers, each line
    ending in CRLF) when given. Returns it with the
    exact length a streamed body must have (None: chunked, or not a stream)."""
    length = fields.length
    if fields.length_in_block:  # the caller's, checked against the body: in the block
        framing = b""
        length = None if body is None or body.__class__ is bytes else length
    elif body is None:
        framing = b"Content-Length: 0\r\n" if length == 0 or method in BODY_METHODS \
            else b""
        length = None
    elif body.__class__ is bytes:
        framing = b"Content-Length: %d\r\n" % len(body)  # type: ignore[arg-type]
        length = None
    elif length is not None:
        framing = b"Content-Length: %d\r\n" % length
    else:
        framing = b"Transfer-Encoding: chunked\r\n"
    if proxy_lines:
        framing += proxy_lines.encode("latin-1")
    return line + (fields.host_line or host_line) + fields.block + framing + b"\r\n", length


cdef class ResponseHead:
    """Status line and headers of the final response."""

    cdef public int status_code
    cdef public object reason
    cdef public object http_version
    cdef public object headers
    cdef public object keep_alive_timeout
    cdef public object content_encoding
    cdef public object location
    cdef public bint set_cookie

    def __init__(self, int status_code, reason: bytes, http_version: str,
                 headers: list) -> None:
        self.status_code = status_code
        self.reason = reason
        self.http_version = http_version
        self.headers = headers
        self.keep_alive_timeout = None
        self.content_encoding = None
        self.location = None
        self.set_cookie = False

    def __repr__(self) -> str:
        return f"<ResponseHead {self.status_code} {self.reason!r}>"


class EndOfMessage:
    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END = EndOfMessage()


class ConnectionClosedEarly(RemoteProtocolError):
    """The server closed the connection before sending any byte of a response; an
    idempotent request may be retried on a fresh connection."""


class _Stop(Exception):
    """Raised inside a parser callback to stop llhttp (HEAD end, unsolicited data)."""


# How the body is delimited.
cdef enum Framing:
    CLOSE_DELIMITED
    LENGTH
    CHUNKED
    NO_BODY

# Larger than any limit: the "limit" of a stream read without one. A Content-Length beyond
# it is left to llhttp to count (it takes up to 2^64 - 1).
DEF NO_LIMIT = 1 << 62
# Framing bytes of the chunk in progress, not yet known exactly: up to 16 hex digits and
# two CRLFs.
DEF CHUNK_FRAMING = 20


cdef tuple _body_limit(limits, bint streaming):
    """(the body limit in bytes, the name of the Limits field it comes from)."""
    if streaming:
        limit = limits.max_stream_bytes
        return (NO_LIMIT if limit is None or limit > NO_LIMIT else limit), "max_stream_bytes"
    limit = limits.max_body_bytes
    return (NO_LIMIT if limit > NO_LIMIT else limit), "max_body_bytes"


cdef inline Py_ssize_t _line_end(const unsigned char* p, Py_ssize_t pos, Py_ssize_t n,
                                 Py_ssize_t* after):
    """The end of the line that starts at `pos` (its CR, or its LF when it has no CR), or
    -1; the next line's start goes to `after`."""
    if pos >= n:
        return -1
    cdef const unsigned char* c = <const unsigned char*>memchr(p + pos, 10, n - pos)
    if c == NULL:
        return -1
    cdef Py_ssize_t lf = c - p
    after[0] = lf + 1
    return lf - 1 if lf > pos and p[lf - 1] == 13 else lf


_HTTP_11 = "1.1"


cdef _malformed_head():
    # llhttp accepted the head; bytes that do not read as one mean the exchange was fed
    # something other than what llhttp saw (a bug), never a server's doing.
    return RemoteProtocolError("malformed response head")


cdef inline bint _is(bytes name, const char *lower, Py_ssize_t n):
    """`name` equals the lowercase ASCII `lower` (of length n), ignoring case."""
    if PyBytes_GET_SIZE(name) != n:
        return False
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(name)
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(n):
        c = p[i]
        if 0x41 <= c <= 0x5A:
            c += 0x20
        if c != <unsigned char>lower[i]:
            return False
    return True


cdef class _Callbacks:
    """httptools' protocol object for one connection's parser: llhttp's callbacks, passed
    to the exchange whose bytes it is parsing. That exchange is held only during its
    ``feed_data``, so parser and exchange never make a reference cycle, and a parser that
    ended a response cleanly goes on to the connection's next exchange."""

    cdef ResponseExchange ex

    def on_message_begin(self) -> None:
        self.ex._message_begin()

    def on_headers_complete(self) -> None:
        self.ex._headers_complete()

    def on_chunk_header(self) -> None:
        self.ex._chunk_start = self.ex._body_bytes

    def on_chunk_complete(self) -> None:
        self.ex._chunk_complete()

    def on_body(self, bytes body) -> None:
        self.ex._body(body)

    def on_message_complete(self) -> None:
        self.ex._message_complete()


cdef class ResponseExchange:
    """Parses the response to one request. `feed(data)` and `feed_eof()` return a list of
    events: one `ResponseHead`, then body `bytes`, then `END`. A framing error raises
    `RemoteProtocolError` and the exchange (and its connection) is dead. After `END`,
    `reusable` says whether the connection can carry another request; the next
    exchange on it is given this one as ``previous``, whose parser it takes when llhttp
    ended the response cleanly (at the end of a message, nothing after it).

    Compiled: llhttp calls back into it for every part of every response, and its fields
    are read and written on each of them."""

    cdef object _parser             # httptools' parser, None once the response is over
    cdef _Callbacks _callbacks      # its protocol object
    cdef bint _parser_clean         # llhttp is between messages: fit for the next one
    cdef object _limits
    cdef bint _is_head
    cdef list _events
    cdef object _feeding            # the data llhttp is parsing (during feed_data)
    cdef Py_ssize_t _head_at        # where the next head (past the final one, the body)
                                    # starts in the bytes fed
    cdef Py_ssize_t _head_bytes     # names, values (four bytes of framing each), reasons
    # Bytes fed (the head's, then for a chunked body all of them).
    cdef long long _fed
    cdef Py_ssize_t _interim
    cdef long long _body_bytes
    cdef Framing _framing
    cdef object _content_length
    cdef readonly ResponseHead head
    cdef readonly bint done
    cdef readonly bint reusable
    cdef object _error
    # >= 0 while a Content-Length body is counted here rather than parsed by llhttp: the
    # bytes still expected (readers may size their next read by it).
    cdef readonly long long body_left
    cdef bint _keep_alive
    # Transfer-Encoding and Content-Length both came: the chunks framed the body, and a
    # connection whose peer framed it two ways is not used again (RFC 9112 6.3)
    cdef bint _mixed_framing
    cdef bytes _codings             # transfer codings other than chunked alone, or None
    cdef readonly long long body_limit
    cdef object _limit_name
    cdef bint _streaming
    # Bytes of earlier feeds while the head is incomplete (read once it is whole).
    cdef bytearray _pre
    cdef long long _chunk_start  # body bytes before the chunk in progress
    cdef long long _framing_bytes  # size digits and CRLFs of the chunks completed
    # For a chunked body: bytes fed that were not body, up to where the body started
    # (the head, interim responses included); -1 until then.
    cdef long long _overhead_base

    def __init__(self, str method="GET", limits: Limits = DEFAULT_LIMITS,
                 bint streaming=False, ResponseExchange previous=None) -> None:
        if (previous is not None and previous._parser_clean and previous.done
                and previous.reusable and previous._parser is not None):
            self._parser, self._callbacks = previous._parser, previous._callbacks
            previous._parser = previous._callbacks = None
            previous._parser_clean = False
        else:
            # No on_header or on_status callback: the head is read once llhttp has
            # checked it.
            self._callbacks = _Callbacks()
            self._parser = httptools.HttpResponseParser(self._callbacks)
            # What RFC 9112 lets a client read, as httpx reads it: a line ended by a bare
            # LF (2.2), and Transfer-Encoding over a Content-Length beside it (6.3; the
            # connection is then not used again, see _scan)
            self._parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True,
                                                  lenient_chunked_length=True)
        self._parser_clean = False
        self._limits = limits
        self._is_head = method == "HEAD"
        self._events = []
        self._feeding = None
        self._head_at = 0
        self._head_bytes = 0
        self._fed = 0
        self._interim = 0
        self._pre = None
        self._chunk_start = 0
        self._framing_bytes = 0
        self._overhead_base = -1
        self._body_bytes = 0
        self.body_limit, self._limit_name = _body_limit(limits, streaming)
        self._streaming = streaming
        self._framing = CLOSE_DELIMITED
        self._mixed_framing = False
        self._codings = None
        self._content_length = -1
        self.body_left = -1
        self._keep_alive = False
        self.head = None
        self.done = False
        self.reusable = False
        self._error = None

    def set_streaming(self, bint streaming) -> None:
        """A body read whole is limited by max_body_bytes, a streamed one by
        max_stream_bytes (None: no limit; memory is bounded by back-pressure)."""
        self.body_limit, self._limit_name = _body_limit(self._limits, streaming)
        self._streaming = streaming
        if self._body_bytes > self.body_limit or self._promised_too_much():
            self._fail(self._too_big())

    cdef bint _promised_too_much(self):
        """A body read whole whose Content-Length is over its limit: it fails at the head,
        before any of it is received (a stream's reader may look at the head first)."""
        return (not self._streaming and self._framing == LENGTH
                and self._content_length > self.body_limit)

    cdef _too_big(self):
        size = (f" of {self._content_length} bytes (Content-Length)"
                if self._promised_too_much() else "")
        return RemoteProtocolError(
            f"response body{size} exceeds {self.body_limit} bytes ({self._limit_name})")

    # ---- llhttp's callbacks (through _Callbacks, during feed_data) ----
    cdef _message_begin(self):
        if self.done:
            # Bytes after the complete response we asked for: the connection is not ours
            # to trust any more.
            raise _Stop()

    cdef _headers_complete(self):
        parser = self._parser
        cdef int status = parser.get_status_code()
        if status < 200:
            if status == 101:
                raise RemoteProtocolError("server switched protocols (101) without being asked")
            return  # interim response: its end is reported by on_message_complete
        head = self._read_head(True)
        head.status_code = status
        self._scan(head)
        if self._is_head or status == 204 or status == 304:
            self._framing = NO_BODY
        elif self._codings is not None:
            # chunked not last: framed by the close (RFC 9112 6.3), the body still in a
            # transfer coding this client does not undo; not chunked once more. Refused,
            # as httpx refuses it, before any of the body is taken for the content.
            raise RemoteProtocolError(
                f"unsupported Transfer-Encoding {self._codings.decode('latin-1')!r}: only "
                "chunked is supported")
        self._keep_alive = parser.should_keep_alive() and not self._mixed_framing
        if self._promised_too_much():
            self._fail(self._too_big())
        self.head = head
        self._events.append(head)
        if self._is_head:
            self._finish(self._keep_alive)
            raise _Stop()

    cdef _scan(self, ResponseHead head):
        """Act on the fields of a final response's head: the framing (CHUNKED when its
        transfer codings are chunked alone, whatever Content-Length says, else LENGTH when
        a Content-Length came, its value -1 when unreadable, else CLOSE_DELIMITED), the
        last Content-Encoding, Location and Keep-Alive values, whether any Set-Cookie came.
        Names are compared without case and without lowercased copies. Transfer codings
        other than chunked alone are kept in ``_codings`` (refused for a body)."""
        cdef Framing framing = CLOSE_DELIMITED
        cdef bytes name
        cdef Py_ssize_t n
        cdef bint sized = False
        cdef list codings = None
        length = -1
        keep_alive = None
        for name, value in head.headers:
            n = PyBytes_GET_SIZE(name)
            if n == 17 and _is(name, b"transfer-encoding", 17):
                if codings is None:
                    codings = []
                codings += [c.strip().lower() for c in value.split(b",") if c.strip()]
            elif n == 14 and _is(name, b"content-length", 14):
                if not sized:
                    sized = True
                    try:
                        length = int(value)
                    except ValueError:
                        pass
            elif n == 16 and _is(name, b"content-encoding", 16):
                head.content_encoding = value
            elif n == 8 and _is(name, b"location", 8):
                head.location = value
            elif n == 10:
                if _is(name, b"keep-alive", 10):
                    keep_alive = value
                elif _is(name, b"set-cookie", 10):
                    head.set_cookie = True
        if keep_alive is not None:
            head.keep_alive_timeout = _keep_alive_timeout(keep_alive)
        if codings is not None:
            if codings == [b"chunked"]:
                framing = CHUNKED
            else:
                self._codings = b", ".join(codings)
        elif sized:
            framing = LENGTH
        self._framing = framing
        self._content_length = length if framing == LENGTH else -1
        self._mixed_framing = sized and codings is not None

    cdef ResponseHead _read_head(self, bint final):
        """The head llhttp has just accepted (its headers-complete or, for an interim
        one, message-complete callback runs), read from the bytes fed: the earlier feeds
        of a head that came in pieces, then the feed in progress. Its fields count against
        max_header_count, and with those of the heads before it against max_header_bytes.
        Returns the ResponseHead of a ``final`` one (its status code left to the caller),
        else None."""
        data = self._feeding
        if data is None:
            raise _malformed_head()
        buf = data if self._pre is None else bytes(self._pre) + bytes(data)
        cdef Py_buffer view
        PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
        try:
            return self._parse_head(<const unsigned char*>view.buf, view.len, final)
        finally:
            PyBuffer_Release(&view)

    cdef ResponseHead _parse_head(self, const unsigned char* p, Py_ssize_t n, bint final):
        """``_read_head`` over the bytes fed, from ``_head_at``. llhttp has checked the
        grammar: empty lines before the status line, ``PROTO/d.d SP ddd [SP reason]`` and
        ``name ":" OWS value CRLF`` lines (no folding, no bare CR; a bare LF ends a line
        too) up to an empty line; each value runs from its first character that is not a
        space or tab to the line's end, as llhttp gives it."""
        cdef Py_ssize_t pos = self._head_at, end, v, count = 0, after = 0
        cdef Py_ssize_t max_count = self._limits.max_header_count
        cdef Py_ssize_t max_bytes = self._limits.max_header_bytes
        cdef const unsigned char* slash
        cdef const unsigned char* colon
        while pos < n and (p[pos] == 13 or p[pos] == 10):
            pos += 1
        end = _line_end(p, pos, n, &after)
        if end < 0:
            raise _malformed_head()
        slash = <const unsigned char*>memchr(p + pos, 47, end - pos)   # the "/" of HTTP/1.1
        if slash == NULL or slash + 8 > p + end:
            raise _malformed_head()
        version = (_HTTP_11 if slash[1] == 49 and slash[3] == 49 else
                   PyBytes_FromStringAndSize(<const char*>slash + 1, 3).decode("latin-1"))
        reason = (PyBytes_FromStringAndSize(<const char*>slash + 9, p + end - slash - 9)
                  if slash + 9 < p + end else b"")
        cdef Py_ssize_t nbytes = self._head_bytes + PyBytes_GET_SIZE(reason)
        fields = [] if final else None
        pos = after
        while True:
            end = _line_end(p, pos, n, &after)
            if end < 0:
                raise _malformed_head()
            if end == pos:              # the empty line that ends the head
                pos = after
                break
            colon = <const unsigned char*>memchr(p + pos, 58, end - pos)
            if colon == NULL:
                raise _malformed_head()
            v = colon - p + 1
            while v < end and (p[v] == 32 or p[v] == 9):
                v += 1
            nbytes += (colon - p - pos) + (end - v) + 4
            count += 1
            if count > max_count:
                raise RemoteProtocolError(
                    f"response has more than {max_count} headers (max_header_count)")
            if nbytes > max_bytes:
                raise RemoteProtocolError(
                    f"response headers exceed {max_bytes} bytes (max_header_bytes)")
            if final:
                PyList_Append(fields, (
                    PyBytes_FromStringAndSize(<const char*>p + pos, colon - p - pos),
                    PyBytes_FromStringAndSize(<const char*>p + v, end - v)))
            pos = after
        self._head_at = pos
        self._head_bytes = nbytes
        if not final:
            return None
        return ResponseHead(0, reason, version, fields)

    cdef _chunk_complete(self):
        self._framing_bytes += len("%x" % (self._body_bytes - self._chunk_start)) + 4

    cdef _body(self, bytes body):
        cdef long long n = self._body_bytes + len(body)
        self._body_bytes = n
        if n > self.body_limit:
            raise self._too_big()
        if body:
            self._events.append(body)

    cdef _message_complete(self):
        if self.head is None:
            self._interim += 1
            if self._interim > self._limits.max_interim_responses:
                raise RemoteProtocolError(
                    f"more than {self._limits.max_interim_responses} interim (1xx) responses"
                )
            self._read_head(False)  # counted against the limits, not kept
            return
        self._finish(self._parser.should_keep_alive() and not self._mixed_framing
                     and self._framing != CLOSE_DELIMITED)

    cdef _finish(self, bint reusable):
        """The response is complete (llhttp's parser is kept for the next exchange: see
        ``_feed``)."""
        self.done = True
        self.reusable = reusable
        self._events.append(END)

    # ---- input ----
    def feed(self, data) -> list:
        """Parse `data`; return the events it completed. Body bytes are returned as
        `bytes` objects of their own (the caller may reuse `data`'s buffer)."""
        if self.body_left >= 0:
            return self._feed_counted(data)
        if self._error is not None:
            raise self._error
        if self.done:
            if data:
                self._surplus()
            return []
        cdef Py_ssize_t room
        if self.head is None:
            room = self._limits.max_header_bytes - self._fed
            rest = None
            if len(data) > room:
                # Never hand llhttp more unparsed header bytes than the limit: it would
                # buffer a never-ending header line whole before calling us.
                rest = data[room:]
                data = data[:room]
            self._fed += len(data)
            self._feed(data)
            if self.head is None and not self.done:
                if rest is not None:
                    self._fail(RemoteProtocolError(
                        f"response headers exceed {self._limits.max_header_bytes} bytes "
                        "(max_header_bytes)"))
                if self._pre is None:
                    self._pre = bytearray(data)
                else:
                    self._pre += data
                return self._take()
            self._pre = None
            if self._framing == CHUNKED and not self.done:
                self._overhead_base = self._head_at    # where the chunked body starts
            if rest is not None:
                if self.done:
                    self._surplus()
                    return self._take()
                self._fed += len(rest)
                self._feed(rest)
        else:
            if self._overhead_base >= 0:
                self._fed += len(data)
            self._feed(data)
        if self._overhead_base >= 0:
            if not self.done:
                self._check_overhead()
        elif self._framing == LENGTH and self.head is not None and not self.done \
                and 0 <= self._content_length <= NO_LIMIT and self._error is None:
            # The head is parsed, so the rest of a Content-Length body is just counted:
            # no per-record trip through llhttp and its callback.
            self.body_left = self._content_length - self._body_bytes
        return self._take()

    cdef _check_overhead(self):
        """Bytes of a chunked body that were not body, beyond what chunk sizes and line
        ends take, are extensions or trailers: bound them (a never-ending extension or
        trailer line would otherwise be read forever, the trailer into memory)."""
        limits = self._limits
        cdef long long extra = (self._fed - self._overhead_base - self._body_bytes
                                - self._framing_bytes - CHUNK_FRAMING)
        allowed = limits.max_chunk_extension_bytes + limits.max_trailer_bytes
        if extra > allowed:
            self._fail(RemoteProtocolError(
                f"chunk extensions and trailers exceed {allowed} bytes "
                "(max_chunk_extension_bytes + max_trailer_bytes)"))

    cdef list _feed_counted(self, data):
        if self._error is not None:
            raise self._error
        if self.done:
            if data:
                self._surplus()
            return []
        cdef Py_ssize_t n = len(data)
        cdef long long left = self.body_left
        cdef Py_ssize_t take = n if n <= left else left
        cdef list events
        if take:
            self._count(take)
            chunk = data if take == n and type(data) is bytes else bytes(data[:take])
            events = [chunk]
        else:
            events = []
        if self.body_left == 0:
            self.done = True
            self._parser = None
            if take < n:
                self._surplus()
            self.reusable = self._keep_alive
            events.append(END)
        return events

    def count(self, long long n) -> bool:
        """Account for `n` body bytes that the caller stored itself (straight into the
        body's final buffer, see `_sink.pyx`); return whether the body is complete."""
        if n > self.body_left:
            raise ValueError(f"{n} body bytes counted with {self.body_left} left")
        self._count(n)
        if self.body_left == 0:
            self.done = True
            self._parser = None
            self.reusable = self._keep_alive
            return True
        return False

    cdef _count(self, long long take):
        cdef long long total = self._body_bytes + take
        if total > self.body_limit:
            self._fail(self._too_big())
        self._body_bytes = total
        self.body_left -= take

    cdef list _take(self):
        events = self._events
        self._events = []
        return events

    cdef _feed(self, data):
        parser = self._parser
        if parser is None or self.done:     # complete: what comes now is surplus
            self._surplus()
            return
        # The callbacks reach this exchange only while llhttp parses: no cycle between the
        # two is left for the cycle collector (under many requests at once, exchanges left
        # to it made it run full collections of tens of milliseconds, the client's
        # longest waits).
        self._callbacks.ex = self
        self._feeding = data
        try:
            parser.feed_data(data)
            self._parser_clean = self.done  # ended inside llhttp, nothing after it
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Stop):
                # (HEAD: bytes past its head make the connection unusable)
                if self._is_head and self.done and self._head_at != self._fed:
                    self.reusable = False
                elif not self._is_head:
                    self._surplus()
                return
            if isinstance(cause, RemoteProtocolError):
                self._fail(cause)
            self._fail(RemoteProtocolError(f"malformed response: {exc}"))
        except httptools.HttpParserInvalidStatusError as exc:
            self._fail(RemoteProtocolError(f"malformed status line: {exc}"))
        except httptools.HttpParserError as exc:
            if self.done:
                self._surplus()  # garbage after a complete response
                return
            self._fail(RemoteProtocolError(f"malformed response: {exc}"))
        finally:
            self._feeding = None        # a view of the caller's buffer: not kept
            self._callbacks.ex = None

    cdef _surplus(self):
        """Bytes came after the complete response, before the next request: the connection
        is not to be trusted with another. After a Content-Length body they mean the
        length was wrong, and the response is an error (RFC 9112 6.3: the body is not what
        the server declared)."""
        self.reusable = False
        if self._framing == LENGTH:
            self._fail(RemoteProtocolError(
                f"the server sent more than the {self._content_length} body bytes its "
                "Content-Length declared"))

    cdef _fail(self, exc):
        self._error = exc
        self.reusable = False
        self._parser = None
        raise exc

    def feed_eof(self, bint clean=True) -> list:
        """The server closed the connection. `clean` is False when a TLS connection ended
        without close_notify: then a close-delimited body may have been cut short by
        anyone on the path (RFC 9112 9.8), and is an error."""
        if self._error is not None:
            raise self._error
        self.reusable = False
        if self.done:
            return []
        if self.head is None:
            if self._fed == 0:
                self._fail(ConnectionClosedEarly(
                    "server closed the connection without sending a response"
                ))
            self._fail(RemoteProtocolError("server closed the connection in the middle of the "
                                           "response headers"))
        if self._framing == CLOSE_DELIMITED:
            if not clean:
                self._fail(RemoteProtocolError(
                    f"the server closed the connection after {self._body_bytes} body bytes "
                    "without a TLS close_notify: the body, delimited only by the close, may "
                    "be truncated"))
            self._finish(False)
            return self._take()
        if self._framing == LENGTH:
            self._fail(RemoteProtocolError(
                f"server closed the connection after {self._body_bytes} of "
                f"{self._content_length} body bytes (Content-Length)"
            ))
        self._fail(RemoteProtocolError(
            "server closed the connection in the middle of a chunked body"
        ))
        return []  # unreachable

    @property
    def started(self) -> bool:
        """Whether any response byte arrived (a request is safe to retry only if not)."""
        return self._fed > 0 or self.head is not None

_KA_CACHE: dict[bytes, float | None] = {}


def _keep_alive_timeout(value: bytes) -> float | None:
    """The timeout= of a Keep-Alive header (a server repeats the same value: cached)."""
    try:
        return _KA_CACHE[value]
    except KeyError:
        pass
    t = _parse_keep_alive(value)
    if len(_KA_CACHE) < 64:
        _KA_CACHE[value] = t
    return t


def _parse_keep_alive(value: bytes) -> float | None:
    for part in value.split(b","):
        key, _, num = part.strip().partition(b"=")
        if key.strip().lower() == b"timeout":
            try:
                t = float(num.strip())
            except ValueError:
                return None
            return t if t >= 0 else None
    return None
