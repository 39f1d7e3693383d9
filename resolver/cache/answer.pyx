# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# Every read of a query goes through a pointer after an explicit check against its length,
# so Cython's own bounds checks would only duplicate them.
"""The one answer encoder: every answer from the message cache is written here.

``encode`` rewrites a cached response (a ``MsgEntry``) for the query that asked: the client's
ID, RD bit and question case, AD kept only for a client that set AD or DO (RFC 6840 5.7), TTLs
lowered by the time in cache (or set to the stale TTL), truncated (TC) to the client's UDP size;
with ``rrset_roundrobin`` on (``set_rrset_roundrobin``), the addresses of each A or AAAA rrset
of the answer section rotated by the query's ID (``_rotate``).
Its callers:

- ``cached_answer``: the daemon's hit path in C (``resolver.daemon.udp_listener`` and
  ``resolver.daemon.tcp_framer``): parse the raw query into the cache key (``question_key``;
  the key object itself from ``interned_key``), find a fresh entry, encode; ``None`` sends the query to the engine (a miss, anything
  unusual, or an entry due for prefetch); under a response policy the door passes its
  ``Screen``, which may leave a fresh entry to the engine after looking at the query's name
  and the entry's answer;
- ``answer_from_entry``: the same for a query already parsed (the library's hits, the answer
  to a miss once it is stored, stale answers); ``parse_query`` gives its key and question end.
"""
from libc.stdint cimport uint64_t
from libc.string cimport memcmp, memcpy
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItemWithError
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF

from posix.time cimport timespec, clock_gettime, CLOCK_MONOTONIC
from resolver.wire.codec cimport MsgEntry
from resolver.wire.names cimport copy_lower_name, skip_name, u16, u32

import os

cdef enum:
    MAX_NAME = 255
    #: a key buffer: the longest key (name, type, class, variant byte) and the 8 bytes
    #: ``_key_hash`` may read past its end
    KEY_BUF = MAX_NAME + 5 + 8
    #: slots of the table of interned keys (a power of two)
    INTERNED = 8192
    T_OPT = 41
    T_A = 1
    T_AAAA = 28
    #: the most address bytes of one rrset that ``_rotate`` rotates (256 AAAA records)
    ROTATE_MAX = 4096

#: Unbound's ``rrset-roundrobin``: every answer this process encodes rotates its address
#: rrsets (``set_rrset_roundrobin``; the daemon sets it from its setting, the library never)
cdef bint rrset_roundrobin = False


def set_rrset_roundrobin(bint on):
    """Turns Unbound's ``rrset-roundrobin`` on or off for every answer this process encodes."""
    global rrset_roundrobin
    rrset_roundrobin = on




cdef double monotonic() noexcept nogil:
    """time.monotonic(), which the engine's cache uses, without a Python call."""
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef Py_ssize_t question_key(const unsigned char* p, Py_ssize_t n, unsigned char* key,
                             Py_ssize_t* klen_out, unsigned int* udp_limit,
                             unsigned int* qtype) noexcept nogil:
    """The message cache's key for a plain QUERY with one question (and at most an OPT): the
    lower-cased qname, type and class, and the variant byte (``variant_bits``). Returns the
    end of the question, or -1 when the engine must look at the query (which produces
    FORMERR, NOTIMP or BADVERS as due)."""
    cdef Py_ssize_t pos, klen = 0, qend, rdlen
    cdef unsigned int payload
    cdef bint edns = False, do = False
    if n < 17 or (p[2] & 0xF8) != 0 or u16(p + 4) != 1 or u16(p + 6) or u16(p + 8):
        return -1
    if u16(p + 10) > 1:
        return -1
    pos = copy_lower_name(p, n, 12, key, &klen)
    if pos < 0:
        return -1
    if pos + 4 > n:
        return -1
    memcpy(key + klen, p + pos, 4)
    qtype[0] = u16(p + pos)
    klen += 4
    qend = pos + 4
    udp_limit[0] = 512
    if u16(p + 10) == 1:
        pos = qend
        if pos + 11 > n or p[pos] != 0 or u16(p + pos + 1) != T_OPT or p[pos + 6] != 0:
            return -1
        rdlen = u16(p + pos + 9)
        if pos + 11 + rdlen != n:
            return -1
        edns = True
        do = (p[pos + 7] & 0x80) != 0
        payload = u16(p + pos + 3)
        udp_limit[0] = payload if payload > 512 else 512
    elif qend != n:
        return -1
    key[klen] = variant_bits(edns, do, (p[3] & 0x10) != 0)
    klen_out[0] = klen + 1
    return qend



ctypedef struct Interned:
    uint64_t hash
    PyObject* key       # a bytes object, owned by the table

#: The cache keys the hit path (``cached_answer``) lately made, found again by their bytes:
#: a query for a name asked before gets the same key object, whose hash Python has kept (no
#: new bytes, no SipHash) and which is, for an entry stored on the miss that made it, the
#: very key of the cache's dict (found by identity, no comparison). A slot holds the last key
#: that hashed to it; the table holds only keys, never what the cache keeps under them, so
#: it can be neither stale nor wrong, and its memory is bounded: INTERNED keys of at most
#: 260 bytes (about 0.5 MB for names of usual length).
cdef Interned _interned[INTERNED]
cdef uint64_t _seed = int.from_bytes(os.urandom(8), "little")


cdef inline uint64_t _key_hash(const unsigned char* k, Py_ssize_t n) noexcept nogil:
    """A seeded hash of the key of ``n`` bytes at ``k``, eight bytes at a time; it reads up
    to 7 bytes past the key (``KEY_BUF``) and masks them off."""
    cdef uint64_t h = _seed ^ <uint64_t>n, w
    cdef Py_ssize_t i = 0
    while i < n:
        memcpy(&w, k + i, 8)
        if n - i < 8:
            w &= (<uint64_t>1 << (8 * (n - i))) - 1
        h = (h ^ w) * <uint64_t>0x9E3779B97F4A7C15
        h ^= h >> 29
        i += 8
    return h


cdef object interned_key(const unsigned char* key, Py_ssize_t klen):
    """The bytes object of the cache key at ``key`` (``klen`` bytes, in a ``KEY_BUF``
    buffer): the table's when it holds these bytes, else a new one, which the table then
    holds."""
    cdef uint64_t h = _key_hash(key, klen)
    cdef Interned* slot = &_interned[h & (INTERNED - 1)]
    cdef PyObject* k = slot.key
    if (k != NULL and slot.hash == h and PyBytes_GET_SIZE(<object>k) == klen
            and memcmp(PyBytes_AS_STRING(<object>k), key, klen) == 0):
        return <object>k
    kb = PyBytes_FromStringAndSize(<char*>key, klen)
    Py_INCREF(kb)
    slot.key = <PyObject*>kb
    slot.hash = h
    Py_XDECREF(k)
    return kb


cdef inline void _give(bytes key, PyObject** out):
    """``out[0] = key`` as a new reference, when ``out`` is not NULL."""
    if out != NULL:
        Py_INCREF(key)
        out[0] = <PyObject*>key


cdef object cached_answer(object table, const unsigned char* p, Py_ssize_t n, double now,
                          double prefetch_fraction, unsigned int udp_cap, unsigned int* qtype,
                          bint* truncated, PyObject** absent, Screen screen=NULL,
                          object ctx=None):
    """The answer bytes for the query at ``p`` if the cache has a fresh entry, else None.
    ``udp_cap`` > 0 (UDP): truncate to the query's EDNS size (512 without EDNS), and never
    above ``udp_cap`` whatever the query says; 0 (TCP): never truncate. When the cache holds
    no fresh entry for the query at all (not when it has one this path leaves to the engine:
    due for prefetch, or unusual) and ``absent`` is not NULL, ``absent[0]`` gets a new
    reference to the query's cache key (bytes), so the miss neither looks nor builds the key
    again; it is left alone otherwise. ``screen`` (when not NULL) is asked about a fresh
    entry before it is answered, with ``ctx``, the query's name (lower-cased wire form) and
    the entry: True leaves the query to the engine (None; ``absent`` untouched)."""
    cdef unsigned char key[KEY_BUF]
    cdef Py_ssize_t klen = 0, qend
    cdef unsigned int limit = 512
    cdef PyObject* found
    cdef MsgEntry e
    truncated[0] = False
    qend = question_key(p, n, key, &klen, &limit, qtype)
    if qend < 0:
        return None
    kb = interned_key(key, klen)
    found = PyDict_GetItemWithError(table, kb)   # a bytes key: its hash cannot fail
    if found == NULL:
        _give(kb, absent)
        return None
    if type(<object>found) is not MsgEntry:
        return None
    e = <MsgEntry>found
    if e.expires < now:
        _give(kb, absent)
        return None
    if e.qend != qend:
        return None
    if prefetch_due(e, now, prefetch_fraction, 0):
        return None                           # the engine counts the hit and decides
    if screen != NULL and screen(ctx, key, klen - 5, e):    # key: name, type, class, variant
        return None
    e.referenced = True                       # spared once by the LRU's eviction
    if limit > udp_cap:
        limit = udp_cap if udp_cap >= 512 else 512
    return encode(e, p, qend, (p[3] & 0x20) != 0 or (key[klen - 1] & VARIANT_DO) != 0, now, -1,
                  limit if udp_cap else -1, truncated)


cdef bytes encode(MsgEntry e, const unsigned char* q, Py_ssize_t qend, bint ad_ok, double now,
                  int stale_ttl, Py_ssize_t limit, bint* truncated):
    """The entry's response for the query at ``q`` (its question ends at ``qend``, as the
    entry's does): see the module docstring. ``ad_ok``: the query set AD or DO.
    ``stale_ttl`` >= 0 sets every TTL to it; ``limit`` >= 0 truncates a longer response."""
    cdef const unsigned char* w = <const unsigned char*>PyBytes_AS_STRING(e.wire)
    cdef Py_ssize_t wlen = PyBytes_GET_SIZE(e.wire), noffs, k, off
    cdef unsigned int elapsed, ttl
    cdef const unsigned short* offs
    cdef unsigned char* o
    cdef bytes out
    cdef Py_ssize_t cut
    if 0 <= limit < wlen:
        out = _without_additional(w, wlen, limit, &cut)
        if out is None:
            out = _truncated(w, wlen)
            truncated[0] = True
            noffs = 0
        else:                       # the TTLs of the records kept, which lie before ``cut``
            offs = <const unsigned short*>PyBytes_AS_STRING(e.ttl_offsets)
            noffs = 0
            while noffs < PyBytes_GET_SIZE(e.ttl_offsets) // 2 and offs[noffs] < cut:
                noffs += 1
    else:
        out = PyBytes_FromStringAndSize(<const char*>w, wlen)
        noffs = PyBytes_GET_SIZE(e.ttl_offsets) // 2
    o = <unsigned char*>PyBytes_AS_STRING(out)
    o[0] = q[0]
    o[1] = q[1]
    o[2] = (o[2] & 0xFE) | (q[2] & 0x01)
    if not ad_ok:
        o[3] &= 0xDF
    memcpy(o + 12, q + 12, qend - 12 - 4)
    elapsed = <unsigned int>(now - e.stored_at) if now > e.stored_at else 0
    offs = <const unsigned short*>PyBytes_AS_STRING(e.ttl_offsets)
    for k in range(noffs):
        off = offs[k]
        if stale_ttl >= 0:
            ttl = <unsigned int>stale_ttl
        else:
            ttl = u32(o + off)
            ttl = ttl - elapsed if ttl > elapsed else 0
        o[off] = (ttl >> 24) & 0xFF
        o[off + 1] = (ttl >> 16) & 0xFF
        o[off + 2] = (ttl >> 8) & 0xFF
        o[off + 3] = ttl & 0xFF
    if rrset_roundrobin and noffs > 1:
        _rotate(o, PyBytes_GET_SIZE(out), offs, min(<Py_ssize_t>u16(o + 6), noffs), e.qend,
                (<unsigned int>q[0] << 8) | q[1])
    return out


cdef void _rotate(unsigned char* o, Py_ssize_t n, const unsigned short* offs, Py_ssize_t count,
                  Py_ssize_t start, unsigned int seed) noexcept:
    """Unbound's ``rrset-roundrobin`` on the first ``count`` records (the answer section,
    starting at ``start``) of the response at ``o``: in each run of two or more A (or AAAA)
    records back to back with the same owner (the same bytes, or a compression pointer to
    the run's first owner), record ``i`` takes the address of
    record ``(i + seed) % run`` (Unbound rotates by the query ID and the time; the ID alone
    keeps every path's answer to one query the same). Only the fixed-size addresses move:
    the owners, every compression pointer and every other rrset stay where they are."""
    cdef unsigned char saved[ROTATE_MAX]
    cdef Py_ssize_t i = 0, j, k, run, size, owner, olen, nxt, rd
    cdef unsigned int t
    while i < count:
        rd = offs[i] + 6
        t = u16(o + offs[i] - 4)
        size = 4 if t == T_A else 16 if t == T_AAAA else -1
        owner = start
        olen = offs[i] - 4 - owner
        run = 1
        if size > 0 and rd + size <= n and u16(o + offs[i] + 4) == size:
            j = i + 1
            while j < count and (run + 1) * size <= ROTATE_MAX:
                nxt = offs[j - 1] + 6 + size        # where record j's owner starts
                if (u16(o + offs[j] - 4) != t or u16(o + offs[j] - 2) != u16(o + offs[i] - 2)
                        or offs[j] + 6 + size > n or u16(o + offs[j] + 4) != size):
                    break
                # the same owner: the same bytes, or a pointer to the first record's owner
                if not ((offs[j] - 4 - nxt == olen and memcmp(o + nxt, o + owner, olen) == 0)
                        or (offs[j] - 4 - nxt == 2 and (o[nxt] & 0xC0) == 0xC0
                            and (u16(o + nxt) & 0x3FFF) == owner)):
                    break
                run += 1
                j += 1
        if run > 1:
            for k in range(run):
                memcpy(saved + k * size, o + offs[i + k] + 6, size)
            for k in range(run):
                memcpy(o + offs[i + k] + 6, saved + ((k + seed) % run) * size, size)
        # the next record's owner starts after this run's last record
        start = offs[i + run - 1] + 6 + u16(o + offs[i + run - 1] + 4)
        i += run


cdef inline bint _wants_ad(const unsigned char* q, Py_ssize_t n, Py_ssize_t qend) noexcept:
    """Whether the query at ``q`` set AD or DO (its OPT, if any, right after the question
    at ``qend``)."""
    if q[3] & 0x20:
        return True
    return (u16(q + 10) >= 1 and qend + 11 <= n and q[qend] == 0
            and u16(q + qend + 1) == T_OPT and (q[qend + 7] & 0x80) != 0)


cpdef object parse_query(bytes q):
    """``(cache key, end of the question)`` of a client query (see ``question_key``), or
    ``None`` when it is not a plain QUERY this path can answer."""
    cdef unsigned char key[MAX_NAME + 6]
    cdef Py_ssize_t klen = 0, qend
    cdef unsigned int limit, qtype
    qend = question_key(<const unsigned char*>PyBytes_AS_STRING(q), PyBytes_GET_SIZE(q), key,
                        &klen, &limit, &qtype)
    if qend < 0:
        return None
    return PyBytes_FromStringAndSize(<char*>key, klen), qend


cpdef object answer_from_entry(MsgEntry e, bytes query, Py_ssize_t qend, double now,
                               int stale_ttl=-1):
    """``encode`` for a query already parsed: the cached response rewritten for ``query``
    (TTLs set to ``stale_ttl`` when it is >= 0); None if ``query`` does not fit the entry."""
    cdef const unsigned char* qp = <const unsigned char*>PyBytes_AS_STRING(query)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(query)
    cdef bint truncated = False
    if qend != e.qend or qend > n or n < 12:
        return None
    return encode(e, qp, qend, _wants_ad(qp, n, qend), now, stale_ttl, -1, &truncated)


cdef bytes _without_additional(const unsigned char* p, Py_ssize_t n, Py_ssize_t limit,
                               Py_ssize_t* cut):
    """The response at ``p`` without the records of its additional section but the OPT,
    when it has some and that fits ``limit`` bytes: TC is not set, as the answer and
    authority are whole (RFC 2181 9; Unbound leaves out the additional records that do not
    fit). ``cut``: where the records left out began. None when it has none or does not
    fit."""
    cdef Py_ssize_t pos = 12, opt = -1, optlen = 0, start
    cdef unsigned int i, ar = u16(p + 10)
    cdef bytes out
    cdef unsigned char* o
    for i in range(u16(p + 4)):
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 4 > n:
            return None
        pos += 4
    for i in range(u16(p + 6) + u16(p + 8)):
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 10 > n:
            return None
        pos += 10 + u16(p + pos + 8)
    if pos > n:
        return None
    cut[0] = pos
    for i in range(ar):
        start = pos
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 10 > n:
            return None
        if u16(p + pos) == T_OPT:
            opt = start
            optlen = pos + 10 + u16(p + pos + 8) - start
        pos += 10 + u16(p + pos + 8)
    if pos > n or ar == (1 if opt >= 0 else 0) or cut[0] + optlen > limit:
        return None
    out = PyBytes_FromStringAndSize(NULL, cut[0] + optlen)
    o = <unsigned char*>PyBytes_AS_STRING(out)
    memcpy(o, p, cut[0])
    if opt >= 0:
        memcpy(o + cut[0], p + opt, optlen)
    o[10] = 0
    o[11] = 1 if opt >= 0 else 0
    return out


cdef bytes _truncated(const unsigned char* p, Py_ssize_t n):
    """Header (TC set), question and OPT of the response at ``p``; every other record
    dropped, so the client retries over TCP."""
    cdef Py_ssize_t pos = 12, qend, opt = -1, optlen = 0, start
    cdef unsigned int i, total, qd
    cdef bytes out
    cdef unsigned char* o
    qd = u16(p + 4)
    for i in range(qd):
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 4 > n:
            qd = 0
            pos = 12
            break
        pos += 4
    qend = pos
    total = u16(p + 6) + u16(p + 8) + u16(p + 10)
    for i in range(total):
        start = pos
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 10 > n:
            break
        if u16(p + pos) == T_OPT:
            opt = start
            optlen = pos + 10 + u16(p + pos + 8) - start
            if opt + optlen > n:
                opt = -1
            break
        pos += 10 + u16(p + pos + 8)
    out = PyBytes_FromStringAndSize(NULL, qend + (optlen if opt >= 0 else 0))
    o = <unsigned char*>PyBytes_AS_STRING(out)
    memcpy(o, p, qend)
    o[2] |= 0x02
    o[4] = (qd >> 8) & 0xFF
    o[5] = qd & 0xFF
    o[6] = o[7] = o[8] = o[9] = 0
    o[10] = 0
    o[11] = 1 if opt >= 0 else 0
    if opt >= 0:
        memcpy(o + qend, p + opt, optlen)
    return out


def truncate(bytes resp, Py_ssize_t limit):
    """``resp`` if it fits ``limit`` bytes; else without its additional records (but the
    OPT) if that fits, TC clear; else its header with TC set, its question and its OPT
    record (EDNS kept), every other record dropped, so the client retries over TCP."""
    cdef Py_ssize_t cut
    if PyBytes_GET_SIZE(resp) <= limit or PyBytes_GET_SIZE(resp) < 12:
        return resp
    out = _without_additional(<const unsigned char*>PyBytes_AS_STRING(resp),
                              PyBytes_GET_SIZE(resp), limit, &cut)
    if out is not None:
        return out
    return _truncated(<const unsigned char*>PyBytes_AS_STRING(resp), PyBytes_GET_SIZE(resp))
