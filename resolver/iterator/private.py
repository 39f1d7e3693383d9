"""The DNS-rebinding guard (Unbound's ``private-address`` and ``private-domain``).

Every reply from an upstream server, an authority or a forwarder, is scrubbed before the
iterator reads it: an A or AAAA record whose address lies in one of the private networks
is removed from whichever section holds it, unless its owner is at or below one of the
private domains. An rrset whose records are all removed is gone; the rest of the reply
stands (a name whose only addresses were private answers NOERROR with no data, never
SERVFAIL), as Unbound's iterator scrubs (iter_scrub.c, iter_priv.c). The address is
checked as it is written: an IPv4-mapped IPv6 address (``::ffff:10.0.0.1``) is matched by
an IPv6 network such as ``::ffff:0:0/96``, not by ``10.0.0.0/8``.

Local data and local zones never reach an upstream reply, so they are never filtered.
"""
from __future__ import annotations

import logging
from typing import Iterable

from resolver.iterator.networks import Networks
from resolver.wire.codec import is_subdomain

log = logging.getLogger("resolver.iterator")

A, AAAA = 1, 28


def _name_wire(name: str) -> bytes:
    """``name`` (text, absolute or not) as lower-case wire format."""
    import dns.name

    return dns.name.from_text(name).canonicalize().to_wire()


class PrivateAddresses:
    """The networks whose addresses no public name may have, and the domains that may.

    ``addresses``: networks (``ipaddress`` networks or their text: ``10.0.0.0/8``,
    ``fd00::/8``, a single address); ``domains``: names (text), each allowing itself and
    every name below it."""

    def __init__(self, addresses: Iterable = (), domains: Iterable[str] = ()) -> None:
        self.nets = Networks(addresses)
        self.networks = self.nets.networks
        self.domains = tuple(_name_wire(d) for d in domains)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def private(self, rdata: bytes) -> bool:
        """True when the address ``rdata`` (4 or 16 bytes) lies in a private network."""
        return self.nets.holds(rdata)

    def allowed(self, owner: bytes) -> bool:
        """True when ``owner`` (wire format) is at or below a private domain."""
        return any(is_subdomain(owner, d) for d in self.domains)

    def scrub(self, m) -> int:
        """Removes the private addresses of public names from the sections of ``m`` (a
        parsed reply, ``resolver.wire.codec.Parsed``); returns how many records went."""
        if not self.networks:
            return 0
        removed = 0
        for section in ("answer", "authority", "additional"):
            records = getattr(m, section)
            kept = [r for r in records if not self._bad(r)]
            if len(kept) != len(records):
                removed += len(records) - len(kept)
                setattr(m, section, kept)
        if removed:
            log.debug("removed %d private address record(s) of public names", removed)
        return removed

    def _bad(self, record) -> bool:
        rdtype, rdata = record[1], record[4]
        if rdtype != A and rdtype != AAAA:
            return False
        if len(rdata) != (4 if rdtype == A else 16):
            return False
        return self.private(rdata) and not self.allowed(record[0])


def make(addresses: Iterable = (), domains: Iterable[str] = ()) -> PrivateAddresses | None:
    """The guard for these settings, or None when no network is given (nothing to do)."""
    guard = PrivateAddresses(addresses, domains)
    return guard if guard else None
