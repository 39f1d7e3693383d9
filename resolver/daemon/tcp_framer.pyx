# cython: language_level=3, wraparound=False, cdivision=True
"""The daemon's DNS-over-TCP framer: corenet's ``FrameReceiver`` (2-byte big-endian length)
with ``handle_frame`` overridden, so a query whose answer is cached is answered from the
receive buffer in C (``resolver.cache.answer``), with no Python object made for the frame. Anything
else goes to the connection's ``query(bytes)`` (the engine's path).

Sans-IO like its base: ``get_buffer``/``buffer_updated`` in, ``owner.answer_hit(out, qtype)``
and ``owner.query(q)`` out; it runs on any asyncio loop.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize

from corenet.capi cimport FrameReceiver
from resolver.cache.answer cimport cached_answer, monotonic


cdef class DNSFrameReceiver(FrameReceiver):
    cdef object table
    cdef object on_hit              # owner.answer_hit(answer: bytes, qtype: int)
    cdef object on_query            # owner.query(query: bytes)
    cdef double prefetch_fraction
    cdef public bint fast           # answer cache hits here (False: everything to on_query)

    def setup(self, owner, table, double prefetch_fraction):
        """Made as ``DNSFrameReceiver(None, 2, "big", max_frame, buffer)``, then given its
        connection and the engine's message cache here."""
        self.table = table
        self.on_hit = owner.answer_hit
        self.on_query = owner.query
        self.prefetch_fraction = prefetch_fraction
        self.fast = True

    def release(self):
        """Lets go of the connection (its connection is over): the two point at each other,
        and without this only the cyclic garbage collector would free them, with the TLS
        state under the connection. Frames that still come are dropped."""
        self.on_hit = None
        self.on_query = None
        self.fast = False

    cdef int handle_frame(self, char* data, Py_ssize_t length) except -1:
        cdef const unsigned char* p = <const unsigned char*>data
        cdef unsigned int qtype = 0
        cdef bint trunc = False
        if self.on_query is None:
            return 0                # released
        # Only RD-set plain queries (RD clear and the rest take the Python path's rules).
        if self.fast and length >= 17 and (p[2] & 0x01):
            out = cached_answer(self.table, p, length, monotonic(),
                                self.prefetch_fraction, 0, &qtype, &trunc, NULL)
            if out is not None:
                self.on_hit(out, qtype)
                return 0
        self.on_query(PyBytes_FromStringAndSize(data, length))
        return 0

    cdef int handle_big_frame(self, bytearray frame) except -1:
        if self.on_query is not None:
            self.on_query(bytes(frame))
        return 0
