# cython: language_level=3
"""The rrset cache's store path in C (``RRsetCache.store_records`` / ``store`` and
``ByteLRU.put`` for rrset entries): every upstream reply stores one to three rrsets, and
as Python this was a dozen calls per rrset. Same semantics as the Python it replaces
(``resolver.cache`` delegates here); the entries stay ``cache.RRsetEntry`` objects.
"""
from resolver._iterstep cimport group

cdef object _Entry = None       # resolver.cache.RRsetEntry, set by cache.py (no import cycle)


def set_entry_class(cls):
    global _Entry
    _Entry = cls


cdef Py_ssize_t _size(bytes name, list rdatas, list rrsigs):
    """``RRsetEntry.size`` of a new positive entry (no SOA)."""
    cdef Py_ssize_t n = 200 + len(name) + 40 * len(rdatas)
    cdef object rd, r
    for rd in rdatas:
        n += len(rd)
    for r in rrsigs:
        n += len(r[0]) + len(r[4]) + 80
    return n


cpdef bint store_entry(object rrcache, object entry, object key=None,
                       Py_ssize_t size=-1) except -1:
    """``RRsetCache.store``: stores unless a fresh entry of a higher rank is there; True if
    stored. ``key`` and ``size`` when the caller has them already."""
    if key is None:
        key = (entry.name.lower(), entry.rdtype, entry.rdclass)
    lru = rrcache.lru
    data = lru.data
    old = data.get(key)
    if old is not None and old.rank > entry.rank and old.expires >= entry.expires - entry.ttl:
        return False
    # ByteLRU.put
    old = data.pop(key, None)
    if old is not None:
        lru.bytes -= old.size + len(key)
    if size < 0:
        size = entry.size
    size += len(key)
    max_bytes = lru.max_bytes
    if size > max_bytes:
        return True
    data[key] = entry
    lru.bytes += size
    while lru.bytes > max_bytes:
        k, v = data.popitem(last=False)
        lru.bytes -= v.size + len(k)
        lru.evictions += 1
        if lru._on_evict:
            lru._on_evict()
    return True


cpdef store_records(object rrcache, list records, object rank, double now,
                    object rrsigs=()):
    """``RRsetCache.store_records``: groups record tuples into rrsets (one TTL each, the
    smallest: RFC 2181 5.2) and stores them, with the RRSIGs covering them."""
    cdef dict groups = group(records)
    cdef dict sigs = {}
    cdef list rdatas, mine
    cdef bytes owner
    for rec in rrsigs:
        rd = rec[4]
        if len(rd) >= 2:
            covered = (rd[0] << 8) | rd[1]
            sigs.setdefault((rec[0].lower(), covered, rec[2]), []).append(rec)
    lim = rrcache.limits
    lo, hi = lim.min_ttl, lim.max_ttl
    for key, g in groups.items():
        owner, ttl, rdatas = g
        ttl = min(max(ttl, lo), hi)
        mine = sigs.get(key, []) if sigs else []
        entry = _Entry(owner, key[1], key[2], ttl, now + ttl, rank, rdatas, mine)
        store_entry(rrcache, entry, key, _size(owner, rdatas, mine))
