# The C entry points of replies.pyx, for Cython callers (algorithm.pyx) that call
# them without a Python call.
from resolver.wire.codec cimport Parsed, dname_substitute, is_subdomain, same_name

cpdef list in_zone(list records, bytes zone)
cpdef bint has_soa(list authority, bytes zone)
cpdef object referral(Parsed m, bytes zone, bytes qname)
cpdef bint is_lame(Parsed m, bytes zone, bytes qname, object ref)
cpdef list glue(list additional, bytes zone, list ns_recs, bint harden=*)
cpdef dict group(list records)
cpdef tuple split_sigs(list records)
cpdef object owned(list answer, bytes name, long qtype)
cpdef bint wildcard_expanded(list records)
cpdef Py_ssize_t count_type(list records, long rdtype) except -1
cpdef list without_types(list records, frozenset rdtypes)
cpdef list answer_chain(list answer, bytes qname, long qtype, long max_links)
