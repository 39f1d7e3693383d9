# cython: language_level=3
"""The daemon's client ACL: the standing of each source network (what the front door does
with its queries: ``resolver.daemon.admission.Who``, an int here).

Each network has an action (Unbound's ``access-control``: allow, refuse, deny, allow_snoop,
refuse_non_local, deny_non_local); the longest prefix holding the address decides, as in
Unbound, so a narrower network carves an exception out of a wider one, and an address no
network holds has standing 0 (refused).

One table of (family, action, network, mask) entries in C, longest prefix first, checked by
the UDP listener for every datagram without a Python object (``standing_raw``, on the
address bytes the kernel gave) and by the Python paths (TCP connections, UDP on a loop that
is not corenet's) through ``standing``. IPv4-mapped IPv6 addresses are checked as the IPv4
address they carry. The server owns one ACL and its listeners share it, so a reload replaces
it everywhere at once.
"""
import ipaddress

from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memset

cdef extern from "<sys/socket.h>":
    int AF_INET, AF_INET6

cdef extern from "<arpa/inet.h>" nogil:
    int inet_pton(int af, const char *src, void *dst)

# The first 12 bytes of an IPv4-mapped IPv6 address (::ffff:a.b.c.d).
cdef const unsigned char *_V4_MAPPED = b"\0\0\0\0\0\0\0\0\0\0\xff\xff"

#: The most networks an ACL holds (each client datagram is checked against all of them).
MAX_NETWORKS = 256


cdef class ACL:
    """``ACL(networks)``: ipaddress networks (or strings naming them), of standing 1
    (allowed), or ``(network, standing)`` pairs (an int, or a bool: allowed or refused); for a
    network given twice the last one holds."""

    def __cinit__(self, networks=()):
        self.entries = <cn_acl_entry*>malloc(sizeof(cn_acl_entry) * MAX_NETWORKS)
        if self.entries == NULL:
            raise MemoryError()
        self.n = 0

    def __init__(self, networks=()):
        self.set(networks)

    def __dealloc__(self):
        free(self.entries)

    def set(self, networks):
        """Replaces the networks (all or nothing: a bad one leaves the ACL as it was)."""
        told = {}
        for item in networks:
            net, action = item if isinstance(item, tuple) else (item, True)
            told[ipaddress.ip_network(net, strict=False)] = int(action)
        if len(told) > MAX_NETWORKS:
            raise ValueError(f"at most {MAX_NETWORKS} networks, got {len(told)}")
        # longest prefix first: the first entry holding an address decides
        nets = sorted(told.items(), key=lambda kv: -kv[0].prefixlen)
        cdef int k, i
        for k, (net, action) in enumerate(nets):
            self.entries[k].family = AF_INET if net.version == 4 else AF_INET6
            self.entries[k].action = action
            raw = net.network_address.packed
            mask = net.netmask.packed
            memset(self.entries[k].net, 0, 16)
            memset(self.entries[k].mask, 0, 16)
            for i in range(len(raw)):
                self.entries[k].net[i] = raw[i]
                self.entries[k].mask[i] = mask[i]
        self.n = len(nets)

    cdef int standing_raw(self, int family, const unsigned char* addr) noexcept nogil:
        """The standing of the address (4 or 16 bytes at ``addr``, of ``family``): the
        longest network holding it says, 0 (refused) when none does."""
        cdef int i, k, length = 4 if family == AF_INET else 16
        for i in range(self.n):
            if self.entries[i].family != family:
                continue
            for k in range(length):
                if (addr[k] & self.entries[i].mask[k]) != self.entries[i].net[k]:
                    break
            else:
                return self.entries[i].action
        return 0

    def allows(self, host) -> bool:
        """Whether a peer address (a str as asyncio gives it, scope suffix allowed) has a
        standing other than refused."""
        return self.standing(host) != 0

    def standing(self, host) -> int:
        """The standing of a peer address (a str as asyncio gives it, scope suffix
        allowed); 0 (refused) for one that is not an address."""
        cdef unsigned char raw[16]
        cdef bytes text
        if not isinstance(host, str):
            host = str(host)
        try:
            text = (<str>host).partition("%")[0].encode("ascii")
        except UnicodeEncodeError:
            return 0
        if b"\0" in text:
            return 0
        if inet_pton(AF_INET, text, raw) == 1:
            return self.standing_raw(AF_INET, raw)
        if inet_pton(AF_INET6, text, raw) != 1:
            return 0
        if memcmp(raw, _V4_MAPPED, 12) == 0:          # IPv4-mapped: checked as IPv4
            return self.standing_raw(AF_INET, raw + 12)
        return self.standing_raw(AF_INET6, raw)

    def __len__(self):
        return self.n
