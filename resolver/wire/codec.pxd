# The message classes of wire.pyx, for typed access from the compiled miss path.

cdef class MsgEntry:
    cdef public bytes wire
    cdef public bytes ttl_offsets     # native uint16 offsets of every TTL field (OPT excluded)
    cdef public Py_ssize_t qend       # end of the question section in ``wire``
    cdef public double stored_at
    cdef public double expires
    cdef public double stale_until
    cdef public unsigned int ttl      # smallest TTL when stored
    cdef public unsigned int hits
    cdef public int rcode
    cdef public bint prefetching
    cdef public bint referenced       # read since stored or last spared (the cache's ByteLRU)
    cdef public object parsed         # lazily built dnspython objects for Resolver.resolve
    # the daemon's response policy check of this entry (its name and answer are fixed): the
    # policy's generation it was made under (0: none yet) and whether a trigger touched it
    cdef public unsigned int screened
    cdef public bint screen_touched

    cdef Py_ssize_t nbytes(self)
    cdef int fill(self, bytes wire, double now, double stale_window,
                  unsigned int ttl_cap) except -1

cdef class Parsed:
    cdef public unsigned int id
    cdef public unsigned int flags
    cdef public int rcode
    cdef public bytes qname
    cdef public unsigned int qtype
    cdef public unsigned int qclass
    cdef public bytes question      # raw question bytes (case-sensitive comparison)
    cdef public list answer
    cdef public list authority
    cdef public list additional
    cdef public bint edns
    cdef public unsigned int edns_flags
    cdef public unsigned int edns_payload  # the OPT record's UDP payload size (0: no EDNS)
    cdef public int security        # set by a validator (resolver.iterator.SECURE, ...)


cdef bytes query_wire(unsigned int qid, bytes qname, unsigned int qtype, unsigned int qclass,
                      bint edns, bint do, unsigned int payload, bint rd=*, bint cd=*,
                      bint ad=*)


cpdef bytes cache_key(bytes qname, unsigned int qtype, unsigned int qclass, unsigned int variant)
cdef MsgEntry msg_entry(bytes wire, double now, double stale_window, unsigned int ttl_cap)
cpdef tuple ttl_offsets(bytes wire)
cpdef long long ttl_left(double expires, double now)
cpdef Parsed parse_response(bytes wire, int max_jumps=*, int max_records=*, bint sections=*)
cdef bytes response_wire(unsigned int qid, unsigned int flags, bytes question, list answer,
                         list authority, list additional, bint edns, bint do,
                         unsigned int payload, int rcode)

# names compared case-insensitively without copies (the iterator calls them from C)
cpdef bint same_name(bytes a, bytes b)
cpdef bint is_subdomain(bytes child, bytes parent)
cpdef bint under_any(bytes name, tuple parents)
cpdef object dname_substitute(bytes name, bytes owner, bytes target)
cpdef int label_count(bytes name) except -1
cpdef bytes strip_to(bytes name, int labels)

# EDNS (the daemon's stream listeners and the answer to a local alias call them from C)
cdef Py_ssize_t opt_at(const unsigned char* p, Py_ssize_t n) noexcept
cdef Py_ssize_t option_length(const unsigned char* p, Py_ssize_t n,
                              unsigned int code) noexcept
cdef bint asks_option(const unsigned char* p, Py_ssize_t n, unsigned int code) noexcept
cpdef bytes with_option(bytes wire, unsigned int code, bytes data)
cpdef bytes with_padding(bytes wire, unsigned int block)
