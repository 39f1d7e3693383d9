# The Iterator (algorithm.pyx), for the compiled driver (resolver.resolution): its fields and
# its C steps, so that the driver feeds it and reads what it left without Python calls.
from resolver.state cimport LimitValues
from resolver.cache.store cimport RRsetCache, RRsetEntry
from resolver.wire.codec cimport Parsed
from resolver.cache.infra cimport InfraCache


cdef class _Step:
    cdef public str kind
    cdef public list records
    cdef public list authority
    cdef public object next
    cdef public object reason


cdef class Iterator:
    cdef public bytes qname
    cdef public int qtype, qclass
    cdef public object cache, clock, limits, validator, dnssec, stats, result, _gen
    cdef public bint minimise, ipv6, ip4, no_localhost
    cdef public bint harden_glue        # referral glue only from inside the referring zone
    cdef public bint harden_unverified_glue  # glue outside the delegated zone: a last resort
    #: the DNS-rebinding guard (resolver.iterator.private.PrivateAddresses) or None: every
    #: reply is scrubbed by it before it is read
    cdef public object private
    #: the networks no query is sent to (resolver.iterator.networks.Networks, Unbound's
    #: do-not-query-address) or None
    cdef public object unqueried
    cdef public set aggressive
    #: the (name, type, class) keys being resolved, outermost first: a few, searched
    #: without hashing
    cdef public tuple stack
    #: None, or a list: then the final answer's rrsets are kept here to be stored by
    #: ``store_deferred`` once the client has its answer (the driver on corenet's loop).
    cdef public list deferred
    #: what the validator proved of deferred rrsets before they were stored: rrset cache
    #: key -> (rdatas, TTL cap); ``store_deferred`` stores them VALIDATED
    cdef public dict validated
    #: with a validator, for an NS question: the A/AAAA records (and RRSIGs over them) of
    #: the answer's additional section for the servers it names inside the zone, for the
    #: validator to prove and the answer to carry; else None
    cdef public list ns_additional
    cdef public object hints            # resolver.iterator.Hints (``hint_names``, ``hint_addrs``)
    #: a stub zone's servers that listen elsewhere: server -> (address, port), else None
    cdef public dict ports
    cdef public int queries
    #: with a validator: zone (lower-cased) -> (server, question type) of the replies this
    #: question used, so that data found bogus sends the next attempt to the zone's other
    #: servers (``avoid``); None until the first
    cdef public dict origins
    cdef public double t0
    #: a stub zone (wire, lower case) whose configured delegation this question passes
    #: over (stub-first's recursion): it starts above it and follows the parent's referral
    cdef public bytes bypass
    #: the server whose reply answered the client's question (the last link of its chain
    #: asked of an authority), or None: the Result's ``server``
    cdef public object answered
    #: (server, what went wrong) of each query of the question that failed (timeouts,
    #: failures, error rcodes, lame replies), None until the first: the Result's ``errors``
    cdef public list errors
    #: the validator's ``validate`` runs (``_gen``), after the question's ``_lookup``
    cdef bint validating
    # the limits this query reads on every step, as C fields (resolver.state)
    cdef LimitValues lv
    cdef object _rrdata
    cdef InfraCache _infra
    cdef RRsetCache _rrsets
    cdef bytes _ancestors_of            # the name whose ancestors _ancestors_list holds
    cdef list _ancestors_list

    cdef setup(self, bytes qname, int qtype, int qclass, cache, hints, clock, limits,
               bint minimise, bint ipv6, validator, stats, dnssec, bint ip4, bint no_localhost)
    cdef object step(self, event)
    cdef int store_later(self) except -1
    cdef _mark_validated(self, dict proved)
    cdef _log_servfail(self, reason)
    cdef double _now(self) except? -1.0
    cdef RRsetEntry _get(self, bytes name, int rdtype, double now)
    cdef _keep_proofs(self, _Step hit)
    cdef _failed(self, server, what)
    cdef _used(self, bytes lzone, server, int qtype)
    cdef _Step _from_cache(self, bytes name, int qtype, double now)
    cdef list _dname_from_cache(self, bytes name, bytes target, double now)
    cdef list _ancestors(self, bytes name)
    cdef tuple _closest_delegation(self, bytes name)
    cdef list _addresses(self, bytes ns, double now)
    cdef list _parent_glue(self, bytes zone, double now, list out, bytes only=*)
    cdef list _parent_side(self, bytes zone, tuple nsnames, double now)
    cdef bint _usable(self, str addr)
    cdef int _budget(self) except -1
    cdef bint _cache_priming(self, Parsed m, double now)
    cdef _cache_referral(self, Parsed m, bytes zone, bytes child, list ns_recs, double now)
    cdef _cache_answer(self, Parsed m, bytes zone, double now, list in_zone)
    cdef _Step _final(self, Parsed m, bytes zone, bytes name, int qtype, double now)
