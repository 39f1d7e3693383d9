# The entry points of response.pyx the resolution driver (resolution.pyx) calls as C
# functions, without a Python call per miss, and the Outcome of the query rules.

from resolver.state cimport ResolverCore
from resolver.iterator.events cimport Result
from resolver.wire.codec cimport MsgEntry

cdef enum:
    # Outcome.kind
    HIT = 1         # a fresh cache entry answers (``entry``): a hit, or the answer just stored
    STALE = 2       # resolution failed; an expired entry in its stale window answers
    LOCAL = 3       # a local zone answers (``local``: (rcode, answer, authority), DROP, or
                    # an Alias, whose target is resolved)
    BOGUS = 4       # the data failed DNSSEC validation (``ede``, ``reason``)
    FAILURE = 5     # no answer to give: ``rcode`` (SERVFAIL...), ``ede`` and ``reason``
    MISS = 6        # the cache has nothing fresh: resolve, then ``resolved``


cdef enum:
    # header_rule: what a client query's header allows, before anything else is read
    HEADER_QUERY = 0        # a QUERY with RD set: a question to answer
    HEADER_SHORT = 1        # shorter than a header
    HEADER_RESPONSE = 2     # QR set: a response, not a query
    HEADER_NOT_QUERY = 3    # an opcode other than QUERY and NOTIFY (NOTIMP)
    HEADER_NO_RECURSION = 4 # a QUERY with RD clear: no recursion wanted (a cache probe)
    HEADER_TRUNCATED = 5    # TC set: a query is never truncated (FORMERR)
    HEADER_NOTIFY = 6       # a NOTIFY: a resolver has no zone to be notified of (REFUSED)
    HEADER_COUNTS = 7       # not one question, or records a query does not carry (FORMERR)

cdef int header_rule(const unsigned char* p, Py_ssize_t n) noexcept nogil
cdef int type_rule(unsigned int qtype) noexcept nogil


cdef class Outcome:
    cdef readonly int kind
    cdef readonly MsgEntry entry
    cdef readonly object local
    cdef readonly Result result         # BOGUS, FAILURE: the resolution's Result
    cdef readonly bytes key             # the message cache key asked


cpdef object hit_or_begin(ResolverCore r, bytes q, client=*)
cpdef object begin(ResolverCore r, bytes q, bytes key=*, client=*)
cpdef bytes finish(ResolverCore r, bytes q, tuple miss, Result res)
cpdef bytes entry_answer(bytes q, tuple miss, MsgEntry e, double now, int stale_ttl=*)
cpdef bytes failed_with_chain(bytes q, tuple miss, Result res)
cpdef bytes stale_answer(ResolverCore r, bytes q, tuple miss)
cpdef bytes type_refusal(bytes q, unsigned int qtype)
cpdef bytes header_error(bytes q, int rule)
cpdef bytes query_error(bytes q, int rcode, bint question=*, bint opt=*)
cpdef bytes error(bytes q, int rcode, bint question=*)
