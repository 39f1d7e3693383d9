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
                out.append(addr[0])
        if not out:
            raise ConnectError(f"cannot resolve {host!r}: no IPv4 or IPv6 address")
        return out, ADDRESS_TTL
    addrs: list[str] = []
    errors: list[str] = []
    ttl = ADDRESS_TTL
    for rdtype in ("A", "AAAA"):
        try:
            answer = await resolver.resolve(host, rdtype)
        except Exception as exc:  # NXDOMAIN, NoAnswer, timeouts: any resolver's own types
            errors.append(f"{rdtype}: {type(exc).__name__}: {exc}")
            continue
        rrset = getattr(answer, "rrset", None)
        rr_ttl = getattr(rrset, "ttl", None)
        if isinstance(rr_ttl, (int, float)) and rr_ttl >= 0:
            ttl = min(ttl, float(rr_ttl))
        for rdata in rrset or ():
            address = getattr(rdata, "address", None) or str(rdata)
            if _literal(address) is not None and address not in addrs:
                addrs.append(address)
        if addrs and rdtype == "A":
            break  # IPv4 found; skip a second lookup on the hot path
    if not addrs:
        detail = "; ".join(errors) or "no A or AAAA records"
        raise ConnectError(f"cannot resolve {host!r} through the resolver: {detail}")
    return addrs, ttl
