"""dns.asyncresolver's module-level functions, asking a default :class:`resolver.Resolver`.

``resolve``, ``resolve_address``, ``resolve_name``, ``canonical_name``, ``zone_for_name`` and
``resolve_at`` are coroutines with dns.asyncresolver's signatures (``backend`` is accepted and
ignored: the resolver runs on the running asyncio loop); ``get_default_resolver`` and
``reset_default_resolver`` are plain functions, as there.

The default resolver recurses from the real root, validating with the shipped root trust
anchor, and takes the ``search`` domains and ``ndots`` of ``/etc/resolv.conf`` (dnspython's
default resolver asks the ``nameserver`` lines instead: ``get_default_resolver().nameservers
= hostconf.nameservers()`` does that). It is made on first use and works on whichever loop
runs; ``reset_default_resolver`` replaces it (a resolution of the old one still in flight
runs to its end). Assigning ``default_resolver`` (here, or ``resolver.default_resolver``)
chooses it, as in dnspython. ``resolver.sync`` has dns.resolver's functions, whose default
resolver asks the nameservers of ``/etc/resolv.conf`` as dnspython's does.
"""
from __future__ import annotations

import socket
import time

import dns.inet
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.resolver
from dns.resolver import NXDOMAIN, NoAnswer, NoRootSOA, NotAbsolute

from resolver.api import Answer, Resolver

#: the resolver of the module's functions, made by ``get_default_resolver`` when None
default_resolver: Resolver | None = None


def get_default_resolver() -> Resolver:
    """The default resolver, made on first use."""
    if default_resolver is None:
        reset_default_resolver()
    assert default_resolver is not None
    return default_resolver


def reset_default_resolver() -> None:
    """Make a new default resolver (see the module docstring)."""
    global default_resolver
    from resolver.hostconf import search_rules

    r = Resolver()
    try:
        r.search, r.ndots = search_rules("/etc/resolv.conf")
    except OSError:
        pass
    default_resolver = r


async def resolve(qname, rdtype="A", rdclass="IN", tcp: bool = False, source=None,
                  raise_on_no_answer: bool = True, source_port: int = 0,
                  lifetime: float | None = None, search: bool | None = None,
                  backend=None) -> Answer:
    """``get_default_resolver().resolve(...)``."""
    return await get_default_resolver().resolve(qname, rdtype, rdclass, tcp, source,
                                                raise_on_no_answer, source_port, lifetime,
                                                search)


async def resolve_address(ipaddr: str, *args, **kwargs) -> Answer:
    """``get_default_resolver().resolve_address(...)``."""
    kwargs.pop("backend", None)
    return await get_default_resolver().resolve_address(ipaddr, *args, **kwargs)


async def resolve_name(name, family: int = socket.AF_UNSPEC,
                       **kwargs) -> dns.resolver.HostAnswers:
    """``get_default_resolver().resolve_name(...)``."""
    kwargs.pop("backend", None)
    return await get_default_resolver().resolve_name(name, family, **kwargs)


async def canonical_name(name) -> dns.name.Name:
    """``get_default_resolver().canonical_name(...)``."""
    return await get_default_resolver().canonical_name(name)


async def zone_for_name(name, rdclass=dns.rdataclass.IN, tcp: bool = False,
                        resolver: Resolver | None = None, backend=None,
                        lifetime: float | None = None) -> dns.name.Name:
    """The name of the zone holding ``name`` (absolute), found as dnspython does: the
    deepest ancestor-or-self with an SOA, or the SOA a negative answer carries."""
    if isinstance(name, str):
        name = dns.name.from_text(name, dns.name.root)
    if resolver is None:
        resolver = get_default_resolver()
    if not name.is_absolute():
        raise NotAbsolute(name)
    expiration = None if lifetime is None else time.time() + lifetime
    while True:
        left = None if expiration is None else max(0.0, expiration - time.time())
        try:
            answer = await resolver.resolve(name, dns.rdatatype.SOA, rdclass, tcp,
                                            lifetime=left)
            assert answer.rrset is not None
            if answer.rrset.name == name:
                return name
            # a CNAME or DNAME led elsewhere: look higher
        except (NXDOMAIN, NoAnswer) as e:
            response = (e.responses().get(name) if isinstance(e, NXDOMAIN)
                        else e.response())
            if response:
                for rrs in response.authority:
                    if rrs.rdtype == dns.rdatatype.SOA and rrs.rdclass == rdclass:
                        rel, _, _ = rrs.name.fullcompare(name)
                        if rel == dns.name.NAMERELN_SUPERDOMAIN:
                            return rrs.name
        try:
            name = name.parent()
        except dns.name.NoParent:       # pragma: no cover
            raise NoRootSOA from None


async def make_resolver_at(where, port: int = 53, family: int = socket.AF_UNSPEC,
                           resolver: Resolver | None = None) -> Resolver:
    """A resolver forwarding to ``where`` (an address, or a name whose addresses the
    default resolver, or ``resolver``, finds) on ``port``. Close it when done."""
    if isinstance(where, str) and dns.inet.is_address(where):
        addresses = [where]
    else:
        if resolver is None:
            resolver = get_default_resolver()
        addresses = list((await resolver.resolve_name(where, family)).addresses())
    return Resolver(forward=[(a, port) for a in addresses])


async def resolve_at(where, qname, rdtype="A", rdclass="IN", tcp: bool = False,
                     source=None, raise_on_no_answer: bool = True, source_port: int = 0,
                     lifetime: float | None = None, search: bool | None = None,
                     backend=None, port: int = 53, family: int = socket.AF_UNSPEC,
                     resolver: Resolver | None = None) -> Answer:
    """Ask ``where`` (an address or a name) ``qname``, as dnspython's: through a resolver
    made for the call (see ``make_resolver_at``) with a cache of its own, its upstream
    sockets bound to ``source`` when given (``Resolver.source``; ``source_port`` must be
    0, as ``Resolver.resolve`` says)."""
    r = await make_resolver_at(where, port, family, resolver)
    try:
        r.source = source
        return await r.resolve(qname, rdtype, rdclass, tcp, source, raise_on_no_answer,
                               source_port, lifetime, search)
    finally:
        await r.close()
