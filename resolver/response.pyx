# cython: language_level=3
"""The query rules, compiled: what a client query gets, as one :class:`Outcome`, for the
daemon and the library alike.

- ``cached``: a fresh cache entry answers (HIT), with the prefetch decision
  (``resolver.cache.answer.prefetch_due``); ``lookup`` is the library's first step: a local
  zone (LOCAL), the cache (HIT) or MISS;
- ``begin`` reads a daemon query (or answers it with an error, or from a local zone);
- ``resolved`` turns the resolution's Result into the outcome: BOGUS, STALE, FAILURE, or
  HIT once a NOERROR or NXDOMAIN answer is stored.

The daemon turns an outcome into response bytes (``finish``, ``cached``); the library into
dnspython objects (``resolver.api.Resolver.resolve``). They are compiled because they run on
every miss, which a resolver woken on cold caches pays for on every query.
"""
cimport cython
from resolver import iterator as it
from resolver.state cimport LimitValues, ResolverCore, Stats
from resolver.iterator.events cimport Result
from resolver.wire.codec cimport (MsgEntry, Parsed, cache_key, is_subdomain, opt_at,
                                  parse_response, response_wire, under_any)
from resolver.cache.store cimport Cache, RRsetEntry, rrset_get, store_message
from resolver.cache.ranks import VALIDATED
from resolver.cache.dicts cimport dict_get
from resolver.iterator.replies cimport without_types
from resolver.dnssec import with_ede
from resolver.limits import EDNS_BUFFER_SIZE
from resolver.wire.codec import build_response
from resolver.zones import DROP, Alias
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy
from resolver.cache.answer cimport (VARIANT_CD, VARIANT_DO, VARIANT_EDNS, VARIANT_SHADOWED,
                                    answer_from_entry, parse_query, prefetch_due,
                                    variant_bits)
from resolver.wire.names cimport lower, skip_name, u16
from resolver.wire.codec import WireError

cdef list _NO_RECORDS = []         # an empty section, only read
cdef frozenset _SIG = frozenset((it.RRSIG,))
cdef frozenset _DNSSEC = frozenset((it.RRSIG, it.NSEC, it.NSEC3))
cdef int NOERROR = it.NOERROR, NXDOMAIN = it.NXDOMAIN, SERVFAIL = it.SERVFAIL
cdef int RRSIG = it.RRSIG, SECURE = it.SECURE, ANY = 255
cdef int NS = it.NS, A = it.A, AAAA = it.AAAA
cdef int _VALIDATED = VALIDATED
cdef int _BOGUS = it.BOGUS
EDE_STALE_ANSWER = 3               # RFC 8914 4.4

# Outcome kinds for Python callers
OUTCOME_HIT, OUTCOME_STALE, OUTCOME_LOCAL = HIT, STALE, LOCAL
OUTCOME_BOGUS, OUTCOME_FAILURE, OUTCOME_MISS = BOGUS, FAILURE, MISS
# the query variant bits a message cache key ends with, for Python callers
KEY_VARIANT_DO, KEY_VARIANT_CD = VARIANT_DO, VARIANT_CD


@cython.freelist(64)
cdef class Outcome:
    """What a query gets (``kind``: HIT, STALE, LOCAL, BOGUS, FAILURE or MISS), with what
    answers it: ``entry`` (HIT, STALE), ``local`` (LOCAL), ``result`` (BOGUS, FAILURE) and
    the message cache ``key`` asked (not for LOCAL)."""

    # fields: response.pxd

    @property
    def rcode(self):
        """The response code the outcome answers with."""
        if self.kind == HIT or self.kind == STALE:
            return self.entry.rcode
        if self.kind == LOCAL:
            return None if self.local is DROP or type(self.local) is Alias else self.local[0]
        if self.kind == BOGUS:
            return SERVFAIL
        return self.result.rcode if self.result is not None else None

    @property
    def ede(self):
        """BOGUS, FAILURE: the RFC 8914 INFO-CODE of the failure, or None."""
        return self.result.ede if self.result is not None else None

    @property
    def reason(self):
        """BOGUS, FAILURE: the EXTRA-TEXT, why the resolution failed (or None)."""
        return self.result.reason if self.result is not None else None

    def __repr__(self):
        return f"<Outcome {_KIND_NAMES.get(self.kind)} rcode={self.rcode} ede={self.ede}>"


cdef dict _KIND_NAMES = {HIT: "hit", STALE: "stale", LOCAL: "local", BOGUS: "bogus",
                         FAILURE: "failure", MISS: "miss"}


cdef inline Outcome _outcome(int kind, MsgEntry entry, Result result, bytes key,
                             object local=None):
    cdef Outcome o = Outcome.__new__(Outcome)
    o.kind, o.entry, o.result, o.key, o.local = kind, entry, result, key, local
    return o


cdef MsgEntry _hit(ResolverCore r, bytes key, double now):
    """The fresh entry under ``key`` (a hit, counted, its refresh started when it is due for
    prefetch), or None."""
    r.counts.cache_lookups += 1
    cdef MsgEntry e = dict_get(r.message_table, key)
    if e is None or e.expires < now:
        return None
    e.referenced = True             # spared once by the LRU's eviction
    e.hits += 1
    r.counts.cache_hits += 1
    cdef LimitValues lim = r.lv
    if prefetch_due(e, now, lim.prefetch_fraction, lim.prefetch_min_hits):
        r.refresh(key, e)
    return e


cpdef object local_data(ResolverCore r, bytes qname, int qtype, int qclass, client=None):
    """What the local zones say of the question (counted when they hold it): None (resolve
    it), ``DROP`` or (rcode, answer records, authority records). ``client``: the asker's
    socket address (``inform`` zones log it; with views, its view answers first)."""
    zones = r._local_zones
    if zones is None or qclass != 1:
        return None
    if client is not None and r.local_views:
        # views: the client's first (LocalZones.answer); a question without a client (the
        # library's) reads no attribute more than before
        found = zones.answer(qname, qtype, client)
    elif not under_any(qname, r.local_tails):
        return None
    else:
        found = zones.lookup(qname, qtype, client)
    if found is not None:
        r.counts.local_answers += 1
    return found


cpdef bytes local_wire(bytes q, tuple found, bytes question, bint edns, bint do):
    """The response to the client query ``q`` (its ``question`` section as sent) from a
    local zone's (rcode, answer, authority): QR, AA, RA; RD and CD as the client sent them."""
    rcode, answer, authority = found
    flags = 0x8000 | 0x0400 | 0x0080 | (q[2] & 0x01) << 8 | (q[3] & 0x10)
    return build_response(int.from_bytes(q[:2], "big"), flags, question, answer, authority,
                          [], edns=edns, do=do, rcode=rcode)


cpdef object cached(ResolverCore r, bytes q):
    """``Resolver.resolve_cached``: the response to a wire query if the cache has a fresh
    one (HIT), else None. An entry due for prefetch is answered and refreshed in the
    background."""
    r.counts.query_parses += 1
    parsed = parse_query(q)
    if parsed is None:
        return None
    key, qend = parsed
    cdef double now = r.now()
    cdef MsgEntry e = _hit(r, key, now)
    if e is None:
        return None
    r.counts.client_queries += 1
    return answer_from_entry(e, q, qend, now)


cpdef Outcome lookup(ResolverCore r, bytes qname, int qtype, int qclass, bint edns=False,
                     bint do=False):
    """The library's first step for a question (asked without CD; with EDNS and DO as
    ``edns`` and ``do`` say: with DO the answer keeps its signatures): LOCAL, HIT or
    MISS."""
    r.counts.client_queries += 1
    local = local_data(r, qname, qtype, qclass)
    if local is not None:
        return _outcome(LOCAL, None, None, None, local)
    key = cache_key(qname, qtype, qclass, variant_bits(edns or do, do, False))
    cdef MsgEntry e = _hit(r, key, r.now())
    if e is not None:
        return _outcome(HIT, e, None, key)
    r.counts.cache_misses += 1
    return _outcome(MISS, None, None, key)


cpdef Outcome resolved(ResolverCore r, bytes key, bytes question, int qtype, Result res):
    """The outcome of the resolution ``res`` for the query variant of the message cache key
    ``key`` (``question``: its question section): BOGUS unless the query set CD; on SERVFAIL
    the stale entry if one is in its window (STALE), else FAILURE; a NOERROR or NXDOMAIN
    answer is stored (HIT); any other rcode is a FAILURE."""
    cdef Stats stats = r.counts
    cdef unsigned char variant = key[len(key) - 1]
    cdef int rcode = res.rcode
    if res.security == _BOGUS and not variant & VARIANT_CD:
        stats.servfail += 1
        return _outcome(BOGUS, None, res, key)
    cdef double now = r.now()
    cdef MsgEntry stale
    if rcode == SERVFAIL:
        stats.cache_lookups += 1
        stale = _stale_entry(r, key, now)
        if stale is not None:
            stats.stale_answers += 1
            return _outcome(STALE, stale, res, key)
        stats.servfail += 1
    if rcode == NOERROR or rcode == NXDOMAIN:
        return _outcome(HIT, store_keyed(<Cache?>r.cache, key, res, question, qtype, now),
                        None, key)
    return _outcome(FAILURE, None, res, key)


cpdef object hit_or_begin(ResolverCore r, bytes q, client=None):
    """The cached response to ``q``, or ``begin``'s answer: an error response, a local
    zone's answer, None (a local zone drops it) or the miss."""
    out = cached(r, q)
    return out if out is not None else begin(r, q, None, client)


cdef int header_rule(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """The rules a client query's header decides, written once: the daemon's front door
    (``resolver.daemon.admission``) and ``begin`` act on the answer."""
    if n < 12:
        return HEADER_SHORT
    if p[2] & 0x80:
        return HEADER_RESPONSE
    if p[2] & 0x02:
        return HEADER_TRUNCATED
    cdef int opcode = (p[2] >> 3) & 0x0F
    if opcode != 0 and opcode != 4:
        return HEADER_NOT_QUERY
    # one question, no answer (a NOTIFY may carry one: the SOA), no authority and at most
    # one additional record (the OPT): Unbound's counts, checked before anything else
    if (u16(p + 4) != 1 or (u16(p + 6) != 0 and (u16(p + 6) != 1 or opcode != 4))
            or u16(p + 8) != 0 or u16(p + 10) > 1):
        return HEADER_COUNTS
    if opcode == 4:
        return HEADER_NOTIFY
    if not p[2] & 0x01:
        return HEADER_NO_RECURSION
    return HEADER_QUERY


cpdef object begin(ResolverCore r, bytes q, bytes key=None, client=None):
    """An error response now (FORMERR, NOTIMP, BADVERS, REFUSED...), a local zone's answer
    (None when it drops the query: ``resolver.zones``), or what ``finish`` needs once the
    question is resolved: (parsed query, EDNS, DO, CD, message cache key or None). ``key``:
    the query's message cache key when the caller has it (the daemon's hit path);
    ``client``: the asker's address, for ``inform`` local zones. Raises WireError for a
    query shorter than a header."""
    cdef int rule = header_rule(<const unsigned char*>PyBytes_AS_STRING(q),
                                PyBytes_GET_SIZE(q))
    if rule == HEADER_SHORT:
        raise WireError("query shorter than a DNS header")
    cdef Stats stats = r.counts
    cdef Parsed m
    stats.client_queries += 1
    if rule == HEADER_NOTIFY:
        return error(q, 5)
    if rule != HEADER_QUERY and rule != HEADER_NO_RECURSION:
        return header_error(q, rule)
    stats.query_parses += 1
    try:
        m = parse_response(q, r.lv.max_pointer_jumps, r.lv.max_query_records, False)
    except WireError:
        return query_error(q, 1)
    if m.qname is None or _compressed(m.question):
        return query_error(q, 1)             # no question, or a pointer in it
    refused = type_refusal(q, m.qtype)
    if refused is not None:
        return refused
    cdef bint edns = m.edns, do = (m.edns_flags & 0x8000) != 0
    if edns and (m.edns_flags >> 16) & 0xFF:
        return error(q, 16)                  # BADVERS
    cdef bint cd = (m.flags & 0x0010) != 0
    local = local_data(r, m.qname, m.qtype, m.qclass, client)
    if local is not None and type(local) is not Alias:
        return None if local is DROP else local_wire(q, local, m.question, edns, do)
    cdef unsigned int qt = m.qtype
    if m.qclass != 1:
        out = chaos_wire(r, q, m, edns, do)
        return out if out is not None else error(q, 5)  # only class IN is resolved
    if qt == 255 and (<object>r).deny_any:
        return error(q, 4)                   # NOTIMP, as Unbound's deny-any (RFC 8482)
    if local is not None:
        return alias_miss(r, q, m, local, edns, do, cd)
    stats.cache_misses += 1                  # a resolution: Unbound's num.cachemiss
    return (m, edns, do, cd, key, None)


cdef int type_rule(unsigned int qtype) noexcept nogil:
    """The rcode a question of type ``qtype`` gets before anything else looks at it, local
    zones included, as from Unbound: REFUSED (5) for a zone transfer (AXFR, IXFR: not a
    resolver's job), FORMERR (1) for OPT and the meta types (TKEY, TSIG, MAILB, MAILA, 128
    to 248: no data to look up; ANY, 255, is resolved); 0 for the others."""
    if qtype == 251 or qtype == 252:
        return 5
    if qtype == 41 or 128 <= qtype <= 254:
        return 1
    return 0


cpdef bytes type_refusal(bytes q, unsigned int qtype):
    """The error a question of type ``qtype`` (of the query ``q``) gets by ``type_rule``
    (``query_error``, the question kept), or None."""
    cdef int rcode = type_rule(qtype)
    return query_error(q, rcode, True) if rcode else None


cdef object alias_miss(ResolverCore r, bytes q, Parsed m, object alias, bint edns, bint do,
                       bint cd):
    """``begin``'s answer for the client query ``q`` (read: ``m``) that a local zone's
    :class:`resolver.zones.Alias` answers: the target's fresh cache entry with the alias
    before it, or the miss of the target's question, whose responses (``finish``,
    ``stale_answer``...) are the client's, the alias before them. The target is resolved
    as Unbound resolves it, without the local zones; when one holds it, its answer is
    cached apart (``VARIANT_SHADOWED``), where the name's own queries, which the local
    zone answers, never meet it."""
    target = alias.target
    q2 = q[:12] + target + q[12 + len(m.qname):]
    cdef Parsed m2 = parse_response(q2, r.lv.max_pointer_jumps, r.lv.max_query_records,
                                    False)
    cdef tuple how = (q2, m.question, alias.record)
    cdef unsigned char variant = variant_bits(edns, do, cd)
    if under_any(target, r.local_tails):
        variant |= VARIANT_SHADOWED
    key = cache_key(target, m.qtype, m.qclass, variant)
    cdef double now = r.now()
    cdef MsgEntry e = _hit(r, key, now)
    if e is not None:
        return aliased(answer_from_entry(e, q2, 12 + len(m2.question), now), how)
    r.counts.cache_misses += 1
    return (m2, edns, do, cd, key, how)


cdef bytes aliased(bytes out, tuple how):
    """The response ``out`` to an alias's target question (``how``: that question's query,
    the client's question, the alias record) made the client's: its question, the alias
    first in the answer of a NOERROR or NXDOMAIN (AA set then, as Unbound's), AD clear;
    EDNS as ``out`` has it (options included)."""
    cdef Parsed p = parse_response(out)
    cdef int rcode = p.rcode & 0x0F
    cdef unsigned int flags = p.flags & ~0x0420
    answer = p.answer
    if rcode == NOERROR or rcode == NXDOMAIN:
        flags |= 0x0400
        answer = [how[2]] + answer
    wire = response_wire(p.id, flags, how[1], answer, p.authority, p.additional, False,
                         False, 0, rcode)
    cdef Py_ssize_t opt = opt_at(<const unsigned char*>PyBytes_AS_STRING(out),
                                 PyBytes_GET_SIZE(out))
    if opt < 0:
        return wire
    cdef Py_ssize_t count = u16(<const unsigned char*>PyBytes_AS_STRING(wire) + 10) + 1
    return wire[:10] + bytes((count >> 8, count & 0xFF)) + wire[12:] + out[opt:]


cpdef object chaos_wire(object r, bytes q, Parsed m, bint edns, bint do):
    """The answer to ``q`` (parsed: ``m``) about the resolver ``r`` when it is a CH-class
    TXT or ANY question it answers (id.server, version.bind...: ``resolver.chaos``), else
    None."""
    cdef unsigned int qt = m.qtype
    if m.qclass != 3 or (qt != 16 and qt != 255):
        return None
    rdata = r.chaos.get(m.qname.lower())
    if rdata is None:
        return None
    rdatas = (rdata,) if type(rdata) is bytes else rdata(r)   # the trust anchors: asked now
    return build_response(int.from_bytes(q[:2], "big"),
                          0x8080 | (q[2] & 0x01) << 8 | (q[3] & 0x10),
                          m.question, [(m.qname, 16, 3, 0, rd) for rd in rdatas], [], [],
                          edns=edns, do=do, rcode=0)


cdef bint _compressed(bytes question):
    """Whether the question's name has a compression pointer (or another label type): the
    answer echoes the question, which must stand on its own."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(question)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(question), i = 0
    while i < n and p[i] != 0:
        if p[i] & 0xC0:
            return True
        i += 1 + p[i]
    return False


cpdef bytes miss_key(tuple miss):
    """The message cache key of ``begin``'s miss: the one its caller had, else built."""
    key = miss[4]
    if key is not None:
        return key
    cdef Parsed m = miss[0]
    return cache_key(m.qname, m.qtype, m.qclass, variant_bits(miss[1], miss[2], miss[3]))


cpdef bytes finish(ResolverCore r, bytes q, tuple miss, Result res):
    """The response to ``q`` from the resolution's result (``resolved``), cached when it
    may be."""
    cdef Parsed m = miss[0]
    cdef bint edns = miss[1], do = miss[2], cd = miss[3]
    cdef Outcome o = resolved(r, miss_key(miss), m.question, m.qtype, res)
    if o.kind == HIT:
        return entry_answer(q, miss, o.entry, r.now())
    if o.kind == STALE:
        return _marked_stale(r, entry_answer(q, miss, o.entry, r.now(),
                                             r.lv.stale_answer_ttl))
    how = miss[5]
    asked = q if how is None else how[0]
    if o.kind == BOGUS:
        wire = error(asked, 2)
    else:
        # FAILURE: the resolution's response, uncached. The entry says whether the data is
        # secure (AD); AD only for a client that set AD or DO (RFC 6840 5.7); CD does not
        # hide it: the data was validated all the same (RFC 3655 2, as Unbound).
        ad = res.security == SECURE and (do or (m.flags & 0x0020) != 0)
        wire = answer_uncached(response(res, m.question, m.qtype, edns, do, ad, cd), asked,
                               12 + len(m.question))
    if edns and r.ede:
        wire = with_ede(wire, res.ede, res.reason)
    return wire if how is None else aliased(wire, how)


cpdef bytes entry_answer(bytes q, tuple miss, MsgEntry e, double now, int stale_ttl=-1):
    """The response to the client query ``q`` (``begin``'s ``miss``) from the cache entry
    of its question (``stale_ttl`` as ``answer_from_entry``'s); None if the entry does
    not fit the query."""
    cdef Parsed m = miss[0]
    how = miss[5]
    out = answer_from_entry(e, q if how is None else how[0], 12 + len(m.question), now,
                            stale_ttl)
    return out if how is None or out is None else aliased(out, how)


cpdef bytes stale_answer(ResolverCore r, bytes q, tuple miss):
    """The response to ``q`` (``begin``'s ``miss``) from its cache entry while a resolution
    is still under way: the entry's answer as a hit when another resolution has stored it
    fresh meanwhile, else its expired answer with the stale TTL while it is in its stale
    window (RFC 8767; counted as a stale answer), else None (none, or past its window)."""
    cdef double now = r.now()
    cdef MsgEntry e = _stale_entry(r, miss_key(miss), now)
    if e is None:
        return None
    if e.expires >= now:
        return entry_answer(q, miss, e, now)
    r.counts.stale_answers += 1
    return _marked_stale(r, entry_answer(q, miss, e, now, r.lv.stale_answer_ttl))


cdef MsgEntry _stale_entry(ResolverCore r, bytes key, double now):
    """The entry an answer for the message cache key ``key`` comes from while resolving it
    fails or takes too long: its own while it is in its stale window, else, for a query
    without DO or CD, the one of the same question asked the other way (with EDNS for a
    query without, or without for one with), in its window and made over as this query's
    (``_other_edns``). A stub that does not send EDNS (glibc's) then gets the expired
    answer that clients sending EDNS left, and the other way round, as from Unbound, which
    keeps one entry per question. None when there is neither."""
    cdef MsgEntry e = dict_get(r.message_table, key)
    if e is not None:
        return e if e.stale_until >= now else None
    cdef Py_ssize_t n = PyBytes_GET_SIZE(key)
    cdef unsigned char variant = key[n - 1]
    if variant & ~VARIANT_EDNS:
        return None
    # the other key: the same bytes but the last, made in one allocation (every miss asks)
    cdef bytes other = PyBytes_FromStringAndSize(NULL, n)
    cdef char* o = PyBytes_AS_STRING(other)
    memcpy(o, PyBytes_AS_STRING(key), n - 1)
    o[n - 1] = <char>(variant ^ VARIANT_EDNS)
    e = dict_get(r.message_table, other)
    if e is None or e.stale_until < now:
        return None
    return _other_edns(e, variant & VARIANT_EDNS)


cdef MsgEntry _other_edns(MsgEntry e, bint edns):
    """A copy of the entry ``e`` for the query variant with (``edns``) or without EDNS that
    ``e`` is not: the same records, an empty OPT record (the resolver's EDNS size, DO clear)
    added at the end or the one at the end removed. None when ``e`` does not end in an
    empty OPT record as ``build_response`` writes one (nothing to remove)."""
    cdef bytes w = e.wire
    cdef Py_ssize_t n = PyBytes_GET_SIZE(w)
    cdef bytearray out
    if edns:
        out = bytearray(w)
        out += b"\x00\x00\x29" + EDNS_BUFFER_SIZE.to_bytes(2, "big") + bytes(6)
        arcount = u16(<const unsigned char*>PyBytes_AS_STRING(w) + 10) + 1
    else:
        # the OPT record, with the root as owner, is 11 bytes when it holds no option
        if opt_at(<const unsigned char*>PyBytes_AS_STRING(w), n) != n - 11:
            return None
        out = bytearray(w[:n - 11])
        arcount = u16(<const unsigned char*>PyBytes_AS_STRING(w) + 10) - 1
    out[10:12] = arcount.to_bytes(2, "big")
    # the records before the OPT stay where they were: the TTL offsets (OPT excluded) hold
    cdef MsgEntry c = MsgEntry.__new__(MsgEntry)
    c.wire = bytes(out)
    c.ttl_offsets = e.ttl_offsets
    c.qend = e.qend
    c.stored_at, c.expires, c.stale_until = e.stored_at, e.expires, e.stale_until
    c.ttl, c.rcode = e.ttl, e.rcode
    c.screened, c.screen_touched = e.screened, e.screen_touched
    return c


cdef bytes _marked_stale(ResolverCore r, bytes wire):
    """An expired answer (``wire``, or None) with the Extended DNS Error Stale Answer when
    ``ede`` and ``ede_serve_expired`` ask for it (Unbound's ``ede-serve-expired``); only an
    answer to a query with EDNS has the OPT record it goes in (``with_ede``)."""
    if wire is None or not (r.ede and r.ede_serve_expired):
        return wire
    return with_ede(wire, EDE_STALE_ANSWER)


cpdef object store_answer(Cache cache, bytes key, Result res, bytes question, int qtype,
                          bint edns, bint do, bint cd, double now):
    """The message-cache entry of a NOERROR or NXDOMAIN result for one query variant, AD
    set when the result is secure; a secure entry is not served, stale or not, past the
    signatures it relied on (``Result.valid_for``, RFC 4035 5.3.3)."""
    cdef bint ad = res.security == SECURE
    wire = response(res, question, qtype, edns, do, ad, cd,
                    ns_addresses(cache, res, qtype, do, now))
    return store_message(cache.messages, key, wire, now, None, res.valid_for if ad else None)


cpdef list ns_addresses(Cache cache, Result res, int qtype, bint do, double now):
    """The additional section of the answer ``res`` to a question of type ``qtype``, as
    Unbound gives one with ``minimal-responses``: only an NS answer has one, the addresses
    (A, AAAA) of the servers it names inside their zone, from the rrset cache while fresh
    (the zone's own records of them, or the glue of its parent's referral), with their
    RRSIGs for DO;
    a secure answer carries only those validated (Unbound's ``val-clean-additional``).
    A priming resolver asking ``. NS`` gets the root servers' addresses with it."""
    if qtype != NS or res.rcode != NOERROR:
        return _NO_RECORDS
    cdef list out = None
    cdef RRsetEntry e
    cdef bint secure = res.security == SECURE
    cdef set seen = None
    cdef int t
    for r in res.answer:
        if r[1] != NS or not is_subdomain(r[4], r[0]):
            continue
        target = lower(r[4])
        if seen is None:
            seen = set()
        elif target in seen:
            continue
        seen.add(target)
        for t in range(2):
            e = rrset_get(cache.rrsets.lru, target, AAAA if t else A, r[2])
            if (e is None or e.expires < now or e.negative is not None
                    or (secure and e.rank < _VALIDATED)):
                continue
            if out is None:
                out = []
            out += e.records(now)
            if do:
                out += e.sig_records(now)
    return _NO_RECORDS if out is None else out


cpdef object store_keyed(Cache cache, bytes key, Result res, bytes question, int qtype,
                         double now):
    """``store_answer`` for the query variant the message cache key ``key`` ends with."""
    cdef unsigned char variant = key[len(key) - 1]
    return store_answer(cache, key, res, question, qtype, (variant & VARIANT_EDNS) != 0,
                        (variant & VARIANT_DO) != 0, (variant & VARIANT_CD) != 0, now)


cpdef bytes header_error(bytes q, int rule):
    """The answer to the query ``q`` whose header breaks ``rule`` (``header_rule``: not
    HEADER_QUERY, HEADER_NO_RECURSION, HEADER_NOTIFY): NOTIMP for an opcode other than
    QUERY and NOTIFY, FORMERR for the rest (TC or QR set, counts), by ``query_error``."""
    return query_error(q, 4 if rule == HEADER_NOT_QUERY else 1)


cpdef bytes query_error(bytes q, int rcode, bint question=False, bint opt=False):
    """The answer to a query refused before anything looks at what it asks (its header,
    its counts, a zone transfer, a meta type, the access control): the header with QR
    set, opcode, RD and CD copied (RFC 4035 3.2.2) and RA clear, as Unbound answers
    these, and nothing else of the query: no record, and the question only with
    ``question`` and when it reads cleanly. Unbound 1.25 stopped echoing more of a
    query than its question in these answers (a reflection and a covert channel).
    ``opt``: an empty OPT record (1232 bytes) after the question kept when the query's only
    additional record is an OPT, for an option to be added (``with_ede``). None if ``q``
    is shorter than a header."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(q)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(q), pos, qend = 12
    cdef bint edns = False
    if n < 12:
        return None
    if question and u16(p + 4) == 1:
        pos = skip_name(p, n, 12)
        if 0 <= pos and pos + 4 <= n and pos - 12 <= 255 and not _compressed(q[12:pos]):
            qend = pos + 4
            edns = (opt and u16(p + 6) == 0 and u16(p + 8) == 0 and u16(p + 10) == 1
                    and qend + 11 <= n and p[qend] == 0 and u16(p + qend + 1) == 41)
    keep = qend > 12
    head = bytes([p[0], p[1], 0x80 | (p[2] & 0x79), (p[3] & 0x10) | (rcode & 0x0F),
                  0, 1 if keep else 0, 0, 0, 0, 0, 0, 1 if edns else 0])
    out = head + q[12:qend] if keep else head
    if edns:
        out += b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
    return out


cpdef bytes error(bytes q, int rcode, bint question=False):
    """The error response to the raw query ``q``: QR and RA set, opcode, RD and CD copied
    (CD as RFC 4035 3.2.2 asks, as Unbound does), ``rcode``; the question when it reads
    cleanly (for FORMERR only with ``question``: a query read whole whose EDNS option
    breaks a rule); an OPT (1232 bytes, with the extended rcode) when the query had one
    after its question. None if ``q`` is shorter than a header."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(q)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(q), pos = 12, qend = 12
    cdef bint edns = False
    if n < 12:
        return None
    if u16(p + 4) == 1:
        pos = skip_name(p, n, 12)
        if 0 <= pos and pos + 4 <= n:
            qend = pos + 4
            edns = (u16(p + 10) >= 1 and qend + 11 <= n and p[qend] == 0
                    and u16(p + qend + 1) == 41)
    keep = qend > 12 and (rcode != 1 or question)
    head = bytes([p[0], p[1], 0x80 | (p[2] & 0x79), 0x80 | (p[3] & 0x10) | (rcode & 0x0F),
                  0, 1 if keep else 0, 0, 0, 0, 0, 0, 1 if edns else 0])
    out = head + q[12:qend] if keep else head
    if edns:
        out += b"\x00\x00\x29\x04\xd0" + bytes([(rcode >> 4) & 0xFF]) + b"\x00\x00\x00\x00\x00"
    return out


cpdef bytes response(Result res, bytes question, int qtype, bint edns, bint do, bint ad=False,
                     bint cd=False, list additional=None):
    """The response for this query variant; CD is echoed (RFC 4035 3.2.2), which the
    cache may do as CD is part of its key. ``additional``: its additional section
    (``ns_addresses``), the OPT record apart."""
    answer, authority = res.answer, res.authority
    if res.rcode == SERVFAIL:
        answer, authority = [], []     # no partial CNAME chain with a failure (as Unbound)
    if not do:
        if qtype != RRSIG and qtype != ANY:     # asked for by type (RFC 4035 3.2.1)
            answer = without_types(answer, _SIG)
        authority = without_types(authority, _DNSSEC)
    flags = 0x8000 | 0x0100 | 0x0080 | (0x0020 if ad else 0) | (0x0010 if cd else 0)
    return response_wire(0, flags, question, answer, authority,
                         _NO_RECORDS if additional is None else additional, edns, do,
                         EDNS_BUFFER_SIZE, res.rcode)


cpdef bytes failed_with_chain(bytes q, tuple miss, Result res):
    """The SERVFAIL ``finish`` gives the query ``q`` (``miss``: its ``begin``) for the
    failed resolution ``res``, with the answer section the resolution had reached: the
    CNAME/DNAME chain followed before the failure (a chain too long, a loop, a link whose
    target failed), its RRSIGs only for DO. For the response policy to check the chain's
    names (``resolver.daemon.rpz_gate``); never sent as it is: a failure goes out without
    its partial chain (``response``), as Unbound's."""
    cdef Parsed m = miss[0]
    cdef bint edns = miss[1], do = miss[2], cd = miss[3]
    answer = res.answer or _NO_RECORDS
    if not do and m.qtype != RRSIG and m.qtype != ANY:
        answer = without_types(answer, _SIG)
    wire = response_wire(0, 0x8000 | 0x0100 | 0x0080 | (0x0010 if cd else 0), m.question,
                         answer, _NO_RECORDS, _NO_RECORDS, edns, do, EDNS_BUFFER_SIZE,
                         SERVFAIL)
    how = miss[5]
    if how is None:
        return answer_uncached(wire, q, 12 + len(m.question))
    return aliased(answer_uncached(wire, how[0], 12 + len(m.question)), how)


cpdef bytes answer_uncached(bytes wire, bytes q, Py_ssize_t qend):
    """An uncached response given the client's ID, RD bit and question case."""
    out = bytearray(wire)
    out[0:2] = q[0:2]
    out[2] = (out[2] & 0xFE) | (q[2] & 0x01)
    out[12:qend] = q[12:qend]
    return bytes(out)
