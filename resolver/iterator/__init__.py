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
from typing import TYPE_CHECKING

# The events the driver sees and feeds back: Query (send this question), Reply, Timeout,
# Failure (what came of it) and Result (the end), compiled as a miss builds several of them.
from resolver.iterator.events import Failure, Query, Reply, Result, Timeout  # noqa: F401
# What a validator tells the iterator, and the root hints as the iterator reads them.
from resolver.iterator.hints import Hints  # noqa: F401
from resolver.iterator.verdicts import (BOGUS, INSECURE, SECURE, UNCHECKED,  # noqa: F401
                                        Bogus, Validator)
# The algorithm itself, compiled, loaded on first use: the compiled modules it builds on
# (resolver.state, the cache's store) use this package's events and reply helpers, and import
# it while they load.
if TYPE_CHECKING:
    from resolver.iterator.algorithm import Iterator as Iterator
else:
    from corenet.lazy import lazy_attributes

    __getattr__, __dir__ = lazy_attributes(__name__, {"Iterator": "resolver.iterator.algorithm"},
                                           globals())

log = logging.getLogger("resolver.iterator")

A, NS, CNAME, SOA, AAAA, DNAME, DS, RRSIG, NSEC, NSEC3 = 1, 2, 5, 6, 28, 39, 43, 46, 47, 50
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
ROOT = b"\x00"
