"""The resolver where other clients look names up.

``AiohttpResolver`` is an ``aiohttp.abc.AbstractResolver``::

    r = resolver.Resolver()
    connector = aiohttp.TCPConnector(resolver=AiohttpResolver(r))
    async with aiohttp.ClientSession(connector=connector) as session: ...

Every connection the session opens then asks ``r`` (its cache, on the session's loop), after
what aiohttp's default resolver (the host's getaddrinfo) answers without DNS: IPv4 and IPv6
literals, the names of ``/etc/hosts`` (``hosts=``) and ``localhost`` (the loopback addresses
when the hosts file does not list it), as ``resolver.install`` does. A name
with no address raises ``socket.gaierror`` (aiohttp reports it as ``ClientConnectorDNSError``),
as aiohttp's own resolvers do. ``AiohttpResolver()`` without a Resolver asks the nameservers
of ``/etc/resolv.conf``, as aiohttp's default resolver does; ``r`` above recurses from the
root. ``corenet.https.AsyncClient(resolver=r)`` takes the Resolver itself;
for httpx (and anything else that calls ``loop.getaddrinfo``) use ``resolver.install``.
"""
from __future__ import annotations

import os
import socket

import dns.exception
import dns.resolver

from resolver.getaddrinfo import getaddrinfo
from resolver.hostconf import HostsFile

try:
    from aiohttp.abc import AbstractResolver
except ImportError as exc:                # pragma: no cover - aiohttp is optional
    raise ImportError("resolver.adapters needs aiohttp (pip install aiohttp)") from exc

_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
_NUMERIC_NAME = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV


async def _numeric_only(host, port, *, family=0, type=0, proto=0, flags=0):
    """getaddrinfo for what ``resolver.getaddrinfo`` hands on (literals): never blocks."""
    return socket.getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)


class AiohttpResolver(AbstractResolver):
    """aiohttp's resolver interface over a :class:`resolver.Resolver`, in that Resolver's
    mode. Without one, as aiohttp's default resolver (the host's getaddrinfo) finds names,
    it asks the nameservers of ``filename`` (``/etc/resolv.conf``; 127.0.0.1 when it
    names none, as the C library does) on ``port``, with corenet's cache: a stub,
    ``Resolver(forward=hostconf.nameservers(filename, hostconf.MAXNS))`` (the first three,
    the ones glibc asks), asking them as the C library does where the file says how
    (``options attempts:N``, ``timeout:N`` and ``trust-ad``, then those of the
    ``RES_OPTIONS`` environment variable: ``hostconf.nameserver_options``). Recursion
    from the root is ``AiohttpResolver(resolver.Resolver())``. ``close`` closes only a
    Resolver made here. ``hosts``: the hosts file consulted first (``None``: none)."""

    def __init__(self, resolver=None, *, hosts="/etc/hosts",
                 filename: str | os.PathLike = "/etc/resolv.conf", port: int = 53) -> None:
        if resolver is None:
            from resolver import Resolver
            from resolver.hostconf import MAXNS, nameserver_options, nameservers
            options = nameserver_options(filename)
            resolver = Resolver(forward=nameservers(filename, MAXNS) or ["127.0.0.1"],
                                port=port, attempts=options.attempts,
                                trust_ad=options.trust_ad)
            if options.timeout is not None:
                resolver.timeout = options.timeout
            self._owned = True
        else:
            self._owned = False
        self.resolver = resolver
        self.hosts = None if hosts is None else HostsFile(hosts)

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[dict]:
        try:
            infos = await getaddrinfo(self.resolver, _numeric_only, host, port, family=family,
                                      type=socket.SOCK_STREAM, hosts=self.hosts)
        except socket.gaierror as exc:
            raise socket.gaierror(exc.errno, f"{host}: {exc.strerror}") from None
        except dns.exception.DNSException as exc:
            raise socket.gaierror(socket.EAI_AGAIN, f"{host}: {exc}") from None
        out = []
        for fam, _, proto, _, sa in infos:
            addr, got_port = sa[0], sa[1]
            if fam == socket.AF_INET6 and sa[3]:       # a link-local address's scope
                addr, got_port = socket.getnameinfo(sa, _NUMERIC_NAME)
            out.append({"hostname": host, "host": addr, "port": int(got_port), "family": fam,
                        "proto": proto, "flags": _NUMERIC})
        return out

    async def close(self) -> None:
        if self._owned:
            await self.resolver.close()
