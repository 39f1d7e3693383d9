# cython: language_level=3, boundscheck=False, wraparound=False
"""One HTTP/2 client connection's state on nghttp2 (RFC 9113), sans-IO: bytes in through
``receive``, bytes out through ``data_to_send``, what happened as a list of events.

nghttp2 does the protocol: framing, HPACK, stream states, flow control arithmetic (a
WINDOW_UPDATE past 2^31-1 is a FLOW_CONTROL_ERROR), the checks RFC 9113 asks of a response's
headers, the ACKs of SETTINGS and PING. What a hostile server can push is bounded here:

- a header block: ``max_header_bytes`` counted as HPACK counts a header list (name, value
  and 32 per field) and ``max_header_count`` fields; past either the stream is reset and
  its request fails (the HPACK table itself is bounded by the SETTINGS_HEADER_TABLE_SIZE we
  announce, and nghttp2 refuses a single field over 64 KiB);
- CONTINUATION frames after one HEADERS: ``max_continuations`` (CVE-2024-27316 class);
- SETTINGS entries in one frame: ``max_settings``;
- frames that make us write without doing any work for us (PING and SETTINGS that are not
  ACKs, DATA frames that carry no data, padding alone or nothing): ``max_control_frames``
  plus ``control_frames_per_request`` for each request sent; past that the connection ends
  with GOAWAY (ENHANCE_YOUR_CALM);
- a final ``:status`` outside 100-599 (RFC 9110 15) resets the stream;
- response data is acknowledged (WINDOW_UPDATE) only as the caller ``consume``s it, so a
  server can have at most the stream and connection windows in flight unread.

Events, in order, as tuples whose first item says what they are:

- ``(HEAD, stream_id, status, headers)``: a final response head (interim 1xx heads are
  counted against ``max_interim`` and dropped); ``headers`` is a list of (name, value) bytes;
- ``(DATA, stream_id, data)``: body bytes of the stream, ``bytes`` for a chunk of
  ``SMALL_PIECE`` bytes or more, else a ``bytearray`` into which the small chunks that
  follow in the same ``receive`` are gathered (up to ``COALESCE`` bytes), however many DATA
  frames carried them: memory follows the bytes, not the frames, whose size the server
  chooses; the caller may keep and extend a bytearray given;
- ``(TRAILERS, stream_id, headers)``;
- ``(END, stream_id, None)``: the server's side of the stream ended (END_STREAM): the
  response is whole, though this side may still be sending;
- ``(CLOSED, stream_id, error_code, message)``: the stream is over; ``error_code`` 0 and
  ``message`` None when it ended normally, else the RST_STREAM code, and ``message`` says
  why when this side reset it (nghttp2's reason, or the limit passed) and names the code
  sent; None when the server reset it;
- ``(GOAWAY, last_stream_id, error_code, debug)``: the server's, ``debug`` its debug data as
  text;
- ``(PING_ACK, 0, None)``.
"""
from libc.stdint cimport int32_t, uint8_t, uint32_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from cpython.bytearray cimport (
    PyByteArray_AS_STRING, PyByteArray_FromStringAndSize, PyByteArray_GET_SIZE,
    PyByteArray_Resize,
)
from cpython.bytes cimport PyBytes_FromStringAndSize

from corenet.h2peer cimport ON_BEGIN_FRAME, ON_ERROR, ON_FRAME_SEND, H2Peer, callbacks, fill_nv
from corenet.nghttp2 cimport *

HEAD = 0
DATA = 1
TRAILERS = 2
CLOSED = 3
GOAWAY = 4
PING_ACK = 5
END = 6

# HTTP/2 error codes (RFC 9113 7) a caller may want to name.
NO_ERROR = 0
PROTOCOL_ERROR = 1
INTERNAL_ERROR = 2
REFUSED_STREAM = 7
CANCEL = 8
ENHANCE_YOUR_CALM = 11

# The largest window RFC 9113 allows (6.9.1).
MAX_WINDOW = 2147483647

# Body chunks smaller than SMALL_PIECE are gathered into a bytearray of up to COALESCE bytes
# (see DATA above); larger ones are bytes of their own, copied once.
cdef enum:
    _SMALL = 4096
    _COALESCE = 65536
SMALL_PIECE = _SMALL
COALESCE = _COALESCE


class H2Error(Exception):
    """The connection failed: nghttp2 refused the server's bytes, or a limit was passed."""


def error_name(uint32_t code) -> str:
    """The name of an HTTP/2 error code (RFC 9113 7), "PROTOCOL_ERROR" for 1."""
    return nghttp2_http2_strerror(code).decode()


cdef class _Out:
    """A request body on its way: bytes appended by the caller, taken by nghttp2 as the
    server's windows allow."""
    cdef bytearray buf
    cdef Py_ssize_t taken
    cdef bint ended
    cdef bint deferred

    def __cinit__(self):
        self.buf = bytearray()


cdef class _In:
    """A response's header block being read."""
    cdef list fields
    cdef int status
    cdef Py_ssize_t size
    cdef bint head_done          # the final head was given: a later block is trailers
    cdef int interim
    cdef object error            # why this side reset the stream
    cdef long long content_length  # the final head's, -1 without one
    cdef long long received      # body bytes given
    cdef bytearray piece         # where this receive() gathers small chunks, or None

    def __cinit__(self):
        self.content_length = -1


cdef ssize_t read_body(nghttp2_session *session, int32_t sid, uint8_t *buf, size_t length,
                       uint32_t *data_flags, nghttp2_data_source *source,
                       void *user_data) noexcept:
    cdef _Out out = <_Out>source.ptr
    cdef Py_ssize_t left = len(out.buf) - out.taken
    cdef Py_ssize_t n = left if <size_t>left <= length else <Py_ssize_t>length
    if n == 0 and not out.ended:
        out.deferred = True
        return NGHTTP2_ERR_DEFERRED
    if n:
        memcpy(buf, <char *>out.buf + out.taken, n)
        out.taken += n
        if out.taken >= 65536 and out.taken * 2 >= len(out.buf):
            del out.buf[:out.taken]
            out.taken = 0
    if out.ended and out.taken == len(out.buf):
        data_flags[0] |= NGHTTP2_DATA_FLAG_EOF
    return n


cdef class H2Session(H2Peer):
    cdef readonly list events
    cdef dict ins                  # stream id -> _In, streams whose response is wanted
    cdef dict outs                 # stream id -> _Out, request bodies being sent
    cdef list filling              # _In gathering small chunks in this receive()
    cdef Py_ssize_t max_header_bytes
    cdef Py_ssize_t max_header_count
    cdef int max_interim
    cdef Py_ssize_t control_budget
    cdef Py_ssize_t control_per_request
    cdef readonly Py_ssize_t control_frames
    cdef readonly bint goaway_received
    # Why this side ended the connection (its GOAWAY's code and nghttp2's reason), or None.
    cdef readonly object goaway_sent
    cdef object reason           # nghttp2's words on what is wrong with the frame being read
    cdef object broken           # ... and on a frame that broke the connection
    cdef bint padded             # a padded DATA frame is being read ...
    cdef bint padded_data        # ... and it carried data
    cdef readonly int requests

    def __init__(self, *, Py_ssize_t max_header_bytes, Py_ssize_t max_header_count,
                 int max_interim, size_t max_continuations, size_t max_settings,
                 Py_ssize_t max_control_frames, Py_ssize_t control_frames_per_request,
                 uint32_t header_table_size, int32_t stream_window, int32_t connection_window,
                 uint32_t max_frame_size=16384):
        cdef nghttp2_option *opt
        cdef nghttp2_settings_entry iv[5]
        self.events = []
        self.ins = {}
        self.outs = {}
        self.filling = []
        self.max_header_bytes = max_header_bytes
        self.max_header_count = max_header_count
        self.max_interim = max_interim
        self.control_budget = max_control_frames
        self.control_per_request = control_frames_per_request
        if nghttp2_option_new(&opt) != 0:
            raise MemoryError("nghttp2 cannot make its options")
        nghttp2_option_set_no_auto_window_update(opt, 1)
        nghttp2_option_set_max_continuations(opt, max_continuations)
        nghttp2_option_set_max_settings(opt, max_settings)
        nghttp2_option_set_max_reserved_remote_streams(opt, 0)
        # nghttp2 ends a session holding more than 1000 unsent ACKs; here every frame that
        # asks for one is counted against max_control_frames first, which bounds them, and
        # a flood is reported under the limit the caller can set.
        nghttp2_option_set_max_outbound_ack(opt, 1 << 30)
        # Until the server's SETTINGS say otherwise, one request at a time is what is sure.
        nghttp2_option_set_peer_max_concurrent_streams(opt, 100)
        rv = nghttp2_session_client_new2(
            &self.session, callbacks(ON_BEGIN_FRAME | ON_FRAME_SEND | ON_ERROR), <void *>self,
            opt)
        nghttp2_option_del(opt)
        if rv != 0:
            raise MemoryError("nghttp2 cannot make a client session")
        iv[0].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH
        iv[0].value = 0
        iv[1].settings_id = NGHTTP2_SETTINGS_HEADER_TABLE_SIZE
        iv[1].value = header_table_size
        iv[2].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE
        iv[2].value = <uint32_t>stream_window
        iv[3].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE
        iv[3].value = <uint32_t>max_header_bytes
        iv[4].settings_id = NGHTTP2_SETTINGS_MAX_FRAME_SIZE
        iv[4].value = max_frame_size
        if nghttp2_submit_settings(self.session, NGHTTP2_FLAG_NONE, iv, 5) != 0:
            raise H2Error("nghttp2 refused our SETTINGS")
        if connection_window > 65535:
            nghttp2_session_set_local_window_size(self.session, NGHTTP2_FLAG_NONE, 0,
                                                  connection_window)

    # ---- nghttp2's events (H2Peer's methods) ----
    cdef int begin_frame(self, const nghttp2_frame_hd *hd) except -1:
        cdef uint8_t t = hd.type
        self.reason = None
        if self.padded:
            # The padded DATA frame before this one carried padding alone unless data came.
            self.padded = False
            if not self.padded_data and self.count_control() != 0:
                return NGHTTP2_ERR_CALLBACK_FAILURE
        if t == NGHTTP2_DATA:
            if hd.flags & NGHTTP2_FLAG_END_STREAM:
                return 0
            if hd.length == 0:
                return self.count_control()
            if hd.flags & NGHTTP2_FLAG_PADDED:
                self.padded = True  # how much of it is padding shows as it is read
                self.padded_data = False
        elif (t == NGHTTP2_PING or t == NGHTTP2_SETTINGS) and not (hd.flags & NGHTTP2_FLAG_ACK):
            return self.count_control()
        return 0

    cdef int count_control(self) except -1:
        """One more frame that only makes us answer or carries nothing."""
        self.control_frames += 1
        if self.control_frames > self.control_budget:
            self.exc = H2Error(
                f"the server sent more than {self.control_budget} frames that only make "
                "us answer or carry nothing (PING, SETTINGS, DATA without data): "
                "h2_max_control_frames")
            nghttp2_session_terminate_session(self.session, NGHTTP2_ENHANCE_YOUR_CALM)
            return NGHTTP2_ERR_CALLBACK_FAILURE
        return 0

    cdef int begin_headers(self, const nghttp2_frame *frame) except -1:
        cdef _In st = self.ins.get(frame.hd.stream_id)
        if st is not None:
            st.fields = []
            st.size = 0
            st.status = 0
            if not st.head_done:
                st.content_length = -1
        return 0

    cdef int header(self, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                    const uint8_t *value, size_t valuelen) except -1:
        cdef _In st = self.ins.get(frame.hd.stream_id)
        if st is None:
            return 0
        st.size += namelen + valuelen + 32
        if st.size > self.max_header_bytes or len(st.fields) >= self.max_header_count:
            st.error = (f"the response's header block exceeds {self.max_header_bytes} bytes "
                        "(max_header_bytes)" if st.size > self.max_header_bytes else
                        f"the response has more than {self.max_header_count} header "
                        "fields (max_header_count)")
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE  # resets the stream
        if namelen == 7 and not st.head_done and name[0] == b':' \
                and (<char *>name)[:7] == b":status":
            st.status = int((<char *>value)[:valuelen])  # three digits: nghttp2 checked
            if not 100 <= st.status <= 599:
                st.error = (f"the response's :status {(<char *>value)[:valuelen].decode()} "
                            "is not in 100-599 (RFC 9110 15)")
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE  # resets the stream
            return 0
        if namelen == 14 and not st.head_done and (<char *>name)[:14] == b"content-length":
            st.content_length = int((<char *>value)[:valuelen])  # digits: nghttp2 checked
        st.fields.append((PyBytes_FromStringAndSize(<char *>name, namelen),
                          PyBytes_FromStringAndSize(<char *>value, valuelen)))
        return 0

    cdef int frame_received(self, const nghttp2_frame *frame) except -1:
        cdef uint8_t t = frame.hd.type
        cdef int32_t sid = frame.hd.stream_id
        cdef _In st
        if t == NGHTTP2_HEADERS or t == NGHTTP2_DATA:
            st = self.ins.get(sid)
            if st is None:
                return 0
            if t == NGHTTP2_HEADERS:
                if st.head_done:
                    self.events.append((TRAILERS, sid, st.fields))
                elif 100 <= st.status < 200:
                    st.interim += 1
                    if st.interim > self.max_interim:
                        st.error = (f"the server sent more than {self.max_interim} interim "
                                    "responses (max_interim_responses)")
                        nghttp2_submit_rst_stream(self.session, NGHTTP2_FLAG_NONE, sid,
                                                  NGHTTP2_PROTOCOL_ERROR)
                else:
                    st.head_done = True
                    self.events.append((HEAD, sid, st.status, st.fields))
                st.fields = None
            if frame.hd.flags & NGHTTP2_FLAG_END_STREAM:
                self.events.append((END, sid, None))
        elif t == NGHTTP2_GOAWAY:
            self.goaway_received = True
            self.events.append((GOAWAY, frame.goaway.last_stream_id, frame.goaway.error_code,
                                _text(frame.goaway.opaque_data, frame.goaway.opaque_data_len)))
        elif t == NGHTTP2_PING and frame.hd.flags & NGHTTP2_FLAG_ACK:
            self.events.append((PING_ACK, 0, None))
        return 0

    cdef int data_chunk(self, int32_t sid, const uint8_t *data, size_t size) except -1:
        cdef _In st = self.ins.get(sid)
        cdef Py_ssize_t n
        self.padded_data = True
        if st is None:
            # A stream nobody reads any more: give its bytes back to the connection window.
            nghttp2_session_consume(self.session, sid, size)
            return 0
        st.received += size
        if size >= _SMALL:
            st.piece = None  # the small chunks after this one go after it
            self.events.append((DATA, sid, PyBytes_FromStringAndSize(<char *>data, size)))
            return 0
        piece = st.piece
        if piece is not None and PyByteArray_GET_SIZE(piece) < _COALESCE:
            n = PyByteArray_GET_SIZE(piece)
            PyByteArray_Resize(piece, n + <Py_ssize_t>size)  # in place, amortized
            memcpy(PyByteArray_AS_STRING(piece) + n, data, size)
            return 0
        st.piece = PyByteArray_FromStringAndSize(<char *>data, size)
        self.events.append((DATA, sid, st.piece))
        self.filling.append(st)
        return 0

    cdef int frame_sent(self, const nghttp2_frame *frame) except -1:
        cdef uint8_t t = frame.hd.type
        cdef _In st
        if t == NGHTTP2_RST_STREAM:
            st = self.ins.get(frame.hd.stream_id)
            if st is not None:  # nghttp2's reset, not the caller's
                if st.error is None:
                    st.error = self.malformed(st) \
                        if frame.rst_stream.error_code == NGHTTP2_PROTOCOL_ERROR \
                        else "the response broke HTTP/2"
                st.error = (f"{st.error}; the client reset the stream "
                            f"({error_name(frame.rst_stream.error_code)})")
        elif t == NGHTTP2_GOAWAY and frame.goaway.error_code != NGHTTP2_NO_ERROR \
                and self.goaway_sent is None:
            why = _text(frame.goaway.opaque_data, frame.goaway.opaque_data_len) or self.broken
            self.goaway_sent = error_name(frame.goaway.error_code) + (f": {why}" if why else "")
        return 0

    cdef int invalid_frame(self, const nghttp2_frame *frame, int lib_error_code) except -1:
        cdef _In st = self.ins.get(frame.hd.stream_id)
        if st is None and self.broken is None:  # a connection error, or a stream not ours
            self.broken = (f"{self.reason or nghttp2_strerror(lib_error_code).decode()} "
                           f"({_frame_name(frame.hd.type)} frame)")
        elif st is not None and st.error is None:
            # DATA, or the trailers ending a body short of its content-length.
            st.error = self.malformed(st) if frame.hd.type == NGHTTP2_DATA \
                or frame.hd.flags & NGHTTP2_FLAG_END_STREAM and st.head_done \
                and 0 <= st.content_length != st.received \
                else self.reason or nghttp2_strerror(lib_error_code).decode()
        return 0

    cdef int error(self, int lib_error_code, const char *msg, size_t size) except -1:
        self.reason = msg[:size].decode("utf-8", "replace")
        return 0

    cdef str malformed(self, _In st):
        """Why nghttp2 reset stream `st` over its DATA, which it may not say itself (a body
        of another length than its content-length)."""
        if st.head_done and st.content_length >= 0:
            return (f"the response body's length differs from its content-length: "
                    f"{st.content_length} ({st.received} bytes came)")
        return self.reason or "the response broke HTTP/2"

    cdef int stream_closed(self, int32_t sid, uint32_t error_code) except -1:
        cdef _In st
        self.outs.pop(sid, None)
        st = self.ins.pop(sid, None)
        if st is not None:
            self.events.append((CLOSED, sid, error_code, st.error))
        return 0

    # ---- the caller's side ----
    def receive(self, data) -> list:
        """Feed bytes from the server; returns (and clears) the events they made."""
        cdef const uint8_t[::1] view = data
        cdef ssize_t rv
        if view.shape[0]:
            rv = nghttp2_session_mem_recv(self.session, &view[0], view.shape[0])
            if rv < 0:
                exc = self.exc
                self.exc = None
                if exc is not None:
                    raise exc
                why = self.goaway_sent or self.reason
                limit = _LIMITS.get(rv)
                raise H2Error(f"HTTP/2 protocol error from the server: "
                              f"{nghttp2_strerror(<int>rv).decode()}"
                              + (f" ({why})" if why else "")
                              + (f" (Limits.{limit})" if limit else ""))
        return self.take_events()

    def take_events(self) -> list:
        cdef _In st
        events = self.events
        self.events = []
        if self.filling:
            for st in self.filling:
                st.piece = None
            self.filling = []
        return events

    def data_to_send(self) -> bytes:
        cdef const uint8_t *data
        cdef ssize_t n
        parts = []
        while True:
            n = nghttp2_session_mem_send(self.session, &data)
            if n < 0:
                exc = self.exc
                self.exc = None
                if exc is not None:
                    raise exc
                raise H2Error(f"nghttp2 cannot send: {nghttp2_strerror(<int>n).decode()}")
            if n == 0:
                break
            parts.append(PyBytes_FromStringAndSize(<char *>data, n))
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def request(self, list headers, bint has_body) -> int:
        """Submit a request's head (pseudo-headers first, names lowercase); with
        ``has_body`` its body follows through ``send_body``. Returns the stream id."""
        cdef Py_ssize_t n = len(headers)
        cdef nghttp2_nv *nva = <nghttp2_nv *>malloc(n * sizeof(nghttp2_nv))
        cdef nghttp2_data_provider prd
        cdef _Out out = None
        cdef int32_t sid
        if nva == NULL:
            raise MemoryError()
        try:
            fill_nv(nva, headers)
            if has_body:
                out = _Out()
                prd.source.ptr = <void *>out
                prd.read_callback = read_body
                sid = nghttp2_submit_request(self.session, NULL, nva, n, &prd, NULL)
            else:
                sid = nghttp2_submit_request(self.session, NULL, nva, n, NULL, NULL)
        finally:
            free(nva)
        if sid < 0:
            raise H2Error(f"nghttp2 refused the request: {nghttp2_strerror(sid).decode()}")
        st = _In()
        self.ins[sid] = st
        if out is not None:
            self.outs[sid] = out
        self.requests += 1
        self.control_budget += self.control_per_request
        return sid

    def send_body(self, int32_t sid, data, bint end) -> None:
        """Queue request body bytes on stream ``sid`` (``end``: the last of them)."""
        cdef _Out out = self.outs.get(sid)
        if out is None:
            return  # the stream is over (reset, or answered and closed): nothing to send
        if data:
            out.buf += data
        if end:
            out.ended = True
        if out.deferred:
            out.deferred = False
            nghttp2_session_resume_data(self.session, sid)

    def unsent(self, int32_t sid) -> int:
        """Request body bytes queued on ``sid`` that nghttp2 has not taken yet."""
        cdef _Out out = self.outs.get(sid)
        return 0 if out is None else len(out.buf) - out.taken

    def consume(self, int32_t sid, size_t n) -> None:
        """``n`` bytes of ``sid``'s response were read: the server may send that much more."""
        if n:
            nghttp2_session_consume(self.session, sid, n)

    def reset(self, int32_t sid, uint32_t code=NGHTTP2_CANCEL) -> None:
        """Stop stream ``sid`` (RST_STREAM): its response is no longer read."""
        self.ins.pop(sid, None)
        self.outs.pop(sid, None)
        nghttp2_submit_rst_stream(self.session, NGHTTP2_FLAG_NONE, sid, code)

    def forget(self, int32_t sid) -> None:
        """The caller stops reading ``sid``: data still coming for it is let through."""
        self.ins.pop(sid, None)

    def ping(self, bytes opaque=b"corenet!") -> None:
        nghttp2_submit_ping(self.session, NGHTTP2_FLAG_NONE, <const uint8_t *>opaque)

    def close(self, uint32_t code=NGHTTP2_NO_ERROR) -> None:
        """End the connection with GOAWAY."""
        nghttp2_session_terminate_session(self.session, code)

    @property
    def max_concurrent(self) -> int:
        """The server's SETTINGS_MAX_CONCURRENT_STREAMS (100 until it says)."""
        return nghttp2_session_get_remote_settings(self.session,
                                                   NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)

    @property
    def open_streams(self) -> int:
        return len(self.ins)

    @property
    def alive(self) -> bool:
        """nghttp2 still reads or writes (false after either side's fatal GOAWAY)."""
        return bool(nghttp2_session_want_read(self.session)
                    or nghttp2_session_want_write(self.session))


# nghttp2's errors for the bounds given to it, and the Limits that set them.
_LIMITS = {NGHTTP2_ERR_TOO_MANY_CONTINUATIONS: "h2_max_continuations",
           NGHTTP2_ERR_TOO_MANY_SETTINGS: "h2_max_settings"}

_FRAME_NAMES = ("DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE",
                "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION")


cdef str _frame_name(uint8_t t):
    return _FRAME_NAMES[t] if t < len(_FRAME_NAMES) else f"type {t}"


cdef str _text(const uint8_t *data, size_t size):
    """A GOAWAY's debug data as text (at most 256 bytes of it)."""
    cdef size_t n = size if size < 256 else 256
    if data == NULL or n == 0:
        return ""
    return (<char *>data)[:n].decode("utf-8", "replace")
