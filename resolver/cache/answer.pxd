# The one answer encoder (answer.pyx): the daemon's C hit path and every other cached answer.
from cpython.object cimport PyObject
from resolver.wire.codec cimport MsgEntry

cdef Py_ssize_t question_key(const unsigned char* p, Py_ssize_t n, unsigned char* key,
                             Py_ssize_t* klen_out, unsigned int* udp_limit,
                             unsigned int* qtype) noexcept nogil

cdef object cached_answer(object table, const unsigned char* p, Py_ssize_t n, double now,
                          double prefetch_fraction, unsigned int udp_cap, unsigned int* qtype,
                          bint* truncated, PyObject** absent)

cdef double monotonic() noexcept nogil

cdef bytes encode(MsgEntry e, const unsigned char* q, Py_ssize_t qend, bint ad_ok, double now,
                  int stale_ttl, Py_ssize_t limit, bint* truncated)

cpdef object parse_query(bytes q)

cpdef object answer_from_entry(MsgEntry e, bytes query, Py_ssize_t qend, double now,
                               int stale_ttl=*)
