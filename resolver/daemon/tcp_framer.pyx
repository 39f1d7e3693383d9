# cython: language_level=3, wraparound=False, cdivision=True
"""The daemon's DNS-over-TCP framer: corenet's ``FrameReceiver`` (2-byte big-endian length)
with ``handle_frame`` overridden, so that each query goes to the front door
(``resolver.daemon.admission``) straight from the receive buffer, in C, with the
connection's :class:`StreamReply`: a cached answer is sent with no Python object made for
the frame.

Sans-IO like its base: ``get_buffer``/``buffer_updated`` in, the connection's
``send_frame(answer)`` out (the reply frames nothing itself: the connection writes the
length and the answer), ``hold(query)`` asked for each miss (False: the connection is at its
cap of queries in flight and keeps the query for later) and ``query_done()`` once a miss it
let through is answered or dropped; it runs on any asyncio loop. DNS over TLS reads its
decrypted stream through the same framer.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

from corenet.capi cimport FrameReceiver
from resolver.cache.answer cimport monotonic
from resolver.daemon.admission cimport OUTSIDE, FrontDoor, Reply
from resolver.wire.codec cimport asks_option, with_padding
from resolver.wire.codec import EDNS_PADDING


cdef class StreamReply(Reply):
    """Where the answers of one stream connection go (TCP, DNS over TLS): written framed by
    the connection; a miss is carried by a reply of its own (``in_flight``), which tells the
    connection when it ends. ``pad``: the block its answers are padded to (RFC 7830), 0
    for none."""
    cdef object conn
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
        conn.send_frame(with_padding(out, self.pad) if self.pad else out)
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
        miss.addr, miss.pad = self.conn.peer, self.pad
        return miss

    def release(self):
        self.conn = None


cdef class DNSFrameReceiver(FrameReceiver):
    cdef FrontDoor front
    cdef readonly StreamReply reply
    cdef StreamReply padded         # the reply of the queries that ask for padding, or None
    cdef public int who             # the client's standing by the ACL (admission.Who)

    def setup(self, owner, FrontDoor front not None, str label="tcp", unsigned int pad=0):
        """Made as ``DNSFrameReceiver(None, 2, "big", max_frame, buffer)``, then given its
        connection, its transport's name and the front door here; with ``pad``, the
        answers to the queries that carry the EDNS padding option are padded to a multiple
        of ``pad`` octets (``pad-responses``: DNS over TLS). The client stands outside the
        ACLs until the connection says otherwise (``who``)."""
        self.front = front
        self.reply = StreamReply(owner, label)
        if pad:
            self.padded = StreamReply(owner, label)
            self.padded.pad = pad
        self.who = OUTSIDE

    def release(self):
        """Lets go of the connection (its connection is over): the two point at each other,
        and without this only the cyclic garbage collector would free them, with the TLS
        state under the connection. Frames that still come are dropped."""
        if self.reply is not None:
            self.reply.release()
        if self.padded is not None:
            self.padded.release()

    cdef StreamReply _reply(self, const unsigned char* q, Py_ssize_t n):
        """The reply for the query at ``q``: the padding one when it asks for padding."""
        if self.padded is not None and asks_option(q, n, EDNS_PADDING):
            return self.padded
        return self.reply

    cdef int _handle(self, const unsigned char* q, Py_ssize_t n, bytes frame) except -1:
        if self.reply.conn is None:
            return 0                # released
        self.front.handle_at(q, n, frame, self.who, self._reply(q, n), monotonic())
        return 0

    def handle(self, bytes q):
        """A query of the connection's own (one it held back), to the front door."""
        return self.front.handle_at(<const unsigned char*>PyBytes_AS_STRING(q),
                                    PyBytes_GET_SIZE(q), q, self.who,
                                    self._reply(<const unsigned char*>PyBytes_AS_STRING(q),
                                                PyBytes_GET_SIZE(q)), monotonic())

    cdef int handle_frame(self, char* data, Py_ssize_t length) except -1:
        return self._handle(<const unsigned char*>data, length, None)

    cdef int handle_big_frame(self, bytearray frame) except -1:
        q = bytes(frame)
        return self._handle(<const unsigned char*>PyBytes_AS_STRING(q), PyBytes_GET_SIZE(q), q)
