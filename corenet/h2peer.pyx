# cython: language_level=3
"""nghttp2's callbacks, written once for every HTTP/2 peer of corenet's (see h2peer.pxd):
each hands its event to the `H2Peer` method of the same name; an exception there is kept
on the peer and nghttp2 is told that the callback failed."""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

from corenet.nghttp2 cimport *


cdef class H2Peer:
    def __cinit__(self):
        self.session = NULL

    def __dealloc__(self):
        if self.session != NULL:
            nghttp2_session_del(self.session)
            self.session = NULL

    cdef int begin_frame(self, const nghttp2_frame_hd *hd) except -1:
        return 0

    cdef int begin_headers(self, const nghttp2_frame *frame) except -1:
        return 0

    cdef int header(self, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                    const uint8_t *value, size_t valuelen) except -1:
        return 0

    cdef int frame_received(self, const nghttp2_frame *frame) except -1:
        return 0

    cdef int data_chunk(self, int32_t sid, const uint8_t *data, size_t size) except -1:
        return 0

    cdef int frame_sent(self, const nghttp2_frame *frame) except -1:
        return 0

    cdef int stream_closed(self, int32_t sid, uint32_t error_code) except -1:
        return 0

    cdef int invalid_frame(self, const nghttp2_frame *frame, int lib_error_code) except -1:
        return 0

    cdef int error(self, int lib_error_code, const char *msg, size_t size) except -1:
        return 0


cdef int failed(H2Peer self, exc) noexcept:
    if self.exc is None:
        self.exc = exc
    return NGHTTP2_ERR_CALLBACK_FAILURE


cdef int on_begin_frame(nghttp2_session *session, const nghttp2_frame_hd *hd,
                        void *user_data) noexcept:
    cdef H2Peer self = <H2Peer>user_data
    try:
        return self.begin_frame(hd)
    except BaseException as exc:
        return failed(self, exc)


cdef int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
                          void *user_data) noexcept:
    cdef H2Peer self = <H2Peer>user_data
    try:
        return self.begin_headers(frame)
    except BaseException as exc:
        return failed(self, exc)


cdef int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                   size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                   void *user_data) noexcept:
    cdef H2Peer self = <H2Peer>user_data
    try:
        return self.header(frame, name, namelen, value, valuelen)
    except BaseException as exc:
        return failed(self, exc)


cdef int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                       void *user_data) noexcept:
    cdef H2Peer self = <H2Peer>user_data
    try:
        return self.frame_received(frame)
    except BaseException as exc:
        return failed(self, exc)


cdef int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t sid,
                       const uint8_t *data, size_t size, void *user_data) noexcept:
    cdef H2Peer self = <H2Peer>user_data
    try:
        return self.data_chunk(sid, data, size)
    except BaseException as exc:
        return failed(self, exc)


cdef int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame,
                       void *user_data) noexcept:
    cdef H2Peer self = <H2Peer>user_data
    try:
        return self.frame_sent(frame)
    except BaseException as exc:
        return failed(self, exc)


cdef int on_stream_close(nghttp2_session *session, int32_t sid, uint32_t error_code,
                         void *user_data) noexcept:
    cdef H2Peer self = <H2Peer>user_data
    try:
        return self.stream_closed(sid, error_code)
    except BaseException as exc:
        return failed(self, exc)


cdef int on_invalid_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                               int lib_error_code, void *user_data) noexcept:
    cdef H2Peer self = <H2Peer>user_data
    try:
        return self.invalid_frame(frame, lib_error_code)
    except BaseException as exc:
        return failed(self, exc)


cdef int on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t size,
                  void *user_data) noexcept:
    cdef H2Peer self = <H2Peer>user_data
    try:
        return self.error(lib_error_code, msg, size)
    except BaseException as exc:
        return failed(self, exc)


# One table per combination of the optional callbacks, made when first asked for and kept.
cdef nghttp2_session_callbacks *TABLES[8]


cdef nghttp2_session_callbacks *callbacks(int optional) except NULL:
    """nghttp2's callbacks for a session of an H2Peer: the six every peer has, and those of
    `optional` (ON_BEGIN_FRAME, ON_FRAME_SEND, ON_ERROR)."""
    cdef nghttp2_session_callbacks *cbs = TABLES[optional & 7]
    if cbs != NULL:
        return cbs
    if nghttp2_session_callbacks_new(&cbs) != 0:
        raise MemoryError("nghttp2 cannot make its callbacks")
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers)
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header)
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv)
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk)
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close)
    if optional & ON_BEGIN_FRAME:
        nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame)
    if optional & ON_FRAME_SEND:
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send)
    if optional & ON_ERROR:
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame_recv)
        nghttp2_session_callbacks_set_error_callback2(cbs, on_error)
    TABLES[optional & 7] = cbs
    return cbs


cdef int fill_nv(nghttp2_nv *nva, list headers) except -1:
    """Point `nva` (room for len(headers)) at the (name, value) bytes of `headers`, which
    must outlive the submission that reads it."""
    cdef Py_ssize_t i
    cdef bytes name, value
    for i in range(len(headers)):
        name, value = headers[i]
        nva[i].name = <uint8_t *>PyBytes_AS_STRING(name)
        nva[i].namelen = PyBytes_GET_SIZE(name)
        nva[i].value = <uint8_t *>PyBytes_AS_STRING(value)
        nva[i].valuelen = PyBytes_GET_SIZE(value)
        nva[i].flags = NGHTTP2_NV_FLAG_NONE
    return 0
