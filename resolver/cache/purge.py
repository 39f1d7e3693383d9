"""What the cache forgets on an operator's command: one type of a name, every negative
answer, every bogus verdict (``flush_type``, ``flush_negative``, ``flush_bogus``)."""
from __future__ import annotations

import struct

from resolver.cache.store import NXDOMAIN_TYPE

NXDOMAIN, SERVFAIL = 3, 2


def flush_type(cache, lname: bytes, rdtype: int, rdclass: int = 1) -> None:
    """Forgets the rrset ``lname``/``rdtype`` and the answers to that question
    (``lname``: lower-cased wire)."""
    rrsets, messages = cache.rrsets.lru, cache.messages.lru
    for k in [k for k in rrsets.data if k[0] == lname and k[1] == rdtype and k[2] == rdclass]:
        rrsets.pop(k)
    tail = struct.pack("!HH", rdtype, rdclass)
    for k in [k for k in messages.data if k[:-5] == lname and k[-5:-1] == tail]:
        messages.pop(k)
    for k in [k for k in cache.failures if isinstance(k, tuple) and k[:2] == (lname, rdtype)]:
        del cache.failures[k]


def negative(wire: bytes) -> bool:
    """Whether a cached answer is negative: NXDOMAIN, SERVFAIL, or NOERROR with no answer
    records (NODATA)."""
    rcode = wire[3] & 0x0F
    return rcode in (NXDOMAIN, SERVFAIL) or rcode == 0 and wire[6:8] == b"\x00\x00"


def flush_negative(cache) -> None:
    """Forgets every negative answer and rrset entry and every remembered failure."""
    rrsets, messages = cache.rrsets.lru, cache.messages.lru
    for k in [k for k, e in messages.data.items() if negative(e.wire)]:
        messages.pop(k)
    for k in [k for k, e in rrsets.data.items()
              if e.rdtype == NXDOMAIN_TYPE or e.negative is not None]:
        rrsets.pop(k)
    cache.failures.clear()


def flush_bogus(cache) -> None:
    """Forgets the failures remembered because validation found the data bogus."""
    for k in [k for k, v in cache.failures.items() if "bogus" in str(v[1]).lower()]:
        del cache.failures[k]
