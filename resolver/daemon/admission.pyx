# cython: language_level=3
"""The daemon's front door: what a client query is allowed to be, decided once for every
transport.

Each listener (the UDP batches, TCP and DoT frames, DoH requests, the plain asyncio UDP
path) reads a query, knows its client's standing by the ACLs (``Who``) and calls
``FrontDoor.admit``; the verdict (``Verdict`` in ``admission.pxd``) is one of: drop (short,
a response, a local zone's deny), an answer now (REFUSED, NOTIMP, a local zone's answer to
a query with RD clear, the cached answer), or a miss carrying its message cache key. The
rules, in the order they apply:

1. shorter than a DNS header: dropped; QR set: dropped (answering responses would let two
   servers bounce packets at each other);
2. a client in neither ACL: REFUSED;
3. an opcode other than QUERY: NOTIMP;
4. RD clear (a cache probe): a local zone's answer if one holds the name (local data
   answers whatever RD says, as Unbound's), else the cache's answer to a client that may
   snoop (``allow-snoop``), else REFUSED, so that what other clients asked cannot be read out
   of the cache;
5. RD set: the cached answer when the cache has a fresh one not yet due for prefetch
   (with a response policy configured, ``policy``, never: the policy sees every name
   first, ``resolver.daemon.rpz_gate``); otherwise a miss, for the engine (``resolver.response.begin``: the rules that need the
   whole query parsed: FORMERR, BADVERS, class, meta types, local zones).

The header's rules are ``resolver.response.header_rule``, which the engine's ``begin`` reads
too. A miss is thus parsed twice at most (the question here, the query once in the engine)
and the cache looked up once: the key found absent here goes with it.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF

from resolver.cache.answer cimport cached_answer, monotonic
from resolver.response cimport (HEADER_NO_RECURSION, HEADER_NOT_QUERY, HEADER_RESPONSE,
                                HEADER_SHORT, header_rule)
from resolver.state cimport Stats
from resolver.response import error
from resolver.zones import DROP

cdef object _error = error
cdef object _DROP = DROP

#: The verdicts' names, by value (for the counters and tests).
VERDICTS = ("drop_short", "drop_response", "drop_local", "refused", "notimp", "local", "hit",
            "miss")
OUTSIDE_ACL, ALLOWED_ACL, SNOOP_ACL = OUTSIDE, ALLOWED, SNOOPER


cdef class FrontDoor:
    """``admit`` for one process: the engine's message cache (``table``, its dict), the
    resolver that holds it (for local data and a snooper's cache probe), the prefetch point
    and the UDP answer cap (both set again on reload)."""

    def __init__(self, table, resolver, double prefetch_fraction=0.1,
                 unsigned int max_udp_size=1232):
        self.table = table
        self.resolver = resolver
        self.stats = resolver.stats if resolver is not None else Stats()
        self.prefetch_fraction = prefetch_fraction
        self.max_udp_size = max_udp_size
        self.hits = 0
        self.policy = None

    cdef int admit(self, const unsigned char* p, Py_ssize_t n, int who, bint udp, double now,
                   PyObject** key, unsigned int* qtype, bint* truncated) except -1:
        """The verdict on the query at ``p`` (``n`` bytes) from a client of standing ``who``;
        ``answer`` holds the answer of an answering verdict until the caller takes it
        (``take``), ``key`` (a new reference, when not left NULL) a miss's cache key,
        ``qtype`` the question's type when the question was read, ``truncated`` whether a
        UDP hit was truncated. ``udp``: truncate hits to the
        client's EDNS size, never above ``max_udp_size``."""
        cdef int rule = header_rule(p, n)
        if rule == HEADER_SHORT:
            return DROP_SHORT
        if rule == HEADER_RESPONSE:
            return DROP_RESPONSE
        if who == OUTSIDE:
            self.answer = _error(PyBytes_FromStringAndSize(<const char*>p, n), 5)
            return REFUSED
        if rule == HEADER_NOT_QUERY:
            self.answer = _error(PyBytes_FromStringAndSize(<const char*>p, n), 4)
            return NOTIMP
        if rule == HEADER_NO_RECURSION:
            return self._probe(PyBytes_FromStringAndSize(<const char*>p, n), who)
        if self.policy is not None:     # the response policy sees the name first
            return MISS
        hit = cached_answer(self.table, p, n, now, self.prefetch_fraction,
                            self.max_udp_size if udp else 0, qtype, truncated, key)
        self.stats.query_parses += 1
        if qtype[0] != 0:               # the question was read: the cache was looked up
            self.stats.cache_lookups += 1
        if hit is None:
            return MISS
        self.hits += 1
        self.answer = hit
        return HIT

    cdef int _probe(self, bytes q, int who) except -1:
        """Rule 4: a QUERY with RD clear."""
        local = self.resolver.local_answer(q)
        if local is _DROP:
            return DROP_LOCAL
        if local is not None:
            self.answer = local
            return LOCAL
        if who == SNOOPER:
            hit = self.resolver.resolve_cached(q)     # counted by the engine
            if hit is not None:
                self.answer = hit
                return HIT
        self.answer = _error(q, 5)
        return REFUSED

    def verdict(self, bytes q, int who, bint udp=False):
        """``admit`` for a query in bytes: (verdict name, answer or None, cache key or
        None)."""
        cdef PyObject* key = NULL
        cdef unsigned int qtype = 0
        cdef bint truncated = False
        v = self.admit(<const unsigned char*>PyBytes_AS_STRING(q), PyBytes_GET_SIZE(q), who,
                       udp, monotonic(), &key, &qtype, &truncated)
        found = None
        if key != NULL:
            found = <object>key
            Py_DECREF(found)
        return VERDICTS[v], self.take(), found

    cdef object take(self):
        """The answer of the last verdict, handed over (the door keeps no reference)."""
        out, self.answer = self.answer, None
        return out
