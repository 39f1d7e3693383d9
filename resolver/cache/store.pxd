# The cache's classes and C entry points (store.pyx), for the compiled iterator and miss path.
from cpython.object cimport PyObject
from resolver.state cimport LimitValues


cdef class RRsetEntry:
    cdef public object name, ttl, negative, addrs
    cdef public double expires          # on the resolver's clock
    cdef public int rank                # trust rank (resolver.cache's constants)
    cdef public int rdtype, rdclass     # rdtype NXDOMAIN_TYPE (-1) for an NXDOMAIN entry
    cdef public tuple rdatas, rrsigs, soa
    cdef public tuple proofs            # wildcard proofs (NSEC/NSEC3, RRSIG), or None
    cdef public bint referenced         # read since it was stored or last spared (ByteLRU)
    cdef readonly RRsetEntry sibling    # the next entry of its owner in ByteLRU.names
    cpdef list negative_records(self, double now)
    cpdef list proof_records(self, double now)
    cpdef list records(self, double now)
    cpdef list sig_records(self, double now)


cdef class ByteLRU:
    cdef public dict data               # key -> entry (``.size`` bytes)
    cdef public Py_ssize_t max_bytes, bytes, evictions
    cdef public object _on_evict
    # the rrset cache's only (else None): lower-cased owner -> its entries, chained by
    # RRsetEntry.sibling
    cdef readonly dict names
    # the eviction queue: a ring of _cap (key, value) pairs (two references each), _count
    # of them from pair _head, oldest first
    cdef PyObject** _queue
    cdef Py_ssize_t _head, _count, _cap

    cdef void _drop_queue(self) noexcept
    cdef int _push(self, object key, object value) except -1
    cdef int _grow(self, Py_ssize_t cap) except -1
    cdef int _compact(self) except -1
    cdef object _pop_oldest(self)


cdef class LRUStore:
    cdef readonly ByteLRU lru
    cdef LimitValues lv                 # with the Limits themselves (the ``limits`` property)


cdef class RRsetCache(LRUStore):
    pass


cdef class MessageCache(LRUStore):
    pass


cdef class Cache:
    cdef readonly MessageCache messages
    cdef readonly RRsetCache rrsets
    cdef readonly object infra          # resolver.cache.infra.InfraCache
    cdef readonly object failures       # OrderedDict: key -> (until, reason)
    cdef LimitValues lv


cpdef bint store_entry(RRsetCache rrcache, object entry, object key=*,
                       Py_ssize_t size=*) except -1
cpdef store_records(RRsetCache rrcache, list records, object rank, double now, object rrsigs=*)
cpdef lru_put(ByteLRU lru, object key, object value, Py_ssize_t size)
cpdef object store_message(MessageCache messages, bytes key, bytes response, double now,
                           object ttl_cap=*, object valid_for=*)
cpdef object failure(Cache cache, object key, double now)
cpdef list clamp_ttls(LimitValues lv, list records, bint negative=*)
cpdef keep_proofs(RRsetCache rrcache, bytes name, object rdtype, object rdclass, list proofs)
cdef RRsetEntry rrset_get(ByteLRU lru, bytes lname, int rdtype, int rdclass)
cdef bint holds_name(ByteLRU lru, bytes lname) except -1
cdef int lru_mark(object value) except -1
