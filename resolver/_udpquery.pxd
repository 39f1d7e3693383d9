cpdef int fresh_id() except -1
cpdef bint needs_retry(bytes reply, bint edns)
