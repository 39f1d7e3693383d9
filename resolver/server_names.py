"""Servers of forward and stub zones the resolver must find itself: given by name
(Unbound's ``forward-host`` and ``stub-host``), or named by a stub zone's own NS set
(``stub-prime``). It finds them, and finds them again when those answers' TTL runs out, so
a zone follows its servers when they move.

:class:`ServerNames` holds one set of zones as configured (names unresolved) and the
addresses known for each name. ``refresh`` resolves every name (A, and AAAA when the
resolver asks over IPv6) and, when an address changed, installs the configured zones with
the addresses filled in (``Zones.resolved`` through ``Resolver.install_zones``). A name that
fails to resolve keeps the addresses it had. ``run`` refreshes for as long as the
resolver lives: after the smallest remaining TTL of the answers, never sooner than
``Limits.server_name_min_ttl`` (a name published with a TTL of 0 would otherwise be asked
again at once, for ever).
"""
from __future__ import annotations

import asyncio
import logging
import time

import dns.exception
import dns.rcode
import dns.rdataclass
import dns.resolver

log = logging.getLogger("resolver.server_names")


class ServerNames:
    """The server host names of ``zones`` (a ``resolver.zones.Zones``), resolved by
    ``resolver``; ``previous``: the ServerNames these zones replace, whose addresses are
    kept until the names are resolved again."""

    def __init__(self, resolver, zones, previous: "ServerNames | None" = None) -> None:
        self.resolver = resolver
        self.zones = zones
        #: host name -> its addresses (numeric), as last resolved
        self.addresses: dict[str, tuple[str, ...]] = {}
        if previous is not None:
            self.addresses = {n: a for n, a in previous.addresses.items() if n in zones.hosts}
        #: primed stub zone -> the addresses of the servers its NS set names
        self.primed: dict[str, tuple[str, ...]] = {}
        if previous is not None:
            self.primed = {n: a for n, a in previous.primed.items() if n in zones.primed}
        self.task: asyncio.Task | None = None
        #: set once ``run`` has resolved every name for the first time
        self.ready: asyncio.Event | None = None
        #: times a name's addresses were found changed (and the zones installed again)
        self.changes = 0

    async def refresh(self) -> float:
        """Resolves every name once; installs the zones when an address changed. Returns
        the seconds until the next refresh is due."""
        r = self.resolver
        floor = r.limits.server_name_min_ttl
        due = float("inf")
        found: dict[str, tuple[str, ...]] = {}
        for name in self.zones.hosts:
            addrs, ttl, failed = await self._addresses(name)
            due = min(due, ttl)
            if addrs:
                found[name] = tuple(sorted(set(addrs)))
            else:
                if not failed:
                    log.warning("server name %s has no address", name)
                found[name] = self.addresses.get(name, ())
                due = min(due, floor)            # try again soon
        primed: dict[str, tuple[str, ...]] = {}
        for zone in self.zones.primed:
            got, ttl = await self._prime(zone)
            due = min(due, ttl)
            primed[zone] = got if got else self.primed.get(zone, ())
        if r.server_names is not self:
            return floor                         # replaced meanwhile: installs nothing
        if found != self.addresses or primed != self.primed:
            self.addresses, self.primed = found, primed
            self.changes += 1
            log.info("zone servers: %s", ", ".join(
                f"{n} {' '.join(a) or '(none)'}"
                for n, a in sorted(found.items()) + sorted(primed.items())))
            r.install_zones(self.zones.resolved(found, primed))
        return max(floor, due if due != float("inf") else floor)

    async def _addresses(self, name: str) -> tuple[list[str], float, bool]:
        """``name``'s addresses (A, and AAAA when the resolver asks over IPv6), the
        seconds they stay fresh, and whether a look-up failed."""
        r = self.resolver
        addrs: list[str] = []
        due = float("inf")
        failed = False
        for rdtype in ("A", "AAAA") if r.ipv6 else ("A",):
            try:
                ans = await r.resolve(name, rdtype)
            except dns.resolver.NoAnswer:
                continue
            except (dns.exception.DNSException, OSError) as e:
                log.warning("server name %s %s: %s", name, rdtype, e)
                failed = True
                continue
            addrs.extend(rd.address for rd in ans.rrset)
            due = min(due, ans.expiration - time.time())
        return addrs, due, failed

    async def _prime(self, zone: str) -> tuple[tuple[str, ...], float]:
        """A ``stub-prime`` zone's NS set, asked of its configured servers (RD clear, as
        Unbound primes a stub), as the addresses of the names it holds (glue, else
        resolved), and the seconds the answer stays fresh; () when no server gave one.
        The query goes straight to the servers (dnspython's): the resolver's own path would
        answer ``zone NS`` from the stub's configured delegation in its cache."""
        import dns.asyncquery
        import dns.message
        import dns.name
        import dns.rdatatype

        r = self.resolver
        floor = r.limits.server_name_min_ttl
        stub = next(z for z in self.zones.stub if z.name == zone)
        servers = [(s.addr, s.port) for s in stub.servers]
        servers += [(a, h.port) for h in stub.hosts for a in self.addresses.get(h.addr, ())]
        origin = dns.name.from_text(zone)
        for addr, port in servers:
            q = dns.message.make_query(origin, dns.rdatatype.NS, use_edns=0)
            q.flags = 0                                   # RD clear: an authority is asked
            try:
                m, _ = await dns.asyncquery.udp_with_fallback(
                    q, addr, timeout=r.limits.max_query_time,
                    port=r.port if port is None else port)
            except (dns.exception.DNSException, OSError) as e:
                log.warning("priming stub zone %s at %s: %s", zone, addr, e)
                continue
            try:
                ns = m.find_rrset(m.answer, origin, dns.rdataclass.IN, dns.rdatatype.NS)
            except KeyError:
                log.warning("priming stub zone %s at %s: no NS set in the answer (rcode %s)",
                            zone, addr, dns.rcode.to_text(m.rcode()))
                continue
            due = float(ns.ttl)
            names = sorted({rd.target for rd in ns})
            out: list[str] = []
            for name in names:
                glue = [rd.address for rrset in m.additional if rrset.name == name
                        and (rrset.rdtype == dns.rdatatype.A
                             or (r.ipv6 and rrset.rdtype == dns.rdatatype.AAAA))
                        for rd in rrset]
                if glue:
                    out.extend(glue)
                    continue
                addrs, ttl, _ = await self._addresses(name.to_text())
                out.extend(addrs)
                due = min(due, ttl)
            if out:
                return tuple(sorted(set(out))), due
        return (), floor

    async def run(self) -> None:
        """Refreshes until cancelled."""
        while True:
            try:
                wait = await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:                  # a bug must not end the refreshing
                log.exception("resolving server names")
                wait = self.resolver.limits.server_name_min_ttl
            self.ready.set()
            await asyncio.sleep(wait)

    def start(self) -> bool:
        """Starts ``run`` on the running loop (False when none runs: call ``start`` again
        from one, or await ``refresh``)."""
        if self.task is not None:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self.ready = asyncio.Event()
        self.task = loop.create_task(self.run())
        return True

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
