# cython: language_level=3
"""The two halves of a client query the cache did not answer, compiled: ``begin`` reads the
query (or answers it with an error), ``finish`` turns the resolution's Result into the
response and caches it; ``cached`` is the look-up before them (``Resolver.resolve_cached``).
``resolver.resolution`` calls them for every client query the cache did not answer, the
daemon's and the library's alike; they are compiled because they run on every miss, which a
resolver woken on cold caches pays for on every query.
"""
from resolver import iterator as it
from resolver.state cimport LimitValues, ResolverCore, Stats
from resolver.iterator.events cimport Result
from resolver.wire.codec cimport MsgEntry, Parsed, cache_key, parse_response, response_wire
from resolver.cache.store cimport Cache, dict_get, store_message
from resolver.iterator.replies cimport without_types
from resolver.dnssec import with_ede
from resolver.limits import EDNS_BUFFER_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from resolver.cache.answer cimport answer_from_entry, parse_query
from resolver.wire.names cimport skip_name, u16
from resolver.wire.codec import WireError

cdef list _NO_RECORDS = []         # an empty section, only read
cdef frozenset _SIG = frozenset((it.RRSIG,))
cdef frozenset _DNSSEC = frozenset((it.RRSIG, it.NSEC, it.NSEC3))
cdef int NOERROR = it.NOERROR, NXDOMAIN = it.NXDOMAIN, SERVFAIL = it.SERVFAIL
cdef int RRSIG = it.RRSIG, SECURE = it.SECURE, BOGUS = it.BOGUS


cpdef object cached(ResolverCore r, bytes q):
    """``Resolver.resolve_cached``: the response to a wire query if the cache has a fresh
    one, else None. An entry due for prefetch is answered and refreshed in the background."""
    parsed = parse_query(q)
    if parsed is None:
        return None
    key, qend = parsed
    cdef MsgEntry e = dict_get(r.message_table, key)
    if e is None:
        return None
    cdef double now = r.now()
    if e.expires < now:
        return None
    e.referenced = True             # spared once by the LRU's eviction
    e.hits += 1
    cdef Stats stats = r.counts
    stats.cache_hits += 1
    stats.client_queries += 1
    cdef LimitValues lim = r.lv
    if (now > e.expires - e.ttl * lim.prefetch_fraction and e.hits >= lim.prefetch_min_hits
            and not e.prefetching):
        r.refresh(key, e)
    return answer_from_entry(e, q, qend, now)


cpdef object hit_or_begin(ResolverCore r, bytes q):
    """The cached response to ``q``, or ``begin``'s answer: an error response, a local
    zone's answer, None (a local zone drops it) or the miss."""
    out = cached(r, q)
    return out if out is not None else begin(r, q)


cpdef object begin(ResolverCore r, bytes q, bytes key=None):
    """An error response now (FORMERR, NOTIMP, BADVERS, REFUSED...), a local zone's answer
    (None when it drops the query: ``resolver.zones``), or what ``finish`` needs once the
    question is resolved: (parsed query, EDNS, DO, CD, message cache key or None). ``key``:
    the query's message cache key when the caller has it (the daemon's hit path). Raises
    WireError for a query shorter than a header."""
    if len(q) < 12:
        raise WireError("query shorter than a DNS header")
    cdef Stats stats = r.counts
    cdef Parsed m
    stats.client_queries += 1
    try:
        m = parse_response(q, r.lv.max_pointer_jumps, r.lv.limits.max_query_records, False)
    except WireError:
        return error(q, 1)
    if (m.flags >> 11) & 0xF:
        return error(q, 4)                   # NOTIMP: only QUERY
    if m.flags & 0x8000 or m.qname is None or _compressed(m.question):
        return error(q, 1)                   # a response, no question, or a pointer in it
    cdef bint edns = m.edns, do = (m.edns_flags & 0x8000) != 0
    if edns and (m.edns_flags >> 16) & 0xFF:
        return error(q, 16)                  # BADVERS
    cdef bint cd = (m.flags & 0x0010) != 0
    if r.local_zones is not None and m.qclass == 1:
        local = r.local_zones.response(q, m.qname, m.question, m.qtype, edns, do)
        if local is not None:
            stats.local_answers += 1
            return None if local == "drop" else local
    stats.cache_misses += 1
    if m.qclass != 1:
        return error(q, 5)                   # only class IN is resolved
    cdef unsigned int qt = m.qtype
    if qt == 251 or qt == 252:
        return error(q, 5)                   # REFUSED: zone transfers are not a resolver's job
    if qt == 41 or 128 <= qt <= 254:
        # OPT, TKEY, TSIG, MAILB, MAILA and the rest of the meta range: no data to look up
        # (as Unbound; ANY, 255, is resolved)
        return error(q, 1)
    return (m, edns, do, cd, key)


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


cpdef bytes finish(ResolverCore r, bytes q, tuple miss, Result res):
    """The response to ``q`` from the resolution's result, cached when it may be."""
    cdef Parsed m = miss[0]
    cdef bint edns = miss[1], do = miss[2], cd = miss[3]
    cdef Stats stats = r.counts
    cdef int rcode = res.rcode, security = res.security
    if security == BOGUS and not cd:
        stats.servfail += 1
        wire = error(q, 2)
        return with_ede(wire, res.ede, res.reason) if edns else wire
    cdef int variant
    key = miss[4]
    if key is None:
        variant = (1 if edns else 0) | (2 if do else 0) | (4 if cd else 0)
        key = cache_key(m.qname, m.qtype, m.qclass, variant)
    cdef Py_ssize_t qend = 12 + len(m.question)
    now = r.now()
    if rcode == SERVFAIL:
        stale = dict_get(r.message_table, key)
        if stale is not None and stale.stale_until >= now:
            stats.stale_answers += 1
            return answer_from_entry(stale, q, qend, now, r.lv.stale_answer_ttl)
        stats.servfail += 1
    # The entry says whether the data is secure (AD); the encoder (resolver.cache.answer)
    # clears AD for a client that set neither AD nor DO (RFC 6840 5.7), so
    # clients differing only in AD share the entry and none decides AD for the others.
    # CD does not hide it: the data was validated all the same (RFC 3655 2, as Unbound).
    cdef bint ad = security == SECURE
    if rcode == NOERROR or rcode == NXDOMAIN:
        e = store_answer(<Cache?>r.cache, key, res, m.question, m.qtype, edns, do, cd, now)
        return answer_from_entry(e, q, qend, now)
    ad = ad and (do or (m.flags & 0x0020) != 0)
    return answer_uncached(response(res, m.question, m.qtype, edns, do, ad, cd), q, qend)


cpdef object store_answer(Cache cache, bytes key, Result res, bytes question, int qtype,
                          bint edns, bint do, bint cd, double now):
    """The message-cache entry of a NOERROR or NXDOMAIN result for one query variant, AD
    set when the result is secure; a secure entry is not served, stale or not, past the
    signatures it relied on (``Result.valid_for``, RFC 4035 5.3.3)."""
    cdef bint ad = res.security == SECURE
    wire = response(res, question, qtype, edns, do, ad, cd)
    return store_message(cache.messages, key, wire, now, None, res.valid_for if ad else None)


cpdef bytes error(bytes q, int rcode):
    """The error response to the raw query ``q``: QR and RA set, opcode, RD and CD copied
    (CD as RFC 4035 3.2.2 asks, as Unbound does), ``rcode``; the question when it reads
    cleanly (not for FORMERR); an OPT (1232 bytes, with the extended rcode) when the query
    had one after its question. None if ``q`` is shorter than a header."""
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
    keep = qend > 12 and rcode != 1
    head = bytes([p[0], p[1], 0x80 | (p[2] & 0x79), 0x80 | (p[3] & 0x10) | (rcode & 0x0F),
                  0, 1 if keep else 0, 0, 0, 0, 0, 0, 1 if edns else 0])
    out = head + q[12:qend] if keep else head
    if edns:
        out += b"\x00\x00\x29\x04\xd0" + bytes([(rcode >> 4) & 0xFF]) + b"\x00\x00\x00\x00\x00"
    return out


cpdef bytes response(Result res, bytes question, int qtype, bint edns, bint do, bint ad=False,
                     bint cd=False):
    """The response for this query variant; CD is echoed (RFC 4035 3.2.2), which the
    cache may do as CD is part of its key."""
    answer, authority = res.answer, res.authority
    if res.rcode == SERVFAIL:
        answer, authority = [], []     # no partial CNAME chain with a failure (as Unbound)
    if not do:
        if qtype != RRSIG:
            answer = without_types(answer, _SIG)
        authority = without_types(authority, _DNSSEC)
    flags = 0x8000 | 0x0100 | 0x0080 | (0x0020 if ad else 0) | (0x0010 if cd else 0)
    return response_wire(0, flags, question, answer, authority, _NO_RECORDS, edns, do,
                         EDNS_BUFFER_SIZE, res.rcode)


cpdef bytes answer_uncached(bytes wire, bytes q, Py_ssize_t qend):
    """An uncached response given the client's ID, RD bit and question case."""
    out = bytearray(wire)
    out[0:2] = q[0:2]
    out[2] = (out[2] & 0xFE) | (q[2] & 0x01)
    out[12:qend] = q[12:qend]
    return bytes(out)
