# cython: language_level=3
"""The resolver's state that every cache miss reads, as C fields.

``Resolver`` (resolver.api) subclasses :class:`ResolverCore`, and the compiled miss path
(``resolver.response``, ``resolver.resolution``) types its resolver as one: a field read
there is a load, where an attribute of a Python object is a type and a dict look-up (some
250 look-ups per miss, a sixth of its instructions). For the same reason the counters
(:class:`Stats`) are C integers, and the limits a miss reads are copied out of the frozen
``Limits`` once per ``Limits`` object (:class:`LimitValues`).
"""

import logging
import time

from resolver.iterator.events cimport _Event
from resolver.cache.answer cimport monotonic

cdef object _system_clock = time.monotonic
log = logging.getLogger("resolver.resolution")


cdef double read_clock(object clock) except? -1.0:
    """``clock()``, read in C when the clock is ``time.monotonic`` (the same clock): the
    resolver's clock is injectable (tests drive it), the system's is read without a call."""
    if clock is _system_clock:
        return monotonic()
    return clock()

STATS_FIELDS = ("client_queries", "upstream_queries", "upstream_tcp", "upstream_timeouts",
                "upstream_failures", "dropped_malformed", "dropped_mismatched", "cache_hits",
                "cache_misses", "cache_evictions", "stale_answers", "prefetches", "coalesced",
                "servfail", "primings", "priming_failures", "upstream_unreachable",
                "no_descriptors", "dnssec_secure", "dnssec_insecure", "dnssec_bogus",
                "dnssec_indeterminate",
                # configured zones: questions answered by a local zone, resolutions sent to a
                # forward zone's servers, resolutions started at a stub zone's servers
                "local_answers", "forwarded", "stubbed",
                # upstream UDP queries not sent: an identical one was in flight and was joined
                "upstream_joined",
                # client queries read (the question for the cache key, the whole query for a
                # miss) and message-cache look-ups made for them: a miss costs two and one
                "query_parses", "cache_lookups",
                # queries not sent: every server asked was marked down (consecutive
                # timeouts) or had its most queries in flight
                "upstream_skipped_down",
                # questions ended because their zone's servers had their queries for the
                # second (ratelimit)
                "zone_ratelimited",
                # questions ended because the upstream sockets in flight were at their cap
                # (max_upstream_sockets)
                "upstream_capped",
                # queries sent to authorities over UDP (Unbound's num.query.udpout)
                "upstream_udp",
                # replies whose question came back in another case than the query's random
                # one (use-caps-for-id): the question asked again without it
                "caps_fallbacks")


cdef class Stats(_Event):
    """Counters for the daemon's metrics (read them, never reset them). Keyword construction,
    ``repr`` and ``==`` as the dataclass this was (the events' base class gives the last two).
    ``cache_evictions`` is the resolver's caches' own count, filled in each time
    ``Resolver.stats`` is read."""

    _fields = STATS_FIELDS

    def __init__(self, **values):
        for name, value in values.items():
            if name not in STATS_FIELDS:
                raise TypeError(f"Stats has no counter {name!r}")
            setattr(self, name, value)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in STATS_FIELDS}

    cdef void count_security(self, int security):
        """One validated resolution's outcome (resolver.iterator's UNCHECKED, INSECURE,
        SECURE, BOGUS); UNCHECKED under validation is RFC 4035's indeterminate."""
        if security == 2:
            self.dnssec_secure += 1
        elif security == 1:
            self.dnssec_insecure += 1
        elif security == 3:
            self.dnssec_bogus += 1
        else:
            self.dnssec_indeterminate += 1


cdef class LimitValues:
    """The numeric limits a miss reads, copied from one (frozen) ``Limits``."""

    def __init__(self, limits):
        self.limits = limits
        self.max_referrals = limits.max_referrals
        self.max_cname_chain = limits.max_cname_chain
        self.max_ns_names_per_delegation = limits.max_ns_names_per_delegation
        self.max_dependency_depth = limits.max_dependency_depth
        self.max_upstream_queries = limits.max_upstream_queries
        self.max_upstream_sockets = limits.max_upstream_sockets
        self.max_minimise_count = limits.max_minimise_count
        self.max_servers_per_zone = limits.max_servers_per_zone
        self.max_tries_per_server = limits.max_tries_per_server
        self.max_pointer_jumps = limits.max_pointer_jumps
        self.max_records_per_section = limits.max_records_per_section
        self.max_query_records = limits.max_query_records
        self.prefetch_min_hits = limits.prefetch_min_hits
        self.stale_answer_ttl = limits.stale_answer_ttl
        self.max_query_time = limits.max_query_time
        self.prefetch_fraction = limits.prefetch_fraction
        self.min_ttl = limits.min_ttl
        self.max_ttl = limits.max_ttl
        self.max_negative_ttl = limits.max_negative_ttl
        self.min_negative_ttl = limits.min_negative_ttl
        self.failure_ttl = limits.failure_ttl
        self.stale_window = limits.stale_window
        self.unwanted_reply_threshold = limits.unwanted_reply_threshold


cdef object _last_limits = None
cdef LimitValues _last_values = None


cdef LimitValues limit_values(object limits):
    """``LimitValues(limits)``, kept for the last ``Limits`` seen: a process runs with one
    (or a few, one after the other), and a frozen one cannot change under its copy."""
    global _last_limits, _last_values
    if limits is not _last_limits:
        _last_values = LimitValues(limits)
        _last_limits = limits
    return _last_values


cdef class ResolverCore:
    """The fields of ``Resolver`` its compiled miss path reads (see the module's docstring).
    ``limits`` is a property: setting it refreshes the copied values (``lv``)."""

    def __cinit__(self, *args, **kwargs):      # a Python subclass's arguments, ignored
        self.resolutions = {}
        self.shared_queries = {}
        self.counts = Stats()
        self.do_ip4 = True
        self.no_localhost = True
        self.harden_glue = True
        self.harden_unverified_glue = False
        self.ede = True
        self.ede_serve_expired = False
        self.caps_exempt_wire = frozenset()
        self.caps_exempt_names = ()

    @property
    def caps_exempt(self) -> tuple:
        """Domains (text) at and below which upstream queries keep their name's case when
        ``caps_for_id`` is on (Unbound's ``caps-exempt``): for servers known not to echo
        it. Set from any iterable of names."""
        return self.caps_exempt_names

    @caps_exempt.setter
    def caps_exempt(self, value) -> None:
        import dns.name

        names = tuple(dns.name.from_text(n) if isinstance(n, str) else n for n in value)
        self.caps_exempt_wire = frozenset(n.canonicalize().to_wire() for n in names)
        self.caps_exempt_names = tuple(n.to_text() for n in names)

    cdef double now(self) except? -1.0:
        return read_clock(self.clock)

    cpdef int unwanted_reply(self) except -1:
        """A reply nobody asked for came to an upstream query's port: past
        ``limits.unwanted_reply_threshold`` of them (0: never) the message and rrset caches,
        which a forger's lucky guess may have poisoned, are cleared, as Unbound does (with
        its log line), and the count starts again."""
        cdef long long most = self.lv.unwanted_reply_threshold
        if most <= 0:
            return 0
        self.unwanted_replies += 1
        if self.unwanted_replies >= most:
            self.unwanted_replies = 0
            log.warning("unwanted reply total reached threshold (%d) you may be under "
                        "attack. defensive action: clearing the cache", most)
            if self.cache is not None:
                self.cache.messages.lru.clear()
                self.cache.rrsets.lru.clear()
        return 0

    @property
    def stats(self):
        # cache_evictions is not counted but read from the caches here: evictions happen in
        # any store (messages, rrsets, the rrsets a Drive stores after its answer has left),
        # and a copy taken at one of them lags those after it.
        cache = self.cache
        if cache is not None:
            self.counts.cache_evictions = cache.evictions
        return self.counts

    @stats.setter
    def stats(self, value):
        # The miss path updates the counters as C fields without a check, so anything but a
        # Stats (None included) is refused here.
        if not isinstance(value, Stats):
            raise TypeError(f"stats must be a resolver Stats, not {type(value).__name__}")
        self.counts = value

    @property
    def local_zones(self):
        """The local zones (``resolver.zones.LocalZones``), or None."""
        return self._local_zones

    @local_zones.setter
    def local_zones(self, zones):
        self._local_zones = zones
        self.local_tails = None if zones is None else tuple(zones.tails)
        self.local_views = zones is not None and zones.clients is not None

    @property
    def zones(self):
        """The configured zones (``resolver.zones.Zones``: forward, stub, local), or None."""
        return self._zones

    @zones.setter
    def zones(self, zones):
        self._zones = zones
        self.zone_cuts = zones is not None and bool(zones.cuts)

    @property
    def limits(self):
        return None if self.lv is None else self.lv.limits

    @limits.setter
    def limits(self, limits):
        self.lv = limit_values(limits)
