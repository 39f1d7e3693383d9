"""A response body of known length, decrypted or copied straight into the `bytes` object
that `Response.content` will return.

Why: joining a few hundred TLS records into one `bytes` costs a copy of the whole body and
an allocation per record. CPython itself fills a fresh `bytes` in place before anyone sees
it (`PyBytes_FromStringAndSize(NULL, n)`); this does the same through the buffer protocol,
so `SSLObject.read(n, sink)` writes into it. The object is handed out only once full and
once no buffer export is alive, so nobody can observe it changing.
"""
from cpython.buffer cimport PyBuffer_FillInfo
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memcpy

import ssl

cdef object _WantRead = ssl.SSLWantReadError


cdef class BodySink:
    """The unfilled tail of the body, as a writable buffer: each `SSLObject.read(n, sink)`
    or `write(data)` lands after the bytes already in; `advance(n)` records a read."""

    cdef bytes _data
    cdef readonly Py_ssize_t size
    cdef readonly Py_ssize_t filled
    cdef int _exports

    def __cinit__(self, Py_ssize_t size):
        if size < 0:
            raise ValueError("body size must be >= 0")
        self._data = PyBytes_FromStringAndSize(NULL, size)
        self.size = size
        self.filled = 0
        self._exports = 0

    def __getbuffer__(self, Py_buffer *view, int flags):
        if self._data is None:
            raise BufferError("the body was already taken")
        PyBuffer_FillInfo(view, self, PyBytes_AS_STRING(self._data) + self.filled,
                          self.size - self.filled, 0, flags)
        self._exports += 1

    def __releasebuffer__(self, Py_buffer *view):
        self._exports -= 1

    @property
    def left(self) -> int:
        return self.size - self.filled

    def advance(self, Py_ssize_t n) -> None:
        """Record `n` bytes written through the buffer (by `SSLObject.read`)."""
        if self._data is None:
            raise ValueError("the body was already taken")
        if n < 0 or n > self.size - self.filled:
            raise ValueError(f"advance({n}) with {self.size - self.filled} bytes left")
        self.filled += n

    def fill(self, sslobj) -> tuple:
        """Decrypt from `sslobj` (an `ssl.SSLObject`) until the body is complete or no
        whole record is buffered; return (bytes added, whether the TLS stream ended).
        One C loop per wake-up instead of a Python round per 16 KiB record."""
        cdef Py_ssize_t start = self.filled, n
        read = sslobj.read
        try:
            while self.filled < self.size:
                n = read(self.size - self.filled, self)
                if n <= 0:
                    return self.filled - start, True
                if n > self.size - self.filled:
                    raise ValueError(f"SSLObject.read wrote {n} bytes past the body")
                self.filled += n
        except _WantRead:
            pass
        return self.filled - start, False

    def write(self, const unsigned char[::1] data not None) -> None:
        """Copy `data` in (bytes that arrived before the sink existed, or plain HTTP)."""
        cdef Py_ssize_t n = data.shape[0]
        if self._data is None:
            raise ValueError("the body was already taken")
        if n > self.size - self.filled:
            raise ValueError(f"{n} bytes written with {self.size - self.filled} left")
        if n:
            memcpy(PyBytes_AS_STRING(self._data) + self.filled, &data[0], n)
            self.filled += n

    def take(self) -> bytes:
        """The finished body; the sink is empty afterwards."""
        if self._data is None:
            raise ValueError("the body was already taken")
        if self.filled != self.size:
            raise ValueError(f"body incomplete: {self.filled} of {self.size} bytes")
        if self._exports:
            raise BufferError("a view of the body is still alive")
        data = self._data
        self._data = None
        return data
