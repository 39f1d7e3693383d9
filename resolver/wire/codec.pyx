# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# Every read below goes through a pointer after an explicit length check against the end of
# the buffer, so Cython's own bounds checks would only duplicate them.
"""DNS wire format on raw bytes: the parse of replies the iterator needs, the builders of
queries and responses, the message cache's keys and entries, and names to and from text.

Names are kept as uncompressed wire bytes in their original case (``b"\\x03www\\x07Example\\x00"``);
``name.lower()`` is the comparison key (only ASCII letters fold, and length octets are < 64 so
they never change). Records are tuples ``(owner, rdtype, rdclass, ttl, rdata)`` with names
inside rdata decompressed, so they can be written back without the original message.
"""
cimport cython
from libc.math cimport ceil
from libc.string cimport memcpy, memcmp, memset
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from resolver.wire.names cimport _fold, copy_lower_name, eq_nocase, skip_name, u16, u32



class WireError(ValueError):
    """A malformed DNS message (truncated, bad label, compression loop, ...)."""


cdef enum:
    MAX_NAME = 255
    T_OPT = 41

from resolver.limits import DEFAULT as _LIMITS
DEF_MAX_JUMPS = _LIMITS.max_pointer_jumps
cdef unsigned int NO_TTL = 0xFFFFFFFF     # no record: ttl_offsets' smallest TTL

cdef enum:
    NAMES_SLOTS = 512       # the compression table's slots (a power of two)
    NAMES_KEPT = 384        # endings it remembers at most (three quarters full)

cdef struct Names:
    unsigned int used
    unsigned int hash[512]
    unsigned short at[512]  # 0: an empty slot (no name starts in the header)

# rdata layouts with embedded (possibly compressed) names: (bytes before the first name,
# number of names, bytes after the names). Only these types may be compressed (RFC 3597 4,
# plus SRV/DNAME which some servers compress anyway).
cdef inline bint _name_layout(unsigned int t, Py_ssize_t* pre, int* nnames,
                              Py_ssize_t* post) noexcept:
    """The layout of a type with names in its rdata; False for the others (A and AAAA among
    them: no look-up for the records every reply carries)."""
    pre[0] = 0
    nnames[0] = 1
    post[0] = 0
    if t == 2 or t == 3 or t == 4 or t == 5 or t == 7 or t == 8 or t == 9 or t == 12 or t == 39:
        return True
    if t == 6:                          # SOA: two names, then five 32-bit fields
        nnames[0] = 2
        post[0] = 20
        return True
    if t == 14 or t == 17:
        nnames[0] = 2
        return True
    if t == 15 or t == 18 or t == 21 or t == 36:
        pre[0] = 2
        return True
    if t == 33:                         # SRV: priority, weight, port
        pre[0] = 6
        return True
    return False




cdef Py_ssize_t _read_name(const unsigned char* buf, Py_ssize_t n, Py_ssize_t off,
                           unsigned char* out, Py_ssize_t* outlen, int max_jumps) except -2:
    """Reads a possibly compressed name at ``off`` into ``out`` (uncompressed wire, case kept).
    Returns the offset just past the name in the original position; -1 on malformed input."""
    cdef Py_ssize_t pos = off, end = -1, olen = 0
    cdef int jumps = 0
    cdef unsigned int c, ptr
    while True:
        if pos >= n:
            return -1
        c = buf[pos]
        if c == 0:
            if olen + 1 > MAX_NAME:
                return -1
            out[olen] = 0
            olen += 1
            if end < 0:
                end = pos + 1
            outlen[0] = olen
            return end
        if (c & 0xC0) == 0xC0:
            if pos + 1 >= n:
                return -1
            ptr = ((c & 0x3F) << 8) | buf[pos + 1]
            if end < 0:
                end = pos + 2
            jumps += 1
            if jumps > max_jumps or ptr >= <unsigned int>n:
                return -1
            pos = ptr
            continue
        if (c & 0xC0) != 0:
            return -1          # 0x40/0x80 label types are obsolete/unsupported
        if pos + 1 + c > n or olen + 1 + c + 1 > MAX_NAME:
            return -1
        memcpy(out + olen, buf + pos, 1 + c)
        olen += 1 + c
        pos += 1 + c


cdef bytes _name_at(const unsigned char* buf, Py_ssize_t n, Py_ssize_t* off, int max_jumps):
    cdef unsigned char tmp[256]
    cdef Py_ssize_t olen = 0
    cdef Py_ssize_t end = _read_name(buf, n, off[0], tmp, &olen, max_jumps)
    if end < 0:
        raise WireError("malformed or looping name")
    off[0] = end
    return PyBytes_FromStringAndSize(<char*>tmp, olen)


# ---------------------------------------------------------------------------------------------
# The message cache's keys and entries


cpdef bytes cache_key(bytes qname, unsigned int qtype, unsigned int qclass,
                      unsigned int variant):
    """The message cache's key for this question (as ``resolver.cache.answer.parse_query``
    computes it from a query)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(qname), i
    cdef const unsigned char* src = <const unsigned char*>PyBytes_AS_STRING(qname)
    out = PyBytes_FromStringAndSize(NULL, n + 5)
    cdef unsigned char* d = <unsigned char*>PyBytes_AS_STRING(out)
    cdef unsigned char c
    for i in range(n):
        c = src[i]
        d[i] = c + 32 if 65 <= c <= 90 else c     # ASCII only, as bytes.lower()
    _put16(d + n, qtype)
    _put16(d + n + 2, qclass)
    d[n + 4] = <unsigned char>variant
    return out


@cython.no_gc
cdef class MsgEntry:
    """A whole response in wire form, ready to be copied, re-IDed and TTL-lowered (its
    fields are declared in codec.pxd). Not tracked by the cyclic collector: it holds bytes,
    numbers and ``parsed`` (the library's answer built from ``wire``, which never refers back
    to the entry), so it is in no reference cycle, and a cache full of answers gives a
    collector pass nothing to walk."""

    def __init__(self, bytes wire, double now, double stale_window, unsigned int ttl_cap=0xFFFFFFFF):
        self.fill(wire, now, stale_window, ttl_cap)

    cdef int fill(self, bytes wire, double now, double stale_window,
                  unsigned int ttl_cap) except -1:
        """``__init__``, for ``msg_entry``."""
        cdef Py_ssize_t qend
        cdef unsigned int min_ttl
        offsets = _ttl_offsets(wire, &min_ttl, &qend)
        self.wire = wire
        self.ttl_offsets = offsets
        self.qend = qend
        self.stored_at = now
        if min_ttl > ttl_cap:
            min_ttl = ttl_cap
        self.ttl = min_ttl
        self.expires = now + min_ttl
        self.stale_until = self.expires + stale_window
        self.hits = 0
        self.rcode = wire[3] & 0x0F
        self.prefetching = False
        self.parsed = None
        return 0

    @property
    def size(self):
        """Memory held, bytes, for the cache's byte bound: the object (96 bytes, with no
        collector header) and its two bytes objects (with their headers, as pymalloc rounds
        them)."""
        return self.nbytes()

    cdef Py_ssize_t nbytes(self):
        return PyBytes_GET_SIZE(self.wire) + PyBytes_GET_SIZE(self.ttl_offsets) + 184


cdef MsgEntry msg_entry(bytes wire, double now, double stale_window, unsigned int ttl_cap):
    """``MsgEntry(wire, now, stale_window, ttl_cap)`` without a Python call (the cache stores
    one per miss)."""
    cdef MsgEntry e = MsgEntry.__new__(MsgEntry)
    e.fill(wire, now, stale_window, ttl_cap)
    return e


cpdef long long ttl_left(double expires, double now):
    """The TTL a record stored until ``expires`` has left at ``now``: whole seconds, the
    part of a second that has begun counted (as a cached message's TTLs lose only the
    seconds that have fully passed since it was stored, and as Unbound, whose clock ticks
    in seconds, gives a fresh answer its whole TTL); 0 once expired. A microsecond is
    forgiven: ``expires`` is a sum of floating-point seconds, and 3600.0000000000005 left is
    3600, never more than the TTL stored."""
    cdef double left = expires - now - 1e-6
    if left <= 0:
        return 0
    return <long long>ceil(left)


cpdef tuple ttl_offsets(bytes wire):
    """(packed uint16 offsets of each record's TTL except OPT, smallest TTL, end of question)."""
    cdef unsigned int min_ttl
    cdef Py_ssize_t qend
    offsets = _ttl_offsets(wire, &min_ttl, &qend)
    return offsets, min_ttl, qend


cdef bytes _ttl_offsets(bytes wire, unsigned int* min_ttl_out, Py_ssize_t* qend_out):
    """``ttl_offsets``: the packed offsets, with the smallest TTL and the end of the question
    left in ``min_ttl_out`` and ``qend_out``."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(wire)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(wire), pos = 12
    cdef unsigned int qd, total, i, t, ttl, min_ttl = NO_TTL
    cdef Py_ssize_t qend
    if n < 12:
        raise WireError("short message")
    qd = u16(p + 4)
    total = u16(p + 6) + u16(p + 8) + u16(p + 10)
    for i in range(qd):
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 4 > n:
            raise WireError("truncated question")
        pos += 4
    qend = pos
    cdef Py_ssize_t k = 0
    out = PyBytes_FromStringAndSize(NULL, 2 * total)
    cdef unsigned short* offs = <unsigned short*>PyBytes_AS_STRING(out)
    for i in range(total):
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 10 > n:
            raise WireError("truncated record")
        t = u16(p + pos)
        if t != T_OPT:
            if pos + 4 > 0xFFFF:
                raise WireError("message too large to patch")
            offs[k] = <unsigned short>(pos + 4)      # native order
            k += 1
            ttl = u32(p + pos + 4)
            if ttl > 0x7FFFFFFF:     # the high bit set
                ttl = 0
            if ttl < min_ttl:
                min_ttl = ttl
        pos += 10 + u16(p + pos + 8)
        if pos > n:
            raise WireError("truncated rdata")
    if min_ttl == NO_TTL:
        min_ttl = 0
    min_ttl_out[0] = min_ttl
    qend_out[0] = qend
    return out if k == total else out[:2 * k]


# ---------------------------------------------------------------------------------------------
# Responses from authorities: the cold path


@cython.freelist(64)
cdef class Parsed:
    """What the iterator needs from an upstream reply, without dnspython (its fields are
    declared in codec.pxd, so the compiled miss path reads them as C fields)."""

    @property
    def aa(self):
        return bool(self.flags & 0x0400)

    @property
    def tc(self):
        return bool(self.flags & 0x0200)

    @property
    def qr(self):
        return bool(self.flags & 0x8000)


cdef bytes _rdata(const unsigned char* p, Py_ssize_t n, Py_ssize_t pos, Py_ssize_t rdlen,
                  unsigned int rdtype, int max_jumps):
    """The record's rdata, its names (of the types that may be compressed) decompressed:
    written into one buffer and made into bytes once."""
    cdef Py_ssize_t end = pos + rdlen, off, pre, post, olen, nlen
    cdef int k, nnames
    # at most 6 fixed bytes before the names (SRV), two names and 20 bytes after them (SOA)
    cdef unsigned char out[8 + 2 * MAX_NAME + 24]
    if not _name_layout(rdtype, &pre, &nnames, &post):
        return PyBytes_FromStringAndSize(<const char*>p + pos, rdlen)
    if pre > rdlen:
        raise WireError("short rdata")
    memcpy(out, p + pos, pre)
    olen = pre
    off = pos + pre
    for k in range(nnames):
        # A name inside rdata must not run past the rdata (it may point anywhere before).
        off = _read_name(p, end, off, out + olen, &nlen, max_jumps)
        if off < 0:
            raise WireError("malformed or looping name")
        olen += nlen
    if off + post != end:
        raise WireError("rdata length mismatch")
    memcpy(out + olen, p + off, post)
    return PyBytes_FromStringAndSize(<const char*>out, olen + post)


cpdef Parsed parse_response(bytes wire, int max_jumps=DEF_MAX_JUMPS,
                            int max_records=_LIMITS.max_records_per_section,
                            bint sections=True):
    """Parses a reply into a :class:`Parsed`; WireError for anything malformed. Without
    ``sections`` (a query, read for its question and EDNS) the records are checked as well
    but not kept: ``answer``, ``authority`` and ``additional`` are None."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(wire)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(wire), pos = 12, qstart, rdlen
    cdef unsigned int counts[3]
    cdef unsigned int qd, i, sec, rdtype, rdclass, ttl
    cdef unsigned char name[256]
    cdef Py_ssize_t nlen
    cdef bytes owner = None     # the last owner read: the next record's is most often the same
    cdef object ttl_obj = None  # the last TTL as an int: most often the next record's too
    cdef unsigned int last_ttl = 0
    cdef Parsed m = Parsed.__new__(Parsed)
    if n < 12:
        raise WireError("short message")
    m.id = u16(p)
    m.flags = u16(p + 2)
    m.rcode = p[3] & 0x0F
    qd = u16(p + 4)
    counts[0] = u16(p + 6)
    counts[1] = u16(p + 8)
    counts[2] = u16(p + 10)
    if qd > 1:
        raise WireError("more than one question")
    m.edns = False
    m.edns_flags = 0
    m.edns_payload = 0
    m.security = 0
    m.qname = None
    m.qtype = m.qclass = 0
    m.question = b""
    if qd == 1:
        qstart = pos
        m.qname = owner = _name_at(p, n, &pos, max_jumps)
        if pos + 4 > n:
            raise WireError("truncated question")
        m.qtype = u16(p + pos)
        m.qclass = u16(p + pos + 2)
        pos += 4
        m.question = PyBytes_FromStringAndSize(<const char*>p + qstart, pos - qstart)
    cdef list answer = None, authority = None, additional = None, out = None
    if sections:
        answer, authority, additional = [], [], []
    for sec in range(3):
        if counts[sec] > <unsigned int>max_records:
            raise WireError("too many records")
        if sections:
            out = answer if sec == 0 else authority if sec == 1 else additional
        for i in range(counts[sec]):
            pos = _read_name(p, n, pos, name, &nlen, max_jumps)
            if pos < 0:
                raise WireError("malformed or looping name")
            if (owner is None or PyBytes_GET_SIZE(owner) != nlen
                    or memcmp(PyBytes_AS_STRING(owner), name, nlen) != 0):
                owner = PyBytes_FromStringAndSize(<char*>name, nlen)
            if pos + 10 > n:
                raise WireError("truncated record header")
            rdtype = u16(p + pos)
            rdclass = u16(p + pos + 2)
            ttl = u32(p + pos + 4)
            rdlen = u16(p + pos + 8)
            pos += 10
            if pos + rdlen > n:
                raise WireError("truncated rdata")
            if rdtype == T_OPT:
                if sec != 2 or owner != b"\x00" or m.edns:
                    raise WireError("misplaced OPT record")
                m.edns = True
                m.edns_flags = ttl
                m.edns_payload = rdclass
                m.rcode |= ((ttl >> 24) & 0xFF) << 4
            else:
                if ttl > 0x7FFFFFFF:     # the high bit set
                    ttl = 0          # RFC 2181 8: treat as zero
                rdata = _rdata(p, n, pos, rdlen, rdtype, max_jumps)
                if out is not None:
                    if ttl_obj is None or ttl != last_ttl:
                        ttl_obj, last_ttl = ttl, ttl
                    out.append((owner, rdtype, rdclass, ttl_obj, rdata))
            pos += rdlen
    m.answer, m.authority, m.additional = answer, authority, additional
    return m


# ---------------------------------------------------------------------------------------------
# Writing


def build_query(unsigned int qid, bytes qname, unsigned int qtype, unsigned int qclass=1, *,
                bint rd=False, bint edns=True, bint do=False, unsigned int payload=1232,
                bint cd=False, bint ad=False):
    """A query in wire form (EDNS0 OPT with ``payload`` and the DO bit when asked)."""
    return query_wire(qid, qname, qtype, qclass, edns, do, payload, rd, cd, ad)


cdef bytes query_wire(unsigned int qid, bytes qname, unsigned int qtype, unsigned int qclass,
                      bint edns, bint do, unsigned int payload, bint rd=False, bint cd=False,
                      bint ad=False):
    """``build_query`` for C callers (the daemon's miss path), without a keyword call."""
    if qid > 0xFFFF or qtype > 0xFFFF or qclass > 0xFFFF or payload > 0xFFFF:
        raise ValueError("a 16-bit field of the query is out of range")
    cdef unsigned int flags = ((0x0100 if rd else 0) | (0x0020 if ad else 0)
                               | (0x0010 if cd else 0))
    cdef Py_ssize_t nlen = PyBytes_GET_SIZE(qname)
    out = PyBytes_FromStringAndSize(NULL, 12 + nlen + 4 + (11 if edns else 0))
    cdef unsigned char* d = <unsigned char*>PyBytes_AS_STRING(out)
    _header(d, qid, flags, 1, 0, 0, 1 if edns else 0)
    memcpy(d + 12, PyBytes_AS_STRING(qname), nlen)
    d += 12 + nlen
    _put16(d, qtype)
    _put16(d + 2, qclass)
    if edns:
        _opt(d + 4, payload, 0x8000 if do else 0)
    return out


def build_response(unsigned int qid, unsigned int flags, bytes question, list answer,
                   list authority, list additional, *, bint edns=False, bint do=False,
                   unsigned int payload=1232, int rcode=0):
    """A response from record tuples, its names compressed (``_put_name``): every owner, and
    the names in the rdata of the types RFC 1035 defines with names, point at the longest
    ending already written. Owners equal to the question's name point at the question, so a
    cache hit that copies the client's question case covers them too."""
    return response_wire(qid, flags, question, answer, authority, additional, edns, do,
                         payload, rcode)


cdef bytes response_wire(unsigned int qid, unsigned int flags, bytes question, list answer,
                         list authority, list additional, bint edns, bint do,
                         unsigned int payload, int rcode):
    """``build_response`` for C callers (the answer to a miss), without a keyword call."""
    if qid > 0xFFFF or payload > 0xFFFF:
        raise ValueError("a 16-bit field of the response is out of range")
    cdef unsigned int ext = (rcode >> 4) & 0xFF
    flags = (flags & 0xFFF0) | (rcode & 0x0F)
    # at most this long: every name written whole
    cdef Py_ssize_t size = 12 + len(question) + (11 if edns else 0), d, qlen_name
    cdef bytes owner, rdata
    cdef list sec
    cdef int s
    for s in range(3):
        sec = answer if s == 0 else authority if s == 1 else additional
        for rr in sec:
            owner = rr[0]
            rdata = rr[4]
            if len(rdata) > 0xFFFF or rr[1] > 0xFFFF or rr[2] > 0xFFFF or not 0 <= rr[3] <= 0xFFFFFFFF:
                raise ValueError(f"record out of range: {rr[:4]!r}, {len(rdata)} bytes of rdata")
            size += len(owner) + 10 + len(rdata)
    cdef unsigned char* buf = <unsigned char*>PyMem_Malloc(size)
    if buf == NULL:
        raise MemoryError()
    cdef Names names
    names.used = 0
    memset(names.at, 0, sizeof(names.at))
    try:
        _header(buf, qid, flags, 1 if question else 0, len(answer), len(authority),
                len(additional) + (1 if edns else 0))
        d = 12
        if question:
            qlen_name = PyBytes_GET_SIZE(question) - 4
            memcpy(buf + d, PyBytes_AS_STRING(question), PyBytes_GET_SIZE(question))
            _remember_name(&names, <const unsigned char*>PyBytes_AS_STRING(question),
                           qlen_name, d)
            d += PyBytes_GET_SIZE(question)
        for s in range(3):
            sec = answer if s == 0 else authority if s == 1 else additional
            for rr in sec:
                owner = rr[0]
                rdata = rr[4]
                d = _put_name(buf, d, <const unsigned char*>PyBytes_AS_STRING(owner),
                              PyBytes_GET_SIZE(owner), &names)
                _put16(buf + d, rr[1])
                _put16(buf + d + 2, rr[2])
                _put32(buf + d + 4, rr[3])
                d = _put_rdata(buf, d + 8, rr[1], rdata, &names)
        if edns:
            _opt(buf + d, payload, (ext << 24) | (0x8000 if do else 0))
            d += 11
        return PyBytes_FromStringAndSize(<const char*>buf, d)
    finally:
        PyMem_Free(buf)


# Name compression (RFC 1035 4.1.4): every ending of every name written whole (from one of
# its labels to the root) is remembered by its position and a hash of its letters folded to
# lower case; a name to write is looked up ending by ending, longest first, and written as
# its labels before the first ending found, then a pointer to it. Positions past 0x3FFF
# cannot be pointed at, and past NAMES_KEPT endings (a huge response) the rest are written
# whole: the table never grows.

cdef inline unsigned int _ending_hash(const unsigned char* name, Py_ssize_t pos,
                                      Py_ssize_t n) noexcept nogil:
    """FNV-1a of the name's ending at ``pos`` (to its root byte, within ``n``), ASCII
    letters folded to lower case."""
    cdef unsigned int h = 2166136261u
    while pos < n:
        h = (h ^ _fold(name[pos])) * 16777619u
        if name[pos] == 0:
            break
        pos += 1
    return h


cdef bint _same_ending(const unsigned char* out, Py_ssize_t at, const unsigned char* name,
                       Py_ssize_t pos, Py_ssize_t n) noexcept nogil:
    """Whether the name written at ``at`` of ``out`` (its pointers followed) is the ending
    of ``name`` at ``pos`` (``n`` bytes), ASCII case aside."""
    cdef unsigned int c
    cdef int jumps = 0
    while pos < n:
        c = out[at]
        if (c & 0xC0) == 0xC0:
            jumps += 1
            if jumps > 64:
                return False
            at = ((c & 0x3F) << 8) | out[at + 1]
            continue
        if c != name[pos]:
            return False
        if c == 0:
            return True
        if pos + 1 + c > n or not eq_nocase(out + at + 1, name + pos + 1, c):
            return False
        at += 1 + c
        pos += 1 + c
    return False


cdef inline void _remember(Names* t, unsigned int h, Py_ssize_t at) noexcept nogil:
    cdef unsigned int slot = h & (NAMES_SLOTS - 1)
    if t.used >= NAMES_KEPT or at > 0x3FFF:
        return
    while t.at[slot] != 0:
        slot = (slot + 1) & (NAMES_SLOTS - 1)
    t.hash[slot] = h
    t.at[slot] = <unsigned short>at
    t.used += 1


cdef void _remember_name(Names* t, const unsigned char* name, Py_ssize_t n,
                         Py_ssize_t at) noexcept nogil:
    """Remembers every ending but the root of the name (``n`` bytes) written whole at
    ``at``."""
    cdef Py_ssize_t pos = 0
    while pos < n and name[pos] != 0 and name[pos] < 64:
        _remember(t, _ending_hash(name, pos, n), at + pos)
        pos += 1 + name[pos]


cdef Py_ssize_t _put_name(unsigned char* out, Py_ssize_t d, const unsigned char* name,
                          Py_ssize_t n, Names* t) noexcept nogil:
    """Writes the uncompressed name ``name`` (``n`` bytes) at ``d`` of ``out``, compressed
    against the endings ``t`` remembers, and remembers its own new endings: the position
    past it. A name that does not read as labels ending in the root is copied as it is."""
    cdef Py_ssize_t pos = 0, j, found
    cdef unsigned int h, slot
    cdef unsigned int hashes[128]
    cdef int k = 0
    while pos < n and name[pos] != 0:
        if name[pos] > 63 or pos + 1 + name[pos] >= n or k >= 128:
            memcpy(out + d, name, n)
            return d + n
        h = _ending_hash(name, pos, n)
        slot = h & (NAMES_SLOTS - 1)
        found = 0
        while t.at[slot] != 0:
            if t.hash[slot] == h and _same_ending(out, t.at[slot], name, pos, n):
                found = t.at[slot]
                break
            slot = (slot + 1) & (NAMES_SLOTS - 1)
        if found:
            memcpy(out + d, name, pos)
            out[d + pos] = 0xC0 | (found >> 8)
            out[d + pos + 1] = found & 0xFF
            for j in range(k):              # the labels written before the pointer
                _remember(t, hashes[j], d + _label_at(name, j))
            return d + pos + 2
        hashes[k] = h
        k += 1
        pos += 1 + name[pos]
    if pos >= n:                            # no root byte: not a name
        memcpy(out + d, name, n)
        return d + n
    memcpy(out + d, name, pos + 1)
    for j in range(k):
        _remember(t, hashes[j], d + _label_at(name, j))
    return d + pos + 1


cdef inline Py_ssize_t _label_at(const unsigned char* name, int j) noexcept nogil:
    """Where the ``j``th label of the (checked) name starts."""
    cdef Py_ssize_t pos = 0
    while j > 0:
        pos += 1 + name[pos]
        j -= 1
    return pos


cdef inline int _named_rdata(unsigned int t, Py_ssize_t* pre) noexcept nogil:
    """How many names lead the rdata of type ``t`` after ``pre`` bytes, for the types whose
    rdata names may be compressed (RFC 1035's: NS, MD, MF, CNAME, SOA, MB, MG, MR, PTR,
    MINFO, MX; RFC 3597 4 forbids it for every other); 0 for the others."""
    pre[0] = 0
    if t == 2 or t == 3 or t == 4 or t == 5 or t == 7 or t == 8 or t == 9 or t == 12:
        return 1
    if t == 6 or t == 14:
        return 2
    if t == 15:
        pre[0] = 2
        return 1
    return 0


cdef Py_ssize_t _put_rdata(unsigned char* out, Py_ssize_t d, unsigned int t, bytes rdata,
                           Names* names) noexcept:
    """Writes the rdata length at ``d`` and the rdata after it, its names compressed for the
    types ``_named_rdata`` allows (as they are when they do not read as names): the
    position past it."""
    cdef const unsigned char* r = <const unsigned char*>PyBytes_AS_STRING(rdata)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(rdata), pre, pos, end, w
    cdef int count = _named_rdata(t, &pre), i
    w = d + 2
    if count and pre <= n:
        pos = pre
        for i in range(count):
            end = skip_name(r, n, pos)
            if end < 0 or r[end - 1] != 0:  # not an uncompressed name
                count = 0
                break
            pos = end
    if count:
        memcpy(out + w, r, pre)
        w += pre
        pos = pre
        for i in range(count):
            end = skip_name(r, n, pos)
            w = _put_name(out, w, r + pos, end - pos, names)
            pos = end
        memcpy(out + w, r + pos, n - pos)
        w += n - pos
    else:
        memcpy(out + w, r, n)
        w += n
    _put16(out + d, <unsigned int>(w - d - 2))
    return w


cdef inline void _put16(unsigned char* d, unsigned int v) noexcept:
    d[0] = (v >> 8) & 0xFF
    d[1] = v & 0xFF


cdef inline void _put32(unsigned char* d, unsigned int v) noexcept:
    d[0] = (v >> 24) & 0xFF
    d[1] = (v >> 16) & 0xFF
    d[2] = (v >> 8) & 0xFF
    d[3] = v & 0xFF


cdef inline void _header(unsigned char* d, unsigned int qid, unsigned int flags, unsigned int qd,
                         unsigned int an, unsigned int ns, unsigned int ar) noexcept:
    _put16(d, qid)
    _put16(d + 2, flags)
    _put16(d + 4, qd)
    _put16(d + 6, an)
    _put16(d + 8, ns)
    _put16(d + 10, ar)


cdef inline void _opt(unsigned char* d, unsigned int payload, unsigned int ttl) noexcept:
    """An OPT record for the root name (11 bytes): class is the UDP payload, TTL holds the
    extended rcode, version and flags, no options."""
    d[0] = 0
    _put16(d + 1, T_OPT)
    _put16(d + 3, payload)
    _put32(d + 5, ttl)
    _put16(d + 9, 0)


# ---------------------------------------------------------------------------------------------
# Names


cpdef bint same_name(bytes a, bytes b):
    """``a.lower() == b.lower()`` without the copies."""
    if a is None or b is None:
        raise TypeError("names must be bytes")
    cdef Py_ssize_t n = PyBytes_GET_SIZE(a)
    if n != PyBytes_GET_SIZE(b):
        return False
    return eq_nocase(<const unsigned char*>PyBytes_AS_STRING(a),
                      <const unsigned char*>PyBytes_AS_STRING(b), n)


cpdef bint is_subdomain(bytes child, bytes parent):
    """True if ``child`` is ``parent`` or below it (as ``resolver.wire.codec.is_subdomain``)."""
    if child is None or parent is None:
        raise TypeError("names must be bytes")
    cdef const unsigned char* c = <const unsigned char*>PyBytes_AS_STRING(child)
    cdef Py_ssize_t cn = PyBytes_GET_SIZE(child), pn = PyBytes_GET_SIZE(parent), pos = 0
    if pn > cn:
        return False
    while cn - pos > pn:
        pos += 1 + c[pos]
        if pos >= cn:
            return False
    if cn - pos != pn:
        return False
    return eq_nocase(c + pos, <const unsigned char*>PyBytes_AS_STRING(parent), pn)


cpdef bint under_any(bytes name, tuple parents):
    """True if ``name`` is one of ``parents`` (wire names) or below one, ASCII case ignored:
    ``is_subdomain`` against each, with the name's labels walked once."""
    if name is None:
        raise TypeError("names must be bytes")
    cdef const unsigned char* c = <const unsigned char*>PyBytes_AS_STRING(name)
    cdef Py_ssize_t cn = PyBytes_GET_SIZE(name), pos = 0, pn
    cdef int k = 0, i
    cdef Py_ssize_t starts[128]         # where each label starts (a name has at most 127)
    while pos < cn and k < 128:
        starts[k] = pos
        k += 1
        if c[pos] == 0:
            break
        pos += 1 + c[pos]
    for parent in parents:
        pn = PyBytes_GET_SIZE(<bytes?>parent)
        i = k - 1
        while i >= 0 and starts[i] > cn - pn:
            i -= 1
        if i >= 0 and starts[i] == cn - pn and eq_nocase(
                c + starts[i], <const unsigned char*>PyBytes_AS_STRING(parent), pn):
            return True
    return False


cpdef object dname_substitute(bytes name, bytes owner, bytes target):
    """RFC 6672 2.2: ``name``, strictly below a DNAME at ``owner``, with that suffix
    replaced by the DNAME's ``target``; None when ``name`` is not below ``owner``. The
    result may be longer than a name may be (YXDOMAIN): the caller checks."""
    if len(name) <= len(owner) or not is_subdomain(name, owner):
        return None
    return name[:len(name) - len(owner)] + target


cpdef int label_count(bytes name) except -1:
    """Labels in ``name`` not counting the root."""
    if name is None:
        raise TypeError("label_count() needs a wire name, not None")
    cdef const unsigned char* c = <const unsigned char*>PyBytes_AS_STRING(name)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(name), pos = 0
    cdef int k = 0
    while pos < n and c[pos] != 0:
        pos += 1 + c[pos]
        k += 1
    return k


def parent(bytes name):
    """``name`` without its first label (the root is its own parent)."""
    if len(name) <= 1:
        return name
    return name[name[0] + 1:]


cpdef bytes strip_to(bytes name, int labels):
    """The ancestor of ``name`` with ``labels`` labels (``name`` itself if it has no more)."""
    cdef int k = label_count(name)
    cdef const unsigned char* c = <const unsigned char*>PyBytes_AS_STRING(name)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(name), pos = 0
    while k > labels and pos < n:
        pos += 1 + c[pos]
        k -= 1
    if pos == 0:
        return name
    return PyBytes_FromStringAndSize(<const char*>c + pos, n - pos) if pos < n else b""


cdef extern from "Python.h":
    object PyUnicode_DecodeASCII(const char* s, Py_ssize_t size, const char* errors)


# The longest a wire name's text can be: 255 bytes, each at most 4 characters (\DDD).
DEF NAME_TEXT_MAX = 4 * 255 + 2


def to_text(bytes name not None):
    """Presentation form with a trailing dot, as dnspython writes it: a byte that is one of
    ``."\\();@$`` escaped by a backslash, one outside the printable ASCII as ``\\DDD``.
    ValueError if ``name`` is not a whole wire name."""
    cdef const unsigned char* p = name
    cdef Py_ssize_t n = PyBytes_GET_SIZE(name), pos = 0, end, o = 0
    cdef unsigned char ch
    cdef char stack[NAME_TEXT_MAX]
    cdef char* buf = stack
    if n == 1 and p[0] == 0:
        return "."
    if 4 * n + 2 > NAME_TEXT_MAX:
        buf = <char*>PyMem_Malloc(4 * n + 2)
        if buf == NULL:
            raise MemoryError()
    try:
        while True:
            if pos >= n:
                raise ValueError(f"name without its root label: {name!r}")
            end = pos + 1 + p[pos]
            if end == pos + 1:
                break
            if end > n:
                raise ValueError(f"label past the end of the name: {name!r}")
            pos += 1
            while pos < end:
                ch = p[pos]
                pos += 1
                if (ch == 46 or ch == 92 or ch == 34 or ch == 40 or ch == 41 or ch == 59
                        or ch == 64 or ch == 36):
                    buf[o] = 92
                    buf[o + 1] = ch
                    o += 2
                elif 0x21 <= ch <= 0x7E:
                    buf[o] = ch
                    o += 1
                else:
                    buf[o] = 92
                    buf[o + 1] = 48 + ch // 100
                    buf[o + 2] = 48 + (ch // 10) % 10
                    buf[o + 3] = 48 + ch % 10
                    o += 4
            buf[o] = 46
            o += 1
        return PyUnicode_DecodeASCII(buf, o, NULL)
    finally:
        if buf != stack:
            PyMem_Free(buf)


def from_text(str text):
    """Wire form of an absolute or relative (taken as absolute) name; WireError if invalid."""
    import dns.name
    try:
        return dns.name.from_text(text).to_wire()
    except Exception as exc:
        raise WireError(f"bad name {text!r}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# EDNS: where the OPT record is, its options, and padding (RFC 7830)

#: the EDNS option codes of the name server identifier (RFC 5001) and of padding (RFC 7830)
EDNS_NSID = 3
EDNS_PADDING = 12
EDNS_KEEPALIVE = 11


cdef Py_ssize_t _records_at(const unsigned char* p, Py_ssize_t n) noexcept:
    """Where the records of the message at ``p`` start (past its question section), or -1
    for a message too short or malformed to say."""
    cdef Py_ssize_t pos = 12
    cdef unsigned int i
    if n < 12:
        return -1
    for i in range(u16(p + 4)):
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 4 > n:
            return -1
        pos += 4
    return pos


cdef Py_ssize_t opt_at(const unsigned char* p, Py_ssize_t n) noexcept:
    """Where the OPT record of the well-formed message at ``p`` starts when it is its last
    record (where this engine's messages have it) and owned by the root, as RFC 6891 6.1.2
    has it (its fields then at fixed offsets), else -1."""
    cdef Py_ssize_t pos = _records_at(p, n), last = -1
    cdef unsigned int i
    if pos < 0:
        return -1
    for i in range(u16(p + 6) + u16(p + 8) + u16(p + 10)):
        last = pos
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 10 > n:
            return -1
        pos += 10 + u16(p + pos + 8)
    if last < 0 or pos != n or p[last] != 0:
        return -1
    return last if u16(p + last + 1) == 41 else -1


cdef Py_ssize_t option_length(const unsigned char* p, Py_ssize_t n,
                              unsigned int code) noexcept:
    """The length of the data of the EDNS option ``code`` in the OPT of the query at ``p``
    (its first such option), or -1 when it carries none."""
    cdef Py_ssize_t pos = _records_at(p, n), end, o
    cdef unsigned int i
    if pos < 0:
        return -1
    for i in range(u16(p + 6) + u16(p + 8) + u16(p + 10)):
        pos = skip_name(p, n, pos)
        if pos < 0 or pos + 10 > n:
            return -1
        end = pos + 10 + u16(p + pos + 8)
        if end > n:
            return -1
        if u16(p + pos) == 41:
            o = pos + 10
            while o + 4 <= end:
                if u16(p + o) == code:
                    return u16(p + o + 2)
                o += 4 + u16(p + o + 2)
            return -1
        pos = end
    return -1


cdef bint asks_option(const unsigned char* p, Py_ssize_t n, unsigned int code) noexcept:
    """Whether the query at ``p`` carries the EDNS option ``code`` in its OPT (padding, RFC
    7830, to have its answer padded; NSID, RFC 5001, to be told the server's identifier)."""
    return option_length(p, n, code) >= 0


def query_asks_option(bytes q, unsigned int code) -> bool:
    """``asks_option`` for Python callers."""
    return asks_option(<const unsigned char*>PyBytes_AS_STRING(q), PyBytes_GET_SIZE(q), code)


cpdef bytes with_option(bytes wire, unsigned int code, bytes data):
    """``wire`` (a message whose last record is its OPT) with the EDNS option ``code``
    holding ``data`` closing its OPT; ``wire`` itself when its OPT is not its last record or
    the message would pass 65,535 octets."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(wire)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(wire), size = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t opt = opt_at(p, n), rdlen
    if opt < 0 or n + 4 + size > 65535:
        return wire
    rdlen = u16(p + opt + 9) + 4 + size
    return (wire[:opt + 9] + bytes((rdlen >> 8, rdlen & 0xFF)) + wire[opt + 11:]
            + bytes((code >> 8, code & 0xFF, size >> 8, size & 0xFF)) + data)


cpdef bytes with_padding(bytes wire, unsigned int block):
    """``wire`` (a message whose last record is its OPT) with a padding option (RFC 7830)
    closing its OPT, so that the message is the smallest multiple of ``block`` octets that
    holds it, at most 65,535 (a stream's frame): RFC 8467's block-length strategy, as
    Unbound pads. ``wire`` itself when its OPT is not its last record, or ``block`` is 0."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(wire), size
    if block == 0:
        return wire
    size = ((n + 3) // block + 1) * block
    if size > 65535:
        size = 65535
    if size < n + 4:
        return wire
    return with_option(wire, EDNS_PADDING, bytes(size - n - 4))
