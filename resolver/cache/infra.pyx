# cython: language_level=3
"""Per-server facts and server choice (RFC 6298-style RTT estimates), in C because every
upstream query consults it twice: once to choose the server, once to record the RTT."""
from collections import OrderedDict

from resolver.cache.dicts cimport dict_get
from resolver.wire.names cimport lower
import random


cdef class ServerInfo:
    """What we know of one authority address."""

    def __init__(self, srtt=None, double rttvar=0.0, double rto=0.0, int timeouts=0,
                 double holddown_until=0.0, bint edns=True, lame=None,
                 double edns_until=0.0, double down_until=0.0, double probe_at=0.0):
        self.srtt = None if srtt is None else float(srtt)
        self.rttvar = rttvar
        self.rto = rto
        self.timeouts = timeouts
        self.holddown_until = holddown_until
        self.edns = edns
        self.edns_until = edns_until
        self.lame = {} if lame is None else dict(lame)
        self.down_until = down_until
        self.probe_at = probe_at

    def __repr__(self):
        return (f"ServerInfo(srtt={self.srtt!r}, rttvar={self.rttvar!r}, rto={self.rto!r}, "
                f"timeouts={self.timeouts}, holddown_until={self.holddown_until!r}, "
                f"edns={bool(self.edns)}, edns_until={self.edns_until!r}, "
                f"lame={self.lame!r}, down_until={self.down_until!r}, "
                f"probe_at={self.probe_at!r})")


cdef class InfraCache:
    """Per-server facts and server choice: smoothed RTT, backoff on timeouts, exploration.
    The server table is bounded in entries (least recently added first out).

    An address whose queries time out ``server_down_timeouts`` times in a row, and that
    has been silent for ``max_rto`` (the longest a query waits) since the first of them
    was sent, is marked down until ``infra_host_ttl`` from then: no query is sent to it
    (the question fails fast) but one probe per ``server_probe_interval``, and an answer
    to any query clears the mark. Once the mark expires the address starts afresh (initial
    timeout, no timeouts counted). Between its timeouts and the mark, one query at a time
    goes to it (the one finding out whether it is down) and other questions that need it
    wait for that (``waiting_room``) rather than each sending one more."""

    def __init__(self, limits=None, rng=None):
        if limits is None:
            from resolver.limits import DEFAULT as limits
        self.limits = limits
        self.max_servers = limits.infra_cache_numhosts
        self.servers = OrderedDict()
        self._popitem = self.servers.popitem
        self.rng = rng if rng is not None else random.Random()
        self._initial_rto = limits.initial_rto
        self._min_rto = limits.min_rto
        self._max_rto = limits.max_rto
        self._holddown = limits.server_holddown
        self._exploration = limits.exploration
        self.host_ttl = limits.infra_host_ttl
        self._down_timeouts = limits.server_down_timeouts
        self._probe_interval = limits.server_probe_interval
        self.max_inflight = limits.max_queries_per_server
        self.probes = 0
        self.rates = ZoneRates(limits.ratelimit, limits.ratelimit_factor,
                               max_zones=self.max_servers)
        self.no_minimise = {}

    cpdef ServerInfo get(self, str addr):
        s = dict_get(self.servers, addr)
        if s is None:
            s = ServerInfo(rto=self._initial_rto)
            self.servers[addr] = s
            if len(self.servers) > self.max_servers:
                self._popitem(last=False)
        return <ServerInfo>s

    def info(self, str addr) -> ServerInfo:
        return self.get(addr)

    def rto(self, str addr) -> float:
        return self.get(addr).rto

    cpdef record_rtt(self, str addr, double rtt, double now=0.0):
        """An answer from ``addr`` after ``rtt`` seconds, at ``now`` on the resolver's clock
        (0: not known)."""
        cdef ServerInfo s = self.get(addr)
        if now > 0.0:
            s.replied_at = now
        cdef double srtt, rto
        old = s.srtt
        if old is None:
            srtt = rtt
            s.rttvar = rtt / 2
        else:
            srtt = old
            s.rttvar = 0.75 * s.rttvar + 0.25 * abs(srtt - rtt)
            srtt = 0.875 * srtt + 0.125 * rtt
        s.srtt = srtt
        rto = srtt + 4 * s.rttvar
        s.rto = min(max(rto, self._min_rto), self._max_rto)
        s.timeouts = 0
        s.silent_since = 0.0
        s.holddown_until = 0.0
        s.down_until = 0.0
        s.probe_at = 0.0

    def record_timeout(self, str addr, double now, double waited=-1.0) -> None:
        """A query to ``addr`` went unanswered at ``now`` after waiting ``waited`` seconds
        (its timeout; by default the server's RTO, what a query to it waits)."""
        cdef ServerInfo s = self.get(addr)
        self._down(s, now)              # an expired mark is cleared before counting anew
        if waited < 0.0:
            waited = s.rto
        cdef double sent = now - waited
        if s.silent_since == 0.0 or sent < s.silent_since:
            s.silent_since = sent
        s.timeouts += 1
        s.rto = min(s.rto * 2, self._max_rto)
        if s.timeouts >= 2:
            s.holddown_until = now + self._holddown
        # Down only once it has been silent for as long as a query waits, counted from the
        # first unanswered query of the run (or its last answer, if later): queries in
        # flight together that time out together are one moment's silence (a burst lost,
        # a stall on either side), and a busy server that loses some datagrams answers
        # the others in between.
        if (s.timeouts >= self._down_timeouts and s.down_until == 0.0
                and now - max(s.silent_since, s.replied_at) > self._max_rto):
            s.down_until = now + self.host_ttl
            s.probe_at = now + self._probe_interval

    cdef bint _down(self, ServerInfo s, double now):
        """``s`` is marked down at ``now``; an expired mark is cleared, and the server
        starts afresh."""
        if s.down_until == 0.0:
            return False
        if s.down_until > now:
            return True
        s.down_until = s.probe_at = s.holddown_until = s.silent_since = 0.0
        s.timeouts = 0
        s.rto = self._initial_rto
        return False

    cdef bint _finding_out(self, ServerInfo s):
        """``s``'s last ``server_down_timeouts`` queries or more timed out, and one query in
        flight to it is finding out whether it is down."""
        return s.inflight > 0 and s.timeouts >= self._down_timeouts

    cdef bint _busy(self, ServerInfo s):
        """``s`` takes no more queries now: ``max_queries_per_server`` are in flight to it,
        or it is being found out (``_finding_out``)."""
        return ((self.max_inflight > 0 and s.inflight >= self.max_inflight)
                or self._finding_out(s))

    cpdef ServerInfo waiting_room(self, list addrs, double now):
        """When ``choose`` found no server among ``addrs``: the first that is not marked
        down and is being found out (``_finding_out``), with fewer than
        ``max_queries_per_server`` questions waiting for it (``waiters``, which the caller
        keeps); None when there is none, and the question fails fast."""
        cdef ServerInfo s
        for a in addrs:
            s = self.get(a)
            if s.down_until != 0.0 and self._down(s, now):
                continue
            if self._finding_out(s) and (self.max_inflight <= 0 or s.waiters is None
                                         or len(s.waiters) < self.max_inflight):
                return s
        return None

    def is_down(self, str addr, double now) -> bool:
        """``addr`` is marked down at ``now`` (see the class docstring)."""
        s = dict_get(self.servers, addr)
        return s is not None and self._down(<ServerInfo>s, now)

    cpdef bint usable(self, str addr, double now):
        """A query may go to ``addr`` at ``now``: it is not marked down, or it is and its
        probe is due (which this takes: the next is ``server_probe_interval`` later)."""
        s = dict_get(self.servers, addr)
        if s is None or not self._down(<ServerInfo>s, now):
            return True
        if (<ServerInfo>s).probe_at > now:
            return False
        (<ServerInfo>s).probe_at = now + self._probe_interval
        self.probes += 1
        return True

    def record_failure(self, str addr, double now) -> None:
        """A server that answered garbage or refused: avoided for a while like a dead one."""
        self.get(addr).holddown_until = now + self._holddown / 4

    def record_unreachable(self, str addr, double now) -> None:
        """This host has no route to the server: held down as a dead server is, and ranked
        behind every measured one afterwards (a never-measured address would otherwise be
        tried first again as soon as its hold-down ends)."""
        cdef ServerInfo s = self.get(addr)
        s.timeouts += 1
        s.rto = self._max_rto
        s.holddown_until = now + self._holddown

    def mark_lame(self, str addr, bytes zone, double now) -> None:
        """``addr`` does not serve ``zone`` (it disclaimed it or referred upwards): passed
        over for that zone until ``host_ttl`` from ``now``, unless no other server is left."""
        self.get(addr).lame[lower(zone)] = now + self.host_ttl

    cpdef bint lame_for(self, str addr, bytes lzone, double now):
        """``addr`` is marked lame for the lower-cased zone ``lzone`` at ``now`` (an expired
        mark is dropped)."""
        s = dict_get(self.servers, addr)
        return s is not None and _marked((<ServerInfo>s).lame, lzone, now)

    def is_lame(self, str addr, bytes zone, double now) -> bool:
        return self.lame_for(addr, lower(zone), now)

    def stop_minimising(self, bytes zone, double now) -> None:
        """The servers of ``zone`` mishandle minimised queries (a probe failed where the
        full name did not need to): names in it are asked in full until ``host_ttl`` from
        ``now``, rather than costing a failed probe each time. Bounded like the server
        table."""
        cdef dict marks = self.no_minimise
        cdef bytes key = lower(zone)
        marks.pop(key, None)
        marks[key] = now + self.host_ttl
        if len(marks) > self.max_servers:
            del marks[next(iter(marks))]

    cpdef bint minimise_ok(self, bytes lzone, double now):
        """Minimised queries may be sent to the servers of the lower-cased zone ``lzone``."""
        return not _marked(self.no_minimise, lzone, now)

    def set_edns(self, str addr, bint ok, double now) -> None:
        """Whether ``addr`` takes EDNS; a refusal is remembered until ``host_ttl`` from
        ``now``, then EDNS is tried again."""
        cdef ServerInfo s = self.get(addr)
        s.edns = ok
        s.edns_until = 0.0 if ok else now + self.host_ttl

    def edns(self, str addr, double now) -> bool:
        s = dict_get(self.servers, addr)
        return True if s is None else _edns(<ServerInfo>s, now)

    cpdef str choose(self, list addrs, double now):
        """The server to ask: the first never measured, else the lowest smoothed RTT among
        those not held down (all of them if every one is), or a random one of those with
        probability ``exploration``. Servers marked down or busy (``_busy``) are left
        out; when every one is, the first marked down whose probe is due (and not busy) is
        the one, else None: nothing is to be sent."""
        cdef Py_ssize_t n = len(addrs)
        cdef ServerInfo s
        cdef list up = None             # made at the first server down: those before it
        cdef Py_ssize_t i
        for i in range(n):
            s = self.get(addrs[i])
            if (s.down_until != 0.0 and self._down(s, now)) or self._busy(s):
                if up is None:
                    up = addrs[:i]
            elif up is not None:
                up.append(addrs[i])
        if up is not None:              # some are down
            if not up:
                for a in addrs:
                    s = self.get(a)
                    if not self._busy(s) and self.usable(a, now):
                        return a
                return None
            addrs, n = up, len(up)
        if n == 1:
            return addrs[0]         # nothing to choose (and nothing to explore)
        cdef list alive = [a for a in addrs if self.get(a).holddown_until <= now]
        if not alive:
            alive = list(addrs)
        cdef str best = None
        cdef double best_cost = 0.0, c
        for a in alive:
            s = <ServerInfo>self.servers[a]
            if s.srtt is None and not s.timeouts:
                # A server never measured is tried first, in the order given (as BIND does,
                # and as a stub asks its nameservers): otherwise one known, merely adequate
                # server would keep every faster unknown one from being learned. Asking it
                # is already exploring, so no random pick overrides it.
                return a
            c = s.rto if s.timeouts else <double>s.srtt
            if best is None or c < best_cost:
                best, best_cost = a, c
        if len(alive) > 1 and self._exploration > 0 and self.rng.random() < self._exploration:
            return self.rng.choice(alive)
        return best

    cpdef tuple pick(self, list addrs, double now, double left):
        """For one upstream query: the server to ask, its timeout (its RTO, within ``left``,
        the time the resolution has left, and at least 10 ms) and whether to use EDNS; the
        server is None when every one is marked down and none is due a probe."""
        cdef double timeout
        cdef bint edns
        server = self.pick_c(addrs, now, left, &timeout, &edns)
        return server, timeout, edns

    cdef str pick_c(self, list addrs, double now, double left, double* timeout, bint* edns):
        """``pick`` for the compiled driver: the server, with its timeout and EDNS flag
        written to ``timeout`` and ``edns``."""
        cdef str server = self.choose(addrs, now)
        if server is None:
            return None
        cdef ServerInfo s = self.get(server)
        timeout[0] = min(s.rto, max(0.01, left))
        edns[0] = _edns(s, now)
        return server

    cdef str pick_down_too_c(self, list addrs, double now, double left, double* timeout,
                             bint* edns):
        """``pick_c`` for a question that counts its tries per server (resolv.conf's
        ``options attempts:N``, as glibc: every call asks each server N times): when
        ``pick_c`` finds none, the first of ``addrs`` below ``max_queries_per_server`` in
        flight, marked down or not (no probe is taken), else None."""
        cdef str server = self.pick_c(addrs, now, left, timeout, edns)
        if server is not None:
            return server
        cdef ServerInfo s
        for a in addrs:
            s = self.get(a)
            if self.max_inflight <= 0 or s.inflight < self.max_inflight:
                timeout[0] = min(s.rto, max(0.01, left))
                edns[0] = _edns(s, now)
                return a
        return None


cdef inline bint _marked(dict marks, bytes key, double now):
    """``marks`` (key -> until when) holds an unexpired mark for ``key``; an expired one is
    dropped."""
    if not marks:
        return False
    until = dict_get(marks, key)
    if until is None:
        return False
    if <double>until > now:
        return True
    del marks[key]
    return False


cdef inline bint _edns(ServerInfo s, double now):
    """The server's EDNS mark, cleared once it has expired."""
    if not s.edns and s.edns_until <= now:
        s.edns = True
    return s.edns


cdef class ZoneRates:
    """Queries sent upstream per zone and second (Unbound's ``ratelimit``): past a zone's
    limit in one second, only one query in ``factor`` is let through (none with factor 0)
    and the others are refused, so a flood of random names under one zone cannot take
    the resolver's whole upstream budget. ``for_domain`` sets a zone's own limit,
    ``below_domain`` the limit of every zone under a domain (the deepest such domain's; a
    zone's own entry wins); 0 means no limit for it. The table of zones counted is bounded
    in entries, the oldest dropped first."""

    def __init__(self, int limit=0, int factor=10, for_domain=None, below_domain=None,
                 Py_ssize_t max_zones=10000):
        self.limit = limit
        self.factor = factor
        self.max_zones = max_zones
        self.counts = {}
        self.refused = 0
        self.configure(for_domain, below_domain)

    def configure(self, for_domain=None, below_domain=None):
        """Sets the per-domain limits: iterables of (domain wire name, queries per second)."""
        self.for_domain = {lower(d): int(n) for d, n in (for_domain or ())}
        self.below_domain = {lower(d): int(n) for d, n in (below_domain or ())}
        self.enabled = self.limit > 0 or any(self.for_domain.values()) or any(
            self.below_domain.values())

    cpdef int limit_for(self, bytes lzone):
        """The limit of the lower-cased zone ``lzone``, 0 for none."""
        if not self.for_domain and not self.below_domain:
            return self.limit
        own = dict_get(self.for_domain, lzone) if self.for_domain else None
        if own is not None:
            return <int>own
        cdef Py_ssize_t i = 0, n = len(lzone)
        cdef const unsigned char* p = lzone
        if self.below_domain:
            while i < n and p[i] != 0:          # strictly below: from the parent up
                i += 1 + p[i]
                found = dict_get(self.below_domain, lzone[i:])
                if found is not None:
                    return <int>found
        return self.limit

    cpdef bint allow(self, bytes zone, double now):
        """Whether one more query to ``zone``'s servers may be sent at ``now`` (counted)."""
        cdef bytes lzone = lower(zone)
        cdef int limit = self.limit_for(lzone)
        if limit <= 0:
            return True
        cdef long long second = <long long>now
        cdef list c = dict_get(self.counts, lzone)
        if c is None:
            c = [second, 0]
            self.counts[lzone] = c
            if len(self.counts) > self.max_zones:
                del self.counts[next(iter(self.counts))]
        elif <long long>c[0] != second:
            c[0], c[1] = second, 0
        cdef long long n = <long long>c[1] + 1
        c[1] = n
        if n <= limit:
            return True
        if self.factor > 0 and (n - limit) % self.factor == 0:
            return True
        self.refused += 1
        return False

    def rate(self, bytes zone, double now) -> int:
        """Queries counted for ``zone`` in the second of ``now``."""
        c = self.counts.get(lower(zone))
        return 0 if c is None or c[0] != <long long>now else c[1]
