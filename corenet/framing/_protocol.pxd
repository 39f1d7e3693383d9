# The framer core, for Cython modules that cimport it (the DNS daemon's TCP listener).
#
# A Cython subclass overrides ``handle_frame`` to read a frame straight from the buffer
# (no memoryview at all), then mixes in asyncio.BufferedProtocol in a Python class, as
# ``FrameProtocol`` does, so that transports take the recv_into path.

cdef class FrameCore:
    cdef readonly Py_ssize_t header_size
    cdef readonly str byteorder
    cdef readonly Py_ssize_t max_frame_size
    cdef readonly Py_ssize_t buffer_size
    cdef public object transport

    cdef bint _big_endian
    cdef bytearray _buf          # the receive buffer; allocated once, never resized
    cdef object _wview           # writable memoryview of _buf, sliced for get_buffer
    cdef char* _base
    cdef Py_ssize_t _start       # first byte not yet consumed
    cdef Py_ssize_t _end         # first free byte
    cdef bytearray _big          # buffer of exactly one large frame's payload, or None
    cdef Py_ssize_t _big_filled
    cdef object _view            # the frame view handed to frame_received, reused when unshared
    cdef bint _failed

    cdef int _configure(self, Py_ssize_t header_size, str byteorder,
                        Py_ssize_t max_frame_size, Py_ssize_t buffer_size) except -1
    cdef int _parse(self) except -1
    cdef int _start_big(self, Py_ssize_t length) except -1
    cdef int handle_frame(self, char* data, Py_ssize_t length) except -1
    cpdef send_frame(self, payload)
