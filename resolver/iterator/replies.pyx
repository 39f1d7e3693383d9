# cython: language_level=3, boundscheck=False, wraparound=False
# Names come from resolver.wire.codec's parser (well-formed uncompressed wire names, each ending in
# the root label), and every pointer walk below stays inside the name's own length.
"""The iterator's per-reply bookkeeping in C: is this reply a referral, is its server lame,
which records are in bailiwick, which glue goes with which NS, and the grouping of record
tuples into rrsets for the cache.

These are the loops that run over every record of every upstream reply (the algorithm
that uses them is ``resolver.iterator.algorithm``). Names are compared
case-insensitively (ASCII letters only, as ``bytes.lower``: length octets are < 64 and never
fold) without building lower-cased copies.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

from resolver.wire.codec cimport dname_substitute, is_subdomain, same_name
from resolver.wire.names cimport lower

cdef enum:
    NS = 2
    SOA = 6
    CNAME = 5
    DNAME = 39
    ANY = 255
    A = 1
    AAAA = 28
    RRSIG = 46
    NOERROR = 0


cpdef list in_zone(list records, bytes zone):
    """Bailiwick filter: only records the asked zone's servers may speak for."""
    cdef list out = []
    cdef object r
    for r in records:
        if is_subdomain(r[0], zone):
            out.append(r)
    return out


cpdef bint has_soa(list authority, bytes zone):
    cdef object r
    for r in authority:
        if r[1] == SOA and is_subdomain(r[0], zone):
            return True
    return False


cpdef object referral(Parsed m, bytes zone, bytes qname):
    """(child zone, its NS records) if ``m`` delegates ``qname`` to a zone strictly below
    ``zone``; None otherwise (answers, negative answers, upward or sideways referrals)."""
    if m.rcode != NOERROR or m.answer:
        return None
    cdef list authority = m.authority
    cdef list ns = []
    cdef object r
    cdef bint soa = False
    for r in authority:
        if r[1] == NS:
            ns.append(r)
        elif r[1] == SOA and not soa and is_subdomain(r[0], zone):
            soa = True
    if not ns or soa:
        return None
    cdef bytes child = ns[0][0]
    if (PyBytes_GET_SIZE(child) <= PyBytes_GET_SIZE(zone) or not is_subdomain(child, zone)
            or not is_subdomain(qname, child)):
        return None
    cdef list mine = []
    for r in ns:
        if same_name(r[0], child):
            mine.append(r)
    return child, mine


cpdef bint is_lame(Parsed m, bytes zone, bytes qname, object ref):
    """A NOERROR/NXDOMAIN reply from a server that does not serve ``zone`` (RFC 1034 5.3.3,
    as Unbound classifies replies): an upward or sideways referral (NS records outside the
    zone, or without AA at or below it but not leading to ``qname``), a negative answer
    without AA from a recursive server (RA: its cache, not the zone, speaks), or a reply
    without AA that says nothing of the zone (neither a record in the zone in its answer
    section nor the zone's SOA). An answer without AA is not lame: it is used at a lower
    trust rank (RFC 2181 5.4.1). ``ref`` is ``referral(m, zone, qname)``, already computed."""
    if ref is not None:
        return False
    cdef unsigned int flags = m.flags
    cdef bint aa = (flags & 0x0400) != 0
    cdef bint ra = (flags & 0x0080) != 0
    cdef list authority = m.authority
    cdef list answer = m.answer
    cdef object r
    cdef bint any_ns = False
    cdef bint soa = has_soa(authority, zone)
    for r in authority:
        if r[1] == NS:
            any_ns = True
            break
    if any_ns and not answer and not soa and m.rcode == NOERROR:
        for r in authority:
            if r[1] == NS and not is_subdomain(r[0], zone):
                return True
        return not aa
    if aa:
        return False
    for r in answer:
        if is_subdomain(r[0], zone):
            return False
    if soa:
        return ra
    return True


cpdef list glue(list additional, bytes zone, list ns_recs, bint harden=True):
    """The A/AAAA records of a referral's additional section that name one of the NS
    targets and, with ``harden`` (Unbound's harden-glue), are in bailiwick."""
    cdef list out = []
    cdef object r, n
    for r in additional:
        if (r[1] == A or r[1] == AAAA) and (not harden or is_subdomain(r[0], zone)):
            for n in ns_recs:
                if same_name(r[0], n[4]):
                    out.append(r)
                    break
    return out


cpdef dict group(list records):
    """Record tuples grouped into rrsets: {(lower owner, type, class): [owner, smallest TTL,
    distinct rdatas in order]} (one TTL per rrset, the smallest: RFC 2181 5.2)."""
    cdef dict groups = {}
    cdef list g
    cdef object r
    cdef object key
    for r in records:
        key = (lower(r[0]), r[1], r[2])
        g = groups.get(key) if groups else None
        if g is None:
            groups[key] = [r[0], r[3], [r[4]]]
            continue
        if r[3] < g[1]:
            g[1] = r[3]
        if r[4] not in <list>g[2]:
            (<list>g[2]).append(r[4])
    return groups


cdef inline bint _covers(object r, long rdtype):
    """An RRSIG record covering ``rdtype``."""
    if r[1] != RRSIG:
        return False
    cdef bytes rd = r[4]
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(rd)
    return PyBytes_GET_SIZE(rd) >= 2 and ((p[0] << 8) | p[1]) == rdtype


cpdef tuple split_sigs(list records):
    """(records that are not RRSIG, the RRSIGs), each in order."""
    cdef list recs = [], sigs = []
    cdef object r
    for r in records:
        if r[1] == RRSIG:
            sigs.append(r)
        else:
            recs.append(r)
    return recs, sigs


cpdef object owned(list answer, bytes name, long qtype):
    """The records of ``answer`` owned by ``name`` that answer ``qtype`` (that type, any type
    for ANY, and the RRSIGs covering it), or None when none of ``name``'s records has that
    type (for ANY: when ``name`` owns none)."""
    cdef object r
    cdef long t
    cdef bint found = False
    cdef list out
    for r in answer:
        t = r[1]
        if (t == qtype or qtype == 255) and same_name(r[0], name):
            found = True
            break
    if not found:
        return None
    out = []
    for r in answer:
        t = r[1]
        if (t == qtype or qtype == 255 or (t == RRSIG and _covers(r, qtype))) and same_name(
                r[0], name):
            out.append(r)
    return out


cpdef bint wildcard_expanded(list records):
    """Some record is an RRSIG whose label count is below its owner's (a leading ``*`` not
    counted): the signed data was expanded from a wildcard."""
    cdef object r
    cdef bytes rd, owner
    cdef const unsigned char* c
    cdef Py_ssize_t n, pos, k
    for r in records:
        if r[1] != RRSIG:
            continue
        rd = r[4]
        if PyBytes_GET_SIZE(rd) < 4:
            continue
        owner = r[0]
        c = <const unsigned char*>PyBytes_AS_STRING(owner)
        n = PyBytes_GET_SIZE(owner)
        pos = 0
        k = 0
        while pos < n and c[pos] != 0:
            pos += 1 + c[pos]
            k += 1
        if n >= 2 and c[0] == 1 and c[1] == 42:
            k -= 1          # RFC 4034 3.1.3: the label count leaves out a leading "*"
        if (<const unsigned char*>PyBytes_AS_STRING(rd))[3] < k:
            return True
    return False


cpdef Py_ssize_t count_type(list records, long rdtype) except -1:
    """How many of ``records`` have that type."""
    cdef Py_ssize_t k = 0
    cdef object r
    cdef long t
    for r in records:
        t = r[1]
        if t == rdtype:
            k += 1
    return k


cpdef list without_types(list records, frozenset rdtypes):
    """``records`` without those of the given types, order kept: ``records`` itself when
    none is of those types, else a new list."""
    cdef list out = None
    cdef object r
    cdef Py_ssize_t i
    for i in range(len(records)):
        r = records[i]
        if r[1] in rdtypes:
            if out is None:
                out = records[:i]
        elif out is not None:
            out.append(r)
    return records if out is None else out


cpdef list answer_chain(list answer, bytes qname, long qtype, long max_links):
    """The part of an answer section that answers ``qname``/``qtype``: the records of that
    name and type (every type for ANY, its RRSIGs for RRSIG), and the CNAME and DNAME chain
    from it (for ANY as well) with the records at each link, each with the RRSIGs covering
    it; nothing else (RFC 2181 5.4.1, Unbound's scrubber). A server's reply to one question
    is believed for that question only: other rrsets it adds (another name's data, another
    type at the name) would otherwise enter the cache at an answer's rank and answer later
    questions. ``answer`` itself when it holds nothing else, else a new list in the same
    order. The chain is followed for at most ``max_links`` names, each once (the iterator
    gives its CNAME chain limit: a longer chain fails there anyway)."""
    cdef Py_ssize_t n = len(answer), i, kept = 0
    cdef list keep = [False] * n
    cdef bytes cur = qname
    cdef object r, nxt
    cdef long t, links = 0
    cdef bint signed = False        # the section holds RRSIGs
    cdef set seen = None            # the chain's names, once it has a link to follow
    cdef set kept_sets
    while cur is not None and links < max_links:
        links += 1
        nxt = None
        for i in range(n):
            r = answer[i]
            t = r[1]
            if t == RRSIG:
                signed = True
                if qtype == RRSIG and same_name(r[0], cur):
                    keep[i] = True          # the RRSIGs asked for, whatever they cover
                continue
            if same_name(r[0], cur):
                if t == qtype or qtype == ANY or t == CNAME:
                    keep[i] = True
                    if t == CNAME and qtype != CNAME and nxt is None:
                        nxt = r[4]
            elif t == DNAME and qtype != DNAME and is_subdomain(cur, r[0]):
                keep[i] = True
                if nxt is None:
                    nxt = dname_substitute(cur, r[0], r[4])
        if nxt is None or len(<bytes>nxt) > 255:
            break
        if seen is None:
            seen = set()
        seen.add(lower(cur))
        cur = nxt if lower(nxt) not in seen else None
    for i in range(n):
        if keep[i]:
            kept += 1
    if not signed:
        return answer if kept == n else [answer[i] for i in range(n) if keep[i]]
    kept_sets = set()
    for i in range(n):
        if keep[i]:
            r = answer[i]
            kept_sets.add((lower(r[0]), r[1]))
    for i in range(n):
        r = answer[i]
        if r[1] == RRSIG and PyBytes_GET_SIZE(r[4]) >= 2 and (
                lower(r[0]), ((<const unsigned char*>PyBytes_AS_STRING(r[4]))[0] << 8)
                | (<const unsigned char*>PyBytes_AS_STRING(r[4]))[1]) in kept_sets:
            keep[i] = True
            kept += 1
    if kept == n:
        return answer
    return [answer[i] for i in range(n) if keep[i]]
