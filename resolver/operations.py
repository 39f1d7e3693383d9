"""An operator's functions over a :class:`resolver.Resolver`: what its cache, validator and
server facts forget (``flush``...), the cache as text (``dump_cache``, ``load_cache``), the
negative trust anchors at run time (``set_insecure``) and the servers a name would be asked
of (``servers_for``).

Each takes the Resolver first and acts through its published attributes (``cache``,
``dnssec``, ``zones``, ``hints``, ``clock``) and :meth:`resolver.Resolver.forget`; the
daemon's control commands (``resolver.daemon.operations``) call them, and so can a program
that runs a Resolver of its own::

    from resolver import operations
    operations.flush(r, "example.com.")
"""
from __future__ import annotations

import ipaddress
from typing import Iterable

import dns.name
import dns.rdatatype

from resolver import iterator as it
from resolver.api import Resolver, name_wire
from resolver.cache import dump as cache_dump, purge
from resolver.zones import StubZone

ROOT = b"\x00"


def flush(resolver: Resolver, name=None) -> None:
    """Forgets the whole cache, or what it holds about one name (every type)."""
    if name is None:
        resolver.forget([ROOT])
        return
    wire = name_wire(name)
    resolver.cache.flush(wire)
    if resolver.dnssec is not None:
        resolver.dnssec.flush(wire)
    if resolver.zones is not None:
        resolver.zones.seed(resolver.cache, resolver.clock())     # the stub zones' servers


def flush_zone(resolver: Resolver, name) -> None:
    """Forgets everything held at or below ``name``: answers, rrsets, negative entries,
    failures and the validator's keys and verdicts there."""
    resolver.forget([name_wire(name).lower()])


def flush_type(resolver: Resolver, name, rdtype) -> None:
    """Forgets the rrset of ``name`` with ``rdtype`` and the answers to that question."""
    purge.flush_type(resolver.cache, name_wire(name).lower(),
                     int(dns.rdatatype.RdataType.make(rdtype)))


def flush_negative(resolver: Resolver) -> None:
    """Forgets every negative answer (NXDOMAIN, NODATA, SERVFAIL), remembered failure and
    the validated NSEC ranges that would make new ones."""
    purge.flush_negative(resolver.cache)
    v = resolver.dnssec
    if v is not None and v.nsec_cache is not None:
        v.nsec_cache.flush()


def flush_bogus(resolver: Resolver) -> None:
    """Forgets every bogus verdict and the data it was given on: the questions found bogus
    and the zones whose chain of trust failed, with what the cache holds at and below them,
    so the next query fetches and validates again."""
    purge.flush_bogus(resolver.cache)
    v = resolver.dnssec
    if v is None:
        return
    names = {key[0] for key in v.bogus}
    names |= {zone for zone, e in v.zones.items() if e.status == it.BOGUS}
    v.bogus.clear()
    resolver.forget(names)


def flush_infra(resolver: Resolver, address: str | None = None) -> None:
    """Forgets what was learnt about every server, or about ``address``."""
    infra = resolver.cache.infra
    if address is None:
        infra.servers.clear()
        infra.no_minimise.clear()
        return
    for key in [k for k in infra.servers
                if k == address or k.split("@")[0].split("#")[0] == address]:
        del infra.servers[key]


def dump_cache(resolver: Resolver) -> list[str]:
    """The cached answers as text lines (``resolver.cache.dump``)."""
    return cache_dump.dump(resolver.cache, resolver.clock())


def load_cache(resolver: Resolver, text: str) -> int:
    """Reads ``dump_cache``'s lines into the cache; how many answers were stored. Raises
    ``resolver.cache.dump.DumpError`` (nothing stored) for a bad line."""
    return cache_dump.load(resolver.cache, cache_dump.parse(text), resolver.clock())


def set_insecure(resolver: Resolver, names: Iterable) -> None:
    """Replaces the negative trust anchors (the Resolver's ``domain_insecure``); what is
    cached at or below a name added or removed is forgotten."""
    v = resolver.dnssec
    if v is None:
        return
    new = frozenset(name_wire(n).lower() for n in names)
    changed = new ^ v.insecure
    v.insecure = new
    resolver.forget(changed)


def servers_for(resolver: Resolver, name) -> tuple[str, list[dict]]:
    """The zone whose servers would be asked for ``name`` and those servers with what is
    learnt of each (the daemon's ``lookup``): the deepest forward or stub zone holding the
    name, else the deepest zone cut whose NS set the cache holds, else the root hints."""
    wire = name_wire(name).lower()
    now = resolver.clock()
    cut = resolver.zones.match(wire) if resolver.zones is not None else None
    if cut is not None:
        stub = isinstance(cut.zone, StubZone)
        zone, kind = cut.zone.name, "stub" if stub else "forward"
        addrs = [s.addr if stub else s.key for s in cut.zone.servers]
    else:
        zone, addrs, kind = _cached_cut(resolver, wire, now)
    return f"{zone} ({kind})", [_server_facts(resolver, a, now) for a in addrs]


def _cached_cut(resolver: Resolver, wire: bytes, now: float):
    """The deepest cached delegation at or above ``wire`` (its zone, its servers' cached
    addresses, its kind), else the root hints."""
    rrsets = resolver.cache.rrsets
    lname = wire
    while True:
        ns = rrsets.get(lname, it.NS, 1, now)
        if ns is not None and ns.rdatas:
            addrs = []
            for rd in ns.rdatas:
                target = dns.name.from_wire(rd, 0)[0].canonicalize().to_wire()
                for t in (it.A, it.AAAA):
                    e = rrsets.get(target, t, 1, now)
                    if e is not None:
                        addrs += [str(ipaddress.ip_address(a)) for a in e.rdatas]
            return dns.name.from_wire(lname, 0)[0].to_text(), addrs, "cached delegation"
        if lname == ROOT:
            break
        lname = lname[lname[0] + 1:]
    return ".", [a for _, a in resolver.hints], "root hints"


def _server_facts(resolver: Resolver, addr: str, now: float) -> dict:
    s = resolver.cache.infra.servers.get(addr)
    if s is None:
        return {"address": addr, "known": False}
    return {"address": addr, "known": True,
            "rtt_ms": None if s.srtt is None else round(s.srtt * 1000, 1),
            "rto_ms": round(s.rto * 1000, 1), "timeouts": s.timeouts,
            "down": s.down_until > now,
            "down_for": max(0.0, round(s.down_until - now, 1)),
            "lame": sorted(dns.name.from_wire(z, 0)[0].to_text()
                           for z, until in (s.lame or {}).items() if until > now),
            "edns": bool(s.edns)}
