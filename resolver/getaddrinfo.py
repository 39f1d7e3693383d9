"""`install(loop, r)`: make `loop.getaddrinfo` (and so create_connection, open_connection...)
resolve host names through a :class:`resolver.Resolver`, in the order glibc uses.

1. Numeric hosts (IPv6 scope IDs included) and ``None`` go to the loop's own getaddrinfo,
   which never blocks on them.
2. The hosts file (``/etc/hosts``, read again when it changes) answers the names it has.
3. ``localhost`` and names under it are the loopback addresses (RFC 6761).
4. Everything else is asked of the resolver as A and AAAA, with the ``search`` domains and
   ``ndots`` of ``/etc/resolv.conf`` (``LOCALDOMAIN`` and ``RES_OPTIONS`` over them, as
   glibc) for names with fewer dots; as in glibc, the search goes on past a name that
   does not exist, has no address or whose servers fail (SERVFAIL), and stops at a
   timeout.
5. Only with ``fallback=True`` does a name the resolver cannot find go to the loop's own
   getaddrinfo (the host's NSS: mDNS, LDAP...); otherwise it is ``socket.gaierror``.

Ports and service names, socket types, protocols, flags and the shape of the result tuples
are handled by the stdlib's ``socket.getaddrinfo`` called on the numeric addresses, so they
behave as the stdlib's do.
"""
from __future__ import annotations

import asyncio
import os
import socket

import dns.exception
import dns.resolver

from resolver.hostconf import HostsFile, search_rules

_ORIGINAL = "_resolver_original_getaddrinfo"
_LOOPBACK = [(socket.AF_INET6, "::1"), (socket.AF_INET, "127.0.0.1")]


def _is_numeric(host: str) -> bool:
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(fam, host.split("%", 1)[0])
            return True
        except OSError:
            pass
    return False


class _Lookup:
    """What ``install`` keeps per loop: the resolver, the hosts file, the fallback."""

    def __init__(self, r, original, hosts: HostsFile | None, fallback: bool) -> None:
        self.r, self.original, self.hosts, self.fallback = r, original, hosts, fallback

    async def __call__(self, host, port, *, family=0, type=0, proto=0, flags=0):
        return await getaddrinfo(self.r, self.original, host, port, family=family, type=type,
                                 proto=proto, flags=flags, hosts=self.hosts,
                                 fallback=self.fallback)


async def getaddrinfo(r, original, host, port, *, family=0, type=0, proto=0, flags=0,
                      hosts: HostsFile | None = None, fallback: bool = False):
    """loop.getaddrinfo's contract, names answered as the module docstring says."""
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("idna")
    if host is None or flags & socket.AI_NUMERICHOST or _is_numeric(host):
        return await original(host, port, family=family, type=type, proto=proto, flags=flags)
    if family not in (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6):
        raise socket.gaierror(socket.EAI_FAMILY, "ai_family not supported")
    name = host.rstrip(".").lower()
    listed = hosts.lookup(name) if hosts is not None else []
    if not listed and (name == "localhost" or name.endswith(".localhost")):
        listed = _LOOPBACK
    if listed:
        addrs = [(fam, a) for fam, a in listed if family in (socket.AF_UNSPEC, fam)]
        if not addrs:
            raise socket.gaierror(socket.EAI_ADDRFAMILY,
                                  "Address family for hostname not supported")
        return _shaped(addrs, host, host, port, type, proto, flags)
    try:
        addrs, canon = await _from_dns(r, host, family)
    except socket.gaierror:
        if fallback:
            return await original(host, port, family=family, type=type, proto=proto,
                                  flags=flags)
        raise
    return _shaped(addrs, host, canon, port, type, proto, flags)


async def _from_dns(r, host: str, family: int) -> tuple[list[tuple[int, str]], str | None]:
    """The addresses of ``host`` and its canonical name, asked as glibc's getaddrinfo asks:
    each of the names the search rules give (``r.search_names``), its A and AAAA together,
    until one has addresses; a name that does not exist, has none, or whose servers
    failed (SERVFAIL) passes to the next, a timeout ends the search; all within
    ``r.lifetime``. No addresses: as glibc, EAI_NODATA if a name had no address records
    (it exists), else EAI_AGAIN if a server failed or timed out, else EAI_NONAME."""
    if family == socket.AF_INET:
        wanted = [("A", socket.AF_INET)]
    elif family == socket.AF_INET6:
        wanted = [("AAAA", socket.AF_INET6)]
    else:
        wanted = [("A", socket.AF_INET), ("AAAA", socket.AF_INET6)]
    names = r.search_names(host, True)
    seen: set[type] = set()
    if len(names) == 1:
        # One name: ``resolve`` bounds its questions by ``r.lifetime`` itself, so no timer
        # of our own goes around them.
        addrs, canon, seen = await _addresses(r, names[0], wanted)
        if addrs:
            return addrs, canon
    else:
        try:
            async with asyncio.timeout(r.lifetime):
                for name in names:
                    addrs, canon, failures = await _addresses(r, name, wanted)
                    if addrs:
                        return addrs, canon
                    seen |= failures
                    if dns.exception.Timeout in failures:
                        break
        except TimeoutError:
            seen.add(dns.exception.Timeout)
    if dns.resolver.NoAnswer in seen:
        raise socket.gaierror(socket.EAI_NODATA, "No address associated with hostname")
    if seen & {dns.resolver.NoNameservers, dns.exception.Timeout}:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


#: how a question for a name can fail without ending the search, as the kinds ``_addresses``
#: reports: NoNameservers is a server failure (SERVFAIL from every server, or DNSSEC bogus)
_FAILURES = (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers,
             dns.exception.Timeout)


async def _addresses(r, name, wanted) -> tuple[list[tuple[int, str]], str | None, set[type]]:
    """``(addresses, canonical name, failures)`` for one absolute name, its ``wanted``
    types asked together; ``failures`` holds the kind (of ``_FAILURES``) of each question
    that failed."""
    if len(wanted) == 1:                # one question: no task to run it beside another
        try:
            outcomes = [await r.resolve(name, wanted[0][0], search=False)]
        except Exception as exc:
            outcomes = [exc]
    else:
        outcomes = await asyncio.gather(
            *(r.resolve(name, t, search=False) for t, _ in wanted), return_exceptions=True)
    addrs: list[tuple[int, str]] = []
    canon = None
    failures: set[type] = set()
    for (rdtype, fam), out in zip(wanted, outcomes):
        if isinstance(out, BaseException):
            kind = next((k for k in _FAILURES if isinstance(out, k)), None)
            if kind is None:
                raise out
            failures.add(kind)
            continue
        if canon is None:
            canon = out.canonical_name.to_text(omit_final_dot=True)
        addrs += [(fam, rd.address) for rd in out]
    return addrs, canon, failures


def _shaped(addrs, host: str, canon: str | None, port, type, proto, flags) -> list:
    result = []
    for fam, addr in addrs:
        # Numeric, so this never blocks; it applies port/type/proto/flags as the stdlib does.
        result += socket.getaddrinfo(addr, port, fam, type, proto,
                                     (flags | socket.AI_NUMERICHOST) & ~socket.AI_CANONNAME)
    if flags & socket.AI_CANONNAME and result:
        f, t, p, _, sa = result[0]
        result[0] = (f, t, p, canon or host, sa)
    return result


def install(loop: asyncio.AbstractEventLoop, r, *, hosts="/etc/hosts",
            resolv_conf="/etc/resolv.conf", fallback: bool = False) -> None:
    """Route ``loop.getaddrinfo`` through resolver ``r`` (idempotent; ``uninstall`` undoes).

    ``hosts``: the hosts file consulted first (``None``: none). ``resolv_conf``: where the
    ``search`` domains and ``ndots`` for relative names come from, with the environment's
    ``LOCALDOMAIN`` and ``RES_OPTIONS`` over them as glibc reads them
    (``hostconf.search_rules``); they are set on ``r`` (``None``: leave ``r``'s own).
    ``fallback``: names the resolver cannot find go to the loop's own getaddrinfo."""
    original = getattr(loop, _ORIGINAL, None) or loop.getaddrinfo
    if resolv_conf is not None:
        r.search, r.ndots = search_rules(resolv_conf, os.environ)
    lookup = _Lookup(r, original, None if hosts is None else HostsFile(hosts), fallback)
    try:
        setattr(loop, _ORIGINAL, original)
        loop.getaddrinfo = lookup
    except AttributeError:
        raise TypeError(f"{type(loop).__name__} does not allow replacing getaddrinfo") from None


def uninstall(loop: asyncio.AbstractEventLoop) -> None:
    """Restore the getaddrinfo the loop had before ``install``."""
    original = getattr(loop, _ORIGINAL, None)
    if original is None:
        return
    delattr(loop, _ORIGINAL)
    if getattr(original, "__self__", None) is loop and getattr(
            original, "__func__", None) is getattr(type(loop), "getaddrinfo", None):
        del loop.getaddrinfo                  # the loop's own method again
    else:
        loop.getaddrinfo = original           # what someone had put there before
