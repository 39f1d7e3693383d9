# The C entry points of _rrstore.pyx, for the compiled iterator (resolver/_itergen.pyx).
cpdef bint store_entry(object rrcache, object entry, object key=*, Py_ssize_t size=*) except -1
cpdef store_records(object rrcache, list records, object rank, double now, object rrsigs=*)
