# The daemon's front door (admission.pyx): every transport hands a client query to admit().
from cpython.object cimport PyObject
from resolver.state cimport Stats

cdef enum Who:
    # the client's standing by the ACLs, decided by the listener (per datagram, per connection)
    OUTSIDE = 0         # in neither ACL
    ALLOWED = 1         # ``allow``: recursive queries
    SNOOPER = 2         # ``allow-snoop``: recursive queries and cache probes (RD clear)

cdef enum Verdict:
    DROP_SHORT = 0      # shorter than a header: nothing to answer
    DROP_RESPONSE = 1   # QR set: never answer a response (no reflection loops)
    DROP_LOCAL = 2      # a local zone that drops the query (deny)
    REFUSED = 3         # ``out``: REFUSED to a client outside the ACL, or a cache probe from
                        # a client that may not snoop
    NOTIMP = 4          # ``out``: an opcode other than QUERY
    LOCAL = 5           # ``out``: a local zone's answer to a query with RD clear
    HIT = 6             # ``out``: the cached answer
    MISS = 7            # to the engine; ``key`` is its message cache key when the cache was
                        # looked up and has no fresh entry (NULL: the engine reads the query
                        # itself: an entry due for prefetch, or a query this path leaves to it)


cdef class FrontDoor:
    cdef object table               # the engine's message cache (a dict)
    cdef object resolver            # local data and the cache probe of a query with RD clear
    cdef Stats stats                # the engine's counters: parses and look-ups counted
    cdef public double prefetch_fraction
    cdef public unsigned int max_udp_size
    cdef readonly unsigned long long hits
    cdef object answer              # the last verdict's answer, until taken
    cdef public object policy       # set: every recursive query is a miss (response policy)

    cdef int admit(self, const unsigned char* p, Py_ssize_t n, int who, bint udp, double now,
                   PyObject** key, unsigned int* qtype, bint* truncated) except -1
    cdef int _probe(self, bytes q, int who) except -1
    cdef object take(self)
