# The iterator's event classes (events.pyx), for typed access from the compiled driver.

cdef class _Event:
    pass


cdef class Query:
    cdef public object qname, qtype, qclass, zone, servers
    cdef public bint rd, ad


cdef class Reply:
    cdef public object server, wire, rtt, parsed


cdef class Timeout(_Event):
    cdef public object server


cdef class Failure(_Event):
    cdef public object server, reason, unreachable


cdef class Result:
    cdef public object rcode, answer, authority, reason, time_exhausted, security, ede
    # seconds until the earliest signature a SECURE verdict relied on expires (RFC 4035
    # 5.3.3: validated data is not served past it, stale or not); None when not secure
    cdef public object valid_for
    # where the final answer came from: the server as the iterator names it, turned into
    # (address, port) by the driver; None for an answer made from the cache
    cdef public object server
    # servers that failed the question: a list of (server, what went wrong), the server
    # turned into (address, port) by the driver; None when none did
    cdef public object errors


cdef Query new_query(qname, qtype, qclass, zone, servers, bint rd=*, bint ad=*)
cdef Reply new_reply(server, wire, rtt, parsed)
cdef Result new_result(rcode, answer, authority)
