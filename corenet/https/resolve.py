"""Name to addresses: through a `resolver=` object when given (corenet's resolver, or
anything with dnspython's `async resolve(qname, rdtype)`), else the loop's getaddrinfo."""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

from .errors import ConnectError


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


# How long a client reuses a name's addresses: short, since getaddrinfo gives no TTL; a
# resolver answer's own TTL applies when it is shorter.
ADDRESS_TTL = 30.0


async def resolve_host(host: str, port: int, resolver: Any = None) -> tuple[list[str], float]:
    """Return (IP address strings for host in the order found, seconds they may be kept)."""
    ip = _literal(host)
    if ip is not None:
        return [ip], float("inf")
    if resolver is None:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ConnectError(f"cannot resolve {host!r}: {exc}") from exc
        out: list[str] = []
        for family, _, _, _, addr in infos:
            if family in (socket.AF_INET, socket.AF_INET6) and addr[0] not in out:
                out.append(str(addr[0]))
        if not out:
            raise ConnectError(f"cannot resolve {host!r}: no IPv4 or IPv6 address")
        return out, ADDRESS_TTL
    # AAAA and A asked at once (RFC 8305 3): IPv6 first, and the connection races both.
    answers = await asyncio.gather(*(_lookup(resolver, host, t) for t in ("AAAA", "A")))
    addrs: list[str] = []
    errors: list[str] = []
    ttl = ADDRESS_TTL
    for found, rr_ttl, error in answers:
        if error:
            errors.append(error)
        if rr_ttl is not None:
            ttl = min(ttl, rr_ttl)
        addrs += (a for a in found if a not in addrs)
    if not addrs:
        detail = "; ".join(errors) or "no A or AAAA records"
        raise ConnectError(f"cannot resolve {host!r} through the resolver: {detail}")
    return addrs, ttl


async def _lookup(resolver: Any, host: str, rdtype: str) -> tuple[list[str], float | None, str]:
    """(addresses, TTL or None, error text or "") of one query through `resolver`."""
    try:
        answer = await resolver.resolve(host, rdtype)
    except Exception as exc:  # NXDOMAIN, NoAnswer, timeouts: any resolver's own types
        return [], None, f"{rdtype}: {type(exc).__name__}: {exc}"
    rrset = getattr(answer, "rrset", None)
    rr_ttl = getattr(rrset, "ttl", None)
    found = []
    for rdata in rrset or ():
        address = getattr(rdata, "address", None) or str(rdata)
        if _literal(address) is not None:
            found.append(address)
    ttl = float(rr_ttl) if isinstance(rr_ttl, (int, float)) and rr_ttl >= 0 else None
    return found, ttl, ""
