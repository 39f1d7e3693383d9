# cython: language_level=3, boundscheck=False, wraparound=False
"""DNS over HTTPS on HTTP/2 (RFC 8484, RFC 9113), sans-IO: one server connection's state on
nghttp2, with the interface of :mod:`resolver.daemon.doh`'s engines.

nghttp2 does the protocol: framing, HPACK, flow control both ways, the checks RFC 9113
asks of a request's headers (a malformed one is reset, PROTOCOL_ERROR), the bound on
concurrent streams (a client past the one announced gets GOAWAY), and its own guards
against floods of control frames (SETTINGS, PING, resets). What is DNS's is done here, in
nghttp2's callbacks as the bytes of one ``receive`` are parsed:

- a request's method, path, content type and length are kept from its headers (the first
  of a repeated one), its body as it comes, both bounded (``max_head`` bytes of head, counted
  as HPACK counts a header list, 431 past it; ``max_size`` of body, 413 past it, from the
  announced length already);
- a request that ends goes through :func:`~resolver.daemon.doh.query_of`: its DNS query goes
  to the front door through ``link`` (a :class:`resolver.daemon.doh_reply.DoorLink`) once
  nghttp2 has parsed the input, and the door's reply answers the stream here
  (``respond``); without a link the query comes out of ``receive`` as ``(stream_id,
  query)``. Anything else is answered here (400, 404, 405, 413, 415) with no DNS work, and
  when the client is still sending on that stream it is reset (NO_ERROR) once the answer
  is out;
- HPACK work is bounded before it is paid: a header block of more than ``max_fields``
  fields, or a connection past ``max_fields_total`` fields decoded beyond what its
  requests need (``FIELDS_PER_REQUEST`` each), ends the
  connection (GOAWAY, ENHANCE_YOUR_CALM) at that field, the rest of the input unread (a
  block of thousands of one-byte references to a large table entry otherwise costs
  milliseconds each, and 431 per stream would let it go on forever);
- ``max_requests`` streams are taken on one connection (a stream-reset flood gets no more
  work out of it): past them a stream is not taken, and once every stream taken is
  answered the connection ends with GOAWAY naming the last one taken, so that the client
  knows which to ask again elsewhere (RFC 9113 6.8);
- ``respond(stream_id, answer)`` sends one HEADERS and the answer as DATA ending the
  stream (one frame when it fits the client's window and frame size; else as the window
  opens).

``data_to_send()`` is what nghttp2 has to send; ``closing`` says the connection ends once
that is out and ``busy`` is false; ``errors`` lists the statuses answered here; ``abuse``
says why the connection is being ended when the peer earned it (the HPACK budget, a
protocol error, a flood of streams reset before their answers), None otherwise.
"""
from libc.stdint cimport int32_t, uint8_t, uint32_t
from libc.string cimport memcmp, memcpy

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE

from corenet.h2peer cimport ON_FRAME_SEND, H2Peer, callbacks, fill_nv
from corenet.nghttp2 cimport *

from resolver.daemon.doh import HTTPError, answer_headers, error_body, query_of

cdef enum:
    MAX_RESPONSE_HEADERS = 8       # a response has at most four; room to spare


#: Header fields a DoH request needs at most (it has six to ten): a connection's HPACK
#: allowance grows by this much with each request (``H2Server.header``).
cdef long FIELDS_PER_REQUEST = 16


cdef class Stream:
    """One request taken, until its answer is out."""
    cdef bytes method, path, content_type, content_length
    cdef bytearray body
    cdef Py_ssize_t head           # the header list's size so far, as HPACK counts it
    cdef bint failed               # answered here: what more comes on it is dropped
    cdef bint reset_after          # the client was still sending: reset once answered
    cdef bytes out                 # the response body, sent from ``sent`` on
    cdef Py_ssize_t sent

    def __cinit__(self):
        self.body = bytearray()


cdef inline bint named(const uint8_t *name, size_t namelen, const char *what, size_t n):
    return namelen == n and memcmp(name, what, n) == 0


cdef ssize_t read_body(nghttp2_session *session, int32_t sid, uint8_t *buf, size_t length,
                       uint32_t *data_flags, nghttp2_data_source *source,
                       void *user_data) noexcept:
    cdef Stream stream = <Stream>source.ptr
    cdef Py_ssize_t left = PyBytes_GET_SIZE(stream.out) - stream.sent
    cdef Py_ssize_t n = left if <size_t>left <= length else <Py_ssize_t>length
    memcpy(buf, PyBytes_AS_STRING(stream.out) + stream.sent, n)
    stream.sent += n
    if stream.sent == PyBytes_GET_SIZE(stream.out):
        data_flags[0] |= NGHTTP2_DATA_FLAG_EOF
    return n


cdef class H2Server(H2Peer):
    """One HTTP/2 connection's state, server side (see the module's docstring)."""

    cdef bytes endpoint
    cdef Py_ssize_t max_size, max_head
    cdef long max_requests
    cdef long max_fields, max_fields_total, block_fields, fields
    cdef dict streams              # stream id -> Stream: taken, not answered yet
    cdef dict answering            # stream id -> Stream: answered, the answer not all out
    cdef list ready                # during receive: the queries of the requests that ended
    cdef bint goaway_due           # past the budget and all answered: GOAWAY once sent
    cdef bint broken               # a connection error: nothing more is owed or read
    cdef bint peer_error           # nghttp2 could not go on with the peer's input
    cdef uint32_t goaway_error     # the error code of a GOAWAY sent, 0 for none or NO_ERROR
    cdef readonly long requests, refused, cancelled
    cdef readonly bint calmed      # ended for HPACK work past the budget
    cdef readonly int32_t last_taken
    cdef readonly bint ending, closing
    cdef readonly list errors
    cdef readonly list reset       # streams reset before their answers (the caller clears it)
    cdef public object link        # the front door (a doh_reply.DoorLink), or None

    version = "h2"
    #: More input is welcome at any time (streams, heads and bodies are bounded above).
    wants_input = True

    def __init__(self, bytes endpoint, Py_ssize_t max_size, int max_streams,
                 long max_requests, Py_ssize_t max_head, long max_fields=64,
                 long max_fields_total=100000, link=None):
        cdef nghttp2_settings_entry settings[3]
        self.endpoint = endpoint
        self.max_size = max_size
        self.max_head = max_head
        self.max_requests = max_requests
        self.max_fields = max_fields
        self.max_fields_total = max_fields_total
        self.streams = {}
        self.answering = {}
        self.ready = []
        self.errors = []
        self.reset = []
        self.link = link
        if nghttp2_session_server_new2(&self.session, callbacks(ON_FRAME_SEND), <void *>self,
                                       NULL) != 0:
            self.session = NULL
            raise MemoryError("nghttp2 cannot make a session")
        settings[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS
        settings[0].value = max_streams
        settings[1].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE
        settings[1].value = max_head
        settings[2].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH
        settings[2].value = 0
        if nghttp2_submit_settings(self.session, NGHTTP2_FLAG_NONE, settings, 3) != 0:
            raise MemoryError("nghttp2 cannot queue its settings")

    @property
    def abuse(self):
        """Why the connection is being ended, when the peer earned it: "hpack_budget"
        (header fields past the budget), "reset_flood" (ended at the request budget, or by
        nghttp2's own guard, with most of its streams reset before their answers), or
        "protocol_error" (nghttp2 ended it with an error: a malformed frame, a flood of
        control frames, a stream past the announced limit ...); None otherwise (the request
        budget reached by a client that read its answers, the peer's own close)."""
        if self.calmed:
            return "hpack_budget"
        taken = self.requests - self.refused
        if (self.ending or self.goaway_error or self.peer_error) and self.cancelled * 2 > taken:
            return "reset_flood"
        if self.peer_error or self.goaway_error:
            return "protocol_error"
        return None

    @property
    def busy(self):
        """Something is still owed to the peer (a stream taken and not answered, or an
        answer not all out)."""
        return not self.broken and bool(self.streams or self.answering)

    def buffered(self):
        """Bytes held: of the request bodies read so far, of the answers not yet handed to
        ``data_to_send`` (their bodies; nghttp2's frame heads are not counted)."""
        cdef Py_ssize_t queries = 0, answers = 0
        cdef Stream s
        for s in self.streams.values():
            if s.body is not None:
                queries += len(s.body)
        for s in self.answering.values():
            if s.out is not None:
                answers += len(s.out) - s.sent
        return queries, answers

    def receive(self, data):
        """Feeds the peer's bytes (b"" at its end of stream). The queries of the requests
        that ended go to the front door (``link.ask``), and the streams reset before their
        answers stop waiting (``link.cancel``); without a link they are returned, as
        ``(stream_id, query)``."""
        cdef const unsigned char[::1] view
        cdef ssize_t r
        if not data:
            self.closing = True
            return []
        if self.broken or (self.closing and not self.answering):
            return []
        view = data
        self.ready = []
        r = nghttp2_session_mem_recv(self.session, &view[0], view.shape[0])
        if self.exc is not None:
            exc, self.exc = self.exc, None
            raise exc
        if self.calmed or r < 0 or not nghttp2_session_want_read(self.session):
            self.peer_error = not self.calmed
            self.end()                   # a connection error: nghttp2 has queued GOAWAY
            return []
        self.end_if_done()
        ready, self.ready = self.ready, []
        if self.link is None:
            return ready
        for sid, q in ready:
            self.link.ask(self, sid, q)
        if self.reset:
            self.link.cancel(self.reset)
            self.reset.clear()
        return []

    # ---- nghttp2's events (H2Peer's methods)

    cdef int begin_headers(self, const nghttp2_frame *frame) except -1:
        """A request's HEADERS begin: the stream is taken, unless past the budget."""
        self.block_fields = 0
        if frame.hd.type != NGHTTP2_HEADERS or frame.headers.cat != NGHTTP2_HCAT_REQUEST:
            return 0
        self.requests += 1
        if self.requests > self.max_requests:
            self.refused += 1          # not taken; the GOAWAY will name the last one taken
            self.ending = True
            return 0
        self.last_taken = frame.hd.stream_id
        self.streams[frame.hd.stream_id] = Stream()
        return 0

    cdef int header(self, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                    const uint8_t *value, size_t valuelen) except -1:
        """One header of a request taken: the first of each that DoH reads is kept."""
        cdef Stream stream
        self.block_fields += 1
        self.fields += 1
        # A connection's allowance grows with its requests by what a DoH request needs
        # (FIELDS_PER_REQUEST), so a client of any length stays within it, and one that
        # spends a block's worth of fields on every request does not.
        if (self.block_fields > self.max_fields
                or self.fields > self.max_fields_total + FIELDS_PER_REQUEST * self.requests):
            # Past the HPACK budget: GOAWAY, and nghttp2 decodes nothing more of this input.
            self.calmed = True
            nghttp2_session_terminate_session(self.session, NGHTTP2_ENHANCE_YOUR_CALM)
            return NGHTTP2_ERR_PAUSE
        if frame.hd.type != NGHTTP2_HEADERS or frame.headers.cat != NGHTTP2_HCAT_REQUEST:
            return 0                               # trailers: nothing of DoH's
        found = self.streams.get(frame.hd.stream_id)
        if found is None:
            return 0
        stream = <Stream>found
        stream.head += namelen + valuelen + 32
        if stream.failed or stream.head > self.max_head:
            return 0
        if named(name, namelen, b":method", 7):
            if stream.method is None:
                stream.method = PyBytes_FromStringAndSize(<const char *>value, valuelen)
        elif named(name, namelen, b":path", 5):
            if stream.path is None:
                stream.path = PyBytes_FromStringAndSize(<const char *>value, valuelen)
        elif named(name, namelen, b"content-type", 12):
            if stream.content_type is None:
                stream.content_type = PyBytes_FromStringAndSize(<const char *>value, valuelen)
        elif named(name, namelen, b"content-length", 14):
            if stream.content_length is None:
                stream.content_length = PyBytes_FromStringAndSize(<const char *>value,
                                                                  valuelen)
        return 0

    cdef int frame_received(self, const nghttp2_frame *frame) except -1:
        """A request's head is whole (its size and announced length are checked), or its
        stream has ended (its query is ready, or its error answered)."""
        cdef Stream stream
        cdef int32_t sid = frame.hd.stream_id
        if frame.hd.type != NGHTTP2_HEADERS and frame.hd.type != NGHTTP2_DATA:
            return 0
        found = self.streams.get(sid)
        if found is None:
            return 0
        stream = <Stream>found
        if frame.hd.type == NGHTTP2_HEADERS and frame.headers.cat == NGHTTP2_HCAT_REQUEST:
            if stream.head > self.max_head:
                return self.fail(sid, stream, HTTPError(431, "request header fields too large"))
            length = stream.content_length
            if length is not None and length.isdigit() and int(length) > self.max_size:
                return self.fail(sid, stream, HTTPError(413, "query too large"))
        if frame.hd.flags & NGHTTP2_FLAG_END_STREAM and not stream.failed:
            try:
                q = query_of(stream.method or b"", stream.path or b"", stream.content_type,
                             bytes(stream.body), self.endpoint, self.max_size)
            except HTTPError as err:
                return self.fail(sid, stream, err)
            stream.body = None
            self.ready.append((sid, q))
        return 0

    cdef int data_chunk(self, int32_t sid, const uint8_t *data, size_t size) except -1:
        """Part of a request's body: kept up to ``max_size`` (413 past it)."""
        cdef Stream stream
        found = self.streams.get(sid)
        if found is None:
            return 0
        stream = <Stream>found
        if stream.failed:
            return 0
        if len(stream.body) + <Py_ssize_t>size > self.max_size:
            return self.fail(sid, stream, HTTPError(413, "query too large"))
        stream.body += (<const char *>data)[:size]
        return 0

    cdef int stream_closed(self, int32_t sid, uint32_t error_code) except -1:
        if self.streams.pop(sid, None) is not None:
            self.cancelled += 1        # reset (or closed) before its answer: none is sent
            self.reset.append(sid)
        self.answering.pop(sid, None)
        return 0

    cdef int frame_sent(self, const nghttp2_frame *frame) except -1:
        """An answer's last frame is out: a stream whose client was still sending when it
        was answered with an error is reset now."""
        cdef Stream stream
        cdef int32_t sid = frame.hd.stream_id
        if frame.hd.type == NGHTTP2_GOAWAY:
            self.goaway_error = frame.goaway.error_code
            return 0
        if not frame.hd.flags & NGHTTP2_FLAG_END_STREAM or (
                frame.hd.type != NGHTTP2_DATA and frame.hd.type != NGHTTP2_HEADERS):
            return 0
        found = self.answering.pop(sid, None)
        if found is not None:
            stream = <Stream>found
            if stream.reset_after and not nghttp2_session_get_stream_remote_close(
                    self.session, sid):
                nghttp2_submit_rst_stream(self.session, NGHTTP2_FLAG_NONE, sid,
                                          NGHTTP2_NO_ERROR)
        return 0

    # ---- the connection's state

    cdef int end(self) except -1:
        """A connection error (nghttp2 has queued its GOAWAY): nothing more is read or
        answered. The answers under way stay referenced (nghttp2 holds them as data
        sources) until the connection is dropped."""
        self.closing = True
        self.broken = True
        self.goaway_due = False
        self.streams.clear()
        return 0

    cdef int end_if_done(self) except -1:
        """Past the request budget with every stream taken answered: GOAWAY is due, sent
        once their answers are out."""
        if self.ending and not self.closing and not self.streams:
            self.closing = True
            self.goaway_due = True
        return 0

    cdef int fail(self, int32_t sid, Stream stream, err) except -1:
        """Answers ``err`` on a stream taken; what more the client sends on it is dropped,
        and the stream is reset once the answer is out if the client is still sending."""
        self.streams.pop(sid, None)
        stream.failed = True
        stream.body = None
        self.errors.append(err.status)
        body = error_body(err)
        stream.reset_after = not nghttp2_session_get_stream_remote_close(self.session, sid)
        self.submit(sid, stream, [(b":status", b"%d" % err.status),
                                  (b"content-type", b"text/plain"),
                                  (b"content-length", b"%d" % len(body))],
                    b"" if stream.method == b"HEAD" else body)   # HEAD: the headers alone
        return 0

    cdef int submit(self, int32_t sid, Stream stream, list headers, bytes body) except -1:
        cdef nghttp2_nv nva[MAX_RESPONSE_HEADERS]
        cdef nghttp2_data_provider provider
        cdef size_t n = len(headers)
        if n > MAX_RESPONSE_HEADERS:
            raise ValueError("too many response headers")
        fill_nv(nva, headers)
        stream.out = body
        stream.sent = 0
        provider.source.ptr = <void *>stream
        provider.read_callback = read_body
        self.answering[sid] = stream         # keeps the stream (the source) alive
        if nghttp2_submit_response(self.session, sid, nva, n, &provider) != 0:
            self.answering.pop(sid, None)     # the stream is gone (closed meanwhile)
        return 0

    def respond(self, int32_t sid, bytes answer):
        """Answers the query of stream ``sid`` with the DNS message ``answer``; None (and
        nothing encoded or sent) when the client has reset the stream meanwhile or the
        connection is broken."""
        found = self.streams.pop(sid, None)
        if found is None or self.broken:
            return None
        self.submit(sid, <Stream>found, [_STATUS_200, *answer_headers(answer)], answer)
        self.end_if_done()
        return []

    def data_to_send(self):
        """What is to be sent to the peer now."""
        cdef const uint8_t *data
        cdef ssize_t n
        cdef list chunks = []
        while True:
            n = nghttp2_session_mem_send(self.session, &data)
            if n <= 0:
                if n < 0:
                    self.end()
                if self.goaway_due and not self.answering:
                    self.goaway_due = False
                    nghttp2_submit_goaway(self.session, NGHTTP2_FLAG_NONE, self.last_taken,
                                          NGHTTP2_NO_ERROR, NULL, 0)
                    continue
                if (not self.broken and not self.ending
                        and not nghttp2_session_want_read(self.session)
                        and not nghttp2_session_want_write(self.session)):
                    # an error's GOAWAY is out: the connection ends. After the request
                    # budget's (NO_ERROR) the client winds down: requests it sent past the
                    # GOAWAY's last stream are retried elsewhere (RFC 9113 6.8) and it closes
                    # (or the idle timeout does), as load generators such as dnsperf expect
                    self.end()
                break
            chunks.append(PyBytes_FromStringAndSize(<const char *>data, n))
        if self.exc is not None:
            exc, self.exc = self.exc, None
            raise exc
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_STATUS_200 = (b":status", b"200")
