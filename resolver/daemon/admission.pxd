# The daemon's front door (admission.pyx): every transport hands a client query to
# FrontDoor.handle with a Reply, and the door ends each query in the reply's send or drop.
from cpython.object cimport PyObject
from resolver.state cimport Stats
from resolver.resolution cimport Drive, MissDone
from resolver.wire.codec cimport MsgEntry

cdef enum Who:
    # the client's standing by the ACL (Unbound's access-control action of the longest
    # prefix holding it), decided by the listener (per datagram, per connection)
    OUTSIDE = 0         # ``refuse``, or no network holds it: REFUSED
    ALLOWED = 1         # ``allow``: recursive queries
    SNOOPER = 2         # ``allow-snoop``: recursive queries and cache probes (RD clear)
    DENIED = 3          # ``deny``: every query dropped
    LOCAL_REFUSE = 4    # ``refuse_non_local``: local zones answer, the rest REFUSED
    LOCAL_DENY = 5      # ``deny_non_local``: local zones answer, the rest dropped
    SETRD = 6           # ``allow_setrd``: as allowed, a query with RD clear taken as if set
                        # (the door sets it before anything else reads the query)

cdef enum Verdict:
    DROP_SHORT = 0      # shorter than a header: nothing to answer
    DROP_RESPONSE = 1   # QR set: never answer a response (no reflection loops)
    DROP_LARGE = 2      # larger than 512 bytes, under ``harden-large-queries``
    DROP_ACL = 3        # a client the ACL denies (deny, deny_non_local)
    DROP_LOCAL = 4      # a local zone that drops the query (deny)
    REFUSED = 5         # ``out``: REFUSED to a client outside the ACL, or a cache probe from
                        # a client that may not snoop
    BAD_HEADER = 6      # ``out``: what the header alone answers: NOTIMP (an opcode other
                        # than QUERY and NOTIFY), FORMERR (TC set, counts)
    LOCAL = 7           # ``out``: a local zone's answer to a query with RD clear, or to a
                        # client the ACL allows local answers only; REFUSED to a NOTIFY
                        # (no zone to be notified of), counted as a query as Unbound does
    HIT = 8             # ``out``: the cached answer
    MISS = 9            # to the engine; ``key`` is its message cache key when the cache was
                        # looked up and has no fresh entry (NULL: the engine reads the query
                        # itself: an entry due for prefetch, or a query this path leaves to it)

cdef enum:
    # the transports the counters keep apart (``TRANSPORTS`` in admission.pyx names them)
    T_UDP = 0
    T_TCP = 1
    T_TLS = 2
    T_HTTPS = 3
    T_HTTP = 4
    NTRANSPORTS = 5

cdef enum:
    # the drop reasons: why a client packet got no answer (``DROP_REASONS`` in admission.pyx
    # names them); a new reason is one line here, its name there
    R_SHORT = 0         # shorter than a header (the verdict), or too short for an error answer
    R_RESPONSE = 1      # QR set (the verdict)
    R_OVERSIZE = 2      # a datagram larger than the UDP listener's buffer
    R_BUSY = 3          # a miss past the UDP listener's quota, or of a client with one going
    R_OVERLOAD = 4      # the caps on misses in flight (global, per client)
    R_RATELIMIT = 5     # the client's miss budget (``ip-ratelimit``)
    R_JOSTLED = 6       # a miss cancelled to make room for a new one
    R_RPZ = 7           # the response policy's drop action
    R_TCP_OVERSIZE = 8  # a stream frame longer than ``tcp-max-query`` (the connection ends)
    R_SEND_ERROR = 9    # an answer the socket would not send
    R_INTERNAL_ERROR = 10   # a UDP batch the listener failed on
    # a PROXY v2 header that is not valid (``proxy_protocol.REASONS``)
    R_PROXY_SIGNATURE = 11
    R_PROXY_VERSION = 12
    R_PROXY_COMMAND = 13
    R_PROXY_FAMILY = 14
    R_PROXY_LENGTH = 15
    R_PROXY_TOO_LONG = 16
    R_PROXY_TRUNCATED = 17
    R_ACL = 18          # a client the ACL denies (``deny``, ``deny_non_local``)
    R_LARGE = 19        # larger than 512 bytes, under ``harden-large-queries`` (the verdict)
    NREASONS = 20

cdef enum:
    NBUCKETS = 14       # answer-latency buckets with a bound (``LATENCY_BUCKETS``), then +Inf
    NHISTOGRAM = 40     # recursion-time buckets, Unbound's (``RECURSION_BOUNDS``)


cdef class Counters:
    # the daemon's one counter block (admission.pyx); the door counts every verdict here
    cdef unsigned long long rcodes[NTRANSPORTS][16]
    cdef public unsigned long long nodata   # NOERROR answers with no answer record (NODATA)
    cdef object other_queries           # Counter: (transport, rcode) -> n, other transports
    cdef unsigned long long low_qtypes[256]
    cdef object other_qtypes            # Counter: qtype >= 256 -> n
    cdef unsigned long long latency_counts[NBUCKETS + 1]
    cdef unsigned long long recursion_counts[NHISTOGRAM]  # misses alone, by answer time
    cdef unsigned long long drops[NREASONS]
    cdef public double latency_sum, recursion_sum
    # the queries' shape, counted with ``extended-statistics`` (Unbound's num.query.flags,
    # .opcode, .class, .edns, .ipv6): the header's third and fourth bytes by value (the
    # flags and opcode are read back from them), the question's class
    cdef unsigned long long flag_bytes[2][256]
    cdef unsigned long long low_qclasses[256]
    cdef public unsigned long long other_qclasses, edns_present, edns_do, ipv6
    # the list of misses in flight as Unbound's requestlist: its length summed and its
    # largest at each miss started, the misses refused because it was full
    cdef public unsigned long long requestlist_inserts, requestlist_sum, requestlist_max
    cdef public unsigned long long requestlist_exceeded
    cdef public long long refused_acl, truncated
    cdef public unsigned long long header_errors    # answered for their header alone
    cdef public unsigned long long hits, fast_tcp_hits
    cdef public long long tcp_connections, tcp_accepted, tcp_rejected, tcp_idle_closed
    cdef public long long tcp_shed_idle, tcp_write_stalled, tcp_close_stalled
    cdef public bint udp_reported       # a C UDP listener serves: its drop reasons always shown

    cpdef answered(self, str transport, bytes out, unsigned int qtype, double seconds)
    cdef int recursed(self, double seconds) except -1
    cdef int shape(self, const unsigned char* p, Py_ssize_t n, bint ipv6) except -1
    cdef int acted(self, int verdict) except -1
    cdef int udp_answered(self, int verdict, bytes out, unsigned int qtype,
                          bint truncated, bint counted) except -1


cdef class Reply:
    # where one query's answer goes (a listener's kind of reply: admission.pyx)
    cdef readonly object addr           # the client's socket address, or None
    cdef readonly str label             # the transport's name (TRANSPORTS)
    cdef int kind                       # its T_ constant (-1: not in TRANSPORTS)
    cdef bint batch                     # a slot of the C UDP listener's batch
    cdef public object started          # the miss under way for it (cancel()), or None
    cdef bytes packed                   # client_address's answer, kept (None: not yet)

    cdef object client(self)
    cdef int client_address(self, unsigned char* out) except -1
    cdef int send(self, bytes out) except -1
    cdef int drop(self) except -1
    cdef int drop_and_end(self) except -1
    cdef object held(self, object door, bytes q, object key, double t0)


cdef class FrontDoor:
    cdef object table               # the engine's message cache (a dict)
    cdef public object resolver     # local data, the cache probe of a query with RD clear, misses
    cdef object start_checked       # the resolver ``start_direct`` was found for
    cdef bint start_direct          # its misses start in C (``resolution.start``), not by a
                                    # Python call of its ``start_miss``
    cdef Stats stats                # the engine's counters: parses, look-ups and hits counted
    cdef public double prefetch_fraction
    cdef public unsigned int max_udp_size
    cdef readonly Counters counters # the one counter block
    cdef object made                # the last verdict's answer, until taken
    cdef object _policy             # rpz_gate.PolicyGate (``policy``): misses go through it
    # what the cached-answer path reads of the policy's ``TriggerIndex`` (set with ``policy``)
    cdef bint rpz_indexed           # the policy has its index: hits no trigger touches
    cdef object rpz_index           # that TriggerIndex (the NS look-up's check reads it)
    cdef unsigned int rpz_generation  # this policy's number (each policy set gets a new one)
    cdef frozenset rpz_exact        # exact QNAME triggers, lower-cased wire names
    cdef frozenset rpz_wild         # the names under wildcard QNAME triggers
    cdef frozenset rpz_networks     # response-IP networks: prefix length, masked address
    cdef unsigned char rpz_len4[33] # the prefix lengths among them, IPv4 then IPv6
    cdef unsigned char rpz_len6[129]
    cdef int rpz_n4, rpz_n6
    cdef frozenset rpz_clients      # client-IP networks, in the same form
    cdef unsigned char rpz_clen4[33]  # the prefix lengths among them, IPv4 then IPv6
    cdef unsigned char rpz_clen6[129]
    cdef int rpz_cn4, rpz_cn6
    cdef bint rpz_ns                # NSDNAME or NSIP triggers: an entry's servers looked up
    cdef object _cfg
    # what the miss path reads of ``cfg`` on every query, as C fields (the Config is frozen:
    # a reload assigns a new one, which sets them again)
    cdef int prefix_v4, prefix_v6
    cdef Py_ssize_t max_inflight, max_inflight_per_client
    cdef double jostle_timeout, ip_ratelimit
    cdef double stale_client_timeout    # ``serve-stale-client-timeout``, seconds (< 0: none)
    cdef public dict misses             # resolver.resolution.Drive in flight -> start time
    cdef object stale_sweep             # the client response timer of them all, or None
    cdef dict stale_swept               # misses in flight past that timer, as swept: -> None
    cdef public dict inflight_by_client
    cdef public dict rate_buckets       # client address -> _Bucket
    cdef public object drained          # a Future, set when the last miss ends
    cdef public object loop
    cdef public object query_log        # called for each answer when queries are logged
    cdef bint views                     # views or tagged zones: local zones first
    cdef object zoned_for               # the LocalZones ``zoned_names`` was read from
    cdef frozenset zoned_names          # every zone's name, global and the views' (``_zoned``)
    cdef bint extended                  # ``extended-statistics``: the queries' shape counted
    cdef bytes nsid                     # ``nsid``: the identifier's octets, or None
    cdef bint ede                       # ``ede``: the door's refusals say why (RFC 8914)
    cdef bint harden_large              # ``harden-large-queries``: drop queries > 512 bytes

    cdef int handle_at(self, const unsigned char* p, Py_ssize_t n, bytes q, int who,
                       Reply reply, double t0) except -2
    cdef int decide(self, const unsigned char* p, Py_ssize_t n, int who, bint udp, double now,
                    PyObject** key, unsigned int* qtype, bint* truncated,
                    Reply reply) except -1
    cdef bint _touched(self, const unsigned char* name, Py_ssize_t length) except -1
    cdef bint _answer_touched(self, MsgEntry e) except -1
    cdef bint _client_held(self, Reply reply) except -1
    cdef bint _ns_touched(self, const unsigned char* name, Py_ssize_t length) except -1
    cdef bint _zoned(self, const unsigned char* p, Py_ssize_t n) except -1
    cdef object setrd(self, const unsigned char* p, Py_ssize_t n, client)
    cdef int _probe(self, bytes q, int who, client) except -1
    cdef object take(self)
    cdef bint miss(self, bytes q, Reply reply, double t0, bint busy, absent) except -1
    cdef bint start(self, bytes q, Reply reply, double t0, bint busy, absent, rewrite,
                    bytes shown) except -1
    cdef object start_miss(self, bytes q, object done, object absent, object addr)
    cdef bint jostle(self, double now, double timeout) except -1
    cdef bint within_ratelimit(self, client, double now, double rate)
    cdef resolved(self, bytes q, client, Reply reply, double t0, d, out, rewrite)
    cdef int release(self, client, d) except -1
    cdef int answer_stale(self, object miss_done, object d) except -1
    cdef answer(self, bytes q, bytes out, Reply reply, double t0, bint hit, int qtype,
                int limit, failure, bint identify)
    cdef bytes identified(self, const unsigned char* p, Py_ssize_t n, bytes out)
    cdef bytes acl_refusal(self, bytes q)
    cdef bytes fit_udp(self, bytes out, const unsigned char* p, Py_ssize_t n, int limit)
