# cython: language_level=3, wraparound=False, cdivision=True
"""The receiving half of the length-prefixed framer: ``[length][payload]`` read with
recv_into into its own buffer, frames handed out as memoryviews of it.

Every offset used to touch memory is checked against the buffer's size (a length comes from
the network), so bounds checks stay on for Python objects; raw pointer arithmetic is guarded
explicitly.
"""
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytearray cimport PyByteArray_FromStringAndSize, PyByteArray_AS_STRING
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.object cimport PyObject
from cpython.pyport cimport PY_SSIZE_T_MAX
from libc.string cimport memcpy, memmove
from libc.stdint cimport uint64_t

from corenet.framing.errors import FrameTooLarge

cdef extern from *:
    """
    #include <string.h>
    #include <stdint.h>

    /* Header of 1, 2, 4 or 8 bytes, either byte order, as an unsigned 64-bit length. */
    static inline uint64_t corenet_read_len(const unsigned char *p, Py_ssize_t n, int big) {
        uint64_t v = 0;
        switch (n) {
        case 1: return p[0];
        case 2: { uint16_t x; memcpy(&x, p, 2);
                  v = big ? __builtin_bswap16(x) : x; return v; }
        case 4: { uint32_t x; memcpy(&x, p, 4);
                  v = big ? __builtin_bswap32(x) : x; return v; }
        default: { uint64_t x; memcpy(&x, p, 8);
                  return big ? __builtin_bswap64(x) : x; }
        }
    }

    static inline void corenet_write_len(unsigned char *p, Py_ssize_t n, int big, uint64_t v) {
        Py_ssize_t i;
        for (i = 0; i < n; i++) {
            unsigned char b = (unsigned char)(v >> (8 * i));
            p[big ? n - 1 - i : i] = b;
        }
    }

    /* Point an unshared one-dimensional byte memoryview at another region of the same
       exporter, so a frame costs no allocation. Only when nobody else can see the view:
       we hold the only reference, it exports no buffer, has no weak reference and was
       not released. Returns 0 when the view must not be reused. */
    static inline int corenet_view_retarget(PyObject *o, char *buf, Py_ssize_t n) {
        PyMemoryViewObject *mv = (PyMemoryViewObject *)o;
        if (Py_REFCNT(o) != 1 || mv->exports != 0 || mv->weakreflist != NULL
                || (mv->flags & _Py_MEMORYVIEW_RELEASED) || mv->view.ndim != 1)
            return 0;
        mv->view.buf = buf;
        mv->view.len = n;
        mv->view.shape[0] = n;
        mv->hash = -1;
        return 1;
    }
    """
    uint64_t corenet_read_len(const unsigned char *p, Py_ssize_t n, int big) nogil
    void corenet_write_len(unsigned char *p, Py_ssize_t n, int big, uint64_t v) nogil
    int corenet_view_retarget(PyObject *o, char *buf, Py_ssize_t n)

cdef enum:
    # Compact when less than buffer_size / this is free: smaller reads waste syscalls.
    MIN_FREE_DIVISOR = 4
    # Largest max_frame_size: header + length must stay a valid Py_ssize_t.
    HEADER_MAX = 8


def encode_header(Py_ssize_t length, Py_ssize_t header_size=4, str byteorder="big") -> bytes:
    """The header announcing ``length`` bytes (ValueError if it does not fit)."""
    if header_size not in (1, 2, 4, 8):
        raise ValueError(f"header_size must be 1, 2, 4 or 8, not {header_size!r}")
    if byteorder not in ("big", "little"):
        raise ValueError(f"byteorder must be 'big' or 'little', not {byteorder!r}")
    return _header(length, header_size, byteorder == "big")


cdef bytes _header(Py_ssize_t length, Py_ssize_t header_size, bint big):
    if length < 0 or (header_size < 8 and (<uint64_t>length >> (8 * header_size)) != 0):
        raise ValueError(
            f"a frame of {length} bytes does not fit a {header_size}-byte length header")
    cdef bytes h = PyBytes_FromStringAndSize(NULL, header_size)
    corenet_write_len(<unsigned char*>PyBytes_AS_STRING(h), header_size, big, <uint64_t>length)
    return h


cdef class FrameReceiver:
    """Buffer management and header parsing of the framer (see ``FrameProtocol``).

    Sans-IO: ``get_buffer``/``buffer_updated`` are all it needs, so it can be fed by any
    transport or by a test directly. Each complete frame goes to
    ``owner.frame_received(memoryview)``, looked up once at the first frame and kept as a
    bound method (half the cost of a method call by name per frame).
    """

    def __init__(self, owner, Py_ssize_t header_size=4, str byteorder="big",
                 Py_ssize_t max_frame_size=16 * 1024 * 1024,
                 Py_ssize_t buffer_size=256 * 1024):
        if header_size not in (1, 2, 4, 8):
            raise ValueError(f"header_size must be 1, 2, 4 or 8, not {header_size!r}")
        if byteorder not in ("big", "little"):
            raise ValueError(f"byteorder must be 'big' or 'little', not {byteorder!r}")
        if max_frame_size < 0 or max_frame_size > PY_SSIZE_T_MAX - HEADER_MAX:
            raise ValueError(f"max_frame_size must be in 0..{PY_SSIZE_T_MAX - HEADER_MAX}")
        if buffer_size < 64:
            raise ValueError("buffer_size must be at least 64 bytes")
        if self._buf is not None:
            raise RuntimeError("a FrameReceiver cannot be reconfigured once receiving")
        self.owner = owner
        self.header_size = header_size
        self.byteorder = byteorder
        self._big_endian = byteorder == "big"
        self.max_frame_size = max_frame_size
        self.buffer_size = buffer_size

    def get_buffer(self, Py_ssize_t sizehint=-1):
        """The free region to receive into: for a large frame, exactly its missing part."""
        cdef Py_ssize_t pending, need
        if self._big is not None:
            return memoryview(self._big)[self._big_filled:]
        if self._buf is None:
            if self.header_size == 0:
                raise RuntimeError("FrameReceiver.__init__() was not called")
            self._buf = PyByteArray_FromStringAndSize(NULL, self.buffer_size)
            self._base = PyByteArray_AS_STRING(self._buf)
            self._wview = memoryview(self._buf)
        pending = self._end - self._start
        if pending == 0:
            self._start = self._end = 0
        elif self._start > 0 and not self._failed:
            need = self.buffer_size - self._start  # room for the frame where it lies
            if pending >= self.header_size:
                need = self.header_size + <Py_ssize_t>corenet_read_len(
                    <unsigned char*>self._base + self._start, self.header_size, self._big_endian)
            if (self._start + need > self.buffer_size
                    or self.buffer_size - self._end < self.buffer_size // MIN_FREE_DIVISOR):
                memmove(self._base, self._base + self._start, pending)
                self._start = 0
                self._end = pending
        return self._wview[self._end:]

    def buffer_updated(self, Py_ssize_t nbytes):
        """Account for ``nbytes`` received and deliver every frame now complete.

        Raises FrameTooLarge for a length above ``max_frame_size``, before reserving
        anything for it; nothing is delivered after that.
        """
        cdef bytearray big
        if self._failed:
            return
        if self._big is not None:
            if nbytes < 0 or nbytes > len(self._big) - self._big_filled:
                raise ValueError(f"buffer_updated({nbytes}) exceeds the region handed out")
            self._big_filled += nbytes
            if self._big_filled < len(self._big):
                return
            big = self._big
            self._big = None
            self.handle_big_frame(big)
            return
        if self._buf is None or nbytes < 0 or nbytes > self.buffer_size - self._end:
            raise ValueError(f"buffer_updated({nbytes}) exceeds the region handed out")
        self._end += nbytes
        self._parse()

    cdef int _parse(self) except -1:
        cdef Py_ssize_t hs = self.header_size
        cdef Py_ssize_t start, pending, total
        cdef uint64_t length
        while True:
            start = self._start
            pending = self._end - start
            if pending < hs:
                break
            length = corenet_read_len(<unsigned char*>self._base + start, hs, self._big_endian)
            if length > <uint64_t>self.max_frame_size:
                self._failed = True
                raise FrameTooLarge(length, self.max_frame_size)
            total = hs + <Py_ssize_t>length
            if total <= pending:
                self._start = start + total
                self.handle_frame(self._base + start + hs, <Py_ssize_t>length)
                continue
            if total > self.buffer_size:
                self._start_big(<Py_ssize_t>length)
            break
        if self._start == self._end:
            self._start = self._end = 0
        return 0

    cdef int _start_big(self, Py_ssize_t length) except -1:
        """Move a frame that cannot fit the buffer into one of exactly its size."""
        cdef Py_ssize_t have = self._end - self._start - self.header_size
        big = PyByteArray_FromStringAndSize(NULL, length)
        memcpy(PyByteArray_AS_STRING(big), self._base + self._start + self.header_size, have)
        self._big = big
        self._big_filled = have
        self._start = self._end = 0
        return 0

    cdef int handle_frame(self, char* data, Py_ssize_t length) except -1:
        """A complete frame inside the receive buffer; Cython subclasses may override."""
        cdef Py_ssize_t offset
        if self._view is None or not corenet_view_retarget(<PyObject*>self._view, data, length):
            offset = data - self._base
            self._view = self._wview[offset:offset + length]
        if self._on_frame is None:
            self._on_frame = self.owner.frame_received
        self._on_frame(self._view)
        return 0

    cdef int handle_big_frame(self, bytearray frame) except -1:
        """A complete large frame, alone in its own buffer."""
        if self._on_frame is None:
            self._on_frame = self.owner.frame_received
        self._on_frame(memoryview(frame))
        return 0

    cpdef bytes header_for(self, payload):
        """The header for sending ``payload`` (any bytes-like object) as one frame."""
        cdef Py_buffer pb
        cdef Py_ssize_t n
        PyObject_GetBuffer(payload, &pb, PyBUF_SIMPLE)
        n = pb.len
        PyBuffer_Release(&pb)
        return _header(n, self.header_size, self._big_endian)

    def pending_frame(self):
        """``(received, expected)`` for a frame begun but not finished, else None.

        ``received`` is a copy of its bytes so far (header included), ``expected`` its
        full size when the header is complete, else None."""
        cdef Py_ssize_t pending, length
        if self._big is not None:
            expected = self.header_size + len(self._big)
            return (_header(len(self._big), self.header_size, self._big_endian)
                    + bytes(self._big[:self._big_filled]), expected)
        pending = self._end - self._start
        if pending == 0:
            return None
        data = self._wview[self._start:self._end].tobytes()
        if pending < self.header_size:
            return data, None
        length = <Py_ssize_t>corenet_read_len(
            <unsigned char*>self._base + self._start, self.header_size, self._big_endian)
        return data, self.header_size + length
