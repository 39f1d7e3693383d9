# cython: language_level=3
"""The daemon's front door: every client query of every transport, from its bytes to its
answer, in one place.

Each listener (the C UDP listener's batches, the asyncio UDP path, TCP and DoT frames, DoH
requests) reads a query, knows its client's standing by the ACL (``Who``), builds its kind
of :class:`Reply` (where the answer goes: a UDP batch slot or address, a stream's framing, an
HTTP/2 or HTTP/1.1 stream) and calls ``FrontDoor.handle`` (``handle_at`` in C). The door
ends every query in the reply's ``send`` or its ``drop``, and counts it in its one counter
block (``Counters``), in Unbound's order (``worker_handle_request``):

1. shorter than a DNS header: dropped; larger than 512 bytes under ``harden-large-queries``:
   dropped (a stream's connection ends, as Unbound's); QR set: dropped (answering responses
   would let two servers bounce packets at each other);
2. a client the ACL refuses (or no network of it holds): REFUSED (the header alone, or with
   ``ede`` the question and EDE 18); one it denies: dropped;
3. an opcode other than QUERY and NOTIFY: NOTIMP; TC set, or counts other than one
   question, no answer or authority record and at most one additional: FORMERR, as
   Unbound's, the header alone (``resolver.response.query_error``), counted only as
   ``header_errors`` (Unbound counts them neither as queries nor by rcode); a NOTIFY:
   REFUSED (no zone to be notified of), counted as a query, as Unbound's;
4. RD clear (a cache probe), or any query of a client the ACL allows local answers only
   (``refuse_non_local``, ``deny_non_local``): a local zone's answer if one holds the name
   (local data answers whatever RD says, as Unbound's), a local zone's deny dropped; else
   the non-local client's query REFUSED or dropped (Unbound checks these actions after its
   local zones, before its cache); else the cache's answer to a client that may snoop
   (``allow-snoop``), else REFUSED, so that what other clients asked cannot be read out of
   the cache;
5. RD set: the cached answer when the cache has a fresh one not yet due for prefetch;
   with a response policy configured (``policy``, ``resolver.daemon.rpz_gate``) only when
   no trigger of it can touch the query, as the policy's ``TriggerIndex`` tells
   (``resolver.policy.index``): per query, in C, no client-IP trigger's network holds the
   client's address (``Reply.client_address``, the address the policy reads); per cached
   entry and policy (``_untouched_by_policy``, the verdict kept on the entry), no QNAME
   trigger holds the name, a wildcard above it or a name of the answer's CNAME chain, the
   answer holds no DNAME and no address a response-IP trigger holds (in C), and no
   NSDNAME or NSIP trigger meets the name servers of the name's zone as the policy finds
   them in the rrset cache (one look-up in Python per entry, when the policy has such
   triggers); every other query goes to the policy as a miss, which finds the cached
   answer there if there is one;
6. otherwise a miss: the reply may hold it for later (``Reply.held``: the UDP batch starts
   its misses once every hit it read is answered, a stream at its cap of queries in flight
   backlogs it), then the miss budgets (per client in flight, global in flight with
   jostling, ``ip-ratelimit``) and the engine (``resolver.response.begin``: the rules that
   need the whole query parsed: FORMERR, BADVERS, class, meta types, local zones), whose
   answer comes back through the same reply.

Every answer is truncated for UDP, counted, logged (``query_log``) and sent here; every
drop is counted here. Counted as Unbound's ``extended-statistics`` count: a query's type
(``asked_type``) and shape (``Counters.shape``) only when its question can be read and it
asks for EDNS version 0, its shape not for a zone transfer or a meta type. The header's
rules are ``resolver.response.header_rule``, which the engine's ``begin`` reads too. A miss
is parsed twice at most (the question here, the query once in the engine) and the cache
looked up once: the key found absent here goes with it. A new drop reason is one ``R_``
constant (admission.pxd) and its name in ``DROP_REASONS``.
"""
import logging
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF
from libc.math cimport ceil
from libc.string cimport memcpy

from collections import Counter

from resolver.cache.answer cimport Screen, cached_answer, monotonic
from resolver.cache.dicts cimport dict_get
from resolver.response cimport (HEADER_COUNTS, HEADER_NO_RECURSION, HEADER_NOT_QUERY,
                                HEADER_NOTIFY, HEADER_RESPONSE, HEADER_SHORT,
                                HEADER_TRUNCATED, header_error, header_rule, query_error,
                                type_rule)
from resolver.resolution cimport Drive, MissDone, start as start_query
from resolver.resolution import start as _start_query
from resolver.state cimport ResolverCore, Stats
from resolver.wire.codec cimport MsgEntry, Parsed, asks_option, with_option
from resolver.wire.codec import EDNS_NSID
from resolver.dnssec import with_ede
from resolver.daemon.values import nsid_octets
from resolver.wire.names cimport skip_name, u16
from resolver.cache.answer import truncate
from resolver.daemon import logs as _logs
from resolver.daemon.logs import CACHE_MISS as _CACHE_MISS
from resolver.policy.index import TriggerIndex
from resolver.response import error
from resolver.zones import DROP

cdef object _error = error
cdef object _DROP = DROP
cdef object _truncate = truncate
cdef frozenset _NO_NAMES = frozenset()
# The Extended DNS Errors (RFC 8914) of the door's own refusals, with ``ede``, as Unbound's:
EDE_PROHIBITED = 18             # a client the ACL refuses (``refuse``, ``refuse_non_local``)
EDE_NOT_AUTHORITATIVE = 20      # a cache probe (RD clear) from a client that may not snoop


cdef bytes with_rd(const unsigned char* p, Py_ssize_t n):
    """A copy of the query at ``p`` (``n`` bytes, a header at least) with RD set."""
    cdef bytes q = PyBytes_FromStringAndSize(<const char*>p, n)
    cdef char* w = PyBytes_AS_STRING(q)
    w[2] = w[2] | 1
    return q


cdef enum:
    MAX_NAME = 255
    T_OPT = 41
    T_A = 1
    T_AAAA = 28
    T_CNAME = 5
    T_DNAME = 39
    MAX_JUMPS = 32      # compression pointers followed in one name at most
    UNREAD = 0x10000    # a query counted under no type (``asked_type``)


cdef Py_ssize_t read_lower_name(const unsigned char* w, Py_ssize_t n, Py_ssize_t pos,
                                unsigned char* out, Py_ssize_t* olen) noexcept nogil:
    """Copies the name at ``pos`` of the message ``w`` (``n`` bytes), compression pointers
    followed, to ``out`` (room for 255 bytes) in wire form with ASCII letters lower-cased,
    its length in ``olen``; returns the offset past the name where it is written, or -1
    when it is malformed (past the end, a loop of pointers, longer than 255 bytes)."""
    cdef Py_ssize_t end = -1, k = 0
    cdef unsigned int c, t, i, jumps = 0
    while True:
        if pos >= n:
            return -1
        c = w[pos]
        if (c & 0xC0) == 0xC0:
            if pos + 1 >= n or jumps >= MAX_JUMPS:
                return -1
            if end < 0:
                end = pos + 2
            pos = ((c & 0x3F) << 8) | w[pos + 1]
            jumps += 1
            continue
        if c > 63 or pos + 1 + c > n or k + 1 + c + 1 > MAX_NAME:
            return -1
        out[k] = c
        if c == 0:
            olen[0] = k + 1
            return pos + 1 if end < 0 else end
        for i in range(1, c + 1):
            t = w[pos + i]
            out[k + i] = t + 32 if 65 <= t <= 90 else t
        k += 1 + c
        pos += 1 + c

cdef Py_ssize_t question_end(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """The end of the one question of the query at ``p`` (``n`` bytes, a header at least)
    as Unbound reads it to count it: a name without compression pointers, its type and
    class; -1 when there is none to read (Unbound's FORMERR)."""
    cdef Py_ssize_t pos = 12
    if u16(p + 4) != 1:
        return -1
    while pos < n and p[pos] != 0:
        if p[pos] > 63:
            return -1
        pos += 1 + p[pos]
    if pos + 5 > n or pos - 12 + 1 > MAX_NAME:
        return -1
    return pos + 5


cdef Py_ssize_t opt_at(const unsigned char* p, Py_ssize_t n, Py_ssize_t pos) noexcept nogil:
    """Where the OPT record of the query at ``p`` starts, among the additional records
    after the question (which ends at ``pos``) when it carries no answer or authority
    records (as queries do); -1 when it has none."""
    cdef unsigned int count, rr
    if u16(p + 6) or u16(p + 8):
        return -1
    count = u16(p + 10)
    for rr in range(count if count < 4 else 4):
        if pos + 11 > n:
            return -1
        if p[pos] == 0 and u16(p + pos + 1) == T_OPT:
            return pos
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 10 > n:
            return -1
        pos += 10 + u16(p + pos + 8)
    return -1


cdef Py_ssize_t counted_question(const unsigned char* p, Py_ssize_t n,
                                 Py_ssize_t* opt) noexcept nogil:
    """The end of the question of the query at ``p`` (``n`` bytes, a header at least) when
    Unbound counts it (its type, and its shape unless ``type_rule`` refuses the type), with
    where its OPT record starts in ``opt`` (-1: none); -1 when it counts neither: no
    question to read (FORMERR), an EDNS version other than 0 (BADVERS)."""
    cdef Py_ssize_t end = question_end(p, n)
    if end < 0:
        return -1
    opt[0] = opt_at(p, n, end)
    if opt[0] >= 0 and p[opt[0] + 6] != 0:
        return -1
    return end


cdef unsigned int asked_type(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """The type the query at ``p`` (``n`` bytes, a header at least) is counted under, as
    Unbound's ``num.query.type`` counts it (``counted_question``): UNREAD for none."""
    cdef Py_ssize_t opt
    cdef Py_ssize_t end = counted_question(p, n, &opt)
    return UNREAD if end < 0 else u16(p + end - 4)


log = logging.getLogger("resolver.daemon.server")
#: Verbosity 5 (``resolver.daemon.logs.CACHE_MISS``): the client of each cache miss, as
#: Unbound's verbosity 5 identifies it.
cdef object _miss_log = logging.getLogger("resolver.daemon.misses")
cdef int CACHE_MISS = _CACHE_MISS
cdef bint _log_misses = False    # _miss_log.isEnabledFor(CACHE_MISS), kept (no Python call)


def _refresh_miss_log():
    global _log_misses
    _log_misses = _miss_log.isEnabledFor(CACHE_MISS)


_logs.on_threshold(_refresh_miss_log)

#: The verdicts' names, by value (for the counters and tests).
VERDICTS = ("drop_short", "drop_response", "drop_large", "drop_acl", "drop_local", "refused",
            "bad_header", "local", "hit", "miss")
OUTSIDE_ACL, ALLOWED_ACL, SNOOP_ACL = OUTSIDE, ALLOWED, SNOOPER
DENY_ACL, LOCAL_REFUSE_ACL, LOCAL_DENY_ACL, SETRD_ACL = DENIED, LOCAL_REFUSE, LOCAL_DENY, SETRD
#: A client's standing (``Who``) by Unbound's access-control action.
ACL_STANDING = {"allow": ALLOWED_ACL, "allow_setrd": SETRD_ACL, "allow_snoop": SNOOP_ACL,
                "refuse": OUTSIDE_ACL, "deny": DENY_ACL, "refuse_non_local": LOCAL_REFUSE_ACL,
                "deny_non_local": LOCAL_DENY_ACL}

#: The transports by ``T_`` constant (admission.pxd): their answers are counted by rcode in
#: C arrays.
TRANSPORTS = ("udp", "tcp", "tls", "https", "http")
#: The drop reasons by ``R_`` constant (admission.pxd), as ``stats()["dropped"]`` and metrics
#: name them.
DROP_REASONS = ("short", "response", "oversize", "busy", "overload", "ratelimit", "jostled",
                "rpz", "tcp_oversize", "send_error", "internal_error",
                "proxy_signature", "proxy_version", "proxy_command", "proxy_family",
                "proxy_length", "proxy_too_long", "proxy_truncated", "acl", "large")


class Follow:
    """What the response policy's check of an answer (``policy_start``'s ``rewrite``) gives
    to have another question resolved for the same reply, as a CNAME rewrite on a name of
    the answer's chain does: ``query`` (wire) starts as a miss of the same client, and
    ``combine(answer, miss)`` (``policy_start``'s ``rewrite`` for it) makes the response
    sent from its answer (bytes, or None to drop it). The followed answer is not checked
    again."""

    __slots__ = ("query", "combine")

    def __init__(self, bytes query, combine) -> None:
        self.query, self.combine = query, combine


#: The reasons the stats show even at zero while a C UDP listener serves (it reports them
#: with every count it has).
UDP_REPORTED = ("short", "response", "oversize", "send_error")
#: Upper bounds (seconds) of the answer-latency histogram buckets.
LATENCY_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0)
#: Lower bounds (seconds) of the recursion-time histogram's buckets, Unbound's (its
#: ``histogram.*`` keys): 0, then from 1 us doubling up to 0.524288 s, then from 1 s doubling
#: up to 262144 s. A bucket ends where the next begins; the last ends at 524288 s and takes
#: any longer time too, as Unbound's does.
RECURSION_BOUNDS = (0.0, *(2 ** i / 1e6 for i in range(20)), *(2.0 ** i for i in range(19)))
assert len(TRANSPORTS) == NTRANSPORTS and len(DROP_REASONS) == NREASONS
assert len(VERDICTS) == MISS + 1
assert len(LATENCY_BUCKETS) == NBUCKETS and len(RECURSION_BOUNDS) == NHISTOGRAM
cdef double _BOUNDS[NBUCKETS]
for _i, _b in enumerate(LATENCY_BUCKETS):
    _BOUNDS[_i] = _b
cdef double _LOWER[NHISTOGRAM]
for _i, _b in enumerate(RECURSION_BOUNDS):
    _LOWER[_i] = _b


cdef inline int _bucket(double seconds) noexcept:
    """The latency bucket of ``seconds``: the first whose bound is >= it (the last one,
    +Inf, if none)."""
    cdef int i = 0
    while i < NBUCKETS and _BOUNDS[i] < seconds:
        i += 1
    return i


cdef inline int _histogram_bucket(double seconds) noexcept:
    """The recursion-time bucket of ``seconds``: the last whose lower bound is <= it."""
    cdef int i = 0
    while i + 1 < NHISTOGRAM and _LOWER[i + 1] <= seconds:
        i += 1
    return i


def histogram_bucket(double seconds) -> int:
    """The recursion-time bucket (an index of ``RECURSION_BOUNDS``) the counters put a
    resolution answered in ``seconds`` in."""
    return _histogram_bucket(seconds)


cdef bytes _packed_address(addr):
    """The host of the socket address ``addr`` packed (4 or 16 bytes; a scope suffix
    ``%...`` left out), as ``ipaddress.ip_address`` reads its text; b"" for None or a host
    that is not an address."""
    if not addr or not isinstance(addr[0], str):
        return b""
    host = (<str>addr[0]).partition("%")[0]
    try:
        return inet_pton(AF_INET6 if ":" in host else AF_INET, host)
    except OSError:
        return b""


cdef inline bint _is_ipv6(addr):
    """Whether the client address ``addr`` (a socket address, or None) is IPv6's."""
    return addr is not None and ":" in addr[0]


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
    """The daemon's one counter block: answers by transport and rcode (and the NOERROR ones
    without an answer record, Unbound's ``num.answer.rcode.nodata``), by qtype, the
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

    @property
    def shown_drops(self):
        """``dropped`` with the reasons a C UDP listener reports shown even at zero, while
        one serves (``udp_reported``)."""
        out = self.dropped
        if self.udp_reported:
            for reason in UDP_REPORTED:
                out.setdefault(reason, 0)
        return out

    def drop(self, str reason):
        """Counts one packet dropped for ``reason`` (one of ``DROP_REASONS``): for the
        Python paths; C increments ``drops`` itself."""
        self.drops[DROP_REASONS.index(reason)] += 1

    cpdef answered(self, str transport, bytes out, unsigned int qtype, double seconds):
        """An answer sent over ``transport`` ``seconds`` after its query arrived."""
        cdef int t = _transport(transport)
        cdef unsigned int rcode = out[3] & 0x0F
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(out)
        # NOERROR and ANCOUNT 0: a NODATA (every answer made here has its 12-byte header)
        if (rcode | p[6] | p[7]) == 0:
            self.nodata += 1
        if t >= 0:
            self.rcodes[t][rcode] += 1
        else:
            key = (transport, rcode)
            self.other_queries[key] = (dict_get(self.other_queries, key) or 0) + 1
        if qtype < 256:
            self.low_qtypes[qtype] += 1
        elif qtype != UNREAD:
            self.other_qtypes[qtype] = (dict_get(self.other_qtypes, qtype) or 0) + 1
        self.latency_sum += seconds
        self.latency_counts[_bucket(seconds)] += 1

    cdef int recursed(self, double seconds) except -1:
        """A resolution's answer sent ``seconds`` after its query arrived (Unbound's
        ``recursion.time`` and ``histogram``, which time recursive replies alone)."""
        self.recursion_sum += seconds
        self.recursion_counts[_histogram_bucket(seconds)] += 1
        return 0

    cdef int shape(self, const unsigned char* p, Py_ssize_t n, bint ipv6) except -1:
        """The shape of the query at ``p`` (``n`` bytes, a whole header at least), as
        Unbound's ``extended-statistics`` counts it: its flags and opcode, its question's
        class, whether it has EDNS and sets DO, whether it came over IPv6. Not counted, as
        by Unbound: a query without a question to read, one for a zone transfer or a meta
        type (``type_rule``), one asking for an EDNS version other than 0."""
        cdef Py_ssize_t opt
        cdef Py_ssize_t end = counted_question(p, n, &opt)
        cdef unsigned int qclass
        if end < 0 or type_rule(u16(p + end - 4)) != 0:
            return 0
        self.flag_bytes[0][p[2]] += 1
        self.flag_bytes[1][p[3]] += 1
        if ipv6:
            self.ipv6 += 1
        qclass = u16(p + end - 2)
        if qclass < 256:
            self.low_qclasses[qclass] += 1
        else:
            self.other_qclasses += 1
        if opt >= 0:
            self.edns_present += 1
            if p[opt + 7] & 0x80:
                self.edns_do += 1
        return 0

    @property
    def recursion(self):
        """Resolutions per recursion-time bucket (from ``RECURSION_BOUNDS``'s each)."""
        return [self.recursion_counts[i] for i in range(NHISTOGRAM)]

    @property
    def query_shape(self):
        """What ``shape`` counted: flag name -> queries with it set, opcode and class (as
        decimal text, the classes above 255 as ``other``) -> queries, and ``edns_present``,
        ``edns_do``, ``ipv6``."""
        flags = dict.fromkeys(("QR", "AA", "TC", "RD", "RA", "Z", "AD", "CD"), 0)
        opcodes = Counter()
        for b in range(256):
            k = self.flag_bytes[0][b]
            if k:
                opcodes[(b >> 3) & 0x0F] += k
                for name, bit in (("QR", 0x80), ("AA", 0x04), ("TC", 0x02), ("RD", 0x01)):
                    if b & bit:
                        flags[name] += k
            k = self.flag_bytes[1][b]
            if k:
                for name, bit in (("RA", 0x80), ("Z", 0x40), ("AD", 0x20), ("CD", 0x10)):
                    if b & bit:
                        flags[name] += k
        classes = {str(c): self.low_qclasses[c] for c in range(256) if self.low_qclasses[c]}
        if self.other_qclasses:
            classes["other"] = self.other_qclasses
        return {"flags": flags, "opcodes": {str(k): v for k, v in sorted(opcodes.items())},
                "classes": classes,
                "edns_present": self.edns_present, "edns_do": self.edns_do,
                "ipv6": self.ipv6}

    cdef int acted(self, int verdict) except -1:
        """What a verdict other than a miss counts besides its answer: the drops (a local
        zone's deny is not counted), the REFUSED."""
        if verdict == DROP_ACL:
            self.drops[R_ACL] += 1
        elif verdict == DROP_SHORT:
            self.drops[R_SHORT] += 1
        elif verdict == DROP_RESPONSE:
            self.drops[R_RESPONSE] += 1     # never answer a response: no reflection
        elif verdict == DROP_LARGE:
            self.drops[R_LARGE] += 1
        elif verdict == REFUSED:
            self.refused_acl += 1
        return 0

    cdef int udp_answered(self, int verdict, bytes out, unsigned int qtype,
                          bint truncated, bint counted) except -1:
        """An answering verdict the C UDP listener sends at once (``acted`` counted
        already): counted by rcode, a query Unbound counts (``counted``) by qtype (above
        255: as 0), in the first latency bucket but REFUSED; NOERROR with no answer record
        as NODATA too; ``truncated``: a hit decide cut to the client's size."""
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(out)
        self.rcodes[T_UDP][p[3] & 0x0F] += 1
        if ((p[3] & 0x0F) | p[6] | p[7]) == 0:
            self.nodata += 1
        if truncated:
            self.truncated += 1
        if counted and qtype != UNREAD:
            self.low_qtypes[qtype if qtype < 256 else 0] += 1
        if verdict != REFUSED:
            self.latency_counts[0] += 1
        return 0


cdef class Reply:
    """Where one client query's answer goes: ``send(answer)``, or ``drop()`` when none will
    come (the door has counted why). Each listener has its kind (the C UDP listener's batch
    slot and address, the stream framer's, a DoH stream's); the door calls them in C.
    ``held`` is asked once a query is a miss: the reply that carries the miss (itself, or one
    made for it), or None when this reply keeps the query to hand back later (the UDP batch
    starts its misses once every hit it read is answered; a stream at its cap of queries in
    flight backlogs it). ``started`` is the miss under way for it, whose ``cancel()`` stops
    waiting for it (the reply is then dropped)."""

    def __init__(self, str label, addr=None):
        self.label = label
        self.addr = addr
        self.kind = _transport(label)

    cdef object client(self):
        return self.addr

    cdef int client_address(self, unsigned char* out) except -1:
        """The address of ``client()`` as the response policy's gate reads it (the text of
        the socket address, a v4-mapped IPv6 address left IPv6), packed into ``out`` (room
        for 16 bytes): its size, 4 or 16, or 0 for a client without one (none, a Unix
        socket's peer). Kept for the reply's next queries (a stream's reply serves its
        whole connection); a listener's reply that moves from client to client reads it
        each time instead."""
        cdef bytes packed = self.packed
        if packed is None:
            packed = self.packed = _packed_address(self.client())
        memcpy(out, PyBytes_AS_STRING(packed), PyBytes_GET_SIZE(packed))
        return PyBytes_GET_SIZE(packed)

    cdef int send(self, bytes out) except -1:
        raise NotImplementedError

    cdef int drop(self) except -1:
        return 0

    cdef int drop_and_end(self) except -1:
        """No answer, and a stream's connection ended with it, as Unbound does: for a client
        the ACL denies, a query too large under ``harden-large-queries``."""
        return self.drop()

    cdef object held(self, object door, bytes q, object key, double t0):
        return self


cdef class CallReply(Reply):
    """A reply made of Python callables, for the listeners written in Python (asyncio UDP):
    ``on_send(answer)``, and ``on_drop()`` (None: nothing to do)."""
    cdef readonly object on_send, on_drop

    def __init__(self, str label, addr, on_send, on_drop=None):
        Reply.__init__(self, label, addr)
        self.on_send = on_send
        self.on_drop = on_drop

    cdef int send(self, bytes out) except -1:
        self.on_send(out)
        return 0

    cdef int drop(self) except -1:
        if self.on_drop is not None:
            self.on_drop()
        return 0


cpdef unsigned int qtype_of(bytes q):
    """The type the query ``q`` is counted under (``asked_type``; UNREAD, 65536: none)."""
    if PyBytes_GET_SIZE(q) < 12:
        return UNREAD
    return asked_type(<const unsigned char*>PyBytes_AS_STRING(q), PyBytes_GET_SIZE(q))


cpdef unsigned int udp_limit(bytes q):
    """Largest UDP answer this query accepts: its EDNS payload size (at least 512), else 512."""
    return udp_limit_at(<const unsigned char*>PyBytes_AS_STRING(q), PyBytes_GET_SIZE(q))


cdef unsigned int udp_limit_at(const unsigned char* p, Py_ssize_t n) noexcept:
    """``udp_limit`` of the query at ``p`` (``n`` bytes)."""
    cdef Py_ssize_t pos = 12
    cdef unsigned int i, total, payload
    if n < 12:
        return 512
    for i in range(u16(p + 4)):
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 4 > n:
            return 512
        pos += 4
    total = u16(p + 6) + u16(p + 8) + u16(p + 10)
    for i in range(total):
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 10 > n:
            return 512
        if u16(p + pos) == T_OPT:
            payload = u16(p + pos + 2)
            return payload if payload > 512 else 512
        pos += 10 + u16(p + pos + 8)
    return 512


cdef str _client_text(client):
    """A ``client_key`` as text: the address, or the network as ``ADDRESS/LEN``."""
    if isinstance(client, str):
        return client
    prefix, packed = client
    return f"{inet_ntop(AF_INET6 if len(packed) == 16 else AF_INET, packed)}/{prefix}"


cpdef object client_key(str host, int prefix_v4, int prefix_v6):
    """What counts as one client: ``host`` itself, or its network when the prefix is
    shorter than the address (IPv6 /56 by default): (prefix length, the network's address
    packed, 4 or 16 bytes)."""
    cdef bint v6 = ":" in host
    cdef int prefix = prefix_v6 if v6 else prefix_v4
    if prefix >= (128 if v6 else 32):
        return host
    try:
        packed = inet_pton(AF_INET6 if v6 else AF_INET, host.partition("%")[0])
    except OSError:
        return host
    cdef int whole = prefix >> 3, bits = prefix & 7, i
    key = bytearray(packed)
    if bits:
        key[whole] &= (0xFF << (8 - bits)) & 0xFF
        whole += 1
    for i in range(whole, len(key)):
        key[i] = 0
    return (prefix, bytes(key))


cdef class _Bucket:
    """A client's miss budget: tokens left, refilled at ``ip_ratelimit`` per second up to one
    second's worth."""
    cdef double tokens, at


cdef class _Done(MissDone):
    """The Drive's done(drive, response) for one client query (called in C by a Drive)."""
    cdef FrontDoor door
    cdef bytes q
    cdef object client
    cdef Reply reply
    cdef double t0
    cdef object rewrite                 # the policy's check of the answer (out, miss), or None
    cdef bint answered                  # the client has had a stale answer: the miss goes on
                                        # only to refresh the cache

    def __call__(self, d, out):
        self.over(d, out)

    cdef int finished(self, Drive drive, object response) except -1:
        self.over(drive, response)
        return 0

    cdef int over(self, d, out) except -1:
        if self.answered:
            self.door.release(self.client, d)
        else:
            self.door.resolved(self.q, self.client, self.reply, self.t0, d, out, self.rewrite)
        return 0


#: The number of the last response policy a door was given: each gets a new one, so an
#: entry's check made under one policy is never taken for another's.
cdef unsigned int _policy_generation = 0


cdef bint _untouched_by_policy(object door, const unsigned char* name, Py_ssize_t length,
                               MsgEntry e) except -1:
    """The door's ``Screen`` on a fresh cached entry under a response policy: True (left
    to the policy) when a QNAME trigger holds the query's name or a wildcard above it, or a
    name of the answer's CNAME chain, or a response-IP trigger an address of the answer, or
    an NSDNAME or NSIP trigger the name servers of the name's zone as the policy finds them
    (``_ns_touched``). The entry keeps the verdict for the policy it was made under: its
    name (the cache key's) and its answer do not change, and its name servers are taken
    as they were when it was first screened, once per entry rather than per query, which
    is right for them too: the entry's answer came from the servers of that time, a new
    policy screens it again (a new generation), and the entry lives at most its TTL, after
    which the answer that replaces it is screened with the servers then cached."""
    cdef FrontDoor d = <FrontDoor>door
    if e.screened != d.rpz_generation:
        e.screen_touched = (d._touched(name, length) or d._answer_touched(e)
                            or (d.rpz_ns and d._ns_touched(name, length)))
        e.screened = d.rpz_generation
    return e.screen_touched


cdef bint _held(frozenset networks, const unsigned char* lengths, int count,
                const unsigned char* a, int size) except -1:
    """Whether a network of ``networks`` (``TriggerIndex`` keys: prefix length, masked
    address) holds the address at ``a`` (``size``: 4 or 16 bytes): the address cut to each
    of the ``count`` prefix lengths at ``lengths`` (those of its family), looked up
    (``TriggerIndex.holds``)."""
    cdef unsigned char key[17]
    cdef int j, k, bits
    for j in range(count):
        key[0] = lengths[j]
        for k in range(size):
            bits = lengths[j] - 8 * k
            key[1 + k] = (a[k] if bits >= 8 else
                          0 if bits <= 0 else a[k] & ((0xFF << (8 - bits)) & 0xFF))
        if PyBytes_FromStringAndSize(<const char*>key, size + 1) in networks:
            return True
    return False


cdef int _copy_lengths(tuple lengths, unsigned char* out, int room) except -1:
    """The prefix lengths ``lengths`` (a ``TriggerIndex``'s, each at most ``room`` - 1)
    copied to ``out`` (``room`` bytes): how many there are."""
    cdef int i = 0
    for length in lengths[:room]:
        out[i] = length
        i += 1
    return i


cdef class FrontDoor:
    """One process's door (see the module docstring): the engine's message cache
    (``table``, its dict), the resolver that holds it (local data, a snooper's cache probe,
    the misses), the prefetch point and the UDP answer cap (both set again on reload), the
    miss budgets of ``cfg``, the query log and the counter block (``counters``)."""

    def __init__(self, table, resolver, double prefetch_fraction=0.1,
                 unsigned int max_udp_size=1232, cfg=None):
        self.table = table
        self.resolver = resolver
        self.stats = getattr(resolver, "stats", None) or Stats()
        self.prefetch_fraction = prefetch_fraction
        self.max_udp_size = max_udp_size
        self.counters = Counters()
        self.policy = None
        self.misses = {}
        self.stale_sweep = None
        self.stale_swept = {}
        self.inflight_by_client = {}
        self.rate_buckets = {}
        self.drained = None
        self.loop = None
        self.query_log = None
        self.max_inflight = self.max_inflight_per_client = 1 << 30
        self.stale_client_timeout = -1.0         # no client response timer without a cfg
        self.prefix_v4, self.prefix_v6 = 32, 128
        if cfg is not None:
            self.cfg = cfg

    @property
    def policy(self):
        """The response policy's gate (``resolver.daemon.rpz_gate.PolicyGate``), or None
        when none is configured. Setting it (again whenever the gate's policy changes) reads
        the ``index`` of the gate's ``policy`` (a ``resolver.policy.index.TriggerIndex``,
        made once per policy) into the door's C fields; a gate whose policy has none sends
        every recursive query to the gate."""
        return self._policy

    @policy.setter
    def policy(self, gate):
        global _policy_generation
        index = None if gate is None else getattr(getattr(gate, "policy", None), "index", None)
        _policy_generation += 1
        self.rpz_generation = _policy_generation
        self.rpz_n4 = self.rpz_n6 = self.rpz_cn4 = self.rpz_cn6 = 0
        if isinstance(index, TriggerIndex):
            self.rpz_exact, self.rpz_wild = index.exact, index.wild
            self.rpz_networks, self.rpz_clients = index.networks, index.clients
            self.rpz_n4 = _copy_lengths(index.lengths4, &self.rpz_len4[0], 33)
            self.rpz_n6 = _copy_lengths(index.lengths6, &self.rpz_len6[0], 129)
            self.rpz_cn4 = _copy_lengths(index.clients4, &self.rpz_clen4[0], 33)
            self.rpz_cn6 = _copy_lengths(index.clients6, &self.rpz_clen6[0], 129)
            self.rpz_ns = index.has_ns
            self.rpz_index = index
            self.rpz_indexed = True
        else:
            self.rpz_exact = self.rpz_wild = self.rpz_networks = self.rpz_clients = _NO_NAMES
            self.rpz_ns = False
            self.rpz_index = None
            self.rpz_indexed = False
        self._policy = gate

    @property
    def cfg(self):
        """The daemon's Config."""
        return self._cfg

    @cfg.setter
    def cfg(self, cfg):
        self.prefix_v4 = cfg.ip_ratelimit_prefix_v4
        self.prefix_v6 = cfg.ip_ratelimit_prefix_v6
        self.max_inflight = cfg.max_inflight
        self.max_inflight_per_client = cfg.max_inflight_per_client
        self.max_udp_size = cfg.max_udp_size
        self.jostle_timeout = cfg.jostle_timeout
        self.stale_client_timeout = cfg.serve_stale_client_timeout
        self.ip_ratelimit = cfg.ip_ratelimit
        self.extended = cfg.extended_statistics
        self.nsid = None if cfg.nsid is None else nsid_octets(cfg.nsid)
        self.harden_large = cfg.harden_large_queries
        self.ede = cfg.ede
        # clients that views, tags or overrides give zones or types of their own: the local
        # zones before the cache for the names under any
        self.views = bool(cfg.access_control_view or cfg.local_zone_tag
                          or cfg.local_zone_override)
        self._cfg = cfg

    # ---- a query, from its bytes to its reply

    def handle(self, bytes q, int who, Reply reply not None, t0=None):
        """The query ``q`` from a client of standing ``who`` by the ACLs, answered through
        ``reply`` (``t0``: when it arrived, now if None). Returns 0 when it was answered at
        once, 1 when a miss started or the reply holds it, -1 when it was dropped."""
        return self.handle_at(<const unsigned char*>PyBytes_AS_STRING(q), PyBytes_GET_SIZE(q),
                              q, who, reply, monotonic() if t0 is None else <double>t0)

    cdef int handle_at(self, const unsigned char* p, Py_ssize_t n, bytes q, int who,
                       Reply reply, double t0) except -2:
        """``handle`` for the query at ``p`` (``n`` bytes; ``q`` the same as bytes when made
        already, else None: a hit makes no bytes object for its query)."""
        cdef PyObject* key = NULL
        cdef unsigned int qtype = 0
        cdef bint truncated = False
        cdef int v
        cdef Counters counts = self.counters
        cdef const unsigned char* asked = p
        cdef bint identify, counted
        if who == SETRD:                    # Unbound's allow_setrd: RD taken as set
            who = ALLOWED
            setrd = self.setrd(p, n, reply.client())
            if setrd is not None:
                q = setrd
                p = <const unsigned char*>PyBytes_AS_STRING(q)
        v = self.decide(p, n, who, reply.kind == T_UDP, t0, &key, &qtype, &truncated, reply)
        # The queries Unbound counts in num.queries (not the ACL's refusals, not a header
        # it rejects), by their shape as the client sent them. The engine counts those it
        # is given, and the door's hits; the door counts those it answers or drops itself.
        counted = v >= DROP_LOCAL and v != BAD_HEADER and who != OUTSIDE
        if counted and v != MISS and v != HIT:
            self.stats.client_queries += 1
        if self.extended and counted:
            counts.shape(asked, n, _is_ipv6(reply.client()))
        absent = None
        if key != NULL:                     # decide's reference, now this variable's
            absent = <object>key
            Py_DECREF(absent)
        if v == MISS:
            if q is None:
                q = PyBytes_FromStringAndSize(<const char*>p, n)
            carrier = reply.held(self, q, absent, t0)
            if carrier is None:
                return 1
            return 1 if self.miss(q, <Reply>carrier, t0, False, absent) else -1
        counts.acted(v)
        if v == DROP_ACL or v == DROP_LARGE:
            reply.drop_and_end()
            return -1
        if v <= DROP_LOCAL:                 # the drops
            reply.drop()
            return -1
        out = self.take()
        if v == BAD_HEADER:
            # Answered and counted nowhere else, as by Unbound (neither a query nor an
            # rcode), nor logged: apart, as ``header_errors``.
            counts.header_errors += 1
            reply.send(out)
            return 0
        # The ACL's refusals carry no identifier (as Unbound's); the door's other answers do.
        identify = not (v == REFUSED and (who == OUTSIDE or who == LOCAL_REFUSE))
        if reply.batch:
            if identify:
                out = self.identified(p, n, out)
            if PyBytes_GET_SIZE(out) > 512:         # (a hit is cut already, unless identified)
                out = self.fit_udp(out, p, n, -1)
            # The C UDP listener's way of counting: the qtype of the queries counted (a
            # hit's read by decide), REFUSED in no latency bucket, the rest in the first.
            counts.udp_answered(v, out, qtype if qtype != 0 or v == HIT else asked_type(p, n),
                                truncated, counted)
            if self.query_log is not None:
                self.query_log(reply.client()[0], PyBytes_FromStringAndSize(<const char*>p, n),
                               out, "udp", 0.0, v == HIT)
            reply.send(out)
            return 0
        if truncated:
            counts.truncated += 1           # a hit cut to the client's UDP size
        if v == HIT and (reply.kind == T_TCP or reply.kind == T_TLS):
            counts.fast_tcp_hits += 1
        if q is None and (self.query_log is not None or reply.kind == T_UDP
                          or (identify and self.nsid is not None)):
            q = PyBytes_FromStringAndSize(<const char*>p, n)
        # a cached answer's qtype was read by decide; the others' is read here
        self.answer(q, out, reply, t0, v == HIT, qtype if qtype != 0 else asked_type(p, n), -1,
                    None, identify)
        return 0

    cdef int decide(self, const unsigned char* p, Py_ssize_t n, int who, bint udp, double now,
                    PyObject** key, unsigned int* qtype, bint* truncated,
                    Reply reply) except -1:
        """The verdict (rules 1 to 5) on the query at ``p`` (``n`` bytes) from a client of
        standing ``who`` whose answer goes through ``reply`` (which names the client);
        ``made`` holds the answer of an answering verdict until taken (``take``), ``key``
        (a new reference, when not left NULL) a miss's cache key, ``qtype`` the question's
        type when the question was read, ``truncated`` whether a UDP hit was truncated.
        ``udp``: truncate hits to the client's EDNS size, never above ``max_udp_size``."""
        cdef Screen screen = NULL
        cdef int rule = header_rule(p, n)
        if rule == HEADER_SHORT:
            return DROP_SHORT
        if n > 512 and self.harden_large:
            return DROP_LARGE
        if rule == HEADER_RESPONSE:
            return DROP_RESPONSE
        if who == OUTSIDE:
            self.made = self.acl_refusal(PyBytes_FromStringAndSize(<const char*>p, n))
            return REFUSED
        if who == DENIED:
            return DROP_ACL
        if rule == HEADER_NOT_QUERY or rule == HEADER_TRUNCATED or rule == HEADER_COUNTS:
            self.made = header_error(PyBytes_FromStringAndSize(<const char*>p, n), rule)
            return BAD_HEADER
        if rule == HEADER_NOTIFY:
            self.made = _error(PyBytes_FromStringAndSize(<const char*>p, n), 5)
            return LOCAL
        if rule == HEADER_NO_RECURSION or who == LOCAL_REFUSE or who == LOCAL_DENY:
            return self._probe(PyBytes_FromStringAndSize(<const char*>p, n), who,
                               reply.client() if reply is not None else None)
        if self._policy is not None:    # the response policy: hits for untouched names only
            if not self.rpz_indexed:
                return MISS
            if (self.rpz_cn4 or self.rpz_cn6) and self._client_held(reply):
                return MISS
            screen = _untouched_by_policy
        if self.views and self._zoned(p, n):
            # A client's view, tags or overrides may answer a name the cache holds from another's
            # resolution (or the global zones one a view resolved): the local zones
            # first, as Unbound asks them before its cache.
            local = self.resolver.local_answer(PyBytes_FromStringAndSize(<const char*>p, n),
                                               reply.client() if reply is not None else None)
            if local is _DROP:
                return DROP_LOCAL
            if local is not None:
                self.made = local
                return LOCAL
        # a query asking for the identifier gets its hit whole: the identifier goes in
        # before the answer is cut to the client's UDP size (``handle``, ``answer``)
        if udp and self.nsid is not None and asks_option(p, n, EDNS_NSID):
            udp = False
        hit = cached_answer(self.table, p, n, now, self.prefetch_fraction,
                            self.max_udp_size if udp else 0, qtype, truncated, key, screen,
                            self)
        self.stats.query_parses += 1
        if qtype[0] != 0:               # the question was read: the cache was looked up
            self.stats.cache_lookups += 1
        if hit is None:
            return MISS
        self.counters.hits += 1
        self.stats.client_queries += 1      # the engine's figures count the door's hits
        self.stats.cache_hits += 1
        self.made = hit
        return HIT

    cdef bint _answer_touched(self, MsgEntry e) except -1:
        """Rule 5 under a response policy, on the cached answer: whether a trigger could
        touch the entry's answer section beyond the query's name: a QNAME trigger on the
        owner or the target of a CNAME record (the chain's names, which QNAME triggers would
        see), a response-IP trigger on the address of an A or AAAA record (those the policy
        checks on an answer); True as well for a DNAME record, or an answer section that
        cannot be read through. An answer without CNAME or DNAME is about the query's name
        alone."""
        cdef const unsigned char* w = <const unsigned char*>PyBytes_AS_STRING(e.wire)
        cdef Py_ssize_t wlen = PyBytes_GET_SIZE(e.wire), pos = e.qend, end, olen
        cdef unsigned int i, rtype, rdlen
        cdef bint addresses = self.rpz_n4 or self.rpz_n6
        cdef unsigned char name[MAX_NAME]
        if wlen < 12:
            return True
        for i in range(u16(w + 6)):
            olen = 0
            end = read_lower_name(w, wlen, pos, name, &olen)
            if end < 0 or end + 10 > wlen:
                return True
            rtype = u16(w + end)
            rdlen = u16(w + end + 8)
            if end + 10 + rdlen > wlen or rtype == T_DNAME:
                return True
            if rtype == T_CNAME:
                if self._touched(name, olen):
                    return True
                if read_lower_name(w, wlen, end + 10, name, &olen) < 0:
                    return True
                if self._touched(name, olen):
                    return True
            elif addresses and (rtype == T_A or rtype == T_AAAA):
                if rdlen != (4 if rtype == T_A else 16):
                    return True
                if rdlen == 4 and _held(self.rpz_networks, &self.rpz_len4[0], self.rpz_n4,
                                        w + end + 10, 4):
                    return True
                if rdlen == 16 and _held(self.rpz_networks, &self.rpz_len6[0], self.rpz_n6,
                                         w + end + 10, 16):
                    return True
            pos = end + 10 + rdlen
        return False

    cdef bint _client_held(self, Reply reply) except -1:
        """Whether a client-IP trigger's network holds the address of ``reply``'s client
        (``TriggerIndex.holds_client``); False for a client without one (the policy's
        client-IP triggers cannot match it either)."""
        cdef unsigned char a[16]
        cdef int size = reply.client_address(a) if reply is not None else 0
        if size == 4:
            return _held(self.rpz_clients, &self.rpz_clen4[0], self.rpz_cn4, a, 4)
        if size == 16:
            return _held(self.rpz_clients, &self.rpz_clen6[0], self.rpz_cn6, a, 16)
        return False

    cdef bint _ns_touched(self, const unsigned char* name, Py_ssize_t length) except -1:
        """Whether an NSDNAME or NSIP trigger meets the name servers of the zone of
        ``name`` (``length`` bytes, lower-cased wire form), as the gate finds them for a
        cached answer (``PolicyGate.ns_touched``: the rrset cache's NS set and its
        addresses; a look-up in Python, once per cached entry and policy). True as well
        when the look-up fails: the policy then decides each query itself."""
        try:
            return bool(self._policy.ns_touched(
                self.rpz_index, PyBytes_FromStringAndSize(<const char*>name, length)))
        except Exception:
            log.exception("rpz: the name servers of a cached answer could not be checked")
            return True

    cdef bint _touched(self, const unsigned char* name, Py_ssize_t length) except -1:
        """Whether a QNAME trigger of the policy can match the name ``name`` (``length``
        bytes, lower-cased wire form): the name in its exact triggers, or a name above it
        (up to the root) in its wildcards (``TriggerIndex.touches``)."""
        cdef Py_ssize_t pos
        if (self.rpz_exact
                and PyBytes_FromStringAndSize(<const char*>name, length) in self.rpz_exact):
            return True
        if not self.rpz_wild:
            return False
        pos = name[0] + 1
        while pos < length:
            if PyBytes_FromStringAndSize(<const char*>name + pos, length - pos) in self.rpz_wild:
                return True
            pos += name[pos] + 1
        return False

    cdef bint _zoned(self, const unsigned char* p, Py_ssize_t n) except -1:
        """With views: whether the question's name is at or below the name of a local zone,
        global or a view's (a name under none is answered alike for every client: from
        the cache as it is); True for a name that cannot be read, which the local zones'
        own parse then judges."""
        cdef unsigned char name[MAX_NAME]
        cdef Py_ssize_t olen = 0, pos = 0
        zones = self.resolver.local_zones
        if zones is not self.zoned_for:     # the zones changed (a reload, a command)
            self.zoned_names = frozenset() if zones is None else zones.zone_names()
            self.zoned_for = zones
        if n < 12 or read_lower_name(p, n, 12, name, &olen) < 0:
            return True
        names = self.zoned_names
        while True:
            if PyBytes_FromStringAndSize(<const char*>name + pos, olen - pos) in names:
                return True
            if name[pos] == 0:
                return False
            pos += name[pos] + 1

    cdef object setrd(self, const unsigned char* p, Py_ssize_t n, client):
        """For a client of ``allow_setrd`` (at the socket address ``client``): the query at
        ``p`` with RD set when it came with RD clear and no local zone holds its name
        (Unbound sets the bit after its local zones had their say); else None (the query
        goes on as it came)."""
        if n < 12 or p[2] & 1:
            return None
        if self.resolver.local_answer(PyBytes_FromStringAndSize(<const char*>p, n),
                                      client) is not None:
            return None
        return with_rd(p, n)

    cdef int _probe(self, bytes q, int who, client) except -1:
        """Rule 4: a QUERY with RD clear, or any QUERY of a client allowed local answers
        only (``client``: its socket address, or None)."""
        local = self.resolver.local_answer(q, client)
        if local is _DROP:
            return DROP_LOCAL
        if local is not None:
            self.made = local
            return LOCAL
        if who == LOCAL_DENY:
            return DROP_ACL
        if who == SNOOPER:
            hit = self.resolver.resolve_cached(q)     # counted by the engine
            if hit is not None:
                self.made = hit
                return HIT
        if who == LOCAL_REFUSE:
            self.made = self.acl_refusal(q)
            return REFUSED
        out = _error(q, 5)
        # a client that may not snoop is told the cache is not its to read
        self.made = with_ede(out, EDE_NOT_AUTHORITATIVE) if self.ede and who != SNOOPER else out
        return REFUSED

    cdef bytes acl_refusal(self, bytes q):
        """The access control's REFUSED to ``q`` (``refuse``, ``refuse_non_local``), as
        Unbound's: the header alone (``query_error``); with ``ede``, to a query whose one
        additional record is its OPT, the question and an OPT holding the Extended DNS Error
        Prohibited (18)."""
        if self.ede:
            out = query_error(q, 5, True, True)
            if out is not None and out[11]:
                return with_ede(out, EDE_PROHIBITED)
        return query_error(q, 5)

    cdef bytes fit_udp(self, bytes out, const unsigned char* p, Py_ssize_t n, int limit):
        """``out``, the answer to the UDP query at ``p`` (``n`` bytes), cut (``truncate``) to
        the largest answer the client takes (``limit`` when known, -1: its EDNS size, or 512;
        never above ``max-udp-size``), counted when cut. Every client takes 512 bytes."""
        if PyBytes_GET_SIZE(out) <= 512:
            return out
        if limit < 0:
            limit = udp_limit_at(p, n)
        if limit > <int>self.max_udp_size:
            limit = self.max_udp_size
        if PyBytes_GET_SIZE(out) <= limit:
            return out
        out = _truncate(out, limit)
        if out[2] & 0x02:           # TC: not when only additional records were left out
            self.counters.truncated += 1
        return out

    cdef bytes identified(self, const unsigned char* p, Py_ssize_t n, bytes out):
        """``out``, the answer to the query at ``p`` (``n`` bytes), with the server's
        identifier when ``nsid`` is set and the query asks for it (RFC 5001)."""
        if self.nsid is not None and asks_option(p, n, EDNS_NSID):
            return with_option(out, EDNS_NSID, self.nsid)
        return out

    def verdict(self, bytes q, int who, bint udp=False, client=None):
        """The verdict alone on a query in bytes from the socket address ``client`` (None:
        a client without an address), nothing acted on or counted but the look-up:
        (verdict name, answer or None, cache key or None)."""
        cdef PyObject* key = NULL
        cdef unsigned int qtype = 0
        cdef bint truncated = False
        if who == SETRD:
            who = ALLOWED
            setrd = self.setrd(<const unsigned char*>PyBytes_AS_STRING(q), PyBytes_GET_SIZE(q),
                               client)
            q = q if setrd is None else setrd
        v = self.decide(<const unsigned char*>PyBytes_AS_STRING(q), PyBytes_GET_SIZE(q), who,
                        udp, monotonic(), &key, &qtype, &truncated,
                        Reply("udp" if udp else "tcp", client))
        found = None
        if key != NULL:
            found = <object>key
            Py_DECREF(found)
        return VERDICTS[v], self.take(), found

    cdef object take(self):
        """The answer of the last verdict, handed over (the door keeps no reference)."""
        out, self.made = self.made, None
        return out

    # ---- a miss

    def start_held(self, bytes q, Reply reply not None, bint busy=False, absent=None,
                   t0=None):
        """A miss a reply held (``Reply.held``), started now (``t0``: when its query
        arrived, now if None): ``busy`` when the listener is behind (only a client with no
        miss in flight gets one, so a flood's sources cannot crowd out a client that asks
        now and then), ``absent`` its message cache key when the door found no fresh entry
        for it. False when it was dropped (the reply is dropped)."""
        return self.miss(q, reply, monotonic() if t0 is None else <double>t0, busy, absent)

    cdef bint miss(self, bytes q, Reply reply, double t0, bint busy, absent) except -1:
        """``start``, through the response policy when there is one
        (``resolver.daemon.rpz_gate``). False when the query was dropped."""
        if self._policy is not None:
            return self._policy.miss(self, q, reply, t0, busy)
        return self.start(q, reply, t0, busy, absent, None, None)

    def policy_start(self, bytes q, Reply reply not None, double t0, bint busy, rewrite,
                     bytes shown=None):
        """``start`` for the response policy: ``rewrite(out, miss)`` (when not None) turns
        the answer ``out`` into the one sent (None: dropped, a ``Follow``: another question
        resolved for the reply); ``miss`` is what resolved it, a ``resolution.Drive`` or a
        shared cache's ``Lookup``, whose ``failed_chain()`` gives a SERVFAIL's chain (None
        when the engine answered at once); ``shown``: the client's query, counted and
        logged, when ``q`` is another (a CNAME rewrite's target)."""
        return self.start(q, reply, t0, busy, None, rewrite, shown)

    def policy_answer(self, bytes q, bytes out, Reply reply not None, double t0):
        """An answer the response policy gave: counted, logged and sent as any other."""
        self.answer(q, out, reply, t0, False, -1, -1, None, True)

    def policy_drop(self, Reply reply not None):
        """The response policy's drop action: counted, and the reply dropped."""
        self.counters.drops[R_RPZ] += 1
        reply.drop()

    cdef bint start(self, bytes q, Reply reply, double t0, bint busy, absent, rewrite,
                    bytes shown) except -1:
        """Starts a resolution that answers later through ``reply`` (or now: an error the
        engine finds). False when the query was dropped (the budgets, a deny zone, too
        short to answer): the reply is dropped. With ``busy`` only a client with no miss in
        flight gets one. ``absent``: the query's message cache key, under which the door
        has just found no fresh entry (or None)."""
        addr = reply.client()
        client = client_key(addr[0], self.prefix_v4, self.prefix_v6) if addr else None
        cdef Py_ssize_t n = self.inflight_by_client.get(client, 0)
        cdef int reason = -1
        cdef bint jostled = False
        if busy and n:
            reason = R_BUSY
        elif n >= self.max_inflight_per_client:
            reason = R_OVERLOAD
        else:
            # A jostled miss's reply may hand the door another query as it is dropped (a
            # DoH stream's next request): the room is checked again until it is there.
            while len(self.misses) >= self.max_inflight:
                if not self.jostle(t0, self.jostle_timeout):
                    reason = R_OVERLOAD
                    self.counters.requestlist_exceeded += 1
                    break
                jostled = True
        if reason < 0 and not self.within_ratelimit(client, t0, self.ip_ratelimit):
            reason = R_RATELIMIT
        if reason >= 0:
            self.counters.drops[reason] += 1
            reply.drop()
            return False
        if jostled:     # a jostled miss of the same client has released its count meanwhile
            n = self.inflight_by_client.get(client, 0)
        self.inflight_by_client[client] = n + 1
        cdef Counters c = self.counters
        cdef unsigned long long depth = len(self.misses)
        c.requestlist_inserts += 1
        c.requestlist_sum += depth
        if depth > c.requestlist_max:
            c.requestlist_max = depth
        if _log_misses:
            self._log_miss(q, addr, reply.label)
        cdef _Done done = _Done.__new__(_Done)
        done.door, done.q, done.client, done.reply, done.t0 = (
            self, q if shown is None else shown, client, reply, t0)
        done.rewrite = rewrite
        # No task: the engine's Drive calls back with the response (or None if cancelled).
        try:
            d = self.start_miss(q, done, absent, addr)
        except Exception as exc:        # a malformed query the engine rejects, or a bug
            d = self._failed(q, client, exc)
        if d is None:                   # dropped (a deny zone, a query too short)
            self.resolved(done.q, client, reply, t0, None, None, None)
            return False
        if type(d) is bytes:
            self.resolved(done.q, client, reply, t0, None, d, rewrite)
        elif not ((<Drive>d).finished if type(d) is Drive else d.finished):
            self.misses[d] = t0
            reply.started = d
            if self.stale_client_timeout >= 0.0 and self.loop is not None:
                if self.stale_client_timeout == 0.0:
                    self.answer_stale(done, d)
                elif self.stale_sweep is None:
                    self.stale_sweep = self.loop.call_later(
                        t0 + self.stale_client_timeout - monotonic(), self.sweep_stale)
        return True

    cdef object start_miss(self, bytes q, object done, object absent, object addr):
        """The resolver's ``start_miss(q, done, loop, absent, addr)``: a C call of
        ``resolution.start`` when the resolver is a ResolverCore whose class binds that
        function as ``start_miss`` and the instance does not replace it (looked at once per
        resolver object), else the Python call, as a resolver's subclass or a stand-in
        defines it."""
        r = self.resolver
        if r is not self.start_checked:
            self.start_checked = r
            self.start_direct = (isinstance(r, ResolverCore)
                                 and getattr(type(r), "start_miss", None) is _start_query
                                 and "start_miss" not in getattr(r, "__dict__", ()))
        if self.start_direct:
            return start_query(<ResolverCore>r, q, done, self.loop, absent, addr)
        return r.start_miss(q, done, self.loop, absent, addr)

    cdef int answer_stale(self, object miss_done, object d) except -1:
        """RFC 8767's client response timer has run out for the miss ``d`` (a Drive, or a
        shared-cache Lookup: Redis first, then a Drive): its client gets
        the expired answer in its stale window (through the response policy, as any answer;
        the resolution's answer when the policy would follow or drop it), and the miss goes
        on to refresh the cache, its answer then sent to no one."""
        cdef _Done done = <_Done?>miss_done
        if done.answered or d.finished:
            return 0
        out = d.stale()
        if out is None:
            return 0
        if done.rewrite is not None:
            out = done.rewrite(out, d)
            if type(out) is not bytes:
                return 0
        done.answered = True
        done.reply.started = None
        self.answer(done.q, out, done.reply, done.t0, False, -1, -1, None, True)
        return 0

    def sweep_stale(self):
        """RFC 8767's client response timer (``serve-stale-client-timeout``), one for all
        the misses in flight, set for the oldest that has not run it yet: each miss that
        has run the timeout gets, once, the answer its cache entry gives then
        (``answer_stale``: an expired answer in its stale window, or one stored meanwhile),
        and the timer is set again for the next. ``misses`` holds them in the order they
        started, so the sweep stops at the first that has not run the timeout; a miss still
        in flight after its turn moves to the end of ``misses`` and into ``stale_swept``,
        and a later sweep that comes to it again only moves it on. A miss costs nothing
        here unless it runs the timeout: no look-up of its entry when it starts, no timer
        of its own."""
        self.stale_sweep = None
        cdef double timeout = self.stale_client_timeout
        if timeout <= 0.0 or self.loop is None or not self.misses:
            return
        cdef double now = monotonic(), next_due = -1.0
        cdef list due = []
        for d, started in self.misses.items():
            if <double>started + timeout > now:
                next_due = <double>started + timeout
                break
            due.append(d)
        for d in due:
            if d in self.stale_swept:
                del self.stale_swept[d]
            else:
                done = (<Drive>d).done if type(d) is Drive else getattr(d, "done", None)
                if isinstance(done, _Done):
                    self.answer_stale(done, d)
            started = self.misses.pop(d, None)   # answered: the miss may have ended
            if started is not None:
                self.misses[d] = started
                self.stale_swept[d] = None
        if next_due >= 0.0:
            if self.stale_sweep is not None:    # set by a miss an answer above started
                self.stale_sweep.cancel()
            self.stale_sweep = self.loop.call_later(next_due - now, self.sweep_stale)

    cdef bint jostle(self, double now, double timeout) except -1:
        """Makes room by cancelling the oldest miss if it has run ``timeout`` seconds (its
        client gets no answer, as from Unbound's jostle); False when none is that old. The
        oldest is the first of ``stale_swept`` when it holds any (misses that have run the
        client response timer, moved behind younger ones by ``sweep_stale``), else the
        first of ``misses``."""
        if timeout <= 0 or not self.misses:
            return False
        for oldest in (self.stale_swept or self.misses):
            break
        started = self.misses[oldest]
        if now - <double>started < timeout:
            return False
        oldest.cancel()                 # its done() releases the slot and the client's count
        self.misses.pop(oldest, None)
        self.stale_swept.pop(oldest, None)
        self.counters.drops[R_JOSTLED] += 1
        return True

    cdef bint within_ratelimit(self, client, double now, double rate):
        """Whether ``client`` may start one more miss now (a token bucket of ``rate`` misses
        per second, one second's worth deep); always with ``rate`` 0."""
        cdef _Bucket b
        if rate <= 0:
            return True
        found = self.rate_buckets.get(client)
        if found is None:
            if len(self.rate_buckets) >= self._cfg.limits.max_rate_clients:
                self.rate_buckets.clear()
            b = _Bucket.__new__(_Bucket)
            b.tokens, b.at = rate, now
            self.rate_buckets[client] = b
        else:
            b = <_Bucket>found
            b.tokens = min(rate, b.tokens + (now - b.at) * rate)
            b.at = now
        if b.tokens < 1.0:
            return False
        b.tokens -= 1.0
        return True

    def client_rates(self, now=None):
        """Each client of ``ip-ratelimit``'s buckets at ``now`` (the door's clock, now if
        None): (client, misses of the last second as its bucket has them (the limit less the
        tokens left, rounded up), whether it is at its limit); a client is its address, or
        ``ADDRESS/LEN`` when clients are counted by network. Empty with ``ip-ratelimit``
        off."""
        cdef _Bucket b
        cdef double rate = self.ip_ratelimit, tokens
        cdef double t = monotonic() if now is None else <double>now
        out = []
        for client, found in list(self.rate_buckets.items()):
            b = <_Bucket>found
            tokens = min(rate, b.tokens + (t - b.at) * rate)
            out.append((_client_text(client), <long>ceil(rate - tokens), tokens < 1.0))
        return out

    @property
    def client_rate_limit(self):
        """``ip-ratelimit`` as the door applies it (misses per second per client; 0: off)."""
        return <long>self.ip_ratelimit

    def _log_miss(self, bytes q, addr, str transport):
        from resolver.daemon.querylog import question
        asked = question(q)
        _miss_log.log(CACHE_MISS, "cache miss from %s over %s: %s",
                      f"{addr[0]}@{addr[1]}" if addr and len(addr) > 1 else "-", transport,
                      " ".join(asked[:3]) if asked else "(unreadable)")

    def _failed(self, bytes q, client, exc):
        log.debug("query from %s failed: %r", client, exc)
        out = _error(q, 1 if isinstance(exc, ValueError) else 2)
        if out is None:
            self.counters.drops[R_SHORT] += 1
        return out

    cdef resolved(self, bytes q, client, Reply reply, double t0, d, out, rewrite):
        """The end of a miss: its response sent (the reply dropped when there is none: the
        miss was cancelled, or ``rewrite``, the policy's check of the answer, dropped it),
        its count released."""
        cdef Parsed m
        self.release(client, d)
        reply.started = None
        if out is not None and rewrite is not None:
            out = rewrite(out, d)
            if type(out) is Follow:
                self.start(out.query, reply, t0, False, None, out.combine, q)
                return
        if out is None:
            reply.drop()
            return
        if d is None:
            self.answer(q, out, reply, t0, False, -1, -1, None, True)
        else:
            self.counters.recursed(monotonic() - t0)
            # The query as parsed when it arrived (Drive.miss, shared.Lookup.miss): its
            # type and EDNS payload size are not read from the bytes again.
            m = <Parsed?>((<Drive>d).miss if type(d) is Drive else d.miss)[0]
            self.answer(q, out, reply, t0, False, m.qtype,
                        m.edns_payload if m.edns_payload > 512 else 512,
                        (<Drive>d).failure if type(d) is Drive
                        else getattr(d, "failure", None), True)

    cdef int release(self, client, d) except -1:
        """The end of the miss ``d`` (None: one the engine ended at once) of ``client``: out
        of the misses in flight and of its client's count."""
        if d is not None:
            self.misses.pop(d, None)
            if self.stale_swept:
                self.stale_swept.pop(d, None)
            if not self.misses and self.drained is not None and not self.drained.done():
                self.drained.set_result(None)
        cdef Py_ssize_t n = self.inflight_by_client.pop(client, 0) - 1
        if n > 0:
            self.inflight_by_client[client] = n
        return 0

    cdef answer(self, bytes q, bytes out, Reply reply, double t0, bint hit, int qtype,
                int limit, failure, bint identify):
        """Truncates ``out`` for UDP, counts, logs and sends it; ``qtype`` and ``limit``
        (the largest UDP answer the client takes) are the query's when its parse is at
        hand, -1 to read them from ``q``; ``failure`` a SERVFAIL's (extended error code,
        reason) when it is known. ``identify``: a query that asks for the server's
        identifier (NSID) gets it, before truncation."""
        cdef double seconds
        if identify and q is not None:
            out = self.identified(<const unsigned char*>PyBytes_AS_STRING(q),
                                  PyBytes_GET_SIZE(q), out)
        if reply.kind == T_UDP and PyBytes_GET_SIZE(out) > 512:
            out = self.fit_udp(out, <const unsigned char*>PyBytes_AS_STRING(q),
                               PyBytes_GET_SIZE(q), limit)
        seconds = monotonic() - t0
        self.counters.answered(reply.label, out, qtype_of(q) if qtype < 0 else qtype, seconds)
        if self.query_log is not None:
            addr = reply.client()
            self.query_log(addr[0] if addr else None, q, out, reply.label, seconds, hit,
                           failure)
        reply.send(out)
