# The framer core; other extensions cimport it through corenet/capi.pxd.
#
# ``FrameReceiver`` is sans-IO: get_buffer/buffer_updated in, frames out. By default it
# calls ``owner.frame_received(memoryview)``; a Cython subclass may override
# ``handle_frame`` to read each frame straight from the buffer, with no Python object made.
# A protocol owns one (as ``FrameProtocol`` does) rather than inheriting from it: Python
# subclasses of extension types lose CPython 3.11's fast instance attributes.

cdef class FrameReceiver:
    cdef readonly Py_ssize_t header_size
    cdef readonly str byteorder
    cdef readonly Py_ssize_t max_frame_size
    cdef readonly Py_ssize_t buffer_size
    cdef object owner            # has frame_received(frame); None for Cython subclasses

    cdef bint _big_endian
    cdef bytearray _buf          # the receive buffer; allocated once, never resized
    cdef object _wview           # writable memoryview of _buf, sliced for get_buffer
    cdef char* _base
    cdef Py_ssize_t _start       # first byte not yet consumed
    cdef Py_ssize_t _end         # first free byte
    cdef bytearray _big          # buffer of exactly one large frame's payload, or None
    cdef Py_ssize_t _big_filled
    cdef object _view            # the frame view handed out, reused while nobody keeps it
    cdef bint _failed
    cdef object _on_frame        # owner.frame_received, bound at the first frame

    cdef int _parse(self) except -1
    cdef int _start_big(self, Py_ssize_t length) except -1
    cdef int handle_frame(self, char* data, Py_ssize_t length) except -1
    cdef int handle_big_frame(self, bytearray frame) except -1
    cpdef bytes header_for(self, payload)
