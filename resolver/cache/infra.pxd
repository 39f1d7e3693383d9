cdef class ZoneRates:
    cdef public int limit               # queries per second per zone, 0: none
    cdef public int factor              # past it, one in this many let through (0: none)
    cdef public Py_ssize_t max_zones
    cdef public dict counts             # zone (lower-cased wire) -> [second, queries]
    cdef public dict for_domain, below_domain
    cdef public bint enabled
    cdef public long long refused

    cpdef int limit_for(self, bytes lzone)
    cpdef bint allow(self, bytes zone, double now)


cdef class ServerInfo:
    cdef public object srtt             # float, or None until first measured
    cdef public double rttvar
    cdef public double rto
    cdef public int timeouts            # consecutive
    cdef public double holddown_until
    cdef public bint edns               # False once it answered FORMERR to EDNS ...
    cdef public double edns_until       # ... until this clock time
    cdef public dict lame               # zone (lower-cased wire) it is lame for -> until when
    cdef public double down_until       # marked down (consecutive timeouts) until then, or 0
    cdef public double probe_at         # while down: when the next probe may be sent
    cdef public int inflight            # UDP queries to it in flight (the driver counts)
    cdef public double replied_at       # when it last answered (resolver's clock), or 0
    cdef public double silent_since     # when the first unanswered query of the current
    #                                     run of timeouts was sent, or 0: no run
    cdef public list waiters            # questions waiting to ask it (the driver's), or None


cdef class InfraCache:
    cdef public object limits
    cdef public Py_ssize_t max_servers
    cdef public object servers          # OrderedDict: address -> ServerInfo
    cdef public object rng
    cdef double _initial_rto, _min_rto, _max_rto, _holddown, _exploration, _probe_interval
    cdef int _down_timeouts
    cdef public int max_inflight        # per server: past it, the server is passed over
    cdef public long long probes        # queries let through to servers marked down
    cdef public ZoneRates rates         # queries sent per zone and second (ratelimit)
    cdef public double host_ttl         # how long a mark (lame, no EDNS) lasts, seconds
    cdef public dict no_minimise        # zone (lower-cased wire) -> until when: full names
    cdef object _popitem

    cpdef ServerInfo get(self, str addr)
    cdef bint _down(self, ServerInfo s, double now)
    cdef bint _finding_out(self, ServerInfo s)
    cdef bint _busy(self, ServerInfo s)
    cpdef ServerInfo waiting_room(self, list addrs, double now)
    cpdef bint usable(self, str addr, double now)
    cpdef str choose(self, list addrs, double now)
    cpdef record_rtt(self, str addr, double rtt, double now=*)
    cpdef tuple pick(self, list addrs, double now, double left)
    cdef str pick_c(self, list addrs, double now, double left, double* timeout, bint* edns)
    cdef str pick_down_too_c(self, list addrs, double now, double left, double* timeout,
                             bint* edns)
    cpdef bint lame_for(self, str addr, bytes lzone, double now)
    cpdef bint minimise_ok(self, bytes lzone, double now)

