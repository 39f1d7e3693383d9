"""The header fields of an HTTP/1.1 response head, as llhttp (httptools) reports them.

Why compiled: a server such as nginx sends eight or ten fields with every response (Server,
Date, Content-Type, Content-Length, Last-Modified, Connection, ETag, Accept-Ranges, ...), and
a Python callback per field, then a Python loop over them for the few that frame the body,
were a fifth of the client's work for a small keep-alive response. The collector is the
parser's `on_header` callback itself (a callable object, no Python frame); `scan` picks out
the fields the client acts on, comparing names without case and without lowercased copies.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.list cimport PyList_Append

from .errors import RemoteProtocolError

# How the body is delimited (the values of exchange.py's _CLOSE_DELIMITED, _LENGTH, _CHUNKED).
DEF CLOSE_DELIMITED = 0
DEF LENGTH = 1
DEF CHUNKED = 2


cdef class HeaderCollector:
    """Called as `collector(name, value)` for each field: keeps (name, value) in order and
    raises RemoteProtocolError past `max_count` fields or `max_bytes` (names, values and
    four bytes of framing each, plus what `count_bytes` adds)."""

    cdef list _fields
    cdef Py_ssize_t _max_count
    cdef Py_ssize_t _max_bytes
    cdef readonly Py_ssize_t nbytes

    def __cinit__(self, Py_ssize_t max_count, Py_ssize_t max_bytes):
        self._fields = []
        self._max_count = max_count
        self._max_bytes = max_bytes
        self.nbytes = 0

    def __call__(self, bytes name, value):
        if value is None:
            value = b""
        self.nbytes += PyBytes_GET_SIZE(name) + PyBytes_GET_SIZE(value) + 4
        PyList_Append(self._fields, (name, value))
        if len(self._fields) > self._max_count:
            raise RemoteProtocolError(
                f"response has more than {self._max_count} headers (max_header_count)")
        if self.nbytes > self._max_bytes:
            raise RemoteProtocolError(
                f"response headers exceed {self._max_bytes} bytes (max_header_bytes)")

    def count_bytes(self, Py_ssize_t n):
        """Count `n` more bytes of the head (the reason phrase) against `max_bytes`."""
        self.nbytes += n

    def take(self):
        """The fields collected so far (the head is complete, or was an interim one);
        the next head starts a new list. The byte count goes on across interim heads."""
        fields = self._fields
        self._fields = []
        return fields


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


def scan(list fields):
    """(framing, content_length, content_encoding, location, keep_alive, set_cookie) of a
    final response's fields: framing CHUNKED when the last transfer coding is chunked, else
    LENGTH with content_length (-1 when unreadable: llhttp refuses a malformed one) when a
    Content-Length came, else CLOSE_DELIMITED; the last Content-Encoding, Location and
    Keep-Alive values (None when absent); whether any Set-Cookie came."""
    cdef int framing = CLOSE_DELIMITED
    cdef object length = -1
    cdef object encoding = None
    cdef object location = None
    cdef object keep_alive = None
    cdef bint set_cookie = False
    cdef bytes name
    cdef Py_ssize_t n
    for name, value in fields:
        n = PyBytes_GET_SIZE(name)
        if n == 17 and _is(name, b"transfer-encoding", 17):
            if value.rsplit(b",", 1)[-1].strip().lower() == b"chunked":
                framing = CHUNKED
        elif n == 14 and _is(name, b"content-length", 14):
            if framing != CHUNKED:
                framing = LENGTH
                try:
                    length = int(value)
                except ValueError:
                    pass
        elif n == 16 and _is(name, b"content-encoding", 16):
            encoding = value
        elif n == 8 and _is(name, b"location", 8):
            location = value
        elif n == 10:
            if _is(name, b"keep-alive", 10):
                keep_alive = value
            elif _is(name, b"set-cookie", 10):
                set_cookie = True
    return framing, length, encoding, location, keep_alive, set_cookie
