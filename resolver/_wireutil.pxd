# Two primitives every Cython reader of DNS wire format here needs (wire.pyx, the daemon's
# _hit.pyx and _udp_server.pyx), defined once. Callers check lengths before reading.

cdef inline unsigned int _u16(const unsigned char* p) noexcept nogil:
    return (p[0] << 8) | p[1]


cdef inline Py_ssize_t _skip_name(const unsigned char* buf, Py_ssize_t n, Py_ssize_t pos) noexcept nogil:
    """Offset just past the name at ``pos`` without following pointers; -1 if malformed."""
    cdef unsigned int c
    while True:
        if pos >= n:
            return -1
        c = buf[pos]
        if c == 0:
            return pos + 1
        if (c & 0xC0) == 0xC0:
            return pos + 2 if pos + 2 <= n else -1
        if (c & 0xC0) != 0:
            return -1
        pos += 1 + c
