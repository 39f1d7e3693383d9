# The resolver's state read on every miss, as C fields (state.pyx says why).

from resolver.iterator.events cimport _Event


cdef class Stats(_Event):
    cdef public long long client_queries, upstream_queries, upstream_tcp, upstream_timeouts
    cdef public long long upstream_failures, dropped_malformed, dropped_mismatched
    cdef public long long cache_hits, cache_misses, cache_evictions, stale_answers
    cdef public long long prefetches, coalesced, servfail, primings, priming_failures
    cdef public long long upstream_unreachable, no_descriptors
    cdef public long long dnssec_secure, dnssec_insecure, dnssec_bogus, dnssec_indeterminate
    cdef public long long local_answers, forwarded, stubbed      # configured zones
    cdef public long long query_parses, cache_lookups        # per client query, see STATS_FIELDS
    cdef public long long upstream_joined, upstream_skipped_down, zone_ratelimited
    cdef public long long upstream_capped, upstream_udp, caps_fallbacks

    cdef void count_security(self, int security)


cdef class LimitValues:
    cdef readonly object limits
    cdef readonly int max_referrals, max_cname_chain, max_ns_names_per_delegation
    cdef readonly int max_dependency_depth, max_upstream_queries, max_minimise_count
    cdef readonly int max_upstream_sockets
    cdef readonly int max_servers_per_zone, max_tries_per_server, max_pointer_jumps
    cdef readonly int max_records_per_section, max_query_records, prefetch_min_hits
    cdef readonly int stale_answer_ttl
    cdef readonly double max_query_time, prefetch_fraction
    # the cache's clamps (resolver.cache.store)
    cdef readonly long long min_ttl, max_ttl, max_negative_ttl, min_negative_ttl, failure_ttl
    cdef readonly long long unwanted_reply_threshold
    cdef readonly double stale_window


cdef LimitValues limit_values(object limits)
cdef double read_clock(object clock) except? -1.0


cdef class ResolverCore:
    cdef public object hints, cache, clock, validator, dnssec
    cdef public object message_table      # the message cache's table (cache.messages.table)
    cdef public object hint_index         # resolver.iterator.Hints of ``hints``, made on use
    cdef public object hint_index_source  # the ``hints`` that ``hint_index`` was made from
    # the ``local_zones`` and ``zones`` properties, and what the miss path reads of them
    # (set with them: both are made whole before they are installed, and replaced, never
    # changed, afterwards)
    cdef object _local_zones              # resolver.zones.LocalZones, or None
    cdef tuple local_tails                # its ``tails`` (None without local zones)
    cdef bint local_views                 # it answers through clients' views (``clients``)
    cdef object _zones                    # resolver.zones.Zones (forward, stub, local), or None
    cdef bint zone_cuts                   # it has forward or stub zones (``cuts``)
    cdef public object forward            # the forwarders' addresses (Resolver(forward=)), or None
    cdef public dict resolutions          # resolver.resolution.Resolution in flight, by question
    # upstream UDP queries in flight, by (address, port, lower-cased name, type, class and
    # flags as one number): the resolver.resolution._SharedQuery an identical query joins
    cdef readonly dict shared_queries
    cdef Stats counts                     # the ``stats`` property; never None
    cdef public int port
    cdef public bint minimise, ipv6
    cdef bint hint_index_ipv6             # the ``ipv6`` that ``hint_index`` was made for
    cdef public bint do_ip4, no_localhost     # do-ip4, do-not-query-localhost
    cdef public bint harden_glue          # referral glue only from inside the referring zone
    cdef public bint harden_unverified_glue   # glue outside the delegated zone: a last resort
    cdef public bint ede                  # a failure's answer says why (RFC 8914), or not
    cdef public bint ede_serve_expired    # with ede: an expired answer says so (EDE 3)
    cdef readonly LimitValues lv
    cdef public long long unwanted_replies  # since the caches were last cleared for them
    cdef public object shared             # resolver.cache.shared.SharedCache, or None
    cdef public object dns64              # resolver.dns64.Dns64 (DNS64 on), or None
    cdef public object private            # resolver.iterator.private's guard, or None
    cdef public object unqueried          # networks never queried (do-not-query-address)
    cdef public object source             # upstream sockets' source: an address, a tuple, None
    cdef public int val_log_level         # each failed validation logged: 0 no, 1, 2 with why
    cdef public bint caps_for_id          # use-caps-for-id: UDP queries' names in random case
    cdef frozenset caps_exempt_wire       # caps_exempt's domains, lower-cased wire
    cdef tuple caps_exempt_names          # and as given

    cdef double now(self) except? -1.0
    cpdef int unwanted_reply(self) except -1
