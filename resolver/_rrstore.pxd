# The C entry points of _rrstore.pyx, for the compiled iterator and miss path.
cpdef bint store_entry(object rrcache, object entry, object key=*, Py_ssize_t size=*) except -1
cpdef store_records(object rrcache, list records, object rank, double now, object rrsigs=*)
cpdef lru_put(object lru, object key, object value, Py_ssize_t size)
cpdef object store_message(object messages, bytes key, bytes response, double now,
                           object ttl_cap=*)
cpdef object failure(object cache, object key, double now)
