"""Forwarding: a question answered by asking other recursive resolvers (RD set) rather than
by recursion from the root.

A :class:`Forwarder` has the :class:`~resolver.iterator.Iterator`'s driver API (``start``,
``feed``, ``t0``, ``deferred``, ``store_deferred``), so ``resolver.resolution`` runs it with
the same upstream queries, retries (no EDNS, TCP), server choice by smoothed RTT
(``cache.infra``), time limit and caching of the answer. A reply with NOERROR or NXDOMAIN is
the result; SERVFAIL, REFUSED, other rcodes, timeouts and failures move on to the next
forwarder until ``Limits.max_upstream_queries`` or the time limit, then SERVFAIL. A
forwarder that failed is not asked again for the question while another has not failed,
and one that failed otherwise than by silence only a few times (below).

With a ``fallback`` (a forward zone's ``forward-first``) the forwarders get
``Limits.max_tries_per_server`` tries each; when none answers, the question goes on in the
iterator ``fallback()`` makes (recursion), within the same time limit. With ``attempts``
(resolv.conf's ``options attempts:N``, as glibc) each forwarder is asked at most that many
times, in rounds over them, a forwarder marked down after its timeouts included, each
try waiting ``Limits.max_rto`` for its reply (glibc waits its whole timeout), and then the
question fails: SERVFAIL, its ``errors`` saying
what each try met. With ``stub`` the forwarders are a stub's nameservers, asked as
dnspython's resolver asks them: in rounds, each try waiting ``Limits.max_rto`` whatever the
server's down mark, until ``time_limit`` (the caller's lifetime); a timeout leaves the
server in the next round, but one that answers an error rcode (SERVFAIL too, unless
``retry_servfail``), sends a malformed reply or cannot be reached is not asked again for
the question, and once none is left it fails (SERVFAIL); a YXDOMAIN answer is the result.
Otherwise (without ``attempts``) such a server is asked ``Limits.max_tries_per_server``
times at most for one question, as the recursive Iterator asks an authority: a forwarder
that answers SERVFAIL, refuses connections or fails its certificate costs a few queries or
handshakes a question, not the whole budget.
With ``trust_ad`` (resolv.conf's ``options trust-ad``) the queries
carry AD and an answer whose AD bit is set is taken as secure (the Result's ``security``
SECURE), as glibc keeps that bit only then; otherwise a forwarded answer is never
secure unless ``dnssec`` validated it. ``ports`` maps a
server's name in ``servers`` to the (address, port) it is asked at; ``transport`` "tcp"
sends every query over TCP; ``tls``, the pair (the resolver's
``resolver.upstream.dot.DoTUpstreams``, server name -> (authentication name, CA file)),
sends the queries to those servers over DNS over TLS.

With ``dnssec`` (a :class:`resolver.dnssec.Validator`) the forwarded answer is validated
like a recursive one: the validator runs inside this state machine and its DS and DNSKEY
lookups (:meth:`Forwarder.lookup`) go where ``route(name, rdtype)`` sends them (the
deepest forward or stub zone holding the name, a DS by its parent; else recursion), within
the question's query budget and time limit. Where an answer carries no signature, the
zone that should have signed it is found from the SOA its servers give for the name
(:meth:`Forwarder.find_zone`).
"""
from __future__ import annotations

import logging

from resolver.iterator.algorithm import _Exhausted
from resolver.iterator.events import Query, Reply, Result, Timeout
from resolver.iterator.verdicts import SECURE
from resolver.wire.codec import WireError, is_subdomain, parse_response

log = logging.getLogger("resolver.iterator")

NOERROR, SERVFAIL, NXDOMAIN, YXDOMAIN = 0, 2, 3, 6
AD = 0x0020
SOA, RRSIG, NSEC, NSEC3 = 6, 46, 47, 50
#: what an answer's authority section keeps (Unbound's ``minimal-responses``, as the
#: recursive Iterator's answers): a negative answer's SOA and the DNSSEC denial records
#: with their signatures, never the NS set a forwarder adds to its answers
_AUTHORITY_KEPT = (SOA, RRSIG, NSEC, NSEC3)
ROOT = b"\x00"
#: the error rcodes' names, as dnspython's resolver reports a server's rcode
_RCODES = {1: "FORMERR", 2: "SERVFAIL", 4: "NOTIMP", 5: "REFUSED", 6: "YXDOMAIN", 9: "NOTAUTH"}


class Answered(str):
    """An error rcode a forwarder answered, by its name, with its reply (``wire``): what a
    Result's ``errors`` say of it, the library's NoNameservers giving the reply as
    dnspython's gives the response."""

    def __new__(cls, text: str, wire: bytes) -> "Answered":
        made = super().__new__(cls, text)
        made.wire = wire
        return made


class Forwarder:
    """One question asked of ``servers`` (numeric addresses of recursive resolvers)."""

    def __init__(self, qname: bytes, qtype: int, qclass: int, servers: list[str], clock,
                 limits, *, ports: dict | None = None, transport: str = "udp",
                 fallback=None, dnssec=None, cache=None, route=None,
                 zone: bytes = ROOT, tls=None, private=None, attempts: int | None = None,
                 trust_ad: bool = False, stub: bool = False, retry_servfail: bool = False,
                 time_limit: float | None = None) -> None:
        self.qname, self.qtype, self.qclass = qname, qtype, qclass
        #: the DNS-rebinding guard (``resolver.iterator.private``) or None
        self.private = private
        self.servers = list(servers)
        self.clock = clock
        self.limits = limits
        self.t0 = clock()
        self.deferred = None         # nothing to store after the answer: the driver caches it
        self.queries = 0
        self.result: Result | None = None
        #: read by the driver (resolver.resolution) when it starts
        self.ports = ports
        self.tcp_upstream = transport == "tcp"
        self.tls_upstream = tls
        self.fallback = fallback
        self.most = limits.max_upstream_queries
        if fallback is not None:
            self.most = min(self.most, len(self.servers) * limits.max_tries_per_server)
        #: the tries each forwarder gets before the question fails (None: until the limits)
        self.attempts = attempts
        if attempts is not None:
            self.most = min(self.most, len(self.servers) * attempts)
        #: asked as a stub asks its nameservers (see the module's text)
        self.stub = stub
        self.retry_servfail = retry_servfail
        #: seconds the question may take from ``t0`` (read by the driver)
        self.time_limit = limits.max_query_time if time_limit is None else time_limit
        #: what each try waits for its reply whatever the server's down mark, with
        #: ``attempts`` or as a stub, seconds; 0: the server's own timeout (read by the driver)
        self.try_timeout = limits.max_rto if attempts is not None or stub else 0.0
        #: the queries carry AD and the answers' AD is believed
        self.trust_ad = trust_ad
        self.recursion = None        # the fallback's iterator, once forwarding gave up
        #: the validator, and what its lookups read (the Iterator's names for them)
        self.dnssec = dnssec
        self.cache = cache
        self.route = route
        #: the forward zone's name (wire): the shallowest zone its answers are taken from
        self.zone = zone
        self.aggressive: set = set()     # never synthesizes: read by the validator
        #: the forwarder whose reply answered the question (the Result's ``server``)
        self.answered = None
        #: (server, what went wrong) of each query that failed (the Result's ``errors``)
        self.errors: list | None = None
        self._replied = None             # the server of the last reply ``ask`` returned
        self._gen = self._run()

    # ---- driver API ------------------------------------------------------------------------
    def start(self):
        return self._step(None)

    def feed(self, event):
        return self._step(event)

    def store_deferred(self) -> None:
        if self.recursion is not None and self.recursion.deferred:
            self.recursion.store_deferred()

    def _step(self, event):
        try:
            return self._gen.send(event)
        except StopIteration as stop:
            self.result = stop.value
            return stop.value

    # ---- the question ----------------------------------------------------------------------
    def _run(self):
        res = yield from self.ask(self.qname, self.qtype, first=self.fallback is not None)
        if res is None:
            log.debug("forwarders failed: recursing")
            self.recursion = self.fallback()
            self.recursion.t0 = self.t0           # one time limit for the whole question
            action = self.recursion.start()
            while not isinstance(action, Result):
                action = self.recursion.feed((yield action))
            return action
        self.answered = self._replied
        if self.dnssec is not None and res.rcode in (NOERROR, NXDOMAIN):
            res = yield from self.dnssec.validate(res, self)
        res.server = self.answered
        if res.rcode == SERVFAIL:
            res.errors = self.errors
        return res

    def ask(self, qname: bytes, qtype: int, first: bool = False):
        """Generator: asks the forwarders ``qname``/``qtype`` until one answers with NOERROR
        or NXDOMAIN (the Result), or SERVFAIL once the query budget or the time limit is
        spent. With ``first``, None once each forwarder had its tries (forward-first)."""
        failed: set[str] = set()          # servers that failed this question
        dropped: set[str] = set()         # servers not to be asked it again
        strikes: dict[str, int] = {}      # failures that were not timeouts, by server
        last = "no forwarder answered"
        sent = 0
        lim = self.limits
        # a server that answers an error, garbage, or cannot be reached (refused, a
        # certificate that fails) is asked this often at most (each try is a query, a
        # connection or a TLS handshake it costs them and us); glibc's attempts ask each
        # server their count whatever it does
        most_strikes = 1 if self.stub else (lim.max_tries_per_server if self.attempts is None
                                            else 1 << 30)
        while True:
            if first and sent >= self.most:
                log.debug("forwarders failed (%s)", last)
                return None
            if self.attempts is not None and sent >= self.most:
                log.debug("SERVFAIL forwarding, each forwarder asked %d times: %s",
                          self.attempts, last)
                return Result(SERVFAIL, reason=last)
            spent = self.clock() - self.t0 > self.time_limit
            if self.queries >= lim.max_upstream_queries or spent:
                log.debug("SERVFAIL forwarding: %s", last)
                return Result(SERVFAIL, reason=last, time_exhausted=spent)
            servers = self.servers
            if failed or dropped:
                servers = [s for s in servers if s not in failed and s not in dropped]
            if not servers:
                servers = [s for s in self.servers if s not in dropped]
                failed.clear()           # every one failed once: each may be asked again
                if not servers:
                    log.debug("SERVFAIL forwarding, no nameserver left: %s", last)
                    return Result(SERVFAIL, reason=last)
            self.queries += 1
            sent += 1
            event = yield Query(qname, qtype, self.qclass, ROOT, servers, rd=True,
                                ad=self.trust_ad)
            if isinstance(event, Reply):
                m = event.parsed
                try:
                    if m is None:
                        m = parse_response(event.wire, lim.max_pointer_jumps,
                                           lim.max_records_per_section)
                except WireError as exc:
                    last = f"{event.server} sent a malformed reply: {exc}"
                    self._strike(event.server, strikes, most_strikes, failed, dropped)
                    continue
                if self.private is not None:
                    self.private.scrub(m)
                if m.rcode in (NOERROR, NXDOMAIN) and not m.tc:
                    self._replied = event.server
                    return Result(m.rcode, answer=list(m.answer),
                                  authority=[r for r in m.authority
                                             if r[1] in _AUTHORITY_KEPT],
                                  security=SECURE if self.trust_ad and m.flags & AD else 0)
                if m.rcode == YXDOMAIN and self.stub and not m.tc:
                    self._replied = event.server
                    return Result(YXDOMAIN)
                last = f"{event.server} answered rcode {m.rcode}"
                what = Answered(_RCODES.get(m.rcode, f"rcode {m.rcode}"), event.wire)
                # retried as a lost reply is: TC (answered over TCP) and, with
                # retry_servfail, a stub's SERVFAIL
                lost = m.tc or (self.stub and m.rcode == SERVFAIL and self.retry_servfail)
            else:
                last = f"{event.server}: {getattr(event, 'reason', '') or 'no answer'}"
                what = "timeout" if isinstance(event, Timeout) else (
                    getattr(event, "reason", "") or "failure")
                lost = isinstance(event, Timeout)
            if self.errors is None:
                self.errors = []
            self.errors.append((event.server, what))
            if lost:
                failed.add(event.server)
            else:
                self._strike(event.server, strikes, most_strikes, failed, dropped)

    @staticmethod
    def _strike(server: str, strikes: dict, most: int, failed: set, dropped: set) -> None:
        """``server`` failed otherwise than by silence: dropped for the question at its
        ``most``-th such failure, else left for the next round."""
        strikes[server] = n = strikes.get(server, 0) + 1
        (dropped if n >= most else failed).add(server)

    # ---- what the validator calls ----------------------------------------------------------
    def lookup(self, name: bytes, rdtype: int):
        """Generator: ``name``/``rdtype`` asked where ``route`` sends it (these forwarders
        without one), within this question's time limit: the Result, unvalidated."""
        sub = self.route(name, rdtype, self.qclass) if self.route is not None else None
        if sub is None:
            return (yield from self.ask(name, rdtype))
        sub.t0 = self.t0
        try:
            return (yield from sub.lookup(name, rdtype))
        except _Exhausted as exc:
            return Result(SERVFAIL, reason=str(exc), time_exhausted=exc.time)

    def zone_of(self, name: bytes) -> bytes:
        """The closest zone cut the cache knows for ``name`` at or below the forward zone
        (the forward zone's own name when the cache knows none below it)."""
        floor = self.zone if is_subdomain(name, self.zone) else ROOT
        if self.cache is not None:
            peek = self.cache.rrsets.lru.peek
            now = self.clock()
            cur = name.lower()
            while len(cur) > len(floor):
                e = peek((cur, 2, self.qclass))
                if e is not None and e.negative is None and e.rdatas and e.expires >= now:
                    return cur
                cur = cur[cur[0] + 1:]
        return floor

    def find_zone(self, name: bytes):
        """Generator: the zone ``name`` belongs to, as the SOA its servers send with it
        (in the answer at a zone's apex, in the authority section of a negative answer
        below it) says; ``zone_of`` when they send none that encloses the name."""
        res = yield from self.lookup(name, SOA)
        best = None
        for r in res.answer + res.authority:
            if r[1] == SOA and is_subdomain(name, r[0]) and (best is None
                                                             or len(r[0]) > len(best)):
                best = r[0].lower()
        known = self.zone_of(name)
        if best is None or len(best) < len(known):
            return known
        return best
