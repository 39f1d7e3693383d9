# The daemon's client ACL (acl.pyx), for the C listeners.

cdef extern from *:
    """
    typedef struct {
        int family;
        int action;
        unsigned char net[16];
        unsigned char mask[16];
    } cn_acl_entry;
    """
    ctypedef struct cn_acl_entry:
        int family
        int action
        unsigned char net[16]
        unsigned char mask[16]


cdef class ACL:
    cdef cn_acl_entry* entries
    cdef int n
    cdef int standing_raw(self, int family, const unsigned char* addr) noexcept nogil
