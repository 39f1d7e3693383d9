# The cache-hit answer in C, shared by the daemon's UDP listener and its TCP framer.

cdef Py_ssize_t question_key(const unsigned char* p, Py_ssize_t n, unsigned char* key,
                             Py_ssize_t* klen_out, unsigned int* udp_limit,
                             unsigned int* qtype) noexcept nogil

cdef object cached_answer(object table, object move_to_end, const unsigned char* p,
                          Py_ssize_t n, double now, double prefetch_fraction, bint udp,
                          unsigned int* qtype, bint* truncated)

cdef double monotonic() noexcept nogil
