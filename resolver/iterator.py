"""The recursive algorithm as a sans-IO state machine.

An :class:`Iterator` resolves one question. It never touches a socket or a clock of its own:
``start()`` and ``feed(event)`` return either a :class:`Query` ("send this question to one of
these servers") or a :class:`Result` (the final answer). The driver (``resolver.engine``, or a
test's fake network) sends the query and feeds back a :class:`Reply`, :class:`Timeout` or
:class:`Failure`. Everything learned goes into the shared :class:`~resolver.cache.Cache`.

Internally the algorithm is a generator: sub-queries (addresses of NS names without glue) are
``yield from`` calls, so the whole client query is one state machine with one budget.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from typing import Callable

from resolver import cache as C
from resolver._iterstep import (count_type as _count_type, glue as _glue, has_soa as _has_soa_in, in_zone as _in_zone,
                                is_lame as _is_lame_ref, is_subdomain, owned as _owned,
                                referral as _referral, split_sigs as _split_sigs,
                                wildcard_expanded as _wildcard_expanded)
from resolver.cache import Cache
from resolver.limits import DEFAULT, Limits
from resolver.wire import WireError, label_count, parent, parse_response, strip_to, to_text

log = logging.getLogger("resolver.iterator")

A, NS, CNAME, SOA, AAAA, DNAME, DS, RRSIG, NSEC, NSEC3 = 1, 2, 5, 6, 28, 39, 43, 46, 47, 50
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
ROOT = b"\x00"


# ---- events the driver sees and feeds back ---------------------------------------------------

@dataclass
class Query:
    """Send (qname, qtype, qclass) to one of ``servers`` (addresses of ``zone``'s servers)."""

    qname: bytes
    qtype: int
    qclass: int
    zone: bytes
    servers: list[str]


@dataclass
class Reply:
    """A reply from ``server``; ``parsed`` is its wire.Parsed when the driver already has it."""

    server: str
    wire: bytes
    rtt: float = 0.0
    parsed: object = None


@dataclass
class Timeout:
    server: str


@dataclass
class Failure:
    """The driver could not get a usable reply from ``server`` (connection refused, TCP
    failure, only malformed/mismatched packets, ...)."""

    server: str
    reason: str = ""


@dataclass
class Result:
    """The outcome: rcode, answer and authority record tuples (RRSIG/NSEC included; the driver
    strips them for clients without DO), and why it failed when it did."""

    rcode: int
    answer: list = field(default_factory=list)
    authority: list = field(default_factory=list)
    reason: str | None = None
    time_exhausted: bool = False
    #: DNSSEC verdict (UNCHECKED, INSECURE, SECURE, BOGUS) and, when BOGUS, the RFC 8914 code
    security: int = 0
    ede: int | None = None


class _Exhausted(Exception):
    def __init__(self, reason: str, time: bool = False) -> None:
        super().__init__(reason)
        self.time = time


@dataclass
class _Step:
    kind: str                       # answer | cname | nx | nodata | servfail
    records: list = field(default_factory=list)
    authority: list = field(default_factory=list)
    next: bytes | None = None
    reason: str | None = None


#: A validator sits between replies and the cache. It is called as
#: ``validator(parsed, zone, server, iterator)`` for every usable reply and returns the reply
#: to use (it may drop records, and sets ``parsed.security`` to SECURE so the rrsets are cached
#: at the VALIDATED rank) or raises :class:`Bogus`. It may instead return a generator: the
#: iterator runs it with ``yield from``, so it can fetch DNSKEY/DS through
#: ``iterator.lookup(name, rdtype)`` inside the same state machine and budget (issue 7).
Validator = Callable[[object, bytes, str, "Iterator"], object]

#: values of ``Parsed.security``
UNCHECKED, INSECURE, SECURE, BOGUS = 0, 1, 2, 3


class Bogus(Exception):
    """Raised by a validator for data that fails validation; the client query gets SERVFAIL."""


class Hints:
    """Root hints indexed for the iterator: built once per resolver and shared read-only by
    its iterators, rather than re-indexed for every client query."""

    __slots__ = ("names", "addrs", "ipv6")

    def __init__(self, hints: list[tuple[bytes, str]], ipv6: bool = False) -> None:
        self.ipv6 = ipv6
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


class Iterator:
    """Resolves one (qname, qtype, qclass) from the closest cached delegation downwards."""

    def __init__(self, qname: bytes, qtype: int, qclass: int, cache: Cache,
                 hints: list[tuple[bytes, str]], clock: Callable[[], float], *,
                 limits: Limits = DEFAULT, minimise: bool = True, ipv6: bool = False,
                 validator: Validator | None = None, stats=None, dnssec=None) -> None:
        self.qname, self.qtype, self.qclass = qname, qtype, qclass
        self.cache = cache
        self.clock = clock
        self.limits = limits
        self.minimise = minimise
        self.ipv6 = ipv6
        self.validator = validator
        #: resolver.dnssec.Validator: checks the final Result (its ``validate`` generator runs
        #: inside this state machine, so its DS/DNSKEY lookups share the query's budget).
        self.dnssec = dnssec
        #: names answered NXDOMAIN/NODATA from validated NSEC ranges (RFC 8198) in this query
        self.aggressive: set[bytes] = set()
        self.stats = stats
        if not isinstance(hints, Hints):       # the engine passes its own, built once
            hints = Hints(hints, ipv6)
        self.hint_names = hints.names
        self.hint_addrs = hints.addrs
        self.queries = 0
        self.t0 = clock()
        self.stack: set = set()
        self._gen = self._run()
        self.result: Result | None = None

    # ---- driver API ----------------------------------------------------------------------
    def start(self) -> Query | Result:
        return self._step(None)

    def feed(self, event: Reply | Timeout | Failure) -> Query | Result:
        return self._step(event)

    def _step(self, event):
        try:
            if event is None:
                return next(self._gen)
            return self._gen.send(event)
        except StopIteration as stop:
            self.result = stop.value
            return stop.value

    # ---- the algorithm -------------------------------------------------------------------
    def _run(self):
        try:
            res = yield from self._lookup(self.qname, self.qtype, 0)
            if self.dnssec is not None and res.rcode in (NOERROR, NXDOMAIN):
                res = yield from self.dnssec.validate(res, self)
        except _Exhausted as exc:
            log.info("SERVFAIL %s/%d: %s", to_text(self.qname), self.qtype, exc)
            return Result(SERVFAIL, reason=str(exc), time_exhausted=exc.time)
        if res.rcode == SERVFAIL:
            log.info("SERVFAIL %s/%d: %s", to_text(self.qname), self.qtype, res.reason)
        return res

    def _lookup(self, name: bytes, qtype: int, depth: int):
        """Resolves ``name``/``qtype`` following CNAME/DNAME links; returns a Result."""
        now = self.clock()
        answer: list = []
        proofs: list = []          # NSEC/NSEC3 proving wildcard answers, for the validator
        cur = name
        links = 0
        while True:
            key = (cur.lower(), qtype, self.qclass)
            why = self.cache.failure(key, now)
            if why is not None:
                return Result(SERVFAIL, answer, reason=f"cached failure: {why}")
            hit = self._from_cache(cur, qtype, now)
            if hit is None and self.dnssec is not None:
                syn = self.dnssec.synthesize(cur, qtype, now)
                if syn is not None:
                    hit = _Step(syn[0], [], syn[1])
                    self.aggressive.add(cur.lower())
            if hit is None:
                if key in self.stack:
                    return Result(SERVFAIL, answer, reason="cyclic dependency on "
                                  f"{to_text(cur)}/{qtype}")
                self.stack.add(key)
                try:
                    hit = yield from self._iterate(cur, qtype, depth)
                finally:
                    self.stack.discard(key)
                if hit.kind == "servfail":
                    self.cache.remember_failure(key, hit.reason or "failed", self.clock())
                    return Result(SERVFAIL, answer, reason=hit.reason)
            answer += hit.records
            if hit.kind in ("answer", "cname"):
                proofs += hit.authority
            links += _count_type(hit.records, CNAME) or (hit.kind == "cname")
            if links > self.limits.max_cname_chain:
                return Result(SERVFAIL, answer, reason="CNAME/DNAME chain longer than "
                              f"{self.limits.max_cname_chain}")
            if hit.kind == "answer":
                return Result(NOERROR, answer, proofs)
            if hit.kind == "nx":
                return Result(NXDOMAIN, answer, proofs + hit.authority)
            if hit.kind == "nodata":
                return Result(NOERROR, answer, proofs + hit.authority)
            cur = hit.next
            now = self.clock()

    def _from_cache(self, name: bytes, qtype: int, now: float) -> _Step | None:
        rr = self.cache.rrsets
        e = rr.get(name, qtype, self.qclass, now)
        if e is not None and e.negative is None and e.rank >= C.NONAUTH_ANSWER:
            return _Step("answer", e.records(now) + e.sig_records(now))
        neg = rr.get_negative(name, qtype, self.qclass, now)
        if neg is not None:
            return _Step("nx" if neg.negative == 3 else "nodata", [], neg.negative_records(now))
        # RFC 8020: below a name that does not exist, nothing exists.
        anc = name
        while len(anc) > 1:
            anc = parent(anc)
            nx = rr.get(anc, C.NXDOMAIN_TYPE, self.qclass, now)
            if nx is not None:
                return _Step("nx", [], nx.negative_records(now))
        if qtype != CNAME:
            e = rr.get(name, CNAME, self.qclass, now)
            if e is not None and e.negative is None and e.rank >= C.NONAUTH_ANSWER and e.rdatas:
                sigs = e.sig_records(now)
                lead = [] if sigs else self._dname_from_cache(name, e.rdatas[0], now)
                return _Step("cname", lead + e.records(now)[:1] + sigs, next=e.rdatas[0])
        return None

    def _dname_from_cache(self, name: bytes, target: bytes, now: float) -> list:
        """The cached DNAME (with its RRSIGs) that synthesized the unsigned CNAME
        ``name`` -> ``target``, or []: a validator proves such a CNAME by its DNAME, so an
        answer rebuilt from the cache must carry it as the first one did."""
        rr = self.cache.rrsets
        anc = name
        while len(anc) > 1:
            anc = parent(anc)
            d = rr.get(anc, DNAME, self.qclass, now)
            if d is not None and d.negative is None and d.rdatas:
                synthesized = name[:len(name) - len(anc)] + d.rdatas[0]
                if synthesized.lower() == target.lower():
                    return d.records(now)[:1] + d.sig_records(now)
                return []
        return []

    def zone_of(self, name: bytes) -> bytes:
        """The closest enclosing zone cut the cache knows for ``name`` (the root if none):
        where a validator looks for the keys of data that carries no signature."""
        return self._closest_delegation(name)[0]

    def _closest_delegation(self, name: bytes) -> tuple[bytes, list[bytes]]:
        now = self.clock()
        z = name
        while True:
            e = self.cache.rrsets.get(z, NS, self.qclass, now)
            if e is not None and e.negative is None and e.rdatas:
                return z, list(e.rdatas)
            if z == ROOT or len(z) <= 1:
                return ROOT, list(self.hint_names)
            z = parent(z)

    def _addresses(self, ns: bytes, now: float) -> list[str]:
        out = list(self.hint_addrs.get(ns.lower(), ()))
        types = (A, AAAA) if self.ipv6 else (A,)
        for t in types:
            e = self.cache.rrsets.get(ns, t, self.qclass, now)
            if e is not None and e.negative is None:
                texts = e.addrs
                if texts is None:       # converted once per cached rrset, not per query
                    texts = e.addrs = [a for a in (_addr_text(t, rd) for rd in e.rdatas) if a]
                for addr in texts:
                    if addr not in out:
                        out.append(addr)
        return out

    def _budget(self) -> None:
        if self.queries >= self.limits.max_upstream_queries:
            raise _Exhausted(f"upstream query limit ({self.limits.max_upstream_queries}) reached")
        if self.clock() - self.t0 > self.limits.max_query_time:
            raise _Exhausted(f"time limit ({self.limits.max_query_time}s) reached", time=True)

    def _ask(self, zone: bytes, nsnames: list[bytes], qname: bytes, qtype: int, depth: int):
        """Asks the zone's servers until one gives a usable reply: (server, parsed, what
        ``_referral`` says of it) or None."""
        attempts: dict[str, int] = {}
        retryable: list[str] = []        # asked, but the reply was lost: may be asked again
        extra: dict[bytes, list[str]] = {}
        resolved = 0
        lim = self.limits
        while True:
            now = self.clock()
            addrs: list[str] = []
            pending: list[bytes] = []
            for ns in nsnames:
                found = self._addresses(ns, now) or extra.get(ns.lower(), [])
                if not found and ns.lower() not in extra:
                    pending.append(ns)
                for a in found:
                    if (a not in attempts and a not in addrs
                            and not self.cache.infra.is_lame(a, zone)):
                        addrs.append(a)
            if not addrs:
                if (pending and resolved < lim.max_ns_names_per_delegation
                        and depth < lim.max_dependency_depth):
                    ns = pending[0]
                    resolved += 1
                    res = yield from self._lookup(ns, A, depth + 1)
                    extra[ns.lower()] = [_addr_text(A, r[4]) for r in res.answer
                                         if r[1] == A and len(r[4]) == 4]
                    continue
                # Every server has been asked once: a lost datagram is not a dead server.
                addrs = [a for a in retryable if attempts[a] < lim.max_tries_per_server]
                if not addrs:
                    return None
            if sum(attempts.values()) >= lim.max_servers_per_zone:
                return None
            self._budget()
            self.queries += 1
            event = yield Query(qname, qtype, self.qclass, zone, addrs)
            server = event.server
            attempts[server] = attempts.get(server, 0) + 1
            if server in retryable:
                retryable.remove(server)
            if isinstance(event, (Timeout, Failure)):
                retryable.append(server)
                continue
            try:
                m = event.parsed
                if m is None:
                    m = parse_response(event.wire, lim.max_pointer_jumps,
                                       lim.max_records_per_section)
            except WireError:
                self._count("dropped_malformed")
                self.cache.infra.record_failure(server, self.clock())
                continue
            if (not m.qr or m.qname is None or m.qname.lower() != qname.lower()
                    or m.qtype != qtype or m.qclass != self.qclass):
                self._count("dropped_malformed")
                continue
            if m.rcode not in (NOERROR, NXDOMAIN):
                self.cache.infra.record_failure(server, self.clock())
                continue
            ref = _referral(m, zone, qname)
            if _is_lame_ref(m, zone, qname, ref):
                log.debug("lame server %s for %s", server, to_text(zone))
                self.cache.infra.mark_lame(server, zone)
                continue
            if self.validator is not None:
                try:
                    out = self.validator(m, zone, server, self)
                    if inspect.isgenerator(out):
                        out = yield from out
                except Bogus as exc:
                    raise _Exhausted(f"bogus data from {server}: {exc}")
                m = out
                ref = _referral(m, zone, qname)     # the validator may have changed the reply
            return server, m, ref

    def lookup(self, name: bytes, rdtype: int):
        """Generator: a sub-lookup (following CNAMEs, through the cache) inside this client
        query's budget, for validators; ``res = yield from it.lookup(name, DNSKEY)``."""
        return (yield from self._lookup(name, rdtype, 1))

    def _count(self, name: str) -> None:
        if self.stats is not None:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    def _iterate(self, name: bytes, qtype: int, depth: int):
        """Finds ``name``/``qtype`` by walking down delegations (no CNAME following)."""
        start = parent(name) if qtype == DS and name != ROOT else name
        zone, nsnames = self._closest_delegation(start)
        nl = label_count(name)
        probe = 0
        steps = 0
        referrals = 0
        minimise = self.minimise
        while True:
            probe = max(probe, label_count(zone))
            if minimise and probe + 1 < nl and steps < self.limits.max_minimise_count:
                probe += 1
                steps += 1
                sent, stype = strip_to(name, probe), A
            else:
                sent, stype = name, qtype
            got = yield from self._ask(zone, nsnames, sent, stype, depth)
            if got is None:
                return _Step("servfail", reason=f"no server of {to_text(zone)} answered "
                             f"{to_text(sent)}/{stype} usably")
            server, m, ref = got
            now = self.clock()
            if ref is not None:
                child, ns_recs = ref
                referrals += 1
                if referrals > self.limits.max_referrals:
                    return _Step("servfail", reason="too many referrals")
                self._cache_referral(m, zone, child, ns_recs, now)
                zone, nsnames = child, [r[4] for r in ns_recs]
                continue
            if sent != name or stype != qtype:
                # A minimised probe that did not delegate.
                if m.rcode == NXDOMAIN and _has_soa(m, zone):
                    # RFC 8020: nothing exists below a name that does not exist.
                    soa = self.cache.rrsets.store_negative(
                        name, qtype, self.qclass, True, _in_zone(m.authority, zone),
                        C.AUTH_AUTHORITY, now)
                    return _Step("nx", [], soa)
                if any(r[1] in (CNAME, DNAME) for r in m.answer):
                    minimise = False       # the full name decides; ask it in this zone
                else:
                    self._cache_answer(m, zone, now)
                continue
            return self._final(m, zone, name, qtype, now)

    def _cache_referral(self, m, zone: bytes, child: bytes, ns_recs: list, now: float) -> None:
        rr = self.cache.rrsets
        rr.store_records(ns_recs, C.REFERRAL, now)
        glue = _glue(m.additional, zone, ns_recs)
        if glue:
            rr.store_records(glue, C.GLUE, now)
        ds = [r for r in m.authority if r[1] in (DS, RRSIG, NSEC, NSEC3)
              and is_subdomain(r[0], zone)]
        dsrecs = [r for r in ds if r[1] == DS and r[0].lower() == child.lower()]
        if dsrecs:
            rr.store_records(dsrecs, C.NONAUTH_ANSWER, now,
                             [r for r in ds if r[1] == RRSIG])

    def _cache_answer(self, m, zone: bytes, now: float, in_zone: list | None = None) -> None:
        rank = C.VALIDATED if m.security == SECURE else (
            C.AUTH_ANSWER if m.aa else C.NONAUTH_ANSWER)
        if in_zone is None:
            in_zone = _in_zone(m.answer, zone)
        recs, sigs = _split_sigs(in_zone)
        if recs:
            self.cache.rrsets.store_records(recs, rank, now, sigs)

    def _final(self, m, zone: bytes, name: bytes, qtype: int, now: float) -> _Step:
        """Interprets the authoritative reply to the full question."""
        answer = _in_zone(m.answer, zone)
        self._cache_answer(m, zone, now, answer)
        out: list = []
        cur = name
        for _ in range(len(answer) + 1):
            found = _owned(answer, cur, qtype)
            if found is not None:
                out += found
                return _Step("answer", out, _wildcard_proofs(m, zone, out))
            lcur = cur.lower()
            dn = [r for r in answer if r[1] == DNAME and r[0].lower() != lcur
                  and is_subdomain(cur, r[0])]
            if dn and qtype != DNAME:
                d = dn[0]
                prefix = cur[:len(cur) - len(d[0])]
                target = prefix + d[4]
                if len(target) > 255:
                    return _Step("nx", out, [])        # YXDOMAIN, reported as NXDOMAIN
                out.append(d)
                out += [r for r in answer if r[0].lower() == d[0].lower() and _covers(r, DNAME)]
                out.append((cur, CNAME, self.qclass, d[3], target))
                cur = target
                continue
            cn = [r for r in answer if r[0].lower() == lcur and r[1] == CNAME]
            if cn and qtype != CNAME:
                out.append(cn[0])
                out += [r for r in answer if r[0].lower() == lcur and _covers(r, CNAME)]
                cur = cn[0][4]
                continue
            break
        soa = [r for r in _in_zone(m.authority, zone) if r[1] in (SOA, RRSIG, NSEC, NSEC3)]
        in_zone = is_subdomain(cur, zone)
        if cur != name and not (in_zone and (m.rcode == NXDOMAIN or _has_soa(m, zone))):
            return _Step("cname", out, _wildcard_proofs(m, zone, out), next=cur)
        if m.rcode == NXDOMAIN:
            soa = self.cache.rrsets.store_negative(cur, qtype, self.qclass, True, soa,
                                                   C.AUTH_AUTHORITY, now)
            return _Step("nx", out, soa)
        if soa:
            soa = self.cache.rrsets.store_negative(cur, qtype, self.qclass, False, soa,
                                                   C.AUTH_AUTHORITY, now)
        return _Step("nodata", out, soa)


# ---- reply classification ---------------------------------------------------------------------

def _wildcard_proofs(m, zone: bytes, out: list) -> list:
    """NSEC/NSEC3 (with their RRSIGs) of the authority section when an answer record was
    expanded from a wildcard (its RRSIG's label count is below its owner's): the proof that
    no closer name exists, kept for the validator."""
    if not _wildcard_expanded(out):
        return []
    return [r for r in _in_zone(m.authority, zone)
            if r[1] in (NSEC, NSEC3) or (r[1] == RRSIG and _covers_any(r, (NSEC, NSEC3)))]


def _covers_any(rec: tuple, types) -> bool:
    return len(rec[4]) >= 2 and ((rec[4][0] << 8) | rec[4][1]) in types


def _covers(rec: tuple, rdtype: int) -> bool:
    return rec[1] == RRSIG and len(rec[4]) >= 2 and ((rec[4][0] << 8) | rec[4][1]) == rdtype


def _has_soa(m, zone: bytes) -> bool:
    return _has_soa_in(m.authority, zone)


def _is_lame(m, zone: bytes, qname: bytes) -> bool:
    """A server that does not speak with authority for ``zone``: an upward/sideways referral,
    or an answer without AA (the checks are in ``resolver._iterstep``)."""
    return _is_lame_ref(m, zone, qname, _referral(m, zone, qname))


def _addr_text(rdtype: int, rd: bytes) -> str:
    import socket
    if rdtype == A and len(rd) == 4:
        return socket.inet_ntop(socket.AF_INET, rd)
    if rdtype == AAAA and len(rd) == 16:
        return socket.inet_ntop(socket.AF_INET6, rd)
    return ""
