"""Forwarding: a question answered by asking other recursive resolvers (RD set) rather than
by recursion from the root.

A :class:`Forwarder` has the :class:`~resolver.iterator.Iterator`'s driver API (``start``,
``feed``, ``t0``, ``deferred``, ``store_deferred``), so ``resolver.resolution`` runs it with
the same upstream queries, retries (no EDNS, TCP), server choice by smoothed RTT
(``cache.infra``), time limit and caching of the answer. A reply with NOERROR or NXDOMAIN is
the result; SERVFAIL, REFUSED, other rcodes, timeouts and failures move on to the next
forwarder until ``Limits.max_upstream_queries`` or the time limit, then SERVFAIL. A
forwarder that failed is not asked again for the question while another has not failed.

With a ``fallback`` (a forward zone's ``forward-first``) the forwarders get
``Limits.max_tries_per_server`` tries each; when none answers, the question goes on in the
iterator ``fallback()`` makes (recursion), within the same time limit. ``ports`` maps a
server's name in ``servers`` to the (address, port) it is asked at; ``transport`` "tcp"
sends every query over TCP, "tls" over DNS over TLS through ``tls``, the pair (the
resolver's ``resolver.upstream.dot.DoTUpstreams``, the zone's ``Route``).
"""
from __future__ import annotations

import logging

from resolver.iterator.events import Query, Reply, Result

log = logging.getLogger("resolver.iterator")

NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3
ROOT = b"\x00"


class Forwarder:
    """One question asked of ``servers`` (numeric addresses of recursive resolvers)."""

    def __init__(self, qname: bytes, qtype: int, qclass: int, servers: list[str], clock,
                 limits, *, ports: dict | None = None, transport: str = "udp",
                 fallback=None, tls=None) -> None:
        self.qname, self.qtype, self.qclass = qname, qtype, qclass
        self.servers = list(servers)
        self.clock = clock
        self.limits = limits
        self.t0 = clock()
        self.deferred = None         # nothing to store after the answer: the driver caches it
        self.queries = 0
        self.last = "no forwarder answered"
        self.result: Result | None = None
        #: read by the driver (resolver.resolution) when it starts
        self.ports = ports
        self.tcp_upstream = transport == "tcp"
        self.tls_upstream = tls
        self.fallback = fallback
        self.most = limits.max_upstream_queries
        if fallback is not None:
            self.most = min(self.most, len(self.servers) * limits.max_tries_per_server)
        self.recursion = None        # the fallback's iterator, once forwarding gave up
        self.failed: set[str] = set()    # servers that failed this question

    def start(self):
        return self._ask()

    def feed(self, event):
        if self.recursion is not None:
            return self.recursion.feed(event)
        if isinstance(event, Reply):
            m = event.parsed
            if m.rcode in (NOERROR, NXDOMAIN) and not m.tc:
                self.result = Result(m.rcode, answer=list(m.answer),
                                     authority=list(m.authority))
                return self.result
            self.last = f"{event.server} answered rcode {m.rcode}"
        else:
            self.last = f"{event.server}: {getattr(event, 'reason', '') or 'no answer'}"
        self.failed.add(event.server)
        return self._ask()

    def store_deferred(self) -> None:
        if self.recursion is not None and self.recursion.deferred:
            self.recursion.store_deferred()

    def _ask(self):
        if self.fallback is not None and self.queries >= self.most:
            log.info("forwarders failed (%s): recursing", self.last)
            self.recursion = self.fallback()
            self.recursion.t0 = self.t0           # one time limit for the whole question
            return self.recursion.start()
        if (self.queries >= self.most
                or self.clock() - self.t0 > self.limits.max_query_time):
            log.info("SERVFAIL forwarding: %s", self.last)
            self.result = Result(SERVFAIL, reason=self.last,
                                 time_exhausted=self.clock() - self.t0
                                 > self.limits.max_query_time)
            return self.result
        self.queries += 1
        servers = [s for s in self.servers if s not in self.failed] if self.failed else None
        if not servers:
            servers = self.servers
            self.failed.clear()           # every one failed once: each may be asked again
        return Query(self.qname, self.qtype, self.qclass, ROOT, servers, rd=True)
