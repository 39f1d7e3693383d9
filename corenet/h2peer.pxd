# cython: language_level=3
"""One end of an HTTP/2 connection on nghttp2, for the two that corenet has: the HTTPS
client's session (corenet/https/_h2.pyx) and the DNS-over-HTTPS server's
(resolver/daemon/h2_server.pyx). Each subclasses `H2Peer`, makes `session` with the
callbacks of `callbacks()` and its own `self` as nghttp2's user data, and overrides the
event methods it wants."""
from libc.stdint cimport int32_t, uint8_t, uint32_t

from corenet.nghttp2 cimport nghttp2_frame, nghttp2_frame_hd, nghttp2_nv, nghttp2_session
from corenet.nghttp2 cimport nghttp2_session_callbacks

# Which of the optional callbacks a session gets (nghttp2 skips the work of calling one
# that is not set).
cdef enum:
    ON_BEGIN_FRAME = 1
    ON_FRAME_SEND = 2
    ON_ERROR = 4        # invalid_frame and error: why nghttp2 rejected what came


cdef class H2Peer:
    cdef nghttp2_session *session   # made by the subclass; deleted with the object
    # Raised in an event method; nghttp2 was told that the callback failed (the first
    # one is kept), and the subclass raises it again to its caller.
    cdef object exc

    # nghttp2's events, each called by the callback of the same name; each returns 0, or
    # one of nghttp2's error codes (it decides what becomes of the stream or session).
    cdef int begin_frame(self, const nghttp2_frame_hd *hd) except -1
    cdef int begin_headers(self, const nghttp2_frame *frame) except -1
    cdef int header(self, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                    const uint8_t *value, size_t valuelen) except -1
    cdef int frame_received(self, const nghttp2_frame *frame) except -1
    cdef int data_chunk(self, int32_t sid, const uint8_t *data, size_t size) except -1
    cdef int frame_sent(self, const nghttp2_frame *frame) except -1
    cdef int stream_closed(self, int32_t sid, uint32_t error_code) except -1
    cdef int invalid_frame(self, const nghttp2_frame *frame, int lib_error_code) except -1
    cdef int error(self, int lib_error_code, const char *msg, size_t size) except -1


cdef nghttp2_session_callbacks *callbacks(int optional) except NULL
cdef int fill_nv(nghttp2_nv *nva, list headers) except -1
