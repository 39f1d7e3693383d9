# One upstream UDP query in C (udp.pyx); the Drive cimports it to read the outcome.
cpdef int fresh_id() except -1
cpdef bint needs_retry(bytes reply, bint edns)
cpdef Py_ssize_t sockets_in_flight()
cpdef str source_for(object source, str addr)
cpdef bytes mixed_case(bytes name)


cdef class UDPQuery


cdef class QueryDone:
    """An ``on_done`` called in C: ``done(query)`` (a compiled caller's; any other
    callable is called as ``on_done(query)``), and ``unwanted(query)`` for each reply
    nobody asked for that comes to the query's socket."""
    cdef int done(self, UDPQuery q) except -1
    cdef int unwanted(self, UDPQuery q) except -1


cdef class UDPQuery:
    cdef readonly object fut
    cdef readonly object on_done
    cdef readonly bytes reply
    cdef readonly object parsed
    cdef readonly object error
    cdef bint finished
    cdef bint corenet         # corenet's loop: its C API (corenet.capi) watches the socket
    cdef readonly str addr
    cdef readonly unsigned int qid
    cdef readonly bytes question
    cdef readonly bytes wire
    cdef readonly double sent_at    # time.monotonic() when the query left (for its RTT)
    cdef int fd
    cdef object loop
    cdef object timer
    cdef object watcher       # what corenet's loop holds for the socket (a _Watch)
    cdef object stats
    cdef int max_jumps
    cdef int max_records
    # the name's case drawn at random (use-caps-for-id): the question as the caller asked
    # it, which a reply echoing ``question`` exactly gets back before it is parsed; None
    # for a query sent as asked
    cdef public bytes asked

    cdef int open(self, loop, str addr, int port, bytes wire, unsigned int qid, bytes question,
                  double timeout, stats, limits, on_done, bint defer,
                  object source=*) except -1
    cdef _finish(self, bytes reply, parsed, error)
    cdef bint _matches(self, Py_ssize_t n) noexcept
    cdef bint _case_differs(self, Py_ssize_t n) noexcept
    cdef int _read(self) except -1
    cpdef close(self)
