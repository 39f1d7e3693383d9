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

The door also holds the daemon's one counter block (``Counters``, C integers): every verdict
and every drop reason, for every transport, is counted there where it is acted on (the C
UDP listener's batches, ``Dispatch.act`` for the Python paths, the TCP framer's hits), once;
``Server.stats`` reads it. A new drop reason is one ``R_`` constant (admission.pxd) and
its name in ``DROP_REASONS``.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF

from collections import Counter

from resolver.cache.answer cimport cached_answer, monotonic
from resolver.cache.dicts cimport dict_get
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

#: The transports by ``T_`` constant (admission.pxd): their answers are counted by rcode in
#: C arrays.
TRANSPORTS = ("udp", "tcp", "tls", "https", "http")
#: The drop reasons by ``R_`` constant (admission.pxd), as ``stats()["dropped"]`` and metrics
#: name them.
DROP_REASONS = ("short", "response", "oversize", "busy", "overload", "ratelimit", "jostled",
                "rpz", "tcp_oversize", "send_error", "internal_error",
                "proxy_signature", "proxy_version", "proxy_command", "proxy_family",
                "proxy_length", "proxy_too_long", "proxy_truncated")
#: The reasons the stats show even at zero while a C UDP listener serves (it reports them
#: with every count it has).
UDP_REPORTED = ("short", "response", "oversize", "send_error")
#: Upper bounds (seconds) of the answer-latency histogram buckets.
LATENCY_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0)
assert len(TRANSPORTS) == NTRANSPORTS and len(DROP_REASONS) == NREASONS
assert len(LATENCY_BUCKETS) == NBUCKETS
cdef double _BOUNDS[NBUCKETS]
for _i, _b in enumerate(LATENCY_BUCKETS):
    _BOUNDS[_i] = _b


cdef inline int _transport(str name):
    """``name``'s ``T_`` constant, -1 for one not in ``TRANSPORTS``."""
    if name == "udp":
        return T_UDP
    if name == "tcp":
        return T_TCP
    if name == "tls":
        return T_TLS
    if name == "https":
        return T_HTTPS
    if name == "http":
        return T_HTTP
    return -1


cdef class Counters:
    """The daemon's one counter block: answers by transport and rcode, by qtype, the
    answer-latency histogram, drops by reason, REFUSED verdicts, truncations, the door's
    cache hits and the stream connections' counts, in C integers (a dict only for a transport
    not in ``TRANSPORTS`` and a qtype above 255); ``queries``, ``qtypes``, ``latency`` and
    ``dropped`` read them back as dicts and lists."""

    def __init__(self):
        self.other_queries = Counter()
        self.other_qtypes = Counter()
        self.latency_sum = 0.0

    @property
    def latency(self):
        """Answers per latency bucket (``LATENCY_BUCKETS``'s bounds, then +Inf)."""
        return [self.latency_counts[i] for i in range(NBUCKETS + 1)]

    @property
    def queries(self):
        """Counter: (transport, rcode) -> answers."""
        out = Counter(self.other_queries)
        for t in range(NTRANSPORTS):
            for rcode in range(16):
                if self.rcodes[t][rcode]:
                    out[(TRANSPORTS[t], rcode)] += self.rcodes[t][rcode]
        return out

    @property
    def qtypes(self):
        """Counter: qtype -> answers."""
        out = Counter(self.other_qtypes)
        for qtype in range(256):
            if self.low_qtypes[qtype]:
                out[qtype] = self.low_qtypes[qtype]
        return out

    @property
    def dropped(self):
        """dict: reason -> packets dropped, the reasons counted at least once."""
        return {DROP_REASONS[r]: self.drops[r] for r in range(NREASONS) if self.drops[r]}

    def drop(self, str reason):
        """Counts one packet dropped for ``reason`` (one of ``DROP_REASONS``): for the
        Python paths; C increments ``drops`` itself."""
        self.drops[DROP_REASONS.index(reason)] += 1

    cpdef answered(self, str transport, bytes out, unsigned int qtype, double seconds):
        """An answer sent over ``transport`` ``seconds`` after its query arrived."""
        cdef int i = 0
        cdef int t = _transport(transport)
        cdef unsigned int rcode = out[3] & 0x0F
        if t >= 0:
            self.rcodes[t][rcode] += 1
        else:
            key = (transport, rcode)
            self.other_queries[key] = (dict_get(self.other_queries, key) or 0) + 1
        if qtype < 256:
            self.low_qtypes[qtype] += 1
        else:
            self.other_qtypes[qtype] = (dict_get(self.other_qtypes, qtype) or 0) + 1
        self.latency_sum += seconds
        # The first bucket whose bound is >= seconds (the last one, +Inf, if none).
        while i < NBUCKETS and _BOUNDS[i] < seconds:
            i += 1
        self.latency_counts[i] += 1

    def stream_hit(self, str transport, bytes out, unsigned int qtype):
        """A cache hit the TCP framer answered in C, sent over ``transport``."""
        self.fast_tcp_hits += 1
        self.answered(transport, out, qtype, 0.0)

    cdef int acted(self, int verdict) except -1:
        """What a verdict other than a miss counts besides its answer: the drops (a local
        zone's deny is not counted), the REFUSED."""
        if verdict == DROP_SHORT:
            self.drops[R_SHORT] += 1
        elif verdict == DROP_RESPONSE:
            self.drops[R_RESPONSE] += 1     # never answer a response: no reflection
        elif verdict == REFUSED:
            self.refused_acl += 1
        return 0

    cdef int udp_answered(self, int verdict, bytes out, unsigned int qtype,
                          bint truncated) except -1:
        """An answering verdict the C UDP listener sent at once: counted by rcode, a hit
        by qtype (above 255: as 0) and in the first latency bucket, REFUSED in neither."""
        self.acted(verdict)
        self.rcodes[T_UDP][(<const unsigned char*>PyBytes_AS_STRING(out))[3] & 0x0F] += 1
        if verdict == HIT:
            if truncated:
                self.truncated += 1
            self.low_qtypes[qtype if qtype < 256 else 0] += 1
        if verdict != REFUSED:
            self.latency_counts[0] += 1
        return 0


cdef class FrontDoor:
    """``admit`` for one process: the engine's message cache (``table``, its dict), the
    resolver that holds it (for local data and a snooper's cache probe), the prefetch point
    and the UDP answer cap (both set again on reload), and the counter block
    (``counters``)."""

    def __init__(self, table, resolver, double prefetch_fraction=0.1,
                 unsigned int max_udp_size=1232):
        self.table = table
        self.resolver = resolver
        self.stats = resolver.stats if resolver is not None else Stats()
        self.prefetch_fraction = prefetch_fraction
        self.max_udp_size = max_udp_size
        self.counters = Counters()
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
        self.counters.hits += 1
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
