# cython: language_level=3
"""The cache in C: its classes (``resolver.cache`` re-exports them), entries and store
paths. Every upstream reply stores one to three rrsets and every miss a message; as Python
this was a dozen calls and a generated dataclass ``__init__`` per rrset, and the miss path
still paid about 25 attribute look-ups on the Python cache classes per query (their stores,
LRUs, limits and counters), which are C fields now.
"""
from collections import OrderedDict

cimport cython

from cpython.dict cimport PyDict_GetItemWithError
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE

cdef extern from "Python.h":
    int PyObject_GC_IsTracked(object o)
    void PyObject_GC_UnTrack(void* o)

from resolver.state cimport LimitValues, limit_values
from resolver.iterator.replies cimport group
from resolver.wire.codec cimport same_name, ttl_left
from resolver.wire.names cimport lower
from resolver.cache.dicts cimport dict_get
from resolver.limits import DEFAULT
from resolver.wire.codec cimport MsgEntry, msg_entry

from resolver.cache.ranks import NXDOMAIN_TYPE

# OrderedDict.move_to_end as a descriptor, called without a look-up on the instance (the
# failure records).
cdef object _move_to_end = OrderedDict.move_to_end


cdef RRsetEntry rrset_get(ByteLRU lru, bytes lname, int rdtype, int rdclass):
    """The rrset cache's entry for (``lname``, ``rdtype``, ``rdclass``), marked
    ``referenced``, or None; ``lname`` is lower-cased. Found through the name index: one
    look-up of the name, then its few entries, with no key tuple built or hashed."""
    cdef RRsetEntry e = dict_get(lru.names, lname)
    while e is not None:
        if e.rdtype == rdtype and e.rdclass == rdclass:
            e.referenced = True
            return e
        e = e.sibling
    return None


cdef bint holds_name(ByteLRU lru, bytes lname) except -1:
    """Whether the rrset cache holds any entry (of any type, fresh or not) for ``lname``
    (lower-cased)."""
    return dict_get(lru.names, lname) is not None


cdef int _link(ByteLRU lru, object key, object value) except -1:
    """Enters ``value``, just stored under rrset key ``key``, in the name index."""
    if lru.names is not None:
        (<RRsetEntry?>value).sibling = dict_get(lru.names, key[0])
        lru.names[key[0]] = value
    return 0


cdef int _unlink(ByteLRU lru, object key, object value) except -1:
    """Takes ``value``, no longer stored under rrset key ``key``, out of the name index."""
    if lru.names is None:
        return 0
    cdef RRsetEntry e = value
    cdef RRsetEntry prev = dict_get(lru.names, key[0])
    if prev is e:
        if e.sibling is None:
            del lru.names[key[0]]
        else:
            lru.names[key[0]] = e.sibling
    else:
        while prev is not None and prev.sibling is not e:
            prev = prev.sibling
        if prev is not None:
            prev.sibling = e.sibling
    e.sibling = None
    return 0


cdef tuple untrack(tuple t):
    """``t``, out of the cyclic collector's sight when none of its items is in it (bytes,
    numbers, tuples of them): such a tuple can be in no reference cycle. The collector
    drops these itself, but only at a pass that walks them first; a cache entry's tuples
    leave at once."""
    cdef Py_ssize_t i, n = PyTuple_GET_SIZE(t)
    if n == 0 or not PyObject_GC_IsTracked(t):
        return t
    for i in range(n):
        if PyObject_GC_IsTracked(<object>PyTuple_GET_ITEM(t, i)):
            return t
    PyObject_GC_UnTrack(<void*>t)
    return t


cdef tuple _records(object records):
    """Record tuples as an entry keeps them: a tuple, all out of the collector's sight."""
    cdef tuple out = tuple(records)
    for r in out:
        if type(r) is tuple:
            untrack(<tuple>r)
    return untrack(out)


@cython.no_gc
cdef class RRsetEntry:
    """A cached rrset (or a negative entry when ``negative`` is set): ``negative`` is 3 for
    NXDOMAIN and 0 for NODATA, with the SOA (and proof) records kept as tuples in ``soa``;
    ``addrs`` is the address rdatas as text, filled in by the iterator the first time it
    needs them. Compared by identity, as the cache holds one object per key.

    Its rdatas and records are held in tuples, and the entry is not tracked by the cyclic
    collector: it holds only bytes, numbers and tuples of them (``addrs``: a list of text),
    so it can be part of no reference cycle, and a full cache adds nothing for a collector
    pass to walk (its tuples leave the collector's sight as they are stored: ``untrack``)."""

    def __init__(self, name, rdtype, rdclass, ttl, expires, rank, rdatas, rrsigs=None,
                 negative=None, soa=None, addrs=None):
        _fill(self, name, rdtype, rdclass, ttl, expires, rank, rdatas, rrsigs, negative, soa)
        self.addrs = addrs

    def __repr__(self):
        return (f"RRsetEntry(name={self.name!r}, rdtype={self.rdtype!r}, "
                f"rdclass={self.rdclass!r}, ttl={self.ttl!r}, expires={self.expires!r}, "
                f"rank={self.rank!r}, rdatas={self.rdatas!r}, rrsigs={self.rrsigs!r}, "
                f"negative={self.negative!r}, soa={self.soa!r})")

    @property
    def size(self) -> int:
        return _size(self.name, self.rdatas, self.rrsigs, self.soa, self.proofs)

    cpdef list proof_records(self, double now):
        """The NSEC/NSEC3 records (with RRSIGs) that prove a wildcard-expanded rrset (RFC
        4035 3.1.3.3), with the TTL remaining at ``now``; [] for other rrsets."""
        if not self.proofs:
            return []
        ttl = ttl_left(self.expires, now)
        return [(o, t, c, min(ttl, rt), rd) for (o, t, c, rt, rd) in self.proofs]

    cpdef list negative_records(self, double now):
        """The SOA (and proofs) of a negative entry with the TTL remaining at ``now``."""
        ttl = ttl_left(self.expires, now)
        return [(o, t, c, min(ttl, rt), rd) for (o, t, c, rt, rd) in self.soa]

    cpdef list records(self, double now):
        """Record tuples with the TTL remaining at ``now``."""
        ttl = ttl_left(self.expires, now)
        return [(self.name, self.rdtype, self.rdclass, ttl, rd) for rd in self.rdatas]

    cpdef list sig_records(self, double now):
        ttl = ttl_left(self.expires, now)
        return [(o, t, c, ttl, rd) for (o, t, c, _ttl, rd) in self.rrsigs]


cdef int _fill(RRsetEntry e, name, rdtype, rdclass, ttl, double expires, rank, rdatas, rrsigs,
               negative, soa) except -1:
    """``RRsetEntry.__init__`` (without ``addrs``)."""
    e.name, e.rdtype, e.rdclass, e.ttl, e.expires, e.rank = (
        name, rdtype, rdclass, ttl, expires, rank)
    e.rdatas = untrack(tuple(rdatas))
    e.rrsigs = () if rrsigs is None else _records(rrsigs)
    e.negative = negative
    e.soa = () if soa is None else _records(soa)
    e.proofs = None
    return 0


cdef RRsetEntry _entry(name, rdtype, rdclass, ttl, double expires, rank, rdatas, rrsigs=None,
                       negative=None, soa=None):
    """``RRsetEntry(...)`` without a Python call (every reply stores a few)."""
    cdef RRsetEntry e = RRsetEntry.__new__(RRsetEntry)
    _fill(e, name, rdtype, rdclass, ttl, expires, rank, rdatas, rrsigs, negative, soa)
    return e


# The byte bound counts what entries really hold in CPython (64-bit), so that the process's
# memory follows the configured cache size: object headers and the allocator's rounding, the
# tuples of an entry, and the dict's entry and index and the eviction queue's slots for
# each key.
# tests/resolver/test_cache_memory.py measures the real cost against these with tracemalloc.
cdef enum:
    BYTES_HEAD = 40     # a bytes object beyond its data, rounded as pymalloc rounds
    LRU_SLOT = 112      # per key: the dict's entry and index, the queue's slots (with the
                        # spare room both keep between resizes)
    RRSET_BASE = 128    # RRsetEntry itself (no collector header: see the class)
    TUPLE_HEAD = 40     # a tuple beyond its item pointers (8 bytes each); () is shared: 0
    RECORD_TUPLE = 96   # a record tuple (owner, type, class, ttl, rdata) in rrsigs or soa
    KEY_TUPLE = 64      # an rrset key (lower-cased name, type, class)
    NAME_SLOT = 48      # the name index's share per rrset key (ByteLRU.names)


cdef inline Py_ssize_t _bytes_cost(object b):
    return BYTES_HEAD + len(b)


cdef inline Py_ssize_t _tuple_cost(tuple t):
    return TUPLE_HEAD + 8 * len(t) if t else 0


cdef Py_ssize_t _records_cost(tuple records):
    """A tuple of record tuples: theirs and their rdatas' bytes (owners are shared)."""
    if not records:
        return 0
    cdef Py_ssize_t n = _tuple_cost(records)
    for r in records:
        n += RECORD_TUPLE + _bytes_cost(r[4])
    return n


cdef Py_ssize_t _size(bytes name, tuple rdatas, tuple rrsigs, tuple soa, tuple proofs):
    """``RRsetEntry.size``."""
    cdef Py_ssize_t n = RRSET_BASE + _bytes_cost(name) + _tuple_cost(rdatas)
    cdef object rd
    for rd in rdatas:
        n += _bytes_cost(rd)
    return n + _records_cost(rrsigs) + _records_cost(soa) + _records_cost(proofs)


cdef Py_ssize_t _key_cost(object key):
    """What a key of the LRU holds beyond its value: a message key is a bytes object, an
    rrset key a tuple with its own lower-cased name, counted in the name index."""
    if type(key) is bytes:
        return LRU_SLOT + _bytes_cost(key)
    return LRU_SLOT + KEY_TUPLE + NAME_SLOT + _bytes_cost(key[0])


cpdef bint store_entry(RRsetCache rrcache, object entry, object key=None,
                       Py_ssize_t size=-1) except -1:
    """``RRsetCache.store``: stores unless a fresh entry of a higher rank is there; True if
    stored. ``key`` and ``size`` when the caller has them already."""
    if key is None:
        key = (lower(entry.name), entry.rdtype, entry.rdclass)
    untrack(key)
    cdef ByteLRU lru = rrcache.lru
    cdef RRsetEntry old = dict_get(lru.data, key)
    cdef RRsetEntry new = entry
    if old is not None and old.rank > new.rank and old.expires >= new.expires - new.ttl:
        return False
    if size < 0:
        size = entry.size
    _put(lru, key, old, entry, size)
    return True


cpdef keep_proofs(RRsetCache rrcache, bytes name, object rdtype, object rdclass,
                  list proofs):
    """Keeps ``proofs`` (the NSEC/NSEC3 and RRSIG records proving that the cached rrset was
    expanded from a wildcard) with that rrset, if it is cached, so that an answer rebuilt
    from the cache carries them as the first one did."""
    key = (lower(name), rdtype, rdclass)
    cdef ByteLRU lru = rrcache.lru
    cdef RRsetEntry e = dict_get(lru.data, key)
    if e is None or e.negative is not None or not proofs:
        return
    before = e.size
    e.proofs = _records(proofs)
    lru.bytes += e.size - before


cdef inline bint _take_mark(object v) except -1:
    """Whether ``v`` was read since it was stored or last spared (its ``referenced``
    mark), clearing the mark."""
    cdef bint marked
    if type(v) is RRsetEntry:
        marked = (<RRsetEntry>v).referenced
        (<RRsetEntry>v).referenced = False
    elif type(v) is MsgEntry:
        marked = (<MsgEntry>v).referenced
        (<MsgEntry>v).referenced = False
    else:
        marked = getattr(v, "referenced", False)
        if marked:
            v.referenced = False
    return marked


cdef class ByteLRU:
    """A map bounded by the summed ``size`` of its values plus what their keys and the map
    itself hold per key, evicting the least recently stored entry not read since (second
    chance, or CLOCK).

    ``data`` is a plain dict; the eviction order is a queue of (key, value) pairs in C,
    appended on every store. Reading an entry marks it ``referenced`` (a C field of
    RRsetEntry and MsgEntry, the attribute of any other value) rather than moving it, so a
    hit costs no reordering: an entry due for eviction that was read since it was stored
    is spared once, queued again with its mark cleared. A pair whose key no longer holds
    that value (replaced, popped) is skipped when it comes up, and the queue is compacted
    to the live pairs when those stale ones outnumber them.

    With ``index_names`` it holds the rrset cache: each value an RRsetEntry stored under its
    own rrset key (lower-cased owner, type, class), and ``names`` indexes them by owner (the
    first entry, the others chained by ``sibling``), so a look-up (``rrset_get``) finds an
    entry, or that the name has none, without a key tuple."""

    def __cinit__(self):
        self._queue = NULL
        self._head = self._count = self._cap = 0

    def __init__(self, max_bytes, on_evict=None, index_names=False):
        self.max_bytes = max(0, int(max_bytes))
        self.data = {}
        self.bytes = 0
        self.evictions = 0
        self._on_evict = on_evict
        if index_names:
            self.names = {}

    def __dealloc__(self):
        self._drop_queue()
        PyMem_Free(self._queue)

    def __len__(self):
        return len(self.data)

    @property
    def queued(self):
        """Pairs in the eviction queue: the live entries and stale pairs not yet dropped
        (at most about twice the entries)."""
        return self._count

    def get(self, key):
        """The value, marked read (spared once from eviction), or None."""
        v = dict_get(self.data, key)
        if v is not None:
            lru_mark(v)
        return v

    def peek(self, key):
        """The value, not marked, or None."""
        return dict_get(self.data, key)

    def put(self, key, value):
        lru_put(self, key, value, value.size)

    def pop(self, key):
        old = self.data.pop(key, None)
        if old is not None:
            self.bytes -= old.size + _key_cost(key)
            _unlink(self, key, old)

    def clear(self):
        self.data.clear()
        self.bytes = 0
        self._drop_queue()
        cdef RRsetEntry e, after
        if self.names is not None:
            for first in self.names.values():
                e = first
                while e is not None:
                    after = e.sibling
                    e.sibling = None
                    e = after
            self.names.clear()

    cdef void _drop_queue(self) noexcept:
        cdef Py_ssize_t i, j
        for i in range(self._count):
            j = 2 * ((self._head + i) % self._cap)
            Py_XDECREF(self._queue[j])
            Py_XDECREF(self._queue[j + 1])
        self._head = self._count = 0

    cdef int _push(self, object key, object value) except -1:
        """Queues ``(key, value)`` at the recent end, compacting or growing the queue when
        it is full."""
        if self._count == self._cap:
            if self._count > 2 * len(self.data) + 64:
                self._compact()
            else:
                self._grow(max(64, 2 * self._cap))
        cdef Py_ssize_t j = 2 * ((self._head + self._count) % self._cap)
        Py_INCREF(key)
        Py_INCREF(value)
        self._queue[j] = <PyObject*>key
        self._queue[j + 1] = <PyObject*>value
        self._count += 1
        return 0

    cdef int _grow(self, Py_ssize_t cap) except -1:
        """A queue of ``cap`` pairs holding the present ones in order, from its start."""
        cdef PyObject** q = <PyObject**>PyMem_Malloc(2 * cap * sizeof(PyObject*))
        if q == NULL:
            raise MemoryError()
        cdef Py_ssize_t i, j
        for i in range(self._count):
            j = 2 * ((self._head + i) % self._cap)
            q[2 * i] = self._queue[j]
            q[2 * i + 1] = self._queue[j + 1]
        PyMem_Free(self._queue)
        self._queue, self._cap, self._head = q, cap, 0
        return 0

    cdef int _compact(self) except -1:
        """Drops the stale pairs (and any second pair of a live entry), keeping the order."""
        cdef Py_ssize_t i, j, n = self._count, kept = 0
        cdef PyObject* k
        cdef PyObject* v
        seen = set()
        for i in range(n):
            j = 2 * ((self._head + i) % self._cap)
            k, v = self._queue[j], self._queue[j + 1]
            if (PyDict_GetItemWithError(self.data, <object>k) == v
                    and <object>k not in seen):
                seen.add(<object>k)
                j = 2 * ((self._head + kept) % self._cap)
                self._queue[j], self._queue[j + 1] = k, v
                kept += 1
            else:
                Py_DECREF(<object>k)
                Py_DECREF(<object>v)
        self._count = kept
        if kept == self._cap:
            self._grow(2 * self._cap)
        return 0

    cdef object _pop_oldest(self):
        """The oldest pair, taken off the queue (the caller holds it now)."""
        cdef Py_ssize_t j = 2 * self._head
        cdef object k = <object>self._queue[j], v = <object>self._queue[j + 1]
        Py_DECREF(k)        # the queue's references, now the locals'
        Py_DECREF(v)
        self._queue[j] = self._queue[j + 1] = NULL
        self._head = (self._head + 1) % self._cap
        self._count -= 1
        return k, v


cpdef lru_put(ByteLRU lru, object key, object value, Py_ssize_t size):
    """``ByteLRU.put`` given the value's ``size``: a value larger than the whole bound is not
    kept; older ones are evicted until the bytes fit."""
    _put(lru, key, dict_get(lru.data, key), value, size)


cdef int lru_mark(object value) except -1:
    """Marks a value read from a ByteLRU: it is spared once when it is next due for
    eviction."""
    if type(value) is MsgEntry:
        (<MsgEntry>value).referenced = True
    elif type(value) is RRsetEntry:
        (<RRsetEntry>value).referenced = True
    else:
        value.referenced = True
    return 0


cdef int _put(ByteLRU lru, object key, object old, object value, Py_ssize_t size) except -1:
    """``lru_put`` given what ``key`` holds now (``old``, or None)."""
    cdef dict data = lru.data
    cdef Py_ssize_t kc = _key_cost(key)
    if old is not None:
        del data[key]
        lru.bytes -= old.size + kc
        _unlink(lru, key, old)
    size += kc
    cdef Py_ssize_t max_bytes = lru.max_bytes
    if size > max_bytes:
        return 0
    data[key] = value
    lru.bytes += size
    _link(lru, key, value)
    if value is not old:        # else its pair is queued already
        lru._push(key, value)
    cdef Py_ssize_t spared = 0
    while lru.bytes > max_bytes and lru._count:
        k, v = lru._pop_oldest()
        if dict_get(data, k) is not v:
            continue                        # replaced or popped since it was queued
        if spared < lru._count and _take_mark(v):
            spared += 1
            lru._push(k, v)                 # read since: a second chance
            continue
        del data[k]
        lru.bytes -= v.size + _key_cost(k)
        _unlink(lru, k, v)
        lru.evictions += 1
        if lru._on_evict:
            lru._on_evict()
    return 0


cpdef object store_message(MessageCache messages, bytes key, bytes response, double now,
                           object ttl_cap=None, object valid_for=None):
    """``MessageCache.store``: the response kept whole, its TTL capped at ``ttl_cap`` (by
    default the configured maximum). ``valid_for``: seconds until the signatures a secure
    answer relied on expire (``Result.valid_for``); it is not served, stale or not, past
    that (RFC 4035 5.3.3)."""
    cdef LimitValues lv = messages.lv
    cdef MsgEntry e = msg_entry(response, now, lv.stale_window,
                                lv.max_ttl if ttl_cap is None else ttl_cap)
    if valid_for is not None:
        if e.expires > now + valid_for:
            e.expires = now + valid_for
            e.ttl = <unsigned int>valid_for
        if e.stale_until > now + valid_for:
            e.stale_until = now + valid_for
    lru_put(messages.lru, key, e, e.nbytes())
    return e


cpdef object failure(Cache cache, object key, double now):
    """``Cache.failure``: why resolving ``key`` failed lately, or None (an expired record of
    it is dropped). The iterator asks this for every name of every miss."""
    failures = cache.failures
    if not failures:
        return None
    v = dict_get(failures, key)
    if v is None:
        return None
    if v[0] < now:
        del failures[key]
        return None
    return v[1]


cpdef store_records(RRsetCache rrcache, list records, object rank, double now,
                    object rrsigs=()):
    """``RRsetCache.store_records``: groups record tuples into rrsets (one TTL each, the
    smallest: RFC 2181 5.2) and stores them, with the RRSIGs covering them."""
    cdef dict sigs = None
    cdef Py_ssize_t i, n = len(records)
    cdef long long ttl
    if not rrsigs and _one_rrset(records):
        # Most replies' records to store are one rrset without signatures: no grouping.
        first = records[0]
        ttl = first[3]
        rdatas = (first[4],)                # most often the only one
        if n > 1:
            rdatas = [first[4]]
            for i in range(1, n):
                r = records[i]
                if r[3] < ttl:
                    ttl = r[3]
                if r[4] not in rdatas:
                    rdatas.append(r[4])
        _store_rrset(rrcache, (lower(first[0]), first[1], first[2]), first[0], ttl, rdatas,
                     None, rank, now)
        return
    if rrsigs:
        sigs = {}
        for rec in rrsigs:
            rd = rec[4]
            if len(rd) >= 2:
                covered = (rd[0] << 8) | rd[1]
                sigs.setdefault((lower(rec[0]), covered, rec[2]), []).append(rec)
    for key, g in group(records).items():
        _store_rrset(rrcache, key, g[0], g[1], g[2], dict_get(sigs, key) if sigs else None,
                     rank, now)


cdef bint _one_rrset(list records) except -1:
    """Whether ``records`` (one at least) share one owner (case aside), type and class."""
    cdef Py_ssize_t i, n = len(records)
    if n == 0:
        return False
    first = records[0]
    for i in range(1, n):
        r = records[i]
        if r[1] != first[1] or r[2] != first[2] or not same_name(r[0], first[0]):
            return False
    return True


cdef int _store_rrset(RRsetCache rrcache, tuple key, bytes owner, long long ttl, object rdatas,
                      object rrsigs, object rank, double now) except -1:
    """Stores one rrset (``rdatas``: a list or tuple), its TTL clamped to
    ``min_ttl``..``max_ttl``."""
    cdef RRsetEntry entry
    ttl = min(max(ttl, rrcache.lv.min_ttl), rrcache.lv.max_ttl)
    entry = _entry(owner, key[1], key[2], ttl, now + ttl, rank, rdatas, rrsigs)
    store_entry(rrcache, entry, key, _size(owner, entry.rdatas, entry.rrsigs, (), None))
    return 0


cdef long long negative_ttl(LimitValues lv, long long t):
    """A negative answer's lifetime ``t`` (its SOA's TTL, already no more than the SOA's
    MINIMUM) clamped as Unbound clamps it: raised to ``min_ttl`` (unless ``min_negative_ttl``
    is set) and lowered to ``max_ttl`` as any TTL, then, the more specific bounds last,
    lowered to ``max_negative_ttl`` and raised to ``min_negative_ttl``."""
    if lv.min_negative_ttl <= 0 and t < lv.min_ttl:
        t = lv.min_ttl
    if t > lv.max_ttl:
        t = lv.max_ttl
    if t > lv.max_negative_ttl:
        t = lv.max_negative_ttl
    if t < lv.min_negative_ttl:
        t = lv.min_negative_ttl
    return t


cpdef list clamp_ttls(LimitValues lv, list records, bint negative=False):
    """``records`` (tuples) with their TTLs within ``min_ttl``..``max_ttl``, as the cache
    stores them, so that a client sees the TTLs the cache keeps; with ``negative``, the
    SOA's as a negative answer's (``negative_ttl``). The same list when nothing changes."""
    cdef long long lo = lv.min_ttl, hi = lv.max_ttl, t
    cdef list out = None
    cdef Py_ssize_t i
    for i in range(len(records)):
        r = records[i]
        t = r[3]
        if negative and r[1] == 6:
            t = negative_ttl(lv, t)
        else:
            if t < lo:
                t = lo
            if t > hi:
                t = hi
        if t != r[3]:
            if out is None:
                out = list(records)
            out[i] = (r[0], r[1], r[2], t, r[4])
    return records if out is None else out


cdef class LRUStore:
    """What the rrset and message stores share: a byte-bounded LRU and the limits they
    clamp with (as C fields)."""

    def __init__(self, max_bytes: int, limits=DEFAULT) -> None:
        self.lru = ByteLRU(max_bytes, index_names=isinstance(self, RRsetCache))
        self.lv = limit_values(limits)

    @property
    def limits(self):
        return self.lv.limits

    def set_limits(self, limits) -> None:
        """Clamps and windows from ``limits`` for what is stored and read from now on."""
        self.lv = limit_values(limits)


cdef class RRsetCache(LRUStore):
    """rrsets for the iterator, keyed by (lower-cased name, type, class), trust-ranked."""

    def clamp(self, ttl: int, negative: bool = False) -> int:
        """``ttl`` within the configured bounds; a negative answer's as ``negative_ttl``
        clamps it."""
        if negative:
            return negative_ttl(self.lv, ttl)
        return min(max(ttl, self.lv.min_ttl), self.lv.max_ttl)

    def get(self, bytes name, int rdtype, int rdclass, double now, bint stale_ok=False):
        """The entry, marked recently used; None when missing or expired (unless
        ``stale_ok`` and still within the serve-stale window)."""
        cdef RRsetEntry e = rrset_get(self.lru, lower(name), rdtype, rdclass)
        if e is None:
            return None
        if e.expires < now:
            if stale_ok and e.expires + self.lv.stale_window >= now:
                return e
            return None
        return e

    def store(self, entry) -> bool:
        """Stores unless a fresh entry of a higher rank is there. True if stored."""
        return store_entry(self, entry)

    def store_records(self, records, rank: int, double now, rrsigs=()) -> None:
        """Groups record tuples into rrsets (one TTL each, the smallest: RFC 2181 5.2) and
        stores them, with the RRSIGs covering them."""
        store_records(self, records if type(records) is list else list(records), rank, now,
                      rrsigs)

    def store_negative(self, bytes name, rdtype, rdclass, nxdomain, soa, rank,
                       double now) -> list:
        """RFC 2308: the negative TTL is min(SOA TTL, SOA MINIMUM), capped. Returns the
        records with that TTL (as a client should see them)."""
        ttl = self.lv.failure_ttl
        for rec in soa:
            if rec[1] == 6 and len(rec[4]) >= 20:
                minimum = int.from_bytes(rec[4][-4:], "big")
                ttl = min(rec[3], minimum)
                break
        ttl = negative_ttl(self.lv, ttl)
        soa = clamp_ttls(self.lv, [(o, t, c, ttl if t == 6 else min(ttl, rt), rd)
                                   for (o, t, c, rt, rd) in soa], True)
        key_type = NXDOMAIN_TYPE if nxdomain else rdtype
        store_entry(self, _entry(name, key_type, rdclass, ttl, now + ttl, rank, [], [],
                                 3 if nxdomain else 0, soa))
        return soa

    def get_negative(self, bytes name, rdtype, rdclass, double now):
        e = self.get(name, NXDOMAIN_TYPE, rdclass, now)
        if e is None:
            e = self.get(name, rdtype, rdclass, now)
            if e is not None and e.negative is None:
                return None
        return e


cdef class MessageCache(LRUStore):
    """Whole responses in wire form, keyed by resolver.cache.answer.parse_query's key."""

    @property
    def table(self) -> dict:
        return self.lru.data

    def store(self, bytes key, bytes response, double now, ttl_cap=None, valid_for=None):
        return store_message(self, key, response, now, ttl_cap, valid_for)


cdef class Cache:
    """All the stores, sharing one byte budget (messages 1/2, rrsets 1/2)."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, limits=DEFAULT, rng=None) -> None:
        from resolver.cache.infra import InfraCache
        self.lv = limit_values(limits)
        self.messages = MessageCache(max_bytes // 2, limits)
        self.rrsets = RRsetCache(max_bytes - max_bytes // 2, limits)
        self.infra = InfraCache(limits, rng=rng)
        self.failures = OrderedDict()

    @property
    def limits(self):
        return self.lv.limits

    def set_limits(self, limits) -> None:
        """New limits for every store (a reload's serve-stale and prefetch settings)."""
        self.lv = limit_values(limits)
        self.messages.set_limits(limits)
        self.rrsets.set_limits(limits)

    @property
    def bytes(self) -> int:
        return self.messages.lru.bytes + self.rrsets.lru.bytes

    @property
    def evictions(self) -> int:
        return self.messages.lru.evictions + self.rrsets.lru.evictions

    def remember_failure(self, key, reason: str, double now) -> None:
        """Remembers for ``failure_ttl`` that resolving ``key`` failed, and why: at most
        ``max_failures`` at once, the expired and then the oldest forgotten first (they
        are kept in the order they were stored, so the expired ones come first)."""
        failures = self.failures
        failures[key] = (now + self.lv.failure_ttl, reason)
        _move_to_end(failures, key)
        cdef Py_ssize_t most = self.lv.limits.max_failures
        while failures:
            first = next(iter(failures))
            if len(failures) <= most and failures[first][0] >= now:
                break
            del failures[first]

    def failure(self, key, double now):
        return failure(self, key, now)

    def flush(self, name=None) -> None:
        """Forget everything, or everything about ``name`` (all types) and answers for it:
        wire bytes, or as dnspython's ``Cache.flush`` takes it, a ``dns.name.Name``, text or
        a cache key ``(name, rdtype, rdclass)`` (every type of its name forgotten)."""
        if name is None:
            self.messages.lru.clear()
            self.rrsets.lru.clear()
            self.failures.clear()
            return
        if type(name) is not bytes:
            name = _name_wire(name)
        lname = name.lower()
        for k in [k for k in self.rrsets.lru.data if k[0] == lname]:
            self.rrsets.lru.pop(k)
        for k in [k for k in self.messages.lru.data if k[:-5] == lname]:
            self.messages.lru.pop(k)
        for k in [k for k in self.failures if k[0] == lname]:
            del self.failures[k]


def _name_wire(name) -> bytes:
    """``Cache.flush``'s ``name`` given as dnspython gives one (a key ``(name, rdtype,
    rdclass)``, a ``dns.name.Name`` or text), in wire form; anything else a TypeError."""
    import dns.name

    from resolver.wire.codec import from_text

    if isinstance(name, tuple) and len(name) == 3:
        name = name[0]
    if isinstance(name, dns.name.Name):
        name = name.to_text()
    if not isinstance(name, str):
        raise TypeError(f"flush: a name (wire bytes, dns.name.Name or text) or a dnspython "
                        f"cache key, not {name!r}")
    return from_text(name)
