"""`install(loop, r)`: make `loop.getaddrinfo` (and so create_connection, open_connection...)
resolve host names through a :class:`resolver.Resolver`.

Names are resolved to A and AAAA records; everything else (ports and service names, socket
types, protocols, flags, the shape of the result tuples) is handled by the stdlib's own
``socket.getaddrinfo`` called on the numeric addresses, so it behaves as the stdlib does.
Numeric hosts, ``None`` and ``localhost`` never reach DNS.
"""
from __future__ import annotations

import asyncio
import socket

import dns.exception
import dns.resolver

_ORIGINAL = "_resolver_original_getaddrinfo"


def _is_numeric(host: str) -> bool:
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(fam, host.split("%", 1)[0])
            return True
        except OSError:
            pass
    return False


async def getaddrinfo(r, original, host, port, *, family=0, type=0, proto=0, flags=0):
    """loop.getaddrinfo's contract, names answered by ``r``."""
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("idna")
    if (host is None or flags & socket.AI_NUMERICHOST or _is_numeric(host)
            or host.rstrip(".").lower() == "localhost"
            or host.rstrip(".").lower().endswith(".localhost")):
        return await original(host, port, family=family, type=type, proto=proto, flags=flags)
    if family == socket.AF_INET:
        wanted = [("A", socket.AF_INET)]
    elif family == socket.AF_INET6:
        wanted = [("AAAA", socket.AF_INET6)]
    elif family == socket.AF_UNSPEC:
        wanted = [("A", socket.AF_INET), ("AAAA", socket.AF_INET6)]
    else:
        raise socket.gaierror(socket.EAI_FAMILY, "ai_family not supported")
    outcomes = await asyncio.gather(*(r.resolve(host, t) for t, _ in wanted),
                                    return_exceptions=True)
    addrs: list[tuple[int, str]] = []
    canon = None
    temporary = False
    for (rdtype, fam), out in zip(wanted, outcomes):
        if isinstance(out, BaseException):
            if isinstance(out, (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer)):
                continue
            if isinstance(out, (dns.resolver.NoNameservers, dns.exception.Timeout)):
                temporary = True
                continue
            raise out
        if canon is None:
            canon = out.canonical_name.to_text(omit_final_dot=True)
        addrs += [(fam, rd.address) for rd in out]
    if not addrs:
        if temporary:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    result = []
    for fam, addr in addrs:
        # Numeric, so this never blocks; it applies port/type/proto/flags as the stdlib does.
        result += socket.getaddrinfo(addr, port, fam, type, proto,
                                     (flags | socket.AI_NUMERICHOST) & ~socket.AI_CANONNAME)
    if flags & socket.AI_CANONNAME and result:
        f, t, p, _, sa = result[0]
        result[0] = (f, t, p, canon or host, sa)
    return result


def install(loop: asyncio.AbstractEventLoop, r) -> None:
    """Route ``loop.getaddrinfo`` through resolver ``r`` (idempotent; ``uninstall`` undoes)."""
    original = getattr(loop, _ORIGINAL, None) or loop.getaddrinfo

    async def patched(host, port, *, family=0, type=0, proto=0, flags=0):
        return await getaddrinfo(r, original, host, port, family=family, type=type,
                                 proto=proto, flags=flags)

    try:
        setattr(loop, _ORIGINAL, original)
        loop.getaddrinfo = patched
    except AttributeError:
        raise TypeError(f"{type(loop).__name__} does not allow replacing getaddrinfo") from None


def uninstall(loop: asyncio.AbstractEventLoop) -> None:
    """Restore the loop's own getaddrinfo."""
    if getattr(loop, _ORIGINAL, None) is not None:
        del loop.getaddrinfo
        delattr(loop, _ORIGINAL)
