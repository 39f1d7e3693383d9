# The one answer encoder (answer.pyx): the daemon's C hit path and every other cached answer.
from cpython.object cimport PyObject
from resolver.wire.codec cimport MsgEntry

cdef enum:
    # the variant byte that ends a message cache key: one entry per way of asking
    VARIANT_EDNS = 1
    VARIANT_DO = 2
    VARIANT_CD = 4
    # a local alias's target under a local zone (``resolver.response.alias_miss``): kept
    # apart from the name's own queries, which the local zone answers
    VARIANT_SHADOWED = 8


cdef inline unsigned char variant_bits(bint edns, bint do, bint cd) noexcept nogil:
    """The variant byte of a message cache key for a query with (or without) EDNS, DO and
    CD. AD is not in it: the entry holds AD when the data is secure, and ``encode`` clears it
    for a client that set neither AD nor DO (RFC 6840 5.7)."""
    return (VARIANT_EDNS if edns else 0) | (VARIANT_DO if do else 0) | (VARIANT_CD if cd else 0)


cdef inline bint prefetch_due(MsgEntry e, double now, double fraction,
                              unsigned int min_hits) noexcept:
    """Whether a hit on the fresh entry ``e`` starts its refresh (prefetch): in the last
    ``fraction`` of its TTL, asked at least ``min_hits`` times, no refresh under way.
    ``Limits.prefetch_fraction`` and ``prefetch_min_hits`` are the values every hit path
    passes; the C hit path, which counts no hits, passes 0 hits and leaves each hit this
    may refresh to the engine (``resolver.response.cached``), which counts and decides."""
    return (not e.prefetching and e.hits >= min_hits
            and now > e.expires - e.ttl * fraction)


cdef Py_ssize_t question_key(const unsigned char* p, Py_ssize_t n, unsigned char* key,
                             Py_ssize_t* klen_out, unsigned int* udp_limit,
                             unsigned int* qtype) noexcept nogil

ctypedef bint (*Screen)(object ctx, const unsigned char* name, Py_ssize_t length,
                       MsgEntry e) except -1
# ``cached_answer``'s check of a fresh entry before it is answered (True: left to the engine)

cdef object cached_answer(object table, const unsigned char* p, Py_ssize_t n, double now,
                          double prefetch_fraction, unsigned int udp_cap, unsigned int* qtype,
                          bint* truncated, PyObject** absent, Screen screen=*, object ctx=*)

cdef double monotonic() noexcept nogil

cdef bytes encode(MsgEntry e, const unsigned char* q, Py_ssize_t qend, bint ad_ok, double now,
                  int stale_ttl, Py_ssize_t limit, bint* truncated)

cpdef object parse_query(bytes q)

cpdef object answer_from_entry(MsgEntry e, bytes query, Py_ssize_t qend, double now,
                               int stale_ttl=*)
