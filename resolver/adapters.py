"""The resolver where other clients look names up.

``AiohttpResolver`` is an ``aiohttp.abc.AbstractResolver``::

    r = resolver.Resolver()
    connector = aiohttp.TCPConnector(resolver=AiohttpResolver(r))
    async with aiohttp.ClientSession(connector=connector) as session: ...

Every connection the session opens then asks ``r`` (its cache, on the session's loop). A name
with no address raises ``socket.gaierror`` (aiohttp reports it as ``ClientConnectorDNSError``),
as aiohttp's own resolvers do. ``corenet.https.Client(resolver=r)`` takes the Resolver itself;
for httpx (and anything else that calls ``loop.getaddrinfo``) use ``resolver.install``.
"""
from __future__ import annotations

import socket

import dns.exception
import dns.resolver

try:
    from aiohttp.abc import AbstractResolver
except ImportError as exc:                # pragma: no cover - aiohttp is optional
    raise ImportError("resolver.adapters needs aiohttp (pip install aiohttp)") from exc

_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class AiohttpResolver(AbstractResolver):
    """aiohttp's resolver interface over a :class:`resolver.Resolver` (one is made, with the
    real root, if none is given; ``close`` closes only one made here)."""

    def __init__(self, resolver=None) -> None:
        if resolver is None:
            from resolver import Resolver
            resolver, self._owned = Resolver(), True
        else:
            self._owned = False
        self.resolver = resolver

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[dict]:
        try:
            answers = await self.resolver.resolve_name(host, family)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: name or service not known") \
                from None
        except dns.exception.DNSException as exc:      # SERVFAIL, time limit
            raise socket.gaierror(socket.EAI_AGAIN, f"{host}: {exc}") from None
        return [{"hostname": host, "host": addr, "port": port, "family": fam, "proto": 0,
                 "flags": _NUMERIC}
                for addr, fam in answers.addresses_and_families()]

    async def close(self) -> None:
        if self._owned:
            await self.resolver.close()
