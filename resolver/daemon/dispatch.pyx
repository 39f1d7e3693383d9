# cython: language_level=3
"""What the daemon does with each client query once a listener has read it, in C: the front
door's verdict (``resolver.daemon.admission``) acted on (``serve``: dropped and counted,
answered, or a miss started), the overload check and the start of the miss, and, once it
ends, the count release, truncation for UDP, the counts and the send. What it counts goes to
the front door's counter block (``admission.Counters``), which its ``counters`` is.
``resolver.daemon.server.Server`` holds one :class:`Dispatch`; the listeners, connections,
ACL and management stay in Python there.

It is compiled because this is per-miss work (the miss, its completion callback, the release,
the answer, the truncation and the counts) that a cold CPU pays for dearly: a quiet resolver
wakes up on cold caches for every query.
"""
import logging
from socket import AF_INET, AF_INET6, inet_pton

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF

from resolver.cache.answer cimport monotonic, question_key
from resolver.daemon.admission cimport (DROP_LOCAL, HIT, MISS, R_BUSY, R_JOSTLED,
                                        R_OVERLOAD, R_RATELIMIT, R_SHORT, Counters, FrontDoor)
from resolver.wire.codec cimport Parsed
from resolver.resolution cimport Drive, MissDone
from resolver.daemon import udp_listener
from resolver.daemon.logs import CACHE_MISS as _CACHE_MISS
from resolver.daemon.udp_listener cimport ClientSend
from resolver.response import error

cdef enum:
    MAX_NAME = 255


log = logging.getLogger("resolver.daemon.server")
#: Verbosity 5 (``resolver.daemon.logs.CACHE_MISS``): the client of each cache miss, as
#: Unbound's verbosity 5 identifies it.
cdef object _miss_log = logging.getLogger("resolver.daemon.misses")
cdef int CACHE_MISS = _CACHE_MISS

cdef object _udp_limit = udp_listener.udp_limit
cdef object _truncate = udp_listener.truncate
cdef object _error_response = error


cpdef unsigned int qtype_of(bytes q):
    """The query's type, or 0 when it is not a plain one-question QUERY (as parse_query)."""
    cdef unsigned char key[MAX_NAME + 6]
    cdef Py_ssize_t klen
    cdef unsigned int limit, qtype = 0
    if question_key(<const unsigned char*>q, len(q), key, &klen, &limit, &qtype) < 0:
        return 0
    return qtype


cdef class _Done(MissDone):
    """The Drive's done(drive, response) for one client query (called in C by a Drive)."""
    cdef Dispatch owner
    cdef bytes q
    cdef object client, send, host
    cdef str transport
    cdef double t0
    cdef object rewrite                 # the policy's check of the answer, or None

    def __call__(self, d, out):
        self.owner.resolved(self.q, self.client, self.transport, self.send, self.t0, d, out,
                            self.host, self.rewrite)

    cdef int finished(self, Drive drive, object response) except -1:
        self.owner.resolved(self.q, self.client, self.transport, self.send, self.t0, drive,
                            response, self.host, self.rewrite)
        return 0


cpdef object client_key(str host, int prefix_v4, int prefix_v6):
    """What counts as one client: ``host`` itself, or its network when the prefix is
    shorter than the address (IPv6 /56 by default)."""
    cdef bint v6 = ":" in host
    cdef int prefix = prefix_v6 if v6 else prefix_v4
    if prefix >= (128 if v6 else 32):
        return host
    try:
        packed = inet_pton(AF_INET6 if v6 else AF_INET, host.partition("%")[0])
    except OSError:
        return host
    cdef int whole = prefix >> 3, bits = prefix & 7
    key = bytearray(packed[:whole + (1 if bits else 0)])
    if bits:
        key[whole] &= (0xFF << (8 - bits)) & 0xFF
    return (prefix, bytes(key))


cdef class _Bucket:
    """A client's miss budget: tokens left, refilled at ``ip_ratelimit`` per second up to one
    second's worth."""
    cdef double tokens, at


cdef class Dispatch:
    """The per-query state and paths of one process's server (see the module docstring)."""

    cdef object _cfg
    # what the miss path reads of ``cfg`` on every query, as C fields (the Config is frozen:
    # a reload assigns a new one, which sets them again)
    cdef int prefix_v4, prefix_v6
    cdef Py_ssize_t max_inflight, max_inflight_per_client, max_udp_size
    cdef double jostle_timeout, ip_ratelimit
    cdef public object resolver
    cdef public Counters counters
    cdef public dict misses             # resolver.resolution.Drive in flight -> start time
    cdef public dict inflight_by_client
    cdef public dict rate_buckets       # client address -> _Bucket
    cdef public object drained         # a Future, set when the last miss ends
    cdef public object loop
    cdef public object query_log        # called for each answer when queries are logged
    cdef public FrontDoor front         # the admission of every query (None: misses only)
    cdef public object policy           # resolver.daemon.rpz_gate.PolicyGate, or None
    cdef public object started          # the miss the last act started, to cancel, or None

    def __init__(self, cfg, resolver, FrontDoor front=None):
        self.cfg = cfg
        self.resolver = resolver
        self.counters = front.counters if front is not None else Counters()
        self.misses = {}
        self.inflight_by_client = {}
        self.rate_buckets = {}
        self.drained = None
        self.loop = None
        self.query_log = None
        self.front = front
        self.policy = None
        self.started = None

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
        self.ip_ratelimit = cfg.ip_ratelimit
        self._cfg = cfg

    def udp_miss(self, bytes q, addr, send, bint busy=False, absent=None):
        """From the C listener: a query the front door sent on as a miss, to be answered
        by ``send(out)``; ``busy`` when the listener is behind (see ``miss``), ``absent``
        the query's message cache key when the front door found no fresh entry for it.
        False when the miss was dropped."""
        return self.miss(q, addr, "udp", send, monotonic(), busy, absent)

    cdef bint miss(self, bytes q, addr, str transport, send, double t0,
                   bint busy=False, absent=None) except -1:
        """``start``, through the response policy when there is one
        (``resolver.daemon.rpz_gate``)."""
        if self.policy is not None:
            return self.policy.miss(self, q, addr, transport, send, t0, busy)
        return self.start(q, addr, transport, send, t0, busy, absent, None, None)

    def policy_start(self, bytes q, addr, str transport, send, double t0, bint busy,
                     rewrite, bytes shown=None):
        """``start`` for the response policy: ``rewrite(out)`` (when not None) turns the
        answer into the one sent (None: nothing is sent); ``shown``: the client's query,
        counted and logged, when ``q`` is another (a CNAME rewrite's target)."""
        return self.start(q, addr, transport, send, t0, busy, None, rewrite, shown)

    def policy_answer(self, bytes q, bytes out, str transport, send, double t0, client):
        """An answer the response policy gave: counted, logged and sent as any other."""
        self.answer(q, out, transport, send, t0, client, False)

    cdef bint start(self, bytes q, addr, str transport, send, double t0, bint busy,
                    absent, rewrite, bytes shown) except -1:
        """Starts a resolution that answers later through ``send`` (or now: an error the
        engine finds). False when the query was dropped (overload, a deny zone, too short
        to answer): ``send`` will never be called. With ``busy`` (the listener is behind)
        only a client with no miss in flight gets one, so a flood's sources cannot crowd
        out a client that asks now and then. ``absent``: the query's message cache key,
        under which the front door has just found no fresh entry (or None)."""
        client = client_key(addr[0], self.prefix_v4, self.prefix_v6) if addr else None
        cdef Py_ssize_t n = self.inflight_by_client.get(client, 0)
        if busy and n:
            self.counters.drops[R_BUSY] += 1
            return False
        if n >= self.max_inflight_per_client or (len(self.misses) >= self.max_inflight
                                                 and not self.jostle(t0, self.jostle_timeout)):
            self.counters.drops[R_OVERLOAD] += 1
            return False
        if not self.admitted(client, t0, self.ip_ratelimit):
            self.counters.drops[R_RATELIMIT] += 1
            return False
        self.inflight_by_client[client] = n + 1
        if _miss_log.isEnabledFor(CACHE_MISS):
            self._log_miss(q, addr, transport)
        cdef _Done done = _Done.__new__(_Done)
        done.owner, done.q, done.client, done.transport, done.send, done.t0 = (
            self, q if shown is None else shown, client, transport, send, t0)
        done.host = addr[0] if addr else None
        done.rewrite = rewrite
        # No task: the engine's Drive calls back with the response (or None if cancelled).
        try:
            d = self.resolver.start_miss(q, done, self.loop, absent, addr)
        except Exception as exc:        # a malformed query the engine rejects, or a bug
            d = self._failed(q, client, exc)
        if d is None:                   # dropped (a deny zone, a query too short)
            self.resolved(done.q, client, transport, send, t0, None, None, done.host, None)
            return False
        if type(d) is bytes:
            self.resolved(done.q, client, transport, send, t0, None, d, done.host, rewrite)
        elif not ((<Drive>d).finished if type(d) is Drive else d.finished):
            self.misses[d] = t0
            self.started = d
        return True

    cpdef int serve(self, bytes q, int who, addr, str transport, done, double t0) except -2:
        """A query a listener has read, from a client of standing ``who`` by the ACLs
        (``resolver.daemon.admission``): the front door's verdict acted on. Returns 0 when
        it was answered at once (``done(answer)`` has been called), 1 when a miss started
        (``done`` will be called once, unless the miss is cancelled), -1 when it was dropped
        (``done`` is never called): a caller counting queries in flight releases this one."""
        cdef PyObject* key = NULL
        cdef unsigned int qtype = 0
        cdef bint truncated = False
        cdef FrontDoor front = self.front
        cdef int v = front.admit(<const unsigned char*>PyBytes_AS_STRING(q),
                                 PyBytes_GET_SIZE(q), who, transport == "udp", monotonic(),
                                 &key, &qtype, &truncated)
        absent = None
        if key != NULL:
            absent = <object>key
            Py_DECREF(absent)
        if truncated:
            self.counters.truncated += 1        # a hit cut to the client's UDP size
        return self.act(q, v, front.take(), absent, addr, transport, done, t0)

    cpdef int act(self, bytes q, int verdict, out, absent, addr, str transport, done,
                  double t0) except -2:
        """``serve`` for a verdict already given (the TCP framer asks the front door in C):
        ``out`` the answer of an answering verdict, ``absent`` a miss's cache key. A miss
        that goes on is ``started`` until the next call (its ``cancel()`` stops waiting for
        it: its client gets no answer, and ``done`` is not called)."""
        self.started = None
        if verdict == MISS:
            return 1 if self.miss(q, addr, transport, done, t0, False, absent) else -1
        self.counters.acted(verdict)
        if verdict <= DROP_LOCAL:
            return -1
        self.answer(q, out, transport, done, t0, addr[0] if addr else None, verdict == HIT)
        return 0

    cdef bint jostle(self, double now, double timeout) except -1:
        """Makes room by cancelling the oldest miss if it has run ``timeout`` seconds (its
        client gets no answer, as from Unbound's jostle); False when none is that old."""
        if timeout <= 0 or not self.misses:
            return False
        for oldest, started in self.misses.items():
            break
        if now - <double>started < timeout:
            return False
        oldest.cancel()                 # its done() releases the slot and the client's count
        self.misses.pop(oldest, None)
        self.counters.drops[R_JOSTLED] += 1
        return True

    cdef bint admitted(self, client, double now, double rate):
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

    def _log_miss(self, bytes q, addr, str transport):
        from resolver.daemon.querylog import question
        asked = question(q)
        _miss_log.log(CACHE_MISS, "cache miss from %s over %s: %s",
                      f"{addr[0]}@{addr[1]}" if addr and len(addr) > 1 else "-", transport,
                      " ".join(asked[:3]) if asked else "(unreadable)")

    def _failed(self, bytes q, client, exc):
        log.debug("query from %s failed: %r", client, exc)
        out = _error_response(q, 1 if isinstance(exc, ValueError) else 2)
        if out is None:
            self.counters.drops[R_SHORT] += 1
        return out

    cdef resolved(self, bytes q, client, str transport, send, double t0, d, out,
                  host=None, rewrite=None):
        """The end of a miss: its response sent (none if it was cancelled, or dropped by
        ``rewrite``, the policy's check of the answer) to ``host`` (the client's address),
        its count released."""
        if d is not None:
            self.misses.pop(d, None)
            if not self.misses and self.drained is not None and not self.drained.done():
                self.drained.set_result(None)
        cdef Py_ssize_t n = self.inflight_by_client.get(client, 0) - 1
        if n <= 0:
            self.inflight_by_client.pop(client, None)
        else:
            self.inflight_by_client[client] = n
        cdef Parsed m
        if out is not None and rewrite is not None:
            out = rewrite(out)
        if out is not None:
            if d is None:
                self.answer(q, out, transport, send, t0, host, False)
            else:
                # The query as parsed when it arrived (Drive.miss, shared.Lookup.miss):
                # its type and EDNS payload size are not read from the bytes again.
                m = <Parsed?>((<Drive>d).miss if type(d) is Drive else d.miss)[0]
                self.answer(q, out, transport, send, t0, host, False, m.qtype,
                            m.edns_payload if m.edns_payload > 512 else 512,
                            (<Drive>d).failure if type(d) is Drive
                            else getattr(d, "failure", None))

    cdef answer(self, bytes q, bytes out, str transport, send, double t0, client=None,
                bint hit=False, int qtype=-1, int limit=-1, failure=None):
        """Counts, logs and sends ``out``; ``qtype`` and ``limit`` (the largest UDP answer
        the client takes) are the query's when its parse is at hand, -1 to read them from
        ``q``; ``failure`` a SERVFAIL's (extended error code, reason) when it is known."""
        cdef double seconds
        if transport == "udp":
            out = self.truncate_udp(out, q, limit)
        seconds = monotonic() - t0
        self.counters.answered(transport, out, qtype_of(q) if qtype < 0 else qtype, seconds)
        if self.query_log is not None:
            self.query_log(client, q, out, transport, seconds, hit, failure)
        if type(send) is ClientSend:
            (<ClientSend>send).send(out)
        else:
            send(out)

    cdef bytes truncate_udp(self, bytes out, bytes q, Py_ssize_t limit):
        if len(out) <= 512:
            return out              # every client accepts 512 bytes
        if limit < 0:
            limit = _udp_limit(q)
        limit = min(limit, self.max_udp_size)
        if len(out) > limit:
            self.counters.truncated += 1
            return _truncate(out, limit)
        return out
