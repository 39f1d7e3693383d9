"""An operator's functions over a :class:`resolver.Resolver`: what its cache, validator and
server facts forget (``flush``...), the cache as text (``dump_cache``, ``load_cache``), the
negative trust anchors at run time (``set_insecure``) and the servers a name would be asked
of (``servers_for``, ``delegations``).

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
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from resolver import iterator as it
from resolver.api import Resolver, name_wire
from resolver.cache import dump as cache_dump, purge, unbound_dump
from resolver.wire.codec import ttl_left
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


def infra_zones(resolver: Resolver) -> dict[str, list[str]]:
    """The zones each server address (the infra cache's key) is known to serve, for
    ``dump_infra``: the infra cache holds a server once per address, where Unbound holds
    it per zone too, so the zones are found where the resolver learnt the address: the
    root hints (``.``), the forward and stub zones' servers, the cached delegations (an NS
    set whose servers' cached addresses include it) and the zones it was found lame for.
    Each address's zones are in the order of Unbound's trees."""
    found: dict[str, set] = {}

    def add(key: str, zone) -> None:
        found.setdefault(key, set()).add(dns.name.from_text(str(zone)))

    for _, addr in resolver.hints:
        add(addr, ".")
    zones = resolver.zones
    for z in (zones.forward + zones.stub) if zones is not None else ():
        for server in z.servers:
            add(server.addr if isinstance(z, StubZone) else server.key, z.name)
    now = resolver.clock()
    rrsets = resolver.cache.rrsets
    for key, entry in list(rrsets.lru.data.items()):
        if key[1] != it.NS or entry.expires < now or not entry.rdatas:
            continue
        zone = dns.name.from_wire(key[0], 0)[0]
        for target in entry.rdatas:
            lname = dns.name.from_wire(target, 0)[0].canonicalize().to_wire()
            for t in (it.A, it.AAAA):
                e = rrsets.get(lname, t, 1, now)
                for a in (e.rdatas if e is not None else ()):
                    add(str(ipaddress.ip_address(a)), zone)
    for key, s in resolver.cache.infra.servers.items():
        for z, until in (s.lame or {}).items():
            if until > now:
                add(key, dns.name.from_wire(z, 0)[0])
    return {key: [z.to_text() for z in sorted(names, key=tree_key)]
            for key, names in found.items()}


def tree_key(name: dns.name.Name) -> tuple:
    """Where ``name`` sorts in Unbound's trees of zones (forward, stub, local, infra): by
    the labels from the root down, a shorter label before a longer one, equal lengths by
    their lower-case bytes; a name before the names below it."""
    return tuple((len(label), label.lower()) for label in reversed(name.labels))


def infra(resolver: Resolver) -> list[dict]:
    """What the infra cache holds of each server, for ``dump_infra``: a dict per address
    and zone (:func:`infra_zones`; ``.`` for an address no zone is known for any more),
    with ``host`` the address as Unbound prints it (``@PORT`` when the port is not 53)
    and what :func:`_server_facts` says of it."""
    now = resolver.clock()
    zones = infra_zones(resolver)
    out = []
    for key in list(resolver.cache.infra.servers):
        addr, _, port = key.partition("#")[0].partition("@")
        port = port or str(resolver.port)
        host = addr if port == "53" else f"{addr}@{port}"
        facts = _server_facts(resolver, key, now, addr)
        for zone in zones.get(key) or zones.get(addr) or ["."]:
            out.append({**facts, "host": host, "zone": zone,
                        "lame_here": zone in facts["lame"]})
    return out


def dump_cache(resolver: Resolver) -> list[str]:
    """The cached answers as text lines (``resolver.cache.dump``)."""
    return cache_dump.dump(resolver.cache, resolver.clock())


def load_cache(resolver: Resolver, text: str) -> int:
    """Reads ``dump_cache``'s lines into the cache, or Unbound's ``dump_cache`` text
    (``resolver.cache.unbound_dump``); how many answers were stored. Raises
    ``resolver.cache.dump.DumpError`` (nothing stored) for a bad line."""
    if unbound_dump.is_unbound(text):
        return _load_unbound(resolver, text)
    return cache_dump.load(resolver.cache, cache_dump.parse(text), resolver.clock())


def _load_unbound(resolver: Resolver, text: str) -> int:
    """Unbound's dump: its rrsets into the rrset cache, its messages into the message cache
    for each query variant; bogus ones are left out."""
    import struct

    from resolver.cache.store import store_message
    from resolver.limits import EDNS_BUFFER_SIZE

    rrsets, msgs = unbound_dump.parse(text, cache_dump.DumpError)
    now = resolver.clock()
    for rrset in rrsets.values():
        if rrset.security != unbound_dump.BOGUS:
            records, sigs = unbound_dump.records(rrset)
            resolver.cache.rrsets.store_records(
                records, unbound_dump.rank_of(rrset.trust, rrset.security), now, sigs)
    n = 0
    for msg in msgs:
        if msg.security == unbound_dump.BOGUS or msg.ttl <= 0:
            continue
        lname = msg.name.canonicalize().to_wire()
        for variant in unbound_dump.VARIANTS:
            wire = unbound_dump.response(msg, rrsets, variant, EDNS_BUFFER_SIZE)
            if wire is None:
                break
            store_message(resolver.cache.messages,
                          lname + struct.pack("!HHB", msg.rdtype, msg.rdclass, variant), wire,
                          now, msg.ttl)
        else:
            n += 1
    return n


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
    learnt of each: the last of :func:`delegations`' steps, as ``ZONE (KIND)``."""
    step = delegations(resolver, name)[-1]
    return f"{step['zone']} ({step['kind']})", step["servers"]


#: Unbound's trust of an rrset (``enum rrset_trust``) for the cache's ranks
UNBOUND_TRUST = unbound_dump.UNBOUND_TRUST


def delegations(resolver: Resolver, name) -> list[dict]:
    """The delegations Unbound's ``lookup`` looks at for ``name``, in its order: the deepest
    forward zone holding it; else the deepest delegation the cache holds (NS set and the
    addresses of its servers), passed over for its parent's while it has no address and
    every server is named inside it (Unbound's "useless"), and a stub zone at or below it
    taking its place; else the root hints. Each step is a dict: ``kind`` (forward, stub,
    cached delegation, root hints), ``zone``, ``prime`` (a stub's), ``useless``, ``rrsets``
    (the cached NS set then each server's A and AAAA: ``ttl``, ``count``, ``sigs``,
    ``trust``, ``secure``, ``lines``), ``names`` (the servers named) and ``servers`` (what
    :func:`_server_facts` says of each address)."""
    wire = name_wire(name).lower()
    now = resolver.clock()
    zones = resolver.zones
    cut = zones.match(wire) if zones is not None else None
    if cut is not None and not isinstance(cut.zone, StubZone):
        return [_zone_step(resolver, cut.zone, "forward", now)]
    steps = []
    lname = wire
    while True:
        step = _cached_cut(resolver, lname, now)
        if step is None:
            break
        stub = zones.match(lname, stub_only=True) if zones is not None else None
        zone = name_wire(step["zone"]).lower()
        if stub is not None and len(stub.wire) >= len(zone):   # at or below the cut
            steps.append(_zone_step(resolver, stub.zone, "stub", now))
            return steps
        steps.append(step)
        if not step["useless"] or zone == ROOT:
            return steps
        lname = zone[zone[0] + 1:]
    steps.append({"kind": "root hints", "zone": ".", "prime": True, "useless": False,
                  "rrsets": [], "names": list(dict.fromkeys(
                      dns.name.from_wire(n, 0)[0].to_text() for n, _ in resolver.hints)),
                  "servers": [_server_facts(resolver, a, now) for _, a in resolver.hints]})
    return steps


def _zone_step(resolver: Resolver, zone, kind: str, now: float) -> dict:
    """A forward or stub zone's step: its servers as configured."""
    stub = kind == "stub"
    return {"kind": kind, "zone": zone.name, "prime": bool(stub and zone.prime),
            "useless": False, "rrsets": [], "names": [h.addr for h in zone.hosts],
            "servers": [_server_facts(resolver, s.addr if stub else s.key, now, s.addr)
                        for s in zone.servers]}


def _rrset(entry, now: float) -> dict:
    """A cached rrset as Unbound's ``lookup`` prints it: its records' lines."""
    lines = []
    for owner, rdtype, rdclass, ttl, rd in entry.records(now) + entry.sig_records(now):
        text = dns.rdata.from_wire(rdclass, rdtype, rd, 0, len(rd)).to_text()
        lines.append(f"{dns.name.from_wire(owner, 0)[0]}\t{ttl}\t"
                     f"{dns.rdataclass.to_text(rdclass)}\t{dns.rdatatype.to_text(rdtype)}\t"
                     f"{text}")
    return {"ttl": ttl_left(entry.expires, now), "count": len(entry.rdatas),
            "sigs": len(entry.rrsigs), "trust": UNBOUND_TRUST.get(entry.rank, 0),
            "secure": entry.rank == 7, "lines": lines}


def _cached_cut(resolver: Resolver, wire: bytes, now: float) -> dict | None:
    """The deepest cached delegation at or above ``wire``: its step (see
    :func:`delegations`), or None."""
    rrsets = resolver.cache.rrsets
    lname = wire
    while True:
        ns = rrsets.get(lname, it.NS, 1, now)
        if ns is not None and ns.rdatas:
            break
        if lname == ROOT:
            return None
        lname = lname[lname[0] + 1:]
    zone = dns.name.from_wire(lname, 0)[0]
    names = [dns.name.from_wire(rd, 0)[0] for rd in ns.rdatas]
    shown, addrs = [_rrset(ns, now)], []
    for target in reversed(names):          # Unbound's order: the last server named first
        for t in (it.A, it.AAAA):
            e = rrsets.get(target.canonicalize().to_wire(), t, 1, now)
            if e is not None and e.rdatas:
                shown.append(_rrset(e, now))
                addrs += [str(ipaddress.ip_address(a)) for a in e.rdatas]
    inside = all(n.is_subdomain(zone) for n in names)
    asked = dns.name.from_wire(wire, 0)[0]
    useless = not addrs and (inside or (asked in names and asked.is_subdomain(zone)))
    return {"kind": "cached delegation", "zone": zone.to_text(), "prime": False,
            "useless": useless, "rrsets": shown, "names": [n.to_text() for n in names],
            "servers": [_server_facts(resolver, a, now) for a in addrs[::-1]]}


def _server_facts(resolver: Resolver, addr: str, now: float, ip: str | None = None) -> dict:
    """What the infra cache holds of the server ``addr`` (its key there; ``ip`` its
    address, when the key has a port or a name too)."""
    infra = resolver.cache.infra
    s = infra.servers.get(addr)
    if s is None:
        return {"address": addr, "ip": ip or addr, "known": False}
    left = infra.host_ttl - (now - s.replied_at) if s.replied_at else infra.host_ttl
    if s.srtt is None:      # nothing measured: the initial timeout, all of it variance
        timeout = infra.limits.initial_rto         # (as Unbound starts a server: 0 + 4 * 94)
        rttvar = timeout / 4
    else:                   # RFC 6298's RTO without the backoff of timeouts
        timeout = min(max(s.srtt + 4 * s.rttvar, infra.limits.min_rto), infra.limits.max_rto)
        rttvar = s.rttvar
    return {"address": addr, "ip": ip or addr, "known": True,
            "rtt_ms": None if s.srtt is None else round(s.srtt * 1000, 1),
            "rttvar_ms": round(rttvar * 1000, 1), "ttl": max(0, int(left)),
            "probe_in": max(0.0, round(s.probe_at - now, 1)),
            "rto_ms": round(s.rto * 1000, 1), "timeout_ms": round(timeout * 1000, 1),
            "replied": bool(s.replied_at) or not s.edns, "timeouts": s.timeouts,
            "down": s.down_until > now,
            "down_for": max(0.0, round(s.down_until - now, 1)),
            "lame": sorted(dns.name.from_wire(z, 0)[0].to_text()
                           for z, until in (s.lame or {}).items() if until > now),
            "edns": bool(s.edns)}
