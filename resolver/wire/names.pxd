# The wire-format primitives every Cython reader of DNS messages shares (the codec, the answer
# encoder, the response builder, the daemon's UDP listener, the iterator's reply classification
# and DNSSEC), defined once. Callers check lengths before reading.
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint64_t
from libc.string cimport memcpy


cdef inline unsigned int u16(const unsigned char* p) noexcept nogil:
    """The big-endian 16-bit number at ``p``."""
    return (p[0] << 8) | p[1]


cdef inline unsigned int u32(const unsigned char* p) noexcept nogil:
    """The big-endian 32-bit number at ``p``."""
    return (<unsigned int>p[0] << 24) | (<unsigned int>p[1] << 16) | (<unsigned int>p[2] << 8) | p[3]


cdef inline Py_ssize_t skip_name(const unsigned char* buf, Py_ssize_t n, Py_ssize_t pos) noexcept nogil:
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


cdef inline unsigned char _fold(unsigned char c) noexcept nogil:
    """``c`` lower-cased (ASCII letters only, as ``bytes.lower``)."""
    return c + 32 if 65 <= c <= 90 else c


cdef inline uint64_t _capitals8(uint64_t x) noexcept nogil:
    """The ASCII capitals among the eight bytes in ``x``, all at once: a byte's high bit is
    set when the byte is in 'A'..'Z' (its low seven bits at least 0x41 and below 0x5B, and
    its own high bit clear). No sum carries into the next byte (0x7F + 0x3F < 0x100)."""
    cdef uint64_t low7 = x & 0x7F7F7F7F7F7F7F7FULL
    return ((low7 + 0x3F3F3F3F3F3F3F3FULL) & ~(low7 + 0x2525252525252525ULL)
            & ~x & 0x8080808080808080ULL)


cdef inline uint64_t _fold8(uint64_t x) noexcept nogil:
    """The eight bytes in ``x`` with their ASCII capitals lower-cased: each capital's high
    bit (``_capitals8``) shifted to 0x20 sets the letter's lower-case bit."""
    return x | (_capitals8(x) >> 2)


cdef inline bytes lower(bytes b):
    """``b.lower()`` (ASCII letters only, as ``bytes.lower``), but ``b`` itself when it has no
    capital letter: names from the wire almost never have one, and the same object keeps its
    cached hash. Saves a method call and an allocation per cache key on the miss path; the
    capitals are looked for eight bytes at a time."""
    if b is None:
        raise TypeError("lower() needs bytes, not None")
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(b)
    cdef Py_ssize_t i = 0, n = PyBytes_GET_SIZE(b)
    cdef unsigned char* q
    cdef uint64_t w
    while i + 8 <= n:
        memcpy(&w, p + i, 8)
        if _capitals8(w):
            break
        i += 8
    else:
        while i < n:
            if 65 <= p[i] <= 90:
                break
            i += 1
        else:
            return b
    out = PyBytes_FromStringAndSize(<const char*>p, n)
    q = <unsigned char*>PyBytes_AS_STRING(out)
    while i < n:
        if 65 <= q[i] <= 90:
            q[i] += 32
        i += 1
    return out


cdef inline Py_ssize_t copy_lower_name(const unsigned char* p, Py_ssize_t n, Py_ssize_t pos,
                                       unsigned char* key, Py_ssize_t* klen) noexcept nogil:
    """Copies the uncompressed name at ``pos`` to ``key + klen[0]`` with ASCII letters
    lower-cased (a cache key's name) and advances ``klen``; returns the offset past the name,
    or -1 if it runs past ``n``, is compressed or is longer than 255 bytes. ``key`` must have
    room for 255 bytes from ``klen[0]``. The labels are walked first (lengths only), then the
    whole name is copied and folded eight bytes at a time (length octets are below 64 and
    never fold)."""
    cdef unsigned int c
    cdef Py_ssize_t i = 0, size, end = pos
    cdef uint64_t w
    cdef unsigned char* out = key + klen[0]
    while True:
        if end >= n:
            return -1
        c = p[end]
        if c == 0:
            break
        if c > 63:
            return -1      # pointers are not expected in a question
        end += 1 + c
        if end - pos + 1 > 255:
            return -1
    size = end + 1 - pos
    while i + 8 <= size:
        memcpy(&w, p + pos + i, 8)
        w = _fold8(w)
        memcpy(out + i, &w, 8)
        i += 8
    while i < size:
        out[i] = _fold(p[pos + i])
        i += 1
    klen[0] += size
    return end + 1


cdef inline bint eq_nocase(const unsigned char* a, const unsigned char* b,
                            Py_ssize_t n) noexcept nogil:
    """Whether the ``n`` bytes at ``a`` and ``b`` are equal but for ASCII case (two wire
    names: length octets are < 64 and never fold), eight bytes at a time: names compared
    are most often the same bytes, which then cost one comparison a word."""
    cdef Py_ssize_t i = 0
    cdef uint64_t x, y
    while i + 8 <= n:
        memcpy(&x, a + i, 8)
        memcpy(&y, b + i, 8)
        if x != y and _fold8(x) != _fold8(y):
            return False
        i += 8
    while i < n:
        if a[i] != b[i] and _fold(a[i]) != _fold(b[i]):
            return False
        i += 1
    return True
