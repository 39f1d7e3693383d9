# cython: language_level=3
"""A DoH request's way through the front door: its HTTP session asks the door, and the
door's reply writes the answer into that session.

A :class:`DoorLink` is one DoH connection's tie to the front door, held by its session
(:class:`resolver.daemon.h2_server.H2Server` or :class:`resolver.daemon.doh.H1Server`): the
session hands it each query of a request that ended (``ask``), with the request's id;
the link calls ``FrontDoor.handle`` with a :class:`DohReply` for that request. The reply's
``send`` answers the request in the session (``respond``: status 200, content type,
``cache-control: max-age`` from the answer's smallest TTL); its ``drop`` answers SERVFAIL
rather than leave the stream hanging. The connection (``resolver.daemon.doh_listener``)
only writes what the session has to send once an answer is in (``answered``), and keeps
the figures the link counts (requests, ``status_200``, ``cancelled``), its queries in
flight and its last activity for the idle timeout.
"""
from resolver.daemon.admission cimport Reply

from resolver.response import error


cdef class DoorLink:
    """One DoH connection's tie to the front door (see the module's docstring). ``conn`` is
    the connection: ``who`` (its standing by the ACLs), ``peer``, ``inflight``, ``last``,
    ``closed``, ``server.loop``, ``answered()``."""

    cdef readonly object door, conn
    cdef readonly str label
    cdef readonly dict waiting     # request id -> its DohReply, until answered
    cdef readonly long asked       # queries asked on this connection
    cdef dict counts

    def __init__(self, door, str label, conn, dict counts):
        self.door = door
        self.label = label
        self.conn = conn
        self.counts = counts
        self.waiting = {}

    def ask(self, session, rid, bytes q):
        """The query ``q`` of request ``rid`` of ``session``, to the front door."""
        cdef DohReply reply = DohReply(self, session, rid, q)
        conn = self.conn
        self.count("requests")
        self.asked += 1
        conn.inflight += 1
        conn.last = conn.server.loop.time()
        self.waiting[rid] = reply
        self.door.handle(q, conn.who, reply)

    cdef int answer(self, DohReply reply, bytes out) except -1:
        """The door's answer to ``reply``'s request, into its session (nothing when the
        request was cancelled meanwhile or the connection closed)."""
        if self.waiting.pop(reply.rid, None) is None:
            return 0
        conn = self.conn
        conn.inflight -= 1
        if conn.closed:
            return 0
        if reply.session.respond(reply.rid, out) is None:
            # Reset before its answer (or the connection broken): nothing encoded or sent.
            self.count("cancelled")
            return 0
        self.count("status_200")
        conn.last = conn.server.loop.time()      # an answer in progress is activity
        conn.answered()
        return 0

    def cancel(self, list rids):
        """The requests the client reset before their answers stop waiting for their
        resolutions (each stops unless another query waits for it too)."""
        cdef DohReply reply
        for rid in rids:
            found = self.waiting.pop(rid, None)
            if found is not None:
                reply = <DohReply>found
                self.conn.inflight -= 1
                self.count("cancelled")
                if reply.started is not None:
                    reply.started.cancel()

    def close(self):
        """The connection is lost: no request waits any more, and the link lets go of the
        connection, which holds it through its session: no cycle is left, so reference
        counting frees the connection, its session and its TLS buffers at once rather than
        the cycle collector's rare full passes."""
        self.waiting.clear()
        self.conn = None

    cdef int count(self, str key) except -1:
        self.counts[key] = self.counts.get(key, 0) + 1
        return 0


cdef class DohReply(Reply):
    """One DoH request's reply: ``send`` answers it in its session, ``drop`` answers
    SERVFAIL. ``answer(out)`` is ``send`` for Python callers."""

    cdef readonly DoorLink link
    cdef readonly object session, rid
    cdef readonly bytes q

    def __init__(self, DoorLink link, session, rid, bytes q):
        Reply.__init__(self, link.label, link.conn.peer)
        self.link = link
        self.session = session
        self.rid = rid
        self.q = q

    cdef int send(self, bytes out) except -1:
        return self.link.answer(self, out)

    cdef int drop(self) except -1:
        return self.link.answer(self, error(self.q, 2))

    def answer(self, bytes out):
        self.link.answer(self, out)
