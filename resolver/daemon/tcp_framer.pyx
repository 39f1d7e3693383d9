# cython: language_level=3, wraparound=False, cdivision=True
"""The daemon's DNS-over-TCP framer: corenet's ``FrameReceiver`` (2-byte big-endian length)
with ``handle_frame`` overridden, so that each query goes to the front door
(``resolver.daemon.admission``) straight from the receive buffer, in C, with the
connection's :class:`StreamReply`: a cached answer is sent with no Python object made for
the frame.

Sans-IO like its base: ``get_buffer``/``buffer_updated`` in, the connection's
``send_frames(pieces)`` out (each answer's length and the answer, in order), ``hold(query)``
asked for each miss (False: the connection is at its cap of queries in flight and keeps the
query for later) and ``query_done()`` once a miss it let through is answered or dropped; it
runs on any asyncio loop. The answers made in one turn of the loop (the cached answers of
one read, the misses answered from one batch of upstream replies) leave together, in one
``send_frames``, at the end of that turn: on corenet's loop before it polls again
(``call_before_poll``), on another loop in its next turn (``call_soon``), and at once when
the framer is given no loop; ``flush()`` sends them sooner (the connection closing). DNS
over TLS reads its decrypted stream through the same framer.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE

from corenet.capi cimport FrameReceiver, Loop, call_before_poll, fast_loop
from resolver.cache.answer cimport monotonic
from resolver.daemon.admission cimport DENIED, OUTSIDE, FrontDoor, Reply
from resolver.response cimport error
from resolver.wire.codec cimport asks_option, option_length, with_option, with_padding
from resolver.wire.codec import EDNS_KEEPALIVE, EDNS_PADDING

cdef unsigned int KEEPALIVE = EDNS_KEEPALIVE


cdef class StreamReply(Reply):
    """Where the answers of one stream connection go (TCP, DNS over TLS): written framed by
    the connection; a miss is carried by a reply of its own (``in_flight``), which tells the
    connection when it ends. ``pad``: the block its answers are padded to (RFC 7830), 0
    for none."""
    cdef object conn
    cdef DNSFrameReceiver framer    # the connection's framer, which sends what it queues
    cdef bint in_flight
    cdef unsigned int pad

    def __init__(self, conn, str label):
        Reply.__init__(self, label, None)
        self.conn = conn

    cdef object client(self):
        if self.addr is None and self.conn is not None:
            return self.conn.peer
        return self.addr

    cdef int send(self, bytes out) except -1:
        conn = self.conn
        if conn is None:
            return 0
        if self.framer.kept_alive:      # the option goes in before the padding is sized
            out = with_option(out, KEEPALIVE, self.framer.keepalive)
        self.framer.queue(with_padding(out, self.pad) if self.pad else out)
        if self.in_flight:
            self.in_flight = False
            conn.query_done()
        return 0

    cdef int drop(self) except -1:
        if self.in_flight and self.conn is not None:
            self.in_flight = False
            self.conn.query_done()
        return 0

    cdef int drop_and_end(self) except -1:
        self.drop()
        if self.conn is not None:
            self.conn.close()           # no connection kept open (see Reply.drop_and_end)
        return 0

    cdef object held(self, object door, bytes q, object key, double t0):
        cdef StreamReply miss
        if self.conn is None or not self.conn.hold(q):
            return None                 # released, or at the cap: kept for later
        miss = StreamReply.__new__(StreamReply)
        miss.conn, miss.label, miss.kind, miss.in_flight = self.conn, self.label, self.kind, True
        miss.framer = self.framer
        miss.addr, miss.pad = self.conn.peer, self.pad
        return miss

    def release(self):
        self.conn = None
        self.framer = None


# Answers queued in one turn before they are sent without waiting for its end: bounds what
# a pipelining client makes the connection hold (and the buffers of one write).
MAX_QUEUED_ANSWERS = 64


cdef class DNSFrameReceiver(FrameReceiver):
    cdef FrontDoor front
    cdef readonly StreamReply reply
    cdef StreamReply padded         # the reply of the queries that ask for padding, or None
    cdef public int who             # the client's standing by the ACL (admission.Who)
    cdef Loop fast                  # the loop when it is corenet's, else None
    cdef object loop                # the loop, or None: each answer sent when made
    cdef list queued                # the answers of this turn, each after its length
    cdef double keepalive_timeout   # ``edns-tcp-keepalive-timeout``, seconds (0: off)
    cdef bytes keepalive            # ... as the option's data: 100 ms units (RFC 7828)
    cdef bint kept_alive            # the client asked for it: every answer carries it

    def setup(self, owner, FrontDoor front not None, str label="tcp", unsigned int pad=0,
              loop=None, double keepalive=0.0):
        """Made as ``DNSFrameReceiver(None, 2, "big", max_frame, buffer)``, then given its
        connection, its transport's name, the front door and the loop it runs on here; with
        ``pad``, the answers to the queries that carry the EDNS padding option are padded to
        a multiple of ``pad`` octets (``pad-responses``: DNS over TLS); with ``keepalive``
        (seconds, ``edns-tcp-keepalive``), once a query carries the EDNS TCP keepalive
        option the connection's ``keep_alive(keepalive)`` is called and every answer from
        then on carries the option with that timeout (RFC 7828). The client stands outside
        the ACLs until the connection says otherwise (``who``)."""
        cdef unsigned int units = <unsigned int>(keepalive * 10 + 0.5)
        self.keepalive_timeout = keepalive
        if keepalive > 0:
            self.keepalive = bytes((units >> 8, units & 0xFF))
        self.front = front
        self.reply = StreamReply(owner, label)
        self.reply.framer = self
        if pad:
            self.padded = StreamReply(owner, label)
            self.padded.pad = pad
            self.padded.framer = self
        self.who = OUTSIDE
        self.loop = loop
        self.fast = fast_loop(loop) if loop is not None else None
        self.queued = []

    cdef int queue(self, bytes out) except -1:
        """``out`` to be sent with its length at the end of this turn."""
        cdef list queued = self.queued
        if not queued:
            # (a bound method made each time: one kept would tie the framer to itself)
            if self.fast is not None:
                call_before_poll(self.fast, self.flush)
            elif self.loop is not None:
                self.loop.call_soon(self.flush)
        queued.append(self.header_for(out))
        queued.append(out)
        if self.loop is None or len(queued) >= 2 * MAX_QUEUED_ANSWERS:
            self.flush()
        return 0

    def flush(self):
        """Sends the answers queued, in one ``send_frames`` of the connection."""
        queued = self.queued
        if not queued:
            return
        self.queued = []
        conn = self.reply.conn
        if conn is not None:
            conn.send_frames(queued)

    def release(self):
        """Lets go of the connection (its connection is over): the two point at each other,
        and without this only the cyclic garbage collector would free them, with the TLS
        state under the connection. Frames that still come are dropped."""
        if self.reply is not None:
            self.reply.release()
        if self.padded is not None:
            self.padded.release()
        self.queued = []

    cdef StreamReply _reply(self, const unsigned char* q, Py_ssize_t n):
        """The reply for the query at ``q``: the padding one when it asks for padding."""
        if self.padded is not None and asks_option(q, n, EDNS_PADDING):
            return self.padded
        return self.reply

    cdef int _handle(self, const unsigned char* q, Py_ssize_t n, bytes frame) except -1:
        if self.reply.conn is None:
            return 0                # released
        if self.keepalive is not None and not self.kept_alive and self.who != OUTSIDE \
                and self.who != DENIED and self._keep_alive(q, n, frame):
            return 0                # (refused and denied clients: the ACL's answer first)
        self.front.handle_at(q, n, frame, self.who, self._reply(q, n), monotonic())
        return 0

    cdef bint _keep_alive(self, const unsigned char* q, Py_ssize_t n, bytes frame) except -1:
        """The EDNS TCP keepalive option of the query at ``q``: when it is there, the
        connection is kept alive from now on; with a value (which only a server may send),
        the query is answered FORMERR (True), as Unbound answers it."""
        cdef Py_ssize_t length = option_length(q, n, KEEPALIVE)
        if length < 0:
            return False
        if length > 0:
            if frame is None:
                frame = PyBytes_FromStringAndSize(<const char*>q, n)
            self.front.answer(frame, error(frame, 1, True), self._reply(q, n), monotonic(),
                              False, -1, -1, None, False)
            return True
        self.kept_alive = True
        self.reply.conn.keep_alive(self.keepalive_timeout)
        return False

    def handle(self, bytes q):
        """A query of the connection's own (one it held back), to the front door."""
        return self._handle(<const unsigned char*>PyBytes_AS_STRING(q), PyBytes_GET_SIZE(q), q)

    cdef int handle_frame(self, char* data, Py_ssize_t length) except -1:
        return self._handle(<const unsigned char*>data, length, None)

    cdef int handle_big_frame(self, bytearray frame) except -1:
        q = bytes(frame)
        return self._handle(<const unsigned char*>PyBytes_AS_STRING(q), PyBytes_GET_SIZE(q), q)
