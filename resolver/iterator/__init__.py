"""The recursive algorithm as a sans-IO state machine.

An :class:`Iterator` resolves one question. It never touches a socket or a clock of its own:
``start()`` and ``feed(event)`` return either a :class:`Query` ("send this question to one of
these servers") or a :class:`Result` (the final answer). The driver (``resolver.resolution``, or a
test's fake network) sends the query and feeds back a :class:`Reply`, :class:`Timeout` or
:class:`Failure`. Everything learned goes into the shared :class:`~resolver.cache.Cache`.

Internally the algorithm is a generator: sub-queries (addresses of NS names without glue) are
``yield from`` calls, so the whole client query is one state machine with one budget.
"""
from __future__ import annotations

import logging
from typing import Callable

# The events the driver sees and feeds back: Query (send this question), Reply, Timeout,
# Failure (what came of it) and Result (the end), compiled as a miss builds several of them.
from resolver.iterator.events import Failure, Query, Reply, Result, Timeout  # noqa: F401

log = logging.getLogger("resolver.iterator")

A, NS, CNAME, SOA, AAAA, DNAME, DS, RRSIG, NSEC, NSEC3 = 1, 2, 5, 6, 28, 39, 43, 46, 47, 50
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
ROOT = b"\x00"


#: A validator sits between replies and the cache. It is called as
#: ``validator(parsed, zone, server, iterator)`` for every usable reply and returns the reply
#: to use (it may drop records, and sets ``parsed.security`` to SECURE so the rrsets are cached
#: at the VALIDATED rank) or raises :class:`Bogus`. It may instead return a generator: the
#: iterator runs it with ``yield from``, so it can fetch DNSKEY/DS through
#: ``iterator.lookup(name, rdtype)`` inside the same state machine and budget.
Validator = Callable[[object, bytes, str, "Iterator"], object]

#: values of ``Parsed.security``
UNCHECKED, INSECURE, SECURE, BOGUS = 0, 1, 2, 3


class Bogus(Exception):
    """Raised by a validator for data that fails validation; the client query gets SERVFAIL."""


class Hints:
    """Root hints indexed for the iterator: built once per resolver and shared by its
    iterators, rather than re-indexed for every client query.

    With ``prime``, the iterators prime the root (``Iterator._prime``) before they rely on
    the hints, and share the priming state here: ``prime_at`` is the clock time before which
    none starts a priming exchange (one is in flight, or the last one failed)."""

    __slots__ = ("names", "addrs", "ipv6", "prime", "prime_at")

    def __init__(self, hints: list[tuple[bytes, str]], ipv6: bool = False,
                 prime: bool = False) -> None:
        self.ipv6 = ipv6
        self.prime = prime
        self.prime_at = 0.0
        self.names: list[bytes] = []
        self.addrs: dict[bytes, list[str]] = {}
        for name, addr in hints:
            if ":" in addr and not ipv6:
                continue
            key = name.lower()
            if key not in self.addrs:
                self.names.append(name)
                self.addrs[key] = []
            self.addrs[key].append(addr)


# The algorithm itself, compiled (it needs the classes above, so it is imported last).
from resolver.iterator.algorithm import Iterator  # noqa: E402,F401
