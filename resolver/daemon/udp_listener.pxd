# The UDP listener's answer path for its misses (udp_listener.pyx), for the compiled dispatch.


cdef class ClientSend:
    """``send(answer)`` for one miss's client, called in C by the dispatch: the answer is
    queued on the listener for the gathered send to the client's address."""
    cdef object listener        # its UDPListener
    cdef object addr

    cdef int send(self, bytes data) except -1
