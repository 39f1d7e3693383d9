# cython: language_level=3
"""The iterator's events (``resolver.iterator`` re-exports them), compiled.

Every cache miss builds three to five of them, and a resolver woken from cold caches pays for
every Python frame, so they are compiled; they behave as dataclasses would: positional or
keyword construction with defaults, settable fields, a readable ``repr`` and field-wise
``==`` between events of the same class. Their fields are declared in events.pxd.
"""
cimport cython


cdef object _equal(event, other):
    """``==`` of two events: field-wise over ``_fields``, events of the same class only."""
    if type(other) is not type(event):
        return NotImplemented
    return (tuple([getattr(event, f) for f in event._fields])
            == tuple([getattr(other, f) for f in other._fields]))


cdef str _text(event):
    """A dataclass-like ``repr`` over ``_fields``."""
    return "%s(%s)" % (type(event).__name__,
                       ", ".join(f"{f}={getattr(event, f)!r}" for f in event._fields))


cdef class _Event:
    """Field-wise ``==`` and a dataclass-like ``repr`` over ``_fields``. The three events
    every miss makes (Query, Reply, Result) are no subclasses: a class of its own keeps its
    freed objects for the next miss (``cython.freelist``), which a subclass cannot."""

    _fields = ()

    def __eq__(self, other):
        return _equal(self, other)

    __hash__ = None          # mutable, as the dataclasses were

    def __repr__(self):
        return _text(self)


@cython.freelist(64)
cdef class Query:
    """Send (qname, qtype, qclass) to one of ``servers`` (addresses of ``zone``'s servers);
    ``rd``: ask for recursion (a forwarder), else an authority is asked; ``ad``: the query
    sets AD (a forwarder whose AD bit is trusted)."""

    _fields = ("qname", "qtype", "qclass", "zone", "servers", "rd", "ad")

    def __eq__(self, other):
        return _equal(self, other)

    __hash__ = None          # mutable, as the dataclasses were

    def __repr__(self):
        return _text(self)

    def __init__(self, qname, qtype, qclass, zone, servers, rd=False, ad=False):
        _set_query(self, qname, qtype, qclass, zone, servers, rd, ad)


@cython.freelist(64)
cdef class Reply:
    """A reply from ``server``; ``parsed`` is its wire.Parsed when the driver already has it."""

    _fields = ("server", "wire", "rtt", "parsed")

    def __eq__(self, other):
        return _equal(self, other)

    __hash__ = None          # mutable, as the dataclasses were

    def __repr__(self):
        return _text(self)

    def __init__(self, server, wire, rtt=0.0, parsed=None):
        _set_reply(self, server, wire, rtt, parsed)


cdef class Timeout(_Event):
    """``server`` did not answer in time."""

    _fields = ("server",)

    def __init__(self, server):
        self.server = server


cdef class Failure(_Event):
    """The driver could not get a usable reply from ``server`` (connection refused, TCP
    failure, only malformed/mismatched packets, ...). ``unreachable``: the query never left
    (this host has no route to the server), so it cost no time and is not retried."""

    _fields = ("server", "reason", "unreachable")

    def __init__(self, server, reason="", unreachable=False):
        self.server, self.reason, self.unreachable = server, reason, unreachable


@cython.freelist(64)
cdef class Result:
    """The outcome: rcode, answer and authority record tuples (RRSIG/NSEC included; the driver
    strips them for clients without DO), and why it failed when it did. ``security`` is the
    DNSSEC verdict (UNCHECKED, INSECURE, SECURE, BOGUS) and ``ede``, when BOGUS, the RFC 8914
    code. Not compared by ``==``: ``server``, the (address, port) whose reply gave the final
    answer (None when the cache gave it), and ``errors``, the (address, port) and what went
    wrong (``"timeout"``, an rcode's name, a failure's reason) of each query of the question
    that failed, or None."""

    _fields = ("rcode", "answer", "authority", "reason", "time_exhausted", "security", "ede")

    def __eq__(self, other):
        return _equal(self, other)

    __hash__ = None          # mutable, as the dataclasses were

    def __repr__(self):
        return _text(self)

    def __init__(self, rcode, answer=None, authority=None, reason=None,
                 time_exhausted=False, security=0, ede=None):
        _set_result(self, rcode, answer, authority, reason, time_exhausted, security, ede)


# The constructors' work, shared with the C constructors below, which the compiled iterator
# and driver call without a Python call (several events per cache miss).

cdef int _set_query(Query q, qname, qtype, qclass, zone, servers, bint rd,
                    bint ad) except -1:
    q.qname, q.qtype, q.qclass, q.zone, q.servers = qname, qtype, qclass, zone, servers
    q.rd, q.ad = rd, ad
    return 0


cdef int _set_reply(Reply r, server, wire, rtt, parsed) except -1:
    r.server, r.wire, r.rtt, r.parsed = server, wire, rtt, parsed
    return 0


cdef int _set_result(Result r, rcode, answer, authority, reason, time_exhausted, security,
                     ede) except -1:
    r.rcode = rcode
    r.answer = [] if answer is None else answer
    r.authority = [] if authority is None else authority
    r.reason, r.time_exhausted, r.security, r.ede = reason, time_exhausted, security, ede
    return 0


cdef Query new_query(qname, qtype, qclass, zone, servers, bint rd=False, bint ad=False):
    """``Query(...)``."""
    cdef Query q = Query.__new__(Query)
    _set_query(q, qname, qtype, qclass, zone, servers, rd, ad)
    return q


cdef Reply new_reply(server, wire, rtt, parsed):
    """``Reply(...)``."""
    cdef Reply r = Reply.__new__(Reply)
    _set_reply(r, server, wire, rtt, parsed)
    return r


cdef Result new_result(rcode, answer, authority):
    """``Result(rcode, answer, authority)``."""
    cdef Result r = Result.__new__(Result)
    _set_result(r, rcode, answer, authority, None, False, 0, None)
    return r
