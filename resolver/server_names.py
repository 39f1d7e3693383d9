"""Servers of forward and stub zones given by name (Unbound's ``forward-host`` and
``stub-host``): the resolver finds their addresses itself, and finds them again when
those answers' TTL runs out, so a zone follows its servers when they move.

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
            addrs: list[str] = []
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
            if addrs:
                found[name] = tuple(sorted(set(addrs)))
            else:
                if not failed:
                    log.warning("server name %s has no address", name)
                found[name] = self.addresses.get(name, ())
                due = min(due, floor)            # try again soon
        if r.server_names is not self:
            return floor                         # replaced meanwhile: installs nothing
        if found != self.addresses:
            self.addresses = found
            self.changes += 1
            log.info("server names: %s", ", ".join(
                f"{n} {' '.join(a) or '(none)'}" for n, a in sorted(found.items())))
            r.install_zones(self.zones.resolved(found))
        return max(floor, due if due != float("inf") else floor)

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
