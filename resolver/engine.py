"""Resolver: drives the sans-IO iterator over the upstream transports and the cache.

The cache-hit path (``resolve_cached``, the first step of ``resolve_message``) parses the raw
query with ``resolver.wire.codec``, finds the whole cached response and patches it: no dnspython.
Misses run one :class:`~resolver.iterator.Iterator` per distinct question (identical lookups in
flight share it), bounded by ``Limits.max_query_time``: in the caller's task for
``resolve_message``, or by callbacks for the daemon (``start_miss``, ``resolver.resolution``).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import random
import struct
import time
from pathlib import Path
from typing import Iterable

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from asyncio.tasks import _current_tasks

from resolver import iterator as it
from resolver import response
from resolver.state import ResolverCore, Stats  # noqa: F401 (Stats: part of this module's API)
from resolver.cache import Cache
from resolver.dnssec import Suspend, Validator
from resolver.dnssec.trust_anchor import ROOT_ANCHOR_FILE, load as load_trust_anchor
from resolver.iterator import Failure, Iterator, Query, Reply, Result, Timeout
from resolver.limits import DEFAULT, Limits
from resolver.upstream.errors import UpstreamFailure, UpstreamTimeout, UpstreamUnreachable
from resolver.upstream.exchange import needs_retry, question_of, retry, udp_query
from resolver.resolution import Shared as _Shared, forget, iterator_for, start as start_drive
from resolver.wire.codec import cache_key, to_text

log = logging.getLogger("resolver.engine")
monotonic = time.monotonic

DATA = Path(__file__).parent / "data"
ROOT_HINTS_FILE = DATA / "root.hints"


class Answer(dns.resolver.Answer):
    """dnspython's Answer (``.rrset``, ``.response``, ``.canonical_name``, ``.expiration``),
    with ``expiration`` taken from our cache (wall-clock seconds, as dnspython does)."""

    def __init__(self, qname: dns.name.Name, rdtype, rdclass, response: dns.message.Message,
                 expiration: float) -> None:
        super().__init__(qname, rdtype, rdclass, response)
        self.expiration = expiration


def parse_root_hints(source) -> list[tuple[bytes, str]]:
    """(NS name wire, address) pairs from a hints file path or from (name, address) pairs."""
    pairs: list[tuple[bytes, str]] = []
    if isinstance(source, (str, os.PathLike)):
        text = Path(source).read_text()
        ns_names: set[bytes] = set()
        addrs: list[tuple[bytes, str]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.split(";", 1)[0].strip()
            if not line:
                continue
            tok = line.split()
            try:
                rtype_i = next(i for i, t in enumerate(tok) if t.upper() in ("NS", "A", "AAAA"))
                owner, rtype, data = tok[0], tok[rtype_i].upper(), tok[rtype_i + 1]
            except (StopIteration, IndexError):
                raise ValueError(f"{source}:{lineno}: cannot read root hint {line!r}") from None
            if rtype == "NS":
                if dns.name.from_text(owner) != dns.name.root:
                    raise ValueError(f"{source}:{lineno}: NS hint for {owner}, not the root")
                ns_names.add(dns.name.from_text(data).to_wire().lower())
            else:
                addrs.append((dns.name.from_text(owner).to_wire(), data))
        pairs = [(n, a) for n, a in addrs if n.lower() in ns_names]
    else:
        for name, addr in source:
            pairs.append((dns.name.from_text(name).to_wire(), str(addr)))
    for name, addr in pairs:
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            raise ValueError(f"root hint {dns.name.from_wire(name, 0)[0]} has {addr!r}, which "
                             "is not a numeric IPv4 or IPv6 address") from None
    if not pairs:
        raise ValueError("root hints contain no usable (NS name, address) pair")
    return pairs


def _name_wire(qname) -> bytes:
    if isinstance(qname, dns.name.Name):
        name = qname
    else:
        name = dns.name.from_text(str(qname))
    if not name.is_absolute():
        name = name.concatenate(dns.name.root)
    return name.to_wire()


class Resolver(ResolverCore):
    """A recursive, caching resolver on the running asyncio loop.

    ``root_hints``: ``None`` for the real root servers (shipped file), a path to a hints file,
    or a list of (name, address); the root is primed from them (``Iterator._prime``) and
    they serve when priming fails. ``port``: destination port for every authority.
    ``cache_size``: byte bound of the cache. ``limits``: see ``resolver.limits``.
    ``validator``: per-reply hook (``resolver.iterator.Validator``).
    ``trust_anchor``: DNSSEC anchor (a DS/DNSKEY file, RFC 7958 XML, or a dnspython rrset);
    ``None`` means the shipped root anchor when ``root_hints`` is ``None`` (the real root)
    and no validation otherwise. ``validate=False`` turns validation off.

    The fields its compiled miss path reads (``stats``, ``limits``, ``cache``...) live in
    its C base class, ``resolver.state.ResolverCore``.
    """

    def __init__(self, root_hints: str | os.PathLike | Iterable[tuple[str, str]] | None = None, *,
                 port: int = 53, cache_size: int = 64 * 1024 * 1024, limits: Limits = DEFAULT,
                 qname_minimisation: bool = True, ipv6: bool = False, validator=None,
                 rng: random.Random | None = None, trust_anchor=None,
                 validate: bool = True) -> None:
        self.hints = parse_root_hints(ROOT_HINTS_FILE if root_hints is None else root_hints)
        self.port = int(port)
        self.limits = limits
        self.minimise = qname_minimisation
        self.ipv6 = ipv6
        self.validator = validator
        self.dnssec: Validator | None = None
        if validate and (trust_anchor is not None or root_hints is None):
            anchors = load_trust_anchor(ROOT_ANCHOR_FILE if trust_anchor is None
                                        else trust_anchor)
            self.dnssec = Validator(anchors, limits)
        self.cache = Cache(cache_size, limits, rng=rng)
        self.clock = time.monotonic
        self._msgs = self.cache.messages.table
        # self.stats (zeroed) and self._inflight (question -> Shared) come from ResolverCore
        self._loop: asyncio.AbstractEventLoop | None = None    # of the last miss
        self._background: set[asyncio.Task] = set()
        self._closing = False
        self._hints: it.Hints | None = None       # self.hints indexed once for the iterators
        self._hints_src = None

    # ---- the cache-hit path ----------------------------------------------------------------
    #: ``resolve_cached(query: bytes) -> bytes | None``: the response to a wire query if the
    #: cache has a fresh one, else None. Synchronous: the daemon calls it straight from its
    #: receive path. Compiled (resolver.response.cached), bound as a method.
    resolve_cached = response.cached

    # ---- resolve_message ---------------------------------------------------------------------
    async def resolve_message(self, query: dns.message.Message | bytes
                              ) -> dns.message.Message | bytes:
        """The full response a recursive server sends for ``query``.

        Returns wire ``bytes`` for a ``bytes`` query (the daemon's fast path: a cache hit is a
        copy and a patch) and a ``dns.message.Message`` for a Message. Malformed queries get
        FORMERR when a header can be read; a query shorter than a header raises WireError.
        """
        if isinstance(query, dns.message.Message):
            out = await self.resolve_message(query.to_wire())
            return dns.message.from_wire(out, ignore_trailing=True)
        miss = response.hit_or_begin(self, query)
        if miss.__class__ is bytes:
            return miss
        return await self.resolve_miss(query, miss)

    #: ``start_miss(query, done, loop) -> bytes | Drive``: ``resolve_message`` for the daemon,
    #: by callbacks rather than a coroutine (see resolver.resolution.start, bound as a method).
    start_miss = start_drive

    async def resolve_miss(self, query: bytes, miss: tuple) -> bytes:
        """The rest of ``resolve_message`` after ``begin_miss``, as a coroutine."""
        m = miss[0]
        return self.finish_miss(query, miss, await self._resolution(m.qname, m.qtype,
                                                                     m.qclass))

    #: ``begin_miss(q: bytes) -> bytes | tuple``: the first half of a miss, an error response
    #: now (FORMERR, NOTIMP, BADVERS, REFUSED...) or what ``finish_miss`` needs once the
    #: question is resolved (the parsed query first). Raises WireError for a query shorter
    #: than a header. ``finish_miss(q, miss, res: Result) -> bytes``: the second half, the
    #: response from the resolution's result, cached when it may be. Both compiled
    #: (resolver.response), bound as methods.
    begin_miss = response.begin
    finish_miss = response.finish

    # ---- resolve (dnspython-style) ------------------------------------------------------------
    async def resolve(self, qname, rdtype="A", rdclass="IN") -> Answer:
        """Like ``dns.asyncresolver.Resolver.resolve``; raises NXDOMAIN, NoAnswer,
        NoNameservers (SERVFAIL) or LifetimeTimeout (the time limit ran out)."""
        rdtype = dns.rdatatype.RdataType.make(rdtype)
        rdclass = dns.rdataclass.RdataClass.make(rdclass)
        name = _name_wire(qname)
        key = cache_key(name, rdtype, rdclass, 0)
        now = self.clock()
        e = self._msgs.get(key)
        if e is not None and e.expires >= now:
            self._msgs.move_to_end(key)
            e.hits += 1
            self.stats.cache_hits += 1
            self.stats.client_queries += 1
            lim = self.limits
            if (now > e.expires - e.ttl * lim.prefetch_fraction
                    and e.hits >= lim.prefetch_min_hits and not e.prefetching):
                self._prefetch(key, e)
            return self._answer(e, name, rdtype, rdclass, now)
        self.stats.client_queries += 1
        self.stats.cache_misses += 1
        question = name + struct.pack("!HH", rdtype, rdclass)
        res = await self._resolution(name, rdtype, rdclass)
        now = self.clock()
        if res.security == it.BOGUS:
            self.stats.servfail += 1
            raise dns.resolver.NoNameservers(
                request=dns.message.make_query(dns.name.from_wire(name, 0)[0], rdtype, rdclass),
                errors=[(None, False, self.port, res.reason or "DNSSEC bogus", None)])
        if res.rcode == it.SERVFAIL:
            if e is not None and e.stale_until >= now:
                self.stats.stale_answers += 1
                return self._answer(e, name, rdtype, rdclass, now)
            self.stats.servfail += 1
            request = dns.message.make_query(dns.name.from_wire(name, 0)[0], rdtype, rdclass)
            if res.time_exhausted:
                raise dns.resolver.LifetimeTimeout(timeout=self.limits.max_query_time,
                                                   errors=[(None, False, self.port,
                                                            res.reason or "", None)])
            raise dns.resolver.NoNameservers(request=request, errors=[
                (None, False, self.port, res.reason or "SERVFAIL", None)])
        # AD tells library users the answer was validated (dnspython shows it in .response).
        wire = response.response(res, question, rdtype, False, False, res.security == it.SECURE)
        if res.rcode in (it.NOERROR, it.NXDOMAIN):
            e = self.cache.messages.store(key, wire, now)
            return self._answer(e, name, rdtype, rdclass, now)
        raise dns.resolver.NoNameservers(
            request=dns.message.make_query(dns.name.from_wire(name, 0)[0], rdtype, rdclass),
            errors=[(None, False, self.port, f"rcode {res.rcode}", None)])

    def _answer(self, e, name: bytes, rdtype, rdclass, now: float) -> Answer:
        """The entry's Answer, built once and then shared by every hit, as dnspython's own
        cache does (so its rrset TTLs are those of when it was stored; ``expiration`` is
        exact). A stale entry gets a fresh Answer with the stale TTL."""
        outcome = e.parsed
        if outcome is None or e.expires < now:
            msg = dns.message.from_wire(e.wire)
            qname = msg.question[0].name
            if msg.rcode() == dns.rcode.NXDOMAIN:
                outcome = ("nx", qname, msg)
            else:
                if e.expires < now:
                    for rrset in msg.answer:
                        rrset.ttl = self.limits.stale_answer_ttl
                    expiration = time.time() + self.limits.stale_answer_ttl
                else:
                    expiration = time.time() + max(0.0, e.expires - now)
                ans = Answer(qname, rdtype, rdclass, msg, expiration)
                outcome = ("ok", ans) if ans.rrset is not None else ("nodata", msg)
            if e.expires >= now:
                e.parsed = outcome
        if outcome[0] == "ok":
            return outcome[1]
        if outcome[0] == "nx":
            raise dns.resolver.NXDOMAIN(qnames=[outcome[1]], responses={outcome[1]: outcome[2]})
        raise dns.resolver.NoAnswer(response=outcome[1])

    # ---- resolution ---------------------------------------------------------------------------
    async def _resolution(self, qname: bytes, qtype: int, qclass: int) -> Result:
        """One resolution per distinct question in flight.

        The first caller runs it inline, in its own task (no task, shield and done-callback
        hops per miss); later identical callers wait on its shared future. If that first caller
        is cancelled while others wait, the resolution is handed to a task of its own, so a
        caller giving up never cancels it for the others.
        """
        key = (qname.lower(), qtype, qclass)
        shared = self._inflight.get(key)
        if shared is not None:
            self.stats.coalesced += 1
            shared.waiters += 1
            return await asyncio.shield(shared.future(asyncio.get_running_loop()))
        # The loop is found once per miss and handed down. get_running_loop() costs a getpid()
        # system call on Python 3.11, so the loop of the previous miss is tried first: if it
        # is running a task, it is this thread's running loop and that task is ours (one loop
        # runs per thread, and a stopped or other loop has no current task here).
        # The shared future is only made when someone waits on it (rarely: a miss is usually
        # the only one for its question).
        loop = self._loop
        task = _current_tasks.get(loop) if loop is not None else None
        if task is None:
            loop = self._loop = asyncio.get_running_loop()
            task = asyncio.current_task(loop)
        shared = self._inflight[key] = _Shared(task)
        try:
            res = await self._bounded(qname, qtype, qclass, loop, task)
        except asyncio.CancelledError:
            shared.owner = None
            if shared.waiters and not self._closing and not shared.future(loop).done():
                task = shared.task = loop.create_task(self._bounded(qname, qtype, qclass,
                                                                     loop))
                task.add_done_callback(lambda t: self._handed_over(key, shared, t))
            else:
                self._forget(key, shared)
                if shared.fut is not None:
                    shared.fut.cancel()
            raise
        self._forget(key, shared)
        fut = shared.fut
        if fut is not None and not fut.done():
            fut.set_result(res)
        return res

    _forget = forget            # (key, shared): compiled, as the Drive calls it per miss

    def _handed_over(self, key: tuple, shared: "_Shared", task: asyncio.Task) -> None:
        self._forget(key, shared)
        if shared.fut.done():
            return
        if task.cancelled():
            shared.fut.cancel()
        else:
            shared.fut.set_result(task.result())     # _bounded never raises

    async def _bounded(self, qname: bytes, qtype: int, qclass: int,
                       loop: asyncio.AbstractEventLoop, task: asyncio.Task | None = None,
                       iterator: Iterator | None = None, action=None, pending=None) -> Result:
        """The iterator run under the total-time limit; never raises (a bug is a logged
        SERVFAIL, not a crash of the caller). With ``iterator``, goes on with one already
        started, in the time it has left: from ``action``, its last step, or from the event
        that the coroutine ``pending`` returns.

        The limit works as ``asyncio.timeout`` does (cancel the task when it expires, turn
        that one cancellation back into a time-out, leave any other one alone), with one
        timer handle and no Timeout object, ``current_task()`` or ``get_running_loop()`` per
        miss; ``wait_for`` would also wrap the coroutine in one more Task.
        """
        if task is None:
            task = asyncio.current_task(loop)
        cancelling = task.cancelling()
        fired = [False]
        limit = self.limits.max_query_time
        if iterator is not None:
            limit = max(0.0, limit - (self.clock() - iterator.t0))
        timer = loop.call_later(limit, _time_up, task, fired)
        try:
            try:
                return await self._drive(qname, qtype, qclass, loop, iterator, action, pending)
            finally:
                timer.cancel()
                if pending is not None:
                    pending.close()           # never started if cancelled early
        except asyncio.CancelledError:
            if not (fired[0] and task.uncancel() <= cancelling):
                raise
            reason = f"time limit ({self.limits.max_query_time}s) reached"
            log.info("SERVFAIL %s/%d: %s", to_text(qname), qtype, reason)
            return Result(it.SERVFAIL, reason=reason, time_exhausted=True)
        except Exception as exc:       # pragma: no cover - a bug, reported and contained
            log.exception("resolving %s/%d failed", to_text(qname), qtype)
            return Result(it.SERVFAIL, reason=f"internal error: {exc!r}")

    _iterator = iterator_for    # (qname, qtype, qclass) -> Iterator: compiled, made per miss

    def _server_for(self, iterator: Iterator, action: Query) -> tuple[str, float, bool]:
        """The server to ask for ``action``, its timeout (its RTO, within the time the
        resolution has left) and whether to use EDNS with it."""
        now = self.clock()
        return self.cache.infra.pick(action.servers, now,
                                     self.limits.max_query_time - (now - iterator.t0))

    def _replied(self, server: str, wire: bytes, rtt: float, parsed) -> Reply:
        self.cache.infra.record_rtt(server, rtt)
        return Reply(server, wire, rtt, parsed)

    async def _retried(self, q, wire: bytes, parsed, rtt: float, server: str, action: Query,
                       timeout: float, edns: bool, loop) -> Reply | Timeout | Failure:
        """The rest of an exchange whose first UDP reply needs a retry (FORMERR to EDNS, or
        truncated), as the event for the iterator."""
        try:
            wire, rtt, parsed = await retry(
                q, wire, parsed, rtt, self.port, action.qname, action.qtype, action.qclass,
                timeout=timeout, edns=edns, do=True, limits=self.limits, stats=self.stats,
                infra=self.cache.infra, loop=loop)
        except UpstreamTimeout:
            return self._timed_out(server)
        except UpstreamFailure as exc:
            return self._failed(server, exc)
        return self._replied(server, wire, rtt, parsed)

    def _timed_out(self, server: str) -> Timeout:
        self.stats.upstream_timeouts += 1
        self.cache.infra.record_timeout(server, self.clock())
        return Timeout(server)

    def _failed(self, server: str, exc: Exception) -> Failure:
        self.stats.upstream_failures += 1
        if isinstance(exc, UpstreamUnreachable):
            self.stats.upstream_unreachable += 1
            self.cache.infra.record_unreachable(server, self.clock())
            return Failure(server, str(exc), True)
        self.cache.infra.record_failure(server, self.clock())
        return Failure(server, str(exc))

    async def _drive(self, qname: bytes, qtype: int, qclass: int,
                     loop: asyncio.AbstractEventLoop, iterator: Iterator | None = None,
                     action=None, pending=None) -> Result:
        if iterator is None:
            iterator = self._iterator(qname, qtype, qclass)
            action = iterator.start()
        elif pending is not None:
            action = iterator.feed(await pending)
        while isinstance(action, Suspend):       # DNSSEC work paused to let others run
            await asyncio.sleep(0)
            action = iterator.feed(None)
        while isinstance(action, Query):
            server, timeout, edns = self._server_for(iterator, action)
            # The UDP query is awaited here directly (no coroutine of its own per upstream
            # query); FORMERR/TC go on in _retried.
            try:
                t0 = monotonic()
                q = udp_query(loop, server, self.port, action.qname, action.qtype,
                              action.qclass, question_of(action.qname, action.qtype,
                                                         action.qclass),
                              edns, True, timeout, self.stats, self.limits)
                try:
                    wire, parsed = await q.fut
                finally:
                    q.close()
            except UpstreamTimeout:
                event = self._timed_out(server)
            except UpstreamFailure as exc:
                event = self._failed(server, exc)
            else:
                rtt = monotonic() - t0
                if needs_retry(wire, edns):
                    event = await self._retried(q, wire, parsed, rtt, server, action, timeout,
                                                edns, loop)
                else:
                    event = self._replied(server, wire, rtt, parsed)
            action = iterator.feed(event)
            while isinstance(action, Suspend):
                await asyncio.sleep(0)
                action = iterator.feed(None)
        return action

    def _prefetch(self, key: bytes, e) -> None:
        """Refreshes a popular entry near its expiry in the background."""
        e.prefetching = True
        self.stats.prefetches += 1
        name, rest = key[:-5], key[-5:]
        qtype, qclass, variant = struct.unpack("!HHB", rest)

        async def refresh() -> None:
            try:
                # Forget the rrset-level data so the iterator asks the authorities again.
                for t in (qtype, it.CNAME):
                    self.cache.rrsets.lru.pop((name, t, qclass))
                res = await self._resolution(name, qtype, qclass)
                if res.rcode in (it.NOERROR, it.NXDOMAIN) and res.security != it.BOGUS:
                    question = e.wire[12:e.qend]
                    cd = bool(variant & 4)
                    ad = res.security == it.SECURE
                    wire = response.response(res, question, qtype, bool(variant & 1),
                                          bool(variant & 2), ad, cd)
                    self.cache.messages.store(key, wire, self.clock())
            finally:
                e.prefetching = False

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            e.prefetching = False
            return
        task = loop.create_task(refresh())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- management ---------------------------------------------------------------------------
    def flush(self, name=None) -> None:
        """Forget the whole cache, or what it holds about one name."""
        self.cache.flush(None if name is None else _name_wire(name))
        if self.dnssec is not None:
            self.dnssec.flush(None if name is None else _name_wire(name))

    async def close(self) -> None:
        """Cancels background refreshes (prefetches) and resolutions still in flight."""
        self._closing = True
        loop = asyncio.get_running_loop()
        try:
            shared = list(self._inflight.values())
            tasks = list(self._background) + [s.task for s in shared if s.task is not None]
            for task in tasks:
                task.cancel()
            # Resolutions running inline in their first caller's task: cancel that task and
            # wait until the resolution has unwound (its sockets closed).
            owned = [s.future(loop) for s in shared if s.owner is not None]
            for s in shared:
                if s.owner is not None and s.owner is not asyncio.current_task(loop):
                    s.owner.cancel()
                elif s.drive is not None:
                    s.drive.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            if owned:
                await asyncio.wait(owned, timeout=self.limits.max_query_time)
        finally:
            self._closing = False


def _time_up(task: asyncio.Task, fired: list) -> None:
    fired[0] = True
    task.cancel()
