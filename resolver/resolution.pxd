# The daemon's miss driver (resolution.pyx), for the daemon's compiled front door: how a miss
# starts, the Drive's fields, and the callback type a Drive calls in C when it ends.
from resolver.state cimport ResolverCore

cdef class Drive


cdef class MissDone:
    cdef int finished(self, Drive drive, object response) except -1


cdef class Drive:
    cdef ResolverCore resolver
    cdef bytes query
    cdef readonly tuple miss
    cdef object done
    cdef object resolution              # its Resolution
    cdef readonly bint finished
    cdef readonly object failure        # a SERVFAIL's (extended error code, reason), else None
    cdef object chain_failure           # a SERVFAIL's Result when its resolution had followed
                                        # part of a CNAME/DNAME chain (failed_chain), else None

    cdef begin(self, ResolverCore resolver, loop, bytes query, tuple miss, done)
    cdef resolved(self, res)
    cdef object _settle(self)


cpdef object start(ResolverCore resolver, bytes query, done, loop, bytes absent=*, client=*)
