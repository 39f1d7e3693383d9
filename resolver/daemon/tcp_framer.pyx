# cython: language_level=3, wraparound=False, cdivision=True
"""The daemon's DNS-over-TCP framer: corenet's ``FrameReceiver`` (2-byte big-endian length)
with ``handle_frame`` overridden, so that each query gets the front door's verdict
(``resolver.daemon.admission``) straight from the receive buffer, in C: a cached answer is
handed on with no Python object made for the frame. Every other verdict goes to the
connection's ``verdict(query, verdict, answer, cache key)``, and with the query log on the
hits too (the log needs the query).

Sans-IO like its base: ``get_buffer``/``buffer_updated`` in, ``owner.answer_hit(out, qtype)``
and ``owner.verdict(...)`` out; it runs on any asyncio loop. DNS over TLS reads its
decrypted stream through the same framer.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF

from corenet.capi cimport FrameReceiver
from resolver.cache.answer cimport monotonic
from resolver.daemon.admission cimport HIT, OUTSIDE, FrontDoor


cdef class DNSFrameReceiver(FrameReceiver):
    cdef FrontDoor front
    cdef object on_hit              # owner.answer_hit(answer: bytes, qtype: int)
    cdef object on_verdict          # owner.verdict(query, verdict, answer, key)
    cdef public int who             # the client's standing by the ACLs (admission.Who)
    cdef public bint log            # queries are logged: hits go to on_verdict too

    def setup(self, owner, FrontDoor front not None):
        """Made as ``DNSFrameReceiver(None, 2, "big", max_frame, buffer)``, then given its
        connection and the front door here. The client stands outside the ACLs until the
        connection says otherwise (``who``)."""
        self.front = front
        self.on_hit = owner.answer_hit
        self.on_verdict = owner.verdict
        self.who = OUTSIDE

    def release(self):
        """Lets go of the connection (its connection is over): the two point at each other,
        and without this only the cyclic garbage collector would free them, with the TLS
        state under the connection. Frames that still come are dropped."""
        self.on_hit = None
        self.on_verdict = None

    cdef int handle_frame(self, char* data, Py_ssize_t length) except -1:
        return self._admit(<const unsigned char*>data, length, None)

    cdef int handle_big_frame(self, bytearray frame) except -1:
        q = bytes(frame)
        return self._admit(<const unsigned char*>PyBytes_AS_STRING(q), PyBytes_GET_SIZE(q), q)

    cdef int _admit(self, const unsigned char* p, Py_ssize_t n, bytes q) except -1:
        """The verdict on the frame at ``p`` (``q``: the same as bytes, when made already)."""
        cdef unsigned int qtype = 0
        cdef bint trunc = False
        cdef PyObject* key = NULL
        cdef int v
        if self.on_verdict is None:
            return 0                # released
        v = self.front.admit(p, n, self.who, False, monotonic(), &key, &qtype, &trunc)
        out = self.front.take()
        absent = None
        if key != NULL:
            absent = <object>key
            Py_DECREF(absent)
        if v == HIT and not self.log:
            self.on_hit(out, qtype)
        else:
            if q is None:
                q = PyBytes_FromStringAndSize(<const char*>p, n)
            self.on_verdict(q, v, out, absent)
        return 0
