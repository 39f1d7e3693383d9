"""A set of IP networks, asked whether an address lies in one of them: the private
networks of the DNS-rebinding guard (``resolver.iterator.private``) and the networks the
iterator never sends a query to (Unbound's ``do-not-query-address``)."""
from __future__ import annotations

import ipaddress
import socket
from typing import Iterable


class Networks:
    """``addresses``: networks (``ipaddress`` networks or their text: ``10.0.0.0/8``,
    ``fd00::/8``, a single address). An address matches as it is written: an IPv4-mapped
    IPv6 address is matched by IPv6 networks only."""

    def __init__(self, addresses: Iterable = ()) -> None:
        nets = [n if isinstance(n, (ipaddress.IPv4Network, ipaddress.IPv6Network))
                else ipaddress.ip_network(str(n), strict=False) for n in addresses]
        #: per family (4 or 16 address bytes): host bits -> the networks' prefixes, as
        #: integers shifted right past the host bits
        self._nets: dict[int, dict[int, set[int]]] = {4: {}, 16: {}}
        for n in nets:
            size = 4 if n.version == 4 else 16
            host_bits = 8 * size - n.prefixlen
            self._nets[size].setdefault(host_bits, set()).add(
                int(n.network_address) >> host_bits)
        self.networks = tuple(nets)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def holds(self, packed: bytes) -> bool:
        """Whether the address ``packed`` (4 or 16 bytes) lies in one of the networks."""
        by_bits = self._nets.get(len(packed))
        if not by_bits:
            return False
        value = int.from_bytes(packed, "big")
        return any((value >> bits) in prefixes for bits, prefixes in by_bits.items())

    def holds_address(self, text: str) -> bool:
        """``holds`` for an address in text; False for text that is no address."""
        try:
            packed = socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET,
                                      text.partition("%")[0])
        except OSError:
            return False
        return self.holds(packed)


def make(addresses: Iterable = ()) -> Networks | None:
    """The set of these networks, or None when there are none."""
    nets = Networks(addresses)
    return nets if nets else None
